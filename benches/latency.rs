//! Publish-to-wake latency: how long after a write a waiting reader has the
//! record in hand. A custom timing loop (not criterion) printing percentiles.
//!
//! - spinning: the reader polls `Stream::try_recv` in a busy loop;
//! - parked: the reader blocks in `Stream::next`; the writer sleeps 1 ms
//!   before each write, so the reader has finished spinning and is parked.
//!
//! The writer stores `Instant`-based nanoseconds in the record just before
//! `write`; the reader subtracts them from its own clock reading.
//!
//! `cargo bench -p memlog-benches --bench latency` (set `LATENCY_SAMPLES` to
//! change the count).

#[allow(dead_code)]
mod support;

use memlog::{Error, Log};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
use support::locklog::LockLog;

fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[derive(Clone, Copy)]
enum Pause {
    /// Busy-wait about this long between writes.
    Spin(Duration),
    Sleep(Duration),
}

/// Runs `samples` writes, each after the reader acknowledged the previous one
/// and after `pause`; `recv(i)` is the reader's blocking receive of record `i`,
/// returning the writer's timestamp. Returns sorted latencies in ns.
fn measure<W, R>(samples: u64, pause: Pause, mut write: W, mut recv: R) -> Vec<u64>
where
    W: FnMut(u64) + Send + 'static,
    R: FnMut(u64) -> u64 + Send + 'static,
{
    let ack = Arc::new(AtomicU64::new(0));
    let reader = {
        let ack = Arc::clone(&ack);
        thread::spawn(move || {
            let mut lat = Vec::with_capacity(samples as usize);
            for i in 0..samples {
                let sent = recv(i);
                lat.push(now_ns().saturating_sub(sent));
                ack.store(i + 1, Ordering::Release);
            }
            lat
        })
    };
    for i in 0..samples {
        // A parked-reader run waits for the ack asleep, so that the woken
        // reader never queues behind a spinning writer on a 2-core machine.
        while ack.load(Ordering::Acquire) < i {
            match pause {
                Pause::Spin(_) => spin_loop(),
                Pause::Sleep(_) => thread::sleep(Duration::from_micros(100)),
            }
        }
        match pause {
            Pause::Spin(d) => {
                let t = Instant::now();
                while t.elapsed() < d {
                    spin_loop();
                }
            }
            Pause::Sleep(d) => thread::sleep(d),
        }
        write(now_ns());
    }
    let mut lat = reader.join().unwrap();
    lat.sort_unstable();
    lat
}

fn pct(v: &[u64], p: f64) -> u64 {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, v: &[u64]) {
    println!(
        "{name:<34} n={:<6} p50={:>8} ns  p90={:>8} ns  p99={:>8} ns  p99.9={:>8} ns  max={:>9} ns",
        v.len(),
        pct(v, 0.50),
        pct(v, 0.90),
        pct(v, 0.99),
        pct(v, 0.999),
        v[v.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let samples: u64 = std::env::var("LATENCY_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let spin_samples = samples * 10;
    let gap = Pause::Spin(Duration::from_micros(20));
    let park = Pause::Sleep(Duration::from_millis(1));
    now_ns();

    // memlog, spinning reader.
    let log: Log<u64> = Log::new();
    let mut stream = log.stream(0);
    let w = log.clone();
    let v = measure(
        spin_samples,
        gap,
        move |t| {
            w.write(t).unwrap();
        },
        move |_| loop {
            match stream.try_recv() {
                Ok(r) => return r.data,
                Err(Error::FutureOffset) => spin_loop(),
                Err(e) => panic!("{e}"),
            }
        },
    );
    report("memlog spinning (try_recv)", &v);

    // memlog, parked reader.
    let log: Log<u64> = Log::new();
    let mut stream = log.stream(0);
    let w = log.clone();
    let v = measure(
        samples,
        park,
        move |t| {
            w.write(t).unwrap();
        },
        move |_| stream.next().unwrap().unwrap().data,
    );
    report("memlog parked (Stream::next)", &v);

    // The lock-based port, parked on its condvar.
    let lock = Arc::new(LockLog::<u64>::new(1024));
    let w = Arc::clone(&lock);
    let v = measure(
        samples,
        park,
        move |t| {
            w.write(t);
        },
        move |i| lock.read_wait(i).unwrap().data,
    );
    report("locklog parked (Condvar)", &v);

    // crossbeam-channel, parked receiver, for reference.
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    let v = measure(
        samples,
        park,
        move |t| tx.send(t).unwrap(),
        move |_| rx.recv().unwrap(),
    );
    report("crossbeam-channel parked (recv)", &v);

    // tokio broadcast, parked blocking receiver, for reference.
    let (tx, mut rx) = tokio::sync::broadcast::channel::<u64>(1024);
    let v = measure(
        samples,
        park,
        move |t| {
            tx.send(t).unwrap();
        },
        move |_| rx.blocking_recv().unwrap(),
    );
    report("tokio broadcast parked", &v);
}
