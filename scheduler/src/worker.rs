//! One worker: an OS thread that runs green threads.
//!
//! # Where a worker looks for work
//!
//! ```text
//!  every 61st tick: the inbox joins the local queue, then the global
//!                     injector, own deque and yielded tasks go first, the
//!                     last two in turns (fairness: see `fairness_pick`);
//!                     the poller is polled without blocking (see `io`)
//!  while a thief waits for its short queue: own deque first, as many
//!                     picks as that queue held (see `unstarted_first`)
//!  (a) run-next slot     the task this worker just woke (≤ 3 in a row,
//!                        or longer while its chain has run less than
//!                        half the time the chain before it did; then it
//!                        queues behind the local queue, or, if that is
//!                        empty, behind the inbox and one unstarted task:
//!                        see `end_streak`)
//!  (b) local queue       resumable tasks homed here (never stolen)
//!  (c) inbox             tasks homed here that other threads woke, and
//!                        watched waits that other threads completed (see
//!                        `Worker::watch`), looked at as often
//!  (d) own deque         unstarted tasks, newest first (depth-first)
//!  (e) injector          unstarted tasks spawned from outside, a batch
//!                        (skipped while yielded tasks wait: see
//!                        `look_beside_yielders`)
//!  (f) yielded           tasks that called yield_now, oldest first (once
//!                        a round of them, a look at the other workers'
//!                        unstarted tasks: see `look_beside_yielders`)
//!  (g) due timers, then steal a batch of unstarted tasks from a random
//!      victim (searching by the idle protocol's steps, see `idle`)
//!  (h) spin a little on the inbox, then sleep until the next timer: in the
//!      poller if sockets are registered and nobody else is in it, else on
//!      the worker's futex
//! ```
//!
//! Resumable tasks go before new ones, and new ones depth-first: that bounds
//! how many stacks are alive at once (a million-leaf skynet tree runs in a
//! few dozen stacks per worker).
//!
//! Two exceptions keep unstarted tasks where they will run best. A thief
//! leaves a short queue to its owner for a grace (`worth_stealing`), so
//! that green threads spawned together start beside each other; and a green
//! thread that spends its budget twice in a row with only unstarted tasks
//! behind it, while a worker idles, runs on while they are offered to
//! thieves without the grace (`keep_for_thief`), so that CPU-bound green
//! threads spawned together do not share one worker for good.
//!
//! # The soundness rule
//!
//! A green thread is stolen only before it first runs (only the deques of
//! unstarted tasks are stealable). Once started it always resumes on this
//! worker, so its thread-locals and `!Send` values stay on one OS thread.
//! With full migration switched on (an unsafe opt-in of the runtime
//! builder) a woken task runs on its waker's worker instead, like Go.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_deque::{Steal, Worker as Deque};
use crossbeam_utils::sync::Parker;
use crossbeam_utils::Backoff;

use crate::coroutine::{Coro, Request, Resumed};
use crate::loom::AtomicU8;
use crate::park::Unparker;
use crate::scheduler::{Shared, WorkerShared};
use crate::signal;
use crate::stack::{NoStack, Stack, WORKER_CACHE};
use crate::task::{Header, Runnable, TaskRef};
use crate::timer::Timers;

/// Go's and tokio's fairness interval: every 61st pick looks at the shared
/// queues first, so local ping-pong cannot starve them.
const FAIRNESS_TICK: u32 = 61;
/// How long this worker's own unstarted tasks may go without the deque
/// being seen empty before fairness ticks start its oldest task instead of
/// its newest (see `Worker::pop_deque_fairly`): Go's preemption slice
/// (`forcePreemptNS`).
const OLDEST_AFTER: Duration = Duration::from_millis(10);
/// Most run-next picks in a row before the local queue gets a turn
/// (tokio's MAX_LIFO_POLLS_PER_TICK), unless the streak's chain has not
/// yet run its due time (see `Worker::end_streak`).
const MAX_RUN_NEXT_STREAK: u32 = 3;
/// The longest a chain of run-next picks may go on past its streaks
/// while other tasks wait here: Go's preemption slice (`forcePreemptNS`),
/// which bounds how long a goroutine and the one it readied share a P.
const MAX_CHAIN_DUE: Duration = Duration::from_millis(10);
/// Times in a row a green thread whose park was pre-empted by an unpark
/// (a wake-up that came before the park committed) is resumed at once,
/// before it goes to the back of the local queue (a guess, kept equal to
/// the run-next streak's).
const MAX_RENOTIFIED: u32 = 3;
/// Fewest yields between two of a worker's looks at the other workers'
/// unstarted tasks (see `Worker::look_beside_yielders`): a look reads the
/// other workers' queues, which a lone green thread that spends its budget
/// every 128 channel operations would otherwise pay at every budget yield.
const MIN_YIELDED_ROUND: usize = 8;
/// Runtime operations a green thread may do per turn before it must yield
/// (tokio's coop budget).
const BUDGET: u32 = 128;
/// How long an idle worker polls before it parks its OS thread. Waking a
/// parked thread costs 5–20 µs on the small VMs we measure on; this is a
/// guess at the balance between burnt CPU and wake-up latency.
const SPIN: Duration = Duration::from_micros(50);
/// A thief's first look at a victim's short queue (see
/// `Worker::worth_stealing`).
#[derive(Clone, Copy, Debug)]
struct QueueSeen {
    /// The latest change to the queue this worker saw (its length, or the
    /// victim's spawn count).
    since: Instant,
    /// The latest look at it.
    last: Instant,
    /// The queue's length and the victim's spawn count at the latest look.
    queued: usize,
    spawned_last: u64,
    /// The victim's spawn count at the first look.
    spawned: u64,
    /// The victim's resume count at the first look: the turn it ran then.
    turn: u64,
    /// This thief gave its CPU away once for this run of looks (see
    /// [`Verdict::GiveWay`]).
    gave_way: bool,
}

/// A green thread that spent its budget while only unstarted tasks waited
/// behind it (see `Worker::keep_for_thief`).
#[derive(Clone, Copy, Debug)]
struct BudgetYield {
    /// Its id.
    task: u64,
    /// This worker's resume count when it yielded.
    resumes: u64,
    /// Since when its queue has been offered to thieves without a grace.
    offered: Option<Instant>,
}

/// What a thief reads of a victim with a short queue at one look.
#[derive(Clone, Copy, Debug)]
struct Look {
    /// Unstarted tasks in its queue (1 to [`SHORT_QUEUE`]).
    queued: usize,
    now: Instant,
    /// Its spawn count.
    spawned: u64,
    /// Its resume count at its latest spawn (`Counters::spawn_turn`).
    spawn_turn: u64,
    /// Its resume count.
    turn: u64,
}

/// A thief's decision about a victim's short queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Steal,
    /// Leave it to its owner for now.
    Wait,
    /// Leave it to its owner, and tell the owner that a thief waits: the
    /// grace starts now.
    FirstLook,
    /// The grace is over but the victim resumed nothing since the first
    /// look: leave it for now, and sleep for [`GIVE_WAY`] first, in case
    /// this thief holds the CPU the victim's OS thread waits for.
    GiveWay,
}

impl QueueSeen {
    /// The steal rule for a short queue (see `Worker::worth_stealing`),
    /// given this thief's earlier look, which it updates.
    fn judge(seen: &mut Option<QueueSeen>, look: Look) -> Verdict {
        match seen {
            // A look that goes on: this worker kept looking.
            Some(seen) if look.now.duration_since(seen.last) < STEAL_GRACE => {
                seen.last = look.now;
                // More spawned since the first look, the latest by a later
                // turn than the one running then: the victim's green
                // threads are forking work, not one of them setting up a
                // batch before it blocks.
                if look.queued > 1 && look.spawned != seen.spawned && look.spawn_turn != seen.turn {
                    return Verdict::Steal;
                }
                // Its owner still adds to the queue or starts from it: the
                // grace counts from its latest change.
                if (look.queued, look.spawned) != (seen.queued, seen.spawned_last) {
                    seen.queued = look.queued;
                    seen.spawned_last = look.spawned;
                    seen.since = look.now;
                }
                if look.now.duration_since(seen.since) >= STEAL_GRACE {
                    // The victim resumed nothing all the while: it is stuck
                    // in one green thread, or its OS thread is not running.
                    // The latter is often this thief's doing: a worker woken
                    // from a long sleep may be placed on its waker's CPU
                    // while the other idles, and then spins the victim off
                    // its CPU for the whole grace. Once per run of looks
                    // the thief gives its CPU away before it steals.
                    if look.turn == seen.turn && !seen.gave_way {
                        seen.gave_way = true;
                        return Verdict::GiveWay;
                    }
                    Verdict::Steal
                } else {
                    Verdict::Wait
                }
            }
            // A look after a gap (this worker slept, ran its own green
            // threads, or was preempted) at a victim that has resumed
            // nothing since the first look and whose queue did not move:
            // it is stuck in one green thread (computing, or blocked in a
            // call that does not park), and its queue would wait for it
            // however long; the grace is over. Without this a thief that
            // cannot look for the grace without a gap (a crowded machine
            // preempting it, or the 2 µs idle spin with sockets
            // registered) never steals, and tasks queued behind a
            // CPU-bound green thread waited while workers slept.
            Some(seen)
                if look.turn == seen.turn
                    && (look.queued, look.spawned) == (seen.queued, seen.spawned_last)
                    && look.now.duration_since(seen.since) >= STEAL_GRACE =>
            {
                seen.last = look.now;
                Verdict::Steal
            }
            // A first look, or one from before this worker last stopped
            // looking (it slept, or ran its own green threads), at a queue
            // that moved since.
            slot => {
                *slot = Some(QueueSeen {
                    since: look.now,
                    last: look.now,
                    spawned: look.spawned,
                    turn: look.turn,
                    queued: look.queued,
                    spawned_last: look.spawned,
                    gave_way: false,
                });
                Verdict::FirstLook
            }
        }
    }
}

