//! `grove::chan` against the contract of `grove::chan` (its module docs): every method of `Sender` and
//! `Receiver`, the error types, unbuffered rendezvous, FIFO order, close
//! semantics, MPMC clones, every mix of green threads and OS threads, and
//! what `Runtime::tasks` says about channel waits. Ports of Go's TestChan
//! and TestChanSendInterface are in chan_golang.rs.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::any::Any;
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chan_util::{
    block_on_each, for_each_workers, runtime, wait_blocked, watchdog, DropCount, Tracked,
};
use grove::chan::{
    self, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError,
};

/// The capacities most tests sweep; `None` is unbounded.
const CAPS: [Option<usize>; 4] = [Some(0), Some(1), Some(64), None];

fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    match cap {
        Some(n) => chan::bounded(n),
        None => chan::unbounded(),
    }
}

fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}
fn assert_error<E: Error + Send + Sync + 'static>() {}
fn assert_value_traits<E: Clone + PartialEq + Eq + std::fmt::Debug>() {}

#[test]
fn ends_are_clone_send_sync() {
    assert_clone_send_sync::<Sender<i32>>();
    assert_clone_send_sync::<Receiver<i32>>();
    // Not Sync, not Clone payloads still give Send + Sync ends (like Go).
    assert_clone_send_sync::<Sender<std::cell::Cell<u8>>>();
    assert_clone_send_sync::<Receiver<Box<dyn Any + Send>>>();
}

#[test]
fn capacity_and_len() {
    let (tx, rx) = chan::bounded::<u8>(0);
    assert_eq!((tx.capacity(), tx.len(), rx.len()), (Some(0), 0, 0));
    assert!(tx.is_empty() && rx.is_empty());
    // crossbeam's `is_full`: an unbuffered channel always is.
    assert!(tx.is_full() && rx.is_full());

    let (tx, rx) = chan::bounded(3);
    assert_eq!(tx.capacity(), Some(3));
    for i in 0..3 {
        assert_eq!((tx.len(), rx.len()), (i, i));
        tx.send(i).unwrap();
    }
    assert_eq!((tx.len(), rx.len()), (3, 3));
    assert!(tx.is_full() && rx.is_full());
    assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
    rx.recv().unwrap();
    assert_eq!((tx.len(), rx.len()), (2, 2));
    assert!(!tx.is_full() && !rx.is_full());

    let (tx, rx) = chan::unbounded();
    assert_eq!(tx.capacity(), None);
    for i in 0..1000 {
        tx.send(i).unwrap();
    }
    assert_eq!((tx.len(), rx.len()), (1000, 1000));
    assert!(
        !tx.is_full() && !rx.is_full(),
        "an unbounded channel never is"
    );
    assert_eq!(rx.try_iter().count(), 1000);
    assert_eq!(rx.len(), 0);
    // Timers and `never`: full once due, and always.
    assert!(chan::never::<u8>().is_full());
    let timer = chan::after(std::time::Duration::ZERO);
    assert!(timer.is_full(), "due at once");
    timer.recv().unwrap();
    assert!(!timer.is_full());
}

#[test]
fn try_send_and_try_recv() {
    for cap in CAPS {
        let (tx, rx) = make::<String>(cap);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let room = cap.unwrap_or(100);
        for i in 0..room {
            tx.try_send(i.to_string()).unwrap();
        }
        if cap.is_some() {
            // Full (unbuffered: nobody waits): the value comes back intact.
            assert_eq!(tx.try_send("x".into()), Err(TrySendError::Full("x".into())));
        }
        for i in 0..room {
            assert_eq!(rx.try_recv(), Ok(i.to_string()));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(tx.close());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            tx.try_send("y".into()),
            Err(TrySendError::Disconnected("y".into()))
        );
    }
}

#[test]
fn close_returns_true_once_and_is_closed_follows() {
    let (tx, rx) = chan::bounded::<i32>(2);
    let tx2 = tx.clone();
    let rx2 = rx.clone();
    assert!(!tx.is_closed() && !rx.is_closed());
    assert!(tx.close());
    assert!(!tx.close());
    assert!(!tx2.close());
    assert!(tx.is_closed() && tx2.is_closed() && rx.is_closed() && rx2.is_closed());
}

