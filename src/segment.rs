//! Segments, the ring that holds the retained ones, and the spare pool.
//!
//! Segment `k` holds relative offsets `k*S .. (k+1)*S` in `S` slots. The ring
//! has `H + 1` places (`H` = history segments); segment `k` lives in place
//! `k % (H + 1)`, so installing segment `k` unlinks segment `k - H - 1`: that
//! is the purge. The unlinked segment is handed to epoch-based reclamation
//! ([`crate::reclaim`]); once no pinned reader can hold it, its entries are
//! dropped and it goes to a small spare pool that the next install takes from,
//! so a log in steady state allocates no segments.
//!
//! Lifetime rules (each relied on by a `SAFETY` comment elsewhere):
//! - A ring place only ever moves to a higher segment index.
//! - Segment `k + H + 1` is installed only once the high-water mark has passed
//!   the end of segment `k` (`Inner::install`). So a segment can not be
//!   unlinked while any of its offsets is claimed but unpublished, and a writer
//!   may use its own segment without pinning until it has published.
//! - A reader that is not the segment's writer pins, loads the ring place and
//!   checks `index`: the slot ring is reused, so the pointer alone says nothing
//!   about which offsets it holds (ABA).

use crate::slot::Slot;
use crate::sync::{AtomicPtr, AtomicU64, Ordering};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr;

/// Marks a segment whose entries have been dropped (in the spare pool).
pub(crate) const EMPTY: u64 = u64::MAX;

pub(crate) struct Segment<T> {
    /// Which segment this is. Written only while the segment is owned
    /// exclusively (before install), read by whoever loads it from the ring.
    pub(crate) index: u64,
    pub(crate) slots: Box<[Slot<T>]>,
}

impl<T> Segment<T> {
    pub(crate) fn new(size: usize) -> Box<Self> {
        Box::new(Segment {
            index: EMPTY,
            slots: (0..size).map(|_| Slot::new()).collect(),
        })
    }

    /// Drops every published entry and marks the segment empty. A `Drop`
    /// that panics does not stop the others: every entry is dropped, as a
    /// `Vec` does, and the first panic is returned for the caller to resume
    /// once its own state is consistent.
    ///
    /// Takes `&mut self`: the caller owns the segment, so no reader or writer
    /// can reach it.
    #[must_use = "a panic of a record's Drop must be resumed"]
    pub(crate) fn drop_entries(&mut self) -> Option<Panic> {
        if self.index == EMPTY {
            return None;
        }
        let base = self.index * self.slots.len() as u64;
        self.index = EMPTY;
        if !std::mem::needs_drop::<T>() {
            // Nothing to drop, and the stamps may stay: each holds an offset
            // of this or an earlier incarnation, which no later offset's
            // check matches (slot.rs).
            return None;
        }
        let mut first = None;
        for (i, slot) in self.slots.iter().enumerate() {
            // SAFETY: `&mut self` is exclusive access to every slot. A slot
            // whose drop panicked has its stamp cleared already, so it is
            // never dropped twice.
            let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
                slot.drop_if_published(base + i as u64)
            }));
            if let Err(p) = dropped {
                first.get_or_insert(p);
            }
        }
        first
    }
}

/// A panic caught while dropping records, to be resumed.
pub(crate) type Panic = Box<dyn std::any::Any + Send>;

/// One place of the ring.
pub(crate) struct RingSlot<T> {
    /// The installed segment, or null before the first install here.
    pub(crate) ptr: AtomicPtr<Segment<T>>,
    /// One more than the index of the segment in `ptr` (0: none yet), raised
    /// with `fetch_max` (Release) right after the install. A writer that reads
    /// its own segment here (Acquire) may use `ptr` without pinning: see the
    /// lifetime rules above. `fetch_max`, not a store: an installer preempted
    /// after its compare-exchange must not lower it once the next segment is in.
    pub(crate) index_plus_1: AtomicU64,
}

impl<T> RingSlot<T> {
    pub(crate) fn new() -> Self {
        RingSlot {
            ptr: AtomicPtr::new(ptr::null_mut()),
            index_plus_1: AtomicU64::new(0),
        }
    }
}

/// Reclaimed segments, kept for reuse. Two places are enough for a steady
/// state in which one segment is purged per segment written; more would only
/// hold memory.
pub(crate) struct Pool<T> {
    spares: [AtomicPtr<Segment<T>>; 2],
    segment_size: usize,
}

impl<T> Pool<T> {
    pub(crate) fn new(segment_size: usize) -> Self {
        Pool {
            spares: [
                AtomicPtr::new(ptr::null_mut()),
                AtomicPtr::new(ptr::null_mut()),
            ],
            segment_size,
        }
    }

    /// An empty segment: a spare if there is one, else a new allocation.
    pub(crate) fn take(&self) -> Box<Segment<T>> {
        for spare in &self.spares {
            // Swap, not compare-and-swap: no ABA, and Acquire sees the
            // segment as `put` left it.
            let p = spare.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: a non-null spare came from `Box::into_raw` in `put`,
                // and the swap gave this thread sole ownership of it.
                return unsafe { Box::from_raw(p) };
            }
        }
        Segment::new(self.segment_size)
    }

    /// Keeps an empty segment for reuse, or frees it if the pool is full.
    pub(crate) fn put(&self, seg: Box<Segment<T>>) {
        debug_assert_eq!(seg.index, EMPTY);
        let p = Box::into_raw(seg);
        for spare in &self.spares {
            // Release: the taker sees the segment's contents as left here.
            if spare
                .compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
        // SAFETY: `p` came from `Box::into_raw` above and was not stored.
        drop(unsafe { Box::from_raw(p) });
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        for spare in &self.spares {
            let p = spare.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: spares are owned by the pool; `&mut self` is exclusive.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// A segment pointer handed to the reclaimer.
pub(crate) struct Retired<T>(pub(crate) *mut Segment<T>);

// SAFETY: a retired segment has been unlinked from the ring; the reclaimer's
// closure is its sole owner, and dropping its entries on another thread needs
// only `T: Send`.
unsafe impl<T: Send> Send for Retired<T> {}

impl<T> Retired<T> {
    /// Drops the entries of a retired segment and returns it to the pool.
    ///
    /// # Safety
    /// The segment was unlinked from the ring, and no pinned thread can still
    /// hold it (the reclaimer calls this only after a grace period).
    ///
    /// Runs records' `Drop`: the reclaimer calls it only outside every
    /// claim window (reclaim.rs). A panicking `Drop` is resumed after the
    /// segment is back in the pool.
    pub(crate) unsafe fn reclaim(self, pool: &Pool<T>) {
        // SAFETY: the pointer came from `Box::into_raw` when it was installed
        // and, per the caller's contract, nobody else can reach it.
        let mut seg = unsafe { Box::from_raw(self.0) };
        let panic = seg.drop_entries();
        pool.put(seg);
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}
