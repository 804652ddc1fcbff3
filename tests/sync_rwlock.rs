//! `grove::sync::RwLock` through the public API: readers really overlap,
//! writers are exclusive, a waiting writer goes before later readers (a
//! stream of readers cannot starve it), `try_read`/`try_write`, poisoning
//! side by side with `std::sync::RwLock`, and green threads and OS threads
//! sharing one lock.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::TryLockError;
use std::time::{Duration, Instant};

use grove::chan;
use grove::sync::{Arc, Barrier, RwLock, RwLockReadGuard};
use grove::thread;
use sync_util::{
    assert_send_sync, block_on_each, for_each_workers, runtime, wait_blocked, watchdog, WAIT_LIMIT,
};

/// Every reader holds its read guard while it waits on a barrier for all
/// the others: if readers excluded each other, the barrier could never
/// open. One of the readers is an OS thread.
#[test]
fn readers_hold_the_lock_at_the_same_time() {
    const GREEN: usize = 12;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let lock = Arc::new(RwLock::new(7));
        let barrier = Arc::new(Barrier::new(GREEN + 1));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (lock, barrier, inside, peak) =
                (lock.clone(), barrier.clone(), inside.clone(), peak.clone());
            move || {
                for _ in 0..3 {
                    let g = lock.read().unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    barrier.wait(); // everyone is inside now
                    assert_eq!(*g, 7);
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                    barrier.wait(); // everyone is out: next round
                }
            }
        };
        let green: Vec<_> = (0..GREEN).map(|_| rt.spawn(reader.clone())).collect();
        let os = std::thread::spawn(reader);
        os.join().unwrap();
        for h in green {
            h.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), GREEN + 1);
        assert!(lock.try_write().is_ok(), "all read guards were released");
    });
}

/// Writers and readers on green threads and OS threads: a writer never
/// sees anyone else inside, a reader never sees a writer inside or a torn
/// pair, and every write counts.
#[test]
fn writers_are_exclusive_and_every_write_counts() {
    const WRITERS: usize = 4;
    const READERS: usize = 4;
    const PER: usize = 300;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        // (a, b) with the invariant a == b outside a write.
        let lock = Arc::new(RwLock::new((0usize, 0usize)));
        let writers_in = Arc::new(AtomicUsize::new(0));
        let readers_in = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (lock, w_in, r_in) = (lock.clone(), writers_in.clone(), readers_in.clone());
            move |i: usize| {
                let mut g = lock.write().unwrap();
                assert_eq!(w_in.fetch_add(1, Ordering::SeqCst), 0, "two writers inside");
                assert_eq!(r_in.load(Ordering::SeqCst), 0, "a reader inside a write");
                g.0 += 1;
                if i % 8 == 0 {
                    thread::yield_now(); // torn state visible if not exclusive
                }
                g.1 += 1;
                w_in.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let reader = {
            let (lock, w_in, r_in) = (lock.clone(), writers_in.clone(), readers_in.clone());
            move |i: usize| {
                let g = lock.read().unwrap();
                r_in.fetch_add(1, Ordering::SeqCst);
                assert_eq!(w_in.load(Ordering::SeqCst), 0, "a writer inside a read");
                if i % 8 == 0 {
                    thread::yield_now();
                }
                assert_eq!(g.0, g.1, "torn write seen");
                r_in.fetch_sub(1, Ordering::SeqCst);
            }
        };
        let mut green = Vec::new();
        for _ in 0..WRITERS {
            let w = writer.clone();
            green.push(rt.spawn(move || (0..PER).for_each(&w)));
        }
        for _ in 0..READERS {
            let r = reader.clone();
            green.push(rt.spawn(move || (0..PER).for_each(&r)));
        }
        let os_writer = std::thread::spawn(move || (0..PER).for_each(writer));
        let os_reader = std::thread::spawn(move || (0..PER).for_each(reader));
        os_writer.join().unwrap();
        os_reader.join().unwrap();
        for h in green {
            h.join().unwrap();
        }
        let total = (WRITERS + 1) * PER;
        assert_eq!(*lock.read().unwrap(), (total, total));
    });
}

