//! [`Cursors`]: the three words every writing mode keeps. Who writes each,
//! and how, is the mode's (shared.rs, exclusive.rs).

use crate::sync::{yield_now, AtomicU64, Backoff, Ordering};
use crossbeam_utils::CachePadded;

/// `closed_end` before `close` stored it. Not a real offset's value: the
/// field holds the end plus one, so that no position a stream may ask for
/// (`u64::MAX` included) reads as "closed".
const NOT_CLOSED: u64 = 0;

/// The three words every mode keeps; who writes them, and how, is the
/// mode's (shared.rs, exclusive.rs).
pub(crate) struct Cursors {
    /// The next relative offset to claim (see each mode for its encoding).
    pub(crate) tail: CachePadded<AtomicU64>,
    /// The high-water mark: every relative offset below it is published
    /// and its segment was installed. Only grows.
    pub(crate) mark: CachePadded<AtomicU64>,
    /// One more than the end of what was written once the log is closed,
    /// or `NOT_CLOSED`. Stored once, by the winning `close`.
    closed_end: AtomicU64,
}

impl Cursors {
    pub(super) fn new() -> Self {
        Cursors {
            tail: CachePadded::new(AtomicU64::new(0)),
            mark: CachePadded::new(AtomicU64::new(0)),
            closed_end: AtomicU64::new(NOT_CLOSED),
        }
    }

    /// Stores the end of what was written (the winning `close` only).
    pub(crate) fn set_end(&self, end: u64) {
        // Release: pairs with the Acquire loads in `end` and `closed_below`.
        self.closed_end.store(end + 1, Ordering::Release);
    }

    /// The end of what was written, once the log is closed; waits for the
    /// winning `close` to store it (it runs no user code in between).
    pub(crate) fn end(&self) -> u64 {
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

    /// Whether the log is closed and `rel` is at or past its end.
    pub(crate) fn closed_below(&self, rel: u64) -> bool {
        let end = self.closed_end.load(Ordering::Acquire);
        end != NOT_CLOSED && rel >= end - 1
    }
}
