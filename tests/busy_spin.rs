//! Streams that busy-spin (`Stream::busy_spin`) instead of parking: every
//! record checked behind one exclusive writer and behind several writers,
//! and close, cancel and timeouts still end their waits.

use memlog::{Error, Log};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn spinning_streams_see_every_record_of_an_exclusive_writer() {
    const N: u64 = 200_000;
    let (mut w, log) = Log::builder()
        .segment_size(256)
        .history_segments(1024)
        .build_exclusive()
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let mut s = log.stream(0).busy_spin();
            thread::spawn(move || {
                let mut next = 0u64;
                if i == 0 {
                    for r in s {
                        let r = r.unwrap();
                        assert_eq!((r.offset, r.data), (next, next * 3));
                        next += 1;
                    }
                } else {
                    // The visitor waits the same way.
                    loop {
                        match s.visit(64, |r| {
                            assert_eq!((r.offset, *r.data), (next, next * 3));
                            next += 1;
                        }) {
                            Ok(_) => {}
                            Err(Error::Closed) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                next
            })
        })
        .collect();
    for i in 0..N {
        w.write(i * 3).unwrap();
        if i % 4096 == 0 {
            // Let the spinning readers catch up and spin on a missing record.
            thread::yield_now();
        }
    }
    drop(w);
    for r in readers {
        assert_eq!(r.join().unwrap(), N);
    }
    assert_eq!(log.waiter_count(), 0, "a spinning stream never registers");
}

#[test]
fn spinning_streams_follow_several_writers() {
    const WRITERS: u64 = 3;
    const PER: u64 = 20_000;
    let log: Log<u64> = Log::builder()
        .segment_size(64)
        .history_segments(4096)
        .build()
        .unwrap();
    let reader = {
        let s = log.stream(0).busy_spin();
        thread::spawn(move || {
            let mut next_seq = [0u64; WRITERS as usize];
            let mut n = 0u64;
            for r in s {
                let r = r.unwrap();
                assert_eq!(r.offset, n, "gap or duplicate");
                let (w, seq) = ((r.data >> 32) as usize, r.data & 0xffff_ffff);
                assert_eq!(seq, next_seq[w], "writer {w} out of order");
                next_seq[w] += 1;
                n += 1;
            }
            n
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..PER {
                    log.write(w << 32 | i).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    log.close();
    assert_eq!(reader.join().unwrap(), WRITERS * PER);
}

#[test]
fn close_cancel_and_timeout_end_a_spinning_wait() {
    let log: Log<u8> = Log::new();
    let mut s = log.stream(0).busy_spin();
    let t = Instant::now();
    assert_eq!(
        s.recv_timeout(Duration::from_millis(30)),
        Err(Error::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));

    let cancel = s.canceller();
    let spinner = thread::spawn(move || s.next());
    thread::sleep(Duration::from_millis(20));
    cancel.cancel();
    assert_eq!(spinner.join().unwrap(), Some(Err(Error::Cancelled)));

    let mut s = log.stream(0).busy_spin();
    let spinner = thread::spawn(move || (s.next(), s.next()));
    thread::sleep(Duration::from_millis(20));
    log.write(7).unwrap();
    log.close();
    let (first, then) = spinner.join().unwrap();
    assert_eq!(first.unwrap().unwrap().data, 7);
    assert_eq!(then, None);
}
