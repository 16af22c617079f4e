//! The ring of retained segments: publishing into a claimed slot, installing
//! a segment and purging the one it replaces, and retiring purged segments
//! to the reclaimer. The lifetime rules are in segment.rs.
//!
//! Internally every offset is *relative* (`rel = offset - start_offset`).

use crate::config::Config;
use crate::hold::Holds;
use crate::reclaim::{Guard, Reclaimer};
use crate::segment::{Pool, Retired, RingSlot, Segment};
use crate::slot::{Entry, Slot};
use crate::sync::{yield_now, Arc, AtomicU64, Backoff, Ordering};
use crate::Error;
use strength_reduce::StrengthReducedU64;

/// Bits of `Ring::hot` that hold the ring place (`MAX_HISTORY_SEGMENTS + 1`
/// places fit).
const PLACE_BITS: u32 = 21;

pub(crate) struct Ring<T> {
    /// The newest installed segment and its ring place, packed as
    /// `index << PLACE_BITS | place`, raised (`fetch_max`) after each
    /// install: a hint that lets a single write find its segment without
    /// dividing its offset (`publish_one`), checked by the place's index as
    /// any lookup is. 0 before the first install (segment 0, place 0: the
    /// check then fails until it is installed).
    hot: crossbeam_utils::CachePadded<AtomicU64>,
    places: Box<[RingSlot<T>]>,
    pool: Arc<Pool<T>>,
    reclaimer: Reclaimer,
    /// Base (relative) of the oldest segment that is not purged; raised by
    /// the installer that purges, before it unlinks (`install`).
    first_retained: AtomicU64,
    /// The streams that hold segments from being purged (hold.rs).
    pub(crate) holds: Holds,
    /// The log's start offset, to turn relative offsets back (walk.rs).
    pub(crate) start: u64,
    pub(crate) segment_size: u64,
    seg_div: StrengthReducedU64,
    history: u64,
    ring_len: u64,
    ring_div: StrengthReducedU64,
}

/// Which segment a ring place holds, relative to the one wanted.
pub(crate) enum Installed<'g, T> {
    /// The wanted segment.
    Current(&'g Segment<T>),
    /// An older one, or none: the wanted segment is not installed yet.
    NotYet,
    /// A newer one: the wanted segment was purged.
    Purged,
}

impl<T> Ring<T> {
    pub(crate) fn new(cfg: &Config<T>) -> Self {
        Ring {
            hot: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            places: (0..cfg.ring_len).map(|_| RingSlot::new()).collect(),
            pool: Arc::new(Pool::new(cfg.segment_size as usize)),
            reclaimer: Reclaimer::new(),
            first_retained: AtomicU64::new(0),
            holds: Holds::new(cfg.history),
            start: cfg.start,
            segment_size: cfg.segment_size,
            seg_div: StrengthReducedU64::new(cfg.segment_size),
            history: cfg.history,
            ring_len: cfg.ring_len,
            ring_div: StrengthReducedU64::new(cfg.ring_len),
        }
    }

    #[inline]
    fn place(&self, k: u64) -> &RingSlot<T> {
        &self.places[(k % self.ring_div) as usize]
    }

    /// `(segment, slot)` of relative offset `rel`.
    #[inline]
    pub(crate) fn split(&self, rel: u64) -> (u64, u64) {
        StrengthReducedU64::div_rem(rel, self.seg_div)
    }

    /// Base relative offset of segment `k`.
    #[inline]
    pub(crate) fn base(&self, k: u64) -> u64 {
        k * self.segment_size
    }

    /// The first relative offset that installing segment `k` keeps: the
    /// segment it replaces, `k - H - 1`, ends there.
    #[inline]
    fn purged_below(&self, k: u64) -> u64 {
        self.base(k.saturating_sub(self.history))
    }

    /// Whether installing segment `k` for a write that starts at relative
    /// `first` purges the write's own first records: then the longest
    /// write that never does, `segment_size * history_segments + 1`.
    pub(crate) fn purges_own_start(&self, first: u64, k: u64) -> Option<usize> {
        let (s, _) = self.split(first);
        (k > s.saturating_add(self.history)).then(|| {
            let max = self
                .segment_size
                .saturating_mul(self.history)
                .saturating_add(1);
            usize::try_from(max).unwrap_or(usize::MAX)
        })
    }

    /// Closing: fixes the holds (hold.rs) and returns the first relative
    /// offset they forbid writing (`u64::MAX`: none).
    pub(crate) fn held_end(&self) -> u64 {
        self.holds.freeze().saturating_mul(self.segment_size)
    }

