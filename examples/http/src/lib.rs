//! An HTTP front for a memlog: the use case the Go library was written for.
//!
//! A background producer polls a pull-only "legacy API" every few
//! milliseconds and appends whatever batch it returns to a `Log<Bytes>`; HTTP
//! clients append records, read one by offset, or follow the log as
//! newline-delimited JSON from any retained offset, each at its own pace.
//! The binary (`src/main.rs`) serves it until Ctrl-C or SIGTERM:
//!
//! ```text
//! cargo run -p memlog-http-example [ADDR]
//! ```
//! `ADDR` (or the `MEMLOG_ADDR` environment variable) defaults to
//! `127.0.0.1:8080`.
//!
//! Routes:
//! - `POST /records`: appends the request body; `201 {"offset": N}`.
//! - `GET /records/{offset}`: one record as JSON; `404` if it is not written
//!   yet, `410` if it was purged.
//! - `GET /stream?from=N`: the records from `N` on (default: the earliest
//!   retained), one JSON object per line, as they arrive; `410` if `N` is
//!   already purged. A future `N` is not an error (where `/records/N` is
//!   `404`): the response stays open and sends from `N` once it is written.
//!   Any query parameter but `from` is `400`. If the client falls behind retention while streaming,
//!   the last line is the `out_of_range` error. When the client goes away the
//!   response body is dropped, and with it the async stream: no task is left.
//!
//! The client streams do not hold (`Lag::Hold`), on purpose: a client that
//! stops reading, a slow network or a hostile peer would then stop every
//! writer, the producer and `POST /records` alike. A remote consumer falls
//! behind explicitly (`out_of_range`) and resumes from its checkpoint with
//! `?from=`. Holding is for consumers inside the process whose progress the
//! service controls (see the demo), where retention can be sized for the
//! bursts and backpressure is the point.
//!
//! Every error answer is `{"error":"<kind>","message":"…"}` (memlog's
//! [`Error`] serialized, or one of this server's own kinds: `bad_request`,
//! `not_found`, `method_not_allowed`); the README's route table lists each
//! status.
//!
//! In the JSON records `created` is RFC 3339 with nanoseconds, and `data` is
//! the payload as a string when it is valid UTF-8, else
//! `{"base64":"…"}` (standard alphabet, padded): no byte is lost.
//!
//! Shutdown ([`serve`]): the log is closed first, so appends get `503`
//! `closed` while every open stream sends what was written and ends; then the
//! server stops accepting connections and returns once the last response is
//! out.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::StreamExt;
use memlog::{Error, Log, Offset, StartAt};
use serde::{Deserialize, Serialize, Serializer};
use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The default listening address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// The largest record `POST /records` accepts, in bytes; larger bodies get
/// `413 record_too_large`.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Most records one response-body chunk carries when many are ready at once.
const CHUNK_RECORDS: usize = 256;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The log behind every route.
    pub log: Log<Bytes>,
    streams: Arc<LiveStreams>,
}

/// The streaming responses whose body is still alive, and a wake-up for
/// whoever waits for the last one to end.
#[derive(Debug, Default)]
struct LiveStreams {
    count: AtomicUsize,
    none_left: Notify,
}

impl AppState {
    /// State over `log`, with no live streams.
    pub fn new(log: Log<Bytes>) -> Self {
        AppState {
            log,
            streams: Arc::default(),
        }
    }

    /// Streaming responses whose body is still alive.
    pub fn live_streams(&self) -> usize {
        self.streams.count.load(Ordering::SeqCst)
    }

    /// Closes the log, then waits until every streaming response has sent
    /// what was written and ended (a stream of a closed log drains and ends).
    pub async fn close_and_drain(&self) {
        self.log.close();
        loop {
            let none_left = self.streams.none_left.notified();
            tokio::pin!(none_left);
            // Registered before the check, so a last stream ending between
            // the check and the await still wakes us.
            none_left.as_mut().enable();
            if self.live_streams() == 0 {
                return;
            }
            none_left.await;
        }
    }
}

