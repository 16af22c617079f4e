//! Single-thread writes (segment size 1000, so purges happen) and batches.
//!
//! Groups: `write_1t` (one record per iteration) and `write_batch` (100
//! records per iteration, as one batch or as 100 single writes).

#[allow(dead_code)]
mod support;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlog::clock::{ManualClock, SystemClock};
use memlog::Log;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};
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
}

fn memlog_log<T: Payload>(stamp: Stamp) -> Log<T> {
    let b = Log::builder().segment_size(SEGMENT).history_segments(1);
    let b = match stamp {
        Stamp::Default => b,
        Stamp::System => b.clock(SystemClock),
        Stamp::Free => b.clock(ManualClock::new(UNIX_EPOCH)),
    };
    b.build().expect("valid config")
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
