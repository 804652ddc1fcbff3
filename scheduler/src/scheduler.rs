//! A scheduler instance: its workers, shared queues and stack pool;
//! spawning. (Its live tasks are found by walking the task slab,
//! `task::live_tasks`: a spawn registers nothing.) Dropping it shuts it
//! down: see `shutdown`.

use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use crossbeam_deque::{Injector, Stealer, Worker as Deque};
use crossbeam_utils::sync::{Parker, Unparker as OsUnparker};
use crossbeam_utils::CachePadded;

use crate::idle::Idle;
use crate::monitor;
use crate::park::Unparker;
use crate::stack::{self, StackPool, BUDGET, DEFAULT_STACK_SIZE};
use crate::task::{self, HeaderInit, Runnable, Task, TaskRef};
use crate::thread::{JoinHandle, ThreadId};
use crate::worker::{self, Counters, Worker};

/// How a scheduler is set up. `runtime::Builder` fills it in.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker OS threads.
    pub workers: usize,
    /// Default most a green thread's stack may grow to, in bytes.
    pub stack_size: usize,
    /// Worker threads are named `{thread_name}-{index}`.
    pub thread_name: String,
    /// Most stacks this runtime may map at once (below the process-wide
    /// `vm.max_map_count` budget); `None` for the budget alone.
    pub max_stacks: Option<usize>,
    /// Whether a started green thread may resume on another worker: off
    /// unless [`Config::set_full_migration`], an unsafe call, turns it on.
    /// Private, so that safe code cannot set it:
    ///
    /// ```compile_fail
    /// let config = grove_scheduler::Config { migrate: true, ..Default::default() };
    /// ```
    migrate: bool,
    /// Report a green thread that holds its worker this long without
    /// parking or yielding (see `monitor`); `None`: no report (the monitor
    /// thread runs all the same, for its backstops).
    pub stall_warning: Option<Duration>,
    /// Most OS threads of the blocking pool at once (see `blocking`).
    pub max_blocking_threads: usize,
}

/// A green thread holding its worker this long is reported by default.
pub const DEFAULT_STALL_WARNING: Duration = Duration::from_millis(250);

/// Most worker threads a runtime may have.
pub const MAX_WORKERS: usize = 4096;

impl Default for Config {
    fn default() -> Config {
        Config {
            workers: thread::available_parallelism().map_or(1, |n| n.get()),
            stack_size: DEFAULT_STACK_SIZE,
            thread_name: "grove-worker".to_string(),
            max_stacks: None,
            migrate: false,
            stall_warning: Some(DEFAULT_STALL_WARNING),
            max_blocking_threads: crate::blocking::DEFAULT_MAX_BLOCKING_THREADS,
        }
    }
}

impl Config {
    /// Whether a started green thread may resume on another worker.
    pub fn full_migration(&self) -> bool {
        self.migrate
    }

    /// Lets a started green thread resume on whichever worker woke it.
    ///
    /// # Safety
    ///
    /// The contract of `grove::runtime::Builder::full_migration`: no green
    /// thread of the runtime keeps, across a call that may park, anything
    /// tied to its OS thread.
    pub unsafe fn set_full_migration(&mut self, enabled: bool) {
        self.migrate = enabled;
    }

