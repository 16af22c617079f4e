//! The exclusive writer: the contract of `Log`'s writes through a `Writer`,
//! read-only `Log` handles, close on drop, and many readers (blocking,
//! async, random) checking every record while one writer runs, with purges.

mod support;

use memlog::{Error, Log, Writer};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn writer_is_send_and_sync() {
    assert_send_sync::<Writer<u64>>();
    assert_send_sync::<Writer<std::sync::Arc<str>>>();
}

#[test]
fn writes_land_in_order_and_other_handles_are_read_only() {
    let (mut w, log) = Log::builder()
        .start_offset(100)
        .segment_size(10)
        .history_segments(1)
        .build_exclusive()
        .unwrap();
    for i in 0..50u64 {
        assert_eq!(w.write(i).unwrap(), 100 + i);
    }
    // The Go library's retention arithmetic holds for the writer too.
    assert_eq!(log.range(), Some((130, 149)));
    assert_eq!(log.read(149).unwrap().data, 49);
    assert_eq!(log.read(129), Err(Error::OutOfRange));
    assert_eq!(w.write_batch(50..55u64).unwrap(), 150..155);
    let t = UNIX_EPOCH + Duration::from_secs(9);
    assert_eq!(w.write_timed(t, 55).unwrap(), 155);
    assert_eq!(log.read(155).unwrap().created, t);
    assert_eq!(w.write_batch_timed([(t, 56), (t, 57)]).unwrap(), 156..158);
    assert_eq!(w.write_batch(std::iter::empty()).unwrap(), 158..158);
    assert_eq!(w.next_offset(), 158);

    let other = log.clone();
    for h in [&log, &other, w.log()] {
        assert_eq!(h.write(1), Err(Error::ReadOnly));
        assert_eq!(h.write_timed(SystemTime::now(), 1), Err(Error::ReadOnly));
        assert_eq!(h.write_batch([1, 2]), Err(Error::ReadOnly));
        assert_eq!(h.write_batch_timed([(t, 1)]), Err(Error::ReadOnly));
    }
    assert_eq!(log.next_offset(), 158, "a refused write claimed nothing");
    assert_eq!(
        w.write_batch(0..100u64),
        Err(Error::BatchTooLarge { len: 100, max: 20 })
    );
    let err = Error::ReadOnly;
    assert_eq!(err.kind(), "read_only");
    assert!(err.to_string().contains("exclusive Writer"), "{err}");
}

/// A stream of an exclusive log judges by the mark, and keeps the value it
/// last loaded: a visit must not stop at that old value, short of records
/// written since (found by proptests/tests/model.rs, which also covers the
/// iterator's read-ahead).
#[test]
fn a_visit_sees_records_written_after_the_last_look() {
    let (mut w, log) = Log::builder()
        .segment_size(5)
        .history_segments(2)
        .build_exclusive()
        .unwrap();
    w.write_batch(0..4u32).unwrap();
    let mut stream = log.stream(0);
    let mut seen = Vec::new();
    assert_eq!(stream.visit(1, |r| seen.push(*r.data)), Ok(1));
    w.write_batch(4..12).unwrap();
    // Everything up to `max` is ready: the visit returns all of it.
    assert_eq!(stream.try_visit(4, |r| seen.push(*r.data)), Ok(4));
    assert_eq!(stream.try_visit(100, |r| seen.push(*r.data)), Ok(7));
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
}

#[test]
fn record_size_limit_applies_to_the_writer() {
    let (mut w, log) = Log::builder()
        .max_record_bytes(4)
        .build_exclusive()
        .unwrap();
    assert_eq!(
        w.write(b"12345".to_vec()),
        Err(Error::RecordTooLarge { len: 5, max: 4 })
    );
    assert_eq!(
        w.write_batch([b"1".to_vec(), b"12345".to_vec()]),
        Err(Error::RecordTooLarge { len: 5, max: 4 })
    );
    assert_eq!(w.write(b"1234".to_vec()).unwrap(), 0);
    assert_eq!(log.next_offset(), 1);
}

