//! The Go library's behaviours, ported: checkpoint/resume, many writers,
//! range after purge, cancel, out-of-range streams, read_batch, sharding and
//! close semantics.

use memlog::sharded::{Fnv1aSharder, KeySharder, ShardedLog, Sharder};
use memlog::{Error, Log};
use std::collections::HashSet;
use std::thread;
use std::time::Duration;

mod common;
use common::log_with;

// ------------------------------------------------------- checkpoint / resume

#[test]
fn checkpoint_and_resume() {
    let log = log_with(0, 16, 8);
    for i in 0..100u64 {
        assert_eq!(log.write(i * 10).unwrap(), i);
    }
    // A consumer reads up to a checkpoint, then "crashes".
    let mut stream = log.stream(0);
    let mut checkpoint = 0;
    for _ in 0..37 {
        let r = stream.next().unwrap().unwrap();
        assert_eq!(r.data, r.offset * 10);
        checkpoint = r.offset + 1;
    }
    assert_eq!(checkpoint, 37);
    assert_eq!(stream.next_offset(), 37);
    drop(stream);

    // More records arrive while it is down.
    for i in 100..120u64 {
        log.write(i * 10).unwrap();
    }
    log.close();

    // It restarts from the checkpoint and gets exactly the rest.
    let got: Vec<u64> = log
        .stream(checkpoint)
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.data, r.offset * 10);
            r.offset
        })
        .collect();
    assert_eq!(got, (37..120).collect::<Vec<_>>());
}

#[test]
fn checkpoint_and_resume_with_start_offset() {
    let log = log_with(1_000, 4, 100);
    let range = log.write_batch(0..10u64).unwrap();
    assert_eq!(range, 1_000..1_010);
    let mut s = log.stream(1_000);
    assert_eq!(s.try_recv().unwrap().data, 0);
    assert_eq!(s.try_recv().unwrap().data, 1);
    let checkpoint = s.next_offset();
    drop(s);
    let mut s = log.stream(checkpoint);
    for want in 2..10u64 {
        let r = s.try_recv().unwrap();
        assert_eq!((r.offset, r.data), (1_000 + want, want));
    }
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
}

// ------------------------------------------------------- 100 concurrent writers

#[test]
fn hundred_concurrent_writers() {
    const WRITERS: u64 = 100;
    const N: u64 = 200;
    let log: Log<(u64, u64)> = Log::builder()
        .segment_size(64)
        .history_segments((WRITERS * N / 64) as usize + 1)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                (0..N)
                    .map(|seq| log.write((w, seq)).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let returned: Vec<Vec<u64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let total = WRITERS * N;
    assert_eq!(log.next_offset(), total);
    assert_eq!(log.range(), Some((0, total - 1)));

    // Every returned offset is unique and the set is dense.
    let mut all: Vec<u64> = returned.iter().flatten().copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..total).collect::<Vec<_>>());

    // Read everything back: each writer's sequence in increasing offset order,
    // and each record sits at the offset its writer was given.
    let mut out = Vec::new();
    assert_eq!(
        log.read_batch(0, &mut out, usize::MAX).unwrap(),
        total as usize
    );
    let mut next_seq = vec![0u64; WRITERS as usize];
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.offset, i as u64);
        let (w, seq) = r.data;
        assert_eq!(seq, next_seq[w as usize], "writer {w} out of order at {i}");
        next_seq[w as usize] += 1;
        assert_eq!(returned[w as usize][seq as usize], r.offset);
    }
    assert!(next_seq.iter().all(|&n| n == N));
}

// ------------------------------------------------------- range after purge

