//! [`Runtime`]: a set of worker threads running green threads, and its
//! [`Builder`].

use std::fmt;
use std::io;
use std::panic::{self, Location};
use std::time::Duration;

use grove_scheduler::{Config, Scheduler, SpawnOptions};

pub use grove_scheduler::{Stats, TaskInfo, TaskState};

use crate::thread::JoinHandle;

/// A grove runtime: worker OS threads that run green threads M:N, with
/// work stealing.
///
/// Dropping it stops the workers. Green threads still parked then are
/// unwound on their own worker (their destructors run) before `drop`
/// returns, and their `join` returns `Err`; unstarted ones are dropped
/// unrun.
///
/// ```
/// let rt = grove_runtime::Runtime::builder().workers(2).build()?;
/// let answer = rt.block_on(|| {
///     let h = grove_runtime::go(|| 6 * 7);
///     h.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    scheduler: Scheduler,
    deadlock_grace: Option<Duration>,
    report_leaks: bool,
}

// A runtime shared with code that may panic stays whole (its state is
// behind its own locks and atomics): unwind safe, as tokio's.
impl std::panic::UnwindSafe for Runtime {}
impl std::panic::RefUnwindSafe for Runtime {}

/// How long every green thread must stay asleep, with nothing armed to wake
/// any of them, before `block_on` and `grove::run` report a deadlock.
///
/// Long on purpose: an OS thread the runtime cannot see may hold the other
/// end of a channel its green threads wait on (OS threads and green
/// threads talk through the same channels and locks) and take its time
/// before it sends; a program that is only slow must not be reported. A
/// test suite that wants its deadlocks reported sooner sets
/// [`Builder::deadlock_grace`].
pub const DEFAULT_DEADLOCK_GRACE: Duration = Duration::from_secs(10);

impl Runtime {
    /// A runtime with one worker per core and the default 256 KiB stack
    /// limit.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder to configure a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `f` as a green thread on this runtime and blocks the calling OS
    /// thread until it returns (a calling green thread is parked instead).
    /// A panic in `f` is resumed on the caller.
    ///
    /// # Deadlocks
    ///
    /// If every green thread of the runtime stays parked, with no timer
    /// armed and nothing happening, for the deadlock grace period (10 s by
    /// default, [`DEFAULT_DEADLOCK_GRACE`], [`Builder::deadlock_grace`]),
    /// `block_on` panics with Go's
    /// "all green threads are asleep - deadlock!" and the list of green
    /// threads instead of hanging.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.spawn(f);
        let result = match self.deadlock_grace {
            Some(grace) => handle.join_or_report_deadlock(&self.scheduler.handle(), grace),
            None => handle.join(),
        };
        match result {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Shuts the runtime down now (what dropping it does) and reports the
    /// green threads that were still live: they were unwound, their
    /// destructors ran. Tests can assert the report is clean to catch
    /// leaked green threads (Go's goroutine leaks).
    ///
    /// ```
    /// let rt = grove_runtime::Runtime::builder().workers(1).build()?;
    /// let (tx, rx) = grove_channels::bounded::<u32>(0);
    /// rt.spawn(move || rx.recv()); // waits forever: a leak
    /// let report = rt.shutdown();
    /// assert_eq!(report.leaked().len(), 1);
    /// # drop(tx);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(mut self) -> ShutdownReport {
        ShutdownReport::new(self.scheduler.shutdown())
    }

    /// Spawns a green thread on this runtime. Panics if no stack can be had
    /// (see [`crate::thread::Builder::spawn_on`] for an `io::Error`).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.scheduler
            .spawn_at(SpawnOptions::default(), Location::caller(), f)
            .unwrap_or_else(|err| panic!("grove: failed to spawn a green thread: {err}"))
    }

    /// Counters: green threads spawned, completed and live, stacks, steals,
    /// parks...
    pub fn stats(&self) -> Stats {
        self.scheduler.stats()
    }

    /// Every live green thread: id, name, state, where it was spawned, and
    /// what it is blocked on and where.
    ///
    /// A diagnostic, not a hot-path call: it looks at every task record the
    /// process holds memory for (as many as were ever alive at once, in all
    /// runtimes), since spawning registers a green thread nowhere.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.scheduler.tasks()
    }

    pub(crate) fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let report = ShutdownReport::new(self.scheduler.shutdown());
        if self.report_leaks && !report.is_clean() {
            eprintln!("{report}");
        }
    }
}

/// The green threads a runtime still had when it shut down, grouped by
/// where they were spawned.
///
/// Each was unwound (its destructors ran on its own worker) or dropped
/// unrun, except those in [`ShutdownReport::not_unwound`]: green threads
/// that refused to die (one caught its runtime's unwind and blocked again,
/// or blocked in a destructor while panicking) and what depended on them.
/// Those are leaked: their stacks and what they borrow are never freed.
#[derive(Clone, Debug)]
pub struct ShutdownReport {
    leaked: Vec<TaskInfo>,
    not_unwound: Vec<TaskInfo>,
}

