//! The stall monitor: notices a green thread that keeps its worker busy
//! without parking or yielding, usually because it made a blocking OS call
//! (`std::thread::sleep`, blocking I/O, a std lock) that stalls every green
//! thread waiting on that worker.
//!
//! Each worker publishes the id of the green thread it is resuming (two
//! relaxed stores per resume, no clock reads); a monitor thread per runtime
//! samples every worker every [`TICK`]. A worker whose running green thread
//! and resume count have not changed for longer than the runtime's stall
//! threshold, if it has one, is reported once per episode on stderr, and
//! `Runtime::tasks()` shows how long that green thread has held its
//! worker. The thread runs without a threshold too, for the backstops
//! below, which a held worker cannot keep itself. There is no
//! preemption: the monitor only tells; the stuck worker's unstarted tasks
//! are stolen by the other workers as usual, and if those have all gone
//! to sleep, the monitor wakes one to do so. It is also the poller's
//! backstop: at each tick it polls for readiness if no worker has since
//! the last (see `io`), and the blocking pool's (see
//! `blocking::Pool::kick_if_stuck`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::sync::Parker;

use crate::scheduler::Shared;

/// How often the monitor samples the workers (a guess: fine enough to see
/// stalls of a few tens of milliseconds, cheap at 40 samples a second).
pub(crate) const TICK: Duration = Duration::from_millis(25);

/// What the monitor knows about one worker.
#[derive(Default)]
pub(crate) struct Watch {
    /// The green thread the worker is resuming now (0: none).
    pub(crate) running: AtomicU64,
    /// Milliseconds the current green thread has held the worker, as the
    /// monitor last measured it (0: not stalled).
    pub(crate) stalled_ms: AtomicU64,
    /// The running green thread blocks the worker's OS thread while
    /// unwinding a panic (see `worker::block_os_thread`).
    pub(crate) blocked_unwinding: AtomicBool,
    /// The worker's OS thread blocks outside any green thread, in a
    /// destructor the worker runs itself at shutdown (of a closure dropped
    /// unrun, of a forced unwind's panic payload nobody joins): see
    /// `worker::os_park`. It holds every green thread homed here, as
    /// `blocked_unwinding` does.
    pub(crate) blocked_outside: AtomicBool,
    /// The green thread whose closure the worker is dropping unrun at
    /// shutdown (0: none), so that a shutdown that gives up on the worker
    /// counts that green thread as stuck with it.
    pub(crate) dropping: AtomicU64,
    /// The deadline of that block, if it has one: it ends by itself then
    /// (a destructor's `sleep` or `recv_timeout`), and a shutdown waits for
    /// it (see `shutdown`, step 4).
    pub(crate) blocked_until: std::sync::Mutex<Option<Instant>>,
}

