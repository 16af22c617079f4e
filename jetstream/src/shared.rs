//! [`Shared`]: what every handle, stream and replica of one log shares (the
//! connection, the stream's facts, how this handle ends), and the single
//! record paths every write and read goes through. Below the async log,
//! the follower, the blocking facade and the replica: it imports none of
//! them.

use crate::nats::{retry, Failure, MESSAGE_TOO_LARGE};
use crate::Error;
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;
use memlog::{Offset, Record};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The headers a write adds (`Nats-Msg-Id`, and on 2.12+ the three atomic
/// batch headers, with their framing) stay within this many bytes; the
/// default `max_record_bytes` leaves them room in the server's
/// `max_payload` and the stream's `max_msg_size`.
pub(crate) const HEADER_ROOM: usize = 256;

/// How long calls may take. Every call of the crate is bounded by one of
/// these; none waits for ever on the network.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// A whole operation, retries included.
    pub(crate) op: Duration,
    /// One request or publish acknowledgement.
    pub(crate) request: Duration,
    /// Connecting, per attempt.
    pub(crate) connect: Duration,
    /// How often an idle stream asks the server whether the stream was
    /// sealed or purged past it, and whether its consumer is still alive.
    pub(crate) poll: Duration,
}

/// What the builder learned of the stream, from its raw config.
#[derive(Clone, Debug)]
pub(crate) struct Facts {
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) start: Offset,
    /// `max_msgs`, `None` when unlimited.
    pub(crate) capacity: Option<u64>,
    pub(crate) max_record: usize,
    pub(crate) direct: bool,
    /// Whether `write_batch` publishes atomic batches (nats-server 2.12+
    /// and the stream's `allow_atomic`).
    pub(crate) atomic: bool,
}

/// How this handle ends: the stream sealed on the server (by anyone), or
/// this handle closed (its own writes refused; its streams end after
/// `closed_at`, the stream's last sequence when it closed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ending {
    pub(crate) sealed: bool,
    pub(crate) closed: bool,
    pub(crate) closed_at: Option<u64>,
}

/// The counters behind [`WriteStats`], one per field.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) acknowledged: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) deduplicated: AtomicU64,
}

impl Stats {
    pub(crate) fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> WriteStats {
        WriteStats {
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            deduplicated: self.deduplicated.load(Ordering::Relaxed),
        }
    }
}

/// What every handle, stream and replica of one log shares.
pub(crate) struct Shared {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) stream: stream::Stream<()>,
    pub(crate) name: String,
    pub(crate) subject: String,
    pub(crate) start: Offset,
    pub(crate) capacity: Option<u64>,
    pub(crate) max_record: usize,
    direct: bool,
    pub(crate) atomic: bool,
    pub(crate) timeouts: Timeouts,
    /// How this handle ends (sealed, closed); waiting streams watch it.
    pub(crate) ending: watch::Sender<Ending>,
    /// Prefix of the message ids this handle makes: unique per connection.
    id_prefix: String,
    next_id: AtomicU64,
    pub(crate) stats: Stats,
    /// The highest sequence a write of this handle was acknowledged at: a
    /// closed handle's streams deliver at least up to it.
    max_acked: AtomicU64,
    /// This handle's writes between their check that it is open and their
    /// answer: `close` waits for them before it fixes where this handle's
    /// streams (and a replica made from it) end, so that a write answered
    /// `Ok` is below that end.
    in_flight: AtomicU64,
    pub(crate) rt: tokio::runtime::Handle,
}

