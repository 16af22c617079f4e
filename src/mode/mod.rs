//! The writing modes: who claims offsets, who moves the high-water mark, how
//! a write linearises against `close`, and how a reader about to sleep meets
//! the writers. Everything that differs between a log that many handles
//! write ([`Shared`], shared.rs) and one that only its exclusive
//! [`Writer`](crate::Writer) writes ([`Exclusive`], exclusive.rs) is decided
//! here; the rest of the crate asks [`Sequencer`] questions (what is the next
//! offset, may a reader judge by slot stamps, is this offset ready for a
//! reader that registered) and never which mode a log is in.
//!
//! Both modes keep the same three words ([`Cursors`]), so that a reader's
//! one hot load, the mark, is the same instruction whatever the mode; each
//! mode type owns the rules for them. As in the disruptor, where each
//! producer kind has its own sequencer and consumers see one barrier.

mod exclusive;
mod shared;

pub(crate) use exclusive::Exclusive;
pub(crate) use shared::Shared;

use crate::sync::{yield_now, AtomicU64, Backoff, Ordering};
use crossbeam_utils::CachePadded;

/// `closed_end` before `close` stored it. Not a real offset's value: the
/// field holds the end plus one, so that no position a stream may ask for
/// (`u64::MAX` included) reads as "closed".
const NOT_CLOSED: u64 = 0;

/// Why a wait for an offset ended, or why it must not sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The awaited offset is published.
    Ready,
    /// The log is closed and the awaited offset will never be written.
    Closed,
    /// The waiter's cancel flag is set.
    Cancelled,
    /// The deadline passed.
    TimedOut,
    /// Not published, but claimed by a writer that is between its claim and
    /// its publish and will wake no one for it: do not sleep, it is coming
    /// (the exclusive writer, exclusive.rs).
    Imminent,
}

/// The three words every mode keeps; who writes them, and how, is the
/// mode's (shared.rs, exclusive.rs).
pub(crate) struct Cursors {
    /// The next relative offset to claim (see each mode for its encoding).
    pub(super) tail: CachePadded<AtomicU64>,
    /// The high-water mark: every relative offset below it is published
    /// and its segment was installed. Only grows.
    pub(super) mark: CachePadded<AtomicU64>,
    /// One more than the end of what was written once the log is closed,
    /// or `NOT_CLOSED`. Stored once, by the winning `close`.
    closed_end: AtomicU64,
}

impl Cursors {
    fn new() -> Self {
        Cursors {
            tail: CachePadded::new(AtomicU64::new(0)),
            mark: CachePadded::new(AtomicU64::new(0)),
            closed_end: AtomicU64::new(NOT_CLOSED),
        }
    }

    /// Stores the end of what was written (the winning `close` only).
    fn set_end(&self, end: u64) {
        // Release: pairs with the Acquire loads in `end` and `closed_below`.
        self.closed_end.store(end + 1, Ordering::Release);
    }

