//! `grove::future`, the bridge to async Rust, both ways, through the public
//! API: `block_on` polls again once per wake (wakes from other threads,
//! from inside `poll`, before the park; spurious unparks absorbed); a
//! `JoinHandle` awaited from `block_on` and from tokio gives the green
//! thread's result (`Err` for a panic); green threads wait on tokio tasks
//! that use tokio's reactor (the documented pattern); a green thread in
//! `block_on` is never reported as deadlocked. From green threads and OS
//! threads, 1 to 8 workers.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::future::{poll_fn, Future, IntoFuture};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use grove::future::block_on;
use grove::sync::Arc;
use grove::Runtime;
use sync_util::{
    assert_send_sync, block_on_each, expect_panic, for_each_workers, runtime, wait_blocked,
    watchdog,
};

const BLOCK_ON: &str = "future::block_on";

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A future that is ready after `wakes` wake-ups delivered by someone else:
/// each poll registers the waker, a driver takes it and wakes it. Counts
/// its polls.
#[derive(Default)]
struct Relay {
    state: Mutex<RelayState>,
}

#[derive(Default)]
struct RelayState {
    left: usize,
    waker: Option<Waker>,
    polls: usize,
}

impl Relay {
    fn new(wakes: usize) -> Arc<Relay> {
        Arc::new(Relay {
            state: Mutex::new(RelayState {
                left: wakes,
                ..RelayState::default()
            }),
        })
    }

    fn wait(self: &Arc<Relay>) -> impl Future<Output = usize> + '_ {
        poll_fn(move |cx| {
            let mut s = self.state.lock().unwrap();
            s.polls += 1;
            if s.left == 0 {
                return Poll::Ready(s.polls);
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    /// Delivers every wake, one per registration; returns when done.
    fn drive(&self) {
        loop {
            let waker = {
                let mut s = self.state.lock().unwrap();
                if s.left == 0 {
                    return;
                }
                match s.waker.take() {
                    Some(w) => {
                        s.left -= 1;
                        w
                    }
                    None => {
                        drop(s);
                        grove::thread::yield_now();
                        continue;
                    }
                }
            };
            waker.wake();
        }
    }
}

#[test]
fn block_on_returns_a_ready_future_output() {
    let check = || {
        assert_eq!(block_on(async { 6 * 7 }), 42);
        assert_eq!(block_on(std::future::ready("now")), "now");
        let nested = block_on(async { block_on(async { 1 }) + 1 });
        assert_eq!(nested, 2);
    };
    block_on_each(move |_| check());
    watchdog(check);
}

/// 200 wakes, each from another thread (an OS thread, or a green thread of
/// the runtime), each while or after the poller registers: exactly one
/// poll per wake, no wake lost.
#[test]
fn block_on_polls_once_per_wake_from_other_threads() {
    const WAKES: usize = 200;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for driver_is_green in [false, true] {
            let relay = Relay::new(WAKES);
            let driver = {
                let relay = relay.clone();
                if driver_is_green {
                    let h = rt.spawn(move || relay.drive());
                    Box::new(move || h.join().unwrap()) as Box<dyn FnOnce()>
                } else {
                    let h = std::thread::spawn(move || relay.drive());
                    Box::new(move || h.join().unwrap())
                }
            };
            let polls = {
                let relay = relay.clone();
                rt.block_on(move || block_on(relay.wait()))
            };
            driver();
            assert_eq!(polls, WAKES + 1);
        }
        // The same from an OS thread.
        let relay = Relay::new(WAKES);
        let driver = {
            let relay = relay.clone();
            rt.spawn(move || relay.drive())
        };
        assert_eq!(block_on(relay.wait()), WAKES + 1);
        driver.join().unwrap();
    });
}

/// A future that wakes itself inside `poll` before returning `Pending`
/// (the wake comes before the park): it is polled again, not lost.
#[test]
fn a_wake_inside_poll_is_not_lost() {
    let check = || {
        let mut left = 1000;
        let polls = block_on(poll_fn(move |cx| {
            if left == 0 {
                return Poll::Ready(1000);
            }
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }));
        assert_eq!(polls, 1000);
    };
    block_on_each(move |_| check());
    watchdog(check);
}

/// Unparking the green thread parked in `block_on` (a spurious wake-up as
/// far as the future is concerned) does not poll the future again.
#[test]
fn spurious_unparks_do_not_repoll() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let relay = Relay::new(1);
        let poller = {
            let relay = relay.clone();
            rt.spawn(move || block_on(relay.wait()))
        };
        wait_blocked(&rt, BLOCK_ON, 1);
        for _ in 0..100 {
            poller.thread().unpark();
        }
        grove::thread::yield_now();
        wait_blocked(&rt, BLOCK_ON, 1);
        assert_eq!(relay.state.lock().unwrap().polls, 1);
        relay.drive();
        assert_eq!(poller.join().unwrap(), 2, "one poll, one wake, one poll");
    });
}

