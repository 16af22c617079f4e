#![cfg(loom)]
//! Segments: rotation and purge racing readers (DESIGN invariant 3), the
//! install race (invariant 4), reclamation and drop accounting (invariant 5),
//! and batches that straddle a segment boundary.
//!
//! Under loom the reclaimer runs a retired segment's closure as soon as the
//! last guard active at retire time drops, so a reader that touched a segment
//! after unpinning, or a segment freed while pinned, shows up as a loom
//! `UnsafeCell` access error or a use-after-free of the slot. Readers run in
//! spawned threads, writers on the main thread (see publish.rs for why), and
//! each model asserts that the outcomes of its race were all reached.

use loom::thread;
use memlog::{Error, Lag, Log, Record};
use memlog_loom_tests::{drop_postponed, explore, log, outcome, Census, Counted, T0};
use std::sync::{Arc, Mutex};

/// Payload for offset `o` in models with `u64` data: never equal to another
/// offset's, so reading the wrong segment's slot would show.
fn val(o: u64) -> u64 {
    1000 + o
}

/// Segment size 1, no history: every write purges the previous segment, and
/// the third write reuses the first segment's memory (the pool) for segment
/// 2. A reader of offset 0, and a batch read from 0, racing that gets the
/// right record, `OutOfRange` or `FutureOffset`, never the record of another
/// offset (the ABA check on the segment index), and once 0 is out of range
/// it stays so.
#[test]
fn purge_racing_read_never_returns_another_offset() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let reader = {
            let log = log.clone();
            thread::spawn(move || {
                let check = |r: &Result<Record<u64>, Error>| match r {
                    Ok(rec) => assert_eq!((rec.offset, rec.data, rec.created), (0, val(0), T0)),
                    Err(e) => assert!(
                        *e == Error::OutOfRange || *e == Error::FutureOffset,
                        "{e:?}"
                    ),
                };
                let a = log.read(0);
                check(&a);
                let b = log.read(0);
                check(&b);
                if a == Err(Error::OutOfRange) {
                    assert_eq!(b, Err(Error::OutOfRange), "a purged offset came back");
                }
                let mut out = Vec::new();
                let batch = log.read_batch(0, &mut out, 3);
                match &batch {
                    Ok(n) => {
                        assert_eq!(*n, out.len());
                        for (i, rec) in out.iter().enumerate() {
                            assert_eq!((rec.offset, rec.data), (i as u64, val(i as u64)));
                        }
                    }
                    Err(e) => assert!(
                        *e == Error::OutOfRange || *e == Error::FutureOffset,
                        "{e:?}"
                    ),
                }
                (outcome(&a), outcome(&batch))
            })
        };
        for o in 0..3 {
            assert_eq!(log.write(val(o)).unwrap(), o);
        }
        let (a, batch) = reader.join().unwrap();
        seen.note(format!("read {a}"));
        seen.note(format!("batch {batch}"));
        assert_eq!(log.range(), Some((2, 2)));
        assert_eq!(log.read(0), Err(Error::OutOfRange));
        assert_eq!(log.read(1), Err(Error::OutOfRange));
        assert_eq!(log.read(2).unwrap().data, val(2));
    })
    .assert_reached(&[
        "read Future",
        "read Ok",
        "read OutOfRange",
        "batch Future",
        "batch Ok",
        "batch OutOfRange",
    ]);
}

/// Two writers cross into a new segment at once (segment size 2, no
/// history; offsets 0 and 1 already fill segment 0): both race to install
/// segment 1 and purge segment 0. Both land, each readable with its own
/// payload, the purged offsets are out of range, and after the log drops
/// every payload was dropped exactly once: a second installed segment, or a
/// loser's spare that was leaked or freed twice, would break the count.
#[test]
fn install_race_one_segment_installed_no_leak() {
    explore(|seen| {
        let census = Census::new(4);
        {
            let log: Log<Counted> = log(2, 0);
            assert_eq!(
                log.write_batch([census.make(0), census.make(1)]).unwrap(),
                0..2
            );
            let other = {
                let log = log.clone();
                let payload = census.make(3);
                thread::spawn(move || (log.write(payload).unwrap(), 3))
            };
            let mine = (log.write(census.make(2)).unwrap(), 2);
            let mut got = vec![mine, other.join().unwrap()];
            seen.note(format!("main got {}", mine.0));
            got.sort();
            assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [2, 3]);
            assert_eq!(log.range(), Some((2, 3)));
            for (o, id) in got {
                let rec = log.read(o).unwrap();
                assert_eq!((rec.offset, rec.data.id), (o, id));
            }
            assert_eq!(log.read(0).unwrap_err(), Error::OutOfRange);
            assert_eq!(log.read(1).unwrap_err(), Error::OutOfRange);
            // The purged records are gone once this thread makes one more
            // memlog call (the collecting thread drops what its pins
            // collected at the start of its next call; the other thread's
            // were handed on when it exited); the retained ones have one
            // instance each.
            drop_postponed(&log);
            assert_eq!((census.live(0), census.live(1)), (0, 0));
            assert_eq!((census.live(2), census.live(3)), (1, 1));
        }
        census.assert_all_dropped();
    })
    .assert_reached(&["main got 2", "main got 3"]);
}

