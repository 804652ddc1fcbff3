//! `grove::thread` against its contract: it mirrors `std::thread` (spawn and
//! join, `Builder`, `current`, park tokens, `scope`) and every blocking call
//! parks the green thread, never its worker (`yield_now`, `sleep`).

mod common;

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{runtime, sweep_workers, wait_until, watchdog, watchdog_for, Latch};
use grove::runtime::TaskState;
use grove::thread;
use grove::Runtime;

/// Watchdog of the tests that show a known hang: they fail fast.
const BUG_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn spawn_and_join_return_values() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let sum = rt.block_on(|| {
                let handles: Vec<_> = (0..1000u64).map(|i| thread::spawn(move || i * i)).collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            });
            assert_eq!(sum, (0..1000u64).map(|i| i * i).sum::<u64>());

            let handles: Vec<_> = (0..100)
                .map(|i| rt.spawn(move || format!("task {i}")))
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), format!("task {i}"));
            }
        });
    });
}

/// A spawn tree: every node spawns its children and sums their results, so
/// green threads spawn and join from inside green threads at every depth.
fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let a = thread::spawn(move || fib(n - 1));
    let b = thread::spawn(move || fib(n - 2));
    a.join().unwrap() + b.join().unwrap()
}

#[test]
fn nested_spawn_tree_sums_correctly() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            // fib(15) spawns 1972 green threads.
            assert_eq!(rt.block_on(|| fib(15)), 610);
        });
    });
}

#[test]
fn run_and_go_use_the_global_runtime() {
    watchdog(|| {
        let total = grove::run(|| {
            let handles: Vec<_> = (1..=100u64).map(|i| grove::go(move || i)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(total, 5050);
        assert_eq!(grove::go(|| 6 * 7).join().unwrap(), 42);
        assert_eq!(
            thread::spawn(|| "from an OS thread").join().unwrap(),
            "from an OS thread"
        );
    });
}

#[test]
fn spawning_inside_a_green_thread_uses_its_runtime() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = Runtime::builder()
                .workers(n)
                .thread_name("tapi-own-rt")
                .build()
                .unwrap();
            let names = rt.block_on(|| {
                let worker_name = || std::thread::current().name().map(str::to_string);
                let by_go = grove::go(worker_name).join().unwrap();
                let by_spawn = thread::spawn(worker_name).join().unwrap();
                let by_builder = thread::Builder::new().spawn(worker_name).unwrap();
                [by_go, by_spawn, by_builder.join().unwrap()]
            });
            for name in names {
                let name = name.expect("worker threads are named");
                assert!(name.starts_with("tapi-own-rt-"), "ran on {name}");
            }
        });
    });
}

#[test]
fn is_finished_turns_true_without_join() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let release = Arc::new(AtomicBool::new(false));
            let h = {
                let release = release.clone();
                rt.spawn(move || {
                    while !release.load(Ordering::Acquire) {
                        thread::park();
                    }
                    7
                })
            };
            assert!(!h.is_finished(), "finished before it was released");
            release.store(true, Ordering::Release);
            h.thread().unpark();
            wait_until("is_finished", || h.is_finished());
            assert!(h.is_finished(), "is_finished went back to false");
            assert_eq!(h.join().unwrap(), 7);
        });
    });
}

#[test]
fn ids_and_names_match_inside_and_out() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let named = thread::Builder::new()
                .name("worker-7".to_string())
                .spawn_on(&rt, || {
                    let me = thread::current();
                    (me.id(), me.name().map(str::to_string))
                })
                .unwrap();
            assert_eq!(named.thread().name(), Some("worker-7"));
            let outer_id = named.thread().id();
            let (id, name) = named.join().unwrap();
            assert_eq!(id, outer_id);
            assert_eq!(name.as_deref(), Some("worker-7"));

            let unnamed = rt.spawn(|| thread::current().name().map(str::to_string));
            assert_eq!(unnamed.thread().name(), None);
            assert_eq!(unnamed.join().unwrap(), None);

            // The id is stable across blocking calls.
            let stable = rt.spawn(|| {
                let before = thread::current().id();
                thread::yield_now();
                thread::sleep(Duration::from_millis(1));
                thread::park_timeout(Duration::from_micros(10));
                before == thread::current().id()
            });
            assert!(stable.join().unwrap());
        });
    });
}

