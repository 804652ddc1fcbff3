//! A green thread's record: its header (state word, identity, coroutine) and
//! its typed body and output.
//!
//! # The state word
//!
//! ```text
//!  63            32 31      7    6         5         4        3        2     1 0
//! ┌────────────────┬────────┬─────────┬──────────┬────────┬────────┬───────┬─────┐
//! │ park sequence  │ unused │OS_WAKING│OS_BLOCKED│JOIN_   │NOTIFIED│STARTED│life-│
//! │ (bumped by     │        │         │          │WAITER  │        │       │cycle│
//! │  each park)    │        │         │          │        │        │       │     │
//! └────────────────┴────────┴─────────┴──────────┴────────┴────────┴───────┴─────┘
//! lifecycle: SCHEDULED (in a run queue, or about to be) → RUNNING → PARKED
//!            → SCHEDULED → ... → DONE
//! ```
//!
//! Invariants:
//!
//! 1. **One run token.** A task is in at most one run queue, and only while
//!    SCHEDULED. Whoever takes it out of a queue (a worker) owns it until it
//!    parks, yields or finishes; only that worker touches the coroutine.
//! 2. **Switch, then commit.** A running task asks to park by suspending;
//!    its worker commits RUNNING → PARKED only after the switch, back on its
//!    own stack. An unpark that arrives before the commit sets NOTIFIED
//!    instead, and the commit then keeps the task running. So nobody can
//!    schedule a task that is still on its stack, and no wake-up is lost.
//! 3. **Timers carry the park sequence.** A timer fires only if the task is
//!    still PARKED in the same park it was armed for; a stale timer of an
//!    earlier park can never wake a later one.
//! 4. **DONE is final** and published with Release after the output is
//!    written; a joiner reads the output only after seeing DONE with Acquire.

use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU16, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::{fmt, ptr, thread};

use crate::coroutine::{Coro, YielderSlot};
use crate::park::{Unparker, WaitReason};
use crate::scheduler::Shared;
use crate::slab;

const LIFECYCLE: u64 = 0b11;
const SCHEDULED: u64 = 0;
const RUNNING: u64 = 1;
const PARKED: u64 = 2;
const DONE: u64 = 3;
const STARTED: u64 = 1 << 2;
const NOTIFIED: u64 = 1 << 3;
const JOIN_WAITER: u64 = 1 << 4;
const OS_BLOCKED: u64 = 1 << 5;
/// An unparker is waking the OS thread of an OS-blocked task (see
/// [`State::end_os_wake`]); the task waits for it to clear.
const OS_WAKING: u64 = 1 << 6;
/// The task's `JoinHandle` is gone (dropped, or joined and dropped).
const DETACHED: u64 = 1 << 7;
/// The body stored its output (see [`State::output_ready`]).
const OUTPUT_READY: u64 = 1 << 8;
const SEQ_SHIFT: u32 = 32;

/// A copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(u64);

impl Snapshot {
    fn lifecycle(self) -> u64 {
        self.0 & LIFECYCLE
    }
    pub(crate) fn is_scheduled(self) -> bool {
        self.lifecycle() == SCHEDULED
    }
    pub(crate) fn is_running(self) -> bool {
        self.lifecycle() == RUNNING
    }
    pub(crate) fn is_parked(self) -> bool {
        self.lifecycle() == PARKED
    }
    pub(crate) fn is_done(self) -> bool {
        self.lifecycle() == DONE
    }
    pub(crate) fn is_started(self) -> bool {
        self.0 & STARTED != 0
    }
    /// Blocking its worker's OS thread (it parked while panicking).
    pub(crate) fn is_os_blocked(self) -> bool {
        self.0 & OS_BLOCKED != 0
    }
    /// An unparker is still waking its blocked OS thread.
    pub(crate) fn is_os_waking(self) -> bool {
        self.0 & OS_WAKING != 0
    }
    pub(crate) fn has_join_waiter(self) -> bool {
        self.0 & JOIN_WAITER != 0
    }
    /// The body stored its output (see [`State::output_ready`]).
    pub(crate) fn is_output_ready(self) -> bool {
        self.0 & OUTPUT_READY != 0
    }
    pub(crate) fn seq(self) -> u32 {
        (self.0 >> SEQ_SHIFT) as u32
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let life = ["SCHEDULED", "RUNNING", "PARKED", "DONE"][self.lifecycle() as usize];
        write!(f, "{life}")?;
        for (bit, name) in [
            (STARTED, "STARTED"),
            (NOTIFIED, "NOTIFIED"),
            (JOIN_WAITER, "JOIN_WAITER"),
            (OS_BLOCKED, "OS_BLOCKED"),
            (OS_WAKING, "OS_WAKING"),
            (DETACHED, "DETACHED"),
            (OUTPUT_READY, "OUTPUT_READY"),
        ] {
            if self.0 & bit != 0 {
                write!(f, "|{name}")?;
            }
        }
        write!(f, " seq={}", self.seq())
    }
}

/// What an unpark must do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unpark {
    /// Nothing: the task is queued, done, or already notified.
    Nothing,
    /// The caller moved the task PARKED → SCHEDULED and must queue it.
    Schedule,
    /// The task is blocking its worker's OS thread (it parked while
    /// panicking); wake that thread.
    WakeBlockedThread,
}

/// The packed state word; every transition is a named method that checks
/// the state it starts from. Its atomic goes through `crate::loom` so the
/// transitions can be model-checked (see `loom_tests`).
pub(crate) struct State(crate::loom::AtomicU64);

