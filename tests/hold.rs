//! `Lag::Hold`: streams that must see every record hold the segments they
//! have not read, and writers that would purge one wait (or answer `Full`,
//! `Timeout`, or wait as a task). Every record is checked; nothing relies on
//! a thread running soon (a sleep here only makes a race likelier, never
//! decides an outcome), and `support::within` turns a hang into a failure.

mod support;

use memlog::{Error, Lag, Log, Writer};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use support::within;

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The value a single producer writes at `offset`.
fn v(offset: u64) -> u64 {
    mix(offset ^ 0x5eed)
}

/// A holding stream's record must be at `*next` with the producer's value.
fn check_v(next: &mut u64, offset: u64, data: u64) {
    assert_eq!(offset, *next, "gap or duplicate");
    assert_eq!(data, v(offset), "wrong contents at {offset}");
    *next += 1;
}

/// Reads every ready record of `s` (`try_recv`), checking each.
fn drain_ready(s: &mut memlog::Stream<u64>, next: &mut u64) {
    loop {
        match s.try_recv() {
            Ok(r) => check_v(next, r.offset, r.data),
            Err(Error::FutureOffset) => return,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// 1. The newcomer's case (issue 17).

/// 200 000 records into 5 120 of retention: three holding streams (an
/// iterator that sleeps now and then, a visit loop, an async stream) get
/// every record, in order, intact; a strict and a skipping stream beside
/// them keep today's semantics.
#[cfg(feature = "async")]
#[test]
fn newcomer_burst_reaches_every_holding_stream() {
    within(120, "newcomer burst", || {
        const TOTAL: u64 = 200_000;
        let log: Log<u64> = Log::builder()
            .segment_size(1024)
            .history_segments(4)
            .build()
            .unwrap();
        let t0 = Instant::now();
        // Every stream exists (and holds) before the first write.
        let slow = log.stream(0).on_lag(Lag::Hold);
        let slow = thread::spawn(move || {
            let mut next = 0;
            for r in slow {
                let r = r.expect("a holding stream never errs");
                check_v(&mut next, r.offset, r.data);
                if next % 4_000 == 0 {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            next
        });
        let mut visitor = log.stream(0).on_lag(Lag::Hold);
        let visitor = thread::spawn(move || {
            let mut next = 0;
            loop {
                match visitor.visit(256, |r| check_v(&mut next, r.offset, *r.data)) {
                    Ok(n) => assert!((1..=256).contains(&n)),
                    Err(Error::Closed) => break,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            assert_eq!(visitor.next_offset(), next);
            next
        });
        let mut task = log.stream_async(0).on_lag(Lag::Hold);
        let task = thread::spawn(move || {
            use futures_util::StreamExt;
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut next = 0;
                while let Some(r) = task.next().await {
                    let r = r.expect("a holding stream never errs");
                    check_v(&mut next, r.offset, r.data);
                }
                assert_eq!(task.ended(), Some(&Error::Closed));
                next
            })
        });
        // Today's semantics beside them.
        let strict = log.stream(0);
        let strict = thread::spawn(move || {
            let mut strict = strict;
            let mut next = 0;
            loop {
                match strict.next() {
                    Some(Ok(r)) => check_v(&mut next, r.offset, r.data),
                    Some(Err(Error::OutOfRange)) => {
                        assert_eq!(strict.next(), None);
                        return (next, true);
                    }
                    Some(Err(e)) => panic!("unexpected {e:?}"),
                    None => return (next, false),
                }
            }
        });
        let skip = log.stream(0).on_lag(Lag::Skip);
        let skip = thread::spawn(move || {
            let (mut next, mut skipped) = (0, 0);
            for r in skip {
                match r {
                    Ok(r) => check_v(&mut next, r.offset, r.data),
                    Err(Error::Lagged { skipped: n }) => {
                        assert!(n > 0);
                        next += n;
                        skipped += n;
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (next, skipped)
        });
        assert_eq!(log.hold_count(), 3);
        for i in 0..TOTAL {
            assert_eq!(log.write(v(i)), Ok(i));
        }
        let wrote = t0.elapsed();
        log.close();
        assert_eq!(slow.join().unwrap(), TOTAL);
        assert_eq!(visitor.join().unwrap(), TOTAL);
        assert_eq!(task.join().unwrap(), TOTAL);
        let (strict_read, fell_behind) = strict.join().unwrap();
        assert!(fell_behind || strict_read == TOTAL, "{strict_read}");
        let (skip_end, skipped) = skip.join().unwrap();
        assert_eq!(skip_end, TOTAL, "every offset yielded or counted");
        assert_eq!(log.hold_count(), 0);
        assert_eq!(log.waiter_count(), 0);
        eprintln!(
            "newcomer burst: {TOTAL} records written in {wrote:.2?}, all read in {:.2?}; \
             strict stream read {strict_read} (fell behind: {fell_behind}), \
             skipping stream lost {skipped}",
            t0.elapsed()
        );
    });
}

// ---------------------------------------------------------------------------
// 2. Stress.

/// One record of the stress test: its writer, its place in that writer's
/// sequence, and a checksum of both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    w: u32,
    seq: u32,
    check: u64,
}

impl Rec {
    fn new(w: u32, seq: u32) -> Rec {
        Rec {
            w,
            seq,
            check: mix((u64::from(w) << 32) | u64::from(seq)),
        }
    }
}

/// A holding reader's checks: a gapless prefix from 0, each writer's records
/// in its order, intact.
struct Seen {
    next: u64,
    next_seq: Vec<u32>,
    recs: Vec<(u32, u32)>,
}

impl Seen {
    fn new(writers: usize) -> Self {
        Seen {
            next: 0,
            next_seq: vec![0; writers],
            recs: Vec::new(),
        }
    }
    fn check(&mut self, offset: u64, r: &Rec) {
        assert_eq!(offset, self.next, "gap or duplicate");
        assert_eq!(*r, Rec::new(r.w, r.seq), "torn record at {offset}");
        let w = r.w as usize;
        assert_eq!(
            r.seq, self.next_seq[w],
            "writer {w} out of order at {offset}"
        );
        self.next_seq[w] += 1;
        self.next += 1;
        self.recs.push((r.w, r.seq));
    }
}

/// What a stress reader did.
#[derive(Debug)]
enum Outcome {
    /// Read to the end: what it saw, in offset order.
    Full(Vec<(u32, u32)>),
    /// Dropped or cancelled after a prefix.
    Prefix(Vec<(u32, u32)>),
    /// Not holding: a gapless prefix, then an end (`true`: `OutOfRange`).
    Strict(u64, bool),
    /// `Lag::Skip`: where it ended, every offset yielded or counted.
    Skip(u64),
}

/// Reads a holding blocking iterator to its end.
fn hold_iter(log: &Log<Rec>, writers: usize) -> thread::JoinHandle<Outcome> {
    let s = log.stream(0).on_lag(Lag::Hold);
    thread::spawn(move || {
        let mut seen = Seen::new(writers);
        let mut s = s;
        for r in &mut s {
            let r = r.expect("a holding stream never errs");
            seen.check(r.offset, &r.data);
        }
        assert_eq!(s.ended(), Some(&Error::Closed));
        assert_eq!(s.next_offset(), seen.next);
        Outcome::Full(seen.recs)
    })
}

/// Reads a holding stream with `visit` to its end.
fn hold_visit(log: &Log<Rec>, writers: usize, max: usize) -> thread::JoinHandle<Outcome> {
    let mut s = log.stream(0).on_lag(Lag::Hold);
    thread::spawn(move || {
        let mut seen = Seen::new(writers);
        loop {
            match s.visit(max, |r| seen.check(r.offset, r.data)) {
                Ok(n) => assert!(n >= 1 && n <= max),
                Err(Error::Closed) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(s.next_offset(), seen.next);
        Outcome::Full(seen.recs)
    })
}

/// A holding async stream on its own current-thread runtime: to its end
/// (`stop == None`), or dropped after `stop` records; by `next` or `visit`.
#[cfg(feature = "async")]
fn hold_async(
    log: &Log<Rec>,
    writers: usize,
    by_visit: bool,
    stop: Option<u64>,
) -> thread::JoinHandle<Outcome> {
    let mut s = log.stream_async(0).on_lag(Lag::Hold);
    thread::spawn(move || {
        use futures_util::StreamExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut seen = Seen::new(writers);
            loop {
                if stop.is_some_and(|n| seen.next >= n) {
                    return Outcome::Prefix(seen.recs);
                }
                if by_visit {
                    match s.visit(7, |r| seen.check(r.offset, r.data)).await {
                        Ok(n) => assert!((1..=7).contains(&n)),
                        Err(Error::Closed) => break,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                } else {
                    match s.next().await {
                        Some(Ok(r)) => seen.check(r.offset, &r.data),
                        Some(Err(e)) => panic!("unexpected {e:?}"),
                        None => break,
                    }
                }
            }
            assert_eq!(s.ended(), Some(&Error::Closed));
            assert_eq!(s.next_offset(), seen.next);
            if stop.is_some() {
                Outcome::Prefix(seen.recs)
            } else {
                Outcome::Full(seen.recs)
            }
        })
    })
}

/// The stress test's async holding streams: to the end by `next` and by
/// `visit`, and one dropped a third of the way (none without feature
/// `async`).
fn async_readers(log: &Log<Rec>, writers: usize, total: u64) -> Vec<thread::JoinHandle<Outcome>> {
    #[cfg(feature = "async")]
    return vec![
        hold_async(log, writers, false, None),
        hold_async(log, writers, true, None),
        hold_async(log, writers, false, Some(total / 3)),
    ];
    #[cfg(not(feature = "async"))]
    {
        let _ = (log, writers, total);
        Vec::new()
    }
}

/// A holding iterator dropped after `stop` records (or at the end).
fn hold_dropped(log: &Log<Rec>, writers: usize, stop: u64) -> thread::JoinHandle<Outcome> {
    let mut s = log.stream(0).on_lag(Lag::Hold);
    thread::spawn(move || {
        let mut seen = Seen::new(writers);
        while seen.next < stop {
            match s.next() {
                Some(Ok(r)) => seen.check(r.offset, &r.data),
                Some(Err(e)) => panic!("unexpected {e:?}"),
                None => break,
            }
        }
        drop(s);
        Outcome::Prefix(seen.recs)
    })
}

/// A holding iterator that stops reading after `stop` records and idles
/// (holding the writers back) until another thread cancels it; then its
/// next call says `Cancelled`.
fn hold_cancelled(log: &Log<Rec>, writers: usize, stop: u64) -> thread::JoinHandle<Outcome> {
    let mut s = log.stream(0).on_lag(Lag::Hold);
    let cancel = s.canceller();
    let (idle_tx, idle_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        idle_rx.recv().unwrap();
        cancel.cancel();
        done_tx.send(()).unwrap();
    });
    thread::spawn(move || {
        let mut seen = Seen::new(writers);
        let mut ended = false;
        while seen.next < stop {
            match s.next() {
                Some(Ok(r)) => seen.check(r.offset, &r.data),
                Some(Err(e)) => panic!("unexpected {e:?}"),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        // Idle, holding, until cancelled.
        idle_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        if !ended {
            assert_eq!(s.next(), Some(Err(Error::Cancelled)));
            assert_eq!(s.next(), None);
        }
        Outcome::Prefix(seen.recs)
    })
}

/// A stream that does not hold (`Lag::End` or `Lag::Skip`).
fn not_holding(log: &Log<Rec>, writers: usize, skip: bool) -> thread::JoinHandle<Outcome> {
    let s = log
        .stream(0)
        .on_lag(if skip { Lag::Skip } else { Lag::End });
    thread::spawn(move || {
        let mut s = s;
        let mut next = 0u64;
        let mut next_seq = vec![0u32; writers];
        loop {
            match s.next() {
                Some(Ok(r)) => {
                    assert_eq!(r.offset, next, "gap or duplicate");
                    assert_eq!(r.data, Rec::new(r.data.w, r.data.seq), "torn");
                    let w = r.data.w as usize;
                    if skip {
                        assert!(r.data.seq >= next_seq[w]);
                    } else {
                        assert_eq!(r.data.seq, next_seq[w]);
                    }
                    next_seq[w] = r.data.seq + 1;
                    next += 1;
                }
                Some(Err(Error::Lagged { skipped })) if skip => {
                    assert!(skipped > 0);
                    next += skipped;
                }
                Some(Err(Error::OutOfRange)) if !skip => {
                    assert_eq!(s.next(), None);
                    return Outcome::Strict(next, true);
                }
                Some(Err(e)) => panic!("unexpected {e:?}"),
                None => {
                    assert_eq!(s.ended(), Some(&Error::Closed));
                    assert_eq!(s.next_offset(), next);
                    return if skip {
                        Outcome::Skip(next)
                    } else {
                        Outcome::Strict(next, false)
                    };
                }
            }
        }
    })
}

/// Writes up to `k` records for writer `w` (alone or in batches of up to
/// `max_batch`) until the log closes; returns `(offset, seq)` of each record
/// whose write returned `Ok`.
fn stress_writer(log: &Log<Rec>, w: u32, k: u32, max_batch: u32) -> Vec<(u64, u32, u32)> {
    let mut rng = u64::from(w) * 7 + 1;
    let mut ok = Vec::new();
    let mut seq = 0;
    while seq < k {
        rng = mix(rng);
        let n = if max_batch <= 1 || rng % 2 == 0 {
            1
        } else {
            (1 + (rng >> 8) as u32 % max_batch).min(k - seq)
        };
        let r = if n == 1 {
            log.write(Rec::new(w, seq)).map(|o| o..o + 1)
        } else {
            log.write_batch((seq..seq + n).map(|s| Rec::new(w, s)))
        };
        match r {
            Ok(range) => {
                assert_eq!(range.end - range.start, u64::from(n));
                ok.extend(range.zip(seq..).map(|(o, s)| (o, s, n)));
                seq += n;
            }
            Err(Error::Closed) => {
                // Closed for good, and nothing of it is written.
                assert_eq!(log.write(Rec::new(w, seq)), Err(Error::Closed));
                assert_eq!(
                    log.write_batch([Rec::new(w, seq), Rec::new(w, seq + 1)]),
                    Err(Error::Closed)
                );
                break;
            }
            Err(e) => panic!("writer {w}: {e:?}"),
        }
    }
    ok
}

fn stress_one(seg: usize, hist: usize, writers: u32, k: u32, close_at: u64) -> Duration {
    let t0 = Instant::now();
    let log: Log<Rec> = Log::builder()
        .segment_size(seg)
        .history_segments(hist)
        .build()
        .unwrap();
    let cap = (seg * (hist + 1)) as u32; // the largest batch
    let total = u64::from(writers) * u64::from(k);
    let n = writers as usize;
    let mut readers = vec![
        hold_iter(&log, n),
        hold_visit(&log, n, 3),
        hold_visit(&log, n, 64),
        hold_dropped(&log, n, total / 5),
        hold_dropped(&log, n, 1),
        hold_cancelled(&log, n, total / 4),
        hold_cancelled(&log, n, 0),
        not_holding(&log, n, false),
        not_holding(&log, n, true),
    ];
    readers.extend(async_readers(&log, n, total));
    let ws: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            // A batch that spans more than `H + 1` segments purges its own
            // first records, and waits for ever for a holder that has to read
            // them first (`a_batch_that_would_purge_its_own_records_...`):
            // at most `H * S + 1` records never does, wherever it starts.
            let max_batch = cap.min(5).min((hist * seg + 1) as u32);
            thread::spawn(move || stress_writer(&log, w, k, max_batch))
        })
        .collect();
    // Close mid-run, once the writers have got that far (or at their end).
    let closer = {
        let log = log.clone();
        thread::spawn(move || {
            while log.next_offset() < close_at {
                thread::sleep(Duration::from_micros(200));
            }
            log.close();
        })
    };
    let ok: Vec<Vec<(u64, u32, u32)>> = ws.into_iter().map(|h| h.join().unwrap()).collect();
    closer.join().unwrap();
    let end = log.next_offset();
    // Every write that returned Ok is below the end, each offset once: the
    // log below the end is exactly the Ok writes.
    let mut at: Vec<Option<(u32, u32)>> = vec![None; end as usize];
    for (w, writes) in ok.iter().enumerate() {
        for &(o, seq, n) in writes {
            assert!(
                o < end,
                "an Ok write at {o} (writer {w}, a write of {n}) past the end {end}"
            );
            assert!(
                at[o as usize].replace((w as u32, seq)).is_none(),
                "{o} twice"
            );
        }
    }
    assert!(at.iter().all(Option::is_some), "a hole below the end {end}");
    let at: Vec<(u32, u32)> = at.into_iter().map(Option::unwrap).collect();
    let mut full = 0;
    for r in readers {
        match r.join().unwrap() {
            Outcome::Full(recs) => {
                assert_eq!(recs, at, "a holding stream that read to the end");
                full += 1;
            }
            Outcome::Prefix(recs) => assert_eq!(recs[..], at[..recs.len()]),
            Outcome::Strict(next, fell_behind) => assert!(fell_behind || next == end),
            Outcome::Skip(next) => assert_eq!(next, end),
        }
    }
    assert!(full >= 3);
    assert_eq!(log.hold_count(), 0, "seg {seg} hist {hist}");
    assert_eq!(log.waiter_count(), 0, "seg {seg} hist {hist}");
    t0.elapsed()
}

/// Several writers (single writes and batches), holding streams of every
/// kind (some dropped, some cancelled while idle mid-run), non-holding
/// streams, tiny segments, and a close mid-run.
#[test]
fn stress_holds_with_tiny_segments_drops_cancels_and_close() {
    within(300, "hold stress", || {
        let (writers, k) = (3u32, 2_000u32);
        let total = u64::from(writers * k);
        // HOLD_STRESS_ONLY=<S><H> (two digits) runs that one 30 times.
        let configs: Vec<(usize, usize)> = match std::env::var("HOLD_STRESS_ONLY") {
            Ok(c) => {
                let d = |i: usize| usize::from(c.as_bytes()[i] - b'0');
                vec![(d(0), d(1)); 30]
            }
            Err(_) => vec![(1, 0), (1, 2), (2, 1), (3, 0), (4, 2), (4, 0), (2, 2)],
        };
        for (i, &(seg, hist)) in configs.iter().enumerate() {
            // Close at 60 % to 100 % of the total (100 %: after the writers).
            let close_at = total * (6 + i as u64 % 5) / 10;
            let took = stress_one(seg, hist, writers, k, close_at);
            eprintln!(
                "hold stress: segment {seg}, history {hist}, close at {close_at}: {took:.2?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------
// 3. Close releases a blocked writer.

/// A log of segment 2, history 1, with 4 records written and a holding
/// stream that has read none: the next write would purge what it holds.
fn held_full(exclusive: bool) -> (Option<Writer<u64>>, Log<u64>, memlog::Stream<u64>) {
    let b = Log::builder().segment_size(2).history_segments(1);
    let (mut w, log) = if exclusive {
        let (w, log) = b.build_exclusive().unwrap();
        (Some(w), log)
    } else {
        (None, b.build().unwrap())
    };
    let s = log.stream(0).on_lag(Lag::Hold);
    let batch = (0..4).map(v);
    match &mut w {
        Some(w) => assert_eq!(w.write_batch(batch), Ok(0..4)),
        None => assert_eq!(log.write_batch(batch), Ok(0..4)),
    }
    assert_eq!(log.hold_count(), 1);
    (w, log, s)
}

/// Which write a blocked writer makes.
#[derive(Clone, Copy, Debug)]
enum Blocked {
    Write,
    Batch,
    Timeout,
}

/// Starts a writer thread making a write that would purge offsets 0 and 1
/// (held); returns what it returned.
/// What a blocked writer's thread returns: its result, and its `Writer`.
type BlockedWriter = thread::JoinHandle<(Result<u64, Error>, Option<Writer<u64>>)>;

fn blocked_write(w: Option<Writer<u64>>, log: &Log<u64>, how: Blocked) -> BlockedWriter {
    let log = log.clone();
    thread::spawn(move || {
        let mut w = w;
        let r = match (&mut w, how) {
            (Some(w), Blocked::Write) => w.write(v(4)),
            (Some(w), Blocked::Batch) => w.write_batch([v(4), v(5)]).map(|r| r.start),
            (Some(w), Blocked::Timeout) => w.write_timeout(v(4), Duration::from_secs(600)),
            (None, Blocked::Write) => log.write(v(4)),
            (None, Blocked::Batch) => log.write_batch([v(4), v(5)]).map(|r| r.start),
            (None, Blocked::Timeout) => log.write_timeout(v(4), Duration::from_secs(600)),
        };
        (r, w)
    })
}

#[test]
fn close_releases_a_blocked_writer() {
    for exclusive in [false, true] {
        for how in [Blocked::Write, Blocked::Batch, Blocked::Timeout] {
            within(120, "close releases a blocked writer", move || {
                let (w, log, mut s) = held_full(exclusive);
                let writer = blocked_write(w, &log, how);
                // Likely blocked by now; closed before or after it blocks,
                // the write must fail the same way.
                thread::sleep(Duration::from_millis(20));
                log.close();
                let (r, w) = writer.join().unwrap();
                assert_eq!(r, Err(Error::Closed), "{how:?}, exclusive {exclusive}");
                // The end is where the held segment's successor would start.
                assert_eq!(log.next_offset(), 4);
                match w {
                    Some(mut w) => {
                        assert_eq!(w.write(9), Err(Error::Closed));
                        assert_eq!(w.try_write(9), Err(Error::Closed));
                        assert_eq!(w.write_batch([9]), Err(Error::Closed));
                        assert_eq!(w.next_offset(), 4);
                    }
                    None => {
                        assert_eq!(log.write(9), Err(Error::Closed));
                        assert_eq!(log.try_write(9), Err(Error::Closed));
                        assert_eq!(log.write_batch([9]), Err(Error::Closed));
                    }
                }
                assert_eq!(log.read(4), Err(Error::FutureOffset));
                let mut next = 0;
                for r in &mut s {
                    let r = r.unwrap();
                    check_v(&mut next, r.offset, r.data);
                }
                assert_eq!(next, 4);
                assert_eq!(s.ended(), Some(&Error::Closed));
                assert_eq!(log.hold_count(), 0);
            });
        }
    }
}

/// A close with a writer blocked in a later segment than another write
/// that lands: the end is the held segment's successor's start, and every
/// offset below it is readable.
#[test]
fn close_with_a_hold_mid_segment_ends_at_the_segment_it_forbids() {
    within(120, "close mid segment", || {
        let log: Log<u64> = Log::builder()
            .segment_size(4)
            .history_segments(0)
            .build()
            .unwrap();
        let mut s = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(log.write_batch((0..4).map(v)), Ok(0..4));
        let mut next = 0;
        // Reads 2 of segment 0's 4: it still holds segment 0.
        assert_eq!(s.visit(2, |r| check_v(&mut next, r.offset, *r.data)), Ok(2));
        assert_eq!(log.try_write(v(4)), Err(Error::Full));
        let writer = {
            let log = log.clone();
            thread::spawn(move || log.write(v(4)))
        };
        thread::sleep(Duration::from_millis(20));
        log.close();
        assert_eq!(writer.join().unwrap(), Err(Error::Closed));
        assert_eq!(log.next_offset(), 4);
        loop {
            match s.visit(3, |r| check_v(&mut next, r.offset, *r.data)) {
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e, Error::Closed);
                    break;
                }
            }
        }
        assert_eq!(next, 4);
    });
}

/// Two writers blocked at close: one on the hold (its segment is forbidden),
/// one behind it, waiting for the first one's offset to be published before
/// it may install its own segment. Both offsets are past the end the close
/// fixes, so both writes fail `Closed`; neither may wait for ever (the
/// second used to spin on the mark for an offset that is never published).
#[test]
fn close_releases_a_writer_queued_behind_a_held_one() {
    for writers in [2u64, 3] {
        within(120, "close releases a queued writer", move || {
            let log: Log<u64> = Log::builder()
                .segment_size(1)
                .history_segments(0)
                .build()
                .unwrap();
            let mut s = log.stream(0).on_lag(Lag::Hold);
            assert_eq!(log.write(v(0)), Ok(0));
            let blocked: Vec<_> = (1..=writers)
                .map(|_| {
                    let log = log.clone();
                    thread::spawn(move || log.write(7))
                })
                .collect();
            // Every writer has claimed its offset (1..=writers) and waits.
            while log.next_offset() < 1 + writers {
                thread::sleep(Duration::from_millis(1));
            }
            log.close();
            for b in blocked {
                assert_eq!(b.join().unwrap(), Err(Error::Closed));
            }
            assert_eq!(log.next_offset(), 1);
            let r = s.next().unwrap().unwrap();
            assert_eq!((r.offset, r.data), (0, v(0)));
            assert_eq!(s.next(), None);
            assert_eq!(s.ended(), Some(&Error::Closed));
        });
    }
}

/// A batch no larger than the log's capacity (`S * (H + 1)`) but not
/// aligned to a segment spans `H + 2` segments: installing its last one
/// purges its own first records. A caught-up holding stream would have to
/// read those before the batch landed, so while a hold forbids it such a
/// batch is refused at once with `BatchTooLarge` (the longest batch that
/// never purges its own records: `S * H + 1`), by `write_batch` and
/// `try_write_batch`, on `Log` and `Writer`, instead of waiting for ever
/// (found here: it used to). Written one record at a time, it lands, and
/// the holder gets every record.
#[test]
fn a_batch_that_would_purge_its_own_records_is_refused_while_held() {
    for exclusive in [false, true] {
        let mut w = W::new(exclusive, 2, 0);
        let log = w.log.clone();
        let mut s = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(w.write(0), Ok(0));
        let mut next = 0;
        drain_ready(&mut s, &mut next);
        // Offsets 1 and 2: segments 0 and 1; installing 1 purges offset 1.
        let refused = Err(Error::BatchTooLarge { len: 2, max: 1 });
        assert_eq!(w.write_batch(1..3), refused, "exclusive {exclusive}");
        assert_eq!(w.try_write_batch(1..3), refused);
        assert_eq!(log.next_offset(), 1, "nothing written");
        let reader = thread::spawn(move || {
            let mut next = 1;
            for r in s {
                let r = r.unwrap();
                check_v(&mut next, r.offset, r.data);
            }
            next
        });
        let w = within(
            30,
            "one record at a time, with a holder reading on",
            move || {
                assert_eq!(w.write(1), Ok(1));
                assert_eq!(w.write(2), Ok(2));
                w
            },
        );
        drop(w);
        log.close();
        assert_eq!(reader.join().unwrap(), 3);
    }
}

/// After close every write fails `Closed`, at once, also where a hold set
/// after the close would forbid its segment (found by
/// proptests/tests/hold_model.rs: the exclusive writer's `try_write` said
/// `Full`, and its `write_timeout` waited out its timeout).
#[test]
fn after_close_every_write_is_closed_even_where_a_hold_forbids_it() {
    for exclusive in [false, true] {
        let mut w = W::new(exclusive, 1, 0);
        let log = w.log.clone();
        assert_eq!(w.write(0), Ok(0));
        log.close();
        let _held = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(w.try_write(1), Err(Error::Closed), "exclusive {exclusive}");
        assert_eq!(w.try_write_batch(1..2), Err(Error::Closed));
        let t = Instant::now();
        assert_eq!(
            w.write_timeout(1, Duration::from_secs(60)),
            Err(Error::Closed)
        );
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "it waited for a holder after close"
        );
        assert_eq!(w.write(1), Err(Error::Closed));
        #[cfg(feature = "async")]
        {
            use std::future::Future;
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let r = match &mut w.w {
                Some(wr) => std::pin::pin!(wr.write_async(1)).poll(&mut cx),
                None => std::pin::pin!(log.write_async(1)).poll(&mut cx),
            };
            assert_eq!(r, std::task::Poll::Ready(Err(Error::Closed)));
        }
        assert_eq!(log.next_offset(), 1);
    }
}

// ---------------------------------------------------------------------------
// 4. Drop and cancel release blocked writers.

#[test]
fn drop_and_cancel_release_blocked_writers() {
    for exclusive in [false, true] {
        for how in [Blocked::Write, Blocked::Batch, Blocked::Timeout] {
            for cancel in [false, true] {
                within(120, "drop or cancel releases a blocked writer", move || {
                    let (w, log, s) = held_full(exclusive);
                    let writer = blocked_write(w, &log, how);
                    thread::sleep(Duration::from_millis(10));
                    // The stream idles on another thread while it is
                    // cancelled, or is dropped there.
                    let canceller = s.canceller();
                    let (tx, rx) = mpsc::channel::<()>();
                    let holder = thread::spawn(move || {
                        let mut s = s;
                        if cancel {
                            rx.recv().unwrap();
                            assert_eq!(s.next(), Some(Err(Error::Cancelled)));
                            assert_eq!(s.next(), None);
                        }
                    });
                    if cancel {
                        canceller.cancel();
                    }
                    let (r, _w) = writer.join().unwrap();
                    assert_eq!(r, Ok(4), "{how:?}, exclusive {exclusive}, cancel {cancel}");
                    tx.send(()).ok();
                    holder.join().unwrap();
                    assert_eq!(log.read(4).unwrap().data, v(4));
                    assert_eq!(log.read(3).unwrap().data, v(3));
                    assert_eq!(log.hold_count(), 0);
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 5. try_write, write_timeout, try_write_batch.

/// One write path, on a shared log or through the exclusive writer.
struct W {
    w: Option<Writer<u64>>,
    log: Log<u64>,
}

impl W {
    fn new(exclusive: bool, seg: usize, hist: usize) -> Self {
        let b = Log::builder().segment_size(seg).history_segments(hist);
        if exclusive {
            let (w, log) = b.build_exclusive().unwrap();
            W { w: Some(w), log }
        } else {
            W {
                w: None,
                log: b.build().unwrap(),
            }
        }
    }
    fn try_write(&mut self, o: u64) -> Result<u64, Error> {
        match &mut self.w {
            Some(w) => w.try_write(v(o)),
            None => self.log.try_write(v(o)),
        }
    }
    fn write_timeout(&mut self, o: u64, d: Duration) -> Result<u64, Error> {
        match &mut self.w {
            Some(w) => w.write_timeout(v(o), d),
            None => self.log.write_timeout(v(o), d),
        }
    }
    fn write_batch(&mut self, r: std::ops::Range<u64>) -> Result<std::ops::Range<u64>, Error> {
        match &mut self.w {
            Some(w) => w.write_batch(r.map(v)),
            None => self.log.write_batch(r.map(v)),
        }
    }
    fn try_write_batch(&mut self, r: std::ops::Range<u64>) -> Result<std::ops::Range<u64>, Error> {
        match &mut self.w {
            Some(w) => w.try_write_batch(r.map(v)),
            None => self.log.try_write_batch(r.map(v)),
        }
    }
    fn write(&mut self, o: u64) -> Result<u64, Error> {
        match &mut self.w {
            Some(w) => w.write(v(o)),
            None => self.log.write(v(o)),
        }
    }
}

#[test]
fn try_write_and_write_timeout_refuse_then_succeed() {
    for exclusive in [false, true] {
        let mut w = W::new(exclusive, 2, 1);
        let log = w.log.clone();
        let mut s = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(w.try_write_batch(0..3), Ok(0..3));
        assert_eq!(w.try_write(3), Ok(3));
        // Writing 4 opens segment 2, purging segment 0, which `s` holds.
        let full = |w: &mut W, o: u64| {
            assert_eq!(w.try_write(o), Err(Error::Full));
            assert_eq!(w.try_write_batch(o..o + 1), Err(Error::Full));
            assert_eq!(w.try_write_batch(o..o + 2), Err(Error::Full));
            let t = Instant::now();
            let d = Duration::from_millis(10);
            assert_eq!(w.write_timeout(o, d), Err(Error::Timeout));
            assert!(t.elapsed() >= d);
            assert_eq!(w.write_timeout(o, Duration::ZERO), Err(Error::Timeout));
            // Nothing written.
            assert_eq!(log.next_offset(), o);
            assert_eq!(log.read(o), Err(Error::FutureOffset));
        };
        full(&mut w, 4);
        // A batch that stays in installed segments is no purge.
        let mut next = 0;
        // Read 1 of segment 0: still held.
        assert_eq!(s.visit(1, |r| check_v(&mut next, r.offset, *r.data)), Ok(1));
        full(&mut w, 4);
        // Read segment 0 to its end: segment 2 may be installed.
        assert_eq!(s.visit(1, |r| check_v(&mut next, r.offset, *r.data)), Ok(1));
        assert_eq!(w.try_write(4), Ok(4));
        assert_eq!(w.write_timeout(5, Duration::ZERO), Ok(5));
        full(&mut w, 6);
        assert_eq!(s.visit(2, |r| check_v(&mut next, r.offset, *r.data)), Ok(2));
        assert_eq!(w.try_write_batch(6..8), Ok(6..8));
        full(&mut w, 8);
        // The iterator reads ahead every ready record, but holds what it
        // has not yielded: its hold moves with the records it yields.
        assert_eq!(s.next().unwrap().unwrap().offset, 4);
        full(&mut w, 8);
        for o in 5..8 {
            assert_eq!(s.next().unwrap().unwrap().offset, o);
        }
        assert_eq!(w.write_timeout(8, Duration::from_secs(600)), Ok(8));
        // Yielded up to 8: segment 4 held, segment 5 may open, 6 not.
        assert_eq!(w.try_write(9), Ok(9));
        assert_eq!(w.try_write_batch(10..12), Ok(10..12));
        full(&mut w, 12);
        // A plain write waits for the holder: another thread reads on.
        let reader = thread::spawn(move || {
            let mut got = vec![];
            for r in &mut s {
                got.push(r.unwrap());
            }
            got
        });
        for o in 12..40 {
            assert_eq!(w.write(o), Ok(o));
        }
        log.close();
        let got = reader.join().unwrap();
        let mut next = 8;
        for r in got {
            check_v(&mut next, r.offset, r.data);
        }
        assert_eq!(next, 40);
        assert_eq!(log.hold_count(), 0);
    }
}

/// `write_timeout` that waits, and goes on when another thread's holding
/// stream reads on before the deadline.
#[test]
fn write_timeout_succeeds_when_the_holder_reads_on() {
    for exclusive in [false, true] {
        within(120, "write_timeout waits for the holder", move || {
            let mut w = W::new(exclusive, 2, 0);
            let log = w.log.clone();
            let mut s = log.stream(0).on_lag(Lag::Hold);
            assert_eq!(w.try_write_batch(0..2), Ok(0..2));
            let (tx, rx) = mpsc::channel::<()>();
            let reader = thread::spawn(move || {
                rx.recv().unwrap();
                let mut next = 0;
                for r in &mut s {
                    let r = r.unwrap();
                    check_v(&mut next, r.offset, r.data);
                }
                next
            });
            tx.send(()).unwrap();
            for o in 2..200 {
                assert_eq!(w.write_timeout(o, Duration::from_secs(600)), Ok(o));
            }
            drop(w);
            log.close();
            assert_eq!(reader.join().unwrap(), 200);
        });
    }
}

// ---------------------------------------------------------------------------
// 6. Holds set on purged and retained offsets.

#[test]
fn a_hold_on_a_purged_offset_ends_out_of_range() {
    let log: Log<u64> = Log::builder()
        .start_offset(10)
        .segment_size(2)
        .history_segments(0)
        .build()
        .unwrap();
    assert_eq!(log.write_batch((0..2).map(v)), Ok(10..12));
    assert_eq!(log.write_batch((2..4).map(v)), Ok(12..14)); // purges 10, 11
    for at in [5, 10, 11] {
        let mut s = log.stream(at).on_lag(Lag::Hold);
        assert_eq!(log.hold_count(), 0, "no hold on purged {at}");
        assert_eq!(s.next(), Some(Err(Error::OutOfRange)));
        assert_eq!(s.next(), None);
        assert_eq!(s.try_recv(), Err(Error::OutOfRange));
    }
    // Writers are not held back by them.
    assert_eq!(log.try_write(9), Ok(14));
}

/// A hold set on a retained offset holds it, however the writes before it
/// went: in particular after writes that were refused (`Full`), timed out,
/// or were dropped pending, none of which purged anything.
#[test]
fn a_hold_on_a_retained_offset_never_falls_behind() {
    #[derive(Clone, Copy, Debug)]
    enum Before {
        Nothing,
        TryWrite,
        TryWriteBatch,
        WriteTimeout,
        WriterTryWrite,
        #[cfg(feature = "async")]
        WriteAsyncDropped,
    }
    let befores = [
        Before::Nothing,
        Before::TryWrite,
        Before::TryWriteBatch,
        Before::WriteTimeout,
        Before::WriterTryWrite,
        #[cfg(feature = "async")]
        Before::WriteAsyncDropped,
    ];
    for before in befores {
        within(120, "a hold on a retained offset", move || {
            let exclusive = matches!(before, Before::WriterTryWrite);
            let mut w = W::new(exclusive, 2, 0);
            let log = w.log.clone();
            let mut first = log.stream(0).on_lag(Lag::Hold);
            assert_eq!(w.try_write_batch(0..2), Ok(0..2));
            // A write that would purge 0 and 1, and gives up.
            match before {
                Before::Nothing => {}
                Before::TryWrite | Before::WriterTryWrite => {
                    assert_eq!(w.try_write(2), Err(Error::Full))
                }
                Before::TryWriteBatch => assert_eq!(w.try_write_batch(2..3), Err(Error::Full)),
                Before::WriteTimeout => {
                    assert_eq!(w.write_timeout(2, Duration::ZERO), Err(Error::Timeout));
                    assert_eq!(
                        w.write_timeout(2, Duration::from_millis(5)),
                        Err(Error::Timeout)
                    );
                }
                #[cfg(feature = "async")]
                Before::WriteAsyncDropped => {
                    use std::future::Future;
                    let fut = std::pin::pin!(log.write_async(v(2)));
                    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                    assert!(fut.poll(&mut cx).is_pending());
                }
            }
            assert_eq!(log.read(0).unwrap().data, v(0), "0 is retained");
            let second = log.stream(0).on_lag(Lag::Hold);
            assert_eq!(log.hold_count(), 2, "{before:?}: the second hold failed");
            // The first holder goes away; the second must still hold.
            let mut next = 0;
            drain_ready(&mut first, &mut next);
            drop(first);
            let reader = thread::spawn(move || {
                let mut next = 0;
                for r in second {
                    let r = r.expect("a hold set on a retained offset never falls behind");
                    check_v(&mut next, r.offset, r.data);
                }
                next
            });
            for o in 2..50 {
                assert_eq!(w.write(o), Ok(o));
            }
            drop(w);
            log.close();
            assert_eq!(reader.join().unwrap(), 50, "{before:?}");
        });
    }
}

// ---------------------------------------------------------------------------
// 7. Async.

#[cfg(feature = "async")]
#[test]
fn write_async_and_a_holding_task_share_one_current_thread_runtime() {
    use futures_util::StreamExt;
    for exclusive in [false, true] {
        within(120, "write_async on one thread", move || {
            const N: u64 = 10_000;
            let b = Log::builder().segment_size(4).history_segments(1); // retains 8
            let (mut w, log): (Option<Writer<u64>>, Log<u64>) = if exclusive {
                let (w, log) = b.build_exclusive().unwrap();
                (Some(w), log)
            } else {
                (None, b.build().unwrap())
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let read = rt.block_on(async {
                let mut held = log.stream_async(0).on_lag(Lag::Hold);
                let reader = tokio::spawn(async move {
                    let mut next = 0;
                    while let Some(r) = held.next().await {
                        let r = r.expect("a holding stream never errs");
                        check_v(&mut next, r.offset, r.data);
                    }
                    next
                });
                let mut visited = log.stream_async(0).on_lag(Lag::Hold);
                let visitor = tokio::spawn(async move {
                    let mut next = 0;
                    while visited
                        .visit(3, |r| check_v(&mut next, r.offset, *r.data))
                        .await
                        .is_ok()
                    {}
                    assert_eq!(visited.ended(), Some(&Error::Closed));
                    next
                });
                for o in 0..N {
                    let r = match &mut w {
                        Some(w) => w.write_async(v(o)).await,
                        None => log.write_async(v(o)).await,
                    };
                    assert_eq!(r, Ok(o));
                }
                log.close();
                (reader.await.unwrap(), visitor.await.unwrap())
            });
            assert_eq!(read, (N, N));
            assert_eq!(log.hold_count(), 0);
            assert_eq!(log.waiter_count(), 0);
        });
    }
}

#[cfg(feature = "async")]
#[test]
fn write_async_dropped_while_pending_writes_nothing_and_is_woken() {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    for exclusive in [false, true] {
        let mut w = W::new(exclusive, 2, 0);
        let log = w.log.clone();
        let mut s = log.stream(0).on_lag(Lag::Hold);
        assert_eq!(w.try_write_batch(0..2), Ok(0..2));
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        {
            let mut fut = match &mut w.w {
                Some(wr) => Box::pin(wr.write_async(77))
                    as std::pin::Pin<Box<dyn Future<Output = Result<u64, Error>>>>,
                None => Box::pin(log.write_async(77)),
            };
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(log.next_offset(), 2);
            // The holder reads on: the pending write is woken, and would
            // land if polled; it is dropped instead.
            let mut next = 0;
            drain_ready(&mut s, &mut next);
            assert_eq!(next, 2);
            assert!(
                flag.0.load(Ordering::SeqCst),
                "a raise of the gate wakes the task"
            );
        }
        assert_eq!(log.next_offset(), 2, "a dropped write_async wrote nothing");
        assert_eq!(log.read(2), Err(Error::FutureOffset));
        assert_eq!(w.try_write(2), Ok(2));
        assert_eq!(w.try_write(3), Ok(3));
        assert_eq!(log.read(2).unwrap().data, v(2));
        // Pending again, then completed once the holder reads on.
        flag.0.store(false, Ordering::SeqCst);
        {
            let mut fut = match &mut w.w {
                Some(wr) => Box::pin(wr.write_async(v(4)))
                    as std::pin::Pin<Box<dyn Future<Output = Result<u64, Error>>>>,
                None => Box::pin(log.write_async(v(4))),
            };
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            let mut next = 2;
            drain_ready(&mut s, &mut next);
            assert_eq!(next, 4);
            assert!(flag.0.load(Ordering::SeqCst));
            assert_eq!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(4)));
        }
        assert_eq!(log.read(4).unwrap().data, v(4));
        drop(s);
        assert_eq!(log.hold_count(), 0);
    }
}

// ---------------------------------------------------------------------------
// 8. A thread that reads a holding stream and writes with try_write.

#[test]
fn reading_a_holding_stream_and_try_writing_on_one_thread_never_deadlocks() {
    for exclusive in [false, true] {
        within(120, "one thread reads and try_writes", move || {
            let mut w = W::new(exclusive, 4, 1);
            let log = w.log.clone();
            let mut own = log.stream(0).on_lag(Lag::Hold);
            let (mut next, mut fulls) = (0, 0);
            for o in 0..5_000 {
                loop {
                    match w.try_write(o) {
                        Ok(got) => {
                            assert_eq!(got, o);
                            break;
                        }
                        Err(Error::Full) => {
                            fulls += 1;
                            drain_ready(&mut own, &mut next);
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            drain_ready(&mut own, &mut next);
            assert_eq!(next, 5_000);
            assert!(fulls > 0);
            log.close();
            assert_eq!(own.next(), None);
        });
    }
}

// ---------------------------------------------------------------------------
// 9. A hold never at stake changes nothing.

#[test]
fn a_hold_never_at_stake_changes_nothing() {
    let plain: Log<u64> = Log::builder()
        .segment_size(4)
        .history_segments(2)
        .build()
        .unwrap();
    let held: Log<u64> = Log::builder()
        .segment_size(4)
        .history_segments(2)
        .build()
        .unwrap();
    let mut holder = held.stream(0).on_lag(Lag::Hold);
    let mut strict = [plain.stream(0), held.stream(0)];
    let mut next = 0;
    let mut o = 0;
    for round in 0..500u64 {
        let n = round % 5 + 1;
        let (a, b) = match round % 3 {
            0 => (
                plain.write_batch((o..o + n).map(v)),
                held.write_batch((o..o + n).map(v)),
            ),
            1 => (
                plain.try_write_batch((o..o + n).map(v)),
                held.try_write_batch((o..o + n).map(v)),
            ),
            _ => {
                let a = plain.write(v(o)).map(|x| x..x + 1);
                let b = held.try_write(v(o)).map(|x| x..x + 1);
                (a, b)
            }
        };
        assert_eq!(a, b);
        o = a.unwrap().end;
        assert_eq!(plain.range(), held.range());
        assert_eq!(plain.next_offset(), held.next_offset());
        for at in o.saturating_sub(20)..o + 2 {
            let key = |r: memlog::Record<u64>| (r.offset, r.data);
            assert_eq!(plain.read(at).map(key), held.read(at).map(key));
        }
        drain_ready(&mut holder, &mut next);
        assert_eq!(next, o);
        // A non-holding stream reads the same on both.
        if round % 7 == 0 {
            let [p, h] = &mut strict;
            loop {
                match (p.try_recv(), h.try_recv()) {
                    (Ok(x), Ok(y)) => assert_eq!((x.offset, x.data), (y.offset, y.data)),
                    (x, y) => {
                        assert_eq!(x.map(|r| r.offset), y.map(|r| r.offset));
                        break;
                    }
                }
            }
        }
    }
    assert_eq!(held.hold_count(), 1);
    plain.close();
    held.close();
    assert_eq!(plain.next_offset(), held.next_offset());
}

/// Holds set, moved, released (drop, cancel, another `Lag`) many times:
/// nothing is left behind, and a writer that drains its own holding streams
/// before each write never waits.
#[test]
fn holds_come_and_go_and_leave_nothing_behind() {
    within(120, "holds come and go", || {
        let log: Log<u64> = Log::builder()
            .segment_size(2)
            .history_segments(0)
            .build()
            .unwrap();
        let mut streams: Vec<(memlog::Stream<u64>, u64)> = Vec::new();
        for i in 0..300u64 {
            for (s, next) in &mut streams {
                drain_ready(s, next);
            }
            assert_eq!(log.write(v(i)), Ok(i));
            // On the record just written: retained.
            streams.push((log.stream(i).on_lag(Lag::Hold), i));
            assert_eq!(log.hold_count(), streams.len());
            if streams.len() > 3 {
                let (mut s, mut next) = streams.remove(0);
                drain_ready(&mut s, &mut next);
                assert_eq!(next, i + 1);
                match i % 3 {
                    0 => drop(s),
                    1 => {
                        s.canceller().cancel();
                        assert_eq!(s.try_recv(), Err(Error::Cancelled));
                    }
                    _ => drop(s.on_lag(Lag::End)),
                }
                assert_eq!(log.hold_count(), streams.len());
            }
        }
        drop(streams);
        assert_eq!(log.hold_count(), 0);
        assert_eq!(log.waiter_count(), 0);
    });
}
