//! Random operation sequences with holding streams (`Lag::Hold`) on a `Log`
//! (shared, or written through an exclusive `Writer`), checked against a
//! sequential model; one thread, so a write that would wait is only made as
//! `try_write` (and its kin) or where the model says it would not wait.
//!
//! The model (model.rs's retention arithmetic, plus holds): a stream holds
//! from the first offset it has not yielded (its `next_offset()`: what it
//! read ahead stays held until yielded). A write whose last record opens
//! segment `k` (not yet installed) purges segment `k - H - 1`; it is
//! refused (`Full`) when some live (not ended, not cancelled) holding
//! stream's next offset lies below `base(k - H)`, or, if it would purge its
//! own first records (`k > seg(first) + H`), `BatchTooLarge` with the
//! longest batch that never does (`S * H + 1`). A hold set on a purged
//! offset fails: the stream's next read is `OutOfRange`, and it ends; one
//! below the start behaves as with `Lag::End`. After close every write is
//! `Closed`.

use memlog::{Error, Lag, Log, Stream, Writer};
use memlog_proptests::{Fetch, Shape};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LagK {
    End,
    Skip,
    Hold,
}

impl LagK {
    fn lag(self) -> Lag {
        match self {
            LagK::End => Lag::End,
            LagK::Skip => Lag::Skip,
            LagK::Hold => Lag::Hold,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Start {
    /// Relative to the start offset, possibly below it.
    At(i64),
    Earliest,
    Latest,
}

#[derive(Clone, Debug)]
enum Op {
    /// A plain `write` where the model says it would not wait, else
    /// `try_write` (then `Full`).
    Write,
    TryWrite,
    WriteTimeoutZero,
    /// `try_write_batch` of this many records (at most the capacity).
    TryWriteBatch(usize),
    /// A plain `write_batch` where the model says it would not wait, else
    /// `try_write_batch`.
    WriteBatch(usize),
    NewStream(Start, LagK),
    SetLag(usize, LagK),
    TryNext(usize),
    TryVisit(usize, usize),
    Read(i64),
    Drop(usize),
    Cancel(usize),
    Close,
}

fn lag() -> impl Strategy<Value = LagK> {
    prop_oneof![1 => Just(LagK::End), 1 => Just(LagK::Skip), 3 => Just(LagK::Hold)]
}

fn op() -> impl Strategy<Value = Op> {
    let start = prop_oneof![
        4 => (-2i64..40).prop_map(Start::At),
        1 => Just(Start::Earliest),
        1 => Just(Start::Latest),
    ];
    prop_oneof![
        6 => Just(Op::Write),
        6 => Just(Op::TryWrite),
        1 => Just(Op::WriteTimeoutZero),
        3 => (0usize..12).prop_map(Op::TryWriteBatch),
        2 => (0usize..12).prop_map(Op::WriteBatch),
        2 => (start, lag()).prop_map(|(s, l)| Op::NewStream(s, l)),
        1 => (0usize..4, lag()).prop_map(|(i, l)| Op::SetLag(i, l)),
        6 => (0usize..4).prop_map(Op::TryNext),
        4 => (0usize..4, prop_oneof![Just(0usize), 1usize..6, Just(usize::MAX)])
            .prop_map(|(i, m)| Op::TryVisit(i, m)),
        1 => (-2i64..40).prop_map(Op::Read),
        1 => (0usize..4).prop_map(Op::Drop),
        1 => (0usize..4).prop_map(Op::Cancel),
        1 => Just(Op::Close),
    ]
}

/// What a stream reads ahead at most (`Stream`'s docs).
const READ_AHEAD: u64 = 32;

struct Model {
    shape: Shape,
    data: Vec<u64>,
    closed: bool,
    closed_at: u64,
}

#[derive(Debug)]
struct MStream {
    /// Next offset to yield (absolute).
    pos: u64,
    /// Relative offsets read ahead.
    ahead: VecDeque<u64>,
    end: Option<Error>,
    cancelled: bool,
    lag: LagK,
    /// Whether the stream has a hold (its reader keeps the hold's id): a
    /// hold set on it again then changes nothing.
    has_hold: bool,
    /// Whether its hold is in the log's list (`hold_count`): not once a
    /// cancel dropped it, though the stream keeps its id until it ends.
    holding: bool,
    /// Its hold failed (set on a purged offset): its next read is
    /// `OutOfRange`.
    hold_failed: bool,
}

impl Model {
    fn n(&self) -> u64 {
        self.data.len() as u64
    }
    fn cap(&self) -> u64 {
        self.shape.seg * (self.shape.hist + 1)
    }
    fn first(&self) -> u64 {
        self.shape.first(self.n())
    }
    /// The first relative offset `s` holds: its next offset.
    fn fetched(&self, s: &MStream) -> u64 {
        s.pos - self.shape.start
    }
    /// Whether a write whose last relative offset is `last` would purge
    /// what a live holding stream has not fetched.
    fn full(&self, streams: &[MStream], last: u64) -> bool {
        let k = last / self.shape.seg;
        let installed = self.n() > 0 && k <= (self.n() - 1) / self.shape.seg;
        if installed || k < self.shape.hist + 1 {
            return false;
        }
        let purge_below = (k - self.shape.hist) * self.shape.seg;
        streams
            .iter()
            .any(|s| s.holding && !s.cancelled && self.fetched(s) < purge_below)
    }
    /// A write of `m` records (`m > 0`): its first offset, or the error.
    fn write(&mut self, streams: &[MStream], m: u64) -> Result<u64, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        if self.full(streams, self.n() + m - 1) {
            let (seg, hist) = (self.shape.seg, self.shape.hist);
            if (self.n() + m - 1) / seg > self.n() / seg + hist {
                return Err(Error::BatchTooLarge {
                    len: m as usize,
                    max: (seg * hist + 1) as usize,
                });
            }
            return Err(Error::Full);
        }
        let at = self.shape.start + self.n();
        for _ in 0..m {
            let rel = self.n();
            self.data.push(value(rel));
        }
        Ok(at)
    }
    fn fetch(&self, pos: u64) -> Fetch {
        let closed_at = self.closed.then_some(self.closed_at);
        self.shape.fetch(self.n(), closed_at, pos)
    }
    /// `on_lag(lag)` on `s`.
    fn set_lag(&self, s: &mut MStream, lag: LagK) {
        s.lag = lag;
        if lag != LagK::Hold {
            s.holding = false;
            s.has_hold = false;
            return;
        }
        if s.has_hold || s.end.is_some() {
            return;
        }
        let Some(rel) = s.pos.checked_sub(self.shape.start) else {
            return;
        };
        // A hold on a purged offset fails (a writer purged past it).
        s.holding = rel >= self.first();
        s.has_hold = s.holding;
        s.hold_failed = !s.holding;
    }
    fn end(s: &mut MStream, e: Error) -> Error {
        s.end = Some(e.clone());
        s.holding = false;
        s.has_hold = false;
        e
    }
    fn behind(&self, s: &mut MStream) -> Result<Error, String> {
        if s.holding && !s.cancelled {
            return Err(format!("the model let a holding stream fall behind: {s:?}"));
        }
        if s.lag != LagK::Skip {
            return Ok(Self::end(s, Error::OutOfRange));
        }
        let to = self.shape.start + self.first();
        let skipped = to - s.pos;
        s.pos = to;
        Ok(Error::Lagged { skipped })
    }
    /// The error a read of `s` answers before looking at the log: the one
    /// that ended it, a cancel, or a hold that failed.
    fn ending(s: &mut MStream) -> Option<Error> {
        if let Some(e) = &s.end {
            return Some(e.clone());
        }
        if s.cancelled {
            return Some(Self::end(s, Error::Cancelled));
        }
        if s.hold_failed {
            s.hold_failed = false;
            return Some(Self::end(s, Error::OutOfRange));
        }
        None
    }
    /// `try_recv`: a record as `(offset, value)`.
    fn step(&self, s: &mut MStream) -> Result<Result<(u64, u64), Error>, String> {
        if let Some(e) = Self::ending(s) {
            return Ok(Err(e));
        }
        if s.ahead.is_empty() {
            match self.fetch(s.pos) {
                Fetch::Ready(rel) => s.ahead.extend(rel..self.n().min(rel + READ_AHEAD)),
                Fetch::Behind => return self.behind(s).map(Err),
                Fetch::Future => return Ok(Err(Error::FutureOffset)),
                Fetch::Closed => return Ok(Err(Self::end(s, Error::Closed))),
            }
        }
        let rel = s.ahead.pop_front().expect("filled above");
        s.pos += 1;
        Ok(Ok((self.shape.start + rel, value(rel))))
    }
    /// `try_visit(max)`.
    fn visit(&self, s: &mut MStream, max: usize) -> Result<Result<Vec<(u64, u64)>, Error>, String> {
        if max == 0 {
            return Ok(Ok(Vec::new()));
        }
        if let Some(e) = Self::ending(s) {
            return Ok(Err(e));
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(rel) = s.ahead.pop_front() else {
                break;
            };
            s.pos += 1;
            out.push((self.shape.start + rel, value(rel)));
        }
        while out.len() < max {
            match self.fetch(s.pos) {
                Fetch::Ready(rel) => {
                    out.push((self.shape.start + rel, value(rel)));
                    s.pos += 1;
                }
                _ if !out.is_empty() => break,
                Fetch::Behind => return self.behind(s).map(Err),
                Fetch::Future => return Ok(Err(Error::FutureOffset)),
                Fetch::Closed => return Ok(Err(Self::end(s, Error::Closed))),
            }
        }
        Ok(Ok(out))
    }
}

/// The value written at relative offset `rel`.
fn value(rel: u64) -> u64 {
    rel.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xa5
}

fn run(
    start: u64,
    seg: usize,
    hist: usize,
    ops: Vec<Op>,
    exclusive: bool,
) -> Result<(), TestCaseError> {
    let builder = Log::builder()
        .start_offset(start)
        .segment_size(seg)
        .history_segments(hist);
    let (mut writer, log): (Option<Writer<u64>>, Log<u64>) = if exclusive {
        let (w, log) = builder.build_exclusive().unwrap();
        (Some(w), log)
    } else {
        (None, builder.build().unwrap())
    };
    let mut m = Model {
        shape: Shape {
            start,
            seg: seg as u64,
            hist: hist as u64,
        },
        data: Vec::new(),
        closed: false,
        closed_at: 0,
    };
    let mut streams: Vec<Stream<u64>> = Vec::new();
    let mut ms: Vec<MStream> = Vec::new();
    let batch = |from: u64, len: u64| (from..from + len).map(value).collect::<Vec<_>>();
    for (i, op) in ops.into_iter().enumerate() {
        let ctx = format!("op #{i}: {op:?}");
        let rel = m.n();
        match op {
            Op::Write | Op::TryWrite | Op::WriteTimeoutZero => {
                let plain = matches!(op, Op::Write) && !m.full(&ms, rel);
                let v = value(rel);
                let got = match (&mut writer, &op) {
                    (Some(w), _) if plain => w.write(v),
                    (None, _) if plain => log.write(v),
                    (Some(w), Op::WriteTimeoutZero) => w.write_timeout(v, Duration::ZERO),
                    (None, Op::WriteTimeoutZero) => log.write_timeout(v, Duration::ZERO),
                    (Some(w), _) => w.try_write(v),
                    (None, _) => log.try_write(v),
                };
                let want = m.write(&ms, 1).map_err(|e| match (e, &op) {
                    (Error::Full, Op::WriteTimeoutZero) => Error::Timeout,
                    (e, _) => e,
                });
                prop_assert_eq!(got, want, "{}", ctx);
            }
            Op::TryWriteBatch(len) | Op::WriteBatch(len) => {
                let len = (len as u64).min(m.cap());
                let b = batch(rel, len);
                let plain =
                    matches!(op, Op::WriteBatch(_)) && (len == 0 || !m.full(&ms, rel + len - 1));
                let got = match &mut writer {
                    Some(w) if plain => w.write_batch(b),
                    None if plain => log.write_batch(b),
                    Some(w) => w.try_write_batch(b),
                    None => log.try_write_batch(b),
                };
                let want = if len == 0 {
                    if m.closed {
                        Err(Error::Closed)
                    } else {
                        Ok(start + rel..start + rel)
                    }
                } else {
                    m.write(&ms, len).map(|at| at..at + len)
                };
                prop_assert_eq!(got, want, "{}", ctx);
            }
            Op::NewStream(at, lag) => {
                if streams.len() < 4 {
                    let pos = match at {
                        Start::At(d) => start.saturating_add_signed(d),
                        Start::Earliest => start + m.first(),
                        Start::Latest => start + m.n(),
                    };
                    let s = log.stream(pos).on_lag(lag.lag());
                    let mut st = MStream {
                        pos,
                        ahead: VecDeque::new(),
                        end: None,
                        cancelled: false,
                        lag: LagK::End,
                        has_hold: false,
                        holding: false,
                        hold_failed: false,
                    };
                    m.set_lag(&mut st, lag);
                    streams.push(s);
                    ms.push(st);
                }
            }
            Op::SetLag(i, lag) => {
                if i < streams.len() {
                    let s = streams.remove(i).on_lag(lag.lag());
                    streams.insert(i, s);
                    m.set_lag(&mut ms[i], lag);
                }
            }
            Op::TryNext(i) => {
                if i < streams.len() {
                    let got = streams[i].try_recv().map(|r| (r.offset, r.data));
                    let want = m.step(&mut ms[i]).map_err(TestCaseError::fail)?;
                    prop_assert_eq!(got, want, "{}", ctx);
                    prop_assert_eq!(streams[i].next_offset(), ms[i].pos, "{}", ctx);
                    prop_assert_eq!(streams[i].ended(), ms[i].end.as_ref(), "{}", ctx);
                }
            }
            Op::TryVisit(i, max) => {
                if i < streams.len() {
                    let mut got = Vec::new();
                    let r = streams[i].try_visit(max, |r| got.push((r.offset, *r.data)));
                    let want = m.visit(&mut ms[i], max).map_err(TestCaseError::fail)?;
                    prop_assert_eq!(r.map(|_| got), want, "{}", ctx);
                    prop_assert_eq!(streams[i].next_offset(), ms[i].pos, "{}", ctx);
                    prop_assert_eq!(streams[i].ended(), ms[i].end.as_ref(), "{}", ctx);
                }
            }
            Op::Read(d) => {
                let o = start.saturating_add_signed(d);
                let want = match o.checked_sub(start) {
                    None => Err(Error::OutOfRange),
                    Some(r) if r >= m.n() => Err(Error::FutureOffset),
                    Some(r) if r < m.first() => Err(Error::OutOfRange),
                    Some(r) => Ok((o, value(r))),
                };
                prop_assert_eq!(log.read(o).map(|r| (r.offset, r.data)), want, "{}", ctx);
            }
            Op::Drop(i) => {
                if i < streams.len() {
                    drop(streams.remove(i));
                    ms.remove(i);
                }
            }
            Op::Cancel(i) => {
                if i < streams.len() {
                    streams[i].canceller().cancel();
                    ms[i].cancelled = true;
                    // A cancel drops every cancelled stream's hold.
                    for s in &mut ms {
                        if s.cancelled {
                            s.holding = false;
                        }
                    }
                }
            }
            Op::Close => {
                match &writer {
                    Some(w) if i % 2 == 0 => w.close(),
                    _ => log.close(),
                }
                if !m.closed {
                    m.closed = true;
                    m.closed_at = m.n();
                }
                prop_assert_eq!(log.next_offset(), start + m.n(), "{}", ctx);
            }
        }
        if !m.closed {
            let holds = ms.iter().filter(|s| s.holding).count();
            prop_assert_eq!(log.hold_count(), holds, "{}", ctx);
            prop_assert_eq!(log.next_offset(), start + m.n(), "{}", ctx);
        }
    }
    drop(streams);
    prop_assert_eq!(log.hold_count(), 0);
    prop_assert_eq!(log.waiter_count(), 0);
    drop(writer);
    Ok(())
}

proptest! {
    // 256 cases, or PROPTEST_CASES (a literal `cases` would override it).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    /// On a shared log, or one written through its exclusive `Writer`.
    #[test]
    fn holds_match_model(
        start in prop_oneof![Just(0u64), 1u64..100],
        seg in 1usize..5,
        hist in 0usize..3,
        ops in prop::collection::vec(op(), 1..150),
        exclusive in any::<bool>(),
    ) {
        run(start, seg, hist, ops, exclusive)?;
    }
}

/// The doc example's arithmetic: segment 2, no history, a stream that has
/// read nothing holds segment 0.
#[test]
fn hold_model_doc_case() {
    let ops = vec![
        Op::NewStream(Start::At(0), LagK::Hold),
        Op::TryWriteBatch(2),
        Op::TryWrite,
        Op::TryNext(0),
        Op::TryWrite,
        Op::TryNext(0),
        Op::TryWrite,
        Op::Close,
        Op::TryWrite,
    ];
    run(0, 2, 0, ops.clone(), false).unwrap();
    run(0, 2, 0, ops, true).unwrap();
}
