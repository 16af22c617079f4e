//! [`Builder`]: where the log lives, how long it keeps records, and how long
//! a call may take.

use crate::nats::{api, retry, Failure};
use crate::shared::{Facts, Shared, Timeouts, HEADER_ROOM};
use crate::Error;
use async_nats::jetstream;
use async_nats::ServerAddr;
use memlog::Offset;
use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

/// The stream metadata key (nats-server 2.10+) that holds the start offset,
/// so that every process that opens the stream agrees on it.
const START_KEY: &str = "memlog.start_offset";
/// Where the start offset was kept before metadata existed (and still is on
/// 2.9), read when the metadata has none: the stream's description.
const START_TAG: &str = "memlog start_offset=";
/// JetStream's error code for "stream name already in use".
const STREAM_EXISTS: u64 = 10058;

/// Configures a [`JetStreamLog`](crate::JetStreamLog): the servers, the
/// stream, its retention and the time limits. Start with
/// [`JetStreamLog::builder`](crate::JetStreamLog::builder), end with
/// [`create`](Builder::create) (make the stream if it is missing) or
/// [`open`](Builder::open) (it must exist), or their `_blocking` forms.
///
/// Retention: memlog keeps the active segment plus `history_segments` sealed
/// ones and purges a whole segment at a time; JetStream purges one message at
/// a time. The stream keeps the last `segment_size * (history_segments + 1)`
/// records (`max_messages`, discard old): as many as a full memlog of the same
/// settings, and never fewer than memlog keeps.
///
/// ```
/// # let server = memlog_jetstream::testing::Server::start()?;
/// # let url = server.url();
/// let log = memlog_jetstream::JetStreamLog::builder(&url, "orders")
///     .start_offset(100)
///     .segment_size(10)
///     .history_segments(1)
///     .create_blocking()?;
/// for i in 0..50u32 {
///     log.write(i.to_string())?;
/// }
/// // JetStream kept the last 20 records; memlog's range would be the same here.
/// assert_eq!(log.range()?, Some((130, 149)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Builder {
    pub(crate) servers: String,
    pub(crate) stream: String,
    subject: Option<String>,
    start: Option<Offset>,
    segment_size: usize,
    history: usize,
    unlimited: bool,
    max_record: Option<usize>,
    replicas: usize,
    memory: bool,
    atomic: bool,
    duplicate_window: Duration,
    pub(crate) timeouts: Timeouts,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("servers", &self.servers)
            .field("stream", &self.stream)
            .field("subject", &self.subject_name())
            .field("start_offset", &self.start)
            .field("max_messages", &self.max_messages())
            .field("replicas", &self.replicas)
            .field("memory_storage", &self.memory)
            .field("atomic_batches", &self.atomic)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl Builder {
    pub(crate) fn new(servers: &str, stream: &str) -> Builder {
        Builder {
            servers: servers.to_string(),
            stream: stream.to_string(),
            subject: None,
            start: None,
            segment_size: memlog::DEFAULT_SEGMENT_SIZE,
            history: memlog::DEFAULT_HISTORY_SEGMENTS,
            unlimited: false,
            max_record: None,
            replicas: 1,
            memory: false,
            atomic: true,
            duplicate_window: Duration::from_secs(120),
            timeouts: Timeouts {
                op: Duration::from_secs(10),
                request: Duration::from_secs(2),
                connect: Duration::from_secs(3),
                poll: Duration::from_secs(1),
            },
        }
    }

    /// The subject the log publishes on (default: the stream's name): a
    /// literal subject (wildcards `*` and `>` are refused with
    /// `InvalidConfig`). A new stream is created with this one subject; an
    /// existing stream must have a subject that matches it (`cs.a` for a
    /// stream of `cs.*` or `cs.>`). Every message of the stream, whatever
    /// its subject, is a record of the log.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    /// The offset of the stream's first message (default 0, or what the
    /// stream was created with). Offset = start offset + stream sequence − 1.
    /// Stored in the stream's metadata (`memlog.start_offset`; on nats-server
    /// 2.9, which has no metadata, in its description, which is also read
    /// when the metadata has none), so other processes that open the
    /// stream use it too; opening with a different one fails `InvalidConfig`.
    pub fn start_offset(mut self, start: Offset) -> Self {
        self.start = Some(start);
        self
    }

    /// memlog's segment size (default 1024); retention is
    /// `segment_size * (history_segments + 1)` messages.
    pub fn segment_size(mut self, n: usize) -> Self {
        self.segment_size = n;
        self.unlimited = false;
        self
    }

    /// memlog's history segments (default 1); see [`segment_size`](Builder::segment_size).
    pub fn history_segments(mut self, n: usize) -> Self {
        self.history = n;
        self.unlimited = false;
        self
    }

    /// Keep every message (no `max_messages`): what memlog can not do.
    pub fn retain_all(mut self) -> Self {
        self.unlimited = true;
        self
    }

    /// Refuse payloads longer than `n` bytes with `RecordTooLarge` (default
    /// and ceiling: the server's `max_payload`, or the stream's
    /// `max_msg_size` if smaller, less 256 bytes for headers).
    pub fn max_record_bytes(mut self, n: usize) -> Self {
        self.max_record = Some(n);
        self
    }

    /// How many servers hold a copy of the stream (1 to 5, default 1); 3
    /// survives the loss of one server.
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n;
        self
    }

    /// Whether `write_batch` uses JetStream's atomic batches where the
    /// server has them (default `true`): nats-server 2.12+ and a stream
    /// with `allow_atomic` (this crate creates its streams with it there).
    /// `false` sends every batch as pipelined single publishes, as on older
    /// servers (see [`JetStreamLog::write_batch`](crate::JetStreamLog::write_batch)).
    pub fn atomic_batches(mut self, yes: bool) -> Self {
        self.atomic = yes;
        self
    }

    /// Keep the stream in the servers' memory instead of files (default:
    /// files, which survive a server restart).
    pub fn memory_storage(mut self, yes: bool) -> Self {
        self.memory = yes;
        self
    }

    /// How long the server remembers message ids to drop a retried write's
    /// duplicate (default 2 minutes). Must be longer than [`timeout`](Builder::timeout).
    pub fn duplicate_window(mut self, d: Duration) -> Self {
        self.duplicate_window = d;
        self
    }

    /// The most one call may take, retries included (default 10 s); after
    /// it, the call fails [`Error::Unavailable`].
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeouts.op = d;
        self
    }

    /// The most one request or acknowledgement may take before it is retried
    /// (default 2 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.timeouts.request = d;
        self
    }

    /// The most connecting may take (default 3 s); a server that is down at
    /// connect gives [`Error::Connect`].
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.timeouts.connect = d;
        self
    }

    /// How often an idle stream checks whether the stream was sealed or
    /// purged past it (default 1 s). A close by another process ends a
    /// caught-up stream within about this long.
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.timeouts.poll = d;
        self
    }

    fn subject_name(&self) -> String {
        self.subject.clone().unwrap_or_else(|| self.stream.clone())
    }

    fn max_messages(&self) -> Option<u64> {
        if self.unlimited {
            return None;
        }
        (self.segment_size as u64).checked_mul(self.history as u64 + 1)
    }

    fn check(&self) -> Result<(), Error> {
        check_subject(&self.subject_name())?;
        if self.segment_size == 0 && !self.unlimited {
            return Err(Error::invalid("segment_size must be at least 1"));
        }
        match self.max_messages() {
            Some(n) if n > i64::MAX as u64 => {
                return Err(Error::invalid(format!(
                    "segment_size * (history_segments + 1) = {n} is more than JetStream's max_messages allows ({})",
                    i64::MAX
                )))
            }
            None if !self.unlimited => {
                return Err(Error::invalid(
                    "segment_size * (history_segments + 1) overflows",
                ))
            }
            _ => {}
        }
        if let Some(s) = self.start {
            if s > memlog::MAX_START_OFFSET {
                return Err(Error::invalid(format!(
                    "start_offset {s} is above the maximum {}",
                    memlog::MAX_START_OFFSET
                )));
            }
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::invalid(format!(
                "replicas must be 1 to 5, not {}",
                self.replicas
            )));
        }
        if self.timeouts.op >= self.duplicate_window {
            return Err(Error::invalid(format!(
                "timeout ({:?}) must be shorter than duplicate_window ({:?}), or a retried write could land twice",
                self.timeouts.op, self.duplicate_window
            )));
        }
        for (name, d) in [
            ("timeout", self.timeouts.op),
            ("request_timeout", self.timeouts.request),
            ("connect_timeout", self.timeouts.connect),
            ("poll_interval", self.timeouts.poll),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(format!("{name} must be more than zero")));
            }
        }
        Ok(())
    }

    fn addrs(&self) -> Result<Vec<ServerAddr>, Error> {
        self.servers
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<ServerAddr>()
                    .map_err(|e| Error::invalid(format!("server address {:?}: {e}", s.trim())))
            })
            .collect()
    }

    async fn connect(&self) -> Result<(async_nats::Client, jetstream::Context), Error> {
        let addrs = self.addrs()?;
        let n = addrs.len() as u32;
        let connect = async_nats::ConnectOptions::new()
            .name("memlog-jetstream")
            .connection_timeout(self.timeouts.connect)
            .request_timeout(Some(self.timeouts.request))
            // Reconnect fast: a restarted server or a new leader is usually
            // back within a second or two.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(50 * 2u64.pow(attempts.min(5) as u32))
                    .min(Duration::from_secs(1))
            })
            .connect(addrs);
        let client =
            match tokio::time::timeout(self.timeouts.connect * n + Duration::from_secs(1), connect)
                .await
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    return Err(Error::Connect {
                        servers: self.servers.clone(),
                        detail: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(Error::Connect {
                        servers: self.servers.clone(),
                        detail: format!("no answer within {:?}", self.timeouts.connect * n),
                    })
                }
            };
        let js = jetstream::ContextBuilder::new()
            .timeout(self.timeouts.request)
            // Each write_batch bounds its own outstanding acks; a small
            // shared pool could stall batches waiting for each other.
            .max_ack_inflight(1 << 24)
            .backpressure_on_inflight(true)
            .build(client.clone());
        Ok((client, js))
    }

    /// Connects, gets the stream (creates it first if `create` and it is
    /// missing), checks it, and returns what every handle of the log shares.
    /// The stream's config is read raw: fields this client does not model
    /// (metadata, `allow_atomic`) are read, and nothing is dropped.
    pub(crate) async fn connect_shared(self, create: bool) -> Result<Shared, Error> {
        self.check()?;
        let (client, js) = self.connect().await?;
        let version = server_version(&client.server_info().version);
        let name = self.stream.clone();
        let info = retry(
            if create { "create" } else { "open" },
            self.timeouts.op,
            || async {
                let subject = format!("STREAM.INFO.{name}");
                match api(&js, &name, subject, &Value::Null).await {
                    Err(Failure::Fatal(Error::StreamNotFound { .. })) if create => {
                        let cfg = self.stream_config(version);
                        match api(&js, &name, format!("STREAM.CREATE.{name}"), &cfg).await {
                            // Created by someone else meanwhile: get it next time.
                            Err(Failure::Fatal(Error::Server {
                                code: STREAM_EXISTS,
                                ..
                            })) => Err(Failure::Transient("created concurrently".into())),
                            r => r,
                        }
                    }
                    r => r,
                }
            },
        )
        .await?;
        let cfg = info.get("config").cloned().unwrap_or(Value::Null);
        if create {
            self.same_retention(&cfg)?;
        }
        let facts = self.facts(&cfg, version, client.server_info().max_payload)?;
        let stream = js
            .get_stream_no_info(&name)
            .await
            .map_err(|e| Error::invalid(format!("stream name {name:?}: {e}")))?;
        Ok(Shared::new(client, js, stream, facts, self.timeouts))
    }

    /// A new stream's config, as the JSON the server takes: only what this
    /// crate sets (the server fills in its defaults).
    fn stream_config(&self, version: (u64, u64)) -> Value {
        let start = self.start.unwrap_or(0);
        let mut cfg = json!({
            "name": self.stream,
            "subjects": [self.subject_name()],
            "retention": "limits",
            "max_msgs": self.max_messages().map_or(-1, |n| n as i64),
            "discard": "old",
            "storage": if self.memory { "memory" } else { "file" },
            "num_replicas": self.replicas,
            "duplicate_window": u64::try_from(self.duplicate_window.as_nanos()).unwrap_or(u64::MAX),
            "allow_direct": true,
            // Sequences stay dense inside the retained range: the only holes
            // are at the front, where retention purges.
            "deny_delete": true,
            // Kept for 2.9 (no metadata) and for earlier versions of this
            // crate; the metadata wins where both exist.
            "description": format!("{START_TAG}{start}"),
        });
        if version >= (2, 10) {
            cfg["metadata"] = json!({ START_KEY: start.to_string() });
        }
        if version >= (2, 12) {
            cfg["allow_atomic"] = true.into();
        }
        cfg
    }

    /// Checks an existing stream's config against the builder and reads
    /// what the log needs of it.
    fn facts(&self, cfg: &Value, version: (u64, u64), max_payload: usize) -> Result<Facts, Error> {
        let name = &self.stream;
        if cfg.get("sealed").and_then(Value::as_bool) == Some(true) {
            return Err(memlog::Error::Closed.into());
        }
        match cfg
            .get("retention")
            .and_then(Value::as_str)
            .unwrap_or("limits")
        {
            "limits" => {}
            other => {
                return Err(Error::invalid(format!(
                    "stream {name} has {other} retention: the server deletes messages as \
                     consumers read them (interest) or acknowledge them (workqueue), so \
                     offsets can not stay dense; a memlog log needs limits retention"
                )))
            }
        }
        let start = start_offset(cfg)?;
        if let Some(want) = self.start {
            if want != start {
                return Err(Error::invalid(format!(
                    "stream {name} starts at offset {start}, not {want}"
                )));
            }
        }
        let subject = self.subject_name();
        let subjects: Vec<&str> = cfg
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !subjects.iter().any(|p| subject_matches(p, &subject)) {
            return Err(Error::invalid(format!(
                "stream {name} has subjects {subjects:?}, none of which matches {subject:?}"
            )));
        }
        let int = |key: &str| cfg.get(key).and_then(Value::as_i64).unwrap_or(-1);
        let mut ceiling = max_payload;
        if let Ok(m) = usize::try_from(int("max_msg_size")) {
            ceiling = ceiling.min(m);
        }
        let ceiling = ceiling.saturating_sub(HEADER_ROOM);
        let flag = |key: &str| cfg.get(key).and_then(Value::as_bool) == Some(true);
        Ok(Facts {
            name: name.clone(),
            subject,
            start,
            capacity: u64::try_from(int("max_msgs")).ok(),
            max_record: self.max_record.unwrap_or(ceiling).min(ceiling),
            direct: flag("allow_direct"),
            atomic: self.atomic && version >= (2, 12) && flag("allow_atomic"),
        })
    }

    /// Checks, for `create`, that an existing stream keeps what the builder asks.
    fn same_retention(&self, cfg: &Value) -> Result<(), Error> {
        let want = self.max_messages().map_or(-1, |n| n as i64);
        let has = cfg.get("max_msgs").and_then(Value::as_i64).unwrap_or(-1);
        if has != want {
            return Err(Error::invalid(format!(
                "stream {} keeps max_messages {has}, this builder asks for {want}",
                self.stream
            )));
        }
        Ok(())
    }
}

