//! The blocking API: [`JetStreamLog`] and [`Stream`] for synchronous code,
//! over a small runtime of their own (as `reqwest::blocking` does), so that
//! a service can swap `memlog::Log` for a JetStream log with little change.
//!
//! Do not call these from async code (they block the thread; calling them
//! inside a tokio runtime panics): use [`crate::JetStreamLog`] there.

use crate::replica::ReplicaBuilder;
use crate::runtime::Runtime;
use crate::{Builder, Canceller, Error, RecordStream, WriteStats};
use bytes::Bytes;
use memlog::{Offset, Record, StartAt};
use std::fmt;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

impl Builder {
    /// [`create`](Builder::create) for code without an async runtime: the log
    /// runs on its own small runtime, as `reqwest::blocking` does.
    ///
    /// # Errors
    /// As [`create`](Builder::create).
    pub fn create_blocking(self) -> Result<JetStreamLog, Error> {
        JetStreamLog::build(self, true)
    }

    /// [`open`](Builder::open) for code without an async runtime.
    ///
    /// # Errors
    /// As [`open`](Builder::open).
    pub fn open_blocking(self) -> Result<JetStreamLog, Error> {
        JetStreamLog::build(self, false)
    }
}

/// [`crate::JetStreamLog`] with blocking calls. Cloning gives another handle
/// on the same connection and runtime. Make one with
/// [`Builder::create_blocking`] or [`Builder::open_blocking`].
///
/// ```
/// # let server = memlog_jetstream::testing::Server::start()?;
/// # let url = server.url();
/// use memlog_jetstream::JetStreamLog;
///
/// let log = JetStreamLog::builder(&url, "events").create_blocking()?;
/// let mut stream = log.stream(0);
/// let writer = log.clone();
/// std::thread::spawn(move || {
///     writer.write_batch(["a", "b"]).unwrap();
///     writer.close().unwrap(); // this handle (and its clones) only
/// });
/// let got: Vec<_> = stream.map(|r| r.unwrap().data).collect();
/// assert_eq!(got, ["a", "b"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct JetStreamLog {
    log: crate::JetStreamLog,
    rt: Arc<Runtime>,
}

impl fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.log.fmt(f)
    }
}

impl JetStreamLog {
    fn build(builder: Builder, create: bool) -> Result<JetStreamLog, Error> {
        let rt = Arc::new(Runtime::new()?);
        let log = rt.block_on(async {
            if create {
                builder.create().await
            } else {
                builder.open().await
            }
        })?;
        Ok(JetStreamLog { log, rt })
    }

    /// The same [`Builder`] as [`crate::JetStreamLog::builder`]; end it with
    /// [`create_blocking`](Builder::create_blocking) or
    /// [`open_blocking`](Builder::open_blocking).
    pub fn builder(servers: &str, stream: &str) -> Builder {
        Builder::new(servers, stream)
    }

    /// The async handle on the same connection, for code that has both.
    pub fn as_async(&self) -> &crate::JetStreamLog {
        &self.log
    }

    /// See [`crate::JetStreamLog::write`].
    ///
    /// # Errors
    /// As there.
    pub fn write(&self, data: impl Into<Bytes>) -> Result<Offset, Error> {
        self.rt.block_on(self.log.write(data))
    }

    /// See [`crate::JetStreamLog::write_with_id`].
    ///
    /// # Errors
    /// As there.
    pub fn write_with_id(&self, id: &str, data: impl Into<Bytes>) -> Result<Offset, Error> {
        self.rt.block_on(self.log.write_with_id(id, data))
    }

