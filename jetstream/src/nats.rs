//! Client errors sorted into "try again" and "final", and the retry loop
//! that bounds every operation by its deadline.

use crate::Error;
use async_nats::jetstream;
use std::future::Future;
use std::time::{Duration, Instant};

/// JetStream's error code for "invalid operation on sealed stream".
pub(crate) const SEALED: u64 = 10109;
/// JetStream's error code for "stream not found".
const STREAM_NOT_FOUND: u64 = 10059;
/// JetStream's error codes for a cluster that is not ready yet, or is
/// changing leaders: "incomplete results", "no suitable peers for
/// placement", "not assigned to this server", "JetStream system temporarily
/// unavailable", "can not handle request" (not the leader), "stream
/// offline" (also with a reason), "consumer offline". Each clears once the
/// cluster settles.
const CLUSTER_NOT_READY: [u64; 8] = [10004, 10005, 10007, 10008, 10009, 10118, 10119, 10194];
/// JetStream's error code for "message size exceeds maximum allowed".
pub(crate) const MESSAGE_TOO_LARGE: u64 = 10054;
/// JetStream's error code for a store that refused the message: with
/// `discard: new`, "maximum messages/bytes exceeded". It comes with status
/// 503 but never clears by waiting: final.
pub(crate) const STORE_FAILED: u64 = 10077;
/// An atomic batch whose message ids were already stored (2.12+): refused
/// whole, not deduplicated.
pub(crate) const BATCH_DUPLICATE: u64 = 10201;
/// Too many atomic batches open on the stream at once (status 429): worth
/// another try.
const TOO_MANY_BATCHES: u64 = 10210;
/// An atomic batch the server abandoned (no commit in time, a sequence gap,
/// a server lost mid-batch): nothing of it was stored, so sending it again
/// is safe.
const BATCH_INCOMPLETE: u64 = 10176;

/// One failed attempt.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Worth another attempt before the deadline: a timeout, a lost
    /// connection, no responders (a leader election), a 503.
    Transient(String),
    /// The answer, to give to the caller.
    Fatal(Error),
}

impl Failure {
    /// Sorts a client error: a JetStream API error found in it decides,
    /// anything else (timeouts, I/O, no responders) is transient.
    pub(crate) fn of<E: ApiError>(stream: &str, e: &E) -> Failure {
        match e.api_error() {
            Some(js) => Failure::api(stream, &js),
            None => Failure::Transient(e.to_string()),
        }
    }

    /// Sorts a JetStream API error.
    pub(crate) fn api(stream: &str, e: &jetstream::Error) -> Failure {
        let code = e.error_code().0;
        match code {
            STREAM_NOT_FOUND => Failure::Fatal(Error::StreamNotFound {
                stream: stream.to_string(),
            }),
            SEALED => Failure::Fatal(memlog::Error::Closed.into()),
            STORE_FAILED => Failure::Fatal(Error::Server {
                code,
                description: e.to_string(),
            }),
            TOO_MANY_BATCHES | BATCH_INCOMPLETE => Failure::Transient(e.to_string()),
            _ if CLUSTER_NOT_READY.contains(&code) => Failure::Transient(e.to_string()),
            _ if e.code() == 503 || e.code() == 408 => Failure::Transient(e.to_string()),
            _ => Failure::Fatal(Error::Server {
                code,
                description: e.to_string(),
            }),
        }
    }
}

/// One JetStream API request with a raw JSON body and answer (`subject`
/// without the `$JS.API.` prefix): for the stream config, whose fields
/// this crate's client does not all know and must pass on unchanged.
pub(crate) async fn api(
    js: &jetstream::Context,
    stream: &str,
    subject: String,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Failure> {
    use jetstream::response::Response;
    match js.request(subject, body).await {
        Ok(Response::Ok(v)) => Ok(v),
        Ok(Response::Err { error }) => Err(Failure::api(stream, &error)),
        Err(e) => Err(Failure::of(stream, &e)),
    }
}

/// A JetStream answer to a core request (an atomic batch message): `Ok`
/// with its JSON (`None` for an empty answer) or the API error it holds.
pub(crate) fn answer(
    stream: &str,
    payload: &[u8],
) -> Result<Option<serde_json::Value>, (Option<u64>, Failure)> {
    if payload.is_empty() {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| {
        (
            None,
            Failure::Transient(format!("unreadable JetStream answer: {e}")),
        )
    })?;
    match v.get("error") {
        None => Ok(Some(v)),
        Some(err) => match serde_json::from_value::<jetstream::Error>(err.clone()) {
            Ok(js) => Err((Some(js.error_code().0), Failure::api(stream, &js))),
            Err(e) => Err((
                None,
                Failure::Transient(format!("unreadable JetStream error {err}: {e}")),
            )),
        },
    }
}

/// A client error that may carry a JetStream API error, in its kind or in
/// its chain of sources.
pub(crate) trait ApiError: std::error::Error + Sized + 'static {
    /// The API error, if the server answered with one.
    fn api_error(&self) -> Option<jetstream::Error> {
        in_sources(self)
    }
}

fn in_sources(e: &(dyn std::error::Error + 'static)) -> Option<jetstream::Error> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            return Some(js.clone());
        }
        cur = e.source();
    }
    None
}

/// Kinds that hold the API error themselves (`Kind::JetStream(e)`).
macro_rules! api_error_in_kind {
    ($($error:ty => $kind:path),* $(,)?) => {$(
        impl ApiError for $error {
            fn api_error(&self) -> Option<jetstream::Error> {
                match self.kind() {
                    $kind(e) => Some(e),
                    _ => in_sources(self),
                }
            }
        }
    )*};
}

api_error_in_kind! {
    jetstream::context::GetStreamError => jetstream::context::GetStreamErrorKind::JetStream,
    jetstream::context::CreateStreamError => jetstream::context::CreateStreamErrorKind::JetStream,
    jetstream::stream::ConsumerError => jetstream::stream::ConsumerErrorKind::JetStream,
    jetstream::stream::RawMessageError => jetstream::stream::RawMessageErrorKind::JetStream,
}

impl ApiError for jetstream::context::PublishError {}
impl ApiError for jetstream::context::RequestError {}
impl ApiError for jetstream::stream::DirectGetError {}
impl ApiError for jetstream::consumer::StreamError {}
impl ApiError for jetstream::consumer::pull::MessagesError {}

/// Runs `attempt` until it succeeds, fails for good, or `budget` is spent:
/// then [`Error::Unavailable`] with the last failure. Each attempt is cut off
/// at the deadline too, so the whole call returns within about `budget`.
pub(crate) async fn retry<T, F, Fut>(
    op: &'static str,
    budget: Duration,
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut backoff = Duration::from_millis(20);
    loop {
        let left = budget.saturating_sub(started.elapsed());
        let detail = match tokio::time::timeout(left, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(Failure::Fatal(e))) => return Err(e),
            Ok(Err(Failure::Transient(why))) => why,
            Err(_) => "timed out".to_string(),
        };
        if started.elapsed() + backoff >= budget {
            return Err(Error::Unavailable {
                op,
                waited: started.elapsed(),
                detail,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}
