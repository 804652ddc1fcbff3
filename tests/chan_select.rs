//! `grove::select!` and `grove::chan::Select` against their documented contract:
//! every arm form, `default` and `default(timeout)`, the same channel in
//! several arms, temporaries, lazily evaluated send values, control flow in
//! arm bodies, closed and `never()` channels, uniform choice among ready
//! arms, exactly one arm completing, and the dynamic `Select` API. Select
//! stress (lost wake-ups with timed selects, select senders meeting select
//! receivers) is in chan_stress.rs; the ports of Go's select tests
//! (TestSelfSelect, TestSelectStress, TestSelectFairness, ...) are in
//! chan_golang.rs.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::cell::Cell;
use std::time::{Duration, Instant};

use chan_util::{
    block_on_each, for_each_workers, runtime, wait_blocked, wait_until, watchdog, watchdog_for,
};
use grove::chan::{
    self, Receiver, RecvError, RecvTimeoutError, Select, SendError, SendTimeoutError,
    TrySelectError,
};
use grove::select;

#[test]
fn recv_arm() {
    let (tx, rx) = chan::bounded(1);
    tx.send(5).unwrap();
    let got = select! { recv(rx) -> v => v };
    assert_eq!(got, Ok(5));
    // An expression body without braces, and a `_` pattern.
    tx.send(6).unwrap();
    let doubled = select! { recv(rx) -> v => v.unwrap() * 2 };
    assert_eq!(doubled, 12);
    tx.send(7).unwrap();
    select! { recv(rx) -> _ => {} }
    assert!(rx.is_empty());
}

#[test]
fn send_arm() {
    let (tx, rx) = chan::bounded(1);
    let res = select! { send(tx, "a") -> r => r };
    assert_eq!(res, Ok(()));
    assert_eq!(rx.try_recv(), Ok("a"));
}

#[test]
fn blocking_select_waits_for_a_peer() {
    block_on_each(|_| {
        for cap in [0usize, 1] {
            let (tx, rx) = chan::bounded::<u32>(cap);
            let (tx2, rx2) = chan::bounded::<u32>(cap);
            let (_keep, idle) = chan::bounded::<u32>(0);
            // Receive side blocks in select; a plain send completes it.
            let peer = grove::go(move || tx.send(1).unwrap());
            let got = select! {
                recv(idle) -> _v => unreachable!(),
                recv(rx) -> v => v.unwrap(),
            };
            assert_eq!(got, 1);
            peer.join().unwrap();
            // Send side blocks in select; a plain recv completes it.
            let peer = grove::go(move || rx2.recv().unwrap());
            select! {
                recv(idle) -> _v => unreachable!(),
                send(tx2, 2) -> r => r.unwrap(),
            }
            assert_eq!(peer.join().unwrap(), 2);
        }
    });
}

