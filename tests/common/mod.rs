//! Helpers shared by the integration tests.

use memlog::Log;

/// A `Log<u64>` with the given start offset, segment size and history.
pub fn log_with(start: u64, seg: usize, hist: usize) -> Log<u64> {
    Log::builder()
        .start_offset(start)
        .segment_size(seg)
        .history_segments(hist)
        .build()
        .unwrap()
}