impl State {
    fn new() -> State {
        State(crate::loom::AtomicU64::new(SCHEDULED))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    fn update(&self, mut f: impl FnMut(Snapshot) -> Option<u64>) -> Result<Snapshot, Snapshot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| f(Snapshot(s)))
            .map(Snapshot)
            .map_err(Snapshot)
    }

    /// The body stored its output, in its green thread. True if the
    /// `JoinHandle` is gone already: the body takes the output back and
    /// drops it there, so that its destructor runs in the green thread (a
    /// grove lock or channel in it parks, as anywhere in the body), not on
    /// the worker's OS thread that frees the task. Exactly one of this and
    /// [`detach`](Self::detach) sees the other's bit.
    pub(crate) fn output_ready(&self) -> bool {
        self.0.fetch_or(OUTPUT_READY, Ordering::AcqRel) & DETACHED != 0
    }

    /// The `JoinHandle` is dropped. True if the body stored its output
    /// already: the handle drops it (a joined handle finds none left).
    pub(crate) fn detach(&self) -> bool {
        self.0.fetch_or(DETACHED, Ordering::AcqRel) & OUTPUT_READY != 0
    }

    /// A worker took the task out of a run queue. Returns the old state.
    pub(crate) fn transition_to_running(&self) -> Snapshot {
        // SCHEDULED is 0 and RUNNING 1: one add, no compare-exchange loop.
        let before = Snapshot(self.0.fetch_add(RUNNING - SCHEDULED, Ordering::AcqRel));
        assert!(
            before.is_scheduled(),
            "ran a task that was not scheduled: {before:?}"
        );
        before
    }

    /// The task's coroutine now exists.
    pub(crate) fn mark_started(&self) {
        self.0.fetch_or(STARTED, Ordering::Relaxed);
    }

    /// A running task goes back to a run queue (it yielded, or could not
    /// start yet). A pending NOTIFIED stays for its next park.
    pub(crate) fn transition_to_scheduled(&self) {
        self.update(|s| {
            assert!(
                s.is_running(),
                "requeued a task that was not running: {s:?}"
            );
            Some(s.0 & !LIFECYCLE | SCHEDULED)
        })
        .expect("closure never refuses");
    }

    /// Commits a park after the task left its stack. `Ok(seq)`: now PARKED
    /// in park number `seq`. `Err`: an unpark came first; still RUNNING.
    pub(crate) fn commit_park(&self) -> Result<u32, ()> {
        let prev = self
            .update(|s| {
                assert!(s.is_running(), "parked a task that was not running: {s:?}");
                if s.0 & NOTIFIED != 0 {
                    Some(s.0 & !NOTIFIED)
                } else {
                    let seq = s.seq().wrapping_add(1) as u64;
                    Some((s.0 & 0xffff_ffff & !LIFECYCLE) | PARKED | (seq << SEQ_SHIFT))
                }
            })
            .expect("closure never refuses");
        if prev.0 & NOTIFIED != 0 {
            Err(())
        } else {
            Ok(prev.seq().wrapping_add(1))
        }
    }

    /// Consumes a pending unpark of the running task, if there is one.
    pub(crate) fn take_notified(&self) -> bool {
        let s = Snapshot(self.0.load(Ordering::Acquire));
        s.0 & NOTIFIED != 0
            && self
                .update(|s| (s.0 & NOTIFIED != 0).then_some(s.0 & !NOTIFIED))
                .is_ok()
    }

    /// Unparks: see [`Unpark`]. A task that is not parked keeps the unpark
    /// as a token (NOTIFIED) that makes its next park return at once.
    #[inline]
    pub(crate) fn unpark(&self) -> Unpark {
        // The common case first, with one compare-exchange: a parked task.
        let s = self.0.load(Ordering::Acquire);
        if s & LIFECYCLE == PARKED
            && self
                .0
                .compare_exchange(
                    s,
                    s & !LIFECYCLE | SCHEDULED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            return Unpark::Schedule;
        }
        self.unpark_slow()
    }

    #[cold]
    fn unpark_slow(&self) -> Unpark {
        let mut action = Unpark::Nothing;
        let _ = self.update(|s| match s.lifecycle() {
            PARKED => {
                action = Unpark::Schedule;
                Some(s.0 & !LIFECYCLE | SCHEDULED)
            }
            RUNNING if s.0 & NOTIFIED == 0 => {
                if s.0 & OS_BLOCKED != 0 {
                    // The waker still reads the task's runtime after this
                    // (to find the worker's parker), while the blocked
                    // thread may see NOTIFIED at once, finish the task and
                    // let its runtime be dropped: it waits for OS_WAKING.
                    action = Unpark::WakeBlockedThread;
                    Some(s.0 | NOTIFIED | OS_WAKING)
                } else {
                    action = Unpark::Nothing;
                    Some(s.0 | NOTIFIED)
                }
            }
            // Queued (unstarted, yielded, or just woken): keep the token for
            // its next park, as std does for a thread that is not parked.
            SCHEDULED if s.0 & NOTIFIED == 0 => {
                action = Unpark::Nothing;
                Some(s.0 | NOTIFIED)
            }
            // Already holds a token. Still write (the same word): the task
            // consumes the token with a read-modify-write and then looks
            // for what the waker published before unparking (a wait entry's
            // state); only a write here makes that consume see it. Merging
            // with a plain read lost wake-ups on 8+ cores: the waker's
            // store could still sit in its store buffer when the task looked.
            RUNNING | SCHEDULED => {
                action = Unpark::Nothing;
                Some(s.0)
            }
            _ => {
                action = Unpark::Nothing;
                None
            }
        });
        action
    }

    /// A timer armed for park number `seq` fired: schedule the task if it is
    /// still in that park. True if the caller must queue it.
    pub(crate) fn fire_timer(&self, seq: u32) -> bool {
        self.update(|s| (s.is_parked() && s.seq() == seq).then_some(s.0 & !LIFECYCLE | SCHEDULED))
            .is_ok()
    }

    /// Whether a timer armed for park `seq` can still fire.
    pub(crate) fn timer_is_live(&self, seq: u32) -> bool {
        let s = self.load();
        s.is_parked() && s.seq() == seq
    }

    /// The running task blocks its OS thread instead of switching (it
    /// parked while panicking). False if an unpark is already pending
    /// (consumed here).
    pub(crate) fn begin_os_block(&self) -> bool {
        let prev = self
            .update(|s| {
                if s.0 & NOTIFIED != 0 {
                    Some(s.0 & !NOTIFIED)
                } else {
                    Some(s.0 | OS_BLOCKED)
                }
            })
            .expect("closure never refuses");
        prev.0 & NOTIFIED == 0
    }

    /// Ends an OS block if an unpark arrived (consuming it); true if so.
    pub(crate) fn end_os_block_if_notified(&self) -> bool {
        self.update(|s| (s.0 & NOTIFIED != 0).then_some(s.0 & !(OS_BLOCKED | NOTIFIED)))
            .is_ok()
    }

    /// The waker of an OS-blocked task has unparked its OS thread and
    /// touches nothing of the task's runtime any more.
    pub(crate) fn end_os_wake(&self) {
        self.0.fetch_and(!OS_WAKING, Ordering::Release);
    }

    /// Ends an OS block; true if it ended because of an unpark (consumed).
    pub(crate) fn end_os_block(&self) -> bool {
        let prev = self
            .update(|s| Some(s.0 & !(OS_BLOCKED | NOTIFIED)))
            .expect("closure never refuses");
        prev.0 & NOTIFIED != 0
    }

    /// RUNNING → DONE, publishing the output. Returns the old state.
    pub(crate) fn complete(&self) -> Snapshot {
        self.update(|s| {
            assert!(
                s.is_running(),
                "completed a task that was not running: {s:?}"
            );
            Some(s.0 & !LIFECYCLE | DONE)
        })
        .expect("closure never refuses")
    }

    /// A joiner announces itself. Returns the old state: if it was DONE the
    /// joiner must not wait.
    pub(crate) fn register_join_waiter(&self) -> Snapshot {
        Snapshot(self.0.fetch_or(JOIN_WAITER, Ordering::AcqRel))
    }
}

