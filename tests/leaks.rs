//! Creating and dropping a runtime over and over, each time with green
//! threads parked on every kind of thing (channels, locks, sleeps, timers,
//! selects, contexts, joins...), leaves nothing behind: no thread, no stack
//! mapping, no file descriptor, no heap or RSS growth. Every parked green
//! thread is unwound (its destructors run) and the channel ends it held are
//! released.
//!
//! 1,000 rounds, in debug builds too (about 4 s there: fewer are not
//! needed), after 20 warm-up rounds that let the allocator, glibc's thread
//! stack cache and crossbeam's epoch collector reach their steady state.
//! Measured: lines of `/proc/self/maps`, entries of `/proc/self/task` and
//! `/proc/self/fd`, `VmRSS`, live heap bytes (a counting global allocator)
//! and `grove::runtime::mapped_stacks()`.
//!
//! The process-wide numbers would be disturbed by any other test running at
//! the same time, so this binary holds this one test only.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
#[path = "common/rel_util.rs"]
mod rel_util;

use std::sync::Arc;
use std::time::{Duration, Instant};

use grove::chan;
use grove::context::Context;
use grove::runtime::mapped_stacks;
use grove::sync::{Barrier, Condvar, Mutex, RwLock, Semaphore, WaitGroup};
use grove::thread::{self, JoinHandle};
use grove::{select, Runtime};
use rel_util::{wait_parked, watchdog_for, DropCounter, Tracked};

// ---------------------------------------------------------------------------
// What the process holds.

#[derive(Clone, Copy, Debug)]
struct Footprint {
    maps: usize,
    threads: usize,
    fds: usize,
    rss_kib: usize,
    heap: isize,
    stacks: usize,
}

fn count_lines(path: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
        .lines()
        .count()
}

fn count_entries(path: &str) -> usize {
    std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("listing {path}: {e}"))
        .count()
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn footprint() -> Footprint {
    // Each reading allocates and frees its own buffers; the heap count is
    // taken last, once they are gone.
    let maps = count_lines("/proc/self/maps");
    let threads = count_entries("/proc/self/task");
    let fds = count_entries("/proc/self/fd");
    let rss_kib = rss_kib();
    Footprint {
        maps,
        threads,
        fds,
        rss_kib,
        heap: counting_alloc::live_bytes(),
        stacks: mapped_stacks(),
    }
}

// ---------------------------------------------------------------------------
// One round: a runtime with green threads parked on everything, dropped.

const ROUNDS: usize = 1000;
const WARM_UP: usize = 20;

/// Allowed growth once warm: a few mappings (glibc creates a malloc arena,
/// two mappings, when threads contend, up to 8 per core, so one may come
/// late), a little heap for lazily grown caches (crossbeam's epoch bags:
/// measured, the live heap settles about 20 KB above its warm-up value) and
/// some RSS for the allocator's fragmentation (measured: +150 KiB). A leak
/// of one stack (two mappings and its pages; `mapped_stacks` is checked
/// exactly anyway), one green thread or one channel per round exceeds them
/// by far.
const MAPS_SLACK: usize = 8;
const HEAP_SLACK: isize = 64 * 1024;
const RSS_SLACK_KIB: usize = 4 * 1024;

/// Ends held outside the runtime, to check after the drop what the
/// unwound green threads released.
struct Outside {
    /// Its only receiver was parked in a green thread.
    recv_side: chan::Sender<u32>,
    /// Its only sender was parked in a green thread, on a full buffer.
    send_side: chan::Receiver<u32>,
    /// Kept open so that the green threads parked on them stay parked.
    _hold: (chan::Sender<()>, chan::Sender<u32>),
}

