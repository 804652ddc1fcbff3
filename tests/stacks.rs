//! Green-thread stacks: running out of them is an error that names
//! `vm.max_map_count` (and a panic for the spawn functions that cannot
//! return one), spawning works again once stacks come back, small stacks
//! hold real work, and finished green threads' stacks are reused.

mod common;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{for_each_workers, wait_until, watchdog, Latch};
use grove::runtime;
use grove::thread::{self, JoinHandle};
use grove::Runtime;

const CAP: usize = 8;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<not a string>".to_string())
}

#[track_caller]
fn assert_out_of_stacks<T>(result: io::Result<T>) {
    let Err(err) = result else {
        panic!("a spawn beyond the stack cap succeeded");
    };
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
    assert!(err.to_string().contains("vm.max_map_count"), "{err}");
}

/// What the prober green thread saw when it tried to spawn with every
/// stack in use.
struct Probe {
    go_panic: Option<String>,
    builder: io::Result<()>,
}

#[test]
fn running_out_of_stacks_is_an_error_naming_vm_max_map_count() {
    watchdog(|| {
        for_each_workers(|n| {
            let rt = Runtime::builder()
                .workers(n)
                .max_stacks(CAP)
                .build()
                .unwrap();
            let started = Latch::new(CAP);
            let release = Arc::new(AtomicBool::new(false));
            let probe_now = Arc::new(AtomicBool::new(false));
            let probed = Latch::new(1);

            // Green thread 0 is the prober: with all CAP stacks in use it
            // tries `grove::go` and `Builder::spawn` from inside.
            let prober: JoinHandle<Probe> = {
                let (started, release) = (started.clone(), release.clone());
                let (probe_now, probed) = (probe_now.clone(), probed.clone());
                rt.spawn(move || {
                    started.count_down();
                    while !probe_now.load(Ordering::Acquire) {
                        thread::park();
                    }
                    let go_panic = panic::catch_unwind(|| grove::go(|| ()))
                        .err()
                        .map(|p| panic_message(&*p));
                    let builder = thread::Builder::new().spawn(|| ()).map(|_| ());
                    probed.count_down();
                    while !release.load(Ordering::Acquire) {
                        thread::park();
                    }
                    Probe { go_panic, builder }
                })
            };
            let parked: Vec<JoinHandle<usize>> = (1..CAP)
                .map(|i| {
                    let (started, release) = (started.clone(), release.clone());
                    rt.spawn(move || {
                        started.count_down();
                        while !release.load(Ordering::Acquire) {
                            thread::park();
                        }
                        i
                    })
                })
                .collect();
            started.wait();
            assert_eq!(rt.stats().live_stacks, CAP);

            // From the OS thread.
            assert_out_of_stacks(thread::Builder::new().spawn_on(&rt, || ()));
            let spawn_panic = panic::catch_unwind(AssertUnwindSafe(|| rt.spawn(|| ())))
                .err()
                .map(|p| panic_message(&*p))
                .expect("Runtime::spawn beyond the stack cap did not panic");
            assert!(spawn_panic.contains("vm.max_map_count"), "{spawn_panic}");

            // From inside, through the prober.
            probe_now.store(true, Ordering::Release);
            prober.thread().unpark();
            probed.wait();

            // Release everyone; the stacks come back.
            release.store(true, Ordering::Release);
            prober.thread().unpark();
            for h in &parked {
                h.thread().unpark();
            }
            let probe = prober.join().unwrap();
            let go_panic = probe
                .go_panic
                .expect("grove::go beyond the stack cap did not panic");
            assert!(go_panic.contains("vm.max_map_count"), "{go_panic}");
            assert_out_of_stacks(probe.builder);
            let sum: usize = parked.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, (1..CAP).sum::<usize>());

            // Spawning works again: the spawn-time check sees the idle
            // stacks. Only on one worker is it certain that the new green
            // thread can have one of them; with more, it may be picked up by
            // a worker whose own cache is empty and starve (see the ignored
            // `a_stack_idle_on_one_worker_serves_a_spawn_on_another`).
            for round in 0..3 {
                let again: Vec<_> = (0..CAP)
                    .map(|i| rt.spawn(move || round * CAP + i))
                    .collect();
                let by_builder = thread::Builder::new().spawn_on(&rt, || 9).unwrap();
                if n == 1 {
                    let sum: usize = again.into_iter().map(|h| h.join().unwrap()).sum();
                    assert_eq!(sum, (round * CAP..(round + 1) * CAP).sum::<usize>());
                    assert_eq!(by_builder.join().unwrap(), 9);
                }
            }
            assert!(rt.stats().mapped_stacks <= CAP, "{:?}", rt.stats());
        });
    });
}

