//! The one error type of the crate.

use std::fmt;

/// What went wrong. Every fallible call of the crate returns this.
///
/// The text of each variant ([`fmt::Display`]) says what was wrong and, where
/// there is one, what the limit is; it is stable and may be matched by
/// callers that only see text (for example across an HTTP boundary).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The offset has not been written (published) yet.
    FutureOffset,
    /// The offset is below the earliest retained offset: it was purged, or is
    /// below the log's start offset.
    OutOfRange,
    /// The record's payload is larger than the configured maximum; nothing was
    /// written.
    RecordTooLarge {
        /// The payload's length in bytes.
        len: usize,
        /// The configured maximum (`Builder::max_record_bytes`).
        max: usize,
    },
    /// The log was closed with `Log::close`; nothing was written.
    Closed,
    /// The stream was cancelled through its `Canceller`.
    Cancelled,
    /// A wait with a deadline ran out; the stream is still usable.
    Timeout,
    /// A builder setting is invalid; the text names the setting and the limit.
    InvalidConfig(String),
    /// A sharder could not place the key (for example a key that a
    /// `KeySharder` was not given).
    UnknownKey(String),
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
    /// `future_offset`, `out_of_range`, `record_too_large`, `closed`,
    /// `cancelled`, `timeout`, `invalid_config`, `unknown_key`,
    /// `batch_too_large`. With the `serde` feature an error serializes as
    /// `{"error": kind, "message": Display text, …}` (see the `Serialize` impl).
    ///
    /// ```
    /// assert_eq!(memlog::Error::OutOfRange.kind(), "out_of_range");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::FutureOffset => "future_offset",
            Error::OutOfRange => "out_of_range",
            Error::RecordTooLarge { .. } => "record_too_large",
            Error::Closed => "closed",
            Error::Cancelled => "cancelled",
            Error::Timeout => "timeout",
            Error::InvalidConfig(_) => "invalid_config",
            Error::UnknownKey(_) => "unknown_key",
            Error::BatchTooLarge { .. } => "batch_too_large",
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
            Error::RecordTooLarge { len, max } => {
                write!(
                    f,
                    "record too large: {len} bytes, the maximum is {max} bytes"
                )
            }
            Error::Closed => f.write_str("log is closed"),
            Error::Cancelled => f.write_str("stream was cancelled"),
            Error::Timeout => f.write_str("timed out waiting for the next record"),
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::UnknownKey(key) => write!(f, "no shard for key {key:?}"),
            Error::BatchTooLarge { len, max } => write!(
                f,
                "batch too large: {len} records, the log retains at most {max}"
            ),
        }
    }
}

impl std::error::Error for Error {}
