//! memlog's log contract on NATS JetStream, for when one process is not
//! enough; and a [`Replica`] that follows a JetStream stream into a local
//! [`memlog::Log`].
//!
//! [`memlog`] is the log inside one process. When several processes must
//! write and read the same log, when it must survive a crash, or when there
//! are more readers than one machine serves, the log moves to JetStream
//! (dense sequences, limits retention, message-id deduplication, R3
//! replication) and keeps memlog's operations and errors:
//! [`JetStreamLog`] (async) and [`blocking::JetStreamLog`]. A [`Replica`]
//! brings it back into a local `memlog::Log<Bytes>` with the same offsets,
//! for reads, batches and streams at memory speed.
//!
//! # Semantics, side by side
//! | | `memlog::Log` | [`JetStreamLog`] | [`Replica`] |
//! |---|---|---|---|
//! | Offsets | dense from the start offset | stream sequence + start offset − 1, the same in every process (start offset in the stream's metadata) | the stream's |
//! | Retention | whole segments: keeps between `S·H + 1` and `S·(H + 1)` | one message at a time: the last `S·(H + 1)` (`max_messages`) | its own local segments (default: at least what the stream keeps) |
//! | `write` | in memory | acknowledged once stored (on a majority of replicas); retried with the same `Nats-Msg-Id`, stored once (except where nats-server before 2.11 slips across a leader change: see [`JetStreamLog::write`]) | read-only |
//! | `write_batch` | one claim: contiguous | nats-server 2.12+: atomic batches of up to 1000 (all or nothing, contiguous); older: pipelined publishes, each record's offset (contiguous unless another writer interleaved or a retry landed later) | read-only |
//! | `created` | the writer's clock | the server's receive time | the server's time, copied |
//! | `read` of a purged offset | `OutOfRange` | `OutOfRange` | `OutOfRange` |
//! | stream behind retention | `Err(OutOfRange)`, then end | the same: every delivered sequence is checked (JetStream itself would skip silently) | the same, also across a restarted local log |
//! | `close` | later writes `Closed`; streams drain, end | the same, for this handle: the stream and other handles are untouched | a replica of the closed handle ends after the same records |
//! | `seal` | — | seals the stream for every process, for good (`create`/`open` then fail `Closed`) | follows the seal: local log closed after the last record |
//! | a message deleted from the middle (by another client) | — | `Error::Deleted` at it: never skipped | stops there, `last_error()` says so |
//! | failures | none (memory) | calls bounded by timeouts: `Unavailable`; streams resume at their next offset after a restart or a leader change | resumes at its next offset; behind retention: a new local generation |
//! | Payload | any `T: Clone` | `bytes::Bytes` | `bytes::Bytes` |
//!
//! # Example
//! ```
//! # let server = memlog_jetstream::testing::Server::start()?;
//! # let url = server.url();
//! use memlog_jetstream::JetStreamLog;
//! use std::time::Duration;
//!
//! // Every process that builds this gets the same log.
//! let log = JetStreamLog::builder(&url, "events")
//!     .segment_size(1024)
//!     .history_segments(4)
//!     .create_blocking()?;
//! let offset = log.write("hello")?;
//! assert_eq!(log.read(offset)?.data, "hello");
//!
//! // Local reads at memlog speed, with the same offsets.
//! let replica = log.replica().start_blocking()?;
//! replica.wait_for(offset, Duration::from_secs(5))?;
//! assert_eq!(replica.read(offset)?.data, "hello");
//! let mut local = replica.stream(offset);
//! assert_eq!(local.next().unwrap()?.offset, offset);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `testing` starts throwaway servers; the crate's examples run a producer,
//! consumers and a replica as separate processes.
//!
//! # Server versions
//! nats-server 2.9 is the oldest supported. 2.11 and later keep replicated
//! writes exact across a change of stream leader (see
//! [`JetStreamLog::write`]); 2.12 and later make `write_batch` atomic (see
//! [`JetStreamLog::write_batch`]); 2.10 and later keep the start offset in
//! the stream's metadata.

#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

// Layers, each module importing only those above it in this list: errors
// and the retry rule; the shared state (connection, record paths, batches)
// and the configuration that builds it; the follower and its stream; the
// async log; on top, the replica and the blocking facade.
mod batch;
pub mod blocking;
mod builder;
mod error;
mod follow;
pub mod json;
mod log;
mod nats;
mod replica;
mod runtime;
mod shared;
mod stream;
pub mod testing;

pub use builder::Builder;
pub use bytes::Bytes;
pub use error::Error;
pub use log::JetStreamLog;
pub use memlog::{self, Offset, Record};
pub use replica::{Replica, ReplicaBuilder, ReplicaStream};
pub use shared::WriteStats;
pub use stream::{Canceller, RecordStream};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn handles_are_send_and_sync_streams_are_send() {
        send_sync::<JetStreamLog>();
        send_sync::<blocking::JetStreamLog>();
        send_sync::<Replica>();
        send_sync::<Canceller>();
        send_sync::<Error>();
        send::<RecordStream>();
        send::<blocking::Stream>();
        send::<ReplicaStream>();
    }

    #[test]
    fn json_round_trip_and_a_clear_decode_error() {
        let r = |data: Bytes| Record {
            offset: 3,
            created: std::time::UNIX_EPOCH,
            data,
        };
        let v = vec![(1u8, "a".to_string())];
        let back: Record<Vec<(u8, String)>> = json::decode(r(json::encode(&v).unwrap())).unwrap();
        assert_eq!((back.offset, back.data), (3, v));
        match json::decode::<u32>(r(Bytes::from_static(b"{"))) {
            Err(Error::Codec(why)) => assert!(why.contains("record 3"), "{why}"),
            other => panic!("{other:?}"),
        }
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        assert_eq!(json::encode(&bad).unwrap_err().kind(), "codec");
    }
}
