//! Follows a JetStream log from an offset and prints each record, as one of
//! any number of consumer processes, each at its own pace:
//!
//! ```sh
//! cargo run -p memlog-jetstream --example consumer -- nats://127.0.0.1:4222 events 0
//! ```
//!
//! Arguments: servers, stream, start offset (default: the earliest retained).
//! It opens an existing stream: run a producer first, which creates it.
//! If it falls behind retention it says so and resumes from the earliest
//! retained offset; it never skips silently.

use memlog_jetstream::{blocking::JetStreamLog, Error};

mod args;

fn main() -> Result<(), Error> {
    let (servers, stream, from) = args::parse();
    let log = match JetStreamLog::builder(&servers, &stream).open_blocking() {
        Err(e @ Error::StreamNotFound { .. }) => {
            eprintln!("{e}: run a producer first, which creates the stream");
            return Err(e);
        }
        log => log?,
    };
    let mut from = match from {
        Some(n) => n.parse().expect("an offset"),
        None => log.range()?.map_or(log.start_offset(), |(first, _)| first),
    };
    loop {
        let mut stream = log.stream(from);
        for r in stream.by_ref() {
            match r {
                Ok(r) => println!("{} {}", r.offset, String::from_utf8_lossy(&r.data)),
                Err(e) if e == memlog::Error::OutOfRange => {
                    let (first, _) = log.range()?.unwrap_or((log.start_offset(), 0));
                    eprintln!(
                        "fell behind retention at {}: resuming at {first}",
                        stream.next_offset()
                    );
                    from = first;
                    break;
                }
                // The servers were unreachable for a while: keep waiting.
                Err(e @ Error::Unavailable { .. }) => eprintln!("{e}"),
                Err(e) => return Err(e),
            }
        }
        if stream.ended() != Some(&memlog::Error::OutOfRange.into()) {
            eprintln!("the log was closed");
            return Ok(());
        }
    }
}
