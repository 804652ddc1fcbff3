//! What crossbeam-channel's own test suite found in grove (issue 23), one
//! regression test (or more) per finding, named after it:
//!
//! 1. a blocking channel call from a thread-local destructor (aborted);
//! 2. dropping the last `Receiver` while buffered values panic in `Drop`
//!    (aborted: a panic while panicking);
//! 3. `after(d)` delivers its deadline, not the time of the receive;
//! 4. a `SelectedOperation` completes through any handle of its channel;
//! 5. a select that gives up (`default`, any timeout, zero included) saw
//!    every arm not ready at one instant: linearizable;
//! 6. an unbounded channel gives memory back after a burst;
//! 7. nested temporaries in `select!`'s channel expressions;
//! 8. `default() =>` and trailing commas inside an arm's parentheses;
//! 9. readiness (`Select::ready` and friends), `select_biased!` /
//!    `Select::new_biased`, `Select: Clone`, and `UnwindSafe` ends.
//!
//! Items 1 and 2 run in a child process: before the fix they aborted the
//! whole process.

#[path = "common/chan_util.rs"]
mod chan_util;

use std::panic::{self, RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chan_util::{
    block_on_each, expect_panic, in_child, run_in_child, runtime, wait_blocked, wait_until,
    watchdog, watchdog_for, DropCount, Tracked, WORKER_COUNTS,
};
use grove::chan::{
    self, ReadyTimeoutError, Receiver, RecvError, RecvTimeoutError, Select, Sender, TryReadyError,
};
use grove::{select, select_biased};

/// Runs the test `name` in a child process (see `chan_util::run_in_child`)
/// unless this is that child; true in the child.
fn in_own_process(name: &str) -> bool {
    if in_child(name) {
        return true;
    }
    let (passed, output) = run_in_child(name);
    assert!(passed, "the child failed:\n{output}");
    false
}

// ---- 1. Blocking in a thread-local destructor ------------------------------

/// What the destructors below saw, one bit each.
static TLS_DTOR_CHECKS: AtomicUsize = AtomicUsize::new(0);
const TIMED_OUT: usize = 1;
const RECEIVED: usize = 2;
const SENT: usize = 4;
const CURRENT: usize = 8;
const ALL_CHECKS: usize = TIMED_OUT | RECEIVED | SENT | CURRENT;

/// A thread-local whose destructor uses channels: a timed receive that
/// times out, a rendezvous with another OS thread each way (so the thread
/// really parks and is woken), and `thread::current()`.
struct BlocksInDrop {
    from_peer: Receiver<u32>,
    to_peer: Sender<u32>,
}

impl Drop for BlocksInDrop {
    fn drop(&mut self) {
        let (_s, r) = chan::unbounded::<()>();
        if r.recv_timeout(Duration::from_millis(10)) == Err(RecvTimeoutError::Timeout) {
            TLS_DTOR_CHECKS.fetch_or(TIMED_OUT, Ordering::SeqCst);
        }
        if self.from_peer.recv() == Ok(7) {
            TLS_DTOR_CHECKS.fetch_or(RECEIVED, Ordering::SeqCst);
        }
        if self.to_peer.send(8).is_ok() {
            TLS_DTOR_CHECKS.fetch_or(SENT, Ordering::SeqCst);
        }
        if !grove::thread::current().is_green() {
            TLS_DTOR_CHECKS.fetch_or(CURRENT, Ordering::SeqCst);
        }
    }
}

thread_local! {
    static BLOCKS_IN_DROP: std::cell::RefCell<Option<BlocksInDrop>> =
        const { std::cell::RefCell::new(None) };
}

/// A thread whose thread-local destructor blocks on channels, after the
/// thread used grove's parking itself (so grove's own thread-locals are
/// destroyed first: they were registered last). The destructor's peer is
/// another OS thread.
fn a_thread_that_blocks_in_a_tls_destructor(register_first: bool) {
    let (to_dtor, from_peer) = chan::bounded::<u32>(0);
    let (to_peer, from_dtor) = chan::bounded::<u32>(0);
    let peer = std::thread::spawn(move || {
        to_dtor.send(7).unwrap();
        from_dtor.recv().unwrap()
    });
    std::thread::spawn(move || {
        let mut ends = Some(BlocksInDrop { from_peer, to_peer });
        let mut install = move || {
            BLOCKS_IN_DROP.with(|slot| *slot.borrow_mut() = ends.take());
        };
        if register_first {
            install();
        }
        // Park once through grove before the thread ends.
        let (_s, r) = chan::unbounded::<()>();
        assert!(r.recv_timeout(Duration::from_millis(1)).is_err());
        if !register_first {
            install();
        }
    })
    .join()
    .expect("the thread (and its thread-local destructors) finished");
    assert_eq!(peer.join().unwrap(), 8);
}

/// Issue 23 item 1: crossbeam returns `Err(Timeout)` here; grove aborted
/// ("cannot access a Thread Local Storage value during or after
/// destruction" in the OS parker, a panic inside a destructor).
#[test]
fn blocking_in_a_thread_local_destructor() {
    if !in_own_process("blocking_in_a_thread_local_destructor") {
        return;
    }
    watchdog_for(Duration::from_secs(30), || {
        for register_first in [true, false] {
            TLS_DTOR_CHECKS.store(0, Ordering::SeqCst);
            a_thread_that_blocks_in_a_tls_destructor(register_first);
            assert_eq!(TLS_DTOR_CHECKS.load(Ordering::SeqCst), ALL_CHECKS);
        }
    });
}

/// The same on a runtime's worker thread: a green thread leaves the
/// thread-local behind on its worker, whose OS thread runs the destructor
/// when the runtime is dropped.
#[test]
fn blocking_in_a_thread_local_destructor_of_a_worker() {
    if !in_own_process("blocking_in_a_thread_local_destructor_of_a_worker") {
        return;
    }
    watchdog_for(Duration::from_secs(30), || {
        TLS_DTOR_CHECKS.store(0, Ordering::SeqCst);
        let (to_dtor, from_peer) = chan::bounded::<u32>(0);
        let (to_peer, from_dtor) = chan::bounded::<u32>(0);
        let peer = std::thread::spawn(move || {
            to_dtor.send(7).unwrap();
            from_dtor.recv().unwrap()
        });
        let rt = runtime(1);
        rt.block_on(move || {
            BLOCKS_IN_DROP.with(|slot| {
                *slot.borrow_mut() = Some(BlocksInDrop { from_peer, to_peer });
            })
        });
        drop(rt); // the worker thread exits: its thread-locals are destroyed
        assert_eq!(peer.join().unwrap(), 8);
        wait_until("the destructor's checks", || {
            TLS_DTOR_CHECKS.load(Ordering::SeqCst) == ALL_CHECKS
        });
    });
}

// ---- 2. Panicking destructors of buffered values -----------------------------

/// Panics when dropped (its field counts the drop all the same).
struct PanicsInDrop(Tracked);

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        panic!("value {} panics in drop", self.0.id);
    }
}

