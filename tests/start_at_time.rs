//! `StartAt::Time`: a stream from the first record at or after a time, found
//! by a binary search (issue 19), and what it guarantees when times are not
//! in offset order.

use memlog::clock::SystemClock;
use memlog::sharded::ShardedLog;
use memlog::{Error, Lag, Log, StartAt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;
use common::log_with;

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

fn start(log: &Log<u64>, t: SystemTime) -> u64 {
    log.stream_from(StartAt::Time(t)).next_offset()
}

/// The two clauses `StartAt::Time`'s docs promise, for a log nobody writes
/// to or purges meanwhile.
fn check_guarantee(log: &Log<u64>, t: SystemTime) {
    let o = start(log, t);
    let (earliest, end) = log.range().map_or((o, o), |(a, b)| (a, b + 1));
    assert!(earliest <= o && o <= end, "{o} outside {earliest}..={end}");
    if o > earliest {
        assert!(log.read(o - 1).unwrap().created < t, "record before {o}");
    }
    if o < end {
        assert!(log.read(o).unwrap().created >= t, "record at {o}");
    }
}

#[test]
fn on_an_empty_log_it_is_the_start_offset() {
    let log = log_with(100, 4, 1);
    assert_eq!(start(&log, at(0)), 100);
    assert_eq!(start(&log, SystemTime::now()), 100);
}

#[test]
fn with_times_in_offset_order_it_is_the_first_record_at_or_after() {
    // Every second from 1000 s, two records per second, some purged.
    let log = log_with(7, 4, 2);
    for i in 0..40u64 {
        log.write_timed(at(1000 + i / 2), i).unwrap();
    }
    let (earliest, last) = log.range().unwrap();
    assert!(earliest > 7, "something was purged");
    for s in 990..1030 {
        let t = at(s);
        let expect = (earliest..=last)
            .find(|&o| log.read(o).unwrap().created >= t)
            .unwrap_or(last + 1);
        assert_eq!(start(&log, t), expect, "at {s} s");
        check_guarantee(&log, t);
    }
    // Between two seconds: the first record of the next one.
    let t = at(1015) + Duration::from_millis(500);
    assert_eq!(log.read(start(&log, t)).unwrap().created, at(1016));
}

#[test]
fn before_the_earliest_retained_record_it_is_the_earliest() {
    let log = log_with(0, 2, 1);
    for i in 0..9u64 {
        log.write_timed(at(10 + i), i).unwrap();
    }
    let (earliest, _) = log.range().unwrap();
    assert!(earliest > 0);
    assert_eq!(start(&log, at(0)), earliest);
    assert_eq!(
        log.stream_from(StartAt::Earliest).next_offset(),
        start(&log, UNIX_EPOCH)
    );
}

#[test]
fn past_the_end_it_waits_for_new_records() {
    let log = log_with(0, 4, 1);
    log.write_timed(at(10), 0).unwrap();
    log.write_timed(at(11), 1).unwrap();
    let mut stream = log.stream_from(StartAt::Time(at(12)));
    assert_eq!(stream.next_offset(), log.next_offset());
    assert_eq!(stream.try_recv(), Err(Error::FutureOffset));
    let writer = log.clone();
    let w = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        writer.write_timed(at(12), 2).unwrap();
    });
    let r = stream.recv().unwrap();
    assert_eq!((r.offset, r.data, r.created), (2, 2, at(12)));
    w.join().unwrap();
}

#[test]
fn at_exactly_a_record_time_it_includes_every_record_of_that_time() {
    let log = log_with(0, 64, 1);
    log.write_timed(at(1), 0).unwrap();
    log.write_batch([1, 2, 3]).unwrap(); // three records, one time
    let t = log.read(1).unwrap().created;
    assert_eq!(start(&log, t), 1);
}

/// A small deterministic generator, so that failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn with_times_out_of_order_both_clauses_hold() {
    let mut rng = Lcg(19);
    for round in 0..50 {
        let log = log_with(round, 8, 3);
        let n = 1 + rng.next() % 60;
        for i in 0..n {
            // Mostly rising, with jitter as racing writers give.
            let s = 100 + i + rng.next() % 5;
            log.write_timed(at(s), i).unwrap();
        }
        for s in 95..170 {
            check_guarantee(&log, at(s));
        }
    }
}

#[test]
fn with_concurrent_writers_both_clauses_hold() {
    let log: Log<u64> = Log::builder()
        .clock(SystemClock)
        .segment_size(1024)
        .history_segments(8)
        .build()
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..2000 {
                    log.write(i).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (earliest, last) = log.range().unwrap();
    for o in (earliest..=last).step_by(37) {
        let t = log.read(o).unwrap().created;
        check_guarantee(&log, t);
        check_guarantee(&log, t + Duration::from_nanos(1));
    }
}

#[test]
fn a_purge_racing_the_search_never_panics_nor_starts_at_a_purged_time() {
    // A writer purging as fast as it can, times rising one nanosecond per
    // record, while searches run for a time near the oldest retained record
    // (where the purge overtakes a search most often: in a probe, a few
    // restarts per 20 000 searches; each restart is the path under test).
    for (segment, history, back) in [(2, 2, 5), (16, 1, 30)] {
        let log = log_with(0, segment, history);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (log, stop) = (log.clone(), stop.clone());
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    log.write_timed(UNIX_EPOCH + Duration::from_nanos(i), i)
                        .unwrap();
                    i += 1;
                }
            })
        };
        for k in 0..10_000u64 {
            let before = log.stream_from(StartAt::Earliest).next_offset();
            let next = log.next_offset();
            let t = UNIX_EPOCH + Duration::from_nanos(next.saturating_sub(back - k % 3));
            let o = start(&log, t);
            assert!(o >= before, "{o} below the earliest {before} seen before");
            assert!(o <= log.next_offset());
            // Unless o is the earliest retained offset (the purge point is
            // raised before the purged segment is unlinked, so the record
            // before it may still be readable a moment), the record before
            // o, if still there, was before the time.
            let earliest = log.stream_from(StartAt::Earliest).next_offset();
            if o > earliest {
                if let Ok(r) = log.read(o - 1) {
                    assert!(
                        r.created < t,
                        "{o}: the record before was not before the time"
                    );
                }
            }
        }
        // And a stream from there, skipping what it loses, goes on.
        let mut s = log.stream_from(StartAt::Time(UNIX_EPOCH)).on_lag(Lag::Skip);
        for _ in 0..100 {
            match s.recv() {
                Ok(_) | Err(Error::Lagged { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    }
}

#[test]
fn sharded_logs_take_it_too() {
    let log: ShardedLog<u64> = ShardedLog::new();
    for i in 0..10u64 {
        log.write_timed("k", at(50 + i), i).unwrap();
    }
    let mut s = log.stream_from("k", StartAt::Time(at(53))).unwrap();
    assert_eq!(s.recv().unwrap().data, 3);
}

#[cfg(feature = "async")]
#[test]
fn async_streams_take_it() {
    let log = log_with(0, 8, 1);
    for i in 0..5u64 {
        log.write_timed(at(i), i).unwrap();
    }
    let s = log.stream_async_from(StartAt::Time(at(2)));
    assert_eq!(s.next_offset(), 2);
}
