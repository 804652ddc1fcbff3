//! `grove::context` through the public API: cancellation flows down the
//! tree and never up, every descendant's `done()` is closed before
//! `cancel()` returns, deadlines (the earlier of a child's and its
//! parent's) never fire early, many green threads parked on one `done()`
//! all wake, `done()` in `select!`, `background()`, and the `Clone + Send +
//! Sync` contract. Growth of a parent's child registry is in
//! context_growth.rs.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::chan::{self, RecvTimeoutError, TryRecvError};
use grove::context::{CancelHandle, Context, ContextError};
use grove::select;
use grove::sync::{Arc, Mutex};
use sync_util::{
    assert_clone_send_sync, block_on_each, blocked_on, for_each_workers, in_child, run_in_child,
    runtime, wait_blocked, wait_until, watchdog, LATE_LIMIT,
};

const FAR: Duration = Duration::from_secs(3600);

/// A node of a test tree: its context, its handle, and a `done()` receiver
/// taken before anything was cancelled (so the channel exists and must be
/// closed by the cancel, not just created closed).
struct Node {
    ctx: Context,
    cancel: CancelHandle,
    done_early: chan::Receiver<()>,
}

/// A tree of `depth` levels under `root`, `fanout` children each, mixing
/// `with_cancel`, `with_timeout` and `with_deadline` children. Returned in
/// breadth-first order.
fn tree(root: &Context, depth: usize, fanout: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut level = vec![root.clone()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for parent in &level {
            for i in 0..fanout {
                let (ctx, cancel) = match i % 3 {
                    0 => parent.with_cancel(),
                    1 => parent.with_timeout(FAR),
                    _ => parent.with_deadline(Instant::now() + FAR),
                };
                next.push(ctx.clone());
                nodes.push(Node {
                    done_early: ctx.done(),
                    ctx,
                    cancel,
                });
            }
        }
        level = next;
    }
    nodes
}

#[track_caller]
fn assert_cancelled(ctx: &Context, early: Option<&chan::Receiver<()>>) {
    assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    assert!(ctx.is_done());
    if let Some(rx) = early {
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert!(rx.is_closed());
    }
    assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Disconnected));
}

#[track_caller]
fn assert_live(ctx: &Context, early: Option<&chan::Receiver<()>>) {
    assert_eq!(ctx.err(), None);
    assert!(!ctx.is_done());
    if let Some(rx) = early {
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
    assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Empty));
}

/// Checked with `try_recv` right after `cancel()` returns: no waiting.
#[test]
fn cancelling_a_parent_closes_every_descendant_before_returning() {
    block_on_each(|_| {
        let (root, cancel_root) = Context::background().with_cancel();
        let nodes = tree(&root, 3, 4); // 4 + 16 + 64 descendants
        assert_eq!(nodes.len(), 84);
        for n in &nodes {
            assert_live(&n.ctx, Some(&n.done_early));
        }
        cancel_root.cancel();
        assert_cancelled(&root, None);
        for n in &nodes {
            assert_cancelled(&n.ctx, Some(&n.done_early));
        }
        // A child made from a cancelled context is born cancelled.
        let (late, _h) = nodes[83].ctx.with_cancel();
        assert_cancelled(&late, None);
        // Cancelling again, or a descendant, changes nothing.
        cancel_root.cancel();
        nodes[0].cancel.cancel();
        assert_cancelled(&nodes[0].ctx, Some(&nodes[0].done_early));
    });
}

