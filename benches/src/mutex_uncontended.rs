//! `mutex_uncontended`: one task locks and unlocks one mutex `n` times,
//! incrementing the counter it guards each time; nobody else touches the
//! mutex. The counter must end at `n`. The value is the loop alone (the
//! mutex is made before the clock starts); divide by `n` for ns per
//! lock + unlock. This is the fast path of every lock: one atomic
//! operation to lock and one to unlock, where the implementation manages
//! it.
//!
//! | implementation | lock | task |
//! |---|---|---|
//! | grove | `grove::sync::Mutex` | a green thread |
//! | std_thread | `std::sync::Mutex` | the calling OS thread |
//! | tokio | `tokio::sync::Mutex` (`lock().await`) | a task |
//! | may | `may::sync::Mutex` | a coroutine |

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chans::in_may;
use crate::mutex::Lock;
use crate::util::check;

/// One run with any lock, on the calling task.
fn lock_loop<L: Lock>(what: &str, n: usize) -> Duration {
    // Shared, as a real mutex is: the compiler must treat every lock as
    // visible to other threads.
    let lock = black_box(Arc::new(L::new()));
    let start = Instant::now();
    for _ in 0..n {
        lock.add_one();
    }
    let elapsed = start.elapsed();
    check(what, lock.value(), n as u64);
    elapsed
}

/// grove: a green thread on `rt` with `grove::sync::Mutex`.
pub fn grove(rt: &grove::Runtime, n: usize) -> Duration {
    rt.block_on(move || lock_loop::<grove::sync::Mutex<u64>>("mutex_uncontended/grove", n))
}

/// std::thread: the calling OS thread with `std::sync::Mutex`.
pub fn std_thread(n: usize) -> Duration {
    lock_loop::<std::sync::Mutex<u64>>("mutex_uncontended/std_thread", n)
}

/// may: a coroutine with `may::sync::Mutex`. Call
/// [`crate::util::may_init`] first.
pub fn may(n: usize) -> Duration {
    in_may(move || lock_loop::<may::sync::Mutex<u64>>("mutex_uncontended/may", n))
}

/// tokio: a task on `rt` with `tokio::sync::Mutex` (`lock().await`).
pub fn tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    let (elapsed, value) = rt.block_on(async move {
        tokio::spawn(async move {
            let lock = black_box(Arc::new(tokio::sync::Mutex::new(0u64)));
            let start = Instant::now();
            for _ in 0..n {
                *lock.lock().await += 1;
            }
            let elapsed = start.elapsed();
            let value = *lock.lock().await;
            (elapsed, value)
        })
        .await
        .expect("mutex_uncontended/tokio: the task panicked")
    });
    check("mutex_uncontended/tokio", value, n as u64);
    elapsed
}
