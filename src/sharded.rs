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

use crate::builder::{Builder, Config};
use crate::clock::Clock;
use crate::{Error, Log, Offset, Record, Stream};
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Default number of shards (as in the Go library).
pub const DEFAULT_SHARDS: usize = 1000;
/// The most shards a log may have: the table of shards (one pointer-sized
/// cell each) is allocated up front.
pub const MAX_SHARDS: usize = 1 << 24;

/// Places a key on a shard.
pub trait Sharder: Send + Sync + 'static {
    /// The shard (in `0..shards`) for `key`.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the key can not be placed.
    fn shard(&self, key: &[u8], shards: usize) -> Result<usize, Error>;

    /// Checks, when the log is built, that this sharder can work with
    /// `shards` shards. The default accepts any number.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] saying why not.
    fn check(&self, shards: usize) -> Result<(), Error> {
        let _ = shards;
        Ok(())
    }
}

/// FNV-1a (32-bit) of the key, modulo the number of shards: the Go library's
/// default, so keys land on the same shard numbers as there.
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
/// [`Error::UnknownKey`].
#[derive(Clone, Debug)]
pub struct KeySharder {
    keys: HashMap<Vec<u8>, usize>,
}

impl KeySharder {
    /// A sharder for these keys; a repeated key keeps its first shard.
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
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n;
        self
    }

    /// The sharder (default [`Fnv1aSharder`]).
    pub fn sharder<S2: Sharder>(self, s: S2) -> ShardedBuilder<T, S2> {
        ShardedBuilder {
            log: self.log,
            shards: self.shards,
            sharder: s,
        }
    }

    /// Each shard's start offset; see [`Builder::start_offset`].
    pub fn start_offset(mut self, o: Offset) -> Self {
        self.log = self.log.start_offset(o);
        self
    }

    /// Each shard's segment size; see [`Builder::segment_size`].
    pub fn segment_size(mut self, n: usize) -> Self {
        self.log = self.log.segment_size(n);
        self
    }

    /// Each shard's history; see [`Builder::history_segments`].
    pub fn history_segments(mut self, n: usize) -> Self {
        self.log = self.log.history_segments(n);
        self
    }

    /// The clock for all shards; see [`Builder::clock`].
    pub fn clock<C: Clock>(mut self, c: C) -> Self {
        self.log = self.log.clock(c);
        self
    }

    /// Checks the settings and builds the log.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for fewer than 2 shards, a sharder that
    /// rejects the shard count, or any invalid log setting.
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
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder with the defaults.
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
    pub fn shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// The shard that `key` maps to.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place it.
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
    pub fn shard(&self, i: usize) -> &Log<T> {
        let cell = &self.inner.shards[i];
        if let Some(log) = cell.get() {
            return log;
        }
        let log = cell.get_or_init(|| Log::from_config(self.inner.config.clone()));
        // A shard created while `close` runs must end up closed. Dekker with
        // `close`: each side stores (the shard / the flag), fences, then
        // loads the other's; SeqCst fences order the two, so at least one
        // side sees the other's store and closes the shard.
        fence(Ordering::SeqCst);
        if self.inner.closed.load(Ordering::Relaxed) {
            log.close();
        }
        log
    }

    /// The log for `key`, created on first use.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place it.
    pub fn log_for(&self, key: impl AsRef<[u8]>) -> Result<&Log<T>, Error> {
        Ok(self.shard(self.shard_of(key)?))
    }

    /// The log for `key` if its shard was ever used.
    fn existing(&self, key: &[u8]) -> Result<Option<&Log<T>>, Error> {
        Ok(self.inner.shards[self.shard_of(key)?].get())
    }

    /// Appends to `key`'s shard; see [`Log::write`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::write`].
    pub fn write(&self, key: impl AsRef<[u8]>, data: T) -> Result<Offset, Error> {
        self.log_for(key)?.write(data)
    }

    /// Appends a batch to `key`'s shard; see [`Log::write_batch`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::write_batch`].
    pub fn write_batch<I: IntoIterator<Item = T>>(
        &self,
        key: impl AsRef<[u8]>,
        batch: I,
    ) -> Result<Range<Offset>, Error> {
        self.log_for(key)?.write_batch(batch)
    }

    /// Reads from `key`'s shard; see [`Log::read`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::read`].
    pub fn read(&self, key: impl AsRef<[u8]>, offset: Offset) -> Result<Record<T>, Error> {
        match self.existing(key.as_ref())? {
            Some(log) => log.read(offset),
            None if offset < self.inner.config.start => Err(Error::OutOfRange),
            None => Err(Error::FutureOffset),
        }
    }

    /// Reads a run from `key`'s shard; see [`Log::read_batch`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`], or as [`Log::read_batch`].
    pub fn read_batch(
        &self,
        key: impl AsRef<[u8]>,
        start: Offset,
        out: &mut Vec<Record<T>>,
        max: usize,
    ) -> Result<usize, Error> {
        self.log_for(key)?.read_batch(start, out, max)
    }

    /// A stream of `key`'s shard; see [`Log::stream`]. Records of other keys
    /// that share the shard appear in it too.
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    pub fn stream(&self, key: impl AsRef<[u8]>, start: Offset) -> Result<Stream<T>, Error> {
        Ok(self.log_for(key)?.stream(start))
    }

    /// The retained range of `key`'s shard; see [`Log::range`].
    ///
    /// # Errors
    /// [`Error::UnknownKey`] if the sharder can not place the key.
    pub fn range(&self, key: impl AsRef<[u8]>) -> Result<Option<(Offset, Offset)>, Error> {
        Ok(self.existing(key.as_ref())?.and_then(Log::range))
    }

    /// Closes every shard; see [`Log::close`]. Shards never used are not
    /// created for it: they are born closed when first used.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        // See `shard`.
        fence(Ordering::SeqCst);
        for cell in self.inner.shards.iter() {
            if let Some(log) = cell.get() {
                log.close();
            }
        }
    }
}