    /// See [`crate::JetStreamLog::write_batch`].
    ///
    /// # Errors
    /// As there.
    pub fn write_batch<I, B>(&self, batch: I) -> Result<Vec<Offset>, Error>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.rt.block_on(self.log.write_batch(batch))
    }

    /// See [`crate::JetStreamLog::write_batch_with_id`].
    ///
    /// # Errors
    /// As there.
    pub fn write_batch_with_id<I, B>(&self, batch_id: &str, batch: I) -> Result<Vec<Offset>, Error>
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.rt
            .block_on(self.log.write_batch_with_id(batch_id, batch))
    }

    /// See [`crate::JetStreamLog::read`].
    ///
    /// # Errors
    /// As there.
    pub fn read(&self, offset: Offset) -> Result<Record<Bytes>, Error> {
        self.rt.block_on(self.log.read(offset))
    }

    /// See [`crate::JetStreamLog::read_batch`].
    ///
    /// # Errors
    /// As there.
    pub fn read_batch(
        &self,
        start: Offset,
        out: &mut Vec<Record<Bytes>>,
        max: usize,
    ) -> Result<usize, Error> {
        self.rt.block_on(self.log.read_batch(start, out, max))
    }

    /// See [`crate::JetStreamLog::range`].
    ///
    /// # Errors
    /// As there.
    pub fn range(&self) -> Result<Option<(Offset, Offset)>, Error> {
        self.rt.block_on(self.log.range())
    }

    /// See [`crate::JetStreamLog::next_offset`].
    ///
    /// # Errors
    /// As there.
    pub fn next_offset(&self) -> Result<Offset, Error> {
        self.rt.block_on(self.log.next_offset())
    }

    /// See [`crate::JetStreamLog::offset_at_time`].
    ///
    /// # Errors
    /// As there.
    pub fn offset_at_time(&self, t: SystemTime) -> Result<Offset, Error> {
        self.rt.block_on(self.log.offset_at_time(t))
    }

    /// A blocking stream from where `at` says; see
    /// [`crate::JetStreamLog::stream_from`].
    ///
    /// # Errors
    /// As there.
    pub fn stream_from(&self, at: StartAt) -> Result<Stream, Error> {
        let inner = self.rt.block_on(self.log.stream_from(at))?;
        Ok(Stream {
            inner,
            rt: self.rt.clone(),
        })
    }

    /// A blocking stream of the records from `start` on; see [`RecordStream`].
    pub fn stream(&self, start: Offset) -> Stream {
        Stream {
            inner: self.log.stream(start),
            rt: self.rt.clone(),
        }
    }

    /// See [`crate::JetStreamLog::close`].
    ///
    /// # Errors
    /// As there.
    pub fn close(&self) -> Result<(), Error> {
        self.rt.block_on(self.log.close())
    }

    /// See [`crate::JetStreamLog::seal`].
    ///
    /// # Errors
    /// As there.
    pub fn seal(&self) -> Result<(), Error> {
        self.rt.block_on(self.log.seal())
    }

    /// See [`crate::JetStreamLog::is_closed`].
    ///
    /// # Errors
    /// As there.
    pub fn is_closed(&self) -> Result<bool, Error> {
        self.rt.block_on(self.log.is_closed())
    }

    /// See [`crate::JetStreamLog::is_sealed`].
    ///
    /// # Errors
    /// As there.
    pub fn is_sealed(&self) -> Result<bool, Error> {
        self.rt.block_on(self.log.is_sealed())
    }

    /// See [`crate::JetStreamLog::stream_leader`].
    ///
    /// # Errors
    /// As there.
    pub fn stream_leader(&self) -> Result<Option<String>, Error> {
        self.rt.block_on(self.log.stream_leader())
    }

    /// See [`crate::JetStreamLog::max_record_bytes`].
    pub fn max_record_bytes(&self) -> usize {
        self.log.max_record_bytes()
    }

    /// See [`crate::JetStreamLog::start_offset`].
    pub fn start_offset(&self) -> Offset {
        self.log.start_offset()
    }

    /// See [`crate::JetStreamLog::max_messages`].
    pub fn max_messages(&self) -> Option<u64> {
        self.log.max_messages()
    }

    /// See [`crate::JetStreamLog::write_stats`].
    pub fn write_stats(&self) -> WriteStats {
        self.log.write_stats()
    }

    /// A replica of this log in a local `memlog::Log`, following on this
    /// handle's runtime (see [`Replica`](crate::Replica)); start it with
    /// [`ReplicaBuilder::start_blocking`].
    pub fn replica(&self) -> ReplicaBuilder {
        ReplicaBuilder::new(self.log.clone(), Some(self.rt.clone()))
    }
}

/// [`RecordStream`] as a blocking [`Iterator`]: `next()` waits for the next
/// record and yields what the async stream yields (see there).
pub struct Stream {
    inner: RecordStream,
    rt: Arc<Runtime>,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Stream {
    /// The offset of the next record this stream will yield.
    pub fn next_offset(&self) -> Offset {
        self.inner.next_offset()
    }

    /// A handle that cancels this stream from any thread.
    pub fn canceller(&self) -> Canceller {
        self.inner.canceller()
    }

    /// Whether the stream has ended (and the error that ended it).
    pub fn ended(&self) -> Option<&Error> {
        self.inner.ended()
    }

    /// The next record, waiting for it as long as it takes (see
    /// [`RecordStream::recv`]).
    ///
    /// # Errors
    /// As there: `Closed` once a sealed stream (or a closed handle's) is
    /// drained, `Unavailable` while the servers can not be reached (the
    /// stream goes on), and the error that ended it.
    pub fn recv(&mut self) -> Result<Record<Bytes>, Error> {
        self.rt.block_on(self.inner.recv())
    }

    /// See [`RecordStream::try_recv`].
    ///
    /// # Errors
    /// As there.
    pub fn try_recv(&mut self) -> Result<Record<Bytes>, Error> {
        self.rt.block_on(self.inner.try_recv())
    }

    /// See [`RecordStream::recv_timeout`].
    ///
    /// # Errors
    /// As there.
    pub fn recv_timeout(&mut self, d: Duration) -> Result<Record<Bytes>, Error> {
        self.rt.block_on(self.inner.recv_timeout(d))
    }
}

impl Iterator for Stream {
    type Item = Result<Record<Bytes>, Error>;

    /// Waits for the next record (see [`RecordStream`]).
    fn next(&mut self) -> Option<Self::Item> {
        let inner = &mut self.inner;
        self.rt.block_on(poll_fn(|cx| inner.poll_item(cx)))
    }
}
