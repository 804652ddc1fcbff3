//! The weighted, first-come first-served `grove::sync::Semaphore` through
//! the public API (the unweighted basics are in sync_waitgroup.rs): units
//! held never exceed the permits and all come back; a big waiter at the
//! front holds back smaller ones (Go's `semaphore.Weighted` order); a
//! request larger than the semaphore waits for `add_permits` and holds
//! back nobody meanwhile; `acquire_ctx`
//! gives up on cancel and at a deadline without losing or leaking permits,
//! and its leaving the front lets the next waiter in; owned permits move
//! into green threads; waiters unwound by a runtime's drop leave the queue.
//! From green threads and OS threads, 1 to 8 workers.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::context::{Context, ContextError};
use grove::sync::{Arc, OwnedSemaphorePermit, Semaphore};
use grove::thread;
use sync_util::{
    assert_send_sync, block_on_each, for_each_workers, runtime, wait_blocked, wait_until, watchdog,
    LATE_LIMIT,
};

const ACQUIRE: &str = "Semaphore::acquire";

/// Weighted requests from green threads and OS threads, held across parks:
/// the units held at once never exceed the capacity, reach it, and every
/// unit comes back.
#[test]
fn weighted_holders_never_exceed_the_permits() {
    const CAPACITY: usize = 10;
    const GREEN: usize = 16;
    const OS: usize = 2;
    const ROUNDS: usize = 30;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(CAPACITY));
        let held = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let grants = Arc::new(AtomicUsize::new(0));
        let user = {
            let (sem, held, peak, grants) =
                (sem.clone(), held.clone(), peak.clone(), grants.clone());
            move |who: usize| {
                for round in 0..ROUNDS {
                    let n = 1 + (who * 7 + round * 3) % CAPACITY; // 1..=10
                    let permit = sem.acquire_many(n);
                    assert_eq!(permit.num_permits(), n);
                    let now = held.fetch_add(n, Ordering::SeqCst) + n;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    held.fetch_sub(n, Ordering::SeqCst);
                    grants.fetch_add(1, Ordering::SeqCst);
                    drop(permit);
                }
            }
        };
        let os: Vec<_> = (0..OS)
            .map(|who| {
                let user = user.clone();
                std::thread::spawn(move || user(who))
            })
            .collect();
        let green: Vec<_> = (OS..OS + GREEN)
            .map(|who| {
                let user = user.clone();
                rt.spawn(move || user(who))
            })
            .collect();
        os.into_iter().for_each(|h| h.join().unwrap());
        green.into_iter().for_each(|h| h.join().unwrap());
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= CAPACITY, "{peak} units held of {CAPACITY}");
        assert_eq!(grants.load(Ordering::SeqCst), (OS + GREEN) * ROUNDS);
        assert_eq!(sem.available_permits(), CAPACITY, "every unit given back");
    });
}

/// Go's order: a waiter for 2 at the front holds back a waiter for 1
/// behind it, even while 1 permit is free; `try_acquire` does not jump the
/// queue either. Freed permits go to the front first.
#[test]
fn a_big_waiter_at_the_front_holds_back_smaller_ones() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(3));
        let holds: Vec<_> = (0..3).map(|_| sem.clone().acquire_owned()).collect();
        let order = Arc::new(AtomicUsize::new(0));
        let big = {
            let (sem, order) = (sem.clone(), order.clone());
            rt.spawn(move || {
                let p = sem.acquire_many(2);
                let at = order.fetch_add(1, Ordering::SeqCst);
                (at, p.num_permits())
            })
        };
        wait_blocked(&rt, ACQUIRE, 1);
        let small = {
            let (sem, order) = (sem.clone(), order.clone());
            rt.spawn(move || {
                let _p = sem.acquire();
                order.fetch_add(1, Ordering::SeqCst)
            })
        };
        wait_blocked(&rt, ACQUIRE, 2);
        let mut holds = holds.into_iter();
        drop(holds.next()); // 1 free: the big waiter still needs 2
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire().is_none(), "no barging past the queue");
        wait_blocked(&rt, ACQUIRE, 2); // the small one waits behind
        drop(holds.next()); // 2 free: the big one goes
        assert_eq!(big.join().unwrap(), (0, 2));
        assert_eq!(small.join().unwrap(), 1, "then the small one");
        drop(holds);
        assert_eq!(sem.available_permits(), 3);
    });
}

