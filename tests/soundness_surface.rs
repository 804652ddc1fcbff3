//! The public surface of the engine and the runtime is sound to use from
//! safe code: a scheduler configured through safe calls never migrates a
//! started green thread (the case 2: `Config { migrate: true, .. }`
//! no longer compiles, see the `compile_fail` example on `Config`), and
//! the auto traits of every public type are the intended ones. The negative
//! ones (a guard that must not be `Sync`, ...) are pinned by `compile_fail`
//! doctests in the crates (`grove_runtime::sync`).

#![forbid(unsafe_code)]

#[path = "common/base.rs"]
mod base;

use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use grove_scheduler::{Config, Scheduler, SpawnOptions};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_clone_send_sync<T: Clone + Send + Sync>() {}

/// Case 2: a scheduler built through safe calls only (what a crate under
/// `#![forbid(unsafe_code)]` can do) never moves a started green thread
/// between OS threads, even one that holds an `Rc` across a receive that
/// another worker's green thread completes.
#[test]
fn a_scheduler_configured_safely_never_migrates() {
    base::watchdog(|| {
        let mut config = Config::default();
        config.workers = 2;
        assert!(!config.full_migration());
        let scheduler = Scheduler::new(config).unwrap();
        let (moved_tx, moved_rx) = mpsc::channel::<bool>();
        const TRIES: usize = 50;
        for _ in 0..TRIES {
            let (tx, rx) = grove::chan::bounded::<u32>(0);
            let moved_tx = moved_tx.clone();
            let at = std::panic::Location::caller();
            drop(
                scheduler
                    .spawn_at(SpawnOptions::default(), at, move || {
                        let here = Rc::new(std::thread::current().id());
                        for _ in 0..10 {
                            let _ = rx.recv();
                        }
                        moved_tx.send(*here != std::thread::current().id()).unwrap();
                    })
                    .unwrap(),
            );
            drop(
                scheduler
                    .spawn_at(SpawnOptions::default(), at, move || {
                        for i in 0..10 {
                            tx.send(i).unwrap();
                        }
                    })
                    .unwrap(),
            );
        }
        let moved = (0..TRIES)
            .filter(|_| moved_rx.recv_timeout(Duration::from_secs(30)).unwrap())
            .count();
        assert_eq!(moved, 0, "a started green thread changed OS threads");
    });
}

#[test]
fn engine_types_have_their_intended_auto_traits() {
    use grove_scheduler::park::WaitReason;
    use grove_scheduler::scope::{Scope, ScopedJoinHandle};
    use grove_scheduler::{
        DeadlockProbe, Handle, JoinHandle, ShutdownOutcome, Stats, TaskInfo, TaskState, Thread,
        ThreadId, Unparker, WakeHold,
    };
    assert_send_sync::<WaitReason>();
    assert_clone_send_sync::<Unparker>();
    assert_clone_send_sync::<Thread>();
    assert_send_sync::<ThreadId>();
    // As std's: a handle may move and be shared whatever its output.
    assert_send_sync::<JoinHandle<Rc<u8>>>();
    assert_send_sync::<Scope<'static, 'static>>();
    // As std's: `&Scope` may be used in `catch_unwind`.
    fn assert_ref_unwind_safe<T: std::panic::RefUnwindSafe>() {}
    assert_ref_unwind_safe::<Scope<'static, 'static>>();
    assert_send_sync::<ScopedJoinHandle<'static, String>>();
    assert_send_sync::<Config>();
    assert_send_sync::<SpawnOptions>();
    assert_send_sync::<Scheduler>();
    assert_clone_send_sync::<Handle>();
    // Held by an armed timer on whatever thread holds the timer.
    assert_send_sync::<WakeHold>();
    assert_send_sync::<Stats>();
    assert_send_sync::<TaskInfo>();
    assert_send_sync::<TaskState>();
    assert_send_sync::<DeadlockProbe>();
    assert_send_sync::<ShutdownOutcome>();
}

