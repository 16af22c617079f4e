//! The log: claiming offsets, installing and purging segments, moving the
//! high-water mark, reading, and waiting.
//!
//! Internally every offset is *relative* (`rel = offset - start_offset`); the
//! public API adds the start offset back.
//!
//! # The write protocol
//! 1. Everything that runs user code happens first: the payload size check
//!    (`AsRef`), the clock, collecting a batch's iterator.
//! 2. Claim: `tail.fetch_add(n)`. The claim is the linearisation point against
//!    `close`, which sets the `CLOSED` bit of `tail` with `fetch_or`: a claim
//!    that returns a value without the bit lands, one with it fails `Closed`.
//! 3. Find the segment (`segment_for_write`): normally one acquire load of the
//!    ring place's `index`; the first writer into a new segment installs it,
//!    purging the oldest.
//! 4. Publish the slot (Release store of its stamp) and move the high-water
//!    mark over every contiguous published offset (`advance`).
//!
//! No user code and no allocation that can fail softly runs between 2 and 4,
//! so a claimed offset is always published and can never wedge the mark:
//! purged records that a pin here collects are dropped later (reclaim.rs),
//! and parked readers are woken (their wakers run) only once the mark is
//! carried over every offset this writer is responsible for (`advance`).
//!
//! # The high-water mark and who moves it
//! `high_water` is the first relative offset that is not known published;
//! every offset below it is published and its segment was installed. Only
//! read-modify-writes change it (see `advance` and `wait.rs`), and it moves only
//! over slots whose stamps the mover has seen.

use crate::builder::Config;
use crate::reclaim::{Guard, Reclaimer};
use crate::segment::{Pool, Retired, RingSlot, Segment};
use crate::slot::{Entry, Slot};
use crate::sync::{current, park, park_timeout, AtomicBool, AtomicU64, Backoff, Ordering};
use crate::sync::{yield_now, Arc};
use crate::wait::{Waiter, Waiters};
use crate::{Error, Record, RecordRef};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

/// Set in `tail` by `close`.
pub(crate) const CLOSED: u64 = 1 << 63;
/// `closed_end` before `close` stored it. Not a real offset's value: the
/// field holds the end plus one, so that no position a stream may ask for
/// (`u64::MAX` included) reads as "closed".
const NOT_CLOSED: u64 = 0;

/// Why a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The awaited offset is published.
    Ready,
    /// The log is closed and the awaited offset will never be written.
    Closed,
    /// The waiter's cancel flag is set.
    Cancelled,
    /// The deadline passed.
    TimedOut,
    /// Not published, but claimed by the exclusive writer, which is between
    /// its claim and its publish: do not sleep, it is coming (writer.rs).
    Claimed,
}

pub(crate) struct Inner<T> {
    /// Next relative offset to claim; bit 63 is `CLOSED`. Writers claim with
    /// `fetch_add` (one record) or a compare-exchange that refuses a closed
    /// log (a batch); a single claim that fails `Closed` gives its increment
    /// back, so failed claims never add up into the `CLOSED` bit.
    ///
    /// With an exclusive writer, only that writer stores it, by plain stores
    /// (writer.rs), and it has no `CLOSED` bit: `closing` says closed.
    pub(crate) tail: CachePadded<AtomicU64>,
    /// Every relative offset below it is published.
    pub(crate) high_water: CachePadded<AtomicU64>,
    /// Base (relative) of the oldest segment that is not purged.
    first_retained: AtomicU64,
    /// One more than the value of `tail` when the log was closed (the end of
    /// what was written), or `NOT_CLOSED`. Stored once, by the winning `close`.
    pub(crate) closed_end: AtomicU64,
    /// Set by `close` on a log with an exclusive writer (unused otherwise):
    /// nobody may read-modify-write the `tail` that writer stores.
    pub(crate) closing: AtomicBool,
    pub(crate) waiters: Waiters,
    ring: Box<[RingSlot<T>]>,
    pool: Arc<Pool<T>>,
    reclaimer: Reclaimer,
    pub(crate) cfg: Config<T>,
}

// SAFETY: the slots' cells are accessed only under the publish protocol above:
// one writer per slot before publication, shared (cloning) reads after it, and
// exclusive access when a segment is reclaimed or the log dropped. Entries move
// in from writer threads and are dropped on any thread (`T: Send`) and are
// read by reference from many threads at once (`T: Sync`).
unsafe impl<T: Send + Sync> Send for Inner<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send + Sync> Sync for Inner<T> {}