/// Deterministic writer preference: with a reader holding the lock and a
/// writer waiting, a new reader waits too (`read` parks, `try_read` would
/// block), and the writer goes first when the reader leaves.
#[test]
fn waiting_writer_goes_before_later_readers() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let lock = Arc::new(RwLock::new(Vec::<&'static str>::new()));
        let (held_tx, held_rx) = chan::bounded::<()>(0);
        let (release_tx, release_rx) = chan::bounded::<()>(0);
        let first_reader = {
            let lock = lock.clone();
            rt.spawn(move || {
                let g = lock.read().unwrap();
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap(); // parks holding the read guard
                g.len()
            })
        };
        held_rx.recv().unwrap();
        let writer = {
            let lock = lock.clone();
            rt.spawn(move || lock.write().unwrap().push("writer"))
        };
        wait_blocked(&rt, "RwLock::write", 1);
        assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
        assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
        let late_reader = {
            let lock = lock.clone();
            rt.spawn(move || lock.read().unwrap().clone())
        };
        wait_blocked(&rt, "RwLock::read", 1);
        let parked = rt.tasks();
        assert!(parked.iter().any(|t| t.blocked_on == Some("RwLock::read")
            && t.blocked_at
                .is_some_and(|at| at.file().ends_with("sync_rwlock.rs"))));
        release_tx.send(()).unwrap();
        assert_eq!(first_reader.join().unwrap(), 0);
        writer.join().unwrap();
        assert_eq!(
            late_reader.join().unwrap(),
            ["writer"],
            "the writer went first"
        );
    });
}

/// A stream of overlapping readers that never stops on its own (each holds
/// the lock across a yield, so at almost every instant some reader holds
/// it): writers, green and OS, still get in, in bounded time, every round.
#[test]
fn a_stream_of_readers_cannot_starve_a_writer() {
    const READERS: usize = 6;
    const WRITES: usize = 20;
    const CAP: Duration = Duration::from_secs(10);
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let lock = Arc::new(RwLock::new(0usize));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (lock, stop, reads) = (lock.clone(), stop.clone(), reads.clone());
                rt.spawn(move || {
                    // Capped, so that a writer starved for good fails the
                    // assertion below instead of hanging until the watchdog.
                    let t0 = Instant::now();
                    while !stop.load(Ordering::SeqCst) && t0.elapsed() < CAP {
                        let g = lock.read().unwrap();
                        thread::yield_now();
                        reads.fetch_add(1, Ordering::SeqCst);
                        drop(g);
                    }
                })
            })
            .collect();
        let os_reader = {
            let (lock, stop) = (lock.clone(), stop.clone());
            std::thread::spawn(move || {
                let t0 = Instant::now();
                while !stop.load(Ordering::SeqCst) && t0.elapsed() < CAP {
                    let _g = lock.read().unwrap();
                    std::thread::yield_now();
                }
            })
        };
        let t0 = Instant::now();
        while reads.load(Ordering::SeqCst) < 100 {
            assert!(t0.elapsed() < WAIT_LIMIT, "the readers never got going");
            std::thread::yield_now();
        }
        let green_writer = {
            let lock = lock.clone();
            rt.spawn(move || {
                for _ in 0..WRITES {
                    *lock.write().unwrap() += 1;
                }
            })
        };
        let t0 = Instant::now();
        for _ in 0..WRITES {
            *lock.write().unwrap() += 1; // an OS-thread writer
        }
        green_writer.join().unwrap();
        let took = t0.elapsed();
        stop.store(true, Ordering::SeqCst);
        os_reader.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(*lock.read().unwrap(), 2 * WRITES);
        assert!(
            took < CAP / 2,
            "writers took {took:?}: starved by the readers"
        );
    });
}

