//! Random operation sequences on a `Log` (written through `Log::write`, or
//! through an exclusive `Writer`), checked against a sequential model.
//!
//! The model: a vector of records plus the Go library's retention arithmetic.
//! With `n` records written, segment size `S` and `H` history segments, the
//! active segment is `(n-1)/S` and the retained records start at segment
//! `max(0, active - H)`: segment `k` is purged when segment `k + H + 1` gets
//! its first record.

use memlog::clock::ManualClock;
use memlog::{Error, Lag, Log, Record, StartAt, Stream, Writer, MAX_START_OFFSET};
use memlog_proptests::{Fetch, Shape};
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAX_BYTES: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Write(Vec<u8>),
    WriteBatch(Vec<Vec<u8>>),
    /// Offset relative to the start, possibly negative; or an absolute extreme.
    Read(Pos),
    ReadBatch(Pos, usize),
    Range,
    NextOffset,
    /// A stream from a position, or from the earliest or latest offset; the
    /// flag sets `Lag::Skip`.
    NewStream(Start, bool),
    TryNext(usize),
    /// `try_visit(max)`.
    TryVisit(usize, usize),
    /// Blocking `visit(max)`, when the model says it would not wait.
    VisitIfReady(usize, usize),
    /// Reads through a pin: `Pinned::get` and `Pinned::read`.
    PinnedRead(Pos),
    NextIfReady(usize),
    NextTimeoutZero(usize),
    Cancel(usize),
    AdvanceClock(u64),
    Close,
}

#[derive(Clone, Copy, Debug)]
enum Start {
    At(Pos),
    Earliest,
    Latest,
}

#[derive(Clone, Copy, Debug)]
enum Pos {
    Rel(i64),
    Zero,
    Max,
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    // Up to one byte over the limit.
    prop::collection::vec(any::<u8>(), 0..=MAX_BYTES + 1)
}

fn pos() -> impl Strategy<Value = Pos> {
    prop_oneof![
        8 => (-3i64..60).prop_map(Pos::Rel),
        1 => Just(Pos::Zero),
        1 => Just(Pos::Max),
    ]
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        4 => pos().prop_map(Start::At),
        1 => Just(Start::Earliest),
        1 => Just(Start::Latest),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => payload().prop_map(Op::Write),
        4 => prop::collection::vec(payload(), 0..12).prop_map(Op::WriteBatch),
        4 => pos().prop_map(Op::Read),
        3 => (pos(), prop_oneof![Just(0usize), 1usize..10, Just(usize::MAX)])
            .prop_map(|(p, m)| Op::ReadBatch(p, m)),
        1 => Just(Op::Range),
        1 => Just(Op::NextOffset),
        2 => (start(), any::<bool>()).prop_map(|(p, skip)| Op::NewStream(p, skip)),
        5 => (0usize..4).prop_map(Op::TryNext),
        3 => (0usize..4, visit_max()).prop_map(|(i, m)| Op::TryVisit(i, m)),
        2 => (0usize..4, visit_max()).prop_map(|(i, m)| Op::VisitIfReady(i, m)),
        2 => pos().prop_map(Op::PinnedRead),
        3 => (0usize..4).prop_map(Op::NextIfReady),
        1 => (0usize..4).prop_map(Op::NextTimeoutZero),
        1 => (0usize..4).prop_map(Op::Cancel),
        1 => (1u64..100).prop_map(Op::AdvanceClock),
        1 => Just(Op::Close),
    ]
}

fn visit_max() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..40, Just(usize::MAX)]
}

fn start_offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..1000,
        1 => (0u64..50).prop_map(|d| MAX_START_OFFSET - d),
        1 => Just(MAX_START_OFFSET),
    ]
}

struct Model {
    start: u64,
    seg: u64,
    hist: u64,
    data: Vec<(Vec<u8>, SystemTime)>,
    closed: bool,
    /// `tail` at close: streams end there.
    closed_at: u64,
    now: SystemTime,
}

struct ModelStream {
    pos: u64,
    end: Option<Error>,
    cancelled: bool,
    /// `Lag::Skip`: on a purged (or below-start) position, yield
    /// `Lagged { skipped }` and move to the earliest retained offset.
    skip: bool,
    /// Records read ahead: when empty, a stream takes every ready record
    /// from `pos` on, up to `READ_AHEAD`, and yields them even if they are
    /// purged before it gets to them.
    ahead: std::collections::VecDeque<Record<Vec<u8>>>,
}

/// Ends `s` with `e`.
fn end(s: &mut ModelStream, e: Error) -> Error {
    s.end = Some(e.clone());
    e
}

/// What a stream reads ahead at most (`memlog`'s `Stream` docs).
const READ_AHEAD: u64 = 32;

