//! Regression tests for the core's hardening (issue #7): user code that runs
//! where it must not, and edge inputs. Each test is named for what it
//! protects. Tests that would hang on a regression run their body on a
//! thread and fail after a generous deadline instead.

mod support;

use memlog::sharded::ShardedLog;
use memlog::{Error, Log};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use support::{collect, within, Bomb};

/// Counts the bytes this thread allocates, to show what an operation costs.
struct CountingAlloc;

thread_local! {
    static ALLOCATED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the count is
// a thread-local `Cell` that never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size()));
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn allocated() -> usize {
    ALLOCATED.with(|a| a.get())
}

// ------------------------------------------ user code in the claim window

/// A payload whose drop writes a record to the log it lives in.
struct Echo {
    log: Arc<Mutex<Option<Log<Echo>>>>,
    counts: Arc<(AtomicU64, AtomicU64)>,
    echo: bool,
}

impl Echo {
    fn new(
        log: &Arc<Mutex<Option<Log<Echo>>>>,
        counts: &Arc<(AtomicU64, AtomicU64)>,
        echo: bool,
    ) -> Echo {
        counts.0.fetch_add(1, Ordering::SeqCst);
        Echo {
            log: Arc::clone(log),
            counts: Arc::clone(counts),
            echo,
        }
    }
}

impl Clone for Echo {
    fn clone(&self) -> Self {
        Echo::new(&self.log, &self.counts, false)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.counts.1.fetch_add(1, Ordering::SeqCst);
        if self.echo {
            let log = self.log.lock().unwrap().clone();
            if let Some(log) = log {
                let _ = log.write(Echo::new(&self.log, &self.counts, false));
            }
        }
    }
}

#[test]
fn purged_record_whose_drop_writes_to_the_same_log_does_not_deadlock() {
    within(60, "writes with re-entrant drops", || {
        let slot = Arc::new(Mutex::new(None));
        let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        // Every write purges the previous record, whose drop writes again.
        let log: Log<Echo> = Log::builder()
            .segment_size(1)
            .history_segments(0)
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(log.clone());
        let mut last = None;
        for _ in 0..2_000 {
            let o = log.write(Echo::new(&slot, &counts, true)).unwrap();
            assert!(last < Some(o), "offsets go forward");
            last = Some(o);
            // Readable, or already purged by an echo written after it.
            match log.read(o) {
                Ok(r) => assert_eq!(r.offset, o),
                Err(e) => assert_eq!(e, Error::OutOfRange),
            }
        }
        // The echoes land too: the log comes to hold more than the 2000
        // writes. When is not fixed: a purged record is dropped once the
        // epoch moves on, which a thread of another test pinned in the same
        // process (descheduled, on a loaded machine) can hold back; so drive
        // the collector and write on until one has (`within` bounds it).
        while log.next_offset() <= 2_000 {
            collect();
            log.write(Echo::new(&slot, &counts, true)).unwrap();
            thread::yield_now();
        }
        slot.lock().unwrap().take();
        drop(log);
        for _ in 0..1_000 {
            if counts.0.load(Ordering::SeqCst) == counts.1.load(Ordering::SeqCst) {
                break;
            }
            collect();
            thread::yield_now();
        }
        assert_eq!(
            counts.0.load(Ordering::SeqCst),
            counts.1.load(Ordering::SeqCst),
            "every record dropped exactly once"
        );
    });
}

/// A waker that holds the last handle to another async stream of the same
/// log: dropping the waker drops that stream, which leaves the log's waiters.
#[cfg(feature = "async")]
#[test]
fn waker_dropped_outside_the_waiter_lock() {
    use std::pin::Pin;
    use std::task::{Context, Wake, Waker};

    /// Keeps the stream alive for as long as the waker lives.
    struct Holds(#[allow(dead_code)] Option<memlog::AsyncStream<u32>>);
    impl Wake for Holds {
        fn wake(self: Arc<Self>) {}
    }

    within(30, "re-registering a waker that owns a stream", || {
        let log: Log<u32> = Log::new();
        let mut a = log.stream_async(0);
        // `b` registers too, so that dropping it has an entry to remove.
        let mut b = log.stream_async(0);
        let noop = Waker::from(Arc::new(Holds(None)));
        let poll = |s: &mut memlog::AsyncStream<u32>, w: &Waker| {
            futures_util::Stream::poll_next(Pin::new(s), &mut Context::from_waker(w)).is_pending()
        };
        assert!(poll(&mut b, &noop));
        let holder = Waker::from(Arc::new(Holds(Some(b))));
        assert!(poll(&mut a, &holder));
        drop(holder);
        // `a`'s entry holds the last reference to `b`: replacing it drops `b`.
        assert!(poll(&mut a, &noop));
        assert_eq!(log.waiter_count(), 1);
        // And the same when the entry is removed rather than replaced.
        let mut c = log.stream_async(0);
        assert!(poll(&mut c, &noop));
        let holder = Waker::from(Arc::new(Holds(Some(c))));
        assert!(poll(&mut a, &holder));
        drop(holder);
        drop(a);
        assert_eq!(log.waiter_count(), 0);
    });
}

/// A waker whose `wake` panics ("in drop" keeps it out of the test output).
#[cfg(feature = "async")]
struct PanickingWake;

#[cfg(feature = "async")]
impl std::task::Wake for PanickingWake {
    fn wake(self: Arc<Self>) {
        panic!("waker panics, as in drop tests");
    }
}

/// Parks an async stream of `log` at offset 0 with a waker that panics.
#[cfg(feature = "async")]
fn park_panicking_waker(log: &Log<u32>) -> memlog::AsyncStream<u32> {
    use std::pin::Pin;
    use std::task::{Context, Waker};
    let mut s = log.stream_async(0);
    let w = Waker::from(Arc::new(PanickingWake));
    let p = futures_util::Stream::poll_next(Pin::new(&mut s), &mut Context::from_waker(&w));
    assert!(p.is_pending());
    s
}

/// With a panicking waker parked on `log` (segment size 2), writes a batch
/// over three segments through `write_batch` (which panics), then one more
/// record: every offset of both writes is published and readable.
#[cfg(feature = "async")]
fn batch_with_panicking_waker(
    log: &Log<u32>,
    mut write_batch: impl FnMut(Vec<u32>) -> Result<std::ops::Range<u64>, Error>,
) {
    support::quiet_expected_panics();
    let _s = park_panicking_waker(log);
    let r = catch_unwind(AssertUnwindSafe(|| write_batch(vec![0, 1, 2, 3, 4])));
    assert!(r.is_err(), "the waker's panic reaches the writer");
    assert_eq!(log.range(), Some((0, 4)), "the whole batch is published");
    assert_eq!(write_batch(vec![5]), Ok(5..6));
    let mut out = Vec::new();
    assert_eq!(log.read_batch(0, &mut out, 10), Ok(6));
    let got: Vec<u32> = out.iter().map(|r| r.data).collect();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
}

/// A batch that spans segments moves the mark once per segment; the wake-up
/// (user code) must wait until the whole batch is published, or a panicking
/// waker leaves the rest of the batch claimed and never published: the mark
/// stops there for ever.
#[cfg(feature = "async")]
#[test]
fn panicking_waker_leaves_no_offset_of_a_batch_unpublished() {
    let log: Log<u32> = Log::builder()
        .segment_size(2)
        .history_segments(2)
        .build()
        .unwrap();
    batch_with_panicking_waker(&log.clone(), |b| log.write_batch(b));
}

/// The same through the exclusive writer, whose next write stores the mark
/// past its own offset: if a batch were left half published, that store
/// would cover offsets never written (in a segment never installed):
/// `range()` would report them, `read` would answer `OutOfRange`, and a
/// stream at them would spin for ever between "ready" and `FutureOffset`.
#[cfg(feature = "async")]
#[test]
fn panicking_waker_leaves_no_offset_of_an_exclusive_batch_unpublished() {
    let (mut w, log) = Log::builder()
        .segment_size(2)
        .history_segments(2)
        .build_exclusive()
        .unwrap();
    batch_with_panicking_waker(&log, |b| w.write_batch(b));
}

/// `ShardedLog::close` closes shard after shard; a panicking waker in one
/// shard must not leave the later shards open, with their streams parked for
/// ever.
#[cfg(feature = "async")]
#[test]
fn sharded_close_closes_every_shard_despite_a_panicking_waker() {
    support::quiet_expected_panics();
    within(
        20,
        "a stream of a later shard after a panicking close",
        || {
            let log: ShardedLog<u32> = ShardedLog::builder().shards(2).build().unwrap();
            let _s = park_panicking_waker(log.shard(0));
            // Held from before the close: no later `shard(1)` call closes it.
            let shard1 = log.shard(1).clone();
            let mut blocked = shard1.stream(0);
            let reader = thread::spawn(move || blocked.next());
            while shard1.waiter_count() == 0 {
                thread::yield_now();
            }
            let r = catch_unwind(AssertUnwindSafe(|| log.close()));
            assert!(r.is_err(), "the waker's panic reaches close");
            assert!(shard1.is_closed());
            assert_eq!(reader.join().unwrap(), None, "the parked stream ended");
        },
    );
}

// ---------------------------------------------------------- edge inputs

/// Counts how often it was pulled.
struct Pulls<I> {
    inner: I,
    pulls: Arc<AtomicUsize>,
}

impl<I: Iterator> Iterator for Pulls<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.pulls.fetch_add(1, Ordering::Relaxed);
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

#[test]
fn write_batch_pulls_at_most_capacity_plus_one_items() {
    let log: Log<u64> = Log::builder()
        .segment_size(1024)
        .history_segments(1)
        .build()
        .unwrap();
    let pulls = Arc::new(AtomicUsize::new(0));
    let huge = Pulls {
        inner: 0..20_000_000u64,
        pulls: Arc::clone(&pulls),
    };
    assert_eq!(
        log.write_batch(huge),
        Err(Error::BatchTooLarge {
            len: 20_000_000,
            max: 2048
        })
    );
    assert_eq!(pulls.load(Ordering::Relaxed), 2049);
    // An endless range: no "capacity overflow" panic.
    match log.write_batch(0u64..) {
        Err(Error::BatchTooLarge { len, max: 2048 }) => assert!(len > 2048),
        other => panic!("{other:?}"),
    }
    // An endless iterator without a size hint: no abort.
    match log.write_batch(std::iter::repeat(7u64)) {
        Err(Error::BatchTooLarge { len, max: 2048 }) => assert!(len > 2048),
        other => panic!("{other:?}"),
    }
    // Nothing was written by any of them, and a full-capacity batch fits.
    assert_eq!(log.next_offset(), 0);
    assert_eq!(log.write_batch(0..2048u64), Ok(0..2048));
}

#[test]
fn stream_far_in_the_future_waits_on_an_open_log() {
    let log: Log<u8> = Log::new();
    let mut s = log.stream(u64::MAX);
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    assert_eq!(
        s.recv_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    );
    assert_eq!(s.ended(), None);
    log.write(1).unwrap();
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    log.close();
    assert_eq!(s.try_recv(), Err(Error::Closed));
    assert_eq!(s.next(), None);
}

#[test]
fn a_closed_log_stays_closed_whatever_is_attempted() {
    // Zero-sized payloads and a large capacity: failed claims must not move
    // the claim counter into the closed flag.
    let log: Log<()> = Log::builder()
        .segment_size(1 << 20)
        .history_segments(1 << 20)
        .build()
        .unwrap();
    log.write(()).unwrap();
    log.close();
    for round in 0..64 {
        assert_eq!(log.write(()), Err(Error::Closed));
        assert_eq!(
            log.write_batch(std::iter::repeat_n((), 1 << 16)),
            Err(Error::Closed)
        );
        assert!(log.is_closed(), "round {round}");
        assert_eq!(log.next_offset(), 1, "round {round}");
    }
    assert_eq!(log.read(0).map(|r| r.offset), Ok(0));
}

#[test]
fn concurrent_close_returns_only_once_closed() {
    for round in 0..300 {
        let log: Log<u32> = Log::builder().segment_size(64).build().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let log = log.clone();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = log.write(1);
                    }
                })
            })
            .collect();
        while log.next_offset() < 10 {
            thread::yield_now();
        }
        let seen = support::close_concurrently(&log, 2);
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        let end = log.next_offset();
        assert_eq!(
            seen,
            [end, end],
            "round {round}: next_offset moved after close returned"
        );
        assert_eq!(log.range().map(|r| r.1 + 1), Some(end), "round {round}");
    }
}

