//! Helpers shared by grove's integration tests: worker-count sweeps, a
//! watchdog that bounds every long test, and small synchronisation tools
//! built only on the public park/unpark API (never on a std primitive that
//! would block a worker).
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove::thread::{self, Thread};
use grove::Runtime;

/// The worker counts every runtime test sweeps (marl's habit, see STYLE.md).
pub const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// How long a test body may run before the watchdog calls it hung.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How long a bounded wait (`Latch::wait`, `wait_until`) waits before it
/// fails the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` once per entry of [`WORKER_COUNTS`]; a failure says which count
/// it happened with.
pub fn for_each_workers(f: impl Fn(usize)) {
    for workers in WORKER_COUNTS {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(workers))) {
            eprintln!("grove test failed with {workers} worker(s)");
            panic::resume_unwind(payload);
        }
    }
}

/// A runtime with `workers` workers and everything else at its default.
pub fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .unwrap_or_else(|err| panic!("building a {workers}-worker runtime: {err}"))
}

/// Runs `f` on a fresh OS thread and fails the test if it has not finished
/// within `limit`. A panic in `f` is resumed on the caller. A hung body is
/// left behind (its thread is detached): the test fails either way.
pub fn watchdog_for<F>(limit: Duration, f: F)
where
    F: FnOnce() + Send + 'static,
{
    let name = std::thread::current()
        .name()
        .map_or_else(|| "test".to_string(), |n| format!("{n} (body)"));
    let (done_tx, done_rx) = mpsc::channel();
    let body = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(f));
            let _ = done_tx.send(outcome);
        })
        .expect("spawning the watchdog's body thread");
    match done_rx.recv_timeout(limit) {
        Ok(Ok(())) => body.join().expect("the body thread already finished"),
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!(
            "the test did not finish within {limit:?}: a deadlock or a lost wake-up in grove?"
        ),
    }
}

/// [`watchdog_for`] with the default [`TEST_LIMIT`].
pub fn watchdog<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    watchdog_for(TEST_LIMIT, f);
}

/// Polls `cond` until it holds, yielding in between (a green caller lets its
/// worker run others; an OS caller yields its CPU). Fails the test after
/// [`WAIT_LIMIT`].
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up after {WAIT_LIMIT:?} waiting for {what}"
        );
        thread::yield_now();
    }
}

/// A count-down latch for one waiter, built on park/unpark: whoever takes
/// the count to zero unparks the thread (green or OS) that made the latch.
pub struct Latch {
    left: AtomicUsize,
    waiter: Thread,
}

impl Latch {
    /// A latch that opens after `count` calls to [`Latch::count_down`]. The
    /// calling thread is the one that may [`Latch::wait`].
    pub fn new(count: usize) -> Arc<Latch> {
        Arc::new(Latch {
            left: AtomicUsize::new(count),
            waiter: thread::current(),
        })
    }

    /// Counts one arrival; the last one wakes the waiter.
    pub fn count_down(&self) {
        let before = self.left.fetch_sub(1, Ordering::AcqRel);
        assert!(before > 0, "Latch counted down below zero");
        if before == 1 {
            self.waiter.unpark();
        }
    }

    /// Arrivals still missing.
    pub fn left(&self) -> usize {
        self.left.load(Ordering::Acquire)
    }

    /// Parks until the count reaches zero. Loops on the count, since a park
    /// may end spuriously. Fails the test after [`WAIT_LIMIT`].
    #[track_caller]
    pub fn wait(&self) {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let left = self.left();
            if left == 0 {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "gave up after {WAIT_LIMIT:?} with {left} arrival(s) missing"
            );
            thread::park_timeout(deadline - now);
        }
    }
}
