//! An HTTP front for a memlog: the use case the Go library was written for.
//!
//! A background producer polls a pull-only "legacy API" every few
//! milliseconds and appends whatever batch it returns to a `Log<Bytes>`; HTTP
//! clients append records, read one by offset, or follow the log as
//! newline-delimited JSON from any retained offset, each at its own pace.
//!
//! ```text
//! cargo run --example http_stream --features async,serde [ADDR]
//! ```
//! `ADDR` (or the `MEMLOG_ADDR` environment variable) defaults to
//! `127.0.0.1:8080`.
//!
//! Routes:
//! - `POST /records`: appends the request body; `201 {"offset": N}`.
//! - `GET /records/{offset}`: one record as JSON; `404` if it is not written
//!   yet, `410` if it was purged, with the error as JSON
//!   (`{"error":"out_of_range","message":"…"}`).
//! - `GET /stream?from=N`: the records from `N` on (default: the earliest
//!   retained), one JSON object per line, as they arrive; `410` if `N` is
//!   already purged. If the client falls behind retention while streaming,
//!   the last line is the `out_of_range` error. When the client goes away the
//!   response body is dropped, and with it the async stream: no task is left.
//!
//! In the JSON records, `data` is the payload as UTF-8 text (invalid bytes
//! replaced); `created` is RFC 3339 with nanoseconds.
//!
//! The integration test (`tests/http_stream.rs`) includes this file as a
//! module and drives [`app`] over real HTTP.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use memlog::{Error, Log, Offset, Record};
use serde::Deserialize;
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The default listening address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Most records one response-body chunk carries when many are ready at once.
const CHUNK_RECORDS: usize = 256;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The log behind every route.
    pub log: Log<Bytes>,
    /// Streaming responses whose body is still alive (for tests and metrics).
    pub live_streams: Arc<AtomicUsize>,
}

impl AppState {
    /// State over `log`, with no live streams.
    pub fn new(log: Log<Bytes>) -> Self {
        AppState {
            log,
            live_streams: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// The log the example serves: 64 segments of 4096 records (about 260 000
/// records retained), records of at most 64 KiB.
pub fn new_log() -> Log<Bytes> {
    Log::builder()
        .segment_size(4096)
        .history_segments(63)
        .max_record_bytes(64 * 1024)
        .build()
        .expect("a valid configuration")
}

/// The router: `POST /records`, `GET /records/{offset}`, `GET /stream`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/records", post(append))
        .route("/records/{offset}", get(read_one))
        .route("/stream", get(stream))
        .with_state(state)
}

/// Serves [`app`] on `listener` until the server fails.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, app(state)).await
}

/// A record as the routes show it: the payload as text.
fn as_text(r: Record<Bytes>) -> Record<String> {
    r.map(|d| match String::from_utf8_lossy(&d) {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => s,
    })
}

/// An error as a JSON response with the status that fits it.
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

async fn append(State(st): State<AppState>, body: Bytes) -> Response {
    match st.log.write(body) {
        Ok(offset) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "offset": offset })),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn read_one(State(st): State<AppState>, Path(offset): Path<Offset>) -> Response {
    match st.log.read(offset) {
        Ok(r) => Json(as_text(r)).into_response(),
        Err(e) => error_response(e),
    }
}

/// `?from=N`.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// First offset to send; the earliest retained one if absent.
    pub from: Option<Offset>,
}

/// Counts a streaming response while its body is alive.
struct LiveStream(Arc<AtomicUsize>);

impl LiveStream {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        LiveStream(Arc::clone(count))
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn stream(State(st): State<AppState>, Query(q): Query<StreamQuery>) -> Response {
    let range = st.log.range();
    let from = q.from.unwrap_or_else(|| match range {
        Some((first, _)) => first,
        None => st.log.next_offset(),
    });
    if range.is_some_and(|(first, _)| from < first) || from < st.log.start_offset() {
        return error_response(Error::OutOfRange);
    }
    let live = LiveStream::new(&st.live_streams);
    // Whatever is ready goes out in one chunk; when nothing is, the stream
    // parks the task on the log's waiters until a write wakes it. The body
    // owns the stream: when hyper drops the body (client gone), the stream
    // deregisters and `live` drops.
    let lines = st
        .log
        .stream_async(from)
        .ready_chunks(CHUNK_RECORDS)
        .map(move |items| {
            let _alive = &live;
            let mut buf = Vec::with_capacity(items.len() * 96);
            for item in items {
                let written = match item {
                    Ok(r) => serde_json::to_writer(&mut buf, &as_text(r)),
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = listen_addr();
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    let state = AppState::new(new_log());
    let _producer = spawn_producer(
        state.log.clone(),
        LegacyApi::default(),
        Duration::from_millis(5),
    );
    println!("memlog HTTP example listening on http://{addr}");
    println!("  follow the log:    curl -N 'http://{addr}/stream?from=0'");
    println!("  append a record:   curl -X POST --data 'hello' http://{addr}/records");
    println!("  read one record:   curl http://{addr}/records/0");
    println!("  a future offset:   curl -i http://{addr}/records/999999999   (404)");
    serve(listener, state).await
}
