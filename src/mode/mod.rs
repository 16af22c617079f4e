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

mod cursors;
mod exclusive;
mod shared;

pub(crate) use cursors::Cursors;
pub(crate) use exclusive::Exclusive;
pub(crate) use shared::Shared;

use crate::sync::{AtomicU64, Ordering};
use crate::wait::Wait;

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
    /// `held_end` (called by the winner, after claims are refused) is the
    /// first offset that holds forbid writing (hold.rs): claims at or past
    /// it fail, so the end is at most it. The caller wakes the waiters.
    pub(crate) fn close(&self, held_end: impl FnOnce() -> u64) {
        match &self.mode {
            Mode::Shared(m) => m.close(&self.cursors, held_end),
            Mode::Exclusive(m) => m.close(&self.cursors, held_end),
        }
    }

    /// Once closed: waits for the winning `close` to fix the end of what
    /// was written (it runs no user code first), so that a claim that
    /// follows is refused (until then an exclusive log's `close` still
    /// takes a claim it sees).
    pub(crate) fn wait_end(&self) {
        self.cursors.end();
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
