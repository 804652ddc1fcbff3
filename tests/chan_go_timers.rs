//! `chan::Timer`, `chan::Ticker` and `chan::after_func` against their documented contract
//! ("Timers and more of Go's toolbox"), with Go 1.23 semantics: a stopped
//! or reset timer never delivers a stale value, and `stop`/`reset` return
//! true exactly when they prevented a delivery (checked by exact counts
//! with a receiver racing them); a receiver or select parked on a timer
//! follows its resets; `after_func` runs its function once, in its own
//! green thread, unless stopped; and a million armed-then-stopped timers
//! leave nothing behind. Each runs from an OS thread and from green
//! threads on 1, 2 and 4 workers. Here a wait for a timer is never
//! synchronisation: it is the time passing that the test is about.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chan_util::{expect_panic, runtime, watchdog, LATE_LIMIT};
use grove::chan::{self, after_func, RecvTimeoutError, Ticker, Timer, TryRecvError};
use grove::select;

const D: Duration = Duration::from_millis(10);
const HOUR: Duration = Duration::from_secs(3600);

/// Runs `f` on an OS thread, then as a green thread on 1, 2 and 4 workers.
fn everywhere(f: fn()) {
    watchdog(move || {
        f();
        for workers in [1, 2, 4] {
            runtime(workers).block_on(f);
        }
    });
}

/// Waits until `d` has passed (a timer of its own; never early).
fn pass(d: Duration) {
    chan::after(d).recv().unwrap();
}

fn a_timer_fires_once_with_its_deadline_body() {
    let before = Instant::now();
    let t = Timer::new(D);
    let made = Instant::now();
    let fired = t.receiver().recv().unwrap();
    assert!(fired >= before + D && fired <= made + D, "the deadline");
    assert!(Instant::now() < made + D + LATE_LIMIT, "not absurdly late");
    assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        t.receiver().recv_timeout(2 * D),
        Err(RecvTimeoutError::Timeout),
        "once"
    );
    assert!(!t.stop(), "received: nothing left to prevent");
    assert!(!t.reset(D), "nothing was pending");
    assert!(t.receiver().recv().is_ok(), "reset arms it again");
}

#[test]
fn timer_fires_once_with_its_deadline() {
    everywhere(a_timer_fires_once_with_its_deadline_body);
}

fn stop_and_reset_return_whether_they_prevented_a_delivery_body() {
    // Stopped while armed.
    let t = Timer::new(D);
    assert!(t.stop());
    assert!(!t.stop(), "stopped already");
    assert_eq!(
        t.receiver().recv_timeout(3 * D),
        Err(RecvTimeoutError::Timeout)
    );
    // Fired but not received: Go 1.23 drops the value and says true.
    let t = Timer::new(Duration::ZERO);
    pass(D);
    assert_eq!(t.receiver().len(), 1, "due");
    assert!(t.stop());
    assert_eq!(
        t.receiver().try_recv(),
        Err(TryRecvError::Empty),
        "no stale value"
    );
    // Reset while armed: true, and it fires at the new time, not the old.
    let t = Timer::new(D);
    assert!(t.reset(HOUR));
    assert_eq!(
        t.receiver().recv_timeout(3 * D),
        Err(RecvTimeoutError::Timeout),
        "the old deadline is gone"
    );
    let reset_at = Instant::now();
    assert!(t.reset(D));
    let fired = t.receiver().recv().unwrap();
    assert!(fired >= reset_at + D);
    // Fired, not received, then reset: the old value is never received.
    let t = Timer::new(Duration::ZERO);
    pass(D);
    let reset_at = Instant::now();
    assert!(t.reset(D));
    let fired = t.receiver().recv().unwrap();
    assert!(fired >= reset_at + D, "a stale value came through");
}

#[test]
fn stop_and_reset_say_whether_they_prevented_a_delivery() {
    everywhere(stop_and_reset_return_whether_they_prevented_a_delivery_body);
}