/// Issue 23 item 2: with two (here three) buffered values that panic in
/// `Drop`, dropping the last `Receiver` aborted the process. Now the first
/// panic comes out of the drop, and every value is dropped.
#[test]
fn dropping_the_last_receiver_with_panicking_buffered_values() {
    if !in_own_process("dropping_the_last_receiver_with_panicking_buffered_values") {
        return;
    }
    let check = || {
        for cap in [Some(4), None] {
            let drops = DropCount::new();
            let (tx, rx) = match cap {
                Some(n) => chan::bounded(n),
                None => chan::unbounded(),
            };
            for id in 0..3 {
                tx.send(PanicsInDrop(Tracked::new(id, &drops))).unwrap();
            }
            let message = expect_panic(move || drop(rx));
            assert_eq!(message, "value 0 panics in drop", "the first panic goes on");
            assert_eq!(drops.get(), 3, "every buffered value was dropped");
            assert!(tx.is_closed(), "no receivers left: sends fail");
            let back = tx.send(PanicsInDrop(Tracked::new(9, &drops)));
            assert!(back.is_err());
            std::mem::forget(back); // its drop would panic
        }
    };
    watchdog_for(Duration::from_secs(30), move || {
        check();
        runtime(2).block_on(check);
    });
}

// ---- 3. after(d) delivers its deadline -------------------------------------