/// What a task is blocked on, and where (for `Runtime::tasks()`).
#[derive(Default)]
pub(crate) struct WaitSite {
    reason: AtomicPtr<WaitReason>,
    at: AtomicPtr<Location<'static>>,
}

impl WaitSite {
    pub(crate) fn set(&self, reason: &'static WaitReason, at: &'static Location<'static>) {
        self.reason
            .store(reason as *const _ as *mut _, Ordering::Relaxed);
        self.at.store(at as *const _ as *mut _, Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        self.reason.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// Where the task last parked, if it ever did (kept after it woke).
    pub(crate) fn last_site(&self) -> Option<&'static Location<'static>> {
        let at = self.at.load(Ordering::Relaxed);
        // SAFETY: made from a `&'static Location` in `set`.
        (!at.is_null()).then(|| unsafe { &*at })
    }

    pub(crate) fn get(&self) -> Option<(&'static str, &'static Location<'static>)> {
        let reason = self.reason.load(Ordering::Relaxed);
        let at = self.at.load(Ordering::Relaxed);
        if reason.is_null() || at.is_null() {
            return None;
        }
        // SAFETY: both pointers were made from `&'static` references in `set`.
        unsafe { Some(((*reason).0, &*at)) }
    }
}

/// The untyped part of every task.
///
/// `repr(C)` with `refs` first: the count is the first word of the task's
/// slab block, which `live_tasks` reads atomically whatever the block holds
/// (see `slab`), so nothing writes it but atomic operations.
///
/// # Who touches which field, and when
///
/// "Spawner" is whoever runs `Task::new_task` (before the task is
/// published); "run token" is the worker that took the task out of a run
/// queue (invariant 1); "anyone" means any thread holding a `TaskRef`.
///
/// | field | written by | read by | synchronised by |
/// |---|---|---|---|
/// | `refs` | anyone (clone, drop), `live_tasks` | the same | atomic RMW; first word of the block |
/// | `vtable`, `id`, `name`, `spawned_at`, `stack_size` | spawner, once | anyone | published by the release store of `refs` |
/// | `state` | anyone (unpark, timers, joiners), run token (transitions) | anyone | atomic; the transitions are the protocol (see the state word above) |
/// | `home` | spawner (`on_worker`), run token (at start; every run with migration) | anyone (wakers route by it) | relaxed: a waker reads it after moving the task out of PARKED, which the run token's last write precedes |
/// | `shared` | spawner, once | run token, wakers | valid while not DONE (a runtime outlives its live tasks) |
/// | `yielder` | the task's body, once at start | the task itself (`suspend`) | same green thread |
/// | `wait` | the task itself, around a park | `tasks()`, the monitor | relaxed; diagnostics only |
/// | `unwinding` | run token, before a forced unwind | the task itself | same OS thread (the resume) |
/// | `abandoned`, `deferred` | run token; the shutting-down thread (`shutdown::leak`) | worker at shutdown, shutdown loop | SeqCst flags, only at shutdown |
/// | `blocking_calls` | the task (+1 before a blocking call), the pool thread (−1 after it) | worker at shutdown, shutdown loop | SeqCst counter |
/// | `timed` | the task (`park_external`), run token (commit with a deadline, cleared at resume) | the deadlock probe | relaxed; diagnostics only |
/// | `partner_away` | the task itself, after a plain wait | the task itself, before one | same green thread; a hint |
/// | `park_token` | `Thread::unpark` (Release, then the unpark) | the task itself (`thread::park_token`, a swap with Acquire) | the flag, then NOTIFIED's wake |
/// | `join_waiter` | the joiner | the completer (run token) | its mutex, then the JOIN_WAITER bit |
/// | `open_scope` | the task itself (`scope`) | run token at shutdown | relaxed: the task is suspended and its token held |
/// | `inbox_next` | the pusher of the token (`Inbox::push`), the inbox's owner | the inbox's owner | the head's Release CAS / Acquire swap |
/// | `coro` | run token | run token | exclusive by invariant 1 (an `UnsafeCell`) |
#[repr(C)]
pub(crate) struct Header {
    // The first cache line holds what a cross-worker wake-up touches:
    // the waker reads `home` and `shared`, swaps `state` and links
    // `inbox_next`; the worker that takes the task reads them and `coro`
    // and clears `timed`. One line moves per wake-up, not three.
    /// References to the task (`TaskRef`s). A task that is not DONE holds
    /// one to itself (see `Task::new_task`), given up when it completes.
    refs: AtomicUsize,
    pub(crate) state: State,
    /// The worker the task runs on once started (`usize::MAX` before),
    /// with [`PINNED`] for one spawned `on_worker` in a runtime that
    /// migrates: read it through [`Header::home`].
    pub(crate) home: AtomicUsize,
    /// The runtime. Valid while the task is not DONE: a runtime is dropped
    /// only after every one of its tasks is DONE (see `Scheduler::drop`).
    shared: *const Shared,
    /// The next task in the inbox this one waits in (see `inbox`).
    pub(crate) inbox_next: AtomicPtr<Header>,
    /// Touched only by the worker that holds the run token (invariant 1).
    /// One word: the coroutine lives at the top of its stack.
    coro: UnsafeCell<Option<Coro>>,
    /// Parked with a timer armed (a sleep, a timeout) or waiting on the
    /// outside world (`park::park_external`: a socket, the blocking pool):
    /// it will wake by itself, so its runtime is not deadlocked.
    pub(crate) timed: AtomicBool,
    /// Set before a forced unwind, so the body re-throws what it catches.
    pub(crate) unwinding: AtomicBool,
    /// Given up on at shutdown: it caught the forced unwind and blocked
    /// again (see `worker::block_os_thread`), or it could not be unwound
    /// (see `shutdown`); it is leaked, never unwound.
    pub(crate) abandoned: AtomicBool,
    /// At shutdown: held back until its scoped green threads or its calls
    /// on the blocking pool are done (see `Worker::retry_deferred`).
    pub(crate) deferred: AtomicBool,
    /// Its latest plain wait that a worker watched or it spun for was
    /// answered from another worker: its next wait has its worker watch
    /// the packet even where other green threads are ready to run (see
    /// `Worker::watch`). Read and written only by the task itself, while
    /// it runs.
    pub(crate) partner_away: AtomicBool,
    /// std's park token (`Thread::unpark` sets it, `thread::park` takes
    /// it), kept apart from the runtime's own wake-up (NOTIFIED), which
    /// every wait of the task (a lock, a sleep, a join, a channel) takes:
    /// an unpark that comes during such a wait is still there for the next
    /// `park`, as in std.
    pub(crate) park_token: AtomicBool,
    /// Its calls on the blocking pool in flight (0 or 1; a count, so that
    /// the pool thread's decrement can trail the caller's next call). Two
    /// bytes: with the flags above it fills one word.
    pub(crate) blocking_calls: AtomicU16,
    /// The task's typed operations.
    vtable: &'static Vtable,
    pub(crate) id: u64,
    /// Boxed twice: a thin pointer keeps the header one word smaller
    /// (names are rare; the header holds `open_scope` in that word).
    #[allow(clippy::box_collection)]
    name: Option<Box<String>>,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) stack_size: usize,
    pub(crate) yielder: YielderSlot,
    pub(crate) wait: WaitSite,
    join_waiter: Mutex<Option<Unparker>>,
    /// The innermost `thread::scope` open in this green thread (its data,
    /// on the task's stack), for the runtime's shutdown; see `scope`.
    pub(crate) open_scope: AtomicPtr<()>,
}

// SAFETY: every field is Sync except `coro` and `shared`. `coro` is touched
// only by the one worker holding the run token (invariant 1), which gives
// exclusive access; `shared` is a read-only pointer to a Sync value that
// outlives every use (see its field comment).
unsafe impl Sync for Header {}
// SAFETY: as above; a coroutine in `coro` is resumed and dropped only on the
// worker that runs it (the soundness rule), whichever thread holds the Arc.
unsafe impl Send for Header {}

// `live_tasks` reads a block's first word as the count of the task in it.
const _: () = assert!(std::mem::offset_of!(Header, refs) == 0);
// What a wake-up touches shares the first cache line (see `Header`).
const _: () = assert!(std::mem::offset_of!(Header, blocking_calls) + 2 <= 64);
// The flags and the blocking-call count share one word (a parked green
// thread's memory is a target: a word more can cost a slab size class).
const _: () =
    assert!(std::mem::offset_of!(Header, vtable) - std::mem::offset_of!(Header, timed) <= 8);

/// What a spawn says about a new task (the rest of its header starts out
/// the same for every task).
pub(crate) struct HeaderInit<'a> {
    pub(crate) id: u64,
    pub(crate) name: Option<String>,
    pub(crate) stack_size: usize,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) shared: &'a Shared,
}

