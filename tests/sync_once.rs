//! `grove::sync::Once` and `OnceLock` through the public API: exactly one
//! initialisation under hundreds of contenders (green threads and OS
//! threads, the losers parked until the winner is done), poisoning and
//! `call_once_force` as in std, and a panicking `OnceLock` initialiser
//! that leaves the cell empty for the next caller.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use grove::sync::{Arc, Barrier, LazyLock, Once, OnceLock, OnceState};
use grove::thread;
use sync_util::{
    assert_send_sync, block_on_each, expect_panic, for_each_workers, runtime, wait_blocked,
    watchdog,
};

const CONTENDERS: usize = 300;

/// Every caller of `call_once` returns only after the one call of `f` has
/// finished (it sees `f`'s effect), whoever won.
#[test]
fn call_once_runs_once_and_everyone_waits_for_it() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let caller = {
            let (once, runs, finished) = (once.clone(), runs.clone(), finished.clone());
            move || {
                once.call_once(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Long enough for the others to pile up behind it.
                    thread::sleep(Duration::from_millis(5));
                    finished.store(true, Ordering::SeqCst);
                });
                assert!(
                    finished.load(Ordering::SeqCst),
                    "returned before f finished"
                );
                assert!(once.is_completed());
            }
        };
        let os: Vec<_> = (0..2).map(|_| std::thread::spawn(caller.clone())).collect();
        let green: Vec<_> = (0..CONTENDERS).map(|_| rt.spawn(caller.clone())).collect();
        for h in os {
            h.join().unwrap();
        }
        for h in green {
            h.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

/// Losers park ("Once::call_once") while the winner runs; they are
/// released when it finishes.
#[test]
fn losers_park_while_the_winner_runs() {
    watchdog(|| {
        let rt = runtime(2);
        let once = Arc::new(Once::new());
        let (started_tx, started_rx) = grove::chan::bounded::<()>(0);
        let (finish_tx, finish_rx) = grove::chan::bounded::<()>(0);
        let winner = {
            let once = once.clone();
            rt.spawn(move || {
                once.call_once(|| {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap(); // parks inside f
                })
            })
        };
        started_rx.recv().unwrap();
        let losers: Vec<_> = (0..5)
            .map(|_| {
                let once = once.clone();
                rt.spawn(move || once.call_once(|| panic!("a loser ran f")))
            })
            .collect();
        wait_blocked(&rt, "Once::call_once", 5);
        assert!(!once.is_completed());
        finish_tx.send(()).unwrap();
        winner.join().unwrap();
        for l in losers {
            l.join().unwrap();
        }
        assert!(once.is_completed());
    });
}

#[test]
fn once_poisoning_and_call_once_force_match_std() {
    watchdog(|| {
        // The reference: std's Once.
        let std_once = std::sync::Once::new();
        let grove_once = Once::new();
        let std_msg = expect_panic(|| std_once.call_once(|| panic!("init fails")));
        let msg = expect_panic(|| grove_once.call_once(|| panic!("init fails")));
        assert_eq!(
            (std_msg.as_str(), msg.as_str()),
            ("init fails", "init fails")
        );
        assert!(!std_once.is_completed() && !grove_once.is_completed());

        // call_once on a poisoned Once panics and runs nothing.
        let std_msg = expect_panic(|| std_once.call_once(|| unreachable!()));
        let msg = expect_panic(|| grove_once.call_once(|| unreachable!()));
        assert!(std_msg.contains("poisoned"), "{std_msg}");
        assert!(msg.contains("poisoned"), "{msg}");

        // call_once_force runs, told about the poison; a panic in it keeps
        // the Once poisoned; a success completes it.
        let mut seen = Vec::new();
        let _ = expect_panic(|| {
            grove_once.call_once_force(|s: &OnceState| {
                seen.push(s.is_poisoned());
                panic!("fails again")
            })
        });
        grove_once.call_once_force(|s| seen.push(s.is_poisoned()));
        grove_once.call_once_force(|_| seen.push(false));
        grove_once.call_once(|| unreachable!());
        assert_eq!(seen, [true, true], "ran twice, poisoned both times");
        assert!(grove_once.is_completed());

        let mut std_seen = Vec::new();
        let _ = expect_panic(|| {
            std_once.call_once_force(|s| {
                std_seen.push(s.is_poisoned());
                panic!("fails again")
            })
        });
        std_once.call_once_force(|s| std_seen.push(s.is_poisoned()));
        assert_eq!(std_seen, seen);

        let fresh = Once::new();
        let mut poisoned = None;
        fresh.call_once_force(|s| poisoned = Some(s.is_poisoned()));
        assert_eq!(poisoned, Some(false));
    });
}

/// Green threads parked in `call_once` while the winner panics panic too
/// (the Once is poisoned, as in std); parked `call_once_force` callers do
/// not: one of them runs its closure.
#[test]
fn parked_callers_see_the_poison() {
    watchdog(|| {
        let rt = runtime(2);
        let once = Arc::new(Once::new());
        let (started_tx, started_rx) = grove::chan::bounded::<()>(0);
        let (fail_tx, fail_rx) = grove::chan::bounded::<()>(0);
        let winner = {
            let once = once.clone();
            rt.spawn(move || {
                once.call_once(|| {
                    started_tx.send(()).unwrap();
                    fail_rx.recv().unwrap();
                    panic!("the winner fails");
                })
            })
        };
        started_rx.recv().unwrap();
        let plain: Vec<_> = (0..3)
            .map(|_| {
                let once = once.clone();
                rt.spawn(move || once.call_once(|| {}))
            })
            .collect();
        let forced_runs = Arc::new(AtomicUsize::new(0));
        let forced: Vec<_> = (0..3)
            .map(|_| {
                let (once, runs) = (once.clone(), forced_runs.clone());
                rt.spawn(move || {
                    once.call_once_force(|s| {
                        assert!(s.is_poisoned());
                        runs.fetch_add(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        wait_blocked(&rt, "Once::call_once", 6);
        fail_tx.send(()).unwrap();
        assert!(winner.join().is_err());
        for f in forced {
            f.join().unwrap();
        }
        assert_eq!(forced_runs.load(Ordering::SeqCst), 1);
        // A plain caller either saw the poison (and panicked) or came after
        // a forced caller completed the Once.
        for p in plain {
            let _ = p.join();
        }
        assert!(once.is_completed());
    });
}

/// Hundreds of contenders (green and OS) call `get_or_init` on one cell:
/// the initialiser runs once, and every caller gets the same value at the
/// same address.
#[test]
fn once_lock_initialises_exactly_once_under_contention() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let cell: Arc<OnceLock<Vec<u64>>> = Arc::new(OnceLock::new());
        let inits = Arc::new(AtomicUsize::new(0));
        let getter = {
            let (cell, inits) = (cell.clone(), inits.clone());
            move || {
                let v = cell.get_or_init(|| {
                    inits.fetch_add(1, Ordering::SeqCst);
                    thread::yield_now(); // let the others pile up
                    thread::sleep(Duration::from_millis(2));
                    vec![1, 2, 3]
                });
                (v.as_ptr() as usize, v.iter().sum::<u64>())
            }
        };
        let os: Vec<_> = (0..2).map(|_| std::thread::spawn(getter.clone())).collect();
        let green: Vec<_> = (0..CONTENDERS).map(|_| rt.spawn(getter.clone())).collect();
        let mut seen: Vec<(usize, u64)> = os.into_iter().map(|h| h.join().unwrap()).collect();
        seen.extend(green.into_iter().map(|h| h.join().unwrap()));
        assert_eq!(inits.load(Ordering::SeqCst), 1);
        let first = seen[0];
        assert_eq!(first.1, 6);
        assert!(
            seen.iter().all(|s| *s == first),
            "everyone got the one value"
        );
        assert_eq!(cell.get().map(|v| v.as_ptr() as usize), Some(first.0));
    });
}

/// A panicking initialiser leaves the cell empty; the green threads that
/// were parked behind it do not give up: one of them initialises it.
#[test]
fn once_lock_panicking_initialiser_leaves_it_empty() {
    block_on_each(|_| {
        let cell = Arc::new(OnceLock::<u32>::new());
        let msg = expect_panic(|| cell.get_or_init(|| panic!("first init fails")));
        assert_eq!(msg, "first init fails");
        assert_eq!(cell.get(), None);
        assert_eq!(*cell.get_or_init(|| 2), 2, "the next caller initialises");
        assert_eq!(*cell.get_or_init(|| 3), 2);

        // Now with contenders parked behind the failing initialiser.
        let cell = Arc::new(OnceLock::<u32>::new());
        let inits = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = grove::chan::bounded::<()>(0);
        let (fail_tx, fail_rx) = grove::chan::bounded::<()>(0);
        let failing = {
            let (cell, inits) = (cell.clone(), inits.clone());
            grove::go(move || {
                *cell.get_or_init(|| {
                    inits.fetch_add(1, Ordering::SeqCst);
                    started_tx.send(()).unwrap();
                    fail_rx.recv().unwrap();
                    panic!("init fails while others wait");
                })
            })
        };
        started_rx.recv().unwrap();
        let waiting_done = Arc::new(AtomicUsize::new(0));
        let others: Vec<_> = (0..20)
            .map(|i| {
                let (cell, inits, waiting_done) =
                    (cell.clone(), inits.clone(), waiting_done.clone());
                grove::go(move || {
                    let v = *cell.get_or_init(|| {
                        inits.fetch_add(1, Ordering::SeqCst);
                        100 + i
                    });
                    waiting_done.fetch_add(1, Ordering::SeqCst);
                    v
                })
            })
            .collect();
        for _ in 0..20 {
            thread::yield_now();
        }
        assert_eq!(
            waiting_done.load(Ordering::SeqCst),
            0,
            "nobody passes a running init"
        );
        assert_eq!(cell.get(), None, "get does not wait and sees nothing yet");
        fail_tx.send(()).unwrap();
        assert!(failing.join().is_err());
        let values: Vec<u32> = others.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            inits.load(Ordering::SeqCst),
            2,
            "the failed init and one more"
        );
        let v = values[0];
        assert!((100..120).contains(&v));
        assert!(values.iter().all(|x| *x == v));
        assert_eq!(cell.get(), Some(&v));
    });
}

#[test]
fn once_lock_set_get_take_and_friends() {
    block_on_each(|_| {
        let mut cell = OnceLock::new();
        assert_eq!(cell.get(), None);
        assert_eq!(cell.get_mut(), None);
        assert_eq!(cell.set(1), Ok(()));
        assert_eq!(cell.set(2), Err(2), "a full cell gives the value back");
        assert_eq!(*cell.get_or_init(|| unreachable!()), 1);
        *cell.get_mut().unwrap() += 10;
        assert_eq!(cell.get(), Some(&11));
        assert_eq!(format!("{cell:?}"), "OnceLock(11)", "std's Debug");
        assert_eq!(cell.take(), Some(11));
        assert_eq!(cell.get(), None);
        assert_eq!(*cell.get_or_init(|| 5), 5, "initialisable again after take");
        assert_eq!(cell.into_inner(), Some(5));
        assert_eq!(OnceLock::<u8>::default().into_inner(), None);
        assert_eq!(OnceLock::from(7).get(), Some(&7));

        // Racing `set`s from green threads: exactly one wins.
        let cell = Arc::new(OnceLock::new());
        let hs: Vec<_> = (0..64)
            .map(|i| {
                let cell = cell.clone();
                grove::go(move || cell.set(i).is_ok())
            })
            .collect();
        let wins = hs.into_iter().map(|h| h.join().unwrap());
        assert_eq!(wins.filter(|w| *w).count(), 1);
        assert!(cell.get().is_some_and(|v| *v < 64));
    });
}

#[test]
fn statics_and_traits() {
    static INIT: Once = Once::new();
    static CELL: OnceLock<String> = OnceLock::new();
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    assert_send_sync::<Once>();
    assert_send_sync::<OnceLock<String>>();
    watchdog(|| {
        let hs: Vec<_> = (0..32)
            .map(|i| {
                grove::go(move || {
                    INIT.call_once(|| {
                        RUNS.fetch_add(1, Ordering::SeqCst);
                    });
                    CELL.get_or_init(|| format!("winner {i}")).len()
                })
            })
            .collect();
        for h in hs {
            assert!(h.join().unwrap() >= "winner 0".len());
        }
        assert_eq!(RUNS.load(Ordering::SeqCst), 1);
        assert!(INIT.is_completed());
        assert_eq!(format!("{INIT:?}"), "Once { .. }", "std's Debug");
        assert!(CELL.get().is_some_and(|v| v.starts_with("winner ")));
    });
}

/// `Once::wait` and `OnceLock::wait` (std 1.86): waiters of both kinds
/// (green threads and an OS thread) park until another caller completes
/// the `Once` or sets the cell, run nothing themselves, and all see the
/// value; a poisoned `Once` makes `wait` panic, as std's; a `OnceLock`
/// whose initialiser panicked keeps its waiters waiting for the next.
#[test]
fn wait_parks_until_another_caller_initialises() {
    watchdog(|| {
        let rt = runtime(2);
        let once = Arc::new(Once::new());
        let cell = Arc::new(OnceLock::<u64>::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let (once, cell) = (once.clone(), cell.clone());
                rt.spawn(move || {
                    once.wait();
                    *cell.wait()
                })
            })
            .collect();
        let os_waiter = {
            let cell = cell.clone();
            std::thread::spawn(move || *cell.wait())
        };
        wait_blocked(&rt, "Once::call_once", 4);
        assert!(!once.is_completed() && cell.get().is_none());
        once.call_once(|| {});
        // Now the green waiters wait for the cell; an initialiser that
        // panics leaves it empty and them waiting.
        wait_blocked(&rt, "Once::call_once", 4);
        let failed = std::panic::catch_unwind(|| cell.get_or_init(|| panic!("first try fails")));
        assert!(failed.is_err());
        assert_eq!(cell.set(42), Ok(()));
        for w in waiters {
            assert_eq!(w.join().unwrap(), 42);
        }
        assert_eq!(os_waiter.join().unwrap(), 42);

        let poisoned = Once::new();
        let _ = std::panic::catch_unwind(|| poisoned.call_once(|| panic!("poisons")));
        let message = sync_util::expect_panic(|| poisoned.wait());
        assert!(message.contains("poisoned"), "{message}");
    });
}

/// `OnceLock`'s `Clone`, `PartialEq` and `Eq`, as std's.
#[test]
fn once_lock_clones_and_compares_as_std() {
    let empty = OnceLock::<String>::new();
    let set = OnceLock::from("x".to_string());
    assert_eq!(empty.clone().get(), None);
    assert_eq!(set.clone().get().map(String::as_str), Some("x"));
    assert!(empty == OnceLock::new());
    assert!(set == OnceLock::from("x".to_string()));
    assert!(set != empty);
    fn eq<T: Eq>() {}
    eq::<OnceLock<String>>();
}

/// std's `Once::wait_force`: waits through a poisoned `Once` until a
/// `call_once_force` completes it (where `wait` panics).
#[test]
fn wait_force_waits_through_poison() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let once = Arc::new(Once::new());
        let o = once.clone();
        let panicked = rt.block_on(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                o.call_once(|| panic!("first call fails"))
            }))
            .is_err()
        });
        assert!(panicked);
        let o = once.clone();
        assert!(expect_panic(move || o.wait()).contains("poisoned"));
        let o = once.clone();
        let waiter = rt.spawn(move || {
            o.wait_force();
            o.is_completed()
        });
        wait_blocked(&rt, "Once::call_once", 1);
        once.call_once_force(|state| assert!(state.is_poisoned()));
        assert!(waiter.join().unwrap());
        once.wait_force(); // completed: returns at once, on an OS thread too
    });
}