/// Spawns green threads that each park on a different kind of thing, all
/// holding a `Tracked`; returns how many.
fn park_everything(rt: &Runtime, drops: &DropCounter) -> (usize, Outside) {
    let (recv_side, rx0) = chan::bounded::<u32>(0);
    let (tx1, send_side) = chan::bounded::<u32>(1);
    tx1.try_send(1).unwrap(); // full
    let (_keep_unbounded, rx_unbounded) = chan::unbounded::<u32>();
    let lock = Arc::new(Mutex::new(0u32));
    let rw = Arc::new(RwLock::new(0u32));
    let cv = Arc::new((Mutex::new(false), Condvar::new()));
    let sem = Arc::new(Semaphore::new(0));
    let wg = WaitGroup::new();
    wg.add(1);
    let barrier = Arc::new(Barrier::new(3));
    let (ctx, _cancel) = Context::background().with_cancel();
    let (hold_tx, hold_rx) = chan::bounded::<()>(0);

    let mut spawned = 0;
    let mut go = |f: Box<dyn FnOnce() + Send>| -> JoinHandle<()> {
        let guard: Tracked = drops.track();
        spawned += 1;
        rt.spawn(move || {
            let _guard = guard;
            f();
        })
    };
    // The lock holders park (on a channel) while holding, so the lockers
    // behind them park on the locks.
    {
        let (lock, hold_rx) = (lock.clone(), hold_rx.clone());
        go(Box::new(move || {
            let _held = lock.lock().unwrap();
            let _ = hold_rx.recv();
        }));
    }
    {
        let (rw, hold_rx) = (rw.clone(), hold_rx.clone());
        go(Box::new(move || {
            let _read = rw.read().unwrap();
            let _ = hold_rx.recv();
        }));
    }
    // Spawns run newest first: make sure the locks are held before the
    // lockers come.
    wait_parked(rt, 2);
    go(Box::new(move || {
        let _ = rx0.recv();
    }));
    go(Box::new(move || {
        let _ = tx1.send(2);
    }));
    go(Box::new(move || {
        let _ = rx_unbounded.recv();
    }));
    {
        let lock = lock.clone();
        go(Box::new(move || *lock.lock().unwrap() += 1));
    }
    {
        let rw = rw.clone();
        go(Box::new(move || *rw.write().unwrap() += 1));
    }
    {
        let cv = cv.clone();
        go(Box::new(move || {
            let guard = cv.0.lock().unwrap();
            let _guard = cv.1.wait_while(guard, |ready| !*ready).unwrap();
        }));
    }
    {
        let sem = sem.clone();
        go(Box::new(move || drop(sem.acquire())));
    }
    {
        let wg = wg.clone();
        go(Box::new(move || wg.wait()));
    }
    {
        let barrier = barrier.clone();
        go(Box::new(move || {
            barrier.wait();
        }));
    }
    go(Box::new(|| thread::sleep(Duration::from_secs(3600))));
    go(Box::new(thread::park));
    go(Box::new(|| {
        let _ = chan::tick(Duration::from_secs(3600)).recv();
    }));
    {
        let ctx = ctx.clone();
        go(Box::new(move || {
            let _ = ctx.done().recv();
        }));
    }
    {
        let hold_rx = hold_rx.clone();
        go(Box::new(move || {
            let never = chan::never::<u32>();
            select! {
                recv(never) -> _ => (),
                recv(hold_rx) -> _ => (),
                recv(chan::after(Duration::from_secs(3600))) -> _ => (),
            }
        }));
    }
    {
        // A green thread joining a parked one (which is counted too).
        let hold_rx = hold_rx.clone();
        let inner = go(Box::new(move || {
            let _ = hold_rx.recv();
        }));
        go(Box::new(move || {
            let _ = inner.join();
        }));
    }
    drop(hold_rx);
    (
        spawned,
        Outside {
            recv_side,
            send_side,
            _hold: (hold_tx, _keep_unbounded),
        },
    )
}

fn round(index: usize, drops: &DropCounter) {
    let workers = 1 + index % 4;
    let rt = Runtime::builder().workers(workers).build().unwrap();
    let before = drops.dropped();
    let (parked, outside) = park_everything(&rt, drops);
    wait_parked(&rt, parked);
    assert_eq!(
        drops.dropped(),
        before,
        "round {index}: nothing ran to completion"
    );
    if index % 2 == 0 {
        let report = rt.shutdown();
        assert_eq!(report.leaked().len(), parked, "round {index}: {report}");
    } else {
        drop(rt);
    }
    assert_eq!(
        drops.dropped() - before,
        parked,
        "round {index}: every parked green thread was unwound"
    );
    // The unwound green threads released their channel ends.
    assert_eq!(
        outside.recv_side.try_send(9),
        Err(chan::TrySendError::Disconnected(9))
    );
    assert_eq!(outside.send_side.try_recv(), Ok(1));
    assert_eq!(
        outside.send_side.try_recv(),
        Err(chan::TryRecvError::Disconnected)
    );
}

#[test]
fn dropping_runtimes_with_parked_green_threads_leaks_nothing() {
    // About 4 s in a debug build; the limit is generous.
    watchdog_for(Duration::from_secs(120), || {
        let stacks_at_start = mapped_stacks();
        let drops = DropCounter::new();
        let start = Instant::now();
        for i in 0..WARM_UP {
            round(i, &drops);
            assert_eq!(mapped_stacks(), stacks_at_start, "warm-up round {i}");
        }
        let warm = footprint();
        let mut samples = vec![warm];
        for i in WARM_UP..WARM_UP + ROUNDS {
            round(i, &drops);
            // Stacks are counted exactly: back to the start after each round.
            assert_eq!(mapped_stacks(), stacks_at_start, "round {i}");
            if (i - WARM_UP + 1) % (ROUNDS / 4) == 0 {
                samples.push(footprint());
            }
        }
        let end = footprint();
        let elapsed = start.elapsed();
        eprintln!("{ROUNDS} rounds (+{WARM_UP} warm-up) in {elapsed:.2?}");
        eprintln!("after round   maps  threads  fds  rss KiB  heap bytes  stacks");
        for (k, f) in samples.iter().enumerate() {
            eprintln!(
                "{:>11} {:>6} {:>8} {:>4} {:>8} {:>11} {:>7}",
                WARM_UP + k * ROUNDS / 4,
                f.maps,
                f.threads,
                f.fds,
                f.rss_kib,
                f.heap,
                f.stacks
            );
        }
        assert_eq!(
            end.threads, warm.threads,
            "threads left behind: {end:?} vs {warm:?}"
        );
        assert_eq!(
            end.fds, warm.fds,
            "file descriptors left open: {end:?} vs {warm:?}"
        );
        assert_eq!(end.stacks, stacks_at_start, "{end:?}");
        assert!(
            end.maps <= warm.maps + MAPS_SLACK,
            "memory mappings grew from {} to {}",
            warm.maps,
            end.maps
        );
        assert!(
            end.heap <= warm.heap + HEAP_SLACK,
            "live heap grew by {} bytes over {ROUNDS} rounds ({} per round)",
            end.heap - warm.heap,
            (end.heap - warm.heap) / ROUNDS as isize
        );
        assert!(
            end.rss_kib <= warm.rss_kib + RSS_SLACK_KIB,
            "RSS grew from {} KiB to {} KiB",
            warm.rss_kib,
            end.rss_kib
        );
    });
}
