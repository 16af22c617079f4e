//! [`Stream`]: an ordered, blocking reader, and its [`Canceller`].

use crate::driver::{How, Reader};
use crate::log::Inner;
use crate::sync::{AtomicBool, Ordering};
use crate::{Error, Lag, Log, Offset, Record, RecordRef, StartAt};
use std::collections::VecDeque;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Follows a log in offset order from a start offset, waiting for records
/// that are not written yet. Create one with [`Log::stream`] or
/// [`Log::stream_from`].
///
/// **It blocks the thread.** As an [`Iterator`], `next()` spins briefly, then
/// parks the thread until a writer publishes the next offset;
/// [`recv`](Stream::recv) waits the same way and returns the ending as an
/// error (`Err(Error::Closed)` where `next()` returns `None`). Inside async
/// code use [`Log::stream_async`] (feature `async`), which suspends the task
/// instead, or [`try_recv`](Stream::try_recv), which never waits.
///
/// It yields
/// - `Some(Ok(record))` for each record, in order, with no gaps;
/// - `Some(Err(Error::OutOfRange))` once if the stream fell behind retention
///   (its next offset was purged), then `None` for ever; or, with
///   [`on_lag(Lag::Skip)`](Stream::on_lag), `Some(Err(Error::Lagged {
///   skipped }))` and then the records from the earliest retained offset on;
/// - `Some(Err(Error::Cancelled))` once after [`Canceller::cancel`], then `None`;
/// - after [`Log::close`], the records written before the close, then `None`.
///
/// Once it returned `None` it returns `None` for ever ([`FusedIterator`]).
///
/// # Read-ahead
/// A stream writes nothing shared while it reads: readers do not slow each
/// other or the writers down. It clones up to 32 ready records at a time
/// under one epoch pin per segment (so the CPU overlaps their cache misses) and yields
/// them one by one. So **up to 31 records fetched before a purge may still
/// be yielded after it**, as a Go channel's buffer or a Kafka consumer's
/// fetched batch would: they are intact copies, and `OutOfRange` (or
/// `Lagged`) comes at the first offset the stream had not fetched. Records
/// cloned ahead but never yielded (the stream was dropped or cancelled) are
/// dropped with it, so a stream may clone up to 31 more records than it
/// yields over its life.
///
/// ```
/// use memlog::{Error, Log};
///
/// let log = Log::new();
/// log.write_batch(["a", "b"])?;
/// log.close();
/// let mut stream = log.stream(0);
/// assert_eq!(stream.next().unwrap()?.data, "a");
/// assert_eq!(stream.next_offset(), 1);
/// assert_eq!(stream.next().unwrap()?.data, "b");
/// assert!(stream.next().is_none()); // closed and drained
/// assert_eq!(stream.ended(), Some(&Error::Closed));
/// # Ok::<(), Error>(())
/// ```
#[must_use = "a stream does nothing unless it is iterated"]
pub struct Stream<T> {
    /// The stream's position and state, and its driver (driver.rs).
    pub(crate) r: Reader<T>,
    /// Whether a blocking wait busy-spins instead of parking.
    busy_spin: bool,
    /// Records read ahead (offsets `pos..`), at most `READ_AHEAD`.
    ahead: VecDeque<Record<T>>,
}

/// How many records a stream clones ahead at once (one epoch pin per segment).
const READ_AHEAD: usize = 32;

/// Cancels a [`Stream`] (or an `AsyncStream`) from any thread, waking it if
/// it is waiting. Get one with [`Stream::canceller`]; clones cancel the same
/// stream.
///
/// It holds only the stream's cancel flag and a weak reference to the log's
/// waiters: a `Canceller` that outlives every handle of its log keeps no
/// record alive.
///
/// ```
/// use memlog::{Error, Log};
///
/// let log: Log<u32> = Log::new();
/// let mut stream = log.stream(0);
/// let cancel = stream.canceller();
/// // Nothing is written: the reader parks until it is cancelled.
/// let reader = std::thread::spawn(move || stream.next());
/// cancel.cancel();
/// assert_eq!(reader.join().unwrap(), Some(Err(Error::Cancelled)));
/// assert!(cancel.is_cancelled());
/// ```
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
        // A cancelled stream holds nothing (hold.rs): writers waiting for
        // it go on, whether or not it reads again.
        self.ring.holds.cancelled();
        self.waiters.notify_all();
    }
}

