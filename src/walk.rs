//! The one walk over published slots, and what reads through it.
//!
//! [`Ring::walk`] hands a sink consecutive published records from an offset,
//! by reference, in order: those below a high-water mark the caller loaded
//! (known published), then, if the caller may judge by stamps, those whose
//! own stamps say they are published. It ends at the first record that is
//! not ready, at a segment purged meanwhile, or where the sink says stop.
//! It pins once per segment, so a long walk holds back the reclamation of
//! one segment at a time, not of all it crosses. Every run of reads is one
//! of its sinks: `read_batch`, a stream's read-ahead and visits
//! (`Reader::next_run`, driver.rs), and the writers' scan for the end of the
//! published run (`published_end`). A single [`Log::read`](crate::Log::read)
//! and [`Pinned`](crate::Pinned) read under a pin of their own, through the same
//! segment lookup (`Ring::lookup`).
//!
//! # What a walk's pin holds back
//! crossbeam-epoch's collector is one per process (memlog's own, shared by
//! every log): while a thread is pinned, no segment purged since, **of any
//! log in the process**, can be freed or recycled. A sink that takes long
//! (a slow visitor, a `Pinned` held) delays the freeing of every log's
//! purged records, never a writer.

use crate::reclaim::Guard;
use crate::ring::{Installed, Ring};
use crate::{Error, Record, RecordRef};

/// Which records a walk may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    /// A high-water mark loaded earlier: every offset below it is published.
    pub(crate) mark: u64,
    /// Whether past the mark a record may be taken on its own stamp: only
    /// for an in-order reader that has read the record before the walk's
    /// first, so that every offset below it is published.
    pub(crate) by_stamp: bool,
}

impl<T> Ring<T> {
    /// Hands `sink` up to `max` consecutive ready records from `rel` (see
    /// the module docs); `sink` returning false ends the walk before that
    /// record. Returns how many the sink took; `FutureOffset` if the first
    /// is not ready, `OutOfRange` if its segment was purged.
    pub(crate) fn walk(
        &self,
        rel: u64,
        max: usize,
        ready: Ready,
        mut sink: impl FnMut(RecordRef<'_, T>) -> bool,
    ) -> Result<usize, Error> {
        let end = rel.saturating_add(max as u64);
        let mut at = rel;
        'segments: while at < end {
            let guard = self.pin();
            let (k, i) = self.split(at);
            let seg = match self.lookup(k, &guard) {
                Installed::Current(seg) => seg,
                Installed::NotYet => break,
                Installed::Purged if at == rel => return Err(Error::OutOfRange),
                // A later segment was purged during the walk: stop at the gap.
                Installed::Purged => break,
            };
            // This segment's part of the walk: `known` slots below the mark
            // need no look at their stamps; past it, with `by_stamp`, each
            // stamp is checked in order, so the run stays gapless.
            let slots = &seg.slots[i as usize..];
            let span = (end - at).min(slots.len() as u64) as usize;
            let known = ready.mark.saturating_sub(at).min(span as u64) as usize;
            for (j, slot) in slots[..span].iter().enumerate() {
                if j >= known && !(ready.by_stamp && slot.is_published(at)) {
                    break 'segments;
                }
                // SAFETY: published (below the mark, or stamp acquired just
                // above), in the segment `guard` pins until `sink` returns
                // (the sink's borrow can not outlive this iteration).
                let e = unsafe { slot.get() };
                if !sink(self.record_ref(at, e)) {
                    break 'segments;
                }
                at += 1;
            }
            if span < slots.len() {
                // `end` reached inside this segment.
                break;
            }
        }
        if at == rel {
            return Err(Error::FutureOffset);
        }
        Ok((at - rel) as usize)
    }

    #[inline]
    fn record_ref<'e>(&self, rel: u64, e: &'e crate::slot::Entry<T>) -> RecordRef<'e, T> {
        RecordRef {
            offset: self.start + rel,
            created: e.created,
            data: &e.data,
        }
    }

    /// The first relative offset at or after `from` that is not published:
    /// the writers' scan (shared.rs). Offsets from `from` on may belong to
    /// other writers, who could see them covered and purged while we look:
    /// the walk's pin keeps them.
    #[cold]
    pub(crate) fn published_end(&self, from: u64) -> u64 {
        let by_stamp = Ready {
            mark: from,
            by_stamp: true,
        };
        from + self.walk(from, usize::MAX, by_stamp, |_| true).unwrap_or(0) as u64
    }

    /// Whether a stamp-judged read of `rel` would not return `FutureOffset`
    /// (a purged `rel` reads as `OutOfRange`, which is not waiting).
    pub(crate) fn stamped(&self, rel: u64) -> bool {
        let by_stamp = Ready {
            mark: rel,
            by_stamp: true,
        };
        self.walk(rel, 1, by_stamp, |_| true) != Err(Error::FutureOffset)
    }

    /// The record at `rel` by reference, for as long as `guard` pins it,
    /// which the caller knows to be below the mark: `OutOfRange` if its
    /// segment is no longer installed (never another offset's record).
    pub(crate) fn get_pinned<'g>(
        &self,
        rel: u64,
        guard: &'g Guard<'_>,
    ) -> Result<RecordRef<'g, T>, Error> {
        let (k, i) = self.split(rel);
        let Installed::Current(seg) = self.lookup(k, guard) else {
            // Below the mark, segment `k` was installed: gone means purged.
            return Err(Error::OutOfRange);
        };
        // SAFETY: below a mark loaded with Acquire, in the segment `guard`
        // pins for all of `'g`.
        let e = unsafe { seg.slots[i as usize].get() };
        Ok(self.record_ref(rel, e))
    }
}

impl<T: Clone> Ring<T> {
    /// Clones the record at `rel`, below the mark: one lookup under its own
    /// pin (a walk's loop and sink would cost a single read a third more).
    #[inline]
    pub(crate) fn read(&self, rel: u64) -> Result<Record<T>, Error> {
        let guard = self.pin();
        self.get_pinned(rel, &guard).map(|r| r.to_owned())
    }

    /// Appends clones of up to `max` records from `rel`, below the mark.
    pub(crate) fn read_batch(
        &self,
        rel: u64,
        mark: u64,
        out: &mut Vec<Record<T>>,
        max: usize,
    ) -> Result<usize, Error> {
        // Only what is there: `max` may be huge.
        out.reserve((mark - rel).min(max as u64).min(self.segment_size) as usize);
        let ready = Ready {
            mark,
            by_stamp: false,
        };
        self.walk(rel, max, ready, |r| {
            out.push(r.to_owned());
            true
        })
    }
}
