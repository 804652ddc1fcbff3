//! Shutdown cases that broke grove's safety promise (issue "soundness and
//! shutdown: seven holes"), each reproduced from safe code: a scope owner
//! unwound before a scoped green thread that swallowed its unwind, a stale
//! timer dropping an output under a borrow of its worker's queues, a drop
//! that spun forever on an unjoined scoped handle, a destructor that blocks
//! while unwinding, and a drop that looped once a worker was abandoned.
//!
//! Those that can crash, abort or leave a stuck OS thread behind run in a
//! child process (`run_in_child`); the rest run here, bounded by the
//! watchdog.

#[path = "common/base.rs"]
mod base;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use base::{
    blocked_on, for_each_workers, in_child, run_in_child, runtime, wait_blocked, wait_until,
    watchdog, watchdog_for,
};
use grove::chan;
use grove::thread;
use grove::Runtime;

/// Runs the named test's body in a child process, where a crash or a
/// stuck OS thread left behind harms that test alone: true in the child
/// (run the body), false in the parent, which checked the child passed.
fn body_runs_here(name: &str) -> bool {
    if in_child(name) {
        return true;
    }
    let (passed, output) = run_in_child(name);
    assert!(passed, "the child failed:\n{output}");
    false
}

/// Keeps the calling green thread on its worker, without yielding, for
/// `d`: long enough for an idle worker to steal what it just spawned.
fn spin_for(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Spawns a green thread on `rt` that holds `guard` and parks for good (on
/// a channel nobody sends on), and returns once it holds it: `rt`'s
/// shutdown unwinds it, and `guard`'s destructor runs in that unwind.
fn park_holding<G: Send + 'static>(rt: &Runtime, guard: G) {
    let (started_tx, started_rx) = mpsc::channel();
    let _detached = rt.spawn(move || {
        let _guard = guard;
        let (_keep, park) = chan::bounded::<()>(0);
        started_tx.send(()).unwrap();
        let _ = park.recv();
    });
    started_rx.recv().unwrap();
}

fn os_thread() -> std::thread::ThreadId {
    std::thread::current().id()
}

/// What a scoped green thread borrows of its owner: data that records its
/// own drop in a flag the scoped thread holds separately, so that a
/// scoped thread can tell, without touching freed memory, that it outlived
/// what it borrows.
struct OwnerData {
    values: Vec<u64>,
    dropped: Arc<AtomicBool>,
}

impl OwnerData {
    fn new() -> (OwnerData, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        let data = OwnerData {
            values: (0..1024).collect(),
            dropped: dropped.clone(),
        };
        (data, dropped)
    }

    /// Reads the data, unless it is gone (then reading it would be the
    /// use-after-free itself): `Err` says which.
    fn read(&self, dropped: &AtomicBool) -> Result<(), String> {
        if dropped.load(Ordering::SeqCst) {
            return Err("the owner's data was dropped while a scoped thread could use it".into());
        }
        let sum: u64 = std::hint::black_box(&self.values).iter().sum();
        if sum == 1023 * 1024 / 2 {
            Ok(())
        } else {
            Err(format!("the owner's data reads wrong: {sum}"))
        }
    }
}

impl Drop for OwnerData {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Case 1, first shape: a scoped green thread catches its runtime's forced
/// unwind and goes on, reading its owner's data. Its owner, on another
/// worker, used to be unwound (and its stack unmapped) at once, since a
/// worker had been given up: the scoped thread then read freed memory.
/// The owner must be leaked instead, its data intact for as long as the
/// scoped thread runs.
#[test]
fn an_owner_outlives_a_scoped_thread_that_swallowed_the_unwind() {
    const NAME: &str = "an_owner_outlives_a_scoped_thread_that_swallowed_the_unwind";
    if !body_runs_here(NAME) {
        return;
    }
    watchdog_for(Duration::from_secs(120), || {
        let mut apart = 0;
        for round in 0..8 {
            let rt = runtime(2);
            let (placed_tx, placed_rx) = mpsc::channel::<bool>();
            let (report_tx, report_rx) = mpsc::channel::<Result<usize, String>>();
            // Set once the shutdown has returned: the scoped thread goes on
            // until then (bounded), so it is still running when reported.
            let stop = Arc::new(AtomicBool::new(false));
            let stop2 = stop.clone();
            rt.spawn(move || {
                let (data, dropped) = OwnerData::new();
                let owner = os_thread();
                // Placed on the other worker: under valgrind a steal within
                // the owner's spin is rare.
                let other = 1 - thread::current_worker().expect("a green thread");
                thread::scope(|s| {
                    let scoped = thread::Builder::new().on_worker(other).spawn_scoped(s, || {
                        placed_tx.send(os_thread() != owner).unwrap();
                        let mut caught = 0;
                        let give_up = Instant::now() + Duration::from_secs(20);
                        while !stop2.load(Ordering::SeqCst) && Instant::now() < give_up {
                            let slept = panic::catch_unwind(AssertUnwindSafe(|| {
                                thread::sleep(Duration::from_millis(2))
                            }));
                            caught += usize::from(slept.is_err());
                            if let Err(e) = data.read(&dropped) {
                                let _ = report_tx.send(Err(e));
                                return;
                            }
                        }
                        report_tx.send(Ok(caught)).unwrap();
                    });
                    drop(scoped.expect("worker 1 exists"));
                    spin_for(Duration::from_millis(5));
                });
            });
            let split = placed_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the scoped thread started");
            apart += usize::from(split);
            let dropped = Instant::now();
            let report = rt.shutdown();
            assert!(
                dropped.elapsed() < Duration::from_secs(10),
                "round {round}: shutdown took {:?}",
                dropped.elapsed()
            );
            assert!(
                !report.not_unwound().is_empty(),
                "round {round}: the scoped thread and its owner are reported leaked"
            );
            stop.store(true, Ordering::SeqCst);
            let read = report_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the scoped thread reports");
            assert_eq!(read, Ok(1), "round {round}: it caught one forced unwind");
        }
        assert!(apart > 0, "the owner and its scoped thread never ran apart");
    });
}

/// Reads its owner's data when dropped, and says what it found.
struct ChecksOwner<'a> {
    data: &'a OwnerData,
    dropped: Arc<AtomicBool>,
    report: mpsc::Sender<Result<(), String>>,
}

impl Drop for ChecksOwner<'_> {
    fn drop(&mut self) {
        let _ = self.report.send(self.data.read(&self.dropped));
    }
}

