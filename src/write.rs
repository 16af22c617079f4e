//! A log's whole write operations: claim, publish, carry the high-water
//! mark, wake, with nothing in between that runs user code (the rule every
//! write keeps, mode/shared.rs). Each is one method, so that no caller can
//! run anything between a claim and its publish. The exclusive writer's
//! single write keeps its segment between writes and lives in writer.rs.

use crate::log::Inner;
use crate::mode::Mode;
use crate::slot::Entry;
use crate::Error;
use std::time::SystemTime;

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
        self.ring
            .publish_one(rel, Entry { created, data }, self.seq.mark_word());
        if m.advance(c, rel, rel + 1, |at| self.ring.published_end(at)) {
            self.waiters.notify_if_any();
        }
        Ok(rel)
    }

    /// Writes `n` entries at consecutive offsets with one claim.
    pub(crate) fn write_many(
        &self,
        n: u64,
        entries: impl Iterator<Item = Entry<T>>,
    ) -> Result<u64, Error> {
        let Mode::Shared(m) = &self.seq.mode else {
            return Err(Error::ReadOnly);
        };
        let c = &self.seq.cursors;
        let rel = m.claim_batch(c, n)?;
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

/// The exclusive writer's batch: one claim, published segment by segment,
/// one wake-up at the end.
impl<T: Send + Sync + 'static> Inner<T> {
    pub(crate) fn write_many_exclusive(
        &self,
        n: u64,
        entries: impl Iterator<Item = Entry<T>>,
    ) -> Result<u64, Error> {
        let m = self.seq.exclusive();
        let c = &self.seq.cursors;
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
