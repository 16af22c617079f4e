//! [`Follower`]: reads a JetStream stream in sequence order and says when it
//! can not: the engine under [`RecordStream`](crate::RecordStream) and the
//! [`Replica`](crate::Replica).
//!
//! It reads through an ephemeral pull consumer (no acks, in memory) that
//! starts at the next sequence it wants. JetStream delivers from the first
//! retained message when that sequence was purged, without a word; so every
//! delivered sequence is checked against the expected one, and a jump
//! becomes [`Event::Gap`] if the server confirms the message is gone (else
//! the consumer is replaced and the message read again): never a silent
//! skip, never a false alarm. When the consumer fails (the
//! server restarted, the leader moved, heartbeats stopped, or nothing came
//! for a poll interval although the stream has the next message) it is
//! replaced by a new one at the next expected sequence: no gap, no
//! duplicate. While idle it asks for the stream's state every poll interval:
//! a sealed stream it has drained, or a closed handle's end, is
//! [`Event::End`]. A message deleted from the middle of the stream (by
//! another client) is [`Event::Deleted`]. Errors that can not clear (the
//! stream was deleted) are returned at once; transient ones are retried
//! with a growing pause, never in a tight loop.

use crate::nats::Failure;
use crate::shared::{Ending, Shared};
use crate::Error;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Messages requested per pull.
const PULL_BATCH: usize = 1024;
/// How long a pull request waits on the server, and the heartbeat that shows
/// it is alive meanwhile.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
const PULL_HEARTBEAT: Duration = Duration::from_millis(1000);
/// How long the server keeps a consumer nobody pulls from (one left behind
/// by a lost connection).
const CONSUMER_IDLE: Duration = Duration::from_secs(30);

/// How many times a consumer may skip a retained message before the follower
/// asks whether it was deleted.
const MAX_SKIPS: u32 = 3;

/// A stream message.
#[derive(Debug)]
pub(crate) struct Msg {
    pub(crate) seq: u64,
    pub(crate) time: SystemTime,
    pub(crate) payload: Bytes,
}

/// What [`Follower::next`] found.
#[derive(Debug)]
pub(crate) enum Event {
    /// The next message.
    Msg(Msg),
    /// The messages from the expected sequence up to (not including) `next`
    /// are gone (purged by retention); the follower continues at `next`.
    Gap { next: u64 },
    /// The stream is sealed, or this handle closed, and every message up
    /// to its end was delivered.
    End,
    /// The message at sequence `seq` was deleted from the middle of the
    /// stream (it is neither purged by retention nor coming).
    Deleted { seq: u64 },
}

/// The pause before the `n`th new consumer in a row that delivered nothing:
/// none for the first, then 50 ms doubling up to 2 s.
fn backoff(n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => (Duration::from_millis(50) * 2u32.pow((n - 1).min(6))).min(Duration::from_secs(2)),
    }
}

pub(crate) struct Follower {
    shared: Arc<Shared>,
    /// The sequence to deliver next.
    next: u64,
    consumer: Option<(pull::Stream, String)>,
    /// A message that arrived after a gap, delivered on the next call.
    pending: Option<Msg>,
    ending: watch::Receiver<Ending>,
    /// Since when, and why, the server has not been reachable.
    trouble: Option<(Instant, String)>,
    /// How many times in a row a consumer skipped the expected sequence.
    skips: u32,
    /// How many consumers in a row were made without delivering anything.
    fruitless: u32,
}

impl Follower {
    pub(crate) fn new(shared: Arc<Shared>, next: u64) -> Follower {
        let ending = shared.ending.subscribe();
        Follower {
            shared,
            next,
            consumer: None,
            pending: None,
            ending,
            trouble: None,
            skips: 0,
            fruitless: 0,
        }
    }

    /// The next event. Cancel-safe: dropping the future loses nothing.
    ///
    /// # Errors
    /// [`Error::Unavailable`] after the server was unreachable for the
    /// operation timeout (the follower stays usable and keeps trying on the
    /// next call); any other error is final (the stream was deleted, the
    /// server refuses the consumer) and the follower must not be asked again.
    pub(crate) async fn next(&mut self) -> Result<Event, Error> {
        if let Some(m) = self.pending.take() {
            self.next = m.seq + 1;
            return Ok(Event::Msg(m));
        }
        loop {
            if self.shared.closed_end().is_some_and(|end| self.next > end) {
                return Ok(Event::End);
            }
            if self.consumer.is_none() {
                tokio::time::sleep(backoff(self.fruitless)).await;
                self.fruitless = self.fruitless.saturating_add(1);
                if let Err(f) = self.subscribe().await {
                    self.trouble(f)?;
                    continue;
                }
            }
            let (msgs, _) = self.consumer.as_mut().expect("subscribed above");
            // Once sealed (in this process), check for the end often.
            let idle = if self.ending.borrow().sealed {
                self.shared.timeouts.poll.min(Duration::from_millis(50))
            } else {
                self.shared.timeouts.poll
            };
            let got = tokio::select! {
                m = tokio::time::timeout(idle, msgs.next()) => m.ok(),
                _ = self.ending.changed() => None,
            };
            match got {
                Some(Some(Ok(m))) => {
                    let (seq, time) = match m.info() {
                        Ok(i) => (i.stream_sequence, SystemTime::from(i.published)),
                        Err(e) => {
                            self.drop_consumer();
                            self.trouble(Failure::Transient(e.to_string()))?;
                            continue;
                        }
                    };
                    self.trouble = None;
                    self.fruitless = 0;
                    if seq < self.next {
                        continue; // delivered before: not again
                    }
                    let msg = Msg {
                        seq,
                        time,
                        payload: m.message.payload.clone(),
                    };
                    if seq > self.next {
                        match self.skipped(msg).await? {
                            Some(gap) => return Ok(gap),
                            None => continue,
                        }
                    }
                    self.skips = 0;
                    self.next += 1;
                    return Ok(Event::Msg(msg));
                }
                Some(Some(Err(e))) => {
                    self.drop_consumer();
                    self.trouble(Failure::of(&self.shared.name, &e))?;
                }
                Some(None) => self.drop_consumer(),
                None => {
                    if let Some(event) = self.check().await? {
                        return Ok(event);
                    }
                }
            }
        }
    }