    /// For a write that looks before it claims (`try_write` and its kin):
    /// `Some(k)` if writing up to relative offset `last` would install
    /// segment `k` and the holds forbid it now; `None` if it may go on (the
    /// segment is installed, or the holds admit it: a writer then announced
    /// its purge, see hold.rs).
    pub(crate) fn held(&self, last: u64) -> Option<u64> {
        let (k, _) = self.split(last);
        // Acquire: as in `segment_for_write`.
        if self.place(k).index_plus_1.load(Ordering::Acquire) == k + 1 {
            return None;
        }
        // A plain look first: a write refused here announces no purge, so
        // that a hold set later on the records it would have purged (still
        // retained) does not fail on its behalf (hold.rs: `intent` only rises).
        if self.holds.forbids(k) {
            return Some(k);
        }
        (!self.holds.admit(k, self.purged_below(k))).then_some(k)
    }

    /// The oldest retained relative offset: every offset below it was
    /// purged. Raised only after the mark reached it.
    pub(crate) fn first_retained(&self) -> u64 {
        self.first_retained.load(Ordering::Acquire)
    }

    /// Pins the reclaimer; what the pin collects waits for the thread's
    /// next drain (reclaim.rs).
    #[inline]
    pub(crate) fn pin(&self) -> Guard<'_> {
        self.reclaimer.pin()
    }

    /// Which incarnation of ring place `k % (H + 1)` is installed: the one
    /// lookup of a segment by every reader (walk.rs).
    #[inline]
    pub(crate) fn lookup<'g>(&self, k: u64, _guard: &'g Guard<'_>) -> Installed<'g, T> {
        // Acquire: see the segment's contents as installed.
        let p = self.place(k).ptr.load(Ordering::Acquire);
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
}

