//! Resuming without the dance (issue #8): streams that start at the earliest
//! or latest retained offset (`StartAt`), and streams that skip ahead when
//! they fall behind retention (`Lag::Skip`, `Error::Lagged`).

use memlog::sharded::ShardedLog;
use memlog::{Error, Lag, Log, StartAt, Stream};
use std::thread;
use std::time::Duration;

mod common;
use common::log_with;

fn write_each(log: &Log<u64>, xs: impl IntoIterator<Item = u64>) {
    for x in xs {
        log.write(x).unwrap();
    }
}

fn data(s: &mut Stream<u64>) -> u64 {
    s.next().unwrap().unwrap().data
}

// ------------------------------------------------------------------ StartAt

#[test]
fn start_at_on_an_empty_log_is_the_start_offset() {
    let log = log_with(100, 4, 1);
    let mut earliest = log.stream_from(StartAt::Earliest);
    let mut latest = log.stream_from(StartAt::Latest);
    assert_eq!(earliest.next_offset(), 100);
    assert_eq!(latest.next_offset(), 100);
    assert_eq!(earliest.try_recv(), Err(Error::FutureOffset));
    log.write(7).unwrap();
    assert_eq!(data(&mut earliest), 7);
    assert_eq!(data(&mut latest), 7);
}

#[test]
fn start_at_follows_retention_write_by_write() {
    let log = log_with(50, 4, 1);
    for i in 0..40u64 {
        log.write(i).unwrap();
        let (first, last) = log.range().unwrap();
        let mut earliest = log.stream_from(StartAt::Earliest);
        assert_eq!(earliest.next_offset(), first, "after {} writes", i + 1);
        assert_eq!(earliest.try_recv().unwrap().offset, first);
        let latest = log.stream_from(StartAt::Latest);
        assert_eq!(latest.next_offset(), last + 1);
        assert_eq!(latest.next_offset(), log.next_offset());
        assert_eq!(log.stream_from(StartAt::Offset(77)).next_offset(), 77);
    }
    // The same through a batch that crosses several segments.
    log.write_batch(0..8).unwrap();
    let (first, _) = log.range().unwrap();
    assert_eq!(log.stream_from(StartAt::Earliest).next_offset(), first);
}

#[test]
fn start_at_latest_on_a_closed_log_ends_at_once() {
    let log = log_with(0, 4, 1);
    log.write_batch([1, 2, 3]).unwrap();
    log.close();
    let mut latest = log.stream_from(StartAt::Latest);
    assert_eq!(latest.next_offset(), 3);
    assert_eq!(latest.next(), None);
    assert_eq!(latest.ended(), Some(&Error::Closed));
    // Earliest on a closed log drains what is retained.
    let got: Vec<u64> = log
        .stream_from(StartAt::Earliest)
        .map(|r| r.unwrap().data)
        .collect();
    assert_eq!(got, [1, 2, 3]);
}

/// `range()` is `None` for a moment after every purge with no history (the
/// new segment is installed before its first record is published).
/// `StartAt::Earliest` must never guess there: it is a segment boundary, not
/// above what was written, never below an earlier answer, and a stream from it
/// reads the right record, or is told exactly how far it fell behind.
#[test]
fn earliest_is_exact_while_range_is_transiently_none() {
    const SEG: u64 = 2;
    const N: u64 = 200_000;
    let log = log_with(1_000, SEG as usize, 0);
    let writer = {
        let log = log.clone();
        thread::spawn(move || {
            for i in 0..N {
                log.write(1_000 + i).unwrap();
            }
            log.close();
        })
    };
    let (mut nones, mut checks, mut last_earliest) = (0u64, 0u64, 1_000);
    loop {
        let done = log.is_closed();
        let mut s = log.stream_from(StartAt::Earliest).on_lag(Lag::Skip);
        let e = s.next_offset();
        assert_eq!((e - 1_000) % SEG, 0, "not a segment boundary: {e}");
        assert!(
            e >= last_earliest,
            "earliest went back: {e} < {last_earliest}"
        );
        assert!(
            e <= log.next_offset(),
            "earliest {e} beyond what was written"
        );
        last_earliest = e;
        match log.range() {
            Some((first, _)) => assert!(e <= first, "{e} > range start {first}"),
            None => nones += 1,
        }
        let mut want = e;
        loop {
            match s.next() {
                Some(Ok(r)) => {
                    assert_eq!((r.offset, r.data), (want, want));
                    break;
                }
                Some(Err(Error::Lagged { skipped })) => {
                    assert!(skipped > 0 && skipped % SEG == 0, "skipped {skipped}");
                    want += skipped;
                    assert_eq!(s.next_offset(), want);
                }
                None => {
                    assert!(log.is_closed() && want == log.next_offset());
                    break;
                }
                Some(Err(e)) => panic!("{e:?}"),
            }
        }
        checks += 1;
        if done {
            break;
        }
    }
    writer.join().unwrap();
    eprintln!("{checks} checks, range() was None at {nones} of them");
}

