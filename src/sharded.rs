//! A log split into shards by key, as the Go library's `sharded` package.
//!
//! Each shard is an independent [`Log`] with its own offsets; a [`Sharder`]
//! maps a key to a shard. Shards are created on first use, so an unused shard
//! costs one pointer-sized cell.
//!
//! ```
//! use memlog::sharded::{KeySharder, ShardedLog};
//!
//! let log: ShardedLog<String, KeySharder> = ShardedLog::builder()
//!     .shards(2)
//!     .sharder(KeySharder::new(["users", "groups"]))
//!     .build()?;
//! assert_eq!(log.write("users", "alice".to_string())?, 0);
//! assert_eq!(log.write("groups", "admins".to_string())?, 0);
//! assert_eq!(log.read("users", 0)?.data, "alice");
//! assert!(log.write("teams", "x".to_string()).is_err());
//! # Ok::<(), memlog::Error>(())
//! ```

use crate::builder::Builder;
use crate::clock::Clock;
use crate::config::Config;
#[cfg(feature = "async")]
use crate::AsyncStream;
use crate::{Error, Log, Offset, Record, StartAt, Stream};
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// Default number of shards (as in the Go library).
///
/// ```
/// use memlog::sharded::{ShardedLog, DEFAULT_SHARDS};
///
/// assert_eq!(ShardedLog::<u8>::new().shards(), DEFAULT_SHARDS);
/// ```
pub const DEFAULT_SHARDS: usize = 1000;
/// The most shards a log may have: the table of shards (one pointer-sized
/// cell each) is allocated up front.
///
/// ```
/// use memlog::sharded::{ShardedLog, MAX_SHARDS};
///
/// assert!(ShardedLog::<u8>::builder().shards(MAX_SHARDS + 1).build().is_err());
/// ```
pub const MAX_SHARDS: usize = 1 << 24;

/// Places a key on a shard. Implement it to choose shards yourself; the
/// crate offers [`Fnv1aSharder`] (the default) and [`KeySharder`].
///
/// ```
/// use memlog::sharded::{ShardedLog, Sharder};
/// use memlog::Error;
///
/// /// Keys are decimal shard numbers.
/// #[derive(Debug)]
/// struct ByNumber;
///
/// impl Sharder for ByNumber {
///     fn shard(&self, key: &[u8], shards: usize) -> Result<usize, Error> {
///         std::str::from_utf8(key)
///             .ok()
///             .and_then(|k| k.parse().ok())
///             .filter(|&i| i < shards)
///             .ok_or_else(|| Error::UnknownKey(String::from_utf8_lossy(key).into_owned()))
///     }
/// }
///
/// let log = ShardedLog::builder().shards(4).sharder(ByNumber).build()?;
/// log.write("3", "x")?;
/// assert_eq!(log.shard_of("3")?, 3);
/// assert!(matches!(log.write("9", "y"), Err(Error::UnknownKey(_))));
/// # Ok::<(), Error>(())
/// ```
pub trait Sharder: Send + Sync + 'static {
    /// The shard (in `0..shards`) for `key`. A shard number out of range is
    /// reported to the caller as [`Error::UnknownKey`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the key can not be placed.
    ///
    /// ```
    /// use memlog::sharded::{Fnv1aSharder, Sharder};
    ///
    /// let i = Fnv1aSharder.shard(b"users", 10)?;
    /// assert!(i < 10);
    /// assert_eq!(Fnv1aSharder.shard(b"users", 10)?, i); // stable
    /// # Ok::<(), memlog::Error>(())
    /// ```
    fn shard(&self, key: &[u8], shards: usize) -> Result<usize, Error>;

    /// Checks, when the log is built, that this sharder can work with
    /// `shards` shards. The default accepts any number.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] saying why not.
    ///
    /// ```
    /// use memlog::sharded::{KeySharder, Sharder};
    ///
    /// let keys = KeySharder::new(["a", "b", "c"]);
    /// assert!(keys.check(3).is_ok());
    /// assert!(matches!(keys.check(2), Err(memlog::Error::InvalidConfig(_))));
    /// ```
    fn check(&self, shards: usize) -> Result<(), Error> {
        let _ = shards;
        Ok(())
    }
}

