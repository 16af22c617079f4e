//! A log's whole write operations: claim, publish, carry the high-water
//! mark, wake, with nothing in between that runs user code (the rule every
//! write keeps, mode/shared.rs). Each is one method, so that no caller can
//! run anything between a claim and its publish. The exclusive writer's
//! single write keeps its segment between writes and lives in writer.rs.

use crate::log::Inner;
use crate::mode::Mode;
use crate::slot::Entry;
use crate::wait::Waiter;
use crate::Error;
use std::task::Context;
use std::time::{Instant, SystemTime};

/// What a write does when it would purge records a stream holds (hold.rs).
pub(crate) enum OnHold<'a, 'b> {
    /// Answers `Full` (`try_write`).
    Refuse,
    /// Waits, spinning then parking, until the deadline (`None`: for ever):
    /// `Timeout` then.
    Wait(Option<Instant>),
    /// Registers the task's waker and answers `Full`, meaning "pending"
    /// (`write_async`).
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    Task(&'a mut Context<'b>),
}

impl<T: Send + Sync + 'static> Inner<T> {
    /// Before a claim: `Ok` once a write of relative offsets `first..=last`
    /// installs no segment that the holds forbid (the holds then know a
    /// writer is purging, and a hold set meanwhile fails: hold.rs).
    ///
    /// A batch that would purge its own first records (it crosses more
    /// than `history_segments` segment boundaries) while a hold forbids it
    /// is refused with `BatchTooLarge`: a holding stream must read those
    /// records before they are purged, which it can do only once the batch
    /// has landed, and a batch lands whole or not at all.
    pub(crate) fn admit(
        &self,
        first: u64,
        last: u64,
        on_hold: &mut OnHold<'_, '_>,
    ) -> Result<(), Error> {
        // A closed log refuses the claim that would follow: say so now rather
        // than `Full`, or wait for a hold set after the close (the exclusive
        // writer admits before it claims), and before the holds are asked,
        // so that a write refused for it announces no purge (hold.rs).
        if self.seq.is_closed() {
            // Once the end is fixed (as `pull_batch` does): until then an
            // exclusive log's `close` may still take a claim it sees, and a
            // write after this refusal must not land.
            self.seq.wait_end();
            return Err(Error::Closed);
        }
        let Some(k) = self.ring.held(last) else {
            return Ok(());
        };
        if let Some(max) = self.ring.purges_own_start(first, k) {
            return Err(Error::BatchTooLarge {
                len: usize::try_from(last - first + 1).unwrap_or(usize::MAX),
                max,
            });
        }
        let holds = &self.ring.holds;
        match on_hold {
            OnHold::Refuse => holds.check(k, None).unwrap_or(Err(Error::Full)),
            OnHold::Wait(deadline) => holds.wait_until(k, *deadline),
            OnHold::Task(cx) => holds
                .check(k, Some(Waiter::Task(cx.waker().clone())))
                .unwrap_or(Err(Error::Full)),
        }
    }
}

/// The whole write operations of a shared log: claim, publish, carry the
/// mark, wake; nothing in between runs user code.
impl<T: Send + Sync + 'static> Inner<T> {
    /// Writes one record; `Err(ReadOnly)` on a log with an exclusive
    /// writer. The size check (user code: `AsRef`) runs before the claim.
    #[inline]
    pub(crate) fn write_one(&self, created: SystemTime, data: T) -> Result<u64, Error> {
        let Mode::Shared(m) = &self.seq.mode else {
            return Err(Error::ReadOnly);
        };
        self.check_size(&data)?;
        let c = &self.seq.cursors;
        let rel = m.claim_one(c)?;
        // A claim whose segment the holds forbid waits in the install; if
        // the log closes meanwhile, `rel` is past the end (hold.rs).
        self.ring
            .publish_one(rel, Entry { created, data }, self.seq.mark_word())?;
        if m.advance(c, rel, rel + 1, |at| self.ring.published_end(at)) {
            self.waiters.notify_if_any();
        }
        Ok(rel)
    }

    /// Writes `n` entries at consecutive offsets with one claim, made only
    /// once the holds admit every segment the batch fills (`on_hold` says
    /// what to do until then), so that it never waits once claimed.
    pub(crate) fn write_many(
        &self,
        n: u64,
        entries: impl Iterator<Item = Entry<T>>,
        mut on_hold: OnHold<'_, '_>,
    ) -> Result<u64, Error> {
        let Mode::Shared(m) = &self.seq.mode else {
            return Err(Error::ReadOnly);
        };
        let c = &self.seq.cursors;
        let rel = m.claim_batch(c, n, |at| self.admit(at, at + n - 1, &mut on_hold))?;
        let mut moved = false;
        self.ring
            .publish_run(rel, entries, self.seq.mark_word(), |from, to| {
                moved |= m.advance(c, from, to, |at| self.ring.published_end(at));
            });
        // Wakers are user code: they run only once the whole batch is
        // published and the mark carried over it, so that one that panics or
        // blocks can not leave the batch's later segments claimed and never
        // published. A count loaded after the last move is loaded after
        // every move, which is all the handshake asks (wait.rs).
        if moved {
            self.waiters.notify_if_any();
        }
        Ok(rel)
    }
}

/// The exclusive writer's batch: admitted by the holds, one claim,
/// published segment by segment, one wake-up at the end.
impl<T: Send + Sync + 'static> Inner<T> {
    pub(crate) fn write_many_exclusive(
        &self,
        n: u64,
        entries: impl Iterator<Item = Entry<T>>,
        mut on_hold: OnHold<'_, '_>,
    ) -> Result<u64, Error> {
        let m = self.seq.exclusive();
        let c = &self.seq.cursors;
        // Admitted before the claim, as the shared batch is.
        let at = m.next_claim(c);
        self.admit(at, at + n - 1, &mut on_hold)?;
        let rel = m.claim(c, n)?;
        self.ring
            .publish_run(rel, entries, self.seq.mark_word(), |_, to| {
                m.publish_to(c, to)
            });
        // As in the shared batch: wakers run once the whole batch is out.
        self.waiters.notify_if_any();
        Ok(rel)
    }
}

/// A shared log's single write that waits for the holds before it claims
/// (`try_write`, `write_timeout`, `write_async`): the claim is a
/// compare-exchange made only once its segment is admitted.
impl<T: Send + Sync + 'static> Inner<T> {
    /// `data` is taken only once the write is claimed, so that a caller
    /// told `Full` (a task told to wait) keeps it.
    pub(crate) fn write_one_admitted(
        &self,
        created: SystemTime,
        data: &mut Option<T>,
        mut on_hold: OnHold<'_, '_>,
    ) -> Result<u64, Error> {
        let Mode::Shared(m) = &self.seq.mode else {
            return Err(Error::ReadOnly);
        };
        let Some(d) = data else {
            unreachable!("a write's payload is taken only once")
        };
        self.check_size(d)?;
        let c = &self.seq.cursors;
        let rel = m.claim_batch(c, 1, |at| self.admit(at, at, &mut on_hold))?;
        let data = data.take().expect("checked above");
        self.ring
            .publish_one(rel, Entry { created, data }, self.seq.mark_word())?;
        if m.advance(c, rel, rel + 1, |at| self.ring.published_end(at)) {
            self.waiters.notify_if_any();
        }
        Ok(rel)
    }
}
