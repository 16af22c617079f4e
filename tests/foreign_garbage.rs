//! crossbeam-epoch's global collector is shared by every crate of the
//! process (crossbeam-skiplist, for one, drops its values in deferred
//! closures). Whichever thread pins it may run any crate's deferred
//! destructors. A destructor of another crate is user code: it must not run
//! inside a memlog write's claim window. One test per binary: another test's
//! pins would collect the garbage planted here.

mod support;

use memlog::Log;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::within;

/// Another crate's garbage whose destructor writes an event to the log (a
/// value whose `Drop` logs "closed", say). If memlog's install collects it
/// between a write's claim and its publish, the nested write waits for the
/// mark to pass the outer write's offset: a deadlock.
#[test]
fn another_crates_deferred_destructor_never_runs_in_a_claim_window() {
    within(
        20,
        "writes while another crate's garbage is collected",
        || {
            // Every write installs a segment and retires the one before.
            let log: Log<u64> = Log::builder()
                .segment_size(1)
                .history_segments(0)
                .build()
                .unwrap();
            assert_eq!(log.write(0), Ok(0));
            let ran = Arc::new(AtomicBool::new(false));
            {
                let (log, ran) = (log.clone(), Arc::clone(&ran));
                let guard = crossbeam_epoch::pin();
                guard.defer(move || {
                    ran.store(true, Ordering::SeqCst);
                    let _ = log.write(100);
                });
                guard.flush();
            }
            for i in 1..10 {
                let o = log.write(i).unwrap();
                // The echo, if it ran, landed after this write, not before it.
                assert!(o >= i, "offset {o} for write {i}");
                match log.read(o) {
                    Ok(r) => assert_eq!(r.offset, o),
                    Err(e) => assert_eq!(e, memlog::Error::OutOfRange),
                }
            }
            // The garbage is collected by now, or at the latest here.
            for _ in 0..8 {
                crossbeam_epoch::pin().flush();
            }
            assert!(ran.load(Ordering::SeqCst));
            let (_, last) = log.range().unwrap();
            assert_eq!(
                last + 1,
                log.next_offset(),
                "everything claimed is published"
            );
        },
    );
}
