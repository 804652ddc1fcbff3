//! `parked_memory`: N tasks each blocked until released; the value is the
//! growth of the process's resident set (`/proc/self/statm`) while they
//! are all parked, divided by N, in KiB per task. Each function builds a
//! fresh runtime and trims the heap before its first reading, so memory
//! kept from earlier runs (pooled stacks, freed heap) is not counted as
//! reused; the comparison program may still prefer a fresh process per
//! measurement, as Go's twin does.
//!
//! Blocking: as in Go's twin, green threads block receiving on one shared
//! unbuffered channel, which the release closes; may coroutines park in a
//! loop on a shared flag and are unparked one by one; tokio tasks await
//! one shared `Notify`; OS threads wait on one `Condvar`.
//!
//! Every function also times the cycle (spawn until all are started, then
//! release until all are joined, both from a task of the runtime under
//! test), and panics unless every task woke.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use grove_test_support::procfs::{page_size, rss_bytes, trim_heap};
use grove_test_support::MapCountGuard;

use crate::util::{check, may_go};

/// The stack size of the OS threads (a typical small thread stack; RSS
/// counts only the pages they touch).
pub const STD_THREAD_STACK: usize = 64 * 1024;

/// What one parked-memory run measured.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    /// Tasks that were parked at once.
    pub tasks: usize,
    /// Resident set growth while they were parked, in bytes.
    pub rss_growth: i64,
    /// From the first spawn until every task had started.
    pub park: Duration,
    /// From the release until every task was joined.
    pub wake: Duration,
}

impl Parked {
    /// Resident set growth per parked task, in KiB.
    pub fn kib_per_task(&self) -> f64 {
        self.rss_growth as f64 / 1024.0 / self.tasks as f64
    }

    /// The timed part of the cycle: parking plus waking.
    pub fn elapsed(&self) -> Duration {
        self.park + self.wake
    }
}

/// How long a run waits for every task to reach its park before calling
/// the workload broken.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// Pause after every task has started, so that the last ones get from
/// their start to their park before the RSS reading.
const SETTLE: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------- grove --

/// The shared state of the parked green threads.
struct GroveGate {
    started: AtomicUsize,
    woke: AtomicUsize,
    /// The channel every green thread blocks on; the release closes it.
    release: grove::chan::Receiver<()>,
}

/// What each parked green thread does, as in Go's twin: block receiving
/// on one shared unbuffered channel, until the release closes it.
fn grove_parked_task(gate: &GroveGate) {
    gate.started.fetch_add(1, Ordering::Relaxed);
    if gate.release.recv().is_err() {
        gate.woke.fetch_add(1, Ordering::Relaxed);
    }
}

