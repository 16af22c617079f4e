//! Steady-state allocations, counted by a global allocator on the test's
//! own thread (libtest's threads and other tests' count nothing): a write
//! allocates at most once per segment rotation (crossbeam-epoch's queue node
//! for the retired segment; segments come back from the spare pool), and a
//! read allocates nothing.
//!
//! One test, alone in its binary: another thread pinned in memlog's
//! collector (a test beside it, or its thread's exit) holds the epoch back,
//! and a segment not reclaimed in time is replaced by a fresh allocation
//! rather than a spare.

use memlog::{Log, Record};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

std::thread_local! {
    /// Whether this thread's allocations are counted, and how many were.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards every call to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller upholds `alloc`'s contract, which is ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above; `p` came from `System` through us.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = COUNT.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get) - before
}

const SEGMENT: u64 = 1024;
/// Past 2 * 128 segment rotations: every 128th pin of a thread collects on
/// its own, which once delays a reclamation by a rotation while the spare
/// pool holds one segment; the pool then keeps two, enough to absorb it.
const WARM: u64 = 300_000;
const WRITES: u64 = 200_000;

/// How many segments writes at relative offsets `from..from + n` open.
fn rotations(from: u64, n: u64) -> u64 {
    (from + n).div_ceil(SEGMENT) - from.div_ceil(SEGMENT)
}

fn builder() -> memlog::Builder<u64> {
    Log::builder()
        .segment_size(SEGMENT as usize)
        .history_segments(1)
}

#[test]
fn steady_state_writes_allocate_once_per_segment_rotation_at_most_and_reads_never() {
    writes_allocate_at_most_once_per_segment_rotation();
    reads_allocate_nothing();
}

fn writes_allocate_at_most_once_per_segment_rotation() {
    let log = builder().build().unwrap();
    at_most_once_per_rotation("Log::write", |i| log.write(i).unwrap());
    let (mut w, _log) = builder().build_exclusive().unwrap();
    at_most_once_per_rotation("Writer::write", |i| w.write(i).unwrap());
}

/// After `WARM` writes, `WRITES` more (`write(i)` returns the offset)
/// allocate at most once per segment they open.
fn at_most_once_per_rotation(what: &str, mut write: impl FnMut(u64) -> u64) {
    for i in 0..WARM {
        write(i);
    }
    let from = write(WARM) + 1;
    let n = allocations(|| {
        for i in 0..WRITES {
            write(i);
        }
    });
    let most = rotations(from, WRITES);
    assert!(n <= most, "{what}: {n} allocations, {most} rotations");
}

fn reads_allocate_nothing() {
    let log = builder().build().unwrap();
    for i in 0..WARM {
        log.write(i).unwrap();
    }
    let (first, last) = log.range().unwrap();
    let at = |i: u64| first + i % (last - first + 1);
    let mut stream = log.stream(first);
    let mut reads = |count: u64| {
        for i in 0..count {
            assert_eq!(log.read(at(i)).unwrap().data, at(i) % WARM);
            let pinned = log.pin();
            assert_eq!(*pinned.get(at(i)).unwrap().data, at(i) % WARM);
            drop(pinned);
            let Record { offset, .. } = stream.try_recv().unwrap();
            let mut seen = 0;
            stream.visit(1, |r| seen = r.offset).unwrap();
            assert_eq!(seen, offset + 1);
        }
    };
    // The stream's read-ahead buffer is allocated here, once. Each round
    // takes two of the records retained from the stream.
    reads(20);
    let n = allocations(|| reads((last - first) / 2 - 20));
    assert_eq!(n, 0, "reads allocated");
}
