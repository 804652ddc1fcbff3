//! Hand-offs between green threads placed on different workers
//! (`thread::Builder::on_worker`): every message crosses workers, so every
//! wake-up is a cross-worker one, and a receiver may still be spinning for
//! its unpark when it comes (`park`'s spin before a switch). Many rounds,
//! exact counts: nothing lost, nothing duplicated, no deadlock.
//!
//! The second half is about plain waits whose worker watches the packet
//! while they are parked (`Worker::watch` in the scheduler): a green thread
//! whose partner runs on another worker parks with its packet left for its
//! claimer to complete without a wake, and its own worker wakes it. Those
//! tests put green threads where every path of that runs: several waiters
//! on one worker (more than it watches at once), a green thread there that
//! never stops yielding (the worker never idles, so it must find completed
//! waits between its picks), claimers on the waiter's own worker and on
//! the other, a runtime dropped while waits are watched, and a wait in a
//! destructor during a panic.

#[path = "common/base.rs"]
mod base;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use base::{runtime, wait_blocked, watchdog};
use grove::chan::{bounded, Receiver, Sender};
use grove::thread::{Builder, JoinHandle};

/// Spawns `f` on worker `w` of the calling green thread's runtime.
fn on<T: Send + 'static>(w: usize, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    Builder::new()
        .on_worker(w)
        .spawn(f)
        .expect("a worker index below the worker count")
}

/// Under one watchdog, runs `body` as the main green thread of a runtime
/// of two workers, then of four with the partners on the first two (the
/// others idle, stealing nothing: placed green threads are never stolen);
/// `check` gets what it returned and the worker count.
fn on_split_runtimes<T: Send + 'static>(
    body: impl Fn() -> T + Send + Sync + Clone + 'static,
    check: impl Fn(T, usize) + Send + 'static,
) {
    watchdog(move || {
        for workers in [2, 4] {
            let body = body.clone();
            check(runtime(workers).block_on(body), workers);
        }
    });
}

/// A ping-pong pair over two unbuffered channels: the echo on worker 1
/// answers each value plus one, the driver on worker 0 sends `rounds`
/// values from `first` (even ones) and checks every answer. Returns their
/// handles ([`join_pair`]).
fn split_pair(rounds: u64, first: u64) -> (JoinHandle<()>, JoinHandle<u64>) {
    let (ping_tx, ping_rx) = bounded::<u64>(0);
    let (pong_tx, pong_rx) = bounded::<u64>(0);
    let echo = on(1, move || {
        let mut n = 0;
        for v in ping_rx.iter() {
            pong_tx.send(v + 1).unwrap();
            n += 1;
        }
        n
    });
    let driver = on(0, move || {
        for round in 0..rounds {
            let v = first + round * 2;
            ping_tx.send(v).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), v + 1, "round {round} from {first}");
        }
    });
    (driver, echo)
}

/// Joins a [`split_pair`]: how many values its echo answered.
fn join_pair((driver, echo): (JoinHandle<()>, JoinHandle<u64>)) -> u64 {
    driver.join().unwrap();
    echo.join().unwrap()
}

#[test]
fn pingpong_across_workers_echoes_every_value_once() {
    const ROUNDS: u64 = 2_000;
    let body = || join_pair(split_pair(ROUNDS, 0));
    on_split_runtimes(body, |echoed, workers| {
        assert_eq!(echoed, ROUNDS, "{workers} workers");
    });
}