/// Every arming of a timer ends exactly one way: received, or prevented by
/// a `stop` or `reset` that returned true. A resetter races a receiver
/// (its own green thread or OS thread): the counts must add up exactly,
/// and no value received may be older than the arming it came from.
fn every_arming_is_received_or_prevented_exactly_once_body() {
    const ARMINGS: usize = 2_000;
    let t = Arc::new(Timer::new(HOUR));
    assert!(t.stop());
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (t, done) = (t.clone(), done.clone());
        grove::go(move || {
            let mut received = 0;
            while !done.load(Ordering::SeqCst) {
                if t.receiver().recv_timeout(Duration::from_millis(1)).is_ok() {
                    received += 1;
                }
            }
            // The last arming was stopped: nothing more can come.
            while t.receiver().try_recv().is_ok() {
                received += 1;
            }
            received
        })
    };
    let mut prevented = 0;
    for i in 0..ARMINGS {
        // Zero or a microsecond: due at once, or nearly; the receiver may
        // or may not get it before the next stop or reset.
        let d = Duration::from_micros((i % 2) as u64);
        if t.reset(d) {
            prevented += 1;
        }
        if i % 3 == 0 {
            grove::thread::yield_now();
        }
        if i % 5 == 0 && t.stop() {
            prevented += 1;
        }
    }
    if t.stop() {
        prevented += 1;
    }
    done.store(true, Ordering::SeqCst);
    let received = receiver.join().unwrap();
    assert_eq!(
        received + prevented,
        ARMINGS,
        "{received} received + {prevented} prevented"
    );
}

#[test]
fn every_arming_is_received_or_prevented_exactly_once() {
    watchdog(|| {
        // The resetter on an OS thread; the receiver on the global runtime.
        every_arming_is_received_or_prevented_exactly_once_body();
        for workers in [1, 2, 4] {
            runtime(workers).block_on(every_arming_is_received_or_prevented_exactly_once_body);
        }
    });
}

/// A receiver, a select and a readiness waiter parked on a timer follow a
/// reset that moves its deadline closer, and keep waiting through a stop.
fn parked_waiters_follow_resets_body() {
    let t = Arc::new(Timer::new(HOUR));
    let (tx, rx) = chan::bounded::<()>(0);
    let (done_tx, done) = chan::unbounded::<(usize, bool)>();
    for kind in 0..3 {
        let (t, rx, done_tx) = (t.clone(), rx.clone(), done_tx.clone());
        grove::go(move || {
            let ok = match kind {
                0 => t.receiver().recv().is_ok(),
                1 => select! {
                    recv(t.receiver()) -> v => v.is_ok(),
                    recv(rx) -> _v => false,
                },
                _ => {
                    let mut sel = chan::Select::new();
                    let timer = sel.recv(t.receiver());
                    sel.recv(&rx);
                    sel.ready() == timer
                }
            };
            done_tx.send((kind, ok)).unwrap();
        });
    }
    // Parked until the hour is up; a stop must not wake them for good.
    pass(D);
    assert!(t.stop());
    pass(D);
    assert_eq!(done.try_recv(), Err(TryRecvError::Empty), "woken by a stop");
    // Now a near deadline: each of them sees it, within bounds. One value
    // serves one receiver (the readiness waiter takes nothing): arm it
    // again until all three are done.
    let start = Instant::now();
    let mut finished = Vec::new();
    while finished.len() < 3 {
        assert!(start.elapsed() < 20 * (D + LATE_LIMIT), "{finished:?}");
        t.reset(D);
        if let Ok((kind, ok)) = done.recv_timeout(3 * D) {
            assert!(ok, "waiter {kind} saw the wrong arm");
            finished.push(kind);
        }
    }
    drop(tx);
}

#[test]
fn parked_waiters_follow_resets() {
    everywhere(parked_waiters_follow_resets_body);
}

