//! What a user of a production JetStream meets beyond the contract (issue
//! 18): a header the old client choked on, streams deleted or configured by
//! other clients, limits, seal versus close, subjects, the start offset's
//! home, atomic batches. Each test runs against whatever `nats-server` the
//! crate's `testing` module finds (`NATS_SERVER`); where a behaviour needs a
//! newer server (metadata 2.10, atomic batches 2.12) the test checks what
//! the running server gives and says which.
//!
//! Streams are set up and inspected behind the crate's back with a tiny
//! client of NATS's text protocol (`Raw`), as another program would.

use memlog::Error as LogError;
use memlog_jetstream::testing::Server;
use memlog_jetstream::{blocking, Error};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A client of NATS's text protocol, one connection, blocking.
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
    info: Value,
    sid: u64,
}

/// One message a `Raw` subscription received.
struct Msg {
    payload: Vec<u8>,
}

impl Raw {
    fn connect(server: &Server) -> Raw {
        let w = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        let mut r = BufReader::new(w.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let info = serde_json::from_str(line.trim_start_matches("INFO ").trim()).unwrap();
        let mut raw = Raw { r, w, info, sid: 0 };
        raw.send(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\
              \"no_responders\":true,\"protocol\":1}\r\n",
        );
        raw.flush();
        raw
    }

    /// `(major, minor)` of the server's version.
    fn version(&self) -> (u64, u64) {
        let v = self.info["version"].as_str().unwrap();
        let mut p = v.split('.').map(|p| p.parse::<u64>().unwrap());
        (p.next().unwrap(), p.next().unwrap())
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// PING, and wait for the PONG: the server has handled all sent before.
    fn flush(&mut self) {
        self.send(b"PING\r\n");
        while self.frame(None).is_some() {}
    }

    /// The next MSG/HMSG (`None` at the PONG or on `timeout`).
    fn frame(&mut self, timeout: Option<Duration>) -> Option<Msg> {
        self.w.set_read_timeout(timeout).unwrap();
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => panic!("connection closed"),
                Ok(_) => {}
                Err(e) if timeout.is_some() => {
                    assert!(
                        matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ),
                        "{e}"
                    );
                    return None;
                }
                Err(e) => panic!("{e}"),
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("PONG") => return None,
                Some("PING") => self.send(b"PONG\r\n"),
                Some("+OK") | Some("INFO") => {}
                Some("MSG") | Some("HMSG") => {
                    let total: usize = words.last().unwrap().parse().unwrap();
                    let headers: usize = if words[0] == "HMSG" {
                        words[words.len() - 2].parse().unwrap()
                    } else {
                        0
                    };
                    let mut buf = vec![0; total + 2];
                    self.r.read_exact(&mut buf).unwrap();
                    buf.truncate(total);
                    return Some(Msg {
                        payload: buf.split_off(headers),
                    });
                }
                _ => panic!("from the server: {line}"),
            }
        }
    }

    fn subscribe(&mut self, subject: &str) -> u64 {
        self.sid += 1;
        let sid = self.sid;
        self.send(format!("SUB {subject} {sid}\r\n").as_bytes());
        self.flush();
        sid
    }

    /// A JetStream API request: its JSON answer.
    fn api(&mut self, subject: &str, body: &Value) -> Value {
        let inbox = format!("_INBOX.raw.{}", self.sid + 1);
        let sid = self.subscribe(&inbox);
        let body = match body {
            Value::Null => Vec::new(),
            body => serde_json::to_vec(body).unwrap(),
        };
        self.send(format!("PUB $JS.API.{subject} {inbox} {}\r\n", body.len()).as_bytes());
        self.send(&body);
        self.send(b"\r\n");
        let msg = self
            .frame(Some(Duration::from_secs(10)))
            .unwrap_or_else(|| panic!("no answer to {subject}"));
        self.send(format!("UNSUB {sid}\r\n").as_bytes());
        serde_json::from_slice(&msg.payload).unwrap()
    }

    /// A JetStream API request that must succeed.
    fn ok(&mut self, subject: &str, body: &Value) -> Value {
        let v = self.api(subject, body);
        assert!(v.get("error").is_none(), "{subject}: {v}");
        v
    }

    fn create_stream(&mut self, cfg: Value) {
        let name = cfg["name"].as_str().unwrap().to_string();
        self.ok(&format!("STREAM.CREATE.{name}"), &cfg);
    }

    fn config(&mut self, stream: &str) -> Value {
        self.ok(&format!("STREAM.INFO.{stream}"), &Value::Null)["config"].clone()
    }

    /// A plain publish (no acknowledgement), with raw header bytes.
    fn hpub(&mut self, subject: &str, headers: &[u8], payload: &[u8]) {
        let total = headers.len() + payload.len();
        self.send(format!("HPUB {subject} {} {total}\r\n", headers.len()).as_bytes());
        self.send(headers);
        self.send(payload);
        self.send(b"\r\n");
    }
}

