//! Epoch-based reclamation, behind a small seam, and where purged records
//! are dropped.
//!
//! Normally this is a crossbeam-epoch collector of memlog's own (not the
//! global one, whose pins run every crate's deferred destructors): `pin`
//! returns its guard, and `defer` runs a closure once every thread pinned at
//! that moment has unpinned. Under `cfg(loom)`, running crossbeam-epoch itself inside the
//! model would take minutes per model, so a stand-in with the same contract
//! takes its place: it records which guards are active when a closure is
//! deferred and runs the closure when the last of them is dropped. The loom
//! models check memlog's protocol against that contract, and since the
//! stand-in reclaims as early as the contract allows, a reader that touched a
//! segment after unpinning would be caught by loom's cell tracking.
//!
//! # Where purged records are dropped
//! crossbeam runs deferred closures inside whichever `pin()` or `flush()`
//! collects, on any thread, including a writer's pins between its claim and
//! the publish that covers it (`install`, `published_end`). A record's `Drop`
//! is user code: run there, a panic would leave a claimed offset unpublished
//! and wedge the log, a `Drop` that writes to the log would wait for its own
//! offset, and a slow one would hold back every reader. Run inside a reader's
//! pin, a panic would cut through the reader's own bookkeeping (a waiter
//! registered and never removed). So the deferred closure never drops
//! records: it postpones the reclamation to a per-thread list (every pin of
//! memlog's collector is memlog's own, so every closure runs inside some
//! memlog call). The list is drained ([`drain`]) at the start of the
//! thread's next memlog call that reads or writes, before it does anything,
//! and whenever a blocked stream is about to wait again: a panicking `Drop`
//! then makes that call panic having done nothing, and it can be retried.
//! (A stream that judges by slot stamps pins once more between that drain
//! and parking, in its re-check: what that pin collects is dropped when the
//! stream wakes, at its next drain.)
//! What is left when the thread exits is dropped then (no memlog call is in
//! progress on it). What is postponed while the thread's list is already
//! gone (memlog calls made from thread-local destructors, which may be inside
//! a claim window) goes to a process-wide list of orphans that every drain
//! also takes from.
//!
//! A postponed reclamation is three words of plain data, and a drained list
//! keeps its allocation: in steady state, postponing allocates nothing.

use crate::segment::{Pool, Retired, Segment};
use crate::sync::Arc;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A postponed reclamation: a retired segment, its pool, and the function
/// that reclaims a segment of their type. Not a boxed closure: that would
/// allocate once per purge.
struct Postponed {
    /// `reclaim_segment::<T>` for the `T` that `seg` and `pool` were made from.
    reclaim: unsafe fn(*mut (), *const ()),
    /// The retired segment, a `*mut Segment<T>`.
    seg: *mut (),
    /// An `Arc<Pool<T>>` made raw: one strong count, owned by this.
    pool: *const (),
}

// SAFETY: made only by `Postponed::new` from a `Retired<T>` and an
// `Arc<Pool<T>>` with `T: Send`: running it on another thread drops `T`s
// there, which `T: Send` allows, and moves the pool's strong count, which is
// `Send` like the `Arc` itself.
unsafe impl Send for Postponed {}

impl Postponed {
    fn new<T: Send>(seg: Retired<T>, pool: Arc<Pool<T>>) -> Self {
        Postponed {
            reclaim: reclaim_segment::<T>,
            seg: seg.0.cast(),
            pool: Arc::into_raw(pool).cast(),
        }
    }

    /// Drops the segment's records and returns it to its pool; a panic of a
    /// record's `Drop` is resumed once it is back.
    fn run(self) {
        // SAFETY: `reclaim` is `reclaim_segment::<T>` for the `T` of the two pointers
        // (`new`), `self` is consumed so it runs once, and the segment's
        // grace period is over (`postpone_reclaim`'s contract).
        unsafe { (self.reclaim)(self.seg, self.pool) }
    }
}

/// # Safety
/// `seg` and `pool` come from one `Postponed::new::<T>`, this is their only
/// call, and no pinned thread can still hold the segment.
unsafe fn reclaim_segment<T>(seg: *mut (), pool: *const ()) {
    // SAFETY: the strong count `Postponed::new` made raw, taken back once:
    // released even if a record's `Drop` panics.
    let pool = unsafe { Arc::from_raw(pool.cast::<Pool<T>>()) };
    // SAFETY: unlinked, past its grace period (the caller's contract).
    unsafe { Retired(seg.cast::<Segment<T>>()).reclaim(&pool) };
}

/// The per-thread list. What is left when the thread exits runs then.
#[derive(Default)]
struct List(RefCell<Vec<Postponed>>);

