//! A small program for valgrind's memcheck (`.ci/valgrind` runs it there):
//! it switches between many green-thread stacks, runs scoped green threads
//! that borrow, moves values through channels of every flavour, selects,
//! locks, cancels a context, unwinds a panic, and drops a runtime with
//! green threads still parked, checking every result as it goes. It also
//! blocks on a channel from a thread-local's destructor and drops buffered
//! values that panic in `Drop`. memcheck then says whether any of that
//! read uninitialised memory or touched memory it does not own.
//!
//! It runs natively too (`cargo run --example valgrind_smoke`), in well
//! under a second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use grove::chan::{self, Select};
use grove::context::{Context, ContextError};
use grove::sync::{Mutex, WaitGroup};
use grove::thread;
use grove::{select, Runtime};

/// Counts its drops, so the unwinding at the runtime's drop can be checked.
struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn spawn_a_thousand(rt: &Runtime) {
    let sum = rt.block_on(|| {
        let handles: Vec<_> = (0..1000u64).map(|i| grove::go(move || i * i)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, (0..1000u64).map(|i| i * i).sum::<u64>());
}

fn every_flavour(rt: &Runtime) {
    for cap in [Some(0), Some(1), Some(64), None] {
        let (tx, rx) = match cap {
            Some(cap) => chan::bounded::<Vec<u64>>(cap),
            None => chan::unbounded(),
        };
        // Heap values, so memcheck follows every hand-over.
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                rt.spawn(move || {
                    for i in 0..50 {
                        tx.send(vec![p * 50 + i; 3]).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        // An OS thread receives too.
        let os = {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().map(|v| v[0]).sum::<u64>())
        };
        let green = rt.block_on(move || rx.iter().map(|v| v[2]).sum::<u64>());
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(green + os.join().unwrap(), (0..200u64).sum::<u64>());
    }
    rt.block_on(|| {
        let start = std::time::Instant::now();
        let fired = chan::after(Duration::from_millis(2)).recv().unwrap();
        assert!(fired >= start + Duration::from_millis(2));
        let ticker = chan::tick(Duration::from_millis(1));
        let (a, b) = (ticker.recv().unwrap(), ticker.recv().unwrap());
        assert!(b > a);
        assert!(chan::never::<u8>().try_recv().is_err());
    });
}

fn selects(rt: &Runtime) {
    let total = rt.block_on(|| {
        let (tx1, rx1) = chan::bounded::<String>(0);
        let (tx2, rx2) = chan::unbounded::<String>();
        let feeder = grove::go(move || {
            for i in 0..100 {
                if i % 2 == 0 {
                    tx1.send(i.to_string()).unwrap();
                } else {
                    tx2.send(i.to_string()).unwrap();
                }
            }
        });
        let (mut total, mut closed) = (0u64, [false, false]);
        while !(closed[0] && closed[1]) {
            select! {
                recv(rx1) -> v => match v {
                    Ok(s) => total += s.parse::<u64>().unwrap(),
                    Err(_) => closed[0] = true,
                },
                recv(rx2) -> v => match v {
                    Ok(s) => total += s.parse::<u64>().unwrap(),
                    Err(_) => closed[1] = true,
                },
                default(Duration::from_secs(10)) => panic!("the feeder stalled"),
            }
        }
        // The dynamic form, with a send arm: only one arm is ready each time.
        let (tx, rx) = chan::bounded::<String>(1);
        let mut sel = Select::new();
        let send = sel.send(&tx);
        let oper = sel.select();
        assert_eq!(oper.index(), send);
        oper.send(&tx, "41".to_string()).unwrap();
        let mut sel = Select::new();
        let (_send, recv) = (sel.send(&tx), sel.recv(&rx));
        let oper = sel.select();
        assert_eq!(
            oper.index(),
            recv,
            "the buffer is full: only the receive is ready"
        );
        total += oper.recv(&rx).unwrap().parse::<u64>().unwrap();
        feeder.join().unwrap();
        total
    });
    assert_eq!(total, (0..100u64).sum::<u64>() + 41);
}

fn mutex_context_and_panic(rt: &Runtime) {
    let counter = Arc::new(Mutex::new(Vec::new()));
    let wg = WaitGroup::new();
    let lockers: Vec<_> = (0..20)
        .map(|i| {
            wg.add(1);
            let (counter, wg) = (counter.clone(), wg.clone());
            rt.spawn(move || {
                let mut v = counter.lock().unwrap();
                v.push(i);
                thread::yield_now(); // parks while holding the lock
                drop(v);
                wg.done();
            })
        })
        .collect();
    wg.wait();
    assert_eq!(counter.lock().unwrap().len(), 20);
    // `done` is not the end of a green thread: join them, so that none is
    // still finishing when the runtime's shutdown report is checked.
    for h in lockers {
        h.join().unwrap();
    }

    let (ctx, cancel) = Context::background().with_cancel();
    let watchers: Vec<_> = (0..10)
        .map(|_| {
            let ctx = ctx.clone();
            rt.spawn(move || {
                select! {
                    recv(ctx.done()) -> _ => ctx.err(),
                    default(Duration::from_secs(30)) => None,
                }
            })
        })
        .collect();
    cancel.cancel();
    for w in watchers {
        assert_eq!(w.join().unwrap(), Some(ContextError::Cancelled));
    }

    // A panic unwinds a green thread's stack and comes back through join.
    let h = rt.spawn(|| -> Vec<u8> { std::panic::resume_unwind(Box::new(vec![7u8; 16])) });
    let payload = h.join().unwrap_err();
    assert_eq!(payload.downcast_ref::<Vec<u8>>(), Some(&vec![7u8; 16]));
}

fn drop_with_parked_green_threads() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let (_keep, rx) = chan::bounded::<u8>(0);
    let lock = Arc::new(Mutex::new(()));
    let held = lock.lock().unwrap();
    let (started_tx, started_rx) = chan::unbounded::<()>();
    for i in 0..30 {
        let guard = Guard(drops.clone());
        let (rx, lock, started_tx) = (rx.clone(), lock.clone(), started_tx.clone());
        rt.spawn(move || {
            let _guard = guard;
            started_tx.send(()).unwrap();
            match i % 3 {
                0 => drop(rx.recv()),
                1 => drop(lock.lock()),
                _ => thread::sleep(Duration::from_secs(3600)),
            }
        });
    }
    for _ in 0..30 {
        started_rx.recv().unwrap();
    }
    while rt.tasks().iter().filter(|t| t.blocked_on.is_some()).count() < 30 {
        std::thread::yield_now();
    }
    let report = rt.shutdown();
    assert_eq!(report.leaked().len(), 30);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        30,
        "every parked green thread was unwound"
    );
    drop(held);
}

/// Scoped green threads borrowing the caller's stack: outputs kept in the
/// task (joined or not), outputs with a destructor, a panic, nesting.
fn scoped(rt: &Runtime) {
    rt.block_on(|| {
        let mut cells = vec![0u64; 64];
        let label = String::from("scoped");
        let joined = thread::scope(|s| {
            let label = &label;
            let mut handles = Vec::new();
            for (i, cell) in cells.iter_mut().enumerate() {
                if i % 2 == 0 {
                    s.spawn(move || *cell = i as u64);
                } else {
                    handles.push(s.spawn(move || {
                        *cell = i as u64;
                        s.spawn(move || label.len());
                        format!("{label} {i}")
                    }));
                }
            }
            let bad = s.spawn(|| -> u64 { panic!("scoped panic, joined") });
            assert!(bad.join().is_err());
            handles
                .into_iter()
                .map(|h| h.join().unwrap().len())
                .sum::<usize>()
        });
        assert_eq!(cells, (0..64).collect::<Vec<u64>>());
        assert_eq!(
            joined,
            (1..64)
                .step_by(2)
                .map(|i| format!("scoped {i}").len())
                .sum::<usize>()
        );
    });
}

/// A thread-local whose destructor blocks on a channel: it runs after
/// grove's own thread-locals of that thread are gone (their parker is
/// rebuilt then, and freed by a later destructor).
struct BlocksInDrop(chan::Receiver<u64>);

impl Drop for BlocksInDrop {
    fn drop(&mut self) {
        let (_keep, idle) = chan::unbounded::<()>();
        assert!(idle.recv_timeout(Duration::from_millis(1)).is_err());
        assert_eq!(self.0.recv(), Ok(42));
    }
}

thread_local! {
    static BLOCKS_IN_DROP: std::cell::RefCell<Option<BlocksInDrop>> =
        const { std::cell::RefCell::new(None) };
}

/// Channels from thread-local destructors, and buffered values whose
/// destructors panic when the last receiver goes (issue 23 items 1, 2).
fn destructors() {
    let (tx, rx) = chan::bounded::<u64>(0);
    let peer = std::thread::spawn(move || tx.send(42).unwrap());
    std::thread::spawn(move || {
        BLOCKS_IN_DROP.with(|slot| *slot.borrow_mut() = Some(BlocksInDrop(rx)));
        // Park once through grove, so its thread-locals die first.
        let (_keep, idle) = chan::unbounded::<()>();
        assert!(idle.recv_timeout(Duration::from_millis(1)).is_err());
    })
    .join()
    .unwrap();
    peer.join().unwrap();

    struct Bomb(Vec<u64>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb {}", self.0[0]);
        }
    }
    let (tx, rx) = chan::unbounded();
    for i in 0..3 {
        tx.send(Bomb(vec![i; 4])).unwrap();
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(rx)));
    std::panic::set_hook(hook);
    assert!(dropped.is_err(), "the first bomb's panic comes through");
    assert!(tx.is_closed());
}

fn main() {
    destructors();
    let rt = Runtime::builder().workers(2).build().unwrap();
    spawn_a_thousand(&rt);
    scoped(&rt);
    every_flavour(&rt);
    selects(&rt);
    mutex_context_and_panic(&rt);
    assert!(rt.shutdown().is_clean());
    drop_with_parked_green_threads();
    println!("valgrind_smoke: ok");
}
