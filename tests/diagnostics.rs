//! Diagnostics through the public API: `Runtime::tasks()` (id, name,
//! state, spawn site, what each green thread is blocked on and where, for
//! every kind of blocking call), `Runtime::stats()`, the deadlock report
//! ("all green threads are asleep - deadlock!") on real deadlocks and never
//! on live programs, and the shutdown leak report (`ShutdownReport`).

#[path = "common/sync_util.rs"]
mod sync_util;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::chan;
use grove::runtime::{Builder, ShutdownReport, TaskInfo, TaskState};
use grove::sync::{Arc, Barrier, Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};
use grove::thread::{self, JoinHandle};
use grove::{select, Runtime};
use sync_util::{
    for_each_workers, panic_message, runtime, wait_blocked, wait_until, watchdog, WORKER_COUNTS,
};

/// Spawns a named green thread on `rt` and returns where it was spawned
/// (this function's caller: `spawn_on` tracks its caller through ours).
#[track_caller]
fn spawn_named<T, F>(rt: &Runtime, name: &str, f: F) -> (JoinHandle<T>, &'static Location<'static>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let at = Location::caller();
    let h = thread::Builder::new()
        .name(name.to_string())
        .spawn_on(rt, f)
        .expect("spawn");
    (h, at)
}

/// Records the line of a blocking call in `$line`, then makes the call.
/// Both are on the macro's line, which is what `blocked_at` must name.
macro_rules! blocking {
    ($line:expr, $call:expr) => {{
        $line.store(line!(), Ordering::SeqCst);
        $call
    }};
}

/// What one probe thread is expected to show in `tasks()`.
struct Expect {
    handle: JoinHandle<()>,
    spawned_at: &'static Location<'static>,
    reason: &'static str,
    line: Arc<AtomicU32>,
}

#[track_caller]
fn check_task(task: &TaskInfo, name: &str, e: &Expect) {
    assert_eq!(task.id, e.handle.thread().id(), "{name}: id");
    assert_eq!(task.name.as_deref(), Some(name));
    assert_eq!(task.state, TaskState::Parked, "{name}: state");
    assert_eq!(task.spawned_at, e.spawned_at, "{name}: spawned_at");
    assert_eq!(task.spawned_at.file(), file!());
    assert_eq!(task.blocked_on, Some(e.reason), "{name}: blocked_on");
    let at = task.blocked_at.expect("a parked task says where");
    assert_eq!(
        (at.file(), at.line()),
        (file!(), e.line.load(Ordering::SeqCst)),
        "{name}: blocked_at"
    );
    assert!(task.worker.is_some(), "{name}: a started task has a worker");
}

