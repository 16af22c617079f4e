//! [`JetStreamLog`]: memlog's operations on a JetStream stream (async).

use crate::builder::Builder;
use crate::nats::{api, retry};
use crate::shared::{Shared, WriteStats};
use crate::stream::RecordStream;
use crate::Error;
use bytes::Bytes;
use futures_util::StreamExt;
use memlog::{Offset, Record, StartAt};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A log whose records live in a NATS JetStream stream: memlog's operations
/// and errors, shared by every process that opens the stream, durable (file
/// storage) and, with [`replicas(3)`](Builder::replicas), surviving the loss of
/// a server. Cloning gives another handle on the same connection.
///
/// This is the async API (it needs a tokio runtime); [`blocking::JetStreamLog`](crate::blocking::JetStreamLog)
/// has the same operations for synchronous code.
///
/// Offsets are the stream's sequences shifted by the start offset
/// (`offset = start_offset + sequence - 1`), so every process sees the same
/// offset for the same record. See the crate docs for where the semantics
/// differ from memlog's.
///
/// [`close`](JetStreamLog::close) ends this handle, as memlog's `close`
/// ends a log; [`seal`](JetStreamLog::seal) ends the stream for everyone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = memlog_jetstream::testing::Server::start()?;
/// # let url = server.url();
/// use futures_util::StreamExt;
/// use memlog_jetstream::JetStreamLog;
///
/// let log = JetStreamLog::builder(&url, "events").create().await?;
/// assert_eq!(log.write("hello").await?, 0);
/// assert_eq!(log.write_batch(["a", "b"]).await?, [1, 2]);
/// assert_eq!(log.read(1).await?.data, "a");
/// assert_eq!(log.range().await?, Some((0, 2)));
///
/// let mut stream = log.stream(0);
/// let first = stream.next().await.unwrap()?;
/// assert_eq!((first.offset, &first.data[..]), (0, &b"hello"[..]));
/// log.close().await?;
/// assert_eq!(log.write("late").await, Err(memlog::Error::Closed.into()));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct JetStreamLog {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("JetStreamLog")
            .field("stream", &s.name)
            .field("subject", &s.subject)
            .field("start_offset", &s.start)
            .field("max_messages", &s.capacity)
            .field("closed", &s.is_closed())
            .finish()
    }
}

impl JetStreamLog {
    /// A builder for a log on stream `stream` of the NATS servers `servers`
    /// (`nats://host:port`, several separated by commas).
    pub fn builder(servers: &str, stream: &str) -> Builder {
        Builder::new(servers, stream)
    }

    /// Appends a record and returns its offset, once the server has stored
    /// it (on a majority of replicas).
    ///
    /// The write carries a fresh `Nats-Msg-Id`; if the acknowledgement does
    /// not come (timeout, lost connection, leader election) it is retried
    /// with the same id until [`timeout`](Builder::timeout), and the server
    /// drops the duplicate of an attempt that had landed: the record is
    /// stored once and the offset returned is its only one.
    ///
    /// There is one exception, and it is the server's. On nats-server
    /// before 2.11 (Debian's package is 2.9.10), a replicated stream can
    /// slip while its leader changes: a new leader could take writes before
    /// it was fully up to date. In about 70 runs of the fault test here (a 3-node cluster
    /// whose stream leader is killed twice during writes) it saw:
    /// - a message stored twice, in 2 runs; one of them was a write this
    ///   crate sent only once;
    /// - in 1 run, an acknowledgement naming an offset that holds another
    ///   record.
    ///
    /// nats-server 2.11 fixed this: PR #6485 makes a new leader up to date
    /// before it takes writes, and PR #6486 fixes de-duplication across
    /// leader changes. Streams and replicas deliver what the server
    /// delivers: in order, with no gap (and in those runs nothing that had
    /// been acknowledged was missing). In one later run a replica had
    /// delivered, at some offset, a record other than the one the server
    /// held there in the end. Where exactly-once matters across leader
    /// changes, run nats-server 2.11 or later, or carry an id in the record
    /// and skip ids already seen.
    ///
    /// # Errors
    /// `RecordTooLarge`, `Closed` (the stream is sealed), [`Error::Unavailable`]
    /// (the record may have landed: see [`write_with_id`](JetStreamLog::write_with_id)),
    /// [`Error::StreamNotFound`], [`Error::Server`].
    pub async fn write(&self, data: impl Into<Bytes>) -> Result<Offset, Error> {
        let id = self.shared.new_id();
        self.write_with_id(&id, data).await
    }

