//! `grove::sync::ErrGroup` (golang.org/x/sync's errgroup) through the
//! public API: every task runs and is waited for; the first error is the
//! one `wait` returns and it cancels the group's context (as does `wait`);
//! `set_limit` bounds the running tasks exactly (peak tracking) and
//! `try_go` refuses when full; tasks call `go` on their own group; a
//! panicking task cancels the rest and makes `wait` panic; misuse panics
//! with a clear message; the auto traits. From green threads and OS
//! threads, 1 to 8 workers.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicUsize, Ordering};

use grove::chan;
use grove::context::{Context, ContextError};
use grove::sync::{Arc, ErrGroup};
use grove::thread;
use sync_util::{
    assert_clone_send_sync, block_on_each, blocked_on, expect_panic, for_each_workers, runtime,
    wait_blocked, wait_until, watchdog,
};

/// Runs `f` as a green thread of a fresh runtime of each worker count, and
/// once on this OS thread (whose `go` spawns on the global runtime).
fn green_and_os<F>(f: F)
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    let g = f.clone();
    block_on_each(move |_| g());
    watchdog(f);
}

#[test]
fn wait_returns_ok_after_every_task_ran() {
    green_and_os(|| {
        let g: ErrGroup = ErrGroup::new();
        let ran = Arc::new(AtomicUsize::new(0));
        for i in 0..1000 {
            let ran = ran.clone();
            g.go(move || {
                if i % 7 == 0 {
                    thread::yield_now(); // some finish after a park
                }
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        assert!(g.wait().is_ok());
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1000,
            "wait returned before a task ended"
        );
        // Waiting on an empty or finished group returns at once.
        assert!(g.wait().is_ok());
        let empty: ErrGroup<String> = ErrGroup::new();
        assert_eq!(empty.wait(), Ok(()));
    });
}

/// One task fails while 50 others wait on the context: `wait` returns that
/// error (the later ones, which fail only after seeing the cancellation,
/// never win), every waiting task saw the cancellation, and the context's
/// error is `Cancelled`.
#[test]
fn the_first_error_wins_and_cancels_the_context() {
    const WATCHERS: usize = 50;
    green_and_os(|| {
        let (g, ctx) = ErrGroup::<String>::with_context(&Context::background());
        let started = Arc::new(AtomicUsize::new(0));
        let saw_cancel = Arc::new(AtomicUsize::new(0));
        for i in 0..WATCHERS {
            let (ctx, started, saw_cancel) = (ctx.clone(), started.clone(), saw_cancel.clone());
            g.go(move || {
                started.fetch_add(1, Ordering::SeqCst);
                let _ = ctx.done().recv(); // parks until cancelled
                assert_eq!(ctx.err(), Some(ContextError::Cancelled));
                saw_cancel.fetch_add(1, Ordering::SeqCst);
                Err(format!("late {i}"))
            });
        }
        wait_until("the watchers to start", || {
            started.load(Ordering::SeqCst) == WATCHERS
        });
        assert!(!ctx.is_done(), "no task failed yet");
        g.go(|| Err("boom".to_string()));
        assert_eq!(g.wait(), Err("boom".to_string()));
        assert_eq!(saw_cancel.load(Ordering::SeqCst), WATCHERS);
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
    });
}

#[test]
fn wait_cancels_the_context_even_without_an_error() {
    green_and_os(|| {
        let (root, cancel_root) = Context::background().with_cancel();
        let (g, ctx) = ErrGroup::<String>::with_context(&root);
        let ctx_in_task = ctx.clone();
        g.go(move || {
            assert!(!ctx_in_task.is_done(), "cancelled while a task still ran");
            Ok(())
        });
        assert_eq!(g.wait(), Ok(()));
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        assert!(!root.is_done(), "the parent is left alone");
        cancel_root.cancel();
    });
}

/// The group's context is a child: cancelling the parent cancels it.
#[test]
fn the_group_context_follows_its_parent() {
    watchdog(|| {
        let (root, cancel_root) = Context::background().with_cancel();
        let (g, ctx) = ErrGroup::<String>::with_context(&root);
        let watcher = ctx.clone();
        g.go(move || {
            let _ = watcher.done().recv();
            Err("stopped".to_string())
        });
        cancel_root.cancel();
        assert_eq!(g.wait(), Err("stopped".to_string()));
        assert!(ctx.is_done());
    });
}

/// Under a limit of `n`, never more than `n` tasks run at once, exactly
/// `n` do (the first `n` meet at a barrier, which they can pass only
/// together, holding their slots across the park), and all of them run.
#[test]
fn set_limit_bounds_the_running_tasks() {
    const TASKS: usize = 60;
    green_and_os(|| {
        for limit in [1, 3] {
            let g: ErrGroup = ErrGroup::new();
            g.set_limit(limit);
            let inside = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let ran = Arc::new(AtomicUsize::new(0));
            let first = Arc::new(grove::sync::Barrier::new(limit));
            for i in 0..TASKS {
                let (inside, peak, ran) = (inside.clone(), peak.clone(), ran.clone());
                let first = first.clone();
                g.go(move || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    if i < limit {
                        first.wait();
                    } else {
                        thread::yield_now();
                    }
                    inside.fetch_sub(1, Ordering::SeqCst);
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            }
            g.wait().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), TASKS);
            let peak = peak.load(Ordering::SeqCst);
            assert!(peak <= limit, "{peak} tasks ran under a limit of {limit}");
            assert_eq!(peak, limit, "the first tasks met inside the limit");
        }
    });
}

/// `go` parks while the limit is reached (its caller shows as parked) and
/// goes on when a task ends; `try_go` refuses instead.
#[test]
fn go_parks_and_try_go_refuses_at_the_limit() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let g: ErrGroup = ErrGroup::new();
        g.set_limit(2);
        let (release_tx, release_rx) = chan::unbounded::<()>();
        for _ in 0..2 {
            let release_rx = release_rx.clone();
            assert!(g.try_go(move || {
                release_rx.recv()?;
                Ok(())
            }));
        }
        assert!(!g.try_go(|| Ok(())), "two of two slots are taken");
        let third_ran = Arc::new(AtomicUsize::new(0));
        let spawner = {
            let (g, third_ran) = (g.clone(), third_ran.clone());
            rt.spawn(move || {
                g.go(move || {
                    third_ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                });
            })
        };
        wait_blocked(&rt, "Semaphore::acquire", 1);
        assert_eq!(third_ran.load(Ordering::SeqCst), 0);
        release_tx.send(()).unwrap();
        spawner.join().unwrap();
        release_tx.send(()).unwrap();
        g.wait().unwrap();
        assert_eq!(third_ran.load(Ordering::SeqCst), 1);
        assert!(g.try_go(|| Ok(())), "slots are free again");
        g.wait().unwrap();
        assert!(blocked_on(&rt, "Semaphore::acquire").is_empty());
    });
}

