//! `write_batch`'s two ways to the server: atomic batches (nats-server
//! 2.12+, a stream with `allow_atomic`) and pipelined single publishes
//! (older servers, or a stream opened without `allow_atomic`).
//!
//! An atomic batch is a run of core messages on the log's subject: each
//! carries `Nats-Batch-Id` (new per attempt) and `Nats-Batch-Sequence`
//! (1, 2, …), the last also `Nats-Batch-Commit: 1`. The first and the last
//! are requests (the first is answered empty once the server has opened
//! the batch, the last with the acknowledgement of the whole), the ones
//! between are sent without waiting. Nothing is stored before the commit,
//! and then all of it is, contiguous. Every message also carries the
//! record's `Nats-Msg-Id` (`{batch id}-{index}`): a batch sent again after
//! its commit was stored is refused whole (10201), and the offsets it got
//! are then learned from the server's duplicate table.

use crate::nats::{answer, retry, Failure, BATCH_DUPLICATE, MESSAGE_TOO_LARGE};
use crate::shared::{Shared, Stats};
use crate::Error;
use async_nats::jetstream::message::PublishMessage;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use memlog::Offset;

/// The most messages nats-server takes in one atomic batch (2.12+); a
/// longer `write_batch` is sent as consecutive atomic batches of this many.
pub(crate) const MAX_ATOMIC: usize = 1000;

/// How many acks one pipelined `write_batch` keeps outstanding.
const ACK_WINDOW: usize = 1024;

impl Shared {
    /// Writes `records` (already checked) in atomic batches of at most
    /// [`MAX_ATOMIC`]; returns their offsets. A batch that fails leaves the
    /// batches before it stored and nothing of itself.
    pub(crate) async fn write_atomic(
        &self,
        batch_id: &str,
        records: Vec<Bytes>,
    ) -> Result<Vec<Offset>, Error> {
        let mut offsets = Vec::with_capacity(records.len());
        for (k, chunk) in records.chunks(MAX_ATOMIC).enumerate() {
            self.check_open()?;
            let first = self.commit(batch_id, k * MAX_ATOMIC, chunk).await?;
            offsets.extend((0..chunk.len() as u64).map(|i| self.offset_of(first + i)));
        }
        Ok(offsets)
    }

    /// One atomic batch, retried whole until committed (or found committed
    /// by an earlier attempt); returns the sequence of its first record.
    async fn commit(&self, batch_id: &str, base: usize, chunk: &[Bytes]) -> Result<u64, Error> {
        let mut attempts = 0u32;
        retry("write", self.timeouts.op, || {
            attempts += 1;
            if attempts > 1 {
                Stats::count(&self.stats.retried, 1);
            }
            self.commit_once(batch_id, base, chunk)
        })
        .await
    }

