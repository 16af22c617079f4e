//! The one driver under every way a [`Stream`](crate::Stream) reads: the iterator's
//! `next`, `try_recv`, `recv_timeout`, the visits, and
//! [`AsyncStream`](crate::AsyncStream)'s `poll_next` and `poll_visit`.
//!
//! A read is an *operation* (`Stream::step`: the next record; a visit step:
//! up to `max` records lent to a closure) that either succeeds or says
//! `FutureOffset`. [`Reader::drive`] runs it until it succeeds, waiting
//! between tries in one of four ways ([`How`]): not at all, spinning then
//! parking the thread, busy-spinning, or registering a task's waker and
//! returning `Pending`. Whatever the way, waiting follows one sequence:
//! check; register; re-check with the handshake of the log's mode (wait.rs,
//! mode/); sleep only if still not ready. The registration lives in the
//! stream and has one exit, `leave`, which `Drop` calls too, so a thread
//! that wakes, a task that gets its record, a stream that ends and a stream
//! dropped while pending all deregister the same way.
//!
//! [`Reader::next_run`] is the one read under both operations: where the
//! stream's next offset is, how its readiness is judged (the mark, or the
//! slot stamps once the stream is contiguous and the mode lets stamps lead
//! the mark), and what a purged position means (`Lag`).

use crate::handle::Log;
use crate::record::{Offset, RecordRef};
use crate::resume::Lag;
use crate::sync::{current, park, park_timeout, yield_now, AtomicBool, Backoff, Ordering};
use crate::wait::Wait;
use crate::wait::{Registration, Waiter};
use crate::walk::Ready;
use crate::Error;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// A stream's position and state: what the driver needs, without the
/// stream's copies (stream.rs keeps those).
pub(crate) struct Reader<T> {
    pub(crate) log: Log<T>,
    /// Next offset to yield.
    pub(crate) pos: Offset,
    /// A high-water mark (relative) loaded earlier: offsets below it need no
    /// new load.
    mark_seen: u64,
    /// Whether this stream has read the record before `pos`, so that every
    /// offset below `pos` is known published and the next one may be judged
    /// by its own slot stamp instead of the mark (`by_stamp`).
    contiguous: bool,
    pub(crate) cancel: Arc<AtomicBool>,
    /// Why the stream ended, once it has.
    pub(crate) end: Option<Error>,
    /// What to do when `pos` was purged.
    pub(crate) lag: Lag,
    /// This stream's entry in the log's waiters, while it has one:
    /// registered before sleeping, left on every exit (`leave`).
    pub(crate) registered: Option<Registration>,
    /// With `Lag::Hold`: the hold's id and the relative offset where the
    /// segment it holds ends (hold.rs). Moved when the stream has fetched
    /// past that, released when it ends or is dropped.
    hold: Option<(u64, u64)>,
    /// `Lag::Hold` was set while a writer was purging the next offset: the
    /// next read yields `OutOfRange` and ends the stream.
    hold_failed: bool,
}

/// Rounds a task spins before it registers (each twice as long as the one
/// before: 2 + 4 + … + 64 spin hints), and none under loom.
const TASK_SPINS: u32 = if cfg!(loom) { 0 } else { 6 };

/// The `round`-th spin of a task: `2^round` spin hints.
fn spin(round: u32) {
    for _ in 0..1u32 << round {
        crate::sync::spin_loop();
    }
}

/// How a stream waits for a record that is not written yet.
pub(crate) enum How<'a, 'b> {
    /// It does not: `FutureOffset` (`try_recv`, `try_visit`).
    Now,
    /// Spins briefly, then parks the thread, until the deadline.
    Park(Option<Instant>),
    /// Busy-spins until the deadline (`Stream::busy_spin`).
    Spin(Option<Instant>),
    /// Registers the task's waker and returns `Pending`.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    Task(&'a mut Context<'b>),
}

