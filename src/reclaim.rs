//! Epoch-based reclamation, behind a small seam.
//!
//! Normally this is crossbeam-epoch's global collector: `pin` returns its
//! guard, and `defer` runs a closure once every thread pinned at that moment
//! has unpinned. Under `cfg(loom)`, running crossbeam-epoch itself inside the
//! model would take minutes per model, so a stand-in with the same contract
//! takes its place: it records which guards are active when a closure is
//! deferred and runs the closure when the last of them is dropped. The loom
//! models check memlog's protocol against that contract, and since the
//! stand-in reclaims as early as the contract allows, a reader that touched a
//! segment after unpinning would be caught by loom's cell tracking.

#[cfg(not(loom))]
mod imp {
    /// The reclamation domain: crossbeam-epoch's global collector.
    #[derive(Debug, Default)]
    pub(crate) struct Reclaimer;

    impl Reclaimer {
        pub(crate) fn new() -> Self {
            Reclaimer
        }

        #[inline]
        pub(crate) fn pin(&self) -> Guard<'_> {
            Guard(crossbeam_epoch::pin(), std::marker::PhantomData)
        }
    }

    pub(crate) struct Guard<'a>(crossbeam_epoch::Guard, std::marker::PhantomData<&'a ()>);

    impl Guard<'_> {
        /// Runs `f` once no thread pinned now is still pinned.
        pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) {
            self.0.defer(f);
            // Push the thread-local bag to the global queue now: a purge
            // happens once per segment, far too rarely to fill a bag, and a
            // segment sitting in a bag can not be recycled.
            self.0.flush();
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
        }
    }
}

pub(crate) use imp::*;