#[test]
fn a_request_larger_than_the_semaphore_waits_for_add_permits() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(2));
        assert!(sem.try_acquire_many(5).is_none());
        let waiter = {
            let sem = sem.clone();
            rt.spawn(move || sem.acquire_many(5).num_permits())
        };
        wait_blocked(&rt, ACQUIRE, 1);
        sem.add_permits(2); // 4 in all: not yet
        wait_blocked(&rt, ACQUIRE, 1);
        sem.add_permits(1);
        assert_eq!(waiter.join().unwrap(), 5);
        assert_eq!(sem.available_permits(), 5);
    });
}

/// Go's `TestWeightedDoesntBlockIfTooBig`: a request for more than the
/// semaphore holds in all waits (for its context here) and holds back
/// nobody: the requests behind it that fit are served, and `try_acquire`
/// does not count it as a waiter ahead.
#[test]
fn a_request_larger_than_the_semaphore_holds_back_nobody() {
    const N: usize = 2;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(N));
        let (ctx, cancel) = Context::background().with_cancel();
        let big = {
            let sem = sem.clone();
            rt.spawn(move || sem.acquire_many_ctx(N + 1, &ctx).err())
        };
        wait_blocked(&rt, ACQUIRE, 1);
        assert!(sem.try_acquire().is_some(), "nobody that fits is ahead");
        let small: Vec<_> = (0..N * 3)
            .map(|_| {
                let sem = sem.clone();
                rt.spawn(move || {
                    let permit = sem.acquire();
                    thread::yield_now();
                    permit.num_permits()
                })
            })
            .collect();
        let served: usize = small.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(served, N * 3);
        cancel.cancel();
        assert_eq!(big.join().unwrap(), Some(ContextError::Cancelled));
        assert_eq!(sem.available_permits(), N);
    });
}

/// A request too big for the semaphore, then grown by `add_permits` until
/// it fits: from then on it is served in its place in line, before a
/// waiter that came after it. And the other way: `forget` shrinking the
/// semaphore under a waiter at the front lets the ones behind it in.
#[test]
fn a_too_big_request_keeps_its_place_once_the_semaphore_grows() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(2));
        let holds: Vec<_> = (0..2).map(|_| sem.clone().acquire_owned()).collect();
        let order = Arc::new(AtomicUsize::new(0));
        let waiter = |n: usize| {
            let (sem, order) = (sem.clone(), order.clone());
            rt.spawn(move || {
                let permit = sem.acquire_many(n);
                (order.fetch_add(1, Ordering::SeqCst), permit.num_permits())
            })
        };
        let big = waiter(3);
        wait_blocked(&rt, ACQUIRE, 1);
        let small = waiter(1);
        wait_blocked(&rt, ACQUIRE, 2);
        sem.add_permits(1); // 3 in all, 1 free: the big one fits now, first
        assert!(sem.try_acquire().is_none(), "the big one is ahead");
        wait_blocked(&rt, ACQUIRE, 2);
        drop(holds);
        assert_eq!(big.join().unwrap(), (0, 3));
        assert_eq!(small.join().unwrap(), (1, 1));
        assert_eq!(sem.available_permits(), 3);

        // Shrinking: 2 in all, a waiter for 2 at the front, one for 1
        // behind it; forgetting one held permit leaves 1 in all.
        let sem = Arc::new(Semaphore::new(2));
        let (first, second) = (sem.clone().acquire_owned(), sem.clone().acquire_owned());
        let two = {
            let sem = sem.clone();
            rt.spawn(move || sem.acquire_many(2).num_permits())
        };
        wait_blocked(&rt, ACQUIRE, 1);
        let one = {
            let sem = sem.clone();
            rt.spawn(move || sem.acquire().num_permits())
        };
        wait_blocked(&rt, ACQUIRE, 2);
        first.forget();
        drop(second); // 1 free of 1: the waiter for 2 no longer holds back
        assert_eq!(one.join().unwrap(), 1);
        sem.add_permits(1);
        assert_eq!(two.join().unwrap(), 2);
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn zero_permits_are_granted_at_once_even_behind_a_queue() {
    watchdog(|| {
        let rt = runtime(1);
        let sem = Arc::new(Semaphore::new(0));
        let waiter = {
            let sem = sem.clone();
            rt.spawn(move || drop(sem.acquire()))
        };
        wait_blocked(&rt, ACQUIRE, 1);
        assert_eq!(sem.acquire_many(0).num_permits(), 0);
        assert!(sem.try_acquire_many(0).is_some());
        assert!(sem.acquire_many_ctx(0, &Context::background()).is_ok());
        sem.add_permits(1);
        waiter.join().unwrap();
    });
}

