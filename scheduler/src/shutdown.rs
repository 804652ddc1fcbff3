//! Shutdown: what dropping a runtime does, end to end. The one home of the
//! story; the steps the workers take live next to their code and point
//! back here.
//!
//! # The steps
//!
//! 1. **Stop taking work.** The runtime's state becomes SHUTTING_DOWN.
//!    From then on a worker drops every *unstarted* task it pops unrun
//!    (`Worker::run`: its closure is dropped, its `join` returns `Err`), and
//!    *unwinds* every started task it pops, on that task's own worker, so
//!    destructors run where the green thread ran (`Worker::unwind`). A
//!    green thread that parks from now on is taken back at once
//!    (`Worker::run`, the park commit) and unwound too. A green thread
//!    spawned by one of the runtime's own green threads from now on (a
//!    destructor's spawn) is dropped unrun at once, in the spawn
//!    (`Shared::spawn_unchecked`): its join returns `Err` without waiting
//!    for a worker, which may be the one blocked in that destructor.
//! 2. **Wake everything.** The shutting-down thread unparks every parked
//!    green thread (each goes to its home worker's inbox, where step 1
//!    applies) and wakes every worker; again every [`POLL`], since
//!    destructors may spawn or park.
//! 3. **Scoped threads before their owner.** A scope's owner is unwound
//!    only once none of its scoped green threads can still run: they
//!    borrow from its stack. A worker that pops an owner whose scoped
//!    threads may still run (`scope::has_live_scoped_threads`) holds it
//!    back, run token and all, in its `deferred` list, and looks again
//!    whenever it idles (`Worker::retry_deferred`). No busy loop: a held
//!    owner costs nothing while it waits. A green thread whose call on the
//!    blocking pool is in flight is held back the same way until the call
//!    returns (the call borrows from its stack): shutdown waits for it,
//!    however long it takes, as it waits for any destructor.
//! 4. **Green threads that refuse to die are leaked, never freed.**
//!    - A green thread that catches the forced unwind and then blocks or
//!      yields again can never be unwound: it is *abandoned* on the spot
//!      (`worker::abandon`), and its worker's OS thread with it.
//!    - A green thread blocked in a destructor while unwinding a panic of
//!      its own holds its OS thread (it must not switch away while
//!      panicking; `lib.rs`, invariant 3). If nothing has progressed for
//!      [`STUCK_GRACE`], its worker is abandoned; a wait with a deadline
//!      (`sleep`, `recv_timeout`) ends by itself and is waited for, until
//!      [`STUCK_GRACE`] past its deadline.
//!    - A started green thread homed on an abandoned worker cannot run
//!      again (started green threads never move), and a scope owner held
//!      back for a scoped thread that cannot finish waits forever.
//!
//!    Once a worker has been abandoned, every green thread left is one of
//!    these, and nothing has progressed for [`SETTLE`], they are **leaked**: flagged abandoned,
//!    never unwound, their stacks never reused or unmapped, the runtime's
//!    shared state kept alive for good. So whatever a stuck green thread
//!    borrows stays valid for as long as it may run. Each is reported:
//!    on stderr, and in what [`Scheduler::shutdown`] returns.
//! 5. **Stop.** The state becomes STOPPED; the workers leave their loops
//!    and are joined (abandoned ones are not), the blocking pool's threads
//!    exit as they go idle, the stall monitor stops, and the pooled stacks
//!    are unmapped. Last, the shutdown waits for any hand-off still in
//!    flight (a waker between queueing a task, which may have finished
//!    since, and its last look at the target worker: `WorkerShared::
//!    wakers`), so that the shared state outlives every use.
//!
//! # The guarantee
//!
//! When `drop` returns, every green thread of the runtime has finished,
//! was unwound on its own worker (its destructors ran), was dropped
//! unrun, or is reported as leaked, in which case no memory it can reach
//! through its stack is ever freed. `drop` returns within a bound
//! ([`STUCK_GRACE`] plus [`SETTLE`] beyond the destructors' own time,
//! their timed waits included) unless a green thread runs on without ever
//! calling into grove.
//!
//! "Progress" is the runtime's completed count moving (every unwind,
//! unrun drop or return adds one), or a call on its blocking pool
//! returning (its caller, a destructor say, goes on from there).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::park::{self, WaitReason};
use crate::scheduler::{Scheduler, Shared, TaskInfo, SHUTTING_DOWN, STOPPED};
use crate::task::{self, TaskRef};
use crate::worker;

static SHUTDOWN: WaitReason = WaitReason("Runtime::drop");

/// How often the shutting-down thread wakes everything again (step 2).
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// How long nothing must progress before the worker of a green thread
/// blocked while unwinding a panic is abandoned (step 4). A guess: long
/// enough for a destructor waiting on another green thread's unwind, short
/// enough that a drop stays prompt.
pub(crate) const STUCK_GRACE: Duration = Duration::from_millis(250);