#[test]
fn a_canceller_alone_keeps_no_records_alive() {
    let live = Arc::new(AtomicU64::new(0));
    let log: Log<Bomb> = Log::new();
    for _ in 0..10 {
        log.write(Bomb::new(&live, false)).unwrap();
    }
    let stream = log.stream(0);
    let cancel = stream.canceller();
    drop(stream);
    drop(log);
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "the Canceller kept the records"
    );
    cancel.cancel();
    assert!(cancel.is_cancelled());
}

#[test]
fn sharded_shards_beyond_the_limit_is_invalid_config() {
    for n in [usize::MAX, usize::MAX / 2, 1 << 40] {
        match ShardedLog::<u8>::builder().shards(n).build() {
            Err(Error::InvalidConfig(why)) => assert!(why.contains("shards"), "{why}"),
            other => panic!("{n} shards: {other:?}"),
        }
    }
}

#[test]
fn sharded_close_closes_existing_shards_and_later_ones_are_born_closed() {
    let log: ShardedLog<u8> = ShardedLog::builder().shards(4).build().unwrap();
    let a = log.shard_of("a").unwrap();
    log.write("a", 1).unwrap();
    log.close();
    assert_eq!(log.write("a", 2), Err(Error::Closed));
    for i in (0..4).filter(|&i| i != a) {
        // Created after the close: born closed.
        assert!(log.shard(i).is_closed(), "shard {i}");
        assert_eq!(log.shard(i).write(1), Err(Error::Closed));
    }
    assert_eq!(log.read("a", 0).unwrap().data, 1);
}

