//! grove's user-facing runtime: [`Runtime`] and its [`Builder`], the
//! [`thread`] module that mirrors `std::thread`, [`run`] / [`go`], Go's
//! [`sync`] and [`context`], and the [`future`] bridge to async Rust.
//!
//! Most programs use these through the `grove` facade crate.

#![warn(missing_docs)]

pub mod context;
pub mod future;
pub mod runtime;
pub mod sync;
pub mod thread;

pub use runtime::{Builder, Runtime, ShutdownReport, Stats, TaskInfo, TaskState};

/// Runs `f` as the main green thread of the global runtime (started on
/// first use, one worker per core) and returns its value. A panic in `f` is
/// resumed on the caller.
///
/// Called from inside a green thread, `f` runs as a new green thread of the
/// caller's runtime, and the caller waits for it.
///
/// If every green thread stays parked with nothing armed to wake any of
/// them for a second, `run` panics with Go's "all green threads are asleep -
/// deadlock!" and the list of green threads (see `Runtime::block_on`).
///
/// ```
/// let sum = grove_runtime::run(|| {
///     let handles: Vec<_> = (0..10u64).map(|i| grove_runtime::go(move || i * i)).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
/// });
/// assert_eq!(sum, 285);
/// ```
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = thread::spawn(f);
    let runtime = grove_scheduler::Handle::current();
    match handle.join_or_report_deadlock(&runtime, runtime::DEFAULT_DEADLOCK_GRACE) {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Go's `go f()`: spawns `f` as a green thread on the runtime of the
/// calling green thread, or on the global runtime from any other thread.
///
/// Panics if no stack can be had for it (the message names
/// `vm.max_map_count`); use [`thread::Builder::spawn`] to get that as an
/// `io::Error` instead.
#[track_caller]
pub fn go<F, T>(f: F) -> thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    thread::spawn(f)
}