#[test]
fn ids_are_unique_across_green_and_os_threads() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let handles: Vec<_> = (0..2000)
                .map(|_| rt.spawn(|| thread::current().id()))
                .collect();
            let mut ids = HashSet::new();
            for h in handles {
                let outer = h.thread().id();
                let inner = h.join().unwrap();
                assert_eq!(outer, inner);
                assert!(ids.insert(inner), "id {inner:?} given twice");
            }
            let os = thread::current();
            assert_eq!(os.id(), thread::current().id(), "an OS thread keeps its id");
            assert!(
                !ids.contains(&os.id()),
                "an OS thread got a green thread's id"
            );
            assert_eq!(os.name(), std::thread::current().name());
        });
    });
}

#[test]
fn unpark_before_park_makes_park_return() {
    watchdog(|| {
        // An OS thread, through grove's park.
        thread::current().unpark();
        thread::park();

        sweep_workers(|n| {
            let rt = runtime(n);
            // A green thread unparking itself.
            rt.block_on(|| {
                thread::current().unpark();
                thread::park();
            });
            // A running green thread unparked by an OS thread: the token
            // waits for its park. It spins (holding its worker) until the
            // unpark is done, so the park comes strictly after it.
            let started = Arc::new(AtomicBool::new(false));
            let unparked = Arc::new(AtomicBool::new(false));
            let h = {
                let (started, unparked) = (started.clone(), unparked.clone());
                rt.spawn(move || {
                    started.store(true, Ordering::Release);
                    while !unparked.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    thread::park();
                })
            };
            wait_until("the green thread to start", || {
                started.load(Ordering::Acquire)
            });
            h.thread().unpark();
            unparked.store(true, Ordering::Release);
            h.join().unwrap();
        });
    });
}

#[test]
fn unpark_before_the_green_thread_starts_is_kept() {
    watchdog_for(BUG_LIMIT, || {
        sweep_workers(|n| {
            let rt = runtime(n);
            // On one worker the child cannot start before the parent parks
            // in join, so the unpark lands while it is still queued. std
            // keeps that token: the child's park returns at once.
            rt.block_on(|| {
                let child = thread::spawn(thread::park);
                child.thread().unpark();
                child.join().unwrap();
            });
        });
    });
}

#[test]
fn unpark_while_the_target_yields_is_kept() {
    watchdog_for(BUG_LIMIT, || {
        sweep_workers(|n| {
            let rt = runtime(n);
            rt.block_on(|| {
                let yielding = Arc::new(AtomicBool::new(false));
                let child = {
                    let yielding = yielding.clone();
                    thread::spawn(move || {
                        yielding.store(true, Ordering::Release);
                        thread::yield_now();
                        thread::park();
                    })
                };
                while !yielding.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                // On one worker the child now sits in the yield queue.
                child.thread().unpark();
                child.join().unwrap();
            });
        });
    });
}

#[test]
fn park_unpark_ping_pong_loses_no_wakeup() {
    const ROUNDS: usize = 2000;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            rt.block_on(|| {
                // `turn` counts moves; the pinger moves on even, the ponger
                // on odd values.
                let turn = Arc::new(AtomicUsize::new(0));
                let main = thread::current();
                let ponger = {
                    let turn = turn.clone();
                    thread::spawn(move || {
                        for round in 0..ROUNDS {
                            while turn.load(Ordering::Acquire) != 2 * round + 1 {
                                thread::park();
                            }
                            turn.store(2 * round + 2, Ordering::Release);
                            main.unpark();
                        }
                    })
                };
                let pong = ponger.thread().clone();
                for round in 0..ROUNDS {
                    turn.store(2 * round + 1, Ordering::Release);
                    pong.unpark();
                    while turn.load(Ordering::Acquire) != 2 * round + 2 {
                        thread::park();
                    }
                }
                ponger.join().unwrap();
                assert_eq!(turn.load(Ordering::Acquire), 2 * ROUNDS);
            });
        });
    });
}

#[test]
fn park_timeout_returns_after_the_timeout() {
    watchdog(|| {
        let d = Duration::from_millis(30);
        let start = Instant::now();
        thread::park_timeout(d);
        assert!(
            start.elapsed() >= d,
            "OS thread woke after {:?}",
            start.elapsed()
        );

        sweep_workers(|n| {
            let rt = runtime(n);
            let elapsed = rt.block_on(move || {
                let start = Instant::now();
                thread::park_timeout(d);
                start.elapsed()
            });
            assert!(elapsed >= d, "green thread woke after {elapsed:?}");
        });
    });
}