impl Model {
    fn n(&self) -> u64 {
        self.data.len() as u64
    }
    fn shape(&self) -> Shape {
        Shape {
            start: self.start,
            seg: self.seg,
            hist: self.hist,
        }
    }
    /// First retained relative offset.
    fn first(&self) -> u64 {
        self.shape().first(self.n())
    }
    fn capacity(&self) -> u64 {
        self.seg * (self.hist + 1)
    }
    fn abs(&self, p: Pos) -> u64 {
        match p {
            Pos::Rel(d) => self.start.saturating_add_signed(d),
            Pos::Zero => 0,
            Pos::Max => u64::MAX,
        }
    }
    fn record(&self, rel: u64) -> Record<Vec<u8>> {
        let (data, created) = self.data[rel as usize].clone();
        Record {
            offset: self.start + rel,
            created,
            data,
        }
    }
    fn read(&self, o: u64) -> Result<Record<Vec<u8>>, Error> {
        let rel = o.checked_sub(self.start).ok_or(Error::OutOfRange)?;
        if rel >= self.n() {
            return Err(Error::FutureOffset);
        }
        if rel < self.first() {
            return Err(Error::OutOfRange);
        }
        Ok(self.record(rel))
    }
    fn write(&mut self, d: Vec<u8>) -> Result<u64, Error> {
        if d.len() > MAX_BYTES {
            return Err(Error::RecordTooLarge {
                len: d.len(),
                max: MAX_BYTES,
            });
        }
        if self.closed {
            return Err(Error::Closed);
        }
        self.data.push((d, self.now));
        Ok(self.start + self.n() - 1)
    }
    fn write_batch(&mut self, b: Vec<Vec<u8>>) -> Result<std::ops::Range<u64>, Error> {
        // A closed log refuses a batch before it pulls it.
        if self.closed {
            return Err(Error::Closed);
        }
        // Records are checked in order, and the batch is refused at the
        // first one that is too large or does not fit, whichever comes first
        // (the log pulls at most capacity + 1 records).
        for (i, d) in b.iter().enumerate() {
            if i as u64 == self.capacity() {
                return Err(Error::BatchTooLarge {
                    len: b.len(),
                    max: self.capacity() as usize,
                });
            }
            if d.len() > MAX_BYTES {
                return Err(Error::RecordTooLarge {
                    len: d.len(),
                    max: MAX_BYTES,
                });
            }
        }
        if self.closed {
            return Err(Error::Closed);
        }
        let from = self.start + self.n();
        for d in b {
            self.data.push((d, self.now));
        }
        Ok(from..self.start + self.n())
    }
    fn read_batch(&self, o: u64, max: usize) -> Result<Vec<Record<Vec<u8>>>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let first = self.read(o)?;
        let rel = o - self.start;
        let end = self.n().min(rel.saturating_add(max as u64));
        let mut v = vec![first];
        v.extend((rel + 1..end).map(|r| self.record(r)));
        Ok(v)
    }
    fn range(&self) -> Option<(u64, u64)> {
        (!self.data.is_empty()).then(|| (self.start + self.first(), self.start + self.n() - 1))
    }
    /// The earliest retained offset: the purge point, or the start offset.
    fn earliest(&self) -> u64 {
        self.start + self.first()
    }
    /// What the log holds for a stream at `pos` now.
    fn fetch(&self, pos: u64) -> Fetch {
        let closed_at = self.closed.then_some(self.closed_at);
        self.shape().fetch(self.n(), closed_at, pos)
    }
    /// `s` fell behind: it ends with `OutOfRange`, or with `Lag::Skip`
    /// moves to the earliest retained offset and says how far.
    fn behind(&self, s: &mut ModelStream) -> Error {
        if !s.skip {
            return end(s, Error::OutOfRange);
        }
        let to = self.earliest();
        assert!(to > s.pos, "the model skips forward");
        let skipped = to - s.pos;
        s.pos = to;
        Error::Lagged { skipped }
    }
    /// `try_recv`.
    fn step(&self, s: &mut ModelStream) -> Result<Record<Vec<u8>>, Error> {
        if let Some(e) = &s.end {
            return Err(e.clone());
        }
        if s.cancelled {
            return Err(end(s, Error::Cancelled));
        }
        if s.ahead.is_empty() {
            match self.fetch(s.pos) {
                Fetch::Ready(rel) => {
                    let to = self.n().min(rel + READ_AHEAD);
                    s.ahead.extend((rel..to).map(|r| self.record(r)));
                }
                Fetch::Behind => return Err(self.behind(s)),
                Fetch::Future => return Err(Error::FutureOffset),
                Fetch::Closed => return Err(end(s, Error::Closed)),
            }
        }
        s.pos += 1;
        Ok(s.ahead.pop_front().expect("filled above"))
    }
    /// `try_visit`: the records read ahead first, then those in the log now
    /// (it reads nothing ahead), up to `max`; an ending or a lag only when
    /// it visited nothing.
    fn visit(&self, s: &mut ModelStream, max: usize) -> Result<Vec<Record<Vec<u8>>>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if let Some(e) = &s.end {
            return Err(e.clone());
        }
        if s.cancelled {
            return Err(end(s, Error::Cancelled));
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(r) = s.ahead.pop_front() else { break };
            s.pos += 1;
            out.push(r);
        }
        while out.len() < max {
            match self.fetch(s.pos) {
                Fetch::Ready(rel) => {
                    out.push(self.record(rel));
                    s.pos += 1;
                }
                _ if !out.is_empty() => break,
                Fetch::Behind => return Err(self.behind(s)),
                Fetch::Future => return Err(Error::FutureOffset),
                Fetch::Closed => return Err(end(s, Error::Closed)),
            }
        }
        Ok(out)
    }
    /// Whether a blocking `next()` would return at once.
    fn ready(&self, s: &ModelStream) -> bool {
        s.end.is_some()
            || s.cancelled
            || !s.ahead.is_empty()
            || s.pos < self.start
            || s.pos - self.start < self.n()
            || self.closed
    }
}

