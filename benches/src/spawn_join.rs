//! `spawn_join`: spawn N tasks that each increment a shared atomic counter,
//! then wait for all of them. The value is the time from the first spawn
//! to the end of the wait; divide by N for ns per task.
//!
//! grove is measured two ways:
//!
//! - [`grove_scope()`], the program Go's twin runs: the tasks borrow the
//!   counter and the spawner waits for all of them at once. Go's twin
//!   shares the counter by pointer and waits on a `sync.WaitGroup`; the Rust
//!   form of that is `thread::scope` (borrowed data, every task waited for
//!   when the scope ends). This is the row compared with Go. The counter
//!   is boxed because Go's is on the heap (the goroutines capture it, so
//!   it escapes): on the spawner's stack it would share a cache line with
//!   the spawn loop's own locals, and every task's increment would pull
//!   that line away from the spawner mid-loop (about 15% of the total
//!   here, an artefact of where the program keeps its counter, not a cost
//!   of spawning).
//! - [`grove()`], with what a `std::thread` program does: an `Arc` clone of
//!   the counter and a `JoinHandle` per task, each joined in turn.
//!
//! Every function panics if the counter does not end at N.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{check, may_go};

/// grove, as Go's twin: a green thread on `rt` spawns `n` scoped green
/// threads that borrow the counter, and the scope waits for all of them.
pub fn grove_scope(rt: &grove::Runtime, n: usize) -> Duration {
    rt.block_on(move || {
        // On the heap, as Go's (see the module docs).
        let counter = Box::new(AtomicUsize::new(0));
        let counter = &*counter;
        let start = Instant::now();
        grove::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    counter.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        let elapsed = start.elapsed();
        check("spawn_join/grove_scope", counter.load(Ordering::SeqCst), n);
        elapsed
    })
}

/// grove, joining each: a green thread on `rt` spawns `n` green threads,
/// each with an `Arc` clone of the counter, and joins their handles.
pub fn grove(rt: &grove::Runtime, n: usize) -> Duration {
    rt.block_on(move || {
        let counter = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            let counter = Arc::clone(&counter);
            handles.push(grove::go(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in handles {
            h.join().expect("spawn_join/grove: a green thread panicked");
        }
        let elapsed = start.elapsed();
        check("spawn_join/grove", counter.load(Ordering::SeqCst), n);
        elapsed
    })
}

/// std::thread: the calling OS thread spawns `n` OS threads and joins them
/// (sized by the table's OS-thread row, [`crate::sizes::Sizes`]).
pub fn std_thread(n: usize) -> Duration {
    let counter = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let counter = Arc::clone(&counter);
        handles.push(std::thread::spawn(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for h in handles {
        h.join().expect("spawn_join/std_thread: a thread panicked");
    }
    let elapsed = start.elapsed();
    check("spawn_join/std_thread", counter.load(Ordering::SeqCst), n);
    elapsed
}

/// tokio: a task on `rt` spawns `n` tasks and awaits their join handles.
/// The spawner is itself a spawned task (like grove's `block_on`, which
/// runs its closure as a green thread on a worker), so spawns go to a
/// worker's local queue rather than the injection queue.
pub fn tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let counter = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::with_capacity(n);
            let start = Instant::now();
            for _ in 0..n {
                let counter = Arc::clone(&counter);
                handles.push(tokio::spawn(async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for h in handles {
                h.await.expect("spawn_join/tokio: a task panicked");
            }
            let elapsed = start.elapsed();
            check("spawn_join/tokio", counter.load(Ordering::SeqCst), n);
            elapsed
        })
        .await
        .expect("spawn_join/tokio: the driver task panicked")
    })
}

/// may: a coroutine spawns `n` coroutines and joins them. Call
/// [`crate::util::may_init`] first and size `n` with
/// [`crate::util::may_fit_count`]: may allocates a stack at spawn, and fails
/// beyond about 32,000 live coroutines at the default `vm.max_map_count`.
pub fn may(n: usize) -> Duration {
    let driver = may_go(move || {
        let counter = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            let counter = Arc::clone(&counter);
            handles.push(may_go(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for h in handles {
            h.join().expect("spawn_join/may: a coroutine panicked");
        }
        let elapsed = start.elapsed();
        check("spawn_join/may", counter.load(Ordering::SeqCst), n);
        elapsed
    });
    driver
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}
