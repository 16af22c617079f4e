//! [`AsyncStream`]: a [`Stream`] for async code (feature `async`).
//!
//! It waits on the same [`Waiters`](crate::wait) as a parked thread, with the
//! task's `Waker` in the place of the thread: no timer, no helper thread, and
//! writers still pay one relaxed load and no lock while nobody waits.
//!
//! # Waiting without losing a wake-up
//! `poll_next` runs the stream's one driver (driver.rs) with the task's
//! context as the way to wait: if the next offset is not published, it puts
//! the task's waker into the waiters (replacing its own earlier entry if a
//! wake has not taken it yet, so a task polled many times holds one entry),
//! re-checks with the handshake of the log's mode (wait.rs), and returns
//! `Pending` only if the offset is still not ready. A writer that publishes
//! it after that sees the entry and wakes the task. The entry is left when a
//! poll returns a record or an error, and when the stream is dropped.

use crate::driver::How;
use crate::{Canceller, Error, Lag, Log, Offset, Record, RecordRef, StartAt, Stream};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Follows a log in offset order, as [`Stream`], but as a
/// [`futures_core::Stream`] (feature `async`): it never blocks, and a pending
/// poll is woken by the write that publishes the next offset. Create one with
/// [`Log::stream_async`](crate::Log::stream_async),
/// [`Log::stream_async_from`](crate::Log::stream_async_from) or
/// [`Stream::into_async`].
///
/// It yields the same items as [`Stream`]'s iterator:
/// - `Ok(record)` for each record, in order, with no gaps;
/// - `Err(Error::OutOfRange)` once if it fell behind retention, then `None`;
///   or, with [`on_lag(Lag::Skip)`](AsyncStream::on_lag),
///   `Err(Error::Lagged { skipped })` and then the records from the earliest
///   retained offset on;
/// - `Err(Error::Cancelled)` once after [`Canceller::cancel`], then `None`;
/// - after [`Log::close`](crate::Log::close), the records written before the
///   close, then `None`.
///
/// Once it returned `None` it returns `None` for ever, and
/// [`is_terminated`](futures_core::FusedStream::is_terminated) says so.
/// As [`Stream`], it reads up to 32 records ahead, so **up to 31 records
/// fetched before a purge may still be yielded after it** (see
/// [`Stream`'s read-ahead](Stream#read-ahead)).
///
/// # Cancel safety
/// `next().await` (`StreamExt::next`, or any future that polls
/// [`poll_next`](futures_core::Stream::poll_next)) is cancel safe: if the
/// future is dropped before it completes, in a `tokio::select!` branch that
/// lost or under a `tokio::time::timeout`, no record is lost, and the next
/// call yields the record that call would have. A pending poll holds no
/// record; it only leaves the task's waker with the log, which the next poll
/// replaces and `Drop` removes. [`try_recv`](AsyncStream::try_recv) never
/// waits, so there is nothing to cancel. For a deadline, wrap `next()` in
/// `tokio::time::timeout` (the async counterpart of
/// [`Stream::recv_timeout`]).
///
/// Dropping it (for example when the task that owns it is aborted, or an HTTP
/// response body built on it is dropped) removes its waker from the log.
///
/// ```
/// use futures_util::StreamExt;
///
/// let log = memlog::Log::new();
/// let stream = log.stream_async(0);
/// let writer = log.clone();
/// std::thread::spawn(move || {
///     writer.write_batch(["a", "b"]).unwrap();
///     writer.close();
/// });
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let got: Vec<_> = rt.block_on(stream.map(|r| r.unwrap().data).collect());
/// assert_eq!(got, ["a", "b"]);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
#[must_use = "a stream does nothing unless it is polled"]
pub struct AsyncStream<T> {
    inner: Stream<T>,
    /// Whether `poll_next` returned `Ready(None)` (`FusedStream`).
    terminated: bool,
}