#[test]
fn range_after_purge() {
    let log = log_with(100, 10, 1);
    assert_eq!(log.range(), None);
    for i in 0..50u64 {
        assert_eq!(log.write(i).unwrap(), 100 + i);
    }
    assert_eq!(log.range(), Some((130, 149)));
    assert_eq!(log.read(129), Err(Error::OutOfRange));
    assert_eq!(log.read(99), Err(Error::OutOfRange));
    assert_eq!(log.read(0), Err(Error::OutOfRange));
    assert_eq!(log.read(130).unwrap().data, 30);
    assert_eq!(log.read(149).unwrap().data, 49);
    assert_eq!(log.read(150), Err(Error::FutureOffset));
    assert_eq!(log.read(u64::MAX), Err(Error::FutureOffset));
    // One more write opens segment 150..159 and purges 130..139.
    log.write(50).unwrap();
    assert_eq!(log.range(), Some((140, 150)));
    assert_eq!(log.read(139), Err(Error::OutOfRange));
}

#[test]
fn range_without_purge() {
    let log = log_with(0, 10, 1);
    for i in 0..20u64 {
        log.write(i).unwrap();
    }
    assert_eq!(log.range(), Some((0, 19)));
    assert_eq!(log.read(0).unwrap().data, 0);
    // The 21st write purges segment 0.
    log.write(20).unwrap();
    assert_eq!(log.range(), Some((10, 20)));
}

#[test]
fn range_with_no_history() {
    let log = log_with(5, 3, 0);
    for i in 0..7u64 {
        log.write(i).unwrap();
    }
    // Segments 5..8, 8..11, 11..14; only the active one is kept.
    assert_eq!(log.range(), Some((11, 11)));
    assert_eq!(log.read(10), Err(Error::OutOfRange));
}

// ------------------------------------------------------- stream cancel

#[test]
fn stream_cancel_wakes_blocked_stream() {
    let log = log_with(0, 8, 1);
    log.write(1).unwrap();
    let mut stream = log.stream(0);
    let cancel = stream.canceller();
    assert!(!cancel.is_cancelled());
    let reader = thread::spawn(move || {
        let first = stream.next();
        let second = stream.next(); // blocks until cancelled
        let third = stream.next();
        let fourth = stream.try_recv();
        (first, second, third, fourth)
    });
    // Give the reader a chance to park; the outcome is the same either way.
    thread::sleep(Duration::from_millis(50));
    cancel.cancel();
    cancel.cancel(); // idempotent
    assert!(cancel.is_cancelled());
    let (first, second, third, fourth) = reader.join().unwrap();
    assert_eq!(first.unwrap().unwrap().data, 1);
    assert_eq!(second, Some(Err(Error::Cancelled)));
    assert_eq!(third, None);
    assert_eq!(fourth, Err(Error::Cancelled));
    // The log is unaffected.
    assert_eq!(log.write(2).unwrap(), 1);
    assert_eq!(log.stream(0).take(2).count(), 2);
}

#[test]
fn stream_cancel_before_first_next() {
    let log = log_with(0, 8, 1);
    log.write(7).unwrap();
    let mut stream = log.stream(0);
    stream.canceller().cancel();
    assert_eq!(stream.next(), Some(Err(Error::Cancelled)));
    assert_eq!(stream.next(), None);
    assert_eq!(stream.ended(), Some(&Error::Cancelled));
}

#[test]
fn cancel_one_stream_leaves_others() {
    let log = log_with(0, 8, 1);
    let mut a = log.stream(0);
    let mut b = log.stream(0);
    a.canceller().cancel();
    log.write(3).unwrap();
    assert_eq!(a.try_recv(), Err(Error::Cancelled));
    assert_eq!(b.try_recv().unwrap().data, 3);
}

// ------------------------------------------------------- stream out of range

