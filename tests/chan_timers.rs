//! Timer channels and timeouts: `after`, `tick`, `recv_timeout`,
//! `send_timeout`, `select!`'s `default(d)` and `Select::select_timeout`
//! never fire early (measured with `Instant`), fire within a loose bound
//! (`LATE_LIMIT`) on an idle runtime, park only the green thread, and
//! accept `Duration::MAX`. Here a `sleep` is never synchronisation: it is
//! the slow receiver whose ticks must be dropped.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::time::{Duration, Instant};

use chan_util::{block_on_each, for_each_workers, runtime, watchdog, LATE_LIMIT};
use grove::chan::{self, RecvTimeoutError, Select, SendTimeoutError, TryRecvError};
use grove::select;

const D: Duration = Duration::from_millis(30);

/// Asserts that `elapsed` is at least `want` and at most `LATE_LIMIT`
/// more.
#[track_caller]
fn assert_on_time(what: &str, elapsed: Duration, want: Duration) {
    assert!(
        elapsed >= want,
        "{what} fired early: after {elapsed:?} of {want:?}"
    );
    assert!(
        elapsed < want + LATE_LIMIT,
        "{what} fired {:?} late",
        elapsed - want
    );
}

/// Every timeout flavour, measured from the calling thread (OS or green).
fn all_timeouts_on_time(d: Duration) {
    let start = Instant::now();
    let fired = chan::after(d).recv().unwrap();
    assert_on_time("after", start.elapsed(), d);
    assert!(fired >= start + d, "after's Instant is early");

    let (tx, rx) = chan::bounded::<u8>(1);
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    assert_on_time("recv_timeout", start.elapsed(), d);

    tx.send(0).unwrap();
    let start = Instant::now();
    assert_eq!(tx.send_timeout(1, d), Err(SendTimeoutError::Timeout(1)));
    assert_on_time("send_timeout", start.elapsed(), d);

    let start = Instant::now();
    let timed_out = select! {
        send(tx, 2) -> _r => false,
        recv(chan::never::<u8>()) -> _v => false,
        default(d) => true,
    };
    assert!(timed_out);
    assert_on_time("select! default(d)", start.elapsed(), d);

    let never = chan::never::<u8>();
    let mut sel = Select::new();
    sel.recv(&never);
    sel.send(&tx);
    let start = Instant::now();
    assert!(sel.select_timeout(d).is_err());
    assert_on_time("Select::select_timeout", start.elapsed(), d);

    let start = Instant::now();
    let got = select! {
        recv(chan::never::<u8>()) -> _v => "never",
        recv(chan::after(d)) -> v => { v.unwrap(); "after" },
    };
    assert_eq!(got, "after");
    assert_on_time("after in a select", start.elapsed(), d);
}

#[test]
fn timeouts_are_on_time_on_an_os_thread() {
    watchdog(|| all_timeouts_on_time(D));
}

#[test]
fn timeouts_are_on_time_on_green_threads() {
    block_on_each(|_| all_timeouts_on_time(D));
}

#[test]
fn after_from_the_global_runtime() {
    watchdog(|| grove::run(|| all_timeouts_on_time(Duration::from_millis(10))));
}

/// Many concurrent timers on one runtime: none early, none absurdly late.
#[test]
fn many_concurrent_timers() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                rt.spawn(move || {
                    let d = Duration::from_millis(10 + i % 40);
                    let start = Instant::now();
                    match i % 3 {
                        0 => {
                            chan::after(d).recv().unwrap();
                        }
                        1 => {
                            let r = chan::never::<()>().recv_timeout(d);
                            assert_eq!(r, Err(RecvTimeoutError::Timeout));
                        }
                        _ => {
                            let (_tx, rx) = chan::bounded::<()>(0);
                            select! {
                                recv(rx) -> _v => unreachable!(),
                                default(d) => (),
                            };
                        }
                    }
                    (start.elapsed(), d)
                })
            })
            .collect();
        for h in handles {
            let (elapsed, d) = h.join().unwrap();
            assert!(elapsed >= d, "fired early: {elapsed:?} < {d:?}");
            assert!(elapsed < d + LATE_LIMIT * 2, "{elapsed:?} for {d:?}");
        }
    });
}

/// A green thread waiting on a timer parks; it does not hold its worker.
/// With one worker, another green thread makes progress meanwhile.
#[test]
fn a_waiting_timer_parks_only_its_green_thread() {
    watchdog(|| {
        let rt = runtime(1);
        rt.block_on(|| {
            let (done_tx, done_rx) = chan::bounded::<()>(1);
            let waiter = grove::go(move || {
                let r = chan::never::<()>().recv_timeout(Duration::from_millis(500));
                assert_eq!(r, Err(RecvTimeoutError::Timeout));
                // The other green thread finished while we waited.
                done_rx.try_recv()
            });
            let worker = grove::go(move || {
                let (tx, rx) = chan::bounded::<u32>(0);
                let echo = grove::go(move || rx.iter().count());
                (0..100).for_each(|i| tx.send(i).unwrap());
                drop(tx);
                assert_eq!(echo.join().unwrap(), 100);
                done_tx.send(()).unwrap();
            });
            worker.join().unwrap();
            assert_eq!(waiter.join().unwrap(), Ok(()));
        });
    });
}

