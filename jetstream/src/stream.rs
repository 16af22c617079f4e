//! [`RecordStream`]: follows a JetStream log in offset order, with memlog's
//! stream semantics; and the [`Canceller`] shared with replica streams.

use crate::follow::{Event, Follower};
use crate::shared::Shared;
use crate::Error;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::task::noop_waker_ref;
use memlog::{Offset, Record};
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;

/// Cancels a [`RecordStream`] or a [`ReplicaStream`](crate::ReplicaStream)
/// from any thread or task, waking it if it waits.
///
/// ```
/// # let server = memlog_jetstream::testing::Server::start()?;
/// # let log = memlog_jetstream::JetStreamLog::builder(&server.url(), "c").create_blocking()?;
/// let mut stream = log.stream(0);
/// let cancel = stream.canceller();
/// std::thread::spawn(move || cancel.cancel());
/// assert_eq!(stream.next(), Some(Err(memlog::Error::Cancelled.into())));
/// assert_eq!(stream.next(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Canceller {
    inner: Arc<CancelState>,
}

#[derive(Default)]
struct CancelState {
    flag: AtomicBool,
    notify: Notify,
    /// The memlog stream a replica stream reads now, cancelled with it.
    local: Mutex<Option<memlog::Canceller>>,
}

impl Canceller {
    /// Cancels the stream: its next call returns `Cancelled` (then it ends),
    /// and a call waiting wakes and returns it. Idempotent.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::Release);
        self.inner.notify.notify_waiters();
        if let Some(c) = &*self.inner.local.lock().unwrap_or_else(|p| p.into_inner()) {
            c.cancel();
        }
    }

    /// Whether [`cancel`](Canceller::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
    }

    /// Resolves once cancelled.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Makes `c` (a replica stream's current memlog stream) cancelled with
    /// this one, and at once if this one already is.
    pub(crate) fn set_local(&self, c: memlog::Canceller) {
        let mut slot = self.inner.local.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_cancelled() {
            c.cancel();
        }
        *slot = Some(c);
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canceller")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

type Step = BoxFuture<'static, (Box<Follower>, Result<Event, Error>)>;

enum State {
    /// Not started: the first call checks the start offset.
    New(Offset),
    Idle(Box<Follower>),
    /// A `Follower::next` in flight, owning the follower; a timed-out or
    /// dropped wait leaves it here and the next call picks it up.
    Busy(Step),
    Ended,
}

/// Follows a [`JetStreamLog`](crate::JetStreamLog) in offset order from a
/// start offset, as a [`futures_core::Stream`]; the blocking form is
/// [`blocking::Stream`](crate::blocking::Stream). It yields, like memlog's
/// streams:
/// - `Ok(record)` for each record, in order, with no gaps and no duplicates,
///   across server restarts and leader changes (it resumes at its next
///   offset);
/// - `Err(OutOfRange)` once if its next offset was purged before it was
///   read (the start offset, or later when it fell behind retention), then
///   the end: JetStream would silently deliver from the first retained
///   message instead, the stream checks every sequence;
/// - `Err(Cancelled)` once after [`Canceller::cancel`], then the end;
/// - after [`close`](crate::JetStreamLog::close) of its handle, the records
///   the stream held then, then the end; after
///   [`seal`](crate::JetStreamLog::seal) (by any process), every record,
///   then the end;
/// - `Err(Unavailable)` when the servers were unreachable for the
///   [`timeout`](crate::Builder::timeout); the stream stays usable and goes
///   on where it was on the next call;
/// - `Err(Deleted { offset })` once if the message at its next offset was
///   deleted from the middle of the stream (by another client), then the
///   end (a new stream from `offset + 1` goes on);
/// - any other error (the stream was deleted: `StreamNotFound`) once, then
///   the end: it can not clear by waiting.
///
/// It reads through an ephemeral JetStream consumer, created on the first
/// call and deleted when the stream is dropped.
pub struct RecordStream {
    shared: Arc<Shared>,
    /// The offset of the next record to yield.
    next: Offset,
    state: State,
    cancel: Canceller,
    end: Option<Error>,
}

impl fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordStream")
            .field("stream", &self.shared.name)
            .field("next_offset", &self.next)
            .field("ended", &self.end)
            .finish()
    }
}

impl RecordStream {
    pub(crate) fn new(shared: Arc<Shared>, start: Offset) -> RecordStream {
        RecordStream {
            shared,
            next: start,
            state: State::New(start),
            cancel: Canceller::default(),
            end: None,
        }
    }

    /// The offset of the next record this stream will yield.
    pub fn next_offset(&self) -> Offset {
        self.next
    }

    /// A handle that cancels this stream from any thread or task.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// Whether the stream has ended (and the error that ended it; `Closed`
    /// for a drained sealed stream).
    pub fn ended(&self) -> Option<&Error> {
        self.end.as_ref()
    }

    fn finish(&mut self, e: Error) -> Error {
        self.state = State::Ended;
        self.end = Some(e.clone());
        e
    }