#[test]
fn stream_from_purged_offset() {
    let log = log_with(0, 10, 1);
    for i in 0..50u64 {
        log.write(i).unwrap();
    }
    let mut s = log.stream(5);
    assert_eq!(s.next(), Some(Err(Error::OutOfRange)));
    assert_eq!(s.next(), None);
    assert_eq!(s.try_recv(), Err(Error::OutOfRange));

    let mut s = log.stream(29);
    assert_eq!(s.try_recv(), Err(Error::OutOfRange));
    assert_eq!(s.next(), None);

    // Resume from the retained range instead.
    let (first, _) = log.range().unwrap();
    let got: Vec<u64> = log
        .stream(first)
        .take(20)
        .map(|r| r.unwrap().data)
        .collect();
    assert_eq!(got, (30..50).collect::<Vec<_>>());
}

#[test]
fn stream_below_start_offset() {
    let log = log_with(100, 10, 1);
    log.write(0).unwrap();
    let mut s = log.stream(99);
    assert_eq!(s.next(), Some(Err(Error::OutOfRange)));
    assert_eq!(s.next(), None);
}

#[test]
fn stream_falls_behind() {
    let log = log_with(0, 4, 1);
    for i in 0..6u64 {
        log.write(i).unwrap();
    }
    let mut s = log.stream(0);
    assert_eq!(s.next().unwrap().unwrap().data, 0);
    assert_eq!(s.next().unwrap().unwrap().data, 1);
    // The writer runs ahead: segments 0 and 1 (offsets 0..8) are purged.
    for i in 6..20u64 {
        log.write(i).unwrap();
    }
    assert_eq!(log.range(), Some((12, 19)));
    // The stream had read 0..6 ahead (all that was written) before the
    // purge: it yields those copies, gapless, then falls out of range at the
    // first offset it had not read, 6.
    for want in 2..6u64 {
        assert_eq!(s.next().unwrap().unwrap().data, want);
    }
    assert_eq!(s.next(), Some(Err(Error::OutOfRange)));
    assert_eq!(s.next(), None);
    assert_eq!(s.next_offset(), 6);
}

#[test]
fn stream_falls_behind_before_reading() {
    // A stream that has read nothing ahead gets OutOfRange at once.
    let log = log_with(0, 4, 1);
    let mut s = log.stream(0);
    for i in 0..20u64 {
        log.write(i).unwrap();
    }
    assert_eq!(s.next(), Some(Err(Error::OutOfRange)));
    assert_eq!(s.next(), None);
    assert_eq!(s.next_offset(), 0);
}

// ------------------------------------------------------- read_batch

#[test]
fn read_batch_cases() {
    let log = log_with(100, 10, 1);
    let mut out = Vec::new();
    // max 0 is Ok(0) whatever the offset.
    assert_eq!(log.read_batch(0, &mut out, 0), Ok(0));
    assert_eq!(log.read_batch(100, &mut out, 0), Ok(0));
    assert_eq!(log.read_batch(u64::MAX, &mut out, 0), Ok(0));
    assert!(out.is_empty());
    // Empty log: the start is in the future.
    assert_eq!(log.read_batch(100, &mut out, 5), Err(Error::FutureOffset));
    for i in 0..50u64 {
        log.write(i).unwrap();
    }
    assert_eq!(log.read_batch(0, &mut out, 0), Ok(0));
    assert_eq!(log.read_batch(150, &mut out, 1), Err(Error::FutureOffset));
    assert_eq!(
        log.read_batch(u64::MAX, &mut out, 1),
        Err(Error::FutureOffset)
    );
    assert_eq!(log.read_batch(129, &mut out, 5), Err(Error::OutOfRange));
    assert_eq!(log.read_batch(99, &mut out, 5), Err(Error::OutOfRange));
    assert!(out.is_empty());

    // Partial at the end.
    assert_eq!(log.read_batch(145, &mut out, 100), Ok(5));
    assert_eq!(
        out.iter().map(|r| (r.offset, r.data)).collect::<Vec<_>>(),
        (145..150).map(|o| (o, o - 100)).collect::<Vec<_>>()
    );

    // Appends to what is already in `out`; across a segment boundary.
    assert_eq!(log.read_batch(137, &mut out, 6), Ok(6));
    assert_eq!(out.len(), 11);
    assert_eq!(
        out[5..].iter().map(|r| r.offset).collect::<Vec<_>>(),
        (137..143).collect::<Vec<_>>()
    );
    assert!(out[5..].iter().all(|r| r.data == r.offset - 100));

    // Exactly `max` when more are available.
    out.clear();
    assert_eq!(log.read_batch(130, &mut out, 1), Ok(1));
    assert_eq!(out[0].data, 30);
}