fn server() -> Server {
    Server::start().expect("start nats-server (see memlog_jetstream::testing)")
}

/// A log on a new stream with the builder's defaults.
fn create(server: &Server, stream: &str) -> blocking::JetStreamLog {
    blocking::JetStreamLog::builder(&server.url(), stream)
        .create_blocking()
        .unwrap()
}

fn open(server: &Server, stream: &str) -> Result<blocking::JetStreamLog, Error> {
    blocking::JetStreamLog::builder(&server.url(), stream).open_blocking()
}

/// Waits (bounded generously) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < until, "{what}: not within 60 s");
        thread::sleep(Duration::from_millis(10));
    }
}

// ------------------------------------------------------------ 1. header

#[test]
fn a_bare_cr_in_a_header_value_does_not_kill_the_connection() {
    let server = server();
    let log = create(&server, "cr");
    let replica = log.replica().start_blocking().unwrap();
    assert_eq!(log.write("before").unwrap(), 0);
    let mut raw = Raw::connect(&server);
    raw.hpub("cr", b"NATS/1.0\r\nX-Bad: a\rb\r\n\r\n", b"bad");
    raw.flush();
    eventually("the raw message stored", || log.next_offset().unwrap() == 2);
    // Streams, reads and the replica read it; the connection lives on.
    let mut s = log.stream(0);
    assert_eq!(s.next().unwrap().unwrap().data, "before");
    assert_eq!(s.next().unwrap().unwrap().data, "bad");
    assert_eq!(log.read(1).unwrap().data, "bad");
    assert_eq!(log.write("after").unwrap(), 2);
    assert_eq!(s.next().unwrap().unwrap().data, "after");
    replica.wait_for(2, Duration::from_secs(30)).unwrap();
    assert_eq!(replica.read(1).unwrap().data, "bad");
    assert!(replica.last_error().is_none(), "{:?}", replica.last_error());
}

// ------------------------------------------------------------ 2. final errors

#[test]
fn a_deleted_stream_ends_the_replica_and_its_streams_without_spinning() {
    let server = server();
    let log = create(&server, "gone");
    log.write("x").unwrap();
    let replica = log.replica().start_blocking().unwrap();
    replica.wait_for(0, Duration::from_secs(30)).unwrap();
    let mut s = log.stream(0);
    assert_eq!(s.next().unwrap().unwrap().offset, 0);
    let mut spy = Raw::connect(&server);
    spy.ok("STREAM.DELETE.gone", &Value::Null);
    // The stream yields the final error once, then ends.
    let gone = Error::StreamNotFound {
        stream: "gone".into(),
    };
    assert_eq!(s.next(), Some(Err(gone.clone())));
    assert_eq!(s.next(), None);
    // The replica ends too, and says why.
    eventually("the replica stops", || !replica.is_following());
    assert_eq!(replica.last_error(), Some(gone));
    // Nothing asks the server for consumers any more.
    spy.subscribe("$JS.API.CONSUMER.CREATE.gone");
    spy.subscribe("$JS.API.CONSUMER.CREATE.gone.>");
    let mut creates = 0;
    while spy.frame(Some(Duration::from_millis(1500))).is_some() {
        creates += 1;
    }
    assert_eq!(creates, 0, "consumer-create requests after the end");
}