/// grove: `n` green threads, spawned by a green thread, each parked until
/// released. Where grove maps each stack on its own (kernels before 6.13,
/// or `GROVE_STACK_MODE=mappings`), 100,000 guarded stacks need about
/// 200,000 memory mappings, over the default `vm.max_map_count` of 65530:
/// this raises the limit for the run and restores it afterwards
/// ([`MapCountGuard`]), and returns
/// `Err` with the reason (the run is skipped) when it cannot.
pub fn grove(workers: usize, n: usize) -> Result<Parked, String> {
    let guard = MapCountGuard::raise_to(grove_map_count(n))
        .map_err(|err| format!("parked_memory/grove skipped: {err}"))?;
    let budget = grove::runtime::stack_budget();
    if budget < n + 64 {
        return Err(format!(
            "parked_memory/grove skipped: grove may map only {budget} stacks under \
             vm.max_map_count = {}, fewer than {n} parked green threads need",
            grove::runtime::max_map_count()
        ));
    }
    let mapped_before = grove::runtime::mapped_stacks();
    let rt = crate::util::grove_runtime(workers);
    let (release, release_rx) = grove::chan::bounded::<()>(0);
    let gate = Arc::new(GroveGate {
        started: AtomicUsize::new(0),
        woke: AtomicUsize::new(0),
        release: release_rx,
    });
    let handles = prefaulted_vec(n);

    trim_heap();
    let before = rss_bytes();
    let start = Instant::now();
    let task_gate = Arc::clone(&gate);
    let handles = rt.block_on(move || {
        let mut handles = handles;
        for _ in 0..n {
            let gate = Arc::clone(&task_gate);
            handles.push(grove::go(move || grove_parked_task(&gate)));
        }
        while task_gate.started.load(Ordering::Acquire) < n {
            grove::thread::yield_now();
        }
        handles
    });
    let park = start.elapsed();
    // Every task has started; make sure each has reached its park.
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let parked = rt
            .tasks()
            .iter()
            .filter(|t| t.state == grove::runtime::TaskState::Parked)
            .count();
        if parked >= n {
            break;
        }
        if Instant::now() > deadline {
            panic!("parked_memory/grove: only {parked} of {n} green threads parked after {SETTLE_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    trim_heap();
    let after = rss_bytes();

    // Release and join from a green thread, as the spawns were made: a
    // join from an OS thread would add an OS-level hand-off per task.
    let wake = rt.block_on(move || {
        let start = Instant::now();
        release.close();
        for h in handles {
            h.join()
                .expect("parked_memory/grove: a green thread panicked");
        }
        start.elapsed()
    });
    check("parked_memory/grove", gate.woke.load(Ordering::SeqCst), n);

    drop(rt);
    let mapped = grove::runtime::mapped_stacks();
    if mapped > mapped_before {
        eprintln!(
            "parked_memory/grove: {} stacks still mapped after the runtime was dropped",
            mapped - mapped_before
        );
    }
    // Restore vm.max_map_count (if raised) only now that the stacks are
    // unmapped.
    drop(guard);
    Ok(Parked {
        tasks: n,
        rss_growth: after as i64 - before as i64,
        park,
        wake,
    })
}

/// The `vm.max_map_count` that [`grove`] needs for `n` parked green
/// threads (two mappings per stack where each is its own mapping, few in
/// guard-region mode; and headroom).
fn grove_map_count(n: usize) -> usize {
    MapCountGuard::needed_for_stacks(n + 4096)
}

/// Whether [`grove()`] can run `n` green threads here: `Err` with the reason
/// it would be skipped (`vm.max_map_count` too low and not writable).
/// Changes nothing.
pub fn grove_can_run(n: usize) -> Result<(), String> {
    MapCountGuard::check_raise_to(grove_map_count(n))
        .map_err(|err| format!("parked_memory/grove skipped: {err}"))
}

/// A vector with room for `n` items whose pages are already resident, so
/// that filling it does not count as memory of the parked tasks.
fn prefaulted_vec<T>(n: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    let step = page_size() / std::mem::size_of::<T>().max(1);
    for slot in v.spare_capacity_mut().iter_mut().step_by(step.max(1)) {
        // SAFETY: writing zero bytes into spare capacity, which the vector
        // treats as uninitialised (its length stays 0), only faults the
        // page in; no value of T is created.
        unsafe { std::ptr::write_bytes(slot.as_mut_ptr(), 0, 1) };
    }
    v
}

// ----------------------------------------------------------- std::thread --

#[derive(Default)]
struct StdGate {
    started: usize,
    woke: usize,
    release: bool,
}

/// std::thread: `n` OS threads with [`STD_THREAD_STACK`] stacks, each
/// waiting on one `Condvar` until released (sized by the table's OS-thread row, [`crate::sizes::Sizes`]). RSS
/// does not show each thread's kernel stack (16 KiB on x86-64) nor its
/// kernel task struct.
pub fn std_thread(n: usize, stack: usize) -> Parked {
    let state = Arc::new((
        Mutex::new(StdGate::default()),
        Condvar::new(),
        Condvar::new(),
    ));
    let mut handles = prefaulted_vec(n);

    trim_heap();
    let before = rss_bytes();
    let start = Instant::now();
    for _ in 0..n {
        let state = Arc::clone(&state);
        let h = std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                let (lock, release, all_started) = &*state;
                let mut g = lock.lock().unwrap();
                g.started += 1;
                if g.started == n {
                    all_started.notify_one();
                }
                while !g.release {
                    g = release.wait(g).unwrap();
                }
                g.woke += 1;
            })
            .expect("parked_memory/std_thread: cannot spawn a thread");
        handles.push(h);
    }
    {
        let (lock, _, all_started) = &*state;
        let mut g = lock.lock().unwrap();
        while g.started < n {
            g = all_started.wait(g).unwrap();
        }
    }
    let park = start.elapsed();
    std::thread::sleep(SETTLE);
    trim_heap();
    let after = rss_bytes();

    let start = Instant::now();
    {
        let (lock, release, _) = &*state;
        lock.lock().unwrap().release = true;
        release.notify_all();
    }
    for h in handles {
        h.join()
            .expect("parked_memory/std_thread: a thread panicked");
    }
    let wake = start.elapsed();
    check("parked_memory/std_thread", state.0.lock().unwrap().woke, n);
    Parked {
        tasks: n,
        rss_growth: after as i64 - before as i64,
        park,
        wake,
    }
}

