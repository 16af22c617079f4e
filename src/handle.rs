//! [`Log`], the public handle, and [`Record`].

#[cfg(feature = "async")]
use crate::async_stream::AsyncStream;
use crate::builder::{Builder, Config};
use crate::log::{entry, Inner};
use crate::slot::Entry;
use crate::stream::Stream;
use crate::{Error, StartAt};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

/// A position in a log. Offsets are dense: each write takes the next one.
///
/// Its text form is the decimal number (serde: an unsigned integer). Note for
/// JSON consumers in JavaScript: offsets above 2^53 lose precision there.
///
/// ```
/// use memlog::{Log, Offset};
///
/// let log = Log::builder().start_offset(100).build()?;
/// let offset: Offset = log.write("x")?;
/// assert_eq!(offset, 100);
/// # Ok::<(), memlog::Error>(())
/// ```
pub type Offset = u64;

/// A record read from a log.
///
/// With the `serde` feature it serializes as
/// `{"offset":7,"created":"2024-05-01T12:00:00.123456789Z","data":…}`:
/// `created` in RFC 3339, UTC, with nanoseconds, so that it round-trips
/// exactly. Times before 1970 or after 9999 can not be written in that form
/// and fail to serialize.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let log = memlog::Log::new();
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// log.write_timed(t, "hello")?;
/// let r = log.read(0)?;
/// assert_eq!(r, memlog::Record { offset: 0, created: t, data: "hello" });
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Record<T> {
    /// Where the record sits in the log.
    pub offset: Offset,
    /// The log's clock, read by the writer just before it claimed the offset.
    /// With concurrent writers, a later offset can carry an earlier time.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_impl::rfc3339"))]
    pub created: SystemTime,
    /// The payload.
    pub data: T,
}

impl<T> Record<T> {
    /// The same record with its payload transformed, for example into a form
    /// to serialize.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write(b"hi".to_vec())?;
    /// let r = log.read(0)?.map(|d| String::from_utf8_lossy(&d).into_owned());
    /// assert_eq!(r.data, "hi");
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "map returns a new record"]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Record<U> {
        Record {
            offset: self.offset,
            created: self.created,
            data: f(self.data),
        }
    }
}

