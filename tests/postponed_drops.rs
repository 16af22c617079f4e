//! Purged records whose drops were postponed on a thread (reclaim.rs) are
//! dropped at the start of that thread's next memlog call, the exclusive
//! writer's single `write` included, whatever call left them.
//!
//! One test in its own binary: a test running beside it would pin memlog's
//! collector too, collect this test's purged segments on its own thread and
//! drop them at moments this test does not control.

use memlog::Log;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts the drops of the records written; the clones a read hands out
/// count nothing.
struct Counted(Option<Arc<AtomicU64>>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted(None)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(dropped) = &self.0 {
            dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Leaves postponed drops on the writer's thread in three ways (a write to
/// another log, the writer's own batch opening segments, a read of the
/// writer's log: each pins memlog's collector, and every 128th pin
/// collects), then makes one `Writer::write` that opens no segment, so pins
/// nothing after its start: nothing may be left for the next memlog call.
#[test]
fn writer_write_runs_drops_postponed_by_any_memlog_call() {
    const S: u64 = 4;
    let size = usize::try_from(S).unwrap();
    let dropped = Arc::new(AtomicU64::new(0));
    let count = || dropped.load(Ordering::SeqCst);
    let record = || Counted(Some(Arc::clone(&dropped)));
    let (mut w, log) = Log::builder()
        .segment_size(size)
        .history_segments(1)
        .build_exclusive()
        .unwrap();
    // Each write opens a segment and purges the one before.
    let other = Log::builder()
        .segment_size(1)
        .history_segments(0)
        .build()
        .unwrap();
    let probe = Log::<u8>::new();
    probe.write(0).unwrap();
    let mut by_writer = 0;
    for round in 0..200_000u64 {
        match round % 3 {
            0 => drop(other.write(record()).unwrap()),
            1 => drop(w.write_batch((0..S).map(|_| record())).unwrap()),
            _ => drop(log.read(w.next_offset() - 1).unwrap()),
        }
        if w.next_offset() % S == 0 {
            // This write opens a segment: it may pin and postpone more.
            w.write(record()).unwrap();
        }
        let before = count();
        w.write(record()).unwrap();
        by_writer += count() - before;
        // The probe's read drops, first thing, whatever is still postponed.
        let before = count();
        probe.read(0).unwrap();
        assert_eq!(
            count(),
            before,
            "round {round}: Writer::write left postponed drops to the next call"
        );
        if by_writer >= 100 {
            return;
        }
    }
    panic!("only {by_writer} postponed drops ran: the test did not exercise postponement");
}
