//! Zero-copy reading: `Stream::visit` / `try_visit` / `visit_timeout` give
//! exactly the records (and endings) the iterator gives, can be mixed with
//! it, survive a panicking closure; `Log::pin` reads exactly as `Log::read`;
//! both under concurrent writers and purges, every record checked.

mod common;

use common::log_with;
use memlog::{Error, Lag, Log, Pinned, Record, RecordRef, Stream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

type Item = Result<Record<u64>, Error>;

/// What a stream yields through its iterator, to the end.
fn by_iterator(stream: Stream<u64>) -> Vec<Item> {
    stream.collect()
}

/// What a stream gives through `try_visit(max, ..)`, in the iterator's
/// shape: records, then `Lagged` where it comes, then the ending (`Closed`
/// is the iterator's `None`). Checks that the count returned is the number
/// visited, within `1..=max`, and that an ended stream stays ended.
fn by_visit(mut stream: Stream<u64>, max: usize) -> Vec<Item> {
    let mut items = Vec::new();
    loop {
        let before = items.len();
        match stream.try_visit(max, |r| items.push(Ok(r.to_owned()))) {
            Ok(n) => {
                assert!((1..=max).contains(&n), "{n} of at most {max}");
                assert_eq!(items.len() - before, n);
            }
            Err(Error::Lagged { skipped }) => items.push(Err(Error::Lagged { skipped })),
            Err(e) => {
                assert_eq!(items.len(), before);
                assert_eq!(stream.ended(), Some(&e));
                assert_eq!(stream.try_visit(max, |_| panic!("ended")), Err(e.clone()));
                if e != Error::Closed {
                    items.push(Err(e));
                }
                return items;
            }
        }
    }
}

/// Logs with purges, skips and a start offset, all written and closed before
/// reading: the iterator and the visitor must agree item for item.
#[test]
fn visit_gives_what_the_iterator_gives() {
    for (start, seg, hist, n) in [
        (0, 1, 0, 5),
        (0, 3, 1, 20),
        (100, 4, 2, 37),
        (7, 8, 0, 8),
        (0, 64, 3, 500),
        (0, 2, 1, 0),
    ] {
        let log = log_with(start, seg, hist);
        for i in 0..n {
            log.write(start + i).unwrap();
        }
        log.close();
        let first = log.range().map_or(start, |r| r.0);
        for from in [
            start.saturating_sub(1),
            start,
            first,
            start + n / 2,
            start + n,
        ] {
            for lag in [Lag::End, Lag::Skip] {
                let want = by_iterator(log.stream(from).on_lag(lag));
                for max in [1, 2, 5, 31, 32, 33, usize::MAX] {
                    let got = by_visit(log.stream(from).on_lag(lag), max);
                    assert_eq!(
                        got, want,
                        "start {start} seg {seg} hist {hist} n {n} from {from} {lag:?} max {max}"
                    );
                }
            }
        }
    }
}

#[test]
fn visit_with_max_zero_visits_nothing() {
    let log = log_with(0, 4, 1);
    log.write(1).unwrap();
    let mut s = log.stream(0);
    assert_eq!(s.try_visit(0, |_| panic!()), Ok(0));
    assert_eq!(s.visit(0, |_| panic!()), Ok(0));
    assert_eq!(
        s.visit_timeout(0, Duration::from_secs(60), |_| panic!()),
        Ok(0)
    );
    assert_eq!(s.next_offset(), 0);
}

/// The iterator reads up to 32 records ahead; the visitor visits those first
/// (from the copies), then goes on in the log, and the iterator goes on
/// where the visitor stopped.
#[test]
fn visitor_and_iterator_mix_on_one_stream() {
    let log = log_with(0, 16, 8);
    for i in 0..100 {
        log.write(i * 10).unwrap();
    }
    let mut s = log.stream(0);
    let mut seen = Vec::new();
    let take = |r: RecordRef<'_, u64>| {
        assert_eq!(*r.data, r.offset * 10);
        r.offset
    };
    seen.push(s.next().unwrap().unwrap().offset); // fetches 0..32
    assert_eq!(s.try_visit(5, |r| seen.push(take(r))), Ok(5));
    seen.push(s.next().unwrap().unwrap().offset);
    assert_eq!(s.try_visit(50, |r| seen.push(take(r))), Ok(50)); // 25 ahead + 25
    assert_eq!(s.next_offset(), 57);
    seen.extend((0..3).map(|_| s.next().unwrap().unwrap().offset));
    assert_eq!(s.visit(1000, |r| seen.push(take(r))), Ok(40));
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert_eq!(s.try_visit(10, |_| panic!()), Err(Error::FutureOffset));
    log.close();
    assert_eq!(s.try_visit(10, |_| panic!()), Err(Error::Closed));
    assert!(s.next().is_none());
}