/// A recursive fan-out: each task spawns its children on the group it runs
/// in; `wait` covers tasks started by tasks.
#[test]
fn tasks_may_call_go_on_their_own_group() {
    fn node(g: ErrGroup<String>, depth: u32, count: Arc<AtomicUsize>) -> Result<(), String> {
        count.fetch_add(1, Ordering::SeqCst);
        if depth > 0 {
            for _ in 0..3 {
                let (child_g, count) = (g.clone(), count.clone());
                g.go(move || node(child_g, depth - 1, count));
            }
        }
        Ok(())
    }
    green_and_os(|| {
        let g = ErrGroup::<String>::new();
        let count = Arc::new(AtomicUsize::new(0));
        let (root_g, root_count) = (g.clone(), count.clone());
        g.go(move || node(root_g, 5, root_count));
        g.wait().unwrap();
        // 1 + 3 + 9 + 27 + 81 + 243
        assert_eq!(count.load(Ordering::SeqCst), 364);
    });
}

#[test]
fn errors_of_the_default_type_come_through_question_mark() {
    watchdog(|| {
        let g: ErrGroup = ErrGroup::new();
        g.go(|| {
            let n: u32 = "not a number".parse()?;
            assert_eq!(n, 0, "unreachable");
            Ok(())
        });
        let err = g.wait().unwrap_err();
        assert!(err.is::<std::num::ParseIntError>(), "{err}");
        // The error was handed over: a second wait has none.
        assert!(g.wait().is_ok());
    });
}

/// A panicking task cancels the context, the others still finish, and
/// `wait` panics only after all of them did.
#[test]
fn a_panicking_task_cancels_and_makes_wait_panic() {
    block_on_each(|_| {
        let (g, ctx) = ErrGroup::<String>::with_context(&Context::background());
        let finished = Arc::new(AtomicUsize::new(0));
        for _ in 0..10 {
            let (ctx, finished) = (ctx.clone(), finished.clone());
            g.go(move || {
                let _ = ctx.done().recv();
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(())
            });
        }
        g.go(|| panic!("task failed hard"));
        let message = expect_panic(|| g.wait());
        assert!(message.contains("panicked"), "{message}");
        assert_eq!(finished.load(Ordering::SeqCst), 10);
        assert_eq!(ctx.err(), Some(ContextError::Cancelled));
        // The panic was reported once; the group works again.
        g.go(|| Ok(()));
        assert!(g.wait().is_ok());
    });
}

#[test]
fn misuse_of_the_limit_panics_with_a_hint() {
    watchdog(|| {
        let g: ErrGroup = ErrGroup::new();
        g.set_limit(1);
        let (release_tx, release_rx) = chan::bounded::<()>(0);
        g.go(move || {
            release_rx.recv()?;
            Ok(())
        });
        let message = expect_panic(|| g.set_limit(5));
        assert!(message.contains("1 green thread(s)"), "{message}");
        assert!(message.contains("still active"), "{message}");
        release_tx.send(()).unwrap();
        g.wait().unwrap();

        g.set_limit(0);
        assert!(!g.try_go(|| Ok(())), "a limit of 0 admits nobody");
        let message = expect_panic(|| g.go(|| Ok(())));
        assert!(message.contains("limit of 0"), "{message}");

        // usize::MAX lifts the limit.
        g.set_limit(usize::MAX);
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        for _ in 0..100 {
            let gate_rx = gate_rx.clone();
            assert!(g.try_go(move || {
                let _ = gate_rx.recv();
                Ok(())
            }));
        }
        drop((gate_tx, gate_rx));
        g.wait().unwrap();
    });
}

#[test]
fn traits() {
    assert_clone_send_sync::<ErrGroup>();
    assert_clone_send_sync::<ErrGroup<String>>();
    assert_clone_send_sync::<ErrGroup<std::io::Error>>();
    let g: ErrGroup<String> = ErrGroup::default();
    let text = format!("{g:?}");
    assert!(text.starts_with("ErrGroup"), "{text}");
    assert!(text.contains("active: 0"), "{text}");
}
