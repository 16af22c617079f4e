//! Property tests live in `tests/`; this crate holds only what their
//! sequential models share: the log's retention arithmetic and what a
//! stream finds at its position.

/// A log's shape, as the models see it: its start offset, segment size `S`
/// and history segments `H`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub start: u64,
    pub seg: u64,
    pub hist: u64,
}

/// What the model's log holds at a stream's position.
#[derive(Debug)]
pub enum Fetch {
    /// Readable, at this relative offset.
    Ready(u64),
    /// Purged, or below the start offset.
    Behind,
    /// Not written yet.
    Future,
    /// Not written, and the log is closed.
    Closed,
}

impl Shape {
    /// The first retained relative offset with `n` records written (the Go
    /// library's arithmetic): the active segment is `(n-1)/S`, and the
    /// retained ones start `H` before it.
    pub fn first(&self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((n - 1) / self.seg).saturating_sub(self.hist) * self.seg
    }

    /// What a stream at absolute offset `pos` finds, with `n` records
    /// written and, once closed, the end at relative `closed_at`.
    pub fn fetch(&self, n: u64, closed_at: Option<u64>, pos: u64) -> Fetch {
        let Some(rel) = pos.checked_sub(self.start) else {
            return Fetch::Behind;
        };
        if rel >= n {
            if closed_at.is_some_and(|end| rel >= end) {
                return Fetch::Closed;
            }
            return Fetch::Future;
        }
        if rel < self.first(n) {
            return Fetch::Behind;
        }
        Fetch::Ready(rel)
    }
}
