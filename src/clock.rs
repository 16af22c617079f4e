//! Where record timestamps come from.
//!
//! Each record carries `created`, read from the log's [`Clock`] by the writer
//! just before it claims its offset (so that no user code runs between the
//! claim and the publish; see the crate docs).
//!
//! | clock | cost here¹ | resolution |
//! |---|---|---|
//! | [`CoarseClock`] (default) | ~6 ns | the kernel tick: 1–10 ms, 4 ms here ([`CoarseClock::resolution`]) |
//! | [`SystemClock`] | ~24 ns | nanoseconds (`SystemTime::now`) |
//! | [`TickingClock`] (opt in) | ~2 ns² | the tick interval you choose (at least 100 µs); costs a thread |
//! | [`ManualClock`] | ~2 ns | whatever it is set to; for tests |
//!
//! ¹ One thread on a 2-core AMD EPYC VM, Linux. A timestamp is most of the
//! cost of a write, so the default is the coarse wall clock, at the
//! millisecond scale Kafka uses for its record timestamps; choose
//! [`SystemClock`] when records need finer times, and [`TickingClock`] when
//! the write itself must be as cheap as it can be and a background thread
//! waking once per tick is acceptable.
//!
//! ² One relaxed load, as quanta's `Clock::recent`. `cargo bench -p
//! memlog-benches --bench zerocopy -- zc_clock` measured 3.3–4.0 ns against
//! 9.3–12.6 ns for [`CoarseClock`] and 30.6–37.5 ns for [`SystemClock`] in
//! the same runs (3), on a 2-core machine busy with other work (which
//! roughly doubles every figure).
//!
//! ```
//! use memlog::clock::{Clock, ManualClock};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let clock = ManualClock::new(UNIX_EPOCH);
//! let log = memlog::Log::builder().clock(clock.clone()).build()?;
//! log.write("a")?;
//! clock.advance(Duration::from_secs(1));
//! log.write("b")?;
//! let (a, b) = (log.read(0)?.created, log.read(1)?.created);
//! assert_eq!(b.duration_since(a).unwrap(), Duration::from_secs(1));
//! # Ok::<(), memlog::Error>(())
//! ```

use crate::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of record timestamps. Implement it to stamp records with a time
/// of your own (a logical clock, a test clock); it must not block, and should
/// be cheap: it is read on every write.
///
/// ```
/// use memlog::clock::Clock;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// /// One second later on every read.
/// #[derive(Default)]
/// struct Ticks(AtomicU64);
///
/// impl Clock for Ticks {
///     fn now(&self) -> SystemTime {
///         UNIX_EPOCH + Duration::from_secs(self.0.fetch_add(1, Ordering::Relaxed))
///     }
/// }
///
/// let log = memlog::Log::builder().clock(Ticks::default()).build()?;
/// log.write("a")?;
/// log.write("b")?;
/// assert_eq!(log.read(1)?.created, UNIX_EPOCH + Duration::from_secs(1));
/// # Ok::<(), memlog::Error>(())
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    ///
    /// ```
    /// use memlog::clock::{Clock, SystemClock};
    ///
    /// assert!(SystemClock.now() > std::time::UNIX_EPOCH);
    /// ```
    fn now(&self) -> SystemTime;
}

/// The wall clock at the resolution of the kernel's tick, read without
/// touching the hardware clock: on Linux `CLOCK_REALTIME_COARSE` (about 6 ns,
/// against about 24 ns for [`SystemTime::now`]); elsewhere it is
/// [`SystemTime::now`]. The log's default clock.
///
/// Its times never run ahead of [`SystemTime::now`]; they lag it by up to
/// [`resolution`](CoarseClock::resolution).
///
/// ```
/// use memlog::clock::{Clock, CoarseClock};
/// use std::time::{Duration, SystemTime};
///
/// let before = SystemTime::now();
/// let t = CoarseClock.now();
/// assert!(t <= SystemTime::now());
/// assert!(before.duration_since(t).unwrap_or_default() <= CoarseClock::resolution() + Duration::from_millis(50));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CoarseClock;

impl CoarseClock {
    /// How far apart the times this clock can tell are (on Linux,
    /// `clock_getres(CLOCK_REALTIME_COARSE)`; elsewhere 1 ns).
    ///
    /// ```
    /// use memlog::clock::CoarseClock;
    /// use std::time::Duration;
    ///
    /// let r = CoarseClock::resolution();
    /// assert!(r > Duration::ZERO && r <= Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn resolution() -> Duration {
        #[cfg(target_os = "linux")]
        {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid, writable timespec for the call.
            if unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
                return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
            }
        }
        Duration::from_nanos(1)
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> SystemTime {
        #[cfg(target_os = "linux")]
        {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid, writable timespec for the call.
            let ok = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0;
            if ok && ts.tv_sec >= 0 {
                return SystemTime::UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
            }
        }
        SystemTime::now()
    }
}