    /// Checks every field; `InvalidInput` with a message if one is off.
    pub fn validate(&self) -> io::Result<()> {
        if self.workers == 0 {
            return Err(invalid("a runtime needs at least one worker (workers(0))"));
        }
        if self.workers > MAX_WORKERS {
            return Err(invalid(&format!(
                "{} workers requested; at most {MAX_WORKERS} are allowed",
                self.workers
            )));
        }
        // A runtime's default below one page is a mistake, not a request
        // for the smallest stack (a green thread's own `stack_size` rounds
        // up, as std's does).
        let page = stack::page_size();
        if self.stack_size < page {
            return Err(invalid(&format!(
                "stack size {} is below one page ({page} bytes)",
                self.stack_size
            )));
        }
        stack::validate_stack_size(self.stack_size)?;
        if self.max_stacks == Some(0) {
            return Err(invalid("max_stacks(0) would let no green thread start"));
        }
        if self.max_blocking_threads == 0 {
            return Err(invalid(
                "max_blocking_threads(0) would let no blocking call run",
            ));
        }
        if self.thread_name.contains('\0') {
            return Err(invalid("thread_name contains a NUL byte"));
        }
        Ok(())
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// Options of one spawn.
#[derive(Debug, Default)]
pub struct SpawnOptions {
    /// The green thread's name.
    pub name: Option<String>,
    /// Its stack limit (validated); the runtime's default if `None`.
    pub stack_size: Option<usize>,
    /// The worker it must start on (and, never stolen, stay on); any if
    /// `None`. An index past the last worker is refused (`InvalidInput`).
    pub worker: Option<usize>,
}

/// The half of a worker other threads see.
pub(crate) struct WorkerShared {
    pub(crate) stealer: Stealer<Runnable>,
    pub(crate) unparker: OsUnparker,
    pub(crate) counters: CachePadded<Counters>,
    pub(crate) watch: CachePadded<monitor::Watch>,
    /// Its thread is stuck in a green thread that will not unwind: it is
    /// not joined at shutdown (see `worker::block_os_thread`).
    pub(crate) abandoned: std::sync::atomic::AtomicBool,
    /// An idle worker has seen this worker's short queue of unstarted
    /// tasks and will steal it when its grace is over (see
    /// `Worker::worth_stealing`): the owner starts them first, if it can,
    /// so that they run beside the green thread that spawned them. A hint,
    /// set by the thief and cleared by the owner (see
    /// `Worker::unstarted_first`).
    pub(crate) thief_waiting: std::sync::atomic::AtomicBool,
    /// The worker runs a green thread that keeps spending its budget with
    /// unstarted tasks queued behind it: a thief takes a short queue at
    /// once, without the grace (see `Worker::keep_for_thief`). Set and
    /// cleared by the owner.
    pub(crate) offered: std::sync::atomic::AtomicBool,
    /// Its yielded tasks, as it last counted them (once per round of them;
    /// see `Worker::look_beside_yielders`). Written by the owner only.
    pub(crate) yielded: std::sync::atomic::AtomicUsize,
    /// Its inbox and what a waker looks at after a push: one cache line,
    /// so that a cross-worker wake-up moves one line from the waker's
    /// core and back (see `Shared::push_to_inbox`).
    pub(crate) mailbox: CachePadded<Mailbox>,
}

/// A worker's inbox, with its doorbell (see `Shared::push_to_inbox`).
pub(crate) struct Mailbox {
    /// Green threads homed on the worker that other threads woke.
    pub(crate) inbox: crate::inbox::Inbox,
    /// The worker is about to sleep or sleeps (on its `Parker`, or in the
    /// poller): a waker must wake it.
    pub(crate) sleeping: std::sync::atomic::AtomicBool,
    /// Hand-offs to this worker in flight (between the push and the
    /// waker's last look here): a runtime's shutdown waits for none to be
    /// left before it lets the runtime go, since a task handed off may
    /// finish before its waker is done.
    pub(crate) wakers: std::sync::atomic::AtomicUsize,
}

impl WorkerShared {
    /// Whether shutdown gave up on this worker's OS thread (see `shutdown`).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }
}

const RUNNING: u8 = 0;
pub(crate) const SHUTTING_DOWN: u8 = 1;
pub(crate) const STOPPED: u8 = 2;

/// State shared by a scheduler's workers and handles.
pub(crate) struct Shared {
    pub(crate) workers: Box<[WorkerShared]>,
    pub(crate) injector: Injector<Runnable>,
    /// Unstarted tasks that found no stack; retried as stacks come back.
    pub(crate) starved: Injector<Runnable>,
    /// A task starved while workers may hold idle stacks in their caches:
    /// every worker hands its cache to the global pool when it sees this.
    pub(crate) stacks_wanted: std::sync::atomic::AtomicBool,
    pub(crate) idle: Idle,
    pub(crate) stacks: StackPool,
    pub(crate) migrate: bool,
    pub(crate) state: AtomicU8,
    external_spawned: AtomicU64,
    /// Live [`WakeHold`]s: armed timers outside the workers' own heaps
    /// (`after_func`) that will start a green thread here.
    wake_holds: AtomicUsize,
    shutdown_waiter: Mutex<Option<Unparker>>,
    /// The poller (see `io`), made with the runtime: made at the first
    /// wait on a socket instead, a process out of descriptors then would
    /// fail that read or write with `EMFILE`, which std's never return. A
    /// runtime that never waits on a descriptor never polls it.
    pub(crate) io: crate::io::Driver,
    pub(crate) blocking: Arc<crate::blocking::Pool>,
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state.load(Ordering::SeqCst) != RUNNING
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.state.load(Ordering::Relaxed) == STOPPED
    }

    /// Idle protocol step 1: wake a parked worker for new stealable work.
    pub(crate) fn notify_parked(&self) {
        if let Some(worker) = self.idle.worker_to_notify() {
            self.wake_worker(worker);
        }
    }

    /// Wakes worker `index` from its sleep: its futex, or the poller if it
    /// is the one blocked in it (see `io`).
    pub(crate) fn wake_worker(&self, index: usize) {
        if self.io.poller.load(Ordering::SeqCst) == index {
            self.io.wake();
            return;
        }
        self.workers[index].unparker.unpark();
    }

    /// Hands a woken task to its home worker.
    pub(crate) fn push_to_inbox(&self, home: usize, task: Runnable) {
        let worker = &self.workers[home];
        // Counted before the push, so before the task can run and finish:
        // a shutdown that saw it finish sees this hand-off in flight.
        worker.mailbox.wakers.fetch_add(1, Ordering::Relaxed);
        worker.mailbox.inbox.push(task);
        // Unparking is an atomic swap on the target's parker, another cache
        // line to bounce: skip it while the target is awake (it watches its
        // inbox). The fences pair: either it sees our push after raising
        // `sleeping`, or we see `sleeping` raised (see `Worker::park`).
        std::sync::atomic::fence(Ordering::SeqCst);
        if worker.mailbox.sleeping.load(Ordering::SeqCst) {
            self.wake_worker(home);
        }
        worker.mailbox.wakers.fetch_sub(1, Ordering::Release);
    }

    /// Waits until no hand-off to any worker is in flight (see `wakers`).
    pub(crate) fn wait_for_wakers(&self) {
        for w in self.workers.iter() {
            let backoff = crossbeam_utils::Backoff::new();
            while w.mailbox.wakers.load(Ordering::Acquire) != 0 {
                if backoff.is_completed() {
                    thread::yield_now();
                } else {
                    backoff.snooze();
                }
            }
        }
    }

    /// Whether any queue a thief can take from holds work.
    pub(crate) fn has_stealable_work(&self) -> bool {
        !self.injector.is_empty() || self.workers.iter().any(|w| !w.stealer.is_empty())
    }

    /// Green threads finished (returned, unwound, or dropped unrun).
    pub(crate) fn completed(&self) -> u64 {
        self.workers
            .iter()
            .map(|w| w.counters.completed.load(Ordering::Relaxed))
            .sum()
    }

    /// Who to wake when the last green thread finishes at shutdown.
    pub(crate) fn set_shutdown_waiter(&self, waiter: Option<Unparker>) {
        let old = std::mem::replace(
            &mut *self
                .shutdown_waiter
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            waiter,
        );
        drop(old); // after the lock (see `Header::set_join_waiter`)
    }

    /// Green threads spawned and not finished.
    pub(crate) fn live(&self) -> u64 {
        let mut spawned = self.external_spawned.load(Ordering::Relaxed);
        let mut completed = 0;
        for w in self.workers.iter() {
            spawned += w.counters.spawned.load(Ordering::Relaxed);
            completed += w.counters.completed.load(Ordering::Relaxed);
        }
        spawned.saturating_sub(completed)
    }

    pub(crate) fn wake_shutdown_waiter(&self) {
        if self.live() == 0 {
            let waiter = self
                .shutdown_waiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if let Some(waiter) = waiter {
                waiter.unpark();
            }
        }
    }

    /// Stacks sitting idle in this runtime's pools.
    fn idle_stacks(&self) -> usize {
        self.stacks.pooled()
            + self
                .workers
                .iter()
                .map(|w| w.counters.cached_stacks.load(Ordering::Relaxed) as usize)
                .sum::<usize>()
    }

    /// Refuses a spawn when every stack this runtime may map is in use.
    fn check_stacks(&self) -> io::Result<()> {
        let under_cap = self
            .stacks
            .cap()
            .is_none_or(|cap| self.stacks.mapped() < cap);
        if under_cap && BUDGET.mapped() < BUDGET.limit() {
            return Ok(());
        }
        self.stacks.check_spawn(self.idle_stacks())
    }

    /// Spawns a green thread on this runtime.
    pub(crate) fn spawn<F, T>(
        self: &Arc<Shared>,
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: `F` and `T` are 'static: they outlive anything.
        unsafe { self.spawn_unchecked(opts, location, f) }
    }

    /// [`Shared::spawn`] for a closure and output that may borrow.
    ///
    /// # Safety
    ///
    /// The caller makes sure that whatever `f` and its output borrow
    /// outlives their use: `f` runs (or is dropped unrun) and the output is
    /// taken or left alone while the borrows are alive, and an output left
    /// in the task (dropped with it, whenever its last reference goes)
    /// needs no drop.
    pub(crate) unsafe fn spawn_unchecked<F, T>(
        self: &Arc<Shared>,
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        // A spawn from a green thread of this runtime while it shuts down
        // (a destructor run by the forced unwind), or after (a leaked green
        // thread on an abandoned worker, see `shutdown`, step 4), is
        // dropped unrun at once, as a worker would drop it when it popped
        // it: its join returns `Err` without waiting for a worker that
        // may be blocked in that very destructor, and nothing panics
        // where a panic would abort the process. From anywhere else a
        // stopped runtime refuses.
        let unrun = self.is_shutting_down()
            && worker::with_worker(|w| w.is_some_and(|w| Arc::ptr_eq(&w.shared, self)));
        if self.is_stopped() && !unrun {
            return Err(io::Error::other(
                "cannot spawn on a grove runtime that has shut down",
            ));
        }
        let stack_size = match opts.stack_size {
            Some(size) => stack::validate_stack_size(size)?,
            None => self.stacks.size(),
        };
        if let Some(worker) = opts.worker {
            if worker >= self.workers.len() {
                return Err(invalid(&format!(
                    "on_worker({worker}): this runtime has {} worker(s), numbered from 0",
                    self.workers.len()
                )));
            }
        }
        if !unrun {
            self.check_stacks()?;
        }
        let [raw, for_handle] = Task::new_task(
            HeaderInit {
                id: ThreadId::next().get(),
                name: opts.name,
                stack_size,
                spawned_at: location,
                shared: self,
            },
            f,
        );
        let handle = JoinHandle::new(for_handle);
        if unrun {
            let raw = Runnable::new(raw);
            worker::with_worker(|w| w.expect("checked above").drop_spawned(raw));
            return Ok(handle);
        }
        if let Some(home) = opts.worker {
            // Pinned: homed before it starts, and queued where nobody
            // steals (see `Worker::run`).
            let pin = if self.migrate { crate::task::PINNED } else { 0 };
            raw.header().home.store(home | pin, Ordering::Relaxed);
            let counted = worker::with_worker(|w| match w {
                Some(w) if Arc::ptr_eq(&w.shared, self) => {
                    w.count_spawn();
                    true
                }
                _ => false,
            });
            if !counted {
                self.external_spawned.fetch_add(1, Ordering::Relaxed);
            }
            self.push_to_inbox(home, Runnable::new(raw));
            return Ok(handle);
        }
        let leftover = worker::with_worker(|w| match w {
            Some(w) if Arc::ptr_eq(&w.shared, self) => {
                w.count_spawn();
                w.push_spawned(Runnable::new(raw));
                None
            }
            _ => Some(raw),
        });
        if let Some(raw) = leftover {
            self.external_spawned.fetch_add(1, Ordering::Relaxed);
            self.injector.push(Runnable::new(raw));
            self.notify_parked();
        }
        Ok(handle)
    }
}

/// A running scheduler: worker threads plus their shared state. Dropping it
/// shuts it down (see the module docs).
pub struct Scheduler {
    pub(crate) shared: Arc<Shared>,
    pub(crate) threads: Vec<thread::JoinHandle<()>>,
    /// The monitor thread, and how to wake it at shutdown.
    pub(crate) monitor: Option<(thread::JoinHandle<()>, OsUnparker)>,
}

impl Scheduler {
    /// Starts the worker threads.
    pub fn new(config: Config) -> io::Result<Scheduler> {
        config.validate()?;
        crate::park::multicore();
        if config.migrate {
            crate::tls::migration_on();
        }
        let n = config.workers;
        let mut deques = Vec::with_capacity(n);
        let mut parkers = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for _ in 0..n {
            let deque = Deque::new_lifo();
            let parker = Parker::new();
            workers.push(WorkerShared {
                stealer: deque.stealer(),
                unparker: parker.unparker().clone(),
                counters: CachePadded::new(Counters::default()),
                watch: CachePadded::new(monitor::Watch::default()),
                abandoned: std::sync::atomic::AtomicBool::new(false),
                thief_waiting: std::sync::atomic::AtomicBool::new(false),
                offered: std::sync::atomic::AtomicBool::new(false),
                yielded: std::sync::atomic::AtomicUsize::new(0),
                mailbox: CachePadded::new(Mailbox {
                    inbox: crate::inbox::Inbox::new(),
                    sleeping: std::sync::atomic::AtomicBool::new(false),
                    wakers: std::sync::atomic::AtomicUsize::new(0),
                }),
            });
            deques.push(deque);
            parkers.push(parker);
        }
        let shared = Arc::new(Shared {
            workers: workers.into_boxed_slice(),
            injector: Injector::new(),
            starved: Injector::new(),
            stacks_wanted: std::sync::atomic::AtomicBool::new(false),
            idle: Idle::new(n),
            stacks: StackPool::new(
                stack::validate_stack_size(config.stack_size)?,
                config.max_stacks,
            ),
            migrate: config.migrate,
            state: AtomicU8::new(RUNNING),
            external_spawned: AtomicU64::new(0),
            wake_holds: AtomicUsize::new(0),
            shutdown_waiter: Mutex::new(None),
            io: crate::io::Driver::new()?,
            blocking: Arc::new(crate::blocking::Pool::new(
                config.max_blocking_threads,
                format!("{}-blocking", config.thread_name),
            )),
        });
        let mut scheduler = Scheduler {
            shared: shared.clone(),
            threads: Vec::with_capacity(n),
            monitor: None,
        };
        for (index, (deque, parker)) in deques.into_iter().zip(parkers).enumerate() {
            let worker = Worker::new(index, shared.clone(), deque, parker);
            let spawned = thread::Builder::new()
                .name(format!("{}-{index}", config.thread_name))
                .spawn(move || worker.run_thread());
            match spawned {
                Ok(handle) => scheduler.threads.push(handle),
                Err(err) => {
                    // Workers that did start are stopped by the drop.
                    return Err(io::Error::new(
                        err.kind(),
                        format!("could not start grove worker thread {index}: {err}"),
                    ));
                }
            }
        }
        // Always started: besides the stall report (if configured), it
        // keeps the backstops that a worker held by a green thread that
        // never yields cannot (see `monitor`).
        let threshold = config.stall_warning;
        let parker = Parker::new();
        let unparker = parker.unparker().clone();
        let monitor_shared = shared.clone();
        let monitor = thread::Builder::new()
            .name(format!("{}-monitor", config.thread_name))
            .spawn(move || monitor::run(monitor_shared, threshold, parker))?;
        scheduler.monitor = Some((monitor, unparker));
        Ok(scheduler)
    }

