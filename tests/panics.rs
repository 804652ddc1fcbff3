//! Panics in green threads: `join` hands the payload back as `Err`, the
//! worker and the other green threads carry on, and `grove::run` /
//! `Runtime::block_on` resume the panic on their caller.
//!
//! The default panic hook is left alone (tests share one process), so the
//! expected panics print their messages.

mod common;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{runtime, sweep_workers, watchdog};
use grove::thread;

/// A payload that is not a string.
#[derive(Debug, PartialEq)]
struct Oops {
    code: u32,
}

fn str_payload(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[test]
fn join_returns_the_panic_payload() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let literal = rt.spawn(|| -> u32 { panic!("literal boom") });
            let formatted =
                rt.spawn(|| -> u32 { panic!("formatted boom {}", std::hint::black_box(7)) });
            let number = rt.spawn(|| -> u32 { panic::panic_any(42u64) });
            let custom = rt.spawn(|| -> u32 { panic::panic_any(Oops { code: 9 }) });

            let err = literal.join().unwrap_err();
            assert_eq!(err.downcast_ref::<&str>(), Some(&"literal boom"));
            let err = formatted.join().unwrap_err();
            assert_eq!(
                err.downcast_ref::<String>().map(String::as_str),
                Some("formatted boom 7")
            );
            let err = number.join().unwrap_err();
            assert_eq!(err.downcast_ref::<u64>(), Some(&42));
            let err = custom.join().unwrap_err();
            assert_eq!(err.downcast_ref::<Oops>(), Some(&Oops { code: 9 }));
        });
    });
}

#[test]
fn a_panic_after_blocking_calls_comes_back_too() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let h = rt.spawn(|| -> () {
                thread::yield_now();
                thread::sleep(Duration::from_millis(1));
                let child = thread::spawn(|| 1);
                assert_eq!(child.join().unwrap(), 1);
                panic!("late boom")
            });
            let err = h.join().unwrap_err();
            assert_eq!(str_payload(&*err), Some("late boom"));
        });
    });
}

#[test]
fn workers_and_other_green_threads_carry_on_after_panics() {
    const TASKS: u64 = 100;
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let handles: Vec<_> = (0..TASKS)
                .map(|i| {
                    rt.spawn(move || {
                        thread::yield_now();
                        if i % 3 == 0 {
                            panic::panic_any(i);
                        }
                        i * 10
                    })
                })
                .collect();
            let mut sum = 0;
            let mut panicked = 0;
            for (i, h) in (0..TASKS).zip(handles) {
                match h.join() {
                    Ok(v) => {
                        assert_ne!(i % 3, 0, "task {i} should have panicked");
                        sum += v;
                    }
                    Err(payload) => {
                        assert_eq!(i % 3, 0, "task {i} should not have panicked");
                        assert_eq!(payload.downcast_ref::<u64>(), Some(&i));
                        panicked += 1;
                    }
                }
            }
            let expected: u64 = (0..TASKS).filter(|i| i % 3 != 0).map(|i| i * 10).sum();
            assert_eq!(sum, expected);
            assert_eq!(panicked, TASKS.div_ceil(3));

            // The same workers still run new green threads.
            let after: u64 = rt.block_on(|| {
                let hs: Vec<_> = (0..100u64).map(|i| thread::spawn(move || i)).collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(after, 4950);
        });
    });
}

#[test]
fn a_joiner_parked_on_a_panicking_green_thread_is_woken() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let outcome = rt.block_on(|| {
                let victim = thread::spawn(|| -> u8 {
                    for _ in 0..10 {
                        thread::yield_now();
                    }
                    panic!("victim boom")
                });
                // The joiner is a green thread that parks in join.
                let joiner = thread::spawn(move || {
                    victim
                        .join()
                        .map_err(|e| str_payload(&*e).map(str::to_string))
                });
                joiner.join().unwrap()
            });
            assert_eq!(outcome, Err(Some("victim boom".to_string())));
        });
    });
}

#[test]
fn destructors_that_block_while_unwinding_do_not_wedge_the_worker() {
    /// Parks in its destructor, which runs during the panic's unwinding:
    /// grove must not switch away then, and must still come back.
    struct SleepyGuard(Arc<AtomicUsize>);
    impl Drop for SleepyGuard {
        fn drop(&mut self) {
            thread::sleep(Duration::from_millis(2));
            thread::yield_now();
            thread::park_timeout(Duration::from_millis(1));
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let dropped = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let guard = SleepyGuard(dropped.clone());
                    rt.spawn(move || {
                        let _guard = guard;
                        thread::yield_now();
                        if i % 2 == 0 {
                            panic!("unwinding through a sleepy destructor");
                        }
                        i
                    })
                })
                .collect();
            let ok: usize = handles.into_iter().filter_map(|h| h.join().ok()).sum();
            assert_eq!(ok, 1 + 3 + 5 + 7);
            assert_eq!(dropped.load(Ordering::Relaxed), 8);
            assert_eq!(rt.block_on(|| 3), 3, "the workers still run green threads");
        });
    });
}

#[test]
fn run_resumes_the_panic_on_the_caller() {
    watchdog(|| {
        let err = panic::catch_unwind(|| grove::run(|| -> u8 { panic!("run boom") })).unwrap_err();
        assert_eq!(str_payload(&*err), Some("run boom"));
        let err =
            panic::catch_unwind(|| grove::run(|| -> u8 { panic::panic_any(Oops { code: 1 }) }))
                .unwrap_err();
        assert_eq!(err.downcast_ref::<Oops>(), Some(&Oops { code: 1 }));
        // The global runtime is fine afterwards.
        assert_eq!(grove::run(|| 5), 5);
    });
}

#[test]
fn block_on_resumes_the_panic_on_the_caller() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let err = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(move || -> u8 { panic!("block_on boom {n}") })
            }))
            .unwrap_err();
            assert_eq!(
                str_payload(&*err),
                Some(format!("block_on boom {n}").as_str())
            );
            let err = panic::catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(|| -> u8 { panic::panic_any(Oops { code: 2 }) })
            }))
            .unwrap_err();
            assert_eq!(err.downcast_ref::<Oops>(), Some(&Oops { code: 2 }));
            assert_eq!(rt.block_on(|| 6), 6);
        });
    });
}

#[test]
fn run_inside_a_green_thread_resumes_the_panic_there() {
    watchdog(|| {
        sweep_workers(|n| {
            let rt = runtime(n);
            let inner = rt.block_on(|| {
                panic::catch_unwind(|| grove::run(|| -> u8 { panic!("nested boom") }))
                    .map_err(|e| str_payload(&*e).map(str::to_string))
            });
            assert_eq!(inner, Err(Some("nested boom".to_string())));
        });
    });
}
