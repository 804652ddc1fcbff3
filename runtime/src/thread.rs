//! Green threads, mirroring `std::thread`: swap `use std::thread;` for
//! `use grove_runtime::thread;` (or `grove::thread`) and a thread program
//! becomes a green-thread program.
//!
//! ```
//! use grove_runtime::thread;
//! use std::time::Duration;
//!
//! let handle = thread::spawn(|| {
//!     thread::sleep(Duration::from_millis(1)); // parks the green thread only
//!     thread::current().id()
//! });
//! let id = handle.thread().id();
//! assert_eq!(handle.join().unwrap(), id);
//! ```

use std::io;
use std::panic::Location;
use std::time::Duration;

use grove_scheduler::{park as seam, Handle, SpawnOptions};

pub use grove_scheduler::scope::{scope, Scope, ScopedJoinHandle};
pub use grove_scheduler::thread::{
    current, current_worker, JoinFuture, JoinHandle, Thread, ThreadId,
};
pub use std::thread::{available_parallelism, panicking, AccessError, LocalKey, Result};

use crate::runtime::Runtime;

/// Spawns a green thread, as `std::thread::spawn` spawns an OS thread: on
/// the calling green thread's runtime, or on the global runtime from any
/// other thread. Same as `grove::go`.
///
/// Panics if no stack can be had for it; [`Builder::spawn`] returns that
/// as an `io::Error`.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Handle::spawn_current(SpawnOptions::default(), Location::caller(), f)
        .unwrap_or_else(|err| panic!("grove: failed to spawn a green thread: {err}"))
}

/// Lets other green threads run: the caller goes to the back of its
/// worker's queue. On an OS thread, `std::thread::yield_now`.
pub fn yield_now() {
    seam::yield_now();
}

/// Sleeps for at least `d`. In a green thread this parks the green thread,
/// not its worker; on an OS thread it is `std::thread::sleep`.
#[track_caller]
pub fn sleep(d: Duration) {
    seam::sleep(d);
}

/// Blocks until the current thread's token is made available by
/// [`Thread::unpark`] (or spuriously), as `std::thread::park`.
#[track_caller]
pub fn park() {
    grove_scheduler::thread::park_token(None);
}

/// Like [`park`], for at most `d`.
#[track_caller]
pub fn park_timeout(d: Duration) {
    let deadline = std::time::Instant::now().checked_add(d);
    grove_scheduler::thread::park_token(deadline);
}

/// std's deprecated `sleep_ms`: [`sleep`] for `ms` milliseconds.
#[deprecated(note = "replaced by `grove::thread::sleep`, as std's `sleep_ms` is")]
#[track_caller]
pub fn sleep_ms(ms: u32) {
    sleep(Duration::from_millis(u64::from(ms)));
}

/// std's deprecated `park_timeout_ms`: [`park_timeout`] for `ms`
/// milliseconds.
#[deprecated(note = "replaced by `grove::thread::park_timeout`, as std's `park_timeout_ms` is")]
#[track_caller]
pub fn park_timeout_ms(ms: u32) {
    park_timeout(Duration::from_millis(u64::from(ms)));
}

/// Configures a green thread before spawning it, as `std::thread::Builder`.
///
/// ```
/// let handle = grove_runtime::thread::Builder::new()
///     .name("worker-7".to_string())
///     .stack_size(64 * 1024)
///     .spawn(|| grove_runtime::thread::current().name().map(str::to_string))?;
/// assert_eq!(handle.join().unwrap().as_deref(), Some("worker-7"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until spawn is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    worker: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack limit.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the green thread (shown by `Thread::name`, `Runtime::tasks`
    /// and in stack-overflow reports). A name with a NUL byte makes the
    /// spawn panic, as std's does.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// The most this green thread's stack may grow to, in bytes: rounded
    /// up to whole pages and to the smallest stack grove hands out (two
    /// 4 KiB pages), as std rounds a small size up to its minimum. A size
    /// beyond what the address space allows makes `spawn` fail with
    /// `InvalidInput`.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Starts the green thread on worker `i` of its runtime (numbered from
    /// 0), where it stays: it is never stolen. For benchmarks, and for
    /// programs that want two green threads on one worker (or on two).
    /// `spawn` returns an `InvalidInput` error if the runtime has no worker
    /// `i`.
    ///
    /// ```
    /// let rt = grove_runtime::Runtime::builder().workers(2).build()?;
    /// let on = rt.block_on(|| {
    ///     grove_runtime::thread::Builder::new()
    ///         .on_worker(1)
    ///         .spawn(grove_runtime::thread::current_worker)
    ///         .unwrap()
    ///         .join()
    ///         .unwrap()
    /// });
    /// assert_eq!(on, Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_worker(mut self, i: usize) -> Builder {
        self.worker = Some(i);
        self
    }

    /// The spawn's options. Panics on a name with a NUL byte, as std's
    /// `Builder::spawn` does (a green thread's name never reaches the OS,
    /// but a program swapped from std must fail the same way).
    #[track_caller]
    fn options(self) -> SpawnOptions {
        if self.name.as_deref().is_some_and(|n| n.contains('\0')) {
            panic!("thread name may not contain interior null bytes");
        }
        SpawnOptions {
            name: self.name,
            stack_size: self.stack_size,
            worker: self.worker,
        }
    }

    /// Spawns the green thread on the current runtime (the global one from
    /// an OS thread). Errors: `InvalidInput` for a bad stack size,
    /// `OutOfMemory` naming the limit (`runtime::Builder::max_stacks`, or
    /// `vm.max_map_count` where each stack is a mapping of its own) when no
    /// stack can be had.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Handle::spawn_current(self.options(), Location::caller(), f)
    }

    /// Spawns a green thread whose closure and output may borrow from the
    /// caller, without the `'static` bounds: std's
    /// `Builder::spawn_unchecked`. [`scope`] is the safe way to borrow.
    ///
    /// # Safety
    ///
    /// As std's: whatever `f` and its output borrow must outlive the green
    /// thread, which the caller makes sure of by joining the handle before
    /// any borrowed data is dropped (or by borrowing only `'static` data).
    /// One more rule than std's: an output that no `join` takes is dropped
    /// with the green thread's record, when the runtime's last reference
    /// to it goes, which may be after the green thread has ended; so a
    /// handle dropped unjoined must not leave an output that borrows.
    ///
    /// ```
    /// let data = vec![1, 2, 3];
    /// // SAFETY: joined below, while `data` is alive.
    /// let handle = unsafe {
    ///     grove_runtime::thread::Builder::new().spawn_unchecked(|| data.iter().sum::<i32>())?
    /// };
    /// assert_eq!(handle.join().unwrap(), 6);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub unsafe fn spawn_unchecked<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // SAFETY: the caller keeps the contract above, which is
        // `spawn_current_unchecked`'s.
        unsafe { Handle::spawn_current_unchecked(self.options(), Location::caller(), f) }
    }

    /// Spawns the green thread on `rt`.
    #[track_caller]
    pub fn spawn_on<F, T>(self, rt: &Runtime, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        rt.scheduler()
            .spawn_at(self.options(), Location::caller(), f)
    }

    /// Spawns a scoped green thread (see [`scope`]).
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        scope.spawn_with(self.options(), Location::caller(), f)
    }
}