/// FNV-1a (32-bit) of the key, modulo the number of shards: the Go library's
/// default, so keys land on the same shard numbers as there.
///
/// ```
/// use memlog::sharded::{Fnv1aSharder, Sharder};
///
/// // FNV-1a 32 of "a" is 0xe40c292c.
/// assert_eq!(Fnv1aSharder.shard(b"a", 1000)?, 0xe40c292c % 1000);
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Fnv1aSharder;

/// FNV-1a, 32-bit: the offset basis and prime of the FNV specification.
/// Hand-written because the `fnv` crate only offers the 64-bit variant.
pub(crate) fn fnv1a32(key: &[u8]) -> u32 {
    key.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Sharder for Fnv1aSharder {
    fn shard(&self, key: &[u8], shards: usize) -> Result<usize, Error> {
        Ok(fnv1a32(key) as usize % shards)
    }
}

/// One shard per known key, in the order given; other keys are rejected with
/// [`Error::UnknownKey`]. The log needs at least as many shards as keys.
///
/// ```
/// use memlog::sharded::{KeySharder, ShardedLog};
///
/// let log = ShardedLog::builder()
///     .shards(2)
///     .sharder(KeySharder::new(["users", "groups"]))
///     .build()?;
/// assert_eq!(log.shard_of("users")?, 0);
/// assert_eq!(log.shard_of("groups")?, 1);
/// assert!(log.write("teams", 1u8).is_err());
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeySharder {
    keys: HashMap<Vec<u8>, usize>,
}

impl KeySharder {
    /// A sharder for these keys; a repeated key keeps its first shard.
    ///
    /// ```
    /// use memlog::sharded::{KeySharder, Sharder};
    ///
    /// let s = KeySharder::new(["a", "b", "a", "c"]);
    /// assert_eq!(s.shard(b"c", 3)?, 2);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn new<I, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut map = HashMap::new();
        for k in keys {
            let next = map.len();
            map.entry(k.as_ref().to_vec()).or_insert(next);
        }
        KeySharder { keys: map }
    }
}

impl Sharder for KeySharder {
    fn shard(&self, key: &[u8], shards: usize) -> Result<usize, Error> {
        match self.keys.get(key) {
            Some(&i) if i < shards => Ok(i),
            _ => Err(Error::UnknownKey(String::from_utf8_lossy(key).into_owned())),
        }
    }

    fn check(&self, shards: usize) -> Result<(), Error> {
        if self.keys.len() > shards {
            return Err(Error::InvalidConfig(format!(
                "KeySharder has {} keys but the log has only {shards} shards",
                self.keys.len()
            )));
        }
        Ok(())
    }
}

/// Configures a [`ShardedLog`]; each shard gets the log settings given here.
/// Start with [`ShardedLog::builder`].
///
/// ```
/// use memlog::sharded::ShardedLog;
///
/// let log: ShardedLog<u64> = ShardedLog::builder()
///     .shards(16)
///     .segment_size(256)
///     .history_segments(2)
///     .build()?;
/// assert_eq!(log.shards(), 16);
/// # Ok::<(), memlog::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ShardedBuilder<T, S = Fnv1aSharder> {
    log: Builder<T>,
    shards: usize,
    sharder: S,
}

impl<T, S: fmt::Debug> fmt::Debug for ShardedBuilder<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedBuilder")
            .field("log", &self.log)
            .field("shards", &self.shards)
            .field("sharder", &self.sharder)
            .finish()
    }
}