impl Canceller {
    /// Cancels the stream: its next call returns [`Error::Cancelled`], and a
    /// call blocked waiting wakes and returns it. A hold it had
    /// ([`Lag::Hold`]) ends at once. Records it read ahead are
    /// dropped, not yielded. Idempotent.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::new();
    /// log.write("x")?;
    /// let mut stream = log.stream(0);
    /// stream.canceller().cancel();
    /// assert_eq!(stream.try_recv(), Err(Error::Cancelled));
    /// assert_eq!(stream.next(), None);
    /// # Ok::<(), Error>(())
    /// ```
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
    ///
    /// ```
    /// let log = memlog::Log::<u8>::new();
    /// let cancel = log.stream(0).canceller();
    /// assert!(!cancel.is_cancelled());
    /// cancel.cancel();
    /// assert!(cancel.is_cancelled());
    /// ```
    #[must_use]
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
            .field("next_offset", &self.r.pos)
            .field("on_lag", &self.r.lag)
            .field("ended", &self.r.end)
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Stream<T> {
    pub(crate) fn new(log: Log<T>, start: Offset) -> Self {
        Stream {
            r: Reader::new(log, start),
            busy_spin: false,
            ahead: VecDeque::new(),
        }
    }

    /// Makes this stream's blocking waits (`next`, `recv_timeout`, `visit`)
    /// busy-spin on its next record instead of spinning briefly, then
    /// parking: the disruptor's busy-spin wait strategy, for a consumer that
    /// has a core of its own. It sees a record within a few hundred
    /// nanoseconds of its publish, and writers never take the waiter lock
    /// on its behalf; but it burns its core while it waits, and on a
    /// machine with fewer free cores than spinning streams it slows the
    /// writers it waits for. Close, cancel and timeouts still end a wait.
    /// (An [`AsyncStream`](crate::AsyncStream) never blocks; this does not
    /// apply to it.)
    ///
    /// ```
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// let stream = log.stream(0).busy_spin();
    /// let reader = std::thread::spawn(move || stream.map(|r| r.unwrap().data).sum::<u64>());
    /// for i in 0..1000u64 {
    ///     writer.write(i)?;
    /// }
    /// drop(writer); // closes the log: the spinning stream ends
    /// assert_eq!(reader.join().unwrap(), 499_500);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "busy_spin returns the stream with the wait strategy set"]
    pub fn busy_spin(mut self) -> Self {
        self.busy_spin = true;
        self
    }

    /// What the stream does when its next offset was purged before it read
    /// it: [`Lag::End`] (the default) yields [`Error::OutOfRange`] and ends;
    /// [`Lag::Skip`] yields [`Error::Lagged`] with the number of offsets
    /// skipped and goes on from the earliest retained offset.
    ///
    /// With `Skip`, every offset from the stream's start on is accounted
    /// for exactly once, in order: yielded as a record, or counted in a
    /// `Lagged`.
    ///
    /// ```
    /// use memlog::{Error, Lag, Log};
    ///
    /// let log = Log::builder().segment_size(10).history_segments(1).build()?;
    /// let mut stream = log.stream(0).on_lag(Lag::Skip);
    /// log.write_batch(0..10u64)?;
    /// log.write_batch(10..20u64)?;
    /// log.write(20)?; // purges 0..10
    /// log.close();
    /// let mut next = 0;
    /// for item in stream {
    ///     match item {
    ///         Ok(r) => assert_eq!(r.offset, next),
    ///         Err(Error::Lagged { skipped }) => {
    ///             assert_eq!(skipped, 10);
    ///             next += skipped;
    ///             continue;
    ///         }
    ///         Err(e) => return Err(e),
    ///     }
    ///     next += 1;
    /// }
    /// assert_eq!(next, log.next_offset());
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use = "on_lag returns the stream with the policy set"]
    pub fn on_lag(mut self, lag: Lag) -> Self {
        self.set_on_lag(lag);
        self
    }

    pub(crate) fn set_on_lag(&mut self, lag: Lag) {
        self.r.set_lag(lag);
    }