// ------------------------------------------------------------------ Lag::Skip

#[test]
fn skip_says_how_far_and_goes_on() {
    let log = log_with(0, 10, 1);
    let mut s = log.stream(0).on_lag(Lag::Skip);
    log.write_batch(0..20).unwrap();
    log.write_batch(20..30).unwrap(); // purges 0..10
    assert_eq!(s.next(), Some(Err(Error::Lagged { skipped: 10 })));
    assert_eq!(s.next_offset(), 10);
    assert_eq!(s.ended(), None, "Lagged is not an ending");
    assert_eq!(data(&mut s), 10);
    // It lags again, as often as it falls behind.
    log.write_batch(30..50).unwrap();
    log.write_batch(50..60).unwrap(); // purges 10..40
                                      // Offsets 11..30 were fetched ahead with 10 (up to 32 at a time, up to
                                      // the mark), so they are yielded before the stream notices the purge.
    let got: Vec<u64> = s.by_ref().take(19).map(|r| r.unwrap().data).collect();
    assert_eq!(got, (11..30).collect::<Vec<_>>());
    assert_eq!(s.next(), Some(Err(Error::Lagged { skipped: 10 })));
    assert_eq!(data(&mut s), 40);
}

#[test]
fn skip_from_below_the_start_offset() {
    let log = log_with(10, 4, 1);
    log.write_batch([10, 11]).unwrap();
    let mut s = log.stream(3).on_lag(Lag::Skip);
    assert_eq!(s.next(), Some(Err(Error::Lagged { skipped: 7 })));
    assert_eq!(data(&mut s), 10);
    // On an empty log too: it skips to the start offset and waits there.
    let empty = log_with(10, 4, 1);
    let mut s = empty.stream(0).on_lag(Lag::Skip);
    assert_eq!(s.try_recv(), Err(Error::Lagged { skipped: 10 }));
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    empty.write(42).unwrap();
    assert_eq!(s.try_recv().unwrap().data, 42);
}

#[test]
fn read_ahead_records_come_before_the_lag() {
    let log = log_with(0, 4, 1);
    log.write_batch([0, 1, 2]).unwrap();
    let mut s = log.stream(0).on_lag(Lag::Skip);
    assert_eq!(data(&mut s), 0); // fetched 0, 1 and 2
    log.write_batch(3..8).unwrap();
    log.write_batch(8..12).unwrap(); // purges 0..4
    log.write_batch(12..13).unwrap(); // purges 4..8
    assert_eq!(log.range(), Some((8, 12)));
    // 1 and 2 were fetched before the purge: intact copies, still yielded.
    assert_eq!(data(&mut s), 1);
    assert_eq!(data(&mut s), 2);
    assert_eq!(s.next(), Some(Err(Error::Lagged { skipped: 5 })));
    log.close();
    let rest: Vec<u64> = s.map(|r| r.unwrap().data).collect();
    assert_eq!(rest, (8..13).collect::<Vec<_>>());
}