impl Watch {
    /// The deadline of the block `blocked_unwinding` says, if any.
    pub(crate) fn blocked_until(&self) -> Option<Instant> {
        *self.blocked_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_blocked_until(&self, deadline: Option<Instant>) {
        *self.blocked_until.lock().unwrap_or_else(|e| e.into_inner()) = deadline;
    }
}

/// Samples every worker until the runtime stops.
pub(crate) fn run(shared: Arc<Shared>, threshold: Option<Duration>, parker: Parker) {
    let n = shared.workers.len();
    // Per worker: the running task and resume count last seen, since when,
    // and what this episode reported (nothing, the plain stall, or the
    // blocked unwind, which may come after a plain report: a panic's hook
    // can take the threshold before its destructor blocks).
    let mut last: Vec<(u64, u64, Instant, Reported)> =
        vec![(0, 0, Instant::now(), Reported::Nothing); n];
    let mut polls = u64::MAX;
    let mut calls_done = u64::MAX;
    while !shared.is_stopped() {
        parker.park_timeout(TICK);
        // The poller's backstop (see `io`): readiness no worker is
        // polling for.
        if let Some(driver) = shared.used_driver() {
            driver.poll_if_forgotten(&mut polls);
        }
        // The blocking pool's: calls queued behind threads that have been
        // blocked for a whole tick, whose callers' workers did not kick.
        shared.blocking.kick_if_stuck(&mut calls_done);
        let now = Instant::now();
        let mut stuck_with_work = false;
        for (i, w) in shared.workers.iter().enumerate() {
            let running = w.watch.running.load(Ordering::Relaxed);
            let resumes = w.counters.resumes.load(Ordering::Relaxed);
            let (prev_running, prev_resumes, since, reported) = &mut last[i];
            if running == 0 || running != *prev_running || resumes != *prev_resumes {
                *prev_running = running;
                *prev_resumes = resumes;
                *since = now;
                *reported = Reported::Nothing;
                w.watch.stalled_ms.store(0, Ordering::Relaxed);
                continue;
            }
            // The same green thread since the last sample: its worker
            // cannot start the unstarted tasks queued on it.
            stuck_with_work |= !w.stealer.is_empty();
            let held = now.duration_since(*since);
            if threshold.is_none_or(|threshold| held < threshold) {
                continue;
            }
            w.watch
                .stalled_ms
                .store(held.as_millis() as u64, Ordering::Relaxed);
            let unwinding = w.watch.blocked_unwinding.load(Ordering::Relaxed);
            let due = match *reported {
                Reported::Nothing => true,
                Reported::Plain => unwinding,
                Reported::Unwinding => false,
            };
            if due {
                *reported = report(&shared, i, running, held);
            }
        }
        // The thieves' backstop: unstarted tasks wait on a worker that
        // has run one green thread for a whole tick, and the other workers
        // may all have parked (a thief that gave a short queue its grace,
        // then slept). Wake one to look, if none is searching: the
        // protocol wakes nobody for tasks that are already queued. Seen as
        // two spinning green threads spawned together that ran one after
        // the other instead of side by side, once in 15-20 runs. The same
        // for tasks spawned from outside that no worker has taken from the
        // global queue (the protocol leaves them to a searcher; if that
        // one was lost, nothing else would look).
        if stuck_with_work || !shared.injector.is_empty() {
            shared.notify_parked();
        }
    }
}

/// What a stall episode has reported so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reported {
    Nothing,
    Plain,
    Unwinding,
}

fn report(shared: &Shared, worker: usize, task: u64, held: Duration) -> Reported {
    let info = crate::task::live_tasks(shared)
        .iter()
        .find(|t| t.header().id == task)
        .map(|t| {
            let h = t.header();
            let name = h.name().map(|n| format!(" '{n}'")).unwrap_or_default();
            let last_park = h
                .wait
                .last_site()
                .map(|at| format!(", last parked at {at}"))
                .unwrap_or_default();
            format!("{name} (spawned at {}{last_park})", h.spawned_at)
        })
        .unwrap_or_default();
    if shared.workers[worker]
        .watch
        .blocked_unwinding
        .load(Ordering::Relaxed)
    {
        eprintln!(
            "grove: green thread {task}{info} is blocked while unwinding a panic: worker {worker} \
             cannot run its other green threads until it is woken ({} ms so far). A green thread \
             never switches away while panicking, so a destructor (or a panic hook) that blocks \
             on a channel, lock or join waits on its OS thread; if what it waits for needs a green \
             thread of worker {worker}, it waits forever. Do not block in destructors that may \
             run during a panic",
            held.as_millis()
        );
        return Reported::Unwinding;
    }
    eprintln!(
        "grove: green thread {task}{info} has held worker {worker} for {} ms without parking or \
         yielding; a blocking call in a green thread (std::thread::sleep, blocking I/O, a std \
         lock) stalls the green threads waiting on that worker: wrap it in grove::blocking(|| ..) \
         (it runs on another OS thread while this green thread parks), use grove::net for \
         sockets, grove::thread::sleep, grove's channels and sync",
        held.as_millis()
    );
    Reported::Plain
}
