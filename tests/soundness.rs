//! The soundness rule (a started green thread always resumes on the OS
//! thread it started on, so its thread-locals stay its own) and work
//! stealing (unstarted green threads spread to idle workers).

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId as OsThreadId;
use std::time::{Duration, Instant};

use common::{runtime, sweep_workers, watchdog, watchdog_for};
use grove::thread;

thread_local! {
    /// The OS thread this code runs on, fixed at first access.
    static OS_THREAD: OsThreadId = std::thread::current().id();
}

fn os_thread() -> OsThreadId {
    OS_THREAD.with(|id| *id)
}

/// One blocking call of four kinds, chosen by `i`.
fn blocking_call(i: usize) {
    match i % 4 {
        0 => thread::yield_now(),
        1 => thread::sleep(Duration::ZERO),
        2 => thread::park_timeout(Duration::from_micros(1)),
        _ => {
            let child = thread::spawn(move || black_box(i));
            assert_eq!(child.join().unwrap(), i);
        }
    }
}

#[test]
fn thread_locals_stay_put_across_blocking_calls() {
    const CHECKERS: usize = 8;
    const SPINNERS: usize = 8;
    const CALLS: usize = 10_000;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let stop = Arc::new(AtomicBool::new(false));
            // Keep every worker busy, so that woken green threads compete
            // with runnable ones.
            let spinners: Vec<_> = (0..SPINNERS)
                .map(|_| {
                    let stop = stop.clone();
                    rt.spawn(move || {
                        let mut turns = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            thread::yield_now();
                            turns += 1;
                        }
                        turns
                    })
                })
                .collect();
            let checkers: Vec<_> = (0..CHECKERS)
                .map(|c| {
                    rt.spawn(move || {
                        let home = os_thread();
                        // A value that only this OS thread may touch, held
                        // across every switch.
                        let local = std::rc::Rc::new(std::cell::Cell::new(0usize));
                        for i in 0..CALLS {
                            assert_eq!(os_thread(), home, "checker {c} moved before call {i}");
                            blocking_call(i + c);
                            assert_eq!(os_thread(), home, "checker {c} moved after call {i}");
                            assert_eq!(std::thread::current().id(), home);
                            local.set(local.get() + 1);
                        }
                        local.get()
                    })
                })
                .collect();
            for h in checkers {
                assert_eq!(h.join().unwrap(), CALLS);
            }
            stop.store(true, Ordering::Relaxed);
            for h in spinners {
                h.join().unwrap();
            }
        });
    });
}

#[test]
fn woken_green_threads_resume_on_their_own_worker() {
    const TASKS: usize = 64;
    const ROUNDS: usize = 50;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            // Every round, the OS thread and a green thread of whatever
            // worker unpark the tasks; each checks where it resumed.
            let round = Arc::new(AtomicUsize::new(0));
            let waiting = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    let (round, waiting) = (round.clone(), waiting.clone());
                    rt.spawn(move || {
                        let home = os_thread();
                        for r in 0..ROUNDS {
                            waiting.fetch_add(1, Ordering::AcqRel);
                            while round.load(Ordering::Acquire) <= r {
                                thread::park();
                            }
                            assert_eq!(os_thread(), home, "resumed elsewhere in round {r}");
                        }
                    })
                })
                .collect();
            let threads: Vec<_> = handles.iter().map(|h| h.thread().clone()).collect();
            let threads = Arc::new(threads);
            for r in 0..ROUNDS {
                common::wait_until("every task to wait", || {
                    waiting.load(Ordering::Acquire) == TASKS * (r + 1)
                });
                round.store(r + 1, Ordering::Release);
                if r % 2 == 0 {
                    for t in threads.iter() {
                        t.unpark();
                    }
                } else {
                    let threads = threads.clone();
                    rt.spawn(move || {
                        for t in threads.iter() {
                            t.unpark();
                        }
                    })
                    .join()
                    .unwrap();
                }
            }
            for h in handles {
                h.join().unwrap();
            }
        });
    });
}

/// The bug the ignored tests below show, in one line.
const SEARCHING_BUG: &str = "a worker woken to search that finds a task in its own queues stays \
     counted as searching while it runs it, so new work wakes no parked worker";

