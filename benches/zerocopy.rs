//! Zero-copy reading and the ticking clock, each against what it replaces
//! and the nearest peer, in the same run.
//!
//! Groups:
//! - `zc_stream_1w1r`: 1 writer → 1 reader, 1 M records, every record
//!   checked: memlog's `Stream` iterator (clones into a read-ahead deque),
//!   `Stream::visit` (by reference), both behind `Log::write`; `visit`
//!   behind the exclusive `Writer` (default clock, then `TickingClock`, then
//!   `TickingClock` with a busy-spinning stream, as the disruptor's);
//!   and the disruptor's single producer with one handler (by reference,
//!   busy-spinning), with u64 events, then with events that carry what a
//!   memlog record carries: the u64 and its time, read from the same
//!   ticking clock per event (`disruptor_timed`, as `Log::write` reads it)
//!   or once for the whole run (`disruptor_fixed_time`: the time's bytes
//!   without the clock); then both in batches of 64
//!   (`Writer::write_batch`, the disruptor's `batch_publish`).
//! - `zc_hold_1w1r`: 1 writer → 1 stream that must see every record, both
//!   lossless with room for 1024 records: memlog's `Writer` (and
//!   `Log::write`) waiting for a `Lag::Hold` stream that visits, against
//!   the disruptor's single producer with a ring of 1024 carrying the same
//!   record (a u64 and a time from the same ticking clock).
//! - `zc_read_1t`: one thread reading retained offsets: `Log::read`,
//!   `Pinned::get` (by reference) and `Pinned::read` (clone) under one pin,
//!   and the lock-based log.
//! - `zc_clock`: a timestamp from each clock, and a 1-thread `write` with
//!   the default clock against the ticking clock (`Log::write`, and the
//!   exclusive `Writer`), with the lock-based log paying the same clocks.

#[allow(dead_code)]
mod support;

use bytes::Bytes;
use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use disruptor::{BusySpinWithSpinLoopHint, Producer};
use memlog::clock::{Clock, CoarseClock, SystemClock, TickingClock};
use memlog::{Lag, Log, RecordRef, Stream, Writer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};
use support::locklog::LockLog;
use support::{Checked, Checker, Payload};

const N: u64 = 1_000_000;
const RING: usize = 1 << 16;

// ------------------------------------------------------------ streaming

fn stream_log<T: Payload>() -> Log<T> {
    // 17 segments of 2^16 retain more than 1 M records past any start.
    Log::builder()
        .segment_size(RING)
        .history_segments(16)
        .build()
        .unwrap()
}

/// Writes `N` records with `write` on this thread, from offset `base`,
/// while `read` follows on another.
fn one_to_one(
    base: u64,
    mut write: impl FnMut(u64),
    read: impl FnOnce(u64) + Send + 'static,
) -> Duration {
    one_to_one_all(
        base,
        || {
            for i in 0..N {
                write(i);
            }
        },
        read,
    )
}

/// `one_to_one` with the whole writing in `write_all` (for batches).
fn one_to_one_all(
    base: u64,
    write_all: impl FnOnce(),
    read: impl FnOnce(u64) + Send + 'static,
) -> Duration {
    let start = Instant::now();
    let reader = thread::spawn(move || read(base));
    write_all();
    reader.join().unwrap();
    start.elapsed()
}

/// Every record, by the iterator (clones).
fn read_by_iterator<T: Checked>(stream: Stream<T>) -> impl FnOnce(u64) + Send + 'static {
    move |base| {
        let mut c = Checker::new(1);
        for (k, r) in stream.take(N as usize).enumerate() {
            let r = r.unwrap();
            assert!(r.offset == base + k as u64 && r.data.ok(&mut c));
        }
    }
}

/// Every record, by `visit` (by reference).
fn read_by_visit<T: Checked>(mut stream: Stream<T>) -> impl FnOnce(u64) + Send + 'static {
    move |base| {
        let mut c = Checker::new(1);
        let mut next = base;
        while next < base + N {
            let left = (base + N - next) as usize;
            stream
                .visit(left.min(4096), |r: RecordRef<'_, T>| {
                    assert!(r.offset == next && r.data.ok(&mut c));
                    next += 1;
                })
                .unwrap();
        }
    }
}

fn by_iterator<T: Checked>(log: &Log<T>) -> Duration {
    let base = log.next_offset();
    let read = read_by_iterator(log.stream(base));
    one_to_one(
        base,
        |i| {
            log.write(T::make(i)).unwrap();
        },
        read,
    )
}