    async fn commit_once(
        &self,
        batch_id: &str,
        base: usize,
        chunk: &[Bytes],
    ) -> Result<u64, Failure> {
        let n = chunk.len();
        let attempt = self.new_id();
        let headers = |i: usize| {
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("{batch_id}-{}", base + i).as_str());
            h.insert("Nats-Batch-Id", attempt.as_str());
            h.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            if i + 1 == n {
                h.insert("Nats-Batch-Commit", "1");
            }
            h
        };
        let request = |i: usize| {
            self.client
                .request_with_headers(self.subject.clone(), headers(i), chunk[i].clone())
        };
        let mut last = None;
        for i in 0..n {
            if i == 0 || i + 1 == n {
                let reply = match request(i).await {
                    Ok(reply) => reply,
                    Err(e) => return Err(self.request_failed(e).await),
                };
                last = self
                    .batch_answer(batch_id, base, chunk, &reply.payload)
                    .await?;
                if let Some(first) = last.filter(|_| i + 1 < n) {
                    // Refused whole already at the first message (10201).
                    return Ok(first);
                }
            } else {
                self.client
                    .publish_with_headers(self.subject.clone(), headers(i), chunk[i].clone())
                    .await
                    .map_err(|e| Failure::Transient(e.to_string()))?;
            }
        }
        last.ok_or_else(|| Failure::Transient("the commit was not acknowledged".into()))
    }

    /// A core request got no answer: no responders (no leader now, or the
    /// stream is gone: ask which), or a timeout.
    async fn request_failed(&self, e: async_nats::RequestError) -> Failure {
        match e.kind() {
            async_nats::RequestErrorKind::NoResponders => self.no_responders(e.to_string()).await,
            _ => Failure::Transient(e.to_string()),
        }
    }

    /// Reads the answer to a batch message: `Some(first sequence)` once the
    /// batch is stored (the commit's acknowledgement, or 10201 and the
    /// offsets found), `None` for the first message's empty answer.
    async fn batch_answer(
        &self,
        batch_id: &str,
        base: usize,
        chunk: &[Bytes],
        payload: &[u8],
    ) -> Result<Option<u64>, Failure> {
        let n = chunk.len() as u64;
        match answer(&self.name, payload) {
            Ok(None) => Ok(None),
            Ok(Some(ack)) => {
                let last = ack.get("seq").and_then(|s| s.as_u64()).ok_or_else(|| {
                    Failure::Transient(format!("batch acknowledgement without seq: {ack}"))
                })?;
                let count = ack.get("count").and_then(|c| c.as_u64()).unwrap_or(n);
                if count != n || last < n {
                    return Err(Failure::Fatal(Error::Server {
                        code: 0,
                        description: format!("batch of {n} acknowledged as {ack}"),
                    }));
                }
                self.landed(last, n, false);
                Ok(Some(last - n + 1))
            }
            Err((Some(BATCH_DUPLICATE), why)) => {
                let first = self
                    .stored_earlier(batch_id, base, chunk.len(), why)
                    .await?;
                self.landed(first + n - 1, n, true);
                Ok(Some(first))
            }
            Err((Some(MESSAGE_TOO_LARGE), _)) => {
                let len = chunk.iter().map(Bytes::len).max().unwrap_or(0);
                Err(Failure::Fatal(
                    memlog::Error::RecordTooLarge {
                        len,
                        max: self.max_record,
                    }
                    .into(),
                ))
            }
            Err((_, f)) => Err(self.refused(f)),
        }
    }

    /// After 10201: where the batch with these message ids was stored,
    /// asked of the server's duplicate table for its first and last id. A
    /// batch lands whole and contiguous, so the two must be `len - 1`
    /// apart; anything else (ids reused across batches) is refused.
    async fn stored_earlier(
        &self,
        batch_id: &str,
        base: usize,
        len: usize,
        why: Failure,
    ) -> Result<u64, Failure> {
        let first = self.stored_at(&format!("{batch_id}-{base}")).await?;
        let last = self
            .stored_at(&format!("{batch_id}-{}", base + len - 1))
            .await?;
        match (first, last) {
            (Some(f), Some(l)) if l >= f && l - f == len as u64 - 1 => Ok(f),
            _ => Err(match why {
                Failure::Fatal(e) => Failure::Fatal(e),
                Failure::Transient(why) => Failure::Fatal(Error::Server {
                    code: BATCH_DUPLICATE,
                    description: why,
                }),
            }),
        }
    }

    /// The sequence the message with id `id` was stored at, if the server
    /// still remembers it (within the duplicate window). The probe expects
    /// a last message id that no write ever has, so it is never stored: the
    /// server answers a known id as a duplicate before it checks that
    /// (checked on 2.9.10 and 2.15.1; an expected last *sequence* is checked
    /// first on 2.15.1, so it would not do). On a server that checked the
    /// expected id first, the probe would find nothing and the retried batch
    /// would fail with 10201: never stored twice.
    async fn stored_at(&self, id: &str) -> Result<Option<u64>, Failure> {
        let never = format!("{}.probe-never-written", self.new_id());
        let probe = PublishMessage::build()
            .payload(Bytes::new())
            .message_id(id)
            .expected_last_message_id(never);
        let ack = self
            .js
            .send_publish(self.subject.clone(), probe)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        match ack.await {
            Ok(ack) if ack.duplicate => Ok(Some(ack.sequence)),
            Ok(ack) => Err(Failure::Fatal(Error::Server {
                code: 0,
                description: format!(
                    "a probe for message id {id} was stored at sequence {}",
                    ack.sequence
                ),
            })),
            Err(e) => match Failure::of(&self.name, &e) {
                Failure::Fatal(Error::Server { .. }) => Ok(None),
                f => Err(f),
            },
        }
    }

    /// Writes `records` (already checked) as single publishes, pipelined:
    /// sent in order without waiting for each acknowledgement, at most
    /// `ACK_WINDOW` outstanding, each retried alone with its message id.
    pub(crate) async fn write_pipelined(
        &self,
        batch_id: &str,
        records: Vec<Bytes>,
    ) -> Result<Vec<Offset>, Error> {
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
            let ack = self.send(&id, data.clone()).await;
            acks.push_back(async move {
                if let Ok(ack) = ack {
                    if let Ok(ack) = ack.await {
                        return (i, Ok(self.acknowledged(&ack)));
                    }
                }
                // Retry it alone, with its id: the server keeps one copy.
                Stats::count(&self.stats.retried, 1);
                (i, self.publish(&id, data).await)
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
}

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