/// Issue 23 item 3: a 50 ms `after` taken at +100 ms said start + 100 ms.
/// Go's `time.After` (and crossbeam's) deliver the time it fired: the
/// deadline, whenever it is received and through whichever operation.
#[test]
fn after_delivers_its_deadline() {
    let check = || {
        const D: Duration = Duration::from_millis(20);
        for how in 0..4 {
            let before = Instant::now();
            let timer = chan::after(D);
            let made = Instant::now();
            // Receive late: wait out three times the delay first.
            chan::after(3 * D).recv().unwrap();
            let fired = match how {
                0 => timer.recv().unwrap(),
                1 => timer.try_recv().unwrap(),
                2 => timer.recv_timeout(D).unwrap(),
                _ => select! {
                    recv(timer) -> v => v.unwrap(),
                    default => panic!("the timer is due"),
                },
            };
            assert!(
                fired >= before + D && fired <= made + D,
                "after({D:?}) delivered {:?} after its making, not its deadline (way {how})",
                fired - before
            );
        }
    };
    watchdog(check);
    block_on_each(move |_| check());
}

// ---- 4. Completing a selected operation through a clone --------------------

/// Issue 23 item 4: `oper.recv(&rx.clone())` panicked "passed a receiver
/// that wasn't selected". Any handle of the selected channel will do (the
/// channel is compared, not the handle: crossbeam's bug #1096); a handle of
/// another channel, or of the other direction, still panics.
#[test]
fn a_selected_operation_completes_through_a_clone() {
    let (tx, rx) = chan::bounded::<u32>(1);
    tx.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let oper = sel.select();
    assert_eq!(oper.recv(&rx.clone()), Ok(1));

    let mut sel = Select::new();
    sel.send(&tx);
    let oper = sel.select();
    assert_eq!(oper.send(&tx.clone(), 2), Ok(()));
    assert_eq!(rx.recv(), Ok(2));

    // In `select!`, arms made from temporaries of one channel.
    tx.send(3).unwrap();
    let got = select! { recv(rx.clone()) -> v => v };
    assert_eq!(got, Ok(3));

    // Timer channels too.
    let timer = chan::after(Duration::ZERO);
    let mut sel = Select::new();
    sel.recv(&timer);
    let oper = sel.select();
    assert!(oper.recv(&timer.clone()).is_ok());

    // Not any channel, and not the other end.
    let (_other_tx, other_rx) = chan::bounded::<u32>(1);
    tx.send(4).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let message = expect_panic(|| sel.select().recv(&other_rx));
    assert_eq!(message, "passed a receiver that wasn't selected");
    let mut sel = Select::new();
    sel.recv(&rx);
    let message = expect_panic(|| sel.select().send(&tx, 5));
    assert_eq!(message, "passed a sender that wasn't selected");
    assert_eq!(
        rx.try_recv(),
        Ok(4),
        "the unfinished operation gave its value back"
    );
}

// ---- 5. A select that gives up is linearizable -------------------------------

/// How the prober looks at the two channels without waiting.
#[derive(Clone, Copy, Debug)]
enum Probe {
    /// `select!` with `default`.
    Default,
    /// `select!` with `default(Duration::ZERO)`.
    DefaultZero,
    /// `select!` with a timeout short enough to run out while it looks.
    DefaultTiny,
    /// `select_biased!` with `default(Duration::ZERO)`.
    BiasedZero,
    /// `Select::select_timeout(Duration::ZERO)`.
    SelectTimeoutZero,
    /// `Select::try_select`.
    TrySelect,
    /// `Select::try_ready` (completes nothing).
    TryReady,
    /// `Select::ready_timeout(Duration::ZERO)` (completes nothing).
    ReadyTimeoutZero,
}

