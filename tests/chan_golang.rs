//! Ports of Go's channel tests (src/runtime/chan_test.go, The Go Authors,
//! BSD-style licence; crossbeam-channel's tests/golang.rs is an earlier Rust
//! port of the same file). Ported in spirit, not line by line: where Go
//! sleeps so that a goroutine "has surely blocked", these wait until the
//! green thread is parked on the channel (`Runtime::tasks`), and the sizes
//! are cut to suit a debug build. Each test names the Go test it ports.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chan_util::{block_on_each, for_each_workers, runtime, wait_blocked, watchdog};
use grove::chan::{self, Receiver, RecvError, Select, TryRecvError, TrySendError};
use grove::select;

/// Go's TestChan, ported: for every capacity 0..20, receives block on an
/// empty channel, sends block on a full one, close unblocks receivers,
/// FIFO, four goroutines' values all arrive, and len/cap.
#[test]
fn go_test_chan() {
    const N: usize = 200;
    const P: usize = 4;
    const L: usize = 500;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in 0..20usize {
            // Receive from an empty channel blocks; a send releases it.
            let (tx, rx) = chan::bounded::<usize>(cap);
            let received = Arc::new(AtomicBool::new(false));
            let flag = received.clone();
            let rx2 = rx.clone();
            let r = rt.spawn(move || {
                let v = rx2.recv();
                flag.store(true, Ordering::SeqCst);
                v
            });
            wait_blocked(&rt, "chan recv", 1);
            assert!(
                !received.load(Ordering::SeqCst),
                "chan[{cap}]: receive from empty chan"
            );
            // Non-blocking receive does not block.
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            tx.send(0).unwrap();
            assert_eq!(r.join().unwrap(), Ok(0));

            // Send to a full channel blocks; a receive releases it.
            for i in 0..cap {
                tx.send(i).unwrap();
            }
            let sent = Arc::new(AtomicBool::new(false));
            let flag = sent.clone();
            let tx2 = tx.clone();
            let s = rt.spawn(move || {
                tx2.send(cap).unwrap();
                flag.store(true, Ordering::SeqCst);
            });
            wait_blocked(&rt, "chan send", 1);
            assert!(
                !sent.load(Ordering::SeqCst),
                "chan[{cap}]: send to full chan"
            );
            assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));
            assert_eq!(rx.recv(), Ok(0));
            s.join().unwrap();
            assert!(sent.load(Ordering::SeqCst));
            assert_eq!(
                rx.iter().take(cap).collect::<Vec<_>>(),
                (1..=cap).collect::<Vec<_>>()
            );

            // Receive from a closed channel fails (Go: the zero value, !ok);
            // close unblocks a receiver.
            let rx2 = rx.clone();
            let r = rt.spawn(move || rx2.recv());
            wait_blocked(&rt, "chan recv", 1);
            tx.close();
            assert_eq!(r.join().unwrap(), Err(RecvError));
            assert_eq!(rx.recv(), Err(RecvError));

            // 200 integers arrive uncorrupted, in FIFO order.
            let (tx, rx) = chan::bounded::<usize>(cap);
            rt.spawn(move || (0..N).for_each(|i| tx.send(i).unwrap()));
            let got = rt
                .spawn(move || rx.iter().collect::<Vec<_>>())
                .join()
                .unwrap();
            assert_eq!(got, (0..N).collect::<Vec<_>>(), "chan[{cap}]");

            // 500 integers sent by each of 4 goroutines, received by 4: each
            // value arrives 4 times.
            let (tx, rx) = chan::bounded::<usize>(cap);
            for _ in 0..P {
                let tx = tx.clone();
                rt.spawn(move || (0..L).for_each(|i| tx.send(i).unwrap()));
            }
            drop(tx);
            let receivers: Vec<_> = (0..P)
                .map(|_| {
                    let rx = rx.clone();
                    rt.spawn(move || {
                        let mut seen = vec![0usize; L];
                        rx.iter().for_each(|v| seen[v] += 1);
                        seen
                    })
                })
                .collect();
            let mut seen = vec![0usize; L];
            for r in receivers {
                for (i, n) in r.join().unwrap().into_iter().enumerate() {
                    seen[i] += n;
                }
            }
            assert!(seen.iter().all(|&n| n == P), "chan[{cap}]: {seen:?}");

            // len and cap.
            let (tx, rx) = chan::bounded::<usize>(cap);
            assert_eq!((tx.len(), tx.capacity()), (0, Some(cap)));
            for i in 0..cap {
                tx.send(i).unwrap();
            }
            assert_eq!((rx.len(), rx.capacity()), (cap, Some(cap)));
        }
    });
}