/// How long nothing must progress, with only stuck green threads left,
/// before they are leaked (step 4): a few [`POLL`]s, so that every worker
/// has looked at its held-back owners again since the last completion.
pub(crate) const SETTLE: Duration = Duration::from_millis(50);

/// What [`Scheduler::shutdown`] saw.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ShutdownOutcome {
    /// The green threads that were live when shutdown began: each was
    /// unwound, dropped unrun, or is in `leaked`.
    pub live: Vec<TaskInfo>,
    /// The green threads that could not be unwound (step 4 of the module
    /// docs): never freed.
    pub leaked: Vec<TaskInfo>,
}

impl Scheduler {
    /// Shuts the scheduler down (see the module docs) and says which green
    /// threads were still live when it started, and which of them had to
    /// be leaked. Dropping the scheduler does the same and discards it.
    pub fn shutdown(&mut self) -> ShutdownOutcome {
        if self.threads.is_empty() {
            return ShutdownOutcome::default(); // already shut down
        }
        let shared = self.shared.clone();
        let own_thread =
            worker::with_worker(|w| w.is_some_and(|w| Arc::ptr_eq(&w.shared, &shared)));
        if own_thread || shared.blocking.is_own_thread() {
            // Waiting for ourselves would never end (a green thread of its
            // own, or a call on its own blocking pool, which shutdown waits
            // for); the threads are left running, detached, and the runtime
            // leaks.
            let from = if own_thread {
                "one of its own green threads"
            } else {
                "a call on its own blocking pool"
            };
            eprintln!("grove: a Runtime was dropped from {from}; it is leaked");
            self.threads.clear();
            return ShutdownOutcome::default();
        }
        let live = self.handle().tasks();
        // Step 1.
        shared.state.store(SHUTTING_DOWN, Ordering::SeqCst);
        shared.set_shutdown_waiter(Some(park::current_unparker()));
        shared.blocking.hurry();
        unwind_all(&shared);
        let leaked = given_up(&shared);
        let leaking = !leaked.is_empty() || shared.workers.iter().any(|w| w.is_abandoned());
        if leaking {
            // Leaked green threads and abandoned workers still point at
            // the shared state: it must outlive them, i.e. stay forever.
            std::mem::forget(shared.clone());
        }
        // Step 5.
        shared.state.store(STOPPED, Ordering::SeqCst);
        shared.blocking.stop();
        for i in 0..shared.workers.len() {
            shared.wake_worker(i);
        }
        for (i, handle) in self.threads.drain(..).enumerate() {
            if shared.workers[i].is_abandoned() {
                continue; // stuck in a green thread that will not unwind
            }
            let _ = handle.join();
        }
        if let Some((monitor, unparker)) = self.monitor.take() {
            unparker.unpark();
            let _ = monitor.join();
        }
        shared.stacks.clear();
        shared.set_shutdown_waiter(None);
        if !leaking {
            // A waker may still be inside its hand-off of a task that has
            // finished since; the shared state must outlive it.
            shared.wait_for_wakers();
        }
        ShutdownOutcome { live, leaked }
    }
}

/// Steps 2 to 4: wakes everything until every green thread is done, or
/// only stuck ones are left, which are leaked.
fn unwind_all(shared: &Shared) {
    let mut completed = shared.completed();
    let mut calls_done = shared.blocking.calls_done.load(Ordering::SeqCst);
    // Since when nothing completed, and since when, besides, every green
    // thread left was stuck.
    let mut quiet_since = Instant::now();
    let mut stuck_since = Instant::now();
    loop {
        let tasks = remaining(shared);
        if tasks.is_empty() {
            return;
        }
        let now = Instant::now();
        let now_completed = shared.completed();
        let now_calls_done = shared.blocking.calls_done.load(Ordering::SeqCst);
        // A call on the blocking pool that returned is progress too: its
        // caller (a destructor, say) goes on from there.
        let progressed = now_completed != completed || now_calls_done != calls_done;
        completed = now_completed;
        calls_done = now_calls_done;
        if progressed {
            quiet_since = now;
        }
        // Without an abandoned worker nothing can be stuck for good: every
        // green thread left is on a worker that runs, and a held-back one
        // waits for those. Only with one is "no progress" worth a look.
        let any_abandoned = shared.workers.iter().any(|w| w.is_abandoned());
        if progressed || !any_abandoned || !tasks.iter().all(|t| is_stuck(shared, t)) {
            stuck_since = now;
        }
        if now.duration_since(quiet_since) >= STUCK_GRACE {
            abandon_blocked_workers(shared, &tasks, calls_done);
        }
        if now.duration_since(stuck_since) >= SETTLE {
            leak(shared, &tasks);
            return;
        }
        // Step 2. A scope's owner is held back by its worker until its
        // scoped green threads are done (step 3).
        for task in &tasks {
            park::unpark_task(task);
        }
        drop(tasks);
        for i in 0..shared.workers.len() {
            shared.wake_worker(i);
        }
        park::park_timeout(&SHUTDOWN, POLL);
    }
}

