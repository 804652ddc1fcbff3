//! Quick checks of the sync primitives and context (the full suite lives
//! in the workspace's tests/).
use grove_runtime::context::{Context, ContextError};
use grove_runtime::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock, Semaphore, WaitGroup};
use grove_runtime::Runtime;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn mutex_counts_exactly_across_workers() {
    for workers in [1, 2, 4] {
        let rt = Runtime::builder().workers(workers).build().unwrap();
        let total = rt.block_on(|| {
            let m = Arc::new(Mutex::new(0u64));
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let m = m.clone();
                    grove_runtime::go(move || {
                        for i in 0..5000 {
                            *m.lock().unwrap() += 1;
                            if i % 100 == 0 {
                                grove_runtime::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
            let v = *m.lock().unwrap();
            v
        });
        assert_eq!(total, 40_000);
    }
}

#[test]
fn mutex_shared_with_os_threads_and_held_across_park() {
    let m = Arc::new(Mutex::new(Vec::new()));
    let m2 = m.clone();
    let g = grove_runtime::go(move || {
        for i in 0..100 {
            let mut v = m2.lock().unwrap();
            grove_runtime::thread::sleep(Duration::from_micros(10)); // parks holding it
            v.push(i);
        }
    });
    let m3 = m.clone();
    let t = std::thread::spawn(move || {
        for i in 100..200 {
            m3.lock().unwrap().push(i);
        }
    });
    g.join().unwrap();
    t.join().unwrap();
    let mut v = m.lock().unwrap().clone();
    v.sort();
    assert_eq!(v, (0..200).collect::<Vec<_>>());
}

#[test]
fn poisoning_matches_std() {
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let r = grove_runtime::go(move || {
        let _g = m2.lock().unwrap();
        panic!("poison it");
    })
    .join();
    assert!(r.is_err());
    assert!(m.is_poisoned());
    let g = m.lock().unwrap_err().into_inner();
    assert_eq!(*g, 1);
}

#[test]
fn rwlock_condvar_barrier_wg_sem_once() {
    grove_runtime::run(|| {
        let rw = Arc::new(RwLock::new(0));
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let rw = rw.clone();
                grove_runtime::go(move || {
                    for _ in 0..200 {
                        if i == 0 {
                            *rw.write().unwrap() += 1;
                        } else {
                            let _ = *rw.read().unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*rw.read().unwrap(), 200);

        let pair = Arc::new((Mutex::new(0), Condvar::new()));
        let p2 = pair.clone();
        grove_runtime::go(move || {
            for _ in 0..10 {
                *p2.0.lock().unwrap() += 1;
                p2.1.notify_all();
            }
        });
        let g = pair
            .1
            .wait_while(pair.0.lock().unwrap(), |n| *n < 10)
            .unwrap();
        assert_eq!(*g, 10);
        drop(g);
        let (g, res) = pair
            .1
            .wait_timeout(pair.0.lock().unwrap(), Duration::from_millis(5))
            .unwrap();
        assert!(res.timed_out());
        drop(g);

        let barrier = Arc::new(Barrier::new(5));
        let leaders = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..5)
            .map(|_| {
                let (b, l) = (barrier.clone(), leaders.clone());
                grove_runtime::go(move || {
                    for _ in 0..3 {
                        if b.wait().is_leader() {
                            l.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(leaders.load(Ordering::SeqCst), 3);

        let wg = WaitGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            wg.add(1);
            let (wg, n) = (wg.clone(), n.clone());
            grove_runtime::go(move || {
                n.fetch_add(1, Ordering::SeqCst);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(n.load(Ordering::SeqCst), 1000);
        assert!(std::panic::catch_unwind(|| WaitGroup::new().done()).is_err());

        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..20)
            .map(|_| {
                let (s, i, p) = (sem.clone(), inside.clone(), peak.clone());
                grove_runtime::go(move || {
                    let _permit = s.acquire();
                    let now = i.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    grove_runtime::thread::yield_now();
                    i.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(sem.available_permits(), 3);

        static CELL: OnceLock<usize> = OnceLock::new();
        let inits = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let inits = inits.clone();
                grove_runtime::go(move || {
                    *CELL.get_or_init(|| {
                        inits.fetch_add(1, Ordering::SeqCst);
                        grove_runtime::thread::yield_now();
                        7
                    })
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), 7);
        }
        assert_eq!(inits.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn context_tree() {
    let (parent, cancel) = Context::background().with_cancel();
    let (child, _c) = parent.with_cancel();
    let (grandchild, _g) = child.with_timeout(Duration::from_secs(3600));
    let (other, other_cancel) = parent.with_cancel();
    other_cancel.cancel();
    assert_eq!(other.err(), Some(ContextError::Cancelled));
    assert!(
        parent.err().is_none(),
        "cancelling a child leaves the parent alone"
    );
    let waiters: Vec<_> = (0..1000)
        .map(|_| {
            let d = grandchild.done();
            grove_runtime::go(move || d.recv().is_err())
        })
        .collect();
    cancel.cancel();
    assert!(grandchild.done().try_recv().is_err());
    assert_eq!(grandchild.err(), Some(ContextError::Cancelled));
    for w in waiters {
        assert!(w.join().unwrap());
    }
    let t0 = Instant::now();
    let (ctx, _h) = Context::background().with_timeout(Duration::from_millis(20));
    assert!(ctx.done().recv().is_err());
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
}

#[test]
fn deadlock_is_reported_and_live_programs_are_not() {
    let rt = Runtime::builder()
        .workers(2)
        .deadlock_grace(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    // Two green threads each waiting for the other's channel.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| {
            let (tx1, rx1) = grove_channels::bounded::<u32>(0);
            let (tx2, rx2) = grove_channels::bounded::<u32>(0);
            let a = grove_runtime::go(move || {
                let v = rx1.recv().unwrap();
                tx2.send(v).unwrap();
            });
            let b = grove_runtime::go(move || {
                let v = rx2.recv().unwrap();
                tx1.send(v).unwrap();
            });
            a.join().unwrap();
            b.join().unwrap();
        })
    }));
    let msg = *caught.unwrap_err().downcast::<String>().unwrap();
    assert!(
        msg.starts_with("all green threads are asleep - deadlock!"),
        "{msg}"
    );
    assert!(msg.contains("chan recv"), "{msg}");
    // Live: a timer pending, and an OS thread that sends later.
    rt.block_on(|| grove_runtime::thread::sleep(Duration::from_millis(400)));
    let (tx, rx) = grove_channels::bounded::<u32>(0);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        tx.send(5).unwrap();
    });
    assert_eq!(rt.block_on(move || rx.recv().unwrap()), 5);
    sender.join().unwrap();
    // The deadlocked pair is still parked: shutdown reports and unwinds it.
    let report = rt.shutdown();
    assert_eq!(report.leaked().len(), 3, "{report}");
}

#[test]
fn a_green_thread_blocking_its_worker_is_reported() {
    let rt = Runtime::builder()
        .workers(2)
        .stall_warning(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let (started_tx, started_rx) = grove_channels::bounded::<()>(0);
    let (seen_tx, seen_rx) = grove_channels::bounded::<()>(1);
    let blocker = rt.spawn(move || {
        started_tx.send(()).unwrap();
        // A blocking OS call: holds the worker until the monitor saw it.
        while seen_rx.try_recv().is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    started_rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stalled = loop {
        let tasks = rt.tasks();
        if let Some(t) = tasks.iter().find(|t| t.stalling_worker_for.is_some()) {
            break t.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the monitor never reported the stall"
        );
        std::thread::yield_now();
    };
    assert_eq!(stalled.id, blocker.thread().id());
    assert!(stalled.stalling_worker_for.unwrap() >= Duration::from_millis(50));
    // Meanwhile the other worker carries on.
    assert_eq!(rt.spawn(|| 6 * 7).join().unwrap(), 42);
    seen_tx.send(()).unwrap();
    blocker.join().unwrap();
}
