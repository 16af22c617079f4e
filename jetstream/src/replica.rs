//! [`Replica`]: a JetStream log followed into a local `memlog::Log<Bytes>`
//! with the same offsets, and [`ReplicaStream`], which follows the replica
//! across its generations.
//!
//! # Generations
//! The replica writes what the stream delivers into the current local log,
//! in one `write_batch_timed` per run of ready messages, with the server's
//! timestamps; the local offsets are the stream's because the local log
//! starts at the replica's first offset and nothing else writes to it. If
//! the replica falls behind the server's retention (it was cut off while
//! writers went on), the next offset it needs is gone; a memlog can not have
//! a hole, so the replica starts a new local log (a new *generation*) at the
//! server's first retained offset and closes the old one. Local readers
//! learn it explicitly: `read` of a missing offset gives `OutOfRange`, and a
//! [`ReplicaStream`] that drained the old generation yields
//! `Err(OutOfRange)` if its next offset is not in the new one (and moves on
//! silently if it is). No silent gap, no wrong offset.

use crate::follow::{Event, Follower};
use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::{Canceller, Error, JetStreamLog};
use bytes::Bytes;
use futures_util::task::noop_waker_ref;
use futures_util::FutureExt;
use memlog::{AsyncStream, Log, Offset, Record};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread, ThreadId};
use std::time::{Duration, Instant, SystemTime};

/// The most records written to the local log in one batch.
const MAX_BATCH: usize = 256;
/// Local history segments when the stream keeps everything and none are given.
const UNLIMITED_HISTORY: usize = 16;

/// Where a replica starts.
#[derive(Clone, Copy, Debug)]
enum StartAt {
    First,
    Offset(Offset),
    Next,
    Time(SystemTime),
}

/// Configures and starts a [`Replica`]; from [`JetStreamLog::replica`] or
/// [`blocking::JetStreamLog::replica`](crate::blocking::JetStreamLog::replica).
#[derive(Debug)]
pub struct ReplicaBuilder {
    log: JetStreamLog,
    rt: Option<Arc<Runtime>>,
    segment_size: usize,
    history: Option<usize>,
    start: StartAt,
}

impl ReplicaBuilder {
    pub(crate) fn new(log: JetStreamLog, rt: Option<Arc<Runtime>>) -> ReplicaBuilder {
        ReplicaBuilder {
            log,
            rt,
            segment_size: memlog::DEFAULT_SEGMENT_SIZE,
            history: None,
            start: StartAt::First,
        }
    }

    /// The local log's segment size (default 1024).
    pub fn segment_size(mut self, n: usize) -> Self {
        self.segment_size = n;
        self
    }

    /// The local log's history segments (default: enough to keep at least
    /// what the stream keeps; 16 if it keeps everything).
    pub fn history_segments(mut self, n: usize) -> Self {
        self.history = Some(n);
        self
    }

    /// Start at `offset` instead of the stream's first retained offset. If it
    /// is already purged, the first generation is empty and the second starts
    /// at the first retained offset (local streams from `offset` get
    /// `OutOfRange`).
    pub fn from_offset(mut self, offset: Offset) -> Self {
        self.start = StartAt::Offset(offset);
        self
    }

    /// Start at the first record the server stored at or after `t` (see
    /// [`JetStreamLog::offset_at_time`]): replicate what was written since
    /// then.
    pub fn from_time(mut self, t: SystemTime) -> Self {
        self.start = StartAt::Time(t);
        self
    }

    /// Start with the next record written (replicate nothing older).
    pub fn from_next(mut self) -> Self {
        self.start = StartAt::Next;
        self
    }

    /// Starts following on the current tokio runtime.
    ///
    /// # Errors
    /// `InvalidConfig` for bad local log settings; as
    /// [`JetStreamLog::range`] for the server.
    pub async fn start(self) -> Result<Replica, Error> {
        let handle = tokio::runtime::Handle::current();
        self.start_on(handle, None).await
    }

    /// Starts following on the blocking log's runtime (or a new one), for
    /// code without an async runtime.
    ///
    /// # Errors
    /// As [`start`](ReplicaBuilder::start).
    pub fn start_blocking(mut self) -> Result<Replica, Error> {
        let rt = match self.rt.take() {
            Some(rt) => rt,
            None => Arc::new(Runtime::new()?),
        };
        let handle = rt.handle().clone();
        rt.block_on(self.start_on(handle, Some(rt.clone())))
    }

