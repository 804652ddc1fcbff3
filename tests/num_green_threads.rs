//! `grove::runtime::num_green_threads()`, Go's `runtime.NumGoroutine()`:
//! exact counts of a runtime's live green threads (parked, queued and the
//! caller) as they are spawned and finish, 1 to 8 workers; and the global
//! runtime's count from a plain OS thread. Only one test here touches the
//! global runtime, so its count is exact too.

#[path = "common/sync_util.rs"]
mod sync_util;

use grove::chan;
use grove::runtime::num_green_threads;
use sync_util::{for_each_workers, runtime, wait_until, watchdog};

/// Spawns `n` green threads that park until `release` closes.
fn parked(n: usize, release: &chan::Receiver<()>) -> Vec<grove::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let release = release.clone();
            grove::go(move || {
                let _ = release.recv();
            })
        })
        .collect()
}

#[test]
fn counts_the_live_green_threads_of_the_callers_runtime() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let counts = rt.block_on(|| {
            let mut counts = vec![num_green_threads()]; // just this one
            let (tx, rx) = chan::bounded::<()>(0);
            let first = parked(100, &rx);
            counts.push(num_green_threads());
            let second = parked(50, &rx);
            counts.push(num_green_threads());
            drop(tx);
            for h in first.into_iter().chain(second) {
                h.join().unwrap();
            }
            counts.push(num_green_threads());
            counts
        });
        assert_eq!(counts, [1, 101, 151, 1]);
        assert_eq!(rt.stats().live, 0);
    });
}

/// Two runtimes: each green thread counts its own runtime's only.
#[test]
fn each_runtime_counts_its_own() {
    watchdog(|| {
        let (a, b) = (runtime(2), runtime(1));
        let (tx, rx) = chan::bounded::<()>(0);
        let in_a = {
            let rx = rx.clone();
            a.block_on(move || parked(30, &rx))
        };
        let in_b = {
            let rx = rx.clone();
            b.block_on(move || parked(7, &rx))
        };
        assert_eq!(a.block_on(num_green_threads), 31);
        assert_eq!(b.block_on(num_green_threads), 8);
        drop(tx);
        in_a.into_iter().chain(in_b).for_each(|h| h.join().unwrap());
        assert_eq!(a.block_on(num_green_threads), 1);
    });
}

/// From a plain OS thread: the global runtime's green threads.
#[test]
fn from_an_os_thread_counts_the_global_runtime() {
    watchdog(|| {
        let before = num_green_threads();
        assert_eq!(
            before, 0,
            "nothing else in this binary uses the global runtime"
        );
        let (tx, rx) = chan::bounded::<()>(0);
        let handles = parked(40, &rx);
        assert_eq!(num_green_threads(), 40);
        drop(tx);
        handles.into_iter().for_each(|h| h.join().unwrap());
        wait_until("the count to drop", || num_green_threads() == 0);
        assert_eq!(num_green_threads(), 0);
    });
}
