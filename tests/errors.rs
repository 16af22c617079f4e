//! Every bad input gets a clear error; panics in user code (clock, Clone) do
//! not wedge the log; the public types have the auto traits they promise.

use memlog::clock::Clock;
use memlog::sharded::{Fnv1aSharder, KeySharder, ShardedLog};
use memlog::{
    Canceller, Error, Lag, Log, Record, StartAt, Stream, MAX_HISTORY_SEGMENTS, MAX_RETAINED,
    MAX_START_OFFSET,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::SystemTime;

fn invalid<T: Clone + Send + Sync + 'static>(r: Result<Log<T>, Error>) -> String {
    match r {
        Err(Error::InvalidConfig(why)) => {
            let text = Error::InvalidConfig(why.clone()).to_string();
            assert!(text.contains(&why));
            why
        }
        Err(e) => panic!("expected InvalidConfig, got {e:?}"),
        Ok(_) => panic!("expected InvalidConfig, got a log"),
    }
}

// ------------------------------------------------------- builder settings

#[test]
fn segment_size_zero() {
    let why = invalid(Log::<u64>::builder().segment_size(0).build());
    assert!(why.contains("segment_size"), "{why}");
}

#[test]
fn segment_size_too_large_for_memory() {
    let why = invalid(Log::<u64>::builder().segment_size(usize::MAX).build());
    assert!(why.contains("segment_size"), "{why}");
}

#[test]
fn start_offset_too_large() {
    for start in [u64::MAX, MAX_START_OFFSET + 1] {
        let why = invalid(Log::<u64>::builder().start_offset(start).build());
        assert!(why.contains("start_offset"), "{why}");
        assert!(why.contains(&MAX_START_OFFSET.to_string()), "{why}");
    }
}

#[test]
fn start_offset_at_the_maximum_works() {
    let log: Log<u8> = Log::builder()
        .start_offset(MAX_START_OFFSET)
        .segment_size(2)
        .history_segments(0)
        .build()
        .unwrap();
    assert_eq!(log.write(1).unwrap(), MAX_START_OFFSET);
    assert_eq!(
        log.write_batch([2, 3, 4]),
        Err(Error::BatchTooLarge { len: 3, max: 2 })
    );
    assert_eq!(
        log.write_batch([2, 3]).unwrap(),
        MAX_START_OFFSET + 1..MAX_START_OFFSET + 3
    );
    assert_eq!(
        log.range(),
        Some((MAX_START_OFFSET + 2, MAX_START_OFFSET + 2))
    );
    assert_eq!(log.read(MAX_START_OFFSET), Err(Error::OutOfRange));
    assert_eq!(log.read(MAX_START_OFFSET + 2).unwrap().data, 3);
    assert_eq!(log.read(u64::MAX), Err(Error::FutureOffset));
    let mut out = Vec::new();
    assert_eq!(
        log.read_batch(MAX_START_OFFSET + 2, &mut out, usize::MAX),
        Ok(1)
    );
}

#[test]
fn history_segments_too_large() {
    let why = invalid(
        Log::<u64>::builder()
            .segment_size(1)
            .history_segments(MAX_HISTORY_SEGMENTS + 1)
            .build(),
    );
    assert!(why.contains("history_segments"), "{why}");
    assert!(why.contains(&MAX_HISTORY_SEGMENTS.to_string()), "{why}");
    let why = invalid(Log::<u64>::builder().history_segments(usize::MAX).build());
    assert!(why.contains("history_segments"), "{why}");
}

#[test]
fn retained_capacity_overflow() {
    // Beyond MAX_RETAINED, and beyond u64 altogether.
    for seg in [1usize << 43, 1usize << 57] {
        let why = invalid(
            Log::<u64>::builder()
                .segment_size(seg)
                .history_segments(MAX_HISTORY_SEGMENTS)
                .build(),
        );
        assert!(
            why.contains("segment_size") && why.contains("history_segments"),
            "{why}"
        );
        assert!(why.contains(&MAX_RETAINED.to_string()), "{why}");
    }
}

