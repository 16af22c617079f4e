//! Single-thread writes (segment size 1000, so purges happen) and batches.
//!
//! Groups: `write_1t` (one record per iteration) and `write_batch` (100
//! records per iteration, as one batch or as 100 single writes).
//!
//! `write_1t` has memlog's `Log::write` with each clock, the exclusive
//! `Writer` with the default, the ticking and no clock, and beside them the
//! floor (`fetch_add` + store), the lock-based log (with `SystemTime`, and
//! with the same ticking clock), tokio's broadcast `send`, and the
//! disruptor's single-producer `publish` (a handler thread busy-spins and
//! consumes; no timestamp). `*_hold_idle`: `Log::write` and the `Writer`
//! with a `Lag::Hold` stream registered that is never at stake (what
//! holding costs a writer that never waits).

#[allow(dead_code)]
mod support;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use disruptor::{BusySpinWithSpinLoopHint, Producer};
use memlog::clock::{Clock, ManualClock, SystemClock, TickingClock};
use memlog::{Lag, Log};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::locklog::LockLog;
use support::Payload;

const SEGMENT: usize = 1000;

/// Which clock stamps memlog's records.
#[derive(Clone, Copy)]
enum Stamp {
    /// The default, `CoarseClock` (kernel tick, ~6 ns).
    Default,
    /// `SystemClock`, the same `SystemTime::now` the lock-based port pays.
    System,
    /// `ManualClock`: no clock read.
    Free,
    /// `TickingClock` (1 ms): one relaxed load.
    Ticking,
}

/// The ticking clock, shared (the lock-based log takes a `fn`).
fn ticking() -> &'static TickingClock {
    static TICKING: OnceLock<TickingClock> = OnceLock::new();
    TICKING.get_or_init(|| TickingClock::new(Duration::from_millis(1)).unwrap())
}

fn ticking_now() -> SystemTime {
    ticking().now()
}

fn memlog_builder<T: Payload>(stamp: Stamp) -> memlog::Builder<T> {
    let b = Log::builder().segment_size(SEGMENT).history_segments(1);
    match stamp {
        Stamp::Default => b,
        Stamp::System => b.clock(SystemClock),
        Stamp::Free => b.clock(ManualClock::new(UNIX_EPOCH)),
        Stamp::Ticking => b.clock(ticking().clone()),
    }
}

fn memlog_log<T: Payload>(stamp: Stamp) -> Log<T> {
    memlog_builder(stamp).build().expect("valid config")
}

/// The floor: one uncontended `fetch_add` plus a store into a slot ring.
struct Baseline<T> {
    tail: AtomicU64,
    slots: Vec<T>,
}

impl<T: Payload> Baseline<T> {
    fn new() -> Self {
        Baseline {
            tail: AtomicU64::new(0),
            slots: (0..1024).map(T::make).collect(),
        }
    }

    #[inline]
    fn write(&mut self, v: T) -> u64 {
        let i = self.tail.fetch_add(1, Ordering::Relaxed);
        black_box(&mut self.slots)[(i & 1023) as usize] = v;
        i
    }
}

