//! Placement: `thread::Builder::on_worker(i)` starts a green thread on
//! worker `i`, where it stays (it is never stolen), and
//! `thread::current_worker()` says where the caller runs.

#[path = "common/base.rs"]
mod base;

use std::io::ErrorKind;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base::{for_each_workers, runtime, watchdog};
use grove::thread::{self, Builder};

#[test]
fn a_green_thread_starts_and_stays_on_its_worker() {
    for_each_workers(|n| {
        let rt = runtime(n);
        let seen = rt.block_on(move || {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    Builder::new()
                        .on_worker(i)
                        .spawn(move || {
                            let os = std::thread::current().id();
                            let mut places = Vec::new();
                            for round in 0..20 {
                                places.push(thread::current_worker());
                                if round % 2 == 0 {
                                    thread::yield_now();
                                } else {
                                    thread::sleep(Duration::from_micros(50));
                                }
                                assert_eq!(std::thread::current().id(), os);
                            }
                            (i, places)
                        })
                        .unwrap()
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (i, places) in seen {
            assert!(
                places.iter().all(|&p| p == Some(i)),
                "{n} workers: pinned to {i}, ran on {places:?}"
            );
        }
    });
}

/// Pinned green threads spawned while their worker is busy wait for it:
/// an idle worker never steals them.
#[test]
fn pinned_green_threads_are_never_stolen() {
    watchdog(|| {
        let rt = runtime(2);
        let places = rt.block_on(|| {
            // Keep worker 0 busy while the spawns happen.
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let busy = Builder::new()
                .on_worker(0)
                .spawn(move || {
                    let _ = go_rx.recv_timeout(Duration::from_secs(10));
                    let until = Instant::now() + Duration::from_millis(20);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                })
                .unwrap();
            let pinned: Vec<_> = (0..200)
                .map(|_| {
                    Builder::new()
                        .on_worker(0)
                        .spawn(thread::current_worker)
                        .unwrap()
                })
                .collect();
            go_tx.send(()).unwrap();
            busy.join().unwrap();
            pinned
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(places.len(), 200);
        assert!(places.iter().all(|&p| p == Some(0)), "{places:?}");
    });
}

/// In a runtime that migrates green threads (`full_migration`), a green
/// thread spawned `on_worker(i)` still stays on worker `i`: two such,
/// pinned to different workers, hand a value back and forth through
/// unbuffered channels, each waking the other, and every wake-up finds
/// each where it was pinned. Before, a woken green thread ran on its
/// waker's worker like any other there, and half the checks failed.
#[test]
fn pinned_green_threads_stay_home_in_a_migrating_runtime() {
    const ROUNDS: u32 = 2_000;
    watchdog(|| {
        // SAFETY: `full_migration`'s contract: the green threads below hold
        // no thread-local reference and no value that is not `Send` across
        // a blocking call (channel ends and integers only).
        let rt = unsafe { grove::runtime::Builder::new().full_migration(true) }
            .workers(2)
            .build()
            .unwrap();
        let (ping_tx, ping_rx) = grove::chan::bounded::<u32>(0);
        let (pong_tx, pong_rx) = grove::chan::bounded::<u32>(0);
        let pinger = Builder::new()
            .on_worker(0)
            .spawn_on(&rt, move || {
                let mut away = 0;
                for i in 0..ROUNDS {
                    ping_tx.send(i).unwrap();
                    away += u32::from(thread::current_worker() != Some(0));
                    assert_eq!(pong_rx.recv().unwrap(), i);
                    away += u32::from(thread::current_worker() != Some(0));
                }
                away
            })
            .unwrap();
        let ponger = Builder::new()
            .on_worker(1)
            .spawn_on(&rt, move || {
                let mut away = 0;
                for i in 0..ROUNDS {
                    assert_eq!(ping_rx.recv().unwrap(), i);
                    away += u32::from(thread::current_worker() != Some(1));
                    pong_tx.send(i).unwrap();
                    away += u32::from(thread::current_worker() != Some(1));
                }
                away
            })
            .unwrap();
        let away = (pinger.join().unwrap(), ponger.join().unwrap());
        assert_eq!(
            away,
            (0, 0),
            "checks off their worker, of {} each",
            2 * ROUNDS
        );
    });
}

#[test]
fn a_worker_index_past_the_last_is_refused() {
    let rt = runtime(2);
    let err = Builder::new()
        .on_worker(2)
        .spawn_on(&rt, || ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("on_worker(2)"), "{err}");
    let err = rt.block_on(|| {
        Builder::new()
            .on_worker(usize::MAX)
            .spawn(|| ())
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // The runtime is unharmed.
    assert_eq!(rt.block_on(|| 5), 5);
}

#[test]
fn current_worker_is_none_on_an_os_thread() {
    assert_eq!(thread::current_worker(), None);
    let rt = runtime(3);
    let w = rt.block_on(thread::current_worker);
    assert!(matches!(w, Some(0..=2)), "{w:?}");
}

/// A scoped green thread may be pinned too, and borrows as any other.
#[test]
fn scoped_green_threads_can_be_pinned() {
    let rt = runtime(2);
    let (a, b) = rt.block_on(|| {
        let mut a = 0;
        let mut b = 0;
        thread::scope(|s| {
            Builder::new()
                .on_worker(1)
                .spawn_scoped(s, || a = thread::current_worker().unwrap() + 10)
                .unwrap();
            Builder::new()
                .on_worker(0)
                .spawn_scoped(s, || b = thread::current_worker().unwrap() + 20)
                .unwrap();
        });
        (a, b)
    });
    assert_eq!((a, b), (11, 20));
}
