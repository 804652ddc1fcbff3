//! Drops around parked green threads: dropping a channel's last `Sender`
//! or last `Receiver` wakes everything parked on it (plain operations and
//! selects) with the right result; dropping a `Runtime` whose green threads
//! are parked on channels unwinds them (destructors run exactly once, the
//! channel ends they held are released, `join` returns `Err`), and leaves
//! the channels usable from outside.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::time::Duration;

use chan_util::{
    blocked_on, for_each_workers, in_child, run_in_child, runtime, wait_blocked, wait_until,
    watchdog_for, DropCount, Tracked,
};
use grove::chan::{self, RecvError, RecvTimeoutError, SendError, SendTimeoutError};
use grove::runtime::TaskState;
use grove::select;
use grove::Runtime;

const LONG: Duration = Duration::from_secs(60);

/// How many green threads of `rt` are parked on something.
fn parked(rt: &Runtime) -> usize {
    rt.tasks()
        .iter()
        .filter(|t| t.state == TaskState::Parked && t.blocked_on.is_some())
        .count()
}

#[test]
fn dropping_the_last_sender_wakes_every_kind_of_receiver() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for drop_on_green in [false, true] {
            let (tx, rx) = chan::bounded::<u32>(0);
            let (other_tx, other_rx) = chan::bounded::<u32>(1);
            let mut plain = Vec::new();
            for _ in 0..3 {
                let rx = rx.clone();
                plain.push(rt.spawn(move || rx.recv()));
            }
            let rx2 = rx.clone();
            let timed = rt.spawn(move || rx2.recv_timeout(LONG));
            let rx2 = rx.clone();
            let ranged = rt.spawn(move || rx2.iter().count());
            let (rx2, orx) = (rx.clone(), other_rx.clone());
            let selecting = rt.spawn(move || {
                select! {
                    recv(orx) -> _v => panic!("the other channel is idle"),
                    recv(rx2) -> v => v,
                }
            });
            let rx2 = rx.clone();
            let selecting_timed = rt.spawn(move || {
                select! {
                    recv(rx2) -> v => Some(v),
                    default(LONG) => None,
                }
            });
            drop(rx);
            wait_blocked(&rt, "chan recv", 5);
            wait_blocked(&rt, "select", 2);
            let tx2 = tx.clone();
            drop(tx);
            if drop_on_green {
                rt.spawn(move || drop(tx2)).join().unwrap();
            } else {
                drop(tx2);
            }
            for h in plain {
                assert_eq!(h.join().unwrap(), Err(RecvError));
            }
            assert_eq!(timed.join().unwrap(), Err(RecvTimeoutError::Disconnected));
            assert_eq!(ranged.join().unwrap(), 0);
            assert_eq!(selecting.join().unwrap(), Err(RecvError));
            assert_eq!(selecting_timed.join().unwrap(), Some(Err(RecvError)));
            // The select's arm on the other channel is gone from its queue:
            // a value sent there now is buffered for the next receiver.
            other_tx.try_send(9).unwrap();
            assert_eq!(other_rx.try_recv(), Ok(9));
        }
    });
}

#[test]
fn dropping_the_last_receiver_wakes_every_kind_of_sender() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for cap in [0usize, 1] {
            let drops = DropCount::new();
            let (tx, rx) = chan::bounded::<Tracked>(cap);
            for i in 0..cap {
                tx.send(Tracked::new(100 + i as u64, &drops)).unwrap();
            }
            let mut plain = Vec::new();
            for id in 0..3 {
                let (tx, d) = (tx.clone(), drops.clone());
                plain.push(rt.spawn(move || tx.send(Tracked::new(id, &d)).map_err(|e| e.0.id)));
            }
            let (tx2, d) = (tx.clone(), drops.clone());
            let timed = rt.spawn(move || {
                tx2.send_timeout(Tracked::new(3, &d), LONG)
                    .map_err(|e| (e.is_disconnected(), e.into_inner().id))
            });
            let (tx2, d) = (tx.clone(), drops.clone());
            let selecting = rt.spawn(move || {
                select! {
                    send(tx2, Tracked::new(4, &d)) -> r => r.map_err(|e| e.0.id),
                    recv(chan::never::<()>()) -> _v => unreachable!(),
                }
            });
            let (tx2, d) = (tx.clone(), drops.clone());
            let selecting_timed = rt.spawn(move || {
                select! {
                    send(tx2, Tracked::new(5, &d)) -> r => r.map_err(|e| e.0.id),
                    default(LONG) => Err(999),
                }
            });
            wait_blocked(&rt, "chan send", 4);
            wait_blocked(&rt, "select", 2);
            drop(rx);
            for (id, h) in plain.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), Err(id as u64));
            }
            assert_eq!(timed.join().unwrap(), Err((true, 3)));
            assert_eq!(selecting.join().unwrap(), Err(4));
            assert_eq!(selecting_timed.join().unwrap(), Err(5));
            assert!(tx.is_closed());
            assert!(matches!(
                tx.send(Tracked::new(6, &drops)),
                Err(SendError(_))
            ));
            drop(tx);
            // Buffered values, returned values, the refused one: each
            // dropped exactly once.
            assert_eq!(drops.get(), cap + 7);
        }
    });
}

