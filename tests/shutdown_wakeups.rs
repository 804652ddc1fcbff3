//! A wake-up spent on a green thread that its runtime's drop then unwinds
//! (instead of letting it run) is never lost to the waiters behind it: a
//! waiter of another runtime (or an OS thread) queued after the dropped
//! runtime's green threads still gets its value, its slot, its permit or
//! its turn. The waiter behind is a green thread of a second runtime, so
//! that each test can see it queued before it drops the first runtime.
//!
//! The same for `Mutex` (a lock handed to a waiter that is then unwound)
//! and `Condvar` (a `notify_one` spent on one) is in `sync_mutex.rs` and
//! `sync_condvar.rs`: those two were holes, found and fixed with them.
//!
//! Each case runs many rounds on every worker count: the first waiter is
//! sometimes unwound before it runs and sometimes runs first; either way
//! the waiter behind must come back, with exact counts.

#[path = "common/base.rs"]
mod base;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base::{for_each_workers, runtime, wait_blocked};
use grove::chan;
use grove::select;
use grove::sync::{RwLock, Semaphore};

const ROUNDS: usize = 20;

/// Senders of a dropped runtime parked on a full buffered channel, and a
/// sender of another runtime behind them: receiving frees slots; each
/// value sent is received at most once, the other runtime's for sure.
#[test]
fn a_slot_freed_for_an_unwound_sender_reaches_the_sender_behind() {
    slots_reach_the_sender_behind(|tx, v| {
        let _ = tx.send(v);
    });
}

/// As above, with the dropped runtime's senders parked in `select!`.
#[test]
fn a_slot_freed_for_an_unwound_select_sender_reaches_the_sender_behind() {
    let (never_tx, never_rx) = chan::bounded::<()>(0);
    slots_reach_the_sender_behind(move |tx, v| {
        let _keep = &never_tx;
        select! {
            send(tx, v) -> _r => {},
            recv(never_rx) -> _r => {},
        }
    });
}

/// The sender cases: `send` (run in a green thread of the runtime that is
/// dropped) parks sending its value on a full channel.
fn slots_reach_the_sender_behind<F>(send: F)
where
    F: Fn(chan::Sender<u64>, u64) + Clone + Send + Sync + 'static,
{
    for_each_workers(move |workers| {
        let other = runtime(1);
        for _ in 0..ROUNDS {
            let rt = runtime(workers);
            let (tx, rx) = chan::bounded::<u64>(1);
            tx.send(0).unwrap();
            for v in 1..=3 {
                let (tx, send) = (tx.clone(), send.clone());
                rt.spawn(move || send(tx, v));
            }
            wait_until_parked(&rt, 3);
            let last = {
                let tx = tx.clone();
                other.spawn(move || tx.send(100).unwrap())
            };
            wait_blocked(&other, "chan send", 1);
            assert_eq!(rx.recv().unwrap(), 0);
            drop(rt);
            drop(tx);
            // The other runtime's sender must get in; then every sender is
            // gone and the channel ends.
            let got: Vec<u64> = rx.iter().collect();
            last.join().unwrap();
            assert!(got.contains(&100), "the sender behind got in: {got:?}");
            let mut distinct = got.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), got.len(), "no value twice: {got:?}");
        }
    });
}

/// Receivers of a dropped runtime parked on an empty channel, and a
/// receiver of another runtime behind them: of the values sent, the one
/// that reaches a receiver being unwound may be lost with it (it was
/// delivered), but the receiver behind gets one of the rest.
#[test]
fn a_receiver_behind_unwound_receivers_gets_a_value() {
    for_each_workers(|workers| {
        let other = runtime(1);
        for _ in 0..ROUNDS {
            let rt = runtime(workers);
            let (tx, rx) = chan::bounded::<u64>(0);
            for _ in 0..3 {
                let rx = rx.clone();
                rt.spawn(move || {
                    let _ = rx.recv();
                });
            }
            wait_blocked(&rt, "chan recv", 3);
            let last = {
                let rx = rx.clone();
                other.spawn(move || rx.recv().unwrap())
            };
            wait_blocked(&other, "chan recv", 1);
            // One value for a first waiter, then drop its runtime: the next
            // values must reach the waiter behind.
            let sender = std::thread::spawn(move || {
                let mut sent = 0;
                for v in 1..=4 {
                    if tx.send(v).is_err() {
                        break;
                    }
                    sent += 1;
                }
                sent
            });
            drop(rt);
            let got = last.join().unwrap();
            assert!((1..=4).contains(&got));
            drop(rx);
            let _ = sender.join().unwrap();
        }
    });
}