/// One green thread blocked on each kind of blocking call; `tasks()` names
/// every one of them correctly. Then they are all released, except a
/// sleeper, which the shutdown report lists.
#[test]
fn tasks_names_every_kind_of_blocking_call() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let mut probes: HashMap<&'static str, Expect> = HashMap::new();
        macro_rules! probe {
            ($name:expr, $reason:expr, |$line:ident| $body:expr) => {{
                let $line = Arc::new(AtomicU32::new(0));
                let line = $line.clone();
                let (handle, spawned_at) = spawn_named(&rt, $name, move || {
                    let $line = line;
                    $body;
                });
                probes.insert(
                    $name,
                    Expect {
                        handle,
                        spawned_at,
                        reason: $reason,
                        line: $line,
                    },
                );
            }};
        }

        let (recv_tx, recv_rx) = chan::bounded::<u8>(0);
        probe!("recv", "chan recv", |l| {
            blocking!(l, recv_rx.recv()).unwrap();
        });
        let (send_tx, send_rx) = chan::bounded::<u8>(0);
        probe!("send", "chan send", |l| {
            blocking!(l, send_tx.send(1)).unwrap();
        });
        let (sel_tx, sa) = chan::bounded::<u8>(0);
        let (_idle_tx, sb) = chan::bounded::<u8>(0);
        probe!("select", "select", |l| {
            blocking!(l, select! { recv(sa) -> _ => {}, recv(sb) -> _ => {} });
        });
        let mutex = Arc::new(Mutex::new(0));
        let mutex_guard = mutex.lock().unwrap();
        let m = mutex.clone();
        probe!("mutex", "Mutex::lock", |l| {
            *blocking!(l, m.lock()).unwrap() += 1;
        });
        let rw_w = Arc::new(RwLock::new(0));
        let write_guard = rw_w.write().unwrap();
        let rw = rw_w.clone();
        probe!("read", "RwLock::read", |l| {
            drop(blocking!(l, rw.read()).unwrap());
        });
        let rw_r = Arc::new(RwLock::new(0));
        let read_guard = rw_r.read().unwrap();
        let rw = rw_r.clone();
        probe!("write", "RwLock::write", |l| {
            *blocking!(l, rw.write()).unwrap() += 1;
        });
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p = pair.clone();
        probe!("condvar", "Condvar::wait", |l| {
            let (m, cv) = &*p;
            let mut g = m.lock().unwrap();
            while !*g {
                g = blocking!(l, cv.wait(g)).unwrap();
            }
        });
        let wg = WaitGroup::new();
        wg.add(1);
        let w = wg.clone();
        probe!("waitgroup", "WaitGroup::wait", |l| {
            blocking!(l, w.wait());
        });
        let sem = Arc::new(Semaphore::new(0));
        let s = sem.clone();
        probe!("semaphore", "Semaphore::acquire", |l| {
            blocking!(l, s.acquire()).forget();
        });
        let barrier = Arc::new(Barrier::new(2));
        let b = barrier.clone();
        probe!("barrier", "Barrier::wait", |l| {
            blocking!(l, b.wait());
        });
        probe!("sleep", "sleep", |l| {
            blocking!(l, thread::sleep(Duration::from_secs(3600)));
        });
        let (inner_tx, inner_rx) = chan::bounded::<u8>(0);
        let inner = rt.spawn(move || inner_rx.recv().unwrap());
        let inner_id = inner.thread().id();
        probe!("join", "JoinHandle::join", |l| {
            blocking!(l, inner.join()).unwrap();
        });
        let unparked = Arc::new(AtomicBool::new(false));
        let u = unparked.clone();
        probe!("park", "park", |l| {
            while !u.load(Ordering::SeqCst) {
                blocking!(l, thread::park());
            }
        });
        let once = Arc::new(Once::new());
        let (once_started_tx, once_started_rx) = chan::bounded::<()>(0);
        let (once_finish_tx, once_finish_rx) = chan::bounded::<()>(0);
        let o = once.clone();
        let once_winner = rt.spawn(move || {
            o.call_once(|| {
                once_started_tx.send(()).unwrap();
                once_finish_rx.recv().unwrap();
            })
        });
        once_started_rx.recv().unwrap();
        let o = once.clone();
        probe!("once", "Once::call_once", |l| {
            blocking!(l, o.call_once(|| {}));
        });

        wait_until("every probe (and the inner green thread) to park", || {
            let tasks = rt.tasks();
            let inner_parked = tasks
                .iter()
                .any(|t| t.id == inner_id && t.blocked_on == Some("chan recv"));
            inner_parked
                && probes.iter().all(|(name, e)| {
                    tasks.iter().any(|t| {
                        t.name.as_deref() == Some(*name)
                            && t.state == TaskState::Parked
                            && t.blocked_on == Some(e.reason)
                    })
                })
        });
        let tasks = rt.tasks();
        // The probes, the inner green thread and the Once winner.
        assert_eq!(tasks.len(), probes.len() + 2, "{tasks:#?}");
        assert!(tasks.windows(2).all(|w| w[0].id < w[1].id), "sorted by id");
        for (name, e) in &probes {
            let task = tasks
                .iter()
                .find(|t| t.name.as_deref() == Some(*name))
                .unwrap_or_else(|| panic!("{name} is not listed"));
            check_task(task, name, e);
        }
        let inner_info = tasks.iter().find(|t| t.id == inner_id).unwrap();
        assert_eq!(inner_info.name, None);
        assert_eq!(inner_info.blocked_on, Some("chan recv"));
        assert_eq!(rt.stats().live, tasks.len() as u64);

        // Release everything but the sleeper.
        recv_tx.send(1).unwrap();
        assert_eq!(send_rx.recv(), Ok(1));
        sel_tx.send(1).unwrap();
        drop((mutex_guard, write_guard, read_guard));
        *pair.0.lock().unwrap() = true;
        pair.1.notify_all();
        wg.done();
        sem.add_permits(1);
        barrier.wait();
        inner_tx.send(1).unwrap();
        unparked.store(true, Ordering::SeqCst);
        probes["park"].handle.thread().unpark();
        once_finish_tx.send(()).unwrap();
        once_winner.join().unwrap();
        let sleeper = probes.remove("sleep").unwrap();
        for (name, e) in probes {
            e.handle
                .join()
                .unwrap_or_else(|_| panic!("{name} panicked"));
        }
        assert_eq!(*mutex.lock().unwrap(), 1);
        assert_eq!(*rw_r.read().unwrap(), 1);
        wait_until("only the sleeper left", || rt.tasks().len() == 1);
        let left = rt.tasks();
        assert_eq!(left[0].name.as_deref(), Some("sleep"));

        let report = rt.shutdown();
        assert_eq!(report.leaked().len(), 1, "{report}");
        assert_eq!(report.leaked()[0].blocked_on, Some("sleep"));
        assert_eq!(report.by_spawn_site(), [(sleeper.spawned_at, 1)]);
        assert!(
            sleeper.handle.join().is_err(),
            "an unwound green thread's join is Err"
        );
    });
}

