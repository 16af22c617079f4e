#![cfg(loom)]
//! Lossless streams (`Lag::Hold`, src/hold.rs): a stream that must see every
//! record holds the segments it has not read, and a writer that would purge
//! one waits. These models check the handshakes the module docs describe:
//! a waiting writer is woken when the hold moves on, is dropped or
//! cancelled, or the log closes (a lost wake-up is a loom deadlock); a hold
//! set while a writer purges either holds (the writer waits) or fails (the
//! Dekker pair of `Holds::hold` and `Holds::admit`), never lets a held
//! record go; `close` ends the log before the segment the holds forbid, so
//! that a stream drains exactly what was written and ends; and writes that
//! must not wait (`try_write`) never do.
//!
//! Segment size 1 and no history unless said otherwise: installing segment
//! `k` purges segment `k - 1`, so the second write purges the first record.
//! As elsewhere, writers that do not block run on the main thread (loom runs
//! it first, and DPOR backtracks the spawned reader's loads before them), and
//! each model asserts that both sides of its race were reached (`Seen`).

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use memlog::{Error, Lag, Log};
use memlog_loom_tests::{exclusive, explore, log, model};
use std::sync::atomic::Ordering;

/// Whether the other thread had passed a point when this one looked. A
/// loom atomic, so that DPOR orders the look against the other thread's
/// step both ways (with a std one, loom never runs the other thread first).
fn flag() -> (Arc<AtomicBool>, Arc<AtomicBool>) {
    let f = Arc::new(AtomicBool::new(false));
    (f.clone(), f)
}

/// A holding stream has not read record 0 when a writer's second write
/// must purge it (segment size 1, no history): the write waits until the
/// stream has read it, and the stream's move to the next segment wakes it
/// (a lost wake-up leaves both parked: the stream waits for record 1). The
/// stream sees both records in order, never `OutOfRange`; once the write
/// returned, record 0 is purged: so the stream fetched it before the purge.
#[test]
fn held_writer_waits_and_is_woken_when_the_stream_reads_on() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let mut held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.hold_count(), 1);
        assert_eq!(log.write(10).unwrap(), 0);
        let (read, read_seen) = flag();
        let reader = thread::spawn(move || {
            let a = held.next().expect("ended").expect("a held stream failed");
            assert_eq!((a.offset, a.data), (0, 10));
            read.store(true, Ordering::Relaxed);
            let b = held.next().expect("ended").expect("a held stream failed");
            assert_eq!((b.offset, b.data), (1, 11));
            assert_eq!(held.try_recv().unwrap_err(), Error::FutureOffset);
        });
        let before = read_seen.load(Ordering::Relaxed);
        // Installs segment 1, purging segment 0: held until the stream read 0.
        assert_eq!(log.write(11).unwrap(), 1);
        // After the join: a pin here (the reclaimer's loom mutex) while the
        // reader is about to pin would clear the unpark the write just gave
        // it, a loom artefact (README.md).
        reader.join().unwrap();
        assert_eq!(
            log.read(0),
            Err(Error::OutOfRange),
            "the write did not purge"
        );
        assert_eq!(log.hold_count(), 0, "a dropped stream still holds");
        seen.note(if before {
            "the stream read on before the write"
        } else {
            "the write came before the stream read on"
        });
    })
    .assert_reached(&[
        "the stream read on before the write",
        "the write came before the stream read on",
    ]);
}

/// The async side: a task writing with `write_async` is pending on a hold
/// and is woken when an async holding stream (another thread) reads on.
/// `block_on` fails the model if the write stays pending with nobody left
/// to wake it.
#[test]
fn write_async_pending_on_a_hold_is_woken_when_the_stream_reads_on() {
    use futures_util::StreamExt;
    model(|| {
        let log = log::<u64>(1, 0);
        let mut held = log.stream_async(0).on_lag(Lag::Hold);
        assert_eq!(log.write(10).unwrap(), 0);
        let reader = thread::spawn(move || {
            let a = loom::future::block_on(held.next()).unwrap().unwrap();
            assert_eq!((a.offset, a.data), (0, 10));
            let b = loom::future::block_on(held.next()).unwrap().unwrap();
            assert_eq!((b.offset, b.data), (1, 11));
        });
        assert_eq!(loom::future::block_on(log.write_async(11)).unwrap(), 1);
        reader.join().unwrap();
        assert_eq!(log.hold_count(), 0);
    });
}

/// What a closed log left for a holding stream at 0: it drains exactly up
/// to `next_offset()` and ends; nothing past the end is readable.
fn drains_to_the_end(log: &Log<u64>, mut held: memlog::Stream<u64>, end: u64) {
    assert_eq!(
        log.read(end),
        Err(Error::FutureOffset),
        "readable past the end"
    );
    let got: Vec<u64> = held
        .by_ref()
        .map(|r| r.expect("a held stream failed").data)
        .collect();
    assert_eq!(got, (10..10 + end).collect::<Vec<_>>());
    assert_eq!(held.try_recv().unwrap_err(), Error::Closed);
}