const PROBES: [Probe; 8] = [
    Probe::Default,
    Probe::DefaultZero,
    Probe::DefaultTiny,
    Probe::BiasedZero,
    Probe::SelectTimeoutZero,
    Probe::TrySelect,
    Probe::TryReady,
    Probe::ReadyTimeoutZero,
];

/// Two channels between which tokens move; a probe that takes a token puts
/// it straight back where it came from. The probes also look at `idle`
/// channels, which are never ready: they widen the gap between a probe's
/// looks at the two token channels, where a probe that looks at one arm at
/// a time goes wrong.
struct Pair {
    tx: [Sender<u8>; 2],
    rx: [Receiver<u8>; 2],
    idle: Vec<(Sender<u8>, Receiver<u8>)>,
}

impl Pair {
    fn new(bounded: bool) -> Pair {
        let (a, b) = if bounded {
            (chan::bounded(2), chan::bounded(2))
        } else {
            (chan::unbounded(), chan::unbounded())
        };
        Pair {
            tx: [a.0, b.0],
            rx: [a.1, b.1],
            idle: (0..IDLE_ARMS).map(|_| chan::bounded(0)).collect(),
        }
    }

    /// Whether `probe` found an arm ready (a token taken is put back).
    fn probe(&self, probe: Probe) -> bool {
        let [r0, r1] = &self.rx;
        let [i0, i1, i2, i3] = [0, 1, 2, 3].map(|i| &self.idle[i].1);
        let back = |i: usize, v: Result<u8, RecvError>| {
            self.tx[i].send(v.expect("the channels stay open")).unwrap();
            true
        };
        match probe {
            Probe::Default => select! {
                recv(i0) -> _v => unreachable!(),
                recv(r0) -> v => back(0, v),
                recv(i1) -> _v => unreachable!(),
                recv(i2) -> _v => unreachable!(),
                recv(r1) -> v => back(1, v),
                recv(i3) -> _v => unreachable!(),
                default => false,
            },
            Probe::DefaultZero => select! {
                recv(i0) -> _v => unreachable!(),
                recv(r0) -> v => back(0, v),
                recv(i1) -> _v => unreachable!(),
                recv(i2) -> _v => unreachable!(),
                recv(r1) -> v => back(1, v),
                recv(i3) -> _v => unreachable!(),
                default(Duration::ZERO) => false,
            },
            Probe::DefaultTiny => select! {
                recv(i0) -> _v => unreachable!(),
                recv(r0) -> v => back(0, v),
                recv(i1) -> _v => unreachable!(),
                recv(i2) -> _v => unreachable!(),
                recv(r1) -> v => back(1, v),
                recv(i3) -> _v => unreachable!(),
                default(Duration::from_nanos(200)) => false,
            },
            Probe::BiasedZero => select_biased! {
                recv(i0) -> _v => unreachable!(),
                recv(r0) -> v => back(0, v),
                recv(i1) -> _v => unreachable!(),
                recv(i2) -> _v => unreachable!(),
                recv(r1) -> v => back(1, v),
                recv(i3) -> _v => unreachable!(),
                default(Duration::ZERO) => false,
            },
            Probe::SelectTimeoutZero | Probe::TrySelect => {
                let mut sel = Select::new();
                for (_, idle) in &self.idle {
                    sel.recv(idle);
                }
                let first = sel.recv(r0);
                sel.recv(r1);
                let oper = match probe {
                    Probe::TrySelect => sel.try_select().ok(),
                    _ => sel.select_timeout(Duration::ZERO).ok(),
                };
                match oper {
                    Some(oper) => {
                        let i = oper.index() - first;
                        let v = oper.recv(&self.rx[i]);
                        back(i, v)
                    }
                    None => false,
                }
            }
            Probe::TryReady | Probe::ReadyTimeoutZero => {
                let mut sel = Select::new();
                for (_, idle) in &self.idle {
                    sel.recv(idle);
                }
                sel.recv(r0);
                sel.recv(r1);
                match probe {
                    Probe::TryReady => sel.try_ready().is_ok(),
                    _ => sel.ready_timeout(Duration::ZERO).is_ok(),
                }
            }
        }
    }
}