#[test]
fn dropping_the_writer_closes_the_log_and_ends_streams() {
    let (mut w, log) = Log::builder().build_exclusive().unwrap();
    let stream = log.stream(0);
    let reader = thread::spawn(move || stream.map(|r| r.unwrap().data).collect::<Vec<u32>>());
    for i in 0..10 {
        w.write(i).unwrap();
    }
    drop(w);
    assert_eq!(reader.join().unwrap(), (0..10).collect::<Vec<_>>());
    assert!(log.is_closed());
    assert_eq!(log.next_offset(), 10);
}

#[test]
fn close_from_a_read_handle_stops_the_writer() {
    let (mut w, log) = Log::builder().build_exclusive().unwrap();
    w.write(1u8).unwrap();
    log.close();
    assert!(w.is_closed());
    assert_eq!(w.write(2), Err(Error::Closed));
    assert_eq!(w.write_batch([3, 4]), Err(Error::Closed));
    assert_eq!(w.write_batch(std::iter::empty()), Err(Error::Closed));
    assert_eq!(w.next_offset(), 1);
    assert_eq!(
        log.stream(0).map(|r| r.unwrap().data).collect::<Vec<_>>(),
        [1]
    );
}

/// Ping-pong: the reader asks for each record and parks (most of the time)
/// before the writer publishes it, so every round goes through the
/// register / re-check / wake handshake on `tail`. A lost wake-up hangs the
/// reader, which the timeout turns into a failure.
#[test]
fn no_lost_wakeup_ping_pong() {
    const ROUNDS: u32 = 20_000;
    let (mut w, log) = Log::builder()
        .segment_size(8)
        .history_segments(2)
        .build_exclusive()
        .unwrap();
    let (ask, asked) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel();
    let mut s = log.stream(0);
    thread::spawn(move || {
        for i in 0..ROUNDS {
            ask.send(()).unwrap();
            let r = s.next().unwrap().unwrap();
            assert_eq!((r.offset, r.data), (u64::from(i), i));
        }
        done.send(()).unwrap();
    });
    for i in 0..ROUNDS {
        asked.recv().unwrap();
        if i % 2 == 0 {
            thread::yield_now();
        }
        w.write(i).unwrap();
    }
    // Generous: 20 000 handoffs between two threads, each of which may
    // wait for a core on a loaded machine; only a hang takes this long.
    finished
        .recv_timeout(Duration::from_secs(600))
        .expect("the reader hung: lost wake-up");
    assert_eq!(log.waiter_count(), 0);
}