    /// [`write`](JetStreamLog::write) with the caller's message id: writing
    /// the same id again within the stream's duplicate window stores nothing
    /// and returns the first write's offset (across a leader change on
    /// nats-server before 2.11, see [`write`](JetStreamLog::write)). For a
    /// producer that retries after [`Error::Unavailable`], or after its own
    /// restart.
    ///
    /// # Errors
    /// As [`write`](JetStreamLog::write).
    pub async fn write_with_id(&self, id: &str, data: impl Into<Bytes>) -> Result<Offset, Error> {
        let data = data.into();
        self.shared.check_size(data.len())?;
        let _writing = self.shared.begin_write()?;
        self.shared.publish(id, data).await
    }

    /// Appends the records of `batch` and returns the offset each got, in
    /// the batch's order. All records get the same checks first
    /// (`RecordTooLarge`, `BatchTooLarge` beyond the stream's
    /// `max_messages`); if one fails nothing is sent.
    ///
    /// On nats-server 2.12 and later (and a stream with `allow_atomic`,
    /// which this crate sets on the streams it creates there), the batch is
    /// sent as a JetStream atomic batch: all of it is stored, at contiguous
    /// offsets with no other writer's record between them, or none of it.
    /// The server takes at most 1000 messages in one atomic batch; a longer
    /// batch is sent as consecutive atomic batches of 1000, each
    /// all-or-nothing and contiguous (another writer may come between two
    /// of them), so a failure may leave the first thousands stored. A lost
    /// acknowledgement is retried: the server refuses a batch whose message
    /// ids it already stored (whole, not in part), and the offsets it got
    /// are then read from the server's duplicate table: stored once, and
    /// the offsets returned are its only ones.
    ///
    /// On older servers (and with
    /// [`atomic_batches(false)`](Builder::atomic_batches)) there is no
    /// atomic batch: the records are published back to back without waiting
    /// for each acknowledgement (pipelined), each with its own message id
    /// and retried as [`write`](JetStreamLog::write) is. The offsets are
    /// increasing and contiguous when no other writer published meanwhile
    /// and no retry was needed; otherwise they are what the server
    /// assigned, which is why this returns them all rather than a range.
    ///
    /// # Errors
    /// As [`write`](JetStreamLog::write), and `BatchTooLarge`. After
    /// [`Error::Unavailable`] some records (pipelined) or some thousands
    /// (atomic) may have landed; a batch written with
    /// [`write_batch_with_id`](JetStreamLog::write_batch_with_id) can be
    /// retried with the same id, landing each record exactly once. After
    /// `Closed` from a [`seal`](JetStreamLog::seal) (by any process), a
    /// pipelined batch may have landed the records sent before the seal:
    /// unlike memlog's, it can be cut by the seal.
    pub async fn write_batch<I, B>(&self, batch: I) -> Result<Vec<Offset>, Error>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let id = self.shared.new_id();
        self.write_batch_with_id(&id, batch).await
    }

    /// [`write_batch`](JetStreamLog::write_batch) with message ids derived
    /// from `batch_id` (`{batch_id}-{index}`): a retried batch lands each
    /// record once within the duplicate window and returns the same
    /// offsets (with the exception that [`write`](JetStreamLog::write)
    /// describes, on nats-server before 2.11).
    ///
    /// # Errors
    /// As [`write_batch`](JetStreamLog::write_batch).
    pub async fn write_batch_with_id<I, B>(
        &self,
        batch_id: &str,
        batch: I,
    ) -> Result<Vec<Offset>, Error>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let limit = self
            .shared
            .capacity
            .map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let mut items = batch.into_iter();
        let mut records = Vec::with_capacity(items.size_hint().0.min(limit).min(1 << 16));
        for data in items.by_ref() {
            if records.len() == limit {
                let len = limit.saturating_add(1).saturating_add(items.size_hint().0);
                return Err(memlog::Error::BatchTooLarge { len, max: limit }.into());
            }
            let data: Bytes = data.into();
            self.shared.check_size(data.len())?;
            records.push(data);
        }
        let _writing = self.shared.begin_write()?;
        if self.shared.atomic {
            self.shared.write_atomic(batch_id, records).await
        } else {
            self.shared.write_pipelined(batch_id, records).await
        }
    }

    /// Reads the record at `offset`, with the server's `created` time.
    ///
    /// # Errors
    /// `FutureOffset` if it is not written yet, `OutOfRange` if it was purged
    /// (or is below the start offset), [`Error::Deleted`] if it was deleted
    /// from the middle of the stream (by another client), [`Error::Unavailable`].
    pub async fn read(&self, offset: Offset) -> Result<Record<Bytes>, Error> {
        let seq = self.shared.seq_of(offset)?;
        if let Some(r) = self.shared.get(seq, false).await? {
            return Ok(r);
        }
        self.missing(seq).await
    }

    /// Why message `seq` was not found: not written yet, purged, or a direct
    /// get answered by a replica behind the leader (then ask the leader).
    async fn missing(&self, seq: u64) -> Result<Record<Bytes>, Error> {
        let state = self.shared.info("read").await?.state;
        if seq > state.last_sequence {
            return Err(memlog::Error::FutureOffset.into());
        }
        if seq < state.first_sequence {
            return Err(memlog::Error::OutOfRange.into());
        }
        match self.shared.get(seq, true).await? {
            Some(r) => Ok(r),
            None => Err(self.gone(seq).await),
        }
    }

    /// The error for message `seq`, which the leader does not have though it
    /// was within the stream: purged meanwhile (`OutOfRange`), or deleted
    /// from the middle by someone else ([`Error::Deleted`]).
    async fn gone(&self, seq: u64) -> Error {
        match self.shared.info("read").await {
            Ok(info) if seq >= info.state.first_sequence => Error::Deleted {
                offset: self.shared.offset_of(seq),
            },
            Ok(_) => memlog::Error::OutOfRange.into(),
            Err(e) => e,
        }
    }

    /// Appends up to `max` consecutive records from `start` to `out` and
    /// returns how many: at least 1 unless `max` is 0, and fewer than `max`
    /// only when the log ends, a later part was purged meanwhile, or the
    /// next message was deleted from the middle of the stream (by another
    /// client: streams this crate creates deny deletes); a `read_batch`
    /// from that offset then fails [`Error::Deleted`]. The records are
    /// fetched with up to 32 direct gets in flight.
    ///
    /// # Errors
    /// As [`read`](JetStreamLog::read), for `start`.
    pub async fn read_batch(
        &self,
        start: Offset,
        out: &mut Vec<Record<Bytes>>,
        max: usize,
    ) -> Result<usize, Error> {
        if max == 0 {
            return Ok(0);
        }
        let seq = self.shared.seq_of(start)?;
        let state = self.shared.info("read").await?.state;
        if seq > state.last_sequence {
            return Err(memlog::Error::FutureOffset.into());
        }
        if seq < state.first_sequence {
            return Err(memlog::Error::OutOfRange.into());
        }
        let n = (state.last_sequence - seq)
            .saturating_add(1)
            .min(max as u64);
        let shared = &self.shared;
        let mut gets = futures_util::stream::iter(seq..seq + n)
            .map(|s| async move {
                // Not found on a replica behind the leader: ask the leader.
                match shared.get(s, false).await? {
                    Some(r) => Ok(Some(r)),
                    None => shared.get(s, true).await,
                }
            })
            .buffered(32);
        let before = out.len();
        while let Some(r) = gets.next().await {
            match r? {
                Some(r) => out.push(r),
                // Purged meanwhile or deleted: the first one is an error, a
                // later one ends the batch.
                None if out.len() == before => return Err(self.gone(seq).await),
                None => break,
            }
        }
        Ok(out.len() - before)
    }

    /// `(earliest, latest)` retained offsets, or `None` when the stream holds
    /// no message.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::StreamNotFound`].
    pub async fn range(&self) -> Result<Option<(Offset, Offset)>, Error> {
        let state = self.shared.info("range").await?.state;
        Ok((state.messages > 0).then(|| {
            (
                self.shared.offset_of(state.first_sequence),
                self.shared.offset_of(state.last_sequence),
            )
        }))
    }

    /// The offset the next write will get (unless another writer is first).
    ///
    /// # Errors
    /// As [`range`](JetStreamLog::range).
    pub async fn next_offset(&self) -> Result<Offset, Error> {
        let state = self.shared.info("next_offset").await?.state;
        Ok(self.shared.start + state.last_sequence)
    }

    /// A stream of the records from `start` on, in order (a
    /// [`futures_core::Stream`]); see [`RecordStream`].
    pub fn stream(&self, start: Offset) -> RecordStream {
        RecordStream::new(self.shared.clone(), start)
    }

    /// The offset of the first retained record the server stored at or
    /// after `t` (its `created`), or the next offset to be written if none
    /// is: Kafka's `offsetsForTimes`, JetStream's `opt_start_time`. The
    /// server finds it (a binary search over its stored times, for a
    /// consumer that delivers `ByStartTime`): one consumer made and deleted,
    /// no record read.
    ///
    /// The times are the server's, stamped by the stream's leader as it
    /// stores each message, so they rise with offsets unless its clock
    /// steps back (or the leader moves to a server whose clock is behind):
    /// then, as for `memlog::StartAt::Time` with concurrent writers, records
    /// just before the answer may be at or after `t`, and records at or
    /// after it before. A time before the earliest retained record gives the
    /// earliest retained offset.
    ///
    /// # Errors
    /// As [`range`](JetStreamLog::range), and [`Error::Server`] if the
    /// server refuses the consumer.
    pub async fn offset_at_time(&self, t: SystemTime) -> Result<Offset, Error> {
        let seq = self.shared.seq_at_time(t).await?;
        Ok(self.shared.offset_of(seq))
    }

    /// A stream from where `at` says, as [`memlog::Log::stream_from`]:
    /// the earliest retained offset, the next offset to be written, an
    /// offset, or the first record stored at or after a time
    /// ([`offset_at_time`](JetStreamLog::offset_at_time)). The position is
    /// fixed here, with one request to the server (none for an offset); if
    /// it is purged before the stream reads it, the stream yields
    /// `OutOfRange`, as any stream that fell behind.
    ///
    /// # Errors
    /// As [`offset_at_time`](JetStreamLog::offset_at_time).
    pub async fn stream_from(&self, at: StartAt) -> Result<RecordStream, Error> {
        let seq = self.shared.resolve(at).await?;
        Ok(self.stream(self.shared.offset_of(seq)))
    }

    /// Closes this handle (and its clones), as `memlog::Log::close` closes
    /// a log: later writes on it fail `Closed` at once, and its streams
    /// (and a replica made from it) deliver every record the stream held
    /// when it closed, and every record this handle's writes were
    /// acknowledged for, then end. The JetStream stream and every other
    /// handle on it (other processes, other builds) are untouched: a
    /// service may close at shutdown and open the same log on its next
    /// run. For the irreversible close that every process sees, use
    /// [`seal`](JetStreamLog::seal). Idempotent.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the server did not say where the stream
    /// ends: the handle is closed all the same, and its streams end after
    /// the last record its own writes were acknowledged for.
    pub async fn close(&self) -> Result<(), Error> {
        let shared = &self.shared;
        if shared.ending.borrow().closed_at.is_some() {
            return Ok(());
        }
        shared.mark_closed();
        // Writes already past their check may still be acknowledged: the
        // end is fixed once they have answered (each is bounded by the
        // operation timeout), so that every `Ok` write lies below it.
        shared.writes_done(shared.timeouts.op * 2).await;
        match shared.info("close").await {
            Ok(info) => {
                shared.close_at(info.state.last_sequence);
                Ok(())
            }
            Err(e) => {
                shared.close_at(shared.max_acked());
                Err(e)
            }
        }
    }

    /// Seals the JetStream stream, for every process and for good: every
    /// later write, from any handle, fails `Closed`; what was written stays
    /// readable, and streams drain it and end (on this handle at once, on
    /// others within [`poll_interval`](Builder::poll_interval)); a later
    /// [`create`](Builder::create) or [`open`](Builder::open) fails
    /// `Closed`. A sealed stream can not be unsealed and no longer purges
    /// by retention. The stream's config is edited as the server sent it
    /// (only `sealed` changes: fields this client does not know, such as
    /// `metadata`, `compression`, `allow_atomic` or `allow_msg_ttl`, stay).
    /// Idempotent.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::StreamNotFound`], [`Error::Server`].
    pub async fn seal(&self) -> Result<(), Error> {
        let shared = &self.shared;
        let name = &shared.name;
        retry("seal", shared.timeouts.op, || async {
            let info = api(
                &shared.js,
                name,
                format!("STREAM.INFO.{name}"),
                &serde_json::Value::Null,
            )
            .await?;
            let mut cfg = info
                .get("config")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let Some(fields) = cfg.as_object_mut() else {
                return Err(crate::nats::Failure::Transient(format!(
                    "stream info without a config: {info}"
                )));
            };
            if fields.get("sealed") == Some(&serde_json::Value::Bool(true)) {
                return Ok(());
            }
            fields.insert("sealed".into(), true.into());
            api(&shared.js, name, format!("STREAM.UPDATE.{name}"), &cfg).await?;
            Ok(())
        })
        .await?;
        shared.mark_sealed();
        Ok(())
    }

    /// Whether this handle's writes fail `Closed`: it was
    /// [`close`](JetStreamLog::close)d, or the stream is sealed (asks the
    /// server).
    ///
    /// # Errors
    /// As [`range`](JetStreamLog::range).
    pub async fn is_closed(&self) -> Result<bool, Error> {
        if self.shared.is_closed() {
            return Ok(true);
        }
        self.is_sealed().await
    }

    /// Whether the stream is sealed (asks the server).
    ///
    /// # Errors
    /// As [`range`](JetStreamLog::range).
    pub async fn is_sealed(&self) -> Result<bool, Error> {
        Ok(self.shared.info("is_sealed").await?.config.sealed)
    }

    /// The name of the server that leads the stream now (`None` outside a
    /// cluster).
    ///
    /// # Errors
    /// As [`range`](JetStreamLog::range).
    pub async fn stream_leader(&self) -> Result<Option<String>, Error> {
        let info = self.shared.info("stream_leader").await?;
        Ok(info.cluster.and_then(|c| c.leader))
    }

    /// The largest payload a write accepts, in bytes.
    pub fn max_record_bytes(&self) -> usize {
        self.shared.max_record
    }

    /// The offset of the stream's first message.
    pub fn start_offset(&self) -> Offset {
        self.shared.start
    }

    /// How many records the stream keeps (`max_messages`); `None`: all.
    pub fn max_messages(&self) -> Option<u64> {
        self.shared.capacity
    }

    /// The JetStream stream's name.
    pub fn stream_name(&self) -> &str {
        &self.shared.name
    }

    /// What this handle's writes did so far.
    pub fn write_stats(&self) -> WriteStats {
        self.shared.stats.snapshot()
    }
}

