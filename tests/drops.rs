//! Every record is dropped exactly once: retained records when the log is
//! dropped, purged ones when the epoch collector reclaims their segment.

use memlog::Log;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

#[derive(Default, Debug)]
struct Counts {
    made: AtomicU64,
    dropped: AtomicU64,
}

impl Counts {
    fn made(&self) -> u64 {
        self.made.load(Ordering::SeqCst)
    }
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Counts its constructions (including clones) and drops.
#[derive(Debug)]
struct Counted {
    id: u64,
    counts: Arc<Counts>,
}

impl Counted {
    fn new(id: u64, counts: &Arc<Counts>) -> Self {
        counts.made.fetch_add(1, Ordering::SeqCst);
        Counted {
            id,
            counts: Arc::clone(counts),
        }
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted::new(self.id, &self.counts)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let before = self.counts.dropped.fetch_add(1, Ordering::SeqCst);
        assert!(before < self.counts.made(), "more drops than constructions");
    }
}

/// Waits (boundedly) for the epoch collector to run the deferred
/// reclamations, then checks drops == constructions exactly.
fn settle(counts: &Counts) {
    for i in 0..10_000 {
        assert!(counts.dropped() <= counts.made(), "over-dropped");
        if counts.dropped() == counts.made() {
            break;
        }
        // Reads pin memlog's collector (every 128th pin collects); a memlog
        // call drops what memlog postponed on this thread and what exited
        // threads left behind.
        let log = Log::<u8>::new();
        log.write(0).unwrap();
        for _ in 0..129 {
            let _ = log.read(0);
        }
        if i % 100 == 99 {
            thread::sleep(std::time::Duration::from_millis(1));
        } else {
            thread::yield_now();
        }
    }
    assert_eq!(counts.dropped(), counts.made(), "leaked records");
}

#[test]
fn dropped_log_with_records_drops_each_once_immediately() {
    let counts = Arc::new(Counts::default());
    let log: Log<Counted> = Log::builder()
        .segment_size(16)
        .history_segments(4)
        .build()
        .unwrap();
    for i in 0..50 {
        log.write(Counted::new(i, &counts)).unwrap();
    }
    log.write_batch((50..60).map(|i| Counted::new(i, &counts)))
        .unwrap();
    // Read and clone some (the copies are dropped by us).
    assert_eq!(log.read(7).unwrap().data.id, 7);
    let mut out = Vec::new();
    log.read_batch(10, &mut out, 20).unwrap();
    let kept = log
        .stream(0)
        .take(5)
        .map(|r| r.unwrap().data)
        .collect::<Vec<_>>();
    assert_eq!(
        kept.iter().map(|c| c.id).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    // Alive now: the 60 in the log, the 20 in `out`, the 5 kept. (The read's
    // copy is gone, and so are any records the stream cloned ahead but did
    // not yield: it was dropped after `take(5)`.)
    let live = |c: &Counts| c.made() - c.dropped();
    assert_eq!(live(&counts), 60 + 20 + 5);
    drop(out);
    drop(kept);
    assert_eq!(live(&counts), 60);
    let clone = log.clone();
    drop(log);
    assert_eq!(live(&counts), 60, "a handle is still alive");
    drop(clone);
    // No purge happened, so nothing waits for the collector.
    assert_eq!(counts.dropped(), counts.made());
}

#[test]
fn purged_and_retained_records_drop_exactly_once() {
    let counts = Arc::new(Counts::default());
    let log: Log<Counted> = Log::builder()
        .segment_size(4)
        .history_segments(2)
        .build()
        .unwrap();
    let mut reads = 0;
    for i in 0..2_000u64 {
        if i % 7 == 0 {
            let n = (i % 5 + 1) as usize;
            log.write_batch((0..n).map(|j| Counted::new(i * 10 + j as u64, &counts)))
                .unwrap();
        } else {
            log.write(Counted::new(i * 10, &counts)).unwrap();
        }
        if i % 3 == 0 {
            let (first, last) = log.range().unwrap();
            let r = log.read(first).unwrap();
            assert_eq!(r.offset, first);
            let mut out = Vec::new();
            reads += log.read_batch(first, &mut out, 100).unwrap();
            assert_eq!(out.last().unwrap().offset, last);
        }
    }
    assert!(reads > 0);
    drop(log);
    settle(&counts);
}

#[test]
fn concurrent_writers_and_readers_drop_exactly_once() {
    let counts = Arc::new(Counts::default());
    let log: Log<Counted> = Log::builder()
        .segment_size(8)
        .history_segments(1)
        .build()
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut s = log.stream(0);
            let log = log.clone();
            thread::spawn(move || {
                let mut n = 0u64;
                loop {
                    match s.next() {
                        Some(Ok(_)) => n += 1,
                        // Fell behind: resume from the earliest retained.
                        Some(Err(memlog::Error::OutOfRange)) => {
                            // `range()` is None while nothing retained is
                            // published yet (a writer ran ahead): wait for it.
                            let first = loop {
                                match log.range() {
                                    Some((first, _)) => break first,
                                    None => thread::yield_now(),
                                }
                            };
                            s = log.stream(first);
                        }
                        Some(Err(e)) => panic!("{e}"),
                        None => return n,
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let log = log.clone();
            let counts = counts.clone();
            thread::spawn(move || {
                for i in 0..3_000u64 {
                    log.write(Counted::new(w << 32 | i, &counts)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    log.close();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    drop(log);
    settle(&counts);
}

/// Through the exclusive writer too, each record drops exactly once:
/// singles and batches across segments, a write refused after `close`, a
/// reader visiting and cloning meanwhile, and a last segment left partly
/// filled.
#[test]
fn exclusive_writer_records_drop_exactly_once() {
    let counts = Arc::new(Counts::default());
    let (mut w, log) = Log::<Counted>::builder()
        .segment_size(8)
        .history_segments(2)
        .build_exclusive()
        .unwrap();
    let reader = {
        let mut s = log.stream(0);
        let log = log.clone();
        thread::spawn(move || {
            let mut kept = Vec::new();
            loop {
                // Clones every record it visits: at least those retained
                // at the end, which it visits before `Closed`.
                match s.visit(16, |r| kept.push(r.to_owned())) {
                    Ok(_) => {}
                    // Behind the purge: go on from what is retained.
                    Err(memlog::Error::OutOfRange) => {
                        let (first, _) = log.range().expect("records retained");
                        s = log.stream(first);
                    }
                    Err(memlog::Error::Closed) => return kept.len(),
                    Err(e) => panic!("{e}"),
                }
            }
        })
    };
    let mut id = 0;
    for i in 0..3_000u64 {
        if i % 5 == 0 {
            let n = i % 13 + 1;
            w.write_batch((0..n).map(|_| {
                id += 1;
                Counted::new(id, &counts)
            }))
            .unwrap();
        } else {
            id += 1;
            w.write(Counted::new(id, &counts)).unwrap();
        }
    }
    // The last segment is partly filled (or not: either way below the mark).
    log.close();
    id += 1;
    assert_eq!(
        w.write(Counted::new(id, &counts)).unwrap_err(),
        memlog::Error::Closed
    );
    assert!(reader.join().unwrap() > 0);
    let live = counts.made() - counts.dropped();
    assert!(live > 0, "the retained records are alive while the log is");
    drop(w);
    drop(log);
    settle(&counts);
}
