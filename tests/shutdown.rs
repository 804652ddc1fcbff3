//! Dropping a `Runtime` (its shutdown protocol, `scheduler.rs` steps 1-4):
//! green threads still blocked are unwound on their own worker before
//! `drop` returns, unstarted ones are dropped unrun, their `join` returns
//! `Err`, and nothing leaks: every captured value is dropped exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::ThreadId as OsThreadId;
use std::time::Duration;

use common::{runtime, sweep_workers, wait_until, watchdog, Latch};
use grove::thread::{self, JoinHandle};
use grove::Runtime;

thread_local! {
    /// The OS thread this code runs on, fixed at first access.
    static OS_THREAD: OsThreadId = std::thread::current().id();
}

fn os_thread() -> OsThreadId {
    OS_THREAD.with(|id| *id)
}

/// What the guards of one test saw.
#[derive(Default)]
struct DropLog {
    dropped: AtomicUsize,
    /// Guards dropped on another OS thread than the one their green thread
    /// last ran on.
    moved: AtomicUsize,
}

/// Captured by (or created in) a green thread; counts its drop and checks
/// the OS thread it is dropped on.
struct Guard {
    log: Arc<DropLog>,
    ran_on: Option<OsThreadId>,
}

impl Guard {
    fn new(log: &Arc<DropLog>) -> Guard {
        Guard {
            log: log.clone(),
            ran_on: None,
        }
    }

    /// Records the OS thread the green thread runs on now.
    fn here(&mut self) {
        self.ran_on = Some(os_thread());
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.ran_on.is_some_and(|t| t != os_thread()) {
            self.log.moved.fetch_add(1, Ordering::Relaxed);
        }
        self.log.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a green thread of the unwinding test blocks forever.
fn block_forever(kind: usize, guard: &mut Guard, log: &Arc<DropLog>, started: &Arc<Latch>) {
    match kind {
        0 => loop {
            guard.here();
            thread::park();
        },
        1 => loop {
            guard.here();
            thread::park_timeout(Duration::from_secs(3600));
        },
        2 => {
            guard.here();
            thread::sleep(Duration::from_secs(3600));
            unreachable!("slept for an hour");
        }
        3 => {
            // Joins a green thread that itself parks forever.
            let (log, started) = (log.clone(), started.clone());
            let inner = thread::spawn(move || {
                let mut guard = Guard::new(&log);
                guard.here();
                started.count_down();
                loop {
                    guard.here();
                    thread::park();
                }
            });
            guard.here();
            let _ = inner.join();
            unreachable!("joined a green thread that never ends");
        }
        _ => loop {
            guard.here();
            thread::yield_now();
        },
    }
}

#[test]
fn shutdown_unwinds_parked_tasks_on_their_own_workers() {
    const TASKS: usize = 50;
    const KINDS: usize = 5;
    // Kind 3 adds an inner green thread.
    const GUARDS: usize = TASKS + TASKS / KINDS;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let log = Arc::new(DropLog::default());
            let started = Latch::new(GUARDS);
            let mut handles: Vec<JoinHandle<()>> = (0..TASKS)
                .map(|i| {
                    let (log, started) = (log.clone(), started.clone());
                    rt.spawn(move || {
                        let mut guard = Guard::new(&log);
                        guard.here();
                        started.count_down();
                        block_forever(i % KINDS, &mut guard, &log, &started);
                    })
                })
                .collect();
            started.wait();
            // Half of them are detached: they must be unwound all the same.
            let detached = handles.split_off(TASKS / 2);
            drop(detached);
            assert_eq!(log.dropped.load(Ordering::Relaxed), 0);

            drop(rt);

            assert_eq!(log.dropped.load(Ordering::Relaxed), GUARDS);
            assert_eq!(
                log.moved.load(Ordering::Relaxed),
                0,
                "a guard was dropped on another OS thread than its green thread's"
            );
            for h in handles {
                assert!(h.is_finished());
                assert!(h.join().is_err(), "an unwound green thread joined Ok");
            }
        });
    });
}

