//! [`Log`], the public handle, and [`Record`].

use crate::config::Config;
use crate::log::Inner;
use crate::mode::Sequencer;
use crate::record::{Offset, Record};
use crate::slot::Entry;
use crate::write::OnHold;
use crate::{Error, StartAt};
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

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
    /// A log that its handles write.
    pub(crate) fn from_config(cfg: Config<T>) -> Log<T> {
        Self::with_sequencer(cfg, Sequencer::new_shared())
    }

    /// A log of the given writing mode.
    pub(crate) fn with_sequencer(cfg: Config<T>, seq: Sequencer) -> Log<T> {
        Log {
            inner: Arc::new(Inner::new(cfg, seq)),
        }
    }

    /// Appends a record and returns its offset. Lock-free: one atomic claim,
    /// the slot store, one release store and one compare-exchange.
    ///
    /// # When the record becomes readable
    /// Offsets are claimed in order but writers finish in any order, and a
    /// reader never sees a gap: the record becomes readable ([`read`],
    /// [`read_batch`], [`range`], streams) once it **and every offset
    /// claimed before it** are published. So with concurrent writers, a
    /// [`read`] of the returned offset right after `write` returns can
    /// still give [`Error::FutureOffset`], while another writer that
    /// claimed an earlier offset is descheduled between its claim and its
    /// publish (a few instructions, which run no user code). With a single
    /// writing thread, or the exclusive [`Writer`](crate::Writer), a write
    /// is readable as soon as it returns (read-your-writes).
    ///
    /// [`read`]: Log::read
    /// [`read_batch`]: Log::read_batch
    /// [`range`]: Log::range
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
        let rel = self.inner.write_one(created, data)?;
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
        self.inner.seq.handles_write()?;
        let items = self.pull_batch(batch, |d| d)?;
        let created = self.inner.cfg.clock.now();
        self.append_pulled(items, false, OnHold::Wait(None), |data| Entry {
            created,
            data,
        })
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
        self.inner.seq.handles_write()?;
        let items = self.pull_batch(batch, |(_, d)| d)?;
        self.append_pulled(items, false, OnHold::Wait(None), |(created, data)| Entry {
            created,
            data,
        })
    }

    /// Claims and publishes a pulled batch (by the exclusive writer's claim
    /// if `exclusive`), once the holds admit it (`on_hold`: hold.rs);
    /// nothing in it runs user code.
    pub(crate) fn append_pulled<U>(
        &self,
        items: Vec<U>,
        exclusive: bool,
        on_hold: OnHold<'_, '_>,
        to_entry: impl FnMut(U) -> Entry<T>,
    ) -> Result<Range<Offset>, Error> {
        if items.is_empty() {
            return self.empty_batch();
        }
        let n = items.len() as u64;
        // As in `write_timed`, before the claim.
        crate::reclaim::drain();
        let entries = items.into_iter().map(to_entry);
        let rel = if exclusive {
            self.inner.write_many_exclusive(n, entries, on_hold)?
        } else {
            self.inner.write_many(n, entries, on_hold)?
        };
        let start = self.inner.cfg.start;
        Ok(start + rel..start + rel + n)
    }

    /// What an empty batch returns: where it would have started.
    pub(crate) fn empty_batch(&self) -> Result<Range<Offset>, Error> {
        if self.inner.seq.is_closed() {
            // As in `pull_batch`.
            self.inner.seq.wait_end();
            return Err(Error::Closed);
        }
        let at = self.inner.cfg.start + self.inner.seq.next();
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
        if self.inner.seq.is_closed() {
            self.inner.seq.wait_end();
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
                self.inner.check_size(data(item))?;
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
    /// if it was purged (or is below the start offset). `FutureOffset` also
    /// for an offset whose `write` has returned, while a concurrent writer
    /// that claimed an earlier offset has not yet published it (see
    /// [`write`](Log::write), "When the record becomes readable"); never for
    /// a write of the exclusive [`Writer`](crate::Writer) that returned.
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
        let mark = self.inner.high_water();
        if rel >= mark {
            return Err(Error::FutureOffset);
        }
        self.inner.ring.read(rel)
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
        self.inner.ring.read_batch(rel, hw, out, max)
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

    /// The offset `at` stands for now.
    pub(crate) fn resolve(&self, at: StartAt) -> Offset {
        match at {
            StartAt::Earliest => self.earliest_offset(),
            StartAt::Latest => self.next_offset(),
            StartAt::Offset(o) => o,
            StartAt::Time(t) => self.offset_at_time(t),
        }
    }

    /// [`StartAt::Time`]: a binary search over the retained, published
    /// offsets `[earliest, end)` for the first whose record's `created` is
    /// not before `t`, keeping `lo == earliest || created(lo - 1) < t` and
    /// `hi == end || created(hi) >= t`. One epoch pin, `log2(retained)`
    /// reads. A read that finds its offset purged (a purge overtook the
    /// search) starts it again from the new bounds; after
    /// `TIME_SEARCH_TRIES` such restarts, the earliest retained offset.
    fn offset_at_time(&self, t: SystemTime) -> Offset {
        const TIME_SEARCH_TRIES: usize = 8;
        let start = self.inner.cfg.start;
        for _ in 0..TIME_SEARCH_TRIES {
            let pinned = self.pin();
            let (first, hw) = self.inner.bounds();
            let (mut lo, mut hi) = (start + first, start + hw);
            let mut overtaken = false;
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                match pinned.get(mid) {
                    Ok(r) if r.created < t => lo = mid + 1,
                    Ok(_) => hi = mid,
                    Err(_) => {
                        overtaken = true;
                        break;
                    }
                }
            }
            if !overtaken {
                return lo;
            }
        }
        self.earliest_offset()
    }

    /// The earliest retained offset: the purge point, or the start offset
    /// while nothing was purged. Every offset below it was written; it is
    /// retained until the next purge, though it may not be published yet
    /// (which is when [`range`](Log::range) is `None` after a purge).
    pub(crate) fn earliest_offset(&self) -> Offset {
        self.inner.cfg.start + self.inner.bounds().0
    }

    /// How many parked threads and pending async streams are registered to be
    /// woken. For tests that check that nothing is left behind; not part of
    /// the stable API.
    #[doc(hidden)]
    pub fn waiter_count(&self) -> usize {
        self.inner.waiters.len()
    }

    /// How many streams hold records of this log ([`Lag::Hold`](crate::Lag::Hold)).
    /// For tests that check that nothing is left behind; not part of the
    /// stable API.
    #[doc(hidden)]
    pub fn hold_count(&self) -> usize {
        self.inner.ring.holds.len()
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
        self.inner.seq.is_closed()
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
        self.inner.cfg.start + self.inner.seq.next()
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
