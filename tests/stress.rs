//! Many threads on few cores: every reader checks every record.
//!
//! Scale with `MEMLOG_STRESS_SCALE` (default 1; e.g. 10 for a long run).
//! Figures are printed with `eprintln!` (`cargo test --test stress -- --nocapture`).

use memlog::{Error, Log};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

fn scale() -> u64 {
    std::env::var("MEMLOG_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(1)
}

/// One record: who wrote it, its place in the writer's sequence, the batch
/// it belongs to, and a checksum of all that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rec {
    w: u32,
    seq: u32,
    batch_first: u32,
    batch_len: u32,
    check: u64,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Rec {
    fn new(w: u32, seq: u32, batch_first: u32, batch_len: u32) -> Rec {
        let check = Self::sum(w, seq, batch_first, batch_len);
        Rec {
            w,
            seq,
            batch_first,
            batch_len,
            check,
        }
    }
    fn sum(w: u32, seq: u32, batch_first: u32, batch_len: u32) -> u64 {
        mix(mix((u64::from(w) << 32) | u64::from(seq))
            ^ ((u64::from(batch_first) << 32) | u64::from(batch_len)))
    }
    fn intact(&self) -> bool {
        self.check == Self::sum(self.w, self.seq, self.batch_first, self.batch_len)
            && self.seq >= self.batch_first
            && self.seq < self.batch_first + self.batch_len
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0.wrapping_add(0x9e37_79b9_7f4a_7c15));
        self.0
    }
}

/// Writes `k` records for writer `w`, half alone and half in batches of
/// 2..=max_batch (yielding after each write if `polite`); returns the (first offset, len) of each write.
fn write_all(log: &Log<Rec>, w: u32, k: u32, max_batch: u32, polite: bool) -> Vec<(u64, u32)> {
    let mut rng = Rng(u64::from(w) + 1);
    let mut seq = 0;
    let mut writes = Vec::new();
    while seq < k {
        let r = rng.next();
        let n = if r % 2 == 0 {
            1
        } else {
            (2 + (r >> 8) as u32 % (max_batch - 1)).min(k - seq)
        };
        if n == 1 {
            writes.push((log.write(Rec::new(w, seq, seq, 1)).unwrap(), 1));
        } else {
            let range = log
                .write_batch((seq..seq + n).map(|s| Rec::new(w, s, seq, n)))
                .unwrap();
            assert_eq!(range.end - range.start, u64::from(n));
            writes.push((range.start, n));
        }
        seq += n;
        if polite {
            // Let readers run, so that they keep up for a while on 2 cores.
            thread::yield_now();
        }
    }
    writes
}

/// Runs `writers` threads of `write_all` to completion; each one's writes.
fn run_writers(log: &Log<Rec>, writers: u32, k: u32, polite: bool) -> Vec<Vec<(u64, u32)>> {
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || write_all(&log, w, k, 16, polite))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// What a reader checks on each record; counts checks.
struct Checker {
    next_offset: u64,
    next_seq: Vec<u32>,
    prev: Option<Rec>,
    checks: u64,
    /// After a resume (a jump over purged records), sequences need only increase.
    resumed: bool,
}

impl Checker {
    fn new(writers: usize) -> Self {
        Checker {
            next_offset: 0,
            next_seq: vec![0; writers],
            prev: None,
            checks: 0,
            resumed: false,
        }
    }

    fn jump_to(&mut self, offset: u64) {
        assert!(offset > self.next_offset, "resume must move forward");
        self.next_offset = offset;
        self.prev = None;
        self.resumed = true;
    }

    fn check(&mut self, offset: u64, r: &Rec) {
        assert_eq!(offset, self.next_offset, "gap or duplicate");
        self.next_offset += 1;
        assert!(r.intact(), "torn record at {offset}: {r:?}");
        let w = r.w as usize;
        if self.resumed {
            assert!(
                r.seq >= self.next_seq[w],
                "writer {w} went back at {offset}"
            );
        } else {
            assert_eq!(
                r.seq, self.next_seq[w],
                "writer {w} out of order at {offset}"
            );
        }
        self.next_seq[w] = r.seq + 1;
        if r.seq != r.batch_first {
            // A batch member: its predecessor in the log is the previous member.
            if let Some(p) = self.prev {
                assert_eq!((p.w, p.seq), (r.w, r.seq - 1), "batch split at {offset}");
            } else {
                assert!(self.resumed, "batch member first at {offset}");
            }
        }
        self.prev = Some(*r);
        self.checks += 5;
    }
}