    /// Spawns a green thread on this scheduler (from anywhere), without
    /// taking a reference on it as a [`Handle`] would.
    pub fn spawn_at<F, T>(
        &self,
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared.spawn(opts, location, f)
    }

    /// A handle for spawning onto this scheduler from anywhere.
    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.handle().stats()
    }

    /// Every live green thread.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.handle().tasks()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A cloneable handle to a scheduler, for spawning and diagnostics.
#[derive(Clone)]
pub struct Handle(pub(crate) Arc<Shared>);

impl Handle {
    /// The runtime of the calling green thread, if the caller is one.
    pub fn try_current() -> Option<Handle> {
        worker::current_shared().map(Handle)
    }

    /// The runtime of the calling green thread; from any other thread, the
    /// global runtime (started on first use, one worker per core).
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|| global().handle())
    }

    /// Spawns a green thread on the calling green thread's runtime, or on
    /// the global runtime from any other thread: what
    /// `Handle::current().spawn_at(..)` does, without taking a reference on
    /// the runtime. That reference count is one atomic shared by every
    /// worker; bumping it on every spawn made all spawners of a many-core
    /// runtime queue for its cache line.
    pub fn spawn_current<F, T>(
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let here = worker::with_worker(move |w| match w {
            Some(w) => Ok(w.shared.spawn(opts, location, f)),
            None => Err((opts, f)),
        });
        match here {
            Ok(spawned) => spawned,
            Err((opts, f)) => global().shared.spawn(opts, location, f),
        }
    }

    /// [`Handle::spawn_current`] for a closure and output that may borrow
    /// (std's `Builder::spawn_unchecked`).
    ///
    /// # Safety
    ///
    /// Whatever `f` and its output borrow must outlive their use: the
    /// caller joins the handle before any borrowed data goes (the join
    /// returns once `f` has run, or been dropped unrun, and takes the
    /// output). An output never taken by a join is dropped with the green
    /// thread's record, whenever the last reference to it goes, which may
    /// be later than the green thread's end: a handle dropped unjoined must
    /// leave no output that borrows.
    pub unsafe fn spawn_current_unchecked<F, T>(
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let shared = worker::with_worker(|w| w.map(|w| w.shared.clone()))
            .unwrap_or_else(|| global().shared.clone());
        // SAFETY: the caller's contract (above) is `spawn_unchecked`'s.
        unsafe { shared.spawn_unchecked(opts, location, f) }
    }

    /// Spawns a green thread.
    #[track_caller]
    pub fn spawn<F, T>(&self, opts: SpawnOptions, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.0.spawn(opts, Location::caller(), f)
    }

    /// Spawns `f` in a detached green thread, or hands it back unrun if the
    /// runtime refuses (it shut down, or is out of stacks) or drops it unrun
    /// at once (a spawn from its own green thread while it shuts down): for callers
    /// that must not lose `f` (a timer's or a context's `after_func`) and
    /// then try elsewhere.
    ///
    /// ```
    /// use grove_scheduler::{Handle, SpawnOptions};
    /// let f: Box<dyn FnOnce() + Send> = Box::new(|| {});
    /// let here = std::panic::Location::caller();
    /// assert!(Handle::current().spawn_or_back(SpawnOptions::default(), here, f).is_ok());
    /// ```
    pub fn spawn_or_back(
        &self,
        opts: SpawnOptions,
        at: &'static Location<'static>,
        f: Box<dyn FnOnce() + Send>,
    ) -> Result<(), Box<dyn FnOnce() + Send>> {
        // A runtime shutting down would accept a spawn from outside and
        // then drop it unrun: refused, the caller starts `f` elsewhere.
        if self.0.is_shutting_down() {
            return Err(f);
        }
        // The closure a refused spawn drops unrun leaves `f` in the slot.
        let slot = Arc::new(RescueSlot {
            f: std::sync::Mutex::new(Some(f)),
            accepted: std::sync::atomic::AtomicBool::new(false),
        });
        let rescue = Rescue(slot.clone());
        let spawned = self.0.spawn(opts, at, move || {
            if let Some(f) = rescue.take() {
                f();
            }
        });
        match spawned {
            Ok(_detached) => {
                // From here a closure dropped unrun (the shutdown began
                // after this spawn) starts `f` on the global runtime.
                slot.accepted.store(true, Ordering::SeqCst);
                // A spawn from one of the runtime's own green threads while
                // it shuts down is accepted and dropped unrun at once: then
                // the closure, and its reference to the slot, are already
                // gone, and nobody else can take `f` any more.
                if Arc::strong_count(&slot) == 1 {
                    if let Some(f) = slot.take() {
                        return Err(f);
                    }
                }
                Ok(())
            }
            Err(_) => Err(slot
                .take()
                .expect("a refused spawn did not run its closure")),
        }
    }

    /// Spawns a green thread at an explicit call site (for wrappers that
    /// take `#[track_caller]` locations themselves).
    pub fn spawn_at<F, T>(
        &self,
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.0.spawn(opts, location, f)
    }

    /// The runtime itself (for `scope`'s spawns without the `'static`
    /// bound, `Shared::spawn_unchecked`).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }

    /// Whether two handles are the same runtime.
    pub fn same(&self, other: &Handle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The runtime's default stack limit.
    pub fn stack_size(&self) -> usize {
        self.0.stacks.size()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let shared = &self.0;
        let mut stats = Stats {
            workers: shared.workers.len(),
            spawned: shared.external_spawned.load(Ordering::Relaxed),
            mapped_stacks: shared.stacks.mapped(),
            pooled_stacks: shared.idle_stacks(),
            ..Stats::default()
        };
        let mut taken = 0;
        let mut returned = 0;
        for w in shared.workers.iter() {
            let c = &w.counters;
            stats.spawned += c.spawned.load(Ordering::Relaxed);
            stats.completed += c.completed.load(Ordering::Relaxed);
            stats.steals += c.steals.load(Ordering::Relaxed);
            stats.parks += c.parks.load(Ordering::Relaxed);
            stats.yields += c.yields.load(Ordering::Relaxed);
            stats.resumes += c.resumes.load(Ordering::Relaxed);
            taken += c.stacks_taken.load(Ordering::Relaxed);
            returned += c.stacks_returned.load(Ordering::Relaxed);
        }
        stats.live = stats.spawned.saturating_sub(stats.completed);
        stats.live_stacks = taken.saturating_sub(returned) as usize;
        stats
    }

    /// Whether the runtime looks deadlocked now: every live green thread
    /// parked with no timer armed, its own or a [`WakeHold`], or unstarted
    /// for want of a stack (see [`DeadlockProbe`]). Callers confirm over time (an OS thread the
    /// runtime cannot see may still wake one).
    pub fn deadlock_probe(&self) -> DeadlockProbe {
        let stats = self.stats();
        let activity = (stats.spawned, stats.resumes, stats.completed);
        let mut live = 0;
        let mut all_asleep = self.0.wake_holds.load(Ordering::SeqCst) == 0;
        // Green threads that found no stack (the stack limit is reached)
        // start only once one holding a stack finishes: while some wait so,
        // an unstarted one is as asleep as a parked one (one that could
        // start would, and change `activity` within the caller's grace).
        let starving = !self.0.starved.is_empty();
        for task in task::live_tasks(&self.0) {
            let h = task.header();
            let s = h.state.load();
            if s.is_done() {
                continue;
            }
            live += 1;
            if starving && !s.is_started() && !s.is_running() {
                continue;
            }
            if !s.is_parked() || h.timed.load(Ordering::Relaxed) {
                all_asleep = false;
                break;
            }
        }
        DeadlockProbe {
            all_asleep: all_asleep && live > 0,
            activity,
        }
    }

    /// Every live green thread, in no particular order.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let mut out: Vec<TaskInfo> = task::live_tasks(&self.0)
            .iter()
            .filter_map(|t| TaskInfo::of(t, &self.0))
            .collect();
        out.sort_by_key(|t| t.id);
        out
    }
}