/// Records the iterator fetched before a purge are still visited (intact
/// copies, as the iterator would yield them); the ending comes after them,
/// on the next call.
#[test]
fn records_read_ahead_are_visited_after_a_purge() {
    for lag in [Lag::End, Lag::Skip] {
        let log = log_with(0, 4, 0);
        log.write_batch([0, 1, 2, 3]).unwrap();
        let mut s = log.stream(0).on_lag(lag);
        assert_eq!(s.next().unwrap().unwrap().data, 0); // 1..4 read ahead
        log.write_batch([4, 5, 6, 7]).unwrap();
        log.write(8).unwrap(); // purges 0..4 and 4..8
        let mut got = Vec::new();
        assert_eq!(s.try_visit(10, |r| got.push(*r.data)), Ok(3));
        assert_eq!(got, [1, 2, 3]);
        match lag {
            Lag::End => {
                assert_eq!(s.try_visit(10, |_| panic!()), Err(Error::OutOfRange));
                assert_eq!(s.visit(10, |_| panic!()), Err(Error::OutOfRange));
                assert!(s.next().is_none());
            }
            _ => {
                let skipped = 4;
                assert_eq!(s.visit(10, |_| panic!()), Err(Error::Lagged { skipped }));
                assert_eq!(s.try_visit(10, |r| got.push(*r.data)), Ok(1));
                assert_eq!(got, [1, 2, 3, 8]);
            }
        }
    }
}

#[test]
fn visit_endings_match_the_iterator() {
    // Closed and drained: the records, then `Closed`, for ever.
    let log = log_with(0, 4, 1);
    log.write_batch([1, 2, 3]).unwrap();
    log.close();
    let mut s = log.stream(0);
    assert_eq!(s.visit(10, |_| {}), Ok(3));
    assert_eq!(s.visit(10, |_| panic!()), Err(Error::Closed));
    assert_eq!(s.ended(), Some(&Error::Closed));
    assert!(s.next().is_none());

    // Cancelled: checked at the start of a call, also with records ready.
    let log = log_with(0, 4, 1);
    log.write(1).unwrap();
    let mut s = log.stream(0);
    s.canceller().cancel();
    assert_eq!(s.try_visit(10, |_| panic!()), Err(Error::Cancelled));
    assert_eq!(s.visit(10, |_| panic!()), Err(Error::Cancelled));
    assert_eq!(s.next(), None);

    // Below the start offset: `OutOfRange`, or `Lagged` up to the start.
    let log = log_with(10, 4, 1);
    log.write(10).unwrap();
    assert_eq!(log.stream(8).visit(1, |_| {}), Err(Error::OutOfRange));
    let mut s = log.stream(8).on_lag(Lag::Skip);
    assert_eq!(s.visit(1, |_| {}), Err(Error::Lagged { skipped: 2 }));
    assert_eq!(s.visit(1, |r| assert_eq!(r.offset, 10)), Ok(1));

    // A purge between two visits of a caught-up stream (judged by stamps).
    let log = log_with(0, 2, 0);
    let mut s = log.stream(0);
    log.write(0).unwrap();
    assert_eq!(s.visit(10, |_| {}), Ok(1));
    for i in 1..4 {
        log.write(i).unwrap(); // 2 purges 0..2
    }
    assert_eq!(s.try_visit(10, |_| panic!()), Err(Error::OutOfRange));
}

/// A panicking closure leaves the stream consistent: the position counts
/// the records whose visit returned, so the one it panicked on comes again,
/// from the log or from the iterator's read-ahead.
#[test]
fn panicking_visitor_leaves_the_record_to_the_next_call() {
    let log = log_with(0, 4, 4);
    log.write_batch(0..10).unwrap();
    let mut s = log.stream(0);
    let mut seen = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.try_visit(10, |r| {
            assert!(*r.data != 6, "boom at 6"); // past a segment boundary
            seen.push(*r.data);
        })
    }));
    assert!(r.is_err());
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    assert_eq!(s.next_offset(), 6);
    assert_eq!(s.next().unwrap().unwrap().data, 6); // reads 6..10 ahead
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.try_visit(10, |r| {
            assert!(*r.data != 8, "boom at 8"); // in the read-ahead
            seen.push(*r.data);
        })
    }));
    assert!(r.is_err());
    assert_eq!(s.next_offset(), 8);
    assert_eq!(s.try_visit(10, |r| seen.push(*r.data)), Ok(2));
    assert_eq!(seen, [0, 1, 2, 3, 4, 5, 7, 8, 9]);
    // The panics left no pin behind: a purge is reclaimed, writes go on.
    for i in 10..40 {
        log.write(i).unwrap();
    }
    assert_eq!(log.read(0), Err(Error::OutOfRange));
}

