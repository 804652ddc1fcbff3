//! golang.org/x/sync's `errgroup`: a group of green threads working on
//! subtasks of one task, where the first error wins and cancels the rest.
//!
//! # The model
//!
//! A group is shared (`Arc`, so `Clone`), as Go's `*Group` is shared by
//! pointer: tasks may call `go` on the group they run in.
//!
//! 1. `go` takes a slot of the limit (parking while `n` tasks run), counts
//!    the task in `active`, and spawns it.
//! 2. A task that returns `Err` records it if it is the first failure and
//!    then cancels the group's context; a task that panics records that it
//!    did (the payload stays with the green thread, as with
//!    `std::thread::scope`) and cancels too.
//! 3. When a task ends, its slot is released first, then `active` drops;
//!    at zero, waiters of `wait` are woken.
//! 4. `wait` parks until `active` is zero, cancels the context, then
//!    panics if a task panicked, else returns the first error.

use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use grove_scheduler::park::WaitReason;
use grove_scheduler::{Handle, SpawnOptions};

use super::monitor::Monitor;
use super::{OwnedSemaphorePermit, Semaphore};
use crate::context::{CancelHandle, Context};

static WAIT: WaitReason = WaitReason("ErrGroup::wait");

/// Go's `errgroup.Group`: runs tasks in green threads, waits for them all,
/// and returns the first error; with [`with_context`](ErrGroup::with_context),
/// the first error also cancels a context the tasks watch.
///
/// `E` is the tasks' error type; the default, `Box<dyn Error + Send +
/// Sync>`, takes any error through `?`. Rust does not apply a default type
/// in an expression, so name it where nothing else fixes `E`:
/// `let g: ErrGroup = ErrGroup::new();`.
///
/// ```
/// use grove_runtime::context::Context;
/// use grove_runtime::sync::ErrGroup;
///
/// let (g, ctx) = ErrGroup::<String>::with_context(&Context::background());
/// g.set_limit(4); // at most 4 fetches at once
/// for url in ["a", "b", "bad", "c"] {
///     let ctx = ctx.clone();
///     g.go(move || {
///         if ctx.is_done() {
///             return Ok(()); // a sibling failed: give up early
///         }
///         if url == "bad" {
///             return Err(format!("fetch {url}: 404"));
///         }
///         Ok(())
///     });
/// }
/// assert_eq!(g.wait(), Err("fetch bad: 404".to_string()));
/// assert!(ctx.is_done()); // cancelled by the error (and by wait)
/// ```
///
/// # Differences from Go
///
/// - A task that panics does not bring the process down: the panic is
///   reported on the panicking green thread as usual, cancels the context,
///   and `wait()` panics once every task has finished (as
///   `std::thread::scope` does).
/// - `wait()` hands the first error over (`E` need not be `Clone`): a
///   second `wait()` returns `Ok(())` unless a task failed since.
/// - [`set_limit`](ErrGroup::set_limit) panics while any task of the group
///   runs (Go only counts tasks started under a limit); `usize::MAX` means
///   no limit (Go's negative limit), and [`go`](ErrGroup::go) panics under
///   a limit of 0 instead of parking forever.
/// - The context from `with_context` is cancelled with `err()` =
///   `Cancelled` and no cause (Go sets the error as its cause; here `E`
///   need be neither an `Error` nor `Clone`).
pub struct ErrGroup<E = Box<dyn Error + Send + Sync>> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    /// Tasks spawned and not finished (step 1, step 3).
    active: AtomicUsize,
    /// Woken when `active` reaches zero.
    idle: Monitor<()>,
    failure: Mutex<Failure<E>>,
    /// The limit and its slots, `None` without a limit.
    limit: Mutex<Option<(usize, Arc<Semaphore>)>>,
    cancel: Option<CancelHandle>,
}

struct Failure<E> {
    first: Option<E>,
    panicked: bool,
}