#[test]
fn mixed_send_and_recv_arms() {
    block_on_each(|_| {
        let (in_tx, in_rx) = chan::bounded::<u32>(0);
        let (out_tx, out_rx) = chan::bounded::<u32>(0);
        let producer = grove::go(move || (0..100).for_each(|i| in_tx.send(i).unwrap()));
        let consumer = grove::go(move || out_rx.iter().collect::<Vec<_>>());
        // A forwarder: holds at most one value, and switches arms off by
        // pointing them at channels that are never ready (Go's nil channel):
        // the send arm's value expression would panic if it ran while off.
        let (off_tx, _off_rx) = chan::bounded::<u32>(0);
        let off_rx = chan::never::<u32>();
        let mut held: Option<u32> = None;
        let mut sent = 0;
        while sent < 100 {
            let send_to = if held.is_some() { &out_tx } else { &off_tx };
            let recv_from = if held.is_none() { &in_rx } else { &off_rx };
            select! {
                recv(recv_from) -> v => held = Some(v.unwrap()),
                send(send_to, held.take().unwrap()) -> r => {
                    r.unwrap();
                    sent += 1;
                },
            }
        }
        drop(out_tx);
        producer.join().unwrap();
        assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn default_runs_only_when_nothing_is_ready() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let got = select! {
        recv(rx) -> _v => "recv",
        default => "default",
    };
    assert_eq!(got, "default");
    tx.send(1).unwrap();
    let got = select! {
        recv(rx) -> _v => "recv",
        default => "default",
    };
    assert_eq!(got, "recv");
    // A send arm on a full channel is not ready either.
    tx.send(2).unwrap();
    let got = select! {
        send(tx, 3) -> _r => "send",
        default => "default",
    };
    assert_eq!(got, "default");
    // Only a default: runs it.
    let got = select! { default => 7 };
    assert_eq!(got, 7);
}

#[test]
fn default_with_timeout_prefers_a_value() {
    block_on_each(|_| {
        let (tx, rx) = chan::bounded::<i32>(0);
        grove::go(move || tx.send(42).unwrap());
        let got = select! {
            recv(rx) -> v => v.ok(),
            default(Duration::from_secs(30)) => None,
        };
        assert_eq!(got, Some(42));
        let (_tx, quiet) = chan::bounded::<i32>(0);
        let got = select! {
            recv(quiet) -> v => v.ok(),
            default(Duration::from_millis(1)) => None,
        };
        assert_eq!(got, None);
    });
}

#[test]
fn same_channel_in_several_arms() {
    let (tx, rx) = chan::bounded::<usize>(1);
    let mut hits = [0usize; 4];
    for i in 0..2000 {
        select! {
            send(tx, i) -> r => { r.unwrap(); hits[0] += 1 },
            send(tx, i) -> r => { r.unwrap(); hits[1] += 1 },
        }
        select! {
            recv(rx) -> v => { assert_eq!(v, Ok(i)); hits[2] += 1 },
            recv(rx) -> v => { assert_eq!(v, Ok(i)); hits[3] += 1 },
        }
    }
    assert_eq!(hits[0] + hits[1], 2000);
    assert!(hits.iter().all(|&h| h > 700), "an arm starved: {hits:?}");
}

#[test]
fn channel_expressions_may_be_temporaries() {
    fn fresh_with(v: i32) -> Receiver<i32> {
        let (tx, rx) = chan::bounded(1);
        tx.send(v).unwrap();
        rx
    }
    let got = select! {
        recv(fresh_with(3)) -> v => v.unwrap(),
        recv(chan::never::<i32>()) -> _v => unreachable!(),
    };
    assert_eq!(got, 3);
    let got = select! {
        recv(chan::after(Duration::from_millis(1))) -> v => v.is_ok(),
        recv(chan::never::<()>()) -> _v => unreachable!(),
    };
    assert!(got);
    let (tx, rx) = chan::bounded::<i32>(1);
    let res = select! { send(tx.clone(), 9) -> r => r };
    assert_eq!((res, rx.recv()), (Ok(()), Ok(9)));
}

/// Temporaries next to a `default` arm, and a `select!` with `default` as
/// the tail expression of a function that owns its channel. (Before
/// 1994f70 neither compiled: the `match` on `try_select()` in the macro
/// kept a `SelectedOperation` temporary alive past the borrowed channels.)
#[test]
fn temporaries_and_locals_with_a_default_arm() {
    let got = select! {
        recv(chan::never::<u8>()) -> _v => 1,
        default => 2,
    };
    assert_eq!(got, 2);
    let got = select! {
        recv(chan::never::<u8>()) -> _v => 1,
        default(Duration::from_millis(1)) => 2,
    };
    assert_eq!(got, 2);
    fn poll_fresh(v: Option<i32>) -> Option<i32> {
        let (tx, rx) = chan::bounded(1);
        if let Some(v) = v {
            tx.send(v).unwrap();
        }
        select! {
            recv(rx) -> v => v.ok(),
            default => None,
        }
    }
    assert_eq!(poll_fresh(None), None);
    assert_eq!(poll_fresh(Some(4)), Some(4));
}

/// A send arm's value expression runs only if that arm is chosen.
#[test]
fn send_values_are_evaluated_only_when_chosen() {
    let evaluated = Cell::new(0);
    let value = |v: i32| {
        evaluated.set(evaluated.get() + 1);
        v
    };
    let (full_tx, _full_rx) = chan::bounded::<i32>(0);
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(1).unwrap();
    for _ in 0..100 {
        select! {
            send(full_tx, value(1)) -> _r => unreachable!(),
            send(full_tx, value(2)) -> _r => unreachable!(),
            recv(rx) -> v => tx.send(v.unwrap()).unwrap(),
        }
    }
    assert_eq!(evaluated.get(), 0);
    select! {
        send(full_tx, value(1)) -> _r => unreachable!(),
        default => (),
    }
    assert_eq!(evaluated.get(), 0);
    // Chosen: evaluated exactly once.
    rx.recv().unwrap();
    select! {
        send(full_tx, value(1)) -> _r => unreachable!(),
        send(tx, value(5)) -> r => r.unwrap(),
    }
    assert_eq!(evaluated.get(), 1);
    assert_eq!(rx.recv(), Ok(5));
}

/// Arm bodies are code of the enclosing function: break, continue, return
/// and `?` act on it.
#[test]
fn control_flow_in_arm_bodies() {
    let (tx, rx) = chan::unbounded::<i32>();
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    let mut odd = Vec::new();
    loop {
        select! {
            recv(rx) -> v => {
                let v = v.unwrap();
                if v % 2 == 0 {
                    continue;
                }
                if v > 6 {
                    break;
                }
                odd.push(v);
            },
            default => panic!("drained early"),
        }
    }
    assert_eq!(odd, [1, 3, 5]);

    fn first_above(rx: &Receiver<i32>, limit: i32) -> Result<Option<i32>, RecvError> {
        loop {
            select! {
                recv(rx) -> v => {
                    let v = v?;
                    if v > limit {
                        return Ok(Some(v));
                    }
                },
                default => return Ok(None),
            }
        }
    }
    assert_eq!(first_above(&rx, 7), Ok(Some(8))); // 7 skipped, 8 returned
    assert_eq!(first_above(&rx, 100), Ok(None)); // 9 skipped, then empty
    drop(tx);
    assert_eq!(first_above(&rx, 0), Err(RecvError));
}

#[test]
fn a_closed_channel_is_always_ready() {
    let (tx, rx) = chan::bounded::<i32>(0);
    tx.close();
    for _ in 0..100 {
        let got = select! {
            recv(rx) -> v => v,
            recv(chan::never::<i32>()) -> _v => unreachable!(),
        };
        assert_eq!(got, Err(RecvError));
        let got = select! {
            recv(rx) -> v => Some(v),
            default => None,
        };
        assert_eq!(got, Some(Err(RecvError)));
        // A send arm on a closed channel is ready too: the value comes back.
        let got = select! {
            send(tx, 3) -> r => r,
            default => Ok(()),
        };
        assert_eq!(got, Err(SendError(3)));
    }
}

#[test]
fn never_is_never_ready() {
    let rx = chan::never::<u8>();
    let got = select! {
        recv(rx) -> _v => false,
        default => true,
    };
    assert!(got);
    let got = select! {
        recv(rx) -> _v => false,
        default(Duration::from_millis(5)) => true,
    };
    assert!(got);
    let mut sel = Select::new();
    sel.recv(&rx);
    assert_eq!(
        sel.try_select().map(|o| o.index()).unwrap_err(),
        TrySelectError
    );
    assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    assert!(rx.is_empty() && rx.try_recv().is_err());
}

/// Uniform choice also among four closed channels, and between a ready
/// send arm and a ready receive arm.
#[test]
fn fairness_among_closed_channels_and_mixed_arms() {
    let chans: Vec<_> = (0..4).map(|_| chan::bounded::<()>(0)).collect();
    chans.iter().for_each(|(tx, _)| {
        tx.close();
    });
    let [r0, r1, r2, r3] = [0, 1, 2, 3].map(|i| chans[i].1.clone());
    let mut counts = [0usize; 4];
    for _ in 0..8000 {
        let i = select! {
            recv(r0) -> _v => 0,
            recv(r1) -> _v => 1,
            recv(r2) -> _v => 2,
            recv(r3) -> _v => 3,
        };
        counts[i] += 1;
    }
    assert!(
        counts.iter().all(|&c| (1500..=2500).contains(&c)),
        "{counts:?}"
    );

    let (tx, rx) = chan::bounded::<u8>(2);
    tx.send(0).unwrap();
    let (mut sends, mut recvs) = (0, 0);
    for _ in 0..4000 {
        select! {
            send(tx, 0) -> r => { r.unwrap(); sends += 1; rx.recv().unwrap(); },
            recv(rx) -> v => { v.unwrap(); recvs += 1; tx.send(0).unwrap(); },
        }
    }
    assert!((1600..=2400).contains(&sends), "send {sends} recv {recvs}");
}

/// Among ready arms with a not-ready one between them, each ready arm is
/// as likely to win: the first look's order is a random permutation, not
/// a rotation from a random start (which would give the arm after the
/// not-ready one two chances in three).
#[test]
fn fairness_with_a_not_ready_arm_between_ready_ones() {
    const TRIALS: usize = 8000;
    let (tx0, r0) = chan::bounded::<u8>(TRIALS + 1);
    let (_tx1, r1) = chan::bounded::<u8>(1);
    let (tx2, r2) = chan::bounded::<u8>(TRIALS + 1);
    for _ in 0..TRIALS {
        tx0.send(0).unwrap();
        tx2.send(2).unwrap();
    }
    let mut counts = [0usize; 3];
    for _ in 0..TRIALS {
        let i = select! {
            recv(r0) -> v => v.unwrap(),
            recv(r1) -> v => v.unwrap(),
            recv(r2) -> v => v.unwrap(),
        };
        counts[i as usize] += 1;
    }
    assert_eq!(counts[1], 0);
    assert_eq!(counts[0] + counts[2], TRIALS);
    // 50 % each; a rotation would give 33 / 67.
    assert!(
        (TRIALS * 45 / 100..=TRIALS * 55 / 100).contains(&counts[0]),
        "{counts:?}"
    );
}

/// `break` and `continue` in an arm's body act on the caller's loop, in
/// the typed first look's path (ready arms) and the waiting path alike.
#[test]
fn break_and_continue_in_an_arm_act_on_the_callers_loop() {
    watchdog(|| {
        let (tx, rx) = chan::bounded::<u32>(4);
        let (_keep, idle) = chan::bounded::<u32>(0);
        let feeder = grove::go(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        let (mut odd, mut even) = (0, 0);
        loop {
            select! {
                recv(idle) -> _v => unreachable!("nothing is sent on it"),
                recv(rx) -> v => {
                    let Ok(v) = v else { break };
                    if v % 2 == 1 {
                        odd += 1;
                        continue;
                    }
                    even += 1;
                },
            }
        }
        feeder.join().unwrap();
        assert_eq!((odd, even), (50, 50));
    });
}

/// Exactly one arm completes: with two ready values, one select consumes
/// exactly one of them; with two free slots, fills exactly one.
#[test]
fn exactly_one_arm_completes() {
    for _ in 0..1000 {
        let (tx1, rx1) = chan::bounded::<u8>(1);
        let (tx2, rx2) = chan::bounded::<u8>(1);
        tx1.send(1).unwrap();
        tx2.send(2).unwrap();
        let got = select! {
            recv(rx1) -> v => v.unwrap(),
            recv(rx2) -> v => v.unwrap(),
        };
        assert_eq!(rx1.len() + rx2.len(), 1);
        assert_eq!(if got == 1 { rx2.len() } else { rx1.len() }, 1);
        select! {
            send(tx1, 1) -> r => r.unwrap(),
            send(tx2, 2) -> r => r.unwrap(),
        }
        assert_eq!(rx1.len() + rx2.len(), 2);
    }
}

/// Exactly one arm completes against parked peers: two green senders block
/// on two unbuffered channels; one select takes exactly one value, and the
/// other sender is still waiting with its value.
#[test]
fn exactly_one_arm_completes_against_parked_senders() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        for _ in 0..30 {
            let (tx1, rx1) = chan::bounded::<u8>(0);
            let (tx2, rx2) = chan::bounded::<u8>(0);
            let s1 = rt.spawn(move || tx1.send(1));
            let s2 = rt.spawn(move || tx2.send(2));
            wait_blocked(&rt, "chan send", 2);
            let got = select! {
                recv(rx1) -> v => v.unwrap(),
                recv(rx2) -> v => v.unwrap(),
            };
            let (done, waiting, other_rx) = if got == 1 {
                (s1, s2, rx2)
            } else {
                (s2, s1, rx1)
            };
            done.join().unwrap().unwrap();
            wait_blocked(&rt, "chan send", 1);
            assert_eq!(other_rx.recv(), Ok(3 - got));
            waiting.join().unwrap().unwrap();
        }
    });
}