#[test]
fn try_read_and_try_write_semantics() {
    block_on_each(|_| {
        let lock = Arc::new(RwLock::new(1));
        {
            let r1 = lock.try_read().expect("free: try_read succeeds");
            let r2 = lock.try_read().expect("read-held: try_read succeeds");
            assert_eq!(*r1 + *r2, 2);
            assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
            let l2 = lock.clone();
            let other = grove::go(move || {
                (
                    l2.try_read().map(|g| *g).ok(),
                    matches!(l2.try_write(), Err(TryLockError::WouldBlock)),
                )
            });
            assert_eq!(other.join().unwrap(), (Some(1), true));
        }
        {
            let mut w = lock.try_write().expect("free: try_write succeeds");
            *w = 2;
            assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
            assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
            let l2 = lock.clone();
            let os = std::thread::spawn(move || l2.try_read().is_err() && l2.try_write().is_err());
            assert!(os.join().unwrap());
        }
        assert_eq!(*lock.read().unwrap(), 2);

        // Poisoned and free: both report Poisoned, with working guards.
        let l2 = lock.clone();
        assert!(grove::go(move || {
            let _w = l2.write().unwrap();
            panic!("poison");
        })
        .join()
        .is_err());
        match lock.try_read() {
            Err(TryLockError::Poisoned(e)) => assert_eq!(*e.into_inner(), 2),
            _ => panic!("expected Poisoned from try_read"),
        }
        match lock.try_write() {
            Err(TryLockError::Poisoned(e)) => *e.into_inner() = 3,
            _ => panic!("expected Poisoned from try_write"),
        }
        assert_eq!(*lock.read().unwrap_err().into_inner(), 3);
    });
}

#[derive(Debug, PartialEq)]
struct PoisonTrace {
    poisoned_by_reader_panic: bool,
    poisoned_by_writer_panic: bool,
    read_err_value: Option<i32>,
    write_err_value: Option<i32>,
    after_clear: bool,
    get_mut_err: bool,
    into_inner_err_value: Option<i32>,
}

/// The same steps for std's RwLock and grove's (`$spawn` runs a job on a
/// thread and says whether it panicked).
macro_rules! poison_trace {
    ($RwLock:ident, $spawn:expr) => {{
        let spawn = $spawn;
        let lock = Arc::new($RwLock::new(1));
        let l = lock.clone();
        assert!(spawn(Box::new(move || {
            let _r = l.read().unwrap();
            panic!("a reader panics");
        })));
        let poisoned_by_reader_panic = lock.is_poisoned();
        let l = lock.clone();
        assert!(spawn(Box::new(move || {
            let mut w = l.write().unwrap();
            *w = 2;
            panic!("a writer panics");
        })));
        let poisoned_by_writer_panic = lock.is_poisoned();
        let read_err_value = lock.read().err().map(|e| *e.into_inner());
        let write_err_value = lock.write().err().map(|e| {
            let mut w = e.into_inner();
            *w += 1;
            *w
        });
        lock.clear_poison();
        let after_clear = lock.is_poisoned() || lock.read().is_err() || lock.write().is_err();
        let l = lock.clone();
        assert!(spawn(Box::new(move || {
            let _w = l.write();
            panic!("poison again");
        })));
        let mut lock = Arc::try_unwrap(lock).ok().expect("the only reference");
        let get_mut_err = lock.get_mut().is_err();
        let into_inner_err_value = lock.into_inner().err().map(|e| e.into_inner());
        PoisonTrace {
            poisoned_by_reader_panic,
            poisoned_by_writer_panic,
            read_err_value,
            write_err_value,
            after_clear,
            get_mut_err,
            into_inner_err_value,
        }
    }};
}

type Job = Box<dyn FnOnce() + Send>;

fn on_os_thread(job: Job) -> bool {
    std::thread::spawn(job).join().is_err()
}

fn on_green_thread(job: Job) -> bool {
    grove::go(job).join().is_err()
}

#[test]
fn poisoning_matches_std() {
    watchdog(|| {
        let std_trace = {
            use std::sync::RwLock;
            poison_trace!(RwLock, on_os_thread)
        };
        assert_eq!(
            std_trace,
            PoisonTrace {
                poisoned_by_reader_panic: false,
                poisoned_by_writer_panic: true,
                read_err_value: Some(2),
                write_err_value: Some(3),
                after_clear: false,
                get_mut_err: true,
                into_inner_err_value: Some(3),
            },
            "the reference behaviour (std)"
        );
        assert_eq!(poison_trace!(RwLock, on_green_thread), std_trace);
        assert_eq!(poison_trace!(RwLock, on_os_thread), std_trace);
    });
}