/// States other than Parked: a green thread spinning on the only worker is
/// Running, and one spawned meanwhile is Queued (not started: no worker).
#[test]
fn tasks_reports_running_and_queued() {
    watchdog(|| {
        let rt = runtime(1);
        /// Stops the spinner even if an assertion fails (else the
        /// runtime's drop would wait for it forever).
        struct Stop(Arc<AtomicBool>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let spin = Arc::new(AtomicBool::new(true));
        let stop = Stop(spin.clone());
        let started = Arc::new(AtomicBool::new(false));
        let (s, st) = (spin.clone(), started.clone());
        let (spinner, _) = spawn_named(&rt, "spinner", move || {
            st.store(true, Ordering::SeqCst);
            while s.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        });
        wait_until("the spinner to run", || started.load(Ordering::SeqCst));
        let (queued, queued_at) = spawn_named(&rt, "queued", || thread::park());
        let tasks = rt.tasks();
        let running = tasks
            .iter()
            .find(|t| t.id == spinner.thread().id())
            .unwrap();
        assert_eq!(
            (running.state, running.blocked_on),
            (TaskState::Running, None)
        );
        assert_eq!(running.worker, Some(0));
        let q = tasks.iter().find(|t| t.id == queued.thread().id()).unwrap();
        assert_eq!(q.state, TaskState::Queued);
        assert_eq!((q.blocked_on, q.blocked_at, q.worker), (None, None, None));
        assert_eq!(q.spawned_at, queued_at);
        drop(stop);
        spinner.join().unwrap();
        wait_blocked(&rt, "park", 1);
        queued.thread().unpark();
        queued.join().unwrap();
        assert!(rt.tasks().is_empty());
        assert!(rt.shutdown().is_clean());
    });
}

/// `tasks()` of each runtime lists that runtime's green threads and no
/// other's, whatever their closures' size (a big one is a task record of
/// its own kind), and only while they live.
#[test]
fn tasks_lists_only_the_runtimes_own_green_threads() {
    watchdog(|| {
        const EACH: usize = 50;
        let runtimes = [runtime(2), runtime(1)];
        let mut handles = Vec::new();
        for (r, rt) in runtimes.iter().enumerate() {
            for i in 0..EACH {
                let name = format!("rt{r}-{i}");
                let h = if i % 10 == 0 {
                    // A closure of more than a kilobyte.
                    let ballast = [i as u8; 4096];
                    spawn_named(rt, &name, move || {
                        chan::never::<()>().recv().ok();
                        ballast.iter().map(|&b| b as usize).sum::<usize>()
                    })
                    .0
                } else {
                    spawn_named(rt, &name, || {
                        thread::park();
                        0
                    })
                    .0
                };
                handles.push((r, i, h));
            }
        }
        for rt in &runtimes {
            wait_until("every green thread to block", || {
                rt.tasks()
                    .iter()
                    .filter(|t| t.state == TaskState::Parked)
                    .count()
                    == EACH
            });
        }
        for (r, rt) in runtimes.iter().enumerate() {
            let mut names: Vec<String> = rt.tasks().into_iter().filter_map(|t| t.name).collect();
            names.sort();
            let mut want: Vec<String> = (0..EACH).map(|i| format!("rt{r}-{i}")).collect();
            want.sort();
            assert_eq!(
                names, want,
                "runtime {r} lists its own green threads, once each"
            );
        }
        // The small ones are unparked and joined; the big ones stay parked
        // until their runtime is dropped (unwound: their join is an Err).
        let mut big = Vec::new();
        for (r, i, h) in handles {
            if i % 10 == 0 {
                big.push((r, h));
            } else {
                h.thread().unpark();
                assert_eq!(h.join().unwrap(), 0);
            }
        }
        for rt in &runtimes {
            assert_eq!(rt.tasks().len(), EACH / 10, "only the big ones are left");
        }
        let [first, second] = runtimes;
        drop(first);
        assert_eq!(
            second.tasks().len(),
            EACH / 10,
            "the other runtime's stay listed"
        );
        drop(second);
        for (_, h) in big {
            assert!(h.join().is_err(), "unwound by its runtime's drop");
        }
    });
}

/// Finished green threads whose handles were dropped (detached) are swept
/// out of the runtime's books: `tasks()` stops listing them, and each
/// one's result is dropped, at the latest when the runtime is.
#[test]
fn detached_green_threads_leave_nothing_behind() {
    /// A green thread's result that counts its drop.
    struct Output(Arc<AtomicUsize>);
    impl Drop for Output {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    const N: usize = 5_000;
    watchdog(|| {
        for workers in WORKER_COUNTS {
            let rt = runtime(workers);
            let dropped = Arc::new(AtomicUsize::new(0));
            let d = dropped.clone();
            let ran = rt.block_on(move || {
                let (tx, rx) = chan::unbounded();
                for i in 0..N {
                    let (d, tx) = (d.clone(), tx.clone());
                    drop(thread::spawn(move || {
                        tx.send(i).unwrap();
                        Output(d)
                    }));
                }
                drop(tx);
                rx.iter().map(|i| i as u64).sum::<u64>()
            });
            assert_eq!(ran, (N * (N - 1) / 2) as u64, "{workers} workers");
            wait_until("finished green threads to leave tasks()", || {
                rt.tasks().is_empty()
            });
            assert_eq!(rt.stats().live, 0);
            drop(rt);
            assert_eq!(dropped.load(Ordering::SeqCst), N, "{workers} workers");
        }
    });
}

/// The runtime drops a detached green thread's result on a worker's idle
/// path; a destructor that wakes a green thread on that same worker must
/// get it running (it lands in the worker's run-next slot, which the idle
/// loop has to look at).
#[test]
fn a_dropped_result_may_wake_a_green_thread_on_its_worker() {
    /// Sends on drop.
    struct Notify(chan::Sender<u32>);
    impl Drop for Notify {
        fn drop(&mut self) {
            let _ = self.0.send(7);
        }
    }
    watchdog(|| {
        for _ in 0..50 {
            let rt = runtime(1);
            let got = rt.block_on(|| {
                let (tx, rx) = chan::bounded(1);
                drop(thread::spawn(move || Notify(tx)));
                // Parks until the result is dropped: nothing else runs.
                rx.recv()
            });
            assert_eq!(got, Ok(7));
        }
    });
}

#[test]
fn stats_counters_move_as_expected() {
    const TASKS: u64 = 100;
    const YIELDS: u64 = 3;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let s0 = rt.stats();
        assert_eq!(s0.workers, workers);
        assert_eq!(
            (s0.spawned, s0.completed, s0.live, s0.live_stacks),
            (0, 0, 0, 0)
        );

        let hs: Vec<_> = (0..TASKS)
            .map(|_| {
                rt.spawn(|| {
                    for _ in 0..YIELDS {
                        thread::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        wait_until("the completions to be counted", || {
            rt.stats().completed == TASKS
        });
        let s1 = rt.stats();
        assert_eq!((s1.spawned, s1.live), (TASKS, 0));
        assert!(s1.yields >= TASKS * YIELDS, "{s1:?}");
        assert!(s1.resumes >= TASKS * (YIELDS + 1), "{s1:?}");

        // Parked green threads are live and hold a stack each.
        let (tx, rx) = chan::bounded::<()>(0);
        let parked: Vec<_> = (0..10)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(move || rx.recv().unwrap())
            })
            .collect();
        wait_blocked(&rt, "chan recv", 10);
        let s2 = rt.stats();
        assert_eq!((s2.spawned, s2.live), (TASKS + 10, 10));
        assert_eq!(s2.live_stacks, 10, "{s2:?}");
        assert!(s2.mapped_stacks >= s2.live_stacks + s2.pooled_stacks);
        for _ in 0..10 {
            tx.send(()).unwrap();
        }
        for h in parked {
            h.join().unwrap();
        }
        wait_until("all stacks back", || {
            let s = rt.stats();
            s.live == 0 && s.live_stacks == 0
        });
        // Idle now: the workers park their OS threads.
        wait_until("an idle worker to park", || rt.stats().parks > 0);
        let s3 = rt.stats();
        assert_eq!(s3.completed, TASKS + 10);
        assert!(s3.resumes >= s2.resumes && s3.steals >= s1.steals);
    });
}

/// Spawns a named green thread on the caller's runtime (from a green
/// thread: its own).
fn named<F: FnOnce() + Send + 'static>(name: &str, f: F) -> JoinHandle<()> {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn")
}

/// A runtime whose deadlock report fires after `grace` instead of 1 s.
fn with_grace(workers: usize, grace: Duration) -> Runtime {
    Builder::new()
        .workers(workers)
        .deadlock_grace(Some(grace))
        .build()
        .unwrap()
}

/// Runs `f` with `block_on`; the deadlock report it panicked with.
fn deadlock_report<F: FnOnce() + Send + 'static>(rt: &Runtime, f: F) -> String {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(f)));
    panic_message(&*outcome.expect_err("block_on must report the deadlock"))
}

#[track_caller]
fn assert_lists(report: &str, name: &str, reason: &str) {
    let entry = format!("'{name}' [{reason}], blocked at {}:", file!());
    assert!(report.contains(&entry), "no {entry:?} in:\n{report}");
}

#[test]
fn deadlock_report_on_two_green_threads_waiting_for_each_other() {
    for_each_workers(|workers| {
        let rt = with_grace(workers, Duration::from_millis(100));
        let report = deadlock_report(&rt, move || {
            let (tx1, rx1) = chan::bounded::<u32>(0);
            let (tx2, rx2) = chan::bounded::<u32>(0);
            let a = named("ping", move || {
                let v = rx1.recv().unwrap();
                tx2.send(v).unwrap();
            });
            let b = named("pong", move || {
                let v = rx2.recv().unwrap();
                tx1.send(v).unwrap();
            });
            a.join().unwrap();
            b.join().unwrap();
        });
        assert!(
            report.starts_with("all green threads are asleep - deadlock!"),
            "{report}"
        );
        assert_lists(&report, "ping", "chan recv");
        assert_lists(&report, "pong", "chan recv");
        assert!(
            report.contains("[JoinHandle::join]"),
            "the main green thread: {report}"
        );
        // Still parked: shutdown lists (and unwinds) all three.
        let leaks = rt.shutdown();
        assert_eq!(leaks.leaked().len(), 3, "{leaks}");
    });
}

#[test]
fn deadlock_report_on_a_mutex_lock_order_inversion() {
    for_each_workers(|workers| {
        let rt = with_grace(workers, Duration::from_millis(100));
        let report = deadlock_report(&rt, move || {
            let (m1, m2) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
            let both_hold_one = Arc::new(Barrier::new(2));
            let (a1, a2, ab) = (m1.clone(), m2.clone(), both_hold_one.clone());
            let a = named("first-m1-then-m2", move || {
                let _g1 = a1.lock().unwrap();
                ab.wait();
                let _g2 = a2.lock().unwrap();
            });
            let b = named("first-m2-then-m1", move || {
                let _g2 = m2.lock().unwrap();
                both_hold_one.wait();
                let _g1 = m1.lock().unwrap();
            });
            a.join().unwrap();
            b.join().unwrap();
        });
        assert!(
            report.starts_with("all green threads are asleep - deadlock!"),
            "{report}"
        );
        assert_lists(&report, "first-m1-then-m2", "Mutex::lock");
        assert_lists(&report, "first-m2-then-m1", "Mutex::lock");
        // Shutdown unwinds them; their guards are dropped, nothing hangs.
        assert_eq!(rt.shutdown().leaked().len(), 3);
    });
}

/// Two spawns in a row both pass the stack cap's check (neither has its
/// stack yet); the second then finds none and waits for one, while the
/// first waits for it on a channel: a deadlock that used to hang with no
/// report (the unstarted green thread did not count as asleep). The
/// report says what it waits for and names the cap.
#[test]
fn deadlock_report_when_a_green_thread_waits_for_a_stack() {
    watchdog(|| {
        let rt = Runtime::builder()
            .workers(1)
            .max_stacks(2)
            .deadlock_grace(Some(Duration::from_millis(100)))
            .build()
            .unwrap();
        let report = deadlock_report(&rt, || {
            let (tx, rx) = chan::bounded::<u32>(0);
            let receiver = thread::spawn(move || rx.recv().unwrap());
            let sender = thread::spawn(move || tx.send(1).unwrap());
            sender.join().unwrap();
            receiver.join().unwrap();
        });
        assert!(
            report.starts_with("all green threads are asleep - deadlock!")
                && report.contains("[not started]")
                && report.contains("wait for a stack")
                && report.contains("max_stacks"),
            "{report}"
        );
    });
}

/// A stopped `after_func` no longer counts as a pending timer: main waits
/// for what only it would have sent, and that is reported.
#[test]
fn a_stopped_after_func_does_not_hide_a_deadlock() {
    watchdog(|| {
        let rt = with_grace(1, Duration::from_millis(100));
        let report = deadlock_report(&rt, || {
            let (tx, rx) = chan::bounded::<u32>(1);
            let timer = chan::after_func(Duration::from_secs(3600), move || tx.send(7).unwrap());
            assert!(timer.stop());
            let _ = rx.recv();
        });
        assert!(
            report.starts_with("all green threads are asleep - deadlock!")
                && report.contains(&format!("[chan recv], blocked at {}:", file!())),
            "{report}"
        );
    });
}

/// Live programs are never reported, even when everything looks asleep
/// for longer than the grace: a pending timer (also an `after_func`'s), an OS thread that sends now
/// and then (each gap shorter than the grace, all together longer), a
/// green thread that computes without parking for longer than the grace.
/// The worker counts run side by side (each on its own runtime) to keep
/// the test short.
#[test]
fn no_deadlock_report_on_live_programs() {
    watchdog(|| {
        std::thread::scope(|s| {
            for workers in WORKER_COUNTS {
                s.spawn(move || live_programs_are_not_reported(workers));
            }
        });
    });
}

fn live_programs_are_not_reported(workers: usize) {
    const GRACE: Duration = Duration::from_millis(150);
    let rt = with_grace(workers, GRACE);
    // Timers pending: a long sleep and a long receive timeout.
    rt.block_on(|| {
        let (_keep, rx) = chan::bounded::<u8>(0);
        let waiter = grove::go(move || rx.recv_timeout(2 * GRACE).is_err());
        thread::sleep(GRACE * 3 / 2);
        assert!(waiter.join().unwrap());
    });
    // An `after_func` armed (then stopped and armed again) that will send
    // what main waits for: Go's runtime counts such a timer too.
    let sent = rt.block_on(|| {
        let (tx, rx) = chan::bounded::<u32>(1);
        let timer = chan::after_func(GRACE * 3, move || tx.send(7).unwrap());
        assert!(timer.stop());
        assert!(!timer.reset(GRACE * 3));
        rx.recv().unwrap()
    });
    assert_eq!(sent, 7, "{workers} worker(s)");
    // An OS thread the runtime cannot see, sending now and then.
    let (tx, rx) = chan::bounded::<u32>(0);
    let sender = std::thread::spawn(move || {
        for i in 0..6 {
            std::thread::sleep(GRACE / 4);
            tx.send(i).unwrap();
        }
    });
    let got = rt.block_on(move || rx.iter().sum::<u32>());
    assert_eq!(got, 15, "{workers} worker(s)");
    sender.join().unwrap();
    // CPU-bound for longer than the grace, while main waits on it.
    let spun = rt.block_on(|| {
        grove::go(|| {
            let t0 = Instant::now();
            let mut n = 0u64;
            while t0.elapsed() < GRACE * 3 / 2 {
                n = n.wrapping_add(1);
                std::hint::spin_loop();
            }
            n
        })
        .join()
        .unwrap()
    });
    assert!(spun > 0);
    assert!(rt.shutdown().is_clean());
}

/// With the default grace, a green thread that waits longer than a second
/// for an OS thread's send (an OS thread the runtime cannot see, busy
/// with slow work first) is a slow program, not a deadlock: `block_on`
/// returns the value. (A one-second grace reported it.)
#[test]
fn a_slow_os_thread_is_not_taken_for_a_deadlock() {
    watchdog(|| {
        let rt = runtime(1);
        let (tx, rx) = chan::bounded::<u32>(0);
        let slow = std::thread::spawn(move || {
            // The OS thread's slow work: the subject, not synchronisation.
            std::thread::sleep(Duration::from_millis(1500));
            tx.send(7).unwrap();
        });
        assert_eq!(rt.block_on(move || rx.recv().unwrap()), 7);
        slow.join().unwrap();
        assert!(grove::runtime::DEFAULT_DEADLOCK_GRACE >= Duration::from_secs(10));
    });
}

/// Turns a leak into a test failure: the pattern for a test suite.
#[track_caller]
fn assert_no_leaks(report: ShutdownReport) {
    assert!(report.is_clean(), "{report}");
}

#[test]
fn shutdown_report_is_clean_for_a_clean_program() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let total = rt.block_on(|| {
            let wg = WaitGroup::new();
            let sum = Arc::new(AtomicUsize::new(0));
            for i in 0..100 {
                wg.add(1);
                let (wg, sum) = (wg.clone(), sum.clone());
                grove::go(move || {
                    sum.fetch_add(i, Ordering::SeqCst);
                    wg.done();
                });
            }
            wg.wait();
            sum.load(Ordering::SeqCst)
        });
        assert_eq!(total, 4950);
        // Detached green threads that finished on their own are not leaks.
        wait_until("the detached green threads to end", || rt.stats().live == 0);
        let report = rt.shutdown();
        assert!(report.leaked().is_empty() && report.by_spawn_site().is_empty());
        assert_eq!(
            report.to_string(),
            "grove: no green thread was left at shutdown"
        );
        assert_no_leaks(report);
    });
}

