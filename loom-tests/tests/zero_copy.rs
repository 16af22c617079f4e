#![cfg(loom)]
//! Zero-copy reading: a stream's visitor and a `Pinned` reader lend records
//! by reference from the slots, under an epoch pin, while writers purge and
//! the reclaimer frees (DESIGN invariants 1, 3, 5, 6).
//!
//! The payload is `Counted`: a record lent by reference must be the one live
//! instance of its id for as long as the borrow lasts. A visitor that cloned
//! would make it 2; a segment reclaimed under a borrow would make it 0 (and
//! loom's cell tracking would see the drop racing the read). Readers run in
//! spawned threads, writers on the main thread (see publish.rs for why), and
//! each model asserts that every outcome of its race was reached.

use loom::thread;
use memlog::{Error, Log};
use memlog_loom_tests::{drop_postponed, explore, log, model, outcome, Census, Counted, T0};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A caught-up stream visits (segment size 1, no history: every write
/// purges the segment before it) while the writer moves two segments on.
/// Each record visited is its own offset's, intact, the only instance of
/// its payload (no clone, not freed under the borrow), in order with no
/// gap; or the stream gets one `OutOfRange` where the purge overtook it.
#[test]
fn visit_racing_purge_lends_only_live_records_of_their_offset() {
    explore(|seen| {
        let census = Census::new(3);
        {
            let log: Log<Counted> = log(1, 0);
            assert_eq!(log.write(census.make(0)).unwrap(), 0);
            let reader = {
                let (log, census) = (log.clone(), census.clone());
                thread::spawn(move || {
                    let mut stream = log.stream(0);
                    let mut got = Vec::new();
                    let end = loop {
                        let r = stream.try_visit(3, |r| {
                            assert_eq!(r.data.id as u64, r.offset, "another offset's data");
                            assert_eq!(r.created, T0);
                            let live = census.live(r.data.id);
                            assert_eq!(live, 1, "cloned, or freed under the borrow");
                            got.push(r.offset);
                        });
                        match r {
                            Ok(n) => assert!(n >= 1),
                            Err(Error::FutureOffset) if got.len() == 3 => break "all",
                            Err(Error::FutureOffset) => thread::yield_now(),
                            Err(Error::OutOfRange) => {
                                assert_eq!(
                                    stream.try_visit(3, |_| panic!()),
                                    Err(Error::OutOfRange)
                                );
                                break "out of range";
                            }
                            Err(e) => panic!("{e}"),
                        }
                    };
                    drop(stream);
                    drop_postponed(&log);
                    format!("{end} {got:?}")
                })
            };
            assert_eq!(log.write(census.make(1)).unwrap(), 1);
            assert_eq!(log.write(census.make(2)).unwrap(), 2);
            let outcome = reader.join().unwrap();
            assert!(
                [
                    "all [0, 1, 2]",
                    "out of range [0]",
                    "out of range [0, 1]",
                    "out of range []"
                ]
                .contains(&outcome.as_str()),
                "{outcome}"
            );
            seen.note(outcome);
            drop_postponed(&log);
        }
        census.assert_all_dropped();
    })
    .assert_reached(&["all [0, 1, 2]", "out of range [0]", "out of range []"]);
}

/// A stream blocks in `visit` for its first record (judged by the mark)
/// while one record is written: it is woken and visits it; a lost wake-up
/// is a loom deadlock.
#[test]
fn blocking_visit_is_woken_by_the_publish() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let returned = Arc::new(AtomicBool::new(false));
        let reader = {
            let (mut stream, returned) = (log.stream(0), returned.clone());
            thread::spawn(move || {
                let before = returned.load(Ordering::Relaxed);
                let mut got = Vec::new();
                let n = stream.visit(4, |r| got.push((r.offset, *r.data, r.created)));
                assert_eq!(n, Ok(1));
                assert_eq!(got, [(0, 42, T0)]);
                assert_eq!(stream.next_offset(), 1);
                before
            })
        };
        assert_eq!(log.write(42).unwrap(), 0);
        returned.store(true, Ordering::Relaxed);
        let before = reader.join().unwrap();
        seen.note(if before { "after" } else { "before" });
    })
    .assert_reached(&["before", "after"]);
}

