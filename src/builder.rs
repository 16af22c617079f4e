//! Configuring a log, and checking the configuration.

use crate::clock::{Clock, CoarseClock, TickingClock};
use crate::config::{Config, SizeOf};
use crate::{Error, Log, Offset, Writer};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// The largest start offset: relative offsets use 63 bits, so the sum never
/// overflows `u64`.
///
/// ```
/// use memlog::{Log, MAX_START_OFFSET};
///
/// assert!(Log::<u8>::builder().start_offset(MAX_START_OFFSET).build().is_ok());
/// assert!(Log::<u8>::builder().start_offset(MAX_START_OFFSET + 1).build().is_err());
/// ```
pub const MAX_START_OFFSET: Offset = (1 << 63) - 1;
/// The most history segments a log may keep (the ring of segment pointers is
/// allocated up front).
///
/// ```
/// use memlog::{Log, MAX_HISTORY_SEGMENTS};
///
/// let too_many = Log::<u8>::builder().history_segments(MAX_HISTORY_SEGMENTS + 1).build();
/// assert!(matches!(too_many, Err(memlog::Error::InvalidConfig(_))));
/// ```
pub const MAX_HISTORY_SEGMENTS: usize = 1 << 20;
/// The most records a log may retain: `segment_size * (history_segments + 1)`.
///
/// ```
/// use memlog::{Error, Log};
///
/// // 2^42 records per segment, 2^20 + 1 segments: over MAX_RETAINED (2^62).
/// let huge = Log::<()>::builder().segment_size(1 << 42).history_segments(1 << 20).build();
/// assert!(matches!(huge, Err(Error::InvalidConfig(_))));
/// ```
pub const MAX_RETAINED: u64 = 1 << 62;

/// Default `segment_size`.
///
/// ```
/// use memlog::{Log, DEFAULT_HISTORY_SEGMENTS as H, DEFAULT_SEGMENT_SIZE as S};
///
/// let log = Log::new();
/// log.write_batch(0..(S * (H + 1)) as u64)?; // fills the default retention
/// log.write(0)?; // opens a segment: the oldest one is purged
/// assert_eq!(log.range(), Some((S as u64, (S * (H + 1)) as u64)));
/// # Ok::<(), memlog::Error>(())
/// ```
pub const DEFAULT_SEGMENT_SIZE: usize = 1024;
/// Default `history_segments` (as in the Go library); see also
/// [`DEFAULT_SEGMENT_SIZE`].
///
/// ```
/// let log = memlog::Log::<u8>::new();
/// assert!(format!("{log:?}").contains("history_segments: 1"));
/// assert_eq!(memlog::DEFAULT_HISTORY_SEGMENTS, 1);
/// ```
pub const DEFAULT_HISTORY_SEGMENTS: usize = 1;

