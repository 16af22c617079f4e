//! Payloads whose `Drop` panics, sleeps, or writes to the log it lives in,
//! purged while writers and readers run: the log never wedges, every record
//! is dropped exactly once, and every write that landed is readable until it
//! is purged.
//!
//! Purged records are dropped by whichever thread's memlog call collects
//! their segment (crossbeam-epoch's collector is global), so a panicking
//! `Drop` may surface in any test of this binary: each test here tolerates a
//! panic from any memlog call, and the rest of the suite lives in other
//! binaries.
//!
//! Scale with `MEMLOG_STRESS_SCALE`; figures with `--nocapture`.

mod support;

use memlog::{Error, Log};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::{collect, quiet_expected_panics, within, Bomb};

#[test]
fn purged_record_whose_drop_panics_never_wedges_the_log() {
    quiet_expected_panics();
    within(60, "writes with panicking drops", || {
        let live = Arc::new(AtomicU64::new(0));
        // Every write purges the previous record, whose drop panics.
        let log: Log<Bomb> = Log::builder()
            .segment_size(1)
            .history_segments(0)
            .build()
            .unwrap();
        let mut drop_panics = 0;
        for i in 0..2_000u64 {
            loop {
                let r = catch_unwind(AssertUnwindSafe(|| log.write(Bomb::new(&live, true))));
                match r {
                    Ok(offset) => {
                        assert_eq!(offset, Ok(i));
                        break;
                    }
                    // A purged record's drop panicked on this writer before
                    // its write did anything: nothing was written; retry.
                    Err(_) => {
                        drop_panics += 1;
                        assert_eq!(log.next_offset(), i, "a write that panicked wrote");
                    }
                }
            }
            assert_eq!(log.range(), Some((i, i)), "write {i} did not land");
            assert_eq!(log.next_offset(), i + 1);
            // Readers keep working, and so does the collector.
            if let Ok(r) = catch_unwind(AssertUnwindSafe(|| log.read(i).map(|r| r.offset))) {
                assert_eq!(r, Ok(i));
            }
        }
        // This thread saw some of the panics; the others surfaced on threads
        // of the other test, which collected the segments.
        let _ = drop_panics;
        assert!(
            support::BOMB_PANICS.load(Ordering::SeqCst) > 0,
            "no drop ever panicked: the test is blind"
        );
        let _ = catch_unwind(AssertUnwindSafe(move || drop(log)));
        settle(|| live.load(Ordering::SeqCst) == 0);
        assert_eq!(live.load(Ordering::SeqCst), 0, "records leaked");
    });
}

/// Collects (tolerating panicking drops) until `done`, boundedly.
fn settle(done: impl Fn() -> bool) {
    for i in 0..5_000 {
        if done() {
            return;
        }
        let _ = catch_unwind(collect);
        if i % 100 == 99 {
            thread::sleep(Duration::from_millis(1));
        } else {
            thread::yield_now();
        }
    }
}

fn scale() -> u64 {
    std::env::var("MEMLOG_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(1)
}

/// What a record's drop does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Nothing,
    Panic,
    Sleep,
    /// Writes a new record (of kind `Nothing`) to the same log.
    Echo,
}

/// Shared by every record of one run.
struct World {
    /// Live instances per id (originals and clones): never below 0, all 0
    /// at the end.
    live: Vec<AtomicI32>,
    next_id: AtomicU64,
    log: Mutex<Option<Log<Chaos>>>,
    /// Echo writes that landed, and that failed `Closed`.
    echoes: AtomicU64,
    echoes_refused: AtomicU64,
    drop_panics: AtomicU64,
}

struct Chaos {
    id: u64,
    act: Act,
    world: Arc<World>,
}

impl Chaos {
    fn new(world: &Arc<World>, act: Act) -> Chaos {
        let id = world.next_id.fetch_add(1, Ordering::Relaxed);
        Chaos::with_id(world, id, act)
    }

    fn with_id(world: &Arc<World>, id: u64, act: Act) -> Chaos {
        world.live[id as usize].fetch_add(1, Ordering::SeqCst);
        Chaos {
            id,
            act,
            world: Arc::clone(world),
        }
    }
}

impl Clone for Chaos {
    fn clone(&self) -> Self {
        // A reader's copy: dropping it must do nothing special.
        Chaos::with_id(&self.world, self.id, Act::Nothing)
    }
}

impl Drop for Chaos {
    fn drop(&mut self) {
        let before = self.world.live[self.id as usize].fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "record {} dropped twice", self.id);
        match self.act {
            Act::Nothing => {}
            Act::Panic => {
                if !thread::panicking() {
                    self.world.drop_panics.fetch_add(1, Ordering::Relaxed);
                    panic!("record {} panics in drop", self.id);
                }
            }
            Act::Sleep => thread::sleep(Duration::from_micros(200)),
            Act::Echo => {
                let log = self.world.log.lock().unwrap().clone();
                if let Some(log) = log {
                    // The echo's own purge may panic on this thread: the
                    // write still landed.
                    let echo = Chaos::new(&self.world, Act::Nothing);
                    match catch_unwind(AssertUnwindSafe(|| log.write(echo))) {
                        Ok(Err(Error::Closed)) => {
                            self.world.echoes_refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            r.unwrap();
                            self.world.echoes.fetch_add(1, Ordering::Relaxed);
                        }
                        // Another drop panicked before the write did
                        // anything: not written.
                        Err(_) => {}
                    }
                }
            }
        }
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }
}