/// Writers of a dropped runtime waiting on an `RwLock` held for reading,
/// and a writer of another runtime behind them.
#[test]
fn a_writer_behind_unwound_writers_gets_the_lock() {
    for_each_workers(|workers| {
        let other = runtime(1);
        for _ in 0..ROUNDS {
            let rt = runtime(workers);
            let lock = Arc::new(RwLock::new(0u64));
            let reader = lock.read().unwrap();
            for _ in 0..3 {
                let lock = lock.clone();
                rt.spawn(move || *lock.write().unwrap_or_else(|e| e.into_inner()) += 1);
            }
            wait_blocked(&rt, "RwLock::write", 3);
            let last = {
                let lock = lock.clone();
                other.spawn(move || *lock.write().unwrap_or_else(|e| e.into_inner()) += 100)
            };
            wait_blocked(&other, "RwLock::write", 1);
            drop(reader);
            drop(rt);
            last.join().unwrap();
            let v = *lock.read().unwrap_or_else(|e| e.into_inner());
            assert!((100..=103).contains(&v), "value {v}");
        }
    });
}

/// Acquirers of a dropped runtime waiting on a semaphore, and one of
/// another runtime behind them: permits granted to those unwound come
/// back.
#[test]
fn an_acquirer_behind_unwound_acquirers_gets_a_permit() {
    for_each_workers(|workers| {
        let other = runtime(1);
        for _ in 0..ROUNDS {
            let rt = runtime(workers);
            let sem = Arc::new(Semaphore::new(1));
            let held = sem.acquire();
            let passed = Arc::new(AtomicU64::new(0));
            for _ in 0..3 {
                let (sem, passed) = (sem.clone(), passed.clone());
                rt.spawn(move || {
                    let _p = sem.acquire();
                    passed.fetch_add(1, Ordering::SeqCst);
                });
            }
            wait_blocked(&rt, "Semaphore::acquire", 3);
            let last = {
                let sem = sem.clone();
                other.spawn(move || drop(sem.acquire()))
            };
            wait_blocked(&other, "Semaphore::acquire", 1);
            drop(held);
            drop(rt);
            last.join().unwrap();
            assert_eq!(sem.available_permits(), 1, "every permit came back");
        }
    });
}

/// Waits until `n` green threads of `rt` are parked, whatever on.
fn wait_until_parked(rt: &grove::Runtime, n: usize) {
    base::wait_until(&format!("{n} green thread(s) parked"), || {
        rt.tasks().iter().filter(|t| t.blocked_on.is_some()).count() == n
    });
}

