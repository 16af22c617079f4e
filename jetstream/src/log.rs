//! [`JetStreamLog`]: memlog's operations on a JetStream stream (async).

use crate::builder::{Builder, Timeouts};
use crate::nats::{retry, Failure, MESSAGE_TOO_LARGE};
use crate::replica::ReplicaBuilder;
use crate::stream::RecordStream;
use crate::Error;
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use memlog::{Offset, Record};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::watch;

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

/// What every handle, stream and replica of one log shares.
pub(crate) struct Shared {
    pub(crate) js: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) name: String,
    subject: String,
    pub(crate) start: Offset,
    pub(crate) capacity: Option<u64>,
    max_record: usize,
    direct: bool,
    pub(crate) timeouts: Timeouts,
    /// Whether the stream is known to be sealed (by us or seen in its info);
    /// waiting streams watch it.
    pub(crate) sealed: watch::Sender<bool>,
    /// Prefix of the message ids this handle makes: unique per connection.
    id_prefix: String,
    next_id: AtomicU64,
    /// Acknowledged, retried, deduplicated: see [`WriteStats`].
    stats: [AtomicU64; 3],
    pub(crate) rt: tokio::runtime::Handle,
}

/// Counters of what this handle's writes did, for monitoring and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Records acknowledged by the server.
    pub acknowledged: u64,
    /// Publish attempts that were retried (timeout, lost connection, leader
    /// election), each with the record's same message id.
    pub retried: u64,
    /// Acknowledgements that said "duplicate": a retry whose first attempt
    /// had landed; the server kept one copy and gave its offset.
    pub deduplicated: u64,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        stream: stream::Stream,
        subject: String,
        start: Offset,
        cfg: stream::Config,
        max_record: usize,
        timeouts: Timeouts,
    ) -> Shared {
        let inbox = client.new_inbox();
        let id_prefix = inbox.rsplit('.').next().unwrap_or(&inbox).to_string();
        Shared {
            js,
            name: cfg.name.clone(),
            stream,
            subject,
            start,
            capacity: u64::try_from(cfg.max_messages).ok(),
            max_record,
            direct: cfg.allow_direct,
            timeouts,
            sealed: watch::channel(cfg.sealed).0,
            id_prefix,
            next_id: AtomicU64::new(0),
            stats: Default::default(),
            rt: tokio::runtime::Handle::current(),
        }
    }

    /// The offset of stream sequence `seq` (at least 1).
    pub(crate) fn offset_of(&self, seq: u64) -> Offset {
        self.start + (seq - 1)
    }

    /// The stream sequence of `offset`: `OutOfRange` below the start offset;
    /// an offset whose sequence does not fit in `u64` can never be written.
    pub(crate) fn seq_of(&self, offset: Offset) -> Result<u64, Error> {
        let rel = offset
            .checked_sub(self.start)
            .ok_or(memlog::Error::OutOfRange)?;
        Ok(rel.checked_add(1).ok_or(memlog::Error::FutureOffset)?)
    }

    pub(crate) fn mark_sealed(&self) {
        self.sealed
            .send_if_modified(|s| !std::mem::replace(s, true));
    }

    pub(crate) fn is_sealed(&self) -> bool {
        *self.sealed.borrow()
    }

    /// The stream's info, one request.
    pub(crate) async fn info_once(&self) -> Result<stream::Info, Failure> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| Failure::of(&self.name, &e))?;
        if info.config.sealed {
            self.mark_sealed();
        }
        Ok(info)
    }

    /// The stream's info, retried within the operation timeout.
    pub(crate) async fn info(&self, op: &'static str) -> Result<stream::Info, Error> {
        retry(op, self.timeouts.op, || self.info_once()).await
    }

    fn record(&self, m: jetstream::message::StreamMessage) -> Record<Bytes> {
        Record {
            offset: self.offset_of(m.sequence),
            created: SystemTime::from(m.time),
            data: m.payload,
        }
    }

    /// One attempt to get message `seq`: `None` if the server has none.
    /// `leader` asks the stream leader (consistent); otherwise any replica
    /// answers a direct get (fast, possibly behind the leader).
    pub(crate) async fn get_once(
        &self,
        seq: u64,
        leader: bool,
    ) -> Result<Option<Record<Bytes>>, Failure> {
        use jetstream::stream::{DirectGetErrorKind as D, RawMessageErrorKind as R};
        if self.direct && !leader {
            return match self.stream.direct_get(seq).await {
                Ok(m) => Ok(Some(self.record(m))),
                Err(e) => match e.kind() {
                    D::NotFound => Ok(None),
                    D::ErrorResponse(status, why)
                        if status.as_u16() != 503 && status.as_u16() != 408 =>
                    {
                        Err(Failure::Fatal(Error::Server {
                            code: status.as_u16().into(),
                            description: why,
                        }))
                    }
                    _ => Err(Failure::of(&self.name, &e)),
                },
            };
        }
        match self.stream.get_raw_message(seq).await {
            Ok(m) => Ok(Some(self.record(m))),
            Err(e) if matches!(e.kind(), R::NoMessageFound) => Ok(None),
            Err(e) => Err(Failure::of(&self.name, &e)),
        }
    }

    async fn get(&self, seq: u64, leader: bool) -> Result<Option<Record<Bytes>>, Error> {
        retry("read", self.timeouts.op, || self.get_once(seq, leader)).await
    }

    fn check_size(&self, len: usize) -> Result<(), Error> {
        if len > self.max_record {
            return Err(memlog::Error::RecordTooLarge {
                len,
                max: self.max_record,
            }
            .into());
        }
        Ok(())
    }

    /// Publishes one record with message id `id`, retrying with the same id
    /// until it is acknowledged or the operation timeout is spent.
    async fn publish(&self, id: &str, payload: Bytes) -> Result<Offset, Error> {
        let len = payload.len();
        let mut attempts = 0u32;
        let ack = retry("write", self.timeouts.op, || {
            attempts += 1;
            if attempts > 1 {
                self.stats[1].fetch_add(1, Ordering::Relaxed);
            }
            self.publish_once(id, payload.clone(), len)
        })
        .await?;
        Ok(self.acknowledged(&ack))
    }

    /// Counts an acknowledgement and returns its offset.
    fn acknowledged(&self, ack: &jetstream::publish::PublishAck) -> Offset {
        self.stats[0].fetch_add(1, Ordering::Relaxed);
        if ack.duplicate {
            self.stats[2].fetch_add(1, Ordering::Relaxed);
        }
        self.offset_of(ack.sequence)
    }

    /// Sends one record; the future that follows waits for its ack.
    async fn send(&self, id: &str, payload: Bytes) -> Result<PublishAckFuture, PublishError> {
        self.js
            .send_publish(
                self.subject.clone(),
                PublishMessage::build().payload(payload).message_id(id),
            )
            .await
    }

    async fn publish_once(
        &self,
        id: &str,
        payload: Bytes,
        len: usize,
    ) -> Result<jetstream::publish::PublishAck, Failure> {
        use jetstream::context::PublishErrorKind as K;
        let sent = self.send(id, payload).await;
        let result = match sent {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        let e = match result {
            Ok(ack) => return Ok(ack),
            Err(e) => e,
        };
        let too_large = || {
            Failure::Fatal(
                memlog::Error::RecordTooLarge {
                    len,
                    max: self.max_record,
                }
                .into(),
            )
        };
        match e.kind() {
            K::MaxPayloadExceeded => Err(too_large()),
            // No responders: the stream has no leader right now (restart,
            // election), or it was deleted. Ask which.
            K::StreamNotFound => match self.js.get_stream(&self.name).await {
                Err(ge) => match Failure::of(&self.name, &ge) {
                    f @ Failure::Fatal(Error::StreamNotFound { .. }) => Err(f),
                    _ => Err(Failure::Transient(e.to_string())),
                },
                Ok(_) => Err(Failure::Transient(e.to_string())),
            },
            _ => match Failure::of(&self.name, &e) {
                Failure::Fatal(Error::Server { code, .. }) if code == MESSAGE_TOO_LARGE => {
                    Err(too_large())
                }
                f @ Failure::Fatal(Error::Log(memlog::Error::Closed)) => {
                    self.mark_sealed();
                    Err(f)
                }
                f => Err(f),
            },
        }
    }
}