/// Producers on worker 0 send `per` values each (1..=per, offset by
/// producer), consumers (consumer `c` on worker `consumer_on(c)`) sum what
/// they receive. Returns the sum and the count received.
fn producers_and_consumers(
    cap: usize,
    producers: u64,
    consumers: usize,
    per: u64,
    consumer_on: fn(usize) -> usize,
) -> (u64, u64) {
    let (tx, rx) = bounded::<u64>(cap);
    let sum = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..producers)
        .map(|p| {
            let tx: Sender<u64> = tx.clone();
            on(0, move || {
                for v in 1..=per {
                    tx.send(p * per + v).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> = (0..consumers)
        .map(|c| {
            let rx: Receiver<u64> = rx.clone();
            let (sum, count) = (sum.clone(), count.clone());
            on(consumer_on(c), move || {
                for v in rx.iter() {
                    sum.fetch_add(v, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    drop(rx);
    senders.into_iter().for_each(|h| h.join().unwrap());
    receivers.into_iter().for_each(|h| h.join().unwrap());
    (sum.load(Ordering::SeqCst), count.load(Ordering::SeqCst))
}

#[test]
fn producers_and_consumers_across_workers_lose_nothing() {
    const PER: u64 = 1_000;
    const SHAPES: [(usize, u64, usize); 4] = [(0, 1, 1), (0, 4, 4), (16, 1, 1), (16, 4, 4)];
    let body = || {
        SHAPES.map(|(cap, producers, consumers)| {
            producers_and_consumers(cap, producers, consumers, PER, |_| 1)
        })
    };
    on_split_runtimes(body, |results, workers| {
        let cases = SHAPES.into_iter().zip(results).map(|((cap, p, c), got)| {
            let what = format!("{workers} workers, cap {cap}, {p}P/{c}C");
            (what, p * PER, got)
        });
        assert_every_value_once(cases);
    });
}

/// For each case (what it was, values sent, what `producers_and_consumers`
/// returned): the values `1..=n` were each received once, no more.
fn assert_every_value_once(cases: impl IntoIterator<Item = (String, u64, (u64, u64))>) {
    for (what, n, got) in cases {
        assert_eq!(got, (n * (n + 1) / 2, n), "{what}");
    }
}

#[test]
fn a_select_across_workers_receives_every_value_once() {
    const PER: u64 = 2_000;
    let body = || {
        let (ta, ra) = bounded::<u64>(8);
        let (tb, rb) = bounded::<u64>(0);
        let a = on(0, move || (1..=PER).for_each(|v| ta.send(v).unwrap()));
        let b = on(0, move || {
            (PER + 1..=2 * PER).for_each(|v| tb.send(v).unwrap())
        });
        let consumer = on(1, move || {
            let never = grove::chan::never::<u64>();
            let (mut a_open, mut b_open) = (true, true);
            let (mut sum, mut count) = (0u64, 0u64);
            while a_open || b_open {
                let ra = if a_open { &ra } else { &never };
                let rb = if b_open { &rb } else { &never };
                grove::select! {
                    recv(*ra) -> v => match v {
                        Ok(v) => { sum += v; count += 1; }
                        Err(_) => a_open = false,
                    },
                    recv(*rb) -> v => match v {
                        Ok(v) => { sum += v; count += 1; }
                        Err(_) => b_open = false,
                    },
                }
            }
            (sum, count)
        });
        a.join().unwrap();
        b.join().unwrap();
        consumer.join().unwrap()
    };
    on_split_runtimes(body, |got, workers| {
        let n = 2 * PER;
        assert_eq!(got, (n * (n + 1) / 2, n), "{workers} workers");
    });
}

#[test]
fn a_mutex_shared_across_workers_counts_every_increment() {
    const PER: u64 = 5_000;
    let body = || {
        let counter = Arc::new(grove::sync::Mutex::new(0u64));
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let counter = counter.clone();
                on(i % 2, move || {
                    for _ in 0..PER {
                        *counter.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let total = *counter.lock().unwrap();
        total
    };
    on_split_runtimes(body, |total, workers| {
        assert_eq!(total, 4 * PER, "{workers} workers");
    });
}

/// A green thread on worker `w` that yields until `stop` is raised, so
/// that its worker always has something to run; returns its yields.
fn busy_yielder(w: usize, stop: &Arc<AtomicBool>) -> JoinHandle<u64> {
    let stop = stop.clone();
    on(w, move || {
        let mut yields = 0u64;
        while !stop.load(Ordering::Relaxed) {
            grove::thread::yield_now();
            yields += 1;
        }
        yields
    })
}

/// [`producers_and_consumers`] with consumers alternating between workers
/// 0 and 1 (so a claimer is sometimes on its waiter's worker, sometimes
/// not) and, with `yielder`, a green thread on worker 0 yielding
/// throughout.
fn mixed(cap: usize, producers: u64, consumers: usize, per: u64, yielder: bool) -> (u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let busy = yielder.then(|| busy_yielder(0, &stop));
    let got = producers_and_consumers(cap, producers, consumers, per, |c| c % 2);
    stop.store(true, Ordering::Relaxed);
    if let Some(busy) = busy {
        busy.join().unwrap();
    }
    got
}

#[test]
fn many_waiters_on_one_worker_lose_nothing_beside_a_yielder() {
    const PER: u64 = 500;
    // (capacity, producers, consumers, yielder): up to 8 producers on one
    // worker, more than it watches at once.
    const SHAPES: [(usize, u64, usize, bool); 6] = [
        (0, 8, 1, false),
        (0, 8, 4, true),
        (4, 8, 2, true),
        (0, 2, 8, true),
        (1, 6, 6, false),
        (0, 1, 1, true),
    ];
    watchdog(|| {
        for workers in [2, 3] {
            let got =
                runtime(workers).block_on(|| SHAPES.map(|(cap, p, c, y)| mixed(cap, p, c, PER, y)));
            let cases = SHAPES.into_iter().zip(got).map(|((cap, p, c, y), got)| {
                let what = format!("{workers} workers, cap {cap}, {p}P/{c}C, yielder {y}");
                (what, p * PER, got)
            });
            assert_every_value_once(cases);
        }
    });
}

#[test]
fn ping_pong_pairs_sharing_a_worker_echo_every_value_once() {
    // Four pairs, each split across the two workers, all handing off at
    // once: each worker holds four waiters whose partners are elsewhere.
    const ROUNDS: u64 = 1_000;
    const PAIRS: u64 = 4;
    watchdog(|| {
        for _ in 0..3 {
            let echoed = runtime(2).block_on(|| {
                let pairs: Vec<_> = (0..PAIRS)
                    .map(|p| split_pair(ROUNDS, p * ROUNDS * 4))
                    .collect();
                pairs.into_iter().map(join_pair).sum::<u64>()
            });
            assert_eq!(echoed, PAIRS * ROUNDS);
        }
    });
}

/// OS threads that spin until `stop` is raised, one more than the CPUs:
/// the workers' OS threads are preempted while they run and while they
/// spin, and a worker that sees it stops spinning for a while
/// (`Worker::crowded` in the scheduler). Returns their handles.
fn busy_os_threads(stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (0..=cpus)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut spins = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                    spins += 1;
                }
                spins
            })
        })
        .collect()
}

/// Raises its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn hand_offs_across_workers_beside_busy_os_threads_lose_nothing() {
    // More runnable OS threads than CPUs: spins are cut short or skipped
    // (a wait parks at once, a worker sleeps after a brief look), and
    // every hand-off must still arrive exactly once, in both placements.
    const ROUNDS: u64 = 2_000;
    const PER: u64 = 500;
    const SHAPES: [(usize, u64, usize); 3] = [(0, 1, 1), (0, 3, 2), (8, 2, 2)];
    watchdog(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = busy_os_threads(&stop);
        // Raised however the body ends: a failed assertion must not leave
        // the busy threads spinning through the other tests.
        let _stop_busy = StopOnDrop(stop.clone());
        for workers in [2, 3] {
            let (echoed, got) = runtime(workers).block_on(|| {
                let pairs: Vec<_> = (0..2).map(|p| split_pair(ROUNDS, p * ROUNDS * 4)).collect();
                let echoed = pairs.into_iter().map(join_pair).sum::<u64>();
                let got = SHAPES.map(|(cap, p, c)| mixed(cap, p, c, PER, false));
                (echoed, got)
            });
            assert_eq!(echoed, 2 * ROUNDS, "{workers} workers");
            let cases = SHAPES.into_iter().zip(got).map(|((cap, p, c), got)| {
                let what = format!("{workers} workers beside busy threads, cap {cap}, {p}P/{c}C");
                (what, p * PER, got)
            });
            assert_every_value_once(cases);
        }
        stop.store(true, Ordering::Relaxed);
        for b in busy {
            assert!(b.join().unwrap() > 0, "a busy thread ran");
        }
    });
}

#[test]
fn dropping_a_runtime_unwinds_green_threads_whose_waits_are_watched() {
    // Waiters on worker 0 first get answers from worker 1 (so their next
    // waits are watched even beside other ready green threads), then wait
    // on channels nobody will ever answer; the runtime is dropped while
    // they are parked, and each must be unwound, its packet's watch ended
    // before its stack goes.
    const WAITERS: usize = 6;
    const WARM_UP: u64 = 200;
    watchdog(|| {
        for round in 0..20 {
            let rt = runtime(2);
            let dropped = Arc::new(AtomicU64::new(0));
            let (never_tx, never_rx) = bounded::<u64>(0);
            let handles = rt.block_on({
                let dropped = dropped.clone();
                move || {
                    let stop = Arc::new(AtomicBool::new(false));
                    let busy = busy_yielder(0, &stop);
                    let mut handles = Vec::new();
                    for w in 0..WAITERS {
                        let (tx, rx) = bounded::<u64>(0);
                        let never_rx = never_rx.clone();
                        let dropped = dropped.clone();
                        let waiter = on(0, move || {
                            struct CountDrop(Arc<AtomicU64>);
                            impl Drop for CountDrop {
                                fn drop(&mut self) {
                                    self.0.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            let _guard = CountDrop(dropped);
                            let got: u64 = (0..WARM_UP).map(|_| rx.recv().unwrap()).sum();
                            assert_eq!(got, WARM_UP * (WARM_UP - 1) / 2, "waiter {w}");
                            // Parked here until the runtime is dropped.
                            let _ = never_rx.recv();
                            unreachable!("nobody sends on this channel");
                        });
                        let feeder = on(1, move || (0..WARM_UP).for_each(|v| tx.send(v).unwrap()));
                        feeder.join().unwrap();
                        handles.push(waiter);
                    }
                    stop.store(true, Ordering::Relaxed);
                    busy.join().unwrap();
                    handles
                }
            });
            wait_blocked(&rt, "chan recv", WAITERS);
            drop(rt);
            assert_eq!(
                dropped.load(Ordering::SeqCst),
                WAITERS as u64,
                "round {round}: every waiter unwound"
            );
            for h in handles {
                assert!(
                    h.join().is_err(),
                    "round {round}: an unwound waiter's join is Err"
                );
            }
            drop(never_tx);
        }
    });
}

#[test]
fn a_wait_in_a_destructor_during_a_panic_is_woken_from_another_worker() {
    // A green thread whose waits were answered from another worker panics;
    // a destructor on its way out receives once more. A wait while
    // panicking blocks the worker's OS thread instead of switching, so
    // nobody would be there to watch its packet: it must be woken the
    // ordinary way. The sender holds back for a varying number of yields,
    // so the receiver is found spinning, parked, or not yet waiting.
    const WARM_UP: u64 = 100;
    struct ReceiveOnDrop {
        ready: Sender<()>,
        rx: Receiver<u64>,
        got: Arc<AtomicU64>,
    }
    impl Drop for ReceiveOnDrop {
        fn drop(&mut self) {
            self.ready.send(()).unwrap();
            let v = self.rx.recv().expect("the sender sends once");
            self.got.store(v, Ordering::SeqCst);
        }
    }
    watchdog(|| {
        let rt = runtime(2);
        for round in 0..40u64 {
            let got = Arc::new(AtomicU64::new(0));
            let outcome = rt.block_on({
                let got = got.clone();
                move || {
                    let (tx, rx) = bounded::<u64>(0);
                    let (last_tx, last_rx) = bounded::<u64>(0);
                    let (ready_tx, ready_rx) = bounded::<()>(1);
                    let waiter = on(0, move || {
                        let _on_drop = ReceiveOnDrop {
                            ready: ready_tx,
                            rx: last_rx,
                            got,
                        };
                        let warm: u64 = (0..WARM_UP).map(|_| rx.recv().unwrap()).sum();
                        assert_eq!(warm, WARM_UP * (WARM_UP - 1) / 2);
                        panic!("on purpose, round {round}");
                    });
                    let feeder = on(1, move || {
                        (0..WARM_UP).for_each(|v| tx.send(v).unwrap());
                        ready_rx.recv().unwrap();
                        for _ in 0..[0, 10, 100, 1_000][round as usize % 4] {
                            grove::thread::yield_now();
                        }
                        last_tx.send(1_000 + round).unwrap();
                    });
                    feeder.join().unwrap();
                    waiter.join().is_err()
                }
            });
            assert!(outcome, "round {round}: the waiter panicked");
            assert_eq!(got.load(Ordering::SeqCst), 1_000 + round, "round {round}");
        }
    });
}