/// An `unpark` of a running thread, then a `park` that takes its token at
/// once: the next `park_timeout` waits its time, as std's does. Before, the
/// unpark's wake-up stayed pending and that park returned at once, every
/// time, on a green thread and on an OS thread.
#[test]
fn a_park_timeout_after_a_consumed_unpark_waits_its_time() {
    fn check() {
        let d = Duration::from_millis(20);
        thread::current().unpark();
        thread::park();
        let start = Instant::now();
        thread::park_timeout(d);
        let elapsed = start.elapsed();
        assert!(elapsed >= d, "woke after {elapsed:?}");
    }
    watchdog(|| {
        check();
        sweep_workers(|n| {
            runtime(n).block_on(check);
        });
    });
}

#[test]
fn park_timeout_is_ended_by_unpark() {
    // Far longer than the watchdog allows: only the unpark can end it.
    const LONG: Duration = Duration::from_secs(3600);
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let go = Arc::new(AtomicBool::new(false));
            let h = {
                let go = go.clone();
                rt.spawn(move || {
                    while !go.load(Ordering::Acquire) {
                        thread::park_timeout(LONG);
                    }
                })
            };
            go.store(true, Ordering::Release);
            h.thread().unpark();
            h.join().unwrap();
        });
    });
}

#[test]
fn scope_borrows_locals_and_joins_everything() {
    watchdog(|| {
        // From an OS thread (scoped green threads on the global runtime).
        let mut values = vec![0usize; 64];
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for (i, v) in values.iter_mut().enumerate() {
                let total = &total;
                s.spawn(move || {
                    thread::yield_now();
                    *v = i * 3;
                    total.fetch_add(i, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(values, (0..64).map(|i| i * 3).collect::<Vec<_>>());
        assert_eq!(total.load(Ordering::Relaxed), (0..64).sum::<usize>());

        // From inside a green thread.
        sweep_workers(|n| {
            let rt = runtime(n);
            let values = rt.block_on(|| {
                let mut values = vec![0u64; 100];
                let label = String::from("scoped");
                let sum = thread::scope(|s| {
                    let handles: Vec<_> = values
                        .chunks_mut(10)
                        .enumerate()
                        .map(|(c, chunk)| {
                            let label = &label;
                            s.spawn(move || {
                                for (i, v) in chunk.iter_mut().enumerate() {
                                    *v = (c * 10 + i) as u64;
                                    thread::yield_now();
                                }
                                assert_eq!(label, "scoped");
                                chunk.iter().sum::<u64>()
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                });
                assert_eq!(sum, (0..100).sum::<u64>());
                values
            });
            assert_eq!(values, (0..100).collect::<Vec<u64>>());
        });
    });
}

#[test]
fn scoped_builder_names_and_values() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            rt.block_on(|| {
                let mut hits = 0;
                let name = thread::scope(|s| {
                    let h = thread::Builder::new()
                        .name("scoped-7".to_string())
                        .spawn_scoped(s, || {
                            hits += 1;
                            thread::current().name().map(str::to_string)
                        })
                        .unwrap();
                    assert_eq!(h.thread().name(), Some("scoped-7"));
                    h.join().unwrap()
                });
                assert_eq!(name.as_deref(), Some("scoped-7"));
                assert_eq!(hits, 1);
            });
        });
    });
}

#[test]
fn scope_panics_if_an_unjoined_scoped_thread_panicked() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            rt.block_on(|| {
                let finished = AtomicUsize::new(0);
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                    thread::scope(|s| {
                        s.spawn(|| panic!("scoped boom"));
                        for _ in 0..10 {
                            s.spawn(|| {
                                thread::yield_now();
                                finished.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                    })
                }));
                assert!(outcome.is_err(), "scope returned normally");
                // Every other scoped thread was still joined first.
                assert_eq!(finished.load(Ordering::Relaxed), 10);

                // A panic that was joined is the joiner's business.
                let value = thread::scope(|s| {
                    let bad = s.spawn(|| panic!("joined boom"));
                    assert!(bad.join().is_err());
                    5
                });
                assert_eq!(value, 5);
            });
        });
    });
}

/// Counts its drops into a borrowed counter: a scoped output with a
/// destructor that reaches into the scope's environment.
struct DropsInto<'a>(&'a AtomicUsize);