#[test]
fn buffered_values_are_received_after_close() {
    for cap in [Some(1), Some(4), Some(64), None] {
        let (tx, rx) = make::<u32>(cap);
        let n = cap.unwrap_or(500) as u32;
        for i in 0..n {
            tx.send(i).unwrap();
        }
        assert!(tx.close());
        // Closed from this moment, though values remain.
        assert!(rx.is_closed() && tx.is_closed());
        assert_eq!(rx.len(), n as usize);
        let got: Vec<u32> = rx.iter().collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}

#[test]
fn sends_on_a_closed_channel_return_the_value() {
    for cap in CAPS {
        let (tx, rx) = make::<Vec<u8>>(cap);
        tx.close();
        assert_eq!(tx.send(vec![1, 2]), Err(SendError(vec![1, 2])));
        assert_eq!(
            tx.send_timeout(vec![3], Duration::from_secs(5)),
            Err(SendTimeoutError::Disconnected(vec![3]))
        );
        assert_eq!(
            tx.try_send(vec![4]),
            Err(TrySendError::Disconnected(vec![4]))
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}

#[test]
fn dropping_the_last_sender_closes() {
    let (tx, rx) = chan::bounded::<i32>(4);
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "a clone is still alive");
    tx2.send(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(rx.recv(), Err(RecvError));
}

#[test]
fn dropping_the_last_receiver_makes_sends_fail() {
    for cap in CAPS {
        let (tx, rx) = make::<String>(cap);
        let rx2 = rx.clone();
        drop(rx);
        if cap != Some(0) {
            tx.send("kept".into()).unwrap();
        }
        drop(rx2);
        assert!(tx.is_closed(), "no receivers: sends fail from now on");
        assert_eq!(tx.send("a".into()), Err(SendError("a".into())));
        assert_eq!(
            tx.try_send("b".into()),
            Err(TrySendError::Disconnected("b".into()))
        );
        assert_eq!(
            tx.send_timeout("c".into(), Duration::from_secs(5)),
            Err(SendTimeoutError::Disconnected("c".into()))
        );
    }
}

#[test]
fn values_left_in_a_dropped_channel_are_dropped_once() {
    for cap in [Some(8), None] {
        let drops = DropCount::new();
        let (tx, rx) = make(cap);
        for i in 0..8 {
            tx.send(Tracked::new(i, &drops)).unwrap();
        }
        drop(rx.recv().unwrap());
        assert_eq!(drops.get(), 1);
        drop(rx); // the last receiver: nobody can receive the rest
        assert_eq!(
            drops.get(),
            8,
            "buffered values dropped with the last receiver"
        );
        let back = tx.send(Tracked::new(99, &drops)).unwrap_err().0;
        assert_eq!(back.id, 99);
        drop(back);
        drop(tx);
        assert_eq!(drops.get(), 9);
    }
}

/// `bounded(0)`: a send completes only when a receive takes its value, and
/// the other way round; `try_send` succeeds only with a receiver waiting.
#[test]
fn unbuffered_is_a_rendezvous() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for _ in 0..20 {
            let (tx, rx) = chan::bounded::<u32>(0);
            let sent = Arc::new(AtomicBool::new(false));
            let flag = sent.clone();
            let sender = rt.spawn(move || {
                tx.send(7).unwrap();
                flag.store(true, Ordering::SeqCst);
                tx
            });
            wait_blocked(&rt, "chan send", 1);
            assert!(
                !sent.load(Ordering::SeqCst),
                "send completed with no receiver"
            );
            assert_eq!(rx.len(), 0, "an unbuffered channel buffers nothing");
            assert_eq!(rx.recv(), Ok(7));
            let tx = sender.join().unwrap();
            assert!(sent.load(Ordering::SeqCst));

            // A parked receiver makes try_send succeed, straight into it.
            assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            let receiver = rt.spawn(move || rx.recv());
            wait_blocked(&rt, "chan recv", 1);
            assert_eq!(tx.try_send(2), Ok(()));
            assert_eq!(receiver.join().unwrap(), Ok(2));
        }
    });
}

#[test]
fn fifo_for_every_capacity() {
    block_on_each(|_| {
        for cap in CAPS {
            let (tx, rx) = make::<u32>(cap);
            let producer = grove::go(move || {
                for i in 0..2000 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<u32> = (&rx).into_iter().collect();
            assert_eq!(got, (0..2000).collect::<Vec<_>>(), "cap {cap:?}");
            producer.join().unwrap();
        }
    });
}

/// Senders blocked on a full channel complete in the order they blocked
/// (Go's sendq is FIFO; so is grove's, the channels crate's module docs).
#[test]
fn blocked_senders_complete_in_fifo_order() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in [0, 1, 3] {
            let (tx, rx) = chan::bounded::<usize>(cap);
            for i in 0..cap {
                tx.send(i).unwrap();
            }
            let mut senders = Vec::new();
            for k in 0..6 {
                let tx = tx.clone();
                senders.push(rt.spawn(move || tx.send(cap + k)));
                wait_blocked(&rt, "chan send", k + 1);
            }
            drop(tx);
            let got: Vec<usize> = rx.iter().collect();
            assert_eq!(got, (0..cap + 6).collect::<Vec<_>>(), "cap {cap}");
            for s in senders {
                s.join().unwrap().unwrap();
            }
        }
    });
}