/// Blocking and (with feature `async`) async streams and random readers
/// follow one writer that
/// writes singles and batches into small segments (so purges happen); every
/// record is checked: offset order, no gap, no duplicate, contents, and
/// readers that fall behind resume from the earliest retained offset.
#[test]
fn one_writer_many_readers_every_record_checked() {
    const N: u64 = 100_000;
    let value = |o: u64| o.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555;
    let (mut w, log) = Log::builder()
        .segment_size(64)
        .history_segments(64)
        .build_exclusive()
        .unwrap();
    let check = move |next: &mut u64, offset: u64, data: u64| {
        assert_eq!(offset, *next, "gap or duplicate");
        assert_eq!(data, value(offset), "contents at {offset}");
        *next += 1;
    };
    let blocking: Vec<_> = (0..4)
        .map(|_| {
            let mut s = log.stream(0);
            let log = log.clone();
            thread::spawn(move || {
                let (mut next, mut seen) = (0, 0u64);
                loop {
                    match s.next() {
                        Some(Ok(r)) => {
                            check(&mut next, r.offset, r.data);
                            seen += 1;
                        }
                        Some(Err(Error::OutOfRange)) => {
                            let first = loop {
                                if let Some((first, _)) = log.range() {
                                    break first;
                                }
                                thread::yield_now();
                            };
                            assert!(first > next);
                            next = first;
                            s = log.stream(first);
                        }
                        Some(Err(e)) => panic!("{e}"),
                        None => return (next, seen),
                    }
                }
            })
        })
        .collect();
    #[cfg(feature = "async")]
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    #[cfg(feature = "async")]
    let asyncs: Vec<_> = (0..2)
        .map(|_| {
            use futures_util::StreamExt;
            let mut s = log.stream_async(0);
            rt.spawn(async move {
                let mut next = 0;
                while let Some(r) = s.next().await {
                    match r {
                        Ok(r) => check(&mut next, r.offset, r.data),
                        // A slow task may fall behind; the rest of the test
                        // checks resuming.
                        Err(Error::OutOfRange) => return next,
                        Err(e) => panic!("{e}"),
                    }
                }
                next
            })
        })
        .collect();
    let random = {
        let log = log.clone();
        thread::spawn(move || {
            let mut reads = 0u64;
            // One look after the close too: the writer may be done before
            // this thread first runs.
            let mut closed = false;
            while !closed {
                closed = log.is_closed();
                if let Some((first, last)) = log.range() {
                    for o in [first, last, (first + last) / 2] {
                        match log.read(o) {
                            Ok(r) => {
                                assert_eq!((r.offset, r.data), (o, value(o)));
                                reads += 1;
                            }
                            Err(e) => assert_eq!(e, Error::OutOfRange),
                        }
                    }
                }
                thread::yield_now();
            }
            reads
        })
    };
    let mut o = 0;
    while o < N {
        if o % 7 == 0 {
            let n = (o % 13 + 1).min(N - o);
            assert_eq!(w.write_batch((o..o + n).map(value)).unwrap(), o..o + n);
            o += n;
        } else {
            assert_eq!(w.write(value(o)).unwrap(), o);
            o += 1;
        }
        if o % 1024 == 0 {
            thread::yield_now();
        }
    }
    drop(w);
    for b in blocking {
        let (next, seen) = b.join().unwrap();
        assert_eq!(next, N);
        assert!(seen > 0);
    }
    #[cfg(feature = "async")]
    for a in asyncs {
        let next = rt.block_on(a).unwrap();
        assert!(next <= N);
    }
    assert!(random.join().unwrap() > 0);
    assert_eq!(log.waiter_count(), 0);
}

/// `close` from a read handle racing a writer in full flight (singles and
/// batches), 300 rounds, with streams parked and spinning: every write
/// acknowledged is below the end `close` fixed and is drained by every
/// stream, every write refused is past it (a batch lands whole or not at
/// all), and nothing past the end is ever readable. The writer's claim is a
/// plain store met by `close` through the asymmetric fence (writer.rs):
/// a lost claim would show as an acknowledged record missing from the drain,
/// a late one as a record past the end.
#[test]
fn close_racing_writes_loses_nothing_acknowledged() {
    let value = |o: u64| o ^ 0xA5A5;
    const SEGMENT: usize = 16;
    const HISTORY: usize = 8192;
    for round in 0..300u64 {
        let (mut w, log) = Log::builder()
            .segment_size(SEGMENT)
            .history_segments(HISTORY)
            .build_exclusive()
            .unwrap();
        let drains: Vec<_> = (0..2)
            .map(|_| {
                let s = log.stream(0);
                thread::spawn(move || s.map(|r| r.unwrap()).collect::<Vec<_>>())
            })
            .collect();
        let writer = thread::spawn(move || {
            let retained = (SEGMENT * (HISTORY + 1)) as u64;
            let acked = write_until_closed(&mut w, value, 3, 2, retained);
            // Refused for good, and the end stays.
            assert_eq!(w.write(0), Err(Error::Closed));
            (acked, w.next_offset())
        });
        // Let the writer run a varying while (up to ~50 µs) before closing.
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_micros(round % 50) {
            std::hint::spin_loop();
        }
        log.close();
        let end = log.next_offset();
        let (acked, writer_end) = writer.join().unwrap();
        assert_eq!(acked, end, "round {round}: acknowledged vs the end");
        assert_eq!(writer_end, end);
        assert_eq!(log.read(end), Err(Error::FutureOffset));
        for d in drains {
            let got = d.join().unwrap();
            assert_eq!(got.len() as u64, end, "round {round}: drained");
            for (k, r) in got.iter().enumerate() {
                assert_eq!((r.offset, r.data), (k as u64, value(k as u64)));
            }
        }
    }
}