    /// The consumer delivered `msg` past the expected sequence. Purged (the
    /// stream's first sequence is past it): a gap. Otherwise the consumer
    /// skipped a message the stream has, which nats-server 2.9 does right
    /// after a leader change in a cluster (the message shows up moments
    /// later): start a new consumer at the expected sequence. Only if that
    /// keeps happening and the leader has no such message is it a message
    /// deleted from the middle (which streams this crate creates forbid).
    async fn skipped(&mut self, msg: Msg) -> Result<Option<Event>, Error> {
        self.drop_consumer();
        let first = match self.shared.info_once().await {
            Ok(info) => info.state.first_sequence,
            Err(f) => {
                self.trouble(f)?;
                return Ok(None);
            }
        };
        let gone = first > self.next || {
            self.skips += 1;
            self.skips > MAX_SKIPS
                && matches!(self.shared.get_once(self.next, true).await, Ok(None))
        };
        if !gone {
            tokio::time::sleep(Duration::from_millis(20 * u64::from(self.skips))).await;
            return Ok(None);
        }
        self.skips = 0;
        if first <= self.next {
            let seq = self.next;
            self.next += 1;
            if self.next == msg.seq {
                self.pending = Some(msg);
            }
            return Ok(Some(Event::Deleted { seq }));
        }
        self.next = first.min(msg.seq);
        if self.next == msg.seq {
            self.pending = Some(msg);
        }
        Ok(Some(Event::Gap { next: self.next }))
    }

    /// Nothing came for a while: ask the server what the stream holds.
    async fn check(&mut self) -> Result<Option<Event>, Error> {
        let info = match self.shared.info_once().await {
            Ok(info) => info,
            Err(f) => {
                self.trouble(f)?;
                return Ok(None);
            }
        };
        self.trouble = None;
        let state = info.state;
        if state.first_sequence > self.next {
            self.next = state.first_sequence;
            self.drop_consumer();
            return Ok(Some(Event::Gap { next: self.next }));
        }
        if info.config.sealed && self.next > state.last_sequence {
            return Ok(Some(Event::End));
        }
        if state.last_sequence >= self.next {
            // The next message exists but did not come: the consumer is
            // gone or stuck (a restart it did not notice). Start a new one.
            self.drop_consumer();
        }
        Ok(None)
    }

    /// Counts a failure: fatal ones are returned, transient ones only once
    /// they have lasted the operation timeout (then the clock restarts).
    fn trouble(&mut self, f: Failure) -> Result<(), Error> {
        let why = match f {
            Failure::Fatal(e) => return Err(e),
            Failure::Transient(why) => why,
        };
        let since = match &self.trouble {
            Some((since, _)) => *since,
            None => Instant::now(),
        };
        if since.elapsed() >= self.shared.timeouts.op {
            self.trouble = None;
            return Err(Error::Unavailable {
                op: "stream",
                waited: since.elapsed(),
                detail: why,
            });
        }
        self.trouble = Some((since, why));
        Ok(())
    }

    async fn subscribe(&mut self) -> Result<(), Failure> {
        let name = &self.shared.name;
        let consumer = self
            .shared
            .stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: self.next,
                },
                ack_policy: AckPolicy::None,
                memory_storage: true,
                num_replicas: 1,
                inactive_threshold: CONSUMER_IDLE,
                ..Default::default()
            })
            .await
            .map_err(|e| Failure::of(name, &e))?;
        let consumer_name = consumer.cached_info().name.clone();
        let msgs = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await
            .map_err(|e| Failure::of(name, &e))?;
        self.consumer = Some((msgs, consumer_name));
        Ok(())
    }

    /// Drops the consumer, and deletes it on the server in the background
    /// (if that fails, the server drops it after `CONSUMER_IDLE`).
    fn drop_consumer(&mut self) {
        if let Some((msgs, name)) = self.consumer.take() {
            drop(msgs);
            let stream = self.shared.stream.clone();
            let wait = self.shared.timeouts.request;
            self.shared.rt.spawn(async move {
                let _ = tokio::time::timeout(wait, stream.delete_consumer(&name)).await;
            });
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.drop_consumer();
    }
}