/// Configures a [`Log`]. Start with [`Log::builder`].
///
/// ```
/// use memlog::Log;
///
/// let log: Log<String> = Log::builder()
///     .start_offset(100)
///     .segment_size(10)
///     .history_segments(1)
///     .build()?;
/// for i in 0..50 {
///     log.write(format!("record {i}"))?;
/// }
/// // The active segment (140..149) and one history segment (130..139).
/// assert_eq!(log.range(), Some((130, 149)));
/// # Ok::<(), memlog::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder<T> {
    start: Offset,
    segment_size: usize,
    history: usize,
    clock: Arc<dyn Clock>,
    ticking: Option<TickingClock>,
    max_record: Option<(usize, SizeOf<T>)>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Builder<T> {
    fn clone(&self) -> Self {
        Builder {
            start: self.start,
            segment_size: self.segment_size,
            history: self.history,
            clock: Arc::clone(&self.clock),
            ticking: self.ticking.clone(),
            max_record: self.max_record,
            _t: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Builder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("start_offset", &self.start)
            .field("segment_size", &self.segment_size)
            .field("history_segments", &self.history)
            .field("max_record_bytes", &self.max_record.map(|m| m.0))
            .finish_non_exhaustive()
    }
}

impl<T> Default for Builder<T> {
    fn default() -> Self {
        Builder {
            start: 0,
            segment_size: DEFAULT_SEGMENT_SIZE,
            history: DEFAULT_HISTORY_SEGMENTS,
            clock: Arc::new(CoarseClock),
            ticking: None,
            max_record: None,
            _t: PhantomData,
        }
    }
}

impl<T> Builder<T> {
    /// The offset of the first record (default 0), at most [`MAX_START_OFFSET`].
    ///
    /// ```
    /// let log = memlog::Log::builder().start_offset(1_000).build()?;
    /// assert_eq!(log.write("first")?, 1_000);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn start_offset(mut self, o: Offset) -> Self {
        self.start = o;
        self
    }

    /// Records per segment (default 1024); must be > 0. A segment's slots are
    /// allocated when it is first written, and recycled after it is purged.
    ///
    /// ```
    /// let log = memlog::Log::builder().segment_size(4).history_segments(0).build()?;
    /// for i in 0..5u8 {
    ///     log.write(i)?; // the 5th record opens a segment, purging the first
    /// }
    /// assert_eq!(log.range(), Some((4, 4)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn segment_size(mut self, n: usize) -> Self {
        self.segment_size = n;
        self
    }

    /// How many full segments are kept besides the active one (default 1).
    /// The log retains between `segment_size * history_segments + 1` and
    /// `segment_size * (history_segments + 1)` records.
    ///
    /// ```
    /// let log = memlog::Log::builder().segment_size(4).history_segments(2).build()?;
    /// for i in 0..13u8 {
    ///     log.write(i)?;
    /// }
    /// assert_eq!(log.range(), Some((4, 12)));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn history_segments(mut self, n: usize) -> Self {
        self.history = n;
        self
    }

    /// The clock that stamps records' `created` time (default
    /// [`CoarseClock`](crate::clock::CoarseClock): millisecond-scale resolution;
    /// use [`SystemClock`](crate::clock::SystemClock) for nanoseconds).
    ///
    /// ```
    /// use memlog::clock::SystemClock;
    ///
    /// let log = memlog::Log::builder().clock(SystemClock).build()?;
    /// log.write(1u8)?;
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn clock<C: Clock>(mut self, c: C) -> Self {
        self.ticking = (&c as &dyn Any).downcast_ref::<TickingClock>().cloned();
        self.clock = Arc::new(c);
        self
    }

    /// Checks the settings and builds the log.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`], naming the setting, when `segment_size` is 0,
    /// `start_offset` exceeds [`MAX_START_OFFSET`], `history_segments` exceeds
    /// [`MAX_HISTORY_SEGMENTS`], or a segment or the retained capacity would
    /// not fit in memory addresses or in [`MAX_RETAINED`].
    ///
    /// ```
    /// use memlog::{Error, Log};
    ///
    /// let err = Log::<u8>::builder().segment_size(0).build().unwrap_err();
    /// assert_eq!(err, Error::InvalidConfig("segment_size must be > 0".into()));
    /// ```
    pub fn build(self) -> Result<Log<T>, Error>
    where
        T: Clone + Send + Sync + 'static,
    {
        Ok(Log::from_config(self.config()?))
    }

    /// Builds a log with an exclusive [`Writer`]: the one handle that can
    /// write to it, and the fastest way to (see [`Writer`]). The [`Log`]
    /// handles (this one, and every clone) read, stream and close;
    /// their writes fail [`Error::ReadOnly`]. Most logs have one producer,
    /// such as a poller feeding many readers: give it the `Writer`.
    ///
    /// # Errors
    /// As [`build`](Builder::build).
    ///
    /// ```
    /// use memlog::Log;
    ///
    /// let (mut writer, log) = Log::builder().segment_size(64).build_exclusive()?;
    /// let stream = log.stream(0);
    /// let producer = std::thread::spawn(move || {
    ///     for i in 0..100u64 {
    ///         writer.write(i).unwrap();
    ///     }
    ///     // Dropping the writer closes the log: the stream ends.
    /// });
    /// let got: Vec<u64> = stream.map(|r| r.unwrap().data).collect();
    /// assert_eq!(got, (0..100).collect::<Vec<_>>());
    /// producer.join().unwrap();
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn build_exclusive(self) -> Result<(Writer<T>, Log<T>), Error>
    where
        T: Clone + Send + Sync + 'static,
    {
        let log = Log::with_sequencer(self.config()?, crate::mode::Sequencer::new_exclusive());
        Ok((Writer::new(log.clone()), log))
    }

    pub(crate) fn config(self) -> Result<Config<T>, Error> {
        let invalid = |s: String| Err(Error::InvalidConfig(s));
        if self.segment_size == 0 {
            return invalid("segment_size must be > 0".into());
        }
        if self.start > MAX_START_OFFSET {
            return invalid(format!(
                "start_offset {} is too large: the maximum is {MAX_START_OFFSET}, so that offsets can not overflow u64",
                self.start
            ));
        }
        if self.history > MAX_HISTORY_SEGMENTS {
            return invalid(format!(
                "history_segments {} is too large: the maximum is {MAX_HISTORY_SEGMENTS}",
                self.history
            ));
        }
        // A segment is one allocation of `segment_size` slots: refuse here a
        // size that can never be allocated, rather than fail at the first
        // write into it, after its offset was claimed.
        let slot = std::mem::size_of::<crate::slot::Slot<T>>();
        if std::alloc::Layout::array::<crate::slot::Slot<T>>(self.segment_size).is_err() {
            return invalid(format!(
                "segment_size {} is too large: a segment of {slot}-byte slots must fit in isize::MAX bytes",
                self.segment_size
            ));
        }
        let ring_len = self.history as u64 + 1;
        match (self.segment_size as u64).checked_mul(ring_len) {
            Some(cap) if cap <= MAX_RETAINED => {}
            _ => {
                return invalid(format!(
                    "segment_size {} * (history_segments {} + 1) is too large: the log may retain at most {MAX_RETAINED} records",
                    self.segment_size, self.history
                ))
            }
        }
        Ok(Config {
            start: self.start,
            segment_size: self.segment_size as u64,
            history: self.history as u64,
            ring_len,
            clock: self.clock,
            ticking: self.ticking,
            max_record: self.max_record,
        })
    }
}

