//! Faults: after panics (thousands at once, in `select!` arms, inside a
//! `Mutex`, in a green thread watching a context), a stack overflow, running
//! out of stacks and an OS thread blocked from inside a green thread, the
//! runtime reports clearly and stays healthy: later green threads run and
//! every checksum adds up.
//!
//! Expected panics carry [`EXPECTED`] in their message (or an
//! [`ExpectedPanic`] payload) and are kept off stderr by the quiet hook.

#[path = "common/rel_util.rs"]
mod rel_util;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove::chan::{self, TryRecvError, TrySendError};
use grove::context::{Context, ContextError};
use grove::sync::{Barrier, Mutex, RwLock, Semaphore, WaitGroup};
use grove::thread::{self, JoinHandle};
use grove::{select, Runtime};
use rel_util::{
    child_output, describe, for_each_workers, in_child, panic_message, quiet_expected_panics,
    recurse_forever, runtime, wait_parked, wait_until, watchdog, watchdog_for, ExpectedPanic,
    EXPECTED,
};

/// The green threads of `rt` parked on `reason` now.
fn blocked_on(rt: &Runtime, reason: &str) -> usize {
    rt.tasks()
        .iter()
        .filter(|t| t.blocked_on == Some(reason))
        .count()
}

// ---------------------------------------------------------------------------
// A panic storm.

/// Panics from its destructor during a normal drop (never while unwinding:
/// a panic then would be a double panic, which aborts the process).
struct PanicOnDrop(u64);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic::panic_any(ExpectedPanic(self.0));
    }
}

/// What green thread `i` of the storm does: a third of them panic, half of
/// those from a destructor; a sixth report through a channel first.
fn storm_body(i: u64, tx: chan::Sender<u64>) -> u64 {
    match i % 6 {
        0 => panic!("{EXPECTED} storm {i}"),
        3 => {
            let _bomb = PanicOnDrop(i);
            thread::yield_now();
            i // computed, then `_bomb` panics as it drops
        }
        1 => {
            tx.send(i).unwrap();
            i
        }
        _ => {
            if i % 4 == 0 {
                thread::yield_now();
            }
            i
        }
    }
}