#[test]
fn stats_show_nothing_live_once_all_finished() {
    const PARKED: usize = 10;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let started = Latch::new(PARKED);
            let release = Arc::new(AtomicUsize::new(0));
            let parked: Vec<_> = (0..PARKED)
                .map(|_| {
                    let (started, release) = (started.clone(), release.clone());
                    rt.spawn(move || {
                        started.count_down();
                        while release.load(Ordering::Acquire) == 0 {
                            thread::park();
                        }
                    })
                })
                .collect();
            started.wait();
            let stats = rt.stats();
            assert_eq!(stats.workers, n);
            assert_eq!(stats.live, PARKED as u64, "{stats:?}");
            assert_eq!(stats.live_stacks, PARKED, "{stats:?}");

            let busy: Vec<_> = (0..1000u64)
                .map(|i| {
                    rt.spawn(move || {
                        match i % 3 {
                            0 => thread::yield_now(),
                            1 => thread::park_timeout(Duration::from_micros(1)),
                            _ => {}
                        }
                        i
                    })
                })
                .collect();
            let sum: u64 = busy.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, 999 * 1000 / 2);
            release.store(1, Ordering::Release);
            for h in parked {
                h.thread().unpark();
                h.join().unwrap();
            }

            // Counters are per worker and summed when read; a join may
            // return a moment before its worker counts the completion.
            wait_until("stats to show nothing live", || {
                let s = rt.stats();
                s.live == 0 && s.live_stacks == 0
            });
            let stats = rt.stats();
            assert_eq!(stats.spawned, 1000 + PARKED as u64, "{stats:?}");
            assert_eq!(stats.completed, stats.spawned, "{stats:?}");
            assert!(stats.mapped_stacks >= stats.pooled_stacks, "{stats:?}");
            assert!(rt.tasks().is_empty(), "{:?}", rt.tasks());
        });
    });
}

#[test]
fn shutdown_drops_unstarted_tasks_unrun() {
    const CHILDREN: usize = 20;
    watchdog(|| {
        sweep_workers(|n| {
            // Two stacks: one for the spawner, one for the first child to
            // start. Both park forever, so every other child stays queued
            // until the drop. On one worker no child can start while the
            // spawner runs, so all 20 spawns succeed; with more workers a
            // child may take the second stack early, and the spawns after
            // that are refused (their closures, guard included, are dropped
            // at once).
            let rt = Runtime::builder().workers(n).max_stacks(2).build().unwrap();
            let log = Arc::new(DropLog::default());
            let ran = Arc::new(AtomicUsize::new(0));
            let queued = Arc::new(AtomicUsize::new(0));
            let spawned_all = Latch::new(1);
            let spawner = {
                let (log, ran, queued) = (log.clone(), ran.clone(), queued.clone());
                let spawned_all = spawned_all.clone();
                rt.spawn(move || {
                    let mut children = Vec::new();
                    for _ in 0..CHILDREN {
                        let guard = Guard::new(&log);
                        let ran = ran.clone();
                        let spawned = thread::Builder::new().spawn(move || {
                            let _guard = guard;
                            ran.fetch_add(1, Ordering::SeqCst);
                            loop {
                                thread::park();
                            }
                        });
                        match spawned {
                            Ok(child) => children.push(child),
                            Err(err) => {
                                assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
                                break;
                            }
                        }
                    }
                    queued.store(children.len(), Ordering::SeqCst);
                    spawned_all.count_down();
                    loop {
                        thread::park();
                    }
                })
            };
            spawned_all.wait();
            wait_until("one child to start", || ran.load(Ordering::SeqCst) == 1);
            let queued = queued.load(Ordering::SeqCst);
            if n == 1 {
                assert_eq!(queued, CHILDREN);
            }
            assert!(queued >= 1);

            drop(rt);

            assert_eq!(ran.load(Ordering::SeqCst), 1, "a child without a stack ran");
            let created = (queued + 1).min(CHILDREN);
            assert_eq!(log.dropped.load(Ordering::Relaxed), created);
            assert!(spawner.join().is_err());
        });
    });
}

#[test]
fn drop_right_after_spawning_loses_and_duplicates_nothing() {
    const TASKS: usize = 300;
    const ROUNDS: usize = 10;
    watchdog(|| {
        sweep_workers(|n| {
            for _ in 0..ROUNDS {
                let rt = runtime(n);
                let log = Arc::new(DropLog::default());
                let ran = Arc::new(AtomicUsize::new(0));
                let handles: Vec<_> = (0..TASKS)
                    .map(|i| {
                        let mut guard = Guard::new(&log);
                        let ran = ran.clone();
                        rt.spawn(move || {
                            guard.here();
                            ran.fetch_add(1, Ordering::Relaxed);
                            thread::yield_now();
                            guard.here();
                            i
                        })
                    })
                    .collect();
                drop(rt);
                assert_eq!(log.dropped.load(Ordering::Relaxed), TASKS);
                assert_eq!(log.moved.load(Ordering::Relaxed), 0);
                let mut finished = 0;
                for (i, h) in handles.into_iter().enumerate() {
                    assert!(h.is_finished());
                    if let Ok(v) = h.join() {
                        assert_eq!(v, i);
                        finished += 1;
                    }
                }
                assert!(finished <= ran.load(Ordering::Relaxed));
            }
        });
    });
}