#[test]
fn blocking_visit_waits_for_a_write_and_times_out_without_one() {
    let log = log_with(0, 4, 1);
    let mut s = log.stream(0);
    assert_eq!(
        s.visit_timeout(10, Duration::from_millis(5), |_| panic!()),
        Err(Error::Timeout)
    );
    let writer = {
        let log = log.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            log.write_batch([7, 8]).unwrap();
        })
    };
    let mut got = Vec::new();
    while got.len() < 2 {
        let n = s.visit(10, |r| got.push((r.offset, *r.data))).unwrap();
        assert!(n >= 1);
    }
    assert_eq!(got, [(0, 7), (1, 8)]);
    writer.join().unwrap();
    // A parked visit is woken by close and by cancel.
    let cancel = s.canceller();
    let closer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        cancel.cancel();
    });
    assert_eq!(s.visit(10, |_| panic!()), Err(Error::Cancelled));
    closer.join().unwrap();
    let mut s = log.stream(2);
    let closer = {
        let log = log.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            log.close();
        })
    };
    assert_eq!(s.visit(10, |_| panic!()), Err(Error::Closed));
    closer.join().unwrap();
}

// ----------------------------------------------------------- concurrent

const WRITERS: u64 = 2;
const PER_WRITER: u64 = 20_000;

/// Writers write `(w << 40) | i`; returns what each offset holds.
fn write_concurrently(log: &Log<u64>, done: &Arc<AtomicBool>) -> Vec<u64> {
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                (0..PER_WRITER)
                    .map(|i| {
                        let v = (w << 40) | i;
                        (log.write(v).unwrap(), v)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut expected = vec![u64::MAX; (WRITERS * PER_WRITER) as usize];
    for w in writers {
        for (o, v) in w.join().unwrap() {
            assert_eq!(expected[o as usize], u64::MAX, "offset {o} given twice");
            expected[o as usize] = v;
        }
    }
    done.store(true, Ordering::Release);
    log.close();
    expected
}

/// What a visiting reader saw: `(offset, value)` per record, and the
/// `(at, skipped)` of each `Lagged`.
#[derive(Default)]
struct Seen {
    records: Vec<(u64, u64)>,
    lags: Vec<(u64, u64)>,
}

/// Every offset from 0 to `expected.len()` is accounted for exactly once and
/// in order, as a record with the value written there, or inside a lag.
fn check(seen: &Seen, expected: &[u64], may_lag: bool) {
    let mut lags = seen.lags.iter().peekable();
    let mut next = 0u64;
    for &(o, v) in &seen.records {
        while let Some(&&(at, skipped)) = lags.peek() {
            if at != next {
                break;
            }
            assert!(skipped > 0);
            next += skipped;
            lags.next();
        }
        assert_eq!(o, next, "gap or duplicate");
        assert_eq!(v, expected[o as usize], "offset {o} holds another value");
        next += 1;
    }
    assert!(lags.next().is_none(), "a lag after the last record");
    assert_eq!(next, expected.len() as u64, "records missing at the end");
    if !may_lag {
        assert!(seen.lags.is_empty());
    }
}

fn visiting_reader(mut s: Stream<u64>, blocking: bool) -> thread::JoinHandle<Seen> {
    thread::spawn(move || {
        let mut seen = Seen::default();
        let mut max = 1;
        loop {
            let before = seen.records.len();
            let at = s.next_offset();
            let r = if blocking {
                s.visit(max, |r| seen.records.push((r.offset, *r.data)))
            } else {
                s.try_visit(max, |r| seen.records.push((r.offset, *r.data)))
            };
            match r {
                Ok(n) => assert_eq!(seen.records.len() - before, n),
                Err(Error::FutureOffset) => thread::yield_now(),
                Err(Error::Lagged { skipped }) => seen.lags.push((at, skipped)),
                Err(Error::Closed) => return seen,
                Err(e) => panic!("{e}"),
            }
            max = max % 97 + 13; // varied run lengths
        }
    })
}

/// Small segments and history 1: writers purge all the time, and readers
/// that fall behind skip; every offset is still accounted for exactly once,
/// and every record visited holds what was written at its offset.
#[test]
fn visiting_readers_race_writers_and_purges() {
    let log = log_with(0, 8, 1);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|i| visiting_reader(log.stream(0).on_lag(Lag::Skip), i == 0))
        .collect();
    let expected = write_concurrently(&log, &done);
    for r in readers {
        check(&r.join().unwrap(), &expected, true);
    }
}

/// Retention above the total: no reader may lose anything, each sees every
/// record, in order; a blocking one and a polling one.
#[test]
fn visiting_readers_see_every_record() {
    let log = log_with(0, 1024, 64);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|i| visiting_reader(log.stream(0), i == 0))
        .collect();
    let expected = write_concurrently(&log, &done);
    for r in readers {
        check(&r.join().unwrap(), &expected, false);
    }
}

