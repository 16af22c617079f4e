//! [`Error`]: memlog's errors, plus what a network log adds.

use std::fmt;
use std::time::Duration;

/// What went wrong. memlog's contract errors come through unchanged as
/// [`Error::Log`] (compare with `==` against a [`memlog::Error`]); the other
/// variants are what only a networked log can say.
///
/// ```
/// use memlog_jetstream::Error;
///
/// let e = Error::from(memlog::Error::OutOfRange);
/// assert_eq!(e, memlog::Error::OutOfRange);
/// assert_eq!(e.kind(), "out_of_range");
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// One of memlog's errors, with memlog's meaning: `FutureOffset`,
    /// `OutOfRange`, `RecordTooLarge`, `BatchTooLarge`, `Closed`,
    /// `Cancelled`, `Timeout`, `InvalidConfig`.
    Log(memlog::Error),
    /// No server could be reached when connecting.
    Connect {
        /// The server addresses that were tried.
        servers: String,
        /// What the client said.
        detail: String,
    },
    /// The stream does not exist.
    StreamNotFound {
        /// The stream's name.
        stream: String,
    },
    /// The servers did not answer within the operation's timeout, retries
    /// included. A write that fails this way may still have landed: retry it
    /// with the same message id ([`JetStreamLog::write_with_id`](crate::JetStreamLog::write_with_id))
    /// within the duplicate window and it lands at most once.
    Unavailable {
        /// The operation: `write`, `read`, `info`, `close`, `stream`, …
        op: &'static str,
        /// How long it tried.
        waited: Duration,
        /// The last failure the client saw.
        detail: String,
    },
    /// The message at `offset` was deleted from the middle of the stream (by
    /// a client other than this crate: the streams it creates deny
    /// deletes). A memlog log has no holes, so this is said, never skipped:
    /// reads of that offset, a stream that reaches it and a replica that
    /// reaches it end here (records before it stay readable; a new stream
    /// from `offset + 1` goes on).
    Deleted {
        /// The offset that was deleted.
        offset: memlog::Offset,
    },
    /// A payload did not encode or decode ([`json`](crate::json)).
    Codec(String),
    /// The server refused the operation for a reason not listed above.
    Server {
        /// JetStream's error code (`err_code`), 0 if there was none.
        code: u64,
        /// The server's description.
        description: String,
    },
}

impl Error {
    /// A stable, machine-readable name for the error: memlog's
    /// [`kind`](memlog::Error::kind) for [`Error::Log`], else `connect`,
    /// `stream_not_found`, `unavailable`, `deleted`, `codec` or `server`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Log(e) => e.kind(),
            Error::Connect { .. } => "connect",
            Error::StreamNotFound { .. } => "stream_not_found",
            Error::Unavailable { .. } => "unavailable",
            Error::Deleted { .. } => "deleted",
            Error::Codec(_) => "codec",
            Error::Server { .. } => "server",
        }
    }

    /// memlog's error, if this is one.
    ///
    /// ```
    /// let e = memlog_jetstream::Error::from(memlog::Error::Closed);
    /// assert_eq!(e.as_log(), Some(&memlog::Error::Closed));
    /// ```
    pub fn as_log(&self) -> Option<&memlog::Error> {
        match self {
            Error::Log(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn invalid(why: impl Into<String>) -> Error {
        Error::Log(memlog::Error::InvalidConfig(why.into()))
    }
}

impl From<memlog::Error> for Error {
    fn from(e: memlog::Error) -> Self {
        Error::Log(e)
    }
}

impl PartialEq<memlog::Error> for Error {
    fn eq(&self, other: &memlog::Error) -> bool {
        self.as_log() == Some(other)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Log(e) => e.fmt(f),
            Error::Connect { servers, detail } => {
                write!(f, "could not connect to NATS at {servers}: {detail}")
            }
            Error::StreamNotFound { stream } => {
                write!(f, "JetStream stream {stream:?} does not exist")
            }
            Error::Unavailable { op, waited, detail } => write!(
                f,
                "{op}: no answer from JetStream within {waited:?} (retries included): {detail}"
            ),
            Error::Deleted { offset } => write!(
                f,
                "the message at offset {offset} was deleted from the middle of the stream"
            ),
            Error::Codec(why) => write!(f, "payload encoding: {why}"),
            Error::Server { code, description } => {
                write!(f, "JetStream refused: {description} (err_code {code})")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Log(e) => Some(e),
            _ => None,
        }
    }
}
