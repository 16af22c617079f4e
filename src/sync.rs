//! The one place where memlog's concurrency primitives come from.
//!
//! Every atomic, cell, mutex and thread call on the protocol paths is imported
//! from here, so that building with `RUSTFLAGS="--cfg loom"` swaps the whole
//! set for loom's model-checked versions and the same code is checked.

#[cfg(loom)]
mod imp {
    pub(crate) use loom::hint::spin_loop;
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use loom::thread::{current, park, yield_now, Thread};

    /// `UnsafeCell` whose accesses loom checks for data races.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(v: T) -> Self {
            Self(loom::cell::UnsafeCell::new(v))
        }
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            self.0.with(f)
        }
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            self.0.with_mut(f)
        }
    }

    /// Under loom a spin is a yield, and "spun enough" comes at once, so the
    /// model explores the park path instead of unbounded spinning.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff;

    impl Backoff {
        pub(crate) fn new() -> Self {
            Backoff
        }
        pub(crate) fn snooze(&self) {
            loom::thread::yield_now();
        }
        pub(crate) fn is_completed(&self) -> bool {
            true
        }
        pub(crate) fn reset(&self) {}
    }

    /// Loom has no timed park; a timed wait is modelled as an untimed one.
    pub(crate) fn park_timeout(_d: std::time::Duration) {
        loom::thread::park();
    }
}

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_utils::Backoff;
    pub(crate) use std::hint::spin_loop;
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};

    /// `std::cell::UnsafeCell` with loom's closure-based access API.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) fn new(v: T) -> Self {
            Self(std::cell::UnsafeCell::new(v))
        }
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

pub(crate) use imp::*;
pub(crate) use std::sync::atomic::Ordering;