#[test]
fn runtime_types_have_their_intended_auto_traits() {
    use grove::context::{CancelHandle, Context, ContextError};
    use grove::runtime::{Builder, ShutdownReport};
    use grove::sync::{
        Barrier, BarrierWaitResult, Condvar, LazyLock, Mutex, MutexGuard, Once, OnceLock,
        OnceState, RwLock, RwLockReadGuard, RwLockWriteGuard, Semaphore, SemaphorePermit,
        WaitGroup, WaitTimeoutResult,
    };
    use grove::Runtime;
    assert_send_sync::<Runtime>();
    assert_send_sync::<Builder>();
    assert_send_sync::<ShutdownReport>();
    assert_send_sync::<grove::thread::Builder>();
    assert_clone_send_sync::<Context>();
    assert_clone_send_sync::<CancelHandle>();
    assert_send_sync::<ContextError>();
    assert_clone_send_sync::<WaitGroup>();
    assert_send_sync::<Semaphore>();
    assert_send_sync::<SemaphorePermit<'static>>();
    assert_send_sync::<Once>();
    assert_send_sync::<OnceState>();
    assert_send_sync::<OnceLock<String>>();
    // As std's: Sync for Send + Sync data and a Send initialiser.
    assert_send_sync::<LazyLock<String>>();
    assert_send_sync::<LazyLock<String, Box<dyn FnOnce() -> String + Send>>>();
    assert_send_sync::<Condvar>();
    assert_send_sync::<WaitTimeoutResult>();
    assert_send_sync::<Barrier>();
    assert_send_sync::<BarrierWaitResult>();
    // A lock is Send + Sync for Send data, as std's.
    assert_send_sync::<Mutex<std::cell::Cell<u64>>>();
    assert_send_sync::<RwLock<String>>();
    // A guard is Sync only for Sync data (std's rule), and, unlike std's,
    // Send: a green thread may carry it across a park.
    assert_send_sync::<MutexGuard<'static, String>>();
    assert_send_sync::<RwLockReadGuard<'static, String>>();
    assert_send_sync::<RwLockWriteGuard<'static, String>>();
    fn assert_send<T: Send>() {}
    assert_send::<MutexGuard<'static, std::cell::Cell<u64>>>();
    // What std's (and crossbeam's, tokio's) twins are: usable inside
    // `catch_unwind` without `AssertUnwindSafe`.
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<Mutex<String>>();
    unwind_safe::<RwLock<String>>();
    unwind_safe::<Condvar>();
    unwind_safe::<Barrier>();
    unwind_safe::<Once>();
    unwind_safe::<OnceLock<String>>();
    unwind_safe::<LazyLock<String>>();
    unwind_safe::<Semaphore>();
    unwind_safe::<WaitGroup>();
    unwind_safe::<Context>();
    unwind_safe::<Runtime>();
    unwind_safe::<grove::thread::Thread>();
    unwind_safe::<grove::thread::JoinHandle<String>>();
    unwind_safe::<grove::chan::Sender<String>>();
    unwind_safe::<grove::chan::Receiver<String>>();
    unwind_safe::<grove::net::TcpStream>();
    unwind_safe::<grove::net::TcpListener>();
    unwind_safe::<grove::net::UdpSocket>();
    unwind_safe::<grove::net::unix::UnixStream>();
    // std's mpsc twin: senders Send + Sync, the receiver Send only (its
    // not being Sync is a compile_fail doctest), all unwind-safe, as std's.
    use grove::sync::mpsc;
    assert_clone_send_sync::<mpsc::Sender<String>>();
    assert_clone_send_sync::<mpsc::SyncSender<String>>();
    assert_send::<mpsc::Receiver<String>>();
    assert_send::<mpsc::IntoIter<String>>();
    unwind_safe::<mpsc::Sender<String>>();
    unwind_safe::<mpsc::SyncSender<String>>();
    unwind_safe::<mpsc::Receiver<String>>();
}
