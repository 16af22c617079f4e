//! Shared bench support: the lock-based baseline, payloads, record checks.

pub mod locklog;

use bytes::Bytes;

/// The 32-byte payload from the issue.
pub const PAYLOAD: &[u8] = br#"{"id":"1","message":"benchmark"}"#;

/// The payload as `Bytes` (static: cloning it touches no refcount, so the
/// benches measure the log, not the payload).
pub fn payload() -> Bytes {
    Bytes::from_static(PAYLOAD)
}

/// Payload types used by the benches, built from a sequence number.
pub trait Payload: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// Label used in benchmark ids.
    const NAME: &'static str;
    fn make(i: u64) -> Self;
}

impl Payload for u64 {
    const NAME: &'static str = "u64";
    #[inline]
    fn make(i: u64) -> Self {
        i
    }
}

impl Payload for Bytes {
    const NAME: &'static str = "bytes";
    #[inline]
    fn make(_: u64) -> Self {
        payload()
    }
}

/// Value written by writer `w` as its `i`-th record (multi-writer streams).
#[inline]
pub fn tag(w: u64, i: u64) -> u64 {
    (w << 40) | i
}

/// Checks what one streaming reader sees: every writer's records in that
/// writer's order, none missing, none duplicated.
#[derive(Debug)]
pub struct Checker {
    next: Vec<u64>,
    seen: u64,
}

impl Checker {
    pub fn new(writers: usize) -> Self {
        Checker {
            next: vec![0; writers],
            seen: 0,
        }
    }

    /// Checks one value; returns false on a gap or reordering.
    #[inline]
    pub fn check(&mut self, v: u64) -> bool {
        let (w, i) = ((v >> 40) as usize, v & ((1 << 40) - 1));
        match self.next.get_mut(w) {
            Some(n) if *n == i => {
                *n += 1;
                self.seen += 1;
                true
            }
            _ => false,
        }
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// A streaming reader's per-record check for each payload type: u64 records
/// carry a writer tag (`Checker`), `Bytes` records the fixed payload.
pub trait Checked: Payload {
    fn ok(&self, c: &mut Checker) -> bool;
}

impl Checked for u64 {
    #[inline]
    fn ok(&self, c: &mut Checker) -> bool {
        c.check(*self)
    }
}

impl Checked for Bytes {
    #[inline]
    fn ok(&self, _: &mut Checker) -> bool {
        self.as_ref() == PAYLOAD
    }
}
