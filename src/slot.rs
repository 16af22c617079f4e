//! A slot: one record's storage and its publish stamp.
//!
//! The protocol reads off two fields, as in crossbeam-channel's array flavor:
//! `stamp` says which offset the cell currently holds a complete record for,
//! `cell` holds it. A writer owns the slot of the offset it claimed, fills the
//! cell, then stores `stamp = rel + 1` with `Release`. A reader that loads that
//! stamp with `Acquire` (directly, or through the high-water mark, which only
//! passes slots whose stamp it has seen) sees the whole record.
//!
//! When a purged segment is reclaimed, each entry is dropped and its stamp
//! cleared to 0, so a recycled segment starts with every slot unpublished.
//! For a `T` with nothing to drop the stamps are left as they are: a stamp
//! is an absolute offset (`rel + 1`), a recycled segment only ever holds
//! later offsets, so a stale stamp never reads as published.

use crate::sync::{AtomicU64, Ordering, UnsafeCell};
use std::mem::MaybeUninit;
use std::time::SystemTime;

/// What a slot stores: the offset is implied by the slot's position.
pub(crate) struct Entry<T> {
    pub(crate) created: SystemTime,
    pub(crate) data: T,
}

pub(crate) struct Slot<T> {
    /// `rel + 1` once the record for relative offset `rel` is complete; 0 for never written.
    stamp: AtomicU64,
    cell: UnsafeCell<MaybeUninit<Entry<T>>>,
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Self {
        Slot {
            stamp: AtomicU64::new(0),
            cell: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores the record for `rel` and publishes it.
    ///
    /// # Safety
    /// The caller has claimed `rel` (so no other thread writes this slot) and
    /// the slot holds no live entry: it was never written, or its previous
    /// entry was dropped when its segment was reclaimed.
    #[inline]
    pub(crate) unsafe fn publish(&self, rel: u64, entry: Entry<T>) {
        // SAFETY: the caller has exclusive write access (it claimed `rel`), and
        // no reader reads the cell before it sees the stamp stored below.
        self.cell.with_mut(|p| unsafe { (*p).write(entry) });
        // Release: makes the cell write visible to whoever acquires the stamp.
        self.stamp.store(rel + 1, Ordering::Release);
    }

    /// Whether the record for `rel` is published in this slot.
    #[inline]
    pub(crate) fn is_published(&self, rel: u64) -> bool {
        // Acquire pairs with the Release in `publish`.
        self.stamp.load(Ordering::Acquire) == rel + 1
    }

    /// The published record, borrowed for as long as the slot is: every
    /// read lends it (walk.rs), clones it, or hands it out by reference
    /// under its pin (`Pinned`).
    ///
    /// # Safety
    /// For as long as the borrow of `self` lasts: the record for some offset
    /// is published here (its stamp was acquired, directly or through the
    /// high-water mark), and the segment can not be reclaimed before the
    /// borrow ends (the caller is pinned for as long, or owns the segment).
    #[inline]
    pub(crate) unsafe fn get(&self) -> &Entry<T> {
        // Under loom only this access is checked, not the borrow's uses.
        let entry = self.cell.with(|p| p.cast::<Entry<T>>());
        // SAFETY: published means initialised; no writer touches the cell
        // again, nor is it dropped, until the segment is reclaimed, which
        // the caller's pin rules out while `self` is borrowed.
        unsafe { &*entry }
    }

    /// Drops the entry for `rel` if it is published here.
    ///
    /// # Safety
    /// The caller owns the segment exclusively (no reader or writer can reach it).
    pub(crate) unsafe fn drop_if_published(&self, rel: u64) {
        if self.stamp.load(Ordering::Acquire) == rel + 1 {
            // Mark the cell empty first, so that a second call is a no-op.
            self.stamp.store(0, Ordering::Relaxed);
            // SAFETY: the stamp says the cell holds the entry for `rel`, and the
            // caller has exclusive access.
            self.cell.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}