#[test]
fn dynamic_select_api() {
    let (tx1, rx1) = chan::bounded::<i32>(1);
    let (tx2, rx2) = chan::bounded::<i32>(1);
    let mut sel = Select::new();
    let r1 = sel.recv(&rx1);
    let r2 = sel.recv(&rx2);
    let s1 = sel.send(&tx1);
    assert_eq!((r1, r2, s1), (0, 1, 2));
    // Only the send arm is ready.
    let oper = sel.try_select().unwrap();
    assert_eq!(oper.index(), s1);
    assert_eq!(oper.send(&tx1, 10), Ok(()));
    // Now r1 and the... no: tx1 is full, so only r1 is ready.
    let oper = sel.select();
    assert_eq!(oper.index(), r1);
    assert_eq!(oper.recv(&rx1), Ok(10));
    // Switch the send arm off (Go's nil channel): nothing ready now.
    sel.remove(s1);
    assert_eq!(
        sel.try_select().map(|o| o.index()).unwrap_err(),
        TrySelectError
    );
    assert!(sel.select_timeout(Duration::from_millis(5)).is_err());
    tx2.send(20).unwrap();
    let oper = sel.select_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(oper.index(), r2);
    assert_eq!(oper.recv(&rx2), Ok(20));
    // Indices stay stable after a remove and keep counting up.
    assert_eq!(sel.recv(&rx2), 3);
    sel.remove(r2);
    tx2.send(30).unwrap();
    let oper = sel.select();
    assert_eq!(oper.index(), 3);
    assert_eq!(oper.recv(&rx2), Ok(30));
}

