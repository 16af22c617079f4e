#![cfg(loom)]
//! The wait/wake handshake (DESIGN invariants 6 and 7): a stream that parks
//! is always woken by the publish, close or cancel that concerns it. A lost
//! wake-up leaves the reader parked for ever, which loom reports as a
//! deadlock when the main thread joins it, so these models fail rather than
//! hang.
//!
//! Under loom, `Backoff` reports "completed" at once, so a waiting stream goes
//! straight to register / re-check / park: every iteration exercises the
//! handshake, not a spin.

use loom::thread;
use memlog::{Error, Log};
use memlog_loom_tests::{explore, log, T0};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A stream blocks in `next()` while one record is written: it is woken and
/// gets that record (offset, time and payload).
#[test]
fn park_vs_publish_no_lost_wakeup() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let returned = Arc::new(AtomicBool::new(false));
        let reader = {
            let (mut stream, returned) = (log.stream(0), returned.clone());
            thread::spawn(move || {
                let before = returned.load(Ordering::Relaxed);
                let rec = stream.next().expect("stream ended").expect("error");
                assert_eq!((rec.offset, rec.data, rec.created), (0, 42, T0));
                assert_eq!(stream.next_offset(), 1);
                assert_eq!(stream.try_recv().unwrap_err(), Error::FutureOffset);
                before
            })
        };
        assert_eq!(log.write(42).unwrap(), 0);
        returned.store(true, Ordering::Relaxed);
        let before = reader.join().unwrap();
        seen.note(format!(
            "stream called {} the write returned",
            if before { "after" } else { "before" }
        ));
    })
    .assert_reached(&[
        "stream called before the write returned",
        "stream called after the write returned",
    ]);
}

/// A stream blocks in `next()` on an empty log; another thread closes the
/// log: the stream wakes and ends (`None`), and stays ended.
#[test]
fn close_wakes_parked_reader() {
    explore(|_| {
        let log = log::<u64>(1, 0);
        let reader = {
            let mut stream = log.stream(0);
            thread::spawn(move || {
                assert!(
                    stream.next().is_none(),
                    "a closed empty log yielded something"
                );
                assert!(stream.next().is_none());
                assert_eq!(stream.try_recv().unwrap_err(), Error::Closed);
            })
        };
        log.close();
        reader.join().unwrap();
        assert_eq!(log.write(1), Err(Error::Closed));
        assert_eq!(log.range(), None);
    });
}

/// A write races with `close` while a stream follows the log. The write
/// either lands (returns `Ok(0)`, record readable afterwards) or fails with
/// `Closed` (nothing readable), never both or neither; and the stream drains
/// exactly what landed before it ends: `[42]` or `[]`.
#[test]
fn write_racing_close_lands_or_fails_and_stream_drains() {
    explore(|seen| {
        let log: Log<u64> = log(1, 0);
        let writer = {
            let log = log.clone();
            thread::spawn(move || log.write(42))
        };
        let reader = {
            let stream = log.stream(0);
            thread::spawn(move || {
                stream
                    .map(|r| {
                        let rec = r.expect("stream error");
                        assert_eq!((rec.offset, rec.created), (0, T0));
                        rec.data
                    })
                    .collect::<Vec<_>>()
            })
        };
        log.close();
        let wrote = writer.join().unwrap();
        let drained = reader.join().unwrap();
        match &wrote {
            Ok(o) => {
                assert_eq!(*o, 0);
                assert_eq!(
                    log.read(0).unwrap().data,
                    42,
                    "a write that returned Ok is not readable"
                );
                assert_eq!(
                    drained,
                    [42],
                    "the stream ended before draining a landed write"
                );
                assert_eq!(log.range(), Some((0, 0)));
            }
            Err(e) => {
                assert_eq!(*e, Error::Closed);
                assert_eq!(
                    log.read(0),
                    Err(Error::FutureOffset),
                    "a write that failed is readable"
                );
                assert_eq!(drained, Vec::<u64>::new());
                assert_eq!(log.range(), None);
            }
        }
        seen.note(format!("write {:?}", wrote.map_err(|_| "Closed")));
    })
    .assert_reached(&["write Ok(0)", "write Err(\"Closed\")"]);
}

