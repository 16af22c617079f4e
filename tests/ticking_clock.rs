//! `TickingClock`: its time moves with the wall clock, and its thread stops
//! when the last handle goes, wherever that is dropped. The only test in its
//! binary, so that the thread count it reads is its own.

use memlog::clock::{Clock, TickingClock};
use memlog::Log;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Threads of this process named `memlog-clock` (Linux; elsewhere `None`).
fn clock_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "memlog-clock")
            .count(),
    )
}

/// Waits (boundedly) until `clock_threads()` is `n`: a new thread names
/// itself once it runs, and an exited one leaves `/proc` shortly after its
/// join returns.
fn expect_clock_threads(n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(got) = clock_threads() {
        if got == n {
            return;
        }
        assert!(Instant::now() < deadline, "{got} clock threads, want {n}");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn ticking_clock_ticks_and_leaves_no_thread_behind() {
    expect_clock_threads(0);
    let interval = Duration::from_millis(1);
    let clock = TickingClock::new(interval).unwrap();
    expect_clock_threads(1);

    // It never runs ahead of the wall clock, and it moves (within a
    // generous bound: the machine may be busy).
    let first = clock.now();
    assert!(first <= SystemTime::now());
    let deadline = Instant::now() + Duration::from_secs(30);
    while clock.now() <= first {
        assert!(Instant::now() < deadline, "the clock did not tick in 30 s");
        thread::sleep(interval);
    }
    assert!(clock.now() <= SystemTime::now());

    // Clones share the one thread; records carry its time.
    let log: Log<u8> = Log::builder().clock(clock.clone()).build().unwrap();
    let before = clock.now();
    log.write(1).unwrap();
    let created = log.read(0).unwrap().created;
    assert!(before <= created && created <= SystemTime::now());
    expect_clock_threads(1);
    assert!(format!("{clock:?}").starts_with("TickingClock { interval: 1ms"));

    // The log keeps it running after the user's handle is gone; the last
    // handle (the log's, dropped on another thread) stops and joins it.
    drop(clock);
    expect_clock_threads(1);
    thread::spawn(move || drop(log)).join().unwrap();
    expect_clock_threads(0);

    // Too short an interval is refused, with the limit in the message.
    let e = TickingClock::new(Duration::from_micros(99)).unwrap_err();
    assert!(e.to_string().contains("at least 100µs"), "{e}");
    expect_clock_threads(0);
}
