//! The lock-based baseline: a small, straightforward Rust port of the Go
//! `memlog` design. One `RwLock` guards an active and a history segment (each
//! a `Vec` of records); when the active segment is full it becomes the history
//! segment (the old history is dropped) and a fresh `Vec` is allocated, as the
//! Go code does. Readers that run out of records wait on a `Condvar`; writers
//! only take the condvar's mutex when a reader is waiting (a waiter count, so
//! that the baseline is not handicapped by a syscall on every write).
//!
//! Bench support only: it is not part of the library.

use std::ops::Range;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// A record as the Go library stores it: offset, creation time, payload.
#[derive(Clone, Debug)]
pub struct Record<T> {
    pub offset: u64,
    pub created: SystemTime,
    pub data: T,
}

/// Read errors, as in the Go library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    OutOfRange,
    FutureOffset,
}

struct Segment<T> {
    start: u64,
    records: Vec<Record<T>>,
}

impl<T> Segment<T> {
    fn get(&self, offset: u64) -> Option<&Record<T>> {
        offset
            .checked_sub(self.start)
            .and_then(|i| self.records.get(i as usize))
    }
}

struct State<T> {
    active: Segment<T>,
    history: Option<Segment<T>>,
    next: u64,
}

/// The lock-based log.
pub struct LockLog<T> {
    state: RwLock<State<T>>,
    segment_size: usize,
    clock: fn() -> SystemTime,
    waiters: AtomicUsize,
    wait_lock: Mutex<()>,
    cond: Condvar,
}

impl<T: Clone> LockLog<T> {
    /// A log with segments of `segment_size` records, stamped with `SystemTime::now`.
    pub fn new(segment_size: usize) -> Self {
        Self::with_clock(segment_size, SystemTime::now)
    }

    /// A log stamped with `clock`.
    pub fn with_clock(segment_size: usize, clock: fn() -> SystemTime) -> Self {
        LockLog {
            state: RwLock::new(State {
                active: Segment {
                    start: 0,
                    records: Vec::with_capacity(segment_size),
                },
                history: None,
                next: 0,
            }),
            segment_size,
            clock,
            waiters: AtomicUsize::new(0),
            wait_lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    fn push(&self, s: &mut State<T>, created: SystemTime, data: T) -> u64 {
        if s.active.records.len() == self.segment_size {
            let fresh = Segment {
                start: s.next,
                records: Vec::with_capacity(self.segment_size),
            };
            s.history = Some(std::mem::replace(&mut s.active, fresh));
        }
        let offset = s.next;
        s.active.records.push(Record {
            offset,
            created,
            data,
        });
        s.next += 1;
        offset
    }

    /// Appends a record and returns its offset.
    pub fn write(&self, data: T) -> u64 {
        let created = (self.clock)();
        let offset = {
            let mut s = self.state.write().unwrap();
            self.push(&mut s, created, data)
        };
        self.wake();
        offset
    }

    /// Appends a batch under one lock.
    pub fn write_batch(&self, batch: impl IntoIterator<Item = T>) -> Range<u64> {
        let created = (self.clock)();
        let range = {
            let mut s = self.state.write().unwrap();
            let start = s.next;
            for d in batch {
                self.push(&mut s, created, d);
            }
            start..s.next
        };
        self.wake();
        range
    }

    fn wake(&self) {
        // Dekker handshake with `wait_for`: publish (lock release), fence,
        // then look for waiters.
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::Relaxed) != 0 {
            let _g = self.wait_lock.lock().unwrap();
            self.cond.notify_all();
        }
    }

    fn locate(s: &State<T>, offset: u64) -> Result<&Record<T>, Error> {
        if offset >= s.next {
            return Err(Error::FutureOffset);
        }
        if offset >= s.active.start {
            return s.active.get(offset).ok_or(Error::OutOfRange);
        }
        s.history
            .as_ref()
            .and_then(|h| h.get(offset))
            .ok_or(Error::OutOfRange)
    }

    /// Reads one record.
    pub fn read(&self, offset: u64) -> Result<Record<T>, Error> {
        let s = self.state.read().unwrap();
        Self::locate(&s, offset).cloned()
    }

    /// Appends up to `max` records from `start` to `out`, under one read lock.
    pub fn read_batch(
        &self,
        start: u64,
        out: &mut Vec<Record<T>>,
        max: usize,
    ) -> Result<usize, Error> {
        let s = self.state.read().unwrap();
        Self::locate(&s, start)?;
        let mut n = 0;
        while n < max {
            match Self::locate(&s, start + n as u64) {
                Ok(r) => out.push(r.clone()),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// `(earliest, latest)` readable offsets.
    pub fn range(&self) -> Option<(u64, u64)> {
        let s = self.state.read().unwrap();
        if s.next == 0 {
            return None;
        }
        let first = s.history.as_ref().map_or(s.active.start, |h| h.start);
        Some((first, s.next - 1))
    }

    /// The offset the next write gets.
    pub fn next_offset(&self) -> u64 {
        self.state.read().unwrap().next
    }

    /// Blocks until `offset` is written (or `OutOfRange`).
    pub fn read_wait(&self, offset: u64) -> Result<Record<T>, Error> {
        loop {
            match self.read(offset) {
                Err(Error::FutureOffset) => {}
                r => return r,
            }
            let g = self.wait_lock.lock().unwrap();
            self.waiters.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if self.state.read().unwrap().next <= offset {
                // The timeout is only a safety net; wake-ups come from `wake`.
                let _ = self
                    .cond
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap();
            } else {
                drop(g);
            }
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