fn a_ticker_keeps_its_schedule_body() {
    let period = Duration::from_millis(3);
    let start = Instant::now();
    let ticker = Ticker::new(period);
    let ticks: Vec<Instant> = (0..5).map(|_| ticker.receiver().recv().unwrap()).collect();
    assert!(ticks[0] >= start + period);
    for pair in ticks.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= period);
        assert_eq!(gap.as_nanos() % period.as_nanos(), 0, "on the schedule");
    }
    // Stopped: nothing, a due tick included.
    pass(2 * period);
    ticker.stop();
    assert_eq!(
        ticker.receiver().recv_timeout(3 * period),
        Err(RecvTimeoutError::Timeout)
    );
    // Reset: a new period, from now.
    let reset_at = Instant::now();
    ticker.reset(2 * period);
    let a = ticker.receiver().recv().unwrap();
    let b = ticker.receiver().recv().unwrap();
    assert!(a >= reset_at + 2 * period);
    assert!(b > a);
    assert_eq!(
        (b - a).as_nanos() % (2 * period).as_nanos(),
        0,
        "the new period"
    );
}

#[test]
fn a_ticker_keeps_its_schedule() {
    everywhere(a_ticker_keeps_its_schedule_body);
}

#[test]
fn a_zero_period_panics_as_in_go() {
    let message = expect_panic(|| Ticker::new(Duration::ZERO));
    assert_eq!(message, "non-positive interval for Ticker::new");
    let ticker = Ticker::new(HOUR);
    let message = expect_panic(|| ticker.reset(Duration::ZERO));
    assert_eq!(message, "non-positive interval for Ticker::reset");
}

fn after_func_runs_once_in_its_own_green_thread_body() {
    let caller = grove::thread::current().id();
    let (tx, rx) = chan::bounded(1);
    let start = Instant::now();
    let _timer = after_func(D, move || {
        let me = grove::thread::current();
        tx.send((me.is_green(), me.id(), Instant::now())).unwrap();
    });
    let (green, id, at) = rx.recv().unwrap();
    assert!(green, "in a green thread");
    assert_ne!(id, caller, "its own");
    assert!(at >= start + D, "not early");
    assert_eq!(
        rx.recv(),
        Err(chan::RecvError),
        "once (f dropped its sender)"
    );
}

#[test]
fn after_func_runs_once_in_its_own_green_thread() {
    everywhere(after_func_runs_once_in_its_own_green_thread_body);
}

/// Many `after_func`s, some stopped at once and some reset: each runs
/// exactly once unless its `stop` returned true, and never early.
fn after_func_stop_and_reset_counts_body() {
    const N: usize = 300;
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::unbounded::<usize>();
    let timers: Vec<Timer> = (0..N)
        .map(|i| {
            let (ran, tx) = (ran.clone(), tx.clone());
            after_func(Duration::from_micros((i % 7) as u64 * 500), move || {
                ran.fetch_add(1, Ordering::SeqCst);
                tx.send(i).unwrap();
            })
        })
        .collect();
    drop(tx);
    let mut stopped = 0;
    for (i, t) in timers.iter().enumerate() {
        match i % 3 {
            0 if t.stop() => stopped += 1,
            1 => {
                t.reset(D); // moved if it had not started: runs later
            }
            _ => {}
        }
    }
    let mut got: Vec<usize> = Vec::new();
    for _ in 0..N - stopped {
        got.push(rx.recv().unwrap());
    }
    drop(timers); // dropping does not cancel; all that run have run
    assert_eq!(rx.recv(), Err(chan::RecvError), "no more: every f is gone");
    assert_eq!(ran.load(Ordering::SeqCst), N - stopped);
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), N - stopped, "each at most once");
}

#[test]
fn after_func_stop_and_reset_counts() {
    everywhere(after_func_stop_and_reset_counts_body);
}