/// Probes made per run; the mover moves tokens until the prober is done.
const PROBE_ROUNDS: usize = 10_000;

/// Never-ready arms in each probe, besides the two token channels.
const IDLE_ARMS: usize = 4;

/// crossbeam's `linearizable_default` / `linearizable_timeout`, made
/// sharper: two tokens, and a mover that holds at most one. It sends its
/// token into one channel and then takes one, from the other channel if it
/// can, so a token keeps crossing from one channel to the other. A probe
/// (holding no token while it looks) always has at least one token in a
/// channel: at every instant some arm is ready, so a probe must never give
/// up. A probe that looks at one arm and then the other can miss both: the
/// first arm is empty, then the token crosses over behind its back.
fn linearizable(
    probe: Probe,
    bounded: bool,
    spawn: impl Fn(Box<dyn FnOnce() + Send>) -> Box<dyn FnOnce()>,
) {
    let pair = Arc::new(Pair::new(bounded));
    pair.tx[0].send(0).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mover = {
        let (pair, done) = (pair.clone(), done.clone());
        spawn(Box::new(move || {
            let mut hand = 1u8;
            let mut to = 0;
            while !done.load(Ordering::Relaxed) {
                pair.tx[to].send(hand).unwrap();
                // From the other channel if it has one: the token crosses.
                hand = match pair.rx[1 - to].try_recv() {
                    Ok(v) => v,
                    Err(_) => pair.rx[to].recv().unwrap(),
                };
                to = 1 - to;
            }
        }))
    };
    let mut missed = 0;
    for _ in 0..PROBE_ROUNDS {
        if !pair.probe(probe) {
            missed += 1;
        }
    }
    done.store(true, Ordering::Relaxed);
    mover();
    assert_eq!(
        missed,
        0,
        "{probe:?} ({}) gave up {missed} times in {PROBE_ROUNDS} while an arm was ready",
        if bounded { "bounded" } else { "unbounded" }
    );
}

/// Issue 23 item 5 on OS threads.
#[test]
fn a_select_that_gives_up_is_linearizable_on_os_threads() {
    watchdog(|| {
        for probe in PROBES {
            for bounded in [true, false] {
                linearizable(probe, bounded, |f| {
                    let t = std::thread::spawn(f);
                    Box::new(move || t.join().unwrap())
                });
            }
        }
    });
}

/// Issue 23 item 5 on green threads, 1, 2 and 4 workers (on 1 the probe
/// and the mover take turns, so only the timed probes can be interrupted).
#[test]
fn a_select_that_gives_up_is_linearizable_on_green_threads() {
    watchdog(|| {
        for workers in WORKER_COUNTS.into_iter().filter(|&w| w <= 4) {
            runtime(workers).block_on(move || {
                for probe in PROBES {
                    for bounded in [true, false] {
                        linearizable(probe, bounded, |f| {
                            let t = grove::go(f);
                            Box::new(move || t.join().unwrap())
                        });
                    }
                }
            });
        }
    });
}

// ---- 6. An unbounded channel gives memory back -----------------------------

/// Issue 23 item 6: a channel kept its buffer at its peak size forever: a
/// burst of a million values held that memory after it drained. The buffer
/// now shrinks as it drains (amortised), down to a small allocation.
#[test]
fn a_drained_channel_gives_its_memory_back() {
    const BURST: u64 = 1_000_000;
    for cap in [None, Some(BURST as usize)] {
        let (tx, rx) = match cap {
            Some(n) => chan::bounded::<u64>(n),
            None => chan::unbounded::<u64>(),
        };
        // What a channel keeps however far it drains (see chan.rs).
        let keep = cap.map_or(32, |c| c.min(1024));
        for round in 0..2 {
            for i in 0..BURST {
                tx.send(i).unwrap();
            }
            assert!(rx.buffer_allocation() >= BURST as usize);
            let mut next = 0;
            for left in [BURST / 2, 100_000, 1_000, 0] {
                while BURST - next > left {
                    assert_eq!(rx.recv(), Ok(next), "FIFO through the shrinking");
                    next += 1;
                }
                // Amortised: at most four slots per value left (or what it
                // always keeps).
                let allocated = rx.buffer_allocation();
                let bound = (4 * left as usize + 3).max(keep);
                assert!(
                    allocated <= bound,
                    "round {round}, capacity {cap:?}: {allocated} slots for {left} values"
                );
            }
        }
    }
}