/// Case 1, second shape: an unrelated green thread swallows its runtime's
/// unwind on worker 1, where a scoped green thread is parked with a
/// destructor that reads its owner's data; the owner is on worker 0. The
/// owner used to be unwound first; the scoped thread's destructor ran
/// once the swallower let its worker go, reading freed memory. Now the
/// owner is never unwound while the scoped thread may run.
#[test]
fn an_unrelated_swallower_does_not_let_an_owner_go_first() {
    const NAME: &str = "an_unrelated_swallower_does_not_let_an_owner_go_first";
    if !body_runs_here(NAME) {
        return;
    }
    watchdog_for(Duration::from_secs(120), || {
        let mut apart = 0;
        for round in 0..8 {
            let rt = runtime(2);
            let (placed_tx, placed_rx) = mpsc::channel::<bool>();
            let (report_tx, report_rx) = mpsc::channel::<Result<(), String>>();
            let (swallower_done_tx, swallower_done_rx) = mpsc::channel::<()>();
            let (_never_tx, never_rx) = chan::bounded::<()>(0);
            rt.spawn(move || {
                let (data, dropped) = OwnerData::new();
                let owner = os_thread();
                let other = 1 - thread::current_worker().expect("a green thread");
                thread::scope(|s| {
                    let data = &data;
                    let scoped =
                        thread::Builder::new()
                            .on_worker(other)
                            .spawn_scoped(s, move || {
                                let _check = ChecksOwner {
                                    data,
                                    dropped,
                                    report: report_tx,
                                };
                                let scoped = os_thread();
                                // Spawned after this one, the swallower is woken
                                // first at shutdown (see the abandoned-worker test
                                // below), and takes this worker.
                                let here = thread::current_worker().expect("a green thread");
                                let swallower =
                                    thread::Builder::new().on_worker(here).spawn(move || {
                                        placed_tx
                                            .send(scoped != owner && os_thread() == scoped)
                                            .unwrap();
                                        for _ in 0..40 {
                                            let _ = panic::catch_unwind(|| {
                                                thread::sleep(Duration::from_millis(2))
                                            });
                                        }
                                        swallower_done_tx.send(()).unwrap();
                                    });
                                drop(swallower.expect("this worker exists"));
                                let _ = never_rx.recv();
                            });
                    drop(scoped.expect("worker 1 exists"));
                    spin_for(Duration::from_millis(5));
                });
            });
            let split = placed_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the swallower started");
            apart += usize::from(split);
            let dropped = Instant::now();
            drop(rt);
            assert!(
                dropped.elapsed() < Duration::from_secs(10),
                "round {round}: drop took {:?}",
                dropped.elapsed()
            );
            swallower_done_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the swallower ends");
            // Unwound before the swallower took its worker, or never: either
            // way the scoped thread never outlived its owner's data.
            if let Ok(found) = report_rx.recv_timeout(Duration::from_millis(200)) {
                assert_eq!(found, Ok(()), "round {round}");
            }
        }
        assert!(apart > 0, "the owner and the swallower never ran apart");
    });
}

/// Case 5: a detached green thread returns the last `Sender` of a channel
/// on which two green threads of the same worker wait; it was woken before
/// its `recv_timeout` expired, so its stale timer held the last reference
/// to it. When the timer came due, the worker dropped the entry (and with
/// it the output, closing the channel and waking both receivers) while it
/// held its queues: "already borrowed", and an abort.
#[test]
fn a_stale_timer_drops_an_output_outside_the_workers_borrows() {
    const NAME: &str = "a_stale_timer_drops_an_output_outside_the_workers_borrows";
    if !body_runs_here(NAME) {
        return;
    }
    watchdog(|| {
        for round in 0..3 {
            let rt = runtime(1);
            let closed = rt.block_on(|| {
                let (tx, rx) = chan::unbounded::<u32>();
                let receivers: Vec<_> = (0..2)
                    .map(|_| {
                        let rx = rx.clone();
                        thread::spawn(move || rx.recv().is_err())
                    })
                    .collect();
                drop(rx);
                let (wake_tx, wake_rx) = chan::bounded::<()>(1);
                drop(thread::spawn(move || {
                    let _ = wake_rx.recv_timeout(Duration::from_millis(100));
                    tx // the output: the channel's last sender
                }));
                // One worker: the receivers and the timed receiver run and
                // park before this green thread comes back from its yields.
                for _ in 0..4 {
                    thread::yield_now();
                }
                wake_tx.send(()).unwrap();
                receivers
                    .into_iter()
                    .map(|r| r.join().unwrap())
                    .collect::<Vec<bool>>()
            });
            assert_eq!(closed, [true, true], "round {round}");
        }
    });
}

/// Case 6: a scope's owner parked while it holds the unjoined handle of a
/// finished scoped green thread whose result has a destructor. The owner
/// waited for that result's packet, which only the owner's own unwind
/// drops: dropping the runtime spun forever.
#[test]
fn an_owner_holding_a_finished_handle_with_a_destructor_is_unwound() {
    for_each_workers(|n| {
        let rt = runtime(n);
        let (_never_tx, never_rx) = chan::bounded::<()>(0);
        let unwound = Arc::new(AtomicBool::new(false));
        let flag = unwound.clone();
        rt.spawn(move || {
            struct Flag(Arc<AtomicBool>);
            impl Drop for Flag {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _flag = Flag(flag);
            thread::scope(|s| {
                let h = s.spawn(|| String::from("x"));
                while !h.is_finished() {
                    thread::yield_now();
                }
                let _ = never_rx.recv();
                drop(h);
            });
        });
        wait_until("the owner parks", || {
            blocked_on(&rt, "chan recv").len() == 1
        });
        let dropped = Instant::now();
        drop(rt);
        assert!(unwound.load(Ordering::SeqCst), "{n} workers: not unwound");
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "{n} workers: drop took {:?}",
            dropped.elapsed()
        );
    });
}