/// Segment size 1, no history: the writer of offset 1 must install segment 1,
/// which purges segment 0, while the writer of offset 0 may still be between
/// its claim and its publish. The installer waits for the mark to pass
/// segment 0 before purging it, so the laggard never writes into a retired or
/// recycled segment: both writes return, offset 1 is readable with its own
/// payload, offset 0 is out of range (purged), a reader of offset 0 sees it
/// whole, unwritten or purged, and every payload is dropped exactly once.
#[test]
fn install_waits_for_laggard_before_purge() {
    explore(|seen| {
        let census = Census::new(2);
        {
            let log: Log<Counted> = log(1, 0);
            let other = {
                let log = log.clone();
                let payload = census.make(1);
                thread::spawn(move || {
                    let r = (log.write(payload).unwrap(), 1);
                    drop_postponed(&log);
                    r
                })
            };
            let reader = {
                let log = log.clone();
                thread::spawn(move || {
                    let r = log.read(0).map(|rec| rec.data.id);
                    assert!(
                        matches!(r, Ok(_) | Err(Error::FutureOffset) | Err(Error::OutOfRange)),
                        "{r:?}"
                    );
                    drop_postponed(&log);
                    r
                })
            };
            let mine = (log.write(census.make(0)).unwrap(), 0);
            let theirs = other.join().unwrap();
            let r = reader.join().unwrap();
            let mut got = [mine, theirs];
            got.sort();
            assert_eq!(got.map(|g| g.0), [0, 1]);
            if let Ok(id) = r {
                assert_eq!(id, got[0].1, "reader got another record for offset 0");
            }
            assert_eq!(log.range(), Some((1, 1)));
            assert_eq!(log.read(0).unwrap_err(), Error::OutOfRange);
            assert_eq!(log.read(1).unwrap().data.id, got[1].1);
            drop_postponed(&log);
            assert_eq!(
                census.live(got[0].1),
                0,
                "the purged record was not dropped"
            );
            seen.note(format!("main got {}", mine.0));
            seen.note(format!("reader {}", outcome(&r)));
        }
        census.assert_all_dropped();
    })
    .assert_reached(&[
        "main got 0",
        "main got 1",
        "reader Future",
        "reader Ok",
        "reader OutOfRange",
    ]);
}

/// Two writers race to install the very first segment (segment size 2, both
/// offsets in segment 0): one wins, the loser pools or frees its spare, both
/// records land, and the drop count is exact.
#[test]
fn install_race_first_segment_no_leak() {
    explore(|seen| {
        let census = Census::new(2);
        {
            let log: Log<Counted> = log(2, 1);
            let other = {
                let log = log.clone();
                let payload = census.make(1);
                thread::spawn(move || (log.write(payload).unwrap(), 1))
            };
            let mine = (log.write(census.make(0)).unwrap(), 0);
            seen.note(format!("main got {}", mine.0));
            let got = [mine, other.join().unwrap()];
            assert_eq!(log.range(), Some((0, 1)));
            for (o, id) in got {
                assert_eq!(log.read(o).unwrap().data.id, id);
            }
        }
        census.assert_all_dropped();
    })
    .assert_reached(&["main got 0", "main got 1"]);
}