    async fn start_on(
        self,
        handle: tokio::runtime::Handle,
        rt: Option<Arc<Runtime>>,
    ) -> Result<Replica, Error> {
        let js = self.log.shared.clone();
        let history = match (self.history, js.capacity) {
            (Some(h), _) => h,
            (None, Some(cap)) => usize::try_from(cap.div_ceil(self.segment_size.max(1) as u64))
                .unwrap_or(usize::MAX)
                .clamp(1, memlog::MAX_HISTORY_SEGMENTS),
            (None, None) => UNLIMITED_HISTORY,
        };
        let state = js.info("replica").await?.state;
        let first = match self.start {
            StartAt::First => state.first_sequence.max(1),
            StartAt::Offset(o) => js.seq_of(o)?,
            StartAt::Next => state.last_sequence + 1,
            StartAt::Time(t) => js.seq_at_time(t).await?,
        };
        let settings = (self.segment_size, history);
        let log = local_log(js.offset_of(first), settings)?;
        let max_batch = MAX_BATCH.min(self.segment_size.saturating_mul(history + 1));
        let shared = Arc::new(ReplicaShared {
            current: RwLock::new((log, 0)),
            settings,
            last_error: Mutex::new(None),
            following: AtomicBool::new(true),
        });
        let follower = Follower::new(js.clone(), first);
        let task = handle.spawn(follow(follower, shared.clone(), js, max_batch));
        Ok(Replica {
            inner: Arc::new(ReplicaInner {
                shared,
                task: task.abort_handle(),
                _rt: rt,
            }),
        })
    }
}

impl JetStreamLog {
    /// A replica of this log in a local `memlog::Log` (see [`Replica`]).
    pub fn replica(&self) -> ReplicaBuilder {
        ReplicaBuilder::new(self.clone(), None)
    }
}

fn local_log(start: Offset, (segment_size, history): (usize, usize)) -> Result<Log<Bytes>, Error> {
    Ok(Log::builder()
        .start_offset(start)
        .segment_size(segment_size)
        .history_segments(history)
        .build()?)
}

/// What the replica's task and its readers share.
struct ReplicaShared {
    /// The current generation's log and its number.
    current: RwLock<(Log<Bytes>, u64)>,
    settings: (usize, usize),
    last_error: Mutex<Option<Error>>,
    following: AtomicBool,
}