/// The operating system's wall clock at full resolution, [`SystemTime::now`]:
/// for records that need nanosecond times, at about 4× the cost of
/// [`CoarseClock`].
///
/// ```
/// use memlog::clock::SystemClock;
/// use std::time::SystemTime;
///
/// let log = memlog::Log::builder().clock(SystemClock).build()?;
/// let before = SystemTime::now();
/// log.write("x")?;
/// let created = log.read(0)?.created;
/// assert!(before <= created && created <= SystemTime::now());
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// It holds a base time and a signed nanosecond offset from it, so it can be
/// set anywhere within about ±292 years of the time it was created with.
///
/// ```
/// use memlog::clock::{Clock, ManualClock};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_005));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    base: SystemTime,
    offset_ns: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock that reads `t` until it is set or advanced.
    ///
    /// ```
    /// use memlog::clock::{Clock, ManualClock};
    /// use std::time::UNIX_EPOCH;
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// let log = memlog::Log::builder().clock(clock.clone()).build()?;
    /// log.write(1u8)?;
    /// assert_eq!(log.read(0)?.created, UNIX_EPOCH);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn new(t: SystemTime) -> Self {
        ManualClock {
            base: t,
            offset_ns: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Sets the time to `t`.
    ///
    /// # Panics
    /// If `t` is more than about 292 years from the time the clock was
    /// created with.
    ///
    /// ```
    /// use memlog::clock::{Clock, ManualClock};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(100));
    /// clock.set(UNIX_EPOCH + Duration::from_secs(40)); // it may go back
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(40));
    /// ```
    pub fn set(&self, t: SystemTime) {
        let ns = match t.duration_since(self.base) {
            Ok(d) => i64::try_from(d.as_nanos()).ok(),
            Err(e) => i64::try_from(e.duration().as_nanos()).ok().map(|n| -n),
        };
        let ns = ns.expect("ManualClock::set: time is more than 292 years from the clock's base");
        self.offset_ns.store(ns, Ordering::Relaxed);
    }

    /// Moves the time forward by `d`.
    ///
    /// # Panics
    /// If the result is more than about 292 years from the clock's base.
    ///
    /// ```
    /// use memlog::clock::{Clock, ManualClock};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let clock = ManualClock::new(UNIX_EPOCH);
    /// let shared = clock.clone();
    /// shared.advance(Duration::from_millis(5));
    /// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(5));
    /// ```
    pub fn advance(&self, d: Duration) {
        let add = i64::try_from(d.as_nanos()).expect("ManualClock::advance: duration too long");
        let prev = self.offset_ns.fetch_add(add, Ordering::Relaxed);
        assert!(
            prev.checked_add(add).is_some(),
            "ManualClock::advance: time is more than 292 years from the clock's base"
        );
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> SystemTime {
        let ns = self.offset_ns.load(Ordering::Relaxed);
        if ns >= 0 {
            self.base + Duration::from_nanos(ns as u64)
        } else {
            self.base - Duration::from_nanos(ns.unsigned_abs())
        }
    }
}

/// A wall clock kept by a background thread: every `interval` the thread
/// reads [`SystemTime::now`] and stores it in an atomic, and [`now`] is one
/// relaxed load of it, as quanta's `Clock::recent` is. The cheapest
/// timestamp for a write that needs a wall-clock time; opt in with
/// [`Builder::clock`](crate::Builder::clock) (the default stays
/// [`CoarseClock`]).
///
/// **Resolution: the tick interval.** Its times never run ahead of
/// [`SystemTime::now`] (unless the system clock is set back); they lag it
/// by up to the interval, and by more while the thread is not scheduled (on
/// a machine with every core busy). Records written within one tick carry
/// the same time.
///
/// **Cost:** one thread, named `memlog-clock`, that wakes once per tick
/// (so at least 100 µs, [`MIN_INTERVAL`](TickingClock::MIN_INTERVAL)).
/// Clones share the thread; it stops, and is joined, when the last clone is
/// dropped (with the log that holds it): no thread is left behind.
///
/// [`now`]: Clock::now
///
/// ```
/// use memlog::clock::{Clock, TickingClock};
/// use std::time::{Duration, SystemTime};
///
/// let clock = TickingClock::new(Duration::from_millis(1))?;
/// let log = memlog::Log::builder().clock(clock.clone()).build()?;
/// log.write("x")?;
/// let created = log.read(0)?.created;
/// assert!(created <= SystemTime::now());
/// assert_eq!(clock.resolution(), Duration::from_millis(1));
/// drop((clock, log)); // the last handle: the thread stops here
/// # Ok::<(), memlog::Error>(())
/// ```
pub struct TickingClock {
    shared: Arc<Ticking>,
}