#[test]
fn after_fires_once() {
    watchdog(|| {
        let rx = chan::after(Duration::from_millis(5));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let start = Instant::now();
        rx.recv().unwrap();
        assert!(start.elapsed() < LATE_LIMIT + Duration::from_millis(5));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        // A clone shares the one value.
        let rx = chan::after(Duration::from_millis(1));
        let rx2 = rx.clone();
        rx.recv().unwrap();
        assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty));
        // len counts the due value.
        let rx = chan::after(Duration::ZERO);
        assert_eq!(rx.len(), 1);
        rx.recv().unwrap();
        assert_eq!(rx.len(), 0);
    });
}

/// `after`'s value, chosen by a select whose operation is then dropped
/// unfinished, is given back: the next receive still gets it, once.
#[test]
fn after_keeps_its_value_when_a_chosen_receive_is_dropped() {
    watchdog(|| {
        let rx = chan::after(Duration::ZERO);
        for _ in 0..3 {
            let mut sel = Select::new();
            sel.recv(&rx);
            drop(sel.select());
            assert_eq!(rx.len(), 1, "the value is back");
        }
        let mut sel = Select::new();
        sel.recv(&rx);
        let oper = sel.select();
        assert!(oper.recv(&rx).is_ok());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "one value only");
    });
}

#[test]
fn tick_delivers_repeatedly_on_its_grid() {
    for_each_workers(|workers| {
        let period = Duration::from_millis(10);
        let rt = runtime(workers);
        rt.block_on(move || {
            let start = Instant::now();
            let ticker = chan::tick(period);
            let ticks: Vec<Instant> = (0..5).map(|_| ticker.recv().unwrap()).collect();
            let elapsed = start.elapsed();
            assert!(elapsed >= period * 5, "5 ticks in {elapsed:?}");
            assert!(
                elapsed < period * 5 + LATE_LIMIT,
                "5 ticks took {elapsed:?}"
            );
            assert!(ticks[0] >= start + period, "first tick early");
            for w in ticks.windows(2) {
                assert!(
                    w[1] >= w[0] + period,
                    "ticks closer than a period: {ticks:?}"
                );
            }
        });
    });
}