/// `Header::home`'s mark of a green thread spawned `on_worker` in a
/// runtime that migrates green threads (only there: elsewhere no started
/// green thread moves): it never leaves its worker.
pub(crate) const PINNED: usize = 1 << (usize::BITS - 1);

impl Header {
    /// The worker the task runs on once started (`usize::MAX` before,
    /// unless it was spawned `on_worker`).
    #[inline(always)]
    pub(crate) fn home(&self) -> usize {
        let home = self.home.load(Ordering::Relaxed);
        if home == usize::MAX {
            home
        } else {
            home & !PINNED
        }
    }

    /// Whether the task was spawned `on_worker` in a runtime that migrates
    /// green threads: it stays on its worker all the same.
    #[inline(always)]
    pub(crate) fn is_pinned(&self) -> bool {
        let home = self.home.load(Ordering::Relaxed);
        home != usize::MAX && home & PINNED != 0
    }

    /// Sets the worker the task runs on, keeping its [`PINNED`] mark. By
    /// the run token's holder.
    #[inline(always)]
    pub(crate) fn set_home(&self, worker: usize) {
        let pin = if self.is_pinned() { PINNED } else { 0 };
        self.home.store(worker | pin, Ordering::Relaxed);
    }

    /// Writes every field of the header at `at` but `refs`, which the
    /// caller sets (atomically) afterwards.
    ///
    /// # Safety
    ///
    /// `at` is valid for writes of a `Header` and aligned, its `refs` is an
    /// initialized atomic holding 0, and nobody reads the other fields
    /// before the caller publishes them by a release store to `refs`.
    #[inline]
    unsafe fn init(at: *mut Header, init: HeaderInit<'_>, vtable: &'static Vtable) {
        // SAFETY: per the contract: each field is written in place, `refs`
        // is left alone.
        unsafe {
            ptr::addr_of_mut!((*at).vtable).write(vtable);
            ptr::addr_of_mut!((*at).state).write(State::new());
            ptr::addr_of_mut!((*at).id).write(init.id);
            ptr::addr_of_mut!((*at).name).write(init.name.map(Box::new));
            ptr::addr_of_mut!((*at).spawned_at).write(init.spawned_at);
            ptr::addr_of_mut!((*at).stack_size).write(init.stack_size);
            ptr::addr_of_mut!((*at).home).write(AtomicUsize::new(usize::MAX));
            ptr::addr_of_mut!((*at).shared).write(init.shared);
            ptr::addr_of_mut!((*at).yielder).write(YielderSlot::default());
            ptr::addr_of_mut!((*at).wait).write(WaitSite::default());
            ptr::addr_of_mut!((*at).unwinding).write(AtomicBool::new(false));
            ptr::addr_of_mut!((*at).abandoned).write(AtomicBool::new(false));
            ptr::addr_of_mut!((*at).deferred).write(AtomicBool::new(false));
            ptr::addr_of_mut!((*at).partner_away).write(AtomicBool::new(false));
            ptr::addr_of_mut!((*at).park_token).write(AtomicBool::new(false));
            ptr::addr_of_mut!((*at).blocking_calls).write(AtomicU16::new(0));
            ptr::addr_of_mut!((*at).timed).write(AtomicBool::new(false));
            ptr::addr_of_mut!((*at).join_waiter).write(Mutex::new(None));
            ptr::addr_of_mut!((*at).open_scope).write(AtomicPtr::new(ptr::null_mut()));
            ptr::addr_of_mut!((*at).inbox_next).write(AtomicPtr::new(ptr::null_mut()));
            ptr::addr_of_mut!((*at).coro).write(UnsafeCell::new(None));
        }
    }