impl Drop for DropsInto<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn scope_waits_for_every_kind_of_scoped_thread_many_times() {
    // Many short scopes mixing outputs without a destructor (kept in the
    // task) and with one (dropped before the scope ends), joined and not,
    // with nested spawns: each scope returns only when every write is done
    // and every unjoined output is dropped.
    const ROUNDS: u64 = 300;
    const PER: u64 = 24;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            rt.block_on(|| {
                for round in 0..ROUNDS {
                    let mut slots = vec![0u64; PER as usize];
                    let drops = AtomicUsize::new(0);
                    let nested = AtomicUsize::new(0);
                    let joined: u64 = thread::scope(|s| {
                        let mut joined = 0;
                        let mut kept = Vec::new();
                        for (i, slot) in slots.iter_mut().enumerate() {
                            let i = i as u64;
                            let (drops, nested) = (&drops, &nested);
                            match i % 4 {
                                // No destructor, handle dropped at once.
                                0 => {
                                    s.spawn(move || *slot = round + i);
                                }
                                // No destructor, joined.
                                1 => {
                                    *slot = s.spawn(move || round + i).join().unwrap();
                                }
                                // A destructor, handle dropped: dropped by
                                // the scope's end.
                                2 => {
                                    s.spawn(move || {
                                        *slot = round + i;
                                        DropsInto(drops)
                                    });
                                }
                                // Nested: a scoped thread spawns another
                                // and leaves it running.
                                _ => {
                                    kept.push(s.spawn(move || {
                                        s.spawn(move || {
                                            thread::yield_now();
                                            nested.fetch_add(1, Ordering::Relaxed);
                                        });
                                        *slot = round + i;
                                        i
                                    }));
                                }
                            }
                        }
                        for h in kept {
                            joined += h.join().unwrap();
                        }
                        joined
                    });
                    let want: Vec<u64> = (0..PER).map(|i| round + i).collect();
                    assert_eq!(slots, want, "round {round}");
                    assert_eq!(drops.load(Ordering::Relaxed), (PER / 4) as usize);
                    assert_eq!(nested.load(Ordering::Relaxed), (PER / 4) as usize);
                    assert_eq!(joined, (0..PER).filter(|i| i % 4 == 3).sum::<u64>());
                }
            });
        });
    });
}

#[test]
fn scoped_panics_are_counted_once_whoever_joins() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            rt.block_on(|| {
                for round in 0..50 {
                    // Joined by another scoped thread: handed over, no panic.
                    let got = thread::scope(|s| {
                        let bad = s.spawn(|| -> u32 { panic!("inner boom") });
                        s.spawn(move || bad.join().is_err()).join().unwrap()
                    });
                    assert!(got, "round {round}");
                    // One of two unjoined panics, with and without a
                    // destructor in the output: the scope panics.
                    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                        thread::scope(|s| {
                            s.spawn(|| -> String { panic!("boom a") });
                            let ok = s.spawn(|| 7u8);
                            s.spawn(|| -> u64 { panic!("boom b") });
                            assert_eq!(ok.join().unwrap(), 7);
                        })
                    }));
                    assert!(outcome.is_err(), "round {round}: scope returned normally");
                }
            });
        });
    });
}

#[test]
fn yield_now_lets_every_green_thread_progress() {
    const N: usize = 50;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let arrived = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let arrived = arrived.clone();
                    rt.spawn(move || {
                        arrived.fetch_add(1, Ordering::AcqRel);
                        let mut spins = 0u64;
                        while arrived.load(Ordering::Acquire) < N {
                            thread::yield_now();
                            spins += 1;
                        }
                        (i, spins)
                    })
                })
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.join().unwrap().0, i);
            }
            assert_eq!(arrived.load(Ordering::Relaxed), N);
        });
    });
}

/// Round trips of the hand-off pair in the fairness tests: far more picks
/// than any fairness interval, so a starved green thread shows as one that
/// ran only once the pair was done.
const PAIR_ROUNDS: u64 = 10_000;

/// Starts two green threads that hand a value back and forth
/// [`PAIR_ROUNDS`] times over unbuffered channels: each wakes the other into
/// its worker's run-next slot, so that worker always has one of them ready.
/// After 10 rounds the first one spawns `late` (on its own worker) and, at
/// the end, returns what `late` returned. `rounds` counts round trips.
fn hand_off_pair<T, F>(rounds: Arc<AtomicU64>, late: F) -> thread::JoinHandle<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let echo = Echo::start();
    thread::spawn(move || {
        let mut late = Some(late);
        let mut handle = None;
        for i in 0..PAIR_ROUNDS {
            echo.round_trip(i);
            rounds.fetch_add(1, Ordering::Relaxed);
            if i == 10 {
                handle = late.take().map(thread::spawn);
            }
        }
        echo.stop();
        handle.expect("spawned at round 10").join().unwrap()
    })
}

