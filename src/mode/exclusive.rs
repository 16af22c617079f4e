//! [`Exclusive`]: the mode of a log written only by its exclusive
//! [`Writer`](crate::Writer), with no atomic read-modify-write.
//!
//! Most logs have one producer. When the type system says there is only one
//! (a `Writer` is made once, by `Builder::build_exclusive`, and is not
//! `Clone`; `&mut self` on every write), a write needs less than the shared
//! protocol (shared.rs):
//! - **The claim is a plain store.** Only the writer stores `tail`; how a
//!   write still linearises against `close` and meets sleeping readers
//!   without a read-modify-write is below.
//! - **The mark moves by a plain store.** Offsets are published in order by
//!   one thread, so there are no out-of-order finishers to carry over, no
//!   announce, no compare-exchange: publish the slot's stamp, then store the
//!   mark (both Release).
//! - **No lookup of the segment.** The writer keeps a pointer to the segment
//!   it is filling (writer.rs): a segment is purged only when a later one is
//!   installed, and only this writer installs.
//!
//! # No read-modify-write at all: an asymmetric fence
//! A write is plain stores and loads. The writer stores `tail = rel + n`
//! (announcing the claim), runs [`fence::light`] (a compiler fence where
//! Linux's `membarrier` is available, see fence.rs), loads `closing` and
//! the waiter count, then publishes the slots and stores the mark. The two
//! rare paths that must meet a write in flight run [`fence::heavy`] between
//! their own store and their load of `tail`:
//! - **A reader about to sleep** registers (the count goes up), runs
//!   `heavy`, and loads `tail` (`recheck`). Either the writer's count load
//!   comes after the barrier and sees the registration (it wakes the reader
//!   once it has stored the mark), or the reader's `tail` load sees the
//!   claim: the writer is between claim and publish, where no user code
//!   runs, so the reader does not sleep; it yields and looks again
//!   (`Wait::Imminent`).
//! - **`close`** sets `closing` (a word of its own: nobody may
//!   read-modify-write the `tail` the writer stores), runs `heavy`, loads
//!   `tail` and stores it as the end. Either the writer's `closing` load
//!   comes before the barrier, so the closer's `tail` load sees the claim
//!   and the end covers it; or it sees `closing`, and the writer waits for
//!   the end and publishes only if its claim is below it. A batch is stored
//!   as one `tail` value, so the closer sees all of it or none: it lands
//!   whole or fails whole.
//!
//! So no wake-up is lost, nothing is published past the end a `close`
//! returned, and everything below that end is published. With nobody
//! parked and the log open, a write pays no fence instruction, no lock and
//! no read-modify-write: the stores of a single-producer ring buffer, plus
//! the two loads. Readers that have not gone to sleep read the mark and
//! the stamps as with any log.

pub(crate) mod fence;

use super::cursors::Cursors;
use crate::sync::{AtomicBool, Ordering};
use crate::wait::Wait;
use crate::Error;

/// The rules of a log written only by its exclusive writer. `tail` is the
/// next offset to claim, stored only by the writer (no `CLOSED` bit).
#[derive(Debug)]
pub(crate) struct Exclusive {
    /// Set by `close`: the writer's claims meet it (module docs).
    closing: AtomicBool,
    /// Whether the writer's half of the asymmetric fence is a compiler
    /// fence (fence.rs): fixed before the log exists, so the writer and the
    /// rare paths agree on it.
    pub(crate) expedited: bool,
}

impl Exclusive {
    pub(super) fn new() -> Self {
        Exclusive {
            closing: AtomicBool::new(false),
            expedited: fence::init(),
        }
    }

    /// Claims `n` offsets for the writer: `Err(Closed)` if the log is
    /// closed (then nothing is claimed).
    #[inline(always)]
    pub(crate) fn claim(&self, c: &Cursors, n: u64) -> Result<u64, Error> {
        // Relaxed: only the writer stores `tail`; this is its own last store.
        let rel = c.tail.load(Ordering::Relaxed);
        // The announce. Relaxed: `light` below orders it before the loads
        // that follow, against `heavy` on the other side (module docs).
        c.tail.store(rel + n, Ordering::Relaxed);
        fence::light(self.expedited);
        // Relaxed: as above; the end it leads to is acquired.
        if self.closing.load(Ordering::Relaxed) {
            return self.claim_while_closing(c, rel, n);
        }
        Ok(rel)
    }

