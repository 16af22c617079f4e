//! The examples' command line: servers, stream, then one more argument.

/// `(servers, stream, third argument)`, with defaults
/// `nats://127.0.0.1:4222` and `events`.
pub fn parse() -> (String, String, Option<String>) {
    let mut args = std::env::args().skip(1);
    let servers = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let stream = args.next().unwrap_or_else(|| "events".into());
    (servers, stream, args.next())
}
