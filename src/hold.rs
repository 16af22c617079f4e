//! Holds: streams that must not lose a record ([`Lag::Hold`](crate::Lag::Hold))
//! keep the segments they have not read from being purged, and writers that
//! would purge one wait.
//!
//! Purging happens a whole segment at a time, when a writer installs segment
//! `k` and unlinks `k - H - 1` (ring.rs). So a holding stream only makes
//! known the *segment* of its next unread offset, when it leaves a segment,
//! and a writer only looks at the holds when it is about to purge: nothing
//! per record on either side.
//!
//! # The gate
//! `gate` is the first segment that may not be installed now: the smallest
//! held segment plus `H + 1` (`u64::MAX` with no holds). Holders change it
//! under the lock; writers read it without.
//!
//! # A hold set while a writer purges (`hold` against `admit`)
//! A writer about to purge up to relative offset `need` first raises
//! `intent` to `need`, then (after a `SeqCst` fence) loads `gate`. A stream
//! setting a hold at offset `pos` first lowers `gate` (pending), then (after
//! a `SeqCst` fence) loads `intent`. Store, fence, load on both sides
//! (Dekker): at least one sees the other. If the writer sees the lowered
//! gate it waits; if the stream sees `intent` past `pos`, a writer may be
//! purging its records. `intent` only grows, and a writer refused by the
//! gate leaves it raised (a `try_write` told `Full` may never come back), so
//! the stream then tells apart: it waits for every writer that announced to
//! have decided (`announcing`, the count of writers between announcing and
//! loading the gate: a few instructions), and the hold fails only if one
//! that was admitted purges past `pos` (`reserved`, raised by admitted
//! writers only). Then the stream gets `OutOfRange`, as one set on a purged
//! offset does, and it withdraws, releasing the writer. So no purge passes
//! a hold that was set, a hold is *confirmed* only once no writer can be
//! purging under it, and a refused writer fails no later hold.
//!
//! # Waiting writers
//! A writer that finds the gate at or below the segment it installs checks
//! the gate again and registers under the lock, and sleeps; every raise of
//! the gate (a hold moving on, released, cancelled) happens under the same
//! lock and wakes the writers registered: no wake-up is lost. The writer
//! has claimed its offset already, but that blocks no holder: installing
//! segment `k` waits first for the mark to pass every offset below segment
//! `k - H` (ring.rs), and a holder in segment `k - H - 1` or before needs
//! only those to read on.
//!
//! # Close
//! `close` freezes the holds under the lock: the end of what was written
//! becomes at most the first offset of the first segment that confirmed
//! holds forbid (`freeze`), and every writer waiting is woken. A write whose
//! segment lies there fails `Closed`, even if the holds have moved on by the
//! time it looks (`closed_from`, after `admit`: a close after that look
//! freezes a gate past the segment); one below it lands. Claims of offsets
//! past that end exist only in segments the holds forbid, which their writers
//! never publish: every offset below the end is published. A writer of such
//! a claim that waits, before it looks at the holds, for the mark to reach
//! its segment's purge point (ring.rs `install`) may be waiting for one of
//! these unpublished claims: it gives up `Closed` there too.

use crate::sync::{
    current, fence, park, park_timeout, yield_now, AtomicBool, AtomicU64, Backoff, Mutex,
    MutexGuard, Ordering,
};
use crate::wait::Waiter;
use std::sync::Arc;
use std::time::Instant;

/// The holds of one log.
#[derive(Debug)]
pub(crate) struct Holds {
    /// The first segment that may not be installed (module docs).
    gate: AtomicU64,
    /// The highest relative offset below which a writer announced a purge
    /// (admitted or not).
    intent: AtomicU64,
    /// How many writers are between announcing and deciding (`admit`).
    announcing: AtomicU64,
    /// The highest relative offset below which an admitted writer purges.
    reserved: AtomicU64,
    /// `H + 1`: a hold on segment `s` forbids installing `s + H + 1` on.
    span: u64,
    /// Once closed, `State::frozen` (`u64::MAX` before): for writers that
    /// wait without the lock (`closed_from`).
    frozen: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    holders: Vec<Holder>,
    /// Writers waiting for the gate to rise.
    writers: Vec<Waiter>,
    /// Once closed: the first segment confirmed holds forbade then.
    frozen: Option<u64>,
}

#[derive(Debug)]
struct Holder {
    id: u64,
    /// The segment of the holder's next unread offset.
    seg: u64,
    /// Whether the hold survived its check against purging writers.
    confirmed: bool,
    /// The stream's cancel flag: a cancelled stream holds nothing.
    cancel: Arc<AtomicBool>,
}