/// std's `LazyLock`: one initialisation however many first users race
/// (they park, green or OS), `Deref`/`DerefMut`, `force`, `Default`, a
/// `static`, std's `Debug`, and poisoning by a panicking initialiser.
#[test]
fn lazy_lock_initialises_once() {
    static TABLE: LazyLock<Vec<u32>> = LazyLock::new(|| (0..10).map(|i| i * i).collect());
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let runs = Arc::new(AtomicUsize::new(0));
        let lazy = {
            let runs = runs.clone();
            Arc::new(LazyLock::new(move || {
                runs.fetch_add(1, Ordering::SeqCst);
                thread::yield_now(); // others arrive meanwhile
                41 + 1
            }))
        };
        assert_eq!(format!("{lazy:?}"), "LazyLock(<uninit>)");
        let start = Arc::new(Barrier::new(CONTENDERS / 10 + 1));
        let green: Vec<_> = (0..CONTENDERS / 10)
            .map(|_| {
                let (lazy, start) = (lazy.clone(), start.clone());
                rt.spawn(move || {
                    start.wait();
                    **lazy
                })
            })
            .collect();
        start.wait();
        assert_eq!(*LazyLock::force(&lazy), 42);
        assert!(green.into_iter().all(|h| h.join().unwrap() == 42));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one initialisation");
        assert_eq!(format!("{lazy:?}"), "LazyLock(42)");
        assert_eq!(rt.block_on(|| TABLE[9]), 81);

        let mut owned: LazyLock<String> = LazyLock::default();
        assert!(LazyLock::get(&owned).is_none() && LazyLock::get_mut(&mut owned).is_none());
        owned.push_str("grown");
        assert_eq!(owned.as_str(), "grown");
        LazyLock::force_mut(&mut owned).push('!');
        assert_eq!(LazyLock::get(&owned).map(String::as_str), Some("grown!"));
        LazyLock::get_mut(&mut owned).unwrap().clear();
        assert_eq!(*owned, "");
        // std's deprecated spelling of `Once::new()`, still accepted.
        #[allow(deprecated)]
        let once: Once = grove::sync::ONCE_INIT;
        once.call_once(|| ());
        assert!(once.is_completed());

        let poisoned: Arc<LazyLock<u8>> = Arc::new(LazyLock::new(|| panic!("init fails")));
        let p = poisoned.clone();
        assert!(expect_panic(move || **p).contains("init fails"));
        let p = poisoned.clone();
        assert!(
            expect_panic(move || **p).contains("poisoned"),
            "and stays failed"
        );
        let mut by_mut: LazyLock<u8> = LazyLock::new(|| panic!("init fails"));
        let by_mut = &mut by_mut;
        assert!(
            expect_panic(AssertUnwindSafe(|| *LazyLock::force_mut(by_mut))).contains("init fails")
        );
        assert_eq!(
            expect_panic(AssertUnwindSafe(|| *LazyLock::force_mut(by_mut))),
            "LazyLock instance has previously been poisoned"
        );
    });
    assert_send_sync::<LazyLock<u32>>();
}
