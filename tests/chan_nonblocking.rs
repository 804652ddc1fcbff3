//! Operations that do not wait (`try_recv`, `try_send`, a `select!` with
//! a `default`) decide an empty or full channel from the word its lock
//! holders publish, without the lock. These tests pin what that must not
//! change: every state a channel can be in gives the answer the locked
//! path gave (empty, full, closed, receivers gone, a peer parked on the
//! other end), and two threads that each send and then poll the other's
//! channel never both miss the other's value (the locks ordered them; the
//! word must too).

#[path = "common/chan_util.rs"]
mod chan_util;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chan_util::{runtime, wait_blocked, watchdog};
use grove::chan::{self, Receiver, Sender, TryRecvError, TrySendError};

/// A single-arm receive with a `default`: `Some(result)` if the arm ran.
fn select_recv(rx: &Receiver<u32>) -> Option<Result<u32, chan::RecvError>> {
    grove::select! {
        recv(rx) -> v => Some(v),
        default => None,
    }
}

/// A single-arm send with a `default`; `evaluated` counts the evaluations
/// of the value expression (only a chosen arm evaluates it).
fn select_send(
    tx: &Sender<u32>,
    v: u32,
    evaluated: &Cell<u32>,
) -> Option<Result<(), chan::SendError<u32>>> {
    grove::select! {
        send(tx, { evaluated.set(evaluated.get() + 1); v }) -> r => Some(r),
        default => None,
    }
}

#[test]
fn every_state_answers_as_the_locked_path_did() {
    for cap in [0usize, 1, 3] {
        let (tx, rx) = chan::bounded::<u32>(cap);
        let evaluated = Cell::new(0);
        // Empty.
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "cap {cap}");
        assert_eq!(select_recv(&rx), None, "cap {cap}");
        // Fill; one more is full.
        for i in 0..cap as u32 {
            assert_eq!(select_send(&tx, i, &evaluated), Some(Ok(())), "cap {cap}");
        }
        assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)), "cap {cap}");
        assert_eq!(select_send(&tx, 99, &evaluated), None, "cap {cap}");
        assert_eq!(
            evaluated.get(),
            cap as u32,
            "a send arm not chosen evaluated its value"
        );
        // Drain in order; then empty again.
        for i in 0..cap as u32 {
            let got = if i % 2 == 0 {
                rx.try_recv().ok()
            } else {
                select_recv(&rx).map(|r| r.unwrap())
            };
            assert_eq!(got, Some(i), "cap {cap}");
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "cap {cap}");
        assert_eq!(select_recv(&rx), None, "cap {cap}");
        if cap > 0 {
            // Room again after the drain.
            assert_eq!(tx.try_send(7), Ok(()), "cap {cap}");
            assert_eq!(rx.try_recv(), Ok(7), "cap {cap}");
        }
        // Closed: what is buffered still comes, then the close shows.
        if cap > 0 {
            tx.try_send(5).unwrap();
        }
        tx.close();
        if cap > 0 {
            assert_eq!(rx.try_recv(), Ok(5), "cap {cap}");
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected), "cap {cap}");
        assert_eq!(select_recv(&rx), Some(Err(chan::RecvError)), "cap {cap}");
        assert_eq!(
            tx.try_send(1),
            Err(TrySendError::Disconnected(1)),
            "cap {cap}"
        );
        assert_eq!(
            select_send(&tx, 1, &evaluated),
            Some(Err(chan::SendError(1)))
        );
    }
}

#[test]
fn a_full_channel_whose_receivers_are_gone_says_disconnected() {
    for cap in [0usize, 2] {
        let (tx, rx) = chan::bounded::<u32>(cap);
        for i in 0..cap as u32 {
            tx.send(i).unwrap();
        }
        assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)));
        drop(rx);
        assert_eq!(
            tx.try_send(9),
            Err(TrySendError::Disconnected(9)),
            "cap {cap}"
        );
        let evaluated = Cell::new(0);
        assert_eq!(
            select_send(&tx, 9, &evaluated),
            Some(Err(chan::SendError(9))),
            "cap {cap}"
        );
    }
}

#[test]
fn a_never_channel_is_never_ready() {
    let never = chan::never::<u32>();
    for _ in 0..3 {
        assert_eq!(select_recv(&never), None);
        assert_eq!(never.try_recv(), Err(TryRecvError::Empty));
    }
}

