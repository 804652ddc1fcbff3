//! Go's `context.AfterFunc`: a function run in its own green thread once
//! a context is done.
//!
//! Without a deadline anywhere up its chain, a context becomes done only by
//! a cancellation, which runs the node's hooks: the function waits there as
//! a `Hook::Func` and costs no green thread until it runs. With a deadline
//! (lazy: no timer fires at it), a watcher green thread waits on `done()`,
//! which closes at the deadline or on cancel. Either way the function sits
//! in one shared slot that whoever runs it or stops it takes, so exactly
//! one of them wins.

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex, Weak};

use grove_channels::{bounded, select, Receiver, Sender};
use grove_scheduler::{Handle, SpawnOptions};

use super::{next_id, Context, Hook, Node};

/// An `after_func` and where it runs.
pub(super) struct AfterFunc {
    /// Taken by whoever runs it or stops it: exactly one of them wins.
    f: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// The runtime of the green thread that called `after_func` (the
    /// global runtime from an OS thread).
    runtime: Handle,
    at: &'static Location<'static>,
}

impl AfterFunc {
    fn take(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.f.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    pub(super) fn is_armed(&self) -> bool {
        self.f.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Runs `f` in a new green thread of its runtime, if nobody ran or
    /// stopped it yet. Should that runtime be gone (shut down) or out of
    /// stacks, on the calling thread's runtime, else the global one; failing
    /// those, on the calling thread: a context's `after_func` is never
    /// silently lost.
    pub(super) fn spawn(self: Arc<Self>) {
        let Some(f) = self.take() else {
            return;
        };
        let opts = || SpawnOptions {
            name: Some(AFTER_FUNC_NAME.to_string()),
            ..SpawnOptions::default()
        };
        let f = match self.runtime.spawn_or_back(opts(), self.at, f) {
            Ok(()) => return,
            Err(f) => f,
        };
        let Err(f) = Handle::current().spawn_or_back(opts(), self.at, f) else {
            return;
        };
        // The calling thread's runtime may be shutting down too (a
        // destructor of one of its green threads cancelled the context).
        if let Err(f) = grove_scheduler::global()
            .handle()
            .spawn_or_back(opts(), self.at, f)
        {
            f();
        }
    }
}

/// The name of the green threads that run `after_func`s (and watch their
/// contexts' deadlines), as `Runtime::tasks()` shows them.
const AFTER_FUNC_NAME: &str = "context::after_func";

/// Stops an [`after_func`]: Go's `stop` function. Cloning it gives another
/// handle to the same registration; dropping it does not stop anything.
#[derive(Clone)]
pub struct AfterFuncHandle {
    func: Arc<AfterFunc>,
    /// Where the hook was registered (a context without a deadline).
    hook: Option<(Weak<Node>, u64)>,
    /// Closed to release the deadline watcher (a context with one).
    watcher_stop: Option<Sender<()>>,
}

impl AfterFuncHandle {
    /// Stops `f` from running. Returns true if this call stopped it; false
    /// if `f` was already started (the context is done) or stopped before.
    /// It does not wait for a started `f` to finish (Go's rule).
    pub fn stop(&self) -> bool {
        let stopped = self.func.take();
        if let Some((node, id)) = &self.hook {
            if let Some(node) = node.upgrade() {
                drop(node.remove_hook(*id));
            }
        }
        if let Some(tx) = &self.watcher_stop {
            tx.close();
        }
        // `f` (a user closure) drops here, no lock held.
        stopped.is_some()
    }
}

impl fmt::Debug for AfterFuncHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AfterFuncHandle")
            .field("armed", &self.func.is_armed())
            .finish_non_exhaustive()
    }
}