    /// The green thread's name, if it was given one.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref().map(String::as_str)
    }

    /// The task's runtime.
    ///
    /// Callers must hold the run token, or have just moved the task out of
    /// PARKED (an unpark or timer), or have set OS_WAKING and not yet
    /// cleared it (the blocked task waits for that): in each case the task
    /// is not DONE, so its runtime is alive.
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: see the doc comment and the `shared` field: a runtime
        // outlives all of its tasks that are not DONE.
        unsafe { &*self.shared }
    }

    /// The task's runtime, for a caller about to hand its last use of the
    /// task away (queue it): the runtime stays valid for the rest of that
    /// hand-off even if the task then finishes at once, because a
    /// runtime's shutdown waits for hand-offs in flight
    /// (`WorkerShared::wakers`) before it lets the runtime go.
    ///
    /// # Safety
    ///
    /// As for [`Header::shared`] at the call; the reference is used only
    /// for one `Shared::push_to_inbox`.
    pub(crate) unsafe fn shared_for_hand_off<'a>(&self) -> &'a Shared {
        // SAFETY: per the contract and the doc above.
        unsafe { &*self.shared }
    }

    pub(crate) fn runs_on(&self, shared: &Shared) -> bool {
        ptr::eq(self.shared, shared)
    }

    /// The coroutine cell.
    ///
    /// # Safety
    ///
    /// The caller holds the run token (invariant 1) and keeps the borrow
    /// only while it does.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn coro(&self) -> &mut Option<Coro> {
        // SAFETY: exclusive by the caller's run token.
        unsafe { &mut *self.coro.get() }
    }

    /// Stores the joiner to wake at completion.
    pub(crate) fn set_join_waiter(&self, waiter: Unparker) {
        let old = self
            .join_waiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(waiter);
        // After the lock: the last reference to a green thread may go with
        // it, and with that its output's destructor.
        drop(old);
    }

    /// Wakes the joiner (called once, after DONE).
    pub(crate) fn wake_joiner(&self) {
        let waiter = self
            .join_waiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(waiter) = waiter {
            waiter.unpark();
        }
    }
}

impl Drop for Header {
    fn drop(&mut self) {
        // A started task that was never finished nor unwound: its stack may
        // hold references into other threads' state. Unwinding it here
        // would run its destructors on a foreign thread, so it is leaked
        // (dropping a `Coro` leaves its coroutine and stack alone).
        debug_assert!(
            self.coro.get_mut().is_none(),
            "task {} dropped while suspended",
            self.id
        );
    }
}

/// The typed operations of a task, reached from its header.
///
/// Safety contract of every entry: the header passed is that of a live task
/// made by `Task::<F, T>::new_task` with this very vtable (so the cast back to
/// `Task<F, T>` is right), and the caller has the access the entry names:
/// the run token for `run_body`, `cancel` and `mark_unwound`, the only
/// reader of a DONE task's output for `take_output`, the last reference
/// for `dealloc`.
pub(crate) struct Vtable {
    /// Runs the closure and stores its output (run token held).
    run_body: unsafe fn(NonNull<Header>),
    /// Drops the closure unrun and stores the payload as its output.
    cancel: unsafe fn(NonNull<Header>, Box<dyn Any + Send>),
    /// Stores the payload of a forced unwind as the output.
    mark_unwound: unsafe fn(NonNull<Header>, Box<dyn Any + Send>),
    /// Moves the output into `*out`, an `Option<thread::Result<T>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops the task and frees its memory (last reference gone).
    dealloc: unsafe fn(NonNull<Header>),
}

/// A task: header first (so a pointer to the task is a pointer to its
/// header), then its closure `F` and output `T`, in one allocation from the
/// task slab (see `slab`), reference-counted by `Header::refs`.
///
/// ```text
///  TaskRef ──► ┌────────────────────────────┐
///              │ Header { refs, vtable,     │  vtable: the F/T-typed code
///              │   state, id, coroutine...} │
///              │ body:   Option<F>          │  taken when the task starts
///              │ output: Option<Result<T>>  │  written once, before DONE
///              └────────────────────────────┘
/// ```
#[repr(C)]
pub(crate) struct Task<F, T> {
    header: Header,
    body: UnsafeCell<Option<F>>,
    output: UnsafeCell<Option<thread::Result<T>>>,
}