/// 8 writers and 8 streaming readers on a log of 4-record segments with one
/// history segment; 3% of the records panic when dropped, 1% sleep, 5% write
/// to the log from their drop.
#[test]
fn sixteen_threads_with_panicking_sleeping_and_reentrant_drops() {
    const WRITERS: u64 = 8;
    const READERS: usize = 8;
    let per_writer = 2_500 * scale();
    quiet_expected_panics();
    within(600, "the drop chaos stress test", move || {
        let ids = (WRITERS * per_writer * 2 + 1_000) as usize;
        let world = Arc::new(World {
            live: (0..ids).map(|_| AtomicI32::new(0)).collect(),
            next_id: AtomicU64::new(0),
            log: Mutex::new(None),
            echoes: AtomicU64::new(0),
            echoes_refused: AtomicU64::new(0),
            drop_panics: AtomicU64::new(0),
        });
        let log: Log<Chaos> = Log::builder()
            .segment_size(4)
            .history_segments(1)
            .build()
            .unwrap();
        *world.log.lock().unwrap() = Some(log.clone());
        let started = Instant::now();

        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let log = log.clone();
                thread::spawn(move || read_all(&log))
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = log.clone();
                let world = Arc::clone(&world);
                thread::spawn(move || {
                    let mut rng = Rng(w + 1);
                    let (mut landed, mut checked, mut refused) = (0u64, 0u64, 0u64);
                    for _ in 0..per_writer {
                        let act = match rng.next() % 100 {
                            0..=2 => Act::Panic,
                            3 => Act::Sleep,
                            4..=8 => Act::Echo,
                            _ => Act::Nothing,
                        };
                        let rec = Chaos::new(&world, act);
                        let id = rec.id;
                        // A panic: a purged record's drop panicked before the
                        // write did anything; nothing was written.
                        let Ok(r) = catch_unwind(AssertUnwindSafe(|| log.write(rec))) else {
                            refused += 1;
                            continue;
                        };
                        let offset = r.unwrap();
                        landed += 1;
                        // Readable until purged: "not written yet" only while
                        // an earlier offset's writer has not published (it
                        // was preempted), never for good.
                        loop {
                            let Ok(read) = catch_unwind(AssertUnwindSafe(|| log.read(offset)))
                            else {
                                break;
                            };
                            match read {
                                Ok(got) => {
                                    assert_eq!((got.offset, got.data.id), (offset, id));
                                    checked += 1;
                                }
                                Err(Error::FutureOffset) => {
                                    thread::yield_now();
                                    continue;
                                }
                                Err(e) => assert_eq!(e, Error::OutOfRange, "offset {offset}"),
                            }
                            break;
                        }
                    }
                    (landed, checked, refused)
                })
            })
            .collect();
        let (mut landed, mut checked, mut refused) = (0, 0, 0);
        for w in writers {
            let (l, c, r) = w.join().unwrap();
            landed += l;
            checked += c;
            refused += r;
        }
        // Stop the echoes before closing, so the count below is exact.
        let log_handle = world.log.lock().unwrap().take().unwrap();
        log.close();
        let mut seen: HashMap<u64, u64> = HashMap::new();
        let mut reads = 0;
        let mut resumes = 0;
        for r in readers {
            let (records, n_resumes) = r.join().unwrap();
            reads += records.len();
            resumes += n_resumes;
            for (offset, id) in records {
                // Every reader saw the same record at an offset.
                assert_eq!(*seen.entry(offset).or_insert(id), id, "offset {offset}");
            }
        }
        // Readers are done, and with them every drain that could echo.
        let echoes = world.echoes.load(Ordering::Relaxed);
        let offsets = log.next_offset();
        assert_eq!(
            offsets,
            landed + echoes,
            "every write and every echo landed exactly once"
        );
        drop(log);
        drop(log_handle);
        let world2 = Arc::clone(&world);
        settle(move || world2.live.iter().all(|l| l.load(Ordering::SeqCst) == 0));
        for (id, l) in world.live.iter().enumerate() {
            assert_eq!(l.load(Ordering::SeqCst), 0, "record {id} leaked");
        }
        let panics = world.drop_panics.load(Ordering::Relaxed);
        assert!(panics > 0, "no drop panicked: the test is blind");
        eprintln!(
            "drop chaos: {offsets} records ({landed} writes, {echoes} echoes written from drops, \
             {} echoes refused after close), {panics} drop panics ({refused} writes refused by \
             one, nothing written), {checked} writes read back, \
             {reads} stream reads by {READERS} readers ({resumes} resumes after falling behind), \
             every record dropped exactly once, in {:.2?}",
            world.echoes_refused.load(Ordering::Relaxed),
            started.elapsed()
        );
    });
}

/// Follows the log until it is closed, resuming from the earliest retained
/// offset when it falls behind; checks offsets are consecutive between
/// resumes and returns `(offset, id)` of every record read and the resumes.
fn read_all(log: &Log<Chaos>) -> (Vec<(u64, u64)>, u64) {
    let mut s = log.stream(0);
    let mut next = 0;
    let mut got = Vec::new();
    let mut resumes = 0;
    loop {
        // A drop collected by this reader may panic: the stream goes on.
        let Ok(item) = catch_unwind(AssertUnwindSafe(|| s.next())) else {
            continue;
        };
        match item {
            Some(Ok(r)) => {
                assert_eq!(r.offset, next, "gap or duplicate");
                next += 1;
                got.push((r.offset, r.data.id));
            }
            Some(Err(Error::OutOfRange)) => {
                // Purged for real: the earliest retained offset is past it.
                let first = loop {
                    match log.range() {
                        Some((first, _)) => break first,
                        None => thread::yield_now(),
                    }
                };
                assert!(
                    first > next,
                    "OutOfRange at {next}, but {first} is retained"
                );
                next = first;
                resumes += 1;
                s = log.stream(first);
            }
            Some(Err(e)) => panic!("{e}"),
            None => return (got, resumes),
        }
    }
}