    /// The offset the writer's next claim gets (only the writer calls it).
    #[inline]
    pub(crate) fn next_claim(&self, c: &Cursors) -> u64 {
        // Relaxed: the writer's own last store.
        c.tail.load(Ordering::Relaxed)
    }

    /// Takes back the writer's claim at `rel`, which its install refused
    /// (the log closed while the holds kept it waiting: `rel` is past the
    /// end, hold.rs), so that `tail` is the end again.
    #[cold]
    pub(crate) fn unclaim(&self, c: &Cursors, rel: u64) {
        c.tail.store(rel, Ordering::Relaxed);
    }

    /// A claim that met `close`: it lands if the closer saw it.
    #[cold]
    fn claim_while_closing(&self, c: &Cursors, rel: u64, n: u64) -> Result<u64, Error> {
        // The closer runs no user code between setting `closing` and storing
        // the end, which is `tail` as it loaded it after `heavy`: this
        // claim's value or the one before (a later one can not exist yet).
        let end = c.end();
        // The end is this claim's value or the one before, or, where holds
        // forbid this claim's segment, its first offset (hold.rs).
        debug_assert!(end == rel || end == rel + n, "{end} {rel} {n}");
        if rel + n <= end {
            return Ok(rel);
        }
        // Not seen: take it back, so that `tail` stays the end.
        c.tail.store(rel, Ordering::Relaxed);
        Err(Error::Closed)
    }

    /// The writer has published every offset below `to`: moves the mark
    /// there. A store, not a compare-exchange: nobody else moves the mark,
    /// and the offsets are published in order. The caller then wakes
    /// parked readers (its count load comes after its claim's `light`,
    /// which is what the handshake needs).
    #[inline(always)]
    pub(crate) fn publish_to(&self, c: &Cursors, to: u64) {
        // Release: hands the slots below `to` to readers that acquire the mark.
        c.mark.store(to, Ordering::Release);
    }

    pub(super) fn close(&self, c: &Cursors, held_end: impl FnOnce() -> u64) {
        // AcqRel: one winner; a loser waits for the winner's end below.
        if self.closing.swap(true, Ordering::AcqRel) {
            c.end();
            return;
        }
        fence::heavy();
        // Every claim the writer stored before its `light` that missed
        // `closing` (module docs). Relaxed: the end is what matters, and
        // readers wait on the mark to reach it.
        let end = c.tail.load(Ordering::Relaxed);
        // A claim in a segment the holds forbid fails (hold.rs).
        c.set_end(end.min(held_end()));
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(super) fn next(&self, c: &Cursors) -> u64 {
        if self.is_closed() {
            return c.end();
        }
        // The mark, not `tail`: the writer's claim store there may yet be
        // refused by a racing `close` and taken back (`claim_while_closing`),
        // and a thread other than the writer's could see that store and not
        // yet `closing`. The mark counts only writes that landed; on the
        // writer's own thread, between its writes, it equals `tail`. It only
        // grows, and the end a `close` fixes is at or past it, so this never
        // goes back. Acquire: as any load of the mark.
        c.mark.load(Ordering::Acquire)
    }

    /// A reader about to sleep, registered (module docs): meets the writer's
    /// claim through the asymmetric fence. Any offset below the claim is
    /// published without a wake-up being needed (`Imminent`); for any at or
    /// above it, the writer sees the registration.
    pub(super) fn recheck(
        &self,
        c: &Cursors,
        rel: u64,
        stamped: impl Fn() -> bool,
    ) -> Option<Wait> {
        fence::heavy();
        // Relaxed: ordered by `heavy` against the writer's `light`.
        let mut claimed = c.tail.load(Ordering::Relaxed);
        if self.closing.load(Ordering::Acquire) {
            // Claims may have failed: the end is what will be published.
            claimed = c.end();
        }
        if c.mark.load(Ordering::Acquire) > rel || stamped() {
            return Some(Wait::Ready);
        }
        (claimed > rel).then_some(Wait::Imminent)
    }
}