#[test]
fn cancelling_a_child_leaves_its_parent_and_siblings_alone() {
    watchdog(|| {
        let (root, _cancel_root) = Context::background().with_cancel();
        let nodes = tree(&root, 2, 3); // 3 children, 9 grandchildren
                                       // Cancel the first child: its 3 children go with it, nothing else.
        nodes[0].cancel.cancel();
        assert_cancelled(&nodes[0].ctx, Some(&nodes[0].done_early));
        for n in &nodes[3..6] {
            assert_cancelled(&n.ctx, Some(&n.done_early)); // its children
        }
        assert_live(&root, None);
        for (i, n) in nodes.iter().enumerate() {
            if i != 0 && !(3..6).contains(&i) {
                assert_live(&n.ctx, Some(&n.done_early));
            }
        }
        // A grandchild cancelled alone: its parent and siblings stay live.
        nodes[6].cancel.cancel();
        assert_cancelled(&nodes[6].ctx, Some(&nodes[6].done_early));
        assert_live(&nodes[1].ctx, Some(&nodes[1].done_early));
        assert_live(&nodes[7].ctx, Some(&nodes[7].done_early));
    });
}

/// Cancels race with the creation of children and grandchildren on other
/// threads: whatever was created before or after, once `cancel()` has
/// returned every one of them is done.
#[test]
fn cancel_racing_with_child_creation_misses_nobody() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for _ in 0..5 {
            let (root, cancel) = Context::background().with_cancel();
            let made = Arc::new(Mutex::new(Vec::<Context>::new()));
            let makers: Vec<_> = (0..4)
                .map(|_| {
                    let (root, made) = (root.clone(), made.clone());
                    rt.spawn(move || {
                        let mut n = 0;
                        loop {
                            let stop = root.is_done();
                            let (child, _) = root.with_cancel();
                            let (grandchild, _) = child.with_timeout(FAR);
                            let _ = grandchild.done();
                            made.lock().unwrap().extend([child, grandchild]);
                            n += 1;
                            if stop {
                                return n;
                            }
                            if n % 16 == 0 {
                                grove::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            wait_until("some children", || made.lock().unwrap().len() > 40);
            cancel.cancel();
            let snapshot = made.lock().unwrap().len();
            for ctx in made.lock().unwrap().iter().take(snapshot) {
                assert_eq!(ctx.err(), Some(ContextError::Cancelled));
            }
            for m in makers {
                assert!(m.join().unwrap() > 0);
            }
            for ctx in made.lock().unwrap().iter() {
                assert_eq!(ctx.err(), Some(ContextError::Cancelled));
                assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Disconnected));
            }
        }
    });
}

#[test]
fn one_cancel_wakes_1000_green_threads_parked_on_one_done() {
    const PARKED: usize = 1_000;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (ctx, cancel) = Context::background().with_cancel();
        let woke = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..PARKED)
            .map(|i| {
                let (ctx, woke) = (ctx.clone(), woke.clone());
                rt.spawn(move || {
                    if i % 2 == 0 {
                        assert!(ctx.done().recv().is_err());
                    } else {
                        let (_keep, data) = chan::bounded::<u8>(0);
                        select! {
                            recv(data) -> _ => unreachable!(),
                            recv(ctx.done()) -> r => assert!(r.is_err()),
                        }
                    }
                    woke.fetch_add(1, Ordering::SeqCst);
                    ctx.err()
                })
            })
            .collect();
        wait_until("every green thread to park", || {
            blocked_on(&rt, "chan recv").len() + blocked_on(&rt, "select").len() == PARKED
        });
        assert_eq!(woke.load(Ordering::SeqCst), 0);
        cancel.cancel();
        for h in hs {
            assert_eq!(h.join().unwrap(), Some(ContextError::Cancelled));
        }
        assert_eq!(woke.load(Ordering::SeqCst), PARKED);
    });
}