fn by_visit<T: Checked>(log: &Log<T>) -> Duration {
    let base = log.next_offset();
    let read = read_by_visit(log.stream(base));
    one_to_one(
        base,
        |i| {
            log.write(T::make(i)).unwrap();
        },
        read,
    )
}

/// The exclusive `Writer` and `visit`: the fastest memlog pair for 1 → 1
/// (with `spin`, the stream busy-spins as the disruptor's handler does).
fn by_writer_and_visit<T: Checked>(w: &mut Writer<T>, spin: bool) -> Duration {
    let base = w.next_offset();
    let stream = w.log().stream(base);
    let stream = if spin { stream.busy_spin() } else { stream };
    let read = read_by_visit(stream);
    one_to_one(
        base,
        |i| {
            w.write(T::make(i)).unwrap();
        },
        read,
    )
}

/// Records per batch in the batch rows: `Writer::write_batch` against the
/// disruptor's `batch_publish`.
const BATCH: u64 = 64;

/// The exclusive `Writer` in batches of `BATCH` (u64, ticking clock) and a
/// `visit`ing stream.
fn by_writer_batches_and_visit(w: &mut Writer<u64>) -> Duration {
    let base = w.next_offset();
    let read = read_by_visit(w.log().stream(base));
    one_to_one_all(
        base,
        || {
            let mut i = 0;
            while i < N {
                let end = (i + BATCH).min(N);
                w.write_batch(i..end).unwrap();
                i = end;
            }
        },
        read,
    )
}

#[derive(Default)]
struct Ev {
    v: u64,
}

/// An event carrying what a memlog record carries: a payload and the time
/// it was written, from the same clock (`ticking()`).
struct TimedEv {
    created: SystemTime,
    v: u64,
}

/// The disruptor's single producer publishing `batch` events at a time
/// (`publish` for 1, else `batch_publish`) to one checking handler.
fn by_disruptor() -> Duration {
    by_disruptor_batches(1)
}

fn by_disruptor_batches(batch: u64) -> Duration {
    disruptor_run(RING, batch, Ev::default, |e, i| e.v = i, |e| e.v)
}

/// `by_disruptor` with memlog's record in each event, checked by the
/// handler: with `fixed`, one time read before the run for every event (what
/// the time's bytes cost alone); else the producer reads the ticking clock
/// per event (`Clock::now`), as `Log::write` does.
fn by_disruptor_timed(fixed: bool) -> Duration {
    by_disruptor_timed_in(RING, fixed)
}

/// `by_disruptor_timed` with a ring of `ring` events.
fn by_disruptor_timed_in(ring: usize, fixed: bool) -> Duration {
    let clock = ticking();
    let once = clock.now();
    let empty = || TimedEv {
        created: SystemTime::UNIX_EPOCH,
        v: 0,
    };
    let fill = |e: &mut TimedEv, i| {
        e.created = if fixed { once } else { clock.now() };
        e.v = i;
    };
    disruptor_run(ring, 1, empty, fill, |e| {
        if e.created > SystemTime::UNIX_EPOCH {
            e.v
        } else {
            u64::MAX
        }
    })
}

/// The disruptor's single producer writing `N` events with `fill`, `batch`
/// at a time, into a ring of `ring` events, to one handler that checks
/// every `value`.
fn disruptor_run<E: Send + Sync + 'static>(
    ring: usize,
    batch: u64,
    empty: impl Fn() -> E + Send + Sync + 'static,
    mut fill: impl FnMut(&mut E, u64),
    value: impl Fn(&E) -> u64 + Send + 'static,
) -> Duration {
    let seen = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicBool::new(false));
    let (s, b) = (Arc::clone(&seen), Arc::clone(&bad));
    let mut c = Checker::new(1);
    let handler = move |e: &E, _, end_of_batch: bool| {
        if !c.check(value(e)) {
            b.store(true, Ordering::Relaxed);
        }
        if end_of_batch {
            s.store(c.seen(), Ordering::Relaxed);
        }
    };
    let start = Instant::now();
    let mut p = disruptor::build_single_producer(ring, empty, BusySpinWithSpinLoopHint)
        .handle_events_with(handler)
        .build();
    if batch == 1 {
        for i in 0..N {
            p.publish(|e| fill(e, i));
        }
    } else {
        let mut i = 0;
        while i < N {
            let n = batch.min(N - i);
            p.batch_publish(n as usize, |events| {
                for e in events {
                    fill(e, i);
                    i += 1;
                }
            });
        }
    }
    drop(p); // waits until the handler has processed everything
    let elapsed = start.elapsed();
    assert!(!bad.load(Ordering::Relaxed));
    assert_eq!(seen.load(Ordering::Relaxed), N);
    elapsed
}