// ------------------------------------------------------------ 3, 4. seal, close

#[test]
fn seal_changes_no_other_config_field() {
    let server = server();
    let mut raw = Raw::connect(&server);
    let v = raw.version();
    let mut cfg = json!({
        "name": "kept", "subjects": ["kept"], "retention": "limits", "storage": "file",
        "allow_direct": true, "deny_delete": true, "description": "set by hand",
    });
    if v >= (2, 10) {
        cfg["metadata"] = json!({"owner": "team-a"});
        cfg["compression"] = "s2".into();
    }
    if v >= (2, 11) {
        cfg["allow_msg_ttl"] = true.into();
    }
    if v >= (2, 12) {
        cfg["allow_atomic"] = true.into();
    }
    raw.create_stream(cfg.clone());
    let log = open(&server, "kept").unwrap();
    assert_eq!(log.write("a").unwrap(), 0);
    log.seal().unwrap();
    log.seal().unwrap(); // idempotent
    let after = raw.config("kept");
    assert_eq!(after["sealed"], true);
    for (k, want) in cfg.as_object().unwrap() {
        if k == "metadata" {
            assert_eq!(after[k]["owner"], want["owner"], "{after}");
        } else {
            assert_eq!(&after[k], want, "{k} in {after}");
        }
    }
    assert!(log.is_sealed().unwrap());
    assert_eq!(log.write("b"), Err(LogError::Closed.into()));
    // A sealed stream is refused at once, as a closed log.
    assert_eq!(open(&server, "kept").unwrap_err(), LogError::Closed);
    let create = blocking::JetStreamLog::builder(&server.url(), "kept")
        .retain_all()
        .create_blocking();
    assert_eq!(create.unwrap_err(), LogError::Closed);
    println!("FIGURES seal on {v:?}: config kept {after}");
}

#[test]
fn close_ends_this_handle_only() {
    let server = server();
    let url = server.url();
    let a = blocking::JetStreamLog::builder(&url, "svc")
        .create_blocking()
        .unwrap();
    let b = open(&server, "svc").unwrap();
    assert_eq!(a.write("x0").unwrap(), 0);
    let mut sa = a.stream(0);
    let mut sb = b.stream(0);
    let replica = a.replica().start_blocking().unwrap();
    a.close().unwrap();
    a.close().unwrap(); // idempotent
    assert_eq!(a.write("late"), Err(LogError::Closed.into()));
    assert_eq!(a.write_batch(["l1", "l2"]), Err(LogError::Closed.into()));
    assert!(a.is_closed().unwrap());
    assert!(!a.is_sealed().unwrap());
    // Another handle writes on.
    assert_eq!(b.write("y").unwrap(), 1);
    assert!(!b.is_closed().unwrap());
    // This handle's streams drain what the stream held at close, and end.
    assert_eq!(sa.next().unwrap().unwrap().data, "x0");
    assert_eq!(sa.next(), None);
    assert_eq!(sa.ended(), Some(&LogError::Closed.into()));
    let mut late = a.stream(1);
    assert_eq!(late.try_recv(), Err(LogError::Closed.into()));
    eventually("the replica of the closed handle stops", || {
        !replica.is_following()
    });
    assert_eq!(replica.range(), Some((0, 0)));
    // The other handle's stream goes on.
    assert_eq!(sb.next().unwrap().unwrap().data, "x0");
    assert_eq!(sb.next().unwrap().unwrap().data, "y");
    // The service's next run finds its log as it left it.
    let next_run = blocking::JetStreamLog::builder(&url, "svc")
        .create_blocking()
        .unwrap();
    assert_eq!(next_run.write("z").unwrap(), 2);
    assert_eq!(next_run.range().unwrap(), Some((0, 2)));
}