impl<T: Send + Sync + 'static> Ring<T> {
    /// Stores and publishes `entry` at the claimed relative offset `rel`;
    /// `Err(Closed)` if its segment is held and the log closed while this
    /// waited (hold.rs): then nothing is published, and `rel` is past the
    /// end the close fixed.
    #[inline]
    pub(crate) fn publish_one(
        &self,
        rel: u64,
        entry: Entry<T>,
        mark: &AtomicU64,
    ) -> Result<(), Error> {
        // Relaxed: a hint; what it names is checked by the place's index,
        // acquired, as in `segment_for_write`.
        let hot = self.hot.load(Ordering::Relaxed);
        let (hk, hp) = (hot >> PLACE_BITS, (hot & ((1 << PLACE_BITS) - 1)) as usize);
        if let Some(base) = hk.checked_mul(self.segment_size) {
            let i = rel.wrapping_sub(base);
            if i < self.segment_size {
                if let Some(place) = self.places.get(hp) {
                    // As in `segment_for_write`: segment `hk` is installed in
                    // this place, and stays until `rel` is published.
                    if place.index_plus_1.load(Ordering::Acquire) == hk + 1 {
                        let seg = place.ptr.load(Ordering::Relaxed);
                        // SAFETY: as below: `rel` is in segment `hk`, slot `i`.
                        unsafe { Self::publish_in(seg, i, rel, entry) };
                        return Ok(());
                    }
                }
            }
        }
        let (k, i) = self.split(rel);
        let seg = self.segment_for_write(k, mark)?;
        // SAFETY: this thread claimed `rel` (the only writer of its slot);
        // segment `k` stays installed until `rel` is published (segment.rs),
        // and `i` is `rel`'s slot in it.
        unsafe { Self::publish_in(seg, i, rel, entry) };
        Ok(())
    }

    /// Publishes `entry` in slot `i` of `seg`.
    ///
    /// # Safety
    /// This thread claimed `rel` (the only writer of its slot), `seg` is its
    /// installed segment (it stays installed until `rel` is published:
    /// segment.rs), and `i` is `rel`'s slot in it (`< segment_size`).
    #[inline(always)]
    unsafe fn publish_in(seg: *const Segment<T>, i: u64, rel: u64, entry: Entry<T>) {
        // SAFETY: the caller's contract; `i < segment_size == slots.len()`.
        unsafe {
            let slots: &[Slot<T>] = &(*seg).slots;
            slots.get_unchecked(i as usize).publish(rel, entry);
        }
    }

    /// Stores and publishes `entries` at the claimed offsets from `rel`, one
    /// segment at a time, calling `published(from, to)` after each segment's
    /// part, before the next segment is installed: an install may wait for
    /// these very offsets to be covered by the mark (`install`).
    ///
    /// The holds must admit the run's last segment before it is claimed
    /// (`held`): then no install on the way waits for a hold (hold.rs),
    /// and this never fails.
    pub(crate) fn publish_run(
        &self,
        rel: u64,
        entries: impl Iterator<Item = Entry<T>>,
        mark: &AtomicU64,
        mut published: impl FnMut(u64, u64),
    ) {
        let mut entries = entries.peekable();
        let mut at = rel;
        while entries.peek().is_some() {
            let (k, mut i) = self.split(at);
            let seg = self
                .segment_for_write(k, mark)
                .expect("a run admitted before its claim installs without waiting");
            let from = at;
            while i < self.segment_size {
                let Some(entry) = entries.next() else { break };
                // SAFETY: as in `publish_one`: this thread claimed `at`, in
                // segment `k`, installed until `at` is published.
                unsafe { (*seg).slots[i as usize].publish(at, entry) };
                at += 1;
                i += 1;
            }
            published(from, at);
        }
    }

    /// The segment of relative offset `rel` (claimed by the caller, not yet
    /// published) and the relative offsets it holds: for the exclusive
    /// writer, which keeps it until it moves past `hi`.
    #[inline]
    pub(crate) fn write_segment(
        &self,
        rel: u64,
        mark: &AtomicU64,
    ) -> Result<(*const Slot<T>, u64, u64), Error> {
        let (k, _) = self.split(rel);
        let lo = self.base(k);
        let seg = self.segment_for_write(k, mark)?;
        // SAFETY: the installed segment of `rel`, which the caller claimed:
        // valid until `rel` is published (segment.rs).
        let slots = unsafe { (*seg).slots.as_ptr() };
        Ok((slots, lo, lo + self.segment_size))
    }

    /// The segment for relative offset in segment `k`, which this thread has
    /// claimed but not yet published. The pointer stays valid until the
    /// caller publishes its offsets in it: the segment can not be purged
    /// before that (segment.rs).
    #[inline]
    fn segment_for_write(&self, k: u64, mark: &AtomicU64) -> Result<*const Segment<T>, Error> {
        let place = self.place(k);
        // Acquire pairs with the Release `fetch_max` in `install`, after
        // the pointer was installed: the load below sees that pointer, and it
        // can not have moved on since (segment `k + H + 1` waits for us).
        if place.index_plus_1.load(Ordering::Acquire) == k + 1 {
            return Ok(place.ptr.load(Ordering::Relaxed));
        }
        self.install(k, mark)
    }

    /// Installs segment `k` (or finds it installed by another writer),
    /// purging the segment it replaces once the mark says all of that one
    /// is published and the holds admit it (hold.rs): `Err(Closed)` if the
    /// log closed while the holds kept it waiting.
    #[cold]
    fn install(&self, k: u64, mark: &AtomicU64) -> Result<*const Segment<T>, Error> {
        let place = self.place(k);
        // The segment `k` replaces is `k - H - 1`; it may be purged only when
        // all of it is published, i.e. the mark has reached segment `k - H`.
        let need = self.purged_below(k);
        let backoff = Backoff::new();
        let mut spare: Option<Box<Segment<T>>> = None;
        'pinned: loop {
            // In the claim window: what this pin collects waits (reclaim.rs).
            let guard = self.reclaimer.pin();
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
                    return Ok(cur);
                }
                // Acquire: the stamps below the mark, and the segments they are in.
                if mark.load(Ordering::Acquire) < need {
                    // Closed with `k` forbidden by the holds: this claim is past
                    // the end, and so may be the one the mark waits for, whose
                    // writer gave up `Closed` (hold.rs): give up too.
                    if self.holds.closed_from(k) {
                        if let Some(s) = spare {
                            self.pool.put(s);
                        }
                        return Err(Error::Closed);
                    }
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
                    return Ok(cur);
                }
                // The holds admit the purge (hold.rs), or this waits for them
                // unpinned (a hold may last long). Every offset below `need` is
                // published (the mark), so the holders can read on.
                if !self.holds.admit(k, need) {
                    drop(guard);
                    self.holds.wait(k)?;
                    continue 'pinned;
                }
                // Closed with `k` forbidden, and the holds moved on since: this
                // claim is still past the end the close fixed (hold.rs). A
                // close after the look above freezes a gate past `k`.
                if self.holds.closed_from(k) {
                    if let Some(s) = spare {
                        self.pool.put(s);
                    }
                    return Err(Error::Closed);
                }
                debug_assert!(match cur_index {
                    Some(i) => i + self.ring_len == k,
                    None => k < self.ring_len,
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
                        if k < 1 << (64 - PLACE_BITS) {
                            let p = k % self.ring_div;
                            // Relaxed: a hint (see `hot`). `fetch_max`: an
                            // installer preempted here must not lower it.
                            self.hot.fetch_max(k << PLACE_BITS | p, Ordering::Relaxed);
                        }
                        if !cur.is_null() {
                            self.retire(cur, &guard);
                        }
                        return Ok(new);
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
}

impl<T> Drop for Ring<T> {
    /// Drops every retained record; a record's `Drop` that panics does not
    /// stop the others (as with a `Vec`), and the first panic is resumed
    /// once all are dropped.
    fn drop(&mut self) {
        let mut first_panic = None;
        for place in self.places.iter() {
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
