//! Async fan-out: one writer thread, T async tasks on a two-worker tokio
//! runtime, each task receiving every record in order and checking it.
//! 200 000 records per iteration; throughput is deliveries (records × tasks).
//!
//! Group `async_1w`, T = 1, 4, 16: memlog's `AsyncStream` (`next().await`)
//! behind `Log::write` and behind the exclusive `Writer`, against tokio's
//! broadcast channel (`recv().await`) with a ring that holds every record,
//! so that nothing is dropped on either side.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use futures_util::StreamExt;
use memlog::Log;
use std::thread;
use std::time::Duration;

const N: u64 = 200_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// A log that retains more than `N` records past any start.
fn builder() -> memlog::Builder<u64> {
    Log::builder().segment_size(1 << 14).history_segments(16)
}

/// Spawns `tasks` readers of `log` from its next offset, each checking every
/// record; returns their handles.
fn memlog_readers(
    rt: &tokio::runtime::Runtime,
    log: &Log<u64>,
    tasks: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let base = log.next_offset();
    (0..tasks)
        .map(|_| {
            let mut s = log.stream_async(base);
            rt.spawn(async move {
                for k in 0..N {
                    let r = s.next().await.unwrap().unwrap();
                    assert!(r.offset == base + k && r.data == k);
                }
            })
        })
        .collect()
}

fn join(rt: &tokio::runtime::Runtime, hs: Vec<tokio::task::JoinHandle<()>>) {
    rt.block_on(async {
        for h in hs {
            h.await.unwrap();
        }
    });
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("async_1w");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let rt = runtime();
    for tasks in [1usize, 4, 16] {
        g.throughput(Throughput::Elements(N * tasks as u64));

        let log = builder().build().unwrap();
        g.bench_function(BenchmarkId::new("memlog", tasks), |b| {
            b.iter(|| {
                let hs = memlog_readers(&rt, &log, tasks);
                let w = log.clone();
                thread::spawn(move || {
                    for k in 0..N {
                        w.write(k).unwrap();
                    }
                })
                .join()
                .unwrap();
                join(&rt, hs);
            })
        });

        let (writer, log) = builder().build_exclusive().unwrap();
        let mut writer = Some(writer);
        g.bench_function(BenchmarkId::new("memlog_writer", tasks), |b| {
            b.iter(|| {
                let hs = memlog_readers(&rt, &log, tasks);
                let mut w = writer.take().unwrap();
                let w = thread::spawn(move || {
                    for k in 0..N {
                        w.write(k).unwrap();
                    }
                    w
                })
                .join()
                .unwrap();
                writer = Some(w);
                join(&rt, hs);
            })
        });

        let (tx, _) = tokio::sync::broadcast::channel::<u64>(1 << 18);
        g.bench_function(BenchmarkId::new("tokio_broadcast", tasks), |b| {
            b.iter(|| {
                let hs: Vec<_> = (0..tasks)
                    .map(|_| {
                        let mut rx = tx.subscribe();
                        rt.spawn(async move {
                            for k in 0..N {
                                assert_eq!(rx.recv().await.unwrap(), k);
                            }
                        })
                    })
                    .collect();
                let tx = tx.clone();
                thread::spawn(move || {
                    for k in 0..N {
                        tx.send(k).unwrap();
                    }
                })
                .join()
                .unwrap();
                join(&rt, hs);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