fn stream_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("zc_stream_1w1r");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(N));
    fn both<T: Checked>(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
        let log = stream_log::<T>();
        g.bench_function(BenchmarkId::new("memlog_iterator", T::NAME), |b| {
            b.iter_custom(|it| (0..it).map(|_| by_iterator(&log)).sum())
        });
        g.bench_function(BenchmarkId::new("memlog_visit", T::NAME), |b| {
            b.iter_custom(|it| (0..it).map(|_| by_visit(&log)).sum())
        });
        drop(log);
        for (clock, spin, name) in [
            (None, false, "memlog_writer_visit"),
            (Some(ticking()), false, "memlog_writer_ticking_visit"),
            (
                Some(ticking()),
                true,
                "memlog_writer_ticking_visit_busy_spin",
            ),
        ] {
            let b = Log::<T>::builder().segment_size(RING).history_segments(16);
            let b = match clock {
                Some(c) => b.clock(c.clone()),
                None => b,
            };
            let (mut w, _log) = b.build_exclusive().unwrap();
            g.bench_function(BenchmarkId::new(name, T::NAME), |b| {
                b.iter_custom(|it| (0..it).map(|_| by_writer_and_visit(&mut w, spin)).sum())
            });
        }
    }
    both::<u64>(&mut g);
    both::<Bytes>(&mut g);
    g.bench_function(BenchmarkId::new("disruptor", "u64"), |b| {
        b.iter_custom(|it| (0..it).map(|_| by_disruptor()).sum())
    });
    for (fixed, name) in [(false, "disruptor_timed"), (true, "disruptor_fixed_time")] {
        g.bench_function(BenchmarkId::new(name, "u64"), |b| {
            b.iter_custom(|it| (0..it).map(|_| by_disruptor_timed(fixed)).sum())
        });
    }
    let (mut w, _log) = Log::<u64>::builder()
        .segment_size(RING)
        .history_segments(16)
        .clock(ticking().clone())
        .build_exclusive()
        .unwrap();
    g.bench_function(
        BenchmarkId::new("memlog_writer_ticking_batch64_visit", "u64"),
        |b| b.iter_custom(|it| (0..it).map(|_| by_writer_batches_and_visit(&mut w)).sum()),
    );
    g.bench_function(BenchmarkId::new("disruptor_batch64", "u64"), |b| {
        b.iter_custom(|it| (0..it).map(|_| by_disruptor_batches(BATCH)).sum())
    });
    g.finish();
}

// ---------------------------------------------------- lossless 1 -> 1

/// Records a lossless contender keeps: memlog's retention (512-record
/// segments, one history segment: 1024 at most), the disruptor's ring.
const LOSSLESS: usize = 1024;

/// 1 writer -> 1 stream that must see every record, both sides lossless
/// with room for 1024 records: memlog's writer waits for a `Lag::Hold`
/// stream, the disruptor's producer for its handler. The same record
/// carried: a u64 and a time from the same ticking clock, checked.
fn hold_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("zc_hold_1w1r");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(N));
    let held = || {
        Log::<u64>::builder()
            .segment_size(LOSSLESS / 2)
            .history_segments(1)
            .clock(ticking().clone())
    };
    let (mut w, _log) = held().build_exclusive().unwrap();
    g.bench_function(BenchmarkId::new("memlog_writer_hold_visit", "u64"), |b| {
        b.iter_custom(|it| {
            (0..it)
                .map(|_| {
                    let base = w.next_offset();
                    let read = read_by_visit(w.log().stream(base).on_lag(Lag::Hold));
                    one_to_one(
                        base,
                        |i| {
                            w.write(i).unwrap();
                        },
                        read,
                    )
                })
                .sum()
        })
    });
    let log = held().build().unwrap();
    g.bench_function(BenchmarkId::new("memlog_hold_visit", "u64"), |b| {
        b.iter_custom(|it| {
            (0..it)
                .map(|_| {
                    let base = log.next_offset();
                    let read = read_by_visit(log.stream(base).on_lag(Lag::Hold));
                    one_to_one(
                        base,
                        |i| {
                            log.write(i).unwrap();
                        },
                        read,
                    )
                })
                .sum()
        })
    });
    g.bench_function(BenchmarkId::new("disruptor_timed", "u64"), |b| {
        b.iter_custom(|it| {
            (0..it)
                .map(|_| by_disruptor_timed_in(LOSSLESS, false))
                .sum()
        })
    });
    g.finish();
}