impl ReplicaShared {
    fn current(&self) -> (Log<Bytes>, u64) {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_error(&self, e: Option<Error>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    /// Starts generation n+1 at `start` and closes generation n: the new
    /// one is in place before the old one's readers see it closed.
    fn new_generation(&self, start: Offset) -> Result<Log<Bytes>, Error> {
        let log = local_log(start, self.settings)?;
        let old = {
            let mut cur = self.current.write().unwrap_or_else(|p| p.into_inner());
            let gen = cur.1 + 1;
            std::mem::replace(&mut *cur, (log.clone(), gen)).0
        };
        old.close();
        Ok(log)
    }

    fn stop(&self) {
        self.following.store(false, Ordering::Release);
        self.current().0.close();
    }
}

/// The replica's task: the stream's messages into the local log.
async fn follow(mut f: Follower, rs: Arc<ReplicaShared>, js: Arc<Shared>, max_batch: usize) {
    let mut batch: Vec<(SystemTime, Bytes)> = Vec::with_capacity(max_batch);
    let mut stashed = None;
    loop {
        let event = match stashed.take() {
            Some(e) => e,
            None => f.next().await,
        };
        let first = match event {
            Ok(Event::Msg(m)) => {
                batch.push((m.time, m.payload));
                js.offset_of(m.seq)
            }
            Ok(Event::Gap { next }) => {
                if let Err(e) = rs.new_generation(js.offset_of(next)) {
                    rs.set_error(Some(e));
                    return rs.stop();
                }
                continue;
            }
            Ok(Event::End) => return rs.stop(),
            Ok(Event::Deleted { seq }) => {
                // A memlog log has no holes: stop here, with what came
                // before it readable, rather than start a generation that
                // would hide records the server still holds.
                rs.set_error(Some(Error::Deleted {
                    offset: js.offset_of(seq),
                }));
                return rs.stop();
            }
            // Passing: the follower keeps trying, with pauses.
            Err(e @ Error::Unavailable { .. }) => {
                rs.set_error(Some(e));
                continue;
            }
            // Final (the stream was deleted, the server refuses the
            // consumer): asking again would only repeat it.
            Err(e) => {
                rs.set_error(Some(e));
                return rs.stop();
            }
        };
        // Take what else is ready, to write it in one batch.
        while batch.len() < max_batch {
            match f.next().now_or_never() {
                Some(Ok(Event::Msg(m))) => batch.push((m.time, m.payload)),
                Some(other) => {
                    stashed = Some(other);
                    break;
                }
                None => break,
            }
        }
        let mut log = rs.current().0;
        if log.next_offset() != first {
            // Never write a record at another offset than the stream's.
            log = match rs.new_generation(first) {
                Ok(log) => log,
                Err(e) => {
                    rs.set_error(Some(e));
                    return rs.stop();
                }
            };
        }
        if log.write_batch_timed(batch.drain(..)).is_err() {
            return; // closed: the replica was stopped
        }
        rs.set_error(None);
    }
}

/// A JetStream log followed into a local `memlog::Log<Bytes>` whose offsets
/// are the stream's: local readers get memlog's reads, batches and streams
/// (blocking or async, thousands of them, at memory speed) while the
/// servers hold the truth. Cloning gives another handle; the replica stops
/// when the last handle is dropped (or on [`stop`](Replica::stop)), and
/// its local streams then drain and end.
///
/// It survives a server restart or a leader change: it resumes at its next
/// offset, with no gap and no duplicate. A sealed stream ends it (after the
/// last record), and so does an error that can not clear. If it falls behind the server's retention, it starts a new
/// local log; see the module docs on generations, [`ReplicaStream`] and
/// [`generation`](Replica::generation).
///
/// ```
/// # let server = memlog_jetstream::testing::Server::start()?;
/// # let url = server.url();
/// use std::time::Duration;
///
/// let log = memlog_jetstream::JetStreamLog::builder(&url, "events").create_blocking()?;
/// let replica = log.replica().start_blocking()?;
/// let offset = log.write("hello")?;
/// replica.wait_for(offset, Duration::from_secs(5))?;
/// let r = replica.read(offset)?; // local, lock-free
/// assert_eq!(r.data, "hello");
/// assert_eq!(r.created, log.read(offset)?.created); // the server's time
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Replica {
    inner: Arc<ReplicaInner>,
}

struct ReplicaInner {
    shared: Arc<ReplicaShared>,
    task: tokio::task::AbortHandle,
    _rt: Option<Arc<Runtime>>,
}

impl Drop for ReplicaInner {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.stop();
    }
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (log, gen) = self.inner.shared.current();
        f.debug_struct("Replica")
            .field("log", &log)
            .field("generation", &gen)
            .field("following", &self.is_following())
            .finish()
    }
}

impl Replica {
    /// The current generation's local log: memlog's whole API. It is closed
    /// when the replica stops or starts a new generation; prefer
    /// [`stream`](Replica::stream), which follows generations.
    pub fn log(&self) -> Log<Bytes> {
        self.inner.shared.current().0
    }

    /// The current generation: 0 at start, one more each time the replica
    /// fell behind the server's retention and restarted its local log.
    pub fn generation(&self) -> u64 {
        self.inner.shared.current().1
    }

    /// Reads a replicated record (memlog's `read`).
    ///
    /// # Errors
    /// `FutureOffset` if not replicated yet, `OutOfRange` if purged locally
    /// or never replicated (before the replica's start or in a gap).
    pub fn read(&self, offset: Offset) -> Result<Record<Bytes>, memlog::Error> {
        self.log().read(offset)
    }

    /// memlog's `read_batch` on the current generation.
    ///
    /// # Errors
    /// As [`read`](Replica::read).
    pub fn read_batch(
        &self,
        start: Offset,
        out: &mut Vec<Record<Bytes>>,
        max: usize,
    ) -> Result<usize, memlog::Error> {
        self.log().read_batch(start, out, max)
    }

    /// `(earliest, latest)` offsets held locally.
    pub fn range(&self) -> Option<(Offset, Offset)> {
        self.log().range()
    }

    /// One past the last replicated offset (a batch being copied counts as
    /// soon as it is claimed locally; [`range`](Replica::range) says what is
    /// readable).
    pub fn next_offset(&self) -> Offset {
        self.log().next_offset()
    }