/// The earliest retained offset. `range()` is `None` for a moment when the
/// writers have opened a segment (purging the oldest) but not yet published
/// the first retained record: wait for it.
fn earliest(log: &Log<Rec>) -> u64 {
    loop {
        match log.range() {
            Some((first, _)) => return first,
            None => thread::yield_now(),
        }
    }
}

/// Every offset the writers were given, each once, dense from 0.
fn check_dense(all: &[Vec<(u64, u32)>], total: u64) {
    let mut seen = vec![false; total as usize];
    for writes in all {
        for &(o, n) in writes {
            for o in o..o + u64::from(n) {
                assert!(
                    !std::mem::replace(&mut seen[o as usize], true),
                    "offset {o} given twice"
                );
            }
        }
    }
    assert!(seen.iter().all(|&s| s), "offsets are not dense");
}

#[test]
fn stress_full_retention() {
    let writers = 32u32;
    let readers = 32usize;
    let k = 1_000 * scale() as u32;
    let total = u64::from(writers) * u64::from(k);
    let seg = 64usize;
    let log: Log<Rec> = Log::builder()
        .segment_size(seg)
        .history_segments(total as usize / seg + 1)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let reader_handles: Vec<_> = (0..readers)
        .map(|_| {
            let stream = log.stream(0);
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                for r in stream {
                    let r = r.expect("no error with full retention");
                    c.check(r.offset, &r.data);
                }
                c
            })
        })
        .collect();
    let all = run_writers(&log, writers, k, false);
    assert_eq!(log.next_offset(), total);
    log.close();
    assert_eq!(log.write(Rec::new(0, 0, 0, 1)), Err(Error::Closed));
    let mut checks = 0;
    for h in reader_handles {
        let c = h.join().unwrap();
        assert_eq!(c.next_offset, total, "reader ended early");
        assert!(c.next_seq.iter().all(|&s| s == k));
        checks += c.checks;
    }
    check_dense(&all, total);
    let batches: usize = all.iter().flatten().filter(|w| w.1 > 1).count();
    eprintln!(
        "stress_full_retention: {} threads ({writers} writers, {readers} stream readers), \
         {total} records ({batches} batches), segment {seg}, {} record reads, {checks} checks, {:.2?}",
        writers as usize + readers,
        total * readers as u64,
        t0.elapsed()
    );
    assert_eq!(log.range(), Some((0, total - 1)));
}

