//! `yield_now`: one task yields `n` times in a row with nothing else to
//! run, so each yield is a trip through the scheduler and straight back.
//! The value is the time of the loop; divide by `n` for ns per yield.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::util::{check, may_go};

/// grove: one green thread calls `grove::thread::yield_now()` `n` times.
/// Checks through the runtime's counters that the yields happened (a yield
/// that never reached the scheduler would be a fast wrong answer).
pub fn grove(rt: &grove::Runtime, n: usize) -> Duration {
    let before = rt.stats().yields;
    let (elapsed, count) = rt.block_on(move || {
        let mut count = 0usize;
        let start = Instant::now();
        for _ in 0..n {
            grove::thread::yield_now();
            count = black_box(count + 1);
        }
        (start.elapsed(), count)
    });
    check("yield_now/grove", count, n);
    let yields = rt.stats().yields - before;
    if yields < n as u64 {
        panic!("yield_now/grove: WRONG RESULT: the runtime counted {yields} yields, want >= {n}");
    }
    elapsed
}

/// tokio: one spawned task awaits `tokio::task::yield_now()` `n` times, on
/// whatever runtime `rt` is (current-thread or multi-thread).
pub fn tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    let (elapsed, count) = rt.block_on(async move {
        tokio::spawn(async move {
            let mut count = 0usize;
            let start = Instant::now();
            for _ in 0..n {
                tokio::task::yield_now().await;
                count = black_box(count + 1);
            }
            (start.elapsed(), count)
        })
        .await
        .expect("yield_now/tokio: the task panicked")
    });
    check("yield_now/tokio", count, n);
    elapsed
}

/// std::thread: the calling OS thread calls `std::thread::yield_now()`
/// (`sched_yield`) `n` times.
pub fn std_thread(n: usize) -> Duration {
    let mut count = 0usize;
    let start = Instant::now();
    for _ in 0..n {
        std::thread::yield_now();
        count = black_box(count + 1);
    }
    let elapsed = start.elapsed();
    check("yield_now/std_thread", count, n);
    elapsed
}

/// may: one coroutine calls `may::coroutine::yield_now()` `n` times. Call
/// [`crate::util::may_init`] first.
pub fn may(n: usize) -> Duration {
    let (elapsed, count) = may_go(move || {
        let mut count = 0usize;
        let start = Instant::now();
        for _ in 0..n {
            may::coroutine::yield_now();
            count = black_box(count + 1);
        }
        (start.elapsed(), count)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    check("yield_now/may", count, n);
    elapsed
}
