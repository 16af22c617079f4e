//! Writes that do not wait for holding streams ([`Lag::Hold`](crate::Lag::Hold)), or wait a
//! bounded time, or wait as a task: `try_write`, `write_timeout`,
//! `try_write_batch` and `write_async`, on [`Log`] and [`Writer`].
//!
//! A plain write that would purge a record a stream holds waits for it
//! (hold.rs). These decide *before* they claim an offset, so that a write
//! told `Full` or `Timeout` (or a task told to wait) leaves nothing behind.
//! One race remains: a stream that sets a hold on exactly the records this
//! write is about to purge, between the write's look and its claim; then
//! the write waits in its install for that stream to read on, as a plain
//! write does (hold.rs explains why a claimed write can not give up).

use crate::write::OnHold;
use crate::{Error, Log, Offset, Writer};
use std::ops::Range;
use std::time::{Duration, Instant};

impl<T: Clone + Send + Sync + 'static> Log<T> {
    /// Appends a record unless that would purge a record a stream holds
    /// ([`Lag::Hold`](crate::Lag::Hold)): then `Err(Error::Full)` at once, instead of waiting
    /// as [`write`](Log::write) does. For a thread that also reads a
    /// holding stream (a plain write there would wait for itself), or that
    /// must not block.
    ///
    /// # Errors
    /// [`Error::Full`], nothing written; otherwise as [`write`](Log::write).
    ///
    /// ```
    /// use memlog::{Error, Lag, Log};
    ///
    /// let log = Log::builder().segment_size(2).history_segments(0).build()?;
    /// let mut held = log.stream(0).on_lag(Lag::Hold);
    /// log.write_batch(["a", "b"])?;
    /// assert_eq!(log.try_write("c"), Err(Error::Full)); // would purge "a", "b"
    /// held.next();
    /// held.next(); // the stream has read "a" and "b"
    /// assert_eq!(log.try_write("c")?, 2);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_write(&self, data: T) -> Result<Offset, Error> {
        crate::reclaim::drain();
        let created = self.inner.cfg.clock.now();
        let rel = self
            .inner
            .write_one_admitted(created, &mut Some(data), OnHold::Refuse)?;
        Ok(self.inner.cfg.start + rel)
    }

    /// Appends a record, waiting at most `d` for holding streams
    /// ([`Lag::Hold`](crate::Lag::Hold)) to read on if it would purge what they hold.
    ///
    /// # Errors
    /// [`Error::Timeout`] if still held after `d` (nothing written);
    /// otherwise as [`write`](Log::write).
    ///
    /// ```
    /// use memlog::{Error, Lag, Log};
    /// use std::time::Duration;
    ///
    /// let log = Log::builder().segment_size(2).history_segments(0).build()?;
    /// let _held = log.stream(0).on_lag(Lag::Hold);
    /// log.write_batch([1, 2])?;
    /// assert_eq!(log.write_timeout(3, Duration::from_millis(5)), Err(Error::Timeout));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write_timeout(&self, data: T, d: Duration) -> Result<Offset, Error> {
        crate::reclaim::drain();
        let created = self.inner.cfg.clock.now();
        let deadline = Instant::now().checked_add(d);
        let rel =
            self.inner
                .write_one_admitted(created, &mut Some(data), OnHold::Wait(deadline))?;
        Ok(self.inner.cfg.start + rel)
    }

    /// Appends a batch as [`write_batch`](Log::write_batch) does, unless it
    /// would purge a record a stream holds: then `Err(Error::Full)` at once.
    ///
    /// # Errors
    /// [`Error::Full`], nothing written; otherwise as
    /// [`write_batch`](Log::write_batch).
    ///
    /// ```
    /// use memlog::{Error, Lag, Log};
    ///
    /// let log = Log::builder().segment_size(2).history_segments(1).build()?;
    /// let _held = log.stream(0).on_lag(Lag::Hold);
    /// assert_eq!(log.try_write_batch([1, 2, 3, 4])?, 0..4);
    /// assert_eq!(log.try_write_batch([5]), Err(Error::Full));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_write_batch<I: IntoIterator<Item = T>>(
        &self,
        batch: I,
    ) -> Result<Range<Offset>, Error> {
        self.inner.seq.handles_write()?;
        let items = self.pull_batch(batch, |d| d)?;
        let created = self.inner.cfg.clock.now();
        self.append_pulled(items, false, OnHold::Refuse, |data| crate::slot::Entry {
            created,
            data,
        })
    }

    /// Appends a record, waiting as a task (feature `async`) while it would
    /// purge a record a stream holds ([`Lag::Hold`](crate::Lag::Hold)): the executor's
    /// thread is never blocked, so a producer task and a holding consumer
    /// task make progress on one current-thread runtime. Cancel safe:
    /// dropped before it completes, it wrote nothing.
    ///
    /// # Errors
    /// As [`write`](Log::write).
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::{Lag, Log};
    ///
    /// let log = Log::builder().segment_size(4).history_segments(0).build()?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let got = rt.block_on(async {
    ///     let mut held = log.stream_async(0).on_lag(Lag::Hold);
    ///     let reader = tokio::spawn(async move {
    ///         let mut got = Vec::new();
    ///         while let Some(r) = held.next().await {
    ///             got.push(r.unwrap().data);
    ///         }
    ///         got
    ///     });
    ///     for i in 0..100u32 {
    ///         log.write_async(i).await.unwrap(); // 4 retained: waits for the reader
    ///     }
    ///     log.close();
    ///     reader.await.unwrap()
    /// });
    /// assert_eq!(got, (0..100).collect::<Vec<_>>());
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub async fn write_async(&self, data: T) -> Result<Offset, Error> {
        crate::reclaim::drain();
        let mut data = Some(data);
        let rel = std::future::poll_fn(|cx| {
            let created = self.inner.cfg.clock.now();
            match self
                .inner
                .write_one_admitted(created, &mut data, OnHold::Task(cx))
            {
                // Registered: a hold moving on (or close) wakes the task.
                Err(Error::Full) => std::task::Poll::Pending,
                r => std::task::Poll::Ready(r),
            }
        })
        .await?;
        Ok(self.inner.cfg.start + rel)
    }
}