#[test]
fn sharded_close_creates_no_shard() {
    // 1000 shards with large rings: creating them all would take 256 MiB.
    let log: ShardedLog<u8> = ShardedLog::builder()
        .history_segments(1 << 14)
        .build()
        .unwrap();
    log.write("k", 1).unwrap();
    let before = allocated();
    log.close();
    let bytes = allocated() - before;
    assert!(bytes < 1 << 20, "close allocated {bytes} bytes");
    assert_eq!(log.write("k", 2), Err(Error::Closed));
    assert_eq!(log.write("other key", 2), Err(Error::Closed));
}

#[test]
fn sharded_close_racing_first_use_leaves_no_open_shard() {
    for _ in 0..200 {
        let log: ShardedLog<u8> = ShardedLog::builder().shards(8).build().unwrap();
        let users: Vec<_> = (0..2)
            .map(|t| {
                let log = log.clone();
                thread::spawn(move || {
                    for i in 0..8 {
                        let _ = log.shard((i + t * 3) % 8).write(1);
                    }
                })
            })
            .collect();
        log.close();
        for u in users {
            u.join().unwrap();
        }
        for i in 0..8 {
            assert!(log.shard(i).is_closed(), "shard {i} open after close");
        }
    }
}

/// `close` skips a shard whose first use has not finished creating it; the
/// creator then sees the flag and closes the shard itself, a few
/// instructions later. A write through `shard(i)` after `close` returned
/// (here, on the closing thread) must fail even inside that window: it
/// takes the fast path, which found the shard created, not closed.
///
/// The window is a few nanoseconds wide: the race is hit in optimised code
/// (in most runs of this test on a 2-core machine); run with `--release`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the race window needs optimised code: --release"
)]
fn sharded_write_after_close_returned_fails_while_the_shard_is_being_created() {
    use std::sync::atomic::AtomicBool;
    const RUNS: usize = 30_000;
    let go = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let current: Arc<Mutex<Option<ShardedLog<u8>>>> = Arc::default();
    let creator = {
        let (go, done, stop, current) = (go.clone(), done.clone(), stop.clone(), current.clone());
        thread::spawn(move || {
            for run in 1..=RUNS {
                while go.load(Ordering::Acquire) < run {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::hint::spin_loop();
                }
                let log = current.lock().unwrap().clone().unwrap();
                let _ = log.shard(0).write(1);
                done.store(run, Ordering::Release);
            }
        })
    };
    let mut landed = 0;
    for run in 1..=RUNS {
        let log: ShardedLog<u8> = ShardedLog::builder().shards(2).build().unwrap();
        *current.lock().unwrap() = Some(log.clone());
        go.store(run, Ordering::Release);
        // Vary the head start, to sweep the creator's window.
        for _ in 0..run % 64 {
            std::hint::spin_loop();
        }
        log.close();
        if log.shard(0).write(2).is_ok() {
            landed += 1;
        }
        while done.load(Ordering::Acquire) < run {
            std::hint::spin_loop();
        }
        if landed > 0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    creator.join().unwrap();
    assert_eq!(landed, 0, "a write landed after ShardedLog::close returned");
}

#[test]
fn dropping_a_log_whose_record_drop_panics_drops_every_other_record() {
    support::quiet_expected_panics();
    let live = Arc::new(AtomicU64::new(0));
    let log: Log<Bomb> = Log::builder().segment_size(4).build().unwrap();
    for i in 0..8 {
        log.write(Bomb::new(&live, i == 2 || i == 5)).unwrap();
    }
    assert_eq!(live.load(Ordering::SeqCst), 8);
    let r = catch_unwind(AssertUnwindSafe(move || drop(log)));
    assert!(r.is_err(), "the drop's panic is resumed");
    assert_eq!(live.load(Ordering::SeqCst), 0, "records leaked");
}
