//! memlog-jetstream against a real nats-server (started here, file store,
//! loopback): write throughput with one ack per write and pipelined, stream
//! throughput from the server, read latency direct get vs replica, and a
//! replica's fan-out to N local streams. A plain harness: one run, one
//! table (`cargo bench -p memlog-jetstream`; `-- --quick` for a smoke run).

use bytes::Bytes;
use memlog_jetstream::testing::Server;
use memlog_jetstream::{blocking, JetStreamLog};
use std::thread;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 64;

fn payload(i: u64) -> Bytes {
    let mut b = vec![0u8; PAYLOAD];
    b[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(b)
}

fn rate(n: u64, t: Duration) -> String {
    let r = n as f64 / t.as_secs_f64();
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.1} k/s", r / 1e3)
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Whether `nats-server: v2.15.1` is at least `want`.
fn version_at_least(version: &str, want: (u64, u64)) -> bool {
    let v = version.rsplit('v').next().unwrap_or("");
    let mut p = v.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (p.next().unwrap_or(0), p.next().unwrap_or(0)) >= want
}

fn row(what: &str, figure: String) {
    println!("| {what} | {figure} |");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let server = Server::start().expect("start nats-server (apt-get install -y nats-server)");
    let url = server.url();
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let version = std::process::Command::new(memlog_jetstream::testing::server_binary().unwrap())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("memlog-jetstream bench: {version} on 127.0.0.1, file store, {PAYLOAD}-byte payloads, {cpus} CPUs");
    println!();
    println!("| workload | result |");
    println!("|---|---|");

    // Writes, one ack each: the round trip bounds them.
    let log = blocking::JetStreamLog::builder(&url, "bench")
        .retain_all()
        .create_blocking()
        .unwrap();
    let n = 5_000 / scale;
    let mut lat = Vec::with_capacity(n as usize);
    let t = Instant::now();
    for i in 0..n {
        let s = Instant::now();
        log.write(payload(i)).unwrap();
        lat.push(s.elapsed());
    }
    let took = t.elapsed();
    lat.sort();
    row(
        "`write`, 1 writer, one ack per write",
        format!(
            "{} (p50 {:?}, p99 {:?})",
            rate(n, took),
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        ),
    );

    // Writes, one ack each, from 8 threads sharing the connection.
    let per = 2_000 / scale;
    let t = Instant::now();
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..per {
                    log.write(payload(i)).unwrap();
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    row(
        "`write`, 8 threads, one ack per write each",
        rate(8 * per, t.elapsed()),
    );

    // Pipelined: write_batch sends the batch, then waits for the acks.
    // Atomic (2.12+): one batch, one acknowledgement for the whole.
    let pipelined = blocking::JetStreamLog::builder(&url, "bench")
        .atomic_batches(false)
        .open_blocking()
        .unwrap();
    let atomic = version_at_least(&version, (2, 12));
    for batch in [100u64, 1_000] {
        let total = 100_000 / scale;
        let mut ways = vec![("pipelined acks", &pipelined)];
        if atomic {
            ways.push(("atomic", &log));
        }
        for (way, log) in ways {
            let t = Instant::now();
            for b in 0..total / batch {
                log.write_batch((0..batch).map(|i| payload(b * batch + i)))
                    .unwrap();
            }
            row(
                &format!("`write_batch` of {batch} ({way})"),
                rate(total, t.elapsed()),
            );
        }
    }
    let stored = log.next_offset().unwrap();

    // Stream from the server: replay everything written above.
    let t = Instant::now();
    let mut s = log.stream(0);
    for want in 0..stored {
        assert_eq!(s.next().unwrap().unwrap().offset, want);
    }
    row(
        &format!("blocking stream from the server, replay of {stored}"),
        rate(stored, t.elapsed()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let async_log: JetStreamLog = log.as_async().clone();
    let took = rt.block_on(async {
        use futures_util::StreamExt;
        let t = Instant::now();
        let mut s = async_log.stream(0);
        for want in 0..stored {
            assert_eq!(s.next().await.unwrap().unwrap().offset, want);
        }
        t.elapsed()
    });
    row(
        &format!("async stream from the server, replay of {stored}"),
        rate(stored, took),
    );

    // Read latency: a direct get per read, vs the local replica.
    let live = 50_000 / scale;
    let replica = log
        .replica()
        .segment_size(4096)
        .history_segments(((stored + live) / 4096 + 2) as usize)
        .start_blocking()
        .unwrap();
    replica
        .wait_for(stored - 1, Duration::from_secs(60))
        .unwrap();
    let samples = 2_000 / scale;
    let offsets: Vec<u64> = (0..samples).map(|i| (i * 7919) % stored).collect();
    let latency = |read: &dyn Fn(u64) -> u64| {
        let mut lat: Vec<Duration> = offsets
            .iter()
            .map(|&o| {
                let s = Instant::now();
                assert_eq!(read(o), o);
                s.elapsed()
            })
            .collect();
        lat.sort();
        format!("p50 {:?}, p99 {:?}", pct(&lat, 0.5), pct(&lat, 0.99))
    };
    row(
        "`read`, direct get from the server",
        latency(&|o| log.read(o).unwrap().offset),
    );
    row(
        "`read` from the replica (local memlog)",
        latency(&|o| replica.read(o).unwrap().offset),
    );

    // Fan-out: N local streams replay everything the replica holds.
    for readers in [1usize, 4, 16] {
        let t = Instant::now();
        let hs: Vec<_> = (0..readers)
            .map(|_| {
                let mut s = replica.stream(0);
                thread::spawn(move || {
                    for want in 0..stored {
                        assert_eq!(s.next().unwrap().unwrap().offset, want);
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join().unwrap());
        let took = t.elapsed();
        row(
            &format!("replica → {readers} local streams, replay of {stored} each"),
            format!(
                "{} each, {} total",
                rate(stored, took),
                rate(stored * readers as u64, took)
            ),
        );
    }

    // Live fan-out: a pipelined writer, the replica following, 16 local
    // streams following it; end to end.
    let start = replica.next_offset();
    let hs: Vec<_> = (0..16)
        .map(|_| {
            let mut s = replica.stream(start);
            thread::spawn(move || {
                for want in start..start + live {
                    assert_eq!(s.next().unwrap().unwrap().offset, want);
                }
            })
        })
        .collect();
    let t = Instant::now();
    for b in 0..live / 1_000 {
        log.write_batch((0..1_000).map(|i| payload(b * 1_000 + i)))
            .unwrap();
    }
    hs.into_iter().for_each(|h| h.join().unwrap());
    row(
        &format!("live: `write_batch` of 1000 → replica → 16 local streams, {live} records"),
        format!("{} per stream, end to end", rate(live, t.elapsed())),
    );
}
