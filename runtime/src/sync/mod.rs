//! Synchronisation primitives mirroring `std::sync` — `Mutex`, `RwLock`,
//! `Condvar`, `Barrier`, `Once`, `OnceLock`, `LazyLock`, with std's method names, guard
//! types and poisoning — plus Go's `WaitGroup`, a weighted `Semaphore` and
//! golang.org/x/sync's `ErrGroup`.
//!
//! Each parks a green thread (its worker runs others) and blocks a plain OS
//! thread, so green threads and OS threads can share one lock. Swapping
//! `use std::sync::{Arc, Mutex};` for `use grove::sync::{Arc, Mutex};` is
//! enough: the std items grove has no twin for (`Arc`, `Weak`, `atomic`,
//! the poison and result types) are re-exported here. [`mpsc`] is std's
//! `mpsc` on grove's channels (std's would block the worker); `grove::chan`
//! is the Go-shaped channel with several consumers, `close` and `select!`.
//!
//! # The race Go lets you write
//!
//! Go's classic data race (many goroutines incrementing one counter) does
//! not compile in Rust: a green thread may not borrow a local mutably, nor
//! share one without synchronisation.
//!
//! ```compile_fail
//! let mut counter = 0;
//! let handles: Vec<_> = (0..100)
//!     .map(|_| grove_runtime::go(|| counter += 1)) // error: closure may outlive `counter`
//!     .collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! ```
//!
//! The fix is the Go fix, a mutex (or an atomic):
//!
//! ```
//! use grove_runtime::sync::{Arc, Mutex};
//!
//! let counter = Arc::new(Mutex::new(0));
//! let handles: Vec<_> = (0..100)
//!     .map(|_| {
//!         let counter = counter.clone();
//!         grove_runtime::go(move || *counter.lock().unwrap() += 1)
//!     })
//!     .collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! assert_eq!(*counter.lock().unwrap(), 100);
//! ```
//!
//! # Auto traits
//!
//! As std's: a lock is `Send + Sync` when its data is `Send` (a `RwLock`
//! also needs `Sync` data to be `Sync`), and a guard is `Sync` only when
//! the data is. Unlike std's, guards are `Send`: a green thread may carry
//! one across a park, and nothing ties a grove lock to an OS thread.
//! `tests/soundness_surface.rs` asserts the positive cases; these pin the
//! negative ones.
//!
//! ```compile_fail
//! fn shared<T: Sync>(_: &T) {}
//! let lock = grove_runtime::sync::Mutex::new(std::cell::Cell::new(0u64));
//! shared(&lock.lock().unwrap()); // error: a guard of Cell data is not Sync
//! ```
//!
//! ```compile_fail
//! fn shared<T: Sync>(_: &T) {}
//! let lock = grove_runtime::sync::RwLock::new(std::cell::Cell::new(0u64));
//! shared(&lock.write().unwrap()); // error: not Sync either
//! ```
//!
//! ```compile_fail
//! fn sent<T: Send>(_: T) {}
//! sent(grove_runtime::sync::Mutex::new(std::rc::Rc::new(0))); // error: Rc is not Send
//! ```
//!
//! ```compile_fail
//! fn shared<T: Sync>(_: &T) {}
//! shared(&grove_runtime::sync::RwLock::new(std::cell::Cell::new(0))); // error: Cell is not Sync
//! ```
//!
//! All of them sit on one wait-queue core (`monitor`, over
//! `grove_scheduler::wait`), except `Mutex`, which uses the queue directly
//! for Go's starvation hand-off.

/// Emits a constructor as a `const fn`, or, under `--cfg loom` (the model
/// checks), as a plain `fn`: the monitor under these primitives is built
/// on loom's lock and atomics there, which have no `const` constructors.
macro_rules! const_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($args:tt)*) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        $vis const fn $name($($args)*) -> $ret $body

        #[cfg(loom)]
        $(#[$meta])*
        $vis fn $name($($args)*) -> $ret $body
    };
}

mod condvar;
mod errgroup;
mod monitor;
pub mod mpsc;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod spin;
mod waitgroup;

pub use condvar::{Barrier, BarrierWaitResult, Condvar, WaitTimeoutResult};
pub use errgroup::ErrGroup;
pub use mutex::{Mutex, MutexGuard};
pub use once::{LazyLock, Once, OnceLock, OnceState};

/// std's deprecated `ONCE_INIT`: a new [`Once`].
#[cfg(not(loom))]
#[deprecated(note = "replaced by `Once::new()`, as std's `ONCE_INIT` is")]
#[allow(clippy::declare_interior_mutable_const)]
pub const ONCE_INIT: Once = Once::new();
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;

pub use std::sync::{atomic, Arc, LockResult, PoisonError, TryLockError, TryLockResult, Weak};
