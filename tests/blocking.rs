//! `grove::blocking`: a blocking call runs on the runtime's blocking pool
//! while the calling green thread parks and its worker runs others; the
//! call may borrow from the caller, its panic is resumed in the caller, a
//! plain OS thread runs it inline, the pool never exceeds its limit, and a
//! runtime's shutdown waits for calls in flight before it unwinds their
//! callers.

#[path = "common/base.rs"]
mod base;

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use base::{expect_panic, for_each_workers, runtime, watchdog};
use grove::{chan, thread, Runtime};

#[test]
fn a_blocking_call_returns_its_value_and_may_borrow() {
    for_each_workers(|n| {
        let rt = runtime(n);
        let total = rt.block_on(|| {
            let words = ["a".to_string(), "bb".to_string(), "ccc".to_string()];
            let mut lengths = Vec::new();
            // Borrows `words` and mutates `lengths` on the caller's stack.
            let sum = grove::blocking(|| {
                lengths.extend(words.iter().map(String::len));
                lengths.iter().sum::<usize>()
            });
            assert_eq!(lengths, [1, 2, 3]);
            sum
        });
        assert_eq!(total, 6, "{n} workers");
    });
}

/// The worker is free while the call blocks: on one worker, a call that
/// waits for a message only another green thread of that worker sends
/// completes (it would deadlock if the call held the worker).
#[test]
fn the_worker_runs_other_green_threads_meanwhile() {
    watchdog(|| {
        let rt = runtime(1);
        let got = rt.block_on(|| {
            let (tx, rx) = mpsc::channel::<u32>();
            let sender = thread::spawn(move || {
                for i in 0..10 {
                    tx.send(i).unwrap();
                    thread::yield_now();
                }
            });
            let got: Vec<u32> = grove::blocking(move || rx.iter().take(10).collect());
            sender.join().unwrap();
            got
        });
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn a_panic_in_the_call_is_resumed_in_the_caller() {
    for_each_workers(|n| {
        let rt = runtime(n);
        let message = rt.block_on(|| {
            expect_panic(|| grove::blocking(|| panic::panic_any("blocking boom".to_string())))
        });
        assert_eq!(message, "blocking boom", "{n} workers");
        // The pool is still usable.
        assert_eq!(rt.block_on(|| grove::blocking(|| 7)), 7);
    });
}

#[test]
fn on_an_os_thread_the_call_runs_inline() {
    let me = std::thread::current().id();
    let ran_on = grove::blocking(|| std::thread::current().id());
    assert_eq!(ran_on, me);
}

/// Many calls at once, each from its own green thread, never run on more
/// than `max_blocking_threads` OS threads; all complete with their values.
#[test]
fn the_pool_stays_within_its_limit() {
    watchdog(|| {
        const CALLS: usize = 40;
        let rt = Runtime::builder()
            .workers(2)
            .max_blocking_threads(3)
            .build()
            .unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let (r, m, t) = (running.clone(), most.clone(), threads.clone());
        let sum = rt.block_on(move || {
            let handles: Vec<_> = (0..CALLS)
                .map(|i| {
                    let (r, m, t) = (r.clone(), m.clone(), t.clone());
                    thread::spawn(move || {
                        grove::blocking(|| {
                            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                            m.fetch_max(now, Ordering::SeqCst);
                            t.lock().unwrap().insert(std::thread::current().id());
                            // Long enough for calls to overlap.
                            let until = Instant::now() + Duration::from_millis(2);
                            while Instant::now() < until {
                                std::hint::spin_loop();
                            }
                            r.fetch_sub(1, Ordering::SeqCst);
                            i
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        });
        assert_eq!(sum, CALLS * (CALLS - 1) / 2);
        assert!(
            most.load(Ordering::SeqCst) <= 3,
            "{most:?} calls ran at once"
        );
        assert!(threads.lock().unwrap().len() <= 3);
        assert_eq!(running.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn max_blocking_threads_zero_is_refused() {
    let err = Runtime::builder()
        .max_blocking_threads(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_blocking_threads"), "{err}");
}

/// Checks, when its green thread is unwound, that the blocking call it made
/// had returned (and written what it borrowed) first.
struct ChecksCall<'a> {
    written: &'a AtomicBool,
    seen: Arc<AtomicUsize>,
}

impl Drop for ChecksCall<'_> {
    fn drop(&mut self) {
        let code = if self.written.load(Ordering::SeqCst) {
            1
        } else {
            2
        };
        self.seen.store(code, Ordering::SeqCst);
    }
}

/// Dropping a runtime while a blocking call is in flight: the caller stays
/// parked until the call returns (it borrows from the caller's stack), and
/// only then is unwound; the drop waits for that.
#[test]
fn shutdown_waits_for_a_call_in_flight() {
    watchdog(|| {
        for_each_workers(|n| {
            let rt = runtime(n);
            let seen = Arc::new(AtomicUsize::new(0));
            let (started_tx, started_rx) = mpsc::channel::<()>();
            let s = seen.clone();
            rt.spawn(move || {
                let written = AtomicBool::new(false);
                let _check = ChecksCall {
                    written: &written,
                    seen: s,
                };
                grove::blocking(|| {
                    started_tx.send(()).unwrap();
                    // The call outlasts the start of the shutdown.
                    std::thread::sleep(Duration::from_millis(100));
                    written.store(true, Ordering::SeqCst);
                });
                // Reached only if the shutdown let the caller go on.
                let (_tx, never) = chan::bounded::<()>(0);
                let _ = never.recv();
            });
            started_rx.recv().unwrap();
            let report = rt.shutdown();
            assert_eq!(
                seen.load(Ordering::SeqCst),
                1,
                "{n} workers: the caller was unwound before its call returned"
            );
            assert!(report.not_unwound().is_empty(), "{report}");
        });
    });
}

/// A destructor that makes a blocking call while its green thread is
/// unwound at shutdown (a guard that flushes a file): the call may take
/// longer than the shutdown's patience with green threads that block
/// their worker (250 ms); the drop still waits for it, and the green
/// thread is unwound, not leaked.
#[test]
fn a_destructors_blocking_call_at_shutdown_is_waited_for() {
    struct Flushes(Arc<AtomicBool>);
    impl Drop for Flushes {
        fn drop(&mut self) {
            // Slower than the shutdown's 250 ms: the call is the subject.
            grove::blocking(|| std::thread::sleep(Duration::from_millis(400)));
            self.0.store(true, Ordering::SeqCst);
        }
    }
    watchdog(|| {
        for n in [1, 2] {
            let rt = runtime(n);
            let flushed = Arc::new(AtomicBool::new(false));
            let (parked_tx, parked_rx) = mpsc::channel::<()>();
            let (_keep, never) = chan::bounded::<()>(0);
            let guard = Flushes(flushed.clone());
            let h = rt.spawn(move || {
                let _guard = guard;
                parked_tx.send(()).unwrap();
                let _ = never.recv();
            });
            parked_rx.recv().unwrap();
            let report = rt.shutdown();
            assert!(
                flushed.load(Ordering::SeqCst),
                "{n} workers: the drop returned before the destructor's call did"
            );
            assert!(h.is_finished(), "{n} workers");
            assert!(report.not_unwound().is_empty(), "{report}");
        }
    });
}

/// A runtime dropped inside a call on its own blocking pool: its shutdown
/// would wait for that very call. It is leaked with a message (as when
/// dropped from one of its own green threads), never a hang.
#[test]
fn dropping_a_runtime_inside_its_own_blocking_call_does_not_hang() {
    watchdog(|| {
        let rt = runtime(2);
        let (rt_tx, rt_rx) = chan::bounded::<Runtime>(1);
        let h = rt.spawn(move || {
            let rt = rt_rx.recv().unwrap();
            grove::blocking(move || drop(rt));
            7
        });
        rt_tx.send(rt).unwrap();
        assert_eq!(h.join().unwrap(), 7);
    });
}

/// A green thread waiting in a blocking call waits for the outside world:
/// it is never reported as a deadlock, however long the call takes.
#[test]
fn a_long_blocking_call_is_not_a_deadlock() {
    watchdog(|| {
        let rt = Runtime::builder()
            .workers(1)
            .deadlock_grace(Some(Duration::from_millis(50)))
            .build()
            .unwrap();
        let value = rt.block_on(|| {
            grove::blocking(|| {
                std::thread::sleep(Duration::from_millis(300));
                42
            })
        });
        assert_eq!(value, 42);
    });
}

/// Calls from many green threads and OS threads at once, on 1-8 workers:
/// every value comes back exactly once.
#[test]
fn calls_from_green_and_os_threads_mix() {
    for_each_workers(|n| {
        let rt = runtime(n);
        let os =
            std::thread::spawn(move || (0..100u64).map(|i| grove::blocking(|| i * 2)).sum::<u64>());
        let green = rt.block_on(move || {
            let handles: Vec<_> = (0..100u64)
                .map(|i| thread::spawn(move || grove::blocking(move || i * 3)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(os.join().unwrap(), 9900);
        assert_eq!(green, 14850, "{n} workers");
    });
}

/// Calls that can only finish together: each waits at a barrier that
/// every one of them must reach, so they need as many pool threads at
/// once. A call queued behind busy threads (the pool does not wake or
/// start a thread for each call while others run) still gets a thread of
/// its own once it has waited a while: every round completes.
#[test]
fn calls_that_wait_for_each_other_all_get_threads() {
    for_each_workers(|n| {
        let rt = runtime(n);
        for calls in [2usize, 8, 32] {
            for round in 0..20 {
                let barrier = Arc::new(std::sync::Barrier::new(calls));
                let sum = rt.block_on(move || {
                    let handles: Vec<_> = (0..calls)
                        .map(|i| {
                            let barrier = barrier.clone();
                            thread::spawn(move || {
                                grove::blocking(|| {
                                    barrier.wait();
                                    i
                                })
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap())
                        .sum::<usize>()
                });
                assert_eq!(
                    sum,
                    calls * (calls - 1) / 2,
                    "{n} workers, {calls} calls, round {round}"
                );
            }
        }
    });
}

/// A call made while a pool thread stays blocked, and while its caller's
/// worker is held by a green thread that never yields (it spins until that
/// very call has run): the call must start. If the pool queued it behind
/// the busy thread, the caller cannot watch it, and the runtime's monitor
/// gets a thread onto it; the monitor runs with stall warnings off too.
#[test]
fn a_queued_call_starts_while_its_callers_worker_is_held() {
    watchdog(|| {
        for round in 0..10 {
            let warn = (round % 2 == 0).then_some(Duration::from_millis(250));
            let rt = Runtime::builder()
                .workers(1)
                .stall_warning(warn)
                .build()
                .unwrap();
            let ran = rt.block_on(|| {
                let (first_tx, first_rx) = chan::bounded::<()>(1);
                let (release_tx, release_rx) = mpsc::channel::<()>();
                // A pool thread, blocked until the second call has run.
                let first = thread::spawn(move || {
                    grove::blocking(move || {
                        first_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                    })
                });
                first_rx.recv().unwrap();
                let flag = Arc::new(AtomicBool::new(false));
                let f = flag.clone();
                // Runs once the second caller has parked, and holds the
                // only worker until the second call has run.
                let spinner = thread::spawn(move || {
                    while !f.load(Ordering::SeqCst) {
                        std::hint::spin_loop();
                    }
                });
                grove::blocking(|| {
                    flag.store(true, Ordering::SeqCst);
                    release_tx.send(()).unwrap();
                });
                spinner.join().unwrap();
                first.join().unwrap();
                true
            });
            assert!(ran, "round {round}");
        }
    });
}

/// A shutdown while a call waits for another call queued behind it: the
/// queued call gets a thread, the first returns, and the drop returns.
#[test]
fn shutdown_with_a_call_waiting_for_a_queued_one() {
    watchdog(|| {
        for n in [1, 2] {
            for round in 0..5 {
                let rt = runtime(n);
                let (first_tx, first_rx) = chan::bounded::<()>(1);
                let (release_tx, release_rx) = mpsc::channel::<()>();
                let (queued_tx, queued_rx) = mpsc::channel::<()>();
                let done = Arc::new(AtomicUsize::new(0));
                let d = done.clone();
                rt.spawn(move || {
                    grove::blocking(move || {
                        first_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                    });
                    d.fetch_add(1, Ordering::SeqCst);
                });
                let d = done.clone();
                rt.spawn(move || {
                    first_rx.recv().unwrap();
                    queued_tx.send(()).unwrap();
                    grove::blocking(move || release_tx.send(()).unwrap());
                    d.fetch_add(1, Ordering::SeqCst);
                });
                // The shutdown begins about when the second call is queued
                // (before or after, by round).
                queued_rx.recv().unwrap();
                let report = rt.shutdown();
                assert!(
                    report.not_unwound().is_empty(),
                    "{n} workers, round {round}: {report}"
                );
            }
        }
    });
}

/// Back-to-back calls from many green threads (the shape a file read in a
/// loop makes), on 1-8 workers: every call runs once, with its borrow.
#[test]
fn back_to_back_calls_from_many_green_threads() {
    for_each_workers(|n| {
        let rt = runtime(n);
        let total = rt.block_on(|| {
            let handles: Vec<_> = (0..64u64)
                .map(|g| {
                    thread::spawn(move || {
                        let mut mine = 0u64;
                        for i in 0..300u64 {
                            grove::blocking(|| mine += g * 1000 + i);
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        let expected: u64 = (0..64u64)
            .flat_map(|g| (0..300u64).map(move |i| g * 1000 + i))
            .sum();
        assert_eq!(total, expected, "{n} workers");
    });
}