    /// The offset of the next record this stream will yield (after a
    /// `Lagged`, the earliest retained offset it moved to): the checkpoint
    /// to save for resuming later with [`Log::stream`].
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write_batch(0..5u8)?;
    /// let mut stream = log.stream(2);
    /// assert_eq!(stream.next_offset(), 2);
    /// stream.next();
    /// assert_eq!(stream.next_offset(), 3);
    /// // On a `&mut Stream` too, with `Iterator` (implemented for `&mut I`)
    /// // in scope: the name is not one of `Iterator`'s.
    /// fn checkpoint(s: &mut memlog::Stream<u8>) -> u64 {
    ///     s.next_offset()
    /// }
    /// assert_eq!(checkpoint(&mut stream), 3);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn next_offset(&self) -> Offset {
        self.r.pos
    }

    /// A handle that cancels this stream from another thread.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::<u8>::new();
    /// let mut stream = log.stream(0);
    /// let cancel = stream.canceller();
    /// std::thread::spawn(move || cancel.cancel());
    /// // Blocks until the other thread cancels it.
    /// assert_eq!(stream.next(), Some(Err(Error::Cancelled)));
    /// ```
    #[must_use = "a canceller does nothing unless `cancel` is called"]
    pub fn canceller(&self) -> Canceller {
        let log: Arc<dyn WakeAll> = self.r.log.inner.clone();
        Canceller {
            flag: Arc::clone(&self.r.cancel),
            wake: Arc::downgrade(&log),
        }
    }

    /// The next record if it is already written, without waiting: for a
    /// reader that polls, or that must not block.
    ///
    /// # Errors
    /// [`Error::FutureOffset`] when nothing new is written (the stream stays
    /// usable); [`Error::Lagged`] as for `next()` (the stream goes on);
    /// [`Error::Closed`] when the log is closed and drained;
    /// [`Error::OutOfRange`] or [`Error::Cancelled`] as for `next()`. After
    /// the stream ended, every call returns the error that ended it.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream(0);
    /// assert_eq!(stream.try_recv(), Err(Error::FutureOffset));
    /// log.write("a")?;
    /// assert_eq!(stream.try_recv()?.data, "a");
    /// log.close();
    /// assert_eq!(stream.try_recv(), Err(Error::Closed));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<Record<T>, Error> {
        self.blocking(How::Now)
    }

    /// The next record, waiting for it as long as it takes (blocking the
    /// thread, as `next()` does): crossbeam-channel's `recv`, with the
    /// endings as values instead of `None`.
    ///
    /// # Errors
    /// [`Error::Closed`] when the log is closed and the stream has yielded
    /// every record written before the close; [`Error::Lagged`] (the stream
    /// goes on), [`Error::OutOfRange`] or [`Error::Cancelled`] as for
    /// `next()`. After the stream ended, every call returns the error that
    /// ended it at once. It never returns `FutureOffset` or `Timeout`.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream(0);
    /// let writer = log.clone();
    /// std::thread::spawn(move || {
    ///     writer.write_batch(["a", "b"]).unwrap();
    ///     writer.close();
    /// });
    /// assert_eq!(stream.recv()?.data, "a"); // waits for the writer
    /// assert_eq!(stream.recv()?.data, "b");
    /// assert_eq!(stream.recv(), Err(Error::Closed));
    /// assert_eq!(stream.recv(), Err(Error::Closed));
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// A consumer loop that tells a clean end from a failure:
    /// ```
    /// use memlog::{Error, Log};
    ///
    /// fn consume(log: &Log<u32>) -> Result<u64, Error> {
    ///     let mut stream = log.stream(0);
    ///     let mut sum = 0;
    ///     loop {
    ///         match stream.recv() {
    ///             Ok(record) => sum += u64::from(record.data),
    ///             Err(Error::Closed) => return Ok(sum), // closed and drained
    ///             Err(e) => return Err(e), // fell behind, or cancelled
    ///         }
    ///     }
    /// }
    ///
    /// let log = Log::new();
    /// log.write_batch(1..=3)?;
    /// log.close();
    /// assert_eq!(consume(&log)?, 6);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv(&mut self) -> Result<Record<T>, Error> {
        self.next_until(None)
    }

    /// The next record, waiting at most `d` for it (blocking the thread).
    ///
    /// # Errors
    /// [`Error::Timeout`] if none came in time (the stream stays usable);
    /// otherwise as [`try_recv`](Stream::try_recv).
    ///
    /// ```
    /// use memlog::Error;
    /// use std::time::Duration;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream(0);
    /// assert_eq!(stream.recv_timeout(Duration::from_millis(1)), Err(Error::Timeout));
    /// log.write(7u32)?;
    /// assert_eq!(stream.recv_timeout(Duration::from_secs(1))?.data, 7);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn recv_timeout(&mut self, d: Duration) -> Result<Record<T>, Error> {
        let deadline = Instant::now().checked_add(d);
        self.next_until(deadline)
    }

    /// Waits for the next record until `deadline` (for ever if `None`).
    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Record<T>, Error> {
        self.blocking(self.how_to_wait(deadline))
    }

    /// How a blocking call waits until `deadline`: parks, or busy-spins.
    fn how_to_wait(&self, deadline: Option<Instant>) -> How<'static, 'static> {
        if self.busy_spin {
            How::Spin(deadline)
        } else {
            How::Park(deadline)
        }
    }

    /// The next record, waiting as `how` says; `Pending` only for a task.
    pub(crate) fn poll_step(&mut self, how: How<'_, '_>) -> Poll<Result<Record<T>, Error>> {
        let ahead = &mut self.ahead;
        self.r.drive(how, |r| step(r, ahead))
    }

    /// A visit of up to `max` records, waiting as `how` says; `Pending` only
    /// for a task.
    pub(crate) fn poll_visit_with(
        &mut self,
        how: How<'_, '_>,
        max: usize,
        f: &mut impl FnMut(RecordRef<'_, T>),
    ) -> Poll<Result<usize, Error>> {
        let ahead = &mut self.ahead;
        self.r.drive(how, |r| visit_step(r, ahead, max, f))
    }

    /// `poll_step` for a way of waiting that never returns `Pending`.
    fn blocking(&mut self, how: How<'_, '_>) -> Result<Record<T>, Error> {
        ready(self.poll_step(how))
    }

    /// Whether the stream has ended, and the error that ended it:
    /// [`Error::Closed`] (closed and drained), [`Error::OutOfRange`] or
    /// [`Error::Cancelled`]. An ended stream yields nothing more.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::<u8>::new();
    /// let mut stream = log.stream(0);
    /// assert_eq!(stream.ended(), None);
    /// log.close();
    /// assert_eq!(stream.next(), None);
    /// assert_eq!(stream.ended(), Some(&Error::Closed));
    /// ```
    #[must_use]
    pub fn ended(&self) -> Option<&Error> {
        self.r.end.as_ref()
    }
}

