#![cfg(loom)]
//! Publication and the high-water mark: a reader sees a complete record or
//! nothing (DESIGN invariant 1), and writers that finish out of order never
//! let the mark skip an unpublished offset nor leave it short (invariant 2).
//!
//! Readers run in spawned threads and the main thread writes: loom first runs
//! the main thread through, so a reader's loads come after the writer's
//! stores in the first schedule and loom's DPOR then backtracks them before
//! each store (the other order can hide races, see `Seen`). Every model also
//! asserts that both sides of its race were reached.

use loom::thread;
use memlog::{Error, Record};
use memlog_loom_tests::{explore, log, outcome, T0};
use std::sync::{Arc, Mutex};

/// One writer, one reader of offset 0: the reader gets `FutureOffset` or the
/// whole record (offset, time and payload), never a partial one (a read of the
/// cell racing the write would be flagged by loom's `UnsafeCell` tracking),
/// and once it has seen the record a second read still sees it.
#[test]
fn publish_vs_read_sees_future_or_whole_record() {
    let want = Record {
        offset: 0,
        created: T0,
        data: (7u64, 8u64),
    };
    let w = want.clone();
    explore(move |seen| {
        let log = log::<(u64, u64)>(2, 1);
        let reader = {
            let (log, want) = (log.clone(), w.clone());
            thread::spawn(move || {
                let first = log.read(0);
                let second = log.read(0);
                for r in [&first, &second] {
                    match r {
                        Ok(r) => assert_eq!(r, &want),
                        Err(e) => assert_eq!(e, &Error::FutureOffset),
                    }
                }
                if first.is_ok() {
                    assert!(second.is_ok(), "a published record vanished");
                }
                format!("{} {}", outcome(&first), outcome(&second))
            })
        };
        assert_eq!(log.write(w.data).unwrap(), 0);
        seen.note(reader.join().unwrap());
        assert_eq!(log.read(0).as_ref(), Ok(&w));
        assert_eq!(log.range(), Some((0, 0)));
    })
    .assert_reached(&["Future Future", "Future Ok", "Ok Ok"]);
}

/// Two writers finish out of order while a reader probes the later offset
/// first: if offset 1 is readable then offset 0 must be too (the mark never
/// skips a claimed-but-unpublished offset), and after both writers return the
/// mark covers both: whoever finishes last carries it over the other's
/// publish (the announce/scan path of `advance`). Segment size 1 with one
/// history segment puts the two offsets in different segments, so the writer
/// of offset 1 may also install its segment while offset 0 is unpublished.
#[test]
fn out_of_order_publish_mark_has_no_gaps() {
    explore(|seen| {
        let log = log::<u64>(1, 1);
        let done = Arc::new(Mutex::new(Vec::new()));
        let other = {
            let (log, done) = (log.clone(), done.clone());
            thread::spawn(move || {
                let o = log.write(200).unwrap();
                done.lock().unwrap().push(o);
                (o, 200)
            })
        };
        let reader = {
            let log = log.clone();
            thread::spawn(move || {
                // The higher offset first, then the lower.
                let r1 = log.read(1);
                let r0 = log.read(0);
                if r1.is_ok() {
                    assert!(
                        r0.is_ok(),
                        "offset 1 readable but offset 0 not: gap in the mark"
                    );
                }
                for (o, r) in [(0, &r0), (1, &r1)] {
                    match r {
                        Ok(rec) => {
                            assert_eq!((rec.offset, rec.created), (o, T0));
                            assert!(rec.data == 100 || rec.data == 200);
                        }
                        Err(e) => assert_eq!(e, &Error::FutureOffset),
                    }
                }
                if let Some((lo, hi)) = log.range() {
                    assert_eq!(lo, 0);
                    for o in lo..=hi {
                        assert!(log.read(o).is_ok(), "range reported {o}, not readable");
                    }
                }
                (r0.ok().map(|r| r.data), r1.ok().map(|r| r.data))
            })
        };
        let mine = (log.write(100).unwrap(), 100);
        done.lock().unwrap().push(mine.0);

        let mut written = vec![mine, other.join().unwrap()];
        let (r0, r1) = reader.join().unwrap();
        written.sort();
        assert_eq!(written.iter().map(|w| w.0).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(
            log.range(),
            Some((0, 1)),
            "mark left short after all writers returned"
        );
        for &(o, v) in &written {
            let rec = log.read(o).unwrap();
            assert_eq!((rec.offset, rec.data, rec.created), (o, v, T0));
        }
        let mut payloads: Vec<u64> = written.iter().map(|w| w.1).collect();
        payloads.sort();
        assert_eq!(payloads, [100, 200]);
        // What the reader saw is what was written there.
        if let Some(d) = r0 {
            assert_eq!(d, written[0].1);
        }
        if let Some(d) = r1 {
            assert_eq!(d, written[1].1);
        }
        seen.note(format!("offset {} returned first", done.lock().unwrap()[0]));
        seen.note(format!(
            "reader saw {}/{}",
            r0.is_some() as u8,
            r1.is_some() as u8
        ));
    })
    .assert_reached(&[
        "offset 0 returned first",
        "offset 1 returned first",
        "reader saw 0/0",
        "reader saw 1/0",
        "reader saw 1/1",
    ]);
}

/// Three writers, one segment (no rotation): whatever order they finish in,
/// the mark ends over all three offsets, each readable with its own payload.
#[test]
fn three_writers_out_of_order_mark_covers_all() {
    explore(|seen| {
        let log = log::<u64>(4, 0);
        let done = Arc::new(Mutex::new(Vec::new()));
        let writers: Vec<_> = [200u64, 300]
            .into_iter()
            .map(|v| {
                let (log, done) = (log.clone(), done.clone());
                thread::spawn(move || {
                    let o = log.write(v).unwrap();
                    done.lock().unwrap().push(o);
                    (o, v)
                })
            })
            .collect();
        let mine = (log.write(100).unwrap(), 100);
        done.lock().unwrap().push(mine.0);
        let mut written = vec![mine];
        written.extend(writers.into_iter().map(|w| w.join().unwrap()));
        written.sort();
        assert_eq!(written.iter().map(|w| w.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(
            log.range(),
            Some((0, 2)),
            "mark left short after all writers returned"
        );
        let mut payloads = Vec::new();
        for (o, v) in written {
            assert_eq!(log.read(o).unwrap().data, v);
            payloads.push(v);
        }
        payloads.sort();
        assert_eq!(payloads, [100, 200, 300]);
        seen.note(format!("order {:?}", done.lock().unwrap()));
    })
    .assert_reached(&[
        "order [0, 1, 2]",
        "order [1, 0, 2]",
        "order [1, 2, 0]",
        "order [2, 0, 1]",
    ]);
}
