//! The rest of Go's `context` through the public API: typed values found
//! at the nearest ancestor (`with_value` / `value`), cancellation causes
//! (`with_cancel_cause` / `cause`: the first cancellation wins, children
//! inherit it, it keeps its type), `without_cancel` (values kept, never
//! done), and `context::after_func` (runs once, in its own green thread,
//! on cancel or at the deadline; `stop` as Go's). Tree cancellation itself
//! is in context_tree.rs.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::chan::{self, TryRecvError};
use grove::context::{self, AfterFuncHandle, CancelCauseHandle, Context, ContextError};
use grove::sync::{Arc, Mutex, WaitGroup};
use sync_util::{
    assert_clone_send_sync, assert_send_sync, block_on_each, for_each_workers, runtime, wait_until,
    watchdog, LATE_LIMIT,
};

#[derive(Debug, PartialEq)]
struct RequestId(u64);

#[derive(Debug, PartialEq)]
struct User(&'static str);

#[derive(Debug, Clone, PartialEq)]
struct Shutdown(&'static str);

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutting down: {}", self.0)
    }
}

impl Error for Shutdown {}

fn cause_of(ctx: &Context) -> Option<Shutdown> {
    ctx.cause()?.downcast_ref::<Shutdown>().cloned()
}

fn context_error_cause(ctx: &Context) -> Option<ContextError> {
    ctx.cause()?.downcast_ref::<ContextError>().copied()
}

// ---------------------------------------------------------------------------
// Values.

#[test]
fn values_are_found_at_the_nearest_ancestor() {
    block_on_each(|_| {
        let root = Context::background().with_value(RequestId(1));
        let (cancellable, cancel) = root.with_cancel();
        let with_user = cancellable.with_value(User("ann"));
        let shadowed = with_user.with_value(RequestId(2));
        let (leaf, _leaf_cancel) = shadowed.with_timeout(Duration::from_secs(3600));

        assert_eq!(root.value::<RequestId>(), Some(&RequestId(1)));
        assert_eq!(root.value::<User>(), None);
        assert_eq!(with_user.value::<RequestId>(), Some(&RequestId(1)));
        assert_eq!(
            leaf.value::<RequestId>(),
            Some(&RequestId(2)),
            "nearest wins"
        );
        assert_eq!(leaf.value::<User>(), Some(&User("ann")));
        assert_eq!(leaf.value::<String>(), None);
        assert_eq!(Context::background().value::<RequestId>(), None);

        // A value context is cancelled with its parent, keeps its values,
        // and shares its deadline.
        assert_eq!(leaf.deadline(), shadowed.deadline().or(leaf.deadline()));
        cancel.cancel();
        assert_eq!(with_user.err(), Some(ContextError::Cancelled));
        assert_eq!(leaf.err(), Some(ContextError::Cancelled));
        assert_eq!(leaf.value::<User>(), Some(&User("ann")));
        assert_eq!(root.err(), None);
    });
}

#[test]
fn values_cross_into_green_threads_and_os_threads() {
    watchdog(|| {
        let ctx = Context::background()
            .with_value(RequestId(9))
            .with_value(Arc::new(Mutex::new(Vec::<u64>::new())));
        let green: Vec<_> = (0..20)
            .map(|i| {
                let ctx = ctx.clone();
                grove::go(move || {
                    let id = ctx.value::<RequestId>().unwrap().0;
                    ctx.value::<Arc<Mutex<Vec<u64>>>>()
                        .unwrap()
                        .lock()
                        .unwrap()
                        .push(id * 100 + i);
                })
            })
            .collect();
        let os = {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.value::<RequestId>().map(|r| r.0))
        };
        green.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(os.join().unwrap(), Some(9));
        let log = ctx.value::<Arc<Mutex<Vec<u64>>>>().unwrap();
        let mut got = log.lock().unwrap().clone();
        got.sort_unstable();
        assert_eq!(got, (900..920).collect::<Vec<_>>());
    });
}

/// A chain of 100,000 nested values is built and dropped inside a green
/// thread with a small stack: dropping it must not recurse.
#[test]
fn a_long_value_chain_drops_without_recursion() {
    watchdog(|| {
        let rt = runtime(1);
        let h = grove::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn_on(&rt, || {
                let mut ctx = Context::background();
                for i in 0..100_000u64 {
                    ctx = ctx.with_value(i);
                }
                let nearest = *ctx.value::<u64>().unwrap();
                drop(ctx);
                nearest
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), 99_999);
    });
}

