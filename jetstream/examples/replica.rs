//! Follows a JetStream log into a local `memlog::Log` and fans it out to
//! local streams at memory speed; prints, every second, how far each local
//! reader got:
//!
//! ```sh
//! cargo run -p memlog-jetstream --example replica -- nats://127.0.0.1:4222 events 8
//! ```
//!
//! Arguments: servers, stream, local readers (default 4).

use memlog_jetstream::{blocking::JetStreamLog, Error};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod args;

fn main() -> Result<(), Error> {
    let (servers, stream, readers) = args::parse();
    let readers: usize = readers.map_or(4, |n| n.parse().expect("a number of readers"));
    let log = JetStreamLog::builder(&servers, &stream).open_blocking()?;
    let replica = log.replica().start_blocking()?;
    let start = replica
        .range()
        .map_or(replica.next_offset(), |(first, _)| first);
    let seen: Vec<Arc<AtomicU64>> = (0..readers).map(|_| Arc::default()).collect();
    for count in &seen {
        let (count, mut local) = (count.clone(), replica.stream(start));
        std::thread::spawn(move || {
            for r in local.by_ref() {
                match r {
                    Ok(r) => count.store(r.offset + 1, Ordering::Relaxed),
                    Err(e) => eprintln!("local reader: {e}"),
                }
            }
        });
    }
    while replica.is_following() {
        std::thread::sleep(Duration::from_secs(1));
        let at: Vec<u64> = seen.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        println!(
            "replica holds {:?} (generation {}); local readers at {at:?}{}",
            replica.range(),
            replica.generation(),
            replica
                .last_error()
                .map_or(String::new(), |e| format!("; last error: {e}"))
        );
    }
    println!("the log was closed; the replica stopped");
    Ok(())
}