/// A slow receiver: the ticks it missed are dropped, not queued. After
/// sleeping five periods one receive returns at once with a recent tick
/// (not the stale first one), and the next waits for the next grid point.
#[test]
fn tick_drops_ticks_for_a_slow_receiver() {
    block_on_each(|_| {
        let period = Duration::from_millis(20);
        let start = Instant::now();
        let ticker = chan::tick(period);
        grove::thread::sleep(period * 5 + period / 2);
        let before = Instant::now();
        let t1 = ticker.recv().unwrap();
        assert!(before.elapsed() < LATE_LIMIT, "a due tick was not ready");
        assert!(
            t1 >= start + period * 4,
            "got a stale tick {:?} after start",
            t1 - start
        );
        let t2 = ticker.recv().unwrap();
        let after_t2 = Instant::now();
        assert!(t2 >= t1 + period, "missed ticks were queued");
        assert!(after_t2 >= t2, "received a tick before its time");
        // A try_recv right away finds nothing queued (unless a whole period
        // passed, which the loose bound allows).
        if after_t2.elapsed() < period / 2 {
            assert_eq!(ticker.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

#[test]
fn zero_durations() {
    watchdog(|| {
        let start = Instant::now();
        chan::after(Duration::ZERO).recv().unwrap();
        let (_tx, rx) = chan::bounded::<u8>(0);
        assert_eq!(
            rx.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout)
        );
        let got = select! {
            recv(rx) -> _v => false,
            default(Duration::ZERO) => true,
        };
        assert!(got);
        // A zero period: Go's `Tick` gives nil, a channel never ready.
        let ticker = chan::tick(Duration::ZERO);
        assert_eq!(ticker.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            ticker.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
        let got = select! {
            recv(ticker) -> _v => false,
            default => true,
        };
        assert!(got);
        assert!(start.elapsed() < LATE_LIMIT);
    });
}

/// `Duration::MAX` (and other timeouts too large for an `Instant`) mean
/// "no timeout": nothing panics, ready operations complete.
#[test]
fn duration_max_timeouts_do_not_panic() {
    block_on_each(|_| {
        let huge = [Duration::MAX, Duration::from_secs(u64::MAX / 2)];
        for d in huge {
            let (tx, rx) = chan::bounded::<u8>(1);
            assert_eq!(tx.send_timeout(1, d), Ok(()));
            assert_eq!(rx.recv_timeout(d), Ok(1));
            let got = select! {
                send(tx, 2) -> r => r.is_ok(),
                default(d) => false,
            };
            assert!(got);
            let mut sel = Select::new();
            sel.recv(&rx);
            let oper = sel.select_timeout(d).unwrap();
            assert_eq!(oper.recv(&rx), Ok(2));
            // A blocked receive with a huge timeout is woken by a send.
            let tx2 = tx.clone();
            let peer = grove::go(move || tx2.send(3).unwrap());
            assert_eq!(rx.recv_timeout(d), Ok(3));
            peer.join().unwrap();
            // A timer that will never fire.
            let never_fires = chan::after(d);
            assert_eq!(never_fires.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(
                never_fires.recv_timeout(Duration::from_millis(1)),
                Err(RecvTimeoutError::Timeout)
            );
        }
    });
}

#[test]
fn tick_with_duration_max_does_not_panic() {
    watchdog(|| {
        let ticker = chan::tick(Duration::MAX);
        assert_eq!(ticker.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(
            ticker.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
    });
}

/// `tick` and `after` as select arms next to a busy channel: the ticks
/// still come on their grid, and the `after` arm ends the loop on time.
#[test]
fn tick_and_after_in_a_select_loop() {
    block_on_each(|_| {
        let period = Duration::from_millis(10);
        let (tx, rx) = chan::bounded::<u32>(0);
        let feeder = grove::go(move || {
            // A value every 2 ms or so until the receiver goes away.
            while tx.send(0).is_ok() {
                grove::thread::sleep(Duration::from_millis(2));
            }
        });
        let start = Instant::now();
        let ticker = chan::tick(period);
        let stop = chan::after(period * 6);
        let (mut ticks, mut values) = (Vec::new(), 0);
        loop {
            select! {
                recv(rx) -> v => { v.unwrap(); values += 1 },
                recv(ticker) -> t => ticks.push(t.unwrap()),
                recv(stop) -> _t => break,
            }
        }
        assert_on_time("after in a select loop", start.elapsed(), period * 6);
        drop(rx);
        feeder.join().unwrap();
        assert!(values > 0);
        // Loose: a stalled loop drops ticks; a late stop may let one more in.
        assert!(
            (1..=7).contains(&ticks.len()),
            "{} ticks in 6 periods",
            ticks.len()
        );
        for w in ticks.windows(2) {
            assert!(w[1] >= w[0] + period, "ticks closer than a period");
        }
    });
}

/// `after_func` with a zero duration (Go's `AfterFunc(0, f)`): the function
/// runs at once, but in its own green thread, never inline in the caller;
/// the timer then says it fired (stop and reset find nothing to prevent);
/// a chain of them, each arming the next (Go's `BenchmarkAfterFunc`),
/// runs to its end.
#[test]
fn after_func_with_a_zero_duration_runs_at_once_in_its_own_green_thread() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    watchdog(|| {
        runtime(1).block_on(|| {
            let me = grove::thread::current().id();
            let (tx, rx) = chan::bounded(1);
            let ran_inline = Arc::new(AtomicU64::new(0));
            let flag = ran_inline.clone();
            let t = chan::after_func(Duration::ZERO, move || {
                flag.fetch_add(1, Ordering::SeqCst);
                tx.send(grove::thread::current().id()).unwrap();
            });
            // One worker: the function cannot have run before we park.
            assert_eq!(ran_inline.load(Ordering::SeqCst), 0, "ran inline");
            let theirs = rx.recv().unwrap();
            assert_ne!(theirs, me, "ran in the caller's green thread");
            assert!(!t.stop(), "it fired: nothing to stop");
            assert!(!t.reset(Duration::ZERO), "it ran: nothing to re-arm");

            const LINKS: u64 = 10_000;
            let count = Arc::new(AtomicU64::new(0));
            let (done_tx, done_rx) = chan::bounded(1);
            fn link(count: Arc<AtomicU64>, done: chan::Sender<()>) {
                if count.fetch_add(1, Ordering::SeqCst) + 1 == LINKS {
                    done.send(()).unwrap();
                    return;
                }
                let _ = chan::after_func(Duration::ZERO, move || link(count, done));
            }
            let c = count.clone();
            let _ = chan::after_func(Duration::ZERO, move || link(c, done_tx));
            done_rx.recv().unwrap();
            assert_eq!(count.load(Ordering::SeqCst), LINKS);
        })
    });
}
