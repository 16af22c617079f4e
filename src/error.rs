//! The one error type of the crate.

use std::fmt;

/// What went wrong. Every fallible call of the crate returns this.
///
/// The text of each variant ([`fmt::Display`]) says what was wrong and, where
/// there is one, what the limit is; it is stable and may be matched by
/// callers that only see text (for example across an HTTP boundary).
/// [`kind`](Error::kind) gives a stable machine-readable name.
///
/// ```
/// use memlog::{Error, Log};
///
/// let log = Log::<u8>::new();
/// match log.read(3) {
///     Err(Error::FutureOffset) => {} // not written yet: try again later
///     Err(Error::OutOfRange) => unreachable!("nothing was purged"),
///     Err(e) => panic!("{e}"),
///     Ok(r) => panic!("{r:?}"),
/// }
/// assert_eq!(Error::FutureOffset.to_string(), "offset is not written yet");
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The offset has not been written (published) yet. From
    /// `Stream::try_recv`: nothing new yet; the stream stays usable.
    FutureOffset,
    /// The offset is below the earliest retained offset: it was purged, or is
    /// below the log's start offset.
    ///
    /// A stream yields it once, at the first offset it had not fetched, and
    /// ends (unless it was set to skip with `Stream::on_lag(Lag::Skip)`,
    /// which yields [`Lagged`](Error::Lagged) instead). Since a stream
    /// fetches up to 32 records at a time, **up to 31 records fetched before
    /// the purge may still be yielded before it**, intact, as a Go channel's
    /// buffer or a Kafka consumer's fetched batch would.
    ///
    /// ```
    /// use memlog::{Error, Log};
    ///
    /// let log = Log::builder().segment_size(2).history_segments(0).build()?;
    /// for x in [1, 2, 3] {
    ///     log.write(x)?; // 3 opens a new segment and purges 1 and 2
    /// }
    /// assert_eq!(log.read(0), Err(Error::OutOfRange));
    /// let mut stream = log.stream(0);
    /// assert_eq!(stream.next(), Some(Err(Error::OutOfRange)));
    /// assert_eq!(stream.next(), None);
    /// # Ok::<(), Error>(())
    /// ```
    OutOfRange,
    /// A stream set to skip (`Stream::on_lag(Lag::Skip)`) found its next
    /// offset purged and moved to the earliest retained offset; `skipped`
    /// offsets were lost between the last record it yielded and the next.
    /// The stream goes on: this is not an ending.
    ///
    /// ```
    /// use memlog::{Error, Lag, Log};
    ///
    /// let log = Log::builder().segment_size(2).history_segments(0).build()?;
    /// let mut stream = log.stream(0).on_lag(Lag::Skip);
    /// for x in [1, 2, 3] {
    ///     log.write(x)?; // 3 purges offsets 0 and 1
    /// }
    /// assert_eq!(stream.next(), Some(Err(Error::Lagged { skipped: 2 })));
    /// assert_eq!(stream.next().unwrap()?.data, 3);
    /// # Ok::<(), Error>(())
    /// ```
    Lagged {
        /// How many offsets the stream skipped.
        skipped: u64,
    },
    /// The record's payload is larger than the configured maximum; nothing was
    /// written.
    RecordTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The configured maximum (`Builder::max_record_bytes`).
        max: usize,
    },
    /// The log was closed with `Log::close`; nothing was written. From a
    /// stream (`try_recv`, `recv_timeout`): closed and drained.
    Closed,
    /// The stream was cancelled through its `Canceller`.
    Cancelled,
    /// A wait with a deadline (`Stream::recv_timeout`) ran out; the stream is
    /// still usable.
    Timeout,
    /// A builder setting is invalid; the text names the setting and the limit.
    InvalidConfig(String),
    /// A sharder could not place the key (for example a key that a
    /// `KeySharder` was not given).
    UnknownKey(String),
    /// The log has an exclusive [`Writer`](crate::Writer), and this handle
    /// is not it: only the writer writes. Nothing was written.
    ///
    /// ```
    /// let (mut writer, log) = memlog::Log::builder().build_exclusive()?;
    /// assert_eq!(log.write(1u8), Err(memlog::Error::ReadOnly));
    /// assert_eq!(writer.write(1u8)?, 0);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    ReadOnly,
    /// The write would purge records a stream holds
    /// ([`Lag::Hold`](crate::Lag::Hold)), and the caller asked not to wait
    /// ([`Log::try_write`](crate::Log::try_write) and its kin). Nothing was
    /// written; try again once the holding streams read on.
    ///
    /// ```
    /// use memlog::{Error, Lag, Log};
    ///
    /// let log = Log::builder().segment_size(2).history_segments(0).build()?;
    /// let _slow = log.stream(0).on_lag(Lag::Hold);
    /// log.write_batch([1, 2])?;
    /// assert_eq!(log.try_write(3), Err(Error::Full)); // would purge 0 and 1
    /// # Ok::<(), Error>(())
    /// ```
    Full,
    /// A batch is longer than the log retains, so it would purge itself;
    /// nothing was written.
    BatchTooLarge {
        /// The batch's length in records, as far as it is known: the log
        /// stops pulling the batch's iterator one record past `max`, so this
        /// is what it pulled plus the iterator's lower size bound for the
        /// rest (exact for a `Vec` or a range; `usize::MAX` for an endless
        /// range).
        len: usize,
        /// What the log retains: `segment_size * (history_segments + 1)`.
        max: usize,
    },
}