impl<T: Clone + Send + Sync + 'static> Writer<T> {
    /// Appends a record unless that would purge a record a stream holds
    /// ([`Lag::Hold`](crate::Lag::Hold)); as [`Log::try_write`].
    ///
    /// # Errors
    /// As [`Log::try_write`].
    ///
    /// ```
    /// use memlog::{Error, Lag};
    ///
    /// let (mut writer, log) = memlog::Log::builder().segment_size(2).history_segments(0).build_exclusive()?;
    /// let _held = log.stream(0).on_lag(Lag::Hold);
    /// writer.write_batch([1, 2])?;
    /// assert_eq!(writer.try_write(3), Err(Error::Full));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_write(&mut self, data: T) -> Result<Offset, Error> {
        // The size first: a write refused for it announces no purge.
        self.log().inner.check_size(&data)?;
        self.admit_next(&mut OnHold::Refuse)?;
        self.write(data)
    }

    /// Appends a record, waiting at most `d` for holding streams; as
    /// [`Log::write_timeout`].
    ///
    /// # Errors
    /// As [`Log::write_timeout`].
    ///
    /// ```
    /// use memlog::{Error, Lag};
    /// use std::time::Duration;
    ///
    /// let (mut writer, log) = memlog::Log::builder().segment_size(2).history_segments(0).build_exclusive()?;
    /// let _held = log.stream(0).on_lag(Lag::Hold);
    /// writer.write_batch([1, 2])?;
    /// assert_eq!(writer.write_timeout(3, Duration::from_millis(5)), Err(Error::Timeout));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn write_timeout(&mut self, data: T, d: Duration) -> Result<Offset, Error> {
        self.log().inner.check_size(&data)?;
        let deadline = Instant::now().checked_add(d);
        self.admit_next(&mut OnHold::Wait(deadline))?;
        self.write(data)
    }

    /// Appends a batch unless it would purge a record a stream holds; as
    /// [`Log::try_write_batch`].
    ///
    /// # Errors
    /// As [`Log::try_write_batch`].
    ///
    /// ```
    /// use memlog::{Error, Lag};
    ///
    /// let (mut writer, log) = memlog::Log::builder().segment_size(2).history_segments(0).build_exclusive()?;
    /// let _held = log.stream(0).on_lag(Lag::Hold);
    /// assert_eq!(writer.try_write_batch([1, 2])?, 0..2);
    /// assert_eq!(writer.try_write_batch([3]), Err(Error::Full));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_write_batch<I: IntoIterator<Item = T>>(
        &mut self,
        batch: I,
    ) -> Result<Range<Offset>, Error> {
        let items = self.log().pull_batch(batch, |d| d)?;
        let created = self.log().inner.cfg.clock.now();
        self.log()
            .append_pulled(items, true, OnHold::Refuse, |data| crate::slot::Entry {
                created,
                data,
            })
    }

    /// Appends a record, waiting as a task while it would purge a record a
    /// stream holds; as [`Log::write_async`] (feature `async`).
    ///
    /// # Errors
    /// As [`Writer::write`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use memlog::Lag;
    ///
    /// let (mut writer, log) = memlog::Log::builder().segment_size(4).history_segments(0).build_exclusive()?;
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let got = rt.block_on(async {
    ///     let mut held = log.stream_async(0).on_lag(Lag::Hold);
    ///     let reader = tokio::spawn(async move {
    ///         let mut got = Vec::new();
    ///         while let Some(r) = held.next().await {
    ///             got.push(r.unwrap().data);
    ///         }
    ///         got
    ///     });
    ///     for i in 0..100u32 {
    ///         writer.write_async(i).await.unwrap();
    ///     }
    ///     drop(writer); // closes the log
    ///     reader.await.unwrap()
    /// });
    /// assert_eq!(got, (0..100).collect::<Vec<_>>());
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub async fn write_async(&mut self, data: T) -> Result<Offset, Error> {
        self.log().inner.check_size(&data)?;
        std::future::poll_fn(|cx| match self.admit_next(&mut OnHold::Task(cx)) {
            // Registered: a hold moving on (or close) wakes the task.
            Err(Error::Full) => std::task::Poll::Pending,
            r => std::task::Poll::Ready(r),
        })
        .await?;
        self.write(data)
    }
}
