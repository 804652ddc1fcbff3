//! Scale: 100,000 green threads parked at once, then all released and
//! joined, with nothing lost; and (ignored by default, run by hand: see
//! below) 1,000,000.
//!
//! Where the kernel has guard regions (Linux ≥ 6.13, grove's default stack
//! mode there, `grove::runtime::stack_mode()`), stacks take no memory
//! mapping of their own and both run at Linux's default `vm.max_map_count`
//! (65530), which the tests leave alone. Where each stack is its own
//! mapping plus a guard page (older kernels, or `GROVE_STACK_MODE=mappings`),
//! 100,000 parked green threads need about 200,000 mappings: the test then
//! raises the limit when it can (root; `grove_test_support::MapCountGuard`,
//! the guard the benchmarks use), restores it at the end even on failure,
//! and otherwise skips with a message. It is the only test of this
//! binary that runs by default, so nothing else in the process sees the
//! raised limit.
//!
//! The million, by hand (about 4.3 GiB of memory; release, so that it
//! takes seconds): `cargo test --release --test scale -- --ignored --nocapture`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{watchdog_for, Latch};
use grove::runtime::{self, StackMode};
use grove::thread;
use grove::Runtime;
use grove_test_support::{procfs, MapCountGuard};

const TASKS: usize = 100_000;

#[test]
fn a_hundred_thousand_parked_green_threads() {
    if runtime::stack_mode() != StackMode::Mappings {
        let limit = procfs::max_map_count().ok();
        watchdog_for(Duration::from_secs(120), move || {
            common::sweep_workers(|workers| park_and_release_all(workers, TASKS));
        });
        assert_eq!(
            procfs::max_map_count().ok(),
            limit,
            "vm.max_map_count was changed"
        );
        return;
    }
    let raised = match MapCountGuard::raise_to(MapCountGuard::needed_for_stacks(TASKS)) {
        Ok(raised) => raised,
        Err(reason) => {
            eprintln!("skipping a_hundred_thousand_parked_green_threads: {reason}");
            return;
        }
    };
    // The watchdog's body thread is detached if it hangs; the limit is put
    // back here, on the test's own thread, whatever happens.
    let reassert = raised.reasserter();
    watchdog_for(Duration::from_secs(120), move || {
        common::sweep_workers(|workers| {
            reassert();
            park_and_release_all(workers, TASKS);
        });
    });
    drop(raised);
}

/// A million green threads parked at once at the default
/// `vm.max_map_count`: guard-region mode only (with one mapping per stack
/// it would need the limit raised to over 2,000,000).
#[test]
#[ignore = "heavy (about 4.3 GiB): cargo test --release --test scale -- --ignored --nocapture"]
fn a_million_parked_green_threads_at_the_default_map_count() {
    const MILLION: usize = 1_000_000;
    if runtime::stack_mode() == StackMode::Mappings {
        eprintln!(
            "skipping: this process maps each stack on its own (kernel before 6.13, or \
             GROVE_STACK_MODE=mappings); a million stacks would need vm.max_map_count above \
             2,000,000"
        );
        return;
    }
    let limit = procfs::max_map_count().ok();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    watchdog_for(Duration::from_secs(600), move || {
        park_and_release_all(workers, MILLION)
    });
    assert_eq!(
        procfs::max_map_count().ok(),
        limit,
        "vm.max_map_count was changed"
    );
}

fn park_and_release_all(workers: usize, tasks: usize) {
    let budget = runtime::stack_budget();
    assert!(
        budget >= tasks,
        "the stack budget is {budget} (vm.max_map_count {}, {:?} mode)",
        runtime::max_map_count(),
        runtime::stack_mode()
    );
    let (rss_before, maps_before) = (procfs::rss_bytes(), procfs::map_count());
    let start = Instant::now();
    let rt = Runtime::builder().workers(workers).build().unwrap();
    let parked = Latch::new(tasks);
    let released = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let (parked, released) = (parked.clone(), released.clone());
            rt.spawn(move || {
                parked.count_down();
                loop {
                    thread::park();
                    if released.load(Ordering::Acquire) {
                        break;
                    }
                }
                i as u64
            })
        })
        .collect();
    parked.wait();
    let spawned = start.elapsed();
    let (rss_parked, maps_parked) = (procfs::rss_bytes(), procfs::map_count());

    let stats = rt.stats();
    assert_eq!(stats.live, tasks as u64, "{stats:?}");
    assert_eq!(stats.live_stacks, tasks, "{stats:?}");
    assert!(stats.mapped_stacks >= tasks, "{stats:?}");
    if runtime::stack_mode() != StackMode::Mappings {
        // A reservation holds about 4,000 stacks of the default size.
        let grown = maps_parked.saturating_sub(maps_before);
        assert!(
            grown <= tasks / 1000 + 64,
            "{tasks} parked green threads took {grown} new mappings"
        );
    }

    released.store(true, Ordering::Release);
    for h in &handles {
        h.thread().unpark();
    }
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (tasks as u64) * (tasks as u64 - 1) / 2);
    let released_in = start.elapsed() - spawned;

    common::wait_until("every stack back", || rt.stats().live_stacks == 0);
    drop(rt);
    let dropped_in = start.elapsed() - spawned - released_in;
    eprintln!(
        "{tasks} green threads on {workers} worker(s), {:?} stacks: spawned and parked in \
         {spawned:?}, released and joined in {released_in:?}, runtime dropped in {dropped_in:?}; \
         while parked: RSS +{:.2} GiB ({:.2} KiB each), +{} mappings (vm.max_map_count {})",
        runtime::stack_mode(),
        rss_parked.saturating_sub(rss_before) as f64 / (1u64 << 30) as f64,
        rss_parked.saturating_sub(rss_before) as f64 / 1024.0 / tasks as f64,
        maps_parked.saturating_sub(maps_before),
        runtime::max_map_count(),
    );
}
