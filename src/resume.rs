//! Where a stream starts ([`StartAt`]) and what it does when it falls behind
//! retention ([`Lag`]).
//!
//! A consumer that restarts, or that was too slow, needs a place to go on
//! from. Kafka answers with `auto.offset.reset` (earliest or latest) and
//! tokio's broadcast channel with `Lagged(n)`; memlog offers both, without
//! the caller having to catch [`Error::OutOfRange`](crate::Error::OutOfRange),
//! read [`Log::range`](crate::Log::range) (which is briefly `None` while a
//! purge is being published past) and open a new stream.
//!
//! The earliest retained offset is the log's purge point: the first offset of
//! the oldest segment that is not purged, or the start offset while nothing
//! was purged. It is never a guess: every offset below it is written (and
//! purged), and the offset itself is retained until the next purge, though it
//! may not be readable yet.

use crate::Offset;
use std::time::SystemTime;

/// Where a new stream starts: at an offset, or, as Kafka's
/// `auto.offset.reset`, at the earliest or the latest retained offset, or at
/// the first record written at or after a time. See
/// [`Log::stream_from`](crate::Log::stream_from).
///
/// The position is fixed when the stream is made; it does not follow the log
/// afterwards (a stream made at `Earliest` that waits long enough may find
/// that offset purged: combine it with [`Lag::Skip`] to go on regardless).
///
/// ```
/// use memlog::{Log, StartAt};
///
/// let log = memlog::Log::builder().segment_size(2).history_segments(1).build()?;
/// log.write_batch(0..3u32)?;
/// log.write_batch(3..5u32)?; // purges offsets 0 and 1
/// assert_eq!(log.stream_from(StartAt::Earliest).next_offset(), 2);
/// assert_eq!(log.stream_from(StartAt::Latest).next_offset(), 5);
/// assert_eq!(log.stream_from(StartAt::Offset(3)).next_offset(), 3);
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartAt {
    /// The earliest retained offset: replays everything the log still holds.
    /// On a log that never purged, the start offset, even before the first
    /// write.
    Earliest,
    /// The next offset to be written ([`Log::next_offset`](crate::Log::next_offset)):
    /// only records written after the stream was made. On a closed log, the
    /// stream ends at once.
    Latest,
    /// This offset, as [`Log::stream`](crate::Log::stream) takes it.
    Offset(Offset),
    /// The first retained record whose [`created`](crate::Record::created)
    /// is at or after this time ("everything since 10:00", as Kafka's
    /// `offsetsForTimes` and JetStream's `opt_start_time`). Found by a
    /// binary search over the retained records (about `log2(retained)`
    /// reads under one epoch pin), not a scan.
    ///
    /// It searches the offsets from the earliest retained one up to the
    /// *end*, the offset below which every record is published
    /// ([`Log::next_offset`](crate::Log::next_offset) unless a write is in
    /// flight), and starts at an offset `o` in that range such that
    /// 1. `o` is the earliest retained offset, or the record at `o - 1` was
    ///    created before the time; and
    /// 2. `o` is the end, or the record at `o` was created at or after the
    ///    time.
    ///
    /// So:
    /// - **times non-decreasing in offset order** (one writer, or several
    ///   writing under a lock, and a wall clock that is not set back
    ///   meanwhile; or a [`ManualClock`](crate::clock::ManualClock) that
    ///   only advances): exactly the first record at or after the
    ///   time; every record the stream yields is at or after it, every
    ///   retained record before it is before it.
    /// - **concurrent writers** (each reads the clock just before it claims
    ///   its offset, so a later offset may carry an earlier time; or
    ///   [`write_timed`](crate::Log::write_timed) with times of the
    ///   caller's): only 1. and 2. hold. Around `o` the stream may yield
    ///   records created before the time, and records created at or after
    ///   it may lie before `o`. Records are out of order only as far as
    ///   writers raced each other; a consumer that must see every record at
    ///   or after the time starts a margin earlier and filters on `created`.
    /// - **a time before the earliest retained record**: the earliest
    ///   retained offset, as [`Earliest`](StartAt::Earliest).
    /// - **a time after the last record**: the end: the stream waits for
    ///   new records, as [`Latest`](StartAt::Latest).
    /// - **a purge during the search** (writers overtook it): the search
    ///   starts again from the new earliest offset; if purges overtake it 8
    ///   times in a row, the earliest retained offset. It never returns an
    ///   offset it found purged, but, as with `Earliest`, the offset may be
    ///   purged before the stream reads it: combine with [`Lag::Skip`] or
    ///   [`Lag::Hold`].
    ///
    /// ```
    /// use memlog::clock::ManualClock;
    /// use memlog::{Log, StartAt};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let at = |s| UNIX_EPOCH + Duration::from_secs(s);
    /// let clock = ManualClock::new(at(100));
    /// let log = Log::builder().clock(clock.clone()).build()?;
    /// for i in 0..10u32 {
    ///     log.write(i)?; // written at 100, 101, …, 109 s
    ///     clock.advance(Duration::from_secs(1));
    /// }
    /// let mut since = log.stream_from(StartAt::Time(at(105)));
    /// assert_eq!(since.next_offset(), 5);
    /// assert_eq!(since.next().unwrap()?.created, at(105));
    /// assert_eq!(log.stream_from(StartAt::Time(at(0))).next_offset(), 0);
    /// assert_eq!(log.stream_from(StartAt::Time(at(999))).next_offset(), 10);
    /// # Ok::<(), memlog::Error>(())
    /// ```
    Time(SystemTime),
}

