//! [`Writer`]: the exclusive writer of a log, and its publish protocol.
//!
//! Most logs have one producer. When the type system says there is only one
//! (a `Writer` is made once, by [`Builder::build_exclusive`], and is not
//! `Clone`; `&mut self` on every write), a write needs less than the
//! many-writer protocol in log.rs:
//! - **One read-modify-write, the claim.** `tail.fetch_add(1)` still
//!   linearises the write against `close` (which sets the `CLOSED` bit of
//!   `tail`), and it is the writer's half of the wake-up handshake (below).
//! - **The mark moves by a plain store.** Offsets are published in order by
//!   one thread, so there are no out-of-order finishers to carry over, no
//!   announce, no compare-exchange: publish the slot's stamp, then store the
//!   mark (both Release).
//! - **No lookup of the segment.** The writer keeps a pointer to the segment
//!   it is filling and the offsets it holds, so a write indexes the slot
//!   directly. The pointer stays valid while the writer's next offset is in
//!   that segment: a segment is purged only when a later one is installed,
//!   and only this writer installs.
//!
//! # The wake-up handshake without a read-modify-write of the mark
//! In the many-writer protocol the writer and a sleeping reader meet on RMWs
//! of the high-water mark (wait.rs). Here the writer's only RMW is its claim,
//! *before* it publishes, so they meet on `tail` instead: a reader about to
//! sleep registers, then re-reads `tail` with an RMW (`fetch_add(0)`,
//! `Inner::recheck_registered`); the writer claims with an AcqRel RMW and,
//! after storing the mark, loads the waiter count.
//! - If the reader's RMW comes first in `tail`'s modification order, the
//!   writer's claim reads from it, so the registration happens-before the
//!   writer's count load: the writer sees it and wakes the reader.
//! - If it comes after, the reader sees the offset claimed. The writer is
//!   between claim and publish, where no user code runs, so the reader does
//!   not sleep: it yields and looks again (`Wait::Claimed`).
//!
//! Either way no wake-up is lost, and a writer with nobody parked pays one
//! relaxed load, no fence and no lock. Readers that have not gone to sleep
//! read the mark and the stamps as with any log.

use crate::log::{entry, Inner};
use crate::segment::Segment;
use crate::slot::Slot;
use crate::{Error, Log, Offset};
use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

/// The exclusive writer of a log, made by [`Builder::build_exclusive`]: the
/// one handle that writes to it. Every other handle ([`Log`]) reads, streams
/// and closes; its writes fail [`Error::ReadOnly`].
///
/// It is `Send` (move it to the producer's thread) and not `Clone`, and its
/// writes take `&mut self`, so there is one writer at a time by
/// construction. In exchange a write costs one atomic read-modify-write
/// (where [`Log::write`] needs two), no segment lookup, and no
/// compare-exchange loop (see the module docs of `writer.rs`).
///
/// Dropping the writer closes the log, as dropping the last sender of a
/// channel does: streams drain what was written and end.
///
/// ```
/// use memlog::{Error, Log};
///
/// let (mut writer, log) = Log::builder().build_exclusive()?;
/// assert_eq!(writer.write("a")?, 0);
/// assert_eq!(writer.write_batch(["b", "c"])?, 1..3);
/// assert_eq!(log.read(2)?.data, "c");
/// assert_eq!(log.write("not me"), Err(Error::ReadOnly));
/// drop(writer);
/// assert!(log.is_closed());
/// # Ok::<(), Error>(())
/// ```
///
/// [`Builder::build_exclusive`]: crate::Builder::build_exclusive
#[must_use = "dropping the Writer closes the log"]
pub struct Writer<T> {
    log: Log<T>,
    /// The segment holding relative offsets `lo..hi`, which this writer is
    /// filling (null before the first write). Valid while the next offset is
    /// in `lo..hi`: see the module docs.
    seg: *const Segment<T>,
    lo: u64,
    hi: u64,
}

// SAFETY: `seg` points into the log's ring, which the writer's `Log` keeps
// alive, and is only used by `&mut self` methods (there is one user at a
// time); records move in from the writer's thread (`T: Send`) and are read
// by reference by readers on others (`T: Sync`), as with `Log`.
unsafe impl<T: Send + Sync> Send for Writer<T> {}
// SAFETY: `&Writer` gives access to nothing but `Log`'s own `Sync` methods.
unsafe impl<T: Send + Sync> Sync for Writer<T> {}

