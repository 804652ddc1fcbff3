//! Hand-offs between green threads placed on different workers
//! (`thread::Builder::on_worker`): every message crosses workers, so every
//! wake-up is a cross-worker one, and a receiver may still be spinning for
//! its unpark when it comes (`park`'s spin before a switch). Many rounds,
//! exact counts: nothing lost, nothing duplicated, no deadlock.

#[path = "common/base.rs"]
mod base;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base::{runtime, watchdog};
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

#[test]
fn pingpong_across_workers_echoes_every_value_once() {
    const ROUNDS: u64 = 2_000;
    let body = || {
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
            for round in 0..ROUNDS {
                ping_tx.send(round * 2).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), round * 2 + 1, "round {round}");
            }
        });
        driver.join().unwrap();
        echo.join().unwrap()
    };
    on_split_runtimes(body, |echoed, workers| {
        assert_eq!(echoed, ROUNDS, "{workers} workers");
    });
}

/// Producers on worker 0 send `per` values each (1..=per, offset by
/// producer), consumers on worker 1 sum what they receive.
fn producers_and_consumers(cap: usize, producers: u64, consumers: usize, per: u64) -> (u64, u64) {
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
        .map(|_| {
            let rx: Receiver<u64> = rx.clone();
            let (sum, count) = (sum.clone(), count.clone());
            on(1, move || {
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
            producers_and_consumers(cap, producers, consumers, PER)
        })
    };
    on_split_runtimes(body, |results, workers| {
        for ((cap, producers, consumers), got) in SHAPES.into_iter().zip(results) {
            let n = producers * PER;
            assert_eq!(
                got,
                (n * (n + 1) / 2, n),
                "{workers} workers, cap {cap}, {producers}P/{consumers}C"
            );
        }
    });
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