/// What a stream does when its next offset was purged before it read it (it
/// fell further behind than the log retains). Set it with
/// [`Stream::on_lag`](crate::Stream::on_lag).
///
/// Records a stream has already read ahead (up to 31) are yielded even if
/// they are purged meanwhile; lag concerns the offsets after them.
///
/// ```
/// use memlog::{Error, Lag, Log};
///
/// let log = Log::builder().segment_size(2).history_segments(1).build()?;
/// let mut strict = log.stream(0);
/// let mut lossy = log.stream(0).on_lag(Lag::Skip);
/// log.write_batch(0..4u32)?;
/// log.write(4)?; // purges offsets 0 and 1
///
/// // The default ends the stream.
/// assert_eq!(strict.next(), Some(Err(Error::OutOfRange)));
/// assert_eq!(strict.next(), None);
///
/// // `Skip` says how many offsets it lost, then goes on.
/// assert_eq!(lossy.next(), Some(Err(Error::Lagged { skipped: 2 })));
/// assert_eq!(lossy.next().unwrap()?.data, 2);
/// # Ok::<(), memlog::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lag {
    /// Yield [`Error::OutOfRange`](crate::Error::OutOfRange) once, then end
    /// (the default): a consumer that must see every record finds out, and
    /// decides.
    #[default]
    End,
    /// Yield [`Error::Lagged`](crate::Error::Lagged) once, saying how many
    /// offsets were skipped, and go on from the earliest retained offset, as
    /// tokio's broadcast receiver does. Every offset is then either yielded
    /// or counted in a `Lagged`, exactly once and in order. A stream made
    /// below the log's start offset skips up to it the same way.
    Skip,
    /// Never fall behind: from the moment it is set, no record at or after
    /// the stream's next offset is purged until the stream has read it
    /// (yielded it, or visited it and the visit returned; records it read
    /// ahead stay held until yielded, so a stream opened at another's
    /// [`next_offset`](crate::Stream::next_offset), with `Hold`, before
    /// that one is dropped, holds on from there: the way to resume from a
    /// checkpoint without a gap). Writers that would purge one wait instead (spinning,
    /// then parking), until the stream reads on, is dropped or cancelled,
    /// or the log closes; [`Log::try_write`](crate::Log::try_write) answers
    /// [`Error::Full`](crate::Error::Full) instead, and
    /// [`Log::write_timeout`](crate::Log::write_timeout) waits a while. A
    /// holding stream never yields `OutOfRange` or `Lagged`; set on a
    /// stream whose next offset is already purged (or being purged by a
    /// writer that opens a segment at that moment), it yields `OutOfRange`
    /// and ends, as with `End`. While a stream holds, a batch that would
    /// purge its own first records (one that crosses more than
    /// `history_segments` segment boundaries) is refused with
    /// [`Error::BatchTooLarge`](crate::Error::BatchTooLarge): the holding
    /// stream would have to read them before the batch landed.
    ///
    /// This is the disruptor's (and a bounded channel's) backpressure, for
    /// consumers that must see every record, beside streams that may fall
    /// behind. **A stream read on a thread that also writes to the log
    /// would wait for itself**: there, write with `try_write` or
    /// `write_timeout`. Holding costs nothing per record: a holding stream
    /// makes its position known when it leaves a segment, and a writer
    /// looks at the holds when it opens one.
    ///
    /// ```
    /// use memlog::{Lag, Log};
    ///
    /// // Retains 4 to 8 records; the burst is 1000.
    /// let log = Log::builder().segment_size(4).history_segments(1).build()?;
    /// let slow = log.stream(0).on_lag(Lag::Hold);
    /// let reader = std::thread::spawn(move || {
    ///     slow.map(|r| r.unwrap().data).collect::<Vec<u32>>()
    /// });
    /// for i in 0..1000 {
    ///     log.write(i)?; // waits whenever it would purge what `slow` has not read
    /// }
    /// log.close();
    /// assert_eq!(reader.join().unwrap(), (0..1000).collect::<Vec<_>>());
    /// # Ok::<(), memlog::Error>(())
    /// ```
    Hold,
}