    /// A stream of the replicated records from `start` on: memlog's stream
    /// semantics, across generations. See [`ReplicaStream`].
    pub fn stream(&self, start: Offset) -> ReplicaStream {
        let (log, gen) = self.inner.shared.current();
        ReplicaStream::new(self.inner.shared.clone(), log, gen, start)
    }

    /// A stream from where `at` says in the local log, as
    /// [`memlog::Log::stream_from`] finds it there: the earliest offset the
    /// replica retains, its next offset, an offset, or the first local
    /// record created (by the server: the times are copied) at or after a
    /// time, by memlog's binary search ([`memlog::StartAt::Time`] says what
    /// it guarantees). No request to the server.
    pub fn stream_from(&self, at: memlog::StartAt) -> ReplicaStream {
        let (log, gen) = self.inner.shared.current();
        let start = log.stream_from(at).next_offset();
        ReplicaStream::new(self.inner.shared.clone(), log, gen, start)
    }

    /// Waits until the replica holds `offset` (for reading your own write
    /// locally), at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`; `OutOfRange` if the offset was purged upstream before the
    /// replica got it; `Closed` if the replica stopped first.
    pub fn wait_for(&self, offset: Offset, timeout: Duration) -> Result<(), memlog::Error> {
        // Readable, not merely claimed: `next_offset` counts a local batch
        // the moment it is claimed, before its records are published.
        if self.range().is_some_and(|(_, last)| last >= offset) {
            return Ok(());
        }
        self.stream(offset).recv_timeout(timeout).map(|_| ())
    }

    /// Whether the replica still follows the stream. It stops on
    /// [`stop`](Replica::stop); when the stream is sealed, or the handle it
    /// was made from closed, and it has the last record; and on an error
    /// that can not clear (the stream was deleted, a message deleted from
    /// the middle: see [`last_error`](Replica::last_error)).
    pub fn is_following(&self) -> bool {
        self.inner.shared.following.load(Ordering::Acquire)
    }

    /// The last error the replica met while following: `Unavailable` while
    /// the servers are unreachable (it keeps trying, pausing longer each
    /// time; cleared by its next successful write), or the error that
    /// stopped it (`StreamNotFound`, [`Error::Deleted`], a server refusal).
    pub fn last_error(&self) -> Option<Error> {
        self.inner
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops following and closes the local log: local streams drain what
    /// was replicated and end. Idempotent.
    pub fn stop(&self) {
        self.inner.task.abort();
        self.inner.shared.stop();
    }
}

/// Follows a [`Replica`] in offset order from a start offset: a blocking
/// [`Iterator`] and a [`futures_core::Stream`]. It reads the local log with
/// memlog's streams, so it yields what memlog's streams yield:
/// - `Ok(record)` for each record, in order, no gaps, no duplicates;
/// - `Err(OutOfRange)` once if its next offset is gone: purged locally
///   (it fell behind the local retention), or never replicated (the replica
///   fell behind the server's and started a new generation past it); then
///   the end;
/// - `Err(Cancelled)` once after [`Canceller::cancel`], then the end;
/// - when the replica stops (or the stream was sealed), the records
///   replicated before, then the end.
pub struct ReplicaStream {
    shared: Arc<ReplicaShared>,
    gen: u64,
    inner: AsyncStream<Bytes>,
    pos: Offset,
    cancel: Canceller,
    end: Option<memlog::Error>,
    /// This thread's waker, for the blocking calls.
    waker: Option<(ThreadId, Waker)>,
}

impl fmt::Debug for ReplicaStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaStream")
            .field("next_offset", &self.pos)
            .field("generation", &self.gen)
            .field("ended", &self.end)
            .finish()
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

impl ReplicaStream {
    fn new(shared: Arc<ReplicaShared>, log: Log<Bytes>, gen: u64, start: Offset) -> ReplicaStream {
        let inner = log.stream_async(start);
        let cancel = Canceller::default();
        cancel.set_local(inner.canceller());
        ReplicaStream {
            shared,
            gen,
            inner,
            pos: start,
            cancel,
            end: None,
            waker: None,
        }
    }

    /// The offset of the next record this stream will yield.
    pub fn next_offset(&self) -> Offset {
        self.pos
    }

    /// A handle that cancels this stream from any thread or task.
    pub fn canceller(&self) -> Canceller {
        self.cancel.clone()
    }

