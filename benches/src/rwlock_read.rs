//! `rwlock_read`: [`TASKS`] tasks share one reader-writer lock over a
//! counter, `total` operations in all (`total / TASKS` each), one in
//! [`WRITE_EVERY`] a write (write lock, increment) and the rest reads
//! (read lock, read the counter). Each task runs rounds of
//! `WRITE_EVERY - 1` reads then one write, so the writes are spread over
//! the run. The counter must end at the number of writes, and no reader
//! may have seen more than that. The value is the whole run (the tasks'
//! start included, as in Go's twin); divide by `total` for ns per
//! operation.
//!
//! | implementation | lock | tasks |
//! |---|---|---|
//! | grove | `grove::sync::RwLock` | green threads |
//! | std_thread | `std::sync::RwLock` | OS threads |
//! | tokio | `tokio::sync::RwLock` (`read().await`, `write().await`) | tasks |
//! | may | `may::sync::RwLock` | coroutines |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chans::{in_may, GroveSpawn, Joiner, MaySpawn, Spawner, ThreadSpawn};
use crate::util::check;

/// Tasks sharing the lock.
pub const TASKS: usize = 8;

/// One operation in this many is a write.
pub const WRITE_EVERY: usize = 100;

/// `total` rounded down to whole rounds of [`WRITE_EVERY`] operations for
/// each of the [`TASKS`] tasks (at least one round each).
pub fn operations(total: usize) -> usize {
    let unit = TASKS * WRITE_EVERY;
    (total / unit).max(1) * unit
}

/// The writes among [`operations`]`(total)`: what the counter must end at.
pub fn writes(total: usize) -> u64 {
    (operations(total) / WRITE_EVERY) as u64
}

/// A reader-writer lock over a `u64`, for the generic run.
trait ReadWrite: Send + Sync + 'static {
    fn new() -> Self;
    /// Read-locks and reads the counter.
    fn read_value(&self) -> u64;
    /// Write-locks and increments the counter.
    fn add_one(&self);
}

macro_rules! impl_read_write {
    ($ty:ty) => {
        impl ReadWrite for $ty {
            fn new() -> Self {
                <$ty>::new(0)
            }
            fn read_value(&self) -> u64 {
                *self.read().unwrap_or_else(|e| e.into_inner())
            }
            fn add_one(&self) {
                *self.write().unwrap_or_else(|e| e.into_inner()) += 1;
            }
        }
    };
}

impl_read_write!(grove::sync::RwLock<u64>);
impl_read_write!(std::sync::RwLock<u64>);
impl_read_write!(may::sync::RwLock<u64>);

/// One task's share: `rounds` rounds of `WRITE_EVERY - 1` reads and one
/// write; returns the largest value it read.
fn rounds_of<L: ReadWrite>(lock: &L, rounds: usize) -> u64 {
    let mut seen = 0;
    for _ in 0..rounds {
        for _ in 0..WRITE_EVERY - 1 {
            seen = seen.max(lock.read_value());
        }
        lock.add_one();
    }
    seen
}

/// Checks the end state: the counter equals the writes, and no reader saw
/// more than that.
fn verify(what: &str, value: u64, seen: u64, total: usize) {
    check(what, value, writes(total));
    if seen > value {
        panic!("{what}: WRONG RESULT: a reader saw {seen}, above the final count {value}");
    }
}

/// One run with any lock and any kind of task; runs on the caller, which
/// must be a task of `spawn`'s kind.
fn share<S: Spawner, L: ReadWrite>(what: &'static str, spawn: S, total: usize) -> Duration {
    let rounds = operations(total) / TASKS / WRITE_EVERY;
    let lock = Arc::new(L::new());
    let seen = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let joins: Vec<Joiner> = (0..TASKS)
        .map(|_| {
            let (lock, seen) = (Arc::clone(&lock), Arc::clone(&seen));
            spawn.spawn(
                what,
                Box::new(move || {
                    seen.fetch_max(rounds_of(&*lock, rounds), Ordering::Relaxed);
                }),
            )
        })
        .collect();
    for join in joins {
        join();
    }
    let elapsed = start.elapsed();
    verify(what, lock.read_value(), seen.load(Ordering::Relaxed), total);
    elapsed
}

/// grove: green threads on `rt` with `grove::sync::RwLock`.
pub fn grove(rt: &grove::Runtime, total: usize) -> Duration {
    rt.block_on(move || {
        share::<_, grove::sync::RwLock<u64>>("rwlock_read/grove", GroveSpawn, total)
    })
}

/// std::thread: [`TASKS`] OS threads with `std::sync::RwLock`.
pub fn std_thread(total: usize) -> Duration {
    share::<_, std::sync::RwLock<u64>>("rwlock_read/std_thread", ThreadSpawn, total)
}

/// may: coroutines with `may::sync::RwLock`. Call
/// [`crate::util::may_init`] first.
pub fn may(total: usize) -> Duration {
    in_may(move || share::<_, may::sync::RwLock<u64>>("rwlock_read/may", MaySpawn, total))
}

/// tokio: tasks on `rt` with `tokio::sync::RwLock`.
pub fn tokio(rt: &tokio::runtime::Runtime, total: usize) -> Duration {
    let rounds = operations(total) / TASKS / WRITE_EVERY;
    let (elapsed, value, seen) = rt.block_on(async move {
        tokio::spawn(async move {
            let lock = Arc::new(tokio::sync::RwLock::new(0u64));
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let lock = Arc::clone(&lock);
                    tokio::spawn(async move {
                        let mut seen = 0;
                        for _ in 0..rounds {
                            for _ in 0..WRITE_EVERY - 1 {
                                seen = seen.max(*lock.read().await);
                            }
                            *lock.write().await += 1;
                        }
                        seen
                    })
                })
                .collect();
            let mut seen = 0;
            for t in tasks {
                seen = seen.max(t.await.expect("rwlock_read/tokio: a task panicked"));
            }
            let elapsed = start.elapsed();
            let value = *lock.read().await;
            (elapsed, value, seen)
        })
        .await
        .expect("rwlock_read/tokio: the driver task panicked")
    });
    verify("rwlock_read/tokio", value, seen, total);
    elapsed
}