impl<T: AsRef<[u8]>> Builder<T> {
    /// Rejects payloads longer than `n` bytes with [`Error::RecordTooLarge`]
    /// (default: no limit). Only for payloads that are bytes (`AsRef<[u8]>`).
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::builder().max_record_bytes(4).build()?;
    /// assert_eq!(log.write(b"abcd".to_vec())?, 0);
    /// assert_eq!(log.write(b"abcde".to_vec()), Err(Error::RecordTooLarge { len: 5, max: 4 }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn max_record_bytes(mut self, n: usize) -> Self {
        self.max_record = Some((n, |t: &T| t.as_ref().len()));
        self
    }
}

impl<T: Clone + Send + Sync + 'static> Default for Log<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Making a log.
impl<T: Clone + Send + Sync + 'static> Log<T> {
    /// A log with the defaults: start offset 0, segments of 1024 records, one
    /// history segment, the coarse wall clock ([`CoarseClock`](crate::clock::CoarseClock)).
    ///
    /// ```
    /// let log: memlog::Log<String> = memlog::Log::new();
    /// assert_eq!(log.write("a".to_string())?, 0);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn new() -> Log<T> {
        Builder::default()
            .build()
            .expect("the default configuration is valid")
    }

    /// A builder to configure a log; see [`Builder`].
    ///
    /// ```
    /// let log = memlog::Log::builder().segment_size(64).build()?;
    /// log.write(1u8)?;
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use = "a builder does nothing until `build` is called"]
    pub fn builder() -> Builder<T> {
        Builder::default()
    }
}