// No `'static` bounds: a scoped green thread's closure and output borrow
// from its scope (see `Handle::spawn_scoped` for who keeps them alive).
impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    const VTABLE: Vtable = Vtable {
        run_body: Self::run_body,
        cancel: Self::cancel,
        mark_unwound: Self::mark_unwound,
        take_output: Self::take_output,
        dealloc: Self::dealloc,
    };

    /// Makes the task, its reference to itself (see `Header::refs`: the
    /// last of the `N + 1` counted, given up by `TaskRef::complete`), and
    /// `N` references for the caller (a spawn needs one for the run queue
    /// and one for the `JoinHandle`). Builds the task in place in a slab
    /// block, around the count, which `live_tasks` may be reading: the
    /// count goes from 0 to `N + 1` in one release store, after which the
    /// task is visible there. No atomic read-modify-write, each of which
    /// would wait for the header's stores to drain first.
    #[inline]
    pub(crate) fn new_task<const N: usize>(header: HeaderInit<'_>, f: F) -> [TaskRef; N] {
        const { assert!(N > 0) };
        let layout = Layout::new::<Task<F, T>>();
        let memory = slab::alloc(layout).cast::<Task<F, T>>();
        let task = memory.as_ptr();
        // SAFETY: `memory` is sized and aligned for a Task<F, T>, and its
        // first word, the header's `refs` (repr(C) twice), is an atomic 0
        // (`slab::alloc`): while it is 0 nobody reads the rest, which is
        // written here field by field, leaving the count alone.
        unsafe {
            Header::init(ptr::addr_of_mut!((*task).header), header, &Self::VTABLE);
            ptr::addr_of_mut!((*task).body).write(UnsafeCell::new(Some(f)));
            ptr::addr_of_mut!((*task).output).write(UnsafeCell::new(None));
            (*ptr::addr_of!((*task).header.refs)).store(N + 1, Ordering::Release);
        }
        // N of the references the count says exist.
        std::array::from_fn(|_| TaskRef(memory.cast()))
    }

    /// # Safety
    ///
    /// `header` heads a live `Task<F, T>` (the vtable says so).
    unsafe fn from_header<'a>(header: NonNull<Header>) -> &'a Task<F, T> {
        // SAFETY: per the contract; `Task` is repr(C) with the header first.
        unsafe { header.cast::<Task<F, T>>().as_ref() }
    }

    /// Runs the closure and stores its output; called once, on the task's
    /// own stack, by the worker holding the run token.
    ///
    /// # Safety
    ///
    /// As for every function of the vtable: `header` heads a live
    /// `Task<F, T>` and the caller holds its run token.
    unsafe fn run_body(header: NonNull<Header>) {
        // SAFETY: vtable contract.
        let task = unsafe { Self::from_header(header) };
        // SAFETY: run token held; the body is taken once.
        let f = unsafe { (*task.body.get()).take() }.expect("a task's body runs once");
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        if let Err(payload) = result {
            if task.header.unwinding.load(Ordering::Relaxed) {
                // A forced unwind: let it reach the coroutine's root.
                panic::resume_unwind(payload);
            }
            // SAFETY: written once, before DONE is published.
            unsafe { *task.output.get() = Some(Err(payload)) };
        } else {
            // SAFETY: as above.
            unsafe { *task.output.get() = Some(result) };
        }
        if task.header.state.output_ready() {
            // SAFETY: the handle is gone and saw no output (`detach`):
            // nobody else reads it, and DONE is not set yet.
            let output = unsafe { (*task.output.get()).take() };
            drop_output(output, "green thread");
        }
    }

    /// Drops the closure unrun and stores `payload` as the output.
    ///
    /// # Safety
    ///
    /// As `run_body`; the task has not started.
    unsafe fn cancel(header: NonNull<Header>, payload: Box<dyn Any + Send>) {
        // SAFETY: vtable contract.
        let task = unsafe { Self::from_header(header) };
        // SAFETY: run token held; the task never started, so nobody else
        // can reach the body.
        let body = unsafe { (*task.body.get()).take() };
        // A destructor of the closure's captures may panic; keep the worker.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(body)));
        // SAFETY: written once, before DONE is published.
        unsafe { *task.output.get() = Some(Err(payload)) };
    }

    /// After a forced unwind: stores `payload` as the output if none was.
    ///
    /// # Safety
    ///
    /// As `run_body`; the task's coroutine is gone and DONE is not set.
    unsafe fn mark_unwound(header: NonNull<Header>, payload: Box<dyn Any + Send>) {
        // SAFETY: vtable contract.
        let task = unsafe { Self::from_header(header) };
        if task.header.state.load().is_output_ready() {
            // The body returned after all (it caught the forced unwind):
            // its output is stored, and its handle may be taking it now.
            return;
        }
        // SAFETY: run token held, the coroutine is gone, DONE not yet set,
        // and the body stored no output (OUTPUT_READY, set by this thread
        // when it ran the body, is clear): no handle reads the cell.
        let output = unsafe { &mut *task.output.get() };
        if output.is_none() {
            *output = Some(Err(payload));
        }
    }

    /// Moves the output into `out`.
    ///
    /// # Safety
    ///
    /// `header` heads a live `Task<F, T>` that is DONE (or whose handle
    /// saw `OUTPUT_READY`, see [`State::detach`]), and `out` points to an
    /// `Option<thread::Result<T>>`.
    unsafe fn take_output(header: NonNull<Header>, out: *mut ()) {
        // SAFETY: vtable contract; `out` is an Option<thread::Result<T>>
        // (`TaskRef::take_output::<T>` made it for this very task, whose T
        // it knows from its JoinHandle<T>).
        unsafe {
            let task = Self::from_header(header);
            *out.cast::<Option<thread::Result<T>>>() = (*task.output.get()).take();
        }
    }

    /// Drops the task and frees its memory.
    ///
    /// # Safety
    ///
    /// `header` heads a `Task<F, T>` whose last reference is being dropped.
    unsafe fn dealloc(header: NonNull<Header>) {
        let task = header.cast::<Task<F, T>>();
        // SAFETY: the last reference is gone (TaskRef::drop): nobody else
        // can reach the task; it was made by `spawn` with this layout, and
        // its count, the block's first word, is back to 0 (dropping an
        // atomic writes nothing).
        unsafe {
            ptr::drop_in_place(task.as_ptr());
            slab::dealloc(task.cast(), Layout::new::<Task<F, T>>());
        }
    }
}

/// Drops the result of a `kind` ("green thread", "scoped green thread")
/// that nobody will join, where it is dropped: in the green thread
/// itself, or on the thread that drops its handle (see [`State::detach`]
/// and `scope`'s result slots). A destructor that panics aborts the
/// process, as std's does for a thread's result ("thread result panicked
/// on drop"); the forced unwind of a runtime's shutdown (the destructor
/// parked) goes on.
pub(crate) fn drop_output<T>(output: Option<thread::Result<T>>, kind: &str) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(output))) {
        if crate::park::is_shutdown_unwinding() {
            panic::resume_unwind(payload);
        }
        eprintln!("grove: a {kind}'s result panicked on drop; aborting");
        std::process::abort();
    }
}

/// A counted reference to a task, as run queues, timers, wait queues and
/// join handles hold it.
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: a task is Send + Sync (Header is; F and T are Send and touched by
// one thread at a time, per the run-token and output protocols).
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we hold a reference: the task is alive.
        unsafe { self.0.as_ref() }
    }

    /// The header pointer, for the coroutine body (see `Coro::new`).
    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// Drops the closure unrun and stores `payload` as the output. The
    /// caller holds the run token and the task never started.
    pub(crate) fn cancel(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: the vtable matches the task; run token held by the caller.
        unsafe { (self.header().vtable.cancel)(self.0, payload) }
    }

    /// After a forced unwind (run token held): stores `payload` as the
    /// output if the body stored none.
    pub(crate) fn mark_unwound(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: as in `cancel`.
        unsafe { (self.header().vtable.mark_unwound)(self.0, payload) }
    }

    /// Takes the output.
    ///
    /// # Safety
    ///
    /// `T` is the task's output type, the caller has seen DONE (Acquire)
    /// or, dropping the handle, `OUTPUT_READY` ([`State::detach`]), and is
    /// the only one who takes it.
    pub(crate) unsafe fn take_output<T>(&self) -> Option<thread::Result<T>> {
        let mut out: Option<thread::Result<T>> = None;
        // SAFETY: per the contract, `out` has the task's output type.
        unsafe { (self.header().vtable.take_output)(self.0, (&mut out as *mut Option<_>).cast()) };
        out
    }
}

/// The run token (invariant 1): a task that is SCHEDULED and in this
/// value, which is in at most one run queue. Only a transition that makes
/// its caller responsible for queueing the task makes one ([`Runnable::new`]
/// after a spawn, an unpark that moved it out of PARKED, a timer that
/// fired, a requeue); queue pops hand it out, and `Worker::run` consumes
/// it. So "the caller holds the run token" is a type the compiler checks,
/// not a comment.
pub(crate) struct Runnable(TaskRef);

