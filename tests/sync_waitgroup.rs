//! Go's `WaitGroup` and grove's `Semaphore` through the public API: a
//! 10,000-green-thread fan-out, many waiters (green and OS) released at
//! once, reuse, the "negative WaitGroup counter" panic; a semaphore that
//! never lets more than its permits in (peak tracking), gives every permit
//! back, and can be held across a park.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::sync::{Arc, Semaphore, SemaphorePermit, WaitGroup};
use grove::thread;
use sync_util::{
    assert_clone_send_sync, assert_send_sync, block_on_each, blocked_on, expect_panic,
    for_each_workers, runtime, wait_blocked, wait_until, watchdog, WAIT_LIMIT,
};

#[test]
fn fan_out_of_10000_green_threads() {
    const N: usize = 10_000;
    block_on_each(|_| {
        let wg = WaitGroup::new();
        let sum = Arc::new(AtomicUsize::new(0));
        for i in 0..N {
            wg.add(1);
            let (wg, sum) = (wg.clone(), sum.clone());
            // Detached: the WaitGroup, not the JoinHandle, is the join.
            drop(grove::go(move || {
                sum.fetch_add(i, Ordering::Relaxed);
                wg.done();
            }));
        }
        wg.wait();
        assert_eq!(wg.count(), 0);
        assert_eq!(sum.load(Ordering::Relaxed), N * (N - 1) / 2);
    });
}

/// `add(n)` once, `n` dones from green threads and OS threads; waiters on
/// both kinds of thread are all released, and only once the count is zero.
#[test]
fn every_waiter_is_released_at_zero() {
    const GREEN_WAITERS: usize = 20;
    const DOERS: usize = 30;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let wg = WaitGroup::new();
        let finished = Arc::new(AtomicUsize::new(0));
        wg.add(DOERS + 2);
        let waiter = {
            let (wg, finished) = (wg.clone(), finished.clone());
            move || {
                wg.wait();
                assert_eq!(wg.count(), 0);
                finished.load(Ordering::SeqCst)
            }
        };
        let green_waiters: Vec<_> = (0..GREEN_WAITERS)
            .map(|_| rt.spawn(waiter.clone()))
            .collect();
        let os_waiter = std::thread::spawn(waiter);
        wait_blocked(&rt, "WaitGroup::wait", GREEN_WAITERS);
        let doers: Vec<_> = (0..DOERS)
            .map(|_| {
                let (wg, finished) = (wg.clone(), finished.clone());
                rt.spawn(move || {
                    thread::yield_now();
                    finished.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                })
            })
            .collect();
        let os_doers: Vec<_> = (0..2)
            .map(|_| {
                let (wg, finished) = (wg.clone(), finished.clone());
                std::thread::spawn(move || {
                    finished.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                })
            })
            .collect();
        for d in doers {
            d.join().unwrap();
        }
        for d in os_doers {
            d.join().unwrap();
        }
        assert_eq!(os_waiter.join().unwrap(), DOERS + 2);
        for w in green_waiters {
            assert_eq!(
                w.join().unwrap(),
                DOERS + 2,
                "released before the count hit zero"
            );
        }
    });
}

#[test]
fn wait_group_is_reusable_and_zero_does_not_wait() {
    block_on_each(|_| {
        let wg = WaitGroup::default();
        wg.wait(); // zero: returns at once
        assert_eq!(wg.count(), 0);
        let total = Arc::new(AtomicUsize::new(0));
        for round in 1..=5usize {
            wg.add(round);
            assert_eq!(wg.count(), round);
            for _ in 0..round {
                let (wg, total) = (wg.clone(), total.clone());
                grove::go(move || {
                    total.fetch_add(1, Ordering::SeqCst);
                    wg.done();
                });
            }
            wg.wait();
            assert_eq!(wg.count(), 0);
        }
        assert_eq!(total.load(Ordering::SeqCst), 15);
        assert!(format!("{wg:?}").contains("count: 0"));
    });
}

/// Go panics with "sync: negative WaitGroup counter"; so does grove, and
/// the counter is left as it was (usable afterwards).
#[test]
fn negative_counter_panics() {
    watchdog(|| {
        let wg = WaitGroup::new();
        let msg = expect_panic(|| wg.done());
        assert!(msg.contains("negative WaitGroup counter"), "{msg}");
        assert_eq!(wg.count(), 0);
        wg.add(1);
        wg.done();
        let msg = expect_panic(|| wg.done());
        assert!(msg.contains("negative WaitGroup counter"), "{msg}");

        // In a green thread: the panic is the join error.
        let wg2 = wg.clone();
        let payload = grove::go(move || wg2.done()).join().unwrap_err();
        assert!(sync_util::panic_message(&*payload).contains("negative WaitGroup counter"));

        // The counter still works.
        wg.add(2);
        let wg2 = wg.clone();
        grove::go(move || {
            wg2.done();
            wg2.done();
        });
        wg.wait();
        assert_eq!(wg.count(), 0);
    });
}