impl Drop for List {
    fn drop(&mut self) {
        // The thread is exiting, inside no memlog call. Memlog calls made by
        // these drops postpone what they collect to the orphans.
        for f in self.0.get_mut().drain(..) {
            // A panic must not leave a thread-local destructor: it would
            // abort the process.
            let _ = catch_unwind(AssertUnwindSafe(|| f.run()));
        }
    }
}

#[cfg(not(loom))]
mod orphans {
    use super::Postponed;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// Postponed work whose thread's list is gone.
    pub(super) static ORPHANS: Mutex<Vec<Postponed>> = Mutex::new(Vec::new());
    /// Whether `ORPHANS` may be non-empty: a read-mostly line.
    pub(super) static HAS_ORPHANS: AtomicBool = AtomicBool::new(false);
}

#[cfg(loom)]
mod orphans {
    use super::Postponed;
    // std types: a handoff under a lock needs no model checking, and a loom
    // atomic here would add a branch point to every drain of every model.
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    loom::lazy_static! {
        // Per model execution: a process-wide static would carry one
        // execution's work into the next.
        pub(super) static ref ORPHANS: Mutex<Vec<Postponed>> = Mutex::new(Vec::new());
        pub(super) static ref HAS_ORPHANS: AtomicBool = AtomicBool::new(false);
    }
}

use orphans::{HAS_ORPHANS, ORPHANS};

fn orphan(mut batch: Vec<Postponed>) {
    if batch.is_empty() {
        return;
    }
    // Nothing runs under this lock but a push or a take.
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    orphans.append(&mut batch);
    // Release: a drain that sees the flag sees the work.
    HAS_ORPHANS.store(true, std::sync::atomic::Ordering::Release);
}

fn take_orphans() -> Vec<Postponed> {
    if !HAS_ORPHANS.swap(false, std::sync::atomic::Ordering::Acquire) {
        return Vec::new();
    }
    std::mem::take(&mut *ORPHANS.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(not(loom))]
std::thread_local! {
    /// Whether this thread is draining (a drop may call back into memlog).
    static DRAINING: Cell<bool> = const { Cell::new(false) };
    /// Whether `POSTPONED` may be non-empty: the one load on the hot paths.
    static PENDING: Cell<bool> = const { Cell::new(false) };
    static POSTPONED: List = const { List(RefCell::new(Vec::new())) };
}

#[cfg(loom)]
loom::thread_local! {
    static DRAINING: Cell<bool> = Cell::new(false);
    static PENDING: Cell<bool> = Cell::new(false);
    static POSTPONED: List = List::default();
}

/// Postpones the reclamation of `seg` (which drops records) to this
/// thread's next [`drain`]. Every pin of memlog's collector is memlog's own,
/// and may be inside a claim window, so a deferred closure never runs it in
/// place.
///
/// # Safety
/// As [`Retired::reclaim`]: `seg` was unlinked from the ring, and no pinned
/// thread can still hold it (called from the closure deferred at the purge).
pub(crate) unsafe fn postpone_reclaim<T: Send>(seg: Retired<T>, pool: Arc<Pool<T>>) {
    postpone(Postponed::new(seg, pool));
}

fn postpone(f: Postponed) {
    let mut f = Some(f);
    let queued = POSTPONED.try_with(|p| {
        if let Some(f) = f.take() {
            p.0.borrow_mut().push(f);
        }
    });
    if queued.is_ok() {
        let _ = PENDING.try_with(|p| p.set(true));
    } else if let Some(f) = f {
        // The thread is exiting and its list is gone; it may be inside a
        // claim window (a memlog call from another thread-local destructor),
        // so this can not run here.
        orphan(vec![f]);
    }
}

/// Drops what this thread's memlog pins postponed, unless the thread is
/// inside memlog (a `Drop` that called back into a log: the outer drain goes
/// on until the list is empty). Called where a memlog call has not yet done
/// anything. Panics with the first panic of a record's `Drop`, after
/// dropping everything else.
#[inline]
pub(crate) fn drain() {
    let pending = PENDING.try_with(Cell::get).unwrap_or(false);
    // Relaxed: a stale `false` only leaves the orphans to a later drain.
    if pending || HAS_ORPHANS.load(std::sync::atomic::Ordering::Relaxed) {
        drain_slow();
    }
}

#[cold]
fn drain_slow() {
    // Not from inside a drain (a `Drop` that called back into a log): the
    // outer drain goes on until the list is empty.
    if DRAINING.try_with(|d| d.replace(true)).unwrap_or(true) {
        return;
    }
    let mut first_panic = None;
    // Emptied after each pass and swapped with the list, so that the list
    // keeps an allocation: the next postpone pushes without allocating.
    let mut batch = Vec::new();
    loop {
        let _ = PENDING.try_with(|p| p.set(false));
        let _ = POSTPONED.try_with(|p| std::mem::swap(&mut *p.0.borrow_mut(), &mut batch));
        batch.extend(take_orphans());
        if batch.is_empty() {
            break;
        }
        for f in batch.drain(..) {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f.run())) {
                first_panic.get_or_insert(p);
            }
        }
    }
    let _ = DRAINING.try_with(|d| d.set(false));
    if let Some(p) = first_panic {
        resume_unwind(p);
    }
}

