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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::park::{self, Unparker, WaitReason};
use crate::task::TaskRef;
use crate::worker;

static BLOCKING: WaitReason = WaitReason("grove::blocking");

/// How long an idle pool thread waits for work before it exits (tokio's
/// figure is 10 s too).
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How long a pool thread that has run out of calls watches for the next
/// one before it sleeps. Waking a sleeping thread costs the caller a futex
/// wake and the sleeper's trip back onto a CPU (on this project's 2-vCPU
/// VM, 20-35 µs per call, as much as the whole round trip); a program that
/// makes its blocking calls back to back (a file read in a loop) finds the
/// spinner and pays a few hundred nanoseconds instead. As long as a
/// worker's first idle spin (`worker::SPIN`). Calls further apart than
/// that find no spinner, and the spin shrinks to nothing until they come
/// close together again (see `State::spin`): a spin that never sees a
/// call only takes a CPU from the workers (measured: one call every
/// 300 µs took 28-43 µs at the median with a fixed spin, 14-29 µs
/// without one).
const SPIN: Duration = Duration::from_micros(50);
/// The shortest spin worth starting (see `State::spin`).
const MIN_SPIN: Duration = Duration::from_micros(2);
/// Most pool threads spinning at once: one keeps back-to-back calls off
/// the futex; a burst beyond it wakes or starts threads as before, and
/// threads that finish a call take the next queued one without sleeping.
const MAX_SPINNING: usize = 1;
/// A gap this long between two clock reads around a spin's PAUSEs means the
/// spinner's OS thread was not running (more runnable threads than CPUs):
/// it stops spinning, since it only keeps a CPU from the workers.
const PREEMPTED: Duration = Duration::from_micros(50);

/// How long a call queued behind busy threads (see [`Pool::submit`]) may
/// wait to start before its caller gets a thread onto it; doubled at each
/// further wait up to [`MAX_KICK`]. Go's sysmon looks at Ps blocked in
/// syscalls every 20 µs at first.
const KICK: Duration = Duration::from_micros(50);
/// The longest a caller's watch waits between two kicks.
const MAX_KICK: Duration = Duration::from_millis(10);

/// The default most pool threads a runtime may have at once.
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// A queued call: where it is, on its caller's stack, and how to run it
/// (`run_call` for its types). No allocation: the call's caller stays
/// parked, and its frame alive, until the call is done.
struct Job {
    call: *const (),
    run: unsafe fn(*const (), &Pool),
}

// SAFETY: `call` is only dereferenced by the one thread that runs the job,
// through `run`, while the caller waits for it (see `blocking`); the
// call's `F` and `T` are Send, so running `F` and writing `T` on that
// thread is sound.
unsafe impl Send for Job {}

impl Job {
    /// Runs the call.
    ///
    /// # Safety
    ///
    /// Once per job, while its caller waits (see `blocking`).
    unsafe fn run(self, pool: &Pool) {
        // SAFETY: per the contract, which is `run`'s.
        unsafe { (self.run)(self.call, pool) }
    }
}

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
    /// `state.queue.len()`, written under the lock, for spinners to watch
    /// without taking it.
    queued: AtomicUsize,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    stopping: bool,
    /// Threads watching `queued` instead of sleeping (see `Pool::spin`).
    spinning: usize,
    /// The runtime is shutting down: no call is left queued behind busy
    /// threads (see `Pool::hurry`).
    hurry: bool,
    /// How long the next spinner spins (see [`SPIN`]): halved after each
    /// spin that saw no call, down to not at all; back to `SPIN` after one
    /// that did, and doubled when a sleeper is woken less than `SPIN`
    /// after it went to sleep.
    spin: Duration,
    /// When a call last returned: if one did less than [`KICK`] ago, the
    /// busy threads are getting through short calls, and a new call waits
    /// behind them (see `Pool::submit`); if none did, they are stuck in
    /// long ones, and it gets a thread at once.
    last_done: Option<Instant>,
    /// Calls queued without a notify, for a spinner to take: never more
    /// than `spinning`. A spinner takes the lock and a call as soon as it
    /// sees one queued, so each claim is met by a spinner's pop, or by a
    /// running thread's if it got there first.
    claimed: usize,
}

