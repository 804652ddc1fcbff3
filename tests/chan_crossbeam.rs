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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chan_util::{
    block_on_each, in_child, run_in_child, runtime, wait_until, watchdog, watchdog_for,
};
use grove::chan::{self, Receiver, RecvTimeoutError, Sender};
use grove::select;

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