#[test]
fn lagged_from_every_reading_method_and_then_cancel_or_close() {
    let log = log_with(0, 2, 0);
    let mut a = log.stream(0).on_lag(Lag::Skip);
    let mut b = log.stream(0).on_lag(Lag::Skip);
    write_each(&log, [0, 1, 2]); // purges 0 and 1
    assert_eq!(a.try_recv(), Err(Error::Lagged { skipped: 2 }));
    assert_eq!(
        b.recv_timeout(Duration::from_secs(60)),
        Err(Error::Lagged { skipped: 2 })
    );
    assert_eq!(a.try_recv().unwrap().data, 2);
    assert_eq!(b.recv_timeout(Duration::ZERO).unwrap().data, 2);
    a.canceller().cancel();
    assert_eq!(a.next(), Some(Err(Error::Cancelled)));
    assert_eq!(a.next(), None);
    log.close();
    assert_eq!(b.next(), None);
    assert_eq!(b.ended(), Some(&Error::Closed));
}

/// A skip past the end of a closed log ends the stream cleanly.
#[test]
fn skip_then_close_drains_and_ends() {
    let log = log_with(0, 2, 0);
    let mut s = log.stream(0).on_lag(Lag::Skip);
    write_each(&log, [0, 1, 2, 3]); // 2 and 3 retained
    log.close();
    assert_eq!(s.next(), Some(Err(Error::Lagged { skipped: 2 })));
    assert_eq!(s.map(|r| r.unwrap().data).collect::<Vec<_>>(), [2, 3]);
}

/// A payload that carries its writer, its sequence number and a check of
/// both, so that a torn or mixed-up record is seen.
#[derive(Clone, Debug, PartialEq)]
struct Item {
    writer: u64,
    seq: u64,
    check: u64,
}

impl Item {
    fn new(writer: u64, seq: u64) -> Self {
        Item {
            writer,
            seq,
            check: (writer.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seq).rotate_left(17),
        }
    }
}

/// What a reader with `Lag::Skip` saw.
#[derive(Debug, Default)]
struct Seen {
    received: u64,
    skipped: u64,
    lags: u64,
    /// The next offset this reader expects.
    next: u64,
    /// The last sequence number seen from each writer.
    last_seq: Vec<Option<u64>>,
}

impl Seen {
    fn new(writers: usize) -> Self {
        Seen {
            last_seq: vec![None; writers],
            ..Seen::default()
        }
    }