// ---------------------------------------------------------------------------
// Causes.

#[test]
fn a_cause_reaches_every_descendant_and_keeps_its_type() {
    block_on_each(|_| {
        let (ctx, cancel) = Context::background().with_cancel_cause();
        let (child, _h1) = ctx.with_cancel();
        let grandchild = child.with_value(RequestId(3));
        let (timed, _h2) = grandchild.with_timeout(Duration::from_secs(3600));
        for c in [&ctx, &child, &grandchild, &timed] {
            assert!(c.cause().is_none(), "not done: no cause");
        }
        cancel.cancel(Shutdown("maintenance"));
        for c in [&ctx, &child, &grandchild, &timed] {
            assert_eq!(c.err(), Some(ContextError::Cancelled));
            assert_eq!(cause_of(c), Some(Shutdown("maintenance")));
            assert_eq!(c.cause().unwrap().to_string(), "shutting down: maintenance");
        }
        // A child made after the cancellation is born with the cause.
        let (late, _h3) = ctx.with_cancel();
        assert_eq!(cause_of(&late), Some(Shutdown("maintenance")));
    });
}

/// Go's `TestCause`, row "WithTimeout: parent cause before timeout": a
/// child made under a parent cancelled with a cause takes the parent's
/// error and cause, even when its own deadline (or one it inherits) has
/// passed by the time it is made: it was never live.
#[test]
fn a_child_of_a_cancelled_parent_takes_its_cause_whatever_its_deadline() {
    block_on_each(|_| {
        let (parent, cancel) = Context::background().with_cancel_cause();
        cancel.cancel(Shutdown("parent first"));
        let (child, _c) = parent.with_timeout(Duration::ZERO);
        assert_eq!(child.err(), Some(ContextError::Cancelled));
        assert_eq!(cause_of(&child), Some(Shutdown("parent first")));

        // The deadline an ancestor gave: passed before the child is made.
        let (ancestor, _a) = Context::background().with_timeout(Duration::from_millis(5));
        let (parent, cancel) = ancestor.with_cancel_cause();
        cancel.cancel(Shutdown("before the deadline"));
        let _ = ancestor.done().recv(); // the deadline passes
        assert_eq!(parent.err(), Some(ContextError::Cancelled));
        let (child, _c) = parent.with_cancel();
        assert_eq!(child.err(), Some(ContextError::Cancelled));
        assert_eq!(cause_of(&child), Some(Shutdown("before the deadline")));
        // A deadline that passed while the context was live still wins.
        let (live, cancel_live) = ancestor.with_cancel_cause();
        cancel_live.cancel(Shutdown("too late"));
        assert_eq!(live.err(), Some(ContextError::DeadlineExceeded));
    });
}

#[test]
fn the_first_cancellation_wins() {
    watchdog(|| {
        // Cancelled twice: the first cause stays.
        let (ctx, cancel) = Context::background().with_cancel_cause();
        cancel.cancel(Shutdown("first"));
        cancel.cancel(Shutdown("second"));
        assert_eq!(cause_of(&ctx), Some(Shutdown("first")));

        // The parent first: the child inherits the parent's cause and its
        // own later cancel changes nothing.
        let (parent, cancel_parent) = Context::background().with_cancel_cause();
        let (child, cancel_child) = parent.with_cancel_cause();
        cancel_parent.cancel(Shutdown("parent"));
        cancel_child.cancel(Shutdown("child"));
        assert_eq!(cause_of(&child), Some(Shutdown("parent")));

        // The child first: it keeps its own; the parent gets its own.
        let (parent, cancel_parent) = Context::background().with_cancel_cause();
        let (child, cancel_child) = parent.with_cancel_cause();
        cancel_child.cancel(Shutdown("child"));
        cancel_parent.cancel(Shutdown("parent"));
        assert_eq!(cause_of(&child), Some(Shutdown("child")));
        assert_eq!(cause_of(&parent), Some(Shutdown("parent")));

        // A plain cancel under a cause-cancelled parent: the parent's cause.
        let (parent, cancel_parent) = Context::background().with_cancel_cause();
        let (child, _cancel_child) = parent.with_cancel();
        cancel_parent.cancel(Shutdown("up"));
        assert_eq!(cause_of(&child), Some(Shutdown("up")));
    });
}

