#![cfg(loom)]
//! The exclusive writer meets a sleeping reader and `close` through an
//! asymmetric fence (src/fence.rs), which the loom build models as a
//! `SeqCst` fence on each side. The models in exclusive.rs are only as good
//! as loom's handling of those fences, so these check it on the bare
//! pattern: with both fences, loom never lets both loads miss the other
//! side's store; without them, it finds the execution where both do (so a
//! model that relied on a missing fence would fail).

use loom::sync::atomic::{fence, AtomicU64};
use loom::sync::Arc;
use loom::thread;
use memlog_loom_tests::{explore, model};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// Store, fence?, load on each side; returns what each load saw.
fn dekker(fenced: bool) -> (u64, u64) {
    let words = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let other = Arc::clone(&words);
    let t = thread::spawn(move || {
        other.1.store(1, Relaxed);
        if fenced {
            fence(SeqCst);
        }
        other.0.load(Relaxed)
    });
    words.0.store(1, Relaxed);
    if fenced {
        fence(SeqCst);
    }
    let mine = words.1.load(Relaxed);
    (mine, t.join().unwrap())
}

#[test]
fn seqcst_fences_let_no_two_loads_miss_both_stores() {
    model(|| assert_ne!(dekker(true), (0, 0)));
}

#[test]
fn without_the_fences_loom_finds_both_loads_missing() {
    explore(|seen| {
        if dekker(false) == (0, 0) {
            seen.note("both missed");
        }
    })
    .assert_reached(&["both missed"]);
}