impl<T: Send + Sync + 'static> Inner<T> {
    pub(crate) fn new(cfg: Config<T>) -> Self {
        Inner {
            tail: CachePadded::new(AtomicU64::new(0)),
            high_water: CachePadded::new(AtomicU64::new(0)),
            first_retained: AtomicU64::new(0),
            closed_end: AtomicU64::new(NOT_CLOSED),
            closing: AtomicBool::new(false),
            waiters: Waiters::new(),
            ring: (0..cfg.ring_len).map(|_| RingSlot::new()).collect(),
            pool: Arc::new(Pool::new(cfg.segment_size as usize)),
            reclaimer: Reclaimer::new(),
            cfg,
        }
    }

    #[inline]
    fn ring_slot(&self, k: u64) -> &RingSlot<T> {
        &self.ring[(k % self.cfg.ring_div) as usize]
    }

    /// `(segment, slot)` of relative offset `rel`.
    #[inline]
    fn split(&self, rel: u64) -> (u64, u64) {
        strength_reduce::StrengthReducedU64::div_rem(rel, self.cfg.seg_div)
    }

    /// Base relative offset of segment `k`.
    #[inline]
    fn base(&self, k: u64) -> u64 {
        k * self.cfg.segment_size
    }

    // ---------------------------------------------------------------- writing

    /// Claims one offset; `Err(Closed)` if the log is closed.
    #[inline]
    pub(crate) fn claim_one(&self) -> Result<u64, Error> {
        // Relaxed: the RMW alone makes claims unique; publication is ordered
        // by the slot stamps and the high-water mark, not by `tail`.
        let rel = self.tail.fetch_add(1, Ordering::Relaxed);
        if rel & CLOSED != 0 {
            // Give the increment back: only claims racing with this one can
            // have added theirs, so the count past the close stays bounded
            // by the number of threads and can never carry into `CLOSED`.
            self.tail.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Closed);
        }
        Ok(rel)
    }

    /// Claims `n` contiguous offsets; `Err(Closed)` if the log is closed.
    /// A compare-exchange loop rather than `fetch_add`: a batch may be as
    /// large as the log's capacity, so a failed one must add nothing.
    pub(crate) fn claim_batch(&self, n: u64) -> Result<u64, Error> {
        let mut cur = self.tail.load(Ordering::Relaxed);
        loop {
            if cur & CLOSED != 0 {
                return Err(Error::Closed);
            }
            // `cur + n` does not reach `CLOSED`: `n` is at most
            // `MAX_RETAINED` (2^62) and writing 2^62 records takes centuries.
            // Relaxed: as in `claim_one`.
            match self.tail.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(cur),
                Err(now) => cur = now,
            }
        }
    }

    /// Writes and publishes one entry at the claimed relative offset `rel`:
    /// the hot path of `Log::write`.
    #[inline]
    pub(crate) fn publish_one(&self, rel: u64, entry: Entry<T>) {
        let (k, i) = self.split(rel);
        let seg = self.segment_for_write(k);
        // SAFETY: as in `publish_claimed`; `i < segment_size == slots.len()`.
        unsafe {
            let slots: &[Slot<T>] = &(*seg).slots;
            slots.get_unchecked(i as usize).publish(rel, entry);
        }
        self.advance(rel, rel + 1);
    }

    /// Writes and publishes `entries` at the claimed offsets starting at `rel`,
    /// one segment at a time, and moves the high-water mark over them.
    pub(crate) fn publish_claimed(&self, rel: u64, entries: impl Iterator<Item = Entry<T>>) {
        let exclusive = self.cfg.exclusive;
        let mut entries = entries.peekable();
        let mut at = rel;
        let mut moved = false;
        while entries.peek().is_some() {
            let (k, mut i) = self.split(at);
            let seg = self.segment_for_write(k);
            let from = at;
            while i < self.cfg.segment_size {
                let Some(entry) = entries.next() else { break };
                // SAFETY: this thread claimed `at`; segment `k` stays installed
                // until `at` is published (segment.rs lifetime rules), and a
                // slot is published at most once per install.
                unsafe { (*seg).slots[i as usize].publish(at, entry) };
                at += 1;
                i += 1;
            }
            // Publish this segment's part before installing the next one: an
            // install may wait for these very offsets (`install`).
            if exclusive {
                self.store_mark(at);
                moved = true;
            } else {
                moved |= self.move_mark(from, at);
            }
        }
        // Wakers are user code: they run only once the whole batch is
        // published and the mark carried over it, so that one that panics or
        // blocks can not leave the batch's later segments claimed and never
        // published. A count loaded after the last move is loaded after
        // every move, which is all the handshake asks (wait.rs, writer.rs).
        if moved {
            self.waiters.notify_if_any();
        }
    }

    /// The segment of relative offset `rel` (claimed by the caller, not yet
    /// published) and the relative offsets it holds.
    #[inline]
    pub(crate) fn write_segment(&self, rel: u64) -> (*const Segment<T>, u64, u64) {
        let (k, _) = self.split(rel);
        let lo = self.base(k);
        (self.segment_for_write(k), lo, lo + self.cfg.segment_size)
    }

    /// The segment for relative offset in segment `k`, which this thread has
    /// claimed but not yet published.
    ///
    /// The returned pointer stays valid until the caller publishes its offsets
    /// in it: the segment can not be purged before that (segment.rs).
    #[inline]
    fn segment_for_write(&self, k: u64) -> *const Segment<T> {
        let place = self.ring_slot(k);
        // Acquire pairs with the Release `fetch_max` in `install`, after
        // the pointer was installed: the load below sees that pointer, and it
        // can not have moved on since (segment `k + H + 1` waits for us).
        if place.index_plus_1.load(Ordering::Acquire) == k + 1 {
            return place.ptr.load(Ordering::Relaxed);
        }
        self.install(k)
    }

    /// Installs segment `k` (or finds it installed by another writer), purging
    /// the segment it replaces.
    #[cold]
    fn install(&self, k: u64) -> *const Segment<T> {
        // In the claim window: what this pin collects waits (reclaim.rs).
        let guard = self.reclaimer.pin();
        let place = self.ring_slot(k);
        // The segment `k` replaces is `k - H - 1`; it may be purged only when
        // all of it is published, i.e. the mark has reached segment `k - H`.
        let need = self.base(k.saturating_sub(self.cfg.history));
        let backoff = Backoff::new();
        let mut spare: Option<Box<Segment<T>>> = None;
        // The installed segment and its index. Acquire: see the contents of
        // whatever segment is installed.
        let installed = || {
            let cur = place.ptr.load(Ordering::Acquire);
            // SAFETY: `cur` was loaded while pinned, so it is not reclaimed
            // before `guard` drops.
            (cur, (!cur.is_null()).then(|| unsafe { (*cur).index }))
        };
        loop {
            let (cur, cur_index) = installed();
            if cur_index == Some(k) {
                if let Some(s) = spare {
                    self.pool.put(s);
                }
                return cur;
            }
            if self.high_water.load(Ordering::Acquire) < need {
                // A writer of an older segment has claimed but not published:
                // it holds the CPU we need on a small machine, so spin briefly,
                // then yield.
                if backoff.is_completed() {
                    yield_now();
                } else {
                    backoff.snooze();
                }
                continue;
            }
            // With the mark at `need`, segment `k - H - 1` was installed and
            // is fully published, so the place holds it, or segment `k`, or
            // nothing if `k` is the place's first. `cur` may be older than
            // that: it was loaded before the mark, and other writers may
            // have installed and published meanwhile. Reload.
            let (cur, cur_index) = installed();
            if cur_index == Some(k) {
                if let Some(s) = spare {
                    self.pool.put(s);
                }
                return cur;
            }
            debug_assert!(match cur_index {
                Some(i) => i + self.cfg.ring_len == k,
                None => k < self.cfg.ring_len,
            });
            let mut new = spare.take().unwrap_or_else(|| self.pool.take());
            new.index = k;
            let new = Box::into_raw(new);
            // Purge point first, so that `range()` never reports a segment
            // that is already unlinked. Every contender computes the same
            // value, after seeing the mark reach it, so it never passes the mark.
            self.first_retained.fetch_max(need, Ordering::Release);
            // AcqRel: Release publishes the new segment's contents (index,
            // cleared stamps); Acquire on failure sees the winner's.
            match place
                .ptr
                .compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    place.index_plus_1.fetch_max(k + 1, Ordering::Release);
                    if !cur.is_null() {
                        self.retire(cur, &guard);
                    }
                    return new;
                }
                Err(_) => {
                    // Another writer installed segment `k`; keep ours as spare.
                    // SAFETY: `new` was never shared; take it back.
                    let mut s = unsafe { Box::from_raw(new) };
                    s.index = crate::segment::EMPTY;
                    spare = Some(s);
                }
            }
        }
    }

    /// Hands an unlinked segment to the reclaimer. The deferred closure
    /// drops no record inside a memlog call: see reclaim.rs.
    fn retire(&self, seg: *mut Segment<T>, guard: &Guard<'_>) {
        let retired = Retired(seg);
        let pool = Arc::clone(&self.pool);
        guard.defer(move || {
            // SAFETY: `seg` was unlinked from the ring by our
            // compare_exchange, and the reclaimer runs this only after
            // every thread pinned at that point has unpinned.
            unsafe { crate::reclaim::postpone_reclaim(retired, pool) };
        });
    }

    /// Moves the high-water mark after this thread published `[from, to)`,
    /// then wakes parked readers if it moved the mark.
    ///
    /// Writers finish out of order. Whoever finds the mark at the start of its
    /// published run moves it to the end of the contiguous published run; a
    /// writer that finds an earlier offset still unpublished announces its own
    /// publish with an RMW and leaves: the RMW comes before the laggard's
    /// eventual compare-exchange in the mark's modification order, so the
    /// laggard's scan sees these stamps and carries the mark over them.
    ///
    /// Waking runs user code (a `Waker`), so it comes last, once the mark is
    /// carried over every run this writer is responsible for: a waker that
    /// panics can not leave an announced publish uncovered.
    #[inline]
    fn advance(&self, from: u64, to: u64) {
        // After every RMW of the mark by this writer: the wake-up handshake
        // (wait.rs) needs the count loaded after the move, not right after.
        if self.move_mark(from, to) {
            self.waiters.notify_if_any();
        }
    }

    /// `advance` without the wake-up; returns whether it moved the mark.
    #[inline]
    fn move_mark(&self, from: u64, to: u64) -> bool {
        // Fast path, the only one a lone writer takes: the mark is at our run
        // and nothing was claimed after it.
        // AcqRel: as in `carry`.
        if self
            .high_water
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // Nothing was claimed past `to` (seen through the Acquire above):
            // no out-of-order finisher can be waiting for us.
            if self.tail.load(Ordering::Relaxed) & !CLOSED > to {
                let end = self.published_end(to);
                self.carry(to, end);
            }
            true
        } else {
            self.carry(from, to)
        }
    }

    /// `advance` beyond its fast path: carries the mark from `expected` to
    /// `new`, whose offsets are published, and on over any run found after.
    /// Returns whether it moved the mark.
    #[cold]
    fn carry(&self, mut expected: u64, mut new: u64) -> bool {
        let mut moved = false;
        while new != expected {
            // AcqRel: Release hands our stamps (and everything the mark now
            // covers) to readers; Acquire sees the stamps of writers whose
            // announce-RMW came before, and registered waiters (wait.rs).
            match self.high_water.compare_exchange(
                expected,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    moved = true;
                    // Nothing was claimed past `new` (seen through the Acquire
                    // above): no out-of-order finisher can be waiting for us.
                    if self.tail.load(Ordering::Relaxed) & !CLOSED <= new {
                        break;
                    }
                    expected = new;
                    new = self.published_end(expected);
                }
                // Someone already carried the mark past our run (and goes on
                // scanning past it themselves).
                Err(cur) if cur >= new => break,
                // Someone moved it into our run: retry from there.
                Err(cur) if cur > expected => expected = cur,
                // An earlier offset is unpublished (only possible before our
                // first success): announce, then leave it to that writer.
                Err(_) => {
                    let cur = self.high_water.fetch_add(0, Ordering::AcqRel);
                    if cur < expected || cur >= new {
                        break;
                    }
                    expected = cur;
                }
            }
        }
        moved
    }

    /// The first relative offset at or after `from` that is not published.
    #[cold]
    fn published_end(&self, from: u64) -> u64 {
        // Pinned: offsets at `from` and beyond may belong to other writers who
        // could see them covered and purged while we look.
        let guard = self.reclaimer.pin();
        let mut at = from;
        loop {
            let (k, i) = self.split(at);
            let Installed::Current(seg) = self.segment_state(k, &guard) else {
                return at;
            };
            for slot in &seg.slots[i as usize..] {
                if !slot.is_published(at) {
                    return at;
                }
                at += 1;
            }
        }
    }

    // ---------------------------------------------------------------- reading

    /// The high-water mark (relative): every offset below it is readable
    /// unless purged.
    #[inline]
    pub(crate) fn high_water(&self) -> u64 {
        // Acquire pairs with the AcqRel RMWs that move it.
        self.high_water.load(Ordering::Acquire)
    }

    /// `(first retained, high-water)`, relative, with `first <= high`.
    pub(crate) fn bounds(&self) -> (u64, u64) {
        // First retained before the mark: it was set only after the mark
        // reached it, so this order gives `first <= high`.
        let first = self.first_retained.load(Ordering::Acquire);
        (first, self.high_water())
    }

    /// Reads relative offset `rel`, which the caller knows to be below the
    /// high-water mark (it loaded the mark with Acquire).
    #[inline]
    pub(crate) fn read_published(&self, rel: u64) -> Result<Record<T>, Error>
    where
        T: Clone,
    {
        let guard = self.reclaimer.pin();
        let (k, i) = self.split(rel);
        let seg = self.segment_for_read(k, &guard).ok_or(Error::OutOfRange)?;
        let slot = &seg.slots[i as usize];
        debug_assert!(slot.is_published(rel));
        // SAFETY: `rel` is below the mark and its segment is the one we hold
        // pinned, so the slot holds the published entry for `rel`.
        Ok(unsafe { slot.read(|e| self.record(rel, e)) })
    }

    /// Clones up to `max` consecutive records from `rel` into `out`: those
    /// below `hw` (known published), then, if `by_stamp`, those whose own
    /// stamps say they are published. Each stamp is checked in order, so the
    /// run stays gapless; `by_stamp` is for an in-order reader that has read
    /// `rel - 1` and so knows every offset below `rel` is published. It never
    /// loads the mark, whose cache line the writers' compare-exchange owns: a
    /// caught-up stream then shares only the slots' lines with the writer, as
    /// in crossbeam-channel or the disruptor. Independent slot loads let the
    /// CPU overlap the cache misses of a run.
    ///
    /// Returns how many were cloned; `FutureOffset` if none is readable yet,
    /// `OutOfRange` if `rel`'s segment was purged.
    pub(crate) fn read_run(
        &self,
        rel: u64,
        hw: u64,
        by_stamp: bool,
        max: usize,
        out: &mut VecDeque<Record<T>>,
    ) -> Result<usize, Error>
    where
        T: Clone,
    {
        self.walk_run(rel, hw, by_stamp, max, |at, e| {
            let record = if at == rel {
                self.record(at, e)
            } else {
                // A clone made ahead must not panic on behalf of an earlier
                // record: end the run, and let the read that asks for this
                // record clone it (and panic) itself.
                let clone = std::panic::AssertUnwindSafe(|| self.record(at, e));
                match std::panic::catch_unwind(clone) {
                    Ok(r) => r,
                    Err(_) => return false,
                }
            };
            out.push_back(record);
            true
        })
    }

    /// Whether a stamp-judged read of `rel` (`read_run` with `by_stamp`)
    /// would not return `FutureOffset`.
    fn stamped(&self, rel: u64) -> bool {
        let guard = self.reclaimer.pin();
        let (k, i) = self.split(rel);
        match self.segment_state(k, &guard) {
            Installed::Current(seg) => seg.slots[i as usize].is_published(rel),
            Installed::NotYet => false,
            Installed::Purged => true,
        }
    }

    /// Which incarnation of ring place `k % (H + 1)` is installed.
    #[inline]
    fn segment_state<'g>(&self, k: u64, _guard: &'g Guard<'_>) -> Installed<'g, T> {
        // Acquire: see the segment's contents as installed.
        let p = self.ring_slot(k).ptr.load(Ordering::Acquire);
        if p.is_null() {
            return Installed::NotYet;
        }
        // SAFETY: loaded while pinned by `_guard`: not reclaimed before it drops.
        let seg = unsafe { &*p };
        // A place only moves to higher indices (segment.rs).
        match seg.index.cmp(&k) {
            std::cmp::Ordering::Equal => Installed::Current(seg),
            std::cmp::Ordering::Less => Installed::NotYet,
            std::cmp::Ordering::Greater => Installed::Purged,
        }
    }

    /// Segment `k` if it is still installed. The reference lives as long as
    /// the guard.
    #[inline]
    fn segment_for_read<'g>(&self, k: u64, guard: &'g Guard<'_>) -> Option<&'g Segment<T>> {
        // Below the mark, segment `k` was installed, so any other index means
        // it was purged (the ring place is reused).
        match self.segment_state(k, guard) {
            Installed::Current(seg) => Some(seg),
            Installed::NotYet | Installed::Purged => None,
        }
    }

    fn record(&self, rel: u64, e: &Entry<T>) -> Record<T>
    where
        T: Clone,
    {
        Record {
            offset: self.cfg.start + rel,
            created: e.created,
            data: e.data.clone(),
        }
    }

    /// Appends up to `max` records from `rel` (below the mark `hw`) to `out`.
    pub(crate) fn read_batch_published(
        &self,
        rel: u64,
        hw: u64,
        out: &mut Vec<Record<T>>,
        max: usize,
    ) -> Result<usize, Error>
    where
        T: Clone,
    {
        let end = hw.min(rel.saturating_add(max as u64));
        let guard = self.reclaimer.pin();
        let mut at = rel;
        while at < end {
            let (k, i) = self.split(at);
            let Some(seg) = self.segment_for_read(k, &guard) else {
                if at == rel {
                    return Err(Error::OutOfRange);
                }
                // A later segment was purged while we read: stop at the gap.
                break;
            };
            let n = (self.cfg.segment_size - i).min(end - at);
            // Per segment: `end - rel` may be huge when `rel` is far behind.
            out.reserve(n as usize);
            for slot in &seg.slots[i as usize..(i + n) as usize] {
                // SAFETY: below the mark, in the segment we hold pinned.
                out.push(unsafe { slot.read(|e| self.record(at, e)) });
                at += 1;
            }
        }
        Ok((at - rel) as usize)
    }

    // ------------------------------------------------------ zero-copy reading

    /// Pins for a [`Pinned`](crate::Pinned) reader. What the pin collects
    /// waits for the thread's next drain (reclaim.rs).
    pub(crate) fn pin(&self) -> Guard<'_> {
        self.reclaimer.pin()
    }

    /// Calls `f` with up to `max` consecutive records from `rel`, by
    /// reference and in order, each judged ready exactly as `read_run` judges
    /// it, and so ending where `read_run` would. `f` runs under the pin: if
    /// it panics, the panic unwinds out of here, unpinning, and the records
    /// before it were visited.
    ///
    /// Returns how many were visited; `FutureOffset` if none is readable yet,
    /// `OutOfRange` if `rel`'s segment was purged.
    pub(crate) fn visit_run(
        &self,
        rel: u64,
        hw: u64,
        by_stamp: bool,
        max: usize,
        mut f: impl FnMut(RecordRef<'_, T>),
    ) -> Result<usize, Error> {
        self.walk_run(rel, hw, by_stamp, max, |at, e| {
            f(self.record_ref(at, e));
            true
        })
    }

    /// The one walk of a run of ready records, for `read_run` and
    /// `visit_run`: hands `sink` up to `max` consecutive entries from `rel`,
    /// those below `hw` (known published), then, if `by_stamp`, those whose
    /// own stamps say they are published, in order, ending at the first one
    /// not ready or at a segment purged meanwhile. `sink` returning false
    /// ends the run before that entry.
    ///
    /// It pins once per segment, so a long run (or a slow sink) holds back
    /// the reclamation of purged segments (memory) only for one segment.
    ///
    /// Returns how many entries the sink took; `FutureOffset` if none is
    /// ready, `OutOfRange` if `rel`'s segment was purged.
    fn walk_run(
        &self,
        rel: u64,
        hw: u64,
        by_stamp: bool,
        max: usize,
        mut sink: impl FnMut(u64, &Entry<T>) -> bool,
    ) -> Result<usize, Error> {
        let end = rel.saturating_add(max as u64);
        let mut at = rel;
        'segments: while at < end {
            let guard = self.reclaimer.pin();
            let (k, i) = self.split(at);
            let seg = match self.segment_state(k, &guard) {
                Installed::Current(seg) => seg,
                Installed::NotYet => break,
                Installed::Purged if at == rel => return Err(Error::OutOfRange),
                // A later segment was purged during the run: stop at the gap.
                Installed::Purged => break,
            };
            for slot in &seg.slots[i as usize..] {
                if at == end || (at >= hw && !(by_stamp && slot.is_published(at))) {
                    break 'segments;
                }
                // SAFETY: published (below the mark, or stamp acquired just
                // above), in the segment `guard` pins until `sink` returns.
                if !unsafe { slot.read(|e| sink(at, e)) } {
                    break 'segments;
                }
                at += 1;
            }
        }
        if at == rel {
            return Err(Error::FutureOffset);
        }
        Ok((at - rel) as usize)
    }

    /// The record at `rel` by reference, for as long as `guard` pins it,
    /// judged as `Log::read` judges it: `FutureOffset` at or above the mark,
    /// `OutOfRange` if its segment is no longer installed (the index check
    /// of `segment_for_read`: never another offset's record). `hw` holds a
    /// mark loaded earlier (every offset below it is published: the mark
    /// only grows), so a read below it loads nothing the writers write.
    pub(crate) fn get_pinned<'g>(
        &self,
        rel: u64,
        hw: &Cell<u64>,
        guard: &'g Guard<'_>,
    ) -> Result<RecordRef<'g, T>, Error> {
        if rel >= hw.get() {
            hw.set(self.high_water());
            if rel >= hw.get() {
                return Err(Error::FutureOffset);
            }
        }
        let (k, i) = self.split(rel);
        let seg = self.segment_for_read(k, guard).ok_or(Error::OutOfRange)?;
        // SAFETY: below a mark loaded with Acquire, in the segment `guard`
        // pins for all of `'g`.
        let e = unsafe { seg.slots[i as usize].get() };
        Ok(self.record_ref(rel, e))
    }

    #[inline]
    fn record_ref<'e>(&self, rel: u64, e: &'e Entry<T>) -> RecordRef<'e, T> {
        RecordRef {
            offset: self.cfg.start + rel,
            created: e.created,
            data: &e.data,
        }
    }

    // ---------------------------------------------------------------- waiting

    fn check_done(&self, rel: u64, cancel: Option<&AtomicBool>) -> Option<Wait> {
        if cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
            return Some(Wait::Cancelled);
        }
        let end = self.closed_end.load(Ordering::Acquire);
        if end != NOT_CLOSED && rel >= end - 1 {
            return Some(Wait::Closed);
        }
        None
    }

    /// Whether a read of `rel` would not return `FutureOffset` (judged by the
    /// slot's stamp if `by_stamp`, see `read_run`, else by the mark), or
    /// why it never will for this waiter.
    #[inline]
    pub(crate) fn poll_ready(
        &self,
        rel: u64,
        by_stamp: bool,
        cancel: Option<&AtomicBool>,
    ) -> Option<Wait> {
        let ready = if by_stamp {
            self.stamped(rel)
        } else {
            self.high_water() > rel
        };
        if ready {
            return Some(Wait::Ready);
        }
        self.check_done(rel, cancel)
    }

    /// The sleeper's half of the handshake in wait.rs, after it registered:
    /// re-reads the mark with an RMW and re-checks close and cancel. (A stamp
    /// already published while the mark lags is caught too; if it is
    /// published later, the writer that then moves the mark wakes us.)
    pub(crate) fn recheck_registered(
        &self,
        rel: u64,
        by_stamp: bool,
        cancel: Option<&AtomicBool>,
    ) -> Option<Wait> {
        if self.cfg.exclusive {
            // The exclusive writer moves nothing with an RMW: meet it on its
            // claim, through the asymmetric fence (writer.rs).
            let claimed = self.meet_exclusive_writer();
            if self.high_water() > rel || (by_stamp && self.stamped(rel)) {
                return Some(Wait::Ready);
            }
            if claimed > rel {
                return Some(Wait::Claimed);
            }
        } else if self.high_water.fetch_add(0, Ordering::AcqRel) > rel
            || (by_stamp && self.stamped(rel))
        {
            return Some(Wait::Ready);
        }
        self.check_done(rel, cancel)
    }

    /// `wait_for` for a busy-spinning stream (`Stream::busy_spin`): never
    /// parks, so it takes no part in the wake-up handshake. It polls the
    /// mark, which needs no pin (on the stamp path the mark trails the slot
    /// stamps by at most the time a writer takes to move it), and every
    /// 64 rounds does the full check, stamp included, and the deadline.
    pub(crate) fn spin_for(
        &self,
        rel: u64,
        by_stamp: bool,
        cancel: Option<&AtomicBool>,
        deadline: Option<Instant>,
    ) -> Wait {
        let mut round = 0u32;
        loop {
            if self.high_water() > rel {
                return Wait::Ready;
            }
            round = round.wrapping_add(1);
            if round % 64 == 0 {
                if let Some(w) = self.poll_ready(rel, by_stamp, cancel) {
                    return w;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Wait::TimedOut;
                }
            }
            crate::sync::spin_loop();
        }
    }

    /// Blocks until `rel` is published, the log closes below it, `cancel` is
    /// set, or `deadline` passes: spins with `Backoff`, then parks.
    pub(crate) fn wait_for(
        &self,
        rel: u64,
        by_stamp: bool,
        cancel: Option<&AtomicBool>,
        deadline: Option<Instant>,
    ) -> Wait {
        let backoff = Backoff::new();
        loop {
            if let Some(w) = self.poll_ready(rel, by_stamp, cancel) {
                return w;
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            // About to sleep, registered nowhere: what this thread's pins
            // postponed is dropped now rather than after the wait.
            crate::reclaim::drain();
            let timeout = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(t) if !t.is_zero() => Some(t),
                    _ => return Wait::TimedOut,
                },
                None => None,
            };
            let id = self.waiters.register(Waiter::Thread(current()));
            let ready = self.recheck_registered(rel, by_stamp, cancel);
            if ready.is_none() {
                match timeout {
                    Some(t) => park_timeout(t),
                    None => park(),
                }
            }
            self.waiters.deregister(id);
            match ready {
                // The exclusive writer is publishing it: let it run (on a
                // small machine it may need this very core), then look again.
                Some(Wait::Claimed) => yield_now(),
                Some(w) => return w,
                None => {}
            }
        }
    }
}