#[test]
fn without_a_cause_the_cause_is_the_error() {
    watchdog(|| {
        assert!(Context::background().cause().is_none());

        let (ctx, cancel) = Context::background().with_cancel();
        assert!(ctx.cause().is_none());
        cancel.cancel();
        assert_eq!(context_error_cause(&ctx), Some(ContextError::Cancelled));

        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
        let _ = ctx.done().recv();
        assert_eq!(
            context_error_cause(&ctx),
            Some(ContextError::DeadlineExceeded)
        );

        // The deadline passed before the cancel with a cause: the deadline
        // was first, and stays the error and the cause.
        let (parent, cancel_parent) = Context::background().with_cancel_cause();
        let (timed, _h) = parent.with_timeout(Duration::from_millis(1));
        let _ = timed.done().recv();
        cancel_parent.cancel(Shutdown("too late"));
        assert_eq!(timed.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(
            context_error_cause(&timed),
            Some(ContextError::DeadlineExceeded)
        );
        assert_eq!(cause_of(&parent), Some(Shutdown("too late")));
    });
}

/// Green threads parked on `done()` see the cause once woken.
#[test]
fn waiters_see_the_cause_when_woken() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (ctx, cancel) = Context::background().with_cancel_cause();
        let waiters: Vec<_> = (0..32)
            .map(|_| {
                let ctx = ctx.clone();
                rt.spawn(move || {
                    let _ = ctx.done().recv();
                    cause_of(&ctx)
                })
            })
            .collect();
        cancel.cancel(Shutdown("now"));
        for w in waiters {
            assert_eq!(w.join().unwrap(), Some(Shutdown("now")));
        }
    });
}

// ---------------------------------------------------------------------------
// without_cancel.

#[test]
fn without_cancel_keeps_values_and_is_never_done() {
    block_on_each(|_| {
        let (ctx, cancel) = Context::background()
            .with_value(RequestId(5))
            .with_timeout(Duration::from_millis(5));
        let detached = ctx.without_cancel();
        let done = detached.done();
        cancel.cancel();
        assert!(ctx.is_done());
        assert!(!detached.is_done());
        assert_eq!(detached.err(), None);
        assert!(detached.cause().is_none());
        assert_eq!(detached.deadline(), None);
        assert_eq!(detached.value::<RequestId>(), Some(&RequestId(5)));
        assert_eq!(done.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            done.recv_timeout(Duration::from_millis(20)),
            Err(chan::RecvTimeoutError::Timeout)
        );
        // Its own children can still be cancelled, and carry the values.
        let (child, cancel_child) = detached.with_cancel();
        cancel_child.cancel();
        assert!(child.is_done());
        assert_eq!(child.value::<RequestId>(), Some(&RequestId(5)));
        assert!(!detached.is_done());
    });
}

// ---------------------------------------------------------------------------
// after_func.

/// Records where each run of an `after_func` happened.
#[derive(Clone, Default)]
struct Runs {
    count: Arc<AtomicUsize>,
    in_green: Arc<AtomicUsize>,
    wg: WaitGroup,
}

impl Runs {
    fn expect(&self, n: usize) {
        self.wg.add(n);
    }
    fn func(&self, caller: grove::thread::ThreadId) -> impl FnOnce() + Send + 'static {
        let runs = self.clone();
        move || {
            let me = grove::thread::current();
            if me.is_green() && me.id() != caller {
                runs.in_green.fetch_add(1, Ordering::SeqCst);
            }
            runs.count.fetch_add(1, Ordering::SeqCst);
            runs.wg.done();
        }
    }
    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// 100 `after_func`s on one context (and its value child) each run once,
/// in a green thread of their own, when the context is cancelled, whether
/// registered from green threads or this OS thread.
#[test]
fn after_func_runs_once_in_its_own_green_thread_on_cancel() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (ctx, cancel) = Context::background().with_cancel();
        let runs = Runs::default();
        runs.expect(100);
        let handles: Vec<AfterFuncHandle> = {
            let (ctx, runs) = (ctx.clone(), runs.clone());
            rt.block_on(move || {
                let me = grove::thread::current().id();
                let valued = ctx.with_value(RequestId(1));
                (0..90)
                    .map(|i| {
                        let on = if i % 2 == 0 { &ctx } else { &valued };
                        context::after_func(on, runs.func(me))
                    })
                    .collect()
            })
        };
        let me = grove::thread::current().id();
        let from_os: Vec<_> = (0..10)
            .map(|_| context::after_func(&ctx, runs.func(me)))
            .collect();
        assert_eq!(runs.count(), 0, "not before the cancel");
        cancel.cancel();
        runs.wg.wait();
        assert_eq!(runs.count(), 100);
        assert_eq!(runs.in_green.load(Ordering::SeqCst), 100);
        for h in handles.iter().chain(&from_os) {
            assert!(!h.stop(), "already started: stop is too late");
        }
        cancel.cancel();
        assert_eq!(runs.count(), 100, "a second cancel runs nothing again");
    });
}

