//! Helpers shared by grove's integration tests: worker-count sweeps, a
//! watchdog that bounds every long test, and small synchronisation tools
//! built only on the public park/unpark API (never on a std primitive that
//! would block a worker).
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use grove::thread::{self, Thread};

#[path = "base.rs"]
mod base;
#[allow(unused_imports)] // each test binary uses a subset
pub use base::{
    expect_panic, runtime, sweep_workers, wait_blocked, wait_until, watchdog, watchdog_for,
    TEST_LIMIT, WAIT_LIMIT, WORKER_COUNTS,
};

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
