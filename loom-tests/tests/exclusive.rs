#![cfg(loom)]
//! The exclusive writer (src/writer.rs): it claims and moves the high-water
//! mark with plain stores, and meets a sleeping reader and `close` through
//! an asymmetric fence (src/fence.rs; under loom, a `SeqCst` fence on each
//! side, which fence.rs in this directory checks loom honours). These
//! models check that handshake for a first read and a contiguous one, for
//! threads and async tasks, against close and the writer's drop,
//! and that a reader racing the writer's purges never sees another offset's
//! record. Writers run in spawned threads here: the reader must be able to
//! block before the write (see publish.rs for why readers usually spawn).

use futures_util::StreamExt;
use loom::thread;
use memlog::Error;
use memlog_loom_tests::{exclusive, explore, model, outcome, T0};

/// A stream blocked on its first record (judged by the mark) is woken by
/// the writer's publish: a lost wake-up is a loom deadlock.
#[test]
fn exclusive_park_vs_publish_no_lost_wakeup() {
    model(|| {
        let (mut w, log) = exclusive::<u32>(2, 1);
        let mut s = log.stream(0);
        let t = thread::spawn(move || {
            w.write(7).unwrap();
            w
        });
        let r = s.next().unwrap().unwrap();
        assert_eq!((r.offset, r.data, r.created), (0, 7, T0));
        drop(t.join().unwrap());
        assert_eq!(log.waiter_count(), 0);
    });
}

/// A stream that has read offset 0 waits on offset 1, in a segment the
/// writer has not installed yet (segment size 1): the publish wakes it, and
/// it gets the whole record. (On a log with an exclusive writer a stream
/// judges readiness by the mark even once contiguous, `Stream::by_stamp`;
/// this model keeps the name it had when it waited on the slot's stamp.)
#[test]
fn exclusive_stamp_path_no_lost_wakeup() {
    model(|| {
        let (mut w, log) = exclusive::<u32>(1, 1);
        w.write(6).unwrap();
        let mut s = log.stream(0);
        assert_eq!(s.next().unwrap().unwrap().data, 6);
        let t = thread::spawn(move || {
            w.write(7).unwrap();
            w
        });
        let r = s.next().unwrap().unwrap();
        assert_eq!((r.offset, r.data), (1, 7));
        drop(t.join().unwrap());
        assert_eq!(log.waiter_count(), 0);
    });
}

/// A pending async task is woken by the writer's publish.
#[test]
fn exclusive_async_wakes_pending_task() {
    model(|| {
        let (mut w, log) = exclusive::<u32>(2, 1);
        let mut s = log.stream_async(0);
        let t = thread::spawn(move || {
            w.write(7).unwrap();
            w
        });
        let r = loom::future::block_on(s.next()).unwrap().unwrap();
        assert_eq!(r.data, 7);
        drop(t.join().unwrap());
        drop(s);
        assert_eq!(log.waiter_count(), 0);
    });
}

/// A write racing `close` from a read handle either lands (then a stream
/// drains it before ending) or fails `Closed` (then there is nothing to
/// drain); both are reached, and a stream blocked across the race ends.
#[test]
fn exclusive_write_racing_close_lands_or_fails_and_stream_drains() {
    explore(|seen| {
        let (mut w, log) = exclusive::<u32>(2, 1);
        let mut blocked = log.stream(0);
        let t = thread::spawn(move || {
            let r = w.write(42);
            (r, w)
        });
        log.close();
        let first = blocked.next().map(|r| r.unwrap().data);
        let (r, w) = t.join().unwrap();
        match r {
            Ok(0) => {
                seen.note("landed");
                assert_eq!(first, Some(42));
                assert_eq!(blocked.next(), None);
                assert_eq!(log.read(0).unwrap().data, 42);
            }
            Err(Error::Closed) => {
                seen.note("refused");
                assert_eq!(first, None);
                assert_eq!(log.next_offset(), 0);
            }
            other => panic!("{other:?}"),
        }
        drop(w);
    })
    .assert_reached(&["landed", "refused"]);
}

/// Dropping the writer closes the log and wakes a parked stream, which ends.
#[test]
fn exclusive_writer_drop_wakes_parked_reader() {
    model(|| {
        let (w, log) = exclusive::<u32>(2, 1);
        let mut s = log.stream(0);
        let t = thread::spawn(move || drop(w));
        assert_eq!(s.next(), None);
        t.join().unwrap();
        assert!(log.is_closed());
    });
}

/// Segment size 1, no history: the writer writes offsets 0..3, each purging
/// the one before and reusing its memory (the third write recycles the
/// first segment), while a reader reads offset 0: the right record,
/// `FutureOffset` or `OutOfRange`, never another offset's data.
#[test]
fn exclusive_purge_racing_read_never_returns_another_offset() {
    explore(|seen| {
        let (mut w, log) = exclusive::<u64>(1, 0);
        let reader = {
            let log = log.clone();
            thread::spawn(move || {
                let r = log.read(0);
                match &r {
                    Ok(rec) => assert_eq!((rec.offset, rec.data), (0, 1000)),
                    Err(e) => assert!(matches!(e, Error::OutOfRange | Error::FutureOffset)),
                }
                outcome(&r)
            })
        };
        for o in 0..3 {
            assert_eq!(w.write(1000 + o).unwrap(), o);
        }
        seen.note(reader.join().unwrap());
        assert_eq!(log.range(), Some((2, 2)));
        assert_eq!(log.read(2).unwrap().data, 1002);
    })
    .assert_reached(&["Future", "Ok", "OutOfRange"]);
}