/// A reader pinned (inside `read`, then inside a stream's `try_recv`) while
/// its segment is purged, reclaimed and its memory reused for a newer
/// segment: the reader either clones the right record or gets `OutOfRange`;
/// the reclaimer never frees the segment under it (loom's cell tracking), and
/// the drop count is exact once the log and the reader's clones are dropped.
#[test]
fn reclaim_while_reader_pinned_no_use_after_free_no_leak() {
    explore(|seen| {
        let census = Census::new(3);
        {
            let log: Log<Counted> = log(1, 0);
            assert_eq!(log.write(census.make(0)).unwrap(), 0);
            let reader = {
                let log = log.clone();
                thread::spawn(move || {
                    let r = log.read(0);
                    match &r {
                        Ok(rec) => assert_eq!((rec.offset, rec.data.id), (0, 0)),
                        Err(e) => assert_eq!(*e, Error::OutOfRange),
                    }
                    let mut s = log.stream(0);
                    let n = s.try_recv();
                    match &n {
                        Ok(rec) => assert_eq!((rec.offset, rec.data.id), (0, 0)),
                        Err(e) => assert_eq!(*e, Error::OutOfRange),
                    }
                    drop_postponed(&log);
                    // Hand the clones back: they are dropped after the log.
                    (r, n)
                })
            };
            assert_eq!(log.write(census.make(1)).unwrap(), 1);
            assert_eq!(log.write(census.make(2)).unwrap(), 2);
            let (r, n) = reader.join().unwrap();
            seen.note(format!("read {} stream {}", outcome(&r), outcome(&n)));
            assert_eq!(log.read(2).unwrap().data.id, 2);
            // Segments 0 and 1 were reclaimed: only the reader's clones of 0
            // are left of their payloads.
            let clones = r.is_ok() as usize + n.is_ok() as usize;
            drop_postponed(&log);
            assert_eq!((census.live(0), census.live(1)), (clones, 0));
            drop(log);
            assert_eq!(census.live(2), 0);
            drop((r, n));
        }
        census.assert_all_dropped();
    })
    .assert_reached(&[
        "read Ok stream Ok",
        "read Ok stream OutOfRange",
        "read OutOfRange stream OutOfRange",
    ]);
}

/// A two-record batch (segment size 1, two history segments: the batch always
/// spans two segments) races a single write and a batch reader. The batch
/// gets two contiguous offsets, the single write the remaining one, every
/// offset holds the payload its writer put there, and the concurrent
/// `read_batch` from 0 returns a gap-free prefix consistent with that.
#[test]
fn write_batch_across_segment_boundary_races_single_write() {
    explore(|seen| {
        let log = log::<u64>(1, 2);
        let single = {
            let log = log.clone();
            thread::spawn(move || log.write(200).unwrap())
        };
        let reader = {
            let log = log.clone();
            thread::spawn(move || {
                let mut out = Vec::new();
                match log.read_batch(0, &mut out, 3) {
                    Ok(n) => assert_eq!(n, out.len()),
                    Err(e) => assert_eq!(e, Error::FutureOffset),
                }
                out
            })
        };
        let batch = log.write_batch([100, 101]).unwrap();
        let one = single.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(batch.end - batch.start, 2);
        assert!(
            batch == (0..2) && one == 2 || batch == (1..3) && one == 0,
            "{batch:?} {one}"
        );
        assert_eq!(log.range(), Some((0, 2)));
        let mut want = [0; 3];
        want[batch.start as usize] = 100;
        want[batch.start as usize + 1] = 101;
        want[one as usize] = 200;
        for o in 0..3 {
            let rec = log.read(o).unwrap();
            assert_eq!(
                (rec.offset, rec.data, rec.created),
                (o, want[o as usize], T0)
            );
        }
        for (i, rec) in got.iter().enumerate() {
            assert_eq!((rec.offset, rec.data), (i as u64, want[i]));
        }
        seen.note(format!("batch at {}", batch.start));
        seen.note(format!("reader got {}", got.len()));
    })
    .assert_reached(&[
        "batch at 0",
        "batch at 1",
        "reader got 0",
        "reader got 1",
        "reader got 2",
        "reader got 3",
    ]);
}

/// Segment size 1, no history: offset 0 is written first, then two writers
/// race for offsets 1 and 2. The writer of 2 may load the ring place (still
/// holding segment 0) before the other installs segment 1 and carries the
/// mark to 2; when it then sees the mark, it must reload the place rather
/// than trust what it loaded before (a debug assertion there used to fire,
/// panicking a writer with its offset claimed). Run it in a debug build too:
/// the assertion only exists there.
#[test]
fn install_reloads_the_place_after_waiting_for_the_mark() {
    explore(|seen| {
        let log: Log<u64> = log(1, 0);
        assert_eq!(log.write(val(0)).unwrap(), 0);
        let other = {
            let log = log.clone();
            thread::spawn(move || log.write(0).unwrap())
        };
        let mine = log.write(0).unwrap();
        let theirs = other.join().unwrap();
        let mut got = [mine, theirs];
        got.sort();
        assert_eq!(got, [1, 2]);
        seen.note(format!("main got {mine}"));
        assert_eq!(log.range(), Some((2, 2)));
        assert_eq!(log.read(2).unwrap().offset, 2);
    })
    .assert_reached(&["main got 1", "main got 2"]);
}