/// Zero-copy reading: the records the iterator would yield, lent by
/// reference to a closure instead of cloned.
impl<T: Clone + Send + Sync + 'static> Stream<T> {
    /// Waits (spin, then park, as `next()` does) until a record is ready,
    /// then calls `f` with every ready record, up to `max`, by reference and
    /// in order, and returns how many it visited (at least 1, unless `max`
    /// is 0: then `Ok(0)` at once, before anything else is looked at, also
    /// on a stream that has ended or was cancelled). The zero-copy counterpart of the
    /// iterator: no clone of `T`, no read-ahead copy, one epoch pin per
    /// segment visited.
    ///
    /// The records visited are exactly those the iterator would yield, in
    /// the same order, with no gap: a record is ready when the iterator
    /// would read it, and the visit stops where the iterator's read would
    /// (at the first record not ready, or at one purged meanwhile). The
    /// two can be mixed on one stream: records the iterator has read ahead
    /// are visited first (from its copies), then the log's. Cancellation is
    /// checked at the start of each call.
    ///
    /// # The closure
    /// - It runs under an epoch pin: a slow closure **delays the reclamation
    ///   of purged segments (memory) of every log in the process, never
    ///   writers** (see
    ///   [`Pinned`](crate::Pinned#what-a-pin-costs-and-who-pays)). It
    ///   should not block.
    /// - It may call into the log (write to it, read it).
    /// - If it panics, the panic reaches the caller and the stream stays
    ///   usable: [`next_offset`](Stream::next_offset) counts only the
    ///   records whose visit returned, so **the record it panicked on is
    ///   visited (or yielded) again** by the next call.
    ///
    /// # Errors
    /// Where the iterator would yield an error instead of a record:
    /// [`Error::Lagged`] (the stream goes on), [`Error::OutOfRange`],
    /// [`Error::Cancelled`], and [`Error::Closed`] where the iterator ends
    /// (closed and drained). A call that visited records before reaching
    /// one of these returns their count; the next call returns the error.
    /// After the stream ended, every call returns the error that ended it.
    ///
    /// ```
    /// use memlog::{Error, Log};
    ///
    /// let log: Log<String> = Log::new();
    /// let mut stream = log.stream(0);
    /// let writer = log.clone();
    /// std::thread::spawn(move || {
    ///     for i in 0..100 {
    ///         writer.write(format!("event {i}")).unwrap();
    ///     }
    ///     writer.close();
    /// });
    /// let mut total_len = 0;
    /// loop {
    ///     match stream.visit(64, |r| total_len += r.data.len()) {
    ///         Ok(n) => assert!((1..=64).contains(&n)),
    ///         Err(Error::Closed) => break, // drained
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// assert_eq!(stream.next_offset(), 100);
    /// assert_eq!(total_len, (0..100).map(|i| format!("event {i}").len()).sum());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn visit(
        &mut self,
        max: usize,
        mut f: impl FnMut(RecordRef<'_, T>),
    ) -> Result<usize, Error> {
        ready(self.poll_visit_with(self.how_to_wait(None), max, &mut f))
    }

    /// As [`visit`](Stream::visit), waiting at most `d` for a record.
    ///
    /// # Errors
    /// [`Error::Timeout`] if none came in time (the stream stays usable);
    /// otherwise as [`visit`](Stream::visit).
    ///
    /// ```
    /// use memlog::Error;
    /// use std::time::Duration;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream(0);
    /// let mut seen = Vec::new();
    /// let wait = Duration::from_millis(1);
    /// assert_eq!(stream.visit_timeout(10, wait, |r| seen.push(*r.data)), Err(Error::Timeout));
    /// log.write_batch([1, 2])?;
    /// assert_eq!(stream.visit_timeout(10, wait, |r| seen.push(*r.data)), Ok(2));
    /// assert_eq!(seen, [1, 2]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn visit_timeout(
        &mut self,
        max: usize,
        d: Duration,
        mut f: impl FnMut(RecordRef<'_, T>),
    ) -> Result<usize, Error> {
        let deadline = Instant::now().checked_add(d);
        ready(self.poll_visit_with(self.how_to_wait(deadline), max, &mut f))
    }

    /// As [`visit`](Stream::visit), without waiting: visits the records
    /// already written, up to `max`.
    ///
    /// # Errors
    /// [`Error::FutureOffset`] when no record is ready (the stream stays
    /// usable); otherwise as [`visit`](Stream::visit).
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream(0);
    /// let mut sum = 0;
    /// assert_eq!(stream.try_visit(10, |r| sum += r.data), Err(Error::FutureOffset));
    /// log.write_batch([1, 2, 3])?;
    /// assert_eq!(stream.try_visit(2, |r| sum += r.data), Ok(2)); // at most `max`
    /// assert_eq!(stream.try_visit(10, |r| sum += r.data), Ok(1));
    /// assert_eq!(sum, 6);
    /// log.close();
    /// assert_eq!(stream.try_visit(10, |r| sum += r.data), Err(Error::Closed));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_visit(
        &mut self,
        max: usize,
        mut f: impl FnMut(RecordRef<'_, T>),
    ) -> Result<usize, Error> {
        ready(self.poll_visit_with(How::Now, max, &mut f))
    }
}

