//! [`Stream`]: an ordered, blocking reader, and its [`Canceller`].

use crate::log::{Inner, Wait};
use crate::sync::{AtomicBool, Ordering};
use crate::{Error, Log, Offset, Record};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Follows a log in offset order from a start offset, waiting for records
/// that are not written yet. Create one with [`Log::stream`].
///
/// As an [`Iterator`], `next()` blocks: it spins briefly, then parks until a
/// writer publishes the next offset. It yields
/// - `Some(Ok(record))` for each record, in order, with no gaps;
/// - `Some(Err(Error::OutOfRange))` once if the stream fell behind retention
///   (its next offset was purged), then `None` for ever; resume from
///   [`Log::range`] if you want to skip ahead;
/// - `Some(Err(Error::Cancelled))` once after [`Canceller::cancel`], then `None`;
/// - after [`Log::close`], the records written before the close, then `None`.
///
/// A stream writes nothing shared while it reads: readers do not slow each
/// other or the writers down. It clones up to 32 ready records at a time
/// under one epoch pin (so the CPU overlaps their cache misses) and yields
/// them one by one; records cloned ahead but never yielded (the stream was
/// dropped or cancelled) are dropped with it, so a stream may clone up to
/// 31 more records than it yields over its life.
pub struct Stream<T> {
    pub(crate) log: Log<T>,
    /// Next offset to yield.
    pos: Offset,
    /// A high-water mark (relative) loaded earlier: offsets below it need no
    /// new load.
    cached_hw: u64,
    /// Whether this stream has read the record before `pos`, so that every
    /// offset below `pos` is known published and the next one may be judged
    /// by its own slot stamp (`Inner::read_run`) instead of the mark.
    contiguous: bool,
    pub(crate) cancel: Arc<AtomicBool>,
    /// Why the stream ended, once it has.
    end: Option<Error>,
    /// Records read ahead (offsets `pos..`), at most `READ_AHEAD`.
    ahead: VecDeque<Record<T>>,
}

/// How many records a stream clones ahead under one epoch pin.
const READ_AHEAD: usize = 32;

/// Cancels a [`Stream`] from any thread, waking it if it is parked.
///
/// It holds only the stream's cancel flag and a weak reference to the log's
/// waiters: a `Canceller` that outlives every handle of its log keeps no
/// record alive.
#[derive(Clone)]
pub struct Canceller {
    flag: Arc<AtomicBool>,
    wake: Weak<dyn WakeAll>,
}

/// Type-erased access to a log's waiters, so that `Canceller` is not generic.
trait WakeAll: Send + Sync {
    fn wake_all(&self);
}

impl<T: Send + Sync> WakeAll for Inner<T> {
    fn wake_all(&self) {
        self.waiters.notify_all();
    }
}