#[test]
fn a_timeout_fires_deadline_exceeded_never_early() {
    const T: Duration = Duration::from_millis(30);
    block_on_each(|_| {
        let t0 = Instant::now();
        let (ctx, _cancel) = Context::background().with_timeout(T);
        let deadline = ctx.deadline().expect("a timeout sets a deadline");
        assert!(deadline >= t0 + T);
        assert_eq!(ctx.err(), None);
        assert_eq!(ctx.done().try_recv(), Err(TryRecvError::Empty));
        assert!(ctx.done().recv().is_err());
        let woke = Instant::now();
        assert!(
            woke >= deadline,
            "done() closed {:?} early",
            deadline - woke
        );
        assert!(woke - deadline < LATE_LIMIT, "{:?} late", woke - deadline);
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        assert!(ctx.is_done());

        // with_deadline, waited on in a select with a data channel.
        let at = Instant::now() + T;
        let (ctx, _cancel) = Context::background().with_deadline(at);
        assert_eq!(ctx.deadline(), Some(at));
        let (_keep, data) = chan::bounded::<u8>(0);
        select! {
            recv(data) -> _ => unreachable!(),
            recv(ctx.done()) -> r => assert!(r.is_err()),
        }
        assert!(Instant::now() >= at);
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));

        // Already past: done at once.
        let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        assert!(ctx.done().recv_timeout(Duration::from_secs(10)).is_err());
    });
}

#[test]
fn a_childs_deadline_is_the_earlier_of_its_own_and_its_parents() {
    block_on_each(|_| {
        let now = Instant::now();
        let (far_parent, _a) = Context::background().with_deadline(now + FAR);
        let (near_child, _b) = far_parent.with_deadline(now + Duration::from_millis(20));
        assert_eq!(near_child.deadline(), Some(now + Duration::from_millis(20)));

        let (near_parent, _c) = Context::background().with_timeout(Duration::from_millis(30));
        let parent_deadline = near_parent.deadline().unwrap();
        let (far_child, _d) = near_parent.with_timeout(FAR);
        let (plain_child, _e) = near_parent.with_cancel();
        let (grandchild, _f) = plain_child.with_deadline(now + FAR);
        for ctx in [&far_child, &plain_child, &grandchild] {
            assert_eq!(ctx.deadline(), Some(parent_deadline));
        }
        assert_eq!(Context::background().with_cancel().0.deadline(), None);
        // And it fires then, as DeadlineExceeded, for the whole subtree.
        assert!(grandchild.done().recv().is_err());
        assert!(Instant::now() >= parent_deadline);
        for ctx in [&near_parent, &far_child, &plain_child, &grandchild] {
            assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
        }
        // A cancel before the deadline wins: Cancelled, at once.
        let (p, _g) = Context::background().with_timeout(FAR);
        let (c, cancel_c) = p.with_timeout(FAR);
        cancel_c.cancel();
        assert_eq!(c.err(), Some(ContextError::Cancelled));
        assert_eq!(p.err(), None);
    });
}

/// Go: "After Err returns a non-nil error, successive calls to Err return
/// the same error." A context whose deadline has passed stays
/// DeadlineExceeded when it is cancelled afterwards.
#[test]
fn err_never_changes_once_set() {
    watchdog(|| {
        let (parent, cancel_parent) = Context::background().with_timeout(Duration::from_millis(5));
        let (child, cancel_child) = parent.with_cancel();
        assert!(parent.done().recv().is_err());
        assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        cancel_child.cancel();
        assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
        cancel_parent.cancel();
        assert_eq!(parent.err(), Some(ContextError::DeadlineExceeded));
    });
}

/// A chain of 10,000 nested contexts (Go handles millions: its stacks
/// grow) is cancelled and dropped on a green thread with the default
/// 256 KiB stack. Run in a child process: a stack overflow aborts.
#[test]
fn deep_context_chain_fits_a_green_thread_stack() {
    const NAME: &str = "deep_context_chain_fits_a_green_thread_stack";
    const DEPTH: usize = 10_000;
    if in_child(NAME) {
        let leaf_done = grove::run(|| {
            let (root, cancel) = Context::background().with_cancel();
            let mut chain = vec![root];
            let mut handles = Vec::new();
            for _ in 0..DEPTH {
                let (child, handle) = chain.last().unwrap().with_cancel();
                chain.push(child);
                handles.push(handle);
            }
            cancel.cancel();
            let done = chain.last().unwrap().is_done();
            drop(handles);
            while let Some(ctx) = chain.pop() {
                drop(ctx); // leaf first: each drop is cheap
            }
            // Now drop a chain root first: the leaf holds the whole chain.
            let mut leaf = Context::background();
            for _ in 0..DEPTH {
                leaf = leaf.with_cancel().0;
            }
            drop(leaf);
            done
        });
        assert!(leaf_done);
        return;
    }
    watchdog(|| {
        let (passed, output) = run_in_child(NAME);
        assert!(passed, "{output}");
    });
}