// ---- 7. Nested temporaries in select! ----------------------------------------

/// Issue 23 item 7: crossbeam's documented pattern for an optional channel,
/// `recv(r.unwrap_or(&never()))`, failed with E0716 (a temporary dropped
/// while borrowed). Both macros, both arm kinds.
#[test]
fn select_accepts_nested_temporaries() {
    let (tx, rx) = chan::bounded::<u32>(1);
    for on in [false, true] {
        let maybe: Option<&Receiver<u32>> = on.then_some(&rx);
        tx.send(1).unwrap();
        let got = select! {
            recv(maybe.unwrap_or(&chan::never())) -> v => v.ok(),
            default => None,
        };
        assert_eq!(got, on.then_some(1));
        let got = select_biased! {
            recv(maybe.unwrap_or(&chan::never())) -> v => v.ok(),
            default(Duration::ZERO) => None,
        };
        assert_eq!(
            got, None,
            "the value went on the first pass, or the arm is off"
        );
        let _ = rx.try_recv();

        let (off_tx, _off_rx) = chan::bounded::<u32>(0);
        let maybe_tx: Option<&Sender<u32>> = on.then_some(&tx);
        let sent = select! {
            send(maybe_tx.unwrap_or(&off_tx.clone()), 2) -> r => r.is_ok(),
            default => false,
        };
        assert_eq!(sent, on);
        let sent = select_biased! {
            send(maybe_tx.unwrap_or(&off_tx.clone()), 3) -> r => r.is_ok(),
            default => false,
        };
        assert!(!sent, "full, or off");
        let _ = rx.try_recv();
    }
}

// ---- 8. select! syntax: default() and trailing commas -------------------

/// Issue 23 item 8: `default() =>` and trailing commas inside an arm's
/// parentheses, as crossbeam accepts them; in both macros.
#[test]
fn select_accepts_crossbeams_syntax() {
    let (tx, rx) = chan::bounded::<u32>(1);
    let got = select! {
        recv(rx,) -> v => v.ok(),
        default() => None,
    };
    assert_eq!(got, None);
    let got = select_biased! {
        recv(rx,) -> v => v.ok(),
        default() => None,
    };
    assert_eq!(got, None);
    let sent = select! {
        send(tx, 1,) -> r => r.is_ok(),
        default(Duration::from_millis(1),) => false,
    };
    assert!(sent);
    let sent = select_biased! {
        send(tx, 2,) -> r => r.is_ok(),
        default(Duration::from_millis(1),) => false,
    };
    assert!(!sent, "full");
    let got = select_biased! {
        recv(rx,) -> v => v.ok(),
        default() => None,
    };
    assert_eq!(got, Some(1));
    // Block bodies with no comma after them, next to `default()`.
    let got = select! {
        recv(rx) -> _v => { 1 }
        default() => { 2 }
    };
    assert_eq!(got, 2);
}

// ---- 9. Readiness, priority, Clone, UnwindSafe ------------------------------