#[test]
fn shards_below_two() {
    for n in [0usize, 1] {
        match ShardedLog::<u64>::builder().shards(n).build() {
            Err(Error::InvalidConfig(why)) => assert!(why.contains("shards"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
    match ShardedLog::<u64>::builder()
        .shards(1)
        .sharder(KeySharder::new(["a"]))
        .build()
    {
        Err(Error::InvalidConfig(why)) => assert!(why.contains("shards"), "{why}"),
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------- payload limits

fn bytes_log(max: usize, seg: usize, hist: usize) -> Log<Vec<u8>> {
    Log::builder()
        .segment_size(seg)
        .history_segments(hist)
        .max_record_bytes(max)
        .build()
        .unwrap()
}

#[test]
fn oversized_payload_writes_nothing() {
    let log = bytes_log(4, 4, 1);
    log.write(vec![1]).unwrap();
    assert_eq!(
        log.write(vec![0; 5]),
        Err(Error::RecordTooLarge { len: 5, max: 4 })
    );
    assert_eq!(log.next_offset(), 1);
    assert_eq!(log.range(), Some((0, 0)));
    assert_eq!(log.write(vec![0; 4]).unwrap(), 1);
    assert_eq!(log.write(Vec::new()).unwrap(), 2);
    // After close the size check still comes first.
    log.close();
    assert_eq!(
        log.write(vec![0; 9]),
        Err(Error::RecordTooLarge { len: 9, max: 4 })
    );
    assert_eq!(log.write(vec![0; 1]), Err(Error::Closed));
}

#[test]
fn batch_with_one_oversized_record_writes_nothing() {
    let log = bytes_log(4, 4, 1);
    log.write(vec![1]).unwrap();
    let mut s = log.stream(0);
    assert_eq!(
        log.write_batch([vec![1], vec![2; 4], vec![3; 6], vec![4]]),
        Err(Error::RecordTooLarge { len: 6, max: 4 })
    );
    assert_eq!(log.next_offset(), 1);
    assert_eq!(log.range(), Some((0, 0)));
    assert_eq!(s.try_recv().unwrap().data, vec![1]);
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    assert_eq!(log.write_batch([vec![5], vec![6]]).unwrap(), 1..3);
    assert_eq!(s.try_recv().unwrap().data, vec![5]);
}

#[test]
fn batch_longer_than_retention() {
    let log: Log<u32> = Log::builder()
        .segment_size(4)
        .history_segments(1)
        .build()
        .unwrap();
    assert_eq!(
        log.write_batch(0..9),
        Err(Error::BatchTooLarge { len: 9, max: 8 })
    );
    assert_eq!(log.next_offset(), 0);
    assert_eq!(log.range(), None);
    assert_eq!(log.write_batch(0..8).unwrap(), 0..8);
    assert_eq!(log.range(), Some((0, 7)));
    // Mid-segment, a full-retention batch spans three segments and purges its own head.
    log.write(8).unwrap();
    assert_eq!(log.write_batch(9..17).unwrap(), 9..17);
    assert_eq!(log.range(), Some((12, 16)));
    assert_eq!(log.write_batch(std::iter::empty()).unwrap(), 17..17);
}

/// A closed log refuses a batch before pulling any of it: an endless
/// iterator gets `Closed`, not `BatchTooLarge` after capacity + 1 pulls
/// (with zero-sized records and a huge capacity it would never return).
#[test]
fn closed_log_refuses_a_batch_before_pulling_it() {
    use std::cell::Cell;
    use std::time::UNIX_EPOCH;
    let pulls = Cell::new(0u64);
    let endless = || {
        std::iter::repeat_with(|| {
            pulls.set(pulls.get() + 1);
            7u32
        })
    };
    let timed = || endless().map(|d| (UNIX_EPOCH, d));
    let log: Log<u32> = Log::builder().segment_size(4).build().unwrap();
    log.close();
    assert_eq!(log.write_batch(endless()), Err(Error::Closed));
    assert_eq!(log.write_batch_timed(timed()), Err(Error::Closed));
    // The exclusive writer's, closed by the writer and by a read handle.
    for close_by_reader in [false, true] {
        let (mut w, log) = Log::builder().segment_size(4).build_exclusive().unwrap();
        if close_by_reader {
            log.close();
        } else {
            w.close();
        }
        assert_eq!(w.write_batch(endless()), Err(Error::Closed));
        assert_eq!(w.write_batch_timed(timed()), Err(Error::Closed));
    }
    assert_eq!(pulls.get(), 0, "a closed log pulled from the batch");
}

#[test]
fn display_of_every_variant() {
    let all = [
        Error::FutureOffset,
        Error::OutOfRange,
        Error::RecordTooLarge {
            len: 12345,
            max: 678,
        },
        Error::Closed,
        Error::Cancelled,
        Error::Timeout,
        Error::InvalidConfig("segment_size must be > 0".into()),
        Error::UnknownKey("teams".into()),
        Error::BatchTooLarge {
            len: 9999,
            max: 4242,
        },
        Error::Lagged { skipped: 31337 },
    ];
    for e in &all {
        let text = e.to_string();
        assert!(!text.trim().is_empty(), "{e:?}");
        assert!(!format!("{e:?}").is_empty());
    }
    let text = |i: usize| all[i].to_string();
    assert!(
        text(2).contains("12345") && text(2).contains("678"),
        "{}",
        text(2)
    );
    assert!(text(6).contains("segment_size"), "{}", text(6));
    assert!(text(7).contains("teams"), "{}", text(7));
    assert!(
        text(8).contains("9999") && text(8).contains("4242"),
        "{}",
        text(8)
    );
    assert!(text(9).contains("31337"), "{}", text(9));
    // All texts differ.
    let mut texts: Vec<String> = all.iter().map(|e| e.to_string()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), all.len());
}

// ------------------------------------------------------- panicking clock

/// Panics in `now()` when switched on, for the thread named "doomed" only.
#[derive(Clone)]
struct TrapClock(Arc<AtomicBool>);

impl Clock for TrapClock {
    fn now(&self) -> SystemTime {
        if self.0.load(Ordering::SeqCst) && thread::current().name() == Some("doomed") {
            panic!("clock trap");
        }
        SystemTime::now()
    }
}

#[test]
fn panicking_clock_does_not_wedge_the_log() {
    let trap = Arc::new(AtomicBool::new(false));
    let log: Log<u64> = Log::builder()
        .segment_size(4)
        .history_segments(1_000)
        .clock(TrapClock(trap.clone()))
        .build()
        .unwrap();
    let stream = log.stream(0);
    log.write_batch(0..3).unwrap();
    trap.store(true, Ordering::SeqCst);

    // The doomed writer panics, in write and in write_batch.
    for batch in [false, true] {
        let l = log.clone();
        let r = thread::Builder::new()
            .name("doomed".into())
            .spawn(move || {
                if batch {
                    l.write_batch([100, 101]).map(|r| r.start)
                } else {
                    l.write(100)
                }
            })
            .unwrap()
            .join();
        assert!(r.is_err(), "the doomed writer must panic");
    }

    // Others keep writing, concurrently, and the early stream sees them all.
    let reader = thread::spawn(move || {
        stream
            .map(|r| r.unwrap())
            .map(|r| (r.offset, r.data))
            .collect::<Vec<_>>()
    });
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let l = log.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    l.write(1_000 * (w + 1) + i).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    trap.store(false, Ordering::SeqCst);
    log.close();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 303);
    for (i, (o, _)) in got.iter().enumerate() {
        assert_eq!(*o, i as u64);
    }
    assert_eq!(got[..3].iter().map(|g| g.1).collect::<Vec<_>>(), [0, 1, 2]);
    for w in 1..=3u64 {
        let mine: Vec<u64> = got.iter().map(|g| g.1).filter(|d| d / 1_000 == w).collect();
        assert_eq!(mine, (0..100).map(|i| 1_000 * w + i).collect::<Vec<_>>());
    }
    assert!(got.iter().all(|g| g.1 != 100 && g.1 != 101));
}

// ------------------------------------------------------- panicking Clone

#[derive(Debug, PartialEq)]
struct Fragile {
    value: u64,
    poison: bool,
}

impl Clone for Fragile {
    fn clone(&self) -> Self {
        if self.poison {
            panic!("poisoned payload");
        }
        Fragile {
            value: self.value,
            poison: false,
        }
    }
}

#[test]
fn panicking_clone_panics_the_reader_only() {
    let log: Log<Fragile> = Log::builder()
        .segment_size(2)
        .history_segments(100)
        .build()
        .unwrap();
    let f = |value, poison| Fragile { value, poison };
    log.write(f(0, false)).unwrap();
    log.write(f(1, true)).unwrap();
    log.write(f(2, false)).unwrap();

    assert!(catch_unwind(AssertUnwindSafe(|| log.read(1))).is_err());
    let mut out = Vec::new();
    assert!(catch_unwind(AssertUnwindSafe(|| log.read_batch(0, &mut out, 3))).is_err());
    let mut s = log.stream(0);
    assert_eq!(s.next().unwrap().unwrap().data, f(0, false));
    assert!(catch_unwind(AssertUnwindSafe(|| s.next())).is_err());

    // Everyone else carries on: reads around it, other streams, writes.
    assert_eq!(log.read(0).unwrap().data, f(0, false));
    assert_eq!(log.read(2).unwrap().data, f(2, false));
    let mut s2 = log.stream(2);
    assert_eq!(s2.try_recv().unwrap().data.value, 2);
    let handle = {
        let log = log.clone();
        thread::spawn(move || {
            for i in 3..50 {
                log.write(f(i, false)).unwrap();
            }
        })
    };
    handle.join().unwrap();
    for i in 3..50 {
        assert_eq!(s2.try_recv().unwrap().data.value, i);
    }
    let mut out = Vec::new();
    assert_eq!(log.read_batch(2, &mut out, 100), Ok(48));
    assert_eq!(log.range(), Some((0, 49)));
}

// ------------------------------------------------------- auto traits

#[test]
fn auto_traits() {
    fn send_sync_clone_debug<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    fn send_static<T: Send + 'static>() {}
    fn debug<T: std::fmt::Debug>() {}
    fn error<T: std::error::Error + Send + Sync + Clone + PartialEq + 'static>() {}

    send_sync_clone_debug::<Log<u64>>();
    send_sync_clone_debug::<Log<String>>();
    send_sync_clone_debug::<Log<Arc<Vec<u8>>>>();
    send_static::<Stream<u64>>();
    send_static::<Stream<String>>();
    debug::<Stream<u64>>();
    send_sync_clone_debug::<Canceller>();
    send_sync_clone_debug::<ShardedLog<u64>>();
    send_sync_clone_debug::<ShardedLog<u64, Fnv1aSharder>>();
    send_sync_clone_debug::<ShardedLog<String, KeySharder>>();
    send_sync_clone_debug::<Record<u64>>();
    send_sync_clone_debug::<StartAt>();
    send_sync_clone_debug::<Lag>();
    error::<Error>();

    // Box<dyn Error> conversion works for `?` in applications.
    let e: Box<dyn std::error::Error + Send + Sync> = Error::Closed.into();
    assert_eq!(e.to_string(), Error::Closed.to_string());

    // The Debug output of the handles is informative.
    let log: Log<u64> = Log::builder().start_offset(7).build().unwrap();
    log.write(1).unwrap();
    let text = format!("{log:?}");
    assert!(
        text.contains("start_offset") && text.contains('7'),
        "{text}"
    );
    let s = log.stream(7);
    assert!(format!("{s:?}").contains('7'));
    assert!(format!("{:?}", s.canceller()).contains("cancelled"));
}
