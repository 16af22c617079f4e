//! Allocations per operation in steady state, counted by a global allocator.
//!
//! Each case warms up first (segments allocated, purged, recycled), then
//! counts the allocator calls (alloc + realloc) over many operations.
//! `cargo bench -p memlog-benches --bench alloc`.

#[allow(dead_code)]
mod support;

use bytes::Bytes;
use memlog::Log;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use support::locklog::LockLog;
use support::Payload;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(n as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARM: u64 = 200_000;
const OPS: u64 = 1_000_000;

/// Runs `op(i)` for `WARM` then `OPS` iterations; prints allocations per op.
fn count(name: &str, mut op: impl FnMut(u64)) {
    for i in 0..WARM {
        op(i);
    }
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    for i in WARM..WARM + OPS {
        op(i);
    }
    let (a, b) = (
        ALLOCS.load(Ordering::Relaxed) - a0,
        BYTES.load(Ordering::Relaxed) - b0,
    );
    println!(
        "{name:<44} {a:>8} allocations / {OPS} ops = {:.6} per op ({:.1} bytes per op)",
        a as f64 / OPS as f64,
        b as f64 / OPS as f64
    );
}

fn memlog_case<T: Payload>() {
    let log: Log<T> = Log::builder()
        .segment_size(1000)
        .history_segments(1)
        .build()
        .unwrap();
    count(&format!("memlog write ({})", T::NAME), |i| {
        log.write(T::make(i)).unwrap();
    });
    count(&format!("memlog read ({})", T::NAME), |i| {
        let (lo, hi) = log.range().unwrap();
        std::hint::black_box(log.read(lo + i % (hi - lo + 1)).unwrap());
    });
    let mut out = Vec::with_capacity(100);
    count(
        &format!("memlog read_batch 100, reused Vec ({})", T::NAME),
        |_| {
            out.clear();
            let (lo, _) = log.range().unwrap();
            log.read_batch(lo, &mut out, 100).unwrap();
        },
    );
    let mut n = 0u64;
    count(
        &format!("memlog write_batch 100, per batch ({})", T::NAME),
        |i| {
            n += 100;
            log.write_batch((i..i + 100).map(T::make)).unwrap();
        },
    );
    let _ = n;
    let mut stream = log.stream(log.next_offset());
    count(&format!("memlog write + stream read ({})", T::NAME), |i| {
        log.write(T::make(i)).unwrap();
        stream.next().unwrap().unwrap();
    });
}

fn main() {
    memlog_case::<u64>();
    memlog_case::<Bytes>();
    let lock = LockLog::<u64>::new(1000);
    count("locklog write (u64)", |i| {
        lock.write(i);
    });
}