// ------------------------------------------------------------ 5. limits

#[test]
fn a_full_stream_with_discard_new_refuses_at_once() {
    let server = server();
    let mut raw = Raw::connect(&server);
    raw.create_stream(json!({
        "name": "full", "subjects": ["full"], "max_msgs": 2, "discard": "new",
        "allow_direct": true,
    }));
    let log = open(&server, "full").unwrap();
    assert_eq!(log.write_batch(["a", "b"]).unwrap(), [0, 1]);
    let t = Instant::now();
    let e = log.write("c").unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(e, Error::Server { code: 10077, .. }),
        "a final error, not {e:?}"
    );
    assert!(e.to_string().contains("maximum messages"), "{e}");
    println!("FIGURES a full stream (discard new) refused a write in {took:?}");
    assert_eq!(log.range().unwrap(), Some((0, 1)));
}

// ------------------------------------------------------------ 6. dense offsets

#[test]
fn open_refuses_interest_and_work_queue_retention() {
    let server = server();
    let mut raw = Raw::connect(&server);
    for (name, retention) in [("int", "interest"), ("wq", "workqueue")] {
        raw.create_stream(json!({"name": name, "subjects": [name], "retention": retention}));
        for r in [
            open(&server, name),
            blocking::JetStreamLog::builder(&server.url(), name)
                .retain_all()
                .create_blocking(),
        ] {
            match r {
                Err(Error::Log(LogError::InvalidConfig(why))) => {
                    assert!(why.contains(retention), "{why}")
                }
                other => panic!("{retention}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_message_deleted_in_the_middle_is_said_never_skipped() {
    let server = server();
    let mut raw = Raw::connect(&server);
    raw.create_stream(json!({"name": "holes", "subjects": ["holes"], "allow_direct": true}));
    let log = open(&server, "holes").unwrap();
    assert_eq!(
        log.write_batch(["a", "b", "c", "d", "e"]).unwrap(),
        [0, 1, 2, 3, 4]
    );
    // Offset 2 is sequence 3.
    raw.ok("STREAM.MSG.DELETE.holes", &json!({"seq": 3}));
    let hole = Error::Deleted { offset: 2 };
    assert_eq!(log.read(2).unwrap_err(), hole);
    assert_eq!(log.read(3).unwrap().data, "d");
    let mut out = Vec::new();
    assert_eq!(log.read_batch(0, &mut out, 10).unwrap(), 2);
    assert_eq!(log.read_batch(2, &mut out, 10).unwrap_err(), hole);
    assert_eq!(log.read_batch(3, &mut out, 10).unwrap(), 2);
    let offsets: Vec<_> = out.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 3, 4]);
    let mut s = log.stream(0);
    assert_eq!(s.next().unwrap().unwrap().offset, 0);
    assert_eq!(s.next().unwrap().unwrap().offset, 1);
    assert_eq!(s.next(), Some(Err(hole.clone())));
    assert_eq!(s.next(), None);
    let mut after = log.stream(3);
    assert_eq!(after.next().unwrap().unwrap().offset, 3);
    // The replica stops at the hole with what came before it readable.
    let replica = log.replica().start_blocking().unwrap();
    eventually("the replica stops at the hole", || !replica.is_following());
    assert_eq!(replica.last_error(), Some(hole));
    assert_eq!(replica.generation(), 0);
    assert_eq!(replica.read(0).unwrap().data, "a");
    assert_eq!(replica.read(1).unwrap().data, "b");
}

// ------------------------------------------------------------ 7. subjects

#[test]
fn a_subject_the_stream_matches_is_accepted_a_wildcard_refused() {
    let server = server();
    let mut raw = Raw::connect(&server);
    raw.create_stream(json!({"name": "cs", "subjects": ["cs.*"], "allow_direct": true}));
    let url = server.url();
    let a = blocking::JetStreamLog::builder(&url, "cs")
        .subject("cs.a")
        .open_blocking()
        .unwrap();
    let b = blocking::JetStreamLog::builder(&url, "cs")
        .subject("cs.b")
        .open_blocking()
        .unwrap();
    assert_eq!(a.write("1").unwrap(), 0);
    assert_eq!(b.write("2").unwrap(), 1);
    assert_eq!(a.read(1).unwrap().data, "2");
    for (subject, why) in [
        ("cs.*", "wildcard"),
        ("cs.>", "wildcard"),
        ("cs.a.b", "none of which matches"),
        ("other", "none of which matches"),
    ] {
        match blocking::JetStreamLog::builder(&url, "cs")
            .subject(subject)
            .open_blocking()
        {
            Err(Error::Log(LogError::InvalidConfig(w))) => assert!(w.contains(why), "{w}"),
            other => panic!("{subject}: {other:?}"),
        }
    }
}

// ------------------------------------------------------------ 8. start offset

#[test]
fn the_start_offset_lives_in_metadata_and_survives_a_new_description() {
    let server = server();
    let mut raw = Raw::connect(&server);
    let url = server.url();
    let log = blocking::JetStreamLog::builder(&url, "meta")
        .start_offset(100)
        .create_blocking()
        .unwrap();
    assert_eq!(log.write("a").unwrap(), 100);
    let mut cfg = raw.config("meta");
    if raw.version() >= (2, 10) {
        assert_eq!(cfg["metadata"]["memlog.start_offset"], "100", "{cfg}");
        // Another client rewrites the description: the offsets stay.
        cfg["description"] = "edited by hand".into();
        raw.ok("STREAM.UPDATE.meta", &cfg);
        let again = open(&server, "meta").unwrap();
        assert_eq!(again.start_offset(), 100);
        assert_eq!(again.read(100).unwrap().data, "a");
    }
    // A stream whose description alone holds it (made on 2.9, or by an
    // earlier version of this crate) opens at that offset.
    raw.create_stream(json!({
        "name": "old", "subjects": ["old"], "description": "memlog start_offset=7",
    }));
    let old = open(&server, "old").unwrap();
    assert_eq!(old.start_offset(), 7);
    assert_eq!(old.write("x").unwrap(), 7);
}

// ------------------------------------------------------------ 9. record size

#[test]
fn max_record_bytes_honours_the_streams_max_msg_size() {
    let server = server();
    let mut raw = Raw::connect(&server);
    raw.create_stream(json!({"name": "small", "subjects": ["small"], "max_msg_size": 1000}));
    let log = open(&server, "small").unwrap();
    let max = log.max_record_bytes();
    assert_eq!(max, 1000 - 256);
    assert_eq!(log.write(vec![1u8; max]).unwrap(), 0);
    assert_eq!(
        log.write(vec![1u8; 1000]).unwrap_err(),
        LogError::RecordTooLarge { len: 1000, max }
    );
    assert_eq!(
        log.write_batch([vec![1u8; 10], vec![1u8; max + 1]])
            .unwrap_err(),
        LogError::RecordTooLarge { len: max + 1, max }
    );
    assert_eq!(log.next_offset().unwrap(), 1);
}

// ------------------------------------------------------------ atomic batches

fn atomic(raw: &Raw) -> bool {
    let yes = raw.version() >= (2, 12);
    if !yes {
        println!(
            "nats-server {:?} has no atomic batch: write_batch is pipelined (see the README)",
            raw.version()
        );
    }
    yes
}

#[test]
fn atomic_batches_land_contiguous_beside_a_plain_publisher() {
    let server = server();
    let raw = Raw::connect(&server);
    let log = blocking::JetStreamLog::builder(&server.url(), "atomic")
        .retain_all()
        .create_blocking()
        .unwrap();
    if !atomic(&raw) {
        return;
    }
    assert_eq!(
        raw_config_flag(&server, "atomic", "allow_atomic"),
        Some(true)
    );
    let stop = Arc::new(AtomicBool::new(false));
    let plain = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (stop, plain) = (stop.clone(), plain.clone());
        let mut raw = Raw::connect(&server);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                raw.send(b"PUB atomic 5\r\nplain\r\n");
                if plain.fetch_add(1, Ordering::Relaxed) % 100 == 99 {
                    raw.flush();
                }
            }
            raw.flush();
        })
    };
    let mut written = Vec::new();
    for b in 0..6u32 {
        let records: Vec<String> = (0..1000).map(|i| format!("{b}-{i}")).collect();
        let offsets = log.write_batch(records.clone()).unwrap();
        for (i, o) in offsets.iter().enumerate() {
            assert_eq!(*o, offsets[0] + i as u64, "batch {b} is not contiguous");
        }
        written.push((offsets[0], records));
    }
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    for (first, records) in written {
        let mut out = Vec::new();
        let mut at = first;
        while out.len() < records.len() {
            let left = records.len() - out.len();
            let n = log.read_batch(at, &mut out, left).unwrap();
            at += n as u64;
        }
        let got: Vec<&[u8]> = out.iter().map(|r| &r.data[..]).collect();
        let want: Vec<&[u8]> = records.iter().map(|r| r.as_bytes()).collect();
        assert_eq!(got, want);
    }
    println!(
        "FIGURES atomic batches: 6 x 1000 records contiguous, beside {} plain publishes",
        plain.load(Ordering::Relaxed)
    );
}

