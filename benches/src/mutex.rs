//! `mutex`: [`TASKS`] tasks increment one counter under one mutex,
//! `total` increments in all (`total / TASKS` each); the counter must end
//! at `total`. The value is the whole run (the tasks' start included, as
//! in Go's twin); divide by `total` for ns per increment.
//!
//! | implementation | lock | tasks |
//! |---|---|---|
//! | grove | `grove::sync::Mutex` | green threads |
//! | std_thread | `std::sync::Mutex` | OS threads |
//! | tokio | `tokio::sync::Mutex` | tasks |
//! | may | `may::sync::Mutex` | coroutines |

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chans::{in_may, GroveSpawn, Joiner, MaySpawn, Spawner, ThreadSpawn};
use crate::util::check;

/// Tasks contending for the lock.
pub const TASKS: usize = 8;

/// `total` rounded down to a multiple of [`TASKS`].
pub fn increments(total: usize) -> usize {
    total / TASKS * TASKS
}

/// A mutex over a `u64` with a blocking `lock`, for the generic runs
/// (here and in [`crate::mutex_uncontended`]).
pub(crate) trait Lock: Send + Sync + 'static {
    /// An unlocked mutex holding 0.
    fn new() -> Self;
    /// Locks, increments the counter, unlocks.
    fn add_one(&self);
    /// Locks and reads the counter.
    fn value(&self) -> u64;
}

macro_rules! impl_lock {
    ($ty:ty) => {
        impl Lock for $ty {
            fn new() -> Self {
                <$ty>::new(0)
            }
            fn add_one(&self) {
                *self.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
            fn value(&self) -> u64 {
                *self.lock().unwrap_or_else(|e| e.into_inner())
            }
        }
    };
}

impl_lock!(grove::sync::Mutex<u64>);
impl_lock!(std::sync::Mutex<u64>);
impl_lock!(may::sync::Mutex<u64>);

/// One run with any lock and any kind of task; runs on the caller, which
/// must be a task of `spawn`'s kind.
fn contend<S: Spawner, L: Lock>(what: &'static str, spawn: S, total: usize) -> Duration {
    let total = increments(total);
    let per = total / TASKS;
    let lock = Arc::new(L::new());
    let start = Instant::now();
    let joins: Vec<Joiner> = (0..TASKS)
        .map(|_| {
            let lock = Arc::clone(&lock);
            spawn.spawn(
                what,
                Box::new(move || {
                    for _ in 0..per {
                        lock.add_one();
                    }
                }),
            )
        })
        .collect();
    for join in joins {
        join();
    }
    let elapsed = start.elapsed();
    check(what, lock.value(), total as u64);
    elapsed
}

/// grove: green threads on `rt` with `grove::sync::Mutex`.
pub fn grove(rt: &grove::Runtime, total: usize) -> Duration {
    rt.block_on(move || contend::<_, grove::sync::Mutex<u64>>("mutex/grove", GroveSpawn, total))
}

/// std::thread: [`TASKS`] OS threads with `std::sync::Mutex`.
pub fn std_thread(total: usize) -> Duration {
    contend::<_, std::sync::Mutex<u64>>("mutex/std_thread", ThreadSpawn, total)
}

/// may: coroutines with `may::sync::Mutex`. Call
/// [`crate::util::may_init`] first.
pub fn may(total: usize) -> Duration {
    in_may(move || contend::<_, may::sync::Mutex<u64>>("mutex/may", MaySpawn, total))
}

/// tokio: tasks on `rt` with `tokio::sync::Mutex` (`lock().await`).
pub fn tokio(rt: &tokio::runtime::Runtime, total: usize) -> Duration {
    let total = increments(total);
    let per = total / TASKS;
    let (elapsed, value) = rt.block_on(async move {
        tokio::spawn(async move {
            let lock = Arc::new(tokio::sync::Mutex::new(0u64));
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let lock = Arc::clone(&lock);
                    tokio::spawn(async move {
                        for _ in 0..per {
                            *lock.lock().await += 1;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("mutex/tokio: a task panicked");
            }
            let elapsed = start.elapsed();
            let value = *lock.lock().await;
            (elapsed, value)
        })
        .await
        .expect("mutex/tokio: the driver task panicked")
    });
    check("mutex/tokio", value, total as u64);
    elapsed
}
