//! Concurrent runs with random shapes, whose histories are checked: each
//! stream sees increasing, gapless offsets (ending in at most one
//! `OutOfRange`), every record is exactly what its writer wrote at that
//! offset, and batches are contiguous.

use memlog::{Error, Log};
use proptest::prelude::*;
use std::collections::HashMap;
use std::thread;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Rec {
    w: u32,
    seq: u32,
    /// Index within its batch, and the batch's length.
    idx: u32,
    len: u32,
    check: u64,
}

fn sum(w: u32, seq: u32, idx: u32, len: u32) -> u64 {
    let x = (u64::from(w) << 48) ^ (u64::from(seq) << 20) ^ (u64::from(idx) << 8) ^ u64::from(len);
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29) ^ 0x5555
}

impl Rec {
    fn new(w: u32, seq: u32, idx: u32, len: u32) -> Self {
        Rec {
            w,
            seq,
            idx,
            len,
            check: sum(w, seq, idx, len),
        }
    }
}

#[derive(Debug, Clone)]
struct Shape {
    start: u64,
    seg: usize,
    hist: usize,
    /// Per writer: the batch sizes it writes, in order (1 = `write`).
    writers: Vec<Vec<usize>>,
    readers: usize,
    batch_readers: usize,
}

fn shape() -> impl Strategy<Value = Shape> {
    (0u64..1000, 1usize..8, 0usize..4).prop_flat_map(|(start, seg, hist)| {
        let cap = seg * (hist + 1);
        (
            prop::collection::vec(prop::collection::vec(1usize..=cap.min(12), 1..40), 1..5),
            1usize..4,
            0usize..3,
        )
            .prop_map(move |(writers, readers, batch_readers)| Shape {
                start,
                seg,
                hist,
                writers,
                readers,
                batch_readers,
            })
    })
}

fn check_run(s: Shape) -> Result<(), TestCaseError> {
    let log: Log<Rec> = Log::builder()
        .start_offset(s.start)
        .segment_size(s.seg)
        .history_segments(s.hist)
        .build()
        .unwrap();
    let streams: Vec<_> = (0..s.readers)
        .map(|_| {
            let stream = log.stream(s.start);
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut end = None;
                for r in stream {
                    match r {
                        Ok(r) => seen.push((r.offset, r.data)),
                        Err(e) => {
                            assert!(end.is_none(), "two errors");
                            end = Some(e);
                        }
                    }
                }
                (seen, end)
            })
        })
        .collect();
    let pollers: Vec<_> = (0..s.batch_readers)
        .map(|i| {
            let log = log.clone();
            thread::spawn(move || {
                let mut runs = Vec::new();
                let mut out = Vec::new();
                let mut at = log.start_offset();
                loop {
                    out.clear();
                    match log.read_batch(at, &mut out, 1 + i * 5) {
                        Ok(n) => {
                            assert_eq!(n, out.len());
                            at = out.last().unwrap().offset + 1;
                            runs.push(out.iter().map(|r| (r.offset, r.data)).collect::<Vec<_>>());
                        }
                        Err(Error::FutureOffset) if log.is_closed() => {
                            if log.range().is_none_or(|r| r.1 < at) {
                                return runs;
                            }
                        }
                        Err(Error::FutureOffset) => thread::yield_now(),
                        Err(Error::OutOfRange) => {
                            if let Some((first, _)) = log.range() {
                                assert!(first > at);
                                at = first;
                            } else {
                                thread::yield_now();
                            }
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        })
        .collect();
    let writers: Vec<_> = s
        .writers
        .iter()
        .cloned()
        .enumerate()
        .map(|(w, sizes)| {
            let log = log.clone();
            thread::spawn(move || {
                let mut given = Vec::new();
                let mut seq = 0u32;
                for n in sizes {
                    let n = n as u32;
                    let recs: Vec<Rec> =
                        (0..n).map(|i| Rec::new(w as u32, seq + i, i, n)).collect();
                    let first = if n == 1 {
                        log.write(recs[0]).unwrap()
                    } else {
                        let r = log.write_batch(recs.clone()).unwrap();
                        assert_eq!(r.end - r.start, u64::from(n));
                        r.start
                    };
                    for (i, r) in recs.into_iter().enumerate() {
                        given.push((first + i as u64, r));
                    }
                    seq += n;
                }
                given
            })
        })
        .collect();
    // What each offset must hold, from the writers' own results.
    let mut truth: HashMap<u64, Rec> = HashMap::new();
    for h in writers {
        for (o, r) in h.join().unwrap() {
            prop_assert!(truth.insert(o, r).is_none(), "offset {} given twice", o);
        }
    }
    let total = truth.len() as u64;
    for o in s.start..s.start + total {
        prop_assert!(truth.contains_key(&o), "offset {} not given", o);
    }
    prop_assert_eq!(log.next_offset(), s.start + total);
    log.close();

    let check_run = |run: &[(u64, Rec)]| -> Result<(), TestCaseError> {
        let mut last_seq: HashMap<u32, u32> = HashMap::new();
        for (i, (o, r)) in run.iter().enumerate() {
            prop_assert_eq!(Some(r), truth.get(o), "wrong record at {}", o);
            prop_assert_eq!(r.check, sum(r.w, r.seq, r.idx, r.len));
            if i > 0 {
                prop_assert_eq!(*o, run[i - 1].0 + 1, "gap or duplicate at {}", o);
                if r.idx > 0 {
                    let p = run[i - 1].1;
                    prop_assert_eq!((p.w, p.seq), (r.w, r.seq - 1), "batch split at {}", o);
                }
            }
            if let Some(&prev) = last_seq.get(&r.w) {
                prop_assert!(r.seq > prev, "writer {} went back at {}", r.w, o);
            }
            last_seq.insert(r.w, r.seq);
        }
        Ok(())
    };

    for h in streams {
        let (seen, end) = h.join().unwrap();
        if let Some(first) = seen.first() {
            prop_assert_eq!(first.0, s.start);
        }
        check_run(&seen)?;
        match end {
            None => prop_assert_eq!(seen.len() as u64, total),
            Some(Error::OutOfRange) => prop_assert!((seen.len() as u64) < total),
            Some(e) => prop_assert!(false, "stream ended with {:?}", e),
        }
    }
    for h in pollers {
        let runs = h.join().unwrap();
        let mut last = None;
        for run in &runs {
            check_run(run)?;
            if let (Some(l), Some(f)) = (last, run.first()) {
                prop_assert!(f.0 > l, "poller went back");
            }
            last = run.last().map(|r| r.0);
        }
        if total > 0 {
            prop_assert_eq!(last, Some(s.start + total - 1));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_histories(s in shape()) {
        check_run(s)?;
    }
}