impl<E> Clone for ErrGroup<E> {
    /// Another handle to the same group.
    fn clone(&self) -> Self {
        ErrGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Send + 'static> Default for ErrGroup<E> {
    fn default() -> Self {
        ErrGroup::build(None)
    }
}

impl<E> fmt::Debug for ErrGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failure = self.inner.failure();
        f.debug_struct("ErrGroup")
            .field("active", &self.inner.active.load(Ordering::SeqCst))
            .field("failed", &failure.first.is_some())
            .field("panicked", &failure.panicked)
            .finish_non_exhaustive()
    }
}

impl<E> Inner<E> {
    fn failure(&self) -> MutexGuard<'_, Failure<E>> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Step 2: keeps the first error and cancels; a later one is dropped
    /// after the lock is released.
    fn fail(&self, err: Option<E>) {
        let (first, loser) = {
            let mut failure = self.failure();
            let first = failure.first.is_none() && !failure.panicked;
            match err {
                Some(err) if failure.first.is_none() => {
                    failure.first = Some(err);
                    (first, None)
                }
                Some(err) => (first, Some(err)),
                None => {
                    failure.panicked = true;
                    (first, None)
                }
            }
        };
        drop(loser);
        if first {
            if let Some(cancel) = &self.cancel {
                cancel.cancel();
            }
        }
    }
}

/// Step 3, run when a task ends (returns or unwinds).
struct TaskEnd<E> {
    group: Arc<Inner<E>>,
    slot: Option<OwnedSemaphorePermit>,
    /// Set when the task starts. A task its runtime dropped unrun (spawned
    /// while the runtime shut down) is dropped on the spawner's thread,
    /// which may be unwinding: that is not a panic of the task.
    started: bool,
}

impl<E> Drop for TaskEnd<E> {
    fn drop(&mut self) {
        if self.started && std::thread::panicking() {
            if grove_scheduler::park::is_shutdown_unwinding() {
                // Unwound by its runtime's shutdown, not a panic of its
                // own: the group's work is cut short (its context is
                // cancelled), but `wait` has no panic to raise (raised in
                // a destructor run by that same shutdown, it aborted).
                if let Some(cancel) = &self.group.cancel {
                    cancel.cancel();
                }
            } else {
                self.group.fail(None);
            }
        }
        drop(self.slot.take());
        if self.group.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.group.idle.notify(usize::MAX);
        }
    }
}