/// Misuse racing a waiter: green threads on 4 workers call `done()` far more
/// often than `add` allowed. Exactly one call succeeds, every other one
/// panics, and the waiter is released by that one; no over-`done` may leave
/// the counter negative even for a moment (a waiter that re-checked it then
/// parked again for good: Go's TestWaitGroupMisuse shapes, 7 of 10 runs).
#[test]
fn over_done_from_many_green_threads_never_strands_the_waiter() {
    const ROUNDS: usize = 400;
    const MISUSERS: usize = 8;
    const CALLS: usize = 100;
    quiet_negative_counter_panics();
    watchdog(|| {
        runtime(4).block_on(|| {
            for round in 0..ROUNDS {
                let wg = WaitGroup::new();
                wg.add(1);
                let (released_tx, released) = grove::chan::bounded::<()>(1);
                let waiter = wg.clone();
                grove::go(move || {
                    waiter.wait();
                    released_tx.send(()).unwrap();
                });
                let succeeded = Arc::new(AtomicUsize::new(0));
                let misusers: Vec<_> = (0..MISUSERS)
                    .map(|_| {
                        let (wg, succeeded) = (wg.clone(), succeeded.clone());
                        grove::go(move || {
                            for _ in 0..CALLS {
                                let done = std::panic::catch_unwind(|| wg.done());
                                if done.is_ok() {
                                    succeeded.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        })
                    })
                    .collect();
                for m in misusers {
                    m.join().unwrap();
                }
                assert_eq!(succeeded.load(Ordering::SeqCst), 1, "round {round}");
                assert_eq!(wg.count(), 0);
                assert!(
                    released.recv_timeout(Duration::from_secs(10)).is_ok(),
                    "round {round}: the waiter was never released (counter {})",
                    wg.count()
                );
            }
        });
    });
}

/// A panic hook, installed once, that keeps the thousands of expected
/// "negative WaitGroup counter" panics above off stderr.
fn quiet_negative_counter_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = sync_util::panic_message(info.payload());
            if !message.contains("negative WaitGroup counter") {
                default(info);
            }
        }));
    });
}

