//! `waitgroup_fanout`: one task spawns `n` tasks that each bump a shared
//! atomic counter and then call `done` on one wait group, and waits on
//! that wait group (no join handles: the tasks are detached, as in Go).
//! The counter must end at `n`. The value is the time from the first
//! spawn to the wait's return; divide by `n` for ns per task.
//!
//! | implementation | wait group | tasks |
//! |---|---|---|
//! | grove | `grove::sync::WaitGroup` (`add(n)`, `done`, `wait`) | green threads |
//! | std_thread | a count under a `std::sync::Mutex` + `Condvar` | OS threads (fewer) |
//! | tokio | an atomic count + `tokio::sync::Notify` (the last `done` notifies) | tasks |
//! | may | `may::sync::WaitGroup` (a clone per task; dropping it is `done`) | coroutines |
//!
//! Go's twin uses `sync.WaitGroup` (`Add(n)`, `Done`, `Wait`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::util::{check, may_go};

/// grove: a green thread on `rt` spawns `n` green threads and waits on a
/// `grove::sync::WaitGroup`.
pub fn grove(rt: &grove::Runtime, n: usize) -> Duration {
    rt.block_on(move || {
        let counter = Arc::new(AtomicUsize::new(0));
        let wg = grove::sync::WaitGroup::new();
        let start = Instant::now();
        wg.add(n);
        for _ in 0..n {
            let (counter, wg) = (Arc::clone(&counter), wg.clone());
            drop(grove::go(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                wg.done();
            }));
        }
        wg.wait();
        let elapsed = start.elapsed();
        check("waitgroup_fanout/grove", counter.load(Ordering::SeqCst), n);
        elapsed
    })
}

/// A wait group for OS threads: a count under a mutex, and a condition
/// variable signalled when it reaches zero.
#[derive(Default)]
struct StdWaitGroup {
    count: Mutex<usize>,
    zero: Condvar,
}

impl StdWaitGroup {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, n: usize) {
        *self.lock() += n;
    }

    fn done(&self) {
        let mut count = self.lock();
        *count -= 1;
        if *count == 0 {
            self.zero.notify_all();
        }
    }

    fn wait(&self) {
        let mut count = self.lock();
        while *count > 0 {
            count = self.zero.wait(count).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// std::thread: the calling OS thread spawns `n` OS threads and waits on a
/// mutex + condvar count (sized by the table's OS-thread row, [`crate::sizes::Sizes`]). The threads are joined
/// after the clock stops, so that none outlives the run.
pub fn std_thread(n: usize) -> Duration {
    let counter = Arc::new(AtomicUsize::new(0));
    let wg = Arc::new(StdWaitGroup::default());
    let mut handles = Vec::with_capacity(n);
    let start = Instant::now();
    wg.add(n);
    for _ in 0..n {
        let (counter, wg) = (Arc::clone(&counter), Arc::clone(&wg));
        handles.push(std::thread::spawn(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            wg.done();
        }));
    }
    wg.wait();
    let elapsed = start.elapsed();
    for h in handles {
        h.join()
            .expect("waitgroup_fanout/std_thread: a thread panicked");
    }
    check(
        "waitgroup_fanout/std_thread",
        counter.load(Ordering::SeqCst),
        n,
    );
    elapsed
}

/// A wait group for tokio tasks: a count, and a `Notify` that the last
/// `done` signals (`notify_one` keeps a permit if nobody waits yet, so
/// the wake-up cannot be lost).
#[derive(Default)]
struct TokioWaitGroup {
    count: AtomicUsize,
    zero: tokio::sync::Notify,
}

impl TokioWaitGroup {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.zero.notify_one();
        }
    }

    async fn wait(&self) {
        while self.count.load(Ordering::Acquire) > 0 {
            self.zero.notified().await;
        }
    }
}

/// tokio: a task on `rt` spawns `n` tasks and waits on an atomic count +
/// `Notify` (tokio has no wait group; its `JoinSet` would be joins).
pub fn tokio(rt: &tokio::runtime::Runtime, n: usize) -> Duration {
    rt.block_on(async move {
        tokio::spawn(async move {
            let counter = Arc::new(AtomicUsize::new(0));
            let wg = Arc::new(TokioWaitGroup::default());
            let start = Instant::now();
            wg.count.fetch_add(n, Ordering::Relaxed);
            for _ in 0..n {
                let (counter, wg) = (Arc::clone(&counter), Arc::clone(&wg));
                drop(tokio::spawn(async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                }));
            }
            wg.wait().await;
            let elapsed = start.elapsed();
            check("waitgroup_fanout/tokio", counter.load(Ordering::SeqCst), n);
            elapsed
        })
        .await
        .expect("waitgroup_fanout/tokio: the driver task panicked")
    })
}

/// may: a coroutine spawns `n` coroutines, each holding a clone of a
/// `may::sync::WaitGroup` that it drops when done, and waits on it. Call
/// [`crate::util::may_init`] first and size `n` with
/// [`crate::util::may_fit_count`]: the coroutines may all be alive at once.
pub fn may(n: usize) -> Duration {
    crate::chans::in_may(move || {
        let counter = Arc::new(AtomicUsize::new(0));
        let wg = may::sync::WaitGroup::new();
        let start = Instant::now();
        for _ in 0..n {
            let (counter, wg) = (Arc::clone(&counter), wg.clone());
            drop(may_go(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                drop(wg);
            }));
        }
        wg.wait();
        let elapsed = start.elapsed();
        check("waitgroup_fanout/may", counter.load(Ordering::SeqCst), n);
        elapsed
    })
}