impl ShutdownReport {
    fn new(outcome: grove_scheduler::ShutdownOutcome) -> ShutdownReport {
        ShutdownReport {
            leaked: outcome.live,
            not_unwound: outcome.leaked,
        }
    }

    /// True if no green thread was left.
    pub fn is_clean(&self) -> bool {
        self.leaked.is_empty() && self.not_unwound.is_empty()
    }

    /// Every green thread that was still live (Go's goroutine leaks).
    pub fn leaked(&self) -> &[TaskInfo] {
        &self.leaked
    }

    /// The green threads that could not be unwound: never freed, their
    /// worker OS threads (if stuck in them) never joined.
    pub fn not_unwound(&self) -> &[TaskInfo] {
        &self.not_unwound
    }

    /// Leaked green threads per spawn site, most first.
    pub fn by_spawn_site(&self) -> Vec<(&'static Location<'static>, usize)> {
        let mut groups: Vec<(&'static Location<'static>, usize)> = Vec::new();
        for task in &self.leaked {
            match groups.iter_mut().find(|(at, _)| *at == task.spawned_at) {
                Some((_, n)) => *n += 1,
                None => groups.push((task.spawned_at, 1)),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.1));
        groups
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return f.write_str("grove: no green thread was left at shutdown");
        }
        writeln!(
            f,
            "grove: {} green thread(s) still live at shutdown (unwound unless listed as leaked):",
            self.leaked.len()
        )?;
        for (at, n) in self.by_spawn_site() {
            let reasons: Vec<&str> = self
                .leaked
                .iter()
                .filter(|t| t.spawned_at == at)
                .filter_map(|t| t.blocked_on)
                .collect();
            writeln!(f, "  {n} spawned at {at}, blocked on {reasons:?}")?;
        }
        if !self.not_unwound.is_empty() {
            writeln!(
                f,
                "grove: {} green thread(s) could not be unwound and were leaked:",
                self.not_unwound.len()
            )?;
            for t in &self.not_unwound {
                writeln!(
                    f,
                    "  green thread {} spawned at {}",
                    t.id.as_u64(),
                    t.spawned_at
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Runtime`]. Methods take and return `self`, like
/// `std::thread::Builder`; [`Builder::build`] checks everything and returns
/// `io::ErrorKind::InvalidInput` for a bad value.
///
/// ```
/// let rt = grove_runtime::Runtime::builder()
///     .workers(4)
///     .stack_size(128 * 1024)
///     .thread_name("app-worker")
///     .build()?;
/// assert_eq!(rt.stats().workers, 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    config: Config,
    deadlock_grace: Option<Duration>,
    report_leaks: bool,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// One worker per core, 256 KiB stacks, workers named `grove-worker-N`.
    pub fn new() -> Builder {
        Builder {
            config: Config::default(),
            deadlock_grace: Some(DEFAULT_DEADLOCK_GRACE),
            report_leaks: false,
        }
    }

    /// Number of worker OS threads (at least 1).
    pub fn workers(mut self, n: usize) -> Builder {
        self.config.workers = n;
        self
    }

    /// The most a green thread's stack may grow to, in bytes (rounded up to
    /// whole pages, and to two 4 KiB pages at least, so that 4 KiB of stack
    /// lie below what grove keeps at its top). Pages are
    /// committed as the stack grows, so a large limit costs address space,
    /// not memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.config.stack_size = bytes;
        self
    }

    /// Worker threads are named `{prefix}-{index}`.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.config.thread_name = prefix.into();
        self
    }

    /// Caps the stacks this runtime may hold at once (below the process-wide
    /// budget that `vm.max_map_count` sets where each stack is a mapping of
    /// its own). Spawning beyond it fails with an `OutOfMemory` error that
    /// names this cap. A green thread takes its stack when it starts, not
    /// when it is spawned: several spawned before any of them started all
    /// pass that check, and one that then finds no stack waits for a green
    /// thread to finish and free one. If it waits in vain (every stack is
    /// held by a green thread that waits for it), `block_on` and
    /// `grove::run` report the deadlock, naming the cap.
    pub fn max_stacks(mut self, n: usize) -> Builder {
        self.config.max_stacks = Some(n);
        self
    }

    /// Lets a started green thread resume on whichever worker woke it, as Go
    /// does, instead of always on the worker it last ran on. A green thread
    /// spawned with [`thread::Builder::on_worker`](crate::thread::Builder::on_worker)
    /// is the exception: it stays on its worker all the same.
    ///
    /// # Safety
    ///
    /// With migration on, a green thread can move to another OS thread at
    /// any blocking call (a channel operation, a lock, `sleep`, `join`,
    /// `yield_now`). The caller promises that no green thread of this
    /// runtime holds, across such a call:
    ///
    /// - a reference to a `thread_local!` value, or data derived from one
    ///   (for instance a `RefCell` borrow of it), and
    /// - a value that is not `Send` (an `Rc`, a `std::sync::MutexGuard`, a
    ///   raw handle tied to its OS thread).
    ///
    /// Mind the compiler too: it may compute a thread-local's address once
    /// in a function and use it again after a call, so a function that
    /// touches a thread-local and also makes such a call may touch the
    /// wrong thread's value even if no reference is held in the source.
    /// Touch thread-locals only in functions that make no call that may
    /// park (put the access in an `#[inline(never)]` helper). grove's own
    /// code does this for its thread-locals.
    ///
    /// Breaking this is undefined behaviour: the value is then used from a
    /// thread it does not belong to.
    pub unsafe fn full_migration(mut self, enabled: bool) -> Builder {
        // SAFETY: the caller takes on the same contract (see above).
        unsafe { self.config.set_full_migration(enabled) };
        self
    }

    /// How long every green thread must stay asleep before `block_on`
    /// reports a deadlock (see [`Runtime::block_on`]); `None` waits forever.
    pub fn deadlock_grace(mut self, grace: Option<Duration>) -> Builder {
        self.deadlock_grace = grace;
        self
    }

    /// Print a [`ShutdownReport`] to stderr when the runtime is dropped with
    /// green threads still live (for example parked forever on a channel).
    pub fn report_leaks(mut self, on: bool) -> Builder {
        self.report_leaks = on;
        self
    }

    /// The most OS threads [`crate::blocking`] may use at once for this
    /// runtime (at least 1; 512 by default). Calls beyond it wait for a
    /// free thread: calls that wait on each other (one waits for what a
    /// call queued behind it would send) then wait for ever, and so does
    /// dropping the runtime, which waits for every call in flight. Keep
    /// the limit above the number of such calls at once.
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        self.config.max_blocking_threads = n;
        self
    }