impl Canceller {
    /// Cancels the stream: its next call returns [`Error::Cancelled`], and a
    /// call blocked waiting wakes and returns it. Idempotent.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
        // The waiter registered under the lock before re-checking the flag, or
        // it will see the flag: the lock orders the two (wait.rs). If the log
        // is gone, so is every stream of it, and there is nobody to wake.
        if let Some(log) = self.wake.upgrade() {
            log.wake_all();
        }
    }

    /// Whether [`cancel`](Canceller::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canceller")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl<T> fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("position", &self.pos)
            .field("ended", &self.end)
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Stream<T> {
    pub(crate) fn new(log: Log<T>, start: Offset) -> Self {
        Stream {
            log,
            pos: start,
            cached_hw: 0,
            contiguous: false,
            ahead: VecDeque::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            end: None,
        }
    }

    /// The offset of the next record this stream will yield.
    ///
    /// On a `&mut Stream`, method syntax finds [`Iterator::position`] first
    /// (`Iterator` is implemented for `&mut I`); write `Stream::position(s)`.
    pub fn position(&self) -> Offset {
        self.pos
    }

    /// A handle that cancels this stream from another thread.
    pub fn canceller(&self) -> Canceller {
        let log: Arc<dyn WakeAll> = self.log.inner.clone();
        Canceller {
            flag: Arc::clone(&self.cancel),
            wake: Arc::downgrade(&log),
        }
    }

    /// The next record if it is already written, without waiting.
    ///
    /// # Errors
    /// [`Error::FutureOffset`] when nothing new is written (the stream stays
    /// usable); [`Error::Closed`] when the log is closed and drained;
    /// [`Error::OutOfRange`] or [`Error::Cancelled`] as for `next()`. After
    /// the stream ended, every call returns the error that ended it.
    pub fn try_next(&mut self) -> Result<Record<T>, Error> {
        crate::reclaim::drain();
        match self.step() {
            Err(Error::FutureOffset) => {
                let rel = self.rel()?;
                match self
                    .log
                    .inner
                    .poll_ready(rel, self.contiguous, Some(&self.cancel))
                {
                    Some(Wait::Ready) => self.try_next(),
                    Some(w) => Err(self.finish(w)),
                    None => Err(Error::FutureOffset),
                }
            }
            r => r,
        }
    }

    /// The next record, waiting at most `d` for it.
    ///
    /// # Errors
    /// [`Error::Timeout`] if none came in time (the stream stays usable);
    /// otherwise as [`try_next`](Stream::try_next).
    pub fn next_timeout(&mut self, d: Duration) -> Result<Record<T>, Error> {
        let deadline = Instant::now().checked_add(d);
        self.next_until(deadline)
    }

    /// Waits for the next record until `deadline` (for ever if `None`).
    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Record<T>, Error> {
        loop {
            // Nothing is consumed yet: purged records this thread collected
            // may be dropped (and panic) here (reclaim.rs).
            crate::reclaim::drain();
            match self.step() {
                Err(Error::FutureOffset) => {}
                r => return r,
            }
            let rel = self.rel()?;
            match self
                .log
                .inner
                .wait_for(rel, self.contiguous, Some(&self.cancel), deadline)
            {
                Wait::Ready => continue,
                Wait::TimedOut => return Err(Error::Timeout),
                w => return Err(self.finish(w)),
            }
        }
    }

    /// One attempt: the next record, `FutureOffset`, or the ending error.
    #[inline]
    pub(crate) fn step(&mut self) -> Result<Record<T>, Error> {
        if let Some(e) = &self.end {
            return Err(e.clone());
        }
        if self.cancel.load(Ordering::Acquire) {
            return Err(self.finish(Wait::Cancelled));
        }
        if self.ahead.is_empty() {
            let rel = self.rel()?;
            let inner = &self.log.inner;
            if !self.contiguous && rel >= self.cached_hw {
                // First read: only the mark says that nothing before is missing.
                self.cached_hw = inner.high_water();
            }
            // Once contiguous, judge by the slots' stamps, not by the writers'
            // mark, whose cache line a caught-up reader would otherwise pull
            // away from the writers on every record.
            match inner.read_run(
                rel,
                self.cached_hw,
                self.contiguous,
                READ_AHEAD,
                &mut self.ahead,
            ) {
                Ok(_) => self.contiguous = true,
                Err(Error::FutureOffset) => return Err(Error::FutureOffset),
                Err(e) => return Err(self.end_with(e)),
            }
        }
        let r = self
            .ahead
            .pop_front()
            .expect("read_run returned at least one record");
        self.pos += 1;
        Ok(r)
    }

    pub(crate) fn rel(&mut self) -> Result<u64, Error> {
        self.log.rel(self.pos).map_err(|e| self.end_with(e))
    }

    pub(crate) fn finish(&mut self, w: Wait) -> Error {
        self.end_with(match w {
            Wait::Cancelled => Error::Cancelled,
            Wait::Closed => Error::Closed,
            Wait::Ready | Wait::TimedOut => unreachable!("not an ending"),
        })
    }

    fn end_with(&mut self, e: Error) -> Error {
        self.end = Some(e.clone());
        e
    }

    /// Whether readiness is judged by slot stamps (see `contiguous`).
    #[cfg(feature = "async")]
    pub(crate) fn by_stamp(&self) -> bool {
        self.contiguous
    }

    /// Whether the stream has ended (and the error that ended it).
    pub fn ended(&self) -> Option<&Error> {
        self.end.as_ref()
    }
}

impl<T: Clone + Send + Sync + 'static> Iterator for Stream<T> {
    type Item = Result<Record<T>, Error>;

    /// Blocks until the next record (see the type's docs).
    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() {
            return None;
        }
        match self.next_until(None) {
            Err(Error::Closed) => None,
            r => Some(r),
        }
    }
}