/// A green thread that holds its runtime's only worker until `release` is
/// called (blocked on an OS-level channel): what is woken meanwhile stays
/// queued. Returns once it holds the worker.
fn hold_the_worker(rt: &grove::Runtime) -> impl FnOnce() {
    let (holding_tx, holding_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    rt.spawn(move || {
        holding_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    holding_rx.recv().unwrap();
    move || {
        let _ = release_tx.send(());
    }
}

/// Drops `rt` on another OS thread while its worker is held, then
/// releases the worker: the green threads woken meanwhile are unwound
/// (or, if the release wins the race with the drop, run first).
fn drop_while_held(rt: grove::Runtime, release: impl FnOnce()) {
    let (dropping_tx, dropping_rx) = std::sync::mpsc::channel::<()>();
    let dropper = std::thread::spawn(move || {
        dropping_tx.send(()).unwrap();
        drop(rt);
    });
    dropping_rx.recv().unwrap();
    release();
    dropper.join().unwrap();
}

/// A select send arm on a full `bounded(1)` channel is granted the slot a
/// receive frees, and its runtime is dropped before it runs to fill it:
/// the slot must come back (the channel empty and one value roomy again),
/// or, if the select ran first, hold its value.
#[test]
fn a_slot_granted_to_an_unwound_select_comes_back() {
    for _ in 0..ROUNDS {
        let rt = runtime(1);
        let (tx, rx) = chan::bounded::<u32>(1);
        tx.send(1).unwrap();
        {
            let tx = tx.clone();
            rt.spawn(move || select! { send(tx, 2) -> r => r.unwrap() });
        }
        wait_blocked(&rt, "select", 1);
        let release = hold_the_worker(&rt);
        assert_eq!(rx.recv(), Ok(1)); // the slot goes to the select
        drop_while_held(rt, release);
        match rx.try_recv() {
            Ok(v) => assert_eq!(v, 2, "the select ran and filled its slot"),
            Err(e) => assert_eq!(e, chan::TryRecvError::Empty),
        }
        assert_eq!(rx.len(), 0);
        tx.try_send(3)
            .expect("an empty bounded(1) channel takes a value");
        assert_eq!(rx.recv(), Ok(3));
    }
}

/// A receiver (an OS thread) claims a select's send arm, whose value is
/// deferred until the select runs, and waits for it; the select's runtime
/// is dropped before it runs. The receiver must not wait for ever: it
/// takes the next value sent, or the select's if the select ran first,
/// and sees the channel end once the last sender is gone.
#[test]
fn a_receiver_of_an_unwound_select_sender_receives_again() {
    for _ in 0..ROUNDS {
        let rt = runtime(1);
        let (tx, rx) = chan::bounded::<u32>(0);
        {
            let tx = tx.clone();
            rt.spawn(move || select! { send(tx, 5) -> r => r.unwrap() });
        }
        wait_blocked(&rt, "select", 1);
        let release = hold_the_worker(&rt);
        let receiver = {
            let rx = rx.clone();
            std::thread::spawn(move || (rx.recv(), rx.recv()))
        };
        // The receiver claims the select's arm and waits for its value;
        // the select is woken but cannot run until the worker is released.
        base::wait_until("the select woken", || {
            rt.tasks().iter().filter(|t| t.blocked_on.is_some()).count() == 0
        });
        drop_while_held(rt, release);
        // Unless the select ran and sent 5, this is the receiver's first
        // value; then the channel ends.
        let sent = tx.send_timeout(9, std::time::Duration::from_secs(10));
        drop(tx);
        let (first, second) = receiver.join().unwrap();
        match (first, sent) {
            (Ok(5), Ok(())) => assert_eq!(second, Ok(9)),
            (Ok(5), Err(e)) => panic!("the select sent 5, but 9 was refused: {e:?}"),
            (Ok(9), Ok(())) => assert_eq!(second, Err(chan::RecvError)),
            other => panic!("receiver got {other:?}"),
        }
    }
}

/// A select's send arm (a green thread of one runtime, parked in the
/// select first so that the receiver finds it queued) is claimed by a
/// receiver of another runtime, which waits for the deferred value; the
/// select evaluates its value slowly, and the receiver's runtime is
/// dropped meanwhile. The send must then go the ordinary way (here to a
/// later receiver): the channel is open and has receivers, so it must not
/// fail.
#[test]
fn a_select_send_whose_receiver_was_unwound_still_sends() {
    let other = runtime(1);
    for _ in 0..ROUNDS {
        let (tx, rx) = chan::bounded::<u32>(0);
        let (evaluating_tx, evaluating_rx) = std::sync::mpsc::channel::<()>();
        let (value_tx, value_rx) = std::sync::mpsc::channel::<u32>();
        let selector = {
            let tx = tx.clone();
            other.spawn(move || {
                select! {
                    send(tx, {
                        evaluating_tx.send(()).unwrap();
                        value_rx.recv().unwrap()
                    }) -> r => r,
                }
            })
        };
        wait_blocked(&other, "select", 1);
        let rt = runtime(1);
        {
            let rx = rx.clone();
            rt.spawn(move || rx.recv());
        }
        // The receiver claimed the arm (the select is evaluating its
        // value) and waits for it.
        evaluating_rx.recv().unwrap();
        wait_blocked(&rt, "chan recv", 1);
        drop(rt);
        value_tx.send(7).unwrap();
        // No receiver now: the send waits for one, as any send would.
        wait_blocked(&other, "chan send", 1);
        assert_eq!(rx.recv(), Ok(7), "a later receiver gets the value");
        assert_eq!(selector.join().unwrap(), Ok(()));
    }
}
