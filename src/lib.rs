//! A lock-free, in-memory, append-only log: Kafka's model inside one process.
//!
//! Writers append records and get dense offsets back; readers read any
//! retained offset, or follow the log in order at their own pace with a
//! [`Stream`]; history is bounded: the log is split into fixed-size segments,
//! and when the active one fills, the next write opens a new one and the
//! oldest is purged. It is a port of the Go library of the same name, with the
//! lock replaced by atomics.
//!
//! # The trade-off
//! Records are kept in memory, in fixed-capacity segment arrays. A write
//! claims its offset with one atomic `fetch_add`, fills its slot and publishes
//! it with a release store; a read is an acquire load and a clone. No
//! operation takes a lock except a reader that has run out of records and
//! parks, and the writer that wakes it. In exchange:
//! - memory is `segment_size * (history_segments + 1)` slots at most, whether
//!   or not the records are large (payloads are `T`; use `bytes::Bytes` or an
//!   `Arc` for large shared data);
//! - a reader that falls further behind than the retained history gets
//!   [`Error::OutOfRange`], explicitly, instead of silently skipping records;
//! - `T: Clone`, since readers get copies (cheap for `Bytes`, `Arc`, numbers),
//!   unless they read by reference: [`Stream::visit`] lends a stream's
//!   records to a closure, and [`Log::pin`] gives a [`Pinned`] reader that
//!   reads many offsets by reference under one epoch pin.
//!
//! # Semantics
//! - **Offsets** start at the configured start offset (default 0) and are
//!   dense: every offset below [`Log::next_offset`] was given to exactly one
//!   write. [`Log::write_batch`] gives a batch a contiguous range.
//! - **Visibility**: a record is readable once it and every record before it
//!   are published; a reader never sees a gap, a torn record, or a record of
//!   an older segment in the place of a newer one.
//! - **Retention**: the active segment plus `history_segments` sealed ones.
//!   With segment size 10, one history segment, start 100 and 50 writes,
//!   [`Log::range`] is `Some((130, 149))`. Purged segments are reclaimed with
//!   epoch-based reclamation (crossbeam-epoch) once no reader can hold them,
//!   and recycled, so steady-state writes allocate no segments.
//! - **Timestamps**: `created` is read from the log's clock just before the
//!   offset is claimed, so no user code runs between claim and publish (a
//!   claimed offset that never got published would stall every reader). With
//!   concurrent writers, a later offset may therefore carry an earlier time.
//! - **Close**: [`Log::close`] makes later writes fail with [`Error::Closed`];
//!   a write racing with it either lands (and is readable) or fails, never
//!   both; streams drain what was written and end.
//!
//! # Where your code runs
//! memlog calls code of yours (a payload's `Clone` and `Drop`, the clock,
//! `AsRef` for `max_record_bytes`, a batch's iterator, an async task's
//! `Waker`) only where it can not wedge or corrupt the log, so that code may
//! panic, block, or call back into the log:
//! - **Before a write claims its offset**: the clock, the size check, the
//!   batch's iterator. A panic there writes nothing.
//! - **Never between a claim and the publish that covers it**, and never
//!   under the lock of the waiter list.
//! - **`Clone`** when a reader copies a record out. A panicking clone ends
//!   that read; a stream's read-ahead stops before a record whose clone
//!   panics, and the read of that record itself panics.
//! - **A visitor** ([`Stream::visit`] and its kin) runs inside the read,
//!   under an epoch pin, with the records lent by reference: a slow one
//!   delays the freeing of purged segments (memory), never writers; one
//!   that panics leaves the stream consistent, and the record it panicked
//!   on is visited again by the next call. It may write to the log.
//! - **`Waker::wake`** (and a waker's drop): after the writer has carried the
//!   high-water mark over every offset it is responsible for, outside the
//!   lock. A panicking waker does not keep the other waiters asleep; its panic
//!   then reaches that writer, whose record is written.
//! - **A purged record's `Drop`**: crossbeam-epoch hands a purged segment
//!   back once no reader can still hold it, on whichever thread's memlog call
//!   collects it (any thread using memlog). Its records are dropped at the
//!   start of that thread's next memlog call that reads or writes, before
//!   the call does anything (so a panicking `Drop` makes that call panic
//!   having done nothing; retry it), before a blocked stream goes to sleep,
//!   or when the thread exits. (A stream that judges its next record by the
//!   slot's stamp pins once more after that drain, to re-check before it
//!   sleeps: what that pin collects is dropped when the stream wakes.) A `Drop` may write to the log it was in.
//!   Retained records are dropped with the last handle to the log; a
//!   panicking `Drop` there does not keep the others alive (as with a `Vec`).
//!
//! # Examples
//! One writer, one reader:
//! ```
//! use memlog::Log;
//!
//! let log = Log::new();
//! let offset = log.write(b"hello".to_vec())?;
//! assert_eq!(log.read(offset)?.data, b"hello");
//! # Ok::<(), memlog::Error>(())
//! ```
//! Many writers, many streaming readers, each reader sees every record in order:
//! ```
//! use memlog::Log;
//! use std::thread;
//!
//! let log: Log<u64> = Log::new();
//! let readers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let stream = log.stream(0);
//!         thread::spawn(move || stream.take(2000).map(|r| r.unwrap().offset).collect::<Vec<_>>())
//!     })
//!     .collect();
//! let writers: Vec<_> = (0..4)
//!     .map(|w| {
//!         let log = log.clone();
//!         thread::spawn(move || for i in 0..500 { log.write(w * 1000 + i).unwrap(); })
//!     })
//!     .collect();
//! for w in writers { w.join().unwrap(); }
//! for r in readers {
//!     assert_eq!(r.join().unwrap(), (0..2000).collect::<Vec<u64>>());
//! }
//! ```
//! One producer (a poller feeding many readers, the common case): give it
//! the log's exclusive [`Writer`], whose writes cost no atomic
//! read-modify-write (where [`Log::write`] pays two) and, on Linux, no
//! fence instruction; every [`Log`] handle reads, and dropping the writer
//! closes the log:
//! ```
//! use memlog::Log;
//! use std::thread;
//!
//! let (mut writer, log) = Log::builder().build_exclusive()?;
//! let readers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let stream = log.stream(0);
//!         thread::spawn(move || stream.map(|r| r.unwrap().data).sum::<u64>())
//!     })
//!     .collect();
//! for i in 0..1000u64 {
//!     writer.write(i)?;
//! }
//! drop(writer); // closes the log: the streams end
//! for r in readers {
//!     assert_eq!(r.join().unwrap(), 499_500);
//! }
//! # Ok::<(), memlog::Error>(())
//! ```
//! Checkpoint and resume, as a consumer that restarts would:
//! ```
//! use memlog::{Error, Log};
//!
//! let log = Log::new();
//! log.write_batch((0..10).map(|i| format!("event {i}")))?;
//! let checkpoint = 7; // saved by a consumer before it crashed
//! let mut stream = log.stream(checkpoint);
//! assert_eq!(stream.try_recv()?.data, "event 7");
//! # Ok::<(), Error>(())
//! ```
//!
//! # Falling behind, and where to start
//! A stream whose next offset was purged before it read it yields
//! [`Error::OutOfRange`] and ends: a consumer that must see every record
//! finds out. Two opt-ins spare the others the work of catching that error
//! and starting over (Kafka's `auto.offset.reset`, tokio broadcast's
//! `Lagged`):
//! - [`Log::stream_from`] starts at [`StartAt::Earliest`] (the earliest
//!   retained offset), [`StartAt::Latest`] (the next offset to be written),
//!   [`StartAt::Offset`] or [`StartAt::Time`] (the first record written at
//!   or after a time, found by a binary search);
//! - [`Stream::on_lag`]`(`[`Lag::Skip`]`)` makes a stream that fell behind
//!   yield [`Error::Lagged`]` { skipped }` once and go on from the earliest
//!   retained offset.
//!
//! ```
//! use memlog::{Error, Lag, Log, StartAt};
//!
//! let log = Log::builder().segment_size(100).history_segments(1).build()?;
//! // A slow reader that tolerates loss, started at whatever is retained.
//! let mut reader = log.stream_from(StartAt::Earliest).on_lag(Lag::Skip);
//! log.write_batch(0..200u32)?;
//! log.write_batch(200..300u32)?; // purges 0..100
//! let (mut received, mut skipped) = (0, 0);
//! loop {
//!     match reader.try_recv() {
//!         Ok(r) => {
//!             assert_eq!(r.offset, u64::from(r.data));
//!             received += 1;
//!         }
//!         Err(Error::Lagged { skipped: n }) => skipped += n,
//!         Err(Error::FutureOffset) => break, // caught up
//!         Err(e) => return Err(e),
//!     }
//! }
//! assert_eq!((skipped, received), (100, 200));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Features
//! - `async`: `Log::stream_async` gives an `AsyncStream`, a
//!   [`futures_core::Stream`] with the semantics of [`Stream`], woken by the
//!   writes through the same waiters as parked threads (no timer, no thread).
//! - `serde`: [`Record`] serializes as
//!   `{"offset":…,"created":"<RFC 3339, nanoseconds>","data":…}` and [`Error`]
//!   as `{"error":"<kind>","message":"<text>",…}` ([`Error::kind`]); both
//!   round-trip.
//!
//! `examples/http/` (the `memlog-http-example` package) uses both to serve a log over HTTP as
//! newline-delimited JSON.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "async")]
mod async_stream;
mod backpressure;
mod builder;
pub mod clock;
mod config;
mod driver;
mod error;
mod handle;
mod hold;
mod log;
mod mode;
mod reclaim;
mod record;
mod resume;
mod ring;
mod segment;
#[cfg(feature = "serde")]
mod serde_impl;
pub mod sharded;
mod slot;
mod stream;
mod sync;
mod wait;
mod walk;
mod write;
mod writer;
mod zero_copy;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Dropping these values is a bug, and `#[must_use]` says so: each example
/// fails to compile under `deny(unused_must_use)` (the same calls, used,
/// compile in the items' own examples).
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// memlog::Log::<u8>::new().stream(0);
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// memlog::Log::<u8>::new().stream_from(memlog::StartAt::Latest);
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// memlog::Log::<u8>::new().stream(0).on_lag(memlog::Lag::Skip);
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// memlog::Log::<u8>::new().stream(0).canceller();
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// memlog::Log::<u8>::new().range();
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// memlog::Log::<u8>::new().next_offset();
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let r = memlog::Record { offset: 0, created: std::time::UNIX_EPOCH, data: 1 };
/// r.map(|d| d + 1);
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let b = memlog::Log::<u8>::builder();
/// b.segment_size(8);
/// ```
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let b = memlog::sharded::ShardedLog::<u8>::builder();
/// b.shards(8);
/// ```
#[cfg(doctest)]
struct MustUse;

#[cfg(feature = "async")]
pub use async_stream::AsyncStream;
pub use builder::{
    Builder, DEFAULT_HISTORY_SEGMENTS, DEFAULT_SEGMENT_SIZE, MAX_HISTORY_SEGMENTS, MAX_RETAINED,
    MAX_START_OFFSET,
};
pub use clock::Clock;
pub use error::Error;
pub use handle::Log;
pub use record::{Offset, Record, RecordRef};
pub use resume::{Lag, StartAt};
pub use stream::{Canceller, Stream};
pub use writer::Writer;
pub use zero_copy::Pinned;