/// Forgetting weighted permits shrinks the semaphore by their weight.
#[test]
fn forget_shrinks_by_the_weight() {
    block_on_each(|_| {
        let sem = Arc::new(Semaphore::new(5));
        sem.acquire_many(3).forget();
        assert_eq!(sem.available_permits(), 2);
        assert!(sem.try_acquire_many(3).is_none());
        sem.clone().acquire_owned().forget();
        assert_eq!(sem.available_permits(), 1);
        sem.add_permits(4);
        let all = sem.acquire_many(5);
        assert_eq!(sem.available_permits(), 0);
        drop(all);
        assert_eq!(sem.available_permits(), 5);
    });
}

/// Green threads parked in `acquire_ctx` all give up when the context is
/// cancelled; none takes a permit, and none is left in the queue (a later
/// `add_permits` goes to a fresh waiter).
#[test]
fn acquire_ctx_gives_up_when_cancelled() {
    const WAITERS: usize = 20;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(0));
        let (ctx, cancel) = Context::background().with_cancel();
        let waiters: Vec<_> = (0..WAITERS)
            .map(|i| {
                let (sem, ctx) = (sem.clone(), ctx.clone());
                rt.spawn(move || {
                    let r = if i % 2 == 0 {
                        sem.acquire_ctx(&ctx).map(|p| p.num_permits())
                    } else {
                        sem.acquire_many_ctx(3, &ctx).map(|p| p.num_permits())
                    };
                    r.unwrap_err()
                })
            })
            .collect();
        // An OS thread waits too.
        let os = {
            let (sem, ctx) = (sem.clone(), ctx.clone());
            std::thread::spawn(move || sem.acquire_ctx(&ctx).map(|p| p.num_permits()))
        };
        wait_blocked(&rt, ACQUIRE, WAITERS);
        cancel.cancel();
        for w in waiters {
            assert_eq!(w.join().unwrap(), ContextError::Cancelled);
        }
        assert_eq!(os.join().unwrap(), Err(ContextError::Cancelled));
        assert_eq!(sem.available_permits(), 0);
        sem.add_permits(1);
        assert!(sem.try_acquire().is_some(), "no ghost waiter ahead");
        // A done context fails at once, even with permits free.
        assert_eq!(sem.acquire_ctx(&ctx).unwrap_err(), ContextError::Cancelled);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn acquire_ctx_gives_up_at_the_deadline_never_early() {
    const TIMEOUT: Duration = Duration::from_millis(30);
    let check = || {
        let sem = Semaphore::new(1);
        let _held = sem.acquire();
        let (ctx, _cancel) = Context::background().with_timeout(TIMEOUT);
        let t0 = Instant::now();
        assert_eq!(
            sem.acquire_ctx(&ctx).unwrap_err(),
            ContextError::DeadlineExceeded
        );
        let waited = t0.elapsed();
        assert!(waited >= TIMEOUT, "gave up early, after {waited:?}");
        assert!(
            waited < TIMEOUT + LATE_LIMIT,
            "gave up late, after {waited:?}"
        );
    };
    block_on_each(move |_| check());
    watchdog(check);
}

/// The front waiter (asking for 2) gives up: the one behind it (asking
/// for 1), which fits in what is free, goes in at once.
#[test]
fn a_front_waiter_that_gives_up_lets_the_next_in() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.acquire();
        let (ctx, cancel) = Context::background().with_cancel();
        let big = {
            let (sem, ctx) = (sem.clone(), ctx.clone());
            rt.spawn(move || sem.acquire_many_ctx(2, &ctx).map(|p| p.num_permits()))
        };
        wait_blocked(&rt, ACQUIRE, 1);
        let small = {
            let sem = sem.clone();
            rt.spawn(move || sem.acquire().num_permits())
        };
        wait_blocked(&rt, ACQUIRE, 2);
        cancel.cancel();
        assert_eq!(big.join().unwrap(), Err(ContextError::Cancelled));
        assert_eq!(small.join().unwrap(), 1);
        drop(held);
        assert_eq!(sem.available_permits(), 2);
    });
}

