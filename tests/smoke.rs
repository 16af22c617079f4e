use memlog::Log;
use std::thread;

#[test]
fn many_writers_many_streams_small_segments() {
    let log: Log<u64> = Log::builder()
        .segment_size(4)
        .history_segments(50_000)
        .build()
        .unwrap();
    let n_writers = 8u64;
    let per = 20_000u64;
    let total = n_writers * per;
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let s = log.stream(0);
            thread::spawn(move || {
                let mut next = 0u64;
                let mut seen = vec![0u32; 8];
                for r in s {
                    let r = r.expect("no error");
                    assert_eq!(r.offset, next);
                    next += 1;
                    let w = (r.data >> 32) as usize;
                    let i = r.data & 0xffff_ffff;
                    assert_eq!(i as u32, seen[w], "writer order");
                    seen[w] += 1;
                }
                next
            })
        })
        .collect();
    let writers: Vec<_> = (0..n_writers)
        .map(|w| {
            let log = log.clone();
            thread::spawn(move || {
                for i in 0..per {
                    log.write((w << 32) | i).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    log.close();
    for r in readers {
        // readers may fall out of range with such small retention; they panic if so
        assert_eq!(r.join().unwrap(), total);
    }
}