// ---------------------------------------------------------------- tokio --

/// tokio: `n` tasks, spawned by a task on a fresh multi-thread runtime,
/// each awaiting one shared `tokio::sync::Notify` (stackless: a parked
/// task is its future's state machine and the task header).
pub fn tokio(workers: usize, n: usize) -> Parked {
    let rt = crate::util::tokio_multi_thread(workers);
    let notify = Arc::new(tokio::sync::Notify::new());
    let started = Arc::new(AtomicUsize::new(0));
    let woke = Arc::new(AtomicUsize::new(0));
    let handles = prefaulted_vec(n);

    trim_heap();
    let before = rss_bytes();
    let start = Instant::now();
    let (task_notify, task_started, task_woke) =
        (Arc::clone(&notify), Arc::clone(&started), Arc::clone(&woke));
    let handles = rt.block_on(async move {
        tokio::spawn(async move {
            let mut handles = handles;
            for _ in 0..n {
                let (notify, started, woke) = (
                    Arc::clone(&task_notify),
                    Arc::clone(&task_started),
                    Arc::clone(&task_woke),
                );
                handles.push(tokio::spawn(async move {
                    // Registered from here on: notify_waiters wakes it even
                    // before its first poll.
                    let notified = notify.notified();
                    started.fetch_add(1, Ordering::Relaxed);
                    notified.await;
                    woke.fetch_add(1, Ordering::Relaxed);
                }));
            }
            while task_started.load(Ordering::Acquire) < n {
                tokio::task::yield_now().await;
            }
            handles
        })
        .await
        .expect("parked_memory/tokio: the driver task panicked")
    });
    let park = start.elapsed();
    std::thread::sleep(SETTLE);
    trim_heap();
    let after = rss_bytes();

    let wake = rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            notify.notify_waiters();
            for h in handles {
                h.await.expect("parked_memory/tokio: a task panicked");
            }
            start.elapsed()
        })
        .await
        .expect("parked_memory/tokio: the driver task panicked")
    });
    check("parked_memory/tokio", woke.load(Ordering::SeqCst), n);
    Parked {
        tasks: n,
        rss_growth: after as i64 - before as i64,
        park,
        wake,
    }
}

// ------------------------------------------------------------------ may --

/// may: `n` coroutines, spawned by a coroutine, each parked in a loop on a
/// flag until released. Call [`crate::util::may_init`] first and size `n`
/// with [`crate::util::may_fit_count`] (100,000 do not fit at the default
/// `vm.max_map_count`). may keeps up to 1,000 finished coroutines pooled
/// with their stacks resident; those are reused, not counted.
pub fn may(n: usize) -> Parked {
    let started = Arc::new(AtomicUsize::new(0));
    let woke = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let handles = prefaulted_vec(n);

    trim_heap();
    let before = rss_bytes();
    let start = Instant::now();
    let (task_started, task_woke, task_release) = (
        Arc::clone(&started),
        Arc::clone(&woke),
        Arc::clone(&release),
    );
    let handles = may_go(move || {
        let mut handles = handles;
        for _ in 0..n {
            let (started, woke, release) = (
                Arc::clone(&task_started),
                Arc::clone(&task_woke),
                Arc::clone(&task_release),
            );
            handles.push(may_go(move || {
                started.fetch_add(1, Ordering::Relaxed);
                while !release.load(Ordering::Acquire) {
                    may::coroutine::park();
                }
                woke.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while task_started.load(Ordering::Acquire) < n {
            may::coroutine::yield_now();
        }
        handles
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    let park = start.elapsed();
    std::thread::sleep(SETTLE);
    trim_heap();
    let after = rss_bytes();

    let task_release = Arc::clone(&release);
    let wake = may_go(move || {
        let start = Instant::now();
        task_release.store(true, Ordering::Release);
        for h in &handles {
            h.coroutine().unpark();
        }
        for h in handles {
            h.join().expect("parked_memory/may: a coroutine panicked");
        }
        start.elapsed()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    check("parked_memory/may", woke.load(Ordering::SeqCst), n);
    Parked {
        tasks: n,
        rss_growth: after as i64 - before as i64,
        park,
        wake,
    }
}
