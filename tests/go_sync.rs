//! Go's `sync` tests (src/sync/rwmutex_test.go and cond_test.go, The Go
//! Authors, BSD-style licence) that the `sync_*.rs` tests do not already
//! state: `TestRLocker` and `TestCondSignalStealing`. Each keeps its Go
//! original's logic and checks; each doc comment names its Go original and
//! what changed.
//!
//! Left out as covered by `sync_mutex.rs`, `sync_rwlock.rs`,
//! `sync_condvar.rs`, `sync_waitgroup.rs` and `sync_once.rs`: `TestMutex`,
//! `TestMutexFairness`, `TestParallelReaders`, `TestRWMutex`,
//! `TestCondSignal`, `TestCondBroadcast`, `TestWaitGroup`,
//! `TestWaitGroupRace`, `TestOnce`, `TestOncePanic`. Left out because they
//! assume Go's `Cond` never wakes spuriously, which grove's `Condvar`
//! (like std's) does not promise: `TestCondSignalGenerations` and
//! `TestRace`.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::Arc;

use grove::chan::{self, RecvTimeoutError};
use grove::sync::{Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use sync_util::{block_on_each, WAIT_LIMIT};

/// Go's `TestRLocker`: a goroutine read-locks twice and hands both read
/// guards over, then write-locks and hands the write guard over; the other
/// side checks that the write lock is not granted while one read guard is
/// still held, and that no read lock is granted while it holds the write
/// guard. Go's `RLocker()` (whose `Unlock` may run on another goroutine)
/// is a read guard moved to another green thread. 10 rounds, as Go.
#[test]
fn go_test_rlocker() {
    block_on_each(|_| {
        let wl: &'static RwLock<()> = Box::leak(Box::new(RwLock::new(())));
        let (wlocked_t, wlocked) = chan::bounded::<RwLockWriteGuard<'static, ()>>(1);
        type ReadPair = (RwLockReadGuard<'static, ()>, RwLockReadGuard<'static, ()>);
        let (rlocked_t, rlocked) = chan::bounded::<ReadPair>(1);
        const N: usize = 10;
        let locker = grove::go(move || {
            for _ in 0..N {
                let a = wl.read().unwrap();
                let b = wl.read().unwrap();
                rlocked_t.send((a, b)).unwrap();
                let w = wl.write().unwrap();
                wlocked_t.send(w).unwrap();
            }
        });
        for _ in 0..N {
            let (a, b) = rlocked.recv().unwrap();
            drop(a);
            assert!(wlocked.try_recv().is_err(), "RLocker() didn't read-lock it");
            drop(b);
            let w = wlocked.recv().unwrap();
            assert!(
                rlocked.try_recv().is_err(),
                "RLocker() didn't respect the write lock"
            );
            drop(w);
        }
        locker.join().unwrap();
    });
}

/// Go's `TestCondSignalStealing`: a waiter is known to be inside `wait`
/// (it told us while holding the mutex, and we have taken and dropped the
/// mutex since); then a `notify_all` races a second waiter's arrival. The
/// second waiter may or may not be woken, but the first must be: a newcomer
/// must not steal its wake-up. 1,000 rounds per worker count, as Go; Go's
/// 2 s failure bound is the tests' usual `WAIT_LIMIT`, and the broadcaster
/// and the second waiter are joined each round.
#[test]
fn go_test_cond_signal_stealing() {
    block_on_each(|_| {
        for _ in 0..1000 {
            let p = Arc::new((Mutex::new(false), Condvar::new()));
            let (cht, ch) = chan::bounded::<()>(0);
            let first = {
                let p = p.clone();
                grove::go(move || {
                    let g = p.0.lock().unwrap();
                    cht.send(()).unwrap();
                    let g = p.1.wait(g).unwrap();
                    drop(g);
                    cht.send(()).unwrap();
                })
            };
            ch.recv().unwrap();
            drop(p.0.lock().unwrap());
            let broadcaster = {
                let p = p.clone();
                grove::go(move || p.1.notify_all())
            };
            let second = {
                let p = p.clone();
                grove::go(move || {
                    let mut done = p.0.lock().unwrap();
                    while !*done {
                        done = p.1.wait(done).unwrap();
                    }
                })
            };
            match ch.recv_timeout(WAIT_LIMIT) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => panic!("First waiter didn't get broadcast."),
                Err(e) => panic!("{e:?}"),
            }
            *p.0.lock().unwrap() = true;
            p.1.notify_all();
            first.join().unwrap();
            broadcaster.join().unwrap();
            second.join().unwrap();
        }
    });
}
