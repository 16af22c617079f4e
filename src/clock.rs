//! Where record timestamps come from.
//!
//! Each record carries `created`, read from the log's [`Clock`] by the writer
//! just before it claims its offset (so that no user code runs between the
//! claim and the publish; see the crate docs). [`SystemClock`] is the default;
//! [`ManualClock`] is for tests and for writers that do not need timestamps
//! (it costs one atomic load).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A source of record timestamps.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock, [`SystemTime::now`].
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
