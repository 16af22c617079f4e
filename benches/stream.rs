//! Streaming: writers append, every reader sees every record, in order, and
//! checks each one. 1 M records per iteration in all.
//!
//! Groups: `stream_1w1r`, `stream_2w2r`, `stream_4w4r` (oversubscribed on a
//! 2-core machine). Every contender is sized so that nothing is dropped:
//! memlog and the lock-based log retain more than 1 M records, tokio's
//! broadcast ring holds 2^20; disruptor, bus and crossbeam-channel apply
//! backpressure instead.

#[allow(dead_code)]
mod support;

use bytes::Bytes;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use disruptor::{BusySpinWithSpinLoopHint, Producer, Sequence};
use memlog::Log;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::locklog::LockLog;
use support::{tag, Checked, Checker, Payload};

const N: u64 = 1_000_000;
const RING: usize = 1 << 16;

/// Spawns `writers` threads, each writing its share of `N` with `write`.
fn spawn_writers<F>(writers: u64, write: F) -> Vec<thread::JoinHandle<()>>
where
    F: Fn(u64) + Clone + Send + 'static,
{
    (0..writers)
        .map(|w| {
            let write = write.clone();
            thread::spawn(move || {
                for i in 0..N / writers {
                    write(tag(w, i));
                }
            })
        })
        .collect()
}

fn join_all<T>(hs: Vec<thread::JoinHandle<T>>) -> Vec<T> {
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

// ------------------------------------------------------------------ memlog

fn memlog_log<T: Payload>() -> Log<T> {
    // 17 segments of 2^16 retain more than 1 M records past any start.
    Log::builder()
        .segment_size(RING)
        .history_segments(16)
        .build()
        .unwrap()
}

fn run_memlog<T: Checked>(log: &Log<T>, writers: u64, readers: usize) {
    let base = log.next_offset();
    let total = N / writers * writers;
    let rs: Vec<_> = (0..readers)
        .map(|_| {
            let stream = log.stream(base);
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                for (k, r) in stream.take(total as usize).enumerate() {
                    let r = r.unwrap();
                    assert!(r.offset == base + k as u64 && r.data.ok(&mut c));
                }
            })
        })
        .collect();
    let log2 = log.clone();
    join_all(spawn_writers(writers, move |v| {
        log2.write(T::make(v)).unwrap();
    }));
    join_all(rs);
}

// ----------------------------------------------------------------- locklog

fn run_locklog(log: &Arc<LockLog<u64>>, writers: u64, readers: usize) {
    let base = log.next_offset();
    let total = N / writers * writers;
    let rs: Vec<_> = (0..readers)
        .map(|_| {
            let log = Arc::clone(log);
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                for k in 0..total {
                    let r = log.read_wait(base + k).unwrap();
                    assert!(r.offset == base + k && c.check(r.data));
                }
            })
        })
        .collect();
    let log2 = Arc::clone(log);
    join_all(spawn_writers(writers, move |v| {
        log2.write(v);
    }));
    join_all(rs);
}

// ---------------------------------------------------------- tokio broadcast

fn run_tokio(tx: &tokio::sync::broadcast::Sender<u64>, writers: u64, readers: usize) {
    let total = N / writers * writers;
    let rs: Vec<_> = (0..readers)
        .map(|_| {
            let mut rx = tx.subscribe();
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                for _ in 0..total {
                    let v = rx.blocking_recv().expect("no lag with a 2^20 ring");
                    assert!(c.check(v));
                }
            })
        })
        .collect();
    let tx2 = tx.clone();
    join_all(spawn_writers(writers, move |v| {
        tx2.send(v).unwrap();
    }));
    join_all(rs);
}

// --------------------------------------------------------------- disruptor

#[derive(Default)]
struct Ev {
    v: u64,
}

/// A disruptor consumer that checks every event; reports what it saw.
fn dis_handler(
    writers: u64,
    seen: Arc<AtomicU64>,
    bad: Arc<AtomicBool>,
) -> impl FnMut(&Ev, Sequence, bool) + Send + 'static {
    let mut c = Checker::new(writers as usize);
    move |e, _, end_of_batch| {
        if !c.check(e.v) {
            bad.store(true, Ordering::Relaxed);
        }
        if end_of_batch {
            seen.store(c.seen(), Ordering::Relaxed);
        }
    }
}

