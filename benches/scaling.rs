//! Scaling past 2 threads: memlog and the lock-based log on the same
//! workloads at 1, 2, 4, 8 … threads, in one run (a plain binary, not
//! criterion, so that it can be carried to a bigger machine and run there:
//! `cargo bench -p memlog-benches --bench scaling -- [max_threads] [records]`).
//!
//! Every reader checks every record it is given (each writer's sequence in
//! order, nothing missing, nothing twice); a failed check aborts the run.
//! Each cell is the best of 3 runs (a shared machine is noisy), and the
//! table ends with the ratio memlog / lock-based for each row.
//!
//! Workloads:
//! - `write`: W writer threads append u64s to one log (N records in all).
//! - `fanout`: one writer (memlog's exclusive `Writer`; the lock-based log's
//!   `write`) appends N records, R streams each read and check all N.
//! - `mixed`: W writers (`Log::write`) and W streams, each stream sees all.
//! - `reads`: R threads read retained offsets at random while one writer
//!   appends; reads per second in all.

#[allow(dead_code)]
mod support;

use memlog::Log;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use support::locklog::LockLog;
use support::{tag, Checker};

const SEGMENT: usize = 4096;

fn best_of<F: FnMut() -> Duration>(mut f: F) -> Duration {
    (0..3).map(|_| f()).min().unwrap()
}

/// Runs `n` threads of `body(i)` released together; returns the wall time
/// from the release to the last thread's end.
fn run<F>(n: usize, body: F) -> Duration
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let start = Arc::new(Barrier::new(n + 1));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let body = Arc::clone(&body);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                body(i)
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    for h in handles {
        h.join().expect("a bench thread failed its check");
    }
    t.elapsed()
}

fn memlog_log(n: u64) -> Log<u64> {
    // Retains everything: readers never fall behind retention.
    let history = (n as usize).div_ceil(SEGMENT);
    Log::builder()
        .segment_size(SEGMENT)
        .history_segments(history)
        .build()
        .unwrap()
}

fn write_memlog(w: usize, n: u64) -> Duration {
    let log = memlog_log(n);
    let per = n / w as u64;
    run(w, move |i| {
        for j in 0..per {
            log.write(tag(i as u64, j)).unwrap();
        }
    })
}

fn write_lock(w: usize, n: u64) -> Duration {
    let log = Arc::new(LockLog::new(n as usize));
    let per = n / w as u64;
    run(w, move |i| {
        for j in 0..per {
            log.write(tag(i as u64, j));
        }
    })
}

/// One writer thread (index 0) and `r` reader threads that check all `n`.
fn fanout_memlog(r: usize, n: u64) -> Duration {
    let (writer, log) = Log::builder()
        .segment_size(SEGMENT)
        .history_segments((n as usize).div_ceil(SEGMENT))
        .build_exclusive()
        .unwrap();
    let writer = std::sync::Mutex::new(Some(writer));
    let streams: Vec<_> = (0..r)
        .map(|_| std::sync::Mutex::new(Some(log.stream(0))))
        .collect();
    run(r + 1, move |i| {
        if i == 0 {
            let mut w = writer.lock().unwrap().take().unwrap();
            for j in 0..n {
                w.write(tag(0, j)).unwrap();
            }
        } else {
            let s = streams[i - 1].lock().unwrap().take().unwrap();
            let mut c = Checker::new(1);
            for rec in s.take(n as usize) {
                assert!(c.check(rec.unwrap().data), "fanout: bad record");
            }
            assert_eq!(c.seen(), n);
        }
    })
}

fn fanout_lock(r: usize, n: u64) -> Duration {
    let log = Arc::new(LockLog::new(n as usize));
    run(r + 1, move |i| {
        if i == 0 {
            for j in 0..n {
                log.write(tag(0, j));
            }
        } else {
            let mut c = Checker::new(1);
            for o in 0..n {
                assert!(
                    c.check(log.read_wait(o).unwrap().data),
                    "fanout: bad record"
                );
            }
        }
    })
}

/// `w` writers and `w` streams; each stream checks all `n`.
fn mixed_memlog(w: usize, n: u64) -> Duration {
    let log = memlog_log(n);
    let per = n / w as u64;
    let streams: Vec<_> = (0..w)
        .map(|_| std::sync::Mutex::new(Some(log.stream(0))))
        .collect();
    run(2 * w, move |i| {
        if i < w {
            for j in 0..per {
                log.write(tag(i as u64, j)).unwrap();
            }
        } else {
            let s = streams[i - w].lock().unwrap().take().unwrap();
            let mut c = Checker::new(w);
            for rec in s.take((per * w as u64) as usize) {
                assert!(c.check(rec.unwrap().data), "mixed: bad record");
            }
        }
    })
}

