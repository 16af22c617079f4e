//! A log's checked configuration, as every part of it reads it (the
//! [`Builder`](crate::Builder) checks and makes it).

use crate::clock::{Clock, TickingClock};
use std::sync::Arc;

/// Measures a payload for `max_record_bytes`.
pub(crate) type SizeOf<T> = fn(&T) -> usize;

/// A checked configuration.
pub(crate) struct Config<T> {
    pub(crate) start: u64,
    pub(crate) segment_size: u64,
    pub(crate) history: u64,
    pub(crate) ring_len: u64,
    pub(crate) clock: Arc<dyn Clock>,
    /// `clock`, if it is a [`TickingClock`]: the exclusive writer reads its
    /// time directly (writer.rs).
    pub(crate) ticking: Option<TickingClock>,
    pub(crate) max_record: Option<(usize, SizeOf<T>)>,
}

impl<T> Clone for Config<T> {
    fn clone(&self) -> Self {
        Config {
            clock: Arc::clone(&self.clock),
            ticking: self.ticking.clone(),
            ..*self
        }
    }
}

impl<T> Config<T> {
    /// Records the log retains at most.
    pub(crate) fn capacity(&self) -> u64 {
        self.segment_size * self.ring_len
    }
}