#[test]
fn read_batch_huge_max() {
    let log = log_with(u64::MAX >> 1, 10, 1);
    let start = log.start_offset();
    for i in 0..15u64 {
        log.write(i).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(log.read_batch(start + 3, &mut out, usize::MAX), Ok(12));
    assert_eq!(out.len(), 12);
    assert_eq!(out.last().unwrap().offset, start + 14);
    // No over-allocation: a reservation anywhere near `max` would have aborted.
    assert!(out.capacity() < 1024, "capacity {}", out.capacity());
    let mut out = Vec::new();
    assert_eq!(log.read_batch(start + 14, &mut out, usize::MAX - 1), Ok(1));
}

// ------------------------------------------------------- sharded

#[test]
fn fnv1a_test_vectors() {
    // The FNV-1a 32-bit test vectors (from the FNV reference), read back
    // through the public trait: with 2^32 shards the shard is the hash itself.
    let vectors: [(&[u8], u32); 6] = [
        (b"", 0x811c_9dc5),
        (b"a", 0xe40c_292c),
        (b"b", 0xe70c_2de5),
        (b"c", 0xe60c_2c52),
        (b"foo", 0xa9f3_7ed7),
        (b"foobar", 0xbf9c_f968),
    ];
    for (key, hash) in vectors {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(
            Fnv1aSharder.shard(key, 1usize << 32).unwrap(),
            hash as usize
        );
        assert_eq!(
            Fnv1aSharder.shard(key, 1 << 31).unwrap(),
            (hash % (1 << 31)) as usize
        );
        assert_eq!(
            Fnv1aSharder.shard(key, 1000).unwrap(),
            (hash % 1000) as usize
        );
        assert_eq!(Fnv1aSharder.shard(key, 7).unwrap(), (hash % 7) as usize);
    }
    // The default sharded log places keys the same way.
    let log: ShardedLog<u32> = ShardedLog::new();
    assert_eq!(log.shards(), 1000);
    assert_eq!(
        log.shard_of("foobar").unwrap(),
        (0xbf9c_f968u32 % 1000) as usize
    );
    assert_eq!(log.shard_of("").unwrap(), (0x811c_9dc5u32 % 1000) as usize);
}

#[test]
fn key_sharder_unknown_key() {
    let log: ShardedLog<u32, KeySharder> = ShardedLog::builder()
        .shards(3)
        .sharder(KeySharder::new(["a", "b"]))
        .build()
        .unwrap();
    assert!(matches!(log.write("c", 1), Err(Error::UnknownKey(k)) if k == "c"));
    assert!(matches!(log.read("c", 0), Err(Error::UnknownKey(_))));
    assert!(matches!(log.range("c"), Err(Error::UnknownKey(_))));
    assert!(matches!(log.stream("c", 0), Err(Error::UnknownKey(_))));
    assert!(matches!(
        log.write_batch("c", [1]),
        Err(Error::UnknownKey(_))
    ));
    let mut out = Vec::new();
    assert!(matches!(
        log.read_batch("c", 0, &mut out, 1),
        Err(Error::UnknownKey(_))
    ));
    assert!(matches!(log.shard_of("c"), Err(Error::UnknownKey(_))));
    assert_eq!(
        KeySharder::new(["x"]).shard(b"y", 10),
        Err(Error::UnknownKey("y".into()))
    );
}

#[test]
fn sharded_invalid_configs() {
    for n in [0, 1] {
        match ShardedLog::<u32>::builder().shards(n).build() {
            Err(Error::InvalidConfig(why)) => assert!(why.contains("shards"), "{why}"),
            other => panic!("shards({n}): {other:?}"),
        }
    }
    match ShardedLog::<u32>::builder()
        .shards(2)
        .sharder(KeySharder::new(["a", "b", "c"]))
        .build()
    {
        Err(Error::InvalidConfig(why)) => assert!(why.contains("KeySharder"), "{why}"),
        other => panic!("{other:?}"),
    }
    // As many keys as shards is fine; a repeated key counts once.
    ShardedLog::<u32>::builder()
        .shards(2)
        .sharder(KeySharder::new(["a", "b", "a"]))
        .build()
        .unwrap();
    // Log settings are checked too.
    assert!(matches!(
        ShardedLog::<u32>::builder().segment_size(0).build(),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn sharded_per_key_offsets_streams_and_ranges() {
    let log: ShardedLog<String, KeySharder> = ShardedLog::builder()
        .shards(3)
        .sharder(KeySharder::new(["users", "groups", "teams"]))
        .segment_size(4)
        .history_segments(1)
        .start_offset(10)
        .build()
        .unwrap();
    assert_eq!(log.range("users").unwrap(), None);
    assert_eq!(log.read("users", 10), Err(Error::FutureOffset));
    assert_eq!(log.read("users", 9), Err(Error::OutOfRange));
    assert_eq!(log.write("users", "alice".into()).unwrap(), 10);
    assert_eq!(log.write("users", "bob".into()).unwrap(), 11);
    assert_eq!(log.write("groups", "admins".into()).unwrap(), 10);
    assert_eq!(
        log.write_batch("users", ["carol".to_string(), "dan".into()])
            .unwrap(),
        12..14
    );
    assert_eq!(log.range("users").unwrap(), Some((10, 13)));
    assert_eq!(log.range("groups").unwrap(), Some((10, 10)));
    assert_eq!(log.range("teams").unwrap(), None);
    assert_eq!(log.read("groups", 10).unwrap().data, "admins");
    assert_eq!(log.read("groups", 11), Err(Error::FutureOffset));
    assert_eq!(log.read("users", 11).unwrap().data, "bob");
    let mut out = Vec::new();
    assert_eq!(log.read_batch("users", 11, &mut out, 10), Ok(3));
    assert_eq!(
        out.iter().map(|r| r.data.as_str()).collect::<Vec<_>>(),
        ["bob", "carol", "dan"]
    );

    let mut users = log.stream("users", 10).unwrap();
    let mut groups = log.stream("groups", 10).unwrap();
    for _ in 0..10 {
        log.write("groups", "g".into()).unwrap();
    }
    // groups purged its first segment; users did not.
    assert_eq!(log.range("groups").unwrap(), Some((14, 20)));
    assert_eq!(log.range("users").unwrap(), Some((10, 13)));
    assert_eq!(groups.try_recv(), Err(Error::OutOfRange));
    log.close();
    let got: Vec<String> = users.by_ref().map(|r| r.unwrap().data).collect();
    assert_eq!(got, ["alice", "bob", "carol", "dan"]);
    assert_eq!(log.write("teams", "x".into()), Err(Error::Closed));
    assert_eq!(log.write("users", "x".into()), Err(Error::Closed));
}

#[test]
fn sharded_fnv_keys_land_on_their_shard() {
    let log: ShardedLog<u32> = ShardedLog::builder().shards(7).build().unwrap();
    let keys = ["a", "b", "c", "foo", "foobar", ""];
    for (i, k) in keys.iter().enumerate() {
        log.write(k, i as u32).unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        let shard = log.shard_of(k).unwrap();
        assert_eq!(shard, Fnv1aSharder.shard(k.as_bytes(), 7).unwrap());
        let mut out = Vec::new();
        let (first, last) = log.shard(shard).range().unwrap();
        log.shard(shard)
            .read_batch(first, &mut out, usize::MAX)
            .unwrap();
        assert_eq!(out.len() as u64, last - first + 1);
        assert!(out.iter().any(|r| r.data == i as u32));
    }
    // The records are spread exactly as the hash says.
    let mut total = 0;
    for s in 0..7 {
        let want = keys
            .iter()
            .filter(|k| Fnv1aSharder.shard(k.as_bytes(), 7).unwrap() == s)
            .count() as u64;
        assert_eq!(log.shard(s).next_offset(), want);
        total += want;
    }
    assert_eq!(total, keys.len() as u64);
}

// ------------------------------------------------------- close

#[test]
fn close_semantics() {
    let log = log_with(0, 4, 2);
    let mut s1 = log.stream(0);
    let s2 = log.stream(0);
    log.write_batch(0..5u64).unwrap();
    assert!(!log.is_closed());
    log.close();
    log.close(); // idempotent
    assert!(log.is_closed());
    assert_eq!(log.write(9), Err(Error::Closed));
    assert_eq!(log.write_batch([9, 9]), Err(Error::Closed));
    assert_eq!(log.write_batch(std::iter::empty()), Err(Error::Closed));
    // (`next_offset` is only specified while the log is open: failed claims
    // after the close may move it, so it is not checked here.)
    assert_eq!(log.range(), Some((0, 4)));
    assert_eq!(log.read(4).unwrap().data, 4);
    assert_eq!(log.read(5), Err(Error::FutureOffset));

    for want in 0..5u64 {
        assert_eq!(s1.try_recv().unwrap().data, want);
    }
    assert_eq!(s1.try_recv(), Err(Error::Closed));
    assert_eq!(s1.try_recv(), Err(Error::Closed));
    assert_eq!(s1.next(), None);
    assert_eq!(s1.recv_timeout(Duration::from_secs(60)), Err(Error::Closed));

    let drained: Vec<u64> = s2.map(|r| r.unwrap().data).collect();
    assert_eq!(drained, [0, 1, 2, 3, 4]);

    // A stream created after the close, past the end, ends at once.
    assert_eq!(log.stream(5).next(), None);
    assert_eq!(log.stream(1000).next(), None);
}

#[test]
fn close_wakes_blocked_streams() {
    let log = log_with(0, 4, 2);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let s = log.stream(0);
            thread::spawn(move || s.map(|r| r.unwrap().data).collect::<Vec<u64>>())
        })
        .collect();
    log.write_batch([1, 2, 3]).unwrap();
    thread::sleep(Duration::from_millis(20));
    log.close();
    for r in readers {
        assert_eq!(r.join().unwrap(), [1, 2, 3]);
    }
}

#[test]
fn recv_timeout_then_stream_still_works() {
    let log = log_with(0, 4, 2);
    let mut s = log.stream(0);
    assert_eq!(
        s.recv_timeout(Duration::from_millis(10)),
        Err(Error::Timeout)
    );
    assert_eq!(s.recv_timeout(Duration::ZERO), Err(Error::Timeout));
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    assert_eq!(s.ended(), None);
    log.write(42).unwrap();
    assert_eq!(s.recv_timeout(Duration::from_millis(10)).unwrap().data, 42);
    assert_eq!(
        s.recv_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    );
    // A writer in another thread satisfies a long wait.
    let w = log.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        w.write(43).unwrap();
    });
    assert_eq!(s.recv_timeout(Duration::from_secs(600)).unwrap().data, 43);
    t.join().unwrap();
    log.close();
    assert_eq!(s.recv_timeout(Duration::from_millis(1)), Err(Error::Closed));
    assert_eq!(s.next(), None);
}

