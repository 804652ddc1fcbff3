//! `grove::sync::mpsc`, std's `mpsc` on grove's channels, through std's own
//! test shapes with the import swapped: smoke, ports and channels gone,
//! stress with exact counts, `sync_channel` bounds and rendezvous, timeouts,
//! the three iterators, `try_recv` states — each in green threads on 1, 2, 4
//! and 8 workers, and between green and OS threads. The point of the twin:
//! a receive parks the green thread, so on one worker the sender it waits
//! for still runs (std's would block that worker for good).

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::sync::mpsc::{
    channel, sync_channel, Receiver, RecvError, RecvTimeoutError, SendError, Sender, SyncSender,
    TryRecvError, TrySendError,
};
use grove::sync::Arc;
use grove::thread;
use sync_util::{block_on_each, runtime, wait_blocked, watchdog, LATE_LIMIT};

#[test]
fn the_error_types_are_std_s() {
    // Code that names std's error types keeps compiling after the swap.
    let e: std::sync::mpsc::RecvError = RecvError;
    let t: std::sync::mpsc::TryRecvError = TryRecvError::Empty;
    let r: std::sync::mpsc::RecvTimeoutError = RecvTimeoutError::Timeout;
    let s: std::sync::mpsc::SendError<u8> = SendError(1);
    let f: std::sync::mpsc::TrySendError<u8> = TrySendError::Full(2);
    assert_eq!(e.to_string(), "receiving on a closed channel");
    assert_eq!(t.to_string(), "receiving on an empty channel");
    assert_eq!(r.to_string(), "timed out waiting on channel");
    assert_eq!(s.to_string(), "sending on a closed channel");
    assert_eq!(f.to_string(), "sending on a full channel");
}

#[test]
fn smoke() {
    block_on_each(|_| {
        let (tx, rx) = channel::<i32>();
        tx.send(1).unwrap();
        assert_eq!(rx.recv().unwrap(), 1);
        let (tx, rx) = sync_channel::<i32>(1);
        tx.send(1).unwrap();
        assert_eq!(rx.recv().unwrap(), 1);
    });
}

#[test]
fn one_worker_receive_lets_its_sender_run() {
    // Both ends on the one worker: with std's mpsc the first recv would
    // block the worker and the sender would never run.
    watchdog(|| {
        runtime(1).block_on(|| {
            let (ping_tx, ping_rx) = sync_channel::<u32>(0);
            let (pong_tx, pong_rx) = sync_channel::<u32>(0);
            let echo = thread::spawn(move || {
                for v in ping_rx.iter() {
                    pong_tx.send(v + 1).unwrap();
                }
            });
            for i in 0..1000 {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv(), Ok(i + 1));
            }
            drop(ping_tx);
            echo.join().unwrap();
            assert_eq!(pong_rx.recv(), Err(RecvError));
        });
    });
}

#[test]
fn spawn_sched_as_std_s_thread_test() {
    // std's `test_spawn_sched`, imports swapped: a chain of ten green threads,
    // the last one sends.
    block_on_each(|_| {
        let (tx, rx) = channel();
        fn f(i: i32, tx: Sender<()>) {
            let tx = tx.clone();
            thread::spawn(move || {
                if i == 0 {
                    tx.send(()).unwrap();
                } else {
                    f(i - 1, tx);
                }
            });
        }
        f(10, tx);
        rx.recv().unwrap();
    });
}

#[test]
fn drop_full_frees_the_values() {
    block_on_each(|_| {
        let value = Arc::new(());
        let (tx, rx) = channel::<Arc<()>>();
        tx.send(value.clone()).unwrap();
        let (stx, srx) = sync_channel::<Arc<()>>(1);
        stx.send(value.clone()).unwrap();
        assert_eq!(Arc::strong_count(&value), 3);
        drop((tx, rx, stx, srx));
        assert_eq!(Arc::strong_count(&value), 1);
    });
}

#[test]
fn port_gone_hands_the_value_back() {
    block_on_each(|_| {
        let (tx, rx) = channel::<i32>();
        drop(rx);
        assert_eq!(tx.send(1), Err(SendError(1)));
        let (stx, srx) = sync_channel::<i32>(0);
        drop(srx);
        assert_eq!(stx.send(2), Err(SendError(2)));
        assert_eq!(stx.try_send(3), Err(TrySendError::Disconnected(3)));
    });
}

#[test]
fn a_parked_sync_sender_gets_its_value_back_when_the_port_goes() {
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            let (tx, rx) = sync_channel::<u64>(0);
            let sender = rt.spawn(move || tx.send(7));
            wait_blocked(&rt, "chan send", 1);
            drop(rx);
            assert_eq!(sender.join().unwrap(), Err(SendError(7)));
        }
    });
}

#[test]
fn chan_gone_after_the_buffered_values() {
    block_on_each(|_| {
        let (tx, rx) = channel::<i32>();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(1)),
            Err(RecvTimeoutError::Disconnected)
        );
    });
}

#[test]
fn a_parked_receiver_wakes_when_the_last_sender_goes() {
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            let (tx, rx) = channel::<u64>();
            let tx2 = tx.clone();
            let receiver = rt.spawn(move || rx.recv());
            wait_blocked(&rt, "chan recv", 1);
            drop(tx);
            drop(tx2);
            assert_eq!(receiver.join().unwrap(), Err(RecvError));
        }
    });
}