    /// Whether the stream has ended (and the error that ended it; `Closed`
    /// when the replica stopped).
    pub fn ended(&self) -> Option<&memlog::Error> {
        self.end.as_ref()
    }

    fn finish(&mut self, e: memlog::Error) -> memlog::Error {
        self.end = Some(e.clone());
        e
    }

    fn poll_item(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Record<Bytes>, memlog::Error>>> {
        loop {
            if self.end.is_some() {
                return Poll::Ready(None);
            }
            if self.cancel.is_cancelled() {
                return Poll::Ready(Some(Err(self.finish(memlog::Error::Cancelled))));
            }
            match futures_core::Stream::poll_next(Pin::new(&mut self.inner), cx) {
                Poll::Ready(Some(Ok(r))) => {
                    self.pos = r.offset + 1;
                    return Poll::Ready(Some(Ok(r)));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(self.finish(e)))),
                Poll::Ready(None) => {
                    // This generation is closed: the replica stopped, or a
                    // new generation began.
                    let (log, gen) = self.shared.current();
                    if gen == self.gen {
                        self.finish(memlog::Error::Closed);
                        return Poll::Ready(None);
                    }
                    if log.start_offset() > self.pos {
                        return Poll::Ready(Some(Err(self.finish(memlog::Error::OutOfRange))));
                    }
                    self.inner = log.stream_async(self.pos);
                    self.gen = gen;
                    self.cancel.set_local(self.inner.canceller());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Polls on this thread until ready or `deadline`; `None` on timeout.
    fn block(
        &mut self,
        deadline: Option<Instant>,
    ) -> Option<Option<Result<Record<Bytes>, memlog::Error>>> {
        let me = thread::current().id();
        let waker = match &self.waker {
            Some((id, w)) if *id == me => w.clone(),
            _ => {
                let w = Waker::from(Arc::new(Unpark(thread::current())));
                self.waker = Some((me, w.clone()));
                w
            }
        };
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(item) = self.poll_item(&mut cx) {
                return Some(item);
            }
            match deadline {
                None => thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    thread::park_timeout(d - now);
                }
            }
        }
    }

    /// The next record, waiting for it as long as it takes (blocking the
    /// thread), as `memlog::Stream::recv`: the endings are errors where the
    /// iterator ends with `None`.
    ///
    /// # Errors
    /// `Closed` once the replica stopped (or the stream was sealed) and the
    /// stream is drained; `OutOfRange` or `Cancelled` as the items. After
    /// the stream ended, every call returns the error that ended it.
    pub fn recv(&mut self) -> Result<Record<Bytes>, memlog::Error> {
        match self.block(None) {
            Some(Some(r)) => r,
            _ => Err(self.end.clone().unwrap_or(memlog::Error::Closed)),
        }
    }

    /// The next record if it is already replicated, without waiting.
    ///
    /// # Errors
    /// `FutureOffset` if not yet (the stream stays usable); `Closed` once
    /// the replica stopped and the stream is drained; otherwise as the items.
    pub fn try_recv(&mut self) -> Result<Record<Bytes>, memlog::Error> {
        match self.poll_item(&mut Context::from_waker(noop_waker_ref())) {
            Poll::Ready(Some(r)) => r,
            Poll::Ready(None) => Err(self.end.clone().unwrap_or(memlog::Error::Closed)),
            Poll::Pending => Err(memlog::Error::FutureOffset),
        }
    }

    /// The next record, waiting at most `d` for it.
    ///
    /// # Errors
    /// `Timeout` if none came in time (the stream stays usable); otherwise as
    /// [`try_recv`](ReplicaStream::try_recv).
    pub fn recv_timeout(&mut self, d: Duration) -> Result<Record<Bytes>, memlog::Error> {
        match self.block(Instant::now().checked_add(d)) {
            None => Err(memlog::Error::Timeout),
            Some(Some(r)) => r,
            Some(None) => Err(self.end.clone().unwrap_or(memlog::Error::Closed)),
        }
    }
}

impl Iterator for ReplicaStream {
    type Item = Result<Record<Bytes>, memlog::Error>;

    /// Waits for the next record (see the type's docs).
    fn next(&mut self) -> Option<Self::Item> {
        self.block(None).flatten()
    }
}

impl futures_core::Stream for ReplicaStream {
    type Item = Result<Record<Bytes>, memlog::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}