impl<T, S: Sharder> ShardedBuilder<T, S> {
    /// The number of shards (default 1000); at least 2, at most [`MAX_SHARDS`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::<u8>::builder().shards(2).build()?;
    /// assert_eq!(log.shards(), 2);
    /// assert!(memlog::sharded::ShardedLog::<u8>::builder().shards(1).build().is_err());
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n;
        self
    }

    /// The sharder (default [`Fnv1aSharder`]).
    ///
    /// ```
    /// use memlog::sharded::{KeySharder, ShardedLog};
    ///
    /// let log = ShardedLog::<u8>::builder()
    ///     .shards(2)
    ///     .sharder(KeySharder::new(["a", "b"]))
    ///     .build()?;
    /// assert_eq!(log.shard_of("b")?, 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn sharder<S2: Sharder>(self, s: S2) -> ShardedBuilder<T, S2> {
        ShardedBuilder {
            log: self.log,
            shards: self.shards,
            sharder: s,
        }
    }

    /// Each shard's start offset; see [`Builder::start_offset`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::builder().start_offset(100).build()?;
    /// assert_eq!(log.write("k", 'x')?, 100);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn start_offset(mut self, o: Offset) -> Self {
        self.log = self.log.start_offset(o);
        self
    }

    /// Each shard's segment size; see [`Builder::segment_size`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::builder()
    ///     .segment_size(2)
    ///     .history_segments(0)
    ///     .build()?;
    /// for x in [1, 2, 3] {
    ///     log.write("k", x)?;
    /// }
    /// assert_eq!(log.range("k")?, Some((2, 2)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn segment_size(mut self, n: usize) -> Self {
        self.log = self.log.segment_size(n);
        self
    }

    /// Each shard's history; see [`Builder::history_segments`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::builder()
    ///     .segment_size(2)
    ///     .history_segments(1)
    ///     .build()?;
    /// log.write_batch("k", [1, 2, 3])?;
    /// assert_eq!(log.range("k")?, Some((0, 2)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn history_segments(mut self, n: usize) -> Self {
        self.log = self.log.history_segments(n);
        self
    }

    /// The clock for all shards; see [`Builder::clock`].
    ///
    /// ```
    /// use memlog::clock::ManualClock;
    /// use std::time::UNIX_EPOCH;
    ///
    /// let log = memlog::sharded::ShardedLog::builder()
    ///     .clock(ManualClock::new(UNIX_EPOCH))
    ///     .build()?;
    /// log.write("k", 1)?;
    /// assert_eq!(log.read("k", 0)?.created, UNIX_EPOCH);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn clock<C: Clock>(mut self, c: C) -> Self {
        self.log = self.log.clock(c);
        self
    }

    /// Checks the settings and builds the log.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for fewer than 2 shards, a sharder that
    /// rejects the shard count, or any invalid log setting.
    ///
    /// ```
    /// use memlog::sharded::ShardedLog;
    ///
    /// assert!(ShardedLog::<u8>::builder().build().is_ok());
    /// assert!(ShardedLog::<u8>::builder().segment_size(0).build().is_err());
    /// ```
    pub fn build(self) -> Result<ShardedLog<T, S>, Error>
    where
        T: Clone + Send + Sync + 'static,
    {
        if self.shards < 2 {
            return Err(Error::InvalidConfig(format!(
                "shards must be at least 2, got {}",
                self.shards
            )));
        }
        if self.shards > MAX_SHARDS {
            return Err(Error::InvalidConfig(format!(
                "shards {} is too large: the maximum is {MAX_SHARDS}",
                self.shards
            )));
        }
        self.sharder.check(self.shards)?;
        let config = self.log.config()?;
        Ok(ShardedLog {
            inner: Arc::new(ShardedInner {
                shards: (0..self.shards).map(|_| OnceLock::new()).collect(),
                config,
                sharder: self.sharder,
                closed: AtomicBool::new(false),
            }),
        })
    }
}

impl<T: AsRef<[u8]>, S: Sharder> ShardedBuilder<T, S> {
    /// Each shard's payload limit; see [`Builder::max_record_bytes`].
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::sharded::ShardedLog::builder().max_record_bytes(3).build()?;
    /// assert_eq!(log.write("k", "abcd"), Err(Error::RecordTooLarge { len: 4, max: 3 }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn max_record_bytes(mut self, n: usize) -> Self {
        self.log = self.log.max_record_bytes(n);
        self
    }
}

struct ShardedInner<T, S> {
    shards: Box<[OnceLock<Log<T>>]>,
    config: Config<T>,
    sharder: S,
    /// Set by `close`: shards created afterwards are born closed.
    closed: AtomicBool,
}