/// Blocks on its channel when dropped.
struct BlocksInDrop(chan::Receiver<()>);

impl Drop for BlocksInDrop {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// Case 7: a destructor blocks while its green thread unwinds a panic, and
/// what it waits for is a green thread of the same worker. The green thread
/// must not switch away while panicking, so its worker's OS thread blocks:
/// the stall report says so plainly, and dropping the runtime still returns
/// (the worker is given up and reported).
#[test]
fn a_destructor_blocking_while_unwinding_is_reported_and_drop_returns() {
    const NAME: &str = "a_destructor_blocking_while_unwinding_is_reported_and_drop_returns";
    if !in_child(NAME) {
        let (passed, output) = run_in_child(NAME);
        assert!(passed, "the child failed:\n{output}");
        assert!(
            output.contains("is blocked while unwinding a panic: worker 0 cannot run its other"),
            "no plain stall report:\n{output}"
        );
        return;
    }
    watchdog(|| {
        let rt = Runtime::builder()
            .workers(1)
            .stall_warning(Some(Duration::from_millis(50)))
            .build()
            .unwrap();
        let (tx, rx) = chan::bounded::<()>(0);
        let panicker = rt.spawn(move || {
            // Holds the sender, parked on the same worker.
            let holder = thread::spawn(move || {
                let _tx = tx;
                loop {
                    thread::park();
                }
            });
            thread::yield_now();
            let _blocks = BlocksInDrop(rx);
            drop(holder);
            panic::panic_any("boom");
        });
        wait_until("the stall is reported", || {
            rt.tasks().iter().any(|t| t.stalling_worker_for.is_some())
        });
        assert!(!panicker.is_finished());
        let dropped = Instant::now();
        let report = rt.shutdown();
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            dropped.elapsed()
        );
        assert_eq!(report.not_unwound().len(), 2, "{report}");
    });
}

/// Counts its drop.
struct Counts(Arc<AtomicUsize>);

impl Drop for Counts {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A green thread catches its runtime's forced unwind and parks again, in
/// a loop, while other green threads are parked on its worker: once it
/// holds the worker, they can never run. Dropping the runtime used to loop
/// forever waiting for them; now it returns, and each of them was either
/// unwound before the swallower took the worker (its destructor ran) or is
/// reported as not unwound.
#[test]
fn dropping_a_runtime_with_an_abandoned_worker_returns() {
    const NAME: &str = "dropping_a_runtime_with_an_abandoned_worker_returns";
    if !body_runs_here(NAME) {
        return;
    }
    watchdog(|| {
        let mut stuck_behind = 0;
        for round in 0..10 {
            let rt = runtime(1);
            let dropped = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                let guard = Counts(dropped.clone());
                rt.spawn(move || {
                    let _guard = guard;
                    loop {
                        thread::park();
                    }
                });
            }
            // Spawned last, it is usually woken first at shutdown (the task
            // records are walked in address order, and a fresh slab hands
            // out blocks from the top), so the others are stuck behind it.
            rt.spawn(move || loop {
                let _ = panic::catch_unwind(thread::park);
            });
            wait_until("all four park", || blocked_on(&rt, "park").len() == 4);
            let report = rt.shutdown();
            assert_eq!(report.leaked().len(), 4, "{report}");
            let others_left = report.not_unwound().len() - 1;
            assert_eq!(
                dropped.load(Ordering::SeqCst) + others_left,
                3,
                "round {round}: each was unwound or reported\n{report}"
            );
            stuck_behind += others_left;
        }
        assert!(
            stuck_behind > 0,
            "no green thread was ever stuck behind the swallower: the test missed its case"
        );
    });
}

/// The same with a green thread that swallows the unwind and then yields
/// in a loop (it never parks): it used to spin its worker forever.
#[test]
fn a_green_thread_that_swallows_the_unwind_and_yields_is_abandoned() {
    const NAME: &str = "a_green_thread_that_swallows_the_unwind_and_yields_is_abandoned";
    if !body_runs_here(NAME) {
        return;
    }
    watchdog(|| {
        let rt = runtime(2);
        let (started_tx, started_rx) = mpsc::channel();
        rt.spawn(move || {
            started_tx.send(()).unwrap();
            if panic::catch_unwind(thread::park).is_err() {
                loop {
                    thread::yield_now();
                }
            }
        });
        started_rx.recv().unwrap();
        wait_until("it parks", || blocked_on(&rt, "park").len() == 1);
        let report = rt.shutdown();
        assert_eq!(report.not_unwound().len(), 1, "{report}");
    });
}

/// At its drop, sleeps past the shutdown's grace for a stuck unwind, then
/// spawns green threads (a detached one, a joined one, a scoped one) and
/// records that it finished.
struct SleepsThenSpawns {
    sleep: Duration,
    finished: Arc<AtomicBool>,
    joined_err: Arc<AtomicBool>,
}

impl Drop for SleepsThenSpawns {
    fn drop(&mut self) {
        thread::sleep(self.sleep);
        let _detached = grove::go(|| ());
        let joined = grove::go(|| 5).join();
        self.joined_err.store(joined.is_err(), Ordering::SeqCst);
        let mut borrowed = 0;
        thread::scope(|s| {
            s.spawn(|| borrowed += 1);
        });
        // Dropped unrun or run: the scope returned either way.
        assert!(borrowed <= 1);
        self.finished.store(true, Ordering::SeqCst);
    }
}