/// The log the example serves: 64 segments of 4096 records (about 260 000
/// records retained), records of at most [`MAX_RECORD_BYTES`].
pub fn new_log() -> Log<Bytes> {
    Log::builder()
        .segment_size(4096)
        .history_segments(63)
        .max_record_bytes(MAX_RECORD_BYTES)
        .build()
        .expect("a valid configuration")
}

/// The router: `POST /records`, `GET /records/{offset}`, `GET /stream`, and
/// JSON `404`/`405` answers for every other path or method.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/records", post(append))
        .route("/records/{offset}", get(read_one))
        .route("/stream", get(stream))
        // After the routes: it applies to those registered before it.
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_route)
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes, then shuts down
/// gracefully: closes the log, so that `POST /records` answers `503` while
/// every open stream sends what was written and ends
/// ([`AppState::close_and_drain`]); then stops accepting connections and
/// returns once every connection has finished.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let draining = state.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            draining.close_and_drain().await;
        })
        .await
}

/// A payload as the routes show it: a JSON string when it is valid UTF-8,
/// else `{"base64": "…"}`, so that no byte is lost.
#[derive(Debug)]
pub struct Payload(pub Bytes);

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => {
                let mut m = s.serialize_map(Some(1))?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(&self.0);
                m.serialize_entry("base64", &encoded)?;
                m.end()
            }
        }
    }
}

/// `{"error": kind, "message": message}` with `status`: the shape of
/// memlog's serialized [`Error`], for the errors that are not the log's.
fn json_error(status: StatusCode, kind: &str, message: impl Display) -> Response {
    let body = serde_json::json!({ "error": kind, "message": message.to_string() });
    (status, Json(body)).into_response()
}

/// A log error as a JSON response with the status that fits it.
fn error_response(e: Error) -> Response {
    let status = match e {
        Error::FutureOffset => StatusCode::NOT_FOUND,
        Error::OutOfRange => StatusCode::GONE,
        Error::RecordTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Closed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(e)).into_response()
}

/// An extractor's rejection (a malformed or negative offset) as JSON, with
/// the status axum gives it (400 for bad input).
fn rejected(status: StatusCode, text: String) -> Response {
    let kind = if status.is_client_error() {
        "bad_request"
    } else {
        "internal"
    };
    json_error(status, kind, text)
}

async fn no_route(method: Method, uri: Uri) -> Response {
    let message = format!("no route for {method} {}", uri.path());
    json_error(StatusCode::NOT_FOUND, "not_found", message)
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    let message = format!("{} does not take {method}", uri.path());
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    )
}

/// The request body, or the `413 record_too_large` that `Log::write` gives
/// an oversized record: at once when the declared `Content-Length` is over
/// [`MAX_RECORD_BYTES`] (`len` is that length), else as soon as a chunked
/// body passes it (`len` is what was received so far). Either way no more
/// than the limit and one frame is held in memory.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let max = MAX_RECORD_BYTES;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&len| len > max as u64) {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        return Err(error_response(Error::RecordTooLarge { len, max }));
    }
    let mut frames = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0;
    while let Some(chunk) = frames.next().await {
        let chunk = chunk.map_err(|e| {
            json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("reading the body: {e}"),
            )
        })?;
        len += chunk.len();
        if len > max {
            return Err(error_response(Error::RecordTooLarge { len, max }));
        }
        chunks.push(chunk);
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => Bytes::from(chunks.concat()),
    })
}

async fn append(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&headers, body).await {
        Ok(body) => body,
        Err(too_large) => return too_large,
    };
    match st.log.write(body) {
        Ok(offset) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "offset": offset })),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn read_one(
    State(st): State<AppState>,
    offset: Result<Path<Offset>, PathRejection>,
) -> Response {
    let offset = match offset {
        Ok(Path(offset)) => offset,
        Err(r) => return rejected(r.status(), r.body_text()),
    };
    match st.log.read(offset) {
        Ok(r) => Json(r.map(Payload)).into_response(),
        Err(e) => error_response(e),
    }
}