#[test]
fn a_panic_storm_leaves_the_runtime_healthy() {
    const STORM: u64 = 10_000;
    quiet_expected_panics();
    for_each_workers(|n| {
        let rt = runtime(n);
        let (tx, rx) = chan::unbounded::<u64>();
        let handles: Vec<JoinHandle<u64>> = (0..STORM)
            .map(|i| {
                let tx = tx.clone();
                rt.spawn(move || storm_body(i, tx))
            })
            .collect();
        drop(tx);

        let (mut ok_sum, mut plain, mut from_drop) = (0u64, 0u64, 0u64);
        for (i, h) in (0..STORM).zip(handles) {
            match (i % 6, h.join()) {
                (0, Err(p)) => {
                    assert_eq!(panic_message(&*p), format!("{EXPECTED} storm {i}"));
                    plain += 1;
                }
                (3, Err(p)) => {
                    assert_eq!(p.downcast_ref::<ExpectedPanic>(), Some(&ExpectedPanic(i)));
                    from_drop += 1;
                }
                (0 | 3, Ok(v)) => panic!("green thread {i} should have panicked, returned {v}"),
                (_, Ok(v)) => {
                    assert_eq!(v, i);
                    ok_sum += v;
                }
                (_, Err(p)) => panic!("green thread {i} panicked: {}", panic_message(&*p)),
            }
        }
        let expect_plain = (0..STORM).filter(|i| i % 6 == 0).count() as u64;
        let expect_drop = (0..STORM).filter(|i| i % 6 == 3).count() as u64;
        assert_eq!((plain, from_drop), (expect_plain, expect_drop));
        assert_eq!(plain + from_drop, STORM.div_ceil(3));
        let expect_ok: u64 = (0..STORM).filter(|i| i % 3 != 0).sum();
        assert_eq!(ok_sum, expect_ok);
        let reported: u64 = rx.iter().sum();
        assert_eq!(reported, (0..STORM).filter(|i| i % 6 == 1).sum::<u64>());

        // The counters may trail the joins by a moment.
        wait_until("the stats to count every storm thread", || {
            rt.stats().completed == STORM
        });
        let stats = rt.stats();
        assert_eq!(stats.spawned, STORM, "{stats:?}");
        assert_eq!(stats.live, 0, "{stats:?}");

        // Healthy afterwards: a fork-join tree and a pipeline with checksums.
        let total = rt.block_on(|| {
            let (tx, rx) = chan::bounded::<u64>(8);
            let producers: Vec<_> = (0..50u64)
                .map(|p| {
                    let tx = tx.clone();
                    thread::spawn(move || {
                        for k in 0..20 {
                            tx.send(p * 20 + k).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            let sum: u64 = rx.iter().sum();
            for p in producers {
                p.join().unwrap();
            }
            sum
        });
        assert_eq!(total, (0..1000u64).sum::<u64>());
        assert!(rt.shutdown().is_clean());
    });
}

// ---------------------------------------------------------------------------
// Panics inside select!.

/// Panics while producing a send arm's value, which `select!` evaluates
/// only after the arm was chosen (with a slot or a receiver reserved).
fn exploding_value(round: u32) -> u32 {
    panic!("{EXPECTED} send value of round {round}")
}

/// The unbuffered channels the select cases share: whatever a case
/// leaves behind (a stale waiter, a lost reservation) shows up in the next.
struct Chans {
    a: (chan::Sender<u32>, chan::Receiver<u32>),
    b: (chan::Sender<u32>, chan::Receiver<u32>),
    c: (chan::Sender<u32>, chan::Receiver<u32>),
}

/// Nothing waits on `a`, `b` or `c`, and nothing is buffered there.
#[track_caller]
fn assert_no_stale_arms(ch: &Chans) {
    assert!(matches!(ch.a.0.try_send(1), Err(TrySendError::Full(1))));
    assert!(matches!(ch.b.0.try_send(1), Err(TrySendError::Full(1))));
    assert_eq!(ch.c.1.try_recv(), Err(TryRecvError::Empty));
}

/// A blocking select, woken through arm `a`, whose body panics: its arms
/// on `b` and `c` must be gone before the body runs.
fn select_body_panics(rt: &Runtime, ch: &Chans, round: u32) {
    let g = {
        let (a_rx, b_rx, c_tx) = (ch.a.1.clone(), ch.b.1.clone(), ch.c.0.clone());
        rt.spawn(move || -> u32 {
            select! {
                recv(a_rx) -> v => panic!("{EXPECTED} recv body got {v:?}"),
                recv(b_rx) -> v => v.unwrap_or(0),
                send(c_tx, round) -> _ => 1000,
            }
        })
    };
    wait_until("the select to park", || blocked_on(rt, "select") == 1);
    ch.a.0.send(round).unwrap();
    let err = g.join().unwrap_err();
    assert_eq!(
        panic_message(&*err),
        format!("{EXPECTED} recv body got Ok({round})")
    );
    assert_no_stale_arms(ch);
}

/// A send arm chosen because a receiver waits; its value expression
/// panics. The receiver must still be waiting, and get the next value.
fn send_value_panics_with_a_receiver_waiting(rt: &Runtime, ch: &Chans, round: u32) {
    let receiver = {
        let c_rx = ch.c.1.clone();
        rt.spawn(move || c_rx.recv())
    };
    wait_until("the receiver to park", || blocked_on(rt, "chan recv") == 1);
    let g = {
        let c_tx = ch.c.0.clone();
        rt.spawn(move || {
            select! {
                send(c_tx, exploding_value(round)) -> _ => (),
                default => panic!("the receiver was waiting: the send arm is ready"),
            }
        })
    };
    let err = g.join().unwrap_err();
    assert_eq!(
        panic_message(&*err),
        format!("{EXPECTED} send value of round {round}")
    );
    // (It may have been woken to retry; it parks again.)
    wait_until("the receiver to park again", || {
        blocked_on(rt, "chan recv") == 1
    });
    assert!(!receiver.is_finished());
    ch.c.0.send(round + 500).unwrap();
    assert_eq!(receiver.join().unwrap(), Ok(round + 500));
}

/// The same with a buffered channel: the reserved slot comes back, so
/// exactly `cap` values fit afterwards.
fn send_value_panics_with_a_slot_reserved(rt: &Runtime, round: u32) {
    let (d_tx, d_rx) = chan::bounded::<u32>(2);
    d_tx.send(7).unwrap();
    let g = {
        let d_tx = d_tx.clone();
        rt.spawn(move || {
            select! {
                send(d_tx, exploding_value(round)) -> _ => (),
                recv(chan::never::<u32>()) -> _ => (),
            }
        })
    };
    assert!(g.join().is_err());
    assert_eq!(d_tx.len(), 1);
    assert_eq!(d_tx.try_send(8), Ok(()));
    assert_eq!(d_tx.try_send(9), Err(TrySendError::Full(9)));
    assert_eq!(d_rx.try_iter().collect::<Vec<_>>(), [7, 8]);
}

/// `default` and timeout bodies that panic touch no channel, and the green
/// thread that caught the first panic selects again.
fn default_and_timeout_bodies_panic(rt: &Runtime, ch: &Chans) {
    let g = {
        let (a_rx, c_tx) = (ch.a.1.clone(), ch.c.0.clone());
        rt.spawn(move || {
            let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                select! {
                    recv(a_rx) -> _ => (),
                    default => panic!("{EXPECTED} default body"),
                }
            }));
            let first = panic_message(&*caught.unwrap_err());
            select! {
                recv(a_rx) -> _ => (),
                send(c_tx, 1) -> _ => (),
                default(Duration::from_millis(1)) => {
                    panic!("{EXPECTED} timeout body after {first:?}")
                }
            }
        })
    };
    let msg = panic_message(&*g.join().unwrap_err());
    assert!(msg.contains("timeout body"), "{msg}");
    assert!(msg.contains("default body"), "{msg}");
    assert_no_stale_arms(ch);
}

#[test]
fn panics_in_select_arms_leave_every_channel_consistent() {
    quiet_expected_panics();
    for_each_workers(|n| {
        let rt = runtime(n);
        let ch = Chans {
            a: chan::bounded(0),
            b: chan::bounded(0),
            c: chan::bounded(0),
        };
        for round in 0..20u32 {
            select_body_panics(&rt, &ch, round);
            send_value_panics_with_a_receiver_waiting(&rt, &ch, round);
            send_value_panics_with_a_slot_reserved(&rt, round);
            default_and_timeout_bodies_panic(&rt, &ch);
        }
        // The channels still carry values both ways.
        let echo = {
            let (a_rx, c_tx) = (ch.a.1.clone(), ch.c.0.clone());
            rt.spawn(move || {
                for v in &a_rx {
                    c_tx.send(v * 2).unwrap();
                }
            })
        };
        let mut sum = 0;
        for v in 0..100 {
            ch.a.0.send(v).unwrap();
            sum += ch.c.1.recv().unwrap();
        }
        ch.a.0.close();
        echo.join().unwrap();
        assert_eq!(sum, 2 * (0..100).sum::<u32>());
        assert!(rt.shutdown().is_clean());
    });
}

// ---------------------------------------------------------------------------
// A panic inside a Mutex's (and an RwLock's) critical section.

#[test]
fn a_panic_in_a_critical_section_poisons_and_clear_poison_recovers() {
    const WAITERS: u32 = 6;
    quiet_expected_panics();
    for_each_workers(|n| {
        let rt = runtime(n);
        let m = Arc::new(Mutex::new(vec![0u32]));
        let (locked_tx, locked_rx) = chan::bounded::<()>(0);
        let (go_tx, go_rx) = chan::bounded::<()>(0);
        let holder = {
            let m = m.clone();
            rt.spawn(move || {
                let mut guard = m.lock().unwrap();
                guard.push(1);
                locked_tx.send(()).unwrap();
                go_rx.recv().unwrap(); // parks while holding the lock
                panic!("{EXPECTED} in the critical section");
            })
        };
        locked_rx.recv().unwrap();
        // Green threads and one OS thread queue up behind the holder.
        let waiter = |id: u32, m: Arc<Mutex<Vec<u32>>>| -> bool {
            match m.lock() {
                Err(poisoned) => {
                    let mut guard = poisoned.into_inner();
                    assert_eq!(guard[..2], [0, 1], "the data survived the panic");
                    guard.push(id);
                    true
                }
                Ok(_) => false,
            }
        };
        let green: Vec<_> = (2..2 + WAITERS)
            .map(|id| {
                let m = m.clone();
                rt.spawn(move || waiter(id, m))
            })
            .collect();
        wait_until("the waiters to queue", || {
            blocked_on(&rt, "Mutex::lock") == WAITERS as usize
        });
        let os = {
            let m = m.clone();
            std::thread::spawn(move || waiter(100, m))
        };
        go_tx.send(()).unwrap();
        let err = holder.join().unwrap_err();
        assert_eq!(
            panic_message(&*err),
            format!("{EXPECTED} in the critical section")
        );
        for h in green {
            assert!(h.join().unwrap(), "a green waiter got an unpoisoned lock");
        }
        assert!(
            os.join().unwrap(),
            "the OS-thread waiter got an unpoisoned lock"
        );

        assert!(m.is_poisoned());
        let mut seen = m.lock().unwrap_err().into_inner().clone();
        seen.sort_unstable();
        let mut expected: Vec<u32> = (0..2 + WAITERS).collect();
        expected.push(100);
        assert_eq!(seen, expected, "every waiter's push, exactly once");
        assert!(m.try_lock().is_err(), "still poisoned");
        m.clear_poison();
        assert!(!m.is_poisoned());
        assert_eq!(m.lock().unwrap().len(), expected.len());
        let sum = rt.block_on({
            let m = m.clone();
            move || {
                let hs: Vec<_> = (0..10)
                    .map(|_| {
                        let m = m.clone();
                        thread::spawn(move || m.lock().unwrap().push(1))
                    })
                    .collect();
                hs.into_iter().for_each(|h| h.join().unwrap());
                m.lock().unwrap().len()
            }
        });
        assert_eq!(sum, expected.len() + 10);

        // RwLock: a writer panics; readers and writers see the poison.
        let rw = Arc::new(RwLock::new(5u32));
        let writer = {
            let rw = rw.clone();
            rt.spawn(move || {
                let mut w = rw.write().unwrap();
                *w = 6;
                thread::yield_now();
                panic!("{EXPECTED} under the write lock");
            })
        };
        assert!(writer.join().is_err());
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let rw = rw.clone();
                rt.spawn(move || *rw.read().unwrap_err().into_inner())
            })
            .collect();
        for r in readers {
            assert_eq!(r.join().unwrap(), 6);
        }
        assert!(rw.write().is_err());
        rw.clear_poison();
        *rw.write().unwrap() += 1;
        assert_eq!(*rw.read().unwrap(), 7);
    });
}