/// A payload whose drop writes a record to the log it lives in (the slot
/// holding the log is cleared at the end, to break the cycle). Copies that
/// readers take do not echo.
struct Echo {
    slot: Arc<Mutex<Option<Log<Echo>>>>,
    payload: Counted,
    echo: bool,
}

impl Clone for Echo {
    fn clone(&self) -> Self {
        Echo {
            slot: Arc::clone(&self.slot),
            payload: self.payload.clone(),
            echo: false,
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let log = self.slot.lock().unwrap().clone();
        if let (true, Some(log)) = (self.echo, log) {
            let census = self.payload.census();
            let echo = Echo {
                slot: Arc::clone(&self.slot),
                payload: census.make(self.payload.id + 2),
                echo: false,
            };
            log.write(echo).unwrap();
        }
    }
}

/// Segment size 1, no history: each write purges the record before it, whose
/// drop writes to the same log. The drop must not run between a writer's
/// claim and its publish (there it would wait for its own offset for ever:
/// loom reports the spin as a livelock); it runs at the start of the
/// thread's next memlog call, or when the thread exits. Both writes and both
/// echoes land, and every record is dropped exactly once.
#[test]
fn reentrant_drop_of_a_purged_record_runs_outside_the_claim_window() {
    explore(|seen| {
        let census = Census::new(4);
        let slot = Arc::new(Mutex::new(None));
        let make = |id: usize| Echo {
            slot: Arc::clone(&slot),
            payload: census.make(id),
            echo: true,
        };
        let log: Log<Echo> = log(1, 0);
        *slot.lock().unwrap() = Some(log.clone());
        let other = {
            let log = log.clone();
            let payload = make(1);
            thread::spawn(move || {
                let o = log.write(payload).unwrap();
                drop_postponed(&log);
                o
            })
        };
        let mine = log.write(make(0)).unwrap();
        let theirs = other.join().unwrap();
        seen.note(format!("main got {mine}"));
        assert_eq!(mine + theirs, 1);
        // A read drops what main's own calls postponed (the other thread
        // made one more call too), so the echoes land.
        while log.next_offset() < 4 {
            let _ = log.read(0);
            thread::yield_now();
        }
        slot.lock().unwrap().take();
        drop(log);
        // A call on any log drops what is still postponed on this thread.
        let _ = memlog_loom_tests::log::<u8>(1, 0).read(0);
        census.assert_all_dropped();
    })
    .assert_reached(&["main got 0", "main got 1"]);
}

/// A stream set to `Lag::Skip` races writes that purge its next offset
/// (segment size 1, no history: each write purges the one before). Every
/// offset is accounted for exactly once, in order: yielded with its own
/// payload, or counted in a `Lagged { skipped }` with `skipped > 0` (the purge
/// point it reads after finding its segment replaced is past its position:
/// the installer raised it before linking the new segment). After a skip the
/// stream judges by the mark, so it never yields an unpublished slot.
///
/// The reader polls (`try_recv`, yielding) rather than parking: loom clears a
/// thread's unpark token when it blocks on a loom `Mutex` (the reclaimer
/// stand-in's), which would report a wake-up that std delivers as a deadlock.
#[test]
fn skipping_stream_racing_purge_accounts_for_every_offset() {
    explore(|seen| {
        let log = log::<u64>(1, 0);
        let reader = {
            let mut s = log.stream(0).on_lag(Lag::Skip);
            thread::spawn(move || {
                let (mut next, mut items) = (0, Vec::new());
                loop {
                    match s.try_recv() {
                        Ok(r) => {
                            assert_eq!((r.offset, r.data, r.created), (next, val(next), T0));
                            next += 1;
                            items.push("r".to_string());
                        }
                        Err(Error::Lagged { skipped }) => {
                            assert!(skipped > 0, "a skip must move forward");
                            next += skipped;
                            items.push(format!("lag{skipped}"));
                        }
                        Err(Error::FutureOffset) => thread::yield_now(),
                        Err(Error::Closed) => break,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                (next, items.join(" "))
            })
        };
        for o in 0..3 {
            assert_eq!(log.write(val(o)).unwrap(), o);
        }
        log.close();
        let (next, items) = reader.join().unwrap();
        assert_eq!(next, 3, "{items}");
        seen.note(items);
    })
    .assert_reached(&["r r r", "lag1 r r", "r lag1 r", "lag2 r"]);
}
