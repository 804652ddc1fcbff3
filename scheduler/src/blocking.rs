//! The blocking pool: OS threads for the calls a green thread must not make
//! on its worker (file I/O, name resolution, a database driver, a long
//! computation).
//!
//! [`blocking`] sends the call to one of its runtime's pool threads and
//! parks the calling green thread; its worker runs others meanwhile. The
//! call may borrow from the caller, since the caller stays parked until
//! the call has returned: its stack, where the call and its result live,
//! is not touched, unwound or freed before then. A runtime's shutdown
//! holds such a caller back (`Worker::run`) until its call has returned,
//! as it holds a scope's owner back for its scoped threads.
//!
//! Threads are started on demand, up to `Config::max_blocking_threads`
//! (512 by default, tokio's number); a thread idle for `KEEP_ALIVE`
//! exits. Calls beyond the limit queue for the next free thread.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use crate::park::{self, Unparker, WaitReason};
use crate::task::TaskRef;
use crate::worker;

static BLOCKING: WaitReason = WaitReason("grove::blocking");

/// How long an idle pool thread waits for work before it exits (tokio's
/// figure is 10 s too).
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The default most pool threads a runtime may have at once.
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

type Job = Box<dyn FnOnce() + Send + 'static>;

thread_local! {
    /// The address of the pool whose thread this is (0 elsewhere): a pool
    /// thread holds its pool (an `Arc`), so the address is not reused while
    /// the thread runs.
    static OWN_POOL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A runtime's blocking pool.
pub(crate) struct Pool {
    state: Mutex<State>,
    work: Condvar,
    max: usize,
    name: String,
    /// Calls that have returned, counted before their caller's count of
    /// calls in flight goes down: a shutdown that sees a caller with none
    /// left also sees this move (progress; see `shutdown::unwind_all`).
    pub(crate) calls_done: AtomicU64,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    stopping: bool,
}

impl Pool {
    pub(crate) fn new(max: usize, name: String) -> Pool {
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                stopping: false,
            }),
            work: Condvar::new(),
            max,
            name,
            calls_done: AtomicU64::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job`; starts a thread for it if none is idle and the limit
    /// allows. If no thread can be started and none runs, runs it here.
    fn submit(self: &std::sync::Arc<Self>, job: Job) {
        let mut state = self.state();
        state.queue.push_back(job);
        if state.idle > state.queue.len() - 1 {
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.threads >= self.max {
            return; // the next thread to free up takes it
        }
        state.threads += 1;
        drop(state);
        let pool = self.clone();
        let started = thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || pool.run_thread());
        if let Err(err) = started {
            let mut state = self.state();
            state.threads -= 1;
            if state.threads > 0 {
                return; // a running thread will take it
            }
            let job = state.queue.pop_back();
            drop(state);
            eprintln!(
                "grove: could not start a blocking-pool thread ({err}); running the call on its \
                 worker"
            );
            if let Some(job) = job {
                job();
            }
        }
    }

    fn run_thread(&self) {
        OWN_POOL.set(self as *const Pool as usize);
        let mut state = self.state();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.state();
                continue;
            }
            if state.stopping {
                break;
            }
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }

    /// Whether the calling thread is one of this pool's (a call on it is
    /// running here). Its runtime's shutdown, called from here, would wait
    /// for this very call.
    pub(crate) fn is_own_thread(&self) -> bool {
        OWN_POOL.get() == self as *const Pool as usize
    }

    /// At shutdown: idle threads exit; busy ones finish their calls (whose
    /// callers shutdown waits for) and then exit.
    pub(crate) fn stop(&self) {
        self.state().stopping = true;
        self.work.notify_all();
    }
}

/// One call: lives on the caller's stack until the call has returned.
struct Call<F, T> {
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<thread::Result<T>>>,
    done: AtomicBool,
    waiter: Unparker,
    /// The calling green thread: its count of calls in flight goes down
    /// once this one is done (see `Header::blocking_calls`).
    task: TaskRef,
}

/// Where a `Call` is, for the pool thread.
struct CallPtr(*const ());

// SAFETY: the pointer is only dereferenced by the one pool thread that
// runs the call, while the caller waits (see `blocking`); `F` and `T` are
// Send, so running `F` and writing `T` there is sound.
unsafe impl Send for CallPtr {}

/// Runs `f` on the calling green thread's runtime's blocking pool, parking
/// the green thread until `f` returns, and returns its result; a panic in
/// `f` is resumed here. From a plain OS thread, `f` runs inline.
///
/// `f` may borrow from the caller: the caller stays parked until `f` has
/// returned, also while its runtime shuts down.
///
/// ```
/// # let rt = grove_scheduler::Scheduler::new(Default::default()).unwrap();
/// # let h = rt.handle().spawn(Default::default(), || {
/// let path = std::env::temp_dir();
/// let listed = grove_scheduler::blocking::blocking(|| std::fs::read_dir(&path).is_ok());
/// # listed }).unwrap();
/// # assert!(h.join().unwrap());
/// ```
#[track_caller]
pub fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let Some(task) = worker::current_task() else {
        return f();
    };
    let call = Call {
        f: UnsafeCell::new(Some(f)),
        result: UnsafeCell::new(None),
        done: AtomicBool::new(false),
        waiter: Unparker::green(task.clone()),
        task,
    };
    let shared = worker::current_shared().expect("a green thread runs on a worker");
    let pool = shared.blocking.clone();
    let ptr = CallPtr(&call as *const Call<F, T> as *const ());
    let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || {
        let ptr = ptr;
        // SAFETY: the caller keeps `call` alive and untouched until `done`
        // (see below); nobody else runs this job.
        unsafe { run_call::<F, T>(ptr.0, &pool) }
    });
    // SAFETY: the job borrows `call` (and whatever `f` borrows) from this
    // frame. This frame does not return, nor unwind, before the job has
    // set `done` (the wait below, and `AwaitDone` if this green thread is
    // unwound anyway), and a runtime's shutdown does not unwind this green
    // thread while its call is in flight (`Header::blocking_calls`). So the
    // borrows outlive every use the job makes of them.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
    let header = call.task.header();
    header.blocking_calls.fetch_add(1, Ordering::SeqCst);
    let _await = AwaitDone(&call.done);
    shared.blocking.submit(job);
    let at = Location::caller();
    while !call.done.load(Ordering::Acquire) {
        park::park_external(&BLOCKING, None, at);
    }
    // SAFETY: `done` was seen with Acquire: the pool thread wrote the
    // result before and touches the call no more.
    let result = unsafe { (*call.result.get()).take() };
    match result.expect("a finished blocking call left its result") {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// The pool thread's half of a call.
///
/// # Safety
///
/// `ptr` points to a live `Call<F, T>` whose caller waits for `done`.
unsafe fn run_call<F, T>(ptr: *const (), pool: &Pool)
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    // SAFETY: per the contract.
    let call = unsafe { &*ptr.cast::<Call<F, T>>() };
    // SAFETY: only this thread touches `f` and `result` until `done`.
    let f = unsafe { (*call.f.get()).take() }.expect("a blocking call runs once");
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // SAFETY: as above.
    unsafe { *call.result.get() = Some(result) };
    let waiter = call.waiter.clone();
    let task = call.task.clone();
    call.done.store(true, Ordering::Release);
    // `call` may be gone from here on.
    pool.calls_done.fetch_add(1, Ordering::SeqCst);
    task.header().blocking_calls.fetch_sub(1, Ordering::SeqCst);
    waiter.wake();
}

/// If the caller is unwound before its call is done (it never should be:
/// shutdown holds such callers back), waits for the call on the OS thread
/// before the frame that holds it goes away.
struct AwaitDone<'a>(&'a AtomicBool);

impl Drop for AwaitDone<'_> {
    fn drop(&mut self) {
        while !self.0.load(Ordering::Acquire) {
            // Unwinding: no switch is allowed; block this OS thread.
            thread::sleep(Duration::from_micros(100));
        }
    }
}
