//! An asymmetric fence: a free half for the exclusive writer's hot path, an
//! expensive half for the rare paths that must meet it (a reader about to
//! sleep, `close`).
//!
//! The exclusive writer (writer.rs) and those rare paths meet Dekker-style:
//! each stores, then fences, then loads what the other stored, and at least
//! one of the two loads must see the other's store. With ordinary fences both
//! sides would pay a `SeqCst` fence (a locked instruction, as dear as the
//! read-modify-write the writer is built to avoid). Here the writer's side is
//! [`light`], a compiler fence, and the rare side is [`heavy`], Linux's
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: the kernel makes every
//! thread of this process that is running execute a full memory barrier
//! before the call returns (one that is not running passes one when it is
//! switched out). So wherever the writer is in its store–fence–load
//! sequence when `heavy` runs, a full barrier is executed at that point of
//! it, and the pair behaves as two `SeqCst` fences: the writer's `light`
//! either comes before that point (its store is visible to the loads after
//! `heavy`) or after it (its load sees what was stored before `heavy`).
//! This is the pattern of folly's `asymmetric_thread_fence_light/heavy` and
//! of the Linux kernel's own RCU users of `membarrier`.
//!
//! [`init`] registers the process for the expedited command once, when the
//! first exclusive log is built. Where that fails (not Linux, a kernel
//! before 4.14, a seccomp filter that refuses the call), both halves are a
//! `SeqCst` fence: correct, and the writer pays one fence per write, about
//! what its claim RMW cost before. The choice is made before any exclusive
//! log exists and never changes, so the two halves always agree. Should the
//! kernel refuse the call later (it may not), [`heavy`] registers again and
//! retries, and aborts the process if it never passes: writers' compiler
//! fences would otherwise pair with nothing.
//!
//! Under loom both halves are `SeqCst` fences, which is what the pair
//! amounts to; loom checks `SeqCst` fences (see loom-tests' `fence.rs`).

#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `membarrier` is registered: written once by [`init`], before any
/// exclusive log exists (the log is reached only through what `init`'s
/// caller returns, so every later load sees the final value).
#[cfg(not(loom))]
static EXPEDITED: AtomicBool = AtomicBool::new(false);

/// Registers for `membarrier` if it is there (once per process); returns
/// whether [`light`] is a compiler fence from now on.
pub(crate) fn init() -> bool {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if sys::register() {
                // Relaxed: published to the writer and readers of the log
                // being built by the hand-over of that log (module docs).
                EXPEDITED.store(true, Ordering::Relaxed);
            }
        });
    }
    expedited()
}

/// Whether the halves are `membarrier` and a compiler fence.
#[inline]
pub(crate) fn expedited() -> bool {
    #[cfg(not(loom))]
    {
        // Relaxed: see `EXPEDITED`.
        EXPEDITED.load(Ordering::Relaxed)
    }
    #[cfg(loom)]
    {
        false
    }
}

/// The writer's half: after its store, before its load. `expedited` is
/// what [`init`] returned (the writer keeps it, rather than load a static
/// on every write).
#[inline(always)]
pub(crate) fn light(expedited: bool) {
    #[cfg(not(loom))]
    {
        if expedited {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
    #[cfg(loom)]
    {
        let _ = expedited;
        loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
}

/// The rare side's half: after its store, before its load. A system call
/// (about a microsecond, and an interrupt on each core running this
/// process) where `membarrier` is used.
pub(crate) fn heavy() {
    #[cfg(not(loom))]
    {
        #[cfg(target_os = "linux")]
        if expedited() {
            if sys::barrier() {
                return;
            }
            heavy_retry();
            return;
        }
        std::sync::atomic::fence(Ordering::SeqCst);
    }
    #[cfg(loom)]
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// `membarrier` failed after it was registered. The kernel may refuse a
/// call it accepted before: it can fail to allocate a CPU mask (`ENOMEM`),
/// a seccomp filter installed later may refuse it, a process made by `fork`
/// may have lost the registration. Writers' halves are compiler fences, so
/// a `SeqCst` fence here would pair with nothing and every guarantee in
/// writer.rs would be lost without a sign: register again and retry (a
/// transient failure or a lost registration passes), and if the kernel keeps
/// refusing, stop the process with a message rather than go on unsound.
#[cfg(all(target_os = "linux", not(loom)))]
#[cold]
fn heavy_retry() {
    for _ in 0..1000 {
        std::thread::yield_now();
        let _ = sys::register();
        if sys::barrier() {
            return;
        }
    }
    eprintln!(
        "memlog: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) keeps failing after it was \
         registered; an exclusive Writer's writes can no longer be ordered against close \
         and sleeping readers, so the process stops"
    );
    std::process::abort();
}

#[cfg(all(target_os = "linux", not(loom)))]
mod sys {
    // From the kernel's uapi `linux/membarrier.h`: stable ABI since 4.14.
    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: `membarrier(cmd, flags = 0, cpu_id = 0)` reads no memory of
        // ours; an unknown command or a refused call only returns -1.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers this process for the private expedited command, if the
    /// kernel has it.
    pub(super) fn register() -> bool {
        let supported = membarrier(CMD_QUERY);
        supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED != 0
            && supported & CMD_REGISTER_PRIVATE_EXPEDITED != 0
            && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    pub(super) fn barrier() -> bool {
        membarrier(CMD_PRIVATE_EXPEDITED) == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    /// On Linux (4.14 and later, where the call is allowed) the writer's
    /// half is free; anywhere, both halves run without failing.
    #[test]
    fn init_is_idempotent_and_both_halves_run() {
        let first = super::init();
        assert_eq!(super::init(), first);
        assert_eq!(super::expedited(), first);
        super::light(first);
        super::heavy();
        if std::env::var_os("MEMLOG_EXPECT_MEMBARRIER").is_some() {
            assert!(first, "membarrier was expected on this machine");
        }
    }
}
