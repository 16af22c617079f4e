//! Helpers shared by the integration tests: misbehaving user code, deadlines,
//! concurrent closes.

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it has not finished
/// after `secs` seconds (a wedge or a deadlock); returns `f`'s result.
pub fn within<R: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(r)) => r,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("{what}: did not finish in {secs} s (wedged or deadlocked)"),
    }
}

/// Drives memlog's epoch collector from this thread (every 128th pin of a
/// thread collects; a read pins), then makes a memlog call, which drops what
/// memlog postponed on this thread (and what exited threads left).
pub fn collect() {
    let log = memlog::Log::<u8>::new();
    log.write(0).unwrap();
    for _ in 0..4 * 128 {
        let _ = log.read(0);
    }
    let _ = log.read(0);
}

/// How many `Bomb` drops panicked, on any thread.
pub static BOMB_PANICS: AtomicU64 = AtomicU64::new(0);

/// Counts live instances; its `Drop` panics when `panics` is set.
#[derive(Debug)]
pub struct Bomb {
    live: Arc<AtomicU64>,
    panics: bool,
}

impl Bomb {
    pub fn new(live: &Arc<AtomicU64>, panics: bool) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Bomb {
            live: Arc::clone(live),
            panics,
        }
    }
}

impl Clone for Bomb {
    fn clone(&self) -> Self {
        Bomb::new(&self.live, self.panics)
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        if self.panics && !thread::panicking() {
            BOMB_PANICS.fetch_add(1, Ordering::SeqCst);
            panic!("Bomb dropped");
        }
    }
}

/// Keeps the panics these tests provoke on purpose (messages containing
/// "in drop" or "Bomb dropped") out of the output; others print as usual.
pub fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !(msg.contains("in drop") || msg.contains("Bomb dropped")) {
                default(info);
            }
        }));
    });
}

/// Closes `log` from `n` threads at once; returns the `next_offset` each saw
/// right after its `close` returned (all must agree on the end).
pub fn close_concurrently<T: Clone + Send + Sync + 'static>(
    log: &memlog::Log<T>,
    n: usize,
) -> Vec<u64> {
    let closers: Vec<_> = (0..n)
        .map(|_| {
            let log = log.clone();
            thread::spawn(move || {
                log.close();
                log.next_offset()
            })
        })
        .collect();
    closers.into_iter().map(|c| c.join().unwrap()).collect()
}