/// The semaphore's core promise, under contention from green threads and
/// OS threads that hold their permit across parks: never more holders than
/// permits, the limit actually reached, and every permit given back.
#[test]
fn semaphore_never_admits_more_than_its_permits() {
    const GREEN: usize = 24;
    const OS: usize = 2;
    const ROUNDS: usize = 40;
    for_each_workers(|workers| {
        for permits in [1, 3] {
            let rt = runtime(workers);
            let sem = Arc::new(Semaphore::new(permits));
            let inside = Arc::new(AtomicUsize::new(0));
            let peak = Arc::new(AtomicUsize::new(0));
            let entries = Arc::new(AtomicUsize::new(0));
            let user = {
                let (sem, inside, peak, entries) =
                    (sem.clone(), inside.clone(), peak.clone(), entries.clone());
                move || {
                    for i in 0..ROUNDS {
                        let permit: SemaphorePermit<'_> = sem.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        thread::yield_now(); // hold it across a park
                        if i % 10 == 0 {
                            thread::sleep(Duration::from_micros(200));
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                        entries.fetch_add(1, Ordering::SeqCst);
                        drop(permit);
                    }
                }
            };
            let os: Vec<_> = (0..OS).map(|_| std::thread::spawn(user.clone())).collect();
            let green: Vec<_> = (0..GREEN).map(|_| rt.spawn(user.clone())).collect();
            for h in os {
                h.join().unwrap();
            }
            for h in green {
                h.join().unwrap();
            }
            let peak = peak.load(Ordering::SeqCst);
            assert!(peak <= permits, "{peak} holders with {permits} permit(s)");
            assert_eq!(
                peak, permits,
                "under this much contention the limit is reached"
            );
            assert_eq!(entries.load(Ordering::SeqCst), (GREEN + OS) * ROUNDS);
            assert_eq!(sem.available_permits(), permits, "every permit given back");
        }
    });
}

#[test]
fn try_acquire_add_permits_and_forget() {
    block_on_each(|_| {
        let sem = Semaphore::new(2);
        let a = sem.try_acquire().expect("2 free");
        let b = sem.acquire();
        assert_eq!(sem.available_permits(), 0);
        assert!(sem.try_acquire().is_none());
        drop(a);
        assert_eq!(sem.available_permits(), 1);
        b.forget(); // kept for good: the semaphore shrinks to 1
        assert_eq!(sem.available_permits(), 1);
        let c = sem.try_acquire().unwrap();
        assert!(sem.try_acquire().is_none());
        sem.add_permits(2);
        assert_eq!(sem.available_permits(), 2);
        drop(c);
        assert_eq!(sem.available_permits(), 3);
        assert!(format!("{sem:?}").contains("available_permits: 3"));
        assert!(format!("{:?}", sem.acquire()).starts_with("SemaphorePermit"));
    });
}

/// Green threads parked on an empty semaphore ("Semaphore::acquire") are
/// let in by `add_permits` exactly as many at a time as permits were added.
#[test]
fn add_permits_wakes_that_many_waiters() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let sem = Arc::new(Semaphore::new(0));
        let got = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = grove::chan::unbounded::<()>();
        let waiters: Vec<_> = (0..6)
            .map(|_| {
                let (sem, got, release_rx) = (sem.clone(), got.clone(), release_rx.clone());
                rt.spawn(move || {
                    let permit = sem.acquire();
                    got.fetch_add(1, Ordering::SeqCst);
                    release_rx.recv().unwrap(); // hold the permit, parked
                    permit.forget();
                })
            })
            .collect();
        wait_blocked(&rt, "Semaphore::acquire", 6);
        sem.add_permits(2);
        wait_until("two waiters to get in", || got.load(Ordering::SeqCst) == 2);
        assert_eq!(blocked_on(&rt, "Semaphore::acquire").len(), 4);
        assert_eq!(got.load(Ordering::SeqCst), 2, "two permits, two waiters in");
        sem.add_permits(4);
        wait_until("the rest to get in", || got.load(Ordering::SeqCst) == 6);
        for _ in 0..6 {
            release_tx.send(()).unwrap();
        }
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 0, "all six permits were forgotten");
    });
}

/// On one worker, a green thread holds the only permit across a sleep: the
/// worker keeps running others (one parks on `acquire`, one just runs) and
/// the waiter gets the permit when it is dropped.
#[test]
fn permit_held_across_sleep_does_not_block_the_worker() {
    watchdog(|| {
        let rt = runtime(1);
        let sem = Arc::new(Semaphore::new(1));
        let order = Arc::new(AtomicUsize::new(0));
        let (held_tx, held_rx) = grove::chan::bounded::<()>(0);
        let other_ran = Arc::new(AtomicBool::new(false));
        let holder = {
            let (sem, order, other_ran) = (sem.clone(), order.clone(), other_ran.clone());
            rt.spawn(move || {
                let _p = sem.acquire();
                held_tx.send(()).unwrap();
                let t0 = Instant::now();
                while !other_ran.load(Ordering::SeqCst) {
                    assert!(t0.elapsed() < WAIT_LIMIT, "the worker is blocked");
                    thread::sleep(Duration::from_millis(1));
                }
                order.fetch_add(1, Ordering::SeqCst)
            })
        };
        held_rx.recv().unwrap();
        let waiter = {
            let (sem, order) = (sem.clone(), order.clone());
            rt.spawn(move || {
                let _p = sem.acquire();
                order.fetch_add(1, Ordering::SeqCst)
            })
        };
        wait_blocked(&rt, "Semaphore::acquire", 1);
        let other = {
            let order = order.clone();
            rt.spawn(move || {
                let at = order.fetch_add(1, Ordering::SeqCst);
                other_ran.store(true, Ordering::SeqCst);
                at
            })
        };
        // `other` runs while the holder sleeps with the permit.
        assert_eq!(other.join().unwrap(), 0);
        assert_eq!(holder.join().unwrap(), 1);
        assert_eq!(waiter.join().unwrap(), 2);
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn traits() {
    watchdog(|| {
        assert_clone_send_sync::<WaitGroup>();
        assert_send_sync::<Semaphore>();
        static SEM: Semaphore = Semaphore::new(1); // `new` is const
        let p = SEM.acquire();
        assert!(SEM.try_acquire().is_none());
        drop(p);
        assert_eq!(SEM.available_permits(), 1);
    });
}
