//! Green-thread stacks: running out of them is an error that names the
//! limit (the runtime's `max_stacks`, and `vm.max_map_count` where each stack
//! is its own mapping), and a panic for the spawn functions that cannot
//! return one; spawning works again once stacks come back, small stacks hold
//! real work (the smallest leaves corosensei the 4 KiB it needs), finished
//! green threads' stacks are reused, and in guard-region mode blocked green
//! threads take no mapping each.
//!
//! The stack mode is chosen once per process, so the tests of this binary
//! run twice: once in the mode this kernel gives (guard regions on Linux ≥
//! 6.13), and once more, all of them, in a child process with
//! `GROVE_STACK_MODE=mappings` (one mapping per stack, as on older kernels):
//! see `every_stack_test_passes_with_one_mapping_per_stack`.

mod common;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{sweep_workers, wait_until, watchdog, Latch};
use grove::runtime::{self, StackMode};
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

/// Whether a message about running out of stacks names what it should:
/// the runtime's cap always, `vm.max_map_count` only where each stack is
/// its own mapping.
#[track_caller]
fn assert_names_the_limit(msg: &str) {
    assert!(msg.contains("max_stacks"), "{msg}");
    assert_eq!(
        msg.contains("vm.max_map_count"),
        runtime::stack_mode() == StackMode::Mappings,
        "{msg}"
    );
}

#[track_caller]
fn assert_out_of_stacks<T>(result: io::Result<T>) {
    let Err(err) = result else {
        panic!("a spawn beyond the stack cap succeeded");
    };
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
    assert_names_the_limit(&err.to_string());
}

/// What the prober green thread saw when it tried to spawn with every
/// stack in use.
struct Probe {
    go_panic: Option<String>,
    builder: io::Result<()>,
}

