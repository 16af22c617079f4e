//! The wait/wake handshake between writers and parked readers.
//!
//! Readers first spin on the high-water mark (crossbeam-utils `Backoff`), and
//! only then register here and sleep. Writers must pay nothing when nobody
//! sleeps: after moving the high-water mark they do one relaxed load of
//! `count` and, only if it is non-zero, take the lock and wake everyone.
//!
//! # Why no wake-up is lost
//! The writer moves the mark with a read-modify-write (`compare_exchange`,
//! AcqRel) and then loads `count`. A reader that is about to sleep increments
//! `count` (under the lock, with its waker in the list) and then re-reads the
//! mark with a read-modify-write too (`fetch_add(0)`, AcqRel), sleeping only if
//! the mark has not passed the offset it wants. Read-modify-writes on one
//! atomic are totally ordered and each reads the latest value:
//! - if the reader's RMW comes after the writer's, it reads the new mark and
//!   does not sleep;
//! - if it comes before, the writer's acquire RMW reads from the release
//!   sequence that the reader's RMW heads, so the reader's increment of
//!   `count` happens-before the writer's load, which therefore sees it and
//!   wakes the reader (an unpark before park makes park return at once).
//!
//! This is the Dekker-style handshake without a `SeqCst` fence on the writer's
//! path: both sides meet on the one cache line the writer already owns.
//! A log with an exclusive writer moves its mark by plain stores, so there
//! the two sides meet through an asymmetric fence instead (mode/exclusive.rs,
//! mode/exclusive/fence.rs): the reader runs the heavy half after registering.
//! Events that are not moves of the mark (close, cancel) take the lock and
//! wake everyone unconditionally; the lock orders them against registration.

use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, Thread};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Why a wait for an offset ended, or why it must not sleep.
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
    /// Not published, but claimed by a writer that is between its claim and
    /// its publish and will wake no one for it: do not sleep, it is coming
    /// (the exclusive writer, exclusive.rs).
    Imminent,
}

/// Something to wake: a parked thread or an async task.
#[derive(Debug)]
pub(crate) enum Waiter {
    Thread(Thread),
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    Task(std::task::Waker),
}

impl Waiter {
    /// Whether `other` wakes the same thread or task.
    pub(crate) fn is_same(&self, other: &Waiter) -> bool {
        match (self, other) {
            (Waiter::Thread(a), Waiter::Thread(b)) => a.id() == b.id(),
            (Waiter::Task(a), Waiter::Task(b)) => a.will_wake(b),
            _ => false,
        }
    }

    pub(crate) fn wake(self) {
        match self {
            Waiter::Thread(t) => t.unpark(),
            Waiter::Task(w) => w.wake(),
        }
    }
}

#[derive(Debug, Default)]
struct List {
    next_id: u64,
    entries: Vec<(u64, Waiter)>,
}

/// The set of sleeping readers of one log.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    /// Number of entries in `list`; read without the lock by writers.
    count: AtomicUsize,
    /// How many times `notify_all` emptied the list; raised under the lock.
    /// An entry registered in round `r` is gone once this passed `r`, so
    /// its owner leaves without the lock (`deregister`).
    rounds: AtomicU64,
    list: Mutex<List>,
}

/// An entry in the waiters: its id, and the round it was registered in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registration {
    id: u64,
    round: u64,
}

impl Waiters {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, List> {
        // A panic while holding this lock can only come from a `Waker`'s own
        // code, which runs outside it; recover the list rather than wedge.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `w`; the caller must re-check its condition with an RMW on the
    /// high-water mark before sleeping (see the module docs).
    pub(crate) fn register(&self, w: Waiter) -> Registration {
        let mut l = self.lock();
        let id = l.next_id;
        l.next_id += 1;
        l.entries.push((id, w));
        // Relaxed: ordered before the reader's release RMW on the mark.
        self.count.fetch_add(1, Ordering::Relaxed);
        // Relaxed: written only under the lock we hold.
        let round = self.rounds.load(Ordering::Relaxed);
        Registration { id, round }
    }

    /// Whether a `notify_all` has taken every entry of `r`'s round, `r`'s
    /// own included, so that there is nothing left to remove.
    fn taken(&self, r: Registration) -> bool {
        // Acquire: pairs with the Release raise in `notify_all`, after it
        // took the entries (the taking is done: the waker is not ours).
        self.rounds.load(Ordering::Acquire) != r.round
    }

    /// Removes entry `r` if a wake has not already taken it. Without the
    /// lock when a wake has (the usual case after a sleep).
    pub(crate) fn deregister(&self, r: Registration) {
        if self.taken(r) {
            return;
        }
        let removed = {
            let mut l = self.lock();
            let pos = l.entries.iter().position(|(i, _)| *i == r.id);
            pos.map(|pos| {
                self.count.fetch_sub(1, Ordering::Relaxed);
                l.entries.swap_remove(pos)
            })
        };
        // A `Waker`'s drop is user code (it may drop a stream of this very
        // log, which takes the lock): only after the lock is released.
        drop(removed);
    }

    /// Replaces the waker of entry `id` if it is still registered, else
    /// registers `w` afresh; returns the id to deregister later.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) fn reregister(&self, r: Option<Registration>, w: Waiter) -> Registration {
        if let Some(r) = r.filter(|&r| !self.taken(r)) {
            let old = {
                let mut l = self.lock();
                match l.entries.iter_mut().find(|(i, _)| *i == r.id) {
                    Some(e) => Ok(std::mem::replace(&mut e.1, w)),
                    None => Err(w),
                }
            };
            match old {
                // As in `deregister`: the old waker drops outside the lock.
                Ok(old) => {
                    drop(old);
                    return r;
                }
                Err(w) => return self.register(w),
            }
        }
        self.register(w)
    }

    /// Number of registered waiters (racy: for tests and diagnostics).
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The writer's side: wakes everyone if anyone is registered.
    #[inline]
    pub(crate) fn notify_if_any(&self) {
        // Relaxed is enough: the caller's acquire RMW on the mark makes every
        // registration that must be seen happen-before this load.
        if self.count.load(Ordering::Relaxed) != 0 {
            self.notify_all();
        }
    }

    /// Wakes every registered waiter and empties the list.
    ///
    /// Wakers are user code and run outside the lock. One that panics does
    /// not keep the others asleep: every waiter is woken, then the first
    /// panic is resumed (the caller has already carried the mark).
    pub(crate) fn notify_all(&self) {
        let (one, many) = {
            let mut l = self.lock();
            let n = l.entries.len();
            self.count.fetch_sub(n, Ordering::Relaxed);
            // Under the lock, so a load and a store: only lock holders
            // write it. Release: see `taken`.
            let round = self.rounds.load(Ordering::Relaxed);
            self.rounds.store(round + 1, Ordering::Release);
            if n == 1 {
                // One sleeper, the common case: the list keeps its
                // allocation for the next registration.
                (l.entries.pop(), Vec::new())
            } else {
                (None, std::mem::take(&mut l.entries))
            }
        };
        let mut first_panic = None;
        for (_, w) in one.into_iter().chain(many) {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| w.wake())) {
                first_panic.get_or_insert(p);
            }
        }
        if let Some(p) = first_panic {
            resume_unwind(p);
        }
    }
}