impl Runnable {
    /// The run token of `task`. The caller just made the task SCHEDULED
    /// (or spawned it) and is the one who must queue it: there is no other
    /// token for it.
    #[inline(always)]
    pub(crate) fn new(task: TaskRef) -> Runnable {
        Runnable(task)
    }

    /// Gives the token up, keeping a plain reference (the task parked, or
    /// finished).
    #[inline(always)]
    pub(crate) fn into_ref(self) -> TaskRef {
        self.0
    }

    /// The token as a pointer, for an intrusive queue (`inbox`): its
    /// reference goes with it.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let this = std::mem::ManuallyDrop::new(self);
        this.0 .0
    }

    /// Takes a token back from [`Runnable::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` came from `into_raw`, and is taken back once.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Runnable {
        Runnable(TaskRef(ptr))
    }
}

impl std::ops::Deref for Runnable {
    type Target = TaskRef;

    #[inline(always)]
    fn deref(&self) -> &TaskRef {
        &self.0
    }
}

impl fmt::Debug for Runnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Runs the body of the task headed by `header` (from the coroutine).
///
/// # Safety
///
/// `header` heads a live task whose run token the caller's worker holds,
/// and the body has not run yet.
pub(crate) unsafe fn run_body(header: NonNull<Header>) {
    // SAFETY: per the contract.
    unsafe { (header.as_ref().vtable.run_body)(header) }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            std::process::abort(); // as Arc does on a reference-count overflow
        }
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        self.release(1);
    }
}

impl TaskRef {
    /// Gives up `n` references (this one among them).
    #[inline]
    fn release(&self, n: usize) {
        if self.header().refs.fetch_sub(n, Ordering::Release) != n {
            return;
        }
        // Every other reference's use happens before the free (as in Arc).
        fence(Ordering::Acquire);
        // SAFETY: those were the last references.
        unsafe { (self.header().vtable.dealloc)(self.0) }
    }

    /// Drops this reference and the task's reference to itself: called
    /// once, by whoever completes the task (it is DONE), in one atomic
    /// operation.
    pub(crate) fn complete(self) {
        let this = std::mem::ManuallyDrop::new(self);
        this.release(2);
    }
}

