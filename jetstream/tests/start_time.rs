//! The first hour (issue 19) on JetStream: `recv` on every stream type, and
//! starting from a point in time (`offset_at_time`, `stream_from` with
//! `StartAt::Time`, `ReplicaBuilder::from_time`, `Replica::stream_from`),
//! against whatever `nats-server` the crate's `testing` module finds.

use memlog::{Error as LogError, StartAt};
use memlog_jetstream::testing::Server;
use memlog_jetstream::{blocking, Error};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn create(server: &Server, stream: &str) -> blocking::JetStreamLog {
    blocking::JetStreamLog::builder(&server.url(), stream)
        .start_offset(100)
        .segment_size(4)
        .history_segments(1) // the last 8 messages
        .create_blocking()
        .unwrap()
}

/// Writes `before` records, takes the time, then writes `after` more, with a
/// pause either side so that no server time equals it.
fn write_around_a_time(log: &blocking::JetStreamLog, before: u32, after: u32) -> SystemTime {
    for i in 0..before {
        log.write(format!("before {i}")).unwrap();
    }
    thread::sleep(Duration::from_millis(30));
    let t = SystemTime::now();
    thread::sleep(Duration::from_millis(30));
    for i in 0..after {
        log.write(format!("after {i}")).unwrap();
    }
    t
}

/// In 50 ms, from another handle (as another process would): writes
/// "late" to `stream`, then seals it if `seal`.
fn write_late(server: &Server, stream: &'static str, seal: bool) -> thread::JoinHandle<()> {
    let url = server.url();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let log = blocking::JetStreamLog::builder(&url, stream)
            .open_blocking()
            .unwrap();
        log.write("late").unwrap();
        if seal {
            log.seal().unwrap();
        }
    })
}

#[test]
fn offset_at_time_is_the_first_record_stored_at_or_after_it() {
    let server = Server::start().unwrap();
    let log = create(&server, "times");
    // Nothing stored: the next offset.
    assert_eq!(log.offset_at_time(UNIX_EPOCH).unwrap(), 100);
    let t = write_around_a_time(&log, 3, 3);
    assert_eq!(log.offset_at_time(t).unwrap(), 103);
    assert!(log.read(102).unwrap().created < t);
    assert!(log.read(103).unwrap().created >= t);
    // A record's own time finds that record.
    let created = log.read(104).unwrap().created;
    assert_eq!(log.offset_at_time(created).unwrap(), 104);
    // Before everything: the earliest; after everything: the next offset.
    assert_eq!(log.offset_at_time(UNIX_EPOCH).unwrap(), 100);
    let later = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(
        log.offset_at_time(later).unwrap(),
        log.next_offset().unwrap()
    );
    assert_eq!(log.next_offset().unwrap(), 106);

    // Purge: 16 written, the last 8 kept.
    for i in 0..10 {
        log.write(format!("more {i}")).unwrap();
    }
    let (earliest, _) = log.range().unwrap().unwrap();
    assert_eq!(earliest, 108);
    assert_eq!(log.offset_at_time(UNIX_EPOCH).unwrap(), earliest);
    assert_eq!(log.offset_at_time(t).unwrap(), earliest);
}

#[test]
fn stream_from_every_start_and_recv_to_the_end() {
    let server = Server::start().unwrap();
    let log = create(&server, "starts");
    let t = write_around_a_time(&log, 2, 2);
    let start = |at| log.stream_from(at).unwrap().next_offset();
    assert_eq!(start(StartAt::Earliest), 100);
    assert_eq!(start(StartAt::Latest), 104);
    assert_eq!(start(StartAt::Offset(101)), 101);
    assert_eq!(start(StartAt::Time(t)), 102);

    let mut since = log.stream_from(StartAt::Time(t)).unwrap();
    assert_eq!(since.recv().unwrap().data, "after 0");
    assert_eq!(since.recv().unwrap().offset, 103);

    // Past the end: waits for the next record.
    let future = SystemTime::now() + Duration::from_secs(3600);
    let mut waiting = log.stream_from(StartAt::Time(future)).unwrap();
    assert_eq!(waiting.next_offset(), 104);
    let writer = write_late(&server, "starts", true);
    assert_eq!(waiting.recv().unwrap().data, "late");
    writer.join().unwrap();
    // Sealed and drained: `Closed`, for ever, where the iterator says None.
    assert_eq!(waiting.recv(), Err(Error::Log(LogError::Closed)));
    assert_eq!(waiting.recv(), Err(Error::Log(LogError::Closed)));
    assert_eq!(since.recv().unwrap().offset, 104);
    assert_eq!(since.recv(), Err(Error::Log(LogError::Closed)));
}

#[test]
fn a_replica_starts_from_a_time_and_its_streams_recv() {
    let server = Server::start().unwrap();
    let log = create(&server, "replicated");
    let t = write_around_a_time(&log, 3, 2);
    let replica = log.replica().from_time(t).start_blocking().unwrap();
    replica.wait_for(104, Duration::from_secs(10)).unwrap();
    assert_eq!(replica.range(), Some((103, 104)));

    // The local log's own search, over the server's times copied.
    let mut local = replica.stream_from(StartAt::Time(t));
    assert_eq!(local.next_offset(), 103);
    assert_eq!(local.recv().unwrap().data, "after 0");
    assert_eq!(replica.stream_from(StartAt::Earliest).next_offset(), 103);
    assert_eq!(replica.stream_from(StartAt::Latest).next_offset(), 105);

    // recv waits for the next record replicated.
    let writer = write_late(&server, "replicated", false);
    assert_eq!(local.recv().unwrap().offset, 104);
    assert_eq!(local.recv().unwrap().data, "late");
    writer.join().unwrap();
    // Stopped: drained, then `Closed` for ever.
    replica.stop();
    assert_eq!(local.recv(), Err(LogError::Closed));
    assert_eq!(local.recv(), Err(LogError::Closed));
}

#[test]
fn recv_is_cancelled_while_it_waits() {
    let server = Server::start().unwrap();
    let log = create(&server, "cancelled");
    let mut stream = log.stream(100);
    let cancel = stream.canceller();
    let reader = thread::spawn(move || stream.recv());
    thread::sleep(Duration::from_millis(50));
    cancel.cancel();
    assert_eq!(reader.join().unwrap(), Err(Error::Log(LogError::Cancelled)));
}
