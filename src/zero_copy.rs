//! Zero-copy reading: [`RecordRef`], a record lent by reference, and
//! [`Pinned`], a reader that pins once for many random reads.
//!
//! A [`Record`] is a copy: `read`, `read_batch` and a stream's iterator clone
//! the payload out of its slot, and a stream also moves the copies through a
//! read-ahead deque. Every read also pins (crossbeam-epoch, a store and a
//! fence) so that the segment it reads can not be freed under it. For a
//! reader that only looks at each record (checks, aggregates, serializes),
//! both costs can go:
//! - [`Stream::visit`](crate::Stream::visit) and
//!   [`try_visit`](crate::Stream::try_visit) call a closure with each ready
//!   record by reference, in place in its slot, renewing the pin once per
//!   segment, as the disruptor's handlers read events in place;
//! - [`Log::pin`] pins once and then reads any number of offsets by
//!   reference ([`Pinned::get`]) or by clone ([`Pinned::read`]).
//!
//! Both run under an epoch pin, which delays the reclamation of purged
//! segments (memory), never writers: see [`Pinned`]'s docs.

use crate::handle::Log;
use crate::reclaim::Guard;
use crate::record::{Offset, Record, RecordRef};
use crate::Error;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

/// A reader that pinned once and reads any number of offsets by reference
/// ([`get`](Pinned::get)) or by clone ([`read`](Pinned::read)), each as
/// exactly as [`Log::read`] would: the same `FutureOffset` and `OutOfRange`,
/// never a record of another offset. Get one with [`Log::pin`].
///
/// Each read skips `Log::read`'s pin and, below a high-water mark it has
/// already seen, its load of the mark (the cache line the writers update).
///
/// It is not `Send`: a pin belongs to its thread.
///
/// # What a pin costs, and who pays
/// While a thread is pinned, segments purged since it pinned can not be freed
/// or recycled, **those of every log in the process**: the epoch collector
/// is one per process, shared by all logs. A purge still happens on time (reads of it give
/// `OutOfRange`, writers never wait for a reader), but the purged records'
/// memory, and their `Drop`, wait until the pin ends. So **holding a pin
/// delays reclamation (memory), never writers**; a writer that finds no
/// recycled segment allocates a new one. Do not hold it across a wait (a
/// blocking stream, a sleep, a lock held elsewhere); drop it and pin again
/// to let reclamation proceed. The same holds for the closure of
/// [`Stream::visit`](crate::Stream::visit), which runs under a pin.
/// Purged records whose reclamation this thread collected while pinned are
/// dropped at the start of its next memlog call after the pin ends.
///
/// ```
/// use memlog::{Error, Log};
///
/// let log = Log::builder().segment_size(4).history_segments(1).build()?;
/// log.write_batch(0..6u64)?;
/// log.write_batch(6..10u64)?; // 0..4 are purged
/// let pinned = log.pin();
/// let sum: u64 = (4..10).map(|o| *pinned.get(o).unwrap().data).sum();
/// assert_eq!(sum, 4 + 5 + 6 + 7 + 8 + 9);
/// assert_eq!(pinned.get(3), Err(Error::OutOfRange));
/// assert_eq!(pinned.get(10), Err(Error::FutureOffset));
/// # Ok::<(), Error>(())
/// ```
///
/// It borrows the pin, so a record can not outlive it:
/// ```compile_fail
/// let log = memlog::Log::new();
/// log.write(1u8).unwrap();
/// let r = log.pin().get(0).unwrap(); // the `Pinned` is dropped here
/// println!("{}", r.data);
/// ```
/// and it can not move to another thread:
/// ```compile_fail
/// let log = memlog::Log::<u8>::new();
/// let pinned = log.pin();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(pinned));
/// });
/// ```
#[must_use = "a pin does nothing unless read through"]
pub struct Pinned<'a, T> {
    log: &'a Log<T>,
    guard: Guard<'a>,
    /// A high-water mark (relative) loaded earlier: offsets below it need
    /// no new load.
    hw: Cell<u64>,
    /// The pin and its reclamation depth are the thread's (reclaim.rs).
    _not_send: PhantomData<*const ()>,
}

impl<T> fmt::Debug for Pinned<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned")
            .field("start_offset", &self.log.inner.cfg.start)
            .field(
                "high_water_seen",
                &(self.log.inner.cfg.start + self.hw.get()),
            )
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Log<T> {
    /// Pins this thread once for many reads: see [`Pinned`]. Records purged
    /// before the call that this thread's earlier calls collected are
    /// dropped first, as at the start of every read.
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write_batch(["a", "b", "c"])?;
    /// let pinned = log.pin();
    /// let joined: String = (0..3).map(|o| *pinned.get(o).unwrap().data).collect();
    /// assert_eq!(joined, "abc");
    /// # Ok::<(), memlog::Error>(())
    /// ```
    pub fn pin(&self) -> Pinned<'_, T> {
        crate::reclaim::drain();
        Pinned {
            log: self,
            guard: self.inner.ring.pin(),
            hw: Cell::new(0),
            _not_send: PhantomData,
        }
    }
}

impl<'a, T: Clone + Send + Sync + 'static> Pinned<'a, T> {
    /// The record at `offset`, by reference, for as long as this pin lives.
    ///
    /// # Errors
    /// As [`Log::read`]: [`Error::FutureOffset`] if it is not written yet,
    /// [`Error::OutOfRange`] if it was purged (also when the purge happened
    /// after this pin was taken) or is below the start offset.
    ///
    /// ```
    /// use memlog::Error;
    ///
    /// let log = memlog::Log::builder().start_offset(10).build()?;
    /// log.write(7u32)?;
    /// let pinned = log.pin();
    /// assert_eq!(*pinned.get(10)?.data, 7);
    /// assert_eq!(pinned.get(9), Err(Error::OutOfRange));
    /// assert_eq!(pinned.get(11), Err(Error::FutureOffset));
    /// log.write(8)?; // visible to the same pin
    /// assert_eq!(*pinned.get(11)?.data, 8);
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn get(&self, offset: Offset) -> Result<RecordRef<'_, T>, Error> {
        let rel = self.log.rel(offset)?;
        if rel >= self.hw.get() {
            // Below a mark loaded earlier, a read loads nothing the writers
            // write: the mark only grows.
            self.hw.set(self.log.inner.high_water());
            if rel >= self.hw.get() {
                return Err(Error::FutureOffset);
            }
        }
        self.log.inner.ring.get_pinned(rel, &self.guard)
    }

    /// The record at `offset`, cloned: [`Log::read`] without its pin.
    ///
    /// # Errors
    /// As [`get`](Pinned::get).
    ///
    /// ```
    /// let log = memlog::Log::new();
    /// log.write_batch([1u8, 2, 3])?;
    /// let pinned = log.pin();
    /// for o in 0..3 {
    ///     assert_eq!(pinned.read(o)?, log.read(o)?);
    /// }
    /// # Ok::<(), memlog::Error>(())
    /// ```
    #[inline]
    pub fn read(&self, offset: Offset) -> Result<Record<T>, Error> {
        self.get(offset).map(|r| r.to_owned())
    }

    /// The log this pin reads.
    ///
    /// ```
    /// let log = memlog::Log::<u8>::new();
    /// let pinned = log.pin();
    /// assert_eq!(pinned.log().next_offset(), 0);
    /// ```
    #[must_use]
    pub fn log(&self) -> &'a Log<T> {
        self.log
    }
}