/// The second half of a hand-off pair: a green thread that sends back
/// every value it is sent, over unbuffered channels.
struct Echo {
    ping: grove::chan::Sender<u64>,
    pong: grove::chan::Receiver<u64>,
    echo: thread::JoinHandle<()>,
}

impl Echo {
    fn start() -> Echo {
        let (ping, ping_rx) = grove::chan::bounded::<u64>(0);
        let (pong_tx, pong) = grove::chan::bounded::<u64>(0);
        let echo = thread::spawn(move || {
            for v in &ping_rx {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        Echo { ping, pong, echo }
    }

    /// Sends `i` and checks that it comes back.
    fn round_trip(&self, i: u64) {
        self.ping.send(i).unwrap();
        assert_eq!(self.pong.recv().unwrap(), i);
    }

    fn stop(self) {
        drop(self.ping);
        self.echo.join().unwrap();
    }
}

/// Runs a [`hand_off_pair`] as the main green thread of a fresh runtime of
/// `workers` workers, its late green thread doing `work` and then reading
/// the pair's round count; returns that count, once the pair is done.
fn pair_rounds_after<W>(workers: usize, work: W) -> u64
where
    W: FnOnce() + Send + 'static,
{
    let rounds = Arc::new(AtomicU64::new(0));
    let seen = {
        let rounds = rounds.clone();
        runtime(workers).block_on(move || {
            let at_end = rounds.clone();
            let late = move || {
                work();
                at_end.load(Ordering::Relaxed)
            };
            hand_off_pair(rounds, late).join().unwrap()
        })
    };
    assert_eq!(rounds.load(Ordering::Relaxed), PAIR_ROUNDS);
    seen
}

#[test]
fn a_new_green_thread_starts_while_a_hand_off_pair_keeps_its_worker_busy() {
    // The pair never leaves its worker idle; the new green thread waits in
    // that worker's queue of unstarted tasks, which the fairness tick must
    // reach (on one worker nothing else would run it before the pair ends).
    sweep_workers(|n| {
        let seen = pair_rounds_after(n, || {});
        // Spawned at round 10; a pick every half round trip, and the
        // scheduler's fairness bounds are tens of picks.
        assert!(
            seen < 1_000,
            "the new green thread started only after {seen} of the pair's {PAIR_ROUNDS} rounds"
        );
    });
}

#[test]
fn a_yielding_green_thread_progresses_while_a_hand_off_pair_keeps_its_worker_busy() {
    // yield_now sends a green thread to the back of its worker's queues,
    // behind the pair's run-next hand-offs: the fairness tick must come
    // back to it.
    const YIELDS: usize = 20;
    sweep_workers(|n| {
        let seen = pair_rounds_after(n, || {
            for _ in 0..YIELDS {
                thread::yield_now();
            }
        });
        assert!(
            seen < PAIR_ROUNDS / 2,
            "{YIELDS} yields took until round {seen} of the pair's {PAIR_ROUNDS}"
        );
    });
}

/// Round trips after which a [`hand_off_pair_until`] gives up waiting to be
/// stopped: hundreds of milliseconds of hand-offs, far longer than an OS
/// thread waits for a turn on a busy machine.
const PAIR_GIVE_UP: u64 = 2_000_000;

/// A hand-off pair like [`hand_off_pair`] that goes on until `stop` is set
/// (true) or [`PAIR_GIVE_UP`] round trips have passed (false).
fn hand_off_pair_until(rounds: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> thread::JoinHandle<bool> {
    let echo = Echo::start();
    thread::spawn(move || {
        let mut stopped = false;
        for i in 0..PAIR_GIVE_UP {
            echo.round_trip(i);
            rounds.fetch_add(1, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
        }
        echo.stop();
        stopped
    })
}

#[test]
fn work_from_os_threads_runs_while_every_worker_runs_a_hand_off_pair() {
    // A spawn from outside goes through the global injector, and a value
    // sent from an OS thread wakes its receiver through the receiver's
    // worker's inbox: both must get a turn while hand-off pairs keep every
    // worker busy. The pairs go on until both are done (however long the
    // OS thread waits for a CPU), or give up: a starved spawn or wake-up
    // would run only after that.
    sweep_workers(|n| {
        let rt = runtime(n);
        let rounds = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let pairs: Vec<_> = (0..n)
            .map(|_| {
                let (rounds, stop) = (rounds.clone(), stop.clone());
                rt.spawn(move || hand_off_pair_until(rounds, stop).join().unwrap())
            })
            .collect();
        wait_until("the pairs to start", || {
            rounds.load(Ordering::Relaxed) >= 100
        });
        let spawned_ran = rt.spawn(|| true).join().unwrap();
        let (tx, rx) = grove::chan::bounded::<u64>(0);
        let receiver = rt.spawn(move || rx.recv().unwrap());
        tx.send(7).unwrap();
        assert_eq!(receiver.join().unwrap(), 7);
        assert!(spawned_ran);
        stop.store(true, Ordering::Relaxed);
        let stopped = pairs.into_iter().map(|p| p.join().unwrap());
        let given_up = stopped.filter(|&s| !s).count();
        assert_eq!(
            given_up, 0,
            "work from outside ran only after {given_up} of {n} pairs gave up ({PAIR_GIVE_UP} rounds each)"
        );
    });
}

/// A link of a spawn chain: each green thread spawns its successor and
/// exits, until `stop`; `links` counts them.
fn chain_link(stop: Arc<AtomicBool>, links: Arc<AtomicU64>) {
    if stop.load(Ordering::Relaxed) {
        return;
    }
    links.fetch_add(1, Ordering::Relaxed);
    thread::spawn(move || chain_link(stop, links));
}

#[test]
fn a_spawn_chain_does_not_bury_the_green_threads_queued_before_it() {
    // Every link goes on top of its worker's deque of unstarted tasks,
    // which is taken newest first: green threads queued before the chain
    // (from inside and from outside the runtime) must still start while it
    // goes on, on every worker count (with one worker nobody steals them).
    // Found with tokio's spawn_many_remote_busy2 program, which hung.
    watchdog(|| {
        for n in [1, 2] {
            let rt = runtime(n);
            let stop = Arc::new(AtomicBool::new(false));
            let links = Arc::new(AtomicU64::new(0));
            let (tx, rx) = grove::chan::bounded::<&str>(2);
            let (inside, outside) = (tx.clone(), tx);
            let (s, l) = (stop.clone(), links.clone());
            rt.spawn(move || {
                thread::spawn(move || inside.send("inside").unwrap());
                for _ in 0..n {
                    chain_link(s.clone(), l.clone());
                }
            })
            .join()
            .unwrap();
            rt.spawn(move || outside.send("outside").unwrap());
            let mut got: Vec<&str> = (0..2)
                .map(|_| {
                    rx.recv_timeout(Duration::from_secs(10))
                        .expect("a green thread queued before a spawn chain never started")
                })
                .collect();
            got.sort_unstable();
            assert_eq!(got, ["inside", "outside"], "{n} workers");
            stop.store(true, Ordering::Relaxed);
            drop(rt);
            assert!(links.load(Ordering::Relaxed) > 0);
        }
    });
}

#[test]
fn a_yield_loop_still_lets_timers_and_other_threads_wake_green_threads() {
    // One worker whose main green thread spins on yield_now: a yield with
    // nothing else queued comes straight back, but a sleeper's timer and a
    // value sent from an OS thread must still wake the green threads that
    // wait for them.
    watchdog(|| {
        runtime(1).block_on(|| {
            let done = Arc::new(AtomicUsize::new(0));
            let sleeper = {
                let done = done.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(5));
                    done.fetch_add(1, Ordering::SeqCst);
                })
            };
            let (tx, rx) = grove::chan::bounded::<u32>(0);
            let receiver = {
                let done = done.clone();
                thread::spawn(move || {
                    assert_eq!(rx.recv().unwrap(), 9);
                    done.fetch_add(1, Ordering::SeqCst);
                })
            };
            let os = std::thread::spawn(move || tx.send(9).unwrap());
            while done.load(Ordering::SeqCst) < 2 {
                thread::yield_now();
            }
            sleeper.join().unwrap();
            receiver.join().unwrap();
            os.join().unwrap();
        });
    });
}

#[test]
fn sleep_parks_only_the_green_thread() {
    const SLEEP: Duration = Duration::from_millis(200);
    const OTHERS: usize = 4;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let (sleeper_order, slept, others_order) = rt.block_on(|| {
                let order = Arc::new(AtomicUsize::new(0));
                let sleeping = Arc::new(AtomicBool::new(false));
                let others: Vec<_> = (0..OTHERS)
                    .map(|_| {
                        let (order, sleeping) = (order.clone(), sleeping.clone());
                        thread::spawn(move || {
                            // Start counting only once the sleeper is asleep (or
                            // about to be: it set the flag right before sleep).
                            while !sleeping.load(Ordering::Acquire) {
                                thread::yield_now();
                            }
                            for _ in 0..1000 {
                                thread::yield_now();
                            }
                            order.fetch_add(1, Ordering::AcqRel)
                        })
                    })
                    .collect();
                let sleeper = {
                    let (order, sleeping) = (order.clone(), sleeping.clone());
                    thread::spawn(move || {
                        let start = Instant::now();
                        sleeping.store(true, Ordering::Release);
                        thread::sleep(SLEEP);
                        let slept = start.elapsed();
                        (order.fetch_add(1, Ordering::AcqRel), slept)
                    })
                };
                let (sleeper_order, slept) = sleeper.join().unwrap();
                let others_order: Vec<usize> =
                    others.into_iter().map(|h| h.join().unwrap()).collect();
                (sleeper_order, slept, others_order)
            });
            assert!(slept >= SLEEP, "slept only {slept:?}");
            assert_eq!(
                sleeper_order, OTHERS,
                "the sleeper finished before the others: sleep blocked the worker"
            );
            let mut others_order = others_order;
            others_order.sort_unstable();
            assert_eq!(others_order, (0..OTHERS).collect::<Vec<_>>());
        });
    });
}