#[test]
fn stop_before_the_cancel_keeps_f_from_running() {
    watchdog(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let runs = Runs::default();
        runs.expect(1);
        let me = grove::thread::current().id();
        let stopped = context::after_func(&ctx, runs.func(me));
        let kept = context::after_func(&ctx, runs.func(me));
        assert!(stopped.stop());
        assert!(!stopped.stop(), "the second stop finds nothing to stop");
        assert!(!stopped.clone().stop());
        cancel.cancel();
        runs.wg.wait();
        assert_eq!(runs.count(), 1, "only the kept one ran");
        assert!(!kept.stop());
    });
}

#[test]
fn after_func_on_a_done_context_runs_at_once() {
    block_on_each(|_| {
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        let runs = Runs::default();
        runs.expect(2);
        let me = grove::thread::current().id();
        let h = context::after_func(&ctx, runs.func(me));
        let (expired, _h) = Context::background().with_timeout(Duration::ZERO);
        let _ = context::after_func(&expired, runs.func(me));
        runs.wg.wait();
        assert_eq!(runs.count(), 2);
        assert!(!h.stop());
    });
}

/// With a deadline, `f` runs once it passes — never before — and a `stop`
/// before it keeps `f` from running and ends the watcher.
#[test]
fn after_func_runs_at_the_deadline_never_early() {
    const TIMEOUT: Duration = Duration::from_millis(30);
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (tx, rx) = chan::unbounded::<Instant>();
        let t0 = Instant::now();
        let (ctx, _cancel) = Context::background().with_timeout(TIMEOUT);
        let kept = {
            let ctx = ctx.clone();
            rt.block_on(move || context::after_func(&ctx, move || tx.send(Instant::now()).unwrap()))
        };
        let ran_at = rx.recv().unwrap();
        assert!(ran_at >= t0 + TIMEOUT, "ran early, after {:?}", ran_at - t0);
        assert!(
            ran_at < t0 + TIMEOUT + LATE_LIMIT,
            "ran late, after {:?}",
            ran_at - t0
        );
        assert!(!kept.stop());
        wait_until("the first watcher to end", || rt.stats().live == 0);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(3600));
        let stopped = {
            let ctx = ctx.clone();
            rt.block_on(move || context::after_func(&ctx, || unreachable!("stopped")))
        };
        assert_eq!(rt.stats().live, 1, "the watcher waits for the deadline");
        assert!(stopped.stop());
        wait_until("the deadline watcher to end", || rt.stats().live == 0);
    });
}

/// A cancel reaches an `after_func` on a context with a deadline before
/// the deadline.
#[test]
fn after_func_on_a_deadline_context_runs_on_cancel() {
    watchdog(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let (ctx, _h) = parent.with_timeout(Duration::from_secs(3600));
        let runs = Runs::default();
        runs.expect(1);
        let me = grove::thread::current().id();
        let h = context::after_func(&ctx, runs.func(me));
        drop(ctx); // the watcher holds it
        cancel.cancel();
        runs.wg.wait();
        assert_eq!(runs.count(), 1);
        assert!(!h.stop());
    });
}