impl<T: Clone + Send + Sync + 'static> Reader<T> {
    pub(crate) fn new(log: Log<T>, start: Offset) -> Self {
        Reader {
            log,
            pos: start,
            mark_seen: 0,
            contiguous: false,
            cancel: Arc::new(AtomicBool::new(false)),
            end: None,
            lag: Lag::End,
            registered: None,
            hold: None,
            hold_failed: false,
        }
    }

    /// Sets what the stream does when it falls behind. `Hold` holds from
    /// the stream's next offset (it fails, and the stream falls behind as
    /// with `End`, where a writer is purging that offset: hold.rs); any
    /// other lag releases a hold.
    pub(crate) fn set_lag(&mut self, lag: Lag) {
        self.lag = lag;
        if lag != Lag::Hold {
            self.release_hold();
            return;
        }
        if self.hold.is_some() || self.end.is_some() {
            return;
        }
        let Ok(rel) = self.log.rel(self.pos) else {
            return;
        };
        let ring = &self.log.inner.ring;
        let (seg, _) = ring.split(rel);
        match ring.holds.hold(seg, rel, &self.cancel) {
            Some(id) => self.hold = Some((id, ring.base(seg + 1))),
            // A writer is purging the stream's next offset: it has fallen
            // behind, and its next read ends it as a holding stream that
            // fell behind ends, rather than read on unheld.
            None => self.hold_failed = true,
        }
    }

    /// The stream has yielded (or visited) every offset below `pos`: a
    /// hold moves on once `pos` leaves the segment it holds. Records read
    /// ahead and not yet yielded stay held, so a stream resumed at
    /// `next_offset()` before this one is dropped holds from there without
    /// a gap. One comparison per record for a holding stream, one branch
    /// for any other; the holds' lock once per segment.
    #[inline]
    pub(crate) fn yielded(&mut self) {
        if self.hold.is_some() {
            if let Ok(rel) = self.log.rel(self.pos) {
                self.fetched_to(rel);
            }
        }
    }

    #[inline]
    fn fetched_to(&mut self, rel: u64) {
        if let Some((id, end)) = &mut self.hold {
            if rel >= *end {
                let ring = &self.log.inner.ring;
                let (seg, _) = ring.split(rel);
                *end = ring.base(seg + 1);
                ring.holds.move_to(*id, seg);
            }
        }
    }

    /// Runs `op` until it returns something other than `FutureOffset`,
    /// waiting between tries as `how` says. `Pending` only for
    /// `How::Task`, with the task's waker registered.
    pub(crate) fn drive<R>(
        &mut self,
        mut how: How<'_, '_>,
        mut op: impl FnMut(&mut Self) -> Result<R, Error>,
    ) -> Poll<Result<R, Error>> {
        let backoff = Backoff::new();
        let mut task_spins = 0;
        loop {
            // Nothing is consumed yet: purged records this thread collected
            // may be dropped (and panic) here (reclaim.rs).
            crate::reclaim::drain();
            match op(self) {
                Err(Error::FutureOffset) => {}
                r => return self.done(r),
            }
            let rel = match self.rel() {
                Ok(rel) => rel,
                Err(e) => return self.done(Err(e)),
            };
            let by_stamp = self.by_stamp();
            let inner = &self.log.inner;
            let mut ready = inner.poll_ready(rel, by_stamp, &self.cancel);
            if ready.is_none() {
                match &mut how {
                    How::Now => return self.done(Err(Error::FutureOffset)),
                    How::Spin(deadline) => {
                        ready = Some(inner.spin_for(rel, by_stamp, &self.cancel, *deadline))
                    }
                    How::Park(_) if !backoff.is_completed() => {
                        backoff.snooze();
                        continue;
                    }
                    How::Park(deadline) => {
                        // About to sleep: what this thread's pins postponed
                        // is dropped now rather than after the wait.
                        crate::reclaim::drain();
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            ready = Some(Wait::TimedOut);
                        }
                    }
                    // A task spins a little (well under a microsecond)
                    // before it registers: a writer that keeps publishing
                    // then hands the next record over without a lock and a
                    // wake-up for each (tokio broadcast's 1 -> 1 lead; not
                    // under loom, whose models explore the registration).
                    How::Task(_) if task_spins < TASK_SPINS => {
                        task_spins += 1;
                        spin(task_spins);
                        continue;
                    }
                    How::Task(_) => {}
                }
            }
            let ready = match ready {
                Some(w) => Some(w),
                None => {
                    let waiter = match &how {
                        How::Task(cx) => Waiter::Task(cx.waker().clone()),
                        _ => Waiter::Thread(current()),
                    };
                    self.registered = Some(inner.waiters.reregister(self.registered, waiter));
                    inner.recheck_registered(rel, by_stamp, &self.cancel)
                }
            };
            match (ready, &mut how) {
                (Some(Wait::Ready), _) => {
                    // Not going to sleep: leave no entry that would make
                    // writers take the lock.
                    self.leave();
                    backoff.reset();
                }
                (Some(Wait::TimedOut), _) => return self.done(Err(Error::Timeout)),
                // A writer is publishing it and will wake no one for it: let
                // it run (on a small machine it may need this very core),
                // then look again; a task asks to be polled again.
                (Some(Wait::Imminent), how) => {
                    self.leave();
                    yield_now();
                    if let How::Task(cx) = how {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                (Some(w), _) => {
                    let e = self.finish(w);
                    return self.done(Err(e));
                }
                (None, How::Task(_)) => return Poll::Pending,
                (None, how) => {
                    match how {
                        How::Park(Some(d)) => {
                            if let Some(t) = d.checked_duration_since(Instant::now()) {
                                park_timeout(t);
                            }
                        }
                        _ => park(),
                    }
                    self.leave();
                }
            }
        }
    }

    /// An operation's result, leaving the waiters.
    fn done<R>(&mut self, r: Result<R, Error>) -> Poll<Result<R, Error>> {
        self.leave();
        Poll::Ready(r)
    }

    /// Up to `max` ready records from the stream's next offset, lent to
    /// `sink` in order (see `Ring::walk`): the one read under the
    /// iterator's step and the visits. `sink` moves `pos` itself, for each
    /// record it is done with, so that a panic in it leaves `pos` on the
    /// record it panicked on. Returns how many the sink took, or
    /// `FutureOffset`, or `OutOfRange` if the next offset is purged (or
    /// below the start: the caller's `fell_behind` decides).
    pub(crate) fn next_run(
        &mut self,
        max: usize,
        mut sink: impl FnMut(&mut u64, RecordRef<'_, T>) -> bool,
    ) -> Result<usize, Error> {
        let rel = self.log.rel(self.pos)?;
        let by_stamp = self.by_stamp();
        if !by_stamp && rel.saturating_add(max as u64) > self.mark_seen {
            // Only the mark says that nothing before is missing, and a stale
            // one would end the run short of records already written: load it
            // afresh where the run may reach past the value last seen.
            self.mark_seen = self.log.inner.high_water();
        }
        let ready = Ready {
            mark: self.mark_seen,
            by_stamp,
        };
        let Reader { log, pos, .. } = self;
        let n = log.inner.ring.walk(rel, max, ready, |r| sink(pos, r))?;
        self.contiguous = true;
        Ok(n)
    }

    /// `pos` is purged (or below the start offset): end with `OutOfRange`,
    /// or skip to the earliest retained offset.
    #[cold]
    pub(crate) fn fell_behind(&mut self) -> Error {
        match self.lag {
            // A holding stream falls behind only if its hold failed, set on
            // an offset already being purged (hold.rs).
            Lag::End | Lag::Hold => self.end_with(Error::OutOfRange),
            Lag::Skip => {
                // The walk found `pos`'s ring place holding a later segment
                // (Acquire), whose installer raised the purge point past
                // `pos` before linking it (Release), so this is > `pos`.
                let earliest = self.log.earliest_offset();
                debug_assert!(earliest > self.pos, "{earliest} <= {}", self.pos);
                let skipped = earliest.saturating_sub(self.pos);
                self.pos = earliest;
                // Go on as a stream made at `earliest` would: this stream did
                // not read the record before it, so judge the next read by
                // the mark, loaded afresh, not by a slot's stamp.
                self.contiguous = false;
                self.mark_seen = 0;
                Error::Lagged { skipped }
            }
        }
    }

    /// What a run that took no record means for the stream: `FutureOffset`
    /// (wait), `OutOfRange` (fell behind: `Lag` decides), or an ending.
    pub(crate) fn run_failed(&mut self, e: Error) -> Error {
        match e {
            Error::FutureOffset => e,
            Error::OutOfRange => self.fell_behind(),
            e => self.end_with(e),
        }
    }

    /// `Ok` unless the stream has ended (the error that ended it) or was
    /// cancelled (which ends it now).
    #[inline]
    pub(crate) fn check_live(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.end {
            return Err(e.clone());
        }
        if self.cancel.load(Ordering::Acquire) {
            return Err(self.finish(Wait::Cancelled));
        }
        if self.hold_failed {
            return Err(self.end_with(Error::OutOfRange));
        }
        Ok(())
    }

    fn rel(&mut self) -> Result<u64, Error> {
        self.log.rel(self.pos).map_err(|e| self.end_with(e))
    }

    fn finish(&mut self, w: Wait) -> Error {
        self.end_with(match w {
            Wait::Cancelled => Error::Cancelled,
            Wait::Closed => Error::Closed,
            Wait::Ready | Wait::TimedOut | Wait::Imminent => unreachable!("not an ending"),
        })
    }

    fn end_with(&mut self, e: Error) -> Error {
        self.end = Some(e.clone());
        // An ended stream reads nothing more: it holds nothing.
        self.release_hold();
        e
    }

    /// Whether readiness is judged by slot stamps: once the stream has read
    /// the record before its position, where the mode lets stamps lead the
    /// mark (`Sequencer::stamps_lead`).
    pub(crate) fn by_stamp(&self) -> bool {
        self.contiguous && self.log.inner.seq.stamps_lead()
    }
}

impl<T> Reader<T> {
    /// Leaves the log's waiters, if registered: the one exit, for a wake,
    /// an answer, an end and a drop alike.
    pub(crate) fn leave(&mut self) {
        if let Some(id) = self.registered.take() {
            self.log.inner.waiters.deregister(id);
        }
    }

    /// Ends the stream's hold, if it has one (it ended, stopped holding,
    /// or is dropped).
    fn release_hold(&mut self) {
        if let Some((id, _)) = self.hold.take() {
            self.log.inner.ring.holds.release(id);
        }
    }
}

impl<T> Drop for Reader<T> {
    /// A stream dropped while pending (an aborted task, a dropped response
    /// body) leaves nothing with the log, and holds nothing.
    fn drop(&mut self) {
        self.leave();
        self.release_hold();
    }
}