#[test]
fn running_out_of_stacks_is_an_error_naming_the_limit() {
    watchdog(|| {
        sweep_workers(|n| {
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
            assert_names_the_limit(&spawn_panic);

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
            assert_names_the_limit(&go_panic);
            assert_out_of_stacks(probe.builder);
            let sum: usize = parked.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, (1..CAP).sum::<usize>());

            // Spawning works again: the spawn-time check sees the idle
            // stacks, on whichever worker's cache they sit (see
            // `a_stack_idle_on_one_worker_serves_a_spawn_on_another`); one
            // more than the cap waits for a stack and then runs.
            for round in 0..3 {
                let again: Vec<_> = (0..CAP)
                    .map(|i| rt.spawn(move || round * CAP + i))
                    .collect();
                let by_builder = thread::Builder::new().spawn_on(&rt, || 9).unwrap();
                let sum: usize = again.into_iter().map(|h| h.join().unwrap()).sum();
                assert_eq!(sum, (round * CAP..(round + 1) * CAP).sum::<usize>());
                assert_eq!(by_builder.join().unwrap(), 9);
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
        sweep_workers(|n| {
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
        sweep_workers(|n| {
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
        sweep_workers(|n| {
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
        sweep_workers(|n| {
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
fn the_process_wide_stack_budget_follows_the_mode() {
    let max = runtime::max_map_count();
    if let Ok(text) = std::fs::read_to_string("/proc/sys/vm/max_map_count") {
        assert_eq!(max, text.trim().parse::<usize>().unwrap());
    }
    let budget = runtime::stack_budget();
    match runtime::stack_mode() {
        // Each stack takes two mappings, and some are left to the rest of
        // the program.
        StackMode::Mappings => assert!(budget >= 1 && budget < max / 2, "budget {budget} of {max}"),
        // No mapping per stack: memory is the limit.
        _ => assert_eq!(budget, usize::MAX),
    }

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

/// `GROVE_STACK_MODE` as this process found it.
fn forced_mappings() -> bool {
    std::env::var(runtime::STACK_MODE_ENV).is_ok_and(|v| v == "mappings")
}

/// The running kernel's (major, minor) version, from `uname -r`.
fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.trim().split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn the_stack_mode_follows_the_kernel_and_the_switch() {
    let mode = runtime::stack_mode();
    if forced_mappings() {
        assert_eq!(mode, StackMode::Mappings);
    } else if kernel_version().is_some_and(|v| v >= (6, 13)) {
        // Guard regions came with 6.13 (a kernel may lack them in a
        // sandbox that filters madvise, hence only this direction).
        assert_eq!(
            mode,
            StackMode::GuardRegions,
            "kernel {:?}",
            kernel_version()
        );
    } else if kernel_version().is_some_and(|v| v < (6, 13)) {
        assert_eq!(mode, StackMode::Mappings, "kernel {:?}", kernel_version());
    }
    assert_eq!(runtime::stack_mode(), mode, "the mode never changes");
}

/// Lines of `/proc/self/maps`: the process's memory mappings.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn blocked_green_threads_take_no_mapping_each_in_guard_region_mode() {
    // Beyond what the default vm.max_map_count allows with two mappings
    // per stack (about 32,000), in guard-region mode; few in the other.
    let tasks = match runtime::stack_mode() {
        StackMode::Mappings => 2_000,
        _ => 40_000,
    };
    watchdog(move || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        let before = mappings();
        let started = Latch::new(tasks);
        let release = Arc::new(AtomicBool::new(false));
        let handles: Vec<JoinHandle<usize>> = (0..tasks)
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
        assert_eq!(rt.stats().live_stacks, tasks);
        let grown = mappings().saturating_sub(before);
        match runtime::stack_mode() {
            // Two per stack; other tests of this binary may unmap some of
            // theirs meanwhile.
            StackMode::Mappings => assert!(grown >= tasks, "{tasks} stacks, {grown} new mappings"),
            // A reservation holds about 4,000 default stacks; other tests
            // of this binary map some of theirs meanwhile.
            _ => assert!(grown < 1_000, "{tasks} stacks took {grown} new mappings"),
        }
        release.store(true, Ordering::Release);
        for h in &handles {
            h.thread().unpark();
        }
        let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, tasks * (tasks - 1) / 2);
    });
}

// ------------------------------------------- tests run in a child process --

const CHILD_ENV: &str = "GROVE_TEST_CHILD";

/// Runs this test binary again with `args`, `CHILD_ENV` set to `child`
/// and `GROVE_STACK_MODE` to `mode` where given; returns whether it passed
/// with `want` tests passed, and its output.
fn run_self(args: &[&str], child: &str, mode: Option<&str>, want: &str) -> (bool, String) {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(args)
        .env(CHILD_ENV, child)
        .env("RUST_BACKTRACE", "0");
    if let Some(mode) = mode {
        cmd.env(runtime::STACK_MODE_ENV, mode);
    }
    let out = cmd.output().expect("running the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "status: {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && stdout.contains(want), report)
}

fn in_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// The mapping of `/proc/self/maps` that holds `addr`: (start, end, perms).
fn mapping_of(addr: usize) -> Option<(usize, usize, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let perms = fields.next()?.to_string();
        (start <= addr && addr < end).then_some((start, end, perms))
    })
}

#[test]
fn the_smallest_stack_holds_the_4096_bytes_corosensei_needs() {
    // In a child, with one mapping per stack: there a stack's usable part
    // is a mapping of its own, so /proc/self/maps shows its bounds.
    let (passed, report) = run_self(
        &[
            "smallest_stack_child",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ],
        "smallest_stack_child",
        Some("mappings"),
        "1 passed",
    );
    assert!(passed, "{report}");
}

#[test]
#[ignore = "helper: the child process of the_smallest_stack_holds_the_4096_bytes_corosensei_needs"]
fn smallest_stack_child() {
    if !in_child("smallest_stack_child") {
        return;
    }
    assert_eq!(runtime::stack_mode(), StackMode::Mappings);
    let page = 4096; // smaller sizes are rounded up to the same stack
    let rt = common::runtime(1);
    assert_eq!(
        thread::Builder::new()
            .stack_size(page - 1)
            .spawn_on(&rt, || 1)
            .unwrap()
            .join()
            .unwrap(),
        1
    );
    let sp = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let h = {
        let (sp, release) = (sp.clone(), release.clone());
        thread::Builder::new()
            .name("smallest".to_string())
            .stack_size(page)
            .spawn_on(&rt, move || {
                let local = std::hint::black_box(0u8);
                sp.store(&local as *const u8 as usize, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    thread::park();
                }
                7
            })
            .unwrap()
    };
    wait_until("the green thread to start", || {
        sp.load(Ordering::Acquire) != 0
    });
    let addr = sp.load(Ordering::Acquire);
    let (start, end, perms) = mapping_of(addr).expect("the green thread's stack is mapped");
    let (guard_start, _, guard_perms) =
        mapping_of(start - 1).expect("a guard page below the stack");
    release.store(true, Ordering::Release);
    h.thread().unpark();
    assert_eq!(h.join().unwrap(), 7);
    assert!(perms.starts_with("rw"), "{perms}");
    assert!(guard_perms.starts_with("---"), "{guard_perms}");
    assert_eq!(start - guard_start, page, "one guard page");
    // grove keeps the top 128 bytes for the coroutine itself; corosensei's
    // `Stack` contract wants at least 4,096 usable bytes below them.
    let usable = end - 128 - start;
    assert!(
        usable >= 4096,
        "a stack of the smallest size leaves corosensei {usable} bytes"
    );
}

/// With one mapping per stack, green threads beyond what
/// `vm.max_map_count` allows wait for a stack; when every green thread
/// that has one is blocked for good, that is a deadlock and `block_on`
/// reports it after its grace. Each refusal used to count the process's
/// mappings afresh (all of `/proc/self/maps`, 30,000 lines): 2,000
/// green threads beyond the limit kept both workers busy for 30-60 s
/// before the report. In a child of its own: it takes the whole process's
/// budget of mappings.
#[test]
fn green_threads_beyond_the_mapping_limit_are_reported_in_a_deadlock() {
    if forced_mappings() {
        return; // the mappings rerun: this test makes its own child
    }
    let (passed, report) = run_self(
        &[
            "beyond_the_mapping_limit_child",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ],
        "beyond_the_mapping_limit_child",
        Some("mappings"),
        "1 passed",
    );
    assert!(passed, "{report}");
}

#[test]
#[ignore = "helper: the child process of green_threads_beyond_the_mapping_limit_are_reported_in_a_deadlock"]
fn beyond_the_mapping_limit_child() {
    if !in_child("beyond_the_mapping_limit_child") {
        return;
    }
    assert_eq!(runtime::stack_mode(), StackMode::Mappings);
    const BEYOND: usize = 2_000;
    common::watchdog_for(std::time::Duration::from_secs(30), || {
        let n = runtime::stack_budget() + BEYOND;
        let rt = Runtime::builder()
            .workers(2)
            .deadlock_grace(Some(std::time::Duration::from_millis(500)))
            .build()
            .unwrap();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(move || {
                // Never complete: one more than will ever wait.
                let barrier = Arc::new(grove::sync::Barrier::new(n + 1));
                let handles: Vec<_> = (0..n)
                    .map(|_| {
                        let barrier = barrier.clone();
                        grove::go(move || {
                            barrier.wait();
                        })
                    })
                    .collect();
                for h in handles {
                    let _ = h.join();
                }
            })
        }));
        let msg = panic_message(&*outcome.expect_err("block_on returned"));
        assert!(
            msg.starts_with("all green threads are asleep - deadlock!"),
            "{}",
            &msg[..msg.len().min(300)]
        );
        drop(rt);
    });
}

#[test]
fn every_stack_test_passes_with_one_mapping_per_stack() {
    if forced_mappings() {
        return; // this is the rerun
    }
    if runtime::stack_mode() == StackMode::Mappings {
        eprintln!("skipped: this process already uses one mapping per stack");
        return;
    }
    let (passed, report) = run_self(
        &[
            "--skip",
            "every_stack_test_passes_with_one_mapping_per_stack",
        ],
        "",
        Some("mappings"),
        "test result: ok",
    );
    assert!(passed, "{report}");
}