/// A reset after the function started has nothing to run (it is an
/// `FnOnce`); a stopped one can be reset and runs then; a dropped `Timer`
/// does not cancel it.
#[test]
fn after_func_reset_and_drop() {
    watchdog(|| {
        let (tx, rx) = chan::unbounded::<&str>();
        let tx2 = tx.clone();
        let t = after_func(Duration::ZERO, move || tx2.send("first").unwrap());
        assert_eq!(rx.recv(), Ok("first"));
        assert!(!t.reset(Duration::ZERO), "it ran: nothing to arm");
        assert!(!t.stop());

        let tx2 = tx.clone();
        let t = after_func(HOUR, move || tx2.send("second").unwrap());
        assert!(t.stop());
        assert!(!t.reset(Duration::ZERO), "stopped: no delivery was pending");
        assert_eq!(rx.recv(), Ok("second"), "the reset armed it again");

        let tx2 = tx.clone();
        drop(after_func(Duration::ZERO, move || {
            tx2.send("third").unwrap()
        }));
        assert_eq!(rx.recv(), Ok("third"), "dropping the timer does not cancel");
        drop(tx);
        assert!(rx.recv().is_err());
        assert!(
            t.receiver().try_recv().is_err(),
            "its channel never delivers"
        );
    });
}

/// A duration past what an `Instant` can hold arms the timer for ever (Go
/// clamps it): `stop` and `reset` report a delivery they prevented, as for
/// any armed timer, and nothing fires.
fn huge_durations_arm_for_ever_body() {
    for huge in [Duration::MAX, Duration::from_secs(u64::MAX / 2)] {
        let t = Timer::new(huge);
        assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));
        assert!(t.stop(), "armed for ever: the stop prevented a delivery");
        assert!(!t.stop());
        let t = Timer::new(D);
        assert!(t.reset(huge));
        assert!(t.stop(), "reset to for ever: still armed");
        let f = after_func(huge, || unreachable!("never due"));
        assert!(f.stop());
        assert!(!f.stop());
        let ticker = Ticker::new(huge);
        assert_eq!(ticker.receiver().try_recv(), Err(TryRecvError::Empty));
        ticker.stop();
    }
}

#[test]
fn huge_durations_arm_for_ever() {
    everywhere(huge_durations_arm_for_ever_body);
}

/// A `Timer`'s one value taken by a select whose operation is then dropped
/// unfinished is still there for the next receive (as `after`'s), and a
/// `stop` meanwhile reports it kept a delivery; once stopped or reset, the
/// taken value is not given back.
fn a_timer_value_of_a_dropped_selected_operation_is_kept_body() {
    let fired = |t: &Timer| {
        pass(D);
        let mut sel = chan::Select::new();
        sel.recv(t.receiver());
        drop(sel.select()); // chosen, then dropped without `recv`
    };
    let t = Timer::new(Duration::ZERO);
    fired(&t);
    assert!(t.receiver().try_recv().is_ok(), "given back");
    assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));

    let t = Timer::new(Duration::ZERO);
    fired(&t);
    assert!(t.stop(), "the given-back value was not delivered");
    assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));

    // Reset while the chosen operation holds the value: the value counts
    // as taken (the operation may yet receive it), and once the operation
    // is dropped it is not given back into the new arming.
    let t = Timer::new(Duration::ZERO);
    pass(D);
    let mut sel = chan::Select::new();
    sel.recv(t.receiver());
    let op = sel.select();
    assert!(!t.reset(HOUR), "the chosen operation took the value");
    drop(op);
    assert_eq!(t.receiver().try_recv(), Err(TryRecvError::Empty));
    assert!(t.stop(), "armed for an hour");
}

#[test]
fn a_timer_value_of_a_dropped_selected_operation_is_kept() {
    everywhere(a_timer_value_of_a_dropped_selected_operation_is_kept_body);
}

/// A million armed-then-stopped timers (and many armed-then-stopped
/// `after_func`s) leave nothing behind: a plain timer nobody waits on has
/// no timer-heap entry at all, and the `after_func` service sweeps its
/// stale entries; a timer armed afterwards still fires on time.
#[test]
fn armed_then_stopped_timers_leave_nothing_behind() {
    watchdog(|| {
        runtime(2).block_on(|| {
            for _ in 0..1_000_000 {
                let t = Timer::new(HOUR);
                assert!(t.stop());
            }
            let before = chan::after_func_entries();
            for _ in 0..100_000 {
                let t = after_func(HOUR, || unreachable!("stopped"));
                assert!(t.stop());
            }
            let after = chan::after_func_entries();
            // (Other tests of this binary may hold a few hundred.)
            assert!(
                after < before + 1_000,
                "{} stale after_func entries kept",
                after.saturating_sub(before)
            );
            let start = Instant::now();
            Timer::new(D).receiver().recv().unwrap();
            let took = start.elapsed();
            assert!(took >= D && took < D + LATE_LIMIT, "{took:?}");
        });
    });
}