/// More arms than fit inline, arms removed from the middle, and a removed
/// ready arm is never chosen.
#[test]
fn dynamic_select_with_many_arms() {
    let chans: Vec<_> = (0..40).map(|_| chan::bounded::<usize>(1)).collect();
    let mut sel = Select::new();
    let idx: Vec<usize> = chans.iter().map(|(_, rx)| sel.recv(rx)).collect();
    assert_eq!(idx, (0..40).collect::<Vec<_>>());
    for i in (0..40).filter(|i| i % 3 != 0) {
        sel.remove(i);
    }
    for (i, (tx, _)) in chans.iter().enumerate() {
        tx.send(i).unwrap(); // every channel ready, only multiples of 3 armed
    }
    let mut seen = Vec::new();
    for _ in 0..14 {
        let oper = sel.select();
        let i = oper.index();
        assert_eq!(i % 3, 0, "a removed arm was chosen");
        assert_eq!(oper.recv(&chans[i].1), Ok(i));
        seen.push(i);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..40).step_by(3).collect::<Vec<_>>());
    assert!(sel.try_select().is_err());
}

#[test]
fn selected_operation_must_use_its_own_channel() {
    let (tx, rx) = chan::bounded::<i32>(1);
    let (_tx2, rx2) = chan::bounded::<i32>(1);
    tx.send(1).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut sel = Select::new();
        sel.recv(&rx);
        let oper = sel.select();
        let _ = oper.recv(&rx2);
    }));
    assert!(
        caught.is_err(),
        "finishing with another receiver must panic"
    );
    // The reservation was given back: the value is still there.
    assert_eq!(rx.try_recv(), Ok(1));
}