/// A destructor run by the forced unwind that sleeps longer than the
/// grace for a stuck unwind (250 ms) is waited for, not given up: its
/// sleep ends by itself. It then spawns: each spawn is dropped unrun (a
/// join returns `Err`), where a refused spawn used to panic inside the
/// unwinding destructor and abort the process (the worker had been given
/// up and the runtime had stopped). Nothing leaks; the destructor has
/// finished when `drop` returns.
#[test]
fn a_destructor_that_sleeps_then_spawns_during_shutdown_finishes() {
    const NAME: &str = "a_destructor_that_sleeps_then_spawns_during_shutdown_finishes";
    if !body_runs_here(NAME) {
        return;
    }
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            let finished = Arc::new(AtomicBool::new(false));
            let joined_err = Arc::new(AtomicBool::new(false));
            let slow = SleepsThenSpawns {
                sleep: Duration::from_millis(600),
                finished: finished.clone(),
                joined_err: joined_err.clone(),
            };
            park_holding(&rt, slow);
            let report = rt.shutdown();
            assert!(
                finished.load(Ordering::SeqCst),
                "{workers} worker(s): {report}"
            );
            assert!(joined_err.load(Ordering::SeqCst), "{workers} worker(s)");
            assert!(
                report.not_unwound().is_empty(),
                "{workers} worker(s): {report}"
            );
        }
    });
}