#[test]
fn stress_small_retention() {
    let writers = 16u32;
    let strict_readers = 12usize;
    let resuming_readers = 4usize;
    let k = 1_000 * scale() as u32;
    let total = u64::from(writers) * u64::from(k);
    let log: Log<Rec> = Log::builder()
        .segment_size(8)
        .history_segments(16)
        .build()
        .unwrap();
    let fell_behind = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    // Strict readers: a gapless prefix from 0, then exactly one OutOfRange
    // and None, or everything and None.
    let strict: Vec<_> = (0..strict_readers)
        .map(|_| {
            let mut stream = log.stream(0);
            let fell_behind = fell_behind.clone();
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                loop {
                    match stream.next() {
                        Some(Ok(r)) => c.check(r.offset, &r.data),
                        Some(Err(Error::OutOfRange)) => {
                            fell_behind.fetch_add(1, Ordering::Relaxed);
                            assert_eq!(stream.next(), None);
                            assert_eq!(stream.try_recv(), Err(Error::OutOfRange));
                            assert!(c.next_offset < total);
                            return (c, false);
                        }
                        Some(Err(e)) => panic!("unexpected {e:?}"),
                        None => {
                            assert_eq!(c.next_offset, total, "ended early without an error");
                            return (c, true);
                        }
                    }
                }
            })
        })
        .collect();
    // Resuming readers: on OutOfRange, jump to the earliest retained offset.
    let resuming: Vec<_> = (0..resuming_readers)
        .map(|_| {
            let log = log.clone();
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                let mut stream = log.stream(0);
                let mut resumes = 0u64;
                let mut read = 0u64;
                loop {
                    match stream.next() {
                        Some(Ok(r)) => {
                            c.check(r.offset, &r.data);
                            read += 1;
                        }
                        Some(Err(Error::OutOfRange)) => {
                            let first = earliest(&log);
                            c.jump_to(first);
                            stream = log.stream(first);
                            resumes += 1;
                        }
                        Some(Err(e)) => panic!("unexpected {e:?}"),
                        None => {
                            assert_eq!(c.next_offset, total);
                            return (c, resumes, read);
                        }
                    }
                }
            })
        })
        .collect();
    let all = run_writers(&log, writers, k, true);
    log.close();
    let mut checks = 0;
    let mut complete = 0;
    let mut prefix_records = 0;
    for h in strict {
        let (c, done) = h.join().unwrap();
        complete += usize::from(done);
        prefix_records += c.next_offset;
        checks += c.checks;
    }
    let (mut resumes, mut resumed_read) = (0, 0);
    for h in resuming {
        let (c, n, read) = h.join().unwrap();
        resumes += n;
        resumed_read += read;
        checks += c.checks;
    }
    check_dense(&all, total);
    assert_eq!(
        complete + fell_behind.load(Ordering::Relaxed) as usize,
        strict_readers
    );
    // Retained: the active segment (the last, full one) and 16 before it.
    assert_eq!(total % 8, 0);
    assert_eq!(log.range(), Some((total - 8 * 17, total - 1)));
    eprintln!(
        "stress_small_retention: {} threads ({writers} writers, {strict_readers} strict + \
         {resuming_readers} resuming readers), {total} records, retention 136; strict readers: \
         {complete} complete, {} fell behind after {prefix_records} records in all; resuming \
         readers: {resumes} resumes, {resumed_read} records; {checks} checks, {:.2?}",
        writers as usize + strict_readers + resuming_readers,
        fell_behind.load(Ordering::Relaxed),
        t0.elapsed()
    );
}

#[test]
fn stress_read_batch_pollers() {
    // Readers that poll with read_batch instead of streams, racing with
    // writers across constant purges; each batch read is a gapless run.
    let writers = 8u32;
    let k = 2_000 * scale() as u32;
    let total = u64::from(writers) * u64::from(k);
    let log: Log<Rec> = Log::builder()
        .segment_size(4)
        .history_segments(3)
        .build()
        .unwrap();
    let pollers: Vec<_> = (0..8)
        .map(|i| {
            let log = log.clone();
            thread::spawn(move || {
                let mut c = Checker::new(writers as usize);
                let mut out = Vec::new();
                let mut polls = 0u64;
                let max = [1usize, 3, 7, 64, usize::MAX][i % 5];
                loop {
                    out.clear();
                    polls += 1;
                    match log.read_batch(c.next_offset, &mut out, max) {
                        Ok(n) => {
                            assert!(n >= 1 && n <= max && n == out.len());
                            for r in &out {
                                c.check(r.offset, &r.data);
                            }
                        }
                        Err(Error::FutureOffset) => {
                            if log.is_closed()
                                && c.next_offset >= log.range().map_or(0, |r| r.1 + 1)
                            {
                                return (c, polls);
                            }
                            thread::yield_now();
                        }
                        Err(Error::OutOfRange) => {
                            c.jump_to(earliest(&log));
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        })
        .collect();
    let all = run_writers(&log, writers, k, true);
    log.close();
    let mut checks = 0;
    for h in pollers {
        let (c, _) = h.join().unwrap();
        assert_eq!(c.next_offset, total);
        checks += c.checks;
    }
    check_dense(&all, total);
    eprintln!("stress_read_batch_pollers: 16 threads, {total} records, {checks} checks");
}