/// A writer is blocked by a hold that never reads on (segment size 2, no
/// history: offset 2 installs segment 1, purging the held segment 0), and
/// another thread closes the log. The blocked write returns `Err(Closed)`;
/// offset 1, in segment 0, lands or fails depending on the close (both
/// reached); the end is before the held segment's successor, and the
/// holding stream drains exactly up to `next_offset()` and ends.
#[test]
fn close_releases_a_writer_waiting_for_a_hold() {
    explore(|seen| {
        let log = log::<u64>(2, 0);
        let held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.write(10).unwrap(), 0);
        let (began, began_seen) = flag();
        let writer = {
            let log = log.clone();
            thread::spawn(move || {
                let a = log.write(11);
                began.store(true, Ordering::Relaxed);
                (a, log.write(12))
            })
        };
        let blocked = began_seen.load(Ordering::Relaxed);
        log.close();
        let (a, b) = writer.join().unwrap();
        if blocked {
            seen.note("closed after the held write began");
        }
        assert_eq!(b, Err(Error::Closed), "a write purging a held segment");
        let end = log.next_offset();
        match a {
            Ok(1) => {
                seen.note("landed");
                assert_eq!(end, 2);
            }
            Err(Error::Closed) => {
                seen.note("refused");
                assert_eq!(end, 1);
            }
            other => panic!("{other:?}"),
        }
        drains_to_the_end(&log, held, end);
        assert_eq!(log.hold_count(), 0);
    })
    .assert_reached(&["landed", "refused", "closed after the held write began"]);
}

/// The same with the exclusive `Writer`: its claim of offset 2 (a plain
/// store) is taken back when the install fails `Closed`, so that the
/// writer's next write is refused too and `next_offset()` is the end.
#[test]
fn exclusive_close_releases_a_writer_waiting_for_a_hold() {
    explore(|seen| {
        let (mut w, log) = exclusive::<u64>(2, 0);
        let held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(w.write(10).unwrap(), 0);
        let (began, began_seen) = flag();
        let writer = thread::spawn(move || {
            let a = w.write(11);
            began.store(true, Ordering::Relaxed);
            let b = w.write(12);
            (a, b, w)
        });
        let blocked = began_seen.load(Ordering::Relaxed);
        log.close();
        let (a, b, mut w) = writer.join().unwrap();
        if blocked {
            seen.note("closed after the held write began");
        }
        assert_eq!(b, Err(Error::Closed), "a write purging a held segment");
        let end = w.next_offset();
        match a {
            Ok(1) => {
                seen.note("landed");
                assert_eq!(end, 2);
            }
            Err(Error::Closed) => {
                seen.note("refused");
                assert_eq!(end, 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.write(13), Err(Error::Closed));
        assert_eq!(w.next_offset(), end);
        drains_to_the_end(&log, held, end);
        drop(w);
    })
    .assert_reached(&["landed", "refused", "closed after the held write began"]);
}

/// A stream at the oldest retained offset (0) sets `Lag::Hold` while the
/// writer installs segment 1, purging it. Either the hold is set (then the
/// write waits for the stream, which reads 0 and 1, never `OutOfRange`), or
/// it fails, the writer having announced its purge first (then the
/// stream's next read is `OutOfRange`, and it ends). Never a purged record
/// under a hold that was set, never a stream reading on unheld.
#[test]
fn a_hold_set_while_a_writer_purges_either_holds_or_fails() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        assert_eq!(log.write(10).unwrap(), 0);
        let reader = {
            let (log, stream) = (log.clone(), log.stream(0));
            thread::spawn(move || {
                let mut stream = stream.on_lag(Lag::Hold);
                let held = log.hold_count() == 1;
                let mut got = Vec::new();
                let mut err = None;
                while got.len() < 2 {
                    match stream.next() {
                        Some(Ok(r)) => {
                            assert_eq!(r.data, 10 + r.offset);
                            got.push(r.offset);
                        }
                        Some(Err(e)) => {
                            err = Some(e);
                            break;
                        }
                        None => break,
                    }
                }
                (held, got, err)
            })
        };
        assert_eq!(log.write(11).unwrap(), 1);
        let (held, got, err) = reader.join().unwrap();
        if held {
            assert_eq!(
                (got.as_slice(), err),
                (&[0, 1][..], None),
                "a record purged under a hold that was set"
            );
            seen.note("held");
        } else {
            match (got.as_slice(), err) {
                ([], Some(Error::OutOfRange)) => seen.note("failed: OutOfRange"),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(log.hold_count(), 0);
    })
    .assert_reached(&["held", "failed: OutOfRange"]);
}

/// A writer blocked by a hold goes on when the holding stream (another
/// thread, never reading again) is dropped: dropped before the write or
/// while it waits, both reached.
#[test]
fn dropping_a_holding_stream_releases_the_writer() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.write(10).unwrap(), 0);
        let (dropped, dropped_seen) = flag();
        let t = thread::spawn(move || {
            drop(held);
            dropped.store(true, Ordering::Relaxed);
        });
        let before = dropped_seen.load(Ordering::Relaxed);
        assert_eq!(log.write(11).unwrap(), 1);
        t.join().unwrap();
        assert_eq!(log.hold_count(), 0);
        assert_eq!(log.read(0), Err(Error::OutOfRange));
        seen.note(if before {
            "dropped before the write"
        } else {
            "write before the drop"
        });
    })
    .assert_reached(&["dropped before the write", "write before the drop"]);
}