/// A set of independent logs, one per shard, addressed by key. Cloning gives
/// another handle to the same logs.
///
/// Each shard is a [`Log`] with its own offsets, created on first write or
/// stream; reads of a shard never used answer as an empty log would, without
/// creating it. Keys that share a shard share its log: a stream of one key
/// sees the records of every key on its shard.
///
/// ```
/// use memlog::sharded::ShardedLog;
///
/// let log: ShardedLog<String> = ShardedLog::new();
/// log.write("alice", "logged in".to_string())?;
/// log.write("bob", "logged in".to_string())?;
/// log.write("alice", "logged out".to_string())?;
/// assert_eq!(log.read("alice", 1)?.data, "logged out");
/// assert_eq!(log.next_offset("alice")?, 2);
/// # Ok::<(), memlog::Error>(())
/// ```
pub struct ShardedLog<T, S = Fnv1aSharder> {
    inner: Arc<ShardedInner<T, S>>,
}

impl<T, S> Clone for ShardedLog<T, S> {
    fn clone(&self) -> Self {
        ShardedLog {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, S: fmt::Debug> fmt::Debug for ShardedLog<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedLog")
            .field("shards", &self.inner.shards.len())
            .field("sharder", &self.inner.sharder)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + Sync + 'static> ShardedLog<T> {
    /// 1000 shards, [`Fnv1aSharder`], default log settings.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// assert_eq!(log.write("key", 1u32)?, 0);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder with the defaults; see [`ShardedBuilder`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::<u8>::builder().shards(8).build()?;
    /// assert_eq!(log.shards(), 8);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "a builder does nothing until `build` is called"]
    pub fn builder() -> ShardedBuilder<T, Fnv1aSharder> {
        ShardedBuilder {
            log: Builder::default(),
            shards: DEFAULT_SHARDS,
            sharder: Fnv1aSharder,
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Default for ShardedLog<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Send + Sync + 'static, S: Sharder> ShardedLog<T, S> {
    /// The number of shards.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::<u8>::builder().shards(4).build()?;
    /// assert_eq!(log.shards(), 4);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// The shard that `key` maps to.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place it.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::<u8>::new();
    /// let i = log.shard_of("users")?;
    /// assert!(i < log.shards());
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn shard_of(&self, key: impl AsRef<[u8]>) -> Result<usize, Error> {
        let n = self.inner.shards.len();
        let i = self.inner.sharder.shard(key.as_ref(), n)?;
        if i >= n {
            return Err(Error::UnknownKey(format!(
                "{} (the sharder chose shard {i} of {n})",
                String::from_utf8_lossy(key.as_ref())
            )));
        }
        Ok(i)
    }

    /// The log of shard `i`, created on first use.
    ///
    /// # Panics
    /// If `i >= self.shards()`.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write("users", 7u8)?;
    /// let shard = log.shard(log.shard_of("users")?);
    /// assert_eq!(shard.read(0)?.data, 7);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn shard(&self, i: usize) -> &Log<T> {
        let cell = &self.inner.shards[i];
        let log = match cell.get() {
            Some(log) => log,
            None => {
                let log = cell.get_or_init(|| Log::from_config(self.inner.config.clone()));
                // A shard created while `close` runs must end up closed.
                // Dekker with `close`: each side stores (the shard / the
                // flag), fences, then loads the other's; SeqCst fences order
                // the two, so at least one side sees the other's store and
                // closes the shard.
                fence(Ordering::SeqCst);
                log
            }
        };
        // Also on the fast path: `close` may have skipped a shard whose
        // creator has not closed it yet. Relaxed suffices for a call ordered
        // after `close` (the flag's store happens-before this load); a call
        // not ordered after it may write first, which is a write before the
        // close.
        if self.inner.closed.load(Ordering::Relaxed) && !log.is_closed() {
            log.close();
        }
        log
    }

    /// The log for `key`, created on first use: for everything [`Log`] offers.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place it.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write("users", "alice")?;
    /// assert_eq!(log.log_for("users")?.range(), Some((0, 0)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn log_for(&self, key: impl AsRef<[u8]>) -> Result<&Log<T>, Error> {
        Ok(self.shard(self.shard_of(key)?))
    }

    /// The log for `key` if its shard was ever used.
    fn existing(&self, key: &[u8]) -> Result<Option<&Log<T>>, Error> {
        Ok(self.inner.shards[self.shard_of(key)?].get())
    }

    /// What reading `offset` from a shard that was never used gives.
    fn unused_shard_read(&self, offset: Offset) -> Error {
        if offset < self.inner.config.start {
            Error::OutOfRange
        } else {
            Error::FutureOffset
        }
    }

    /// Appends to `key`'s shard; see [`Log::write`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::write`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// assert_eq!(log.write("a", 1u8)?, 0);
    /// assert_eq!(log.write("a", 2u8)?, 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write(&self, key: impl AsRef<[u8]>, data: T) -> Result<Offset, Error> {
        self.log_for(key)?.write(data)
    }

    /// Appends to `key`'s shard with a given `created` time; see
    /// [`Log::write_timed`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::write`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let log = memlog::sharded::ShardedLog::new();
    /// let t = UNIX_EPOCH + Duration::from_secs(10);
    /// log.write_timed("a", t, 1u8)?;
    /// assert_eq!(log.read("a", 0)?.created, t);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_timed(
        &self,
        key: impl AsRef<[u8]>,
        created: SystemTime,
        data: T,
    ) -> Result<Offset, Error> {
        self.log_for(key)?.write_timed(created, data)
    }