/// Dropping the handle stops nothing (Go's callers ignore `stop` all the
/// time): on a context with a deadline, whose watcher is told to stop
/// through the handle, `f` still runs at the deadline, and on a cancel.
#[test]
fn a_dropped_handle_does_not_stop_an_after_func_on_a_deadline_context() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (tx, rx) = chan::unbounded::<&str>();
        let (at_deadline, _keep) = Context::background().with_timeout(Duration::from_millis(5));
        let (on_cancel, cancel) = Context::background().with_timeout(Duration::from_secs(3600));
        rt.block_on(move || {
            let tx2 = tx.clone();
            drop(context::after_func(&at_deadline, move || {
                tx2.send("deadline").unwrap()
            }));
            drop(context::after_func(&on_cancel, move || {
                tx.send("cancel").unwrap()
            }));
        });
        assert_eq!(rx.recv(), Ok("deadline"));
        cancel.cancel();
        assert_eq!(rx.recv(), Ok("cancel"));
        assert!(
            rx.recv().is_err(),
            "each ran once, and let go of its sender"
        );
        // From an OS thread too (the global runtime watches).
        let (ctx, _keep) = Context::background().with_timeout(Duration::from_millis(5));
        let (tx, rx) = chan::bounded::<()>(1);
        drop(context::after_func(&ctx, move || tx.send(()).unwrap()));
        assert_eq!(rx.recv(), Ok(()));
    });
}

/// The context the `after_func` was registered on is dropped (nobody can
/// cancel it directly any more); the parent's cancel still runs `f`, as in
/// Go, where the parent holds its children.
#[test]
fn a_parent_cancel_reaches_an_after_func_of_a_dropped_child() {
    watchdog(|| {
        let (root, cancel_root) = Context::background().with_cancel();
        let runs = Runs::default();
        runs.expect(3);
        let me = grove::thread::current().id();
        {
            let (child, cancel_child) = root.with_cancel();
            let (grandchild, _h) = child.with_cancel_cause();
            let _ = context::after_func(&child, runs.func(me));
            let _ = context::after_func(&grandchild, runs.func(me));
            let _ = context::after_func(&grandchild.with_value(1u8), runs.func(me));
            // The child goes first: the grandchild's drop then drops the
            // child's node too, and both hand their hooks up.
            drop((child, cancel_child));
        }
        assert_eq!(runs.count(), 0);
        cancel_root.cancel();
        runs.wg.wait();
        assert_eq!(runs.count(), 3);
    });
}

#[test]
fn after_func_on_a_context_that_is_never_done_never_runs() {
    watchdog(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let never = context::after_func(&Context::background(), || unreachable!());
        let detached = context::after_func(&ctx.without_cancel(), || unreachable!());
        cancel.cancel();
        assert!(never.stop());
        assert!(detached.stop());
    });
}

/// A long-lived context with an `after_func` + `stop` per request: 20,000
/// of them, each stopped, none runs, and the context keeps working.
#[test]
fn after_func_and_stop_per_request_leave_nothing_behind() {
    watchdog(|| {
        let (server, cancel) = Context::background().with_cancel();
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..20_000 {
            let runs = runs.clone();
            let h = context::after_func(&server, move || {
                runs.fetch_add(1, Ordering::SeqCst);
            });
            assert!(h.stop());
        }
        let last = Runs::default();
        last.expect(1);
        let _ = context::after_func(&server, last.func(grove::thread::current().id()));
        cancel.cancel();
        last.wg.wait();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(last.count(), 1);
    });
}

#[test]
fn traits() {
    assert_clone_send_sync::<Context>();
    assert_clone_send_sync::<CancelCauseHandle>();
    assert_clone_send_sync::<AfterFuncHandle>();
    assert_send_sync::<context::Cause>();
    let (_, cancel) = Context::background().with_cancel_cause();
    assert!(format!("{cancel:?}").starts_with("CancelCauseHandle"));
    let h = context::after_func(&Context::background(), || {});
    assert!(format!("{h:?}").contains("armed: true"));
    h.stop();
    assert!(format!("{h:?}").contains("armed: false"));
}

/// An `after_func` registered in a runtime that is dropped before its
/// context is done still runs (Go's always does, unless stopped): with
/// and without a deadline, on cancel after the drop.
#[test]
fn an_after_func_outlives_the_runtime_it_was_registered_in() {
    watchdog(|| {
        for with_deadline in [false, true] {
            let (ctx, cancel) = if with_deadline {
                Context::background().with_timeout(Duration::from_secs(3600))
            } else {
                Context::background().with_cancel()
            };
            let (ran_tx, ran_rx) = chan::bounded::<()>(1);
            let rt = sync_util::runtime(1);
            let handle = {
                let ctx = ctx.clone();
                rt.block_on(move || context::after_func(&ctx, move || ran_tx.send(()).unwrap()))
            };
            drop(rt);
            cancel.cancel();
            assert_eq!(ran_rx.recv(), Ok(()), "deadline {with_deadline}: f ran");
            assert!(!handle.stop(), "it ran: stop is too late");
        }
    });
}
