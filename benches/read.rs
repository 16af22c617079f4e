//! Reads of retained offsets: one thread (`read_1t`, `read_batch`), and two
//! reader threads while a third thread writes (`read_concurrent`).

#[allow(dead_code)]
mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use memlog::Log;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::locklog::LockLog;
use support::Payload;

const SEGMENT: usize = 1000;
/// Records written before reading: the log retains the last 1000..2000.
const PREFILL: u64 = 2500;

fn filled_memlog<T: Payload>() -> Log<T> {
    let log = Log::builder()
        .segment_size(SEGMENT)
        .history_segments(1)
        .build()
        .unwrap();
    for i in 0..PREFILL {
        log.write(T::make(i)).unwrap();
    }
    log
}

fn filled_locklog<T: Payload>() -> LockLog<T> {
    let log = LockLog::new(SEGMENT);
    for i in 0..PREFILL {
        log.write(T::make(i));
    }
    log
}

fn read_1t_for<T: Payload>(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_1t");
    g.throughput(Throughput::Elements(1));
    let name = T::NAME;

    let log = filled_memlog::<T>();
    let (lo, hi) = log.range().unwrap();
    let span = hi - lo + 1;
    let mut i = 0u64;
    g.bench_function(BenchmarkId::new("memlog", name), |b| {
        b.iter(|| {
            i += 1;
            log.read(lo + i % span).unwrap()
        })
    });

    let lock = filled_locklog::<T>();
    let (lo, hi) = lock.range().unwrap();
    let span = hi - lo + 1;
    g.bench_function(BenchmarkId::new("locklog", name), |b| {
        b.iter(|| {
            i += 1;
            lock.read(lo + i % span).unwrap()
        })
    });
    g.finish();

    const N: usize = 100;
    let mut g = c.benchmark_group("read_batch");
    g.throughput(Throughput::Elements(N as u64));
    let (lo, hi) = log.range().unwrap();
    let span = hi - lo + 1 - N as u64;
    let mut out = Vec::with_capacity(N);
    g.bench_function(BenchmarkId::new("memlog", name), |b| {
        b.iter(|| {
            i += 1;
            out.clear();
            assert_eq!(log.read_batch(lo + i % span, &mut out, N).unwrap(), N);
        })
    });
    let (lo, hi) = lock.range().unwrap();
    let span = hi - lo + 1 - N as u64;
    let mut out = Vec::with_capacity(N);
    g.bench_function(BenchmarkId::new("locklog", name), |b| {
        b.iter(|| {
            i += 1;
            out.clear();
            assert_eq!(lock.read_batch(lo + i % span, &mut out, N).unwrap(), N);
        })
    });
    g.finish();
}

fn read_1t(c: &mut Criterion) {
    read_1t_for::<u64>(c);
    read_1t_for::<bytes::Bytes>(c);
}

/// The operations `concurrent` needs from a log.
trait Readable: Send + Sync + 'static {
    fn write_one(&self, i: u64);
    fn head(&self) -> u64;
    /// Whether the read succeeded (a purge can overtake a descheduled reader).
    fn read_one(&self, o: u64) -> bool;
}

impl Readable for Log<u64> {
    fn write_one(&self, i: u64) {
        self.write(i).unwrap();
    }
    fn head(&self) -> u64 {
        self.range().unwrap().1
    }
    fn read_one(&self, o: u64) -> bool {
        self.read(o).is_ok()
    }
}

impl Readable for LockLog<u64> {
    fn write_one(&self, i: u64) {
        self.write(i);
    }
    fn head(&self) -> u64 {
        self.range().unwrap().1
    }
    fn read_one(&self, o: u64) -> bool {
        self.read(o).is_ok()
    }
}

/// Two readers read `iters` records in all, near the head, while a third
/// thread writes without pause. Returns the readers' wall time.
fn concurrent<L: Readable>(log: &Arc<L>, iters: u64) -> Duration {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, stop) = (Arc::clone(log), Arc::clone(&stop));
        thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                log.write_one(i);
                i += 1;
            }
        })
    };
    let start = Instant::now();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let log = Arc::clone(log);
            thread::spawn(move || {
                let mut ok = 0u64;
                let mut head = log.head();
                for k in 0..iters / 2 {
                    if k % 64 == 0 {
                        head = log.head();
                    }
                    ok += u64::from(log.read_one(head - k % 256));
                }
                ok
            })
        })
        .collect();
    let ok: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        ok >= iters / 2 * 2 * 9 / 10,
        "too many purged reads: {ok} of {iters}"
    );
    elapsed
}

fn read_concurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("read_concurrent");
    g.throughput(Throughput::Elements(1));
    let log = Arc::new(filled_memlog::<u64>());
    g.bench_function(BenchmarkId::new("memlog", "u64"), |b| {
        b.iter_custom(|iters| concurrent(&log, iters.max(2)))
    });
    let lock = Arc::new(filled_locklog::<u64>());
    g.bench_function(BenchmarkId::new("locklog", "u64"), |b| {
        b.iter_custom(|iters| concurrent(&lock, iters.max(2)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = read_1t, read_concurrent
}
criterion_main!(benches);