fn raw_config_flag(server: &Server, stream: &str, key: &str) -> Option<bool> {
    Raw::connect(server).config(stream)[key].as_bool()
}

#[test]
fn a_retried_batch_lands_once_and_returns_its_offsets() {
    // A producer whose batch's acknowledgement was lost (or that restarted)
    // sends it again with the same id: on 2.12+ the server refuses the
    // batch whole (10201) and the offsets come from its duplicate table; on
    // older servers each record is deduplicated.
    let server = server();
    let url = server.url();
    let log = blocking::JetStreamLog::builder(&url, "retry")
        .retain_all()
        .create_blocking()
        .unwrap();
    log.write("before").unwrap();
    let records: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
    let offsets = log.write_batch_with_id("b7", records.clone()).unwrap();
    assert_eq!(offsets, (1..=2500).collect::<Vec<u64>>());
    let again = open(&server, "retry").unwrap();
    assert_eq!(again.write_batch_with_id("b7", records).unwrap(), offsets);
    assert_eq!(log.range().unwrap(), Some((0, 2500)));
    assert_eq!(again.write_stats().deduplicated, 2500);
    assert_eq!(again.write_stats().acknowledged, 2500);
}

#[test]
fn an_atomic_batch_the_server_refuses_stores_nothing() {
    let server = server();
    let mut raw = Raw::connect(&server);
    let v = raw.version();
    let mut cfg = json!({
        "name": "bytes", "subjects": ["bytes"], "max_bytes": 1000, "discard": "new",
        "allow_direct": true,
    });
    if v >= (2, 12) {
        cfg["allow_atomic"] = true.into();
    }
    raw.create_stream(cfg);
    let log = open(&server, "bytes").unwrap();
    // 20 records of 100 bytes: the stream takes fewer than 10.
    let e = log.write_batch(vec![vec![7u8; 100]; 20]).unwrap_err();
    assert!(!matches!(e, Error::Unavailable { .. }), "{e}");
    let range = log.range().unwrap();
    if atomic(&raw) {
        assert_eq!(range, None, "an atomic batch landed in part");
    } else {
        // Pipelined: the records before the limit landed (documented).
        assert!(range.is_some());
    }
    println!("FIGURES a refused batch on {v:?}: {e}; range after {range:?}");
}