/// `n` CPU-bound green threads, spawned by `spawn`, each spin without
/// yielding until all `n` run at once (or `limit` passes). Returns how many
/// saw all of them running: `n` only if they ran on `n` different workers.
fn spinners_meet(
    n: usize,
    limit: Duration,
    spawn: impl Fn(Box<dyn FnOnce() -> bool + Send>) -> thread::JoinHandle<bool>,
) -> usize {
    let running = Arc::new(AtomicUsize::new(0));
    let spinners: Vec<_> = (0..n)
        .map(|_| {
            let running = running.clone();
            spawn(Box::new(move || {
                running.fetch_add(1, Ordering::AcqRel);
                let deadline = Instant::now() + limit;
                while running.load(Ordering::Acquire) < n {
                    if Instant::now() > deadline {
                        return false;
                    }
                    std::hint::spin_loop();
                }
                true
            }))
        })
        .collect();
    spinners
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&met| met)
        .count()
}

#[test]
fn cpu_bound_green_threads_run_in_parallel_on_two_workers() {
    const ROUNDS: usize = 50;
    const LIMIT: Duration = Duration::from_secs(2);
    watchdog_for(Duration::from_secs(100), || {
        let rt = runtime(2);
        for round in 0..ROUNDS {
            let met = spinners_meet(2, LIMIT, |f| rt.spawn(f));
            assert_eq!(
                met, 2,
                "round {round}, spawned from an OS thread: {SEARCHING_BUG}"
            );
            // Spawned from a green thread, whose worker becomes free only
            // once it parks in join: the other worker must steal one.
            let met = rt.block_on(|| spinners_meet(2, LIMIT, |f| thread::spawn(f)));
            assert_eq!(
                met, 2,
                "round {round}, spawned from a green thread: {SEARCHING_BUG}"
            );
        }
        // And n of them on n workers.
        for n in [4, 8] {
            let rt = runtime(n);
            for round in 0..ROUNDS / 5 {
                let met = spinners_meet(n, LIMIT, |f| rt.spawn(f));
                assert_eq!(met, n, "{n} workers, round {round}: {SEARCHING_BUG}");
            }
        }
    });
}

#[test]
fn a_spawn_wakes_a_parked_worker_while_another_runs_a_cpu_bound_task() {
    watchdog_for(Duration::from_secs(30), || {
        for round in 0..10 {
            let rt = runtime(2);
            // Both workers park for lack of work.
            common::wait_until("both workers to park", || rt.stats().parks >= 2);
            let (a_runs, b_runs) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            // A wakes one worker (as a searcher), which runs A; A spins.
            let a = {
                let (a_runs, b_runs) = (a_runs.clone(), b_runs.clone());
                rt.spawn(move || {
                    a_runs.store(true, Ordering::Release);
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while !b_runs.load(Ordering::Acquire) && Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                    b_runs.load(Ordering::Acquire)
                })
            };
            common::wait_until("A to run", || a_runs.load(Ordering::Acquire));
            // B must wake the other, parked worker.
            let b = {
                let b_runs = b_runs.clone();
                rt.spawn(move || b_runs.store(true, Ordering::Release))
            };
            let met = a.join().unwrap();
            b.join().unwrap();
            assert!(
                met,
                "round {round}: B ran only after A finished: {SEARCHING_BUG}"
            );
        }
    });
}

#[test]
fn idle_workers_steal_spawned_work() {
    const TASKS: u64 = 1000;
    // Bounded by time, not by rounds: a round lasts a fraction of a
    // millisecond, and when the other tests of this binary keep both cores
    // busy the kernel may not run the idle worker's OS thread within a
    // hundred of them (seen under load). A steal usually comes in the first
    // round; a broken wake-up protocol never steals at all.
    const LIMIT: Duration = Duration::from_secs(20);
    watchdog_for(LIMIT + Duration::from_secs(30), || {
        let rt = runtime(2);
        let start = Instant::now();
        let mut rounds = 0;
        while rt.stats().steals == 0 {
            rounds += 1;
            assert!(
                start.elapsed() < LIMIT,
                "no steal after {rounds} rounds in {LIMIT:?}: {:?}; {SEARCHING_BUG}",
                rt.stats()
            );
            let sum = rt.block_on(|| {
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| {
                        thread::spawn(move || {
                            // A little work each, so one worker cannot
                            // drain them all before the other looks.
                            (0..200u64).map(black_box).sum::<u64>() + i
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
            assert_eq!(sum, TASKS * (199 * 200 / 2) + TASKS * (TASKS - 1) / 2);
        }
    });
}