/// A batch that spans two segments (segment size 1): the writer moves the
/// mark after each segment and wakes once, after the last. A stream blocked
/// on the batch's first offset, then on its second (judged by its stamp, in
/// the segment installed mid-batch), gets both: a lost wake-up is a loom
/// deadlock.
#[test]
fn exclusive_batch_across_segments_no_lost_wakeup() {
    model(|| {
        let (mut w, log) = exclusive::<u32>(1, 1);
        let mut s = log.stream(0);
        let t = thread::spawn(move || {
            assert_eq!(w.write_batch([7, 8]).unwrap(), 0..2);
            w
        });
        assert_eq!(s.next().unwrap().unwrap().data, 7);
        assert_eq!(s.next().unwrap().unwrap().data, 8);
        drop(t.join().unwrap());
        assert_eq!(s.next(), None);
        assert_eq!(log.waiter_count(), 0);
    });
}

/// A batch racing `close` from a read handle lands whole or fails whole:
/// `close` sees the writer's claim of both offsets or neither. A stream
/// blocked across the race drains exactly what landed; a refused writer
/// stays refused, and the end does not move.
#[test]
fn exclusive_batch_racing_close_lands_whole_or_not_at_all() {
    explore(|seen| {
        let (mut w, log) = exclusive::<u32>(2, 1);
        let mut blocked = log.stream(0);
        let t = thread::spawn(move || {
            let r = w.write_batch([1, 2]);
            (r, w)
        });
        log.close();
        let drained: Vec<u32> = (&mut blocked).map(|r| r.unwrap().data).collect();
        let (r, mut w) = t.join().unwrap();
        let end = log.next_offset();
        assert_eq!(w.write(3), Err(Error::Closed));
        assert_eq!(log.next_offset(), end);
        match r {
            Ok(range) => {
                seen.note("landed");
                assert_eq!(range, 0..2);
                assert_eq!(drained, [1, 2]);
                assert_eq!(log.next_offset(), 2);
            }
            Err(Error::Closed) => {
                seen.note("refused");
                assert!(drained.is_empty());
                assert_eq!(log.next_offset(), 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(w.is_closed());
    })
    .assert_reached(&["landed", "refused"]);
}

/// `close` from a read handle races a write and then the writer's drop
/// (a second close, on the writer's thread): both return only once the one
/// end is fixed, and the write lands below it or is refused past it. (The
/// loser of the `closing` swap waits for the winner's end:
/// `close_exclusive`.) Two closers that could both spin at once (two read
/// handles racing a write) make loom explore them taking turns without
/// end; tests/exclusive.rs races those.
#[test]
fn exclusive_close_racing_write_then_writer_drop_agree_on_one_end() {
    explore(|seen| {
        let (mut w, log) = exclusive::<u32>(2, 1);
        let t = {
            let log = log.clone();
            thread::spawn(move || {
                let r = w.write(42);
                drop(w);
                (r, log.next_offset())
            })
        };
        log.close();
        let mine = log.next_offset();
        let (r, theirs) = t.join().unwrap();
        assert_eq!(mine, theirs, "two closers, two ends");
        match r {
            Ok(0) => {
                seen.note("landed");
                assert_eq!(mine, 1);
            }
            Err(Error::Closed) => {
                seen.note("refused");
                assert_eq!(mine, 0);
            }
            other => panic!("{other:?}"),
        }
    })
    .assert_reached(&["landed", "refused"]);
}

/// An observer that is neither the writer nor the closer asks for
/// `next_offset` while a write races `close`: it never reports the claim
/// of a write that is then refused (a value past the end the close fixes).
///
/// One preemption: with more, loom explores the observer (in
/// `closed_end`) and a refused writer (in `claim_while_closing`) spinning in
/// turn while the closer is preempted between `closing` and the end,
/// without bound. One is enough to reach the refused claim's window (the
/// model fails with next_offset read off `tail` there).
#[test]
fn exclusive_next_offset_never_shows_a_refused_claim() {
    let seen = memlog_loom_tests::Seen::default();
    let s = seen.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.check(move || {
        let seen = &s;
        let (mut w, log) = exclusive::<u32>(2, 1);
        let t = thread::spawn(move || {
            let r = w.write(42);
            (r, w)
        });
        let observer = {
            let log = log.clone();
            thread::spawn(move || log.next_offset())
        };
        log.close();
        let end = log.next_offset();
        let seen_then = observer.join().unwrap();
        let (r, w) = t.join().unwrap();
        seen.note(if r.is_ok() { "landed" } else { "refused" });
        assert!(
            seen_then <= end,
            "observer saw next_offset {seen_then}, the end is {end} ({r:?})"
        );
        drop(w);
    });
    seen.assert_reached(&["landed", "refused"]);
}
