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
//!   `write`) appends N records, R streams each read and check all N (memlog:
//!   with the iterator, which clones, and with `Stream::visit`).
//! - `mixed`: W writers (`Log::write`) and W streams, each stream sees all.
//! - `reads`: R threads read retained offsets at random while one writer
//!   appends (`Log::read`, which clones, and `Log::pin`, by reference under
//!   one pin per 1024 reads); reads per second in all.

#[allow(dead_code)]
mod support;

use memlog::{Log, Stream};
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
/// from the first thread's start to the last thread's end.
fn run<F>(n: usize, body: F) -> Duration
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let start = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let body = Arc::clone(&body);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                body(i);
                (t, Instant::now())
            })
        })
        .collect();
    // Each thread times itself: the main thread may be descheduled past the
    // barrier while the workers run (on 2 cores it was, and a run then
    // looked instantaneous), so the span is the first start to the last end.
    let spans: Vec<(Instant, Instant)> = handles
        .into_iter()
        .map(|h| h.join().expect("a bench thread failed its check"))
        .collect();
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    last - first
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

/// One writer thread (index 0, memlog's exclusive `Writer`) and `r` reader
/// threads, each running `read(stream, n)`, which checks all `n` records.
fn fanout_memlog_with(r: usize, n: u64, read: fn(Stream<u64>, u64)) -> Duration {
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
            read(streams[i - 1].lock().unwrap().take().unwrap(), n);
        }
    })
}

/// Fan-out, the streams read with the iterator (clones).
fn fanout_memlog(r: usize, n: u64) -> Duration {
    fanout_memlog_with(r, n, |s, n| {
        let mut c = Checker::new(1);
        for rec in s.take(n as usize) {
            assert!(c.check(rec.unwrap().data), "fanout: bad record");
        }
        assert_eq!(c.seen(), n);
    })
}

/// Fan-out, the streams read by reference (`Stream::visit`).
fn fanout_memlog_visit(r: usize, n: u64) -> Duration {
    fanout_memlog_with(r, n, |mut s, n| {
        let mut c = Checker::new(1);
        let mut ok = true;
        while c.seen() < n {
            s.visit(1024, |rec| ok &= c.check(*rec.data)).unwrap();
        }
        assert!(ok, "fanout visit: bad record");
        assert_eq!(c.seen(), n);
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

/// Offsets to read: within the last half of the 64 Ki-record window behind
/// `next` (retained: every log here keeps more than that).
const WINDOW: u64 = 1 << 16;

/// `r` reader threads, each calling `read_all(offsets, per_reader)`, while
/// one thread writes; returns reads per second in all. `read_all` must read
/// and check `per_reader` offsets drawn from `offsets`.
fn reads<W, R>(r: usize, per_reader: u64, write: W, read_all: R) -> f64
where
    W: Fn(u64) + Send + Sync + 'static,
    R: Fn(&mut dyn FnMut() -> u64, u64) + Send + Sync + 'static,
{
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
    let d = run(r, {
        let next = Arc::clone(&next);
        move |i| {
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
            let mut offsets = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                next.load(Ordering::Acquire) - 1 - x % (WINDOW / 2)
            };
            read_all(&mut offsets, per_reader);
        }
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    (r as u64 * per_reader) as f64 / d.as_secs_f64()
}

fn reads_log() -> Log<u64> {
    Log::builder()
        .segment_size(SEGMENT)
        .history_segments(64)
        .build()
        .unwrap()
}

fn reads_memlog(r: usize, per: u64) -> f64 {
    let log = reads_log();
    let l2 = log.clone();
    reads(
        r,
        per,
        move |o| {
            l2.write(o).unwrap();
        },
        move |offsets, n| {
            for _ in 0..n {
                let o = offsets();
                assert_eq!(log.read(o).unwrap().data, o, "reads: bad record");
            }
        },
    )
}

/// As `reads_memlog`, by reference under one pin per 1024 reads (`Log::pin`).
fn reads_pinned(r: usize, per: u64) -> f64 {
    let log = reads_log();
    let l2 = log.clone();
    reads(
        r,
        per,
        move |o| {
            l2.write(o).unwrap();
        },
        move |offsets, n| {
            let mut left = n;
            while left > 0 {
                // A fresh pin now and then, so that purges are not held back.
                let p = log.pin();
                for _ in 0..left.min(1024) {
                    let o = offsets();
                    assert_eq!(*p.get(o).unwrap().data, o, "reads: bad record");
                }
                left -= left.min(1024);
            }
        },
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
        move |offsets, n| {
            for _ in 0..n {
                let o = offsets();
                assert_eq!(log.read(o).unwrap().data, o, "reads: bad record");
            }
        },
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
    // Thread counts that fit: a workload of `k` threads runs if k <= max.
    let fits = |k: usize| k <= max.max(2);
    for &w in &counts {
        let a = mps(n, best_of(|| write_memlog(w, n)));
        let b = mps(n, best_of(|| write_lock(w, n)));
        row(
            "write (W writers, `Log::write`)",
            &format!("{w} W"),
            a,
            b,
            "M rec/s",
        );
    }
    for &r in counts.iter().filter(|&&r| fits(r + 1)) {
        let delivered = n * r as u64;
        let a = mps(delivered, best_of(|| fanout_memlog(r, n)));
        let v = mps(delivered, best_of(|| fanout_memlog_visit(r, n)));
        let b = mps(delivered, best_of(|| fanout_lock(r, n)));
        let t = format!("1 W + {r} R");
        let unit = "M rec/s delivered";
        row("fan-out (memlog `Writer`, iterator)", &t, a, b, unit);
        row("fan-out (memlog `Writer`, `Stream::visit`)", &t, v, b, unit);
    }
    for &w in counts.iter().filter(|&&w| fits(2 * w)) {
        let a = mps(n * w as u64, best_of(|| mixed_memlog(w, n)));
        let b = mps(n * w as u64, best_of(|| mixed_lock(w, n)));
        let t = format!("{w} W + {w} R");
        row(
            "mixed (W writers, W streams)",
            &t,
            a,
            b,
            "M rec/s delivered",
        );
    }
    let per = n / 2;
    for &r in counts.iter().filter(|&&r| fits(r + 1)) {
        let best = |f: fn(usize, u64) -> f64| (0..3).map(|_| f(r, per)).fold(0.0, f64::max) / 1e6;
        let (a, p, b) = (best(reads_memlog), best(reads_pinned), best(reads_lock));
        let t = format!("{r} R + 1 W");
        row(
            "random reads under 1 writer (`Log::read`)",
            &t,
            a,
            b,
            "M reads/s",
        );
        row(
            "random reads under 1 writer (`Log::pin`)",
            &t,
            p,
            b,
            "M reads/s",
        );
    }
}