    /// The next record, or the error that ends the stream (`Closed` when it
    /// is drained), or a passing one (`Unavailable`).
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Record<Bytes>, Error>> {
        if let Some(e) = &self.end {
            return Poll::Ready(Err(e.clone()));
        }
        if self.cancel.is_cancelled() {
            return Poll::Ready(Err(self.finish(memlog::Error::Cancelled.into())));
        }
        loop {
            match std::mem::replace(&mut self.state, State::Ended) {
                State::New(start) => match self.shared.seq_of(start) {
                    Ok(seq) => {
                        self.state = State::Idle(Box::new(Follower::new(self.shared.clone(), seq)))
                    }
                    Err(e) => return Poll::Ready(Err(self.finish(e))),
                },
                State::Idle(mut f) => {
                    let cancel = self.cancel.clone();
                    self.state = State::Busy(Box::pin(async move {
                        let r = tokio::select! {
                            r = f.next() => r,
                            _ = cancel.cancelled() => Err(memlog::Error::Cancelled.into()),
                        };
                        (f, r)
                    }));
                }
                State::Busy(mut step) => {
                    let (f, r) = match step.as_mut().poll(cx) {
                        Poll::Ready(done) => done,
                        Poll::Pending => {
                            self.state = State::Busy(step);
                            return Poll::Pending;
                        }
                    };
                    self.state = State::Idle(f);
                    return Poll::Ready(match r {
                        Ok(Event::Msg(m)) => {
                            let offset = self.shared.offset_of(m.seq);
                            self.next = offset + 1;
                            Ok(Record {
                                offset,
                                created: m.time,
                                data: m.payload,
                            })
                        }
                        Ok(Event::Gap { .. }) => Err(self.finish(memlog::Error::OutOfRange.into())),
                        Ok(Event::End) => Err(self.finish(memlog::Error::Closed.into())),
                        Ok(Event::Deleted { seq }) => Err(self.finish(Error::Deleted {
                            offset: self.shared.offset_of(seq),
                        })),
                        Err(e @ Error::Unavailable { .. }) => Err(e),
                        Err(e) => Err(self.finish(e)),
                    });
                }
                State::Ended => unreachable!("an ended stream returns above"),
            }
        }
    }

    /// The next record, waiting for it as long as it takes, as
    /// `memlog::Stream::recv`: the endings are errors where the
    /// [`futures_core::Stream`] ends with `None`.
    ///
    /// # Errors
    /// `Closed` once a sealed stream (or a closed handle's) is drained;
    /// `Unavailable` when the servers were unreachable for the timeout (the
    /// stream stays usable); `OutOfRange`, `Cancelled`, `Deleted` or a
    /// final error as the stream's items. After the stream ended, every
    /// call returns the error that ended it.
    pub async fn recv(&mut self) -> Result<Record<Bytes>, Error> {
        poll_fn(|cx| self.poll_step(cx)).await
    }

    /// The next record, waiting at most `d` for it.
    ///
    /// # Errors
    /// `Timeout` if none came in time (the stream stays usable); `Closed`
    /// once a sealed stream is drained; otherwise as the stream's items.
    pub async fn recv_timeout(&mut self, d: Duration) -> Result<Record<Bytes>, Error> {
        match tokio::time::timeout(d, poll_fn(|cx| self.poll_step(cx))).await {
            Ok(r) => r,
            Err(_) => Err(memlog::Error::Timeout.into()),
        }
    }

    /// The next record if it is already written, without waiting for new
    /// writes (it may wait, within the operation timeout, for the server to
    /// deliver one that is).
    ///
    /// # Errors
    /// `FutureOffset` when nothing new is written (the stream stays usable);
    /// `Closed` once a sealed stream is drained; otherwise as the items.
    pub async fn try_recv(&mut self) -> Result<Record<Bytes>, Error> {
        if let Poll::Ready(r) = self.poll_step(&mut Context::from_waker(noop_waker_ref())) {
            return r;
        }
        let seq = self.shared.seq_of(self.next)?;
        if self.shared.closed_end().is_some_and(|end| seq > end) {
            return Err(self.finish(memlog::Error::Closed.into()));
        }
        let info = self.shared.info("stream").await?;
        if seq > info.state.last_sequence && seq >= info.state.first_sequence {
            if info.config.sealed {
                return Err(self.finish(memlog::Error::Closed.into()));
            }
            return Err(memlog::Error::FutureOffset.into());
        }
        let wait = self.shared.timeouts.op;
        match tokio::time::timeout(wait, poll_fn(|cx| self.poll_step(cx))).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable {
                op: "stream",
                waited: wait,
                detail: "the next record is written but was not delivered".into(),
            }),
        }
    }

    /// The item for `poll_next` (and the blocking iterator): a drained
    /// sealed stream ends without an item.
    pub(crate) fn poll_item(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Record<Bytes>, Error>>> {
        if self.end.is_some() {
            return Poll::Ready(None);
        }
        self.poll_step(cx).map(|r| match r {
            Err(e) if e == memlog::Error::Closed => None,
            r => Some(r),
        })
    }
}

impl futures_core::Stream for RecordStream {
    type Item = Result<Record<Bytes>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}