impl Holds {
    pub(crate) fn new(history: u64) -> Self {
        Holds {
            gate: AtomicU64::new(u64::MAX),
            intent: AtomicU64::new(0),
            announcing: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            span: history + 1,
            frozen: AtomicU64::new(u64::MAX),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing runs under this lock but bookkeeping: recover a poisoned
        // one (a panic elsewhere) rather than wedge writers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Recomputes the gate; returns the writers to wake if it rose.
    /// The first segment the live holds forbid (`u64::MAX`: none), counting
    /// only confirmed ones if `confirmed`.
    fn first_forbidden(&self, s: &State, confirmed: bool) -> u64 {
        s.holders
            .iter()
            .filter(|h| (h.confirmed || !confirmed) && !h.cancel.load(Ordering::Acquire))
            .map(|h| h.seg.saturating_add(self.span))
            .min()
            .unwrap_or(u64::MAX)
    }

    fn regate(&self, s: &mut State) -> Vec<Waiter> {
        let gate = self.first_forbidden(s, false);
        // Relaxed: only lock holders write it.
        let old = self.gate.load(Ordering::Relaxed);
        // Release: a writer that sees the raised gate sees what the holder
        // read (nothing it needs); the Dekker pair uses the fences.
        self.gate.store(gate, Ordering::Release);
        if gate > old {
            std::mem::take(&mut s.writers)
        } else {
            Vec::new()
        }
    }

    /// Sets a hold on segment `seg`, for a stream whose next unread
    /// relative offset is `pos` (in `seg`); `None` if a writer is purging
    /// past `pos` (module docs: the stream gets `OutOfRange`).
    pub(crate) fn hold(&self, seg: u64, pos: u64, cancel: &Arc<AtomicBool>) -> Option<u64> {
        let (id, woken) = {
            let mut s = self.lock();
            let id = s.next_id;
            s.next_id += 1;
            // Covered by a confirmed hold at or before `seg`: segments are
            // purged in order, so nothing at `seg` can be purged while that
            // one stands, and it stands now, under the lock. (A stream
            // resumed from another's position before that one is dropped.)
            let covered = s
                .holders
                .iter()
                .any(|h| h.confirmed && h.seg <= seg && !h.cancel.load(Ordering::Acquire));
            s.holders.push(Holder {
                id,
                seg,
                confirmed: covered,
                cancel: Arc::clone(cancel),
            });
            if covered {
                // It only lowers the gate to where it already was, or higher.
                let woken = self.regate(&mut s);
                drop(s);
                wake(woken);
                return Some(id);
            }
            // The gate may still rise: a holder cancelled since the last
            // count no longer counts.
            (id, self.regate(&mut s))
        };
        wake(woken);
        // The stream's half of the Dekker pair (module docs).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fences; a writer whose fence came first is
        // seen here and in `announcing` (`purging_past`).
        if self.intent.load(Ordering::Relaxed) > pos && self.purging_past(pos) {
            self.release(id);
            return None;
        }
        let mut s = self.lock();
        if let Some(h) = s.holders.iter_mut().find(|h| h.id == id) {
            h.confirmed = true;
        }
        Some(id)
    }

    /// After a writer announced a purge past `pos`: waits until every
    /// writer that has announced has decided (straight-line code in
    /// `admit`), then whether one admitted purges past `pos`.
    fn purging_past(&self, pos: u64) -> bool {
        let backoff = Backoff::new();
        // Acquire: pairs with the Release decrements, so that `reserved` is
        // what those writers left.
        while self.announcing.load(Ordering::Acquire) != 0 {
            if backoff.is_completed() {
                yield_now();
            } else {
                backoff.snooze();
            }
        }
        self.reserved.load(Ordering::Relaxed) > pos
    }

    /// Hold `id` moved on to segment `seg` (its stream left the one before).
    pub(crate) fn move_to(&self, id: u64, seg: u64) {
        let woken = {
            let mut s = self.lock();
            if let Some(h) = s.holders.iter_mut().find(|h| h.id == id) {
                h.seg = seg;
            }
            self.regate(&mut s)
        };
        wake(woken);
    }

    /// Hold `id` ends (its stream ended, was dropped, or stopped holding).
    pub(crate) fn release(&self, id: u64) {
        let woken = {
            let mut s = self.lock();
            s.holders.retain(|h| h.id != id);
            self.regate(&mut s)
        };
        wake(woken);
    }

    /// A stream was cancelled: its hold (if any) ends now, whether or not
    /// the stream reads again.
    pub(crate) fn cancelled(&self) {
        let woken = {
            let mut s = self.lock();
            s.holders.retain(|h| !h.cancel.load(Ordering::Acquire));
            self.regate(&mut s)
        };
        wake(woken);
    }

    /// Whether a writer may install segment `k`, purging below relative
    /// offset `need`, without waiting: the writer's half of the Dekker pair
    /// (module docs). Nothing but RMWs, a fence and a load, once per
    /// segment installed.
    #[inline]
    pub(crate) fn admit(&self, k: u64, need: u64) -> bool {
        // Relaxed, both: ordered by the fence. A holder whose fence comes
        // after it sees this writer in `intent` and in `announcing`.
        self.announcing.fetch_add(1, Ordering::Relaxed);
        self.intent.fetch_max(need, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        // Acquire: pairs with the Release store of a holder that raised it.
        let admitted = self.gate.load(Ordering::Acquire) > k;
        if admitted {
            // Relaxed: released by the decrement.
            self.reserved.fetch_max(need, Ordering::Relaxed);
        }
        // Release: a holder waiting for the count sees `reserved`.
        self.announcing.fetch_sub(1, Ordering::Release);
        admitted
    }

    /// Whether installing segment `k` could be refused now (for a write
    /// that looks before it claims: `try_write` and its kin).
    pub(crate) fn forbids(&self, k: u64) -> bool {
        self.gate.load(Ordering::Acquire) <= k
    }

    /// After `admit` said no: `Ok` once segment `k` may be installed;
    /// `Err(Closed)` if the log closed with `k` at or past the frozen gate.
    /// `wait` says what to do while blocked: `Some(waiter)` registers it
    /// (then it is woken by the next raise or by close) and returns `None`
    /// for the caller to sleep and call again; `None` means do not wait.
    pub(crate) fn check(&self, k: u64, waiter: Option<Waiter>) -> Option<Result<(), crate::Error>> {
        let mut s = self.lock();
        if s.frozen.is_some_and(|g| k >= g) {
            return Some(Err(crate::Error::Closed));
        }
        // Relaxed: under the lock every writer of it.
        if self.gate.load(Ordering::Relaxed) > k {
            return Some(Ok(()));
        }
        match waiter {
            Some(w) => {
                // One entry per waiter: a task polled again replaces its own.
                s.writers.retain(|old| !old.is_same(&w));
                s.writers.push(w);
                None
            }
            None => Some(Err(crate::Error::Full)),
        }
    }

    /// Closes: returns the first segment that confirmed holds forbid
    /// (`u64::MAX`: none), fixed from now on, and wakes every waiting
    /// writer. Idempotent.
    pub(crate) fn freeze(&self) -> u64 {
        let (gate, woken) = {
            let mut s = self.lock();
            let gate = match s.frozen {
                Some(g) => g,
                None => {
                    let g = self.first_forbidden(&s, true);
                    s.frozen = Some(g);
                    // Release: pairs with `closed_from`'s Acquire.
                    self.frozen.store(g, Ordering::Release);
                    g
                }
            };
            (gate, std::mem::take(&mut s.writers))
        };
        wake(woken);
        gate
    }

    /// Whether the log closed with segment `k` at or past the frozen gate:
    /// a write claimed there is past the end and fails `Closed`. For a
    /// writer waiting for the mark before it installs `k`: the offsets it
    /// waits for may be such claims too, never published (module docs).
    pub(crate) fn closed_from(&self, k: u64) -> bool {
        self.frozen.load(Ordering::Acquire) <= k
    }

    /// Blocks the thread until segment `k` may be installed (spinning
    /// briefly, then parking), or the log closes with `k` forbidden.
    pub(crate) fn wait(&self, k: u64) -> Result<(), crate::Error> {
        self.wait_until(k, None)
    }

    /// `wait` until `deadline` (for ever if `None`): `Err(Timeout)` then.
    pub(crate) fn wait_until(&self, k: u64, deadline: Option<Instant>) -> Result<(), crate::Error> {
        let backoff = Backoff::new();
        while !backoff.is_completed() && self.forbids(k) {
            backoff.snooze();
        }
        loop {
            if let Some(r) = self.check(k, Some(Waiter::Thread(current()))) {
                return r;
            }
            match deadline {
                None => park(),
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(t) if !t.is_zero() => park_timeout(t),
                    // Still registered: a later raise unparks this thread
                    // once, which every wait of memlog tolerates.
                    _ => return Err(crate::Error::Timeout),
                },
            }
        }
    }

    /// How many holds are set (for tests).
    pub(crate) fn len(&self) -> usize {
        self.lock().holders.len()
    }
}

/// Wakes writers, outside the lock (a `Waker` is user code).
fn wake(woken: Vec<Waiter>) {
    for w in woken {
        w.wake();
    }
}