/// `Select::ready` waits for a peer and completes nothing: for a receive
/// arm, a value or a waiting sender (plain or select); for a send arm, room
/// or a waiting receiver; and a closed channel is ready both ways.
fn readiness_waits_and_takes_nothing() {
    // A receive arm; unbuffered: ready when a sender waits.
    for deferred_sender in [false, true] {
        let (tx, rx) = chan::bounded::<u32>(0);
        let sender = grove::go(move || {
            if deferred_sender {
                select! { send(tx, 5) -> r => r.unwrap() }
            } else {
                tx.send(5).unwrap();
            }
        });
        let mut sel = Select::new();
        let arm = sel.recv(&rx);
        assert_eq!(sel.ready(), arm);
        assert_eq!(rx.recv(), Ok(5), "ready took nothing");
        sender.join().unwrap();
    }
    // A send arm; unbuffered: ready when a receiver waits.
    let (tx, rx) = chan::bounded::<u32>(0);
    let receiver = grove::go(move || rx.recv());
    let mut sel = Select::new();
    let arm = sel.send(&tx);
    assert_eq!(sel.ready(), arm);
    tx.send(6).unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(6));
    // Buffered: a send arm is ready while there is room, a receive arm
    // while something is buffered.
    let (tx, rx) = chan::bounded::<u32>(1);
    let mut sel = Select::new();
    let recv_arm = sel.recv(&rx);
    let send_arm = sel.send(&tx);
    assert_eq!(sel.try_ready(), Ok(send_arm));
    tx.send(1).unwrap();
    assert_eq!(sel.try_ready(), Ok(recv_arm));
    assert_eq!(sel.ready(), recv_arm);
    assert_eq!(rx.len(), 1, "ready took nothing");
    // A closed channel is ready.
    let (tx, rx) = chan::bounded::<u32>(0);
    let closer = grove::go(move || drop(tx));
    let mut sel = Select::new();
    sel.recv(&rx);
    assert_eq!(
        sel.ready_deadline(Instant::now() + Duration::from_secs(30)),
        Ok(0)
    );
    assert_eq!(rx.recv(), Err(RecvError));
    closer.join().unwrap();
    // Nothing ready: the timed forms give up, on time.
    let (_tx, rx) = chan::bounded::<u32>(0);
    let never = chan::never::<u32>();
    let mut sel = Select::new();
    sel.recv(&rx);
    sel.recv(&never);
    assert_eq!(sel.try_ready(), Err(TryReadyError));
    let start = Instant::now();
    assert_eq!(
        sel.ready_timeout(Duration::from_millis(10)),
        Err(ReadyTimeoutError)
    );
    assert!(start.elapsed() >= Duration::from_millis(10));
    // A timer arm is ready when due.
    let timer = chan::after(Duration::from_millis(5));
    let mut sel = Select::new();
    sel.recv(&never);
    let timer_arm = sel.recv(&timer);
    assert_eq!(sel.ready(), timer_arm);
    assert!(timer.try_recv().is_ok(), "ready took nothing");
}

#[test]
fn readiness_on_an_os_thread() {
    watchdog(readiness_waits_and_takes_nothing);
}

#[test]
fn readiness_on_green_threads() {
    block_on_each(|_| readiness_waits_and_takes_nothing());
}

/// Readiness waiters are woken by every change to their channels, however
/// many of them wait at once: many green threads wait on `ready` for one
/// channel while values arrive one by one; each value is taken by exactly
/// one of them (with `try_recv`, since another may take it first).
#[test]
fn many_readiness_waiters_take_every_value_once() {
    const WAITERS: u64 = 8;
    const VALUES: u64 = 2_000;
    block_on_each(|_| {
        let (tx, rx) = chan::bounded::<u64>(0);
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        let waiters: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (rx, done_rx) = (rx.clone(), done_rx.clone());
                grove::go(move || {
                    let mut sum = 0;
                    let mut sel = Select::new();
                    let value = sel.recv(&rx);
                    sel.recv(&done_rx);
                    loop {
                        if sel.ready() == value {
                            if let Ok(v) = rx.try_recv() {
                                sum += v;
                            }
                        } else if done_rx.try_recv().is_err() {
                            return sum; // closed
                        }
                    }
                })
            })
            .collect();
        for v in 1..=VALUES {
            tx.send(v).unwrap(); // unbuffered: returns once taken
        }
        drop(done_tx);
        let sum: u64 = waiters.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(sum, VALUES * (VALUES + 1) / 2);
    });
}