// ---------------------------------------------------------------------------
// A panic in a green thread that watches a context.

#[test]
fn a_panic_after_cancel_leaves_sibling_watchers_unaffected() {
    const SIBLINGS: usize = 12;
    const PANICKER: usize = 5;
    quiet_expected_panics();
    for_each_workers(|n| {
        let rt = runtime(n);
        let (root, cancel) = Context::background().with_cancel();
        let (work_tx, work_rx) = chan::unbounded::<u64>();
        let handles: Vec<JoinHandle<(u64, Option<ContextError>)>> = (0..SIBLINGS)
            .map(|i| {
                let (ctx, _own) = root.with_cancel();
                let work_rx = work_rx.clone();
                rt.spawn(move || {
                    // The panicker watches a grandchild, which it holds (and
                    // drops while unwinding).
                    let (watched, _grand) = if i == PANICKER {
                        ctx.with_timeout(Duration::from_secs(3600))
                    } else {
                        (ctx.clone(), _own.clone())
                    };
                    let mut sum = 0;
                    loop {
                        select! {
                            recv(watched.done()) -> closed => {
                                assert!(closed.is_err(), "done() only ever closes");
                                break;
                            },
                            recv(work_rx) -> v => sum += v.unwrap(),
                        }
                    }
                    if i == PANICKER {
                        panic!("{EXPECTED} watcher {i} after {:?}", watched.err());
                    }
                    (sum, watched.err())
                })
            })
            .collect();
        for v in 1..=1000u64 {
            work_tx.send(v).unwrap();
        }
        wait_until("the watchers to drain the work", || work_rx.is_empty());
        wait_until("every watcher to park", || {
            blocked_on(&rt, "select") == SIBLINGS
        });
        cancel.cancel();
        let mut total = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok((sum, err)) => {
                    assert_ne!(i, PANICKER);
                    assert_eq!(err, Some(ContextError::Cancelled));
                    total += sum;
                }
                Err(p) => {
                    assert_eq!(i, PANICKER);
                    assert_eq!(
                        panic_message(&*p),
                        format!("{EXPECTED} watcher {i} after Some(Cancelled)")
                    );
                }
            }
        }
        // What the panicker summed is lost with it; the rest is all there.
        assert!(total <= (1..=1000u64).sum::<u64>());
        assert_eq!(root.err(), Some(ContextError::Cancelled));
        let (late, _h) = root.with_cancel();
        assert!(
            late.is_done(),
            "a child of a cancelled context is born done"
        );

        // An unrelated context tree works as before.
        let (other, other_cancel) = Context::background().with_cancel();
        let watcher = {
            let other = other.clone();
            rt.spawn(move || {
                select! {
                    recv(other.done()) -> _ => other.err(),
                    default(Duration::from_secs(30)) => None,
                }
            })
        };
        wait_until("the new watcher to park", || blocked_on(&rt, "select") == 1);
        other_cancel.cancel();
        assert_eq!(watcher.join().unwrap(), Some(ContextError::Cancelled));
        assert!(rt.shutdown().is_clean());
    });
}