/// A timer armed outside the runtime's own timer heaps that will start a
/// green thread on it (an `after_func`): while one lives, the runtime is
/// not deadlocked, however its green threads sleep (Go counts such timers
/// the same way). Made by [`Handle::hold_wake`]; dropping it ends the hold.
///
/// ```
/// use grove_scheduler::Scheduler;
///
/// let scheduler = Scheduler::new(Default::default()).unwrap();
/// let handle = scheduler.handle();
/// let hold = handle.hold_wake();
/// assert!(!handle.deadlock_probe().all_asleep);
/// drop(hold);
/// ```
pub struct WakeHold(Option<Handle>);

impl WakeHold {
    /// The runtime held.
    pub fn handle(&self) -> &Handle {
        self.0
            .as_ref()
            .expect("a hold has its handle until dropped")
    }

    /// Ends the hold and gives its handle back (no reference count moves:
    /// what an armed-then-stopped timer pays, from every worker at once).
    pub fn release(mut self) -> Handle {
        let handle = self.0.take().expect("a hold has its handle until dropped");
        handle.0.wake_holds.fetch_sub(1, Ordering::SeqCst);
        handle
    }
}

impl Drop for WakeHold {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.0.wake_holds.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl fmt::Debug for WakeHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WakeHold").finish_non_exhaustive()
    }
}

