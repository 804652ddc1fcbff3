//! `grove::sync::Mutex` through the public API: exact counts under
//! contention from green threads, OS threads and both at once; a guard held
//! across a park never blocks the worker; `try_lock`; poisoning side by
//! side with `std::sync::Mutex`; and Go's starvation hand-off (a waiter
//! that waited over 1 ms is handed the lock even while others re-lock it in
//! a tight loop).

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use grove::chan;
use grove::sync::{Arc, Mutex, MutexGuard};
use grove::thread;
use sync_util::{
    assert_send_sync, block_on_each, expect_panic, for_each_workers, runtime, wait_blocked,
    wait_until, watchdog, WAIT_LIMIT,
};

/// The shared state of the counting tests: a plain read-modify-write that
/// only the lock keeps exact.
#[derive(Default)]
struct Tally {
    count: u64,
    sum: u64,
}

/// One locked increment; yields (green) or gives up the CPU (OS) inside the
/// critical section every `yield_every` calls, so that holders really
/// overlap with waiters even on one worker.
fn add(m: &Mutex<Tally>, value: u64, i: u64, yield_every: u64) {
    let mut g = m.lock().unwrap();
    let count = g.count;
    if i % yield_every == 0 {
        thread::yield_now();
    }
    g.count = count + 1;
    g.sum += value;
}

#[test]
fn counts_are_exact_under_green_contention() {
    const THREADS: u64 = 16;
    const PER: u64 = 1_000;
    block_on_each(|_| {
        let m = Arc::new(Mutex::new(Tally::default()));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let m = m.clone();
                grove::go(move || {
                    for i in 0..PER {
                        add(&m, t * PER + i, i, 16);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let g = m.lock().unwrap();
        let n = THREADS * PER;
        assert_eq!(g.count, n);
        assert_eq!(g.sum, n * (n - 1) / 2);
    });
}

#[test]
fn counts_are_exact_with_os_threads_and_green_threads_on_one_mutex() {
    const GREEN: u64 = 8;
    const OS: u64 = 2;
    const PER: u64 = 1_000;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let m = Arc::new(Mutex::new(Tally::default()));
        let counter = m.clone();
        let (os, green) = spawn_mixed(&rt, OS, GREEN, move |t| {
            for i in 0..PER {
                add(&counter, t * PER + i, i, 8);
            }
        });
        assert_exact(os, green, &m, (OS + GREEN) * PER);
    });
}

/// Runs `body(t)` on OS threads `t` in `0..os` and on green threads of
/// `rt`, `t` in `os..os + green`.
fn spawn_mixed(
    rt: &grove::Runtime,
    os: u64,
    green: u64,
    body: impl Fn(u64) + Send + Sync + 'static,
) -> (
    Vec<std::thread::JoinHandle<()>>,
    Vec<thread::JoinHandle<()>>,
) {
    let body = Arc::new(body);
    let on_os = (0..os)
        .map(|t| {
            let body = body.clone();
            std::thread::spawn(move || body(t))
        })
        .collect();
    let on_green = (os..os + green)
        .map(|t| {
            let body = body.clone();
            rt.spawn(move || body(t))
        })
        .collect();
    (on_os, on_green)
}

/// Joins every OS thread and green thread, then checks that the tally saw
/// `n` increments of the values `0..n`, each exactly once.
fn assert_exact(
    os: Vec<std::thread::JoinHandle<()>>,
    green: Vec<thread::JoinHandle<()>>,
    m: &Mutex<Tally>,
    n: u64,
) {
    for h in os {
        h.join().unwrap();
    }
    for h in green {
        h.join().unwrap();
    }
    let g = m.lock().unwrap();
    assert_eq!((g.count, g.sum), (n, n * (n - 1) / 2));
}

/// Tight lock / unlock loops with no pause between them, from green
/// threads on every worker and OS threads at once, many rounds: spinners
/// and woken waiters pass the "one awake locker" bit (`WOKEN`) back and
/// forth thousands of times a round. A lost wake-up hangs a round (the
/// watchdog fails it); a lost or doubled increment shows in the counts.
#[test]
fn tight_loops_lose_no_wake_up_and_no_increment() {
    const ROUNDS: u64 = 30;
    const GREEN: u64 = 8;
    const OS: u64 = 2;
    const PER: u64 = 2_000;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for round in 0..ROUNDS {
            let m = Arc::new(Mutex::new(Tally::default()));
            let counter = m.clone();
            let (os, green) = spawn_mixed(&rt, OS, GREEN, move |t| {
                for i in 0..PER {
                    let mut g = counter.lock().unwrap();
                    g.count += 1;
                    g.sum += t * PER + i;
                    // Now and then a green holder yields with the lock
                    // held, so that lockers queue up behind it.
                    if t >= OS && i % 500 == t {
                        thread::yield_now();
                    }
                }
            });
            eprintln!("{workers} worker(s), round {round}");
            assert_exact(os, green, &m, (OS + GREEN) * PER);
        }
    });
}