/// How many acks one `write_batch` keeps outstanding.
const ACK_WINDOW: usize = 1024;

/// Records the outcome of record `i` of a batch: its offset, or the batch's
/// first error.
fn settle(offsets: &mut [Offset], failed: &mut Option<Error>, i: usize, r: Result<Offset, Error>) {
    match r {
        Ok(o) => offsets[i] = o,
        Err(e) => {
            failed.get_or_insert(e);
        }
    }
}

impl fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("JetStreamLog")
            .field("stream", &s.name)
            .field("subject", &s.subject)
            .field("start_offset", &s.start)
            .field("max_messages", &s.capacity)
            .field("sealed", &s.is_sealed())
            .finish()
    }
}

impl JetStreamLog {
    /// A builder for a log on stream `stream` of the NATS servers `servers`
    /// (`nats://host:port`, several separated by commas).
    pub fn builder(servers: &str, stream: &str) -> Builder {
        Builder::new(servers, stream)
    }

    pub(crate) fn from_shared(shared: Shared) -> JetStreamLog {
        JetStreamLog {
            shared: Arc::new(shared),
        }
    }

    fn new_id(&self) -> String {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.shared.id_prefix)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.shared.is_sealed() {
            return Err(memlog::Error::Closed.into());
        }
        Ok(())
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
        let id = self.new_id();
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
        self.check_open()?;
        self.shared.publish(id, data).await
    }

    /// Appends the records of `batch` and returns the offset each got, in
    /// the batch's order.
    ///
    /// JetStream (nats-server 2.9) has no atomic batch: the records are
    /// published back to back without waiting for each acknowledgement
    /// (pipelined), each with its own message id and retried as
    /// [`write`](JetStreamLog::write) is. The offsets are increasing and
    /// contiguous when no other writer published meanwhile and no retry was
    /// needed; otherwise they are what the server assigned, which is why
    /// this returns them all rather than a range. All records get the same
    /// checks first (`RecordTooLarge`, `BatchTooLarge` beyond the stream's
    /// `max_messages`); if one fails nothing is sent.
    ///
    /// # Errors
    /// As [`write`](JetStreamLog::write), and `BatchTooLarge`. After
    /// [`Error::Unavailable`] some records may have landed; a batch written
    /// with [`write_batch_with_id`](JetStreamLog::write_batch_with_id) can be
    /// retried with the same id, landing each record exactly once. After
    /// `Closed`, the records sent before the stream was sealed (by any
    /// process) may have landed: unlike memlog's, this batch can be cut by
    /// the seal.
    pub async fn write_batch<I, B>(&self, batch: I) -> Result<Vec<Offset>, Error>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let id = self.new_id();
        self.write_batch_with_id(&id, batch).await
    }

    /// [`write_batch`](JetStreamLog::write_batch) with message ids derived
    /// from `batch_id` (`{batch_id}-{index}`): a retried batch lands each
    /// record once within the duplicate window (with the exception that
    /// [`write`](JetStreamLog::write) describes, on nats-server before
    /// 2.11).
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
        self.check_open()?;
        // Send the records in order, without waiting for each ack (the
        // server stores them in the order sent); keep at most `ACK_WINDOW`
        // acks outstanding, waiting for the oldest one first.
        let shared = &self.shared;
        let mut offsets = vec![0; records.len()];
        let mut failed = None;
        let mut acks = FuturesOrdered::new();
        for (i, data) in records.into_iter().enumerate() {
            if acks.len() == ACK_WINDOW {
                if let Some((j, r)) = acks.next().await {
                    settle(&mut offsets, &mut failed, j, r);
                }
            }
            let id = format!("{batch_id}-{i}");
            let ack = shared.send(&id, data.clone()).await;
            acks.push_back(async move {
                if let Ok(ack) = ack {
                    if let Ok(ack) = ack.await {
                        return (i, Ok(shared.acknowledged(&ack)));
                    }
                }
                // Retry it alone, with its id: the server keeps one copy.
                shared.stats[1].fetch_add(1, Ordering::Relaxed);
                (i, shared.publish(&id, data).await)
            });
        }
        while let Some((j, r)) = acks.next().await {
            settle(&mut offsets, &mut failed, j, r);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(offsets),
        }
    }

    /// Reads the record at `offset`, with the server's `created` time.
    ///
    /// # Errors
    /// `FutureOffset` if it is not written yet, `OutOfRange` if it was purged
    /// (or is below the start offset), [`Error::Unavailable`].
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
            None => Err(memlog::Error::OutOfRange.into()),
        }
    }

    /// Appends up to `max` consecutive records from `start` to `out` and
    /// returns how many: at least 1 unless `max` is 0, and fewer than `max`
    /// only when the log ends (or a later part was purged meanwhile). The
    /// records are fetched with up to 32 direct gets in flight.
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
                // Purged meanwhile: the first one is out of range, a later
                // one ends the batch.
                None if out.len() == before => return Err(memlog::Error::OutOfRange.into()),
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

    /// Closes the log: seals the JetStream stream, so every later write, from
    /// any process, fails `Closed`; what was written stays readable, and
    /// streams drain it and end (in this process at once, in others within
    /// [`poll_interval`](Builder::poll_interval)). A sealed stream can not be
    /// unsealed and no longer purges by retention. Idempotent.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Server`].
    pub async fn close(&self) -> Result<(), Error> {
        let shared = &self.shared;
        retry("close", shared.timeouts.op, || async {
            let info = shared.info_once().await?;
            if info.config.sealed {
                return Ok(());
            }
            let mut cfg = info.config;
            cfg.sealed = true;
            shared
                .js
                .update_stream(cfg)
                .await
                .map_err(|e| Failure::of(&shared.name, &e))?;
            Ok(())
        })
        .await?;
        shared.mark_sealed();
        Ok(())
    }

    /// Whether the stream is sealed (asks the server).
    ///
    /// # Errors
    /// As [`range`](JetStreamLog::range).
    pub async fn is_closed(&self) -> Result<bool, Error> {
        Ok(self.shared.info("is_closed").await?.config.sealed)
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
        let [a, r, d] = &self.shared.stats;
        WriteStats {
            acknowledged: a.load(Ordering::Relaxed),
            retried: r.load(Ordering::Relaxed),
            deduplicated: d.load(Ordering::Relaxed),
        }
    }

    /// A replica of this log in a local `memlog::Log` (see [`Replica`](crate::Replica)).
    pub fn replica(&self) -> ReplicaBuilder {
        ReplicaBuilder::new(self.clone(), None)
    }
}