/// Go's TestChanSendInterface, ported: trait objects through a channel and
/// through select send arms; with the buffer full the `default` arm runs
/// and the send arms' values are never built.
#[test]
fn go_test_chan_send_interface() {
    watchdog(|| {
        struct Mt(u32);
        let built = AtomicUsize::new(0);
        let build = |n: u32| -> Box<dyn Any + Send> {
            built.fetch_add(1, Ordering::SeqCst);
            Box::new(Mt(n))
        };
        let (tx, rx) = chan::bounded::<Box<dyn Any + Send>>(1);
        tx.send(build(1)).unwrap();
        let took_default = grove::select! {
            send(tx, build(2)) -> _r => false,
            default => true,
        };
        assert!(took_default);
        let took_default = grove::select! {
            send(tx, build(3)) -> _r => false,
            send(tx, build(4)) -> _r => false,
            default => true,
        };
        assert!(took_default);
        assert_eq!(
            built.load(Ordering::SeqCst),
            1,
            "values of unchosen arms were built"
        );
        let got = rx.recv().unwrap();
        assert_eq!(got.downcast_ref::<Mt>().map(|m| m.0), Some(1));
    });
}

/// Go's TestSelfSelect, ported: two green threads each select on both
/// ends of one channel; nothing crashes or deadlocks, and with an
/// unbuffered channel nobody receives its own value.
#[test]
fn go_test_self_select() {
    block_on_each(|_| {
        for cap in [0usize, 10] {
            let (tx, rx) = chan::bounded::<usize>(cap);
            let handles: Vec<_> = (0..2usize)
                .map(|p| {
                    let (tx, rx) = (tx.clone(), rx.clone());
                    grove::go(move || {
                        for i in 0..1000 {
                            let got = if p == 0 || i % 2 == 0 {
                                select! {
                                    send(tx, p) -> r => { r.unwrap(); None },
                                    recv(rx) -> v => Some(v.unwrap()),
                                }
                            } else {
                                select! {
                                    recv(rx) -> v => Some(v.unwrap()),
                                    send(tx, p) -> r => { r.unwrap(); None },
                                }
                            };
                            if cap == 0 {
                                assert_ne!(got, Some(p), "self receive");
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
        }
    });
}

/// Go's TestSelectStress, ported: per channel (two unbuffered, one of
/// capacity 2, one of 3) one plain sender and one plain receiver, plus one
/// green thread sending on all four in a single select and one receiving
/// from all four, switching a channel's arm off once it has done N
/// (`Select::remove`, Go's nil channel). Nothing may deadlock.
#[test]
fn go_test_select_stress() {
    const N: usize = 1500;
    block_on_each(|_| {
        let chans: Arc<Vec<_>> = Arc::new([0, 0, 2, 3].map(chan::bounded::<usize>).to_vec());
        let mut handles = Vec::new();
        for k in 0..4 {
            let c = chans.clone();
            handles.push(grove::go(move || {
                (0..N).for_each(|_| c[k].0.send(0).unwrap())
            }));
            let c = chans.clone();
            handles.push(grove::go(move || {
                (0..N).for_each(|_| c[k].1.recv().map(drop).unwrap())
            }));
        }
        let c = chans.clone();
        handles.push(grove::go(move || {
            let mut n = [0; 4];
            let mut sel = Select::new();
            let idx: Vec<usize> = (0..4).map(|k| sel.send(&c[k].0)).collect();
            for _ in 0..4 * N {
                let oper = sel.select();
                let k = idx.iter().position(|&i| i == oper.index()).unwrap();
                oper.send(&c[k].0, 0).unwrap();
                n[k] += 1;
                if n[k] == N {
                    sel.remove(idx[k]);
                }
            }
        }));
        let c = chans.clone();
        handles.push(grove::go(move || {
            let mut n = [0; 4];
            let mut sel = Select::new();
            let idx: Vec<usize> = (0..4).map(|k| sel.recv(&c[k].1)).collect();
            for _ in 0..4 * N {
                let oper = sel.select();
                let k = idx.iter().position(|&i| i == oper.index()).unwrap();
                oper.recv(&c[k].1).unwrap();
                n[k] += 1;
                if n[k] == N {
                    sel.remove(idx[k]);
                }
            }
        }));
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert!(chans.iter().all(|(_, rx)| rx.is_empty()));
    });
}

/// Go's TestSelectFairness, ported: two arms with values always ready (and
/// two that never are) are each chosen about half of the time. The bound
/// is 40-60 % of 10,000 trials, 20 standard deviations.
#[test]
fn go_test_select_fairness() {
    const TRIALS: usize = 10_000;
    watchdog(|| {
        let (tx1, rx1) = chan::bounded::<u8>(TRIALS + 1);
        let (tx2, rx2) = chan::bounded::<u8>(TRIALS + 1);
        for _ in 0..=TRIALS {
            tx1.send(1).unwrap();
            tx2.send(2).unwrap();
        }
        let (_tx3, rx3) = chan::bounded::<u8>(0);
        let (_tx4, rx4) = chan::bounded::<u8>(0);
        let (out_tx, out_rx) = chan::bounded::<u8>(0);
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        let chooser = grove::go(move || loop {
            let b = select! {
                recv(rx3) -> b => b.unwrap(),
                recv(rx4) -> b => b.unwrap(),
                recv(rx1) -> b => b.unwrap(),
                recv(rx2) -> b => b.unwrap(),
            };
            select! {
                send(out_tx, b) -> r => r.unwrap(),
                recv(done_rx) -> _v => return,
            }
        });
        let mut counts = [0usize; 3];
        for _ in 0..TRIALS {
            counts[out_rx.recv().unwrap() as usize] += 1;
        }
        drop(done_tx);
        chooser.join().unwrap();
        for c in &counts[1..] {
            assert!(
                (TRIALS * 4 / 10..=TRIALS * 6 / 10).contains(c),
                "unfair select: {counts:?}"
            );
        }
    });
}

/// Go's TestPingPongHog (src/runtime/proc_test.go), ported: on one worker
/// a pair of green threads that hand a token back and forth after a
/// million steps of work each, and a pair that do so after a thousand,
/// get CPU time within a factor of 20 of each other (Go's bound). Both
/// pairs hand off through run-next; shared by turn counts alone, the
/// heavy pair had a thousand times the light pair's CPU. The main green
/// thread's timer must also get its turn while both pairs run.
#[test]
fn go_test_ping_pong_hog() {
    const FACTOR: u64 = 20;
    watchdog(|| {
        runtime(1).block_on(|| {
            let (done_tx, done_rx) = chan::bounded::<bool>(0);
            let (hog_tx, hog_rx) = chan::bounded::<bool>(0);
            let (light_tx, light_rx) = chan::bounded::<bool>(0);
            let hog_count = Arc::new(AtomicUsize::new(0));
            let light_count = Arc::new(AtomicUsize::new(0));
            let run = |limit: usize,
                       counter: &Arc<AtomicUsize>,
                       wake_tx: &chan::Sender<bool>,
                       wake_rx: &Receiver<bool>| {
                let (counter, wake_tx, wake_rx) =
                    (counter.clone(), wake_tx.clone(), wake_rx.clone());
                let done = done_rx.clone();
                move || loop {
                    select! {
                        recv(done) -> _closed => return,
                        recv(wake_rx) -> token => {
                            token.unwrap();
                            let mut steps = 0;
                            for _ in 0..limit {
                                steps = std::hint::black_box(steps + 1);
                            }
                            counter.fetch_add(steps, Ordering::Relaxed);
                            if wake_tx.send(true).is_err() {
                                return;
                            }
                        },
                    }
                }
            };
            let mut pairs = Vec::new();
            for _ in 0..2 {
                pairs.push(grove::go(run(1_000_000, &hog_count, &hog_tx, &hog_rx)));
                pairs.push(grove::go(run(1_000, &light_count, &light_tx, &light_rx)));
            }
            hog_tx.send(true).unwrap();
            light_tx.send(true).unwrap();
            grove::thread::sleep(std::time::Duration::from_millis(100));
            done_tx.close();
            // The token in flight in each pair: take it, so that the green
            // thread holding it does not wait for a partner that has gone.
            hog_rx.recv().unwrap();
            light_rx.recv().unwrap();
            for pair in pairs {
                pair.join().unwrap();
            }
            let (hog, light) = (
                hog_count.load(Ordering::Relaxed) as u64,
                light_count.load(Ordering::Relaxed) as u64,
            );
            assert!(
                hog <= light * FACTOR && light <= hog * FACTOR,
                "want hog/light within [1/{FACTOR}, {FACTOR}]; got {hog}/{light} = {:.1}",
                hog as f64 / light as f64
            );
        });
    });
}

/// Go's TestNonblockRecvRace: a buffered value and a concurrent close; a
/// non-blocking receive must find the channel ready (the value, or closed),
/// never take `default`.
#[test]
fn go_test_nonblock_recv_race() {
    block_on_each(|_| {
        for _ in 0..2000 {
            let (tx, rx) = chan::bounded::<u32>(1);
            tx.send(1).unwrap();
            let rx2 = rx.clone();
            let h = grove::go(move || {
                select! {
                    recv(rx2) -> _v => true,
                    default => false,
                }
            });
            tx.close();
            let _ = rx.recv();
            assert!(h.join().unwrap(), "chan is not ready");
        }
    });
}

/// Go's TestNonblockSelectRace: `c2` is filled before `c1` is drained, so
/// at every instant one of them holds a value, and a non-blocking select
/// over both must never take `default`. Go's selectgo locks all the
/// channels of a select at once, which makes its readiness check atomic.
/// (grove polled them one at a time until 1ebe302, so the check could see
/// `c2` still empty and then `c1` already drained: about 1 % of rounds.)
///
/// To make the race likely rather than rare, the select has 62 idle arms
/// besides `c1` and `c2` (a wider window between the two checks), and both
/// sides start each round together by spinning on an atomic, the main side
/// after a delay that sweeps across rounds.
#[test]
fn go_test_nonblock_select_race() {
    nonblock_select_race(false);
}

/// Go's TestNonblockSelectRace2: the same, with `close(c2)` instead of a
/// send.
#[test]
fn go_test_nonblock_select_race2() {
    nonblock_select_race(true);
}

fn nonblock_select_race(close: bool) {
    const ROUNDS: usize = 1000;
    watchdog(move || {
        let rt = runtime(1);
        let start = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let (pairs_tx, pairs_rx) = chan::bounded::<(Receiver<u32>, Receiver<u32>)>(1);
        let (s, d) = (start.clone(), done.clone());
        let selector = rt.spawn(move || {
            let idle: Vec<_> = (0..62).map(|_| chan::bounded::<u32>(1)).collect();
            let mut defaults = 0;
            for round in 1..=ROUNDS {
                let (c1, c2) = pairs_rx.recv().unwrap();
                let mut sel = Select::new();
                for (_, rx) in &idle[..31] {
                    sel.recv(rx);
                }
                let a = sel.recv(&c1);
                for (_, rx) in &idle[31..] {
                    sel.recv(rx);
                }
                let b = sel.recv(&c2);
                spin_until(|| s.load(Ordering::Acquire) >= round);
                match sel.try_select() {
                    Ok(oper) if oper.index() == a => drop(oper.recv(&c1)),
                    Ok(oper) if oper.index() == b => drop(oper.recv(&c2)),
                    Ok(_) => unreachable!("an idle arm was ready"),
                    Err(_) => defaults += 1,
                }
                d.store(round, Ordering::Release);
            }
            defaults
        });
        for round in 1..=ROUNDS {
            let (tx1, rx1) = chan::bounded::<u32>(1);
            let (tx2, rx2) = chan::bounded::<u32>(1);
            tx1.send(1).unwrap();
            pairs_tx.send((rx1.clone(), rx2.clone())).unwrap();
            start.store(round, Ordering::Release);
            for _ in 0..(round % 16) * 64 {
                std::hint::spin_loop();
            }
            if close {
                tx2.close();
            } else {
                tx2.send(1).unwrap();
            }
            let _ = rx1.try_recv();
            spin_until(|| done.load(Ordering::Acquire) >= round);
        }
        let defaults = selector.join().unwrap();
        assert_eq!(
            defaults, 0,
            "no chan was ready, {defaults} times in {ROUNDS}"
        );
    });
}

/// Spins until `cond` holds (both sides of a round start within
/// nanoseconds of each other), giving the CPU away now and then so that an
/// oversubscribed machine does not stall.
fn spin_until(cond: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !cond() {
        spins += 1;
        if spins % 1024 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Go's TestSelectDuplicateChannel: a select waiting on one channel in two
/// arms (and on another) is woken through the other channel; it must leave
/// the first channel's queue intact for the goroutine queued behind it.
#[test]
fn go_test_select_duplicate_channel() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for _ in 0..20 {
            let (c_tx, c_rx) = chan::bounded::<i32>(0);
            let (d_tx, d_rx) = chan::bounded::<i32>(0);
            let (e_tx, e_rx) = chan::bounded::<i32>(0);
            let c = c_rx.clone();
            // Goroutine A: queued first on c, twice.
            rt.spawn(move || {
                select! {
                    recv(c) -> _v => panic!("A woken through c"),
                    recv(c) -> _v => panic!("A woken through c"),
                    recv(d_rx) -> v => assert_eq!(v, Ok(7)),
                }
                e_tx.send(9).unwrap();
            });
            wait_blocked(&rt, "select", 1);
            // Goroutine B: queued on c behind A.
            let b = rt.spawn(move || c_rx.recv());
            wait_blocked(&rt, "chan recv", 1);
            d_tx.send(7).unwrap(); // wakes A, which dequeues itself from c
            assert_eq!(e_rx.recv(), Ok(9));
            c_tx.send(8).unwrap(); // must wake B
            assert_eq!(b.join().unwrap(), Ok(8));
        }
    });
}

/// Go's TestPseudoRandomSend: a select with two send arms (`1` and `0`)
/// that parks until a receiver comes: both values must show up, also when
/// the select is blocked (unbuffered) rather than ready.
#[test]
fn go_test_pseudo_random_send() {
    const N: usize = 200;
    block_on_each(|_| {
        for cap in [0, N] {
            let (tx, rx) = chan::bounded::<usize>(cap);
            let reader = grove::go(move || {
                (0..N)
                    .map(|_| {
                        grove::thread::yield_now();
                        rx.recv().unwrap()
                    })
                    .collect::<Vec<_>>()
            });
            for _ in 0..N {
                select! {
                    send(tx, 1) -> r => r.unwrap(),
                    send(tx, 0) -> r => r.unwrap(),
                }
            }
            let got = reader.join().unwrap();
            let ones: usize = got.iter().sum();
            let zeros = N - ones;
            assert!(
                ones > N / 10 && zeros > N / 10,
                "want pseudorandom, got {zeros} zeros and {ones} ones (cap {cap})"
            );
        }
    });
}

/// Go's TestMultiConsumer: 23 workers ranging over one channel (some
/// yielding to mess with its FIFO-ish nature) forward to a result channel;
/// a feeder closes the work channel, then the results once all workers are
/// done. Count and sum must match.
#[test]
fn go_test_multi_consumer() {
    const NWORK: usize = 23;
    const NITER: usize = 27_182;
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    block_on_each(|_| {
        let (q_tx, q_rx) = chan::bounded::<usize>(NWORK * 3);
        let (r_tx, r_rx) = chan::bounded::<usize>(NWORK * 3);
        let workers: Vec<_> = (0..NWORK)
            .map(|w| {
                let (q_rx, r_tx) = (q_rx.clone(), r_tx.clone());
                grove::go(move || {
                    for v in &q_rx {
                        if PN[w % PN.len()] == v {
                            grove::thread::yield_now();
                        }
                        r_tx.send(v).unwrap();
                    }
                })
            })
            .collect();
        drop((q_rx, r_tx));
        let feeder = grove::go(move || {
            let mut expect = 0;
            for i in 0..NITER {
                let v = PN[i % PN.len()];
                expect += v;
                q_tx.send(v).unwrap();
            }
            drop(q_tx); // no more work
            workers.into_iter().for_each(|w| w.join().unwrap());
            // The workers' Senders of r are gone: r closes.
            expect
        });
        let (mut n, mut s) = (0, 0);
        for v in &r_rx {
            n += 1;
            s += v;
        }
        let expect = feeder.join().unwrap();
        assert_eq!((n, s), (NITER, expect));
    });
}