    /// Report a green thread that keeps its worker busy this long without
    /// parking or yielding (a blocking OS call inside a green thread, or a
    /// long computation): once per episode on stderr, and in
    /// [`TaskInfo::stalling_worker_for`]. 250 ms by default; `None` turns
    /// the report off. The runtime's monitor thread runs either way: at
    /// each 25 ms tick it also keeps the backstops that a worker held by
    /// such a green thread cannot keep itself (it polls sockets no worker
    /// has polled for, wakes a worker to take the held one's unstarted
    /// tasks, and gets a thread onto [`crate::blocking`] calls queued behind
    /// pool threads that have not finished a call since the last tick).
    pub fn stall_warning(mut self, threshold: Option<Duration>) -> Builder {
        self.config.stall_warning = threshold;
        self
    }

    /// Starts the runtime: its workers, its monitor thread and its socket
    /// poller (three descriptors). `Err` for a configuration out of range
    /// (`InvalidInput`), or when the OS refuses a thread or a descriptor
    /// (`EMFILE`, say); nothing is left running then.
    pub fn build(self) -> io::Result<Runtime> {
        self.config.validate()?;
        Ok(Runtime {
            scheduler: Scheduler::new(self.config)?,
            deadlock_grace: self.deadlock_grace,
            report_leaks: self.report_leaks,
        })
    }
}

/// Go's `runtime.NumGoroutine()`: the green threads of the calling green
/// thread's runtime that were spawned and have not finished, the caller
/// included (queued ones count too). From a plain OS thread, those of the
/// global runtime (started if it was not: then 0).
///
/// A snapshot: other threads may spawn or finish green threads meanwhile.
/// A green thread counts as finished before its `join` returns.
///
/// ```
/// let rt = grove_runtime::Runtime::builder().workers(2).build()?;
/// let n = rt.block_on(|| {
///     let (tx, rx) = grove_channels::bounded::<()>(0);
///     let parked: Vec<_> = (0..3)
///         .map(|_| {
///             let rx = rx.clone();
///             grove_runtime::go(move || rx.recv())
///         })
///         .collect();
///     let n = grove_runtime::runtime::num_green_threads(); // 3 parked + this one
///     drop(tx);
///     parked.into_iter().for_each(|h| drop(h.join()));
///     n
/// });
/// assert_eq!(n, 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn num_green_threads() -> usize {
    let live = grove_scheduler::Handle::current().stats().live;
    usize::try_from(live).unwrap_or(usize::MAX)
}