fn mixed_lock(w: usize, n: u64) -> Duration {
    let log = Arc::new(LockLog::new(n as usize));
    let per = n / w as u64;
    run(2 * w, move |i| {
        if i < w {
            for j in 0..per {
                log.write(tag(i as u64, j));
            }
        } else {
            let mut c = Checker::new(w);
            for o in 0..per * w as u64 {
                assert!(c.check(log.read_wait(o).unwrap().data), "mixed: bad record");
            }
        }
    })
}

/// `r` random readers of a 64 Ki-record window while one thread writes;
/// returns reads per second in all.
fn reads<W, R>(r: usize, per_reader: u64, write: W, read: R) -> f64
where
    W: Fn(u64) + Send + Sync + 'static,
    R: Fn(u64) -> u64 + Send + Sync + 'static,
{
    const WINDOW: u64 = 1 << 16;
    for o in 0..WINDOW {
        write(o);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(WINDOW));
    let (stop2, next2) = (Arc::clone(&stop), Arc::clone(&next));
    let writer = thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let o = next2.load(Ordering::Relaxed);
            write(o);
            next2.store(o + 1, Ordering::Release);
        }
    });
    let read = Arc::new(read);
    let d = run(r, {
        let next = Arc::clone(&next);
        move |i| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
            for _ in 0..per_reader {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // A retained offset: within the last WINDOW written.
                let hi = next.load(Ordering::Acquire);
                let o = hi - 1 - x % (WINDOW / 2);
                assert_eq!(read(o), o, "reads: bad record");
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    (r as u64 * per_reader) as f64 / d.as_secs_f64()
}

fn reads_memlog(r: usize, per: u64) -> f64 {
    let log: Log<u64> = Log::builder()
        .segment_size(SEGMENT)
        .history_segments(64)
        .build()
        .unwrap();
    let l2 = log.clone();
    reads(
        r,
        per,
        move |o| {
            l2.write(o).unwrap();
        },
        move |o| log.read(o).unwrap().data,
    )
}

fn reads_lock(r: usize, per: u64) -> f64 {
    let log = Arc::new(LockLog::new(SEGMENT * 32));
    let l2 = Arc::clone(&log);
    reads(
        r,
        per,
        move |o| {
            l2.write(o);
        },
        move |o| log.read(o).unwrap().data,
    )
}

fn mps(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64() / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let max: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(cores);
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let counts: Vec<usize> = [1, 2, 4, 8, 16, 32]
        .into_iter()
        .filter(|&t| t <= max)
        .collect();
    println!(
        "# scaling: {cores} cores available, up to {max} threads, {n} records per run, best of 3\n"
    );
    println!("| workload | threads | memlog | lock-based | memlog / lock-based |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, t: &str, a: f64, b: f64, unit: &str| {
        println!(
            "| {name} | {t} | {a:.2} {unit} | {b:.2} {unit} | {:.2}× |",
            a / b
        );
    };
    for &w in &counts {
        let a = mps(n, best_of(|| write_memlog(w, n)));
        let b = mps(n, best_of(|| write_lock(w, n)));
        row("write (W writers)", &format!("{w} W"), a, b, "M rec/s");
    }
    for &r in &counts {
        if r + 1 > max.max(2) {
            continue;
        }
        let a = mps(n * r as u64, best_of(|| fanout_memlog(r, n)));
        let b = mps(n * r as u64, best_of(|| fanout_lock(r, n)));
        row(
            "fan-out (1 W → R streams, memlog `Writer`)",
            &format!("1 W + {r} R"),
            a,
            b,
            "M rec/s delivered",
        );
    }
    for &w in &counts {
        if 2 * w > max.max(2) {
            continue;
        }
        let a = mps(n * w as u64, best_of(|| mixed_memlog(w, n)));
        let b = mps(n * w as u64, best_of(|| mixed_lock(w, n)));
        row(
            "mixed (W writers, W streams)",
            &format!("{w} W + {w} R"),
            a,
            b,
            "M rec/s delivered",
        );
    }
    let per = n / 2;
    for &r in &counts {
        if r + 1 > max.max(2) {
            continue;
        }
        let a = (0..3).map(|_| reads_memlog(r, per)).fold(0.0, f64::max) / 1e6;
        let b = (0..3).map(|_| reads_lock(r, per)).fold(0.0, f64::max) / 1e6;
        row(
            "random reads under 1 writer",
            &format!("{r} R + 1 W"),
            a,
            b,
            "M reads/s",
        );
    }
}