/// The other order is fine already: once cancelled, a deadline passing
/// later does not change the error.
#[test]
fn cancelled_stays_cancelled_after_the_deadline() {
    watchdog(|| {
        let (ctx, cancel) = Context::background().with_timeout(Duration::from_millis(5));
        cancel.cancel();
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        std::thread::sleep(Duration::from_millis(10)); // let the deadline pass
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    });
}

#[test]
fn done_in_select_with_a_timeout_arm_and_a_data_channel() {
    block_on_each(|_| {
        let (ctx, cancel) = Context::background().with_cancel();
        // Not done: the timeout arm.
        let timed_out = select! {
            recv(ctx.done()) -> _ => false,
            default(Duration::from_millis(5)) => true,
        };
        assert!(timed_out);
        // Not done, non-blocking: default.
        let defaulted = select! {
            recv(ctx.done()) -> _ => false,
            default => true,
        };
        assert!(defaulted);

        // A worker that processes data until its context is done (Go's
        // `for { select { case <-ctx.Done(): return; case v := <-in: ... } }`).
        let (in_tx, in_rx) = chan::bounded::<u64>(0);
        let worker = {
            let ctx = ctx.clone();
            grove::go(move || {
                let mut sum = 0;
                loop {
                    select! {
                        recv(ctx.done()) -> _ => return (sum, ctx.err()),
                        recv(in_rx) -> v => sum += v.unwrap(),
                    }
                }
            })
        };
        for v in 1..=100 {
            in_tx.send(v).unwrap();
        }
        cancel.cancel();
        assert_eq!(
            worker.join().unwrap(),
            (5050, Some(ContextError::Cancelled))
        );

        // A sender blocked on a send nobody receives is freed by a cancel.
        let (ctx, cancel) = Context::background().with_cancel();
        let (out_tx, _out_rx) = chan::bounded::<u64>(0);
        let sender = grove::go(move || {
            select! {
                send(out_tx, 1) -> _ => "sent",
                recv(ctx.done()) -> _ => "cancelled",
            }
        });
        cancel.cancel();
        assert_eq!(sender.join().unwrap(), "cancelled");

        // Done and timeout both possible: a done context is ready at once.
        let t0 = Instant::now();
        let done_first = select! {
            recv(ctx_done_now().done()) -> _ => true,
            default(Duration::from_secs(30)) => false,
        };
        assert!(done_first && t0.elapsed() < Duration::from_secs(30));
    });
}

/// A context already cancelled.
fn ctx_done_now() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx
}

