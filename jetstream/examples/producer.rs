//! Writes records to a JetStream log, as one of any number of producer
//! processes. Run a server first (see the crate README), then:
//!
//! ```sh
//! cargo run -p memlog-jetstream --example producer -- nats://127.0.0.1:4222 events 1000
//! ```
//!
//! Arguments: servers (comma-separated), stream, how many records (default:
//! until killed). It writes a batch of 10 every 100 ms and prints the
//! offsets the batches got.

use memlog_jetstream::{blocking::JetStreamLog, Error};
use std::time::Duration;

mod args;

fn main() -> Result<(), Error> {
    let (servers, stream, count) = args::parse();
    let count: u64 = count.map_or(u64::MAX, |n| n.parse().expect("a number of records"));
    // Every producer and consumer builds the same log: the first one creates
    // the stream. It keeps the last 100 000 records.
    let log = JetStreamLog::builder(&servers, &stream)
        .segment_size(10_000)
        .history_segments(9)
        .create_blocking()?;
    let me = std::process::id();
    let mut i = 0;
    while i < count {
        let n = (count - i).min(10);
        let offsets =
            log.write_batch((i..i + n).map(|k| format!("reading {k} from producer {me}")))?;
        println!(
            "producer {me}: records {i}..{} at offsets {:?}..={:?}",
            i + n,
            offsets.first(),
            offsets.last()
        );
        i += n;
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