/// A waiter that outlives the runtime of the waiters queued before it
/// still gets the lock when that runtime is dropped: each green waiter the
/// unlocks wake is unwound instead of competing, and must not take the
/// "a woken locker is on its way" bit with it. The last waiter is a green
/// thread of a second runtime, so that the test can see it queued.
#[test]
fn a_waiter_behind_green_waiters_of_a_dropped_runtime_gets_the_lock() {
    const ROUNDS: usize = 20;
    for_each_workers(|workers| {
        let other = runtime(1);
        for _ in 0..ROUNDS {
            let rt = runtime(workers);
            let m = Arc::new(Mutex::new(0u32));
            let (locked_tx, locked_rx) = chan::bounded::<()>(0);
            let (_never_tx, never_rx) = chan::bounded::<()>(0);
            {
                let m = m.clone();
                // Holds the lock until the runtime's drop unwinds it.
                rt.spawn(move || {
                    let _g = m.lock().unwrap();
                    locked_tx.send(()).unwrap();
                    let _ = never_rx.recv();
                });
            }
            locked_rx.recv().unwrap();
            for _ in 0..4 {
                let m = m.clone();
                rt.spawn(move || *m.lock().unwrap_or_else(|e| e.into_inner()) += 1);
            }
            wait_blocked(&rt, "Mutex::lock", 4);
            let last = {
                let m = m.clone();
                // The holder's unwind poisons the lock, as a panic does.
                other.spawn(move || *m.lock().unwrap_or_else(|e| e.into_inner()) += 100)
            };
            wait_blocked(&other, "Mutex::lock", 1);
            drop(rt);
            last.join().unwrap();
            // The holder never wrote; the four may or may not have got in
            // before their runtime unwound them.
            let v = *m.lock().unwrap_or_else(|e| e.into_inner());
            assert!((100..=104).contains(&v), "value {v}");
        }
    });
}

/// On a one-worker runtime, A holds the lock while it sleeps (in short
/// naps until B has run). If sleeping with the guard blocked the worker, B
/// could never run and A would never leave its loop. C meanwhile parks in
/// `lock()` and gets the lock, and A's write, once A lets go.
#[test]
fn guard_held_across_sleep_lets_other_green_threads_run() {
    watchdog(|| {
        let rt = runtime(1);
        let order = Arc::new(AtomicUsize::new(0));
        let m = Arc::new(Mutex::new(Vec::<&'static str>::new()));
        let b_ran = Arc::new(AtomicBool::new(false));
        let (locked_tx, locked_rx) = chan::bounded::<()>(0);
        let a = {
            let (m, order, b_ran) = (m.clone(), order.clone(), b_ran.clone());
            rt.spawn(move || {
                let mut g = m.lock().unwrap();
                let locked_at = order.fetch_add(1, Ordering::SeqCst);
                locked_tx.send(()).unwrap(); // parks holding the guard
                let start = Instant::now();
                while !b_ran.load(Ordering::SeqCst) {
                    assert!(
                        start.elapsed() < WAIT_LIMIT,
                        "B never ran: the worker is blocked"
                    );
                    thread::sleep(Duration::from_millis(1));
                }
                g.push("A");
                (locked_at, order.fetch_add(1, Ordering::SeqCst))
            })
        };
        locked_rx.recv().unwrap();
        let c = {
            let (m, order) = (m.clone(), order.clone());
            rt.spawn(move || {
                let mut g = m.lock().unwrap();
                g.push("C");
                (g.clone(), order.fetch_add(1, Ordering::SeqCst))
            })
        };
        wait_blocked(&rt, "Mutex::lock", 1);
        let b = {
            let (m, order, b_ran) = (m.clone(), order.clone(), b_ran.clone());
            rt.spawn(move || {
                assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
                let at = order.fetch_add(1, Ordering::SeqCst);
                b_ran.store(true, Ordering::SeqCst);
                at
            })
        };
        let b_at = b.join().unwrap();
        let (a_locked, a_done) = a.join().unwrap();
        let (seen_by_c, c_at) = c.join().unwrap();
        assert!(
            a_locked < b_at && b_at < a_done,
            "B ran while A held the guard"
        );
        assert!(a_done < c_at);
        assert_eq!(seen_by_c, ["A", "C"]);
    });
}

/// A guard held across channel operations: the holder parks on a
/// rendezvous with a green thread of the same (single) worker, which must
/// therefore run while the lock is held.
#[test]
fn guard_held_across_channel_ops() {
    block_on_each(|_| {
        let m = Arc::new(Mutex::new(0u64));
        let (tx, rx) = chan::bounded::<u64>(0);
        let (back_tx, back_rx) = chan::bounded::<u64>(0);
        let echo = {
            let m = m.clone();
            grove::go(move || {
                for v in &rx {
                    assert!(m.try_lock().is_err(), "the sender holds the lock");
                    back_tx.send(v * 2).unwrap();
                }
            })
        };
        for i in 0..200u64 {
            let mut g = m.lock().unwrap();
            tx.send(i).unwrap();
            *g += back_rx.recv().unwrap();
        }
        drop(tx);
        echo.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 2 * (0..200).sum::<u64>());
    });
}

#[test]
fn os_thread_blocks_until_a_sleeping_green_holder_lets_go() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let m = Arc::new(Mutex::new(0));
        let (locked_tx, locked_rx) = chan::bounded::<()>(0);
        let holder = {
            let m = m.clone();
            rt.spawn(move || {
                let mut g = m.lock().unwrap();
                locked_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(20));
                *g = 1;
            })
        };
        locked_rx.recv().unwrap();
        let t0 = Instant::now();
        assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        let seen = *m.lock().unwrap(); // blocks this OS thread
        assert_eq!(seen, 1, "the OS thread got the lock only after the holder");
        assert!(t0.elapsed() < WAIT_LIMIT);
        holder.join().unwrap();
    });
}