/// `after_func`s armed on one worker and stopped or reset on another, or
/// on a plain OS thread, leave nothing behind either: the service counts
/// a stale entry where it lies, whichever thread made it stale, and an
/// `after_func` reset elsewhere still runs once, at its new deadline.
#[test]
fn after_funcs_stopped_on_another_thread_leave_nothing_behind() {
    watchdog(|| {
        runtime(2).block_on(|| {
            let before = chan::after_func_entries();
            let (tx, rx) = chan::bounded::<Vec<Timer>>(4);
            let maker = grove::thread::Builder::new()
                .on_worker(0)
                .spawn(move || {
                    for _ in 0..100 {
                        let batch = (0..1_000)
                            .map(|_| after_func(HOUR, || unreachable!("stopped")))
                            .collect();
                        tx.send(batch).unwrap();
                    }
                })
                .unwrap();
            let stopper = grove::thread::Builder::new()
                .on_worker(1)
                .spawn(move || {
                    let mut n = 0;
                    for (b, batch) in rx.iter().enumerate() {
                        if b % 10 == 9 {
                            // Re-armed here, then stopped on an OS thread.
                            for t in &batch {
                                assert!(t.reset(HOUR));
                            }
                            let stopped = std::thread::spawn(move || {
                                batch.iter().filter(|t| t.stop()).count()
                            });
                            n += stopped.join().unwrap();
                        } else {
                            n += batch.iter().filter(|t| t.stop()).count();
                        }
                    }
                    n
                })
                .unwrap();
            maker.join().unwrap();
            assert_eq!(stopper.join().unwrap(), 100_000);
            let after = chan::after_func_entries();
            assert!(
                after < before + 1_000,
                "{} stale after_func entries kept",
                after.saturating_sub(before)
            );
            // Armed on one worker, reset on the other: runs once, late.
            let ran = Arc::new(AtomicUsize::new(0));
            let (done_tx, done_rx) = chan::bounded::<Instant>(1);
            let t = {
                let ran = ran.clone();
                grove::thread::Builder::new()
                    .on_worker(0)
                    .spawn(move || {
                        after_func(D, move || {
                            ran.fetch_add(1, Ordering::SeqCst);
                            done_tx.send(Instant::now()).unwrap();
                        })
                    })
                    .unwrap()
                    .join()
                    .unwrap()
            };
            let start = Instant::now();
            let t = grove::thread::Builder::new()
                .on_worker(1)
                .spawn(move || {
                    assert!(t.reset(3 * D));
                    t
                })
                .unwrap()
                .join()
                .unwrap();
            let fired = done_rx.recv().unwrap();
            assert!(fired >= start + 3 * D, "fired at its old deadline");
            assert!(!t.stop(), "it ran");
            assert_eq!(ran.load(Ordering::SeqCst), 1);
        });
    });
}

/// `chan::after_func` made in a runtime that is dropped before the timer
/// fires: the function still runs (on the global runtime), as Go's
/// `AfterFunc` always does unless stopped.
#[test]
fn after_func_outlives_the_runtime_it_was_made_in() {
    watchdog(|| {
        let (ran_tx, ran_rx) = grove::chan::bounded::<()>(1);
        let rt = grove::Runtime::builder().workers(1).build().unwrap();
        let timer = rt.block_on(move || {
            grove::chan::after_func(Duration::from_millis(5), move || ran_tx.send(()).unwrap())
        });
        drop(rt);
        assert_eq!(ran_rx.recv(), Ok(()), "the function ran");
        assert!(!timer.stop(), "it ran: stop is too late");
    });
}