/// A write of this handle in flight (`Shared::begin_write`).
pub(crate) struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // Release: `close` that sees the count fall sees the write's ack.
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
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
    pub(crate) fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        stream: stream::Stream<()>,
        facts: Facts,
        timeouts: Timeouts,
    ) -> Shared {
        let inbox = client.new_inbox();
        let id_prefix = inbox.rsplit('.').next().unwrap_or(&inbox).to_string();
        Shared {
            client,
            js,
            name: facts.name,
            stream,
            subject: facts.subject,
            start: facts.start,
            capacity: facts.capacity,
            max_record: facts.max_record,
            direct: facts.direct,
            atomic: facts.atomic,
            timeouts,
            // A sealed stream is refused before a log is made of it.
            ending: watch::channel(Ending::default()).0,
            id_prefix,
            next_id: AtomicU64::new(0),
            stats: Stats::default(),
            max_acked: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            rt: tokio::runtime::Handle::current(),
        }
    }

    /// A message id unique to this handle's connection.
    pub(crate) fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.id_prefix)
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
        self.ending
            .send_if_modified(|e| !std::mem::replace(&mut e.sealed, true));
    }

    /// Refuses this handle's later writes (`closed_at` comes once known).
    pub(crate) fn mark_closed(&self) {
        self.ending
            .send_if_modified(|e| !std::mem::replace(&mut e.closed, true));
    }

    /// Where this handle's streams end: the stream's last sequence when it
    /// closed, or `last` if no answer came then.
    pub(crate) fn close_at(&self, last: u64) {
        self.ending.send_modify(|e| {
            e.closed = true;
            e.closed_at = Some(e.closed_at.map_or(last, |c| c.max(last)));
        });
    }

    /// Whether this handle's writes fail `Closed` (closed, or the stream
    /// sealed as far as this handle knows).
    pub(crate) fn is_closed(&self) -> bool {
        let e = *self.ending.borrow();
        e.closed || e.sealed
    }

    /// The last sequence this closed handle's streams deliver: what the
    /// stream held at close, and at least every write it acknowledged.
    pub(crate) fn closed_end(&self) -> Option<u64> {
        let at = self.ending.borrow().closed_at?;
        Some(at.max(self.max_acked.load(Ordering::Acquire)))
    }

    pub(crate) fn max_acked(&self) -> u64 {
        self.max_acked.load(Ordering::Acquire)
    }

    /// A write begins: `Err(Closed)` if this handle is closed, else a guard
    /// that `close` waits for. Counted before the check (SeqCst, as
    /// `close`'s load of the count after marking the handle closed): either
    /// `close` sees this write, or this write sees the handle closed.
    pub(crate) fn begin_write(&self) -> Result<InFlight<'_>, Error> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        std::sync::atomic::fence(Ordering::SeqCst);
        self.check_open()?;
        Ok(guard)
    }

    /// After `mark_closed`: waits (at most `limit`) until no write of this
    /// handle is between its check and its answer.
    pub(crate) async fn writes_done(&self, limit: Duration) {
        std::sync::atomic::fence(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.load(Ordering::Acquire) != 0 && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.is_closed() {
            return Err(memlog::Error::Closed.into());
        }
        Ok(())
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

    /// One attempt to find the first sequence stored at or after `t` (the
    /// last sequence + 1 if none is), as the server finds it for a consumer
    /// that delivers `ByStartTime` (a binary search over the stored times):
    /// an ephemeral consumer is made, its starting point read from its
    /// info (`delivered.stream_seq` is the sequence before it), and deleted.
    async fn seq_at_time_once(&self, t: SystemTime) -> Result<u64, Failure> {
        use jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
        let consumer = self
            .stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::ByStartTime {
                    start_time: t.into(),
                },
                ack_policy: AckPolicy::None,
                memory_storage: true,
                num_replicas: 1,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| Failure::of(&self.name, &e))?;
        let info = consumer.cached_info();
        let seq = info.delivered.stream_sequence + 1;
        let name = info.name.clone();
        // If this fails, the server drops the consumer when it goes idle.
        let _ =
            tokio::time::timeout(self.timeouts.request, self.stream.delete_consumer(&name)).await;
        Ok(seq)
    }

    /// [`seq_at_time_once`](Shared::seq_at_time_once), retried within the
    /// operation timeout.
    pub(crate) async fn seq_at_time(&self, t: SystemTime) -> Result<u64, Error> {
        retry("offset_at_time", self.timeouts.op, || {
            self.seq_at_time_once(t)
        })
        .await
    }

    /// The stream sequence `at` stands for now.
    pub(crate) async fn resolve(&self, at: memlog::StartAt) -> Result<u64, Error> {
        Ok(match at {
            memlog::StartAt::Earliest => {
                self.info("stream_from").await?.state.first_sequence.max(1)
            }
            memlog::StartAt::Latest => self.info("stream_from").await?.state.last_sequence + 1,
            memlog::StartAt::Offset(o) => self.seq_of(o)?,
            memlog::StartAt::Time(t) => self.seq_at_time(t).await?,
        })
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

    pub(crate) async fn get(&self, seq: u64, leader: bool) -> Result<Option<Record<Bytes>>, Error> {
        retry("read", self.timeouts.op, || self.get_once(seq, leader)).await
    }

    pub(crate) fn check_size(&self, len: usize) -> Result<(), Error> {
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
    pub(crate) async fn publish(&self, id: &str, payload: Bytes) -> Result<Offset, Error> {
        let len = payload.len();
        let mut attempts = 0u32;
        let ack = retry("write", self.timeouts.op, || {
            attempts += 1;
            if attempts > 1 {
                Stats::count(&self.stats.retried, 1);
            }
            self.publish_once(id, payload.clone(), len)
        })
        .await?;
        Ok(self.acknowledged(&ack))
    }

    /// Counts an acknowledgement and returns its offset.
    pub(crate) fn acknowledged(&self, ack: &jetstream::publish::PublishAck) -> Offset {
        self.landed(ack.sequence, 1, ack.duplicate);
        self.offset_of(ack.sequence)
    }

    /// Counts `n` records acknowledged up to sequence `last`.
    pub(crate) fn landed(&self, last: u64, n: u64, duplicate: bool) {
        Stats::count(&self.stats.acknowledged, n);
        if duplicate {
            Stats::count(&self.stats.deduplicated, n);
        }
        self.max_acked.fetch_max(last, Ordering::AcqRel);
    }

    /// Sends one record; the future that follows waits for its ack.
    pub(crate) async fn send(
        &self,
        id: &str,
        payload: Bytes,
    ) -> Result<PublishAckFuture, PublishError> {
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
            K::StreamNotFound => Err(self.no_responders(e.to_string()).await),
            _ => match Failure::of(&self.name, &e) {
                Failure::Fatal(Error::Server { code, .. }) if code == MESSAGE_TOO_LARGE => {
                    Err(too_large())
                }
                f => Err(self.refused(f)),
            },
        }
    }

    /// Notes what a refusal says of the stream (sealed) and passes it on.
    pub(crate) fn refused(&self, f: Failure) -> Failure {
        if matches!(f, Failure::Fatal(Error::Log(memlog::Error::Closed))) {
            self.mark_sealed();
        }
        f
    }

    /// No responders for a publish: the stream has no leader right now
    /// (restart, election), or it was deleted. Asks which.
    pub(crate) async fn no_responders(&self, why: String) -> Failure {
        match self.js.get_stream(&self.name).await {
            Err(ge) => match Failure::of(&self.name, &ge) {
                f @ Failure::Fatal(Error::StreamNotFound { .. }) => f,
                _ => Failure::Transient(why),
            },
            Ok(_) => Failure::Transient(why),
        }
    }
}