#[test]
fn timestamps_come_from_the_clock() {
    use memlog::clock::ManualClock;
    use std::time::UNIX_EPOCH;
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
    let log: Log<u8> = Log::builder().clock(clock.clone()).build().unwrap();
    log.write(1).unwrap();
    clock.advance(Duration::from_secs(5));
    log.write_batch([2, 3]).unwrap();
    let t = |o| log.read(o).unwrap().created;
    assert_eq!(t(0), UNIX_EPOCH + Duration::from_secs(1_000));
    assert_eq!(t(1), UNIX_EPOCH + Duration::from_secs(1_005));
    assert_eq!(t(2), UNIX_EPOCH + Duration::from_secs(1_005));
}

#[test]
fn offsets_unique_under_concurrent_batches_and_close() {
    // Writes racing with close either land (and are readable) or fail Closed.
    let log: Log<(u64, u64)> = Log::builder()
        .segment_size(8)
        .history_segments(10_000)
        .build()
        .unwrap();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                let mut landed = Vec::new();
                for seq in 0.. {
                    let r = if seq % 3 == 0 {
                        log.write_batch([(w, seq), (w, seq)]).map(|r| r.start)
                    } else {
                        log.write((w, seq))
                    };
                    match r {
                        Ok(o) => landed.push((o, seq)),
                        Err(Error::Closed) => break,
                        Err(e) => panic!("{e}"),
                    }
                    if seq == 5_000 {
                        break;
                    }
                }
                landed
            })
        })
        .collect();
    // Close in the middle of the writes.
    while log.next_offset() < 1_000 {
        thread::yield_now();
    }
    log.close();
    let mut seen = HashSet::new();
    let mut count = 0u64;
    // Join every writer before reading: a landed write becomes readable only
    // once every earlier offset is published too.
    let landed: Vec<Vec<(u64, u64)>> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    for (w, l) in landed.into_iter().enumerate() {
        for (o, seq) in l {
            assert_eq!(log.read(o).unwrap().data, (w as u64, seq));
            assert!(seen.insert(o));
            count += if seq % 3 == 0 { 2 } else { 1 };
        }
    }
    // Every landed offset is readable and they are dense from 0.
    assert_eq!(log.range(), Some((0, count - 1)));
    let drained = log
        .stream(0)
        .inspect(|r| assert!(r.is_ok(), "{r:?}"))
        .count() as u64;
    assert_eq!(drained, count);
}

