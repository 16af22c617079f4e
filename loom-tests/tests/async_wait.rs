#![cfg(loom)]
//! The async side of the wait/wake handshake: an `AsyncStream` that returned
//! `Pending` is woken by the publish, close or cancel that concerns it, with
//! a writer on another thread. `loom::future::block_on` fails the model when
//! the future stays pending with nobody left to wake it, so a lost wake-up
//! fails in some schedule. After each model the stream is dropped and the
//! log must hold no waiter entry.

use futures_util::StreamExt;
use loom::thread;
use memlog::{AsyncStream, Error, Log};
use memlog_loom_tests::{log, model};

/// Another thread writes 7 while the task waits on `s`: the task gets it,
/// and once `s` is dropped no waiter entry is left.
fn a_write_wakes(log: Log<u32>, mut s: AsyncStream<u32>) {
    let w = log.clone();
    let t = thread::spawn(move || {
        w.write(7).unwrap();
    });
    let r = loom::future::block_on(s.next());
    assert_eq!(r.unwrap().unwrap().data, 7);
    t.join().unwrap();
    drop(s);
    assert_eq!(log.waiter_count(), 0);
}

/// A task waits for offset 0 (judged by the high-water mark: its first read).
#[test]
fn async_first_record_wakes_pending_task() {
    model(|| {
        let log: Log<u32> = log(2, 1);
        let s = log.stream_async(0);
        a_write_wakes(log, s);
    });
}

/// A task that has read offset 0 waits for offset 1, judged by its slot's
/// stamp (segment size 1: offset 1 also needs a new segment installed).
#[test]
fn async_stamp_path_wakes_pending_task() {
    model(|| {
        let log: Log<u32> = log(1, 1);
        log.write(6).unwrap();
        let mut s = log.stream_async(0);
        assert_eq!(loom::future::block_on(s.next()).unwrap().unwrap().data, 6);
        a_write_wakes(log, s);
    });
}

/// Close wakes a pending task, which ends.
#[test]
fn async_close_wakes_pending_task() {
    model(|| {
        let log: Log<u32> = log(2, 1);
        let mut s = log.stream_async(0);
        let w = log.clone();
        let t = thread::spawn(move || w.close());
        assert!(loom::future::block_on(s.next()).is_none());
        t.join().unwrap();
        assert_eq!(log.waiter_count(), 0);
    });
}

/// Cancel wakes a pending task: `Cancelled` once, then the end.
#[test]
fn async_cancel_wakes_pending_task() {
    model(|| {
        let log: Log<u32> = log(2, 1);
        let mut s = log.stream_async(0);
        let c = s.canceller();
        let t = thread::spawn(move || c.cancel());
        let r = loom::future::block_on(s.next());
        assert_eq!(r.unwrap().unwrap_err(), Error::Cancelled);
        assert!(loom::future::block_on(s.next()).is_none());
        t.join().unwrap();
        assert_eq!(log.waiter_count(), 0);
    });
}

/// A waker whose `wake` panics.
struct Panics;

impl std::task::Wake for Panics {
    fn wake(self: std::sync::Arc<Self>) {
        panic!("waker panics in wake");
    }
}

/// A task is pending with a waker that panics when woken, and two writers
/// publish offsets 0 and 1 in either order. The one that carries the mark
/// wakes the task, and the panic reaches that writer only after the mark is
/// carried over both offsets: a writer that announced its publish and left
/// it to the other is never stranded behind the panic.
#[test]
fn panicking_waker_does_not_strand_an_announced_publish() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    // Keep the panics provoked on purpose (one per iteration) out of the
    // output; any other panic still prints.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if msg != "waker panics in wake" {
            default(info);
        }
    }));
    memlog_loom_tests::explore(|seen| {
        let log: Log<u32> = log(2, 1);
        let mut s = log.stream_async(0);
        let waker = Waker::from(std::sync::Arc::new(Panics));
        let pending =
            futures_util::Stream::poll_next(Pin::new(&mut s), &mut Context::from_waker(&waker));
        assert!(matches!(pending, Poll::Pending));
        let write = |log: &Log<u32>| catch_unwind(AssertUnwindSafe(|| log.write(1))).is_err();
        let other = {
            let log = log.clone();
            thread::spawn(move || write(&log))
        };
        let main_panicked = write(&log);
        let other_panicked = other.join().unwrap();
        seen.note(format!(
            "panicked main {main_panicked} other {other_panicked}"
        ));
        assert!(
            main_panicked != other_panicked,
            "exactly one writer woke the task"
        );
        assert_eq!(log.range(), Some((0, 1)), "the mark was left short");
        assert_eq!(log.read(1).unwrap().offset, 1);
    })
    .assert_reached(&[
        "panicked main true other false",
        "panicked main false other true",
    ]);
}
