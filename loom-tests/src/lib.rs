//! Helpers shared by the loom models in `tests/` (run them with
//! `RUSTFLAGS="--cfg loom"`; see README.md).
//!
//! - [`log`]: a tiny log (segment size and history chosen by the model, so
//!   that rotation and purge happen inside it) on a [`ManualClock`], so every
//!   record's `created` is the known [`T0`].
//! - [`Counted`]: a payload that counts its live instances per id, so a model
//!   can assert that every record (and every clone a reader took) was dropped
//!   exactly once: no leak, no double drop.
//! - `model`: `loom::model` with a default preemption bound of 2 when
//!   `LOOM_MAX_PREEMPTIONS` is not set, so that a plain run terminates.
//! - `explore` and `Seen`: a model that notes which outcomes its
//!   iterations reached, so the test can assert that loom really explored
//!   both sides of the race it is named after. Loom's DPOR keeps only the last
//!   access per atomic, so a load that is followed by another thread's load
//!   and then that thread's store can have its race missed (tokio-rs/loom
//!   #166, #392); a model whose coverage assertion fails is blind, not green.

use memlog::clock::ManualClock;
use memlog::Log;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time every record of a model's log carries.
pub const T0: SystemTime = UNIX_EPOCH;

/// A log with `segment_size` records per segment and `history` history
/// segments, stamped by a manual clock that stays at [`T0`].
pub fn log<T: Clone + Send + Sync + 'static>(segment_size: usize, history: usize) -> Log<T> {
    // `UNIX_EPOCH + 0`: spelled out so the constant and the clock agree.
    Log::builder()
        .segment_size(segment_size)
        .history_segments(history)
        .clock(ManualClock::new(T0 + Duration::ZERO))
        .build()
        .expect("valid model configuration")
}

/// Makes a memlog call on this thread that reads and writes nothing: purged
/// records that this thread's earlier calls collected are dropped at the
/// start of its next call. (Or when the thread exits; but loom's `join`
/// returns before a thread's locals are dropped, where std's waits for it.)
pub fn drop_postponed<T: Clone + Send + Sync + 'static>(log: &Log<T>) {
    assert!(matches!(
        log.read(u64::MAX),
        Err(memlog::Error::FutureOffset)
    ));
}

/// A log as [`log`] builds it, with an exclusive writer.
pub fn exclusive<T: Clone + Send + Sync + 'static>(
    segment_size: usize,
    history: usize,
) -> (memlog::Writer<T>, Log<T>) {
    Log::builder()
        .segment_size(segment_size)
        .history_segments(history)
        .clock(ManualClock::new(T0 + Duration::ZERO))
        .build_exclusive()
        .expect("valid model configuration")
}

/// Live-instance counters, one per payload id, for one model iteration.
///
/// Created fresh inside each iteration (std atomics: the counters are the
/// model's bookkeeping, not part of the protocol under test).
#[derive(Clone, Debug)]
pub struct Census(Arc<Vec<AtomicUsize>>);

impl Census {
    /// Counters for ids `0..n`, all zero.
    pub fn new(n: usize) -> Self {
        Census(Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect()))
    }

    /// A new payload with id `id` (counts as one live instance).
    pub fn make(&self, id: usize) -> Counted {
        self.0[id].fetch_add(1, Ordering::Relaxed);
        Counted {
            id,
            census: self.clone(),
        }
    }

    /// Live instances of `id`.
    pub fn live(&self, id: usize) -> usize {
        self.0[id].load(Ordering::Relaxed)
    }

    /// Panics unless every instance ever created (originals and clones) has
    /// been dropped exactly once.
    pub fn assert_all_dropped(&self) {
        for id in 0..self.0.len() {
            assert_eq!(self.live(id), 0, "payload {id}: created != dropped (leak)");
        }
    }
}

/// A payload that counts itself: construction and `Clone` add one live
/// instance of its id, `Drop` removes one and panics if there was none (a
/// double drop).
#[derive(Debug)]
pub struct Counted {
    /// Which payload this is (or is a clone of).
    pub id: usize,
    census: Census,
}

impl Counted {
    /// The census this payload counts in.
    pub fn census(&self) -> Census {
        self.census.clone()
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.census.make(self.id)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let prev = self.census.0[self.id].fetch_sub(1, Ordering::Relaxed);
        assert!(
            prev > 0,
            "payload {}: dropped more often than created",
            self.id
        );
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// Runs `f` under loom's model checker, with a preemption bound of 2 unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise, and prints how many interleavings
/// it explored (visible with `--nocapture`).
#[cfg(loom)]
pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let started = std::time::Instant::now();
    b.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "{}: {} interleavings in {:.2?}",
        std::thread::current().name().unwrap_or("model"),
        runs.load(Ordering::Relaxed),
        started.elapsed()
    );
}

/// The outcomes a model's iterations reached (std types: bookkeeping outside
/// the model; loom runs one thread at a time, so they see the schedule's real
/// order).
#[derive(Clone, Debug, Default)]
pub struct Seen(Arc<Mutex<BTreeSet<String>>>);

impl Seen {
    /// Records that this iteration reached `outcome`.
    pub fn note(&self, outcome: impl Into<String>) {
        self.0.lock().unwrap().insert(outcome.into());
    }

    /// Panics unless every outcome in `want` was reached by some iteration.
    pub fn assert_reached(&self, want: &[&str]) {
        let got = self.0.lock().unwrap();
        for w in want {
            assert!(
                got.contains(*w),
                "the model never reached {w:?} (reached: {got:?}): loom did not explore that side of the race"
            );
        }
    }
}

/// `model`, handing each iteration a `Seen` shared by all of them, which
/// is returned for coverage assertions.
#[cfg(loom)]
pub fn explore<F: Fn(&Seen) + Sync + Send + 'static>(f: F) -> Seen {
    let seen = Seen::default();
    let s = seen.clone();
    model(move || f(&s));
    seen
}

/// A read's result as a short name, for `Seen::note`.
pub fn outcome<T>(r: &Result<T, memlog::Error>) -> &'static str {
    match r {
        Ok(_) => "Ok",
        Err(memlog::Error::FutureOffset) => "Future",
        Err(memlog::Error::OutOfRange) => "OutOfRange",
        Err(_) => "other",
    }
}