impl<E: Send + 'static> ErrGroup<E> {
    /// A group with no limit and no context.
    pub fn new() -> ErrGroup<E> {
        ErrGroup::build(None)
    }

    /// Go's `errgroup.WithContext`: a group, and a child of `parent` that
    /// is cancelled when the first task fails (returns `Err` or panics) or
    /// when [`wait`](ErrGroup::wait) returns, whichever comes first.
    pub fn with_context(parent: &Context) -> (ErrGroup<E>, Context) {
        let (ctx, cancel) = parent.with_cancel();
        (ErrGroup::build(Some(cancel)), ctx)
    }

    fn build(cancel: Option<CancelHandle>) -> ErrGroup<E> {
        ErrGroup {
            inner: Arc::new(Inner {
                active: AtomicUsize::new(0),
                idle: Monitor::new(()),
                failure: Mutex::new(Failure {
                    first: None,
                    panicked: false,
                }),
                limit: Mutex::new(None),
                cancel,
            }),
        }
    }

    fn limit(&self) -> Option<(usize, Arc<Semaphore>)> {
        self.inner
            .limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` in a new green thread of the group (on the calling green
    /// thread's runtime, or the global one from an OS thread). Under a
    /// limit of `n`, parks first while `n` tasks of the group run.
    ///
    /// # Panics
    ///
    /// Under a limit of 0 (no task could ever start: Go would block
    /// forever), or if no green thread can be spawned.
    #[track_caller]
    pub fn go<F>(&self, f: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let slot = self.limit().map(|(n, sem)| {
            assert!(
                n != 0,
                "ErrGroup::go under a limit of 0 would park forever; set a limit of at least 1, \
                 or use try_go"
            );
            sem.acquire_owned()
        });
        self.start(slot, f, Location::caller());
    }

    /// Runs `f` in a new green thread of the group only if the limit lets
    /// one more run now; returns whether it was started (Go's `TryGo`).
    #[track_caller]
    pub fn try_go<F>(&self, f: F) -> bool
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        let slot = match self.limit() {
            Some((_, sem)) => match sem.try_acquire_owned() {
                Some(slot) => Some(slot),
                None => return false,
            },
            None => None,
        };
        self.start(slot, f, Location::caller());
        true
    }

    fn start<F>(&self, slot: Option<OwnedSemaphorePermit>, f: F, at: &'static Location<'static>)
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
    {
        self.inner.active.fetch_add(1, Ordering::SeqCst);
        let end = TaskEnd {
            group: self.inner.clone(),
            slot,
            started: false,
        };
        let task = move || {
            let mut end = end;
            end.started = true;
            if let Err(err) = f() {
                end.group.fail(Some(err));
            }
        };
        if let Err(err) = Handle::spawn_current(SpawnOptions::default(), at, task) {
            // The closure (and with it `end`) was dropped: the count and
            // slot are given back.
            panic!("ErrGroup::go: failed to spawn a green thread: {err}");
        }
    }

    /// Sets the most tasks of the group that may run at once: `go` parks
    /// while that many run, `try_go` refuses. `usize::MAX` removes the
    /// limit (Go's negative limit).
    ///
    /// # Panics
    ///
    /// If any task of the group is still running (Go: "errgroup: modify
    /// limit while N goroutines in the group are still active"). Set the
    /// limit before the first `go`, or after `wait`.
    pub fn set_limit(&self, n: usize) {
        let mut limit = self.inner.limit.lock().unwrap_or_else(|e| e.into_inner());
        let active = self.inner.active.load(Ordering::SeqCst);
        if active != 0 {
            drop(limit);
            panic!(
                "ErrGroup::set_limit: modify limit while {active} green thread(s) in the group \
                 are still active; set it before the first go, or after wait"
            );
        }
        *limit = (n != usize::MAX).then(|| (n, Arc::new(Semaphore::new(n))));
    }

    /// Waits until every task of the group has finished, cancels the
    /// group's context, and returns the first error (`Ok(())` if none).
    /// Parks a green caller; blocks an OS thread. A task of the group that
    /// calls `wait` waits for itself: a deadlock, as in Go.
    ///
    /// The error moves out to the first `wait` that returns after it (`E`
    /// need not be `Clone`): a later or concurrent `wait` returns
    /// `Ok(())` unless another task failed since, where Go hands every
    /// `Wait` the same error.
    ///
    /// A task that never ran (spawned while its runtime shut down, which
    /// drops such a spawn unrun) counts as neither an error nor a panic,
    /// and neither does one its runtime's shutdown unwound while it was
    /// parked (that cancels the group's context: its work was cut short).
    ///
    /// # Panics
    ///
    /// If a task of the group panicked (after every task has finished).
    /// The panic is reported once: the group works again afterwards.
    #[track_caller]
    pub fn wait(&self) -> Result<(), E> {
        let active = &self.inner.active;
        if active.load(Ordering::SeqCst) != 0 {
            let _ = self
                .inner
                .idle
                .wait_until(&WAIT, None, Location::caller(), |_| {
                    (active.load(Ordering::SeqCst) == 0).then_some(())
                });
        }
        if let Some(cancel) = &self.inner.cancel {
            cancel.cancel();
        }
        let (first, panicked) = {
            let mut failure = self.inner.failure();
            (failure.first.take(), std::mem::take(&mut failure.panicked))
        };
        if panicked {
            drop(first);
            panic!("ErrGroup::wait: a green thread of the group panicked");
        }
        first.map_or(Ok(()), Err)
    }
}

/// The auto traits a Go user expects of a group shared by pointer,
/// checked when this compiles.
#[allow(dead_code)]
fn auto_traits() {
    fn clone_send_sync<T: Clone + Send + Sync>() {}
    clone_send_sync::<ErrGroup>();
    clone_send_sync::<ErrGroup<String>>();
}
