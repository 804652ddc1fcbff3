//! Thread-locals in code that may migrate.
//!
//! A compiler assumes a function runs on one thread from entry to return,
//! so it may compute a thread-local's address once and use it again after
//! a call: the general-dynamic model's `__tls_get_addr` result is the kind
//! of value it keeps. In a green thread that migrates (a runtime built
//! with full migration, an unsafe opt-in), a call that parks may return on
//! another OS thread, and a kept address then points into the first
//! thread's storage: a data race on grove's own bookkeeping.
//!
//! So every thread-local grove reads or writes from code that can run in
//! a green thread goes through `tls_access!`: while no runtime of the process
//! migrates it costs one load of a static that never changes back; once
//! one does, the access runs in a function that is never inlined and has
//! an opaque side effect, so its address is computed afresh at every call
//! and never shared with the caller's.
//!
//! This protects grove's code. It cannot protect the caller's own
//! thread-locals: the runtime builder's `full_migration` says what its
//! user must do about those.

use std::sync::atomic::{compiler_fence, AtomicBool, Ordering};

/// Set once a runtime that migrates green threads is built; never cleared.
static MIGRATION: AtomicBool = AtomicBool::new(false);

/// Notes that a runtime of this process migrates green threads. Called
/// before that runtime's first worker starts, so every green thread that
/// can migrate sees it set.
pub(crate) fn migration_on() {
    MIGRATION.store(true, Ordering::SeqCst);
}

/// Whether any runtime of this process migrates green threads.
#[doc(hidden)]
#[inline(always)]
pub fn migrating() -> bool {
    MIGRATION.load(Ordering::Relaxed)
}

/// Runs `f`, which touches thread-locals, so that the thread-local
/// addresses it uses are computed for the OS thread it runs on now, even
/// in a green thread that migrated since its caller last touched them.
/// See the module docs; call it through [`tls_access!`](crate::tls_access),
/// which keeps the common path (nobody migrates) inline.
#[doc(hidden)]
#[inline(never)]
pub fn fresh<R>(f: impl FnOnce() -> R) -> R {
    // A fence counts as a write to memory: the compiler can neither merge
    // two calls of this function nor move one across the stack switch.
    compiler_fence(Ordering::SeqCst);
    f()
}

/// Evaluates an expression that touches thread-locals: inline while no
/// runtime migrates green threads, else through [`fresh`] (see the
/// module docs). A macro, not a function taking a closure, so that the
/// common path is the expression itself, never a call the compiler may
/// decline to inline.
#[doc(hidden)]
#[macro_export]
macro_rules! tls_access {
    ($e:expr) => {
        if $crate::tls::migrating() {
            $crate::tls::fresh(|| $e)
        } else {
            $e
        }
    };
}