/// Dropping a `SelectedOperation` unfinished gives back what it reserved.
#[test]
fn dropping_a_selected_operation_gives_back_its_reservation() {
    let (tx, rx) = chan::bounded::<i32>(1);
    tx.send(1).unwrap();
    {
        let mut sel = Select::new();
        sel.recv(&rx);
        let oper = sel.try_select().unwrap();
        assert_eq!(rx.len(), 0, "the buffered value is claimed");
        drop(oper);
    }
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.try_recv(), Ok(1));
    {
        let mut sel = Select::new();
        sel.send(&tx);
        drop(sel.try_select().unwrap());
    }
    assert_eq!(tx.try_send(2), Ok(()), "the reserved slot was given back");

    // A receive arm that claimed a parked plain sender: the sender stays
    // parked with its value and completes with the next receive.
    let rt = runtime(2);
    let (tx, rx) = chan::bounded::<i32>(0);
    let sender = rt.spawn(move || tx.send(7));
    wait_blocked(&rt, "chan send", 1);
    {
        let mut sel = Select::new();
        sel.recv(&rx);
        drop(sel.try_select().expect("a parked sender is ready"));
    }
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(7));
    assert_eq!(sender.join().unwrap(), Ok(()));

    // A buffered value the select took at once (a small value is taken
    // in the try phase), a parked sender's value moved in behind the
    // rest meanwhile: dropped unfinished, it goes back first in line.
    let (tx, rx) = chan::bounded::<i32>(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let tx2 = tx.clone();
    let sender = rt.spawn(move || tx2.send(3));
    wait_blocked(&rt, "chan send", 1);
    {
        let mut sel = Select::new();
        sel.recv(&rx);
        drop(sel.try_select().expect("a value is buffered"));
    }
    assert_eq!(sender.join().unwrap(), Ok(()));
    let got: Vec<i32> = (0..3).map(|_| rx.try_recv().unwrap()).collect();
    assert_eq!(got, [1, 2, 3], "nothing lost, order kept");
    assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Empty));
}