#[test]
fn iterators() {
    let (tx, rx) = chan::bounded(10);
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    // try_iter takes what is there and stops without waiting.
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(rx.try_iter().next(), None);
    assert!(!rx.is_closed());

    let producer = std::thread::spawn(move || {
        for i in 10..20 {
            tx.send(i).unwrap();
        }
    });
    let mut got = Vec::new();
    for v in &rx {
        got.push(v);
    }
    assert_eq!(got, (10..20).collect::<Vec<_>>());
    producer.join().unwrap();
    assert_eq!(rx.iter().next(), None, "closed and drained");
}

#[test]
fn timeouts_of_send_and_recv() {
    let (tx, rx) = chan::bounded::<u8>(1);
    let short = Duration::from_millis(5);
    assert_eq!(rx.recv_timeout(short), Err(RecvTimeoutError::Timeout));
    assert_eq!(
        rx.recv_timeout(Duration::ZERO),
        Err(RecvTimeoutError::Timeout)
    );
    assert_eq!(tx.send_timeout(1, short), Ok(()));
    assert_eq!(tx.send_timeout(2, short), Err(SendTimeoutError::Timeout(2)));
    assert_eq!(
        tx.send_timeout(3, Duration::ZERO),
        Err(SendTimeoutError::Timeout(3))
    );
    assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));
    assert_eq!(tx.send_timeout(4, Duration::ZERO), Ok(()));
    assert_eq!(rx.recv_timeout(short), Ok(4));
}

/// A sender blocked in `send` when the channel closes gets its value back.
#[test]
fn blocked_senders_get_their_value_back_on_close() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in [0usize, 2] {
            let (tx, rx) = chan::bounded::<String>(cap);
            for i in 0..cap {
                tx.send(format!("buffered {i}")).unwrap();
            }
            let senders: Vec<_> = (0..5)
                .map(|k| {
                    let tx = tx.clone();
                    rt.spawn(move || tx.send(format!("blocked {k}")))
                })
                .collect();
            // One more, blocked in send_timeout.
            let tx2 = tx.clone();
            let timed =
                rt.spawn(move || tx2.send_timeout("timed".to_string(), Duration::from_secs(60)));
            wait_blocked(&rt, "chan send", 6);
            assert!(tx.close());
            for (k, s) in senders.into_iter().enumerate() {
                assert_eq!(s.join().unwrap(), Err(SendError(format!("blocked {k}"))));
            }
            assert_eq!(
                timed.join().unwrap(),
                Err(SendTimeoutError::Disconnected("timed".to_string()))
            );
            let rest: Vec<String> = rx.iter().collect();
            assert_eq!(
                rest,
                (0..cap)
                    .map(|i| format!("buffered {i}"))
                    .collect::<Vec<_>>()
            );
        }
    });
}

#[test]
fn blocked_receivers_wake_on_close() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in CAPS {
            let (tx, rx) = make::<u8>(cap);
            let receivers: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    rt.spawn(move || rx.recv())
                })
                .collect();
            let rx2 = rx.clone();
            let timed = rt.spawn(move || rx2.recv_timeout(Duration::from_secs(60)));
            wait_blocked(&rt, "chan recv", 5);
            assert!(tx.close());
            for r in receivers {
                assert_eq!(r.join().unwrap(), Err(RecvError));
            }
            assert_eq!(timed.join().unwrap(), Err(RecvTimeoutError::Disconnected));
        }
    });
}

/// The last receiver dropped wakes blocked senders with their value.
#[test]
fn blocked_senders_wake_when_the_last_receiver_goes() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in [0usize, 1] {
            let (tx, rx) = chan::bounded::<u64>(cap);
            for i in 0..cap {
                tx.send(100 + i as u64).unwrap();
            }
            let senders: Vec<_> = (0..4u64)
                .map(|k| {
                    let tx = tx.clone();
                    rt.spawn(move || tx.send(k))
                })
                .collect();
            wait_blocked(&rt, "chan send", 4);
            let rx2 = rx.clone();
            drop(rx);
            assert!(!tx.is_closed(), "a receiver clone is alive");
            // Dropped on a green thread this time.
            rt.spawn(move || drop(rx2)).join().unwrap();
            for (k, s) in senders.into_iter().enumerate() {
                assert_eq!(s.join().unwrap(), Err(SendError(k as u64)));
            }
            assert!(tx.is_closed());
        }
    });
}