#[test]
fn next_offset_after_close_is_the_end_of_what_was_written() {
    let log: Log<u64> = Log::builder().start_offset(10).build().unwrap();
    log.write_batch(0..5).unwrap();
    log.close();
    for _ in 0..3 {
        assert_eq!(log.write(9), Err(Error::Closed));
        assert_eq!(log.write_batch([1, 2]), Err(Error::Closed));
    }
    assert_eq!(
        log.next_offset(),
        15,
        "failed claims must not move next_offset"
    );
    assert_eq!(log.range(), Some((10, 14)));
}

#[test]
fn stream_started_far_in_the_future_waits_for_its_offset() {
    // Small segments and little history: by the time offset 1000 is written,
    // hundreds of segments were installed and purged under the waiting stream.
    let log = log_with(0, 4, 1);
    let mut s = log.stream(1_000);
    assert_eq!(s.try_recv(), Err(Error::FutureOffset));
    let reader = thread::spawn(move || {
        let r = s.next().expect("not ended").expect("no error");
        (r.offset, r.data, s.try_recv())
    });
    for i in 0..=1_000u64 {
        log.write(i * 3).unwrap();
    }
    let (offset, data, after) = reader.join().unwrap();
    assert_eq!((offset, data), (1_000, 3_000));
    assert_eq!(after, Err(Error::FutureOffset));

    // Beyond anything that will be written: it waits until the log closes.
    let mut far = log.stream(u64::MAX - 1);
    assert_eq!(far.try_recv(), Err(Error::FutureOffset));
    log.close();
    assert_eq!(far.next(), None);
}