/// A select's send arm that a dynamic `Select`'s receive arm claimed, then
/// dropped unfinished: the sender must not report success for a value
/// nobody received.
#[test]
fn dropping_a_selected_recv_does_not_lose_a_select_senders_value() {
    watchdog(|| {
        let rt = runtime(2);
        let (tx, rx) = chan::bounded::<i32>(0);
        let sender = rt.spawn(move || {
            select! {
                send(tx, 5) -> r => r,
                default(Duration::from_secs(2)) => Err(SendError(-1)),
            }
        });
        wait_blocked(&rt, "select", 1);
        {
            let mut sel = Select::new();
            sel.recv(&rx);
            drop(sel.try_select().expect("a parked select sender is ready"));
        }
        let sent = sender.join().unwrap();
        let received = rx.try_recv().ok();
        assert!(
            sent.is_err() || received == Some(5),
            "send returned {sent:?} but the receiver got {received:?}"
        );
    });
}

/// One select with send and receive arms on one unbuffered channel never
/// pairs with itself.
#[test]
fn a_lone_self_select_times_out() {
    let (tx, rx) = chan::bounded::<i32>(0);
    let got = select! {
        send(tx, 1) -> _r => "sent",
        recv(rx) -> _v => "received",
        default(Duration::from_millis(20)) => "timeout",
    };
    assert_eq!(got, "timeout");
}

/// `select!` on a plain OS thread, with green peers.
#[test]
fn select_on_an_os_thread_with_green_peers() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (tx, rx) = chan::bounded::<u32>(0);
        let (back_tx, back_rx) = chan::bounded::<u32>(0);
        let peer = rt.spawn(move || {
            for v in &rx {
                back_tx.send(v * 10).unwrap();
            }
        });
        for i in 0..200 {
            select! {
                send(tx, i) -> r => r.unwrap(),
                recv(chan::never::<u32>()) -> _v => unreachable!(),
            }
            let got = select! {
                recv(back_rx) -> v => v.unwrap(),
                default(Duration::from_secs(30)) => panic!("no answer"),
            };
            assert_eq!(got, i * 10);
        }
        drop(tx);
        peer.join().unwrap();
    });
}