impl<T> fmt::Debug for AsyncStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStream")
            .field("stream", &self.inner)
            .field("registered", &self.inner.r.registered.is_some())
            .field("terminated", &self.terminated)
            .finish()
    }
}

// Nothing in an `AsyncStream` is structurally pinned: `poll_next` only ever
// takes `&mut Self`, so moving it between polls is fine, whatever `T` is.
impl<T> Unpin for AsyncStream<T> {}

impl<T: Clone + Send + Sync + 'static> From<Stream<T>> for AsyncStream<T> {
    fn from(inner: Stream<T>) -> Self {
        AsyncStream {
            inner,
            terminated: false,
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Stream<T> {
    /// This stream, from its current position, as a [`futures_core::Stream`]
    /// (feature `async`): for a reader that starts in blocking code and
    /// continues in async code.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write(1u8)?;
    /// let stream = log.stream(0).into_async();
    /// assert_eq!(stream.next_offset(), 0);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn into_async(self) -> AsyncStream<T> {
        AsyncStream::from(self)
    }
}

impl<T: Clone + Send + Sync + 'static> AsyncStream<T> {
    /// What the stream does when its next offset was purged before it read
    /// it; as [`Stream::on_lag`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::{Error, Lag, Log};
    ///
    /// let log = Log::builder().segment_size(2).history_segments(1).build()?;
    /// let mut stream = log.stream_async(0).on_lag(Lag::Skip);
    /// log.write_batch(0..4u32)?;
    /// log.write(4)?; // purges offsets 0 and 1
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(async {
    ///     assert_eq!(stream.next().await, Some(Err(Error::Lagged { skipped: 2 })));
    ///     assert_eq!(stream.next().await.unwrap().unwrap().data, 2);
    /// });
    /// # Ok::<(), Error>(())
    /// ```
    #[must_use = "on_lag returns the stream with the policy set"]
    pub fn on_lag(mut self, lag: Lag) -> Self {
        self.inner.set_on_lag(lag);
        self
    }

    /// The offset of the next record this stream will yield; as
    /// [`Stream::next_offset`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    ///
    /// let log = memlog::Log::new();
    /// log.write_batch(["a", "b"])?;
    /// let mut stream = log.stream_async(0);
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// rt.block_on(stream.next());
    /// assert_eq!(stream.next_offset(), 1);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[must_use]
    pub fn next_offset(&self) -> Offset {
        self.inner.next_offset()
    }

    /// A handle that cancels this stream from any thread or task, waking it
    /// if it is pending.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::<u8>::new();
    /// let mut stream = log.stream_async(0);
    /// let cancel = stream.canceller();
    /// std::thread::spawn(move || cancel.cancel());
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// // Pending until the other thread cancels it.
    /// assert_eq!(rt.block_on(stream.next()), Some(Err(Error::Cancelled)));
    /// assert_eq!(rt.block_on(stream.next()), None);
    /// ```
    #[must_use = "a canceller does nothing unless `cancel` is called"]
    pub fn canceller(&self) -> Canceller {
        self.inner.canceller()
    }

    /// Whether the stream has ended, and the error that ended it; as
    /// [`Stream::ended`].
    ///
    /// ```
    /// let log = memlog::Log::<u8>::new();
    /// let mut stream = log.stream_async(0);
    /// stream.canceller().cancel();
    /// assert_eq!(stream.try_recv(), Err(memlog::Error::Cancelled));
    /// assert_eq!(stream.ended(), Some(&memlog::Error::Cancelled));
    /// ```
    #[must_use]
    pub fn ended(&self) -> Option<&Error> {
        self.inner.ended()
    }

    /// The next record if it is already written, without waiting; as
    /// [`Stream::try_recv`]. (Named apart from `TryStreamExt::try_next`,
    /// which awaits the next item and works on this stream too.)
    ///
    /// # Errors
    /// As [`Stream::try_recv`].
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream_async(0);
    /// assert_eq!(stream.try_recv(), Err(Error::FutureOffset));
    /// log.write("a")?;
    /// assert_eq!(stream.try_recv()?.data, "a");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<Record<T>, Error> {
        self.inner.try_recv()
    }
}

/// Cancel safe: see the type's docs.
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<T: Clone + Send + Sync + 'static> futures_core::Stream for AsyncStream<T> {
    type Item = Result<Record<T>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let p = this.poll_item(cx);
        if let Poll::Ready(None) = p {
            this.terminated = true;
        }
        p
    }
}