/// The start offset kept in the stream's config: its metadata, else (a
/// stream made on 2.9, or by an earlier version of this crate) its
/// description, else 0.
fn start_offset(cfg: &Value) -> Result<Offset, Error> {
    let bad = |n: &str| Error::invalid(format!("stream config: bad start offset {n:?}"));
    if let Some(n) = cfg
        .get("metadata")
        .and_then(|m| m.get(START_KEY))
        .and_then(Value::as_str)
    {
        return n.parse().map_err(|_| bad(n));
    }
    match cfg
        .get("description")
        .and_then(Value::as_str)
        .and_then(|d| d.strip_prefix(START_TAG))
    {
        Some(n) => n.parse().map_err(|_| bad(n)),
        None => Ok(0),
    }
}

/// `(major, minor)` of a server version such as `2.15.1` (`(0, 0)` if it
/// does not parse: every newer feature stays off).
pub(crate) fn server_version(v: &str) -> (u64, u64) {
    let mut parts = v.trim_start_matches('v').split(['.', '-']);
    let mut next = || parts.next().and_then(|p| p.parse().ok());
    match (next(), next()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => (0, 0),
    }
}

/// Whether a literal `subject` is among those the stream subject `pattern`
/// names: tokens separated by `.`, `*` matching one token, a final `>` one
/// or more.
pub(crate) fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Checks that `subject` is a literal NATS subject a log can publish on.
fn check_subject(subject: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::invalid(format!("subject {subject:?}: {why}")));
    if subject.is_empty() || subject.split('.').any(str::is_empty) {
        return bad("empty token");
    }
    if subject.chars().any(char::is_whitespace) {
        return bad("white space");
    }
    if subject.split('.').any(|t| t == "*" || t == ">") {
        return bad("a log publishes on a literal subject, not a wildcard");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_as_nats_does() {
        for (p, s, yes) in [
            ("cs.*", "cs.a", true),
            ("cs.*", "cs.a.b", false),
            ("cs.*", "cs", false),
            ("cs.>", "cs.a.b", true),
            ("cs.>", "cs", false),
            ("cs", "cs", true),
            ("cs", "cs.a", false),
            ("*.a", "x.a", true),
            (">", "x", true),
        ] {
            assert_eq!(subject_matches(p, s), yes, "{p} ~ {s}");
        }
        assert!(check_subject("cs.a").is_ok());
        for s in ["cs.*", "cs.>", "", "a..b", "a b", ">"] {
            assert!(check_subject(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn versions_and_start_offsets_parse() {
        assert_eq!(server_version("2.15.1"), (2, 15));
        assert_eq!(server_version("v2.9.10"), (2, 9));
        assert_eq!(server_version("2.11.0-RC.1"), (2, 11));
        assert_eq!(server_version("dev"), (0, 0));
        let both = json!({"metadata": {START_KEY: "7"}, "description": format!("{START_TAG}9")});
        assert_eq!(start_offset(&both).unwrap(), 7);
        let old = json!({"description": format!("{START_TAG}9")});
        assert_eq!(start_offset(&old).unwrap(), 9);
        assert_eq!(start_offset(&json!({"description": "edited"})).unwrap(), 0);
        assert!(start_offset(&json!({"metadata": {START_KEY: "x"}})).is_err());
    }
}