#[test]
fn try_lock_semantics() {
    block_on_each(|_| {
        let m = Arc::new(Mutex::new(5));
        {
            let g = m.try_lock().expect("free: try_lock takes it");
            assert_eq!(*g, 5);
            assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
            // Another green thread and an OS thread see it held too.
            let m2 = m.clone();
            let other = grove::go(move || matches!(m2.try_lock(), Err(TryLockError::WouldBlock)));
            assert!(other.join().unwrap());
            let m3 = m.clone();
            let os = std::thread::spawn(move || m3.try_lock().is_err());
            assert!(os.join().unwrap());
        }
        *m.try_lock().unwrap() += 1;
        assert_eq!(*m.lock().unwrap(), 6);

        // Poisoned and free: Poisoned, with a working guard inside.
        let m2 = m.clone();
        let r = grove::go(move || {
            let _g = m2.lock().unwrap();
            panic!("poison");
        })
        .join();
        assert!(r.is_err());
        match m.try_lock() {
            Err(TryLockError::Poisoned(e)) => {
                let mut g = e.into_inner();
                *g += 1;
                // Still held through the guard from the error.
                assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
            }
            other => panic!("expected Poisoned, got {:?}", other.map(|g| *g)),
        }
        assert_eq!(*m.lock().unwrap_err().into_inner(), 7);
    });
}

/// What one poisoning scenario observed, so grove and std can be compared.
#[derive(Debug, PartialEq)]
struct PoisonTrace {
    poisoned_after_panic: bool,
    lock_err_value: Option<i32>,
    try_lock_poisoned: bool,
    after_clear: bool,
    poisoned_by_non_holder: bool,
    poisoned_by_guard_made_while_panicking: bool,
    get_mut_err: bool,
    into_inner_err_value: Option<i32>,
}