/// Up to this many unstarted tasks that their owner stopped adding to are
/// left to it for [`STEAL_GRACE`] (see `Worker::worth_stealing`).
const SHORT_QUEUE: usize = 8;
/// How long a victim's short queue is left to its owner. Measured: with
/// 5 µs for a lone task (Go's `runnext` wait) the third of three green
/// threads spawned together was stolen before its owner started it, in
/// 20 of 144 repetitions of a natural select2 (main spawns two producers
/// and a consumer, then joins); with 50 µs, in 1 of 144; fib_fork,
/// skynet and spawn_join unchanged (their queues are long or growing).
const STEAL_GRACE: Duration = Duration::from_micros(50);
/// How long a green thread that keeps spending its budget goes on running
/// while the unstarted tasks behind it are offered to idle workers (see
/// `Worker::keep_for_thief`): long enough for a parked worker's wake-up
/// and a crowded machine's scheduling delay, short against Go's 10 ms
/// preemption slice. A task no thief took waits this long at most.
const OFFER: Duration = Duration::from_millis(1);
/// How long a thief sleeps before it steals from a victim that resumed
/// nothing during the whole grace (see `Verdict::GiveWay`). Measured with
/// a program of 4P/4C's shape whose workers park between repetitions (two
/// OS threads spin for 30 ms between them, as Go's process does between
/// the comparison program's): every steal from a short queue came after a
/// grace in which the victim resumed nothing, and 60-83 of 200
/// repetitions ran split; with one `sched_yield` first, 30-35; with this
/// sleep, 0-4 (every time, the victim started the task meanwhile).
const GIVE_WAY: Duration = Duration::from_micros(20);
/// Longest idle spin while sockets are registered with the runtime's
/// poller: about one look at every queue. Measured with a grove echo server
/// and a grove load generator sharing 2 cores (`benches/examples/echo_load.rs`, 3 s
/// windows, two runs each), caps of 2 / 10 / 25 µs against the 50 µs to
/// 1 ms of a channel-only runtime: 1 connection 86k-104k / 39k-59k /
/// 17k requests/s (p99 16-22 / 38-44 / 91-95 µs; uncapped: 3.3k-4.6k,
/// p99 1.8-2.1 ms), 100 connections 144k-165k / 137k-217k / 129k-134k,
/// 1,000 connections 154k-220k / 142k-198k / 143k-151k. A spinning
/// worker takes the CPU from the threads and processes whose work would
/// end its wait.
const IO_SPIN: Duration = Duration::from_micros(2);
/// Longest idle spin a worker grows to (see `Worker::park`).
const MAX_SPIN: Duration = Duration::from_millis(1);
/// PAUSE instructions between two looks at the inbox while idle.
const IDLE_PAUSES: u32 = 4;
/// Looks at the inbox between two looks at everything else while idle.
const INBOX_POLLS: u32 = 32;
/// Most parked plain waits one worker watches at once (see
/// `Worker::watch`): each costs a load wherever the worker looks at its
/// inbox; a wait beyond these parks the ordinary way (a guess; tested
/// with eight waiters on one worker).
const MAX_WATCHED: usize = 4;
/// A gap this long between two clock reads around an idle spin's PAUSEs
/// (a few microseconds of work) means the worker's OS thread was not
/// running: the kernel preempted it for another runnable thread, there
/// being more of those than CPUs (or the hypervisor took the CPU).
const PREEMPTED: Duration = Duration::from_micros(50);
/// How long a worker that saw itself preempted spins no more than
/// [`IO_SPIN`] idle, and its waiters not at all (see `Worker::crowded`).
const CROWDED: Duration = Duration::from_millis(20);

/// A green thread parked in a plain wait (`wait::block`) whose packet this
/// worker watches instead of having its claimer wake it (see
/// `Worker::watch`).
struct Watched {
    /// The packet's state, on the parked green thread's stack: alive until
    /// that green thread runs again, which takes the entry out first
    /// (`Worker::unwatch`), and it runs only on this worker.
    state: ptr::NonNull<AtomicU8>,
    /// The packet's unparker, left there by a claimer that completes the
    /// packet from SPINNING; untouched by anyone else while the entry is
    /// here.
    unparker: ptr::NonNull<Option<Unparker>>,
}

impl Watched {
    /// Whether the packet was completed (see `wait::watch_answered`).
    fn answered(&self) -> bool {
        // SAFETY: a watched packet is alive while its entry is in its
        // worker's list (see `state`), and this runs on that worker.
        crate::wait::watch_answered(unsafe { self.state.as_ref() })
    }

    /// Ends the watch (see `wait::end_watch`): false if the packet was
    /// completed first. The entry is out of the list already, and its green
    /// thread has not run since, so the packet is still alive.
    fn end(&self) -> bool {
        // SAFETY: as in `answered`: the entry was in the list until now.
        crate::wait::end_watch(unsafe { self.state.as_ref() })
    }

    /// Wakes the green thread, whose packet was completed from SPINNING.
    fn wake(&self) {
        // SAFETY: the packet is alive (see `state`), its claimer completed
        // it from SPINNING and so left the unparker alone, and its owner is
        // parked: nobody else touches the unparker until the owner runs,
        // on this thread, after this wake.
        if let Some(unparker) = unsafe { self.unparker.as_ref() } {
            unparker.unpark();
        }
    }
}

// SAFETY: a worker is moved to its OS thread before it runs anything, so
// before it watches anything; entries are made, read and dropped on that
// thread only. (The pointer's target, an atomic, is Sync anyway.)
unsafe impl Send for Watched {}

/// Per-worker counters. Only the owning worker writes them (plain load and
/// store, no read-modify-write); anyone may read.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) spawned: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) stacks_taken: AtomicU64,
    pub(crate) stacks_returned: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) yields: AtomicU64,
    pub(crate) resumes: AtomicU64,
    /// `resumes` at the latest spawn: the turn that spawned it.
    pub(crate) spawn_turn: AtomicU64,
    pub(crate) cached_stacks: AtomicU64,
    /// This worker's green threads parked in a `blocking` call. The one
    /// exception to the rule above: read-modify-write, since under
    /// `full_migration` the caller may come back on another worker.
    pub(crate) calls_out: AtomicU64,
}