/// The main case of `Runtime`'s documented `drop(rt)`: green threads parked on channels
/// in every way are unwound; their destructors run exactly once (among
/// them the values they were sending and the channel ends they held), and
/// their `join` returns `Err`.
#[test]
fn dropping_a_runtime_unwinds_green_threads_parked_on_channels() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let guards = DropCount::new();
        let values = DropCount::new();
        let (full_tx, full_rx) = chan::bounded::<Tracked>(1);
        full_tx.send(Tracked::new(0, &values)).unwrap();
        let (unbuf_tx, unbuf_rx) = chan::bounded::<Tracked>(0);
        let (idle_tx, idle_rx) = chan::bounded::<u32>(1);
        // The only Sender of `orphan`, held by a green thread that gets
        // unwound: the channel must close when it is.
        let (orphan_tx, orphan_rx) = chan::bounded::<u32>(1);

        type Body = Box<dyn FnOnce() + Send>;
        let bodies: Vec<Body> = vec![
            {
                let rx = idle_rx.clone();
                Box::new(move || {
                    let _ = rx.recv();
                })
            },
            {
                let rx = idle_rx.clone();
                Box::new(move || {
                    let _ = rx.recv_timeout(LONG);
                })
            },
            {
                let rx = idle_rx.clone();
                Box::new(move || {
                    let _ = rx.iter().count();
                })
            },
            {
                let (tx, v) = (full_tx.clone(), values.clone());
                Box::new(move || {
                    let _ = tx.send(Tracked::new(1, &v));
                })
            },
            {
                let (tx, v) = (unbuf_tx.clone(), values.clone());
                Box::new(move || {
                    let _ = tx.send_timeout(Tracked::new(2, &v), LONG);
                })
            },
            Box::new(|| {
                let _ = chan::never::<u8>().recv();
            }),
            Box::new(|| {
                let _ = chan::after(LONG).recv();
            }),
            Box::new(|| {
                let _ = chan::tick(LONG).recv();
            }),
            {
                let rx = idle_rx.clone();
                Box::new(move || {
                    let r = orphan_tx; // moved in; dropped by the unwind
                    let _ = rx.recv();
                    drop(r);
                })
            },
        ];
        let n = bodies.len();
        let handles: Vec<_> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                let guard = Tracked::new(i as u64, &guards);
                rt.spawn(move || {
                    let _guard = guard;
                    body();
                })
            })
            .collect();
        wait_until(&format!("{n} green threads parked"), || parked(&rt) == n);
        let blocked = rt.tasks();
        assert_eq!(rt.stats().live, n as u64, "{blocked:#?}");

        drop(rt);
        assert_eq!(guards.get(), n, "destructors of unwound green threads");
        // The two values being sent, dropped with their unwound senders.
        assert_eq!(values.get(), 2);
        for h in handles {
            assert!(h.join().is_err(), "join of an unwound green thread");
        }
        // The unwound green threads released their channel ends...
        assert_eq!(
            orphan_rx.recv_timeout(LONG),
            Err(RecvTimeoutError::Disconnected)
        );
        // ...and their plain waits left the queues: the channels still
        // work from outside.
        idle_tx.try_send(5).unwrap();
        assert_eq!(idle_rx.try_recv(), Ok(5));
        assert_eq!(full_rx.try_recv().map(|t| t.id), Ok(0));
        assert!(full_tx.try_send(Tracked::new(7, &values)).is_ok());
        assert!(matches!(
            unbuf_tx.send_timeout(Tracked::new(8, &values), Duration::ZERO),
            Err(SendTimeoutError::Timeout(_))
        ));
        assert!(
            unbuf_rx.try_recv().is_err(),
            "a dead sender was still queued"
        );
    });
}