impl<T> fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field(
                "next_offset",
                &(self.log.inner.cfg.start + self.log.inner.tail()),
            )
            .field("closed", &self.log.inner.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> Writer<T> {
    pub(crate) fn new(log: Log<T>) -> Self {
        Writer {
            log,
            seg: std::ptr::null(),
            lo: 0,
            hi: 0,
        }
    }

    /// Appends a record and returns its offset; as [`Log::write`], with one
    /// atomic read-modify-write instead of two.
    ///
    /// # Errors
    /// [`Error::RecordTooLarge`] if `max_record_bytes` is set and exceeded;
    /// [`Error::Closed`] after [`close`](Writer::close) (from any handle).
    /// Either way nothing is written.
    ///
    /// ```
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// let offset = writer.write(42u32)?;
    /// assert_eq!(log.read(offset)?.data, 42);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[inline]
    pub fn write(&mut self, data: T) -> Result<Offset, Error> {
        let created = self.log.inner.cfg.clock.now();
        self.write_timed(created, data)
    }

    /// Appends a record with the given `created` time; as
    /// [`Log::write_timed`].
    ///
    /// # Errors
    /// As [`write`](Writer::write).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// let t = UNIX_EPOCH + Duration::from_secs(7);
    /// let offset = writer.write_timed(t, "copied")?;
    /// assert_eq!(log.read(offset)?.created, t);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[inline]
    pub fn write_timed(&mut self, created: SystemTime, data: T) -> Result<Offset, Error> {
        // As in `Log::write_timed`: before anything else.
        crate::reclaim::drain();
        self.log.check_size(&data)?;
        let rel = self.log.inner.claim_one_exclusive()?;
        if rel >= self.hi {
            self.enter_segment(rel);
        }
        let inner: &Inner<T> = &self.log.inner;
        // SAFETY: this writer claimed `rel`, the only writer of its slot;
        // `seg` holds `lo..hi`, which contains `rel` (checked above; offsets
        // only grow), and stays installed until this writer installs a later
        // segment (module docs); `rel - lo < segment_size == slots.len()`.
        unsafe {
            let slots: &[Slot<T>] = &(*self.seg).slots;
            slots
                .get_unchecked((rel - self.lo) as usize)
                .publish(rel, entry(created, data));
        }
        inner.advance_exclusive(rel + 1);
        Ok(inner.cfg.start + rel)
    }

    /// Finds (installing it if need be) the segment of `rel`, claimed and
    /// not yet published, and keeps it for the writes that follow.
    #[cold]
    fn enter_segment(&mut self, rel: u64) {
        (self.seg, self.lo, self.hi) = self.log.inner.write_segment(rel);
    }

    /// Appends a batch at consecutive offsets with one claim; as
    /// [`Log::write_batch`].
    ///
    /// # Errors
    /// As [`Log::write_batch`].
    ///
    /// ```
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// assert_eq!(writer.write_batch(0..3u8)?, 0..3);
    /// assert_eq!(log.range(), Some((0, 2)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_batch<I: IntoIterator<Item = T>>(
        &mut self,
        batch: I,
    ) -> Result<Range<Offset>, Error> {
        let items = self.log.pull_batch(batch, |d| d)?;
        let created = self.log.inner.cfg.clock.now();
        // The kept segment stays valid: if the batch moves past it, the next
        // offset is past `hi` too.
        self.log.append_pulled(items, true, |d| entry(created, d))
    }

    /// Appends a batch whose records carry their own `created` times; as
    /// [`Log::write_batch_timed`].
    ///
    /// # Errors
    /// As [`Log::write_batch`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// let t = |s| UNIX_EPOCH + Duration::from_secs(s);
    /// assert_eq!(writer.write_batch_timed([(t(2), 'x'), (t(1), 'y')])?, 0..2);
    /// assert_eq!(log.read(1)?.created, t(1));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_batch_timed<I>(&mut self, batch: I) -> Result<Range<Offset>, Error>
    where
        I: IntoIterator<Item = (SystemTime, T)>,
    {
        let items = self.log.pull_batch(batch, |(_, d)| d)?;
        // As in `write_batch`.
        self.log
            .append_pulled(items, true, |(created, d)| entry(created, d))
    }

    /// Closes the log; as [`Log::close`]. Dropping the writer does too.
    ///
    /// ```
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// writer.write(1u8)?;
    /// writer.close();
    /// assert_eq!(writer.write(2), Err(memlog::Error::Closed));
    /// assert_eq!(log.next_offset(), 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn close(&self) {
        self.log.close();
    }

    /// Whether the log is closed (by this writer or any handle).
    ///
    /// ```
    /// let (writer, log) = memlog::Log::<u8>::builder().build_exclusive()?;
    /// log.close();
    /// assert!(writer.is_closed());
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.log.is_closed()
    }

    /// The offset the next write will get; as [`Log::next_offset`].
    ///
    /// ```
    /// let (mut writer, _log) = memlog::Log::builder().start_offset(10).build_exclusive()?;
    /// writer.write('a')?;
    /// assert_eq!(writer.next_offset(), 11);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn next_offset(&self) -> Offset {
        self.log.next_offset()
    }

    /// A read handle to the log this writer writes (its writes fail
    /// [`Error::ReadOnly`]).
    ///
    /// ```
    /// let (mut writer, _log) = memlog::Log::builder().build_exclusive()?;
    /// writer.write("x")?;
    /// assert_eq!(writer.log().read(0)?.data, "x");
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn log(&self) -> &Log<T> {
        &self.log
    }
}

impl<T> Drop for Writer<T> {
    /// Closes the log: nobody else can write to it.
    fn drop(&mut self) {
        self.log.inner.close();
    }
}