/// On one worker, a writer holds the lock across a sleep: readers park on
/// it, an unrelated green thread keeps running, and the readers get in
/// (and see the write) once the writer lets go.
#[test]
fn write_guard_held_across_sleep_does_not_block_the_worker() {
    watchdog(|| {
        let rt = runtime(1);
        let lock = Arc::new(RwLock::new(0));
        let other_ran = Arc::new(AtomicBool::new(false));
        let (held_tx, held_rx) = chan::bounded::<()>(0);
        let writer = {
            let (lock, other_ran) = (lock.clone(), other_ran.clone());
            rt.spawn(move || {
                let mut w = lock.write().unwrap();
                held_tx.send(()).unwrap();
                let t0 = Instant::now();
                while !other_ran.load(Ordering::SeqCst) {
                    assert!(t0.elapsed() < WAIT_LIMIT, "the worker is blocked");
                    thread::sleep(Duration::from_millis(1));
                }
                *w = 42;
            })
        };
        held_rx.recv().unwrap();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let lock = lock.clone();
                rt.spawn(move || *lock.read().unwrap())
            })
            .collect();
        wait_blocked(&rt, "RwLock::read", 3);
        let other_ran2 = other_ran.clone();
        rt.spawn(move || other_ran2.store(true, Ordering::SeqCst))
            .join()
            .unwrap();
        writer.join().unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap(), 42);
        }
    });
}

#[test]
fn std_traits() {
    watchdog(|| {
        assert_send_sync::<RwLock<Vec<u8>>>();
        let lock = RwLock::new(5);
        {
            let r = lock.read().unwrap();
            assert_eq!(format!("{r:?}"), "5");
            let dbg = format!("{lock:?}");
            assert!(
                dbg.contains("data: 5"),
                "a read-held lock can still be read: {dbg}"
            );
        }
        {
            let w = lock.write().unwrap();
            assert_eq!(format!("{w:?}"), "5");
            assert!(format!("{lock:?}").contains("<locked>"));
        }
        assert_eq!(*RwLock::<u8>::default().read().unwrap(), 0);
        assert_eq!(RwLock::from("x").into_inner().unwrap(), "x");
        static GLOBAL: RwLock<u32> = RwLock::new(1); // `new` is const
        *GLOBAL.write().unwrap() += 1;
        assert_eq!(*GLOBAL.read().unwrap(), 2);
    });
}

/// `RwLockWriteGuard::downgrade` (std 1.92): the writer's change is kept,
/// no writer gets in between, a waiting reader gets in beside the
/// downgraded guard, and a waiting writer only after both are gone.
/// The guards print their value (`Display`), as std's.
#[test]
fn downgrade_keeps_the_lock_for_reading() {
    watchdog(|| {
        let rt = runtime(2);
        let lock = Arc::new(RwLock::new(1u64));
        let mut w = lock.write().unwrap();
        *w = 2;
        assert_eq!(w.to_string(), "2");
        let reader = {
            let lock = lock.clone();
            rt.spawn(move || *lock.read().unwrap())
        };
        wait_blocked(&rt, "RwLock::read", 1);
        let r = grove::sync::RwLockWriteGuard::downgrade(w);
        assert_eq!(r.to_string(), "2");
        assert_eq!(
            reader.join().unwrap(),
            2,
            "a reader beside the downgraded guard"
        );
        assert!(lock.try_write().is_err(), "still read-locked");
        let writer = {
            let lock = lock.clone();
            rt.spawn(move || *lock.write().unwrap() += 1)
        };
        wait_blocked(&rt, "RwLock::write", 1);
        drop(r);
        writer.join().unwrap();
        assert_eq!(*lock.read().unwrap(), 3);
        assert!(!lock.is_poisoned());
    });
}

/// std's `test_read_guard_covariance`: a read guard of `&'a i32` passes
/// where one of a shorter-lived reference is expected (the guard is
/// covariant in its data, as std's); it compiles, and reads. A read
/// guard moves to another green thread, which releases the lock.
#[test]
fn read_guards_are_covariant_and_move() {
    fn do_stuff<'a>(guard: RwLockReadGuard<'_, &'a i32>, other: &'a i32) -> i32 {
        **guard + *other
    }
    block_on_each(|_| {
        let j: i32 = 5;
        let lock = RwLock::new(&j);
        {
            let i = 6;
            assert_eq!(do_stuff(lock.read().unwrap(), &i), 11);
        }
        drop(lock);

        let lock = Arc::new(RwLock::new(String::from("moved")));
        let guard = lock.read().unwrap();
        let len = thread::scope(|s| s.spawn(move || guard.len()).join().unwrap());
        assert_eq!(len, 5);
        assert!(lock.try_write().is_ok(), "released by the other thread");
    });
}