/// What the handles and the thread share.
struct Ticking {
    /// The last time read, in nanoseconds since the Unix epoch (0 for a
    /// time before it). Written by the thread only.
    nanos: AtomicU64,
    /// Live `TickingClock` handles; the last one to go stops the thread.
    handles: AtomicUsize,
    stop: AtomicBool,
    interval: Duration,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Ticking {
    fn tick(&self) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        // Relaxed: readers need the value, nothing ordered with it.
        self.nanos.store(nanos, Ordering::Relaxed);
    }
}

impl TickingClock {
    /// The shortest tick accepted: a shorter one would keep a core busy.
    pub const MIN_INTERVAL: Duration = Duration::from_micros(100);

    /// Starts the ticking thread, which reads the time every `interval`.
    /// The clock reads the current time already when this returns.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if `interval` is below
    /// [`MIN_INTERVAL`](TickingClock::MIN_INTERVAL), or if the thread can not
    /// be started.
    ///
    /// ```
    /// use memlog::clock::TickingClock;
    /// use std::time::Duration;
    ///
    /// assert!(TickingClock::new(Duration::from_micros(500)).is_ok());
    /// assert!(matches!(
    ///     TickingClock::new(Duration::ZERO),
    ///     Err(memlog::Error::InvalidConfig(_))
    /// ));
    /// ```
    pub fn new(interval: Duration) -> Result<TickingClock, Error> {
        if interval < Self::MIN_INTERVAL {
            return Err(Error::InvalidConfig(format!(
                "TickingClock interval must be at least {:?}, got {interval:?}",
                Self::MIN_INTERVAL
            )));
        }
        let shared = Arc::new(Ticking {
            nanos: AtomicU64::new(0),
            handles: AtomicUsize::new(1),
            stop: AtomicBool::new(false),
            interval,
            thread: Mutex::new(None),
        });
        shared.tick();
        let ticking = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("memlog-clock".into())
            .spawn(move || {
                // Acquire pairs with the Release in `drop`: nothing to see,
                // but it makes the stop a clean hand-over.
                while !ticking.stop.load(Ordering::Acquire) {
                    // Woken early by the last handle's drop (an early or
                    // spurious wake-up only ticks once more).
                    std::thread::park_timeout(ticking.interval);
                    ticking.tick();
                }
            })
            .map_err(|e| {
                Error::InvalidConfig(format!("TickingClock could not start its thread: {e}"))
            })?;
        *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(TickingClock { shared })
    }

    /// How far apart the times this clock tells are: its tick interval.
    ///
    /// ```
    /// use memlog::clock::TickingClock;
    /// use std::time::Duration;
    ///
    /// let clock = TickingClock::new(Duration::from_millis(2))?;
    /// assert_eq!(clock.resolution(), Duration::from_millis(2));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn resolution(&self) -> Duration {
        self.shared.interval
    }
}

impl TickingClock {
    /// The last time read, as stored: nanoseconds since the Unix epoch.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        // Relaxed: see `Ticking::nanos`.
        self.shared.nanos.load(Ordering::Relaxed)
    }

    /// The time `nanos` (a value of [`nanos`](TickingClock::nanos)) stands for.
    #[inline]
    pub(crate) fn time_of(nanos: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(nanos)
    }
}

impl Clock for TickingClock {
    #[inline]
    fn now(&self) -> SystemTime {
        Self::time_of(self.nanos())
    }
}

impl Clone for TickingClock {
    /// Another handle to the same clock and thread.
    fn clone(&self) -> Self {
        // Relaxed: as `Arc::clone`; a handle exists, so the count is not 0.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        TickingClock {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for TickingClock {
    /// The last handle stops the thread and waits for it to exit (at once:
    /// it is woken).
    fn drop(&mut self) {
        // AcqRel: as `Arc`'s drop, so the last handle sees the others done.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        self.shared.stop.store(true, Ordering::Release);
        let thread = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread {
            t.thread().unpark();
            // The thread runs no user code and can not panic but for a
            // system failure, which has nowhere better to go.
            let _ = t.join();
        }
    }
}

impl fmt::Debug for TickingClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TickingClock")
            .field("interval", &self.shared.interval)
            .field("now", &self.now())
            .finish()
    }
}