/// A stream blocks in `next()`; another thread cancels it through its
/// `Canceller`: the stream wakes with `Some(Err(Cancelled))`, then ends.
#[test]
fn cancel_wakes_parked_reader() {
    explore(|_| {
        let log = log::<u64>(1, 0);
        let mut stream = log.stream(0);
        let canceller = stream.canceller();
        let reader = thread::spawn(move || {
            assert_eq!(stream.next(), Some(Err(Error::Cancelled)));
            assert_eq!(stream.next(), None);
            assert_eq!(stream.try_recv().unwrap_err(), Error::Cancelled);
        });
        canceller.cancel();
        assert!(canceller.is_cancelled());
        reader.join().unwrap();
    });
}

/// A stream that has already read offset 0 judges offset 1 by its slot stamp
/// (it never loads the high-water mark while records flow) and parks on it.
/// Segment size 1, so offset 1 also needs its segment installed: the stream
/// may find the place still holding segment 0 (not yet), or the new segment
/// with the stamp unpublished. Either way the write wakes it, and it gets the
/// whole record.
#[test]
fn stamp_path_park_vs_publish_no_lost_wakeup() {
    explore(|seen| {
        let log = log::<u64>(1, 1);
        assert_eq!(log.write(41).unwrap(), 0);
        let reader = {
            let mut stream = log.stream(0);
            thread::spawn(move || {
                let first = stream.next().expect("stream ended").expect("error");
                assert_eq!((first.offset, first.data), (0, 41));
                let rec = stream.next().expect("stream ended").expect("error");
                assert_eq!((rec.offset, rec.data, rec.created), (1, 42, T0));
                assert_eq!(stream.try_recv().unwrap_err(), Error::FutureOffset);
            })
        };
        assert_eq!(log.write(42).unwrap(), 1);
        reader.join().unwrap();
        seen.note("done");
    })
    .assert_reached(&["done"]);
}

/// A caught-up stream (history 0, segment size 1) reads by stamp while the
/// writer moves two segments on: it gets each record whole, in order, or,
/// if the segment holding its next offset was already purged, one
/// `OutOfRange` and then `None`: never another offset's data, never a gap.
/// (Segment 2 is never purged here, so a stream that read 0 and 1 reads 2.)
#[test]
fn stamp_path_read_racing_purge() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        assert_eq!(log.write(100).unwrap(), 0);
        let reader = {
            let mut stream = log.stream(0);
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match stream.try_recv() {
                        Ok(r) => {
                            assert_eq!(r.data, 100 + r.offset, "another offset's data");
                            got.push(r.offset);
                        }
                        Err(Error::FutureOffset) => {
                            if got.len() == 3 {
                                break "all";
                            }
                            thread::yield_now();
                        }
                        Err(Error::OutOfRange) => {
                            assert!(stream.next().is_none());
                            break "out of range";
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                .to_string()
                    + &format!(" {got:?}")
            })
        };
        log.write(101).unwrap();
        log.write(102).unwrap();
        let outcome = reader.join().unwrap();
        // Offsets seen are a gapless prefix starting at 0.
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
    })
    .assert_reached(&["all [0, 1, 2]", "out of range [0]", "out of range []"]);
}

/// A batch that spans two segments (segment size 1) moves the mark after
/// each segment and wakes once, after the last. A stream blocked on the
/// batch's first offset, then on its second, gets both: a lost wake-up is a
/// loom deadlock.
#[test]
fn batch_across_segments_no_lost_wakeup() {
    memlog_loom_tests::model(|| {
        let log = log::<u64>(1, 1);
        let reader = {
            let mut stream = log.stream(0);
            thread::spawn(move || {
                let got: Vec<u64> = (0..2)
                    .map(|_| stream.next().unwrap().unwrap().data)
                    .collect();
                assert_eq!(got, [7, 8]);
            })
        };
        assert_eq!(log.write_batch([7, 8]).unwrap(), 0..2);
        reader.join().unwrap();
        assert_eq!(log.waiter_count(), 0);
    });
}
