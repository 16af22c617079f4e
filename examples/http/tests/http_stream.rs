//! The HTTP example driven over real HTTP on loopback with ureq: appends,
//! reads, every error answer, non-UTF-8 payloads, a 10 000-record stream
//! while writers run, no task left behind when clients go away, and graceful
//! shutdown (in process, and the binary on SIGTERM/SIGINT).
//!
//! The `#[ignore]`d `throughput_*` test prints records/s over the HTTP stream
//! for 1 and 16 clients:
//! `cargo test --release -p memlog-http-example --test http_stream -- --ignored --nocapture`

use axum::body::Bytes;
use base64::Engine as _;
use memlog::{Log, Record};
use memlog_http_example::{self as app, AppState, MAX_RECORD_BYTES};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The example's app served on 127.0.0.1, on a port the OS picks, until the
/// runtime drops or `shutdown` is called.
struct Server {
    addr: SocketAddr,
    state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(log: Log<Bytes>) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let state = AppState::new(log);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = rt.spawn(app::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            state,
            stop: Some(stop),
            served: Some(served),
            rt,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> &Log<Bytes> {
        &self.state.log
    }

    fn live_streams(&self) -> usize {
        self.state.live_streams()
    }

    /// Starts the graceful shutdown, as a signal does in the binary.
    fn shutdown(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }

    /// Waits for `serve` to return, after `shutdown`.
    fn join(&mut self, limit: Duration) -> std::io::Result<()> {
        let served = self.served.take().unwrap();
        self.rt
            .block_on(async { tokio::time::timeout(limit, served).await })
            .expect("the server shut down in time")
            .unwrap()
    }
}

/// A client that returns 4xx/5xx responses instead of errors.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> u64 {
    let mut resp = agent.post(url).send(body).unwrap();
    assert_eq!(resp.status(), 201);
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    v["offset"].as_u64().unwrap()
}

fn get_json(agent: &ureq::Agent, url: &str) -> (u16, serde_json::Value) {
    let mut resp = agent.get(url).call().unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

/// Opens `/stream?from=N` and returns a line reader over the body.
fn open_stream(agent: &ureq::Agent, url: &str) -> BufReader<impl Read> {
    let resp = agent.get(url).call().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/x-ndjson"
    );
    BufReader::new(resp.into_body().into_reader())
}

/// Waits until `cond` holds, up to `limit`; returns whether it did.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// Waits up to 10 s for every stream body and registered waker to be gone;
/// panics with what is left after `what`.
fn assert_nothing_left(srv: &Server, what: &str) {
    assert!(
        eventually(Duration::from_secs(10), || srv.live_streams() == 0
            && srv.log().waiter_count() == 0),
        "{what} left {} stream bodies, {} waiters",
        srv.live_streams(),
        srv.log().waiter_count()
    );
}

#[test]
fn post_get_and_errors_with_their_statuses() {
    let log: Log<Bytes> = Log::builder()
        .segment_size(2)
        .history_segments(1)
        .max_record_bytes(8)
        .build()
        .unwrap();
    let srv = Server::start(log);
    let agent = agent();
    assert_eq!(post(&agent, &srv.url("/records"), "hello"), 0);

    let (status, v) = get_json(&agent, &srv.url("/records/0"));
    assert_eq!(status, 200);
    assert_eq!(v["offset"], 0);
    assert_eq!(v["data"], "hello");
    let created: Record<String> = serde_json::from_value(v).unwrap();
    assert_eq!(created.created, srv.log().read(0).unwrap().created);

    let (status, v) = get_json(&agent, &srv.url("/records/1"));
    assert_eq!(status, 404);
    assert_eq!(v["error"], "future_offset");
    assert_eq!(v["message"], memlog::Error::FutureOffset.to_string());

    let mut resp = agent
        .post(&srv.url("/records"))
        .send("much too long")
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"], "record_too_large");
    assert_eq!((v["len"].as_u64(), v["max"].as_u64()), (Some(13), Some(8)));

    // Retention is 4 records: offsets 0 and 1 go when 4 is written.
    for i in 1..5 {
        assert_eq!(post(&agent, &srv.url("/records"), &format!("r{i}")), i);
    }
    let (status, v) = get_json(&agent, &srv.url("/records/0"));
    assert_eq!(status, 410);
    assert_eq!(v["error"], "out_of_range");
    let (status, v) = get_json(&agent, &srv.url("/stream?from=1"));
    assert_eq!(status, 410);
    assert_eq!(v["error"], "out_of_range");

    // The default start is the earliest retained record; close ends the body.
    srv.log().close();
    let mut body = String::new();
    open_stream(&agent, &srv.url("/stream"))
        .read_to_string(&mut body)
        .unwrap();
    let data: Vec<String> = body
        .lines()
        .map(|l| serde_json::from_str::<Record<String>>(l).unwrap().data)
        .collect();
    assert_eq!(data, ["r2", "r3", "r4"]);
    let (status, v) = get_json(&agent, &srv.url("/records/5"));
    assert_eq!((status, v["error"].as_str()), (404, Some("future_offset")));
    let mut resp = agent.post(&srv.url("/records")).send("late").unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("\"closed\""));
}