#[test]
fn sleep_on_an_os_thread_sleeps() {
    let d = Duration::from_millis(20);
    let start = Instant::now();
    thread::sleep(d);
    assert!(start.elapsed() >= d);
}

#[test]
fn tasks_reports_parked_green_threads() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let parked = Latch::new(3);
            let release = Arc::new(AtomicBool::new(false));
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let (parked, release) = (parked.clone(), release.clone());
                    thread::Builder::new()
                        .name(format!("parker-{i}"))
                        .spawn_on(&rt, move || {
                            parked.count_down();
                            while !release.load(Ordering::Acquire) {
                                thread::park();
                            }
                        })
                        .unwrap()
                })
                .collect();
            parked.wait();
            wait_until("three parked green threads", || {
                rt.tasks()
                    .iter()
                    .filter(|t| t.state == TaskState::Parked)
                    .count()
                    == 3
            });
            let tasks = rt.tasks();
            assert_eq!(tasks.len(), 3, "{tasks:?}");
            for (i, (t, h)) in tasks.iter().zip(&handles).enumerate() {
                assert_eq!(t.id, h.thread().id());
                assert_eq!(t.name.as_deref(), Some(format!("parker-{i}").as_str()));
                assert_eq!(t.blocked_on, Some("park"));
                assert!(t.spawned_at.file().ends_with("thread_api.rs"), "{t:?}");
                assert!(t.worker.is_some_and(|w| w < n), "{t:?}");
            }
            release.store(true, Ordering::Release);
            for h in handles {
                h.thread().unpark();
                h.join().unwrap();
            }
            assert!(rt.tasks().is_empty(), "{:?}", rt.tasks());
        });
    });
}