impl Pool {
    pub(crate) fn new(max: usize, name: String) -> Pool {
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                stopping: false,
                spinning: 0,
                claimed: 0,
                hurry: false,
                last_done: None,
                spin: SPIN,
            }),
            work: Condvar::new(),
            max,
            name,
            calls_done: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` and gets a thread onto it: a spinner, else a sleeper,
    /// else a new one, if the limit allows. Returns true if it left the call
    /// queued behind the threads running calls now (they are getting
    /// through short calls: one returned less than [`KICK`] ago), for the
    /// first of them to finish to take, without waking or starting a
    /// thread: the caller watches it then, and calls [`Pool::kick`] if it
    /// has not started within `KICK`.
    ///
    /// Most blocking calls are short (a file read is a microsecond): a
    /// thread woken or started for each call while others are about to
    /// finish theirs makes the pool a crowd of threads that sleep after
    /// every call, and each call pays a futex wake and a trip back onto a
    /// CPU (measured: 64 green threads reading a file on 2 workers, one
    /// context switch per read). A call that does block longer is handed to
    /// a thread of its own after `KICK`, as Go's sysmon hands a P blocked
    /// in a syscall to another M after 20 µs.
    fn submit(self: &std::sync::Arc<Self>, job: Job) -> bool {
        let mut state = self.state();
        state.queue.push_back(job);
        self.queued.store(state.queue.len(), Ordering::Release);
        if state.spinning > state.claimed {
            state.claimed += 1;
            return false; // a spinner sees it
        }
        let busy = state.threads - state.idle - state.spinning;
        if busy > 0 && !state.hurry && state.last_done.is_some_and(|at| at.elapsed() < KICK) {
            return true;
        }
        // Enough sleepers for every call no spinner has claimed?
        if state.idle >= state.queue.len().saturating_sub(state.claimed) {
            drop(state);
            self.work.notify_one();
            return false;
        }
        self.start_thread(state);
        false
    }

    /// A call queued by [`Pool::submit`] behind busy threads has not
    /// started within [`KICK`]: wakes a sleeper for the queue, else starts
    /// a thread, if the limit allows. False if there is nothing to do (the
    /// queue is empty, or the limit reached): the caller stops watching,
    /// and its call waits for the next thread to free up.
    fn kick(self: &std::sync::Arc<Self>) -> bool {
        let state = self.state();
        if state.queue.is_empty() {
            return false;
        }
        if state.idle > 0 {
            drop(state);
            self.work.notify_one();
            return true;
        }
        if state.threads >= self.max {
            return false;
        }
        self.start_thread(state);
        true
    }

    /// Starts a thread for the queue, if the limit allows. If no thread
    /// can be started and none runs, runs the newest queued call here.
    fn start_thread(self: &std::sync::Arc<Self>, mut state: MutexGuard<'_, State>) {
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
            self.queued.store(state.queue.len(), Ordering::Release);
            drop(state);
            eprintln!(
                "grove: could not start a blocking-pool thread ({err}); running the call on its \
                 worker"
            );
            if let Some(job) = job {
                // SAFETY: popped, so run once; its caller waits for it.
                unsafe { job.run(self) };
            }
        }
    }

    /// The monitor's backstop, once per tick: if calls are queued and none
    /// has returned since the last tick (`last`, the count of calls done
    /// then), the threads running calls are blocked for longer than a
    /// caller's own watch saw (its worker may be held by a green thread
    /// that does not yield): gets a thread onto the queue.
    pub(crate) fn kick_if_stuck(self: &std::sync::Arc<Self>, last: &mut u64) {
        let done = self.calls_done.load(Ordering::SeqCst);
        if done == *last && self.queued.load(Ordering::Acquire) > 0 {
            let _ = self.kick();
        }
        *last = done;
    }

    fn run_thread(&self) {
        OWN_POOL.set(self as *const Pool as usize);
        let mut state = self.state();
        loop {
            if let Some(job) = state.queue.pop_front() {
                self.queued.store(state.queue.len(), Ordering::Release);
                drop(state);
                // SAFETY: popped, so run once; its caller waits for it.
                unsafe { job.run(self) };
                let now = Instant::now();
                state = self.state();
                state.last_done = Some(now);
                continue;
            }
            if state.stopping {
                break;
            }
            if state.spinning < MAX_SPINNING && !state.spin.is_zero() {
                state.spinning += 1;
                let until = Instant::now() + state.spin;
                drop(state);
                let spun_out;
                (state, spun_out) = loop {
                    let saw = self.spin(until);
                    let mut state = self.state();
                    if saw && state.queue.is_empty() && !state.stopping {
                        continue; // a running thread took it first
                    }
                    state.spinning -= 1;
                    state.claimed = state.claimed.min(state.spinning);
                    // No call came: the calls are further apart than the
                    // spin, which only burns a CPU; spin half as long next
                    // time, down to not at all.
                    state.spin = if saw {
                        SPIN
                    } else if state.spin / 2 < MIN_SPIN {
                        Duration::ZERO
                    } else {
                        state.spin / 2
                    };
                    break (state, !saw);
                };
                if !spun_out || !state.queue.is_empty() {
                    continue;
                }
            }
            if state.stopping {
                break;
            }
            state.idle += 1;
            let slept_at = Instant::now();
            let (next, waited) = self
                .work
                .wait_timeout(state, KEEP_ALIVE)
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() {
                break;
            }
            // Woken for a call that came sooner than a full spin would
            // have lasted: calls are coming close together again.
            if slept_at.elapsed() < SPIN {
                state.spin = (state.spin * 2).clamp(MIN_SPIN, SPIN);
            }
        }
        state.threads -= 1;
    }

    /// Watches `queued` until `until`: true if a call was seen queued,
    /// false if the spin ran out or this thread was preempted during it.
    fn spin(&self, until: Instant) -> bool {
        let mut looked = Instant::now();
        loop {
            for _ in 0..64 {
                if self.queued.load(Ordering::Acquire) > 0 {
                    return true;
                }
                std::hint::spin_loop();
            }
            let now = Instant::now();
            if now >= until || now.duration_since(looked) > PREEMPTED {
                return false;
            }
            looked = now;
        }
    }

    /// Whether the calling thread is one of this pool's (a call on it is
    /// running here). Its runtime's shutdown, called from here, would wait
    /// for this very call.
    pub(crate) fn is_own_thread(&self) -> bool {
        OWN_POOL.get() == self as *const Pool as usize
    }

    /// When a shutdown begins: from here on no call waits behind busy
    /// threads, and each call queued so far gets a thread now, up to the
    /// pool's thread limit (beyond it, calls wait for a thread to finish
    /// one, as they would without a shutdown). Shutdown
    /// waits for every call in flight; a call that waits for a queued one
    /// (a channel between them) must not depend on its caller's kick, nor
    /// on the monitor's.
    pub(crate) fn hurry(self: &std::sync::Arc<Self>) {
        let mut state = self.state();
        state.hurry = true;
        let uncovered = state
            .queue
            .len()
            .saturating_sub(state.idle + state.spinning);
        drop(state);
        self.work.notify_all();
        for _ in 0..uncovered {
            self.start_thread(self.state());
        }
    }

    /// At the end of a shutdown: idle threads exit; busy ones finish their
    /// calls and then exit.
    pub(crate) fn stop(&self) {
        let mut state = self.state();
        state.stopping = true;
        state.hurry = true;
        drop(state);
        self.work.notify_all();
    }
}

/// One call: lives on the caller's stack until the call has returned.
struct Call<F, T> {
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<thread::Result<T>>>,
    /// A pool thread has taken the call (see `Pool::submit`).
    started: AtomicBool,
    done: AtomicBool,
    /// The calling green thread, taken by the thread that runs the call:
    /// its count of calls in flight goes down once this one is done (see
    /// `Header::blocking_calls`), and it is woken.
    task: UnsafeCell<Option<TaskRef>>,
}

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
    // The runtime and the worker this call is counted out on, in one look
    // at the worker.
    let (shared, home) = worker::with_worker(|w| w.map(|w| (w.shared.clone(), w.index)))
        .expect("a green thread runs on a worker");
    // Counted before the call can run and end (it counts down).
    task.header().blocking_calls.fetch_add(1, Ordering::SeqCst);
    let call = Call {
        f: UnsafeCell::new(Some(f)),
        result: UnsafeCell::new(None),
        started: AtomicBool::new(false),
        done: AtomicBool::new(false),
        task: UnsafeCell::new(Some(task)),
    };
    // The job points into this frame: to `call`, and through `f` to
    // whatever `f` borrows. This frame does not return, nor unwind, before
    // the job has set `done` (the wait below, and `AwaitDone` if this green
    // thread is unwound anyway), and a runtime's shutdown does not unwind
    // this green thread while its call is in flight
    // (`Header::blocking_calls`). So the borrows outlive every use the job
    // makes of them.
    let job = Job {
        call: &call as *const Call<F, T> as *const (),
        run: run_call::<F, T>,
    };
    let _await = AwaitDone(&call.done);
    // Counted on this worker while the call is out (see
    // `Worker::find_work_or_park`), however this frame is left.
    let _out = CallOut::new(&shared.workers[home].counters.calls_out);
    let watch = shared.blocking.submit(job);
    let at = Location::caller();
    let mut wait = KICK;
    let mut deadline = watch.then(|| Instant::now() + wait);
    while !call.done.load(Ordering::Acquire) {
        park::park_external(&BLOCKING, deadline, at);
        if let Some(due) = deadline {
            if call.started.load(Ordering::Relaxed) {
                deadline = None;
            } else if Instant::now() >= due {
                deadline = shared.blocking.kick().then(|| {
                    wait = (wait * 2).min(MAX_KICK);
                    Instant::now() + wait
                });
            }
        }
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
/// `ptr` points to a live `Call<F, T>` whose caller waits for `done`, and
/// this runs once per call.
unsafe fn run_call<F, T>(ptr: *const (), pool: &Pool)
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    // SAFETY: per the contract.
    let call = unsafe { &*ptr.cast::<Call<F, T>>() };
    // SAFETY: only this thread touches `f`, `result` and `task` until
    // `done`.
    let f = unsafe { (*call.f.get()).take() }.expect("a blocking call runs once");
    call.started.store(true, Ordering::Relaxed);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // SAFETY: as above.
    unsafe { *call.result.get() = Some(result) };
    // SAFETY: as above.
    let task = unsafe { (*call.task.get()).take() }.expect("a blocking call has its caller");
    call.done.store(true, Ordering::Release);
    // `call` may be gone from here on.
    pool.calls_done.fetch_add(1, Ordering::SeqCst);
    task.header().blocking_calls.fetch_sub(1, Ordering::SeqCst);
    Unparker::green(task).wake();
}

/// A call counted out on its caller's worker until this is dropped.
struct CallOut<'a>(&'a AtomicU64);

impl<'a> CallOut<'a> {
    fn new(counter: &'a AtomicU64) -> CallOut<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        CallOut(counter)
    }
}

impl Drop for CallOut<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