/// Leaked green threads, grouped by spawn site (most first), with what they
/// were blocked on; their captured values are dropped by the unwinding.
#[test]
fn shutdown_report_groups_leaks_by_spawn_site() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, _rx) = chan::bounded::<u8>(0);
        let mut send_site = None;
        for _ in 0..5 {
            let (tx, c) = (tx.clone(), Counted(dropped.clone()));
            let (h, at) = spawn_named(&rt, "sender", move || {
                let _c = c;
                let _ = tx.send(1); // nobody receives: a leak
            });
            drop(h);
            send_site = Some(at);
        }
        let mutex = Arc::new(Mutex::new(0));
        let held = mutex.lock().unwrap();
        let mut lock_site = None;
        for _ in 0..2 {
            let (m, c) = (mutex.clone(), Counted(dropped.clone()));
            let (h, at) = spawn_named(&rt, "locker", move || {
                let _c = c;
                *m.lock().unwrap() += 1;
            });
            drop(h);
            lock_site = Some(at);
        }
        wait_blocked(&rt, "chan send", 5);
        wait_blocked(&rt, "Mutex::lock", 2);

        let report = rt.shutdown();
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            7,
            "unwinding dropped their captures"
        );
        assert!(!report.is_clean());
        assert_eq!(report.leaked().len(), 7);
        assert_eq!(
            report.by_spawn_site(),
            [(send_site.unwrap(), 5), (lock_site.unwrap(), 2)]
        );
        let text = report.to_string();
        assert!(
            text.contains("7 green thread(s) still live at shutdown"),
            "{text}"
        );
        assert!(
            text.contains(&format!("5 spawned at {}", send_site.unwrap())),
            "{text}"
        );
        assert!(text.contains("\"chan send\""), "{text}");
        assert!(
            text.contains(&format!("2 spawned at {}", lock_site.unwrap())),
            "{text}"
        );
        assert!(text.contains("\"Mutex::lock\""), "{text}");
        let failure = panic::catch_unwind(AssertUnwindSafe(|| assert_no_leaks(report)));
        let msg = panic_message(&*failure.expect_err("a leak fails the test"));
        assert!(msg.contains("still live at shutdown"), "{msg}");

        // The unwound lockers left the mutex in order.
        drop(held);
        *mutex.lock().unwrap() += 10;
        assert_eq!(*mutex.lock().unwrap(), 10);
    });
}