/// A send arm's value expression that panics after its arm was chosen:
/// whatever the arm reserved is given back, so the peers it involved carry
/// on as if the select never happened.
#[test]
fn a_panicking_send_value_gives_back_what_its_arm_reserved() {
    fn boom() -> u32 {
        panic!("the value could not be built")
    }
    fn try_boom(tx: &chan::Sender<u32>) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            select! { send(tx, boom()) -> _r => () }
        }))
        .is_err()
    }
    // A reserved buffer slot.
    let (tx, rx) = chan::bounded::<u32>(1);
    assert!(try_boom(&tx));
    assert_eq!(tx.try_send(1), Ok(()), "the reserved slot was given back");
    assert_eq!(rx.try_recv(), Ok(1));

    for_each_workers(|workers| {
        let rt = runtime(workers);
        // A claimed parked receiver: it keeps waiting, and gets the next
        // value.
        let (tx, rx) = chan::bounded::<u32>(0);
        let receiver = rt.spawn(move || rx.recv());
        wait_blocked(&rt, "chan recv", 1);
        assert!(try_boom(&tx));
        wait_blocked(&rt, "chan recv", 1);
        tx.send(2).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(2));

        // A receiver that claimed our parked send arm and waits for the
        // value (the rendezvous): it must not be left waiting forever.
        let (tx, rx) = chan::bounded::<u32>(0);
        let tx2 = tx.clone();
        let selector = rt.spawn(move || try_boom(&tx2));
        wait_blocked(&rt, "select", 1);
        let rx2 = rx.clone();
        let receiver = rt.spawn(move || rx2.recv());
        assert!(selector.join().unwrap());
        tx.send(3).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(3));
    });
}

/// Spinning on non-blocking operations is still cooperative: on one
/// worker, a loop of `try_recv` or of `select!` with `default` lets the
/// green thread that will make it ready run.
#[test]
fn spinning_on_non_blocking_operations_lets_others_run() {
    block_on_each(|_| {
        let (tx, rx) = chan::bounded::<u32>(1);
        let (tx2, rx2) = chan::bounded::<u32>(1);
        let peer = grove::go(move || {
            tx.send(1).unwrap();
            let got = loop {
                if let Ok(v) = rx2.try_recv() {
                    break v;
                }
            };
            assert_eq!(got, 2);
        });
        let got = loop {
            select! {
                recv(rx) -> v => break v.unwrap(),
                default => {},
            }
        };
        assert_eq!(got, 1);
        loop {
            if tx2.try_send(2).is_ok() {
                break;
            }
        }
        peer.join().unwrap();
    });
}

/// A non-blocking `select!` whose receive arm claimed a parked select
/// sender, which then gives up (its value expression panics): the
/// non-blocking select must not turn into an unbounded blocking receive.
#[test]
fn a_non_blocking_select_does_not_block_when_its_peer_abandons() {
    fn give_up() -> u32 {
        panic!("the value could not be built")
    }
    watchdog_for(Duration::from_secs(10), || {
        let rt = runtime(2);
        let (tx, rx) = chan::bounded::<u32>(0);
        // Another sender keeps the channel open, as in a real program.
        let _other_sender = tx.clone();
        let abandoner = rt.spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                select! { send(tx, give_up()) -> _r => () }
            }))
            .is_err()
        });
        wait_blocked(&rt, "select", 1);
        let got = select! {
            recv(rx) -> v => Some(v),
            default => None,
        };
        assert!(abandoner.join().unwrap());
        assert_eq!(got, None);
    });
}