impl Builder {
    /// Connects, creates the stream if it is missing, and returns the log. An
    /// existing stream must have this builder's retention and start offset,
    /// and a subject that matches this builder's, else `InvalidConfig` says
    /// what differs; a sealed one fails `Closed`.
    ///
    /// # Errors
    /// [`Error::Connect`], `InvalidConfig`, `Closed`, [`Error::Unavailable`], [`Error::Server`].
    pub async fn create(self) -> Result<JetStreamLog, Error> {
        self.connect_shared(true)
            .await
            .map(JetStreamLog::from_shared)
    }

    /// Connects to an existing stream and returns the log; its retention and
    /// start offset are the stream's (a `start_offset` given here must
    /// match). A stream that can not keep dense offsets (interest or
    /// work-queue retention) is refused with `InvalidConfig`, a sealed one
    /// with `Closed`.
    ///
    /// # Errors
    /// [`Error::StreamNotFound`], [`Error::Connect`], `InvalidConfig`,
    /// `Closed`, [`Error::Unavailable`].
    pub async fn open(self) -> Result<JetStreamLog, Error> {
        self.connect_shared(false)
            .await
            .map(JetStreamLog::from_shared)
    }
}

impl JetStreamLog {
    fn from_shared(shared: Shared) -> JetStreamLog {
        JetStreamLog {
            shared: Arc::new(shared),
        }
    }
}