// --------------------------------------------------------- random reads

const SEGMENT: usize = 1000;
/// Records written before reading: the log retains the last 1000..2000.
const PREFILL: u64 = 2500;

fn read_for<T: Payload>(c: &mut Criterion) {
    let mut g = c.benchmark_group("zc_read_1t");
    g.throughput(Throughput::Elements(1));
    let name = T::NAME;
    let log: Log<T> = Log::builder()
        .segment_size(SEGMENT)
        .history_segments(1)
        .build()
        .unwrap();
    for i in 0..PREFILL {
        log.write(T::make(i)).unwrap();
    }
    let (lo, hi) = log.range().unwrap();
    let span = hi - lo + 1;
    let mut i = 0u64;
    g.bench_function(BenchmarkId::new("memlog_read", name), |b| {
        b.iter(|| {
            i += 1;
            log.read(lo + i % span).unwrap()
        })
    });
    {
        let pinned = log.pin();
        g.bench_function(BenchmarkId::new("memlog_pinned_get", name), |b| {
            b.iter(|| {
                i += 1;
                black_box(pinned.get(lo + i % span).unwrap().data);
            })
        });
        g.bench_function(BenchmarkId::new("memlog_pinned_read", name), |b| {
            b.iter(|| {
                i += 1;
                pinned.read(lo + i % span).unwrap()
            })
        });
    }
    let lock = LockLog::new(SEGMENT);
    for i in 0..PREFILL {
        lock.write(T::make(i));
    }
    let (lo, hi) = lock.range().unwrap();
    let span = hi - lo + 1;
    g.bench_function(BenchmarkId::new("locklog_read", name), |b| {
        b.iter(|| {
            i += 1;
            lock.read(lo + i % span).unwrap()
        })
    });
    g.finish();
}

fn read_group(c: &mut Criterion) {
    read_for::<u64>(c);
    read_for::<Bytes>(c);
}

// ---------------------------------------------------------------- clocks

/// The ticking clock the lock-based log reads (it takes a `fn`).
static TICKING: OnceLock<TickingClock> = OnceLock::new();

fn ticking() -> &'static TickingClock {
    TICKING.get_or_init(|| TickingClock::new(Duration::from_millis(1)).unwrap())
}

fn ticking_now() -> SystemTime {
    ticking().now()
}

fn clock_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("zc_clock");
    g.throughput(Throughput::Elements(1));
    g.bench_function("now/coarse", |b| b.iter(|| CoarseClock.now()));
    g.bench_function("now/system", |b| b.iter(|| SystemClock.now()));
    let t = ticking().clone();
    g.bench_function("now/ticking_1ms", |b| b.iter(|| t.now()));

    let default: Log<u64> = Log::builder().segment_size(SEGMENT).build().unwrap();
    let tick: Log<u64> = Log::builder()
        .segment_size(SEGMENT)
        .clock(t.clone())
        .build()
        .unwrap();
    let mut i = 0u64;
    g.bench_function("write/memlog_default_clock", |b| {
        b.iter(|| {
            i += 1;
            default.write(i).unwrap()
        })
    });
    g.bench_function("write/memlog_ticking_clock", |b| {
        b.iter(|| {
            i += 1;
            tick.write(i).unwrap()
        })
    });
    let (mut writer, _log) = Log::builder()
        .segment_size(SEGMENT)
        .clock(t.clone())
        .build_exclusive()
        .unwrap();
    g.bench_function("write/memlog_writer_ticking_clock", |b| {
        b.iter(|| {
            i += 1;
            writer.write(i).unwrap()
        })
    });
    let lock_system = LockLog::new(SEGMENT);
    g.bench_function("write/locklog_system_clock", |b| {
        b.iter(|| {
            i += 1;
            lock_system.write(i)
        })
    });
    let lock_ticking = LockLog::with_clock(SEGMENT, ticking_now);
    g.bench_function("write/locklog_ticking_clock", |b| {
        b.iter(|| {
            i += 1;
            lock_ticking.write(i)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = stream_group, hold_group, read_group, clock_group
}
criterion_main!(benches);