/// A select that paired with a timed `recv_timeout`/`send_timeout` peer
/// (it claimed the parked peer): the peer's operation took effect when the
/// select chose it, so the peer waits for the `SelectedOperation` to be
/// finished, past its own deadline if need be, and then succeeds; if the
/// `SelectedOperation` is dropped instead, the peer starts over and times
/// out. This is what crossbeam-channel does (its claimed waiter spins until
/// the selected operation writes or reads its packet), and it is the only
/// answer that keeps the select's promise: a chosen arm completes.
/// (Issue 19: "a timed operation claimed by a select ignores its deadline
/// while the user holds the SelectedOperation".)
fn timed_peer_claimed_by_a_select() {
    const PATIENCE: Duration = Duration::from_millis(20);
    for finish in [true, false] {
        // A receiver with a deadline, claimed by a select's send arm.
        let (tx, rx) = chan::bounded::<u32>(0);
        let peer = grove::go(move || {
            let start = Instant::now();
            (rx.recv_timeout(PATIENCE), start.elapsed())
        });
        let mut sel = Select::new();
        sel.send(&tx);
        wait_until("the receiver waits", || sel.try_ready().is_ok());
        let oper = sel.select();
        chan::after(2 * PATIENCE).recv().unwrap(); // hold it past the deadline
        if finish {
            oper.send(&tx, 7).unwrap();
        } else {
            drop(oper);
        }
        let (got, waited) = peer.join().unwrap();
        assert!(waited >= 2 * PATIENCE, "the peer returned after {waited:?}");
        let want = if finish {
            Ok(7)
        } else {
            Err(RecvTimeoutError::Timeout)
        };
        assert_eq!(got, want);

        // A sender with a deadline, claimed by a select's receive arm.
        let (tx, rx) = chan::bounded::<u32>(0);
        let peer = grove::go(move || {
            let start = Instant::now();
            (tx.send_timeout(8, PATIENCE), start.elapsed())
        });
        let mut sel = Select::new();
        sel.recv(&rx);
        wait_until("the sender waits", || sel.try_ready().is_ok());
        let oper = sel.select();
        chan::after(2 * PATIENCE).recv().unwrap();
        let received = if finish {
            Some(oper.recv(&rx))
        } else {
            drop(oper);
            None
        };
        let (sent, waited) = peer.join().unwrap();
        assert!(waited >= 2 * PATIENCE, "the peer returned after {waited:?}");
        if finish {
            assert_eq!((received, sent), (Some(Ok(8)), Ok(())));
        } else {
            assert_eq!(sent, Err(SendTimeoutError::Timeout(8)));
        }
    }
}

#[test]
fn a_timed_peer_claimed_by_a_select_waits_for_its_completion_on_an_os_thread() {
    watchdog(timed_peer_claimed_by_a_select);
}

#[test]
fn a_timed_peer_claimed_by_a_select_waits_for_its_completion_on_green_threads() {
    block_on_each(|_| timed_peer_claimed_by_a_select());
}

/// A value a select's receive arm got on an unbuffered channel, given back
/// because the selected operation was dropped unfinished, is seen by every
/// way of receiving: `try_recv` and a select with a `default` (which read
/// the channel's published readiness, not its lock) as well as `recv`, also
/// once the channel is closed.
#[test]
fn a_value_given_back_to_an_unbuffered_channel_is_seen_without_waiting() {
    watchdog(|| {
        let rt = runtime(2);
        let given_back = || {
            let (tx, rx) = chan::bounded::<u32>(0);
            // Polled empty: from here on the readiness word is exact.
            assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Empty));
            let selecting = {
                let rx = rx.clone();
                rt.spawn(move || {
                    let mut sel = Select::new();
                    sel.recv(&rx);
                    drop(sel.select()); // chosen, its value not taken
                })
            };
            wait_blocked(&rt, "select", 1);
            tx.send(7).unwrap(); // handed to the parked select's arm
            selecting.join().unwrap();
            assert_eq!(rx.len(), 1, "given back");
            (tx, rx)
        };
        for round in 0..20 {
            let (_tx, rx) = given_back();
            assert_eq!(rx.try_recv(), Ok(7), "round {round}");
            let (_tx, rx) = given_back();
            let got = select! { recv(rx) -> v => v.ok(), default => None };
            assert_eq!(got, Some(7), "round {round}");
            let (tx, rx) = given_back();
            tx.close();
            assert_eq!(rx.try_recv(), Ok(7), "round {round}");
            assert_eq!(rx.try_recv(), Err(chan::TryRecvError::Disconnected));
            let (tx, rx) = given_back();
            tx.close();
            let got = select! { recv(rx) -> v => v.ok(), default => None };
            assert_eq!(got, Some(7), "round {round}");
        }
    });
}