/// Runs `ops` on a log and on the model. With `exclusive`, the log is built
/// with an exclusive `Writer`, which makes every write (the log's own
/// writes must fail `ReadOnly`), and closes alternate between the writer
/// and the log.
fn run(
    start: u64,
    seg: usize,
    hist: usize,
    ops: Vec<Op>,
    exclusive: bool,
) -> Result<(), TestCaseError> {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let clock = ManualClock::new(t0);
    let builder = Log::builder()
        .start_offset(start)
        .segment_size(seg)
        .history_segments(hist)
        .max_record_bytes(MAX_BYTES)
        .clock(clock.clone());
    let (mut writer, log): (Option<Writer<Vec<u8>>>, Log<Vec<u8>>) = if exclusive {
        let (w, log) = builder.build_exclusive().unwrap();
        (Some(w), log)
    } else {
        (None, builder.build().unwrap())
    };
    let mut closes = 0u32;
    let mut m = Model {
        start,
        seg: seg as u64,
        hist: hist as u64,
        data: Vec::new(),
        closed: false,
        closed_at: 0,
        now: t0,
    };
    let mut streams: Vec<(Stream<Vec<u8>>, ModelStream)> = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let ctx = format!("op #{i}: {op:?}");
        match op {
            Op::Write(d) => {
                let got = match &mut writer {
                    Some(w) => {
                        prop_assert_eq!(log.write(d.clone()), Err(Error::ReadOnly), "{}", ctx);
                        w.write(d.clone())
                    }
                    None => log.write(d.clone()),
                };
                prop_assert_eq!(got, m.write(d), "{}", ctx)
            }
            Op::WriteBatch(b) => {
                let got = match &mut writer {
                    Some(w) => {
                        prop_assert_eq!(
                            log.write_batch(b.clone()),
                            Err(Error::ReadOnly),
                            "{}",
                            ctx
                        );
                        w.write_batch(b.clone())
                    }
                    None => log.write_batch(b.clone()),
                };
                prop_assert_eq!(got, m.write_batch(b), "{}", ctx)
            }
            Op::Read(p) => {
                let o = m.abs(p);
                prop_assert_eq!(log.read(o), m.read(o), "{}", ctx);
            }
            Op::ReadBatch(p, max) => {
                let o = m.abs(p);
                let mut out = vec![Record {
                    offset: 7,
                    created: t0,
                    data: vec![9],
                }];
                let got = log.read_batch(o, &mut out, max);
                let want = m.read_batch(o, max);
                match want {
                    Ok(v) => {
                        prop_assert_eq!(got, Ok(v.len()), "{}", ctx);
                        prop_assert_eq!(&out[1..], &v[..], "{}", ctx);
                    }
                    Err(e) => {
                        prop_assert_eq!(got, Err(e), "{}", ctx);
                        prop_assert_eq!(out.len(), 1, "{}", ctx);
                    }
                }
            }
            Op::Range => prop_assert_eq!(log.range(), m.range(), "{}", ctx),
            Op::NextOffset => {
                // Only specified while the log is open.
                if !m.closed {
                    prop_assert_eq!(log.next_offset(), start + m.n(), "{}", ctx);
                }
                prop_assert_eq!(log.is_closed(), m.closed, "{}", ctx);
            }
            Op::NewStream(p, skip) => {
                if streams.len() < 4 {
                    let (s, o) = match p {
                        Start::At(p) => {
                            let o = m.abs(p);
                            (log.stream_from(StartAt::Offset(o)), o)
                        }
                        Start::Earliest => (log.stream_from(StartAt::Earliest), m.earliest()),
                        Start::Latest => (log.stream_from(StartAt::Latest), start + m.n()),
                    };
                    prop_assert_eq!(s.next_offset(), o, "{}", ctx);
                    let lag = if skip { Lag::Skip } else { Lag::End };
                    streams.push((
                        s.on_lag(lag),
                        ModelStream {
                            pos: o,
                            end: None,
                            cancelled: false,
                            skip,
                            ahead: Default::default(),
                        },
                    ));
                }
            }
            Op::TryNext(i) => {
                if let Some((s, ms)) = streams.get_mut(i) {
                    prop_assert_eq!(s.try_recv(), m.step(ms), "{}", ctx);
                    prop_assert_eq!(s.next_offset(), ms.pos, "{}", ctx);
                    prop_assert_eq!(s.ended(), ms.end.as_ref(), "{}", ctx);
                }
            }
            Op::TryVisit(i, max) => {
                if let Some((s, ms)) = streams.get_mut(i) {
                    let mut got = Vec::new();
                    let r = s.try_visit(max, |r| got.push(r.to_owned()));
                    prop_assert_eq!(r.map(|_| got), m.visit(ms, max), "{}", ctx);
                    prop_assert_eq!(s.next_offset(), ms.pos, "{}", ctx);
                    prop_assert_eq!(s.ended(), ms.end.as_ref(), "{}", ctx);
                }
            }
            Op::VisitIfReady(i, max) => {
                if let Some((s, ms)) = streams.get_mut(i) {
                    if m.ready(ms) {
                        let mut got = Vec::new();
                        let r = s.visit(max, |r| got.push(r.to_owned()));
                        prop_assert_eq!(r.map(|_| got), m.visit(ms, max), "{}", ctx);
                        prop_assert_eq!(s.next_offset(), ms.pos, "{}", ctx);
                    }
                }
            }
            Op::PinnedRead(p) => {
                let o = m.abs(p);
                let pinned = log.pin();
                prop_assert_eq!(pinned.get(o).map(|r| r.to_owned()), m.read(o), "{}", ctx);
                prop_assert_eq!(pinned.read(o), m.read(o), "{}", ctx);
            }
            Op::NextIfReady(i) => {
                if let Some((s, ms)) = streams.get_mut(i) {
                    if m.ready(ms) {
                        let want = if ms.end.is_some() {
                            None
                        } else {
                            match m.step(ms) {
                                Err(Error::Closed) => None,
                                r => Some(r),
                            }
                        };
                        prop_assert_eq!(s.next(), want, "{}", ctx);
                        prop_assert_eq!(s.next_offset(), ms.pos, "{}", ctx);
                    }
                }
            }
            Op::NextTimeoutZero(i) => {
                if let Some((s, ms)) = streams.get_mut(i) {
                    let want = match m.step(ms) {
                        Err(Error::FutureOffset) => Err(Error::Timeout),
                        r => r,
                    };
                    prop_assert_eq!(s.recv_timeout(Duration::ZERO), want, "{}", ctx);
                }
            }
            Op::Cancel(i) => {
                if let Some((s, ms)) = streams.get_mut(i) {
                    s.canceller().cancel();
                    ms.cancelled = true;
                }
            }
            Op::AdvanceClock(secs) => {
                clock.advance(Duration::from_secs(secs));
                m.now += Duration::from_secs(secs);
            }
            Op::Close => {
                closes += 1;
                match &writer {
                    Some(w) if closes % 2 == 1 => w.close(),
                    _ => log.close(),
                }
                if !m.closed {
                    m.closed = true;
                    m.closed_at = m.n();
                }
            }
        }
    }
    // Final sweep: every offset around the log reads as the model says.
    let lo = start.saturating_sub(2);
    let pinned = log.pin();
    for o in lo..start + m.n() + 2 {
        prop_assert_eq!(log.read(o), m.read(o), "final read {}", o);
        prop_assert_eq!(pinned.read(o), m.read(o), "final pinned read {}", o);
    }
    drop(pinned);
    prop_assert_eq!(log.range(), m.range());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(
        start in start_offset(),
        seg in 1usize..8,
        hist in 0usize..4,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(start, seg, hist, ops, false)?;
    }

    #[test]
    fn exclusive_log_matches_model(
        start in start_offset(),
        seg in 1usize..8,
        hist in 0usize..4,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(start, seg, hist, ops, true)?;
    }
}

#[test]
fn model_go_example() {
    // The Go library's example, through the model runner.
    let ops: Vec<Op> = (0..50)
        .map(|i| Op::Write(vec![i as u8]))
        .chain([Op::Range])
        .collect();
    run(100, 10, 1, ops.clone(), false).unwrap();
    run(100, 10, 1, ops, true).unwrap();
}