#[test]
fn background_is_never_done() {
    block_on_each(|_| {
        let bg = Context::background();
        assert_eq!(bg.err(), None);
        assert!(!bg.is_done());
        assert_eq!(bg.deadline(), None);
        assert_eq!(bg.done().try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            bg.done().recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
        let chosen = select! {
            recv(bg.done()) -> _ => "done",
            default(Duration::from_millis(5)) => "timeout",
        };
        assert_eq!(chosen, "timeout");
        // Cancelling a child of background leaves background alone.
        let (child, cancel) = bg.with_cancel();
        cancel.cancel();
        assert!(child.is_done() && !bg.is_done());
        assert_eq!(
            Context::background().done().try_recv(),
            Err(TryRecvError::Empty)
        );
    });
}

#[test]
fn context_and_cancel_handle_are_clone_send_sync() {
    assert_clone_send_sync::<Context>();
    assert_clone_send_sync::<CancelHandle>();
    assert_clone_send_sync::<ContextError>();
    // Cancel through a clone of the handle, from another thread, while a
    // clone of the context waits on a green thread.
    watchdog(|| {
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let ctx = ctx.clone();
            grove::go(move || ctx.done().recv().is_err())
        };
        let handle = cancel.clone();
        std::thread::spawn(move || handle.cancel()).join().unwrap();
        assert!(waiter.join().unwrap());
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        assert!(format!("{ctx:?}").contains("Cancelled"));
        assert!(format!("{cancel:?}").starts_with("CancelHandle"));
    });
}

#[test]
fn dropping_a_cancel_handle_does_not_cancel() {
    watchdog(|| {
        let rt = runtime(2);
        let (parent, cancel_parent) = Context::background().with_cancel();
        let (ctx, cancel) = parent.with_cancel();
        let waiter = {
            let ctx = ctx.clone();
            rt.spawn(move || ctx.done().recv().is_err())
        };
        wait_blocked(&rt, "chan recv", 1);
        drop(cancel.clone());
        drop(cancel);
        assert_live(&ctx, None);
        assert!(!waiter.is_finished());
        // Still cancelled with its parent.
        cancel_parent.cancel();
        assert!(waiter.join().unwrap());
        assert_cancelled(&ctx, None);
        // A dropped child Context does not cancel its parent either.
        let (p, _cp) = Context::background().with_cancel();
        drop(p.with_cancel());
        assert_live(&p, None);
    });
}

#[test]
fn context_errors_read_like_go() {
    assert_eq!(ContextError::Cancelled.to_string(), "context canceled");
    assert_eq!(
        ContextError::DeadlineExceeded.to_string(),
        "context deadline exceeded"
    );
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(ContextError::Cancelled);
    assert_eq!(e.to_string(), "context canceled");
}

/// A second `cancel()`, made while the first is still working through a
/// large subtree, returns only once every descendant is done, as Go's
/// (which waits on the first canceller's locks). It returned at once,
/// with all 20,000 children still live, in 43 of 50 runs.
#[test]
fn a_second_cancel_returns_only_once_the_whole_subtree_is_done() {
    watchdog(|| {
        for round in 0..10 {
            let (parent, cancel) = Context::background().with_cancel();
            let children: Vec<_> = (0..20_000).map(|_| parent.with_cancel()).collect();
            let first = {
                let cancel = cancel.clone();
                std::thread::spawn(move || cancel.cancel())
            };
            while !parent.is_done() {
                std::hint::spin_loop();
            }
            cancel.cancel();
            let live = children.iter().filter(|(c, _)| !c.is_done()).count();
            assert_eq!(live, 0, "round {round}: the second cancel returned early");
            first.join().unwrap();
        }
    });
}

/// A child's own `cancel()` racing its parent's: the parent's returns
/// only once the child's descendants are done too (the child's canceller
/// may still be working through them).
#[test]
fn a_cancel_racing_a_descendants_cancel_waits_for_its_subtree() {
    watchdog(|| {
        for round in 0..10 {
            let (parent, parent_cancel) = Context::background().with_cancel();
            let (child, child_cancel) = parent.with_cancel();
            let grandchildren: Vec<_> = (0..20_000).map(|_| child.with_cancel()).collect();
            let first = std::thread::spawn(move || child_cancel.cancel());
            while !child.is_done() {
                std::hint::spin_loop();
            }
            parent_cancel.cancel();
            let live = grandchildren.iter().filter(|(c, _)| !c.is_done()).count();
            assert_eq!(live, 0, "round {round}: the parent's cancel returned early");
            first.join().unwrap();
        }
    });
}
