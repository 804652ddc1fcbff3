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

/// Hands a blocking call to another OS thread: runs `f` on the calling
/// green thread's runtime's blocking pool and parks the green thread (its
/// worker runs others) until `f` returns; a panic in `f` is resumed here.
/// From a plain OS thread, `f` runs inline.
///
/// This is the answer to "a blocking OS call blocks a worker": file I/O,
/// name resolution, a database driver, a long computation. `f` may borrow
/// from the caller (no `'static`): the caller stays parked until `f` has
/// returned, also while its runtime shuts down. The pool starts OS threads
/// on demand, up to [`Builder::max_blocking_threads`] (512 by default);
/// idle ones exit after about 10 s.
///
/// A call costs a hand-off to a pool thread and back: about a microsecond
/// when calls come back to back (a pool thread that has just finished one
/// watches for the next for 50 µs before it sleeps), tens of microseconds
/// when the pool thread must be woken from its sleep. A call made while
/// pool threads are busy getting through short calls (one returned in the
/// last 50 µs) waits up to 50 µs for one of them to finish before a
/// thread is woken or started for it, as Go hands a P stuck in a system
/// call to another M after 20 µs: so many short calls share a few threads
/// instead of waking a crowd. A call queued behind a long one gets a
/// thread of its own after that wait (or at the runtime monitor's next
/// 25 ms tick, if a green thread that never yields holds its caller's
/// worker meanwhile); a call made while the busy threads have returned
/// nothing for 50 µs gets one at once.
///
/// ```
/// let text = grove_runtime::run(|| {
///     let path = std::env::temp_dir().join("grove-blocking-doc.txt");
///     grove_runtime::blocking(|| std::fs::write(&path, "hello")).unwrap();
///     grove_runtime::blocking(|| std::fs::read_to_string(&path)).unwrap()
/// });
/// assert_eq!(text, "hello");
/// ```
#[track_caller]
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    grove_scheduler::blocking::blocking(f)
}

/// Go's `go f()`: spawns `f` as a green thread on the runtime of the
/// calling green thread, or on the global runtime from any other thread.
///
/// Panics if no stack can be had for it (the message names the limit:
/// `runtime::Builder::max_stacks`, or `vm.max_map_count` where each stack
/// is a mapping of its own, see `grove::runtime::stack_mode`); use
/// [`thread::Builder::spawn`] to get that as an `io::Error` instead.
#[track_caller]
pub fn go<F, T>(f: F) -> thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    thread::spawn(f)
}