/// A lock-free, in-memory, append-only log. Cloning gives another handle to
/// the same log; it is `Send + Sync` and meant to be shared.
///
/// Writers append with [`write`](Log::write) or [`write_batch`](Log::write_batch)
/// and get dense offsets. Readers [`read`](Log::read) any retained offset,
/// [`read_batch`](Log::read_batch) a run, or follow the log with a
/// [`stream`](Log::stream). The log keeps the active segment plus
/// `history_segments` sealed ones; older records are purged and reading them
/// gives [`Error::OutOfRange`].
///
/// ```
/// use memlog::{Error, Log};
///
/// let log = Log::new();
/// let first = log.write("hello")?;
/// let second = log.write("world")?;
/// assert_eq!((first, second), (0, 1));
/// assert_eq!(log.read(1)?.data, "world");
/// assert_eq!(log.read(2), Err(Error::FutureOffset));
/// assert_eq!(log.range(), Some((0, 1)));
/// # Ok::<(), Error>(())
/// ```
pub struct Log<T> {
    pub(crate) inner: Arc<Inner<T>>,
}

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Log {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Send + Sync + 'static> fmt::Debug for Log<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cfg = &self.inner.cfg;
        f.debug_struct("Log")
            .field("range", &self.range())
            .field("closed", &self.is_closed())
            .field("start_offset", &cfg.start)
            .field("segment_size", &cfg.segment_size)
            .field("history_segments", &cfg.history)
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Log<T> {
    /// A log with the defaults: start offset 0, segments of 1024 records, one
    /// history segment, the coarse wall clock ([`CoarseClock`](crate::clock::CoarseClock)).
    ///
    /// ```
    /// let log: memlog::Log<String> = memlog::Log::new();
    /// assert_eq!(log.write("a".to_string())?, 0);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn new() -> Log<T> {
        Builder::default()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder to configure a log; see [`Builder`].
    ///
    /// ```
    /// let log = memlog::Log::builder().segment_size(64).build()?;
    /// log.write(1u8)?;
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "a builder does nothing until `build` is called"]
    pub fn builder() -> Builder<T> {
        Builder::default()
    }

    pub(crate) fn from_config(cfg: Config<T>) -> Log<T> {
        Log {
            inner: Arc::new(Inner::new(cfg)),
        }
    }

    pub(crate) fn check_size(&self, data: &T) -> Result<(), Error> {
        if let Some((max, size_of)) = self.inner.cfg.max_record {
            let len = size_of(data);
            if len > max {
                return Err(Error::RecordTooLarge { len, max });
            }
        }
        Ok(())
    }

    /// Appends a record and returns its offset. Lock-free: one atomic claim,
    /// the slot store, one release store and one compare-exchange.
    ///
    /// # Errors
    /// [`Error::RecordTooLarge`] if `max_record_bytes` is set and exceeded;
    /// [`Error::Closed`] after [`close`](Log::close). Either way nothing is
    /// written.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// assert_eq!(log.write("first")?, 0);
    /// assert_eq!(log.write("second")?, 1);
    /// log.close();
    /// assert_eq!(log.write("late"), Err(memlog::Error::Closed));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[inline]
    pub fn write(&self, data: T) -> Result<Offset, Error> {
        let created = self.inner.cfg.clock.now();
        self.write_timed(created, data)
    }

    /// Appends a record whose `created` time is given instead of read from
    /// the log's clock, and returns its offset: for a replicator that copies
    /// records from another log and keeps their original times (as
    /// `memlog-jetstream`'s replica does). `created` need not be monotonic.
    ///
    /// # Errors
    /// As [`write`](Log::write).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let log = memlog::Log::new();
    /// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let offset = log.write_timed(t, "copied")?;
    /// assert_eq!(log.read(offset)?.created, t);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[inline]
    pub fn write_timed(&self, created: SystemTime, data: T) -> Result<Offset, Error> {
        // Before anything else: records this thread's earlier calls purged
        // are dropped here (user code, never inside the claim window).
        crate::reclaim::drain();
        self.check_writable()?;
        self.check_size(&data)?;
        let rel = self.inner.claim_one()?;
        self.inner.publish_one(rel, entry(created, data));
        Ok(self.inner.cfg.start + rel)
    }

    /// Appends all records of `batch` at consecutive offsets, with one claim,
    /// and returns their range. All records get the same `created` time.
    ///
    /// The iterator is drained before anything is claimed, so a panic in it
    /// writes nothing. It is pulled at most `capacity + 1` times (capacity:
    /// `segment_size * (history_segments + 1)`), so an endless or huge
    /// iterator is refused without being buffered; on a closed log, not at
    /// all (a batch racing `close` may still fail `Closed` once pulled).
    ///
    /// # Errors
    /// As [`write`](Log::write), for any record of the batch (then none is
    /// written), and [`Error::BatchTooLarge`] for a batch longer than the log
    /// retains.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::builder().segment_size(4).build()?;
    /// log.write(0u64)?;
    /// assert_eq!(log.write_batch([1u64, 2, 3])?, 1..4);
    /// // An endless iterator is refused after 9 pulls (the log retains 8).
    /// assert!(matches!(log.write_batch(0u64..), Err(Error::BatchTooLarge { max: 8, .. })));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_batch<I: IntoIterator<Item = T>>(&self, batch: I) -> Result<Range<Offset>, Error> {
        self.check_writable()?;
        let items = self.pull_batch(batch, |d| d)?;
        let created = self.inner.cfg.clock.now();
        self.append_pulled(items, false, |d| entry(created, d))
    }

    /// Appends a batch whose records carry their own `created` times, with one
    /// claim, as [`write_batch`](Log::write_batch) does: for a replicator that
    /// copies runs of records and keeps their original times.
    ///
    /// # Errors
    /// As [`write_batch`](Log::write_batch).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let log = memlog::Log::new();
    /// let t = |s| UNIX_EPOCH + Duration::from_secs(s);
    /// assert_eq!(log.write_batch_timed([(t(20), "b"), (t(10), "a")])?, 0..2);
    /// assert_eq!(log.read(1)?.created, t(10));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_batch_timed<I>(&self, batch: I) -> Result<Range<Offset>, Error>
    where
        I: IntoIterator<Item = (SystemTime, T)>,
    {
        self.check_writable()?;
        let items = self.pull_batch(batch, |(_, d)| d)?;
        self.append_pulled(items, false, |(created, d)| entry(created, d))
    }

    /// Claims and publishes a pulled batch (by the exclusive writer's claim
    /// if `exclusive`); nothing in it runs user code.
    pub(crate) fn append_pulled<U>(
        &self,
        items: Vec<U>,
        exclusive: bool,
        to_entry: impl FnMut(U) -> Entry<T>,
    ) -> Result<Range<Offset>, Error> {
        if items.is_empty() {
            return self.empty_batch();
        }
        let n = items.len() as u64;
        // As in `write_timed`, before the claim.
        crate::reclaim::drain();
        let rel = if exclusive {
            self.inner.claim_exclusive(n)?
        } else {
            self.inner.claim_batch(n)?
        };
        self.inner
            .publish_claimed(rel, items.into_iter().map(to_entry));
        let start = self.inner.cfg.start;
        Ok(start + rel..start + rel + n)
    }

    /// `Err(ReadOnly)` if the log has an exclusive [`Writer`](crate::Writer).
    #[inline]
    fn check_writable(&self) -> Result<(), Error> {
        if self.inner.cfg.exclusive {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// What an empty batch returns: where it would have started.
    pub(crate) fn empty_batch(&self) -> Result<Range<Offset>, Error> {
        if self.inner.is_closed() {
            // As in `pull_batch`.
            self.inner.closed_end();
            return Err(Error::Closed);
        }
        let at = self.inner.cfg.start + self.inner.tail();
        Ok(at..at)
    }

    /// Pulls a batch (user code: before any claim), at most `capacity + 1`
    /// items, then checks it in order: the first record too large
    /// (`data` gives an item's payload), or the record one past capacity,
    /// whichever comes first, refuses it. A closed log refuses it unpulled.
    pub(crate) fn pull_batch<U>(
        &self,
        batch: impl IntoIterator<Item = U>,
        data: impl Fn(&U) -> &T,
    ) -> Result<Vec<U>, Error> {
        // Only an early answer: a `close` after this check is met by the
        // claim, as for any write. Closed: wait for the end `close` fixes
        // (it runs no user code first). Until then an exclusive log's
        // `close` may still take a claim it sees, and a write after this
        // refusal must not land.
        if self.inner.is_closed() {
            self.inner.closed_end();
            return Err(Error::Closed);
        }
        // A chunk at a time: `Vec::extend` reserves what the iterator's size
        // hint promises, and a huge log must not reserve its whole capacity
        // for an endless iterator.
        const CHUNK: usize = 1 << 12;
        // On a 32-bit target a capacity beyond `usize` can not be buffered
        // anyway: the Vec's own limit comes first.
        let limit = usize::try_from(self.inner.cfg.capacity()).unwrap_or(usize::MAX);
        let most = limit.saturating_add(1);
        let mut items = batch.into_iter();
        let mut pulled = Vec::new();
        loop {
            let want = (most - pulled.len()).min(CHUNK);
            let before = pulled.len();
            pulled.extend(items.by_ref().take(want));
            if pulled.len() - before < want || pulled.len() == most {
                break;
            }
        }
        if self.inner.cfg.max_record.is_some() {
            for item in pulled.iter().take(limit) {
                self.check_size(data(item))?;
            }
        }
        if pulled.len() > limit {
            // `len` is what we know of the length: what was pulled, plus the
            // iterator's own lower bound for the rest (exact for a Vec or a
            // range).
            let len = pulled.len().saturating_add(items.size_hint().0);
            return Err(Error::BatchTooLarge { len, max: limit });
        }
        Ok(pulled)
    }

    /// Reads the record at `offset`.
    ///
    /// # Errors
    /// [`Error::FutureOffset`] if it is not written yet, [`Error::OutOfRange`]
    /// if it was purged (or is below the start offset).
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::builder().segment_size(2).history_segments(0).build()?;
    /// for x in ["a", "b", "c"] {
    ///     log.write(x)?; // "c" opens a new segment: "a", "b" are purged
    /// }
    /// assert_eq!(log.read(2)?.data, "c");
    /// assert_eq!(log.read(3), Err(Error::FutureOffset));
    /// assert_eq!(log.read(0), Err(Error::OutOfRange));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn read(&self, offset: Offset) -> Result<Record<T>, Error> {
        crate::reclaim::drain();
        let rel = self.rel(offset)?;
        if rel >= self.inner.high_water() {
            return Err(Error::FutureOffset);
        }
        self.inner.read_published(rel)
    }

    /// Appends up to `max` consecutive records, starting at `start`, to `out`
    /// and returns how many: at least 1 unless `max` is 0, and fewer than
    /// `max` only when the log ends (or a later part was purged meanwhile).
    ///
    /// # Errors
    /// [`Error::FutureOffset`] if `start` is not written yet,
    /// [`Error::OutOfRange`] if it was purged.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write_batch(0..10u32)?;
    /// let mut out = Vec::new();
    /// assert_eq!(log.read_batch(8, &mut out, 100)?, 2);
    /// assert_eq!(out.iter().map(|r| r.data).collect::<Vec<_>>(), [8, 9]);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn read_batch(
        &self,
        start: Offset,
        out: &mut Vec<Record<T>>,
        max: usize,
    ) -> Result<usize, Error> {
        if max == 0 {
            return Ok(0);
        }
        crate::reclaim::drain();
        let rel = self.rel(start)?;
        let hw = self.inner.high_water();
        if rel >= hw {
            return Err(Error::FutureOffset);
        }
        self.inner.read_batch_published(rel, hw, out, max)
    }

    /// `(earliest, latest)` readable offsets, or `None` when no record is
    /// readable: nothing written yet, everything written was purged, or,
    /// briefly, a write opened a new segment (purging the oldest) while the
    /// records after the purged ones are still being published. A consumer
    /// resuming after [`Error::OutOfRange`] needs none of that: see
    /// [`StartAt::Earliest`] and [`Lag::Skip`](crate::Lag::Skip).
    ///
    /// ```
    /// let log = memlog::Log::builder().start_offset(10).build()?;
    /// assert_eq!(log.range(), None);
    /// log.write_batch(["a", "b"])?;
    /// assert_eq!(log.range(), Some((10, 11)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn range(&self) -> Option<(Offset, Offset)> {
        let (first, hw) = self.inner.bounds();
        let start = self.inner.cfg.start;
        (hw > first).then(|| (start + first, start + hw - 1))
    }

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

    /// The offset `at` stands for now.
    pub(crate) fn resolve(&self, at: StartAt) -> Offset {
        match at {
            StartAt::Earliest => self.earliest_offset(),
            StartAt::Latest => self.next_offset(),
            StartAt::Offset(o) => o,
        }
    }

    /// The earliest retained offset: the purge point, or the start offset
    /// while nothing was purged. Every offset below it was written; it is
    /// retained until the next purge, though it may not be published yet
    /// (which is when [`range`](Log::range) is `None` after a purge).
    pub(crate) fn earliest_offset(&self) -> Offset {
        self.inner.cfg.start + self.inner.bounds().0
    }

    /// An async stream of the records from `start` on, in order (feature
    /// `async`): a [`futures_core::Stream`] woken by the writes, with the
    /// semantics of [`stream`](Log::stream). See [`AsyncStream`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream_async(0);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let writer = log.clone();
    ///     tokio::spawn(async move { writer.write("hello").unwrap() });
    ///     let first = stream.next().await.unwrap().unwrap();
    ///     assert_eq!((first.offset, first.data), (0, "hello"));
    /// });
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    #[must_use = "a stream does nothing unless it is polled"]
    pub fn stream_async(&self, start: Offset) -> AsyncStream<T> {
        self.stream(start).into_async()
    }

    /// An async stream from the earliest retained offset, the next offset to
    /// be written, or a given offset (feature `async`); as
    /// [`stream_from`](Log::stream_from), see [`StartAt`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::{Log, StartAt};
    ///
    /// let log = Log::new();
    /// log.write("old")?;
    /// let mut live = log.stream_async_from(StartAt::Latest);
    /// log.write("new")?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let first = rt.block_on(live.next()).unwrap()?;
    /// assert_eq!((first.offset, first.data), (1, "new"));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    #[must_use = "a stream does nothing unless it is polled"]
    pub fn stream_async_from(&self, at: StartAt) -> AsyncStream<T> {
        self.stream_from(at).into_async()
    }

    /// How many parked threads and pending async streams are registered to be
    /// woken. For tests that check that nothing is left behind; not part of
    /// the stable API.
    #[doc(hidden)]
    pub fn waiter_count(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Closes the log: later writes fail with [`Error::Closed`], every write
    /// that got in before stays readable, and streams wake, drain what was
    /// written, and end. Idempotent.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write(1)?;
    /// let stream = log.stream(0);
    /// log.close();
    /// assert!(log.is_closed());
    /// assert_eq!(stream.map(|r| r.unwrap().data).collect::<Vec<_>>(), [1]);
    /// assert_eq!(log.write(2), Err(memlog::Error::Closed));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](Log::close) was called.
    ///
    /// ```
    /// let log = memlog::Log::<u8>::new();
    /// assert!(!log.is_closed());
    /// log.close();
    /// assert!(log.is_closed());
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The offset the next write will get; after [`close`](Log::close), one
    /// past the last record written. [`StartAt::Latest`] starts a stream here.
    ///
    /// ```
    /// let log = memlog::Log::builder().start_offset(5).build()?;
    /// assert_eq!(log.next_offset(), 5);
    /// log.write_batch(["a", "b"])?;
    /// assert_eq!(log.next_offset(), 7);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn next_offset(&self) -> Offset {
        self.inner.cfg.start + self.inner.tail()
    }

    /// The offset of the first record (the builder's `start_offset`).
    ///
    /// ```
    /// let log = memlog::Log::<u8>::builder().start_offset(42).build()?;
    /// assert_eq!(log.start_offset(), 42);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn start_offset(&self) -> Offset {
        self.inner.cfg.start
    }

    /// Relative offset, or `OutOfRange` below the start.
    #[inline]
    pub(crate) fn rel(&self, offset: Offset) -> Result<u64, Error> {
        offset
            .checked_sub(self.inner.cfg.start)
            .ok_or(Error::OutOfRange)
    }
}