/// A stream that visited offset 0 blocks in `visit` for offset 1, judged by
/// its slot's stamp, in a segment that may not be installed yet (segment
/// size 1): the write wakes it and it visits the whole record.
#[test]
fn blocking_visit_on_the_stamp_path_is_woken_by_the_publish() {
    model(|| {
        let log = log::<u64>(1, 1);
        assert_eq!(log.write(41).unwrap(), 0);
        let reader = {
            let mut stream = log.stream(0);
            thread::spawn(move || {
                let mut got = Vec::new();
                assert_eq!(stream.visit(1, |r| got.push((r.offset, *r.data))), Ok(1));
                assert_eq!(stream.visit(4, |r| got.push((r.offset, *r.data))), Ok(1));
                assert_eq!(got, [(0, 41), (1, 42)]);
                assert_eq!(stream.try_visit(4, |_| panic!()), Err(Error::FutureOffset));
            })
        };
        assert_eq!(log.write(42).unwrap(), 1);
        reader.join().unwrap();
    });
}

/// An async task pending in `visit` is woken by a writer thread and visits
/// the record; no waiter entry is left.
#[test]
fn async_visit_is_woken_by_the_publish() {
    model(|| {
        let log = log::<u64>(2, 1);
        let mut s = log.stream_async(0);
        let w = log.clone();
        let t = thread::spawn(move || {
            w.write(7).unwrap();
        });
        let mut got = Vec::new();
        let n = loom::future::block_on(s.visit(4, |r| got.push(*r.data)));
        assert_eq!((n, got), (Ok(1), vec![7]));
        t.join().unwrap();
        drop(s);
        assert_eq!(log.waiter_count(), 0);
    });
}

/// One pin, reads racing two purges (segment size 1, no history). Offset 0
/// reads as its record or `OutOfRange`, and never comes back once out of
/// range; offset 1 as `FutureOffset`, its record or `OutOfRange`; never
/// another offset's record. A record held by reference stays alive (the
/// one instance of its payload) after its segment is purged, until the pin
/// ends; then everything is dropped exactly once.
#[test]
fn pinned_reads_racing_purge_lend_only_live_records_of_their_offset() {
    explore(|seen| {
        let census = Census::new(3);
        {
            let log: Log<Counted> = log(1, 0);
            assert_eq!(log.write(census.make(0)).unwrap(), 0);
            let reader = {
                let (log, census) = (log.clone(), census.clone());
                thread::spawn(move || {
                    let pinned = log.pin();
                    let check = |o: u64| {
                        let r = pinned.get(o);
                        if let Ok(rec) = &r {
                            assert_eq!((rec.offset, rec.data.id as u64), (o, o));
                            assert_eq!(census.live(rec.data.id), 1);
                        }
                        r
                    };
                    let a = check(0);
                    let b = check(1);
                    let again = check(0);
                    assert_ne!(a, Err(Error::FutureOffset));
                    if a.is_err() {
                        assert_eq!(again, Err(Error::OutOfRange), "a purged offset came back");
                    }
                    if let Ok(held) = &a {
                        // Whatever the writer did meanwhile, the borrow's
                        // record is alive until the pin ends.
                        thread::yield_now();
                        assert_eq!((held.data.id, census.live(0)), (0, 1));
                    }
                    let got = format!("0 {} 1 {}", outcome(&a), outcome(&b));
                    drop(pinned);
                    drop_postponed(&log);
                    got
                })
            };
            assert_eq!(log.write(census.make(1)).unwrap(), 1);
            assert_eq!(log.write(census.make(2)).unwrap(), 2);
            let got = reader.join().unwrap();
            seen.note(got);
            drop_postponed(&log);
            assert_eq!((census.live(0), census.live(1)), (0, 0));
        }
        census.assert_all_dropped();
    })
    .assert_reached(&[
        "0 Ok 1 Future",
        "0 Ok 1 Ok",
        "0 Ok 1 OutOfRange",
        "0 OutOfRange 1 OutOfRange",
    ]);
}
