//! [`Shared`]: the mode of a log that any handle writes, with lock-free
//! read-modify-writes.
//!
//! # The write protocol
//! 1. Everything that runs user code happens first: the payload size check
//!    (`AsRef`), the clock, collecting a batch's iterator.
//! 2. Claim: `tail.fetch_add(n)`. The claim is the linearisation point against
//!    `close`, which sets the `CLOSED` bit of `tail` with `fetch_or`: a claim
//!    that returns a value without the bit lands, one with it fails `Closed`.
//! 3. Find the segment (ring.rs): normally one acquire load of the ring
//!    place's index; the first writer into a new segment installs it,
//!    purging the oldest.
//! 4. Publish the slots (a Release store of each stamp) and move the
//!    high-water mark over every contiguous published offset (`advance`).
//!
//! No user code and no allocation that can fail softly runs between 2 and 4,
//! so a claimed offset is always published and can never wedge the mark:
//! purged records that a pin here collects are dropped later (reclaim.rs),
//! and parked readers are woken (their wakers run) only once the mark is
//! carried over every offset this writer is responsible for.
//!
//! # The high-water mark and who moves it
//! Only read-modify-writes change the mark, and it moves only over slots
//! whose stamps the mover has seen. Writers finish out of order: whoever
//! finds the mark at the start of its published run moves it to the end of
//! the contiguous published run; a writer that finds an earlier offset still
//! unpublished announces its own publish with an RMW and leaves. The RMW
//! comes before the laggard's eventual compare-exchange in the mark's
//! modification order, so the laggard's scan sees these stamps and carries
//! the mark over them. A reader about to sleep meets the movers on the same
//! word (wait.rs): its own RMW on the mark, after registering.

use super::cursors::Cursors;
use crate::sync::Ordering;
use crate::wait::Wait;
use crate::Error;

/// Set in `tail` by `close`.
pub(crate) const CLOSED: u64 = 1 << 63;

/// The rules of a log that every handle writes. `tail` is the next offset to
/// claim, with bit 63 (`CLOSED`) set by `close`; single claims `fetch_add`
/// it and give a failed increment back, batches compare-exchange it, so
/// failed claims never add up into the `CLOSED` bit.
#[derive(Debug)]
pub(crate) struct Shared;

impl Shared {
    /// Claims one offset; `Err(Closed)` if the log is closed.
    #[inline]
    pub(crate) fn claim_one(&self, c: &Cursors) -> Result<u64, Error> {
        // Relaxed: the RMW alone makes claims unique; publication is ordered
        // by the slot stamps and the high-water mark, not by `tail`.
        let rel = c.tail.fetch_add(1, Ordering::Relaxed);
        if rel & CLOSED != 0 {
            // Give the increment back: only claims racing with this one can
            // have added theirs, so the count past the close stays bounded
            // by the number of threads and can never carry into `CLOSED`.
            c.tail.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Closed);
        }
        Ok(rel)
    }

    /// Claims `n` contiguous offsets; `Err(Closed)` if the log is closed.
    /// A compare-exchange loop rather than `fetch_add`: a batch may be as
    /// large as the log's capacity, so a failed one must add nothing, and
    /// `admit(first)` decides before each try whether a claim at `first`
    /// may be made (the holds, hold.rs), and may wait.
    pub(crate) fn claim_batch(
        &self,
        c: &Cursors,
        n: u64,
        mut admit: impl FnMut(u64) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let mut cur = c.tail.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return Err(Error::Closed);
            }
            admit(cur)?;
            // `cur + n` does not reach `CLOSED`: `n` is at most
            // `MAX_RETAINED` (2^62) and writing 2^62 records takes centuries.
            // Relaxed: as in `claim_one`.
            match c
                .tail
                .compare_exchange_weak(cur, cur + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(cur),
                Err(now) => cur = now,
            }
        }
    }

    /// Moves the mark after this thread published `[from, to)`; returns
    /// whether it moved it (then the caller wakes parked readers, once the
    /// mark is carried over every run it is responsible for). `scan(at)` is
    /// the first offset at or after `at` that is not published.
    #[inline]
    pub(crate) fn advance(
        &self,
        c: &Cursors,
        from: u64,
        to: u64,
        scan: impl Fn(u64) -> u64,
    ) -> bool {
        // Fast path, the only one a lone writer takes: the mark is at our run
        // and nothing was claimed after it.
        // AcqRel: as in `carry`.
        if c.mark
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // Something was claimed past `to` (seen through the Acquire
            // above): an out-of-order finisher may be waiting for us.
            if c.tail.load(Ordering::Relaxed) & !CLOSED > to {
                self.carry(c, to, scan(to), scan);
            }
            true
        } else {
            self.carry(c, from, to, scan)
        }
    }

    /// `advance` beyond its fast path: carries the mark from `expected` to
    /// `new`, whose offsets are published, and on over any run found after.
    /// Returns whether it moved the mark.
    #[cold]
    fn carry(
        &self,
        c: &Cursors,
        mut expected: u64,
        mut new: u64,
        scan: impl Fn(u64) -> u64,
    ) -> bool {
        let mut moved = false;
        while new != expected {
            // AcqRel: Release hands our stamps (and everything the mark now
            // covers) to readers; Acquire sees the stamps of writers whose
            // announce-RMW came before, and registered waiters (wait.rs).
            match c
                .mark
                .compare_exchange(expected, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    moved = true;
                    // Nothing was claimed past `new` (seen through the Acquire
                    // above): no out-of-order finisher can be waiting for us.
                    if c.tail.load(Ordering::Relaxed) & !CLOSED <= new {
                        break;
                    }
                    expected = new;
                    new = scan(expected);
                }
                // Someone already carried the mark past our run (and goes on
                // scanning past it themselves).
                Err(cur) if cur >= new => break,
                // Someone moved it into our run: retry from there.
                Err(cur) if cur > expected => expected = cur,
                // An earlier offset is unpublished (only possible before our
                // first success): announce, then leave it to that writer.
                Err(_) => {
                    let cur = c.mark.fetch_add(0, Ordering::AcqRel);
                    if cur < expected || cur >= new {
                        break;
                    }
                    expected = cur;
                }
            }
        }
        moved
    }

    pub(super) fn close(&self, c: &Cursors, held_end: impl FnOnce() -> u64) {
        let prev = c.tail.fetch_or(CLOSED, Ordering::AcqRel);
        if prev & CLOSED == 0 {
            // Everything claimed before the fetch_or will be published,
            // except claims in segments the holds forbid, which fail
            // (hold.rs); streams drain up to here and stop.
            c.set_end(prev.min(held_end()));
        } else {
            c.end();
        }
    }

    pub(super) fn is_closed(&self, c: &Cursors) -> bool {
        c.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    pub(super) fn next(&self, c: &Cursors) -> u64 {
        let t = c.tail.load(Ordering::Acquire);
        if t & CLOSED != 0 {
            return c.end();
        }
        t
    }

    /// The sleeper's re-check (wait.rs): re-reads the mark with an RMW. (A
    /// stamp already published while the mark lags is caught too; if it is
    /// published later, the writer that then moves the mark wakes us.)
    pub(super) fn recheck(
        &self,
        c: &Cursors,
        rel: u64,
        stamped: impl Fn() -> bool,
    ) -> Option<Wait> {
        (c.mark.fetch_add(0, Ordering::AcqRel) > rel || stamped()).then_some(Wait::Ready)
    }
}