/// std's park token is not the runtime's wake-up: an unpark that comes
/// while a green thread waits on a lock, a channel, a join or a sleep is
/// still there for its next `park`, which returns at once (in std, only
/// `park` takes the token). Each green thread unparks nobody but is
/// unparked once, during its wait; a lost token parks it for ever (the
/// watchdog's failure).
#[test]
fn an_unpark_during_another_wait_is_kept_for_park() {
    watchdog(|| {
        let rt = runtime(2);
        let lock = Arc::new(grove::sync::Mutex::new(()));
        let guard = lock.lock().unwrap();
        let (tx, rx) = grove::chan::bounded::<()>(0);
        let (joined_tx, joined_rx) = grove::chan::bounded::<()>(0);
        let waiters = vec![
            {
                let lock = lock.clone();
                rt.spawn(move || {
                    drop(lock.lock().unwrap());
                    thread::park();
                })
            },
            rt.spawn(move || {
                rx.recv().unwrap();
                thread::park();
            }),
            rt.spawn(move || {
                grove::go(move || joined_rx.recv().unwrap()).join().unwrap();
                thread::park();
            }),
            rt.spawn(|| {
                thread::sleep(Duration::from_millis(20));
                thread::park();
            }),
        ];
        common::wait_blocked(&rt, "Mutex::lock", 1);
        common::wait_blocked(&rt, "chan recv", 2); // the receiver and the joined
        common::wait_blocked(&rt, "JoinHandle::join", 1);
        for w in &waiters {
            w.thread().unpark();
        }
        drop(guard);
        tx.send(()).unwrap();
        joined_tx.send(()).unwrap();
        for w in waiters {
            w.join().unwrap();
        }
    });
}