impl Handle {
    /// Holds off the deadlock report (see [`WakeHold`]) until the returned
    /// hold is dropped.
    pub fn hold_wake(&self) -> WakeHold {
        self.clone().into_wake_hold()
    }

    /// [`hold_wake`](Self::hold_wake) on this handle itself, not a clone
    /// ([`WakeHold::release`] gives it back).
    pub fn into_wake_hold(self) -> WakeHold {
        self.0.wake_holds.fetch_add(1, Ordering::SeqCst);
        WakeHold(Some(self))
    }
}

/// What [`Handle::deadlock_probe`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadlockProbe {
    /// Every live green thread is parked, none with a timer armed, or
    /// waits to start for want of a stack (the runtime's stack limit is
    /// reached), and at least one is live: nothing inside the runtime can
    /// wake anything.
    pub all_asleep: bool,
    /// Changes whenever the runtime does anything (spawns, resumes, ends).
    pub activity: (u64, u64, u64),
}

/// Where [`Handle::spawn_or_back`] keeps its function until the green
/// thread takes it.
struct RescueSlot {
    f: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// The spawn returned: a closure dropped unrun from now on is the
    /// shutdown's doing, and nobody else will look at the slot.
    accepted: std::sync::atomic::AtomicBool,
}

impl RescueSlot {
    fn take(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.f.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The spawned closure's hold on its [`RescueSlot`]: dropped unrun after
/// the spawn was accepted (a shutdown that began meanwhile drops the
/// unstarted green threads), it starts the function on the global runtime,
/// or failing that here, so that an accepted function is never lost.
struct Rescue(Arc<RescueSlot>);

impl Rescue {
    fn take(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.0.take()
    }
}

impl Drop for Rescue {
    fn drop(&mut self) {
        if !self.0.accepted.load(Ordering::SeqCst) {
            return; // the spawner looks at the slot itself
        }
        let Some(f) = self.take() else {
            return;
        };
        let at = Location::caller();
        if let Err(f) = global()
            .handle()
            .spawn_or_back(SpawnOptions::default(), at, f)
        {
            f();
        }
    }
}

/// Scheduler counters, summed over workers at the time of the call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker OS threads.
    pub workers: usize,
    /// Green threads spawned since start.
    pub spawned: u64,
    /// Green threads finished (returned, panicked, or unwound).
    pub completed: u64,
    /// Spawned and not finished.
    pub live: u64,
    /// Stacks held by started, unfinished green threads.
    pub live_stacks: usize,
    /// Stacks idle in the runtime's pools, ready for reuse.
    pub pooled_stacks: usize,
    /// Stacks this runtime has mapped (live and pooled).
    pub mapped_stacks: usize,
    /// Unstarted green threads taken from another worker.
    pub steals: u64,
    /// Times a worker parked its OS thread for lack of work.
    pub parks: u64,
    /// `yield_now` calls (explicit or from a spent budget).
    pub yields: u64,
    /// Context switches into green threads.
    pub resumes: u64,
}

/// Where a green thread is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Spawned, waiting for its first run (no stack yet).
    Queued,
    /// Started, waiting in a run queue.
    Runnable,
    /// Running on a worker now.
    Running,
    /// Parked: waiting for a channel, lock, timer, join, ...
    Parked,
}