fn run_disruptor(writers: u64, readers: usize) -> Duration {
    let total = N / writers * writers;
    let seen: Vec<_> = (0..readers).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let bad = Arc::new(AtomicBool::new(false));
    let h = |i: usize| dis_handler(writers, Arc::clone(&seen[i]), Arc::clone(&bad));
    let start = Instant::now();
    let wait = BusySpinWithSpinLoopHint;
    match (writers, readers) {
        (1, 1) => {
            let mut p = disruptor::build_single_producer(RING, Ev::default, wait)
                .handle_events_with(h(0))
                .build();
            for i in 0..N {
                p.publish(|e| e.v = tag(0, i));
            }
            drop(p); // waits until every consumer has processed everything
        }
        (w, r) => {
            let mut b = disruptor::build_multi_producer(RING, Ev::default, wait)
                .handle_events_with(h(0))
                .handle_events_with(h(1));
            if r == 4 {
                b = b.handle_events_with(h(2)).handle_events_with(h(3));
            }
            let p = b.build();
            let hs: Vec<_> = (0..w)
                .map(|w_| {
                    let mut p = p.clone();
                    thread::spawn(move || {
                        for i in 0..N / w {
                            p.publish(|e| e.v = tag(w_, i));
                        }
                    })
                })
                .collect();
            drop(p);
            join_all(hs);
        }
    }
    let elapsed = start.elapsed();
    assert!(!bad.load(Ordering::Relaxed));
    for s in &seen {
        assert_eq!(s.load(Ordering::Relaxed), total);
    }
    elapsed
}

// ------------------------------------------------------ bus and crossbeam

fn run_bus() {
    let mut bus = bus::Bus::<u64>::new(RING);
    let mut rx = bus.add_rx();
    let r = thread::spawn(move || {
        for i in 0..N {
            assert_eq!(rx.recv().unwrap(), i);
        }
    });
    let w = thread::spawn(move || {
        for i in 0..N {
            bus.broadcast(i);
        }
    });
    w.join().unwrap();
    r.join().unwrap();
}

fn run_crossbeam() {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(RING);
    let r = thread::spawn(move || {
        for i in 0..N {
            assert_eq!(rx.recv().unwrap(), i);
        }
    });
    let w = thread::spawn(move || {
        for i in 0..N {
            tx.send(i).unwrap();
        }
    });
    w.join().unwrap();
    r.join().unwrap();
}

// ------------------------------------------------------------------ groups

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn group(c: &mut Criterion, name: &str, writers: u64, readers: usize) {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(N / writers * writers));

    let log = memlog_log::<u64>();
    g.bench_function(BenchmarkId::new("memlog", "u64"), |b| {
        b.iter_custom(|it| {
            (0..it)
                .map(|_| timed(|| run_memlog(&log, writers, readers)))
                .sum()
        })
    });
    drop(log);
    if writers == 1 {
        let log = memlog_log::<Bytes>();
        g.bench_function(BenchmarkId::new("memlog", "bytes"), |b| {
            b.iter_custom(|it| {
                (0..it)
                    .map(|_| timed(|| run_memlog(&log, writers, readers)))
                    .sum()
            })
        });
    }
    let lock = Arc::new(LockLog::new(1 << 20));
    g.bench_function(BenchmarkId::new("locklog", "u64"), |b| {
        b.iter_custom(|it| {
            (0..it)
                .map(|_| timed(|| run_locklog(&lock, writers, readers)))
                .sum()
        })
    });
    drop(lock);
    let (tx, _) = tokio::sync::broadcast::channel::<u64>(1 << 20);
    g.bench_function(BenchmarkId::new("tokio_broadcast", "u64"), |b| {
        b.iter_custom(|it| {
            (0..it)
                .map(|_| timed(|| run_tokio(&tx, writers, readers)))
                .sum()
        })
    });
    drop(tx);
    g.bench_function(BenchmarkId::new("disruptor", "u64"), |b| {
        b.iter_custom(|it| (0..it).map(|_| run_disruptor(writers, readers)).sum())
    });
    if writers == 1 && readers == 1 {
        g.bench_function(BenchmarkId::new("bus", "u64"), |b| {
            b.iter_custom(|it| (0..it).map(|_| timed(run_bus)).sum())
        });
        g.bench_function(BenchmarkId::new("crossbeam_channel", "u64"), |b| {
            b.iter_custom(|it| (0..it).map(|_| timed(run_crossbeam)).sum())
        });
    }
    g.finish();
}

fn streams(c: &mut Criterion) {
    group(c, "stream_1w1r", 1, 1);
    group(c, "stream_2w2r", 2, 2);
    group(c, "stream_4w4r", 4, 4);
}

criterion_group!(benches, streams);
criterion_main!(benches);
