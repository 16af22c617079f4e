//! The HTTP example (`examples/http_stream.rs`) driven over real HTTP on
//! loopback with ureq: appends, reads, errors, a 10 000-record stream while
//! writers run, and no task left behind when clients go away.
//!
//! The `#[ignore]`d `throughput_*` test prints records/s over the HTTP stream
//! for 1 and 16 clients:
//! `cargo test --release --all-features --test http_stream -- --ignored --nocapture`

#[allow(dead_code)]
#[path = "../examples/http_stream.rs"]
mod app;

use app::AppState;
use axum::body::Bytes;
use memlog::{Log, Record};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The example's app served on 127.0.0.1, on a port the OS picks.
struct Server {
    addr: SocketAddr,
    state: AppState,
    _rt: tokio::runtime::Runtime,
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
        rt.spawn(app::serve(listener, state.clone()));
        Server {
            addr,
            state,
            _rt: rt,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> &Log<Bytes> {
        &self.state.log
    }

    fn live_streams(&self) -> usize {
        self.state.live_streams.load(Ordering::SeqCst)
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
    assert!(
        eventually(Duration::from_secs(10), || srv.live_streams() == 0
            && srv.log().waiter_count() == 0),
        "left behind: {} stream bodies, {} waiters",
        srv.live_streams(),
        srv.log().waiter_count()
    );
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
    assert!(
        eventually(Duration::from_secs(10), || srv.live_streams() == 0
            && srv.log().waiter_count() == 0),
        "idle hang-up left {} stream bodies, {} waiters",
        srv.live_streams(),
        srv.log().waiter_count()
    );

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
            let live = srv.state.live_streams.clone();
            thread::spawn(move || {
                while live.load(Ordering::SeqCst) < clients {
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