/// Two destructors that wait on each other with timeouts, on one worker:
/// the first blocks the worker's OS thread (it may not switch away while
/// unwinding) until its timeout; then the second runs. Both run, nothing
/// leaks (both used to be given up after 250 ms).
#[test]
fn destructors_with_timed_waits_on_each_other_both_run() {
    const NAME: &str = "destructors_with_timed_waits_on_each_other_both_run";
    if !body_runs_here(NAME) {
        return;
    }
    struct Receives(chan::Receiver<u8>, Arc<AtomicUsize>);
    impl Drop for Receives {
        fn drop(&mut self) {
            let _ = self.0.recv_timeout(Duration::from_millis(400));
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    struct Sends(chan::Sender<u8>, Arc<AtomicUsize>);
    impl Drop for Sends {
        fn drop(&mut self) {
            let _ = self.0.send_timeout(7, Duration::from_millis(400));
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog(|| {
        let rt = runtime(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = chan::bounded::<u8>(0);
        park_holding(&rt, Receives(rx, ran.clone()));
        park_holding(&rt, Sends(tx, ran.clone()));
        let report = rt.shutdown();
        assert_eq!(ran.load(Ordering::SeqCst), 2, "{report}");
        assert!(report.not_unwound().is_empty(), "{report}");
    });
}

/// A destructor run by the forced unwind that uses an `ErrGroup`: the
/// group's task, spawned while the runtime shuts down, is dropped unrun,
/// and that is not a panic of the task. `wait` returns `Ok(())`; it used to
/// report "a green thread of the group panicked" (the unrun task was
/// dropped on the unwinding thread) and, panicking inside the destructor,
/// abort the process.
#[test]
fn an_errgroup_in_a_shutdown_destructor_does_not_report_a_panic() {
    const NAME: &str = "an_errgroup_in_a_shutdown_destructor_does_not_report_a_panic";
    if !body_runs_here(NAME) {
        return;
    }
    struct WaitsOnAGroup(mpsc::Sender<Result<(), String>>);
    impl Drop for WaitsOnAGroup {
        fn drop(&mut self) {
            let group = grove::sync::ErrGroup::<String>::new();
            group.go(|| Err("the task ran, which shutdown should not allow".to_string()));
            let _ = self.0.send(group.wait());
        }
    }
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            let (result_tx, result_rx) = mpsc::channel();
            park_holding(&rt, WaitsOnAGroup(result_tx));
            let report = rt.shutdown();
            assert_eq!(result_rx.try_recv(), Ok(Ok(())), "{workers} worker(s)");
            assert!(
                report.not_unwound().is_empty(),
                "{workers} worker(s): {report}"
            );
        }
    });
}

/// An `after_func` whose runtime is gone, set off by a destructor that
/// runs while *another* runtime shuts down: its runtime refuses, the
/// destructor's runtime drops the spawn unrun, so it runs on the global
/// runtime. Both kinds (a context's and a timer's); the context's used to
/// be dropped without running.
#[test]
fn an_after_func_set_off_during_another_runtime_s_shutdown_runs() {
    const NAME: &str = "an_after_func_set_off_during_another_runtime_s_shutdown_runs";
    if !body_runs_here(NAME) {
        return;
    }
    struct CancelsOnDrop(grove::context::CancelHandle);
    impl Drop for CancelsOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    struct ResetsOnDrop(chan::Timer);
    impl Drop for ResetsOnDrop {
        fn drop(&mut self) {
            self.0.reset(Duration::ZERO);
        }
    }
    watchdog(|| {
        let (ran_tx, ran_rx) = mpsc::channel::<&'static str>();
        let owner = runtime(1);
        let (ctx, cancel) = grove::context::Context::background().with_cancel();
        let (ctx_ran, timer_ran) = (ran_tx.clone(), ran_tx);
        let (_handle, timer) = owner.block_on(move || {
            let handle = grove::context::after_func(&ctx, move || {
                ctx_ran.send("context").unwrap();
            });
            let timer = chan::after_func(Duration::from_secs(3600), move || {
                timer_ran.send("timer").unwrap();
            });
            (handle, timer)
        });
        drop(owner);

        let other = runtime(1);
        park_holding(&other, (CancelsOnDrop(cancel), ResetsOnDrop(timer)));
        let report = other.shutdown();
        assert!(report.not_unwound().is_empty(), "{report}");
        let mut ran: Vec<&str> = (0..2)
            .map(|_| {
                ran_rx
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or("lost")
            })
            .collect();
        ran.sort();
        assert_eq!(ran, ["context", "timer"]);
    });
}

/// Destructors run by the forced unwind that each make a call on the
/// blocking pool, queued behind a long call holding its only thread: each
/// waits its turn, however long the queue (the caller stays parked until
/// its call returns, also at shutdown). A call that returns is progress:
/// the moment between its return and its caller waking (no call in
/// flight, still blocked) used to look like a destructor stuck for good
/// after the long call's quiet 300 ms, and its worker was abandoned, the
/// rest leaked (1 run in 28 under load).
#[test]
fn destructors_queued_on_a_one_thread_blocking_pool_all_run() {
    const NAME: &str = "destructors_queued_on_a_one_thread_blocking_pool_all_run";
    if !body_runs_here(NAME) {
        return;
    }
    struct Flushes(Arc<AtomicUsize>);
    impl Drop for Flushes {
        fn drop(&mut self) {
            let mut flushed = false;
            grove::blocking(|| {
                std::thread::sleep(Duration::from_millis(30));
                flushed = true;
            });
            if flushed {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    watchdog(|| {
        let rt = Runtime::builder()
            .workers(2)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let flushed = Arc::new(AtomicUsize::new(0));
        for _ in 0..6 {
            park_holding(&rt, Flushes(flushed.clone()));
        }
        let (long_tx, long_rx) = mpsc::channel();
        let _long = rt.spawn(move || {
            grove::blocking(|| {
                long_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            })
        });
        long_rx.recv().unwrap();
        let report = rt.shutdown();
        assert_eq!(flushed.load(Ordering::SeqCst), 6, "{report}");
        assert!(report.not_unwound().is_empty(), "{report}");
    });
}

/// A select parked on many arms is unwound by its runtime's drop, and a
/// peer acts on one of its arms while the others are being unregistered:
/// the unwound select must be decided first, so that the peer cannot
/// choose it. Here the peer frees the one slot of a full channel that the
/// select has a send arm on; granted to the gone select, the slot stayed
/// reserved for good (`len() == 0`, yet every send `Full`), and a value
/// handed to a receive arm the same way was dropped under the channel's
/// lock. The 2,000 other arms keep the window open: the peer watches the
/// first of them to see the unregistering start.
#[test]
fn a_select_being_unwound_cannot_be_chosen() {
    watchdog_for(Duration::from_secs(120), || {
        for trial in 0..20 {
            let rt = runtime(1);
            let (tx, rx) = chan::bounded::<u64>(1);
            tx.send(1).unwrap(); // full
            let fillers: Vec<_> = (0..2_000).map(|_| chan::bounded::<u8>(0)).collect();
            let filler_rx: Vec<chan::Receiver<u8>> =
                fillers.iter().map(|(_, r)| r.clone()).collect();
            let tx_g = tx.clone();
            let _parked = rt.spawn(move || {
                let mut sel = chan::Select::new_biased();
                for r in &filler_rx {
                    sel.recv(r);
                }
                sel.send(&tx_g);
                let op = sel.select();
                unreachable!("nothing is sent to the fillers: {}", op.index());
            });
            wait_blocked(&rt, "select", 1);
            let first_filler = fillers[0].0.clone();
            let rx2 = rx.clone();
            let peer = std::thread::spawn(move || {
                let mut sel = chan::Select::new();
                sel.send(&first_filler);
                // Ready while the parked select's first arm is registered.
                while sel.try_ready().is_ok() {
                    std::hint::spin_loop();
                }
                rx2.try_recv()
            });
            drop(rt);
            assert_eq!(peer.join().unwrap(), Ok(1), "trial {trial}");
            assert_eq!(rx.len(), 0, "trial {trial}");
            assert_eq!(
                tx.try_send(3),
                Ok(()),
                "trial {trial}: the freed slot must be free"
            );
            drop(fillers);
        }
    });
}

/// Set by the borrowed value's destructor (the owner's frame left).
static ENV_GONE: AtomicBool = AtomicBool::new(false);
/// Set by the test just before it drops the runtime.
static DROPPING: AtomicBool = AtomicBool::new(false);
/// Set by the scoped output's destructor once it runs.
static OUT_DROPPING: AtomicBool = AtomicBool::new(false);
/// Set by the scoped output's destructor if it saw the borrowed value gone.
static SAW_ENV_GONE: AtomicBool = AtomicBool::new(false);

/// A scoped green thread's output, with a destructor that borrows the
/// scope's owner's data, is dropped by the scoped thread itself (its
/// handle was dropped unjoined first) while the runtime is dropped. The
/// shutdown must not unwind the owner past its scope before that
/// destructor is done: it counted the slot as finished before dropping
/// it, so the owner was unwound and the borrowed data freed under the
/// running destructor (a segfault in 10 of 10 runs). In a child process,
/// as the failure is a crash.
#[test]
fn a_scoped_output_dropped_by_its_thread_outlives_no_borrow() {
    if !body_runs_here("a_scoped_output_dropped_by_its_thread_outlives_no_borrow") {
        return;
    }
    struct Env(Vec<u64>);
    impl Drop for Env {
        fn drop(&mut self) {
            ENV_GONE.store(true, Ordering::SeqCst);
        }
    }
    struct Out<'a>(&'a Env);
    impl Drop for Out<'_> {
        fn drop(&mut self) {
            OUT_DROPPING.store(true, Ordering::SeqCst);
            // Uses the borrow until the runtime's drop has had 200 ms to
            // unwind the owner, never parking.
            while !DROPPING.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                if ENV_GONE.load(Ordering::SeqCst) {
                    // (A panic here would only unwind the scoped thread.)
                    SAW_ENV_GONE.store(true, Ordering::SeqCst);
                    return;
                }
                std::hint::black_box(self.0 .0.iter().sum::<u64>());
            }
        }
    }
    watchdog(|| {
        let rt = runtime(2);
        let _owner = thread::Builder::new()
            .on_worker(0)
            .spawn_on(&rt, || {
                let env = Env(vec![1; 1024]);
                let env = &env;
                thread::scope(|s| {
                    let h = thread::Builder::new()
                        .on_worker(1)
                        .spawn_scoped(s, move || Out(env))
                        .unwrap();
                    drop(h); // the scoped thread drops its output itself
                });
            })
            .unwrap();
        wait_until("the output's destructor to run", || {
            OUT_DROPPING.load(Ordering::SeqCst)
        });
        DROPPING.store(true, Ordering::SeqCst);
        drop(rt);
        assert!(
            !SAW_ENV_GONE.load(Ordering::SeqCst),
            "the owner's data was dropped under a scoped output's destructor"
        );
        assert!(
            ENV_GONE.load(Ordering::SeqCst),
            "the owner was unwound in the end"
        );
    });
}

/// A scoped green thread's output whose destructor panics aborts the
/// process with a message, as std's scoped threads do: the scope could
/// never end otherwise (it hung for ever), whoever dropped the output.
/// In a child process; `by_thread`: the scoped thread drops its output
/// (its handle gone first), else the handle does.
fn scoped_output_panicking_on_drop(name: &str, by_thread: bool) {
    if !in_child(name) {
        let out = base::child_output(name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the child did not abort: {stderr}");
        assert!(
            stderr.contains("a scoped green thread's result panicked on drop; aborting"),
            "{stderr}"
        );
        return;
    }
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the output's destructor");
        }
    }
    watchdog(move || {
        let rt = runtime(2);
        rt.block_on(move || {
            thread::scope(|s| {
                let (go_tx, go_rx) = chan::bounded::<()>(0);
                let h = s.spawn(move || {
                    if by_thread {
                        go_rx.recv().unwrap(); // the handle is gone
                    }
                    Bomb
                });
                if by_thread {
                    drop(h);
                    go_tx.send(()).unwrap();
                } else {
                    while !h.is_finished() {
                        thread::yield_now();
                    }
                    drop(h);
                }
            });
        });
        unreachable!("aborted before the scope ended");
    });
}

#[test]
fn a_scoped_output_panicking_on_drop_by_its_handle_aborts() {
    scoped_output_panicking_on_drop(
        "a_scoped_output_panicking_on_drop_by_its_handle_aborts",
        false,
    );
}

#[test]
fn a_scoped_output_panicking_on_drop_by_its_thread_aborts() {
    scoped_output_panicking_on_drop(
        "a_scoped_output_panicking_on_drop_by_its_thread_aborts",
        true,
    );
}

/// A detached green thread's output is dropped in that green thread (or
/// by whoever drops its handle), never on the worker's OS thread that
/// frees the task: a destructor taking a grove lock held by another green
/// thread of the same worker parks, as it would anywhere in the green
/// thread. It blocked the worker's OS thread, and the holder, queued on
/// that worker, never ran again (a hang, and a runtime drop that never
/// returned). In a child process, as the failure leaves a stuck thread.
#[test]
fn a_detached_green_threads_output_is_dropped_in_a_green_thread() {
    if !body_runs_here("a_detached_green_threads_output_is_dropped_in_a_green_thread") {
        return;
    }
    static IN_GREEN: AtomicBool = AtomicBool::new(false);
    static DROPPED: AtomicBool = AtomicBool::new(false);
    struct Out(Arc<grove::sync::Mutex<u32>>, chan::Sender<()>);
    impl Drop for Out {
        fn drop(&mut self) {
            IN_GREEN.store(thread::current_worker().is_some(), Ordering::SeqCst);
            self.1.send(()).unwrap(); // about to wait for the lock
            *self.0.lock().unwrap() += 1;
            DROPPED.store(true, Ordering::SeqCst);
        }
    }
    watchdog(|| {
        let rt = runtime(1);
        rt.block_on(|| {
            let lock = Arc::new(grove::sync::Mutex::new(0));
            let (locked_tx, locked_rx) = chan::bounded::<()>(0);
            let (go_tx, go_rx) = chan::bounded::<()>(0);
            let (waiting_tx, waiting_rx) = chan::bounded::<()>(1);
            let holder = {
                let lock = lock.clone();
                thread::spawn(move || {
                    let guard = lock.lock().unwrap();
                    locked_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    drop(guard);
                })
            };
            locked_rx.recv().unwrap();
            // Detached before it finishes.
            drop(thread::spawn({
                let lock = lock.clone();
                move || Out(lock, waiting_tx)
            }));
            waiting_rx.recv().unwrap();
            go_tx.send(()).unwrap();
            holder.join().unwrap();
            wait_until("the output's destructor to finish", || {
                DROPPED.load(Ordering::SeqCst)
            });
            assert!(
                IN_GREEN.load(Ordering::SeqCst),
                "dropped outside a green thread"
            );
            assert_eq!(*lock.lock().unwrap(), 1);
        });
    });
}

/// Spins (never parks: a destructor run by the shutdown's unwind cannot)
/// until `flag` is up, for at most 10 s; whether it came up.
fn spin_until_set(flag: &AtomicBool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flag.load(Ordering::SeqCst) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// Holds a runtime's drop open (in the destructor of a parked green
/// thread's local, run by the shutdown's unwind) until `flags` are up, or
/// 10 s; records whether they all came up.
struct HoldOpenUntil(Vec<Arc<AtomicBool>>, Arc<AtomicBool>);

impl Drop for HoldOpenUntil {
    fn drop(&mut self) {
        let all = self.0.iter().all(|f| spin_until_set(f));
        self.1.store(all, Ordering::SeqCst);
    }
}

/// A `chan::after_func` and a `context::after_func` whose deadlines pass
/// while their runtime shuts down still run (on the global runtime): a
/// function is never lost with its runtime, and `stop` then says it had
/// started. The runtime accepted their spawns from outside while it shut
/// down, then dropped them unrun: 0-1 of 20 and 8-11 of 20 ran.
#[test]
fn after_funcs_due_while_their_runtime_shuts_down_still_run() {
    watchdog_for(Duration::from_secs(120), || {
        for round in 0..5 {
            let rt = runtime(2);
            let flags: Vec<Arc<AtomicBool>> =
                (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
            let held_open = Arc::new(AtomicBool::new(false));
            let (_keep, never) = chan::bounded::<()>(0);
            let (timer, _ctx) = rt.block_on({
                let flags = flags.clone();
                move || {
                    let ran = flags[0].clone();
                    let timer = chan::after_func(Duration::from_millis(10), move || {
                        ran.store(true, Ordering::SeqCst)
                    });
                    let (ctx, _cancel) = grove::context::Context::background()
                        .with_timeout(Duration::from_millis(10));
                    let ran = flags[1].clone();
                    let _handle =
                        grove::context::after_func(&ctx, move || ran.store(true, Ordering::SeqCst));
                    (timer, ctx)
                }
            });
            // The holder's destructor spins on its worker while it unwinds:
            // on the other worker than the context's deadline watcher,
            // which the shutdown must unwind to hand its watch on.
            let watcher = || {
                rt.tasks()
                    .into_iter()
                    .find(|t| t.name.as_deref() == Some("context::after_func"))
            };
            wait_until(
                "the deadline watcher to start (or its function to run)",
                || watcher().is_some_and(|t| t.worker.is_some()) || flags[1].load(Ordering::SeqCst),
            );
            let other = watcher().and_then(|t| t.worker).map_or(0, |w| 1 - w);
            let hold = HoldOpenUntil(flags.clone(), held_open.clone());
            let _parked = thread::Builder::new()
                .on_worker(other)
                .spawn_on(&rt, move || {
                    let _hold = hold;
                    let _ = never.recv();
                })
                .unwrap();
            wait_blocked(&rt, "chan recv", 1);
            drop(rt);
            assert!(
                held_open.load(Ordering::SeqCst),
                "round {round}: an after_func never ran"
            );
            assert!(
                !timer.stop(),
                "round {round}: it ran, so stop prevented nothing"
            );
        }
    });
}

/// `context::after_func` on a context with a deadline, called from a
/// destructor while its runtime shuts down: its deadline watcher cannot
/// start on that runtime, nor on the calling thread's (the same one),
/// and goes to the global runtime. It panicked ("no green thread could be
/// spawned to watch the deadline") inside a destructor run by the
/// unwind, which aborted the process. In a child process.
#[test]
fn a_context_after_func_made_in_a_shutdown_destructor_runs() {
    if !body_runs_here("a_context_after_func_made_in_a_shutdown_destructor_runs") {
        return;
    }
    struct ArmOnDrop(Arc<AtomicBool>);
    impl Drop for ArmOnDrop {
        fn drop(&mut self) {
            let (ctx, _cancel) =
                grove::context::Context::background().with_timeout(Duration::from_millis(5));
            let ran = self.0.clone();
            let _handle =
                grove::context::after_func(&ctx, move || ran.store(true, Ordering::SeqCst));
        }
    }
    watchdog(|| {
        let rt = runtime(1);
        let ran = Arc::new(AtomicBool::new(false));
        let (_keep, never) = chan::bounded::<()>(0);
        let arm = ArmOnDrop(ran.clone());
        let _parked = rt.spawn(move || {
            let _arm = arm;
            let _ = never.recv();
        });
        wait_blocked(&rt, "chan recv", 1);
        drop(rt);
        assert!(spin_until_set(&ran), "the after_func never ran");
    });
}

/// A stopped `after_func` whose closure panics when dropped, left for the
/// service thread to drop: the service goes on, and later `after_func`s
/// still fire. The panic ended the process-wide service thread, and no
/// `after_func` fired again.
#[test]
fn the_after_func_service_survives_a_panicking_destructor() {
    struct PanicOnDrop(Arc<AtomicBool>);
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
            panic!("an after_func closure's destructor (expected by the test)");
        }
    }
    watchdog(|| {
        let dropped = Arc::new(AtomicBool::new(false));
        let bomb = PanicOnDrop(dropped.clone());
        let timer = chan::after_func(Duration::from_millis(5), move || drop(bomb));
        assert!(timer.stop());
        // The service now holds the stale entry's last reference: it
        // drops the closure when the deadline comes.
        drop(timer);
        assert!(spin_until_set(&dropped), "the service never dropped it");
        let (tx, rx) = chan::bounded::<()>(1);
        let _later = chan::after_func(Duration::from_millis(1), move || tx.send(()).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(()));
    });
}

/// A started task of an `ErrGroup` that its runtime's shutdown unwinds
/// (it was parked) did not panic: `wait` does not say so, and the group's
/// context is cancelled (its work was cut short). It reported "a green
/// thread of the group panicked", and a `wait` in a destructor run by
/// that same shutdown aborted the process. In a child process.
#[test]
fn an_errgroup_task_unwound_by_its_shutdown_is_not_a_panic() {
    const NAME: &str = "an_errgroup_task_unwound_by_its_shutdown_is_not_a_panic";
    if !body_runs_here(NAME) {
        return;
    }
    struct WaitsOnIt(
        grove::sync::ErrGroup<String>,
        mpsc::Sender<Result<(), String>>,
    );
    impl Drop for WaitsOnIt {
        fn drop(&mut self) {
            let _ = self.1.send(self.0.wait());
        }
    }
    watchdog(|| {
        for in_destructor in [false, true] {
            let rt = runtime(2);
            let (group, ctx) =
                rt.block_on(|| {
                    grove::sync::ErrGroup::<String>::with_context(
                        &grove::context::Context::background(),
                    )
                });
            let (_keep, never) = chan::bounded::<()>(0);
            // The worker the task started on, plus one.
            let started = Arc::new(AtomicUsize::new(0));
            rt.block_on({
                let (group, started) = (group.clone(), started.clone());
                move || {
                    group.go(move || {
                        let worker = thread::current_worker().unwrap();
                        started.store(worker + 1, Ordering::SeqCst);
                        let _ = never.recv();
                        Ok(())
                    })
                }
            });
            wait_until("the task to start", || started.load(Ordering::SeqCst) > 0);
            wait_blocked(&rt, "chan recv", 1);
            let (result_tx, result_rx) = mpsc::channel();
            if in_destructor {
                // On the other worker: a destructor that waits while it
                // unwinds holds its worker's OS thread, and the task must
                // be unwound on its own.
                let other = 2 - started.load(Ordering::SeqCst);
                let guard = WaitsOnIt(group.clone(), result_tx);
                let (parked_tx, parked_rx) = chan::bounded(1);
                let _holder = thread::Builder::new()
                    .on_worker(other)
                    .spawn_on(&rt, move || {
                        let _guard = guard;
                        let (_keep, park) = chan::bounded::<()>(0);
                        parked_tx.send(()).unwrap();
                        let _ = park.recv();
                    })
                    .unwrap();
                parked_rx.recv().unwrap();
                wait_blocked(&rt, "chan recv", 2);
                drop(rt);
            } else {
                drop(rt);
                result_tx.send(group.wait()).unwrap();
            }
            let result = result_rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(result, Ok(()), "in a destructor: {in_destructor}");
            assert!(ctx.is_done(), "the group's context is cancelled");
        }
    });
}

/// Joining a green thread its runtime's shutdown had to leak (it caught
/// the forced unwind and blocked again, or it waits on one that did)
/// returns `Err` instead of waiting for ever: a leaked green thread never
/// finishes. Both joins hung before. In a child process (the leaked
/// worker's OS thread stays stuck).
#[test]
fn joining_a_leaked_green_thread_returns_an_error() {
    if !body_runs_here("joining_a_leaked_green_thread_returns_an_error") {
        return;
    }
    watchdog(|| {
        let rt = runtime(1);
        let (tx, rx) = chan::bounded::<()>(0);
        let (parked_tx, parked_rx) = mpsc::channel();
        let swallower = rt.spawn(move || {
            let _tx = tx;
            parked_tx.send(()).unwrap();
            loop {
                // Catches the shutdown's unwind, and parks again.
                let _ = panic::catch_unwind(|| thread::sleep(Duration::from_secs(3600)));
            }
        });
        parked_rx.recv().unwrap();
        let waiter = rt.spawn(move || rx.recv().is_ok());
        wait_blocked(&rt, "chan recv", 1);
        let report = rt.shutdown();
        assert_eq!(report.leaked().len(), 2, "{report}");
        for (name, joined) in [
            ("swallower", swallower.join().map(|_| ())),
            ("waiter", waiter.join().map(|_| ())),
        ] {
            let payload = joined.expect_err(name);
            let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
            // "leaked", or "unwound" for one the shutdown finished off.
            assert!(
                message.contains("leaked") || message.contains("unwound"),
                "{name}: {message:?}"
            );
        }
    });
}

/// Takes a grove `Mutex` when dropped.
struct LocksOnDrop(Arc<grove::sync::Mutex<()>>);

impl Drop for LocksOnDrop {
    fn drop(&mut self) {
        drop(self.0.lock());
    }
}

/// Sends on its channel when dropped.
struct SaysOnDrop(mpsc::Sender<()>);

impl Drop for SaysOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Spawns a green thread (the caller is one) on worker `worker` that holds
/// `m` and parks for good, and returns once it holds it.
fn park_holding_lock(worker: usize, m: &Arc<grove::sync::Mutex<()>>) {
    let m = m.clone();
    let (held_tx, held_rx) = chan::bounded(1);
    thread::Builder::new()
        .on_worker(worker)
        .spawn(move || {
            let _guard = m.lock().unwrap();
            let (_keep, park) = chan::bounded::<()>(0);
            held_tx.send(()).unwrap();
            let _ = park.recv();
        })
        .unwrap();
    held_rx.recv().unwrap();
}

/// A green thread's closure still unstarted at shutdown is dropped unrun
/// by its worker, on the worker's OS thread; its captured value's
/// destructor takes a lock that a green thread parked on that same worker
/// holds, so it blocks that OS thread for good. The shutdown used to wait
/// for it forever; it now gives the worker up, reports it and the green
/// threads homed there, and returns.
#[test]
fn a_closure_dropped_unrun_that_blocks_its_worker_is_given_up() {
    const NAME: &str = "a_closure_dropped_unrun_that_blocks_its_worker_is_given_up";
    if !in_child(NAME) {
        let (passed, output) = run_in_child(NAME);
        assert!(passed, "the child failed:\n{output}");
        assert!(
            output.contains("worker thread 0 is blocked in a destructor it ran outside"),
            "the worker was not reported:\n{output}"
        );
        return;
    }
    watchdog(|| {
        let rt = runtime(2);
        let m = Arc::new(grove::sync::Mutex::new(()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (began_tx, began_rx) = mpsc::channel::<()>();
        let value = LocksOnDrop(m.clone());
        let _setup = rt.spawn(move || {
            park_holding_lock(0, &m);
            // Parked on worker 1 until the shutdown unwinds it: then the
            // shutdown has begun.
            let (parked_tx, parked_rx) = chan::bounded(1);
            thread::Builder::new()
                .on_worker(1)
                .spawn(move || {
                    let _says = SaysOnDrop(began_tx);
                    let (_keep, park) = chan::bounded::<()>(0);
                    parked_tx.send(()).unwrap();
                    let _ = park.recv();
                })
                .unwrap();
            parked_rx.recv().unwrap();
            thread::Builder::new()
                .on_worker(0)
                .spawn(move || {
                    // Pinned to this busy worker: still unstarted when the
                    // shutdown begins.
                    thread::Builder::new()
                        .on_worker(0)
                        .spawn(move || drop(value))
                        .unwrap();
                    ready_tx.send(()).unwrap();
                    // Holds the worker's OS thread until the shutdown began.
                    let _ = began_rx.recv();
                })
                .unwrap();
        });
        ready_rx.recv().unwrap();
        let report = rt.shutdown();
        assert!(!report.leaked().is_empty(), "{report}");
    });
}

/// A detached green thread catches its runtime's forced unwind and panics
/// with a payload of its own; nobody joins it, so its worker drops the
/// payload when it frees the task, on its OS thread, and the payload's
/// destructor blocks on a lock a green thread of that worker holds. The
/// shutdown used to hang (17 of 20 runs); it now gives the worker up and
/// returns.
#[test]
fn a_swallowers_payload_that_blocks_its_worker_is_given_up() {
    if !body_runs_here("a_swallowers_payload_that_blocks_its_worker_is_given_up") {
        return;
    }
    watchdog(|| {
        let rt = runtime(1);
        let m = Arc::new(grove::sync::Mutex::new(()));
        let m1 = m.clone();
        rt.spawn(move || park_holding_lock(0, &m1)).join().unwrap();
        let (started_tx, started_rx) = mpsc::channel();
        let m2 = m.clone();
        drop(rt.spawn(move || {
            let (_keep, park) = chan::bounded::<()>(0);
            started_tx.send(()).unwrap();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| park.recv()));
            panic::panic_any(LocksOnDrop(m2));
        }));
        started_rx.recv().unwrap();
        panic::set_hook(Box::new(|_| {}));
        let report = rt.shutdown();
        assert!(!report.leaked().is_empty(), "{report}");
    });
}