#[test]
fn error_types_display_debug_error_clone_eq() {
    assert_error::<SendError<i32>>();
    assert_error::<TrySendError<i32>>();
    assert_error::<SendTimeoutError<i32>>();
    assert_error::<RecvError>();
    assert_error::<TryRecvError>();
    assert_error::<RecvTimeoutError>();
    assert_error::<chan::TrySelectError>();
    assert_error::<chan::SelectTimeoutError>();
    // Not Clone / PartialEq payloads still make errors (Debug does not
    // need T: Debug either, as in crossbeam).
    struct Opaque;
    assert_error::<SendError<Opaque>>();
    assert_error::<TrySendError<Opaque>>();
    assert_error::<SendTimeoutError<Opaque>>();
    assert_value_traits::<SendError<String>>();
    assert_value_traits::<TrySendError<String>>();
    assert_value_traits::<SendTimeoutError<String>>();
    assert_value_traits::<RecvError>();
    assert_value_traits::<TryRecvError>();
    assert_value_traits::<RecvTimeoutError>();
    assert_value_traits::<chan::TrySelectError>();
    assert_value_traits::<chan::SelectTimeoutError>();

    let errors: Vec<Box<dyn Error>> = vec![
        Box::new(SendError(1)),
        Box::new(TrySendError::Full(1)),
        Box::new(TrySendError::Disconnected(1)),
        Box::new(SendTimeoutError::Timeout(1)),
        Box::new(SendTimeoutError::Disconnected(1)),
        Box::new(RecvError),
        Box::new(TryRecvError::Empty),
        Box::new(TryRecvError::Disconnected),
        Box::new(RecvTimeoutError::Timeout),
        Box::new(RecvTimeoutError::Disconnected),
        Box::new(chan::TrySelectError),
        Box::new(chan::SelectTimeoutError),
    ];
    for e in &errors {
        let shown = e.to_string();
        assert!(!shown.is_empty(), "{e:?} displays as nothing");
        assert!(!format!("{e:?}").is_empty());
        assert!(e.source().is_none());
    }
    // Each variant says something different from its sibling.
    for pair in [(1, 2), (3, 4), (6, 7), (8, 9)] {
        assert_ne!(errors[pair.0].to_string(), errors[pair.1].to_string());
    }
    // The value comes back, and clones compare equal.
    let e = SendError(String::from("v"));
    assert_eq!(e.clone(), e);
    assert_eq!(e.0, "v");
    assert_eq!(TrySendError::Full(5).into_inner(), 5);
    assert!(TrySendError::Full(5).is_full() && TrySendError::Disconnected(5).is_disconnected());
    assert_eq!(SendTimeoutError::Timeout(6).into_inner(), 6);
    assert!(SendTimeoutError::Timeout(6).is_timeout());
    assert!(TryRecvError::Empty.is_empty() && RecvTimeoutError::Timeout.is_timeout());
    assert_ne!(TryRecvError::Empty, TryRecvError::Disconnected);
    assert_ne!(RecvTimeoutError::Timeout, RecvTimeoutError::Disconnected);
    assert_eq!(TryRecvError::from(RecvError), TryRecvError::Disconnected);
    assert_eq!(
        RecvTimeoutError::from(RecvError),
        RecvTimeoutError::Disconnected
    );

    // `?` turns them into boxed errors.
    fn closed_send() -> Result<(), Box<dyn Error + Send + Sync>> {
        let (tx, _) = chan::bounded::<i32>(1);
        tx.close();
        tx.send(1)?;
        Ok(())
    }
    assert_eq!(
        closed_send().unwrap_err().to_string(),
        SendError(0).to_string()
    );
}