fn write_1t_for<T: Payload>(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_1t");
    g.throughput(Throughput::Elements(1));
    let name = T::NAME;

    let mut i = 0u64;
    for (id, stamp) in [
        ("memlog", Stamp::Default),
        ("memlog_system_clock", Stamp::System),
        ("memlog_free_clock", Stamp::Free),
    ] {
        let log = memlog_log::<T>(stamp);
        g.bench_function(BenchmarkId::new(id, name), |b| {
            b.iter(|| {
                i += 1;
                log.write(T::make(i)).unwrap()
            })
        });
    }

    for (id, stamp) in [
        ("memlog_writer", Stamp::Default),
        ("memlog_writer_ticking_clock", Stamp::Ticking),
        ("memlog_writer_free_clock", Stamp::Free),
    ] {
        let (mut w, _log) = memlog_builder::<T>(stamp).build_exclusive().unwrap();
        g.bench_function(BenchmarkId::new(id, name), |b| {
            b.iter(|| {
                i += 1;
                w.write(T::make(i)).unwrap()
            })
        });
    }

    // A hold registered but never at stake (a `Lag::Hold` stream far past
    // the end): the writes look at the holds once per segment, and never
    // wait. Beside `memlog_free_clock` and `memlog_writer_free_clock`.
    let log = memlog_log::<T>(Stamp::Free);
    let held = log.stream(1 << 50).on_lag(Lag::Hold);
    g.bench_function(BenchmarkId::new("memlog_free_clock_hold_idle", name), |b| {
        b.iter(|| {
            i += 1;
            log.write(T::make(i)).unwrap()
        })
    });
    drop((held, log));
    let (mut w, log) = memlog_builder::<T>(Stamp::Free).build_exclusive().unwrap();
    let held = log.stream(1 << 50).on_lag(Lag::Hold);
    g.bench_function(
        BenchmarkId::new("memlog_writer_free_clock_hold_idle", name),
        |b| {
            b.iter(|| {
                i += 1;
                w.write(T::make(i)).unwrap()
            })
        },
    );
    drop((held, w));

    let mut base = Baseline::<T>::new();
    g.bench_function(BenchmarkId::new("baseline_fetch_add_store", name), |b| {
        b.iter(|| {
            i += 1;
            base.write(T::make(i))
        })
    });

    let lock = LockLog::<T>::new(SEGMENT);
    g.bench_function(BenchmarkId::new("locklog", name), |b| {
        b.iter(|| {
            i += 1;
            lock.write(T::make(i))
        })
    });
    drop(lock);
    let lock = LockLog::<T>::with_clock(SEGMENT, ticking_now);
    g.bench_function(BenchmarkId::new("locklog_ticking_clock", name), |b| {
        b.iter(|| {
            i += 1;
            lock.write(T::make(i))
        })
    });
    drop(lock);

    // The handler consumes on its own thread, so the ring never fills.
    let mut p = disruptor::build_single_producer(1 << 16, || T::make(0), BusySpinWithSpinLoopHint)
        .handle_events_with(|e: &T, _, _| {
            black_box(e);
        })
        .build();
    g.bench_function(BenchmarkId::new("disruptor_sp_publish", name), |b| {
        b.iter(|| {
            i += 1;
            p.publish(|e| *e = T::make(i));
        })
    });
    drop(p);

    // One idle receiver, so that sends succeed; it lags and is overwritten.
    let (tx, _rx) = tokio::sync::broadcast::channel::<T>(SEGMENT);
    g.bench_function(BenchmarkId::new("tokio_broadcast", name), |b| {
        b.iter(|| {
            i += 1;
            tx.send(T::make(i)).unwrap()
        })
    });
    g.finish();
}

fn write_1t(c: &mut Criterion) {
    write_1t_for::<u64>(c);
    write_1t_for::<bytes::Bytes>(c);
}

fn write_batch_for<T: Payload>(c: &mut Criterion) {
    const N: u64 = 100;
    let mut g = c.benchmark_group("write_batch");
    g.throughput(Throughput::Elements(N));
    let name = T::NAME;
    let mut i = 0u64;

    let log = memlog_log::<T>(Stamp::Default);
    g.bench_function(BenchmarkId::new("memlog", name), |b| {
        b.iter(|| {
            i += N;
            log.write_batch((i..i + N).map(T::make)).unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("memlog_100_singles", name), |b| {
        b.iter(|| {
            for j in i..i + N {
                log.write(T::make(j)).unwrap();
            }
            i += N;
        })
    });
    drop(log);

    let lock = LockLog::<T>::new(SEGMENT);
    g.bench_function(BenchmarkId::new("locklog", name), |b| {
        b.iter(|| {
            i += N;
            lock.write_batch((i..i + N).map(T::make))
        })
    });
    g.bench_function(BenchmarkId::new("locklog_100_singles", name), |b| {
        b.iter(|| {
            for j in i..i + N {
                lock.write(T::make(j));
            }
            i += N;
        })
    });
    g.finish();
}

fn write_batch(c: &mut Criterion) {
    write_batch_for::<u64>(c);
    write_batch_for::<bytes::Bytes>(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = write_1t, write_batch
}
criterion_main!(benches);