/// The same steps, written once for std's Mutex and once for grove's.
macro_rules! poison_trace {
    ($Mutex:ident, $spawn:expr) => {{
        let spawn = $spawn;
        let m = Arc::new($Mutex::new(1));
        let m2 = m.clone();
        assert!(spawn(Box::new(move || {
            let mut g = m2.lock().unwrap();
            *g = 2;
            panic!("while holding the guard");
        })));
        let poisoned_after_panic = m.is_poisoned();
        let lock_err_value = m.lock().err().map(|e| {
            let mut g = e.into_inner();
            *g += 1;
            *g
        });
        let try_lock_poisoned = matches!(m.try_lock(), Err(TryLockError::Poisoned(_)));
        m.clear_poison();
        let after_clear = m.is_poisoned() || m.lock().is_err();

        // A panic by a thread that does not hold the guard poisons nothing.
        let m3 = m.clone();
        assert!(spawn(Box::new(move || {
            drop(m3.lock().unwrap());
            panic!("after releasing the guard");
        })));
        let poisoned_by_non_holder = m.is_poisoned();

        // A guard taken and dropped while already panicking (in a
        // destructor during unwinding) poisons nothing either.
        struct LockOnDrop(Arc<$Mutex<i32>>);
        impl Drop for LockOnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() += 10;
            }
        }
        let m4 = m.clone();
        assert!(spawn(Box::new(move || {
            let _d = LockOnDrop(m4);
            panic!("unwinding through a destructor that locks");
        })));
        let poisoned_by_guard_made_while_panicking = m.is_poisoned();

        let m5 = m.clone();
        assert!(spawn(Box::new(move || {
            let _g = m5.lock();
            panic!("poison again");
        })));
        let mut m = Arc::try_unwrap(m).ok().expect("the only reference");
        let get_mut_err = m.get_mut().is_err();
        let into_inner_err_value = m.into_inner().err().map(|e| e.into_inner());
        PoisonTrace {
            poisoned_after_panic,
            lock_err_value,
            try_lock_poisoned,
            after_clear,
            poisoned_by_non_holder,
            poisoned_by_guard_made_while_panicking,
            get_mut_err,
            into_inner_err_value,
        }
    }};
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on an OS thread; true if it panicked.
fn on_os_thread(job: Job) -> bool {
    std::thread::spawn(job).join().is_err()
}

/// Runs `job` on a green thread; true if it panicked.
fn on_green_thread(job: Job) -> bool {
    grove::go(job).join().is_err()
}

#[test]
fn poisoning_matches_std() {
    watchdog(|| {
        let std_trace = {
            use std::sync::Mutex;
            poison_trace!(Mutex, on_os_thread)
        };
        assert_eq!(
            std_trace,
            PoisonTrace {
                poisoned_after_panic: true,
                lock_err_value: Some(3),
                try_lock_poisoned: true,
                after_clear: false,
                poisoned_by_non_holder: false,
                poisoned_by_guard_made_while_panicking: false,
                get_mut_err: true,
                into_inner_err_value: Some(13),
            },
            "the reference behaviour (std)"
        );
        let green = poison_trace!(Mutex, on_green_thread);
        assert_eq!(green, std_trace, "a green thread panics");
        let os = poison_trace!(Mutex, on_os_thread);
        assert_eq!(os, std_trace, "an OS thread panics on a grove Mutex");
    });
}

#[test]
fn waiters_parked_when_the_holder_panics_see_the_poison() {
    block_on_each(|_| {
        let m = Arc::new(Mutex::new(0));
        let (locked_tx, locked_rx) = chan::bounded::<()>(0);
        let (go_tx, go_rx) = chan::bounded::<()>(0);
        let holder = {
            let m = m.clone();
            grove::go(move || {
                let _g = m.lock().unwrap();
                locked_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                panic!("holder dies");
            })
        };
        locked_rx.recv().unwrap();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                grove::go(move || match m.lock() {
                    Ok(_) => false,
                    Err(e) => {
                        *e.into_inner() += 1;
                        true
                    }
                })
            })
            .collect();
        go_tx.send(()).unwrap();
        assert!(holder.join().is_err());
        for w in waiters {
            assert!(w.join().unwrap(), "every waiter sees the poison");
        }
        assert_eq!(*m.lock().unwrap_err().into_inner(), 4);
    });
}

/// Go's starvation mode, made deterministic: green "hammers" re-lock the
/// mutex the instant they unlock it, and yield only while holding it. A
/// waiter woken to compete therefore always finds it locked again; only
/// the hand-off (a waiter queued for over 1 ms is given the lock on
/// unlock) lets it in. Without the hand-off this test fails on every
/// worker count.
#[test]
fn starving_waiter_is_handed_the_lock_by_relocking_green_threads() {
    const ROUNDS: usize = 10;
    const CAP: Duration = Duration::from_secs(10);
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let m = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hammers: Vec<_> = (0..2)
            .map(|_| {
                let (m, stop) = (m.clone(), stop.clone());
                rt.spawn(move || {
                    let t0 = Instant::now();
                    let mut g = m.lock().unwrap();
                    while !stop.load(Ordering::SeqCst) && t0.elapsed() < CAP {
                        *g += 1;
                        thread::yield_now(); // others run only while we hold it
                        drop(g);
                        g = m.lock().unwrap(); // re-lock at once
                    }
                })
            })
            .collect();
        wait_until("the hammers to go", || *m.lock().unwrap() > 100);
        let waiter = {
            let m = m.clone();
            rt.spawn(move || {
                let t0 = Instant::now();
                for _ in 0..ROUNDS {
                    drop(m.lock().unwrap());
                }
                t0.elapsed()
            })
        };
        let took = waiter.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        for h in hammers {
            h.join().unwrap();
        }
        assert!(
            took < CAP / 2,
            "{ROUNDS} starved lock()s took {took:?}: no hand-off to the starving waiter"
        );
    });
}

