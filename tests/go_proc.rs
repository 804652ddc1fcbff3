//! Go's scheduler tests (src/runtime/proc_test.go, The Go Authors,
//! BSD-style licence) that map onto grove: `TestYieldProgress`,
//! `TestGoroutineParallelism`, `TestTimerFairness` and
//! `TestTimerFairness2`. Each keeps its Go original's logic and checks;
//! Go's GOMAXPROCS is the runtime's worker count. Each test's doc comment
//! names its Go original and what changed.
//!
//! Left out: `TestGoroutineParallelism2` (its netpoll variant has no
//! bearing on grove's poller, and its load variant is this file's
//! `TestGoroutineParallelism` again) and `TestNumGoroutine` (covered by
//! `num_green_threads.rs`).

#[path = "common/base.rs"]
mod base;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base::{block_on_each, runtime, watchdog};
use grove::{chan, select, thread};

/// Go's `TestYieldProgress`: a goroutine that polls a channel in a loop,
/// yielding between polls, is always runnable; the main goroutine sleeps
/// 10 ms and must still wake and get its send through to the poller. The
/// sleep is the subject (a timer wake-up beside a yield loop), not
/// synchronisation: the test passes whatever the two threads' order.
#[test]
fn go_test_yield_progress() {
    block_on_each(|_| {
        let (ct, c) = chan::bounded::<bool>(0);
        let (ackt, cack) = chan::bounded::<bool>(0);
        let poller = grove::go(move || loop {
            select! {
                recv(c) -> v => {
                    assert_eq!(v, Ok(true));
                    ackt.send(true).unwrap();
                    return;
                },
                default => thread::yield_now(),
            }
        });
        thread::sleep(Duration::from_millis(10));
        ct.send(true).unwrap();
        assert_eq!(cack.recv(), Ok(true));
        poller.join().unwrap();
    });
}

/// Go's `TestGoroutineParallelism`: P goroutines hand a counter round in
/// turn by spinning on it without ever yielding, so the test can only end
/// if all P run at once, one per worker. P = 4 workers (Go's P; on this
/// 2-core machine the OS time-slices them, which is still parallel for
/// grove's purpose: nothing cooperative is required); Go's 10 tries.
#[test]
fn go_test_goroutine_parallelism() {
    const P: u32 = 4;
    const N: usize = 10;
    watchdog(|| {
        runtime(P as usize).block_on(|| {
            for _ in 0..N {
                let (done_t, done) = chan::bounded::<bool>(0);
                let x = Arc::new(AtomicU32::new(0));
                for p in 0..P {
                    let (x, done_t) = (x.clone(), done_t.clone());
                    grove::go(move || {
                        for i in 0..3 {
                            let expected = P * i + p;
                            while x.load(Ordering::SeqCst) != expected {
                                std::hint::spin_loop();
                            }
                            x.store(expected + 1, Ordering::SeqCst);
                        }
                        done_t.send(true).unwrap();
                    });
                }
                for _ in 0..P {
                    assert_eq!(done.recv(), Ok(true));
                }
                assert_eq!(x.load(Ordering::SeqCst), 3 * P);
            }
        });
    });
}

/// Go's `TestTimerFairness`: two goroutines keep a channel always ready
/// for the main goroutine's select; the select's other arm, a 20 ms
/// timer, must still be chosen. The two senders are joined at the end
/// (Go lets them exit unjoined).
#[test]
fn go_test_timer_fairness() {
    block_on_each(|_| {
        let (done_t, done) = chan::bounded::<bool>(0);
        let (ct, c) = chan::bounded::<bool>(0);
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let (ct, done) = (ct.clone(), done.clone());
                grove::go(move || loop {
                    select! {
                        send(ct, true) -> r => r.unwrap(),
                        recv(done) -> _v => return,
                    }
                })
            })
            .collect();
        let timer = chan::after(Duration::from_millis(20));
        loop {
            select! {
                recv(c) -> v => assert_eq!(v, Ok(true)),
                recv(timer) -> v => {
                    assert!(v.is_ok());
                    done_t.close();
                    break;
                },
            }
        }
        for s in senders {
            s.join().unwrap();
        }
    });
}

/// Go's `TestTimerFairness2`: two goroutines each select over a send and a
/// receive on one shared channel (so they keep each other busy) and their
/// own 20 ms timer; both timers must still be chosen. Go's zero-byte
/// `syscall.Read` in the loop has no twin and is left out.
#[test]
fn go_test_timer_fairness2() {
    block_on_each(|_| {
        let (done_t, done) = chan::bounded::<bool>(0);
        let (ct, c) = chan::bounded::<bool>(0);
        for _ in 0..2 {
            let (ct, c, done_t) = (ct.clone(), c.clone(), done_t.clone());
            grove::go(move || {
                let timer = chan::after(Duration::from_millis(20));
                loop {
                    select! {
                        send(ct, true) -> r => r.unwrap(),
                        recv(c) -> v => assert_eq!(v, Ok(true)),
                        recv(timer) -> _v => {
                            done_t.send(true).unwrap();
                            return;
                        },
                    }
                }
            });
        }
        assert_eq!(done.recv(), Ok(true));
        assert_eq!(done.recv(), Ok(true));
    });
}