/// Every mix of green threads and OS threads on each end, for each
/// capacity: values arrive complete and in order.
#[test]
fn green_and_os_threads_in_every_mix() {
    const N: u64 = 300;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in CAPS {
            for (green_sender, green_receiver) in
                [(false, true), (true, false), (false, false), (true, true)]
            {
                let (tx, rx) = make::<u64>(cap);
                let send = move || {
                    for i in 0..N {
                        tx.send(i).unwrap();
                    }
                };
                let recv = move || {
                    let got: Vec<u64> = rx.iter().collect();
                    assert_eq!(got, (0..N).collect::<Vec<_>>());
                    got.len()
                };
                let s: Box<dyn FnOnce() -> std::thread::Result<()>> = if green_sender {
                    let h = rt.spawn(send);
                    Box::new(move || h.join())
                } else {
                    let h = std::thread::spawn(send);
                    Box::new(move || h.join())
                };
                let n = if green_receiver {
                    rt.spawn(recv).join()
                } else {
                    std::thread::spawn(recv).join()
                };
                s().unwrap();
                assert_eq!(n.unwrap(), N as usize, "cap {cap:?}");
            }
        }
    });
}

/// Clones on both ends share one channel: every value is received once.
#[test]
fn clones_are_multi_producer_multi_consumer() {
    block_on_each(|_| {
        let (tx, rx) = chan::bounded::<u64>(4);
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                grove::go(move || rx.iter().collect::<Vec<_>>())
            })
            .collect();
        drop(rx);
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let tx = tx.clone();
                grove::go(move || (0..200).for_each(|i| tx.send(p * 1000 + i).unwrap()))
            })
            .collect();
        drop(tx);
        producers.into_iter().for_each(|p| p.join().unwrap());
        let mut all: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_unstable();
        let want: Vec<u64> = (0..3u64)
            .flat_map(|p| (0..200).map(move |i| p * 1000 + i))
            .collect();
        assert_eq!(all, want);
    });
}

/// `Runtime::tasks` says what a parked green thread waits on and where:
/// "chan send", "chan recv", "select", at the caller's line.
#[test]
fn tasks_report_channel_waits() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (tx, rx) = chan::bounded::<u8>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let sender = rt.spawn(move || tx2.send(1));
        let line = line!() - 1;
        wait_blocked(&rt, "chan send", 1);

        let info = &chan_util::blocked_on(&rt, "chan send")[0];
        assert_eq!(info.state, grove::runtime::TaskState::Parked);
        let at = info.blocked_at.expect("a blocked task says where");
        assert_eq!(
            (at.file(), at.line()),
            (file!(), line),
            "blocked_at of send"
        );
        assert_eq!(rx.recv(), Ok(1));
        sender.join().unwrap().unwrap();

        let receiver = rt.spawn(move || rx2.recv_timeout(Duration::from_secs(60)));
        let line = line!() - 1;
        wait_blocked(&rt, "chan recv", 1);
        let at = chan_util::blocked_on(&rt, "chan recv")[0]
            .blocked_at
            .unwrap();
        assert_eq!(
            (at.file(), at.line()),
            (file!(), line),
            "blocked_at of recv"
        );
        tx.send(2).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(2));

        let (tx3, rx3) = (tx.clone(), rx.clone());
        let selecting = rt.spawn(move || {
            grove::select! {
                recv(rx3) -> v => v.is_ok(),
                send(tx3, 3) -> _r => false,
            }
        });
        wait_blocked(&rt, "select", 1);
        let at = chan_util::blocked_on(&rt, "select")[0].blocked_at.unwrap();
        assert_eq!(at.file(), file!(), "blocked_at of select!");
        // Whichever arm it parked in, a plain send completes the select.
        tx.send(4).unwrap();
        assert!(selecting.join().unwrap());
    });
}

/// A green thread with the default stack (256 KiB) moves a 4 KiB value
/// through every kind of channel operation, in a debug build too: the
/// operations' frames hold a few copies of the value each, not the
/// hundred they held when every step was inlined into one frame (a 2 KiB
/// array overflowed the stack and aborted the process).
#[test]
fn a_green_thread_moves_a_4_kib_value_on_the_default_stack() {
    const N: usize = 4096;
    watchdog(|| {
        grove::run(|| {
            let (tx, rx) = chan::bounded::<[u8; N]>(1);
            tx.send([7; N]).unwrap();
            assert_eq!(rx.recv().unwrap()[N - 1], 7);
            let (tx, rx) = chan::bounded::<[u8; N]>(0);
            let sender = grove::go(move || tx.send([8; N]).unwrap());
            assert_eq!(rx.recv().unwrap()[0], 8);
            sender.join().unwrap();
            let (tx, rx) = chan::unbounded::<[u8; N]>();
            tx.send([9; N]).unwrap();
            grove::select! {
                recv(rx) -> v => assert_eq!(v.unwrap()[1], 9),
            }
        });
    });
}