/// The same on a plain OS thread, through grove's park: an unpark before
/// a wait on grove's `Mutex` (which may park the OS thread, taking its
/// parker's own token) is still there for `park`.
#[test]
fn an_os_thread_keeps_its_park_token_across_a_lock() {
    watchdog(|| {
        for _ in 0..50 {
            let lock = Arc::new(grove::sync::Mutex::new(()));
            let guard = lock.lock().unwrap();
            let (me_tx, me_rx) = std::sync::mpsc::channel();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let waiter = {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    me_tx.send(thread::current()).unwrap();
                    go_rx.recv().unwrap();
                    drop(lock.lock().unwrap());
                    thread::park();
                })
            };
            me_rx.recv().unwrap().unpark();
            go_tx.send(()).unwrap();
            drop(guard);
            waiter.join().unwrap();
        }
    });
}

/// std's `Builder::spawn_unchecked` (1.82): a closure that borrows from
/// the caller's stack, joined while the data lives; its output may borrow
/// too. From a green thread and from an OS thread.
#[test]
fn spawn_unchecked_borrows_and_is_joined() {
    fn body() {
        let data = [1u64, 2, 3];
        let word = String::from("borrowed");
        // SAFETY: joined below, while `data` and `word` are alive.
        let handle = unsafe {
            thread::Builder::new()
                .name("unchecked".to_string())
                .spawn_unchecked(|| (data.iter().sum::<u64>(), word.as_str()))
                .unwrap()
        };
        let (sum, borrowed) = handle.join().unwrap();
        assert_eq!((sum, borrowed), (6, "borrowed"));
    }
    watchdog(|| {
        body();
        runtime(2).block_on(body);
    });
}

/// std's `test_invalid_named_thread`: a name with a NUL byte panics at
/// spawn, with std's message. The scope's panic for an unjoined panicking
/// thread says what std's says.
#[test]
fn std_panics_and_messages() {
    watchdog(|| {
        let message = common::expect_panic(|| {
            thread::Builder::new()
                .name("ada l\0velace".to_string())
                .spawn(|| {})
        });
        assert_eq!(message, "thread name may not contain interior null bytes");
        let message = common::expect_panic(|| {
            runtime(1).block_on(|| {
                thread::scope(|s| {
                    s.spawn(|| panic!("boom"));
                })
            })
        });
        assert_eq!(message, "a scoped thread panicked");
    });
}

/// std's deprecated `sleep_ms` and `park_timeout_ms` are there for a
/// program swapped from std; std's `Debug` for `Thread` and `JoinHandle`.
#[test]
#[allow(deprecated)]
fn deprecated_std_twins_and_debug() {
    watchdog(|| {
        runtime(1).block_on(|| {
            let t0 = Instant::now();
            thread::sleep_ms(2);
            thread::park_timeout_ms(1);
            assert!(t0.elapsed() >= Duration::from_millis(2));
            let handle = thread::Builder::new()
                .name("dbg".to_string())
                .spawn(|| ())
                .unwrap();
            let shown = format!("{:?}", handle.thread());
            assert!(
                shown.starts_with("Thread { id: ThreadId(")
                    && shown.ends_with("name: Some(\"dbg\"), .. }"),
                "{shown}"
            );
            assert_eq!(format!("{handle:?}"), "JoinHandle { .. }");
            handle.join().unwrap();
        });
    });
}

/// A sleep of more than nothing is a yield point, as Go's `Sleep` always
/// parks: a green thread looping on `sleep(1ns)` (over before it could
/// park) lets the green threads of its worker run, here the one that ends
/// the loop (Go's `TestTickerConcurrentStress` shape). On one worker it
/// used to hold the worker for good. A loop of `sleep(0)` lets them run
/// too, within its budget of operations.
#[test]
fn a_loop_of_tiny_sleeps_lets_its_worker_run_others() {
    watchdog(|| {
        for nanos in [1, 0] {
            tiny_sleeps_let_others_run(Duration::from_nanos(nanos));
        }
    });
}

fn tiny_sleeps_let_others_run(d: Duration) {
    runtime(1).block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let (started_tx, started_rx) = grove::chan::bounded(0);
        let looper = {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            grove::go(move || {
                started_tx.send(()).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(d);
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // Runs again only if the looper lets the worker go.
        started_rx.recv().unwrap();
        stop.store(true, Ordering::SeqCst);
        looper.join().unwrap();
        assert!(rounds.load(Ordering::SeqCst) >= 1);
    });
}