/// What needs no bound on `T`: closing, and where the log ends (for
/// `Writer`'s `Drop` and `Debug`, which have none).
impl<T> Inner<T> {
    /// Closes the log: later claims fail, waiters wake. Returns once the
    /// end of what was written is stored, also when another thread's
    /// `close` won the race.
    pub(crate) fn close(&self) {
        if self.cfg.exclusive {
            self.close_exclusive();
        } else {
            let prev = self.tail.fetch_or(CLOSED, Ordering::AcqRel);
            if prev & CLOSED == 0 {
                // Everything claimed before the fetch_or will be published;
                // streams drain up to here and stop.
                self.closed_end.store(prev + 1, Ordering::Release);
            } else {
                self.closed_end();
            }
        }
        self.waiters.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        if self.cfg.exclusive {
            return self.closing.load(Ordering::Acquire);
        }
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// The end of what was written, once the log is closed; waits for the
    /// winning `close` to store it (it runs no user code in between).
    pub(crate) fn closed_end(&self) -> u64 {
        let backoff = Backoff::new();
        loop {
            let end = self.closed_end.load(Ordering::Acquire);
            if end != NOT_CLOSED {
                return end - 1;
            }
            if backoff.is_completed() {
                yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    /// The next offset a write would get (relative); once closed, the end of
    /// what was written (not counting claims that failed `Closed`).
    pub(crate) fn tail(&self) -> u64 {
        if self.cfg.exclusive {
            if self.is_closed() {
                return self.closed_end();
            }
            // The mark, not `tail`: the writer's claim store there may yet be
            // refused by a racing `close` and taken back
            // (`claim_while_closing`), and a thread other than the writer's
            // could see that store and not yet `closing`. The mark counts
            // only writes that landed; on the writer's own thread, between
            // its writes, it equals `tail`. It only grows, and the end a
            // `close` fixes is at or past it (writer.rs), so this never goes
            // back. Acquire: as in `high_water()` (which needs `T: Send`).
            return self.high_water.load(Ordering::Acquire);
        }
        let t = self.tail.load(Ordering::Acquire);
        if t & CLOSED != 0 {
            return self.closed_end();
        }
        t
    }
}

/// Which segment a ring place holds, relative to the one wanted.
enum Installed<'g, T> {
    /// The wanted segment.
    Current(&'g Segment<T>),
    /// An older one, or none: the wanted segment is not installed yet.
    NotYet,
    /// A newer one: the wanted segment was purged.
    Purged,
}

impl<T> Drop for Inner<T> {
    /// Drops every retained record; a record's `Drop` that panics does not
    /// stop the others (as with a `Vec`), and the first panic is resumed
    /// once all are dropped.
    fn drop(&mut self) {
        let mut first_panic = None;
        for place in self.ring.iter() {
            let p = place.ptr.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: every handle is gone, so nothing else can reach the
                // ring; installed segments are owned by it (`Box::into_raw`).
                let mut seg = unsafe { Box::from_raw(p) };
                if let Some(panic) = seg.drop_entries() {
                    first_panic.get_or_insert(panic);
                }
            }
        }
        if let Some(p) = first_panic {
            std::panic::resume_unwind(p);
        }
    }
}

/// Builds the entry for a write: no user code runs after this.
#[inline]
pub(crate) fn entry<T>(created: SystemTime, data: T) -> Entry<T> {
    Entry { created, data }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Error, Log, MAX_RETAINED};

    /// Claims that fail after `close` add nothing to `tail`: batches as large
    /// as the largest capacity, tried again and again, never carry into the
    /// `CLOSED` bit and reopen the log.
    #[test]
    fn failed_claims_never_reopen_a_closed_log() {
        let log: Log<()> = Log::new();
        log.write(()).unwrap();
        log.close();
        let inner = &log.inner;
        for _ in 0..4 {
            assert_eq!(inner.claim_batch(MAX_RETAINED), Err(Error::Closed));
            assert_eq!(inner.claim_one(), Err(Error::Closed));
            assert!(inner.is_closed());
            assert_eq!(inner.tail(), 1);
        }
        assert_eq!(log.write(()), Err(Error::Closed));
    }
}
