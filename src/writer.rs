//! [`Writer`]: the exclusive writer of a log, and its publish protocol.
//!
//! Most logs have one producer. When the type system says there is only one
//! (a `Writer` is made once, by [`Builder::build_exclusive`], and is not
//! `Clone`; `&mut self` on every write), a write needs less than the
//! many-writer protocol in log.rs:
//! - **The claim is a plain store.** Only this writer stores `tail`; how a
//!   write still linearises against `close` and meets sleeping readers
//!   without a read-modify-write is below.
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
//! # No read-modify-write at all: an asymmetric fence
//! A write is plain stores and loads. The writer stores `tail = rel + n`
//! (announcing the claim), runs [`fence::light`] (a compiler fence where
//! Linux's `membarrier` is available, see fence.rs), loads `closing` and
//! the waiter count, then publishes the slots and stores the mark. The two
//! rare paths that must meet a write in flight run [`fence::heavy`] between
//! their own store and their load of `tail`:
//! - **A reader about to sleep** registers (the count goes up), runs
//!   `heavy`, and loads `tail` (`Inner::meet_exclusive_writer`). Either the
//!   writer's count load comes after the barrier and sees the registration
//!   (it wakes the reader once it has stored the mark), or the reader's
//!   `tail` load sees the claim: the writer is between claim and publish,
//!   where no user code runs, so the reader does not sleep; it yields and
//!   looks again (`Wait::Claimed`).
//! - **`close`** sets `closing` (a word of its own: nobody may
//!   read-modify-write the `tail` this writer stores), runs `heavy`, loads
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

use crate::clock::TickingClock;
use crate::fence;
use crate::log::{entry, Inner};
use crate::slot::Slot;
use crate::sync::Ordering;
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
/// `membarrier` is available, and no segment lookup (see the module docs
/// of `writer.rs`). A reader about to sleep (a blocking stream that spun
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
                &(self.log.inner.cfg.start + self.log.inner.tail()),
            )
            .field("closed", &self.log.inner.is_closed())
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
        let rel = self.log.inner.claim_exclusive(1)?;
        if rel >= self.hi {
            self.enter_segment(rel);
        }
        let inner: &Inner<T> = &self.log.inner;
        // SAFETY: this writer claimed `rel`, the only writer of its slot;
        // `slots` are those of the segment holding `lo..hi`, which contains
        // `rel` (checked above; offsets only grow), and stays installed
        // until this writer installs a later segment (module docs);
        // `rel - lo < segment_size`, the number of slots.
        unsafe {
            (*self.slots.add((rel - self.lo) as usize)).publish(rel, entry(created, data));
        }
        inner.advance_exclusive(rel + 1);
        Ok(inner.cfg.start + rel)
    }

    /// `data` if it is within `max_record_bytes`.
    #[cold]
    #[inline(never)]
    fn checked(&self, data: T) -> Result<T, Error> {
        self.log.check_size(&data)?;
        Ok(data)
    }

    /// Finds (installing it if need be) the segment of `rel`, claimed and
    /// not yet published, and keeps it for the writes that follow.
    #[cold]
    fn enter_segment(&mut self, rel: u64) {
        let seg;
        (seg, self.lo, self.hi) = self.log.inner.write_segment(rel);
        // SAFETY: `write_segment` returns the installed segment of `rel`,
        // which this writer has claimed: valid until it installs a later one.
        self.slots = unsafe { (*seg).slots.as_ptr() };
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

/// The exclusive writer's side of the protocol, and the two rare paths that
/// meet it (module docs). Only the `Writer` calls the claim and the mark
/// store; `close` and `recheck_registered` (log.rs) call the rest.
impl<T> Inner<T> {
    /// Claims `n` offsets for the exclusive writer: `Err(Closed)` if the log
    /// is closed (then nothing is claimed).
    #[inline(always)]
    pub(crate) fn claim_exclusive(&self, n: u64) -> Result<u64, Error> {
        // Relaxed: only this writer stores `tail`; this is its own last store.
        let rel = self.tail.load(Ordering::Relaxed);
        // The announce. Relaxed: `light` below orders it before the loads
        // that follow, against `heavy` on the other side (module docs).
        self.tail.store(rel + n, Ordering::Relaxed);
        fence::light(self.cfg.expedited);
        // Relaxed: as above; the end it leads to is acquired.
        if self.closing.load(Ordering::Relaxed) {
            return self.claim_while_closing(rel, n);
        }
        Ok(rel)
    }

    /// A claim that met `close`: it lands if the closer saw it.
    #[cold]
    fn claim_while_closing(&self, rel: u64, n: u64) -> Result<u64, Error> {
        // The closer runs no user code between setting `closing` and storing
        // the end, which is `tail` as it loaded it after `heavy`: this
        // claim's value or the one before (a later one can not exist yet).
        let end = self.closed_end();
        debug_assert!(end == rel || end == rel + n, "{end} {rel} {n}");
        if rel + n <= end {
            return Ok(rel);
        }
        // Not seen: take it back, so that `tail` stays the end.
        self.tail.store(rel, Ordering::Relaxed);
        Err(Error::Closed)
    }

    /// The exclusive writer has published every offset below `to`: moves the
    /// mark there and wakes parked readers. A store, not a compare-exchange:
    /// nobody else moves the mark, and the offsets are published in order.
    #[inline(always)]
    pub(crate) fn advance_exclusive(&self, to: u64) {
        self.store_mark(to);
        // Relaxed: loaded after this write's `light` (in its claim), which
        // is what the handshake needs (module docs).
        self.waiters.notify_if_any();
    }

    /// `advance_exclusive` without the wake-up.
    #[inline]
    pub(crate) fn store_mark(&self, to: u64) {
        // Release: hands the slots below `to` to readers that acquire the mark.
        self.high_water.store(to, Ordering::Release);
    }

    /// `close` on a log with an exclusive writer.
    pub(crate) fn close_exclusive(&self) {
        // AcqRel: one winner; a loser waits for the winner's end below.
        if self.closing.swap(true, Ordering::AcqRel) {
            self.closed_end();
            return;
        }
        fence::heavy();
        // Every claim the writer stored before its `light` that missed
        // `closing` (module docs). Relaxed: the end is what matters, and
        // readers wait on the mark to reach it.
        let end = self.tail.load(Ordering::Relaxed);
        // Release: pairs with the Acquire loads in `closed_end`.
        self.closed_end.store(end + 1, Ordering::Release);
    }

    /// A reader about to sleep, registered: where the exclusive writer's
    /// claims end (or, once closed, where the log ends). Any offset below it
    /// will be published without a wake-up being needed; for any at or above
    /// it, the writer sees the registration (module docs).
    pub(crate) fn meet_exclusive_writer(&self) -> u64 {
        fence::heavy();
        // Relaxed: ordered by `heavy` against the writer's `light`.
        let claimed = self.tail.load(Ordering::Relaxed);
        if self.closing.load(Ordering::Acquire) {
            // Claims may have failed: the end is what will be published.
            return self.closed_end();
        }
        claimed
    }
}