/// A reference to every task of `shared` that is not freed yet (some may
/// be DONE), found by walking the task slab: spawning registers a task
/// nowhere. A block's first word is its task's count (see `Header`); a
/// nonzero count is taken one higher only while it stays nonzero, so a
/// task being freed or built is skipped, and the release store that
/// published a task's header comes before the read of its fields here.
pub(crate) fn live_tasks(shared: &Shared) -> Vec<TaskRef> {
    let mut out = Vec::new();
    slab::for_each_block(|block| {
        // SAFETY: every slab block begins with an atomic word, accessed only
        // atomically (`slab::alloc`); here it is only loaded and swapped.
        let refs = unsafe { block.cast::<AtomicUsize>().as_ref() };
        let mut n = refs.load(Ordering::Relaxed);
        while n != 0 {
            match refs.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    // Held now: the block heads a live task (the slab's
                    // only users are tasks, header first).
                    out.push(TaskRef(block.cast()));
                    return;
                }
                Err(now) => n = now,
            }
        }
    });
    // References to other runtimes' tasks are dropped outside the walk
    // (the last one frees its task).
    let (ours, _theirs): (Vec<TaskRef>, Vec<TaskRef>) =
        out.into_iter().partition(|t| t.header().runs_on(shared));
    ours
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.header();
        f.debug_struct("Task")
            .field("id", &h.id)
            .field("name", &h.name())
            .field("state", &h.state.load())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_bits_do_not_overlap() {
        let bits = [
            LIFECYCLE,
            STARTED,
            NOTIFIED,
            JOIN_WAITER,
            OS_BLOCKED,
            OS_WAKING,
        ];
        for (i, a) in bits.iter().enumerate() {
            for b in &bits[i + 1..] {
                assert_eq!(a & b, 0);
            }
            assert!(a >> SEQ_SHIFT == 0);
        }
    }

    #[test]
    fn park_then_unpark_schedules_once() {
        let s = State::new();
        s.transition_to_running();
        s.mark_started();
        let seq = s.commit_park().unwrap();
        assert!(s.load().is_parked());
        assert_eq!(s.unpark(), Unpark::Schedule);
        assert_eq!(s.unpark(), Unpark::Nothing, "already scheduled: a token");
        assert!(!s.fire_timer(seq), "a woken task's timer is stale");
        assert!(s.load().is_scheduled() && s.load().is_started());
    }

    #[test]
    fn unpark_before_commit_keeps_the_task_running() {
        let s = State::new();
        s.transition_to_running();
        assert_eq!(s.unpark(), Unpark::Nothing);
        assert!(s.commit_park().is_err());
        assert!(s.load().is_running());
        // The token was consumed: the next park commits.
        assert!(s.commit_park().is_ok());
    }

    #[test]
    fn timers_fire_only_for_their_own_park() {
        let s = State::new();
        s.transition_to_running();
        let first = s.commit_park().unwrap();
        assert_eq!(s.unpark(), Unpark::Schedule);
        s.transition_to_running();
        let second = s.commit_park().unwrap();
        assert_ne!(first, second);
        assert!(!s.fire_timer(first));
        assert!(s.timer_is_live(second));
        assert!(s.fire_timer(second));
        assert!(s.load().is_scheduled());
    }

    #[test]
    fn os_block_is_woken_by_unpark() {
        let s = State::new();
        s.transition_to_running();
        assert!(s.begin_os_block());
        assert_eq!(s.unpark(), Unpark::WakeBlockedThread);
        assert!(
            s.load().is_os_waking(),
            "the waker is marked until it is done"
        );
        assert_eq!(s.unpark(), Unpark::Nothing, "one wake per block");
        assert!(s.end_os_block());
        assert!(
            s.load().is_os_waking(),
            "ending the block leaves the waker's mark"
        );
        s.end_os_wake();
        assert!(!s.load().is_os_waking());
        assert!(s.load().is_running());
    }

    #[test]
    fn join_waiter_races_with_completion() {
        let s = State::new();
        s.transition_to_running();
        assert!(!s.register_join_waiter().is_done());
        assert!(s.complete().has_join_waiter());
        let t = State::new();
        t.transition_to_running();
        t.complete();
        assert!(t.register_join_waiter().is_done());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    fn running() -> Arc<State> {
        let s = State::new();
        s.transition_to_running();
        s.mark_started();
        Arc::new(s)
    }

    /// Switch, then commit: a worker commits a park while another thread
    /// unparks. Exactly one of them takes responsibility: the park sees the
    /// token, or the unpark schedules the parked task. Never both, never
    /// neither (a lost wake-up).
    #[test]
    fn park_commit_races_unpark() {
        loom::model(|| {
            let s = running();
            let s2 = s.clone();
            let unparker = thread::spawn(move || s2.unpark());
            let parked = s.commit_park().is_ok();
            let action = unparker.join().unwrap();
            assert_eq!(parked, action == Unpark::Schedule, "{:?}", s.load());
        });
    }

    /// A finishing body and its handle being dropped: exactly one of them
    /// drops the output (the body if the handle went first, the handle if
    /// the output was there), and the dropper reads it after it was
    /// written; the worker's look after the body (`mark_unwound`) stays
    /// off the cell (loom checks the cell's accesses).
    #[test]
    fn a_detached_output_is_dropped_exactly_once() {
        loom::model(|| {
            let s = running();
            let output = Arc::new(loom::cell::UnsafeCell::new(None::<u32>));
            let (s2, output2) = (s.clone(), output.clone());
            let body = thread::spawn(move || {
                // SAFETY: loom checks this access.
                output2.with_mut(|o| unsafe { *o = Some(7) });
                // SAFETY: as above; the handle saw no output.
                let taken = s2
                    .output_ready()
                    .then(|| output2.with_mut(|o| unsafe { (*o).take() }));
                // The worker's `mark_unwound` after a body that caught the
                // forced unwind and returned: it must not touch the cell
                // the handle may be reading.
                if !s2.load().is_output_ready() {
                    // SAFETY: as above.
                    output2.with_mut(|o| unsafe { (*o).get_or_insert(0) });
                }
                taken
            });
            let by_handle = s
                .detach()
                // SAFETY: as above; OUTPUT_READY was seen.
                .then(|| output.with_mut(|o| unsafe { (*o).take() }));
            let by_body = body.join().unwrap();
            assert_eq!(
                [by_body, by_handle].iter().flatten().collect::<Vec<_>>(),
                [&Some(7)]
            );
        });
    }

    /// A task blocking its OS thread (it parked while panicking) and its
    /// waker. The waker reads the task's runtime (to find the worker's
    /// parker) after the unpark that lets the task go on; the task must not
    /// finish, which lets its runtime be freed, before the waker is done.
    /// The blocked thread's deadline may pass at any point: it looks for
    /// the unpark once, then ends the block either way.
    #[test]
    fn an_os_blocked_task_outlives_its_wakers_look_at_the_runtime() {
        loom::model(|| {
            let s = running();
            let runtime_alive = Arc::new(loom::sync::atomic::AtomicBool::new(true));
            let (s2, alive) = (s.clone(), runtime_alive.clone());
            let waker = thread::spawn(move || {
                if s2.unpark() == Unpark::WakeBlockedThread {
                    // `wake_blocked_thread`.
                    assert!(alive.load(Ordering::Acquire), "read a freed runtime");
                    s2.end_os_wake();
                }
            });
            if s.begin_os_block() {
                if !s.end_os_block_if_notified() {
                    s.end_os_block();
                }
                // `block_os_thread`'s last step.
                while s.load().is_os_waking() {
                    thread::yield_now();
                }
            }
            // The task finishes; its runtime's drop may free it.
            runtime_alive.store(false, Ordering::Release);
            waker.join().unwrap();
        });
    }

    /// An unpark that finds a stale token (an earlier unpark the task has
    /// not consumed yet) must still publish what the waker wrote before it
    /// (a wait entry's state): the task consumes the token, looks for the
    /// message, and parks if it does not see it, so either it sees the
    /// message or the unpark schedules it. A token merged without a write
    /// lost wake-ups on 8 and 16 cores (a Mutex waiter parked forever).
    #[test]
    fn an_unpark_over_a_stale_token_still_publishes() {
        loom::model(|| {
            let s = running();
            assert_eq!(s.unpark(), Unpark::Nothing, "a stale token");
            let message = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let (s2, m2) = (s.clone(), message.clone());
            let waker = thread::spawn(move || {
                m2.store(true, Ordering::Release);
                s2.unpark()
            });
            // `wait::block` over `park_inner`: look, then consume a token
            // or commit the park.
            let mut parked = false;
            for _ in 0..3 {
                if message.load(Ordering::Acquire) {
                    break;
                }
                if s.take_notified() {
                    continue;
                }
                match s.commit_park() {
                    Ok(_) => {
                        parked = true;
                        break;
                    }
                    Err(()) => continue,
                }
            }
            let action = waker.join().unwrap();
            if parked {
                assert_eq!(
                    action,
                    Unpark::Schedule,
                    "parked, message unseen, nobody wakes it"
                );
            } else {
                assert!(message.load(Ordering::Acquire));
            }
        });
    }

    /// A timer of park `seq` and an unpark race: exactly one schedules it.
    #[test]
    fn timer_races_unpark() {
        loom::model(|| {
            let s = running();
            let seq = s.commit_park().unwrap();
            let s2 = s.clone();
            let timer = thread::spawn(move || s2.fire_timer(seq));
            let unparked = s.unpark() == Unpark::Schedule;
            let fired = timer.join().unwrap();
            assert!(unparked ^ fired, "unpark {unparked}, timer {fired}");
            assert!(s.load().is_scheduled());
        });
    }

    /// A joiner registering while the task completes: if the joiner did
    /// not see DONE, the completer sees the joiner and wakes it.
    #[test]
    fn join_waiter_races_completion() {
        loom::model(|| {
            let s = running();
            let s2 = s.clone();
            let joiner = thread::spawn(move || s2.register_join_waiter().is_done());
            let saw_waiter = s.complete().has_join_waiter();
            let saw_done = joiner.join().unwrap();
            assert!(saw_done || saw_waiter);
        });
    }

    /// Two unparkers and a park: the task is scheduled at most once.
    #[test]
    fn two_unparks_schedule_once() {
        loom::model(|| {
            let s = running();
            let seq = s.commit_park();
            let (a, b) = (s.clone(), s.clone());
            let t1 = thread::spawn(move || a.unpark() == Unpark::Schedule);
            let t2 = thread::spawn(move || b.unpark() == Unpark::Schedule);
            let scheduled = usize::from(t1.join().unwrap()) + usize::from(t2.join().unwrap());
            assert_eq!(scheduled, usize::from(seq.is_ok()));
        });
    }
}