impl Error {
    /// A stable, machine-readable name for the variant, in snake case:
    /// `future_offset`, `out_of_range`, `lagged`, `record_too_large`, `closed`,
    /// `cancelled`, `timeout`, `invalid_config`, `unknown_key`,
    /// `batch_too_large`, `read_only`. With the `serde` feature an error serializes as
    /// `{"error": kind, "message": Display text, …}` (see the `Serialize` impl).
    ///
    /// ```
    /// assert_eq!(memlog::Error::OutOfRange.kind(), "out_of_range");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::FutureOffset => "future_offset",
            Error::OutOfRange => "out_of_range",
            Error::Lagged { .. } => "lagged",
            Error::RecordTooLarge { .. } => "record_too_large",
            Error::Closed => "closed",
            Error::Cancelled => "cancelled",
            Error::Timeout => "timeout",
            Error::InvalidConfig(_) => "invalid_config",
            Error::UnknownKey(_) => "unknown_key",
            Error::BatchTooLarge { .. } => "batch_too_large",
            Error::ReadOnly => "read_only",
            Error::Full => "full",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FutureOffset => f.write_str("offset is not written yet"),
            Error::OutOfRange => {
                f.write_str("offset is out of range: below the earliest retained offset")
            }
            Error::Lagged { skipped } => write!(
                f,
                "stream fell behind retention: skipped {skipped} purged offsets"
            ),
            Error::RecordTooLarge { len, max } => {
                write!(
                    f,
                    "record too large: {len} bytes, the maximum is {max} bytes"
                )
            }
            Error::Closed => f.write_str("log is closed"),
            Error::Cancelled => f.write_str("stream was cancelled"),
            Error::Timeout => f.write_str(
                "timed out: the next record was not written, or no holding stream read on, in time",
            ),
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::UnknownKey(key) => write!(f, "no shard for key {key:?}"),
            Error::BatchTooLarge { len, max } => write!(
                f,
                "batch too large: {len} records, the log retains at most {max}"
            ),
            Error::ReadOnly => f.write_str(
                "log is read-only through this handle: it has an exclusive Writer, which alone writes",
            ),
            Error::Full => f.write_str(
                "log is full: the write would purge records a holding stream has not read yet",
            ),
        }
    }
}

impl std::error::Error for Error {}