    /// Checks one item: records in offset order with no duplicates, each
    /// intact and after its writer's previous one; lags that move forward.
    fn item(&mut self, item: Result<memlog::Record<Item>, Error>) {
        match item {
            Ok(r) => {
                assert_eq!(r.offset, self.next, "out of order or duplicated");
                let d = &r.data;
                assert_eq!(*d, Item::new(d.writer, d.seq), "torn record");
                let last = &mut self.last_seq[d.writer as usize];
                assert!(last.is_none_or(|l| d.seq > l), "{d:?} after {last:?}");
                *last = Some(d.seq);
                self.received += 1;
                self.next += 1;
            }
            Err(Error::Lagged { skipped }) => {
                assert!(skipped > 0);
                self.skipped += skipped;
                self.lags += 1;
                self.next += skipped;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

/// Slow readers with `Lag::Skip` behind fast writers: every offset is either
/// received (in order, once, intact) or counted in a `Lagged`, and the two
/// add up to everything written.
#[test]
fn slow_readers_with_skip_account_for_every_offset() {
    const WRITERS: u64 = 2;
    const PER: u64 = 50_000;
    let log: Log<Item> = Log::builder()
        .segment_size(16)
        .history_segments(1)
        .build()
        .unwrap();
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let log = log.clone();
            let mut s = log.stream(0).on_lag(Lag::Skip);
            thread::spawn(move || {
                // Start only once offset 0 is purged (at most two writes are
                // unpublished, the log retains 32): the first read lags.
                while log.next_offset() < 100 {
                    thread::yield_now();
                }
                let mut seen = Seen::new(WRITERS as usize);
                for (n, item) in s.by_ref().enumerate() {
                    seen.item(item);
                    if n % (64 + r as usize * 50) == 0 {
                        thread::sleep(Duration::from_micros(200));
                    }
                }
                assert_eq!(s.ended(), Some(&Error::Closed));
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..PER {
                    log.write(Item::new(w, i)).unwrap();
                    if i % 1024 == 0 {
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    log.close();
    for r in readers {
        let seen = r.join().unwrap();
        assert_eq!(seen.next, WRITERS * PER, "{seen:?}");
        assert_eq!(seen.received + seen.skipped, WRITERS * PER, "{seen:?}");
        assert!(seen.lags >= 1, "{seen:?}");
        eprintln!(
            "received {}, skipped {} in {} lags",
            seen.received, seen.skipped, seen.lags
        );
    }
}

// ------------------------------------------------------------------ sharded

#[test]
fn sharded_log_offers_the_resume_api() {
    let log: ShardedLog<u64> = ShardedLog::builder()
        .segment_size(2)
        .history_segments(0)
        .start_offset(5)
        .build()
        .unwrap();
    assert_eq!(log.start_offset(), 5);
    assert_eq!(log.next_offset("k").unwrap(), 5);
    let mut out = Vec::new();
    assert_eq!(log.read_batch("k", 5, &mut out, 0), Ok(0));
    assert_eq!(
        log.read_batch("k", 5, &mut out, 9),
        Err(Error::FutureOffset)
    );
    assert_eq!(log.read_batch("k", 4, &mut out, 9), Err(Error::OutOfRange));
    let mut s = log.stream("k", 5).unwrap().on_lag(Lag::Skip);
    for x in [0, 1, 2] {
        log.write("k", x).unwrap(); // 5 6 | 7: purges 5 and 6
    }
    assert_eq!(log.next_offset("k").unwrap(), 8);
    assert_eq!(s.next(), Some(Err(Error::Lagged { skipped: 2 })));
    assert_eq!(data(&mut s), 2);
    assert_eq!(
        log.stream_from("k", StartAt::Earliest)
            .unwrap()
            .next_offset(),
        7
    );
    assert_eq!(
        log.stream_from("k", StartAt::Latest).unwrap().next_offset(),
        8
    );
}

#[cfg(feature = "async")]
mod async_resume {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn async_stream_skips_and_starts_where_told() {
        let log = log_with(0, 4, 1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        log.write_batch(0..8).unwrap();
        let mut latest = log.stream_async_from(StartAt::Latest);
        let mut lagging = log.stream_async(0).on_lag(Lag::Skip);
        log.write(8).unwrap(); // purges 0..4
        let mut earliest = log.stream_async_from(StartAt::Earliest);
        assert_eq!(earliest.next_offset(), 4);
        rt.block_on(async {
            assert_eq!(latest.next().await.unwrap().unwrap().data, 8);
            assert_eq!(
                lagging.next().await,
                Some(Err(Error::Lagged { skipped: 4 }))
            );
            assert_eq!(lagging.next().await.unwrap().unwrap().data, 4);
            assert_eq!(earliest.next().await.unwrap().unwrap().data, 4);
        });
        // A pending skipping stream is woken by writes and accounts for all.
        let log: Log<Item> = Log::builder()
            .segment_size(8)
            .history_segments(1)
            .build()
            .unwrap();
        let mut s = log.stream_async(0).on_lag(Lag::Skip);
        let reader = rt.spawn(async move {
            let mut seen = Seen::new(1);
            let mut until_pause = 100;
            while let Some(item) = s.next().await {
                seen.item(item);
                until_pause -= 1;
                if until_pause == 0 {
                    until_pause = 100;
                    tokio::time::sleep(Duration::from_micros(300)).await;
                }
            }
            seen
        });
        const N: u64 = 30_000;
        for i in 0..N {
            log.write(Item::new(0, i)).unwrap();
            if i % 512 == 0 {
                thread::yield_now();
            }
        }
        log.close();
        let seen = rt.block_on(reader).unwrap();
        assert_eq!(
            (seen.next, seen.received + seen.skipped),
            (N, N),
            "{seen:?}"
        );
        assert_eq!(log.waiter_count(), 0);
        // ShardedLog's async streams.
        let sharded: ShardedLog<u64> = ShardedLog::new();
        sharded.write("k", 1).unwrap();
        let mut a = sharded.stream_async("k", 0).unwrap();
        let mut b = sharded.stream_async_from("k", StartAt::Earliest).unwrap();
        rt.block_on(async {
            assert_eq!(a.next().await.unwrap().unwrap().data, 1);
            assert_eq!(b.next().await.unwrap().unwrap().data, 1);
        });
    }
}