/// Go's `context.AfterFunc`: runs `f` in its own green thread once `ctx`
/// is done (cancelled, its deadline passed, or either of those for an
/// ancestor). If `ctx` is done already, `f` starts at once. The returned
/// handle's [`stop`](AfterFuncHandle::stop) keeps `f` from running.
///
/// `f` runs on the runtime of the green thread that called `after_func`
/// (on the global runtime if an OS thread called it). A context that can
/// never be done ([`Context::background`], [`Context::without_cancel`])
/// never runs `f`.
///
/// Cost: without a deadline, `f` waits as a hook in the context (no green
/// thread until it runs). With a deadline, a green thread parks until the
/// deadline or the cancellation, whichever comes first, or until `stop()`.
///
/// ```
/// use grove_runtime::context::{self, Context};
/// use grove_runtime::sync::WaitGroup;
///
/// let (ctx, cancel) = Context::background().with_cancel();
/// let wg = WaitGroup::new();
/// wg.add(1);
/// let done = wg.clone();
/// let _handle = context::after_func(&ctx, move || done.done());
/// cancel.cancel();
/// wg.wait(); // f ran in its own green thread
///
/// let (ctx, _cancel) = Context::background().with_cancel();
/// let handle = context::after_func(&ctx, || unreachable!());
/// assert!(handle.stop()); // stopped before it could run
/// assert!(!handle.stop());
/// ```
#[track_caller]
pub fn after_func<F>(ctx: &Context, f: F) -> AfterFuncHandle
where
    F: FnOnce() + Send + 'static,
{
    let func = Arc::new(AfterFunc {
        f: Mutex::new(Some(Box::new(f))),
        runtime: Handle::current(),
        at: Location::caller(),
    });
    let mut handle = AfterFuncHandle {
        func: func.clone(),
        hook: None,
        watcher_stop: None,
    };
    let Some(node) = &ctx.node else {
        return handle; // Never done: `f` waits for `stop()` or forever.
    };
    if node.deadline.is_none() {
        let id = next_id();
        match node.add_hook(id, Hook::Func(func)) {
            Ok(()) => handle.hook = Some((Arc::downgrade(node), id)),
            Err(hook) => hook.fire(),
        }
        return handle;
    }
    if ctx.is_done() {
        func.spawn();
        return handle;
    }
    // A deadline arms no hook (deadlines are lazy): a watcher green thread
    // waits for `done()`, which closes at the deadline or on cancel. It
    // holds the context, so an ancestor's cancellation still reaches it.
    let (stop_tx, stop_rx) = bounded::<()>(0);
    handle.watcher_stop = Some(stop_tx);
    let watch = Watch {
        ctx: ctx.clone(),
        stop: stop_rx,
        func,
    };
    let opts = SpawnOptions {
        name: Some(AFTER_FUNC_NAME.to_string()),
        ..SpawnOptions::default()
    };
    // Made here, not in the green thread: a watcher dropped before it ever
    // ran (its runtime dropped first) hands the watch on as well.
    let watching = Watching(Some(watch));
    let watcher = move || {
        let mut watching = watching;
        let done = watching.0.as_ref().is_some_and(Watch::wait);
        if let Some(watch) = watching.0.take() {
            if done {
                watch.run();
            }
        }
    };
    let watcher = handle
        .func
        .runtime
        .spawn_or_back(opts, handle.func.at, Box::new(watcher));
    if let Err(watcher) = watcher {
        // The runtime is gone, shutting down or out of stacks: watch from
        // the caller's runtime, else the global one. Failing both (a
        // destructor run by their shutdowns), the watcher is dropped unrun,
        // and its `Watching` hands the watch to an OS thread of its own.
        let opts = || SpawnOptions {
            name: Some(AFTER_FUNC_NAME.to_string()),
            ..SpawnOptions::default()
        };
        let at = handle.func.at;
        if let Err(watcher) = Handle::current().spawn_or_back(opts(), at, watcher) {
            if let Err(watcher) =
                grove_scheduler::global()
                    .handle()
                    .spawn_or_back(opts(), at, watcher)
            {
                drop(watcher);
            }
        }
    }
    handle
}

/// What a deadline watcher holds: the context, the `stop` signal and the
/// function.
struct Watch {
    ctx: Context,
    stop: Receiver<()>,
    func: Arc<AfterFunc>,
}

impl Watch {
    /// Waits until the context is done (true) or the handle stops the
    /// function (false). The stop channel also closes when the last handle
    /// is dropped unstopped, which stops nothing (Go's callers drop
    /// `stop` all the time): the function is still armed then, and the
    /// wait goes on for `done()` alone.
    fn wait(&self) -> bool {
        select! {
            recv(self.ctx.done()) -> _ => return true,
            recv(self.stop) -> _ => {}
        }
        if !self.func.is_armed() {
            return false;
        }
        let _closed = self.ctx.done().recv();
        true
    }

    /// Runs the function here, unless stopped meanwhile.
    fn run(self) {
        let Watch { ctx, func, .. } = self;
        drop(ctx);
        if let Some(f) = func.take() {
            f();
        }
    }
}

/// The watcher green thread's hold on its [`Watch`]. If the green thread
/// is unwound while it waits, or dropped before it ran (its runtime was
/// dropped), the watch moves to
/// an OS thread of its own, which waits and then starts the function in a
/// green thread of the global runtime: an `after_func` is never lost with
/// a runtime (as one without a deadline is not: its hook starts it from
/// the canceller's thread).
struct Watching(Option<Watch>);

impl Drop for Watching {
    fn drop(&mut self) {
        let Some(watch) = self.0.take() else {
            return;
        };
        let moved = std::thread::Builder::new()
            .name(AFTER_FUNC_NAME.to_string())
            .spawn(move || {
                if watch.wait() {
                    // In a green thread, as ever: not of the dropped
                    // runtime, which refuses, but of the global one.
                    let Watch { ctx, func, .. } = watch;
                    drop(ctx);
                    func.spawn();
                }
            });
        if let Err(e) = moved {
            eprintln!("grove: context::after_func: could not keep watching the deadline: {e}");
        }
    }
}