/// `?from=N`. Any other parameter is a `400 bad_request`, so that a typo
/// (`?form=5`) is an error instead of a silent replay from the earliest
/// offset; so is `from` given twice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// First offset to send; the earliest retained one if absent.
    pub from: Option<Offset>,
}

/// Counts a streaming response while its body is alive.
struct LiveStream(Arc<LiveStreams>);

impl LiveStream {
    fn new(streams: &Arc<LiveStreams>) -> Self {
        streams.count.fetch_add(1, Ordering::SeqCst);
        LiveStream(Arc::clone(streams))
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

async fn stream(
    State(st): State<AppState>,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(r) => return rejected(r.status(), r.body_text()),
    };
    let records = match q.from {
        // The purge point itself, not `range()`, which is briefly `None`
        // while a purge is being published past.
        None => st.log.stream_async_from(StartAt::Earliest),
        Some(from) => {
            let purged = st.log.range().is_some_and(|(first, _)| from < first);
            if purged || from < st.log.start_offset() {
                return error_response(Error::OutOfRange);
            }
            st.log.stream_async(from)
        }
    };
    let live = LiveStream::new(&st.streams);
    // Whatever is ready goes out in one chunk; when nothing is, the stream
    // parks the task on the log's waiters until a write wakes it. The body
    // owns the stream: when hyper drops the body (sent to its end, or the
    // client gone), the stream deregisters and `live` drops.
    let lines = records.ready_chunks(CHUNK_RECORDS).map(move |items| {
        let _alive = &live;
        let mut buf = Vec::with_capacity(items.len() * 96);
        for item in items {
            let written = match item {
                Ok(r) => serde_json::to_writer(&mut buf, &r.map(Payload)),
                // The stream ends after an error: it is the last line.
                Err(e) => serde_json::to_writer(&mut buf, &e),
            };
            written.expect("records and errors serialize");
            buf.push(b'\n');
        }
        Ok::<_, Infallible>(Bytes::from(buf))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// A stand-in for a pull-only upstream: each poll returns whatever happened
/// since the last one (here, a pseudo-random batch of 0 to 31 readings).
#[derive(Debug, Default)]
pub struct LegacyApi {
    seq: u64,
    rng: u64,
}

impl LegacyApi {
    /// Everything new since the last poll.
    pub fn poll(&mut self) -> Vec<Bytes> {
        // xorshift: enough variety for a demo, no dependency.
        self.rng ^= self.rng << 13 | 0x9e37_79b9;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let n = self.rng % 32;
        (0..n)
            .map(|_| {
                self.seq += 1;
                let sensor = self.seq % 8;
                let milli = (self.seq * 7919 + self.rng) % 40_000;
                Bytes::from(format!(
                    "reading {} sensor-{sensor} {}.{:03}C",
                    self.seq,
                    milli / 1000,
                    milli % 1000
                ))
            })
            .collect()
    }
}

/// Polls `api` every `every` and appends each batch to `log` with one
/// `write_batch`, until the log is closed.
pub fn spawn_producer(
    log: Log<Bytes>,
    mut api: LegacyApi,
    every: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || loop {
        let batch = api.poll();
        match log.write_batch(batch) {
            Ok(_) => {}
            Err(Error::Closed) => return,
            Err(e) => eprintln!("producer: {e}"),
        }
        std::thread::sleep(every);
    })
}

/// The address from the first argument, else `MEMLOG_ADDR`, else the default.
pub fn listen_addr() -> String {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("MEMLOG_ADDR").ok())
        .unwrap_or_else(|| DEFAULT_ADDR.to_string())
}