#[test]
fn a_panic_in_a_watcher_does_not_lose_work_handed_to_others() {
    // Stronger form of the above: the panicker takes no work, so the
    // siblings' sums must add up exactly.
    quiet_expected_panics();
    for_each_workers(|n| {
        let rt = runtime(n);
        let (root, cancel) = Context::background().with_cancel();
        let (work_tx, work_rx) = chan::bounded::<u64>(4);
        let panicker = {
            let root = root.clone();
            rt.spawn(move || -> () {
                let _ = root.done().recv();
                panic!("{EXPECTED} the lone watcher");
            })
        };
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (root, work_rx) = (root.clone(), work_rx.clone());
                rt.spawn(move || {
                    let mut sum = 0u64;
                    loop {
                        select! {
                            recv(work_rx) -> v => match v {
                                Ok(v) => sum += v,
                                Err(_) => return sum, // closed and drained
                            },
                            recv(root.done()) -> _ => {
                                // Cancelled: drain what was already sent.
                                return sum + work_rx.iter().sum::<u64>();
                            }
                        }
                    }
                })
            })
            .collect();
        for v in 1..=500u64 {
            work_tx.send(v).unwrap();
            if v == 250 {
                cancel.cancel();
            }
        }
        drop(work_tx);
        assert!(panicker.join().is_err());
        let total: u64 = workers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, (1..=500u64).sum::<u64>());
    });
}