#[test]
fn a_panic_in_poll_reaches_the_caller() {
    block_on_each(|_| {
        let message = expect_panic(|| block_on(poll_fn(|_| -> Poll<()> { panic!("poll failed") })));
        assert_eq!(message, "poll failed");
    });
}

/// Green threads awaited through their `JoinHandle` from `block_on`, in a
/// green thread and on an OS thread: every result, in order; a panic is
/// an `Err`.
#[test]
fn join_handles_are_awaitable() {
    const N: u64 = 500;
    let check = || {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                grove::go(move || {
                    if i % 3 == 0 {
                        grove::thread::yield_now();
                    }
                    i
                })
            })
            .collect();
        let sum = block_on(async move {
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, N * (N - 1) / 2);

        let panicked = grove::go(|| -> u8 { panic!("green thread failed") });
        let err = block_on(panicked.into_future()).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"green thread failed"));
    };
    block_on_each(move |_| check());
    watchdog(check);
}

/// A `JoinFuture` dropped before the green thread ends detaches it: the
/// green thread still runs to the end.
#[test]
fn a_dropped_join_future_detaches() {
    watchdog(|| {
        let rt = runtime(2);
        let (go_tx, go_rx) = grove::chan::bounded::<()>(0);
        let (done_tx, done_rx) = grove::chan::bounded::<u32>(1);
        let h = rt.spawn(move || {
            go_rx.recv().unwrap();
            done_tx.send(7).unwrap();
        });
        let mut fut = h.into_future();
        let waker = Waker::noop();
        assert!(Pin::new(&mut fut)
            .poll(&mut Context::from_waker(waker))
            .is_pending());
        drop(fut);
        go_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), 7);
    });
}

/// tokio tasks await green threads: 400 of them across 1 to 8 grove
/// workers, awaited from tokio's worker threads.
#[test]
fn tokio_awaits_green_threads() {
    const N: u64 = 400;
    let tokio_rt = tokio_runtime();
    let tokio_rt = Arc::new(tokio_rt);
    for_each_workers(move |workers| {
        let rt = runtime(workers);
        let sum = tokio_rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..N {
                let green = rt.spawn(move || {
                    grove::thread::sleep(Duration::from_micros(50 * (i % 4)));
                    i * 2
                });
                tasks.push(tokio::spawn(async move { green.await.unwrap() }));
            }
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, N * (N - 1));
    });
}

/// Green threads wait on tokio tasks that need tokio's reactor (its
/// timers), spawned on tokio's runtime and awaited through tokio's
/// `JoinHandle` and a `oneshot`: the documented pattern.
#[test]
fn green_threads_wait_on_tokio_tasks() {
    const N: u64 = 100;
    let tokio_rt = tokio_runtime();
    let tokio = Arc::new(tokio_rt.handle().clone());
    for_each_workers(move |workers| {
        let rt = runtime(workers);
        let tokio = tokio.clone();
        let sum = rt.block_on(move || {
            let greens: Vec<_> = (0..N)
                .map(|i| {
                    let tokio = tokio.clone();
                    grove::go(move || {
                        let task = tokio.spawn(async move {
                            tokio::time::sleep(Duration::from_millis(1 + i % 3)).await;
                            i
                        });
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        tokio.spawn(async move {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            let _ = tx.send(i);
                        });
                        block_on(task).unwrap() + block_on(rx).unwrap()
                    })
                })
                .collect();
            greens.into_iter().map(|g| g.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, N * (N - 1));
    });
    drop(tokio_rt);
}

/// A green thread waits in `block_on` far longer than the runtime's
/// deadlock grace while every other green thread is parked: the outside
/// world will wake it, so no deadlock is reported.
#[test]
fn block_on_is_never_reported_as_a_deadlock() {
    watchdog(|| {
        let tokio_rt = tokio_runtime();
        let tokio = tokio_rt.handle().clone();
        let rt = Runtime::builder()
            .workers(2)
            .deadlock_grace(Some(Duration::from_millis(50)))
            .build()
            .unwrap();
        let got = rt.block_on(move || {
            let task = tokio.spawn(async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "late"
            });
            block_on(task).unwrap()
        });
        assert_eq!(got, "late");
    });
}

#[test]
fn traits() {
    assert_send_sync::<grove::thread::JoinFuture<u64>>();
    fn is_future<F: Future<Output = std::thread::Result<u8>> + Send + Unpin>(_: &F) {}
    let h = grove::go(|| 1u8);
    let fut = h.into_future();
    is_future(&fut);
    assert!(format!("{fut:?}").starts_with("JoinFuture"));
    assert_eq!(block_on(fut).unwrap(), 1);
}