/// A green thread parked in a select when its runtime is dropped is
/// unwound too; its destructors run and its join fails; the select leaves
/// nothing behind in the channels' queues. Runs in a child process (see
/// `a_select_unwound_by_runtime_drop_leaves_no_stale_entries`).
#[test]
fn dropping_a_runtime_unwinds_parked_selects() {
    const NAME: &str = "dropping_a_runtime_unwinds_parked_selects";
    if !in_child(NAME) {
        let (passed, output) = run_in_child(NAME);
        assert!(passed, "the child failed:\n{output}");
        return;
    }
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let guards = DropCount::new();
        let (tx, rx) = chan::bounded::<u32>(0);
        let (full_tx, _full_rx) = chan::bounded::<Tracked>(0);
        let mut handles = Vec::new();
        for i in 0..4u64 {
            let (rx, full_tx) = (rx.clone(), full_tx.clone());
            let (g, d) = (Tracked::new(i, &guards), guards.clone());
            handles.push(rt.spawn(move || {
                let _g = g;
                let timer = chan::after(LONG);
                if i % 2 == 0 {
                    select! {
                        recv(rx) -> _v => unreachable!(),
                        recv(chan::never::<u8>()) -> _v => unreachable!(),
                    }
                } else {
                    // A send arm whose value is never built: not counted.
                    select! {
                        recv(timer) -> _v => unreachable!(),
                        send(full_tx, Tracked::new(99, &d)) -> _r => unreachable!(),
                        default(LONG) => unreachable!(),
                    };
                }
            }));
        }
        wait_blocked(&rt, "select", 4);
        drop(rt);
        assert_eq!(
            guards.get(),
            4,
            "the value of an unchosen send arm was built"
        );
        for h in handles {
            assert!(h.join().is_err());
        }
        // The unwound selects left no entries behind: the channels work
        // from outside, and closing them touches no dead stack.
        assert_eq!(tx.try_send(1), Err(chan::TrySendError::Full(1)));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Disconnected));
        drop(_full_rx);
        assert!(full_tx.try_send(Tracked::new(100, &guards)).is_err());
        assert_eq!(guards.get(), 5);
    });
}

/// After a runtime is dropped with a green thread parked in a select, the
/// select's arms must be gone from the channels' queues (the select's
/// context lived on the unwound stack). A send from outside must then be
/// buffered for the remaining receiver, not handed to the dead select.
/// Runs in a child process: a stale queue entry would point into an
/// unmapped stack, and touching it may crash (it did before 1ebe302).
#[test]
fn a_select_unwound_by_runtime_drop_leaves_no_stale_entries() {
    const NAME: &str = "a_select_unwound_by_runtime_drop_leaves_no_stale_entries";
    if !in_child(NAME) {
        let (passed, output) = run_in_child(NAME);
        assert!(passed, "the child failed:\n{output}");
        return;
    }
    watchdog_for(Duration::from_secs(20), || {
        let rt = runtime(2);
        let (tx, rx) = chan::bounded::<u32>(1);
        let (tx2, rx2) = chan::bounded::<u32>(0);
        let (rx_, tx2_) = (rx.clone(), tx2.clone());
        let h = rt.spawn(move || {
            select! {
                recv(rx_) -> _v => unreachable!(),
                send(tx2_, 1) -> _r => unreachable!(),
            }
        });
        wait_blocked(&rt, "select", 1);
        drop(rt);
        assert!(h.join().is_err());
        // Keep the pages reused so a dangling read sees garbage, not zeros.
        let rt2 = runtime(2);
        rt2.block_on(|| {
            (0..64)
                .map(|i| grove::go(move || i))
                .for_each(|h| drop(h.join()))
        });
        assert_eq!(tx.try_send(5), Ok(()));
        assert_eq!(rx.try_recv(), Ok(5), "the value went to the dead select");
        assert!(
            rx2.try_recv().is_err(),
            "received from the dead select's send arm"
        );
        drop(rt2);
    });
}

/// When every green thread has finished, the runtime holds no stacks and
/// no live tasks, whatever channel traffic they did.
#[test]
fn no_stacks_left_after_channel_traffic() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (tx, rx) = chan::bounded::<u64>(0);
        let consumers: Vec<_> = (0..8)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(move || {
                    let mut sum = 0;
                    loop {
                        select! {
                            recv(rx) -> v => match v {
                                Ok(v) => sum += v,
                                Err(_) => return sum,
                            },
                            default(Duration::from_millis(1)) => {},
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        for p in 0..8u64 {
            let tx = tx.clone();
            rt.spawn(move || (0..200).for_each(|i| tx.send(p * 1000 + i).unwrap()));
        }
        drop(tx);
        let sum: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
        let want: u64 = (0..8u64)
            .flat_map(|p| (0..200).map(move |i| p * 1000 + i))
            .sum();
        assert_eq!(sum, want);
        wait_until("no live green threads", || {
            let s = rt.stats();
            s.live == 0 && s.live_stacks == 0
        });
        assert!(blocked_on(&rt, "chan recv").is_empty());
        assert_eq!(rt.stats().spawned, rt.stats().completed);
    });
}