/// An ended stream stays ended: after its first `None`, `poll_next` returns
/// `None` for ever and `is_terminated` is `true`.
///
/// ```
/// use futures_core::FusedStream;
/// use futures_util::StreamExt;
///
/// let log = memlog::Log::<u8>::new();
/// log.close();
/// let mut stream = log.stream_async(0);
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert!(!stream.is_terminated());
/// assert_eq!(rt.block_on(stream.next()), None);
/// assert!(stream.is_terminated());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<T: Clone + Send + Sync + 'static> futures_core::FusedStream for AsyncStream<T> {
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

impl<T: Clone + Send + Sync + 'static> AsyncStream<T> {
    /// `poll_next` without the bookkeeping of `terminated`.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Record<T>, Error>>> {
        if self.inner.ended().is_some() {
            return Poll::Ready(None);
        }
        self.inner.poll_step(How::Task(cx)).map(|r| match r {
            Err(Error::Closed) => None,
            r => Some(r),
        })
    }

    /// Polls for a zero-copy visit: as [`Stream::visit`], but instead of
    /// blocking the thread it returns `Pending` and the write that publishes
    /// the next record wakes the task. For a custom future or a manual
    /// `poll`; in async code, [`visit`](AsyncStream::visit) awaits it.
    ///
    /// `Ready(Ok(n))` after visiting `n >= 1` records (or `max == 0`:
    /// `Ready(Ok(0))` at once); `Ready(Err(e))` as [`Stream::visit`]
    /// (`Closed` when closed and drained). A `Pending` poll visited nothing.
    ///
    /// ```
    /// use memlog::Error;
    /// use std::task::{Context, Poll, Waker};
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream_async(0);
    /// let mut cx = Context::from_waker(Waker::noop());
    /// let mut got = Vec::new();
    /// assert!(stream.poll_visit(&mut cx, 8, |r| got.push(*r.data)).is_pending());
    /// log.write_batch([1, 2])?;
    /// assert_eq!(stream.poll_visit(&mut cx, 8, |r| got.push(*r.data)), Poll::Ready(Ok(2)));
    /// assert_eq!(got, [1, 2]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn poll_visit(
        &mut self,
        cx: &mut Context<'_>,
        max: usize,
        mut f: impl FnMut(RecordRef<'_, T>),
    ) -> Poll<Result<usize, Error>> {
        self.inner.poll_visit_with(How::Task(cx), max, &mut f)
    }

    /// Waits (suspending the task) until a record is ready, then calls `f`
    /// with every ready record, up to `max`, by reference and in order; as
    /// [`Stream::visit`], whose docs say which records, what a panicking
    /// closure leaves, and what the closure's pin costs.
    ///
    /// Cancel safe: a future dropped before it completes visited nothing.
    ///
    /// # Errors
    /// As [`Stream::visit`].
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream_async(0);
    /// let writer = log.clone();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let sum = rt.block_on(async move {
    ///     std::thread::spawn(move || {
    ///         writer.write_batch(1..=10u64).unwrap();
    ///         writer.close();
    ///     });
    ///     let mut sum = 0;
    ///     loop {
    ///         match stream.visit(4, |r| sum += *r.data).await {
    ///             Ok(_) => {}
    ///             Err(Error::Closed) => return Ok(sum), // closed and drained
    ///             Err(e) => return Err(e), // fell behind, or cancelled
    ///         }
    ///     }
    /// })?;
    /// assert_eq!(sum, 55);
    /// # Ok::<(), Error>(())
    /// ```
    pub async fn visit(
        &mut self,
        max: usize,
        mut f: impl FnMut(RecordRef<'_, T>),
    ) -> Result<usize, Error> {
        std::future::poll_fn(|cx| self.poll_visit(cx, max, &mut f)).await
    }

    /// As [`Stream::try_visit`]: visits the records already written, up to
    /// `max`, without waiting.
    ///
    /// # Errors
    /// As [`Stream::try_visit`].
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write_batch(["a", "b"])?;
    /// let mut stream = log.stream_async(0);
    /// let mut got = String::new();
    /// assert_eq!(stream.try_visit(10, |r| got.push_str(r.data))?, 2);
    /// assert_eq!(got, "ab");
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn try_visit(
        &mut self,
        max: usize,
        f: impl FnMut(RecordRef<'_, T>),
    ) -> Result<usize, Error> {
        self.inner.try_visit(max, f)
    }
}

/// Following a log with an async stream (feature `async`).
impl<T: Clone + Send + Sync + 'static> Log<T> {
    /// An async stream of the records from `start` on, in order (feature
    /// `async`): a [`futures_core::Stream`] woken by the writes, with the
    /// semantics of [`stream`](Log::stream). See [`AsyncStream`].
    ///
    /// `.next().await` comes from an extension trait that memlog does not
    /// re-export: add `futures-util` (`StreamExt`, as here) or a crate like
    /// it (`tokio-stream`, `futures`) to your dependencies.
    /// [`AsyncStream::visit`] needs none.
    ///
    /// ```
    /// use futures_util::StreamExt; // futures-util = "0.3"
    ///
    /// let log = memlog::Log::new();
    /// let mut stream = log.stream_async(0);
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// rt.block_on(async {
    ///     let writer = log.clone();
    ///     tokio::spawn(async move { writer.write("hello").unwrap() });
    ///     let first = stream.next().await.unwrap().unwrap();
    ///     assert_eq!((first.offset, first.data), (0, "hello"));
    /// });
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    #[must_use = "a stream does nothing unless it is polled"]
    pub fn stream_async(&self, start: Offset) -> AsyncStream<T> {
        self.stream(start).into_async()
    }

    /// An async stream from the earliest retained offset, the next offset to
    /// be written, or a given offset (feature `async`); as
    /// [`stream_from`](Log::stream_from), see [`StartAt`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::{Log, StartAt};
    ///
    /// let log = Log::new();
    /// log.write("old")?;
    /// let mut live = log.stream_async_from(StartAt::Latest);
    /// log.write("new")?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let first = rt.block_on(live.next()).unwrap()?;
    /// assert_eq!((first.offset, first.data), (1, "new"));
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    #[must_use = "a stream does nothing unless it is polled"]
    pub fn stream_async_from(&self, at: StartAt) -> AsyncStream<T> {
        self.stream_from(at).into_async()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Error, Log};
    use futures_util::StreamExt;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::Duration;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<S: futures_core::Stream + Unpin>(s: &mut S, w: &Waker) -> Poll<Option<S::Item>> {
        Pin::new(s).poll_next(&mut Context::from_waker(w))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn repeated_polls_keep_one_entry_and_a_write_wakes_it() {
        let log: Log<u32> = Log::new();
        let mut s = log.stream_async(0);
        let count = Arc::new(Count::default());
        let w = Waker::from(count.clone());
        for _ in 0..10 {
            assert!(poll(&mut s, &w).is_pending());
        }
        assert_eq!(log.waiter_count(), 1);
        log.write(5).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(log.waiter_count(), 0, "the wake took the entry");
        match poll(&mut s, &w) {
            Poll::Ready(Some(Ok(r))) => assert_eq!((r.offset, r.data), (0, 5)),
            other => panic!("{other:?}"),
        }
        // Writers pay nothing while the stream is not pending.
        log.write(6).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_latest_waker_is_the_one_woken() {
        let log: Log<u32> = Log::new();
        let mut s = log.stream_async(0);
        let (a, b) = (Arc::new(Count::default()), Arc::new(Count::default()));
        assert!(poll(&mut s, &Waker::from(a.clone())).is_pending());
        assert!(poll(&mut s, &Waker::from(b.clone())).is_pending());
        log.write(1).unwrap();
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn dropped_while_registered_leaves_nothing() {
        let log: Log<u32> = Log::new();
        let w = Waker::from(Arc::new(Count::default()));
        let mut streams: Vec<_> = (0..5).map(|_| log.stream_async(0)).collect();
        for s in &mut streams {
            assert!(poll(s, &w).is_pending());
        }
        assert_eq!(log.waiter_count(), 5);
        drop(streams);
        assert_eq!(log.waiter_count(), 0);

        // The same through a task that is aborted while it waits.
        let rt = rt();
        let mut s = log.stream_async(0);
        let task = rt.spawn(async move { s.next().await.map(|r| r.map(|r| r.data)) });
        while log.waiter_count() == 0 {
            std::thread::yield_now();
        }
        task.abort();
        let _ = rt.block_on(task);
        assert_eq!(log.waiter_count(), 0);
    }

    #[test]
    fn cancel_wakes_yields_cancelled_once_then_none() {
        let log: Log<u32> = Log::new();
        let s = log.stream_async(0);
        let cancel = s.canceller();
        let rt = rt();
        let task = rt.spawn(async move { s.collect::<Vec<_>>().await });
        while log.waiter_count() == 0 {
            std::thread::yield_now();
        }
        cancel.cancel();
        let got = rt.block_on(task).unwrap();
        assert_eq!(got, [Err(Error::Cancelled)]);
        assert_eq!(log.waiter_count(), 0);
    }

    #[test]
    fn close_wakes_a_pending_stream_which_drains_then_ends() {
        let log: Log<u32> = Log::new();
        let s = log.stream_async(0);
        let rt = rt();
        let task = rt.spawn(async move { s.map(|r| r.unwrap().data).collect::<Vec<_>>().await });
        while log.waiter_count() == 0 {
            std::thread::yield_now();
        }
        log.write_batch([1, 2, 3]).unwrap();
        log.close();
        assert_eq!(rt.block_on(task).unwrap(), [1, 2, 3]);
        assert_eq!(log.waiter_count(), 0);
        // After the end: None for ever, and `ended` says why.
        let mut s = log.stream_async(3);
        let w = Waker::from(Arc::new(Count::default()));
        assert!(matches!(poll(&mut s, &w), Poll::Ready(None)));
        assert!(matches!(poll(&mut s, &w), Poll::Ready(None)));
        assert_eq!(s.ended(), Some(&Error::Closed));
    }

    #[test]
    fn out_of_range_once_then_none() {
        let log: Log<u32> = Log::builder()
            .segment_size(2)
            .history_segments(1)
            .build()
            .unwrap();
        let mut s = log.stream_async(0);
        log.write_batch([0, 1, 2, 3]).unwrap();
        log.write(4).unwrap(); // purges 0 and 1
        let w = Waker::from(Arc::new(Count::default()));
        assert!(matches!(
            poll(&mut s, &w),
            Poll::Ready(Some(Err(Error::OutOfRange)))
        ));
        assert!(matches!(poll(&mut s, &w), Poll::Ready(None)));
    }

    #[test]
    fn into_async_continues_from_the_blocking_position() {
        let log: Log<u32> = Log::new();
        log.write_batch(0..4).unwrap();
        let mut s = log.stream(0);
        s.next().unwrap().unwrap();
        let s = s.into_async();
        log.close();
        let got = rt().block_on(s.map(|r| r.unwrap().offset).collect::<Vec<_>>());
        assert_eq!(got, [1, 2, 3]);
    }

    /// No lost wake-up: async readers on a multi-thread runtime follow
    /// writer threads that publish one record at a time, so that the readers
    /// keep catching up and registering. A lost wake-up would hang a reader,
    /// which the timeout turns into a failure.
    #[test]
    fn no_lost_wakeup_between_writer_threads_and_async_tasks() {
        const WRITERS: u64 = 3;
        const PER: u64 = 20_000;
        let log: Log<u64> = Log::builder()
            .segment_size(64)
            .history_segments(4096)
            .build()
            .unwrap();
        let rt = rt();
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let s = log.stream_async(0);
                rt.spawn(async move {
                    let mut n = 0u64;
                    let mut s = s;
                    while let Some(r) = s.next().await {
                        assert_eq!(r.unwrap().offset, n);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..PER {
                        log.write(w * PER + i).unwrap();
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        log.close();
        rt.block_on(async {
            for r in readers {
                let n = tokio::time::timeout(Duration::from_secs(60), r)
                    .await
                    .expect("a reader hung: lost wake-up")
                    .unwrap();
                assert_eq!(n, WRITERS * PER);
            }
        });
        assert_eq!(log.waiter_count(), 0);
    }

    /// Cancel safety: a `next()` future dropped while pending loses no record
    /// and leaves its waker behind only until the next poll or drop.
    #[test]
    fn next_dropped_while_pending_loses_nothing() {
        use std::future::Future;
        let log: Log<u32> = Log::new();
        let mut s = log.stream_async(0);
        let w = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&w);
        for i in 0..100u32 {
            {
                let mut next = s.next();
                assert!(Pin::new(&mut next).poll(&mut cx).is_pending());
            } // dropped: cancelled
            log.write(i).unwrap();
            let mut next = s.next();
            match Pin::new(&mut next).poll(&mut cx) {
                Poll::Ready(Some(Ok(r))) => assert_eq!((r.offset, r.data), (i as u64, i)),
                other => panic!("{other:?}"),
            }
        }
        drop(s);
        assert_eq!(log.waiter_count(), 0);
    }

    /// Cancel safety under a runtime: `next()` wrapped in a timeout shorter
    /// than the writer's pauses is dropped again and again; every record
    /// still arrives, in order, once.
    #[test]
    fn next_under_short_timeouts_loses_nothing() {
        const N: u32 = 20_000;
        let log: Log<u32> = Log::builder().history_segments(64).build().unwrap();
        let rt = rt();
        let mut s = log.stream_async(0);
        let reader = rt.spawn(async move {
            let (mut got, mut dropped) = (0u32, 0u32);
            while got < N {
                match tokio::time::timeout(Duration::from_millis(1), s.next()).await {
                    Ok(Some(r)) => {
                        assert_eq!(r.unwrap().data, got);
                        got += 1;
                    }
                    Ok(None) => panic!("ended early"),
                    Err(_) => dropped += 1,
                }
            }
            dropped
        });
        for i in 0..N {
            log.write(i).unwrap();
            if i % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
        let dropped = rt.block_on(reader).unwrap();
        eprintln!("{dropped} next() futures dropped by the timeout");
        assert_eq!(log.waiter_count(), 0);
    }

    /// Ping-pong: each record is written only after the reader task asked for
    /// it and (most of the time) registered, many times over, which exercises
    /// the register / re-check window on every round.
    #[test]
    fn no_lost_wakeup_ping_pong() {
        let log: Log<u32> = Log::new();
        let rt = rt();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut s = log.stream_async(0);
        let reader = rt.spawn(async move {
            for i in 0..20_000u32 {
                tx.send(()).unwrap();
                let r = tokio::time::timeout(Duration::from_secs(20), s.next())
                    .await
                    .expect("lost wake-up");
                assert_eq!(r.unwrap().unwrap().data, i);
            }
        });
        for i in 0..20_000u32 {
            rx.recv().unwrap();
            if i % 2 == 0 {
                std::thread::yield_now();
            }
            log.write(i).unwrap();
        }
        rt.block_on(reader).unwrap();
        assert_eq!(log.waiter_count(), 0);
    }
}