impl<T: Clone + Send + Sync + 'static> Iterator for Stream<T> {
    type Item = Result<Record<T>, Error>;

    /// Blocks until the next record (see the type's docs).
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.end.is_some() {
            return None;
        }
        match self.next_until(None) {
            Err(Error::Closed) => None,
            r => Some(r),
        }
    }
}

/// An ended stream stays ended: `next()` returns `None` for ever after its
/// first `None`.
impl<T: Clone + Send + Sync + 'static> FusedIterator for Stream<T> {}

/// One attempt of a visit, as `step` is one of the iterator: visits the
/// records read ahead, then those ready in the log (judged as `step`
/// judges them), up to `max` (at least 1, or 0 for a `max` of 0 at once);
/// `FutureOffset`, `Lagged` or the ending error if it visited none. `pos`
/// moves once per visit that returned.
fn visit_step<T: Clone + Send + Sync + 'static>(
    r: &mut Reader<T>,
    ahead: &mut VecDeque<Record<T>>,
    max: usize,
    f: &mut impl FnMut(RecordRef<'_, T>),
) -> Result<usize, Error> {
    if max == 0 {
        return Ok(0);
    }
    r.check_live()?;
    let mut n = 0;
    while n < max {
        let Some(rec) = ahead.front() else { break };
        f(RecordRef {
            offset: rec.offset,
            created: rec.created,
            data: &rec.data,
        });
        ahead.pop_front();
        r.pos += 1;
        n += 1;
    }
    if n == max {
        r.yielded();
        return Ok(n);
    }
    let visited = r.next_run(max - n, |pos, rec| {
        f(rec);
        *pos += 1;
        true
    });
    r.yielded();
    match visited {
        Ok(k) => Ok(n + k),
        // The ending (or the wait) is the next call's.
        Err(_) if n > 0 => Ok(n),
        Err(e) => Err(r.run_failed(e)),
    }
}