#[test]
fn destructors_may_spawn_and_sleep_during_shutdown() {
    /// At its drop (the forced unwind), sleeps and spawns a green thread
    /// that captures another guard.
    struct Busy {
        log: Arc<DropLog>,
        spawned: Arc<AtomicUsize>,
    }
    impl Drop for Busy {
        fn drop(&mut self) {
            thread::sleep(Duration::from_millis(1));
            let late = Guard::new(&self.log);
            let spawned = self.spawned.clone();
            let _detached = grove::go(move || {
                spawned.fetch_add(1, Ordering::Relaxed);
                drop(late);
            });
            self.log.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    const TASKS: usize = 8;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let log = Arc::new(DropLog::default());
            let spawned = Arc::new(AtomicUsize::new(0));
            let started = Latch::new(TASKS);
            for _ in 0..TASKS {
                let busy = Busy {
                    log: log.clone(),
                    spawned: spawned.clone(),
                };
                let started = started.clone();
                // Detached on purpose.
                let _ = rt.spawn(move || {
                    let _busy = busy;
                    started.count_down();
                    loop {
                        thread::park();
                    }
                });
            }
            started.wait();
            drop(rt);
            // Each Busy and each late guard: whether the late green thread
            // ran or was dropped unrun, its guard is gone.
            assert_eq!(log.dropped.load(Ordering::Relaxed), 2 * TASKS);
            assert!(spawned.load(Ordering::Relaxed) <= TASKS);
        });
    });
}

/// Counts into a counter borrowed from the scope's owner when dropped.
struct CountsInto<'a>(&'a AtomicUsize);

impl Drop for CountsInto<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Reports, when the scope's owner is unwound, how many scoped threads had
/// been unwound before it.
struct ReportsCount<'a>(&'a AtomicUsize, Arc<AtomicUsize>);

impl Drop for ReportsCount<'_> {
    fn drop(&mut self) {
        self.1
            .store(self.0.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Drops runtimes while a scope's owner is parked, with scoped green
/// threads parked forever whose guards write into the owner's stack frame
/// as they unwind: the owner must be unwound after all of them. It is
/// spawned from a green thread so that it and its scoped threads land on
/// any worker. It parks in the scope's own wait, or (`inside`) on a
/// channel inside the scope's closure, where `scope` catches its unwind
/// as it catches any panic of its closure.
fn scoped_threads_unwind_before_their_owner(inside: bool) {
    const SCOPED: usize = 3;
    watchdog(move || {
        sweep_workers(|n| {
            for round in 0..20 {
                let rt = runtime(n);
                let seen = Arc::new(AtomicUsize::new(usize::MAX));
                let started = Latch::new(SCOPED + usize::from(inside));
                let (seen2, started2) = (seen.clone(), started.clone());
                let (_never_tx, never_rx) = grove::chan::bounded::<()>(0);
                rt.block_on(move || {
                    drop(thread::spawn(move || {
                        let unwound = AtomicUsize::new(0);
                        let _report = ReportsCount(&unwound, seen2);
                        thread::scope(|s| {
                            for _ in 0..SCOPED {
                                let (unwound, started) = (&unwound, started2.clone());
                                s.spawn(move || {
                                    let _guard = CountsInto(unwound);
                                    started.count_down();
                                    loop {
                                        thread::park();
                                    }
                                });
                            }
                            if inside {
                                started2.count_down();
                                let _ = never_rx.recv();
                            }
                        });
                        unreachable!("the scoped threads never end, nobody sends");
                    }));
                });
                started.wait();
                drop(rt);
                assert_eq!(
                    seen.load(Ordering::SeqCst),
                    SCOPED,
                    "{n} workers, round {round}: the scope's owner was unwound before its scoped threads"
                );
            }
        });
    });
}

#[test]
fn shutdown_unwinds_scoped_threads_before_their_scope() {
    scoped_threads_unwind_before_their_owner(false);
}

#[test]
fn shutdown_unwinds_scoped_threads_before_an_owner_blocked_in_its_scope() {
    // It used to hang: the owner blocked its worker while unwinding.
    scoped_threads_unwind_before_their_owner(true);
}

#[test]
fn dropping_an_idle_runtime_returns() {
    watchdog(|| {
        sweep_workers(|n| {
            drop(runtime(n));
            let rt = runtime(n);
            assert_eq!(rt.block_on(|| 1), 1);
            drop(rt);
        });
    });
}