/// Two `close` calls from read handles, then the writer's drop (a third),
/// race a writer in full flight, with an observer polling `next_offset`
/// and `is_closed`: every closer returns the one end, the observer never
/// sees `next_offset` go back (a refused claim's `tail` store, taken back
/// by `claim_while_closing`, must not show) nor pass the end, and streams
/// parked at the end across the race end instead of spinning on a claim
/// that was refused (`Wait::Claimed`).
#[test]
fn concurrent_closers_and_observers_agree_on_one_end() {
    let value = |o: u64| o ^ 0x5A5A;
    const SEGMENT: usize = 4;
    const HISTORY: usize = 1 << 14;
    for round in 0..200u64 {
        let (mut w, log) = Log::builder()
            .segment_size(SEGMENT)
            .history_segments(HISTORY)
            .build_exclusive()
            .unwrap();
        let observer = {
            let log = log.clone();
            thread::spawn(move || {
                let mut last = 0;
                loop {
                    let closed = log.is_closed();
                    let n = log.next_offset();
                    assert!(n >= last, "round {round}: next_offset {last} -> {n}");
                    last = n;
                    if closed {
                        return last;
                    }
                }
            })
        };
        let drains: Vec<_> = (0..2)
            .map(|_| {
                let s = log.stream(0);
                thread::spawn(move || s.map(|r| r.unwrap().data).collect::<Vec<_>>())
            })
            .collect();
        let writer = thread::spawn(move || {
            let retained = (SEGMENT * (HISTORY + 1)) as u64;
            let acked = write_until_closed(&mut w, value, 5, 3, retained);
            // Refused writes keep storing and taking back `tail` while the
            // others look.
            for _ in 0..1000 {
                assert_eq!(w.write(0), Err(Error::Closed));
            }
            (acked, w)
        });
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_micros(round % 40) {
            std::hint::spin_loop();
        }
        let ends = support::close_concurrently(&log, 2);
        let (acked, w) = writer.join().unwrap();
        assert_eq!(ends, [acked, acked], "round {round}");
        drop(w);
        assert_eq!(log.next_offset(), acked);
        assert_eq!(observer.join().unwrap(), acked, "round {round}");
        for d in drains {
            let got = d.join().unwrap();
            assert_eq!(got.len() as u64, acked, "round {round}");
            assert!(got.iter().enumerate().all(|(k, &v)| v == value(k as u64)));
        }
        let mut at_end = log.stream(acked);
        assert_eq!(at_end.next(), None);
    }
}

/// Writes `value(o)` at each offset `o` until the log is closed, a batch of
/// `batch_len` whenever the count so far is a multiple of `batch_every`,
/// else one record; returns how many writes were acknowledged.
///
/// Never more than `most` records (the log's retention): the streams that
/// drain from 0 must find every acknowledged record, however late the
/// closers run. Once the next write could pass `most`, it waits for the
/// close, then goes on writing until refused: a close under way may still
/// take one write it sees, so room for one more is kept.
fn write_until_closed(
    w: &mut Writer<u64>,
    value: impl Fn(u64) -> u64,
    batch_every: u64,
    batch_len: u64,
    most: u64,
) -> u64 {
    let mut acked = 0u64;
    loop {
        let batch = acked % batch_every == 0;
        let n = if batch { batch_len } else { 1 };
        if acked + n + batch_len > most {
            while !w.is_closed() {
                thread::yield_now();
            }
        }
        let r = if batch {
            w.write_batch((acked..acked + batch_len).map(&value))
                .map(|range| range.end - range.start)
        } else {
            w.write(value(acked)).map(|_| 1)
        };
        match r {
            Ok(n) => acked += n,
            Err(Error::Closed) => return acked,
            Err(e) => panic!("{e}"),
        }
    }
}