#[test]
fn stress_shared_exact_counts() {
    const SENDERS: usize = 8;
    const PER: usize = 5_000;
    block_on_each(|_| {
        let (tx, rx) = channel::<(usize, usize)>();
        let (stx, srx) = sync_channel::<(usize, usize)>(16);
        let mut senders = Vec::new();
        for s in 0..SENDERS {
            let (tx, stx) = (tx.clone(), stx.clone());
            senders.push(thread::spawn(move || {
                for i in 0..PER {
                    tx.send((s, i)).unwrap();
                    stx.send((s, i)).unwrap();
                }
            }));
        }
        drop((tx, stx));
        // The bounded channel fills up: drain it in its own green thread.
        let bounded = thread::spawn(move || srx.iter().collect::<Vec<_>>());
        let unbounded: Vec<_> = rx.iter().collect();
        for got in [unbounded, bounded.join().unwrap()] {
            assert_eq!(got.len(), SENDERS * PER);
            let mut next = [0usize; SENDERS];
            for (s, i) in got {
                assert_eq!(i, next[s], "sender {s}'s values out of order");
                next[s] += 1;
            }
            assert!(next.iter().all(|&n| n == PER));
        }
        for s in senders {
            s.join().unwrap();
        }
    });
}

#[test]
fn green_and_os_threads_share_the_channel() {
    watchdog(|| {
        let rt = runtime(2);
        let (to_green, from_os) = sync_channel::<u32>(0);
        let (to_os, from_green) = channel::<u32>();
        let green = rt.spawn(move || {
            let mut sum = 0;
            for v in from_os.iter() {
                sum += v;
                to_os.send(v * 2).unwrap();
            }
            sum
        });
        let mut doubled = 0;
        for v in 0..500 {
            to_green.send(v).unwrap();
            doubled += from_green.recv().unwrap();
        }
        drop(to_green);
        assert_eq!(green.join().unwrap(), (0..500).sum::<u32>());
        assert_eq!(doubled, 2 * (0..500).sum::<u32>());
        assert_eq!(from_green.recv(), Err(RecvError));
    });
}

#[test]
fn sync_channel_bound_and_rendezvous() {
    block_on_each(|_| {
        let (tx, rx) = sync_channel::<i32>(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.recv(), Ok(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3]);

        // Rendezvous: no receiver waiting, no room.
        let (tx, rx) = sync_channel::<i32>(0);
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        let got = AtomicUsize::new(0);
        thread::scope(|s| {
            let got = &got;
            // A Receiver is not Sync (std's rule): the scoped thread owns it.
            s.spawn(move || {
                got.store(rx.recv().unwrap() as usize, Ordering::SeqCst);
            });
            // The send returns only once the receive has taken the value.
            tx.send(5).unwrap();
        });
        assert_eq!(got.load(Ordering::SeqCst), 5);
    });
}

#[test]
fn recv_timeout_times_out_never_early_and_still_receives() {
    block_on_each(|_| {
        let (tx, rx) = channel::<i32>();
        let wait = Duration::from_millis(20);
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
        let took = start.elapsed();
        assert!(took >= wait, "timed out early: {took:?}");
        assert!(took < wait + LATE_LIMIT, "timed out late: {took:?}");

        let sender = thread::spawn(move || tx.send(9).unwrap());
        // A timeout beyond any representable deadline waits like recv.
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(9));
        sender.join().unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::MAX),
            Err(RecvTimeoutError::Disconnected)
        );
    });
}

#[test]
fn try_recv_states() {
    block_on_each(|_| {
        let (tx, rx) = channel::<i32>();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        tx.send(1).unwrap();
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

#[test]
fn the_three_iterators() {
    block_on_each(|_| {
        // iter: parks, ends on disconnect (std's test_recv_iter_break shape too).
        let (tx, rx) = channel::<i32>();
        let producer = thread::spawn(move || {
            for i in 0..10 {
                tx.send(i).unwrap();
            }
        });
        let mut count = 0;
        for v in rx.iter() {
            if v >= 4 {
                break;
            }
            count += v;
        }
        assert_eq!(count, 6);
        producer.join().unwrap();
        assert_eq!(rx.iter().collect::<Vec<_>>(), [5, 6, 7, 8, 9]);

        // try_iter: only what is ready now.
        let (tx, rx) = channel::<i32>();
        assert_eq!(rx.try_iter().next(), None);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(rx.try_iter().next(), None);

        // into_iter, borrowed and owned.
        let (tx, rx) = channel::<i32>();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let mut borrowed = Vec::new();
        for v in &rx {
            borrowed.push(v);
            if borrowed.len() == 2 {
                break;
            }
        }
        let owned: Vec<i32> = rx.into_iter().collect();
        assert_eq!((borrowed, owned), (vec![0, 1], vec![2]));
    });
}

#[test]
fn a_receiver_moves_to_another_green_thread() {
    block_on_each(|_| {
        let (tx, rx): (SyncSender<String>, Receiver<String>) = sync_channel(1);
        let consumer = thread::spawn(move || rx.iter().collect::<Vec<_>>().join(","));
        for word in ["a", "b", "c"] {
            tx.send(word.to_string()).unwrap();
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), "a,b,c");
    });
}
