//! grove's engine: guarded growable stacks, stackful coroutines, the M:N
//! work-stealing scheduler, the park seam and timers.
//!
//! # Vocabulary
//!
//! - **Task**, or green thread: a closure with a record (`task::Header`).
//!   Unstarted, it is just that; once started it owns a coroutine and a
//!   stack.
//! - **Worker**: an OS thread that runs tasks. Each has a deque of unstarted
//!   tasks (others may steal from it), a local queue of resumable tasks
//!   (nobody steals from it), a run-next slot, an inbox, a timer heap, a
//!   stack cache, and a `Parker` to sleep on.
//! - **Run token**: whoever takes a task out of a run queue may run it; a
//!   task is in at most one queue (see `task`: the token is the type
//!   `Runnable`).
//! - **Park seam** ([`park`]): block the current task until unparked or a
//!   deadline, from a green thread or an OS thread alike.
//!
//! # Invariants
//!
//! 1. A started task resumes only on its home worker (unless the runtime was
//!    built with full migration, an unsafe opt-in).
//! 2. A task never runs on two workers at once, and is never scheduled
//!    while still on its stack ("switch, then commit", see `task::State`).
//! 3. A green thread never switches away while its OS thread is panicking.
//! 4. A runtime outlives every task of it that is not finished: its drop
//!    unwinds parked tasks on their own workers first, or leaks the ones
//!    that refuse to die, never freeing what they use (see `shutdown`).
//!
//! Unsafe code lives in `stack` (memory maps), `coroutine` (stack switch),
//! `signal` (overflow handler), `task` (the run-token cells), `worker` (the
//! current-task and own-worker pointers), `scope` (lifetime of scoped
//! closures), `wait` (wait nodes on a parked thread's stack), `lock` (the
//! channels' spin lock), `inbox` (an intrusive queue of task headers),
//! `blocking` (a call borrowed from a parked caller) and `io` (poll(2)).
//!
//! # The public surface
//!
//! Everything public here is sound to call from safe code; what is not
//! (`Config::set_full_migration`) is an `unsafe fn` with its contract. The
//! crates above use this surface; applications use it through `grove`.
//!
//! | item | what it is for |
//! |---|---|
//! | [`Scheduler`], [`Config`], [`Handle`], [`SpawnOptions`], [`global`] | start a scheduler, spawn on it (from anywhere), shut it down ([`ShutdownOutcome`]) |
//! | [`Stats`], [`TaskInfo`], [`TaskState`], [`DeadlockProbe`] | diagnostics |
//! | [`thread`] | [`Thread`], [`ThreadId`], [`JoinHandle`] (and [`JoinFuture`]), `current`, `current_worker` |
//! | [`scope`] | scoped green threads (`std::thread::scope`'s twin) |
//! | [`park`] | the park seam: `park*`, [`Unparker`], [`WaitReason`], `yield_now`, `sleep*`, `coop_tick` |
//! | [`wait`] | wait queues with hand-off (channels and locks are built on them): every item safe to call, a select arm's packet owning its context |
//! | [`lock`] | the channels' spin lock (`Lock`, a guard `Sync` only for `Sync` data) |
//! | [`io`] | readiness of file descriptors on the runtime's poller (`Registration`, `wait_os`) |
//! | [`blocking`] | the blocking pool (`blocking`) |
//! | [`stack`] | stack limits and modes (`validate_stack_size`, `stack_mode`, `max_map_count`...) |
//!
//! Hidden from the docs but public for the crates above: `tls_access!`
//! (a thread-local access that a migrating green thread makes afresh).
//! Everything else (tasks, workers, coroutines, timers, the slab, the
//! signal handler, the idle protocol) is private to this crate.

#![warn(missing_docs)]

pub mod blocking;
mod coroutine;
mod idle;
mod inbox;
pub mod io;
pub mod lock;
mod loom;
mod monitor;
pub mod park;
pub mod scheduler;
pub mod scope;
mod shutdown;
mod signal;
mod slab;
pub mod stack;
mod task;
pub mod thread;
mod timer;
#[doc(hidden)]
pub mod tls;
pub mod wait;
mod worker;

pub use park::{Unparker, WaitReason};
pub use scheduler::{
    global, Config, DeadlockProbe, Handle, Scheduler, SpawnOptions, Stats, TaskInfo, TaskState,
    WakeHold, DEFAULT_STALL_WARNING,
};
pub use shutdown::ShutdownOutcome;
pub use thread::{current, JoinFuture, JoinHandle, Thread, ThreadId};