/// A future offset: `/records/N` is `404 future_offset`, while
/// `/stream?from=N` answers `200` at once and sends from `N` when it is
/// written.
#[test]
fn a_stream_from_a_future_offset_waits_for_it() {
    let srv = Server::start(app::new_log());
    let agent = agent();
    let (status, v) = get_json(&agent, &srv.url("/records/3"));
    assert_eq!((status, v["error"].as_str()), (404, Some("future_offset")));
    let mut lines = open_stream(&agent, &srv.url("/stream?from=3")).lines();
    for i in 0..5 {
        assert_eq!(post(&agent, &srv.url("/records"), &format!("r{i}")), i);
    }
    let first: Record<String> = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((first.offset, first.data.as_str()), (3, "r3"));
    let second: Record<String> = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second.offset, 4);
    srv.log().close();
    assert!(lines.next().is_none(), "the body ends cleanly on close");
}

/// Three streaming clients follow the log from 0 over HTTP while two threads
/// append through `POST /records` and one appends directly to the log; each
/// client must see offsets 0..10 000 in order, each with the payload that was
/// written at that offset. Then the clients hang up, and no stream task (and
/// no registered waker) may remain.
#[test]
fn streams_10_000_records_in_order_while_writers_run() {
    const TOTAL: u64 = 10_000;
    let srv = Server::start(app::new_log());
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let url = srv.url("/stream?from=0");
            thread::spawn(move || {
                let mut lines = open_stream(&agent(), &url).lines();
                let mut got = Vec::with_capacity(TOTAL as usize);
                for expected in 0..TOTAL {
                    let line = lines.next().expect("stream ended early").unwrap();
                    let r: Record<String> = serde_json::from_str(&line).unwrap();
                    assert_eq!(r.offset, expected, "in order, no gaps");
                    assert!(r.created <= SystemTime::now());
                    got.push(r.data);
                }
                got // dropping `lines` here hangs up
            })
        })
        .collect();
    let posters: Vec<_> = (0..2)
        .map(|w| {
            let url = srv.url("/records");
            thread::spawn(move || {
                let agent = agent();
                (0..TOTAL / 4)
                    .map(|i| {
                        let body = format!("post {w} #{i}");
                        (post(&agent, &url, &body), body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let direct = {
        let log = srv.log().clone();
        thread::spawn(move || {
            (0..TOTAL / 2)
                .map(|i| {
                    let body = format!("direct #{i}");
                    (log.write(Bytes::from(body.clone())).unwrap(), body)
                })
                .collect::<Vec<_>>()
        })
    };
    let mut written: HashMap<u64, String> = HashMap::new();
    for h in posters.into_iter().chain([direct]) {
        let mut last = None;
        for (offset, body) in h.join().unwrap() {
            assert!(last < Some(offset), "a writer's offsets increase");
            last = Some(offset);
            assert!(written.insert(offset, body).is_none());
        }
    }
    assert_eq!(written.len() as u64, TOTAL);
    for r in readers {
        let got = r.join().unwrap();
        for (offset, data) in got.iter().enumerate() {
            assert_eq!(&written[&(offset as u64)], data, "contents at {offset}");
        }
    }
    // The clients hung up while their streams waited for offset 10 000.
    assert_nothing_left(&srv, "hang-up while waiting");
}

/// Clients that hang up in the middle of a stream, while it is pending and
/// while records flow, leave no stream body and no registered waker behind.
#[test]
fn disconnecting_clients_leave_no_task_behind() {
    let srv = Server::start(app::new_log());
    srv.log().write(Bytes::from_static(b"first")).unwrap();
    // Idle: each client reads the one record, then hangs up while its stream
    // is pending on the log's waiters (no later write to fail on).
    for _ in 0..8 {
        let mut lines = open_stream(&agent(), &srv.url("/stream?from=0")).lines();
        assert!(lines.next().unwrap().unwrap().contains("\"first\""));
    }
    assert_nothing_left(&srv, "idle hang-up");

    // Busy: a producer writes while clients come and go mid-stream.
    let producer = app::spawn_producer(
        srv.log().clone(),
        app::LegacyApi::default(),
        Duration::from_millis(1),
    );
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let url = srv.url("/stream?from=0");
            thread::spawn(move || {
                let mut lines = open_stream(&agent(), &url).lines();
                for _ in 0..(10 + i * 50) {
                    lines.next().unwrap().unwrap();
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        eventually(Duration::from_secs(10), || srv.live_streams() == 0),
        "busy hang-up left {} stream bodies",
        srv.live_streams()
    );
    srv.log().close();
    producer.join().unwrap();
    assert_eq!(srv.log().waiter_count(), 0);
}

/// Records/s over `GET /stream` for 1 and 16 concurrent clients: a bench,
/// not a timing assertion. Two cases per client count: replay (the log is
/// filled and closed first; clients read it to the end) and live (a writer
/// thread appends while the clients follow; then it closes the log).
#[test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
fn throughput_http_stream_1_and_16_clients() {
    const N: u64 = 400_000;
    let payload = |i: u64| Bytes::from(format!("reading {i} sensor-{} 21.{:03}C", i % 8, i % 1000));
    let big_log = || {
        Log::builder()
            .segment_size(1 << 16)
            .history_segments(15)
            .build()
            .unwrap()
    };
    let run_clients = |srv: &Server, clients: usize| -> Vec<u64> {
        let hs: Vec<_> = (0..clients)
            .map(|_| {
                let url = srv.url("/stream?from=0");
                thread::spawn(move || {
                    let mut r = open_stream(&agent(), &url);
                    let mut line = Vec::with_capacity(256);
                    let mut n = 0u64;
                    loop {
                        line.clear();
                        if r.read_until(b'\n', &mut line).unwrap() == 0 {
                            return n;
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    };
    println!(
        "HTTP stream throughput, {N} records of ~35 bytes each, {} CPUs",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    for clients in [1usize, 16] {
        // Replay.
        let log = big_log();
        for chunk in (0..N).collect::<Vec<_>>().chunks(4096) {
            log.write_batch(chunk.iter().map(|&i| payload(i))).unwrap();
        }
        log.close();
        let srv = Server::start(log);
        let t = Instant::now();
        let counts = run_clients(&srv, clients);
        let secs = t.elapsed().as_secs_f64();
        assert!(counts.iter().all(|&n| n == N));
        let total = N as f64 * clients as f64;
        println!(
            "replay {clients:>2} client(s): {:>10.0} records/s per client, {:>10.0} records/s total ({secs:.2} s)",
            N as f64 / secs,
            total / secs
        );

        // Live.
        let srv = Server::start(big_log());
        let writer = {
            let log = srv.log().clone();
            let state = srv.state.clone();
            thread::spawn(move || {
                while state.live_streams() < clients {
                    thread::yield_now();
                }
                for i in 0..N {
                    log.write(payload(i)).unwrap();
                }
                log.close();
            })
        };
        let t = Instant::now();
        let counts = run_clients(&srv, clients);
        let secs = t.elapsed().as_secs_f64();
        writer.join().unwrap();
        assert!(counts.iter().all(|&n| n == N));
        println!(
            "live   {clients:>2} client(s): {:>10.0} records/s per client, {:>10.0} records/s total ({secs:.2} s)",
            N as f64 / secs,
            total / secs
        );
    }
}

/// Sends `head` (the request line and headers, without the blank line) and
/// `body` over a fresh connection and reads the answer to its end (the
/// request says `Connection: close`): the status and the JSON body.
fn raw_request(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    s.write_all(body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (status, serde_json::from_str(body).unwrap())
}

/// Every error the server can give is `{"error": kind, "message": text}` as
/// `application/json`, with the status the README's table lists.
#[test]
fn every_error_is_json_with_its_status() {
    let srv = Server::start(app::new_log());
    let poster = agent();
    assert_eq!(post(&poster, &srv.url("/records"), "r0"), 0);
    let call = |method: &str, path: &str| {
        let url = srv.url(path);
        // A connection of its own: the server closes one whose request body
        // it answered without reading (the PUT), and a pooled connection
        // closed that way would fail the next request that reuses it.
        let agent = agent();
        let mut resp = match method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            "PUT" => agent.put(&url).send("x"),
            _ => unreachable!(),
        }
        .unwrap();
        let content_type = resp.headers().get("content-type").cloned();
        assert_eq!(content_type.unwrap(), "application/json", "{method} {path}");
        let body = resp.body_mut().read_to_string().unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        (
            resp.status().as_u16(),
            v["error"].as_str().unwrap().to_string(),
        )
    };
    let expect = |status: u16, kind: &str| (status, kind.to_string());
    // Malformed, negative or too large offsets.
    for path in [
        "/records/-1",
        "/records/abc",
        "/records/1.5",
        "/records/99999999999999999999999",
        "/stream?from=-1",
        "/stream?from=abc",
        "/stream?from=",
        "/stream?from=99999999999999999999999",
        // Unknown parameters (a typo must not replay from the earliest
        // offset), and `from` twice.
        "/stream?form=5",
        "/stream?from=0&limit=10",
        "/stream?from=0&from=1",
    ] {
        assert_eq!(call("GET", path), expect(400, "bad_request"), "{path}");
    }
    // Not written yet and no such route are both 404, told apart by kind.
    assert_eq!(call("GET", "/records/1"), expect(404, "future_offset"));
    for path in ["/nope", "/records/0/x", "/records/", "/stream/0"] {
        assert_eq!(call("GET", path), expect(404, "not_found"), "{path}");
    }
    // A route with another method.
    assert_eq!(call("GET", "/records"), expect(405, "method_not_allowed"));
    assert_eq!(
        call("DELETE", "/records/0"),
        expect(405, "method_not_allowed")
    );
    assert_eq!(call("PUT", "/stream"), expect(405, "method_not_allowed"));

    // Bodies up to the limit are records; one byte more is 413, whether the
    // length is declared (answered before the body is read, as curl's
    // `Expect: 100-continue` wants) or the body is chunked.
    let limit = "a".repeat(MAX_RECORD_BYTES);
    assert_eq!(post(&poster, &srv.url("/records"), &limit), 1);
    assert_eq!(srv.log().read(1).unwrap().data.len(), MAX_RECORD_BYTES);
    for declared in [MAX_RECORD_BYTES + 1, 3 << 20] {
        let (status, v) = raw_request(
            srv.addr,
            &format!(
                "POST /records HTTP/1.1\r\nContent-Length: {declared}\r\nExpect: 100-continue"
            ),
            b"",
        );
        assert_eq!(
            (status, v["error"].as_str()),
            (413, Some("record_too_large"))
        );
        assert_eq!(v["len"].as_u64(), Some(declared as u64));
        assert_eq!(v["max"].as_u64(), Some(MAX_RECORD_BYTES as u64));
    }
    let over = MAX_RECORD_BYTES + 1;
    let mut chunked = format!("{over:x}\r\n").into_bytes();
    chunked.resize(chunked.len() + over, b'b');
    let (status, v) = raw_request(
        srv.addr,
        "POST /records HTTP/1.1\r\nTransfer-Encoding: chunked",
        &chunked,
    );
    assert_eq!(
        (status, v["error"].as_str()),
        (413, Some("record_too_large"))
    );
    assert_eq!(v["len"].as_u64(), Some(over as u64));
    assert_eq!(srv.log().next_offset(), 2, "nothing oversized was written");
}

/// A payload that is valid UTF-8 is a JSON string; any other is
/// `{"base64": …}`, and decodes to the bytes that were written.
#[test]
fn payloads_that_are_not_utf8_travel_as_base64() {
    let srv = Server::start(app::new_log());
    let agent = agent();
    let binary: &[u8] = &[0xff, 0x00, b'a', 0xc3];
    let text = "h\u{e9}llo \u{1f980}";
    let mut resp = agent.post(&srv.url("/records")).send(binary).unwrap();
    assert_eq!(resp.status(), 201);
    resp.body_mut().read_to_string().unwrap();
    assert_eq!(post(&agent, &srv.url("/records"), text), 1);

    let (status, v) = get_json(&agent, &srv.url("/records/0"));
    assert_eq!(status, 200);
    assert_eq!(v["data"], serde_json::json!({ "base64": "/wBhww==" }));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v["data"]["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, binary);
    let (_, v) = get_json(&agent, &srv.url("/records/1"));
    assert_eq!(v["data"], text);

    srv.log().close();
    let lines: Vec<serde_json::Value> = open_stream(&agent, &srv.url("/stream?from=0"))
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["data"]["base64"], "/wBhww==");
    assert_eq!(lines[1]["data"], text);
}

/// Graceful shutdown in process, with a stream the client is not reading
/// (the server can not finish it: more is pending than the socket buffers
/// hold). The log closes at once, so an append gets `503 closed` while the
/// stream is open; the server keeps serving until the client has read the
/// stream to its end, then returns.
#[test]
fn shutdown_closes_the_log_and_waits_for_open_streams() {
    // More JSON than the server's socket can buffer (its send buffer grows
    // up to tcp_wmem's maximum; the client's receive buffer is kept small).
    let wmem_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20);
    let payload = "p".repeat(1000);
    let records = (2 * wmem_max + (4 << 20)) / payload.len();
    let log = Log::builder()
        .segment_size(1 << 14)
        .history_segments(records / (1 << 14) + 1)
        .build()
        .unwrap();
    for _ in 0..records {
        log.write(Bytes::from(payload.clone())).unwrap();
    }
    let mut srv = Server::start(log);

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let client = srv.rt.block_on(socket.connect(srv.addr)).unwrap();
    let mut client = client.into_std().unwrap();
    client.set_nonblocking(false).unwrap();
    client
        .write_all(format!("GET /stream?from=0 HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr).as_bytes())
        .unwrap();
    let mut start = [0u8; 64];
    client.read_exact(&mut start).unwrap();
    assert!(start.starts_with(b"HTTP/1.1 200 OK"));
    assert!(eventually(Duration::from_secs(10), || srv.live_streams() == 1));

    srv.shutdown();
    assert!(eventually(Duration::from_secs(10), || srv
        .log()
        .is_closed()));
    let agent = agent();
    let mut resp = agent.post(&srv.url("/records")).send("late").unwrap();
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["error"], "closed");
    assert_eq!(srv.live_streams(), 1, "the unread stream is still open");

    // The client reads on: every record, then the chunked body's end.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    let mut body = start.to_vec();
    body.extend_from_slice(&rest);
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body.matches("{\"offset\":").count(), records);
    assert!(body.ends_with("\n\r\n0\r\n\r\n"), "a clean end of the body");
    srv.join(Duration::from_secs(30)).unwrap();
    assert_eq!(srv.live_streams(), 0);
}

/// The binary itself, stopped by a signal.
#[cfg(unix)]
mod binary {
    use super::*;
    use std::io::ErrorKind;
    use std::process::{Child, Command, Stdio};

    /// Starts the example's binary on a free port; returns it and its address.
    fn start_binary() -> (Child, SocketAddr) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_memlog-http-example"))
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        (child, addr)
    }

    /// What one streaming client got: every record line, and whether the body
    /// ended cleanly (the chunked end, no error line).
    fn read_whole_stream(url: String) -> thread::JoinHandle<Vec<Record<String>>> {
        let lines = open_stream(&agent(), &url).lines();
        thread::spawn(move || {
            lines
                .map(|l| {
                    let l = l.expect("the body ends cleanly");
                    serde_json::from_str::<Record<String>>(&l)
                        .unwrap_or_else(|e| panic!("not a record ({e}): {l}"))
                })
                .collect()
        })
    }

    /// The binary on `signal` (SIGTERM or SIGINT): open streams get every record
    /// written, in order, then a clean end; appends get 201 until the log
    /// closes, 503 `closed` while streams drain, then a refused (or closed)
    /// connection; the process exits 0.
    fn binary_shuts_down_gracefully_on(signal: libc::c_int) {
        let (mut child, addr) = start_binary();
        let url = |path: &str| format!("http://{addr}{path}");
        let from_zero = read_whole_stream(url("/stream?from=0"));
        let client = agent();
        let mut posted: HashMap<u64, String> = HashMap::new();
        for i in 0..50 {
            let body = format!("before #{i}");
            posted.insert(post(&client, &url("/records"), &body), body);
        }
        let next = posted.keys().max().unwrap() + 1;
        let from_next = read_whole_stream(url(&format!("/stream?from={next}")));

        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill(2) only sends a signal to our own child process; no
        // memory is involved.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        // Appends until the server refuses: 201s, then 503s (while the streams
        // drain: brief here, as the clients read on), then no connection.
        let mut statuses = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            assert!(Instant::now() < deadline, "still accepting: {statuses:?}");
            let body = format!("after #{}", statuses.len());
            // A fresh agent: no kept-alive connection the server already closed.
            match agent().post(&url("/records")).send(&body) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap();
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    match status {
                        201 => {
                            assert!(statuses.iter().all(|&s| s == 201), "{statuses:?}");
                            posted.insert(v["offset"].as_u64().unwrap(), body);
                        }
                        503 => assert_eq!(v["error"], "closed"),
                        other => panic!("POST during shutdown: {other} {text}"),
                    }
                    statuses.push(status);
                }
                // The listener closed in the middle of this request, or
                // before it: done once a new connection is refused.
                Err(e) => match TcpStream::connect(addr) {
                    Err(refused) if refused.kind() == ErrorKind::ConnectionRefused => break,
                    Err(other) => panic!("connecting during shutdown: {other} (POST: {e})"),
                    Ok(_) => {}
                },
            }
        }

        let exit = wait_with_limit(&mut child, Duration::from_secs(30));
        assert!(exit.success(), "exit status {exit}");
        let all = from_zero.join().unwrap();
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset, i as u64, "in order, no gaps, no duplicates");
        }
        for (offset, body) in &posted {
            let got = all.get(*offset as usize).map(|r| &r.data);
            assert_eq!(got, Some(body), "acknowledged record {offset}");
        }
        let tail = from_next.join().unwrap();
        assert_eq!(
            tail,
            all[next as usize..],
            "both streams end at the last record"
        );
    }

    /// Waits for `child` to exit, killing it (and failing) after `limit`.
    fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("the server did not exit within {limit:?}");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn binary_shuts_down_gracefully_on_sigterm() {
        binary_shuts_down_gracefully_on(libc::SIGTERM);
    }

    #[test]
    fn binary_shuts_down_gracefully_on_ctrl_c() {
        binary_shuts_down_gracefully_on(libc::SIGINT);
    }
}
