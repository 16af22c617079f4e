//! [`Builder`]: where the log lives, how long it keeps records, and how long
//! a call may take.

use crate::log::{JetStreamLog, Shared};
use crate::nats::{retry, Failure};
use crate::Error;
use async_nats::jetstream::{self, stream};
use async_nats::ServerAddr;
use memlog::Offset;
use std::fmt;
use std::time::Duration;

/// Written into the stream's description so that every process that opens
/// the stream agrees on its start offset.
const START_TAG: &str = "memlog start_offset=";

/// The headers a write adds (the `Nats-Msg-Id` header and its framing) stay
/// within this many bytes; the default `max_record_bytes` leaves them room
/// in the server's `max_payload`.
pub(crate) const HEADER_ROOM: usize = 128;

/// How long calls may take. Every call of the crate is bounded by one of
/// these; none waits for ever on the network.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// A whole operation, retries included.
    pub(crate) op: Duration,
    /// One request or publish acknowledgement.
    pub(crate) request: Duration,
    /// Connecting, per attempt.
    pub(crate) connect: Duration,
    /// How often an idle stream asks the server whether the stream was
    /// sealed or purged past it, and whether its consumer is still alive.
    pub(crate) poll: Duration,
}

/// Configures a [`JetStreamLog`]: the servers, the stream, its retention and
/// the time limits. Start with [`JetStreamLog::builder`], end with
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
            duplicate_window: Duration::from_secs(120),
            timeouts: Timeouts {
                op: Duration::from_secs(10),
                request: Duration::from_secs(2),
                connect: Duration::from_secs(3),
                poll: Duration::from_secs(1),
            },
        }
    }

    /// The subject the log publishes on (default: the stream's name). The
    /// stream is created with this one subject.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_string());
        self
    }

    /// The offset of the stream's first message (default 0, or what the
    /// stream was created with). Offset = start offset + stream sequence − 1.
    /// Stored in the stream's description, so other processes that open the
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
    /// and ceiling: the server's `max_payload` less 128 bytes for headers).
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

    /// Connects, creates the stream if it is missing, and returns the log. An
    /// existing stream must have this builder's subject, retention and start
    /// offset, else `InvalidConfig` says what differs.
    ///
    /// # Errors
    /// [`Error::Connect`], `InvalidConfig`, [`Error::Unavailable`], [`Error::Server`].
    pub async fn create(self) -> Result<JetStreamLog, Error> {
        self.check()?;
        let (client, js) = self.connect().await?;
        let name = self.stream.clone();
        let budget = self.timeouts.op;
        let stream = retry("create", budget, || async {
            match js.get_stream(&name).await {
                Ok(s) => Ok(s),
                Err(e) => match Failure::of(&name, &e) {
                    Failure::Fatal(Error::StreamNotFound { .. }) => {
                        match js.create_stream(self.stream_config()).await {
                            Ok(s) => Ok(s),
                            // Created by someone else meanwhile: get it next time.
                            Err(e) => match Failure::of(&name, &e) {
                                Failure::Fatal(Error::Server { code: 10058, .. }) => {
                                    Err(Failure::Transient("created concurrently".into()))
                                }
                                f => Err(f),
                            },
                        }
                    }
                    f => Err(f),
                },
            }
        })
        .await?;
        self.same_retention(&stream.cached_info().config)?;
        self.finish(client, js, stream)
    }

    /// Connects to an existing stream and returns the log; its retention and
    /// start offset are the stream's (a `start_offset` given here must match).
    ///
    /// # Errors
    /// [`Error::StreamNotFound`], [`Error::Connect`], [`Error::Unavailable`].
    pub async fn open(self) -> Result<JetStreamLog, Error> {
        self.check()?;
        let (client, js) = self.connect().await?;
        let name = self.stream.clone();
        let stream = retry("open", self.timeouts.op, || async {
            js.get_stream(&name)
                .await
                .map_err(|e| Failure::of(&name, &e))
        })
        .await?;
        self.finish(client, js, stream)
    }

    /// [`create`](Builder::create) for code without an async runtime: the log
    /// runs on its own small runtime, as `reqwest::blocking` does.
    ///
    /// # Errors
    /// As [`create`](Builder::create).
    pub fn create_blocking(self) -> Result<crate::blocking::JetStreamLog, Error> {
        crate::blocking::JetStreamLog::build(self, true)
    }

    /// [`open`](Builder::open) for code without an async runtime.
    ///
    /// # Errors
    /// As [`open`](Builder::open).
    pub fn open_blocking(self) -> Result<crate::blocking::JetStreamLog, Error> {
        crate::blocking::JetStreamLog::build(self, false)
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

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![self.subject_name()],
            max_messages: self.max_messages().map_or(-1, |n| n as i64),
            discard: stream::DiscardPolicy::Old,
            storage: if self.memory {
                stream::StorageType::Memory
            } else {
                stream::StorageType::File
            },
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            allow_direct: true,
            // Sequences stay dense inside the retained range: the only holes
            // are at the front, where retention purges.
            deny_delete: true,
            description: Some(format!("{START_TAG}{}", self.start.unwrap_or(0))),
            ..Default::default()
        }
    }

    /// Checks an existing stream against the builder and makes the log.
    fn finish(
        self,
        client: async_nats::Client,
        js: jetstream::Context,
        stream: stream::Stream,
    ) -> Result<JetStreamLog, Error> {
        let cfg = stream.cached_info().config.clone();
        let start = cfg
            .description
            .as_deref()
            .and_then(|d| d.strip_prefix(START_TAG))
            .map(|n| {
                n.parse::<Offset>().map_err(|_| {
                    Error::invalid(format!("stream description {n:?}: bad start offset"))
                })
            })
            .transpose()?
            .unwrap_or(0);
        if let Some(want) = self.start {
            if want != start {
                return Err(Error::invalid(format!(
                    "stream {} starts at offset {start}, not {want}",
                    self.stream
                )));
            }
        }
        let subject = self.subject_name();
        if !cfg.subjects.contains(&subject) {
            return Err(Error::invalid(format!(
                "stream {} has subjects {:?}, not {subject:?}",
                self.stream, cfg.subjects
            )));
        }
        let server_max = client.server_info().max_payload.saturating_sub(HEADER_ROOM);
        let max_record = self.max_record.unwrap_or(server_max).min(server_max);
        Ok(JetStreamLog::from_shared(Shared::new(
            client,
            js,
            stream,
            subject,
            start,
            cfg,
            max_record,
            self.timeouts,
        )))
    }

    /// Checks, for `create`, that an existing stream keeps what the builder asks.
    fn same_retention(&self, cfg: &stream::Config) -> Result<(), Error> {
        let want = self.max_messages().map_or(-1, |n| n as i64);
        if cfg.max_messages != want {
            return Err(Error::invalid(format!(
                "stream {} keeps max_messages {}, this builder asks for {want}",
                self.stream, cfg.max_messages
            )));
        }
        Ok(())
    }
}
