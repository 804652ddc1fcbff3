//! Synchronisation primitives mirroring `std::sync` — `Mutex`, `RwLock`,
//! `Condvar`, `Barrier`, `Once`, `OnceLock`, with std's method names, guard
//! types and poisoning — plus Go's `WaitGroup` and a `Semaphore`.
//!
//! Each parks a green thread (its worker runs others) and blocks a plain OS
//! thread, so green threads and OS threads can share one lock. Swapping
//! `use std::sync::{Arc, Mutex};` for `use grove::sync::{Arc, Mutex};` is
//! enough: the std items grove has no twin for (`Arc`, `Weak`, `atomic`,
//! the poison and result types) are re-exported here.
//!
//! All of them sit on one wait-queue core (`monitor`, over
//! `grove_scheduler::wait`), except `Mutex`, which uses the queue directly
//! for Go's starvation hand-off.

mod condvar;
mod monitor;
mod mutex;
mod once;
mod rwlock;
mod waitgroup;

pub use condvar::{Barrier, BarrierWaitResult, Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, OnceLock, OnceState};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use waitgroup::{Semaphore, SemaphorePermit, WaitGroup};

pub use std::sync::{atomic, Arc, LockResult, PoisonError, TryLockError, TryLockResult, Weak};