/// The same when the holding stream is cancelled through its `Canceller`
/// from another thread, the stream itself (on the writer's thread) not
/// reading again until the write returned: the cancel alone ends the hold.
#[test]
fn cancelling_a_holding_stream_releases_the_writer() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let mut held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.write(10).unwrap(), 0);
        let canceller = held.canceller();
        let (cancelled, cancelled_seen) = flag();
        let t = thread::spawn(move || {
            canceller.cancel();
            cancelled.store(true, Ordering::Relaxed);
        });
        let before = cancelled_seen.load(Ordering::Relaxed);
        assert_eq!(log.write(11).unwrap(), 1);
        t.join().unwrap();
        assert_eq!(log.hold_count(), 0);
        assert_eq!(held.next(), Some(Err(Error::Cancelled)));
        assert_eq!(held.next(), None);
        seen.note(if before {
            "cancelled before the write"
        } else {
            "write before the cancel"
        });
    })
    .assert_reached(&["cancelled before the write", "write before the cancel"]);
}

/// `try_write` racing a holding stream that reads on: `Ok` (the stream had
/// moved on) or `Err(Full)` at once (it had not), both reached; after
/// `Full` nothing was written or claimed, and a stream drains exactly what
/// landed. (A `try_write` that waited for the hold would never answer
/// `Full` here.)
#[test]
fn try_write_never_waits_for_a_hold() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let mut held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.write(10).unwrap(), 0);
        let reader = thread::spawn(move || {
            assert_eq!(held.next().unwrap().unwrap().data, 10);
            held.map(|r| r.unwrap().data).collect::<Vec<_>>()
        });
        let r = log.try_write(11);
        match r {
            Ok(1) => seen.note("Ok"),
            Err(Error::Full) => {
                seen.note("Full");
                assert_eq!(log.next_offset(), 1, "a refused write claimed");
                assert_eq!(log.read(1), Err(Error::FutureOffset));
            }
            other => panic!("{other:?}"),
        }
        log.close();
        let rest = reader.join().unwrap();
        assert_eq!(rest, if r.is_ok() { vec![11] } else { vec![] });
        assert_eq!(log.next_offset(), if r.is_ok() { 2 } else { 1 });
    })
    .assert_reached(&["Ok", "Full"]);
}

/// A write refused by a hold (`try_write` told `Full`) announced a purge it
/// never made: a stream that sets `Lag::Hold` later, on the same retained
/// offset, holds it (it once failed, read on unheld and lost a later record
/// with `OutOfRange`). Then the race of that refused write with the new
/// hold, on two threads: the hold is always set.
#[test]
fn a_write_refused_by_a_hold_fails_no_later_hold() {
    model(|| {
        let log = log::<u64>(1, 0);
        assert_eq!(log.write(10).unwrap(), 0);
        let first = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.try_write(11), Err(Error::Full));
        drop(first);
        let mut second = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.hold_count(), 1, "a refused write failed a later hold");
        assert_eq!(second.next().unwrap().unwrap().data, 10);
        assert_eq!(log.try_write(11), Ok(1));
        assert_eq!(log.try_write(12), Err(Error::Full), "record 11 unread");
        assert_eq!(second.next().unwrap().unwrap().data, 11);
    });
    explore(|seen| {
        let log = log::<u64>(1, 0);
        assert_eq!(log.write(10).unwrap(), 0);
        let first = log.stream(0).on_lag(Lag::Hold);
        let holder = {
            let (log, stream) = (log.clone(), log.stream(0));
            thread::spawn(move || {
                let stream = stream.on_lag(Lag::Hold);
                assert_eq!(log.hold_count(), 2, "a refused write failed a hold");
                stream
            })
        };
        assert_eq!(log.try_write(11), Err(Error::Full));
        let second = holder.join().unwrap();
        drop(first);
        assert_eq!(
            log.try_write(11),
            Err(Error::Full),
            "the second hold let go"
        );
        drop(second);
        assert_eq!(log.try_write(11), Ok(1));
        seen.note("done");
    })
    .assert_reached(&["done"]);
}