/// A peer parked on the other end of an unbuffered (or full) channel makes
/// a poll succeed: parked on a green thread and on an OS thread.
#[test]
fn a_parked_peer_makes_a_poll_succeed() {
    watchdog(|| {
        let rt = runtime(2);
        for round in 0..20u32 {
            // A receiver parks; a try_send (then a select send) completes.
            let (tx, rx) = chan::bounded::<u32>(0);
            let receiver = rt.spawn(move || rx.recv().unwrap());
            wait_blocked(&rt, "chan recv", 1);
            let evaluated = Cell::new(0);
            let sent = if round % 2 == 0 {
                tx.try_send(round).is_ok()
            } else {
                select_send(&tx, round, &evaluated) == Some(Ok(()))
            };
            assert!(sent, "round {round}: a parked receiver was missed");
            assert_eq!(receiver.join().unwrap(), round);

            // A sender parks on a full channel; a poll takes the buffered
            // value and the sender's moves into the buffer.
            let (tx, rx) = chan::bounded::<u32>(1);
            tx.send(1000).unwrap();
            let sender = rt.spawn(move || tx.send(round).unwrap());
            wait_blocked(&rt, "chan send", 1);
            let first = if round % 2 == 0 {
                rx.try_recv().ok()
            } else {
                select_recv(&rx).map(|r| r.unwrap())
            };
            assert_eq!(first, Some(1000), "round {round}");
            sender.join().unwrap();
            assert_eq!(rx.try_recv(), Ok(round), "round {round}");
        }
        // The same with the peer on an OS thread (it blocks that thread).
        let (tx, rx) = chan::bounded::<u32>(0);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let os = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            rx.recv().unwrap()
        });
        ready_rx.recv().unwrap();
        // The OS thread may not have queued yet: poll until it has.
        let mut v = 41;
        loop {
            match tx.try_send(v) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) => {
                    v = back;
                    std::thread::yield_now();
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(os.join().unwrap(), 41);
    });
}

/// How a poller looks at the other side's channel.
#[derive(Clone, Copy, Debug)]
enum Poll {
    TryRecv,
    SelectOne,
    SelectTwo,
}

fn poll(how: Poll, rx: &Receiver<u32>) -> bool {
    match how {
        Poll::TryRecv => rx.try_recv().is_ok(),
        Poll::SelectOne => select_recv(rx).is_some(),
        Poll::SelectTwo => {
            let never = chan::never::<u32>();
            grove::select! {
                recv(never) -> _v => false,
                recv(rx) -> v => v.is_ok(),
                default => false,
            }
        }
    }
}

/// Releases two threads together: each arrival bumps the count and spins
/// until the other's arrival (a parking barrier would release them a wake
/// apart, and the race under test would rarely happen).
struct SpinBarrier(AtomicUsize);

impl SpinBarrier {
    fn wait(&self, round: usize) {
        self.0.fetch_add(1, Ordering::SeqCst);
        let mut spins = 0u32;
        while self.0.load(Ordering::SeqCst) < 2 * (round + 1) {
            spins += 1;
            if spins % 1024 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Two threads, each sending on its own channel and then polling the
/// other's, released together many times: at least one must see the other's
/// value (Dekker's pattern; the locks gave it, the published word must).
fn each_sends_then_polls(
    how: Poll,
    rounds: usize,
    spawn: impl Fn(Box<dyn FnOnce() + Send>, usize),
) {
    let barrier = Arc::new(SpinBarrier(AtomicUsize::new(0)));
    let (done_tx, done_rx) = chan::bounded::<bool>(1);
    let (work_tx, work_rx) = chan::bounded::<(Sender<u32>, Receiver<u32>)>(1);
    let (result_tx, result_rx) = chan::bounded::<()>(1);
    let peer_barrier = barrier.clone();
    spawn(
        Box::new(move || {
            for (round, (tx, rx)) in work_rx.iter().enumerate() {
                peer_barrier.wait(round);
                tx.send(2).unwrap();
                done_tx.send(poll(how, &rx)).unwrap();
            }
        }),
        1,
    );
    spawn(
        Box::new(move || {
            for round in 0..rounds {
                let (s1, r1) = chan::bounded::<u32>(1);
                let (s2, r2) = chan::bounded::<u32>(1);
                work_tx.send((s2, r1)).unwrap();
                barrier.wait(round);
                // Fails only if the peer polled and dropped `r1` already:
                // then its poll came first, and ours must see its value.
                let _ = s1.send(1);
                let mine = poll(how, &r2);
                let theirs = done_rx.recv().unwrap();
                assert!(
                    mine || theirs,
                    "{how:?}, round {round}: both polls missed the other's send"
                );
            }
            drop(work_tx);
            result_tx.send(()).unwrap();
        }),
        0,
    );
    // Disconnected (not Ok) if the poller panicked.
    result_rx.recv().expect("the poller failed");
}

#[test]
fn two_polls_never_both_miss_the_others_send_on_os_threads() {
    watchdog(|| {
        for how in [Poll::TryRecv, Poll::SelectOne, Poll::SelectTwo] {
            each_sends_then_polls(how, 3_000, |f, _| {
                std::thread::spawn(f);
            });
        }
    });
}

#[test]
fn two_polls_never_both_miss_the_others_send_on_green_threads() {
    watchdog(|| {
        let rt = runtime(2);
        for how in [Poll::TryRecv, Poll::SelectOne, Poll::SelectTwo] {
            rt.block_on(move || {
                // One on each worker: both run at once.
                each_sends_then_polls(how, 1_000, |f, worker| {
                    grove::thread::Builder::new()
                        .on_worker(worker)
                        .spawn(f)
                        .unwrap();
                })
            });
        }
    });
}