    /// The end of what was written, once the log is closed; waits for the
    /// winning `close` to store it (it runs no user code in between).
    fn end(&self) -> u64 {
        let backoff = Backoff::new();
        loop {
            let end = self.closed_end.load(Ordering::Acquire);
            if end != NOT_CLOSED {
                return end - 1;
            }
            if backoff.is_completed() {
                yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Whether the log is closed and `rel` is at or past its end.
    fn closed_below(&self, rel: u64) -> bool {
        let end = self.closed_end.load(Ordering::Acquire);
        end != NOT_CLOSED && rel >= end - 1
    }
}

/// The log's writing mode.
pub(crate) enum Mode {
    Shared(Shared),
    Exclusive(Exclusive),
}

/// A log's cursors and the mode that rules them.
pub(crate) struct Sequencer {
    pub(crate) cursors: Cursors,
    pub(crate) mode: Mode,
}

impl Sequencer {
    /// For a log that every handle writes.
    pub(crate) fn new_shared() -> Self {
        Sequencer {
            cursors: Cursors::new(),
            mode: Mode::Shared(Shared),
        }
    }

    /// For a log written only by its exclusive writer.
    pub(crate) fn new_exclusive() -> Self {
        Sequencer {
            cursors: Cursors::new(),
            mode: Mode::Exclusive(Exclusive::new()),
        }
    }

    /// The exclusive mode's rules, for the exclusive writer (which exists
    /// only for a log built in that mode).
    #[inline(always)]
    pub(crate) fn exclusive(&self) -> &Exclusive {
        match &self.mode {
            Mode::Exclusive(m) => m,
            Mode::Shared(_) => unreachable!("a Writer exists only for an exclusive log"),
        }
    }

    /// `Err(ReadOnly)` where the log's handles may not write (it has an
    /// exclusive writer).
    #[inline]
    pub(crate) fn handles_write(&self) -> Result<(), crate::Error> {
        match self.mode {
            Mode::Shared(_) => Ok(()),
            Mode::Exclusive(_) => Err(crate::Error::ReadOnly),
        }
    }

    /// The high-water mark (relative): every offset below it is published.
    #[inline]
    pub(crate) fn mark(&self) -> u64 {
        // Acquire pairs with the Release (or AcqRel) moves of each mode.
        self.cursors.mark.load(Ordering::Acquire)
    }

    /// The mark itself, for the installer that waits on it (ring.rs).
    #[inline]
    pub(crate) fn mark_word(&self) -> &AtomicU64 {
        &self.cursors.mark
    }

    /// The next offset a write would get (relative); once closed, the end of
    /// what was written (not counting claims that failed `Closed`).
    pub(crate) fn next(&self) -> u64 {
        match &self.mode {
            Mode::Shared(m) => m.next(&self.cursors),
            Mode::Exclusive(m) => m.next(&self.cursors),
        }
    }

    /// Closes the log: later claims fail. Returns once the end of what was
    /// written is stored, also when another thread's `close` won the race.
    /// The caller wakes the waiters.
    pub(crate) fn close(&self) {
        match &self.mode {
            Mode::Shared(m) => m.close(&self.cursors),
            Mode::Exclusive(m) => m.close(&self.cursors),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.mode {
            Mode::Shared(m) => m.is_closed(&self.cursors),
            Mode::Exclusive(m) => m.is_closed(),
        }
    }

    /// Whether a reader that has read the record before `rel` (so that every
    /// offset below it is published) may judge `rel` by its slot's stamp
    /// rather than by the mark. Where the mark moves after every write (the
    /// exclusive writer stores it), the mark is as fresh as the stamps, and
    /// a caught-up reader reads up to it, as a disruptor consumer reads up
    /// to the cursor, touching the slots the writer fills only once they
    /// are published. Where writers move the mark with a compare-exchange,
    /// a caught-up reader polls the stamps instead, so as not to pull the
    /// mark's line away from the writers on every record.
    #[inline]
    pub(crate) fn stamps_lead(&self) -> bool {
        matches!(self.mode, Mode::Shared(_))
    }

    /// Whether the log is closed with `rel` at or past its end.
    pub(crate) fn closed_below(&self, rel: u64) -> bool {
        self.cursors.closed_below(rel)
    }

    /// The sleeper's half of the wake-up handshake (wait.rs), after it
    /// registered: `Ready` if `rel` is now published (the mark, or its
    /// stamp if `stamped` says so), `Imminent` if a writer that will not
    /// wake this registration is about to publish it, else `None`: any
    /// publish of `rel` from here on sees the registration.
    pub(crate) fn recheck(&self, rel: u64, stamped: impl Fn() -> bool) -> Option<Wait> {
        match &self.mode {
            Mode::Shared(m) => m.recheck(&self.cursors, rel, stamped),
            Mode::Exclusive(m) => m.recheck(&self.cursors, rel, stamped),
        }
    }
}