#[cfg(not(loom))]
mod imp {

    /// The reclamation domain: memlog's crossbeam-epoch collector.
    #[derive(Debug, Default)]
    pub(crate) struct Reclaimer;

    impl Reclaimer {
        pub(crate) fn new() -> Self {
            Reclaimer
        }

        /// Pins; what the pin collects waits for [`drain`](super::drain).
        #[inline]
        pub(crate) fn pin(&self) -> Guard<'_> {
            Guard {
                epoch: pin(),
                _reclaimer: std::marker::PhantomData,
            }
        }
    }

    /// A pin of memlog's collector.
    pub(crate) struct Guard<'a> {
        epoch: crossbeam_epoch::Guard,
        _reclaimer: std::marker::PhantomData<&'a ()>,
    }

    /// memlog's own collector, not crossbeam's global one: every crate of
    /// the process shares that one, and a pin of it may run any crate's
    /// deferred destructors (user code: crossbeam-skiplist drops its values
    /// there), which must not run inside a claim window. Pins of this one
    /// run only memlog's closures, which postpone (module docs).
    fn collector() -> &'static crossbeam_epoch::Collector {
        static COLLECTOR: std::sync::OnceLock<crossbeam_epoch::Collector> =
            std::sync::OnceLock::new();
        COLLECTOR.get_or_init(crossbeam_epoch::Collector::new)
    }

    std::thread_local! {
        static HANDLE: crossbeam_epoch::LocalHandle = collector().register();
    }

    /// Pins `collector()`, as `crossbeam_epoch::pin` pins the global one.
    #[inline]
    fn pin() -> crossbeam_epoch::Guard {
        HANDLE
            .try_with(crossbeam_epoch::LocalHandle::pin)
            // The thread is exiting and its handle is gone: a fresh one.
            .unwrap_or_else(|_| collector().register().pin())
    }

    impl Guard<'_> {
        /// Runs `f` once no thread pinned now is still pinned.
        pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) {
            self.epoch.defer(f);
            // Push the thread-local bag to the global queue now: a purge
            // happens once per segment, far too rarely to fill a bag, and a
            // segment sitting in a bag can not be recycled.
            self.epoch.flush();
        }
    }
}

#[cfg(loom)]
mod imp {
    use crate::sync::Mutex;

    type Deferred = Box<dyn FnOnce() + Send>;

    /// Reclamation stand-in for loom models (see the module docs).
    #[derive(Default)]
    pub(crate) struct Reclaimer {
        state: Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        next_id: u64,
        active: Vec<u64>,
        /// Each deferred closure with the guards it still waits for.
        pending: Vec<(Vec<u64>, Deferred)>,
    }

    impl std::fmt::Debug for Reclaimer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Reclaimer")
        }
    }

    impl Reclaimer {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn pin(&self) -> Guard<'_> {
            let mut s = self.state.lock().unwrap();
            let id = s.next_id;
            s.next_id += 1;
            s.active.push(id);
            Guard { r: self, id }
        }
    }

    pub(crate) struct Guard<'a> {
        r: &'a Reclaimer,
        id: u64,
    }

    impl Guard<'_> {
        pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) {
            let mut s = self.r.state.lock().unwrap();
            let waits = s.active.clone();
            s.pending.push((waits, Box::new(f)));
        }
    }

    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            let ready: Vec<Deferred> = {
                let mut s = self.r.state.lock().unwrap();
                s.active.retain(|&a| a != self.id);
                let mut ready = Vec::new();
                let mut i = 0;
                while i < s.pending.len() {
                    s.pending[i].0.retain(|&a| a != self.id);
                    if s.pending[i].0.is_empty() {
                        ready.push(s.pending.swap_remove(i).1);
                    } else {
                        i += 1;
                    }
                }
                ready
            };
            for f in ready {
                f();
            }
        }
    }

    impl Drop for Reclaimer {
        fn drop(&mut self) {
            // No guard can outlive the reclaimer, so everything is ready.
            let pending = std::mem::take(&mut self.state.lock().unwrap().pending);
            for (_, f) in pending {
                f();
            }
            // The log is gone, so no claim window of it is open: drop what
            // those closures postponed now, as crossbeam's global collector
            // would eventually, so that models can count every drop.
            super::drain();
        }
    }
}

pub(crate) use imp::*;