/// The runtime's green threads not finished and not given up on.
fn remaining(shared: &Shared) -> Vec<TaskRef> {
    let mut tasks = task::live_tasks(shared);
    tasks.retain(|task| {
        let header = task.header();
        !header.state.load().is_done() && !header.abandoned.load(Ordering::SeqCst)
    });
    tasks
}

/// Whether `task` can make no progress until an abandoned worker's stuck
/// green thread returns (step 4): it is homed on an abandoned worker, or
/// a scope owner held back for its scoped threads.
fn is_stuck(shared: &Shared, task: &TaskRef) -> bool {
    let header = task.header();
    if header.blocking_calls.load(Ordering::SeqCst) != 0 {
        return false; // a call on the blocking pool returns in its own time
    }
    if header.deferred.load(Ordering::SeqCst) {
        return true;
    }
    let home = header.home();
    if header.state.load().is_started() && home != usize::MAX && shared.workers[home].is_abandoned()
    {
        return true;
    }
    // Its closure is being dropped unrun by a worker given up on in that
    // destructor (see `worker::os_park`).
    shared
        .workers
        .iter()
        .any(|w| w.is_abandoned() && w.watch.dropping.load(Ordering::SeqCst) == header.id)
}

/// Step 4: abandons the worker of every green thread that blocks its OS
/// thread while unwinding a panic (it cannot switch away). Not one waiting
/// for its call on the blocking pool (a destructor that flushes a file):
/// the call returns in its own time, and the caller then goes on
/// unwinding ("stays parked until `f` has returned, also while its
/// runtime shuts down"). Nor one in a wait with a deadline (a destructor's
/// `sleep` or `recv_timeout`), until [`STUCK_GRACE`] after it: that wait
/// ends by itself, and the destructor goes on.
///
/// `calls_done` is the pool's count of returned calls when the caller last
/// looked: a call that returned since then may have left its caller with
/// no call in flight but not yet woken, so nothing is abandoned this time.
fn abandon_blocked_workers(shared: &Shared, tasks: &[TaskRef], calls_done: u64) {
    let now = Instant::now();
    // A worker's OS thread blocked outside any green thread, in a
    // destructor it runs itself (see `worker::os_park`), the same way.
    for (index, w) in shared.workers.iter().enumerate() {
        let timed = w
            .watch
            .blocked_until()
            .is_some_and(|d| d.checked_add(STUCK_GRACE).is_none_or(|end| now < end));
        if w.watch.blocked_outside.load(Ordering::SeqCst)
            && shared.blocking.calls_done.load(Ordering::SeqCst) == calls_done
            && !timed
            && !w.abandoned.swap(true, Ordering::SeqCst)
        {
            eprintln!(
                "grove: worker thread {index} is blocked in a destructor it ran outside any green \
                 thread at shutdown (of a green thread's closure dropped unrun, or of a result \
                 nobody joins), and nothing else progressed; it is leaked, with the green \
                 threads homed on it"
            );
        }
    }
    for task in tasks {
        let header = task.header();
        let home = header.home();
        let timed = home != usize::MAX
            && shared.workers[home]
                .watch
                .blocked_until()
                .is_some_and(|d| d.checked_add(STUCK_GRACE).is_none_or(|end| now < end));
        // In this order: a call's return counts `calls_done` before its
        // caller's `blocking_calls` drops, so a caller seen with no call in
        // flight whose call returned since the last look is seen here.
        if header.state.load().is_os_blocked()
            && header.blocking_calls.load(Ordering::SeqCst) == 0
            && shared.blocking.calls_done.load(Ordering::SeqCst) == calls_done
            && !timed
        {
            worker::abandon(
                header,
                "is blocked while unwinding a panic (a destructor made a blocking call) and \
                 nothing else progressed",
            );
        }
    }
}

/// Step 4: gives up on `tasks`, every one stuck, and says so.
fn leak(shared: &Shared, tasks: &[TaskRef]) {
    for task in tasks {
        let header = task.header();
        header.abandoned.store(true, Ordering::SeqCst);
        // A joiner waits no more: its join returns `Err` (see `LEAKED`).
        header.wake_joiner();
        let Some(info) = TaskInfo::of(task, shared) else {
            continue;
        };
        eprintln!(
            "grove: green thread {}{} (spawned at {}) could not be unwound at shutdown: it waits \
             on green threads of an abandoned worker; it is leaked (never freed)",
            info.id.as_u64(),
            info.name
                .as_deref()
                .map(|n| format!(" '{n}'"))
                .unwrap_or_default(),
            info.spawned_at
        );
    }
}

/// The green threads given up on (step 4), as the report lists them.
fn given_up(shared: &Shared) -> Vec<TaskInfo> {
    let mut out: Vec<TaskInfo> = task::live_tasks(shared)
        .iter()
        .filter(|t| t.header().abandoned.load(Ordering::SeqCst))
        .filter_map(|t| TaskInfo::of(t, shared))
        .collect();
    out.sort_by_key(|t| t.id);
    out
}