#[cfg(feature = "async")]
#[test]
fn async_visit_sees_every_record() {
    let log = log_with(0, 1024, 64);
    let done = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut s = log.stream_async(0);
            rt.spawn(async move {
                let mut seen = Seen::default();
                loop {
                    match s
                        .visit(50, |r| seen.records.push((r.offset, *r.data)))
                        .await
                    {
                        Ok(n) => assert!(n >= 1),
                        Err(Error::Closed) => return seen,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let expected = write_concurrently(&log, &done);
    for r in readers {
        check(&rt.block_on(r).unwrap(), &expected, false);
    }
    assert_eq!(log.waiter_count(), 0);
}

// --------------------------------------------------------------- Pinned

/// A pinned reader answers every offset around the log as `Log::read` does.
#[test]
fn pinned_reads_match_log_read() {
    for (start, seg, hist, n) in [(0, 1, 0, 3), (5, 3, 1, 20), (100, 4, 2, 37), (0, 2, 0, 0)] {
        let log = log_with(start, seg, hist);
        for i in 0..n {
            log.write(i * 3).unwrap();
        }
        let pinned = log.pin();
        for o in start.saturating_sub(3)..start + n + 3 {
            let want = log.read(o);
            assert_eq!(pinned.read(o), want, "offset {o}");
            assert_eq!(pinned.get(o).map(|r| r.to_owned()), want, "offset {o}");
        }
        for o in [u64::MAX, u64::MAX - 1] {
            assert_eq!(pinned.get(o), Err(Error::FutureOffset));
        }
    }
}

/// A pin sees writes and purges made after it was taken (it caches no
/// segment), and writers never wait for it.
#[test]
fn pinned_sees_later_writes_and_purges() {
    let log = log_with(0, 2, 0);
    log.write(100).unwrap();
    let pinned = log.pin();
    assert_eq!(*pinned.get(0).unwrap().data, 100);
    assert_eq!(pinned.get(1), Err(Error::FutureOffset));
    log.write(101).unwrap();
    assert_eq!(*pinned.get(1).unwrap().data, 101);
    for i in 2..1000 {
        log.write(100 + i).unwrap(); // purges while pinned: never waits
    }
    assert_eq!(pinned.get(0), Err(Error::OutOfRange));
    assert_eq!(pinned.get(997), Err(Error::OutOfRange));
    assert_eq!(*pinned.get(998).unwrap().data, 1098);
    assert!(format!("{pinned:?}").contains("high_water_seen: 1000"));
}

/// Many random pinned reads while a writer purges: an `Ok` holds its own
/// offset's value, and within one pin an offset never goes back from
/// `OutOfRange` to readable, nor from readable to `FutureOffset`.
#[test]
fn pinned_reads_race_writer_and_purges() {
    let log = log_with(0, 4, 1);
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|seed| {
            let (log, done) = (log.clone(), done.clone());
            thread::spawn(move || {
                let mut rng = seed * 7919 + 1u64;
                let (mut ok, mut purged) = (0u64, 0u64);
                // A pass after the writer is done too: it may be done before
                // this thread first runs (then 8 retained offsets of the 24
                // probed around the end: a pass of 200 finds some).
                let mut done_before = false;
                while !done_before {
                    done_before = done.load(Ordering::Acquire);
                    let pinned: Pinned<'_, u64> = log.pin();
                    let hw = log.next_offset();
                    for _ in 0..200 {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let o = (hw + 4).saturating_sub(rng % 24);
                        let first = pinned.get(o);
                        let again = pinned.get(o);
                        match (&first, &again) {
                            (Ok(a), Ok(b)) => {
                                assert_eq!((*a.data, *b.data), (o * 5, o * 5));
                                ok += 1;
                            }
                            (Ok(a), Err(Error::OutOfRange)) => assert_eq!(*a.data, o * 5),
                            (Err(Error::FutureOffset), _) => {}
                            (Err(Error::OutOfRange), Err(Error::OutOfRange)) => purged += 1,
                            other => panic!("offset {o}: {other:?}"),
                        }
                    }
                }
                (ok, purged)
            })
        })
        .collect();
    for o in 0..200_000u64 {
        assert_eq!(log.write(o * 5).unwrap(), o);
    }
    done.store(true, Ordering::Release);
    for r in readers {
        let (ok, _purged) = r.join().unwrap();
        assert!(ok > 0, "no read succeeded");
    }
}

/// A record dropped only once its segment is purged and no pin holds it:
/// records purged while a pin is held are not dropped until it ends, and
/// are dropped (each once) after.
#[test]
fn a_pin_delays_reclamation_not_writers() {
    #[derive(Debug)]
    struct Counted(Arc<AtomicU64>);
    impl Clone for Counted {
        fn clone(&self) -> Self {
            unreachable!("nothing here clones")
        }
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicU64::new(0));
    let log: Log<Counted> = Log::builder()
        .segment_size(4)
        .history_segments(0)
        .build()
        .unwrap();
    let pinned = log.pin();
    let writer = {
        let (log, dropped) = (log.clone(), dropped.clone());
        thread::spawn(move || {
            for _ in 0..4000 {
                log.write(Counted(dropped.clone())).unwrap();
            }
            // Drive the collector: nothing purged after our pin is freed.
            for _ in 0..1000 {
                crossbeam_epoch::pin().flush();
                let _ = log.read(0);
            }
        })
    };
    writer.join().unwrap();
    assert_eq!(log.range(), Some((3996, 3999)));
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "freed under a pin");
    drop(pinned);
    for _ in 0..100_000 {
        if dropped.load(Ordering::SeqCst) == 3996 {
            break;
        }
        crossbeam_epoch::pin().flush();
        let _ = log.read(0); // drops what this thread postponed
        thread::yield_now();
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 3996);
    drop(log);
    assert_eq!(dropped.load(Ordering::SeqCst), 4000);
}

#[test]
fn auto_traits_and_debug() {
    fn send_sync_copy_debug<T: Send + Sync + Copy + std::fmt::Debug>() {}
    send_sync_copy_debug::<RecordRef<'static, u64>>();
    send_sync_copy_debug::<RecordRef<'static, String>>();
    let log = log_with(3, 4, 1);
    log.write(9).unwrap();
    let pinned = log.pin();
    let r = pinned.get(3).unwrap();
    assert_eq!(
        format!("{r:?}"),
        format!(
            "RecordRef {{ offset: 3, created: {:?}, data: 9 }}",
            r.created
        )
    );
    assert_eq!(Record::from(r), log.read(3).unwrap());
    assert!(format!("{pinned:?}").starts_with("Pinned { start_offset: 3"));
}

/// Behind the exclusive `Writer` (which moves the mark with stores and meets
/// waiting readers on `tail`), a blocking and a polling visitor see every
/// record, in order, and so does an async one.
#[test]
fn visitors_follow_the_exclusive_writer() {
    const TOTAL: u64 = 30_000;
    let (mut writer, log) = Log::builder()
        .segment_size(64)
        .history_segments(1024)
        .build_exclusive()
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|i| visiting_reader(log.stream(0), i == 0))
        .collect();
    #[cfg(feature = "async")]
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    #[cfg(feature = "async")]
    let task = {
        let mut s = log.stream_async(0);
        rt.spawn(async move {
            let mut seen = Seen::default();
            while let Ok(n) = s.visit(7, |r| seen.records.push((r.offset, *r.data))).await {
                assert!(n >= 1);
            }
            assert_eq!(s.ended(), Some(&Error::Closed));
            seen
        })
    };
    for i in 0..TOTAL {
        assert_eq!(writer.write(i * 3).unwrap(), i);
    }
    drop(writer); // closes the log
    let expected: Vec<u64> = (0..TOTAL).map(|i| i * 3).collect();
    for r in readers {
        check(&r.join().unwrap(), &expected, false);
    }
    #[cfg(feature = "async")]
    check(&rt.block_on(task).unwrap(), &expected, false);
}