/// A biased select prefers its first ready arm, every time; a fair one
/// spreads.
#[test]
fn a_biased_select_prefers_the_first_ready_arm() {
    let (tx0, rx0) = chan::bounded::<u32>(1);
    let (tx1, rx1) = chan::bounded::<u32>(1);
    let mut fair = [0usize; 2];
    for _ in 0..1_000 {
        let _ = tx0.try_send(0);
        let _ = tx1.try_send(1);
        let first = select_biased! {
            recv(rx1) -> v => v.unwrap(),
            recv(rx0) -> v => v.unwrap(),
        };
        assert_eq!(first, 1);
        let mut sel = Select::new_biased();
        let a = sel.recv(&rx0);
        sel.recv(&rx1);
        let oper = sel.select();
        assert_eq!(oper.index(), a);
        assert_eq!(oper.recv(&rx0), Ok(0));
        let _ = tx0.try_send(0);
        let _ = tx0.try_send(0);
        let _ = tx1.try_send(1);
        let mut sel = Select::new_biased();
        let b = sel.recv(&rx1);
        sel.recv(&rx0);
        assert_eq!(sel.try_ready(), Ok(b), "the first ready arm");
        let mut sel = Select::new();
        sel.recv(&rx0);
        sel.recv(&rx1);
        let oper = sel.select();
        let i = oper.index();
        fair[i] += 1;
        let _ = oper.recv(if i == 0 { &rx0 } else { &rx1 });
    }
    assert!(
        fair.iter().all(|&n| n > 350),
        "a fair select starved an arm: {fair:?}"
    );
}

/// `Select: Clone`: a clone has the same arms, indices and bias, and runs
/// on its own.
#[test]
fn a_select_clones() {
    let (tx0, rx0) = chan::bounded::<u32>(1);
    let (tx1, rx1) = chan::bounded::<u32>(1);
    let mut sel = Select::new_biased();
    let a = sel.recv(&rx0);
    let b = sel.recv(&rx1);
    let mut copy = sel.clone();
    tx0.send(1).unwrap();
    tx1.send(2).unwrap();
    let oper = copy.select();
    assert_eq!(oper.index(), a, "biased like the original");
    assert_eq!(oper.recv(&rx0), Ok(1));
    copy.remove(a);
    let oper = copy.select();
    assert_eq!(oper.index(), b);
    assert_eq!(oper.recv(&rx1), Ok(2));
    tx1.send(3).unwrap();
    assert_eq!(sel.try_ready(), Ok(b), "the original keeps both arms");
}

/// `Sender`/`Receiver` are `UnwindSafe + RefUnwindSafe`, as crossbeam's,
/// whatever `T`: a closure that uses a channel can go to `catch_unwind`.
#[test]
fn channel_ends_are_unwind_safe() {
    fn unwind_safe<T: UnwindSafe + RefUnwindSafe>(_: &T) {}
    let (tx, rx) = chan::unbounded::<std::cell::Cell<u32>>();
    unwind_safe(&tx);
    unwind_safe(&rx);
    unwind_safe(&chan::after(Duration::ZERO));
    let r = panic::catch_unwind(|| {
        tx.send(std::cell::Cell::new(1)).unwrap();
        rx.recv().unwrap().get()
    });
    assert_eq!(r.ok(), Some(1));
}

/// A green thread parked in `ready` when its runtime is dropped is unwound
/// and takes its watches with it.
#[test]
fn a_parked_readiness_waiter_is_unwound_cleanly() {
    let rt = runtime(2);
    let (tx, rx) = chan::bounded::<u32>(0);
    let rx2 = rx.clone();
    let waiter = rt.spawn(move || {
        let mut sel = Select::new();
        sel.recv(&rx2);
        sel.ready()
    });
    wait_blocked(&rt, "select (ready)", 1);
    drop(rt);
    assert!(waiter.join().is_err());
    // The watch is gone: a change wakes nobody dead, and the channel works.
    let receiver = std::thread::spawn(move || rx.recv());
    tx.send(1).unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(1));
}