/// The same with two OS threads re-locking in a tight loop that never
/// stops on its own: the green waiter still gets in, every round, in
/// bounded time.
#[test]
fn starving_waiter_is_handed_the_lock_by_os_threads() {
    const ROUNDS: usize = 20;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        // (relocks by the hammers, rounds of the waiter)
        let m = Arc::new(Mutex::new((0u64, 0usize)));
        let stop = Arc::new(AtomicBool::new(false));
        let relocks = Arc::new(AtomicU64::new(0));
        let hammers: Vec<_> = (0..2)
            .map(|_| {
                let (m, stop, relocks) = (m.clone(), stop.clone(), relocks.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut g = m.lock().unwrap();
                        g.0 += 1;
                        for _ in 0..50 {
                            std::hint::spin_loop();
                        }
                        drop(g);
                        relocks.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Wait until the hammers are going.
        let t0 = Instant::now();
        while relocks.load(Ordering::Relaxed) < 1_000 {
            assert!(t0.elapsed() < WAIT_LIMIT);
            std::thread::yield_now();
        }
        let waiter = {
            let (m, relocks) = (m.clone(), relocks.clone());
            rt.spawn(move || {
                let mut worst = Duration::ZERO;
                let before = relocks.load(Ordering::Relaxed);
                for _ in 0..ROUNDS {
                    let t = Instant::now();
                    let mut g = m.lock().unwrap();
                    worst = worst.max(t.elapsed());
                    g.1 += 1;
                    drop(g);
                    thread::yield_now();
                }
                (worst, relocks.load(Ordering::Relaxed) - before)
            })
        };
        let (worst, relocked_meanwhile) = waiter.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        for h in hammers {
            h.join().unwrap();
        }
        assert!(
            worst < Duration::from_secs(5),
            "the starving waiter waited {worst:?} for the lock"
        );
        let (hammered, rounds) = *m.lock().unwrap();
        assert_eq!(rounds, ROUNDS, "every round got in once");
        // (`relocked_meanwhile` may be 0: the hammers may all have been
        // parked in the queue while the waiter took its turns.)
        let _ = relocked_meanwhile;
        assert_eq!(hammered, relocks.load(Ordering::Relaxed));
    });
}

#[test]
fn std_traits_and_unsized_data() {
    watchdog(|| {
        assert_send_sync::<Mutex<Vec<u8>>>();
        assert_send_sync::<Arc<Mutex<std::cell::Cell<u8>>>>(); // T: Send is enough
        fn guard_is_send<T: Send>(_: &T) {}
        let m = Mutex::new(3);
        {
            let g: MutexGuard<'_, i32> = m.lock().unwrap();
            guard_is_send(&g);
            assert_eq!(format!("{g:?}"), "3");
            assert_eq!(g.to_string(), "3");
            // Exactly std's, quotes included.
            assert_eq!(
                format!("{m:?}"),
                r#"Mutex { data: "<locked>", poisoned: false, .. }"#
            );
        }
        let dbg = format!("{m:?}");
        assert!(
            dbg.contains("data: 3") && dbg.contains("poisoned: false"),
            "{dbg}"
        );
        assert_eq!(
            *Mutex::<Vec<u8>>::default().lock().unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(Mutex::from(9).into_inner().unwrap(), 9);

        let unsized_: Arc<Mutex<[u32]>> = Arc::new(Mutex::new([1, 2, 3]));
        unsized_.lock().unwrap()[1] = 20;
        assert_eq!(unsized_.lock().unwrap().iter().sum::<u32>(), 24);

        static GLOBAL: Mutex<u32> = Mutex::new(0); // `new` is const
        let hs: Vec<_> = (0..8)
            .map(|_| grove::go(|| *GLOBAL.lock().unwrap() += 1))
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*GLOBAL.lock().unwrap(), 8);
        let msg = expect_panic(|| {
            let _g = GLOBAL.lock().unwrap();
            panic!("poison the static");
        });
        assert_eq!(msg, "poison the static");
        assert!(GLOBAL.is_poisoned());
        GLOBAL.clear_poison();
    });
}
