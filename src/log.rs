//! [`Inner`], what every handle of a log shares: the sequencer (the writing
//! mode's cursors and rules, mode/), the ring of segments (ring.rs), the
//! waiters (wait.rs) and the configuration; and the questions a reader asks
//! before it waits (is the next offset ready, or will it never be).
//!
//! Where each protocol lives: a slot and its publish stamp, slot.rs; a
//! segment and its lifetime, segment.rs; installing and purging, ring.rs;
//! claiming and the high-water mark, mode/shared.rs and mode/exclusive.rs;
//! reading, walk.rs; the wait/wake handshake, wait.rs; a stream's driver,
//! driver.rs; reclamation and where purged records are dropped, reclaim.rs.

use crate::config::Config;
use crate::mode::Sequencer;
use crate::ring::Ring;
use crate::sync::{AtomicBool, Ordering};
use crate::wait::Wait;
use crate::wait::Waiters;
use crate::Error;
use std::time::Instant;

pub(crate) struct Inner<T> {
    pub(crate) seq: Sequencer,
    pub(crate) ring: Ring<T>,
    pub(crate) waiters: Waiters,
    pub(crate) cfg: Config<T>,
}

// SAFETY: the slots' cells are accessed only under the publish protocol
// (slot.rs): one writer per slot before publication, shared reads after it,
// and exclusive access when a segment is reclaimed or the log dropped.
// Entries move in from writer threads and are dropped on any thread
// (`T: Send`) and are read by reference from many threads at once
// (`T: Sync`).
unsafe impl<T: Send + Sync> Send for Inner<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send + Sync> Sync for Inner<T> {}

impl<T> Inner<T> {
    pub(crate) fn new(cfg: Config<T>, seq: Sequencer) -> Self {
        Inner {
            seq,
            ring: Ring::new(&cfg),
            waiters: Waiters::new(),
            cfg,
        }
    }

    /// Closes the log: later claims fail, waiters wake.
    pub(crate) fn close(&self) {
        self.seq.close(|| self.ring.held_end());
        self.waiters.notify_all();
    }

    /// The high-water mark (relative): every offset below it is readable
    /// unless purged.
    #[inline]
    pub(crate) fn high_water(&self) -> u64 {
        self.seq.mark()
    }

    /// `(first retained, high-water)`, relative, with `first <= high`.
    pub(crate) fn bounds(&self) -> (u64, u64) {
        // First retained before the mark: it was raised only after the mark
        // reached it, so this order gives `first <= high`.
        let first = self.ring.first_retained();
        (first, self.high_water())
    }

    /// `Err(RecordTooLarge)` if `max_record_bytes` is set and `data`
    /// exceeds it (user code: `AsRef`; callers run it before any claim).
    pub(crate) fn check_size(&self, data: &T) -> Result<(), Error> {
        if let Some((max, size_of)) = self.cfg.max_record {
            let len = size_of(data);
            if len > max {
                return Err(Error::RecordTooLarge { len, max });
            }
        }
        Ok(())
    }
}

/// What a reader asks before it waits for relative offset `rel`: judged by
/// the slot's stamp if `by_stamp` (see `Sequencer::stamps_lead`), else by
/// the mark.
impl<T: Send + Sync + 'static> Inner<T> {
    /// Why a wait for `rel` will never end in a record: cancelled, or
    /// closed below it.
    fn done(&self, rel: u64, cancel: &AtomicBool) -> Option<Wait> {
        if cancel.load(Ordering::Acquire) {
            return Some(Wait::Cancelled);
        }
        self.seq.closed_below(rel).then_some(Wait::Closed)
    }

    /// Whether a read of `rel` would not return `FutureOffset`, or why it
    /// never will for this waiter; `None`: not yet.
    #[inline]
    pub(crate) fn poll_ready(&self, rel: u64, by_stamp: bool, cancel: &AtomicBool) -> Option<Wait> {
        let ready = if by_stamp {
            self.ring.stamped(rel)
        } else {
            self.high_water() > rel
        };
        if ready {
            return Some(Wait::Ready);
        }
        self.done(rel, cancel)
    }

    /// `poll_ready` for a reader that has registered its waiter: the
    /// sleeper's half of the handshake (wait.rs, mode/). `None`: sleep; any
    /// publish of `rel` from here on wakes it.
    pub(crate) fn recheck_registered(
        &self,
        rel: u64,
        by_stamp: bool,
        cancel: &AtomicBool,
    ) -> Option<Wait> {
        self.seq
            .recheck(rel, || by_stamp && self.ring.stamped(rel))
            .or_else(|| self.done(rel, cancel))
    }

    /// For a busy-spinning stream (`Stream::busy_spin`): never parks, so it
    /// takes no part in the wake-up handshake. It polls the mark, which
    /// needs no pin (on the stamp path the mark trails the slot stamps by at
    /// most the time a writer takes to move it), and every 64 rounds does
    /// the full check, stamp included, and the deadline.
    pub(crate) fn spin_for(
        &self,
        rel: u64,
        by_stamp: bool,
        cancel: &AtomicBool,
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
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::mode::Mode;
    use crate::{Error, Log, MAX_RETAINED};

    /// Claims that fail after `close` add nothing to `tail`: batches as large
    /// as the largest capacity, tried again and again, never carry into the
    /// `CLOSED` bit and reopen the log.
    #[test]
    fn failed_claims_never_reopen_a_closed_log() {
        let log: Log<()> = Log::new();
        log.write(()).unwrap();
        log.close();
        let seq = &log.inner.seq;
        let Mode::Shared(m) = &seq.mode else {
            unreachable!()
        };
        for _ in 0..4 {
            assert_eq!(
                m.claim_batch(&seq.cursors, MAX_RETAINED, |_| Ok(())),
                Err(Error::Closed)
            );
            assert_eq!(m.claim_one(&seq.cursors), Err(Error::Closed));
            assert!(seq.is_closed());
            assert_eq!(seq.next(), 1);
        }
        assert_eq!(log.write(()), Err(Error::Closed));
    }
}