/// One attempt: the next record, `FutureOffset`, `Lagged`, or the ending
/// error. Clones up to `READ_AHEAD` ready records at a time into `ahead`.
#[inline]
fn step<T: Clone + Send + Sync + 'static>(
    r: &mut Reader<T>,
    ahead: &mut VecDeque<Record<T>>,
) -> Result<Record<T>, Error> {
    r.check_live()?;
    if ahead.is_empty() {
        let first = r.pos;
        // A clone made ahead must not panic on behalf of an earlier record:
        // a panicking clone after the first ends the run there, and the read
        // that asks for that record clones it (and panics) itself.
        let run = r.next_run(READ_AHEAD, |_, rec| {
            let record = if rec.offset == first {
                rec.to_owned()
            } else {
                let clone = std::panic::AssertUnwindSafe(|| rec.to_owned());
                match std::panic::catch_unwind(clone) {
                    Ok(record) => record,
                    Err(_) => return false,
                }
            };
            ahead.push_back(record);
            true
        });
        if let Err(e) = run {
            return Err(r.run_failed(e));
        }
    }
    let rec = ahead.pop_front().expect("a run took at least one record");
    r.pos += 1;
    r.yielded();
    Ok(rec)
}

/// The result of a wait that never returns `Pending` (a thread's).
fn ready<R>(p: Poll<R>) -> R {
    match p {
        Poll::Ready(r) => r,
        Poll::Pending => unreachable!("only a task's wait is pending"),
    }
}

/// Following a log with a blocking stream.
impl<T: Clone + Send + Sync + 'static> Log<T> {
    /// A blocking stream of the records from `start` on, in order; see
    /// [`Stream`]. It owns a handle to the log, so it can move to another
    /// thread. It blocks the thread while it waits: in async code use
    /// [`stream_async`](Log::stream_async).
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream(0);
    /// let writer = log.clone();
    /// std::thread::spawn(move || {
    ///     writer.write_batch(["a", "b"]).unwrap();
    ///     writer.close();
    /// });
    /// let got: Vec<_> = stream.map(|r| r.unwrap().data).collect();
    /// assert_eq!(got, ["a", "b"]);
    /// ```
    #[must_use = "a stream does nothing unless it is iterated"]
    pub fn stream(&self, start: Offset) -> Stream<T> {
        Stream::new(self.clone(), start)
    }

    /// A blocking stream from the earliest retained offset, the next offset
    /// to be written, or a given offset (Kafka's `auto.offset.reset`); see
    /// [`StartAt`]. The position is fixed here; combine with
    /// [`Stream::on_lag`] to go on if it is purged before it is read.
    ///
    /// ```
    /// use memlog::{Lag, Log, StartAt};
    ///
    /// let log = Log::builder().segment_size(4).history_segments(1).build()?;
    /// log.write_batch(0..8u32)?;
    /// log.write_batch(8..10u32)?; // 0..4 are purged
    ///
    /// // Replay what is retained, then follow; skip ahead if it falls behind.
    /// let replay = log.stream_from(StartAt::Earliest).on_lag(Lag::Skip);
    /// // Only what is written from now on.
    /// let mut live = log.stream_from(StartAt::Latest);
    /// log.write(10)?;
    /// log.close();
    ///
    /// let got: Vec<u32> = replay.map(|r| r.unwrap().data).collect();
    /// assert_eq!(got, (4..=10).collect::<Vec<_>>());
    /// assert_eq!(live.next().unwrap()?.data, 10);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "a stream does nothing unless it is iterated"]
    pub fn stream_from(&self, at: StartAt) -> Stream<T> {
        self.stream(self.resolve(at))
    }
}