/// Two writers taking turns (each holds the lock for a moment, lets go,
/// and asks again at once) do not keep a reader out: a writer's unlock
/// lets in the readers waiting for it before the next writer, as Go's
/// `RWMutex` does. Before, the other writer always waited, its bit kept
/// new and waiting readers out, and the reader got in only when the
/// writers stopped (5 of 5 runs). Writers and reader on OS threads, and
/// as green threads on two workers.
#[test]
fn writers_taking_turns_let_a_waiting_reader_in() {
    type Job = Box<dyn FnOnce() + Send>;
    fn check(spawn: &dyn Fn(Job) -> Job) {
        const LIMIT: Duration = Duration::from_secs(5);
        let lock = Arc::new(RwLock::new(0u64));
        let read = Arc::new(AtomicBool::new(false));
        let writing = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, read, writing) = (lock.clone(), read.clone(), writing.clone());
                spawn(Box::new(move || {
                    let start = Instant::now();
                    let mut turns = 0u64;
                    while !read.load(Ordering::Acquire) && start.elapsed() < LIMIT {
                        let mut guard = lock.write().unwrap();
                        *guard += 1;
                        turns += 1;
                        if turns == 10 {
                            writing.fetch_add(1, Ordering::AcqRel);
                        }
                        let held = Instant::now();
                        while held.elapsed() < Duration::from_micros(50) {
                            std::hint::spin_loop();
                        }
                    }
                    assert!(
                        read.load(Ordering::Acquire),
                        "the reader was kept out for {LIMIT:?} of writers' turns"
                    );
                }))
            })
            .collect();
        let reader = {
            let (lock, read, writing) = (lock.clone(), read.clone(), writing.clone());
            spawn(Box::new(move || {
                // Both writers are taking turns.
                while writing.load(Ordering::Acquire) < 2 {
                    thread::yield_now();
                }
                let value = *lock.read().unwrap();
                read.store(true, Ordering::Release);
                assert!(value >= 20, "read {value} before the writers' turns");
            }))
        };
        reader();
        for w in writers {
            w();
        }
    }
    watchdog(|| {
        check(&|f| {
            let h = std::thread::spawn(f);
            Box::new(move || h.join().unwrap())
        });
        let rt = runtime(2);
        let worker = AtomicUsize::new(0);
        check(&|f| {
            let on = worker.fetch_add(1, Ordering::Relaxed) % 2;
            let h = thread::Builder::new()
                .on_worker(on)
                .spawn_on(&rt, f)
                .unwrap();
            Box::new(move || h.join().unwrap())
        });
    });
}

/// A reader parked on the lock that a writer's unlock let in (a read hold
/// taken for it) but that is unwound before it runs, its runtime dropped,
/// gives the hold back: the writer waiting behind it still gets the lock.
/// The reader's worker is held in a plain OS sleep meanwhile, so that the
/// runtime's drop, not the reader, is what comes next for it.
#[test]
fn a_reader_let_in_but_unwound_gives_its_hold_back() {
    watchdog(|| {
        for _ in 0..5 {
            let lock = Arc::new(RwLock::new(0u32));
            let held = lock.write().unwrap();
            let rt = runtime(1);
            let reader = {
                let lock = lock.clone();
                rt.spawn(move || *lock.read().unwrap())
            };
            wait_blocked(&rt, "RwLock::read", 1);
            let writer = {
                let lock = lock.clone();
                std::thread::spawn(move || *lock.write().unwrap() += 1)
            };
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let _holder = rt.spawn(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            });
            started_rx.recv().unwrap();
            // Past the 1 ms a reader waits before a writer's unlock lets it
            // in ahead of the writer queued behind it.
            let blocked = Instant::now();
            while blocked.elapsed() < Duration::from_millis(5) {
                std::thread::yield_now();
            }
            drop(held); // lets the parked reader in: its hold is taken
            drop(rt);
            assert!(reader.join().is_err(), "unwound by the runtime's drop");
            writer.join().unwrap();
            assert_eq!(*lock.read().unwrap(), 1);
        }
    });
}
