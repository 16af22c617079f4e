//! memlog's main demonstration: writers and streaming readers running for a
//! few seconds, with progress printed twice a second and every record verified.
//!
//! ```text
//! cargo run --release --example demo            # 4 writers, 4 readers, 3 s
//! cargo run --release --example demo -- 8 2 5   # 8 writers, 2 readers, 5 s
//! ```
//!
//! Each writer sends `(writer, sequence, checksum)` records; each reader
//! streams the log from offset 0 and checks every record: offsets consecutive
//! with no gap or duplicate, each writer's sequence in order, checksum intact.
//! A checkpointing reader restarts from its last offset every 100 000
//! records, as a consumer resuming after a crash would. Every reader must see
//! every record, so each holds what it has not read (`Lag::Hold`): the log
//! retains 64 Ki records, and writers that would purge a record a reader has
//! not read wait for it instead (backpressure). At the end the log is
//! closed, every reader drains to the last offset, and the totals must agree.

use crossbeam_utils::CachePadded;
use memlog::{Error, Lag, Log};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Event {
    writer: u32,
    seq: u64,
    checksum: u64,
}

fn checksum(writer: u32, seq: u64) -> u64 {
    (u64::from(writer) << 40 ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// What a reader verified.
#[derive(Default)]
struct Verified {
    records: u64,
    last_offset: Option<u64>,
    resumes: u64,
}

fn reader(log: Log<Event>, writers: usize, checkpointing: bool, seen: &AtomicU64) -> Verified {
    let mut next_seq = vec![0u64; writers];
    let mut v = Verified::default();
    let mut stream = log.stream(0).on_lag(Lag::Hold);
    loop {
        let rec = match stream.next() {
            Some(Ok(rec)) => rec,
            Some(Err(Error::OutOfRange)) => panic!(
                "a holding reader fell behind retention at offset {}",
                stream.next_offset()
            ),
            Some(Err(e)) => panic!("unexpected stream error: {e}"),
            None => {
                seen.store(v.records, Ordering::Relaxed);
                return v; // closed and drained
            }
        };
        let expected = v.last_offset.map_or(0, |o| o + 1);
        assert_eq!(rec.offset, expected, "gap or duplicate");
        let e = &rec.data;
        assert_eq!(e.checksum, checksum(e.writer, e.seq), "corrupt record");
        assert_eq!(e.seq, next_seq[e.writer as usize], "writer order broken");
        next_seq[e.writer as usize] += 1;
        v.records += 1;
        v.last_offset = Some(rec.offset);
        if v.records % 1024 == 0 {
            seen.store(v.records, Ordering::Relaxed);
        }
        if checkpointing && v.records % 100_000 == 0 {
            // Resume from the checkpoint: the new stream holds from there
            // before the old one is dropped (by this assignment), so no
            // writer purges the checkpoint in between.
            stream = log.stream(rec.offset + 1).on_lag(Lag::Hold);
            v.resumes += 1;
        }
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("usage: demo [writers] [readers] [seconds]")
        })
        .collect();
    let writers = args.first().copied().unwrap_or(4).max(1);
    let readers = args.get(1).copied().unwrap_or(4).max(1);
    let seconds = args.get(2).copied().unwrap_or(3) as u64;

    // 4096-record segments, 15 of history: 61 440 to 65 536 records
    // retained. The readers hold what they have not read, so however slow a
    // reader is on a busy machine, writers wait for it rather than purge.
    let log: Log<Event> = Log::builder()
        .segment_size(4096)
        .history_segments(15)
        .build()
        .expect("valid configuration");
    println!(
        "memlog demo: {writers} writers, {readers} streaming readers, {seconds} s, {} cores",
        thread::available_parallelism().map_or(1, |n| n.get())
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<Vec<CachePadded<AtomicU64>>> = Arc::new(
        (0..readers)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
    );
    let reader_threads: Vec<_> = (0..readers)
        .map(|i| {
            let (log, counts) = (log.clone(), Arc::clone(&counts));
            thread::spawn(move || reader(log, writers, i == 0, &counts[i]))
        })
        .collect();
    let writer_threads: Vec<_> = (0..writers)
        .map(|w| {
            let (log, stop) = (log.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // A write that would purge what a reader has not read
                    // waits for that reader (Lag::Hold).
                    // Mostly single writes, every 16th a batch of 8.
                    if seq % 16 == 0 {
                        let batch = (seq..seq + 8).map(|s| Event {
                            writer: w as u32,
                            seq: s,
                            checksum: checksum(w as u32, s),
                        });
                        log.write_batch(batch).expect("log is open");
                        seq += 8;
                    } else {
                        let e = Event {
                            writer: w as u32,
                            seq,
                            checksum: checksum(w as u32, seq),
                        };
                        log.write(e).expect("log is open");
                        seq += 1;
                    }
                }
                seq
            })
        })
        .collect();

    let started = Instant::now();
    let mut last = (0u64, started);
    while started.elapsed() < Duration::from_secs(seconds) {
        thread::sleep(Duration::from_millis(500));
        let written = log.next_offset();
        let now = Instant::now();
        let rate = (written - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
        last = (written, now);
        let behind: Vec<u64> = counts
            .iter()
            .map(|c| written - c.load(Ordering::Relaxed))
            .collect();
        println!(
            "{:>5.1} s  written {written:>11}  {:>6.2} M records/s  range {:?}  readers behind by {behind:?}",
            started.elapsed().as_secs_f64(),
            rate / 1e6,
            log.range(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let per_writer: Vec<u64> = writer_threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    log.close();
    let total: u64 = per_writer.iter().sum();
    assert_eq!(
        total,
        log.next_offset(),
        "every write got exactly one offset"
    );

    let elapsed = started.elapsed().as_secs_f64();
    for (i, t) in reader_threads.into_iter().enumerate() {
        let v = t.join().expect("reader verified every record");
        assert_eq!(v.records, total, "reader {i} saw every record");
        assert_eq!(v.last_offset, Some(total - 1));
        let resumed = if v.resumes > 0 {
            format!(", resumed from a checkpoint {} times", v.resumes)
        } else {
            String::new()
        };
        println!(
            "reader {i}: verified {} records in order, no gaps, no duplicates{resumed}",
            v.records
        );
    }
    println!(
        "OK: {total} records written by {writers} writers ({:.2} M/s), each verified by {readers} readers; retained range {:?}",
        total as f64 / elapsed / 1e6,
        log.range()
    );
}