/// Cancellations race with grants: whoever wins, no permit is lost or
/// duplicated.
#[test]
fn cancel_racing_with_grants_loses_no_permit() {
    const ROUNDS: usize = 200;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(2));
        let got = Arc::new(AtomicUsize::new(0));
        let gave_up = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let (sem, got, gave_up) = (sem.clone(), got.clone(), gave_up.clone());
                rt.spawn(move || {
                    for round in 0..ROUNDS {
                        let (ctx, cancel) = Context::background().with_cancel();
                        let canceller = grove::go(move || {
                            if (round + t) % 3 == 0 {
                                thread::yield_now();
                            }
                            cancel.cancel();
                        });
                        match sem.acquire_many_ctx(1 + round % 2, &ctx) {
                            Ok(p) => {
                                got.fetch_add(1, Ordering::SeqCst);
                                thread::yield_now();
                                drop(p);
                            }
                            Err(e) => {
                                assert_eq!(e, ContextError::Cancelled);
                                gave_up.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        canceller.join().unwrap();
                    }
                })
            })
            .collect();
        tasks.into_iter().for_each(|t| t.join().unwrap());
        let (got, gave_up) = (got.load(Ordering::SeqCst), gave_up.load(Ordering::SeqCst));
        assert_eq!(got + gave_up, 4 * ROUNDS);
        assert_eq!(
            sem.available_permits(),
            2,
            "{got} granted, {gave_up} gave up"
        );
    });
}

/// Owned permits are `'static`: taken by the spawner, moved into the
/// green thread, given back when it drops them.
#[test]
fn owned_permits_move_into_green_threads() {
    block_on_each(|_| {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..30)
            .map(|_| {
                let permit: OwnedSemaphorePermit = sem.clone().acquire_owned();
                let (inside, peak) = (inside.clone(), peak.clone());
                grove::go(move || {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(sem.available_permits(), 3);
        let a = sem.clone().try_acquire_owned().unwrap();
        assert!(Arc::ptr_eq(a.semaphore(), &sem));
        let _b = sem.clone().try_acquire_owned().unwrap();
        let _c = sem.clone().try_acquire_owned().unwrap();
        assert!(sem.clone().try_acquire_owned().is_none());
        assert!(format!("{a:?}").starts_with("OwnedSemaphorePermit"));
    });
}

/// A runtime dropped while green threads wait (for 2 permits each) unwinds
/// them; they leave the queue, so the semaphore serves the next comer.
#[test]
fn waiters_unwound_by_a_runtime_drop_leave_the_queue() {
    for_each_workers(|workers| {
        let sem = Arc::new(Semaphore::new(1));
        let rt = runtime(workers);
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let sem = sem.clone();
                rt.spawn(move || drop(sem.acquire_many(2)))
            })
            .collect();
        wait_blocked(&rt, ACQUIRE, 5);
        drop(rt);
        for w in waiters {
            assert!(w.join().is_err(), "unwound by the runtime's drop");
        }
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire().is_some(), "no ghost waiter ahead");
        sem.add_permits(1);
        assert!(sem.try_acquire_many(2).is_some());
    });
}

#[test]
fn waiting_from_an_os_thread_for_a_green_holder() {
    watchdog(|| {
        let rt = runtime(2);
        let sem = Arc::new(Semaphore::new(4));
        let (held_tx, held_rx) = grove::chan::bounded::<()>(0);
        let (go_tx, go_rx) = grove::chan::bounded::<()>(0);
        let holder = {
            let sem = sem.clone();
            rt.spawn(move || {
                let p = sem.acquire_many(4);
                held_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                drop(p);
            })
        };
        held_rx.recv().unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let os = {
            let (sem, got) = (sem.clone(), got.clone());
            std::thread::spawn(move || {
                let p = sem.acquire_many(3);
                got.store(p.num_permits(), Ordering::SeqCst);
            })
        };
        wait_until("the OS thread to queue", || {
            format!("{sem:?}").contains("waiters: 1")
        });
        go_tx.send(()).unwrap();
        os.join().unwrap();
        holder.join().unwrap();
        assert_eq!(got.load(Ordering::SeqCst), 3);
        assert_eq!(sem.available_permits(), 4);
    });
}

#[test]
fn traits() {
    assert_send_sync::<Semaphore>();
    assert_send_sync::<OwnedSemaphorePermit>();
    assert_send_sync::<grove::sync::SemaphorePermit<'static>>();
    fn is_static<T: 'static>() {}
    is_static::<OwnedSemaphorePermit>();
}

#[test]
fn a_loop_of_tries_lets_the_holder_run_and_release() {
    // One worker: the holder can only run if the loop of try_acquire
    // yields now and then (each try is a yield point, as a channel
    // operation is).
    watchdog(|| {
        runtime(1).block_on(|| {
            let sem = Arc::new(Semaphore::new(1));
            let permit = sem.clone().acquire_owned();
            let holder = grove::go(move || drop(permit));
            let mut tries = 0u64;
            let permit = loop {
                if let Some(p) = sem.try_acquire() {
                    break p;
                }
                tries += 1;
            };
            assert!(tries > 0, "the holder cannot have run before the first try");
            drop(permit);
            holder.join().unwrap();
            assert_eq!(sem.available_permits(), 1);
        })
    });
}
