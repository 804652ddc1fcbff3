//! Shutting a runtime down unwinds the green threads still parked on sync
//! primitives (`Runtime`'s docs: "green threads still parked are unwound"). The
//! primitives are often shared with OS threads that outlive the runtime,
//! so each must be left usable: no stale waiter, no lost permit, no count
//! of a party that is gone.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use grove::chan;
use grove::sync::{Arc, Barrier, Condvar, Mutex, Once, OnceLock, RwLock, Semaphore, WaitGroup};
use grove::Runtime;
use sync_util::{for_each_workers, runtime, wait_blocked};

/// Spawns `n` green threads running `f`, waits until all are parked on
/// `reason`, and shuts the runtime down; returns how many were unwound.
fn park_then_shutdown<F>(rt: Runtime, reason: &str, n: usize, f: F) -> usize
where
    F: Fn() + Clone + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| rt.spawn(f.clone())).collect();
    wait_blocked(&rt, reason, n);
    let report = rt.shutdown();
    for h in handles {
        assert!(h.join().is_err(), "an unwound green thread's join is Err");
    }
    report.leaked().len()
}

#[test]
fn mutex_waiters_unwound_leave_it_usable() {
    for_each_workers(|workers| {
        let m = Arc::new(Mutex::new(0));
        let held = m.lock().unwrap();
        let m2 = m.clone();
        let unwound = park_then_shutdown(runtime(workers), "Mutex::lock", 3, move || {
            *m2.lock().unwrap() += 1;
        });
        assert_eq!(unwound, 3);
        drop(held);
        assert!(!m.is_poisoned(), "the waiters never held it");
        *m.try_lock().expect("free again") += 1;
        let m2 = m.clone();
        std::thread::spawn(move || *m2.lock().unwrap() += 1)
            .join()
            .unwrap();
        assert_eq!(*m.lock().unwrap(), 2);
    });
}

/// A writer waiting for readers marks the lock "writer waiting", which
/// holds back new readers. Once that writer is unwound, readers must get
/// in again.
#[test]
fn rwlock_writer_unwound_leaves_it_readable() {
    for_each_workers(|workers| {
        let lock = Arc::new(RwLock::new(0));
        let read = lock.read().unwrap();
        let l2 = lock.clone();
        let unwound = park_then_shutdown(runtime(workers), "RwLock::write", 1, move || {
            *l2.write().unwrap() += 1;
        });
        assert_eq!(unwound, 1);
        drop(read);
        assert!(lock.try_read().is_ok(), "no writer holds or waits for it");
        let l2 = lock.clone();
        let reader = std::thread::spawn(move || *l2.read().unwrap());
        let t0 = Instant::now();
        while !reader.is_finished() {
            assert!(t0.elapsed() < Duration::from_secs(5), "read() hangs");
            std::thread::yield_now();
        }
        assert_eq!(reader.join().unwrap(), 0);
    });
}

#[test]
fn rwlock_readers_unwound_leave_it_usable() {
    for_each_workers(|workers| {
        let lock = Arc::new(RwLock::new(0));
        let write = lock.write().unwrap();
        let l2 = lock.clone();
        let unwound = park_then_shutdown(runtime(workers), "RwLock::read", 3, move || {
            let _ = *l2.read().unwrap();
        });
        assert_eq!(unwound, 3);
        drop(write);
        assert!(lock.try_write().is_ok());
        assert!(lock.try_read().is_ok());
    });
}

#[test]
fn semaphore_waiters_unwound_take_no_permit() {
    for_each_workers(|workers| {
        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        let unwound = park_then_shutdown(runtime(workers), "Semaphore::acquire", 3, move || {
            s2.acquire().forget();
        });
        assert_eq!(unwound, 3);
        sem.add_permits(2);
        assert_eq!(sem.available_permits(), 2);
        let (a, b) = (sem.try_acquire(), sem.try_acquire());
        assert!(a.is_some() && b.is_some() && sem.try_acquire().is_none());
    });
}

#[test]
fn condvar_and_waitgroup_waiters_unwound_leave_them_usable() {
    for_each_workers(|workers| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = pair.clone();
        let unwound = park_then_shutdown(runtime(workers), "Condvar::wait", 2, move || {
            let (m, cv) = &*p2;
            drop(cv.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap());
        });
        assert_eq!(unwound, 2);
        let (m, cv) = &*pair;
        assert!(
            m.try_lock().is_ok(),
            "the unwound waiters do not hold the mutex"
        );
        // An OS-thread waiter and notifier still work.
        let p2 = pair.clone();
        let waiter = std::thread::spawn(move || {
            let (m, cv) = &*p2;
            *cv.wait_while(m.lock().unwrap(), |ready| !*ready).unwrap()
        });
        *m.lock().unwrap() = true;
        cv.notify_all();
        assert!(waiter.join().unwrap());

        let wg = WaitGroup::new();
        wg.add(1);
        let w2 = wg.clone();
        let unwound = park_then_shutdown(runtime(workers), "WaitGroup::wait", 2, move || w2.wait());
        assert_eq!(unwound, 2);
        wg.done();
        wg.wait();
        assert_eq!(wg.count(), 0);
    });
}

/// A barrier for 3 with one green party unwound: two OS threads arriving
/// later must still wait for a third (the unwound party is gone, its
/// arrival must not count).
#[test]
fn barrier_party_unwound_does_not_count() {
    for_each_workers(|workers| {
        let barrier = Arc::new(Barrier::new(3));
        let b2 = barrier.clone();
        let unwound = park_then_shutdown(runtime(workers), "Barrier::wait", 1, move || {
            b2.wait();
        });
        assert_eq!(unwound, 1);
        let passed = Arc::new(AtomicBool::new(false));
        let arrive = |barrier: &Arc<Barrier>| {
            let (b, passed) = (barrier.clone(), passed.clone());
            std::thread::spawn(move || {
                let leader = b.wait().is_leader();
                passed.store(true, Ordering::SeqCst);
                leader
            })
        };
        let (x, y) = (arrive(&barrier), arrive(&barrier));
        // Two parties of three: nobody may pass. (Sleeping is the check:
        // that something does not happen for a while.)
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !passed.load(Ordering::SeqCst),
            "two of three parties passed"
        );
        let z = arrive(&barrier);
        let leaders = [x, y, z].map(|h| h.join().unwrap());
        assert_eq!(leaders.iter().filter(|l| **l).count(), 1);
    });
}

/// A green thread unwound while running a `Once`'s closure poisons it (as
/// a panic would); `call_once_force` and `OnceLock::get_or_init` recover.
#[test]
fn once_winner_unwound_poisons_and_is_recoverable() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let once = Arc::new(Once::new());
        let cell = Arc::new(OnceLock::<u32>::new());
        let (_keep_tx, never_rx) = chan::bounded::<()>(0);
        let (o, c, rx) = (once.clone(), cell.clone(), never_rx.clone());
        rt.spawn(move || {
            o.call_once(|| {
                let _ = rx.recv();
            })
        });
        rt.spawn(move || *c.get_or_init(|| never_rx.recv().map_or(0, |_| 1)));
        wait_blocked(&rt, "chan recv", 2);
        assert_eq!(rt.shutdown().leaked().len(), 2);
        assert!(!once.is_completed());
        let mut forced = false;
        once.call_once_force(|state| forced = state.is_poisoned());
        assert!(forced && once.is_completed());
        assert_eq!(cell.get(), None, "the unwound initialiser set nothing");
        assert_eq!(*cell.get_or_init(|| 5), 5);
    });
}