/// Recurses `depth` frames, each with a 256-byte local; returns a checksum.
fn recurse(depth: u32) -> u64 {
    let frame = [depth as u8; 256];
    let frame = std::hint::black_box(frame);
    if depth == 0 {
        return 0;
    }
    u64::from(frame[17]) + recurse(depth - 1)
}

#[test]
fn a_stack_idle_on_one_worker_serves_a_spawn_on_another() {
    common::watchdog_for(std::time::Duration::from_secs(20), || {
        for_each_workers(|n| {
            // One stack for the whole runtime: after the first green thread
            // finishes it sits in the cache of the worker that ran it. A
            // spawn is accepted because of it, and must be able to use it
            // whichever worker picks the new green thread up.
            let rt = Runtime::builder().workers(n).max_stacks(1).build().unwrap();
            for i in 0..2000u32 {
                let h = rt.spawn(move || i);
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
                while !h.is_finished() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "spawn {i} never started: {:?} {:?}",
                        rt.stats(),
                        rt.tasks()
                    );
                    std::thread::yield_now();
                }
                assert_eq!(h.join().unwrap(), i);
            }
        });
    });
}

#[test]
fn a_small_stack_runs_moderately_deep_recursion() {
    watchdog(|| {
        for_each_workers(|n| {
            let rt = common::runtime(n);
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn_on(&rt, || {
                            // Blocking calls in between, at depth.
                            thread::yield_now();
                            recurse(60)
                        })
                        .unwrap()
                })
                .collect();
            let expected: u64 = (1..=60u64).map(|d| d % 256).sum();
            for h in handles {
                assert_eq!(h.join().unwrap(), expected);
            }
        });
    });
}

#[test]
fn stacks_of_finished_green_threads_are_reused() {
    const TASKS: u64 = 10_000;
    watchdog(|| {
        for_each_workers(|n| {
            let rt = common::runtime(n);
            let total = rt.block_on(|| {
                let mut total = 0;
                for i in 0..TASKS {
                    total += thread::spawn(move || i).join().unwrap();
                }
                total
            });
            assert_eq!(total, TASKS * (TASKS - 1) / 2);
            // Sequential spawns need a few stacks, not 10,000.
            let stats = rt.stats();
            assert!(stats.mapped_stacks < 200, "{stats:?}");
            // Once everything finished, every mapped stack sits in a pool.
            wait_until("all stacks back in the pools", || {
                rt.stats().live_stacks == 0
            });
            let stats = rt.stats();
            assert!(stats.pooled_stacks >= 1, "{stats:?}");
            assert_eq!(stats.pooled_stacks, stats.mapped_stacks, "{stats:?}");
        });
    });
}

#[test]
fn many_concurrent_short_tasks_reuse_stacks_too() {
    watchdog(|| {
        for_each_workers(|n| {
            let rt = common::runtime(n);
            let done = Arc::new(AtomicUsize::new(0));
            for _round in 0..10 {
                let handles: Vec<_> = (0..500)
                    .map(|_| {
                        let done = done.clone();
                        rt.spawn(move || {
                            thread::yield_now();
                            done.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
            }
            assert_eq!(done.load(Ordering::Relaxed), 5000);
            // At most one round's worth of stacks is needed at once; each
            // worker may keep a small cache of its own on top of that. Without
            // reuse it would be 5000.
            let stats = rt.stats();
            assert!(stats.mapped_stacks < 1000, "{stats:?}");
        });
    });
}

#[test]
fn the_process_wide_stack_budget_follows_vm_max_map_count() {
    let max = runtime::max_map_count();
    if let Ok(text) = std::fs::read_to_string("/proc/sys/vm/max_map_count") {
        assert_eq!(max, text.trim().parse::<usize>().unwrap());
    }
    // Each stack takes two mappings, and some are left to the rest of the
    // program.
    let budget = runtime::stack_budget();
    assert!(budget >= 1 && budget < max / 2, "budget {budget} of {max}");

    let rt = Runtime::builder().workers(1).build().unwrap();
    let started = Latch::new(1);
    let release = Arc::new(AtomicBool::new(false));
    let h = {
        let (started, release) = (started.clone(), release.clone());
        rt.spawn(move || {
            started.count_down();
            while !release.load(Ordering::Acquire) {
                thread::park();
            }
        })
    };
    started.wait();
    // Other tests of this binary run in parallel, so only a lower bound on
    // the process-wide count holds.
    assert!(runtime::mapped_stacks() >= rt.stats().mapped_stacks);
    assert!(rt.stats().mapped_stacks >= 1);
    release.store(true, Ordering::Release);
    h.thread().unpark();
    h.join().unwrap();
}
