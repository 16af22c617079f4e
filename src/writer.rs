//! [`Writer`]: the exclusive writer of a log. The protocol it follows (a
//! claim and a mark moved by plain stores, met by `close` and sleeping
//! readers through an asymmetric fence) is the exclusive mode's, in
//! mode/exclusive.rs; this is the handle, which keeps the segment it fills.

use crate::clock::TickingClock;
use crate::log::Inner;
use crate::slot::{Entry, Slot};
use crate::write::OnHold;
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
/// construction. In exchange a write costs no atomic read-modify-write
/// (where [`Log::write`] needs two), no fence instruction where Linux's
/// `membarrier` is available, and no segment lookup: the claim and the
/// high-water mark are plain stores, and the writer keeps a pointer to the
/// segment it fills. A reader about to sleep (a blocking stream that spun
/// in vain, or an async stream returning `Pending`), and `close`, pay for
/// it instead: one `membarrier` system call each, about a microsecond, which
/// interrupts every core running a thread of the process, the writer's
/// included. Readers that sleep on every record therefore cost the writer
/// an interrupt per record; readers that keep up, or spin, cost it none.
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
    /// The slots of the segment holding relative offsets `lo..hi`, which
    /// this writer is filling (null before the first write). Valid while
    /// the next offset is in `lo..hi`: see the module docs.
    slots: *const Slot<T>,
    lo: u64,
    hi: u64,
    /// The log's clock if it is a [`TickingClock`], read directly, and the
    /// last tick it told with the time made of it: a write within one tick
    /// reuses that time rather than build it again.
    ticking: Option<(TickingClock, u64, SystemTime)>,
}

// SAFETY: `slots` points into the log's ring, which the writer's `Log` keeps
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
                &(self.log.inner.cfg.start + self.log.inner.seq.next()),
            )
            .field("closed", &self.log.inner.seq.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> Writer<T> {
    pub(crate) fn new(log: Log<T>) -> Self {
        let ticking = log.inner.cfg.ticking.clone();
        Writer {
            log,
            slots: std::ptr::null(),
            lo: 0,
            hi: 0,
            ticking: ticking.map(|t| (t, 0, TickingClock::time_of(0))),
        }
    }

    /// The time to stamp a write with: the log's clock, read as
    /// [`Clock::now`] would (a [`TickingClock`] directly).
    #[inline(always)]
    fn now(&mut self) -> SystemTime {
        match &mut self.ticking {
            Some((clock, last, time)) => {
                let nanos = clock.nanos();
                if nanos != *last {
                    (*last, *time) = (nanos, TickingClock::time_of(nanos));
                }
                *time
            }
            None => self.log.inner.cfg.clock.now(),
        }
    }

    /// Appends a record and returns its offset; as [`Log::write`], with no
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
    // Always inlined, with the rare branches (drain, a new segment, close,
    // a sleeping reader) behind calls: the caller's loop then keeps the
    // writer's fields and the result in registers, with no frame and no
    // `Result` written to memory per record (the stores a 1 -> 1 stream
    // makes the writer wait for; benches/README.md, "Fast paths, round 3").
    #[inline(always)]
    pub fn write(&mut self, data: T) -> Result<Offset, Error> {
        let created = self.now();
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
    #[inline(always)]
    pub fn write_timed(&mut self, created: SystemTime, data: T) -> Result<Offset, Error> {
        // As in `Log::write_timed`: before anything else. Every time, not
        // only after this writer's own pins: its batches, reads, visits and
        // other logs' calls on this thread postpone too. A thread-local flag
        // and a relaxed load when there is nothing to run.
        crate::reclaim::drain();
        // By value, behind a branch: a reference taken here would make the
        // payload round-trip through the stack on every write, a store the
        // record's own stores wait behind.
        let data = if self.log.inner.cfg.max_record.is_some() {
            self.checked(data)?
        } else {
            data
        };
        let Writer {
            log, slots, lo, hi, ..
        } = self;
        let inner = &*log.inner;
        let (mode, c) = (inner.seq.exclusive(), &inner.seq.cursors);
        let rel = mode.claim(c, 1)?;
        if rel >= *hi {
            (*slots, *lo, *hi) = Self::enter_segment(inner, rel)?;
        }
        // SAFETY: this writer claimed `rel`, the only writer of its slot;
        // `slots` are those of the segment holding `lo..hi`, which contains
        // `rel` (checked above; offsets only grow), and stays installed
        // until this writer installs a later segment (segment.rs: only this
        // writer installs); `rel - lo < segment_size`, the number of slots.
        unsafe {
            (*slots.add((rel - *lo) as usize)).publish(rel, Entry { created, data });
        }
        mode.publish_to(c, rel + 1);
        inner.waiters.notify_if_any();
        Ok(inner.cfg.start + rel)
    }

    /// Before a write that must not wait for holding streams: `Ok` if the
    /// next write installs no segment the holds forbid (`on_hold` says what
    /// to do until then: write.rs).
    pub(crate) fn admit_next(&self, on_hold: &mut OnHold<'_, '_>) -> Result<(), Error> {
        let inner = &*self.log.inner;
        let rel = inner.seq.exclusive().next_claim(&inner.seq.cursors);
        if rel < self.hi {
            return Ok(());
        }
        inner.admit(rel, rel, on_hold)
    }

    /// `data` if it is within `max_record_bytes`.
    #[cold]
    #[inline(never)]
    fn checked(&self, data: T) -> Result<T, Error> {
        self.log.inner.check_size(&data)?;
        Ok(data)
    }

    /// Finds (installing it if need be) the segment of `rel`, claimed and
    /// not yet published, and keeps it for the writes that follow. If the
    /// holds kept the install waiting and the log closed meanwhile, takes
    /// the claim back and answers `Closed` (hold.rs).
    #[cold]
    fn enter_segment(inner: &Inner<T>, rel: u64) -> Result<(*const Slot<T>, u64, u64), Error> {
        let seg = inner.ring.write_segment(rel, inner.seq.mark_word());
        if seg.is_err() {
            inner.seq.exclusive().unclaim(&inner.seq.cursors, rel);
        }
        seg
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
        let created = self.now();
        // The kept segment stays valid: if the batch moves past it, the next
        // offset is past `hi` too.
        self.log
            .append_pulled(items, true, OnHold::Wait(None), |data| Entry {
                created,
                data,
            })
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
            .append_pulled(items, true, OnHold::Wait(None), |(created, data)| Entry {
                created,
                data,
            })
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