    /// Appends a batch to `key`'s shard; see [`Log::write_batch`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::write_batch`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// assert_eq!(log.write_batch("a", [1u8, 2, 3])?, 0..3);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_batch<I: IntoIterator<Item = T>>(
        &self,
        key: impl AsRef<[u8]>,
        batch: I,
    ) -> Result<Range<Offset>, Error> {
        self.log_for(key)?.write_batch(batch)
    }

    /// Appends a batch with given `created` times to `key`'s shard; see
    /// [`Log::write_batch_timed`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::write_batch`].
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let log = memlog::sharded::ShardedLog::new();
    /// let t = |s| UNIX_EPOCH + Duration::from_secs(s);
    /// assert_eq!(log.write_batch_timed("a", [(t(2), 'x'), (t(1), 'y')])?, 0..2);
    /// assert_eq!(log.read("a", 1)?.created, t(1));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn write_batch_timed<I>(
        &self,
        key: impl AsRef<[u8]>,
        batch: I,
    ) -> Result<Range<Offset>, Error>
    where
        I: IntoIterator<Item = (SystemTime, T)>,
    {
        self.log_for(key)?.write_batch_timed(batch)
    }

    /// Reads from `key`'s shard; see [`Log::read`]. A shard never used is
    /// not created.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::read`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write("a", "x")?;
    /// assert_eq!(log.read("a", 0)?.data, "x");
    /// assert_eq!(log.read("a", 1), Err(memlog::Error::FutureOffset));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn read(&self, key: impl AsRef<[u8]>, offset: Offset) -> Result<Record<T>, Error> {
        match self.existing(key.as_ref())? {
            Some(log) => log.read(offset),
            None => Err(self.unused_shard_read(offset)),
        }
    }

    /// Reads a run from `key`'s shard; see [`Log::read_batch`]. A shard
    /// never used is not created.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::read_batch`].
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write_batch("a", 0..5u8)?;
    /// let mut out = Vec::new();
    /// assert_eq!(log.read_batch("a", 3, &mut out, 10)?, 2);
    /// assert_eq!(out[0].data, 3);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn read_batch(
        &self,
        key: impl AsRef<[u8]>,
        start: Offset,
        out: &mut Vec<Record<T>>,
        max: usize,
    ) -> Result<usize, Error> {
        match self.existing(key.as_ref())? {
            Some(log) => log.read_batch(start, out, max),
            None if max == 0 => Ok(0),
            None => Err(self.unused_shard_read(start)),
        }
    }

    /// A stream of `key`'s shard; see [`Log::stream`]. Records of other keys
    /// that share the shard appear in it too.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write("a", 1u8)?;
    /// let mut stream = log.stream("a", 0)?;
    /// assert_eq!(stream.next().unwrap()?.data, 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn stream(&self, key: impl AsRef<[u8]>, start: Offset) -> Result<Stream<T>, Error> {
        Ok(self.log_for(key)?.stream(start))
    }

    /// A stream of `key`'s shard from the earliest retained offset, the next
    /// offset to be written, a given offset, or the first record at or after
    /// a time ([`StartAt::Time`], searched in that shard alone); see
    /// [`Log::stream_from`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    ///
    /// ```
    /// use memlog::StartAt;
    ///
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write("a", 1u8)?;
    /// let mut live = log.stream_from("a", StartAt::Latest)?;
    /// log.write("a", 2)?;
    /// assert_eq!(live.next().unwrap()?.data, 2);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn stream_from(&self, key: impl AsRef<[u8]>, at: StartAt) -> Result<Stream<T>, Error> {
        Ok(self.log_for(key)?.stream_from(at))
    }

    /// An async stream of `key`'s shard (feature `async`); see
    /// [`Log::stream_async`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    ///
    /// ```
    /// use futures_util::StreamExt;
    ///
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write("a", 1u8)?;
    /// let mut stream = log.stream_async("a", 0)?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(rt.block_on(stream.next()).unwrap()?.data, 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn stream_async(
        &self,
        key: impl AsRef<[u8]>,
        start: Offset,
    ) -> Result<AsyncStream<T>, Error> {
        Ok(self.log_for(key)?.stream_async(start))
    }

    /// An async stream of `key`'s shard from where `at` says (feature
    /// `async`); see [`Log::stream_async_from`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::StartAt;
    ///
    /// let log = memlog::sharded::ShardedLog::new();
    /// log.write_batch("a", [1u8, 2])?;
    /// let mut stream = log.stream_async_from("a", StartAt::Earliest)?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(rt.block_on(stream.next()).unwrap()?.data, 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn stream_async_from(
        &self,
        key: impl AsRef<[u8]>,
        at: StartAt,
    ) -> Result<AsyncStream<T>, Error> {
        Ok(self.log_for(key)?.stream_async_from(at))
    }

    /// The retained range of `key`'s shard; see [`Log::range`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::new();
    /// assert_eq!(log.range("a")?, None);
    /// log.write_batch("a", [1u8, 2])?;
    /// assert_eq!(log.range("a")?, Some((0, 1)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn range(&self, key: impl AsRef<[u8]>) -> Result<Option<(Offset, Offset)>, Error> {
        Ok(self.existing(key.as_ref())?.and_then(Log::range))
    }

    /// The offset the next write to `key`'s shard will get; see
    /// [`Log::next_offset`]. A shard never used is not created.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::builder().start_offset(10).build()?;
    /// assert_eq!(log.next_offset("a")?, 10);
    /// log.write("a", 'x')?;
    /// assert_eq!(log.next_offset("a")?, 11);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn next_offset(&self, key: impl AsRef<[u8]>) -> Result<Offset, Error> {
        Ok(match self.existing(key.as_ref())? {
            Some(log) => log.next_offset(),
            None => self.inner.config.start,
        })
    }

    /// The offset of every shard's first record (the builder's
    /// `start_offset`).
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::<u8>::builder().start_offset(3).build()?;
    /// assert_eq!(log.start_offset(), 3);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn start_offset(&self) -> Offset {
        self.inner.config.start
    }

    /// Whether [`close`](ShardedLog::close) was called.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::<u8>::new();
    /// assert!(!log.is_closed());
    /// log.close();
    /// assert!(log.is_closed());
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Relaxed)
    }

    /// Closes every shard; see [`Log::close`]. Shards never used are not
    /// created for it: they are born closed when first used.
    ///
    /// ```
    /// let log = memlog::sharded::ShardedLog::builder().shards(4).build()?;
    /// log.write("a", 1u8)?;
    /// log.close();
    /// assert_eq!(log.write("a", 2), Err(memlog::Error::Closed));
    /// assert_eq!(log.write("never used", 3), Err(memlog::Error::Closed));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        // See `shard`.
        fence(Ordering::SeqCst);
        // A shard's close wakes its waiters, user code: one that panics must
        // not leave the later shards open and their streams asleep. Close
        // them all, then resume the first panic (as `Waiters::notify_all`).
        let mut first_panic = None;
        for cell in self.inner.shards.iter() {
            if let Some(log) = cell.get() {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| log.close())) {
                    first_panic.get_or_insert(p);
                }
            }
        }
        if let Some(p) = first_panic {
            resume_unwind(p);
        }
    }
}
