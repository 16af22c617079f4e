//! `Stream::recv`: the blocking receive, with the endings as errors (issue 19).

use memlog::{Error, Lag, Log};
use std::thread;
use std::time::Duration;

mod common;
use common::log_with;

#[test]
fn recv_waits_for_a_later_write() {
    let log: Log<u64> = Log::new();
    let mut stream = log.stream(0);
    let reader = thread::spawn(move || stream.recv().map(|r| r.data));
    thread::sleep(Duration::from_millis(20));
    log.write(42).unwrap();
    assert_eq!(reader.join().unwrap(), Ok(42));
}

#[test]
fn recv_drains_then_says_closed_for_ever() {
    let log = log_with(10, 4, 1);
    log.write_batch([1, 2, 3]).unwrap();
    let mut stream = log.stream(10);
    log.close();
    let got: Vec<u64> = (0..3).map(|_| stream.recv().unwrap().data).collect();
    assert_eq!(got, [1, 2, 3]);
    for _ in 0..3 {
        assert_eq!(stream.recv(), Err(Error::Closed));
    }
    assert_eq!(stream.ended(), Some(&Error::Closed));
    assert_eq!(stream.next(), None);
}

#[test]
fn recv_wakes_on_close_with_nothing_written() {
    let log: Log<u64> = Log::new();
    let mut stream = log.stream(0);
    let reader = thread::spawn(move || stream.recv());
    thread::sleep(Duration::from_millis(20));
    log.close();
    assert_eq!(reader.join().unwrap(), Err(Error::Closed));
}

#[test]
fn recv_reports_out_of_range_once_and_stays_ended() {
    let log = log_with(0, 2, 1);
    let mut stream = log.stream(0);
    log.write_batch(0..4).unwrap();
    log.write(4).unwrap(); // purges 0 and 1
    assert_eq!(stream.recv(), Err(Error::OutOfRange));
    assert_eq!(stream.recv(), Err(Error::OutOfRange));
    assert_eq!(stream.ended(), Some(&Error::OutOfRange));
}

#[test]
fn recv_with_lag_skip_says_lagged_and_goes_on() {
    let log = log_with(0, 2, 1);
    let mut stream = log.stream(0).on_lag(Lag::Skip);
    log.write_batch(0..4).unwrap();
    log.write(4).unwrap(); // purges 0 and 1
    assert_eq!(stream.recv(), Err(Error::Lagged { skipped: 2 }));
    assert_eq!(stream.recv().unwrap().data, 2);
    assert_eq!(stream.ended(), None);
}

#[test]
fn recv_is_cancelled_while_waiting() {
    let log: Log<u64> = Log::new();
    let mut stream = log.stream(0);
    let cancel = stream.canceller();
    let reader = thread::spawn(move || (stream.recv(), stream.recv()));
    thread::sleep(Duration::from_millis(20));
    cancel.cancel();
    assert_eq!(
        reader.join().unwrap(),
        (Err(Error::Cancelled), Err(Error::Cancelled))
    );
}

#[test]
fn recv_on_a_holding_stream_sees_every_record_of_a_burst() {
    let log = log_with(0, 4, 1);
    let mut stream = log.stream(0).on_lag(Lag::Hold);
    let writer = log.clone();
    let w = thread::spawn(move || {
        for i in 0..2000 {
            writer.write(i).unwrap();
        }
        writer.close();
    });
    let mut got = Vec::new();
    loop {
        match stream.recv() {
            Ok(r) => got.push(r.data),
            Err(Error::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    w.join().unwrap();
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
}

#[test]
fn recv_agrees_with_the_iterator() {
    let log = log_with(5, 8, 2);
    log.write_batch(0..20).unwrap();
    log.close();
    let by_next: Vec<u64> = log.stream(5).map(|r| r.unwrap().data).collect();
    let mut stream = log.stream(5);
    let mut by_recv = Vec::new();
    while let Ok(r) = stream.recv() {
        by_recv.push(r.data);
    }
    assert_eq!(stream.ended(), Some(&Error::Closed));
    assert_eq!(by_next, by_recv);
}