/// Adds `by` to a counter that only the calling worker writes: a load and
/// a store, not a read-modify-write (see [`Counters`]).
pub(crate) fn add_own(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

/// The worker-thread half of a worker (the shared half is `WorkerShared`).
pub(crate) struct Worker {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    /// This worker's entry in `shared.workers` (looked up on every resume;
    /// see [`Worker::me`]).
    me: MePtr,
    deque: Deque<Runnable>,
    run_next: Cell<Option<Runnable>>,
    local: RefCell<VecDeque<Runnable>>,
    yielded: RefCell<VecDeque<Runnable>>,
    /// At shutdown: scope owners whose scoped green threads may still run,
    /// held (run token and all) until those are done; see `shutdown`.
    deferred: RefCell<VecDeque<Runnable>>,
    timers: RefCell<Timers>,
    stacks: RefCell<Vec<Stack>>,
    parker: Parker,
    tick: Cell<u32>,
    /// Which of new and yielded tasks the next fairness tick looks at
    /// first (see `Worker::fairness_pick`).
    yielded_first: Cell<bool>,
    /// When a fairness tick first found the deque of unstarted tasks not
    /// empty, with no tick finding it empty since (see `pop_deque_fairly`).
    deque_busy_since: Cell<Option<Instant>>,
    streak: Cell<u32>,
    /// When the turn went to the chain of run-next picks now running, if
    /// it went there at a streak's end (see `end_streak`), and how long
    /// that chain may run before a streak's end gives the turn away: half
    /// as long as the chain before it ran.
    chain: Cell<Option<(Instant, Duration)>>,
    /// Picks left that go to this worker's own unstarted tasks first,
    /// because a thief is waiting for them (see `unstarted_first`).
    unstarted_turns: Cell<u32>,
    /// The latest budget yield that found only unstarted tasks queued
    /// behind it (see `keep_for_thief`).
    budget_yield: Cell<Option<BudgetYield>>,
    searching: Cell<bool>,
    rng: Cell<u64>,
    /// Per victim: our first look at its short queue, while it stays
    /// short (see `worth_stealing`).
    queue_seen: RefCell<Vec<Option<QueueSeen>>>,
    /// How long this worker spins before parking; grows while parks end
    /// quickly with work (fine-grained traffic with another worker), halves
    /// after a wake-up that brought nothing, resets after a long idle. Two workers
    /// that each park before the other's wake-up lands would otherwise pay
    /// a futex wake per message.
    spin: Cell<Duration>,
    /// The last park was ended early by another thread (not by this
    /// worker's own timer): whether that wake-up brought work decides
    /// whether the spin grows (see `Worker::park`).
    woken_early: Cell<bool>,
    /// This worker is waking the green threads a poll found ready (see
    /// `schedule_woken`).
    polling: Cell<bool>,
    /// Parked plain waits whose packets this worker watches (see `watch`),
    /// at most [`MAX_WATCHED`], and how many (read wherever the inbox is
    /// looked at).
    watched: RefCell<Vec<Watched>>,
    watched_len: Cell<usize>,
    /// This worker saw its OS thread preempted while it spun idle, less
    /// than [`CROWDED`] ago (until the instant held): the machine has more
    /// runnable threads than CPUs, and a spin only keeps the CPU from the
    /// thread whose work would end it (see `crowded`).
    crowded_until: Cell<Option<Instant>>,
    /// Yields left before this worker next looks for other workers'
    /// unstarted tasks (see `look_beside_yielders`).
    yields_to_look: Cell<usize>,
}

/// A worker's pointer to its own `WorkerShared` (see `Worker::me`).
struct MePtr(ptr::NonNull<WorkerShared>);

// SAFETY: it only ever gives out `&WorkerShared`, which is Sync (every
// thread of the runtime reads the workers' shared halves).
unsafe impl Send for MePtr {}

thread_local! {
    /// This OS thread's worker: set by `Worker::run_thread` to the worker
    /// on its frame for as long as the thread runs, null otherwise.
    static WORKER: Cell<*const Worker> = const { Cell::new(ptr::null()) };
    /// The green thread running on this OS thread: a pointer to the TaskRef
    /// that `Worker::resume` holds on its frame for the whole resume.
    static CURRENT: Cell<*const TaskRef> = const { Cell::new(ptr::null()) };
    /// Operations the running green thread may still do this turn.
    static BUDGET_LEFT: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// Runs `f` with this thread's worker, if it is one.
#[inline(always)]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&Worker>) -> R) -> R {
    let worker = crate::tls_access!(WORKER.with(Cell::get));
    // SAFETY: WORKER is non-null only while `Worker::run_thread` runs on
    // this OS thread with the worker alive on its frame (it clears the
    // pointer before the worker goes away), and a worker is only ever used
    // through shared references on its own thread.
    f(unsafe { worker.as_ref() })
}

/// Runs `f` with the header of the green thread running here, if any. `f`
/// may suspend the green thread: no borrow of thread-local state is held.
#[inline(always)]
pub(crate) fn with_current_header<R>(f: impl FnOnce(Option<&Header>) -> R) -> R {
    let task = crate::tls_access!(CURRENT.with(Cell::get));
    // SAFETY: CURRENT is non-null only while this OS thread's worker resumes
    // that task, with the TaskRef alive on `Worker::resume`'s frame; the
    // caller is that task. The header is then borrowed for `f`, which may
    // outlast the resume if `f` suspends: the task's allocation stays alive
    // meanwhile because every task that is not finished holds a reference
    // to itself (`Header::refs`), and the task cannot finish while `f` is
    // on its stack.
    f(unsafe { task.as_ref() }.map(TaskRef::header))
}

/// The green thread running here.
pub(crate) fn current_task() -> Option<TaskRef> {
    let task = crate::tls_access!(CURRENT.with(Cell::get));
    // SAFETY: as in `with_current_header`; the clone ends the borrow here.
    unsafe { task.as_ref() }.cloned()
}

/// The runtime of the green thread running here.
pub(crate) fn current_shared() -> Option<Arc<Shared>> {
    with_worker(|w| w.map(|w| w.shared.clone()))
}

/// Queues a task that an unpark just moved PARKED → SCHEDULED (so the
/// caller holds its run token).
#[inline(always)]
pub(crate) fn schedule_woken(task: TaskRef) {
    let task = Runnable::new(task);
    let home = task.header().home();
    let worker = crate::tls_access!(WORKER.with(Cell::get));
    // SAFETY: as in `with_worker` (no closure here: this is the hot path of
    // every wake-up, and the closure was not always inlined).
    if let Some(w) = unsafe { worker.as_ref() } {
        if task.header().runs_on(&w.shared)
            && (w.index == home || (w.shared.migrate && !task.header().is_pinned()))
        {
            if w.polling.get() && !w.shared.migrate {
                // A batch of readiness: in the order the poller saw it,
                // behind what is queued, not in the run-next slot (where
                // each would push the one before, a timer's wake-up
                // included, to the back of the queue).
                w.local.borrow_mut().push_back(task);
            } else {
                w.push_run_next(task);
            }
            return;
        }
    }
    // SAFETY: just moved out of PARKED by the caller, so not DONE; the
    // reference serves this one push.
    let shared = unsafe { task.header().shared_for_hand_off() };
    shared.push_to_inbox(home, task);
}

/// Wakes the OS thread a green thread blocks because it parked while
/// panicking (see `block_os_thread`).
pub(crate) fn wake_blocked_thread(task: &TaskRef) {
    let header = task.header();
    let home = header.home();
    // The unpark that chose this set OS_WAKING: the blocked task does not
    // go on (nor can its runtime be dropped) until it is cleared below.
    header.shared().workers[home].unparker.unpark();
    header.state.end_os_wake();
}

/// Parks the running green thread by blocking its OS thread: the path taken
/// while the thread is panicking, where switching away is never allowed.
///
/// Nothing else runs on this worker meanwhile: a destructor that blocks on
/// something only another green thread of this worker can provide waits
/// forever. The stall monitor says so plainly (`blocked_unwinding`), and a
/// runtime's shutdown gives such a worker up (see `shutdown`, step 4).
pub(crate) fn block_os_thread(header: &Header, deadline: Option<Instant>) {
    if header.unwinding.load(Ordering::Relaxed) && !std::thread::panicking() {
        // Being unwound by its runtime's shutdown, the green thread caught
        // the unwind (a catch_unwind around a blocking call, in a loop) and
        // blocks again: it can never be unwound. Leak it and its worker
        // rather than hang the runtime's drop.
        abandon(header, SWALLOWED);
    }
    if !header.state.begin_os_block() {
        return; // an unpark was pending
    }
    let woken = with_worker(|w| {
        let w = w.expect("a green thread runs on a worker");
        let watch = &w.me().watch;
        watch.set_blocked_until(deadline);
        watch.blocked_unwinding.store(true, Ordering::Relaxed);
        let woken = loop {
            if header.state.end_os_block_if_notified() {
                break true;
            }
            match deadline {
                Some(d) if Instant::now() >= d => break false,
                Some(d) => w.parker.park_deadline(d),
                None => w.parker.park(),
            }
        };
        watch.blocked_unwinding.store(false, Ordering::Relaxed);
        watch.set_blocked_until(None);
        woken
    });
    if !woken {
        header.state.end_os_block();
    }
    // An unparker that found this block may still be reading the runtime
    // to wake this thread; the task must not finish (and let its runtime
    // be dropped) under it. It is a few instructions and one futex wake
    // away from done.
    let mut spins = 0u32;
    while header.state.load().is_os_waking() {
        if spins < 64 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Parks the calling OS thread, outside any green thread, by `park`. On a
/// worker's own OS thread that is user code the worker runs itself, at
/// shutdown: a destructor of a closure dropped unrun, or of a forced
/// unwind's panic payload nobody joins. If what it waits for needs a green
/// thread homed on this worker, it waits forever, holding them all; the
/// block is noted in the worker's watch, so that a shutdown that sees
/// nothing progress gives the worker up (see `shutdown`, step 4) rather
/// than wait for it forever.
pub(crate) fn os_park(deadline: Option<Instant>, park: impl FnOnce(Option<Instant>)) {
    with_worker(|w| {
        let Some(w) = w else {
            return park(deadline);
        };
        let watch = &w.me().watch;
        watch.set_blocked_until(deadline);
        watch.blocked_outside.store(true, Ordering::SeqCst);
        park(deadline);
        watch.blocked_outside.store(false, Ordering::SeqCst);
        watch.set_blocked_until(None);
    })
}

/// How late the kernel may end this worker's timed sleeps (on its futex,
/// or in the poller) to batch wake-ups: Linux's default is 50 µs, which a
/// green thread's short sleep would pay on top of its length. A worker's
/// idle spin does not grow for its own timers (see `Worker::park`), so a
/// `sleep(100 µs)` is mostly a futex sleep with a deadline: 170 µs with the
/// default slack, against 150 for `std::thread::sleep` (and about 1 ms
/// for Go 1.19's `time.Sleep` on the same machine).
const TIMER_SLACK_NS: libc::c_ulong = 1_000;

/// Sets this thread's timer slack to [`TIMER_SLACK_NS`]; a failure (an old
/// or restricted kernel) leaves the default.
fn set_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and changes only
    // the calling thread's slack; the unused arguments are zero.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0) };
}

/// Why a green thread is abandoned when it swallows its forced unwind.
pub(crate) const SWALLOWED: &str = "caught the unwind of its runtime's shutdown and blocked or \
     yielded again: a catch_unwind around a blocking call must let the unwind through \
     (resume_unwind what it does not expect)";

/// Gives up on the green thread of `header` and on its worker's OS thread
/// at shutdown (see `shutdown`, step 4): neither is ever waited for again,
/// and the green thread is leaked. `why` completes "green thread N ...".
#[cold]
pub(crate) fn abandon(header: &Header, why: &str) {
    if header.abandoned.swap(true, Ordering::SeqCst) {
        return;
    }
    // A joiner waits no more: its join returns `Err` (see `LEAKED`).
    header.wake_joiner();
    let home = header.home();
    let shared = header.shared();
    shared.workers[home].abandoned.store(true, Ordering::SeqCst);
    eprintln!(
        "grove: green thread {} (spawned at {}) {why}; it cannot be unwound, so it and worker \
         thread {home} are leaked",
        header.id, header.spawned_at
    );
}

/// Spends one unit of the running green thread's budget; true when the
/// budget ran out and the caller should yield. Outside a green thread the
/// budget is never reset, so it never runs out there.
#[inline]
pub(crate) fn spend_budget() -> bool {
    let ran_out = crate::tls_access!({
        BUDGET_LEFT.with(|b| {
            let left = b.get() - 1;
            b.set(left);
            left == 0
        })
    });
    ran_out && budget_ran_out()
}

/// The budget hit zero: refill it, and say whether a green thread spent it.
#[cold]
fn budget_ran_out() -> bool {
    crate::tls_access!({
        BUDGET_LEFT.with(|b| b.set(u32::MAX));
        !CURRENT.with(Cell::get).is_null()
    })
}

/// The payload a green thread's `join` sees when the runtime shut down
/// before the green thread could finish.
pub(crate) const UNWOUND: &str = "green thread unwound: its runtime was dropped";

/// The payload a green thread's `join` sees when its runtime's shutdown
/// gave up on it (it could not be unwound, see `shutdown`, step 4): it
/// will never finish, and its output is never read.
pub(crate) const LEAKED: &str =
    "green thread leaked: its runtime's shutdown could not unwind it (see the report on stderr)";

impl Worker {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        deque: Deque<Runnable>,
        parker: Parker,
    ) -> Worker {
        let n = shared.workers.len();
        let me = MePtr(ptr::NonNull::from(&shared.workers[index]));
        Worker {
            index,
            me,
            shared,
            deque,
            run_next: Cell::new(None),
            local: RefCell::new(VecDeque::new()),
            yielded: RefCell::new(VecDeque::new()),
            deferred: RefCell::new(VecDeque::new()),
            timers: RefCell::new(Timers::new()),
            stacks: RefCell::new(Vec::new()),
            parker,
            tick: Cell::new(FAIRNESS_TICK),
            yielded_first: Cell::new(false),
            deque_busy_since: Cell::new(None),
            streak: Cell::new(0),
            chain: Cell::new(None),
            unstarted_turns: Cell::new(0),
            budget_yield: Cell::new(None),
            searching: Cell::new(false),
            rng: Cell::new(
                0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1).wrapping_mul(0xff51_afd7_ed55_8ccd),
            ),
            queue_seen: RefCell::new(vec![None; n]),
            spin: Cell::new(SPIN),
            woken_early: Cell::new(false),
            polling: Cell::new(false),
            watched: RefCell::new(Vec::with_capacity(MAX_WATCHED)),
            watched_len: Cell::new(0),
            crowded_until: Cell::new(None),
            yields_to_look: Cell::new(0),
        }
    }

    /// This worker's shared half (its inbox, counters, stall watch).
    #[inline]
    fn me(&self) -> &WorkerShared {
        // SAFETY: `me` points into `self.shared.workers`, a boxed slice that
        // is never resized and lives as long as the Arc this worker holds.
        unsafe { self.me.0.as_ref() }
    }

    /// The worker thread's main function.
    pub(crate) fn run_thread(self) {
        signal::install_for_this_thread();
        set_timer_slack();
        let worker = &self;
        WORKER.with(|w| w.set(worker));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| worker.main_loop()));
        if outcome.is_err() {
            // A broken scheduler invariant: carrying on could resume a task
            // twice or lose one. The panic message is already printed.
            eprintln!(
                "grove: worker {} hit an internal error; aborting",
                worker.index
            );
            std::process::abort();
        }
        worker.release_everything();
        WORKER.with(|w| w.set(ptr::null()));
    }

    fn main_loop(&self) {
        loop {
            let task = if let Some(task) = self.next_task() {
                // A worker woken as a searcher may find work in its own
                // queues: it must stop counting as a searcher before it
                // runs, or spawns would rely on a searcher that is busy.
                self.stop_searching();
                task
            } else if let Some(task) = self.find_work_or_park() {
                task
            } else if self.shared.is_stopped() {
                return;
            } else {
                continue;
            };
            // One call site: `run` and the resume loop inline here.
            self.run(task);
        }
    }

    #[inline(always)]
    fn next_task(&self) -> Option<Runnable> {
        // A countdown, not `tick % 61`: this runs on every hand-off.
        let tick = self.tick.get().wrapping_sub(1);
        self.tick.set(if tick == 0 { FAIRNESS_TICK } else { tick });
        if tick == 0 {
            if let Some(task) = self.fairness_pick() {
                return Some(task);
            }
        }
        // Due timers: at ticks 48, 32, 16 and 0 of each countdown, about
        // every 15th pick.
        if tick % 16 == 0 && !self.timers.borrow().is_empty() {
            self.fire_timers();
        }
        if self.unstarted_first() {
            if let Some(task) = self.pop_deque() {
                return Some(task);
            }
        }
        if let Some(task) = self.run_next.take() {
            let streak = self.streak.get();
            if streak < MAX_RUN_NEXT_STREAK {
                self.streak.set(streak + 1);
                return Some(task);
            }
            return Some(self.end_streak(task));
        }
        self.streak.set(0);
        self.chain.set(None);
        if let Some(task) = self.local.borrow_mut().pop_front() {
            return Some(task);
        }
        // Watched waits that were answered: wake-ups from other workers, as
        // the inbox's are (and looked at as often).
        if self.wake_answered() {
            return self.run_next.take();
        }
        self.pop_inbox()
            .or_else(|| self.pop_deque())
            .or_else(|| {
                // Busy with yielders: the round's look takes a share.
                if self.yielded.borrow().is_empty() {
                    self.pop_injector()
                } else {
                    None
                }
            })
            .or_else(|| self.yielded.borrow_mut().pop_front())
    }

    /// The fairness tick's pick: the queues that two green threads handing
    /// off to each other through run-next and the local queue would
    /// otherwise keep from ever being looked at get a turn. The inbox joins
    /// the local queue (served at least every fourth pick); then one task
    /// from the global injector or this worker's own unstarted tasks, or
    /// one that yielded, those two alternating in which goes first so that
    /// a steady stream of spawns cannot starve a yielder (nor yielders new
    /// tasks). Without this a spawned green thread never started on a
    /// worker whose run-next pair never stops.
    fn fairness_pick(&self) -> Option<Runnable> {
        self.poll_io_now();
        self.wake_answered();
        // `pop_inbox` returns the inbox's first task and queues the rest:
        // put the first back in front of them, keeping the inbox's order.
        let queued = self.local.borrow().len();
        if let Some(task) = self.pop_inbox() {
            self.local.borrow_mut().insert(queued, task);
        }
        let yielded_first = self.yielded_first.get();
        self.yielded_first.set(!yielded_first);
        let new = || self.pop_injector().or_else(|| self.pop_deque_fairly());
        let yielded = || self.yielded.borrow_mut().pop_front();
        if yielded_first {
            yielded().or_else(new)
        } else {
            new().or_else(yielded)
        }
    }

    /// A run-next streak is over: `task` goes to the back of the local
    /// queue and the turn goes to the task at its front. If there was none
    /// (two green threads handing off to each other and nothing else
    /// resumable here), a task woken by another thread or an unstarted one
    /// gets the turn before `task` comes back: otherwise those would wait
    /// for the fairness tick while the pair runs.
    ///
    /// Turns are shared by time, not only by count. A chain that got the
    /// turn at a streak's end (the pair it woke, and so on) keeps it past
    /// its streaks until it has run half as long as the chain before it
    /// (at most [`MAX_CHAIN_DUE`]). Without that, a pair handing off after
    /// a millisecond of work and a pair handing off after a microsecond
    /// got three turns each, and the first had a thousand times the CPU
    /// of the second (Go's `TestPingPongHog`; Go shares by time slice).
    /// Half, so that chains of equal work do not ratchet each other up to
    /// the cap: they still hand over after about a streak.
    fn end_streak(&self, task: Runnable) -> Runnable {
        self.streak.set(0);
        // Only resumable tasks share turns by time: an unstarted one gets
        // its turn at a streak's end as before, without a look at the
        // clock (fork-join trees end a streak every few picks).
        let resumable = self.resumable_waiting();
        let mut measured = None;
        if resumable {
            if let Some((start, due)) = self.chain.get() {
                let now = Instant::now();
                let ran = now.saturating_duration_since(start);
                if ran < due {
                    return task;
                }
                measured = Some((now, ran));
            }
        }
        let front = self.local.borrow_mut().pop_front();
        let other = match front {
            Some(other) => other,
            None => {
                let woken = if self.wake_answered() {
                    self.run_next.take()
                } else {
                    None
                };
                match woken
                    .or_else(|| self.pop_inbox())
                    .or_else(|| self.pop_deque())
                {
                    Some(other) => other,
                    None => return task,
                }
            }
        };
        self.local.borrow_mut().push_back(task);
        if resumable {
            let (now, due) = match measured {
                Some((now, ran)) => (now, (ran / 2).min(MAX_CHAIN_DUE)),
                None => (Instant::now(), Duration::ZERO),
            };
            self.chain.set(Some((now, due)));
        } else {
            self.chain.set(None);
        }
        other
    }

    /// Whether a resumable task other than the run-next chain's waits
    /// here: in the local queue or the inbox, or answered while watched.
    fn resumable_waiting(&self) -> bool {
        !self.local.borrow().is_empty()
            || !self.me().mailbox.inbox.is_empty()
            || self.any_answered()
    }

    /// Whether this pick goes to an unstarted task of this worker first,
    /// ahead of the run-next slot and the local queue: yes for as many
    /// picks as the short queue a thief is waiting for held when this
    /// worker noticed (see `worth_stealing`). Green threads spawned
    /// together then start beside their spawner even while the green
    /// threads already started here keep handing off to each other, which
    /// otherwise keeps the new ones waiting for a fairness tick, the
    /// thief's grace runs out, and a partner started on the other worker
    /// pays a cross-core hand-off per message for its whole life.
    /// Bounded by [`SHORT_QUEUE`] picks per look of a thief: fork-join
    /// trees still resume their parents before they grow wide.
    #[inline(always)]
    fn unstarted_first(&self) -> bool {
        let turns = self.unstarted_turns.get();
        if turns > 0 {
            self.unstarted_turns.set(turns - 1);
            return true;
        }
        let waiting = &self.me().thief_waiting;
        if !waiting.load(Ordering::Relaxed) {
            return false;
        }
        waiting.store(false, Ordering::Relaxed);
        let queued = self.deque.len().min(SHORT_QUEUE) as u32;
        self.unstarted_turns.set(queued.saturating_sub(1));
        queued > 0
    }

    /// The fairness tick's pick among this worker's own unstarted tasks:
    /// the newest, as every other pick (depth-first keeps few stacks
    /// alive), until no tick has found the deque empty for
    /// [`OLDEST_AFTER`]; from then on, until a tick finds it empty, each
    /// tick takes the oldest. Without it a green thread that keeps
    /// spawning its successor (a chain, or a loop that spawns and exits)
    /// buried whatever was queued under it for good: nothing else takes
    /// from the bottom but a thief, and with every worker busy there is
    /// none (a task queued from outside never started; found with tokio's
    /// `spawn_many_remote_busy2` program). Go's preemption and tokio's FIFO
    /// run queue give the same bound.
    fn pop_deque_fairly(&self) -> Option<Runnable> {
        if self.deque.is_empty() {
            self.deque_busy_since.set(None);
            return None;
        }
        let now = Instant::now();
        let since = match self.deque_busy_since.get() {
            Some(since) => since,
            None => {
                self.deque_busy_since.set(Some(now));
                now
            }
        };
        if now.duration_since(since) >= OLDEST_AFTER {
            // The owner may take from the bottom through its own stealer.
            if let Steal::Success(task) = self.me().stealer.steal() {
                // One per period: depth-first order stays the rule.
                self.deque_busy_since.set(Some(now));
                return Some(task);
            }
        }
        self.pop_deque()
    }

    /// This worker's newest unstarted task. Looks first: popping an empty
    /// deque still costs a full fence, and the hand-off paths look often.
    #[inline]
    fn pop_deque(&self) -> Option<Runnable> {
        if self.deque.is_empty() {
            return None;
        }
        self.deque.pop()
    }

    /// Moves everything in the inbox to the local queue; returns the first.
    fn pop_inbox(&self) -> Option<Runnable> {
        let mut taken = self.me().mailbox.inbox.take_all();
        let first = taken.next()?;
        self.local.borrow_mut().extend(taken);
        Some(first)
    }

    fn pop_injector(&self) -> Option<Runnable> {
        let injector = &self.shared.injector;
        if injector.is_empty() {
            return None;
        }
        let limit = injector.len() / self.shared.workers.len() + 1;
        let backoff = Backoff::new();
        loop {
            match injector.steal_batch_with_limit_and_pop(&self.deque, limit) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => backoff.spin(),
            }
        }
    }

    /// Steals a batch of unstarted tasks from a random victim (look (g)).
    fn steal(&self) -> Option<Runnable> {
        let workers = &self.shared.workers;
        let n = workers.len();
        if n > 1 {
            let backoff = Backoff::new();
            loop {
                let start = self.random() as usize % n;
                let mut retry = false;
                for i in 0..n {
                    let victim = (start + i) % n;
                    if victim == self.index || !self.worth_stealing(victim, false) {
                        continue;
                    }
                    match workers[victim].stealer.steal_batch_and_pop(&self.deque) {
                        Steal::Success(task) => {
                            self.queue_seen.borrow_mut()[victim] = None;
                            let stolen = 1 + self.deque.len() as u64;
                            add_own(&self.counters().steals, stolen);
                            return Some(task);
                        }
                        Steal::Retry => retry = true,
                        Steal::Empty => {}
                    }
                }
                if !retry {
                    break;
                }
                backoff.spin();
            }
        }
        self.pop_injector()
    }

    /// The steal of a worker busy with `yielded` yielded tasks (see
    /// `look_beside_yielders`): one pass over the victims, its fair share
    /// of the first that has one to give, into its own queue.
    fn steal_into_deque(&self, yielded: usize) {
        let workers = &self.shared.workers;
        let n = workers.len();
        let mine = yielded + self.deque.len();
        let start = self.random() as usize % n;
        for i in 0..n {
            let victim = (start + i) % n;
            if victim == self.index || !self.worth_stealing(victim, true) {
                continue;
            }
            let share = self.fair_share(victim, mine);
            if share == 0 {
                continue;
            }
            let before = self.deque.len();
            if let Steal::Success(()) = workers[victim]
                .stealer
                .steal_batch_with_limit(&self.deque, share)
            {
                self.queue_seen.borrow_mut()[victim] = None;
                let stolen = self.deque.len().saturating_sub(before) as u64;
                add_own(&self.counters().steals, stolen);
                return;
            }
        }
    }

    /// How many of `victim`'s unstarted tasks a busy thief with `mine`
    /// yielded and unstarted tasks takes: as many as leave both workers
    /// with the same number of green threads to run, counting the victim's
    /// yielded ones as it last published them (at most half its queue:
    /// crossbeam's batch). Half the queue each look, as an idle thief
    /// takes, gave the thief nearly all of a thousand yielders that one
    /// green thread spawned (780–840 of 1,000): the spawner's worker,
    /// busy spawning, started none meanwhile.
    fn fair_share(&self, victim: usize, mine: usize) -> usize {
        let victim = &self.shared.workers[victim];
        let queued = victim.stealer.len();
        let theirs = victim.yielded.load(Ordering::Relaxed);
        ((mine + theirs + queued) / 2).saturating_sub(mine)
    }

    /// Steal hysteresis: a victim's short queue (up to [`SHORT_QUEUE`]
    /// unstarted tasks) that its owner stopped adding to is left to it for
    /// [`STEAL_GRACE`]. The owner usually starts them as soon as the task
    /// that spawned them blocks, and then tasks spawned together and then
    /// waited on (a producer and its consumer, ping and pong, producers
    /// and a consumer over a select) share one worker instead of paying a
    /// cross-core hand-off per message for their whole life (a started
    /// green thread never moves). The first look tells the owner (its
    /// `thief_waiting`), which then starts them ahead of the green threads
    /// it already runs (see `unstarted_first`). Go does the like for its
    /// `runnext` slot (`runqgrab`'s usleep(3)), and then fixes placement by
    /// moving goroutines, which grove cannot. A victim that spawns again
    /// between two looks from another green thread than before (it resumed
    /// one meanwhile) is forking work (fork-join): its queue is stolen from
    /// at once, as are longer queues. One green thread spawning a few in a
    /// row is a batch being set up, not forking.
    ///
    /// A `busy` thief (one with yielded tasks of its own) never gives way:
    /// its green threads keep the CPU anyway.
    fn worth_stealing(&self, victim: usize, busy: bool) -> bool {
        let victim_shared = &self.shared.workers[victim];
        let queued = victim_shared.stealer.len();
        let mut queue_seen = self.queue_seen.borrow_mut();
        match queued {
            0 => {
                queue_seen[victim] = None;
                false
            }
            1..=SHORT_QUEUE if victim_shared.offered.load(Ordering::Relaxed) => true,
            1..=SHORT_QUEUE => {
                let counters = &victim_shared.counters;
                let look = Look {
                    queued,
                    now: Instant::now(),
                    spawned: counters.spawned.load(Ordering::Relaxed),
                    spawn_turn: counters.spawn_turn.load(Ordering::Relaxed),
                    turn: counters.resumes.load(Ordering::Relaxed),
                };
                match QueueSeen::judge(&mut queue_seen[victim], look) {
                    Verdict::Steal => true,
                    Verdict::Wait => false,
                    Verdict::GiveWay => {
                        if !busy {
                            std::thread::sleep(GIVE_WAY);
                        }
                        false
                    }
                    Verdict::FirstLook => {
                        let waiting = &victim_shared.thief_waiting;
                        if !waiting.load(Ordering::Relaxed) {
                            waiting.store(true, Ordering::Relaxed);
                        }
                        false
                    }
                }
            }
            _ => true,
        }
    }

    fn random(&self) -> u64 {
        // xorshift64*: enough to spread victims.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn counters(&self) -> &Counters {
        &self.me().counters
    }

    /// Fires due timers; woken tasks join the local queue. One entry at a
    /// time, with no borrow held between them: a stale entry may hold the
    /// last reference to a finished task, whose output's destructor may
    /// wake green threads into this worker's queues.
    fn fire_timers(&self) -> usize {
        if self.timers.borrow().is_empty() {
            return 0;
        }
        let now = Instant::now();
        let mut woken = 0;
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            let Some((task, seq)) = due else {
                return woken;
            };
            if task.header().state.fire_timer(seq) {
                // At the front of the local queue, the earliest deadline
                // first: a timer that came due runs next, not behind every
                // green thread queued meanwhile (with 10,000 busy sockets
                // that queue holds thousands, and a 10 ms ticker woke
                // 25-70 ms late behind them; Go's timers go to `runnext`).
                self.local.borrow_mut().insert(woken, Runnable::new(task));
                woken += 1;
            }
            // A stale entry's reference is dropped here, no borrow held.
        }
    }

    /// Looks (g) and (h): timers, stealing, spinning, sleeping. Returns a task,
    /// or `None` after a park (the caller loops).
    fn find_work_or_park(&self) -> Option<Runnable> {
        if self.shared.is_shutting_down() {
            self.cancel_starved();
            self.retry_deferred();
        } else {
            self.retry_starved();
        }
        // With sockets registered, a worker's sleep may be in the poller,
        // which readiness ends at once: spinning only takes the CPU from the
        // green threads and the peer processes that produce that readiness
        // (see `IO_SPIN`).
        // A green thread of ours parked in a `blocking` call is the
        // exception: the call most often returns within microseconds (a
        // file read), and a sleep in the poller would make its return pay
        // for the poller's wake-up (measured: one green thread reading a
        // file in a loop beside a listening socket, 5 interleaved runs,
        // 2.8-3.8 µs a call with the cap, 1.7-3.1 without). The spin still
        // looks at the poller at every turn, so readiness does not wait
        // for it.
        let now = Instant::now();
        let calls_out = self.counters().calls_out.load(Ordering::Relaxed) > 0;
        let spin = match self.shared.used_driver() {
            _ if self.crowded(now) => self.spin.get().min(IO_SPIN),
            Some(_) if calls_out => self.spin.get().min(SPIN),
            Some(_) => self.spin.get().min(IO_SPIN),
            None => self.spin.get(),
        };
        let mut spin_until = now + spin;
        let inbox = &self.me().mailbox.inbox;
        loop {
            // Readiness that came in while we spin wakes its green threads
            // now, not when a worker next parks (Go's findrunnable polls
            // the netpoller the same way): a spin grows to MAX_SPIN, and
            // without this a socket round trip could wait for it.
            self.poll_io_now();
            // Fired timers wake tasks into the local queue; so may the
            // destructors that run when a stale timer, a cancelled task or
            // an unwound one lets go of a finished task's output.
            self.fire_timers();
            self.wake_answered();
            if self.has_resumable() {
                self.stop_searching();
                self.found_work();
                return self.next_task();
            }
            if let Some(task) = self.pop_inbox() {
                self.stop_searching();
                self.found_work();
                return Some(task);
            }
            if self.searching.get() || self.shared.idle.transition_worker_to_searching() {
                self.searching.set(true);
                if let Some(task) = self.steal() {
                    self.stop_searching();
                    self.found_work();
                    return Some(task);
                }
            }
            let looked = Instant::now();
            if self.shared.is_stopped() || looked >= spin_until {
                if self.woken_early.replace(false) {
                    // Woken for nothing (a speculative wake to search, or
                    // work another worker took first): spinning longer
                    // would only burn the CPU of a worker with no traffic.
                    self.spin.set((self.spin.get() / 2).max(SPIN));
                }
                break;
            }
            // Watch the inbox closely between the costlier looks (a steal
            // reads the other workers' deques, a clock read is ~25 ns): a
            // green thread woken by another worker is picked up within
            // nanoseconds. PAUSE, never sched_yield: on a busy machine a
            // yield hands the CPU away for a whole timeslice (Go's spinning
            // Ms use procyield the same way).
            for _ in 0..INBOX_POLLS {
                if !inbox.is_empty() || self.any_answered() {
                    break;
                }
                for _ in 0..IDLE_PAUSES {
                    std::hint::spin_loop();
                }
            }
            let now = Instant::now();
            if now.duration_since(looked) > PREEMPTED {
                // Crowded: spin no more than the cap from here, but look
                // once more first (a park straight from here, skipping the
                // looks above, left a worker's queued tasks unstolen while
                // the workers that could take them slept).
                self.crowded_until.set(Some(now + CROWDED));
                spin_until = spin_until.min(now + IO_SPIN);
            }
        }
        self.park();
        None
    }

    /// Work came after a park that another thread ended early: a longer
    /// spin would have caught it without the sleep and the wake-up.
    fn found_work(&self) {
        if self.woken_early.replace(false) {
            self.spin.set((self.spin.get() * 2).min(MAX_SPIN));
        }
    }

    /// Whether this worker saw its OS thread preempted while it spun, less
    /// than [`CROWDED`] before `now` (which ends the spell when it is
    /// over). Meanwhile it spins idle no more than [`IO_SPIN`] and its
    /// green threads' waits do not spin: with more runnable threads than
    /// CPUs a spinning worker keeps its CPU from the thread whose work would
    /// end the spin (the other worker's, preempted), until the kernel's
    /// time slice ends, milliseconds. Measured, a ping-pong between green
    /// threads on two workers beside two busy processes: 202 µs a round
    /// trip spinning as ever; and two such programs at once, each over
    /// 400 µs. A worker that sleeps instead hands its CPU over at once.
    fn crowded(&self, now: Instant) -> bool {
        match self.crowded_until.get() {
            Some(until) if now < until => true,
            Some(_) => {
                self.crowded_until.set(None);
                false
            }
            None => false,
        }
    }

    /// Leaves the searching state; the last searcher to find work wakes
    /// another worker (idle protocol step 3).
    fn stop_searching(&self) {
        if self.searching.replace(false) && self.shared.idle.transition_worker_from_searching() {
            self.shared.notify_parked();
        }
    }

    fn park(&self) {
        // Nobody would wake a watched green thread while this worker
        // sleeps: each goes back to being woken by its claimer first.
        if self.end_watches() {
            return;
        }
        let idle = &self.shared.idle;
        let was_searching = self.searching.replace(false);
        if idle.transition_worker_to_parked(self.index, was_searching)
            && self.shared.has_stealable_work()
        {
            // Idle protocol step 4: we were the last searcher and work
            // arrived meanwhile.
            if !idle.unpark_worker_by_id(self.index) {
                self.searching.set(true);
            }
            return;
        }
        if self.shared.is_stopped() || !self.me().mailbox.inbox.is_empty() {
            if !idle.unpark_worker_by_id(self.index) {
                self.searching.set(true);
            }
            return;
        }
        add_own(&self.counters().parks, 1);
        let deadline = self.timers.borrow().next_deadline();
        let parked_at = Instant::now();
        // Wakers unpark this thread only while this flag is up (see
        // `Shared::push_to_inbox`); the fence pairs with theirs, and the
        // inbox is looked at once more after the flag is up.
        let me = &self.me();
        // Sleep in the poller if descriptors are registered and nobody else
        // does (see `io`), else on the futex. A waker that sees `sleeping`
        // sees `poller` too (set first), and knows which to wake.
        let driver = self.shared.used_driver();
        let poller = driver.and_then(|d| d.try_poll());
        if let (Some(driver), Some(_)) = (driver, &poller) {
            driver.poller.store(self.index, Ordering::SeqCst);
        }
        me.mailbox.sleeping.store(true, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        let inbox_empty = me.mailbox.inbox.is_empty();
        match poller {
            Some(poller) => {
                // A worker whose sleep ends with readiness for the other
                // worker's green threads sleeps in the poller again next
                // time: leaving it to the other (which may do the same)
                // left nobody polling but the stall monitor's backstop,
                // 25-50 ms later.
                self.poll_with(poller, inbox_empty, deadline);
                if let Some(driver) = driver {
                    // Only if still ours: `poll` let go of the poller, and
                    // another worker may sleep in it already, published
                    // there. Overwriting that would send its wake-ups to
                    // its futex while it sleeps in epoll_wait.
                    let _ = driver.poller.compare_exchange(
                        self.index,
                        crate::io::NO_POLLER,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
            }
            None if inbox_empty => match deadline {
                Some(d) => self.parker.park_deadline(d),
                None => self.parker.park(),
            },
            None => {}
        }
        me.mailbox.sleeping.store(false, Ordering::Relaxed);
        let woke = Instant::now();
        // A park ended by this worker's own timer says nothing about
        // traffic: spinning through it would have burnt the whole sleep
        // (a green thread sleeping 100 µs in a loop kept both workers
        // spinning, 1.7 cores). One ended early grows the spin if the
        // wake-up brings work (`found_work`), and halves it if not.
        let by_timer = deadline.is_some_and(|d| woke >= d);
        if woke.duration_since(parked_at) >= MAX_SPIN {
            self.spin.set(SPIN);
            self.woken_early.set(false);
        } else {
            self.woken_early.set(!by_timer);
        }
        if !idle.unpark_worker_by_id(self.index) {
            // A notifier woke us and counted us as a searcher.
            self.searching.set(true);
        }
    }

    /// Takes the poller's events without blocking, if descriptors are
    /// registered and nobody else polls or sleeps in the poller (see `io`):
    /// a busy worker's share of the polling.
    fn poll_io_now(&self) {
        if let Some(driver) = self.shared.used_driver() {
            if driver.poller.load(Ordering::Relaxed) == crate::io::NO_POLLER {
                if let Some(poller) = driver.try_poll() {
                    self.poll_with(poller, false, None);
                }
            }
        }
    }

    /// Polls with `poller` (see `io::Poller::poll`), the green threads it
    /// wakes here queued in order (see `schedule_woken`).
    fn poll_with(&self, poller: crate::io::Poller<'_>, block: bool, deadline: Option<Instant>) {
        self.polling.set(true);
        poller.poll(block, deadline);
        self.polling.set(false);
    }

    /// Whether the running green thread, about to park, may spin for its
    /// unpark instead (see `park::spin_for_unpark`): nothing else could
    /// run here now (no resumable, yielded or unstarted task, nothing in
    /// the inbox), no sockets are registered, whose readiness only a
    /// worker's own look at the poller would see, and the worker is not
    /// crowded (see `crowded`).
    pub(crate) fn may_spin_for_unpark(&self) -> bool {
        !self.wake_answered()
            && self.crowded_until.get().is_none()
            && !self.has_resumable()
            && self.yielded.borrow().is_empty()
            && self.deque.is_empty()
            && self.me().mailbox.inbox.is_empty()
            && self.shared.used_driver().is_none()
    }

    /// Watches `state`, the packet of the running green thread's plain wait
    /// (`wait::block`), while that green thread parks: true if taken on.
    ///
    /// A plain waiter whose spin for its packet's completion ended
    /// unanswered, or whose latest answered wait was answered from another
    /// worker (`Header::partner_away`), parks with its packet left
    /// SPINNING, and its worker watches the packet: the claimer completes
    /// it by a compare-exchange and wakes nobody ("Watched waits" in
    /// `wait`), and this worker wakes the green thread itself where it
    /// looks at its inbox, spins idle, or spins in another green thread's
    /// wait. A wake
    /// from another worker (a compare-exchange on the task's state, a push
    /// to this worker's inbox, both lines pulled across) becomes a load of
    /// a line the claimer wrote once. Several green threads of one worker
    /// waiting on partners elsewhere (two producers feeding a consumer on
    /// another worker) otherwise take turns being the parked one, and every
    /// message pays a cross-worker wake. Before this worker sleeps, every
    /// watch ends (`end_watches`). Not with full migration: the green
    /// thread could run elsewhere next, and the entry must be taken out by
    /// the worker that holds it.
    pub(crate) fn watch(&self, state: &AtomicU8, unparker: ptr::NonNull<Option<Unparker>>) -> bool {
        if !self.may_watch() {
            return false;
        }
        let mut watched = self.watched.borrow_mut();
        watched.push(Watched {
            state: ptr::NonNull::from(state),
            unparker,
        });
        self.watched_len.set(watched.len());
        true
    }

    /// Whether [`watch`](Self::watch) would take a wait on: a runtime of
    /// more than one worker (on one, the claimer runs here and wakes
    /// cheaply), without full migration, with a free entry.
    #[inline]
    pub(crate) fn may_watch(&self) -> bool {
        self.watched_len.get() < MAX_WATCHED
            && self.shared.workers.len() > 1
            && !self.shared.migrate
    }

    /// Stops watching `state` if this worker watches it: true if it did.
    /// Called by the green thread that waits on it once it runs again
    /// (woken by this worker or otherwise), before its packet can go away,
    /// and by a claimer on this worker, which then completes the packet
    /// and wakes the green thread itself, the cheap way on one worker.
    pub(crate) fn unwatch(&self, state: &AtomicU8) -> bool {
        if self.watched_len.get() == 0 {
            return false;
        }
        let mut watched = self.watched.borrow_mut();
        let Some(i) = watched
            .iter()
            .position(|w| ptr::eq(w.state.as_ptr(), state))
        else {
            return false;
        };
        watched.swap_remove(i);
        self.watched_len.set(watched.len());
        true
    }

    /// Whether a watched packet was completed.
    fn any_answered(&self) -> bool {
        self.watched_len.get() != 0 && self.watched.borrow().iter().any(Watched::answered)
    }

    /// Wakes the watched green threads whose packets were completed, into
    /// this worker's queues; true if it woke any.
    #[inline]
    pub(crate) fn wake_answered(&self) -> bool {
        self.watched_len.get() != 0 && self.wake_answered_slow()
    }

    /// `wake_answered`, where something is watched: out of line, so that
    /// the paths that look on every pick stay short.
    #[inline(never)]
    fn wake_answered_slow(&self) -> bool {
        let mut woke = false;
        while self.watched_len.get() != 0 {
            let mut watched = self.watched.borrow_mut();
            let Some(i) = watched.iter().position(Watched::answered) else {
                break;
            };
            let entry = watched.swap_remove(i);
            self.watched_len.set(watched.len());
            drop(watched);
            // No borrow held: the wake pushes to this worker's queues.
            entry.wake();
            woke = true;
        }
        woke
    }

    /// Ends every watch: each packet still SPINNING goes to WAITING, and
    /// its claimer wakes its green thread as for any parked waiter; one
    /// that was completed meanwhile has its green thread woken here. True
    /// if any was woken.
    fn end_watches(&self) -> bool {
        let mut woke = false;
        loop {
            let entry = self.watched.borrow_mut().pop();
            let Some(entry) = entry else {
                break;
            };
            self.watched_len.set(self.watched_len.get() - 1);
            if !entry.end() {
                entry.wake();
                woke = true;
            }
        }
        woke
    }

    /// Whether a task waits in the run-next slot or the local queue.
    pub(crate) fn has_resumable(&self) -> bool {
        let run_next = self.run_next.take();
        let some = run_next.is_some();
        self.run_next.set(run_next);
        some || !self.local.borrow().is_empty()
    }

    /// Whether this worker has nothing to run but the task it runs: every
    /// queue empty, no timer set (one could be due), no shutdown going on.
    fn alone(&self) -> bool {
        if self.wake_answered() {
            return false;
        }
        let run_next = self.run_next.take();
        let none_next = run_next.is_none();
        self.run_next.set(run_next);
        none_next
            && self.local.borrow().is_empty()
            && self.yielded.borrow().is_empty()
            && self.deque.is_empty()
            && self.me().mailbox.inbox.is_empty()
            && self.shared.injector.is_empty()
            && self.timers.borrow().is_empty()
            && !self.shared.is_shutting_down()
    }

    /// Puts a task this worker woke into the run-next slot; the task that
    /// was there goes to the back of the local queue (or, with migration,
    /// to the stealable deque).
    #[inline(always)]
    fn push_run_next(&self, task: Runnable) {
        if let Some(prev) = self.run_next.replace(Some(task)) {
            if self.shared.migrate && !prev.header().is_pinned() {
                self.deque.push(prev);
                self.shared.notify_parked();
            } else {
                self.local.borrow_mut().push_back(prev);
            }
        }
    }

    /// Counts a spawn by a green thread of this worker (before the task is
    /// visible anywhere, so that `stats().spawned` never lags `tasks()`).
    pub(crate) fn count_spawn(&self) {
        let counters = self.counters();
        add_own(&counters.spawned, 1);
        let turn = counters.resumes.load(Ordering::Relaxed);
        counters.spawn_turn.store(turn, Ordering::Relaxed);
    }

    /// A task spawned by a green thread of this worker after the runtime
    /// stopped (a leaked green thread on an abandoned worker, still
    /// running: see `shutdown`, step 4): dropped unrun, as any spawn during
    /// the shutdown is, its join returning `Err`. The caller holds no
    /// borrow: dropping the closure runs user code.
    pub(crate) fn drop_spawned(&self, task: Runnable) {
        self.count_spawn();
        task.header().state.transition_to_running();
        task.cancel(Box::new(UNWOUND));
        self.complete(task);
    }

    /// Queues a new, unstarted task spawned by a green thread of this
    /// worker, where idle workers may steal it, and wakes one if needed.
    pub(crate) fn push_spawned(&self, task: Runnable) {
        self.deque.push(task);
        self.shared.notify_parked();
    }

    /// Runs `task` until it parks, yields or finishes; at shutdown, drops
    /// it unrun or unwinds it (see `shutdown`).
    #[inline(always)]
    fn run(&self, task: Runnable) {
        let header = task.header();
        let before = header.state.transition_to_running();
        let task = if !before.is_started() {
            match self.start_or_send_home(task) {
                Some(task) => task,
                None => return,
            }
        } else if self.shared.is_shutting_down() {
            self.at_shutdown(task);
            return;
        } else {
            if self.shared.migrate && !header.is_pinned() {
                header.home.store(self.index, Ordering::Relaxed);
            }
            task
        };
        self.resume_until_it_stops(task);
    }

    /// `run`'s first look at an unstarted task (RUNNING, its token held):
    /// dropped unrun at shutdown, sent to the worker it is pinned to, or
    /// given a stack. `Some` if it is to be resumed here now.
    fn start_or_send_home(&self, task: Runnable) -> Option<Runnable> {
        let header = task.header();
        if self.shared.is_shutting_down() {
            // The closure's destructor runs here, on this OS thread: if it
            // blocks for good, the shutdown counts this green thread as
            // stuck with the worker (see `os_park`).
            let watch = &self.me().watch;
            watch.dropping.store(header.id, Ordering::SeqCst);
            task.cancel(Box::new(UNWOUND));
            watch.dropping.store(0, Ordering::SeqCst);
            self.complete(task);
            return None;
        }
        let pinned = header.home();
        if pinned != usize::MAX && pinned != self.index {
            // Spawned `on_worker(pinned)` and taken here (a starved task
            // retried by another worker): send it home.
            header.state.transition_to_scheduled();
            self.shared.push_to_inbox(pinned, task);
            return None;
        }
        // Known from now on (tasks() shows a Running task's worker).
        header.set_home(self.index);
        self.start(task)
    }

    /// `run` at shutdown, for a started task (RUNNING, its token held).
    #[cold]
    fn at_shutdown(&self, task: Runnable) {
        let header = task.header();
        if header.abandoned.load(Ordering::SeqCst) {
            // Leaked by the shutdown (see `shutdown`, step 4): never run
            // again, whatever may still wake it.
            return;
        }
        if crate::scope::has_live_scoped_threads(header)
            || header.blocking_calls.load(Ordering::SeqCst) != 0
        {
            // Its scoped green threads, or its call on the blocking pool,
            // borrow from its stack: they are unwound (or return) first;
            // this one waits, run token held, until they are done
            // (`retry_deferred`), or forever if they never are (see
            // `shutdown`, step 4).
            header.state.transition_to_scheduled();
            header.deferred.store(true, Ordering::SeqCst);
            self.deferred.borrow_mut().push_back(task);
            return;
        }
        self.unwind(task);
    }

    /// Resumes a started task (RUNNING, its token held) until it parks,
    /// yields or finishes, and acts on what it asked for: the hot path of
    /// every hand-off.
    #[inline(always)]
    fn resume_until_it_stops(&self, task: Runnable) {
        let header = task.header();
        // SAFETY: we hold the run token: the task came out of a queue and is
        // RUNNING; the borrow ends before the token is given up below.
        let coro = unsafe { header.coro() }
            .as_mut()
            .expect("a started task has a coroutine");
        let mut renotified = 0;
        loop {
            let resumed = self.resume(&task, coro);
            match resumed {
                Resumed::Finished(stack) => {
                    self.end_budget_yield();
                    // SAFETY: still our run token; the coroutine is finished.
                    unsafe { *header.coro() = None };
                    self.put_stack(stack);
                    self.complete(task);
                    return;
                }
                Resumed::Suspended(Request::Yield { budget }) => {
                    add_own(&self.counters().yields, 1);
                    if self.alone() {
                        // Nobody here to let run: straight back, without the
                        // trip through the queues (and the two state
                        // changes it takes).
                        continue;
                    }
                    if budget && self.keep_for_thief(header) {
                        continue;
                    }
                    self.end_budget_yield();
                    header.state.transition_to_scheduled();
                    self.yielded.borrow_mut().push_back(task);
                    let left = self.yields_to_look.get();
                    if left == 0 {
                        self.look_beside_yielders();
                    } else {
                        self.yields_to_look.set(left - 1);
                    }
                    return;
                }
                Resumed::Suspended(Request::Park { deadline }) => {
                    self.end_budget_yield();
                    match header.state.commit_park() {
                        Ok(seq) => {
                            // Parked: the token is given up.
                            let task = task.into_ref();
                            let header = task.header();
                            if self.shared.is_shutting_down() {
                                // Parked while the runtime shuts down: take it
                                // back at once (as its timer would) so it is
                                // unwound instead of left parked.
                                if header.state.fire_timer(seq) {
                                    self.local.borrow_mut().push_back(Runnable::new(task));
                                }
                            } else if let Some(deadline) = deadline {
                                header.timed.store(true, Ordering::Relaxed);
                                let stale = self.timers.borrow_mut().insert(deadline, seq, task);
                                drop(stale); // after the borrow: may run user code
                            }
                            return;
                        }
                        Err(()) if renotified < MAX_RENOTIFIED => renotified += 1,
                        Err(()) => {
                            header.state.transition_to_scheduled();
                            self.local.borrow_mut().push_back(task);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Once per round of this worker's yielded tasks (as many yields as
    /// were queued at the last look, at least [`MIN_YIELDED_ROUND`]), a
    /// look at the other workers' unstarted tasks: a steal as an idle
    /// worker's, short queues' grace and all, of this worker's fair share
    /// (see `fair_share`), into its own queue, where the next pick finds
    /// them ahead of the yielded tasks.
    ///
    /// Without it a worker whose green threads yield never looked at the
    /// other workers' queues again: it always had a yielded task to run.
    /// A green thread that spawned a thousand that loop on `yield_now` woke
    /// the other worker, which stole one batch (32), started them, and ran
    /// those for good, while the spawner's worker started the other 968:
    /// 32/968 in 8 of 8 runs. Go and tokio move yielded tasks to whichever
    /// worker is free; grove's started green threads never move, so the
    /// balance has to be made before they start.
    ///
    /// For the same reason a worker with yielded tasks waiting takes
    /// tasks spawned from outside the runtime (the injector) only here, a
    /// share as `pop_injector` takes, and at the fairness tick; an idle
    /// worker takes them at once. It took one at every pick before, ahead
    /// of its yielded tasks, and the worker already running started most of
    /// a thousand yielders that an OS thread spawned (75–100%, 15
    /// repetitions) while the other was waking.
    #[cold]
    #[inline(never)]
    fn look_beside_yielders(&self) {
        let queued = self.yielded.borrow().len();
        self.me().yielded.store(queued, Ordering::Relaxed);
        self.yields_to_look.set(queued.max(MIN_YIELDED_ROUND) - 1);
        if self.shared.workers.len() > 1 && !self.shared.is_shutting_down() {
            self.steal_into_deque(queued);
        }
        let injector = &self.shared.injector;
        if !injector.is_empty() {
            let limit = injector.len() / self.shared.workers.len() + 1;
            let _ = injector.steal_batch_with_limit(&self.deque, limit);
        }
    }

    /// A green thread spent its budget and only unstarted tasks wait here:
    /// whether to resume it again at once, leaving them to a thief.
    ///
    /// Two green threads that a green thread spawns together and that
    /// yield only through their budget (loops of polls, CPU-bound work
    /// with a channel operation now and then) would otherwise both start
    /// here: the first spends its budget within microseconds, the worker
    /// starts the second, long before an idle thief's grace for a short
    /// queue (see `worth_stealing`) ends, and started green threads never
    /// move. They would share one worker for good while another idles.
    /// The grace is for partners that block on each other; a green thread
    /// that yields for its budget twice in a row, with no park between and
    /// nothing but unstarted tasks behind it, is not waiting for them. So:
    /// at the first such yield it is resumed once more (a producer
    /// streaming into a buffer blocks in that turn and its partners start
    /// here, as before); at the second its queue is offered to thieves
    /// without the grace (`WorkerShared::offered`), a parked worker is
    /// woken if nobody searches, and it goes on running for up to
    /// [`OFFER`]. Whatever no thief took by then starts here.
    /// Only while some worker is idle: with every worker busy a yield
    /// lets the queued tasks run, as ever.
    #[cold]
    #[inline(never)]
    fn keep_for_thief(&self, header: &Header) -> bool {
        if self.deque.is_empty()
            || self.has_resumable()
            || !self.yielded.borrow().is_empty()
            || !self.me().mailbox.inbox.is_empty()
            || self.any_answered()
            || !self.shared.idle.has_idle()
            || self.shared.is_shutting_down()
        {
            return false;
        }
        let resumes = self.counters().resumes.load(Ordering::Relaxed);
        let again = match self.budget_yield.get() {
            // Its second budget yield in a row: nothing ran in between.
            Some(prev) if prev.task == header.id && prev.resumes + 1 == resumes => {
                let now = Instant::now();
                match prev.offered {
                    Some(since) if now.duration_since(since) >= OFFER => return false,
                    Some(since) => Some(since),
                    None => {
                        self.me().offered.store(true, Ordering::Relaxed);
                        self.shared.notify_parked();
                        Some(now)
                    }
                }
            }
            _ => None,
        };
        self.budget_yield.set(Some(BudgetYield {
            task: header.id,
            resumes,
            offered: again,
        }));
        true
    }

    /// The green thread of `budget_yield` parked, finished or let the
    /// queued tasks run: its queue gets the grace again.
    #[inline(always)]
    fn end_budget_yield(&self) {
        if self.budget_yield.get().is_some() {
            self.end_budget_yield_slow();
        }
    }

    #[cold]
    fn end_budget_yield_slow(&self) {
        self.budget_yield.set(None);
        self.me().offered.store(false, Ordering::Relaxed);
    }

    #[inline(always)]
    fn resume(&self, task: &Runnable, coro: &mut Coro) -> Resumed {
        let header = task.header();
        header.timed.store(false, Ordering::Relaxed);
        let watch = &self.me().watch;
        watch.running.store(header.id, Ordering::Relaxed);
        CURRENT.with(|c| c.set(&**task));
        signal::enter(coro.running(header));
        BUDGET_LEFT.with(|b| b.set(BUDGET));
        add_own(&self.counters().resumes, 1);
        let resumed = coro.resume();
        watch.running.store(0, Ordering::Relaxed);
        signal::leave();
        CURRENT.with(|c| c.set(ptr::null()));
        resumed
    }

    /// Gives an unstarted task its stack and coroutine. `None` if it could
    /// not start (it was requeued, or failed).
    fn start(&self, task: Runnable) -> Option<Runnable> {
        let header = task.header();
        match self.take_stack(header.stack_size) {
            Ok(stack) => {
                add_own(&self.counters().stacks_taken, 1);
                header.set_home(self.index);
                header.state.mark_started();
                let coro = Coro::new(stack, &task);
                // SAFETY: run token held (the task is RUNNING, taken from a
                // queue by us).
                unsafe { *header.coro() = Some(coro) };
                Some(task)
            }
            Err(NoStack::Exhausted) => {
                // Wait for a stack to be freed (see `put_stack`), and ask
                // the other workers for the stacks idle in their caches.
                header.state.transition_to_scheduled();
                self.shared.starved.push(task);
                if !self.shared.stacks_wanted.swap(true, Ordering::SeqCst) {
                    for i in 0..self.shared.workers.len() {
                        self.shared.wake_worker(i);
                    }
                }
                None
            }
            Err(NoStack::Failed(err)) => {
                task.cancel(Box::new(format!("green thread could not start: {err}")));
                self.complete(task);
                None
            }
        }
    }

    /// `run`, out of line, for the shutdown's slow paths.
    #[inline(never)]
    fn run_at_shutdown(&self, task: Runnable) {
        self.run(task);
    }

    /// At shutdown, when idle: the deferred scope owners whose scoped
    /// green threads are all done now are unwound.
    fn retry_deferred(&self) {
        let waiting = self.deferred.borrow().len();
        for _ in 0..waiting {
            let Some(task) = self.deferred.borrow_mut().pop_front() else {
                return;
            };
            task.header().deferred.store(false, Ordering::SeqCst);
            // Looks again and defers it again if it must still wait.
            self.run_at_shutdown(task);
        }
    }

    /// Unwinds a started task at shutdown, on this (its own) worker.
    fn unwind(&self, task: Runnable) {
        let header = task.header();
        header.unwinding.store(true, Ordering::Relaxed);
        // SAFETY: run token held: the task was taken from a queue.
        let coro = unsafe { header.coro() }.take();
        if let Some(mut coro) = coro {
            CURRENT.with(|c| c.set(&*task));
            signal::enter(coro.running(header));
            let unwound = panic::catch_unwind(AssertUnwindSafe(|| coro.force_unwind()));
            signal::leave();
            CURRENT.with(|c| c.set(ptr::null()));
            match unwound {
                Ok(Some(stack)) => self.put_stack(stack),
                Ok(None) => {}
                Err(payload) => task.mark_unwound(payload),
            }
        }
        task.mark_unwound(Box::new(UNWOUND));
        self.complete(task);
    }

    fn complete(&self, task: Runnable) {
        let header = task.header();
        // Counted before anyone can see it done: a joiner that returns
        // finds `stats().live` already down.
        add_own(&self.counters().completed, 1);
        let before = header.state.complete();
        if before.has_join_waiter() {
            header.wake_joiner();
        }
        // With the task's reference to itself: a detached task is freed
        // here, its output dropped (a destructor may wake a green thread
        // into this worker's queues, which the run loop looks at next).
        task.into_ref().complete();
        if self.shared.is_shutting_down() {
            self.shared.wake_shutdown_waiter();
        }
    }

    fn take_stack(&self, size: usize) -> Result<Stack, NoStack> {
        let pool = &self.shared.stacks;
        if size == pool.size() {
            let mut cache = self.stacks.borrow_mut();
            if let Some(stack) = cache.pop() {
                self.counters()
                    .cached_stacks
                    .store(cache.len() as u64, Ordering::Relaxed);
                return Ok(stack);
            }
        }
        pool.get(size)
    }

    fn put_stack(&self, stack: Stack) {
        add_own(&self.counters().stacks_returned, 1);
        let pool = &self.shared.stacks;
        if stack.size() != pool.size() {
            pool.unmap(stack);
        } else if pool.under_pressure() || self.shared.stacks_wanted.load(Ordering::Relaxed) {
            // Short of stacks: keep none to ourselves.
            pool.put_many([stack]);
            self.flush_stack_cache();
        } else {
            let mut cache = self.stacks.borrow_mut();
            cache.push(stack);
            if cache.len() > WORKER_CACHE {
                // The oldest half is the coldest: it goes to the global pool.
                let cold: Vec<Stack> = cache.drain(..WORKER_CACHE / 2).collect();
                pool.put_many(cold);
            }
            self.counters()
                .cached_stacks
                .store(cache.len() as u64, Ordering::Relaxed);
        }
        if !self.shared.starved.is_empty() {
            if let Steal::Success(task) = self.shared.starved.steal() {
                self.deque.push(task);
            }
        }
    }

    /// A task that found no stack gets another try when this worker idles,
    /// if a stack could be had now (otherwise it waits for `put_stack`).
    fn retry_starved(&self) {
        if self.shared.stacks_wanted.load(Ordering::Relaxed) {
            self.flush_stack_cache();
        }
        if self.shared.starved.is_empty() {
            self.shared.stacks_wanted.store(false, Ordering::Relaxed);
            return;
        }
        if self.shared.stacks.could_provide() {
            if let Steal::Success(task) = self.shared.starved.steal() {
                self.deque.push(task);
            }
        }
    }

    /// Hands every stack in this worker's cache to the global pool.
    fn flush_stack_cache(&self) {
        let stacks: Vec<Stack> = self.stacks.borrow_mut().drain(..).collect();
        self.counters().cached_stacks.store(0, Ordering::Relaxed);
        if !stacks.is_empty() {
            self.shared.stacks.put_many(stacks);
        }
    }

    fn cancel_starved(&self) {
        while let Steal::Success(task) = self.shared.starved.steal() {
            task.header().state.transition_to_running();
            task.cancel(Box::new(UNWOUND));
            self.complete(task);
        }
    }

    /// At thread exit: stacks back to the pool, timers and queued task
    /// references dropped, each after its queue's borrow is released (the
    /// last reference to a finished task runs its output's destructor).
    fn release_everything(&self) {
        let timers = self.timers.borrow_mut().take_all();
        drop(timers);
        let watched = std::mem::take(&mut *self.watched.borrow_mut());
        self.watched_len.set(0);
        drop(watched);
        let stacks: Vec<Stack> = self.stacks.borrow_mut().drain(..).collect();
        self.counters().cached_stacks.store(0, Ordering::Relaxed);
        self.shared.stacks.put_many(stacks);
        while self.deque.pop().is_some() {}
        for queue in [&self.local, &self.yielded, &self.deferred] {
            loop {
                let tasks = std::mem::take(&mut *queue.borrow_mut());
                if tasks.is_empty() {
                    break;
                }
                drop(tasks);
            }
        }
        self.run_next.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A look at a victim `at` µs after `t0`.
    fn look(t0: Instant, at: u64, queued: usize, spawned: u64, spawn_turn: u64, turn: u64) -> Look {
        Look {
            queued,
            now: t0 + Duration::from_micros(at),
            spawned,
            spawn_turn,
            turn,
        }
    }

    /// The verdicts of a thief's looks at one victim, each look given as
    /// (µs after `t0`, queued, spawned, spawn_turn, turn).
    fn judge_all(
        t0: Instant,
        seen: &mut Option<QueueSeen>,
        looks: &[(u64, usize, u64, u64, u64)],
    ) -> Vec<Verdict> {
        looks
            .iter()
            .map(|&(at, q, spawned, spawn_turn, turn)| {
                QueueSeen::judge(seen, look(t0, at, q, spawned, spawn_turn, turn))
            })
            .collect()
    }

    #[test]
    fn a_short_queue_is_left_to_its_owner_for_the_grace() {
        let t0 = Instant::now();
        let mut seen = None;
        // Looked at every 5 µs, unchanged, while the victim runs other
        // green threads (its turn moves on): wait until the grace is over.
        let grace = STEAL_GRACE.as_micros() as u64;
        let looks: Vec<_> = (0..=grace / 5).map(|i| (i * 5, 3, 10, 7, 7 + i)).collect();
        let verdicts = judge_all(t0, &mut seen, &looks);
        assert_eq!(verdicts[0], Verdict::FirstLook);
        assert!(
            verdicts[1..verdicts.len() - 1]
                .iter()
                .all(|&v| v == Verdict::Wait),
            "{verdicts:?}"
        );
        assert_eq!(verdicts[verdicts.len() - 1], Verdict::Steal);
    }

    /// A victim that resumed nothing during the whole grace may be kept off
    /// its CPU by this very thief: the thief gives way once, and steals at
    /// its next look if the victim still resumed nothing.
    #[test]
    fn a_thief_gives_way_once_to_a_victim_that_did_not_run() {
        let t0 = Instant::now();
        let mut seen = None;
        let grace = STEAL_GRACE.as_micros() as u64;
        let mut looks: Vec<_> = (0..=grace / 5).map(|i| (i * 5, 1, 10, 7, 7)).collect();
        looks.push((grace + 25, 1, 10, 7, 7));
        let verdicts = judge_all(t0, &mut seen, &looks);
        let n = verdicts.len();
        assert_eq!(verdicts[0], Verdict::FirstLook);
        assert!(
            verdicts[1..n - 2].iter().all(|&v| v == Verdict::Wait),
            "{verdicts:?}"
        );
        assert_eq!(verdicts[n - 2..], [Verdict::GiveWay, Verdict::Steal]);

        // Having given way, the victim ran and started a task: the queue
        // moved, so the grace starts over.
        let mut seen = None;
        let mut looks: Vec<_> = (0..=grace / 5).map(|i| (i * 5, 2, 10, 7, 7)).collect();
        looks.push((grace + 25, 1, 10, 7, 9));
        looks.push((grace + 30, 1, 10, 7, 9));
        let verdicts = judge_all(t0, &mut seen, &looks);
        let n = verdicts.len();
        assert_eq!(
            verdicts[n - 3..],
            [Verdict::GiveWay, Verdict::Wait, Verdict::Wait]
        );
    }

    #[test]
    fn one_green_thread_spawning_a_batch_is_not_forking() {
        let t0 = Instant::now();
        // Turn 7 has spawned 5 when the thief first looks, then 3 more in
        // the same turn, then blocked: its worker started one of them
        // (turn 8), which spawned nothing.
        let looks = [(0, 5, 5, 7, 7), (3, 7, 8, 7, 8)];
        let verdicts = judge_all(t0, &mut None, &looks);
        assert_eq!(verdicts, [Verdict::FirstLook, Verdict::Wait]);
    }

    #[test]
    fn spawns_from_a_later_turn_are_forking() {
        let t0 = Instant::now();
        // A green thread resumed since (turn 9) spawned: steal at once ...
        let looks = [(0, 2, 5, 7, 7), (3, 3, 6, 9, 9)];
        let verdicts = judge_all(t0, &mut None, &looks);
        assert_eq!(verdicts, [Verdict::FirstLook, Verdict::Steal]);
        // ... but not a queue of one (nothing to share yet).
        let looks = [(0, 1, 5, 7, 7), (3, 1, 6, 9, 9)];
        let verdicts = judge_all(t0, &mut None, &looks);
        assert_eq!(verdicts, [Verdict::FirstLook, Verdict::Wait]);
    }

    #[test]
    fn the_grace_counts_from_the_queues_latest_change() {
        let t0 = Instant::now();
        let grace = STEAL_GRACE.as_micros() as u64;
        let mut seen = None;
        // The owner's turn 7 spawns slowly (a first spawn in a process
        // maps memory), then starts them one by one (first stacks).
        let looks = [(3, 5, 7), (4, 6, 7), (3, 6, 8), (2, 6, 9)];
        let mut at = 0;
        for (i, &(queued, spawned, turn)) in looks.iter().enumerate() {
            // Looked at every 5 µs until just before the grace is over.
            let changed = at;
            while at < changed + grace - 5 {
                let verdict = QueueSeen::judge(&mut seen, look(t0, at, queued, spawned, 7, turn));
                let expected = if at == 0 {
                    Verdict::FirstLook
                } else {
                    Verdict::Wait
                };
                assert_eq!(verdict, expected, "look {i} at {at} µs");
                at += 5;
            }
        }
        // Unchanged for the whole grace now.
        let (queued, spawned, turn) = looks[looks.len() - 1];
        at += 5;
        assert_eq!(
            QueueSeen::judge(&mut seen, look(t0, at, queued, spawned, 7, turn)),
            Verdict::Steal
        );
    }

    #[test]
    fn a_victim_that_ran_nothing_since_the_first_look_is_stolen_from_after_a_gap() {
        let t0 = Instant::now();
        let grace = STEAL_GRACE.as_micros() as u64;
        // The thief was preempted (or slept) between its looks; the victim
        // resumed nothing and its queue did not move: steal.
        let looks = [(0, 3, 10, 7, 7), (grace + 1_000, 3, 10, 7, 7)];
        assert_eq!(
            judge_all(t0, &mut None, &looks),
            [Verdict::FirstLook, Verdict::Steal]
        );
        // The same gap, but the victim ran another turn meanwhile, or its
        // queue moved: start over.
        let looks = [(0, 3, 10, 7, 7), (grace + 1_000, 3, 10, 7, 8)];
        assert_eq!(
            judge_all(t0, &mut None, &looks),
            [Verdict::FirstLook, Verdict::FirstLook]
        );
        let looks = [(0, 3, 10, 7, 7), (grace + 1_000, 2, 10, 7, 7)];
        assert_eq!(
            judge_all(t0, &mut None, &looks),
            [Verdict::FirstLook, Verdict::FirstLook]
        );
    }

    #[test]
    fn a_look_from_before_the_thief_stopped_looking_starts_over() {
        let t0 = Instant::now();
        // The thief slept for 30 ms after its first look: that look says
        // nothing about now, neither that the grace is over nor that the
        // victim forked.
        let looks = [
            (0, 3, 10, 7, 7),
            (30_000, 3, 90, 80, 80),
            (30_005, 3, 90, 80, 81),
        ];
        let verdicts = judge_all(t0, &mut None, &looks);
        assert_eq!(
            verdicts,
            [Verdict::FirstLook, Verdict::FirstLook, Verdict::Wait]
        );
    }
}