// ---------------------------------------------------------------------------
// Stack overflow while holding a grove Mutex (in a child process).

#[test]
fn overflow_while_holding_a_contended_mutex_is_reported() {
    let output = child_output("overflow_holding_mutex_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "the child did not die of SIGABRT\n{}",
        describe(&output)
    );
    assert!(
        stderr.contains("green thread 'locked-deep' overflowed its stack of 64 KiB"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("child: a waiter is queued"),
        "the child did not reach the overflow with a waiter queued\n{}",
        describe(&output)
    );
    assert!(!stderr.contains("unreachable"), "{}", describe(&output));
}

#[test]
#[ignore = "helper: the child process of overflow_while_holding_a_contended_mutex_is_reported"]
fn overflow_holding_mutex_child() {
    if !in_child("overflow_holding_mutex_child") {
        return;
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let (locked_tx, locked_rx) = chan::bounded::<()>(0);
    let (go_tx, go_rx) = chan::bounded::<()>(0);
    let deep = {
        let m = m.clone();
        thread::Builder::new()
            .name("locked-deep".to_string())
            .stack_size(64 * 1024)
            .spawn_on(&rt, move || {
                let mut guard = m.lock().unwrap();
                locked_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                *guard = recurse_forever(0);
            })
            .unwrap()
    };
    locked_rx.recv().unwrap();
    let waiter = {
        let m = m.clone();
        rt.spawn(move || *m.lock().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while blocked_on(&rt, "Mutex::lock") != 1 {
        assert!(Instant::now() < deadline, "the waiter never queued");
        std::thread::yield_now();
    }
    eprintln!("child: a waiter is queued");
    go_tx.send(()).unwrap();
    let _ = deep.join();
    let _ = waiter.join();
    eprintln!("unreachable: the overflowing green thread was joined");
}

// ---------------------------------------------------------------------------
// Running out of stacks (runtime::Builder::max_stacks as the cap).

#[track_caller]
fn assert_out_of_stacks<T>(result: io::Result<T>) {
    let Err(err) = result else {
        panic!("a spawn beyond the stack cap succeeded");
    };
    assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
    assert_names_the_cap(&err.to_string());
}

/// The message names the cap, and `vm.max_map_count` only where each stack
/// is a mapping of its own.
#[track_caller]
fn assert_names_the_cap(msg: &str) {
    assert!(msg.contains("max_stacks"), "{msg}");
    let mappings = grove::runtime::stack_mode() == grove::runtime::StackMode::Mappings;
    assert_eq!(msg.contains("vm.max_map_count"), mappings, "{msg}");
}

#[test]
fn running_out_of_stacks_is_reported_and_recovered_from() {
    const CAP: usize = 12;
    for_each_workers(|n| {
        let rt = Runtime::builder()
            .workers(n)
            .max_stacks(CAP)
            .build()
            .unwrap();
        // Fill the cap with green threads parked on four kinds of thing.
        let (gate_tx, gate_rx) = chan::bounded::<()>(0);
        let lock = Arc::new(Mutex::new(()));
        let sem = Arc::new(Semaphore::new(0));
        let wg = WaitGroup::new();
        wg.add(1);
        let held = lock.lock().unwrap(); // by this OS thread
        let parked: Vec<JoinHandle<usize>> = (0..CAP)
            .map(|k| {
                let (gate_rx, lock, sem, wg) =
                    (gate_rx.clone(), lock.clone(), sem.clone(), wg.clone());
                rt.spawn(move || {
                    match k % 4 {
                        0 => assert!(gate_rx.recv().is_err()),
                        1 => drop(lock.lock().unwrap()),
                        2 => drop(sem.acquire()),
                        _ => wg.wait(),
                    }
                    k
                })
            })
            .collect();
        wait_parked(&rt, CAP);
        assert_eq!(rt.stats().live_stacks, CAP);

        assert_out_of_stacks(
            thread::Builder::new()
                .name("one-too-many".to_string())
                .spawn_on(&rt, || ()),
        );
        let msg =
            panic_message(&*panic::catch_unwind(AssertUnwindSafe(|| rt.spawn(|| ()))).unwrap_err());
        assert_names_the_cap(&msg);

        // Release everyone: the stacks come back.
        drop(gate_tx);
        drop(held);
        sem.add_permits(CAP);
        wg.done();
        let sum: usize = parked.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..CAP).sum::<usize>());

        // The whole cap is usable again, by green threads that all need
        // their stack at the same time (they meet at a barrier).
        for round in 0..3 {
            let barrier = Arc::new(Barrier::new(CAP));
            let (done_tx, done_rx) = chan::unbounded::<usize>();
            for k in 0..CAP {
                let (barrier, done_tx) = (barrier.clone(), done_tx.clone());
                thread::Builder::new()
                    .spawn_on(&rt, move || {
                        barrier.wait();
                        done_tx.send(round * CAP + k).unwrap();
                    })
                    .unwrap_or_else(|e| panic!("round {round}, spawn {k}: {e}"));
            }
            drop(done_tx);
            let mut got = 0;
            let mut sum = 0;
            while got < CAP {
                match done_rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(v) => {
                        got += 1;
                        sum += v;
                    }
                    Err(e) => panic!(
                        "round {round}: {got} of {CAP} finished ({e:?}): {:?}\n{:?}",
                        rt.stats(),
                        rt.tasks()
                    ),
                }
            }
            assert_eq!(sum, (round * CAP..(round + 1) * CAP).sum::<usize>());
        }
        wait_until("every stack back in a pool", || rt.stats().live_stacks == 0);
        assert!(rt.stats().mapped_stacks <= CAP, "{:?}", rt.stats());
    });
}

// ---------------------------------------------------------------------------
// A green thread that blocks its OS thread.

#[test]
fn a_worker_blocked_in_an_os_call_does_not_stall_the_others() {
    const BLOCK: Duration = Duration::from_millis(200);
    watchdog(|| {
        for workers in [2, 4] {
            let rt = runtime(workers);
            let pings = Arc::new(AtomicU64::new(0));
            let naps = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (started_tx, started_rx) = chan::bounded::<()>(1);
            let blocker = {
                let (pings, naps) = (pings.clone(), naps.clone());
                rt.spawn(move || {
                    started_tx.send(()).unwrap();
                    let before = (pings.load(Ordering::SeqCst), naps.load(Ordering::SeqCst));
                    let start = Instant::now();
                    // Sleeping IS the behaviour under test: a blocking OS
                    // call that holds this worker.
                    std::thread::sleep(BLOCK);
                    let after = (pings.load(Ordering::SeqCst), naps.load(Ordering::SeqCst));
                    (after.0 - before.0, after.1 - before.1, start.elapsed())
                })
            };
            // The blocker's worker is inside std::thread::sleep from here on;
            // what is spawned now can only run on the other workers.
            started_rx.recv().unwrap();
            let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
            let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
            let pinger = {
                let (pings, stop) = (pings.clone(), stop.clone());
                rt.spawn(move || {
                    let mut v = 0;
                    while !stop.load(Ordering::SeqCst) {
                        ping_tx.send(v).unwrap();
                        v = pong_rx.recv().unwrap();
                        pings.fetch_add(1, Ordering::SeqCst);
                    }
                    drop(ping_tx);
                    v
                })
            };
            let ponger = rt.spawn(move || {
                let mut count = 0u64;
                for v in &ping_rx {
                    count += 1;
                    if pong_tx.send(v + 1).is_err() {
                        break;
                    }
                }
                count
            });
            let napper = {
                let (naps, stop) = (naps.clone(), stop.clone());
                rt.spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(1));
                        naps.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            let (pings_during, naps_during, blocked_for) = blocker.join().unwrap();
            stop.store(true, Ordering::SeqCst);
            let last = pinger.join().unwrap();
            let echoed = ponger.join().unwrap();
            napper.join().unwrap();
            assert!(blocked_for >= BLOCK);
            assert_eq!(
                last,
                pings.load(Ordering::SeqCst),
                "one increment per round trip"
            );
            assert_eq!(echoed, last, "every ping was answered");
            // Alone, a 2-core machine manages tens of thousands of round
            // trips and ~100 naps in 200 ms; a stalled runtime manages none.
            // The bounds are low because the other tests of this binary run
            // at the same time.
            assert!(
                pings_during >= 10,
                "{workers} workers: only {pings_during} ping-pongs while one worker was blocked"
            );
            assert!(
                naps_during >= 2,
                "{workers} workers: only {naps_during} 1 ms sleeps ended while one worker was blocked"
            );
        }
    });
}

// ---------------------------------------------------------------------------
// A green thread that catches the runtime's forced unwind.

#[test]
fn shutdown_returns_when_a_green_thread_catches_the_forced_unwind() {
    // A job loop that isolates each job's panics is ordinary Rust; at
    // shutdown it also catches the unwind that grove uses to take the
    // parked green thread apart, and parks again. Shutdown then unparks
    // and re-unwinds it every 10 ms, for ever.
    quiet_expected_panics();
    watchdog_for(Duration::from_secs(10), || {
        let rt = runtime(2);
        let (tx, rx) = chan::bounded::<Box<dyn FnOnce() + Send>>(0);
        let caught = Arc::new(AtomicU64::new(0));
        {
            let caught = caught.clone();
            rt.spawn(move || loop {
                match panic::catch_unwind(AssertUnwindSafe(|| rx.recv().map(|job| job()))) {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return, // closed
                    Err(_) => {
                        caught.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        tx.send(Box::new(|| panic!("{EXPECTED} a job fails")))
            .unwrap();
        wait_parked(&rt, 1);
        let report = rt.shutdown();
        assert_eq!(report.leaked().len(), 1);
        assert!(caught.load(Ordering::SeqCst) >= 1);
        drop(tx);
    });
}