/// One live green thread, as `Runtime::tasks()` reports it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskInfo {
    /// Its id (`Thread::id`).
    pub id: ThreadId,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Where it is in its life.
    pub state: TaskState,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// What it is blocked on (`"chan recv"`, `"Mutex::lock"`, `"sleep"`...).
    pub blocked_on: Option<&'static str>,
    /// Where the blocking call was made.
    pub blocked_at: Option<&'static Location<'static>>,
    /// The worker it runs on, once started.
    pub worker: Option<usize>,
    /// How long it has held its worker without parking or yielding, once
    /// that is longer than the stall-warning threshold (see `monitor`): a
    /// sign of a blocking OS call inside a green thread.
    pub stalling_worker_for: Option<Duration>,
}

impl TaskInfo {
    pub(crate) fn of(task: &TaskRef, shared: &Shared) -> Option<TaskInfo> {
        let h = task.header();
        let s = h.state.load();
        let state = if s.is_done() {
            return None;
        } else if s.is_running() {
            TaskState::Running
        } else if s.is_parked() {
            TaskState::Parked
        } else if s.is_started() {
            TaskState::Runnable
        } else {
            TaskState::Queued
        };
        let wait = if state == TaskState::Parked {
            h.wait.get()
        } else {
            None
        };
        let home = h.home();
        let stalling_worker_for = (state == TaskState::Running && home != usize::MAX)
            .then(|| &shared.workers[home].watch)
            .filter(|w| w.running.load(Ordering::Relaxed) == h.id)
            .map(|w| w.stalled_ms.load(Ordering::Relaxed))
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        Some(TaskInfo {
            id: ThreadId::from_raw(h.id),
            name: h.name().map(str::to_string),
            state,
            spawned_at: h.spawned_at,
            blocked_on: wait.map(|w| w.0),
            blocked_at: wait.map(|w| w.1),
            worker: (home != usize::MAX).then_some(home),
            stalling_worker_for,
        })
    }
}

static GLOBAL: OnceLock<Scheduler> = OnceLock::new();

/// The global scheduler: started on first use with one worker per core;
/// never shut down.
pub fn global() -> &'static Scheduler {
    GLOBAL.get_or_init(|| {
        Scheduler::new(Config::default())
            .unwrap_or_else(|err| panic!("grove: could not start the global runtime: {err}"))
    })
}
