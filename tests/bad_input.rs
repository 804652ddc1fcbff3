//! Edge values given to every public constructor and method: zero, huge and
//! `usize::MAX` sizes, `Duration::ZERO` and `Duration::MAX`, deadlines in
//! the past, double closes and cancels, odd names and payloads, empty
//! selects. Each returns its documented error or value; none panics or
//! aborts unless its documentation says it panics (and then with a message
//! that says why).
//!
//! Zero workers, bad stack sizes and `max_stacks(0)` are in
//! `tests/config.rs`; this file covers the rest.

#[path = "common/rel_util.rs"]
mod rel_util;

use std::io;
use std::time::{Duration, Instant};

use grove::chan::{
    self, RecvTimeoutError, Select, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use grove::context::{Context, ContextError};
use grove::runtime::Builder;
use grove::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, Semaphore, WaitGroup};
use grove::thread;
use grove::{select, Runtime};
use rel_util::{
    expect_panic, panic_message, quiet_expected_panics, runtime, watchdog, WORKER_COUNTS,
};

/// A bound on "returns at once" that a loaded 2-core machine running a
/// debug build still meets; a wait that really waited for `Duration::MAX`
/// (or never ended) fails it by far.
const PROMPT: Duration = Duration::from_secs(2);

#[track_caller]
fn assert_invalid_input<T>(result: io::Result<T>, names: &str) {
    let Err(err) = result else {
        panic!("a bad value was accepted (expected an error naming {names:?})");
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(names), "{err}");
}

/// Whether the kernel reserves address space without committing memory
/// (`vm.overcommit_memory` is not 2), so a 1 TiB stack limit can be mapped.
fn lazy_reservations_allowed() -> bool {
    std::fs::read_to_string("/proc/sys/vm/overcommit_memory").map_or(true, |s| s.trim() != "2")
}

/// Runs `f` as a green thread of a fresh runtime and on this OS thread:
/// everything here must behave the same from both.
fn green_and_os<F>(f: F)
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    for workers in [1, 2] {
        runtime(workers).block_on(f.clone());
    }
    f();
}

// ---------------------------------------------------------------------------
// Builders.

#[test]
fn runtime_builder_takes_or_refuses_extreme_values() {
    watchdog(|| {
        assert_invalid_input(Runtime::builder().workers(usize::MAX).build(), "workers");
        assert_invalid_input(Runtime::builder().workers(4097).build(), "4097");
        assert_invalid_input(
            Runtime::builder()
                .workers(1)
                .thread_name("bad\0name")
                .build(),
            "NUL",
        );
        // Just above the largest stack limit accepted (1 TiB).
        let too_big = (1usize << 40) + 1;
        assert_invalid_input(
            Runtime::builder().workers(1).stack_size(too_big).build(),
            &too_big.to_string(),
        );

        // Extreme but valid values build runtimes that work.
        let rt = Builder::new()
            .workers(1)
            .max_stacks(usize::MAX)
            .stack_size(1 << 40) // reserved lazily: address space only
            .thread_name("")
            .deadlock_grace(Some(Duration::MAX))
            .report_leaks(true)
            .build()
            .unwrap();
        if lazy_reservations_allowed() {
            assert_eq!(rt.block_on(|| 6 * 7), 42);
        }
        assert!(rt.shutdown().is_clean());

        let rt = Builder::new()
            .workers(2)
            .max_stacks(1)
            .deadlock_grace(Some(Duration::ZERO))
            .build()
            .unwrap();
        // A zero grace reports nothing for a program that never sleeps on
        // nothing: a sleep has a timer armed.
        let v = rt.block_on(|| {
            thread::sleep(Duration::from_millis(5));
            7
        });
        assert_eq!(v, 7);
        let rt = Builder::new()
            .workers(1)
            .deadlock_grace(None)
            .build()
            .unwrap();
        assert_eq!(rt.block_on(|| 8), 8);
    });
}

#[test]
fn thread_builder_takes_or_refuses_extreme_values() {
    watchdog(|| {
        let rt = runtime(1);
        let page = 4096; // the smallest stack limit accepted
        let h = thread::Builder::new()
            .stack_size(page)
            .spawn_on(&rt, || 1)
            .unwrap();
        assert_eq!(h.join().unwrap(), 1);
        match thread::Builder::new()
            .stack_size(1 << 40)
            .spawn_on(&rt, || 2)
        {
            Ok(h) => assert_eq!(h.join().unwrap(), 2),
            // Only where the kernel refuses lazy reservations this large.
            Err(err) if !lazy_reservations_allowed() => {
                assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}")
            }
            Err(err) => panic!("a 1 TiB stack limit (the largest) was refused: {err}"),
        }
        let too_big = (1usize << 40) + 1;
        assert_invalid_input(
            thread::Builder::new()
                .stack_size(too_big)
                .spawn_on(&rt, || ()),
            &too_big.to_string(),
        );
        let name = thread::Builder::new()
            .name(String::new())
            .spawn_on(&rt, || thread::current().name().map(str::to_string))
            .unwrap();
        assert_eq!(name.join().unwrap().as_deref(), Some(""));
    });
}

#[test]
fn green_thread_names_with_nul_bytes_panic_as_std() {
    // std::thread::Builder::spawn panics on a name with an interior NUL
    // (std's `test_invalid_named_thread`); a program swapped from std
    // fails the same way, through every spawn of the builder. (A *worker*
    // name prefix with a NUL is refused with InvalidInput: see the builder
    // test above.)
    watchdog(|| {
        let rt = runtime(2);
        let named = || thread::Builder::new().name("nul\0inside".to_string());
        let std_says = "thread name may not contain interior null bytes";
        assert_eq!(expect_panic(|| named().spawn(|| ())), std_says);
        assert_eq!(expect_panic(|| named().spawn_on(&rt, || ())), std_says);
        let scoped = expect_panic(|| thread::scope(|s| named().spawn_scoped(s, || ()).map(|_| ())));
        assert_eq!(scoped, std_says);
        assert_eq!(rt.stats().spawned, 0, "nothing was spawned");
    });
}

#[test]
fn bounded_usize_max_does_not_allocate_up_front() {
    watchdog(|| {
        // A buffer of usize::MAX slots allocated up front would abort the
        // process; it is grown as values arrive, like an unbounded one.
        let (tx, rx) = chan::bounded::<u64>(usize::MAX);
        assert_eq!(tx.capacity(), Some(usize::MAX));
        assert_eq!(rx.capacity(), Some(usize::MAX));
        for v in 0..10_000 {
            tx.try_send(v).unwrap();
        }
        assert_eq!(rx.len(), 10_000);
        assert_eq!(rx.try_iter().sum::<u64>(), (0..10_000).sum::<u64>());
        assert!(rx.is_empty());
        drop(tx);
        assert_eq!(rx.recv(), Err(chan::RecvError));
    });
}

#[test]
fn bounded_zero_holds_nothing() {
    watchdog(|| {
        let (tx, rx) = chan::bounded::<u8>(0);
        assert_eq!(tx.capacity(), Some(0));
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!((tx.len(), rx.len()), (0, 0));
        assert_eq!(
            tx.send_timeout(2, Duration::ZERO),
            Err(SendTimeoutError::Timeout(2))
        );
        assert!(tx.close());
        assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    });
}

// ---------------------------------------------------------------------------
// Zero and maximal durations.

#[test]
fn zero_durations_never_wait() {
    watchdog(|| {
        green_and_os(|| {
            let start = Instant::now();
            thread::sleep(Duration::ZERO);
            thread::park_timeout(Duration::ZERO);

            let (tx, rx) = chan::bounded::<u32>(1);
            assert_eq!(
                rx.recv_timeout(Duration::ZERO),
                Err(RecvTimeoutError::Timeout)
            );
            assert_eq!(tx.send_timeout(1, Duration::ZERO), Ok(()));
            assert_eq!(
                tx.send_timeout(2, Duration::ZERO),
                Err(SendTimeoutError::Timeout(2)),
                "full: the value comes back"
            );
            // A value that is there is taken even with no time to wait.
            assert_eq!(rx.recv_timeout(Duration::ZERO), Ok(1));

            let mut sel = Select::new();
            sel.recv(&rx);
            assert!(sel.select_timeout(Duration::ZERO).is_err());
            tx.send(3).unwrap();
            let oper = sel.select_timeout(Duration::ZERO).unwrap();
            assert_eq!(oper.recv(&rx), Ok(3));

            let got = select! {
                recv(rx) -> v => v.ok(),
                default(Duration::ZERO) => None,
            };
            assert_eq!(got, None);

            // time.After(0) has fired already; time.Tick(0) is Go's nil
            // channel (its Tick returns nil on d <= 0): never ready, and a
            // timed receive on it times out.
            let fired = chan::after(Duration::ZERO).recv().unwrap();
            assert!(fired >= start);
            let ticker = chan::tick(Duration::ZERO);
            assert!(ticker.try_recv().is_err());
            assert_eq!(
                ticker.recv_timeout(Duration::from_millis(1)),
                Err(RecvTimeoutError::Timeout)
            );

            let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
            assert!(ctx.is_done());
            assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
            assert!(ctx.deadline().is_some_and(|d| d <= Instant::now()));
            assert!(ctx.done().recv().is_err(), "done() is closed already");

            let cv = Condvar::new();
            let m = Mutex::new(());
            let (_g, res) = cv.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
            assert!(res.timed_out());
            assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
        });
    });
}

#[test]
fn maximal_durations_wait_without_overflowing() {
    watchdog(|| {
        for workers in WORKER_COUNTS {
            let rt = runtime(workers);
            rt.block_on(|| {
                let start = Instant::now();
                // Each waits "forever" for something another green thread
                // provides once the waiter is parked.
                let me = thread::current();
                let waker = thread::spawn(move || me.unpark());
                thread::park_timeout(Duration::MAX);
                waker.join().unwrap();

                let (tx, rx) = chan::bounded::<u32>(0);
                let sender = thread::spawn(move || {
                    tx.send_timeout(5, Duration::MAX).unwrap();
                    tx.send_timeout(6, Duration::from_secs(1 << 40)).unwrap();
                    tx
                });
                assert_eq!(rx.recv_timeout(Duration::MAX), Ok(5));
                assert_eq!(rx.recv_timeout(Duration::from_secs(1 << 40)), Ok(6));
                let tx = sender.join().unwrap();

                let echo = {
                    let tx = tx.clone();
                    thread::spawn(move || tx.send(7))
                };
                let mut sel = Select::new();
                sel.recv(&rx);
                let oper = sel.select_timeout(Duration::MAX).unwrap();
                assert_eq!(oper.recv(&rx), Ok(7));
                echo.join().unwrap().unwrap();

                let echo = thread::spawn(move || tx.send(8));
                let got = select! {
                    recv(rx) -> v => v.ok(),
                    default(Duration::MAX) => None,
                };
                assert_eq!(got, Some(8));
                echo.join().unwrap().unwrap();

                // after(MAX) and tick(MAX) would fire past the end of time:
                // never ready, never closed.
                for never in [chan::after(Duration::MAX), chan::tick(Duration::MAX)] {
                    assert_eq!(never.try_recv(), Err(TryRecvError::Empty));
                    assert_eq!(
                        never.recv_timeout(Duration::from_millis(1)),
                        Err(RecvTimeoutError::Timeout)
                    );
                    assert!(!never.is_closed());
                    assert_eq!(never.len(), 0);
                }

                let (ctx, cancel) = Context::background().with_timeout(Duration::MAX);
                assert!(!ctx.is_done());
                assert_eq!(ctx.deadline(), None, "past the end of time: no deadline");
                let watcher = {
                    let ctx = ctx.clone();
                    thread::spawn(move || ctx.done().recv())
                };
                thread::yield_now();
                cancel.cancel();
                assert!(watcher.join().unwrap().is_err());
                assert_eq!(ctx.err(), Some(ContextError::Cancelled));

                let pair = Arc::new((Mutex::new(false), Condvar::new()));
                let notifier = {
                    let pair = pair.clone();
                    thread::spawn(move || {
                        *pair.0.lock().unwrap() = true;
                        pair.1.notify_all();
                    })
                };
                let (guard, res) = pair
                    .1
                    .wait_timeout_while(pair.0.lock().unwrap(), Duration::MAX, |ready| !*ready)
                    .unwrap();
                assert!(*guard && !res.timed_out());
                drop(guard);
                notifier.join().unwrap();
                assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
            });
        }
        // On an OS thread: an unpark that came first is kept.
        thread::current().unpark();
        thread::park_timeout(Duration::MAX);
    });
}

#[test]
fn deadlines_in_the_past_are_immediately_due() {
    watchdog(|| {
        green_and_os(|| {
            let start = Instant::now();
            let past = Instant::now() - Duration::from_millis(1);
            let (tx, rx) = chan::bounded::<u32>(1);
            assert_eq!(rx.recv_deadline(past), Err(RecvTimeoutError::Timeout));
            assert_eq!(tx.send_deadline(1, past), Ok(()), "room: no wait needed");
            assert_eq!(tx.send_deadline(2, past), Err(SendTimeoutError::Timeout(2)));
            assert_eq!(rx.recv_deadline(past), Ok(1), "a value: no wait needed");

            let mut sel = Select::new();
            sel.recv(&rx);
            assert!(sel.select_deadline(past).is_err());
            tx.send(3).unwrap();
            assert_eq!(sel.select_deadline(past).unwrap().recv(&rx), Ok(3));

            let (ctx, _cancel) = Context::background().with_deadline(past);
            assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
            assert_eq!(ctx.deadline(), Some(past));
            assert!(ctx.done().recv().is_err());
            let done = ctx.done();
            let got = select! {
                recv(done) -> v => v.is_err(),
                default => false,
            };
            assert!(got, "a past deadline's done() is ready in a select");
            // A child inherits the earlier deadline.
            let (child, _c) = ctx.with_timeout(Duration::from_secs(3600));
            assert_eq!(child.deadline(), Some(past));
            assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
            assert!(start.elapsed() < PROMPT, "took {:?}", start.elapsed());
        });
    });
}

// ---------------------------------------------------------------------------
// Doing things twice.

#[test]
fn closing_twice_returns_false() {
    watchdog(|| {
        let (tx, rx) = chan::bounded::<u8>(2);
        let tx2 = tx.clone();
        tx.send(1).unwrap();
        assert!(tx.close());
        assert!(!tx.close());
        assert!(!tx2.close(), "closed through another clone already");
        assert!(tx2.is_closed() && rx.is_closed());
        assert_eq!(tx2.send(2), Err(SendError(2)));
        assert_eq!(rx.recv(), Ok(1), "buffered values survive the close");
        assert_eq!(rx.recv(), Err(chan::RecvError));
        // Closing after every receiver left is still a first close.
        let (tx, rx) = chan::unbounded::<u8>();
        drop(rx);
        assert!(tx.is_closed(), "no receivers: sends fail");
        assert!(tx.close());
        assert!(!tx.close());
    });
}

#[test]
fn cancelling_twice_is_a_no_op() {
    watchdog(|| {
        let (parent, cancel) = Context::background().with_cancel();
        let (child, child_cancel) = parent.with_cancel();
        child_cancel.cancel();
        child_cancel.cancel();
        assert_eq!(child.err(), Some(ContextError::Cancelled));
        assert_eq!(parent.err(), None, "a child's cancel leaves the parent");
        cancel.cancel();
        cancel.clone().cancel();
        assert_eq!(parent.err(), Some(ContextError::Cancelled));
        assert!(parent.done().recv().is_err());
        assert!(child.done().recv().is_err());
    });
}

#[test]
fn cancel_after_the_deadline_keeps_deadline_exceeded() {
    // Go: once a context's deadline has passed, its Err() is
    // DeadlineExceeded for good; a later cancel() changes nothing.
    let (ctx, cancel) = Context::background().with_timeout(Duration::ZERO);
    let (child, _c) = ctx.with_cancel();
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    cancel.cancel();
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    assert_eq!(child.err(), Some(ContextError::DeadlineExceeded));
}

// ---------------------------------------------------------------------------
// Panics with odd payloads.

/// A payload that is neither `&str` nor `String`.
#[derive(Debug, PartialEq)]
struct Code(Vec<u16>);

#[test]
fn non_string_panic_payloads_come_back_intact() {
    quiet_expected_panics();
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            // resume_unwind skips the panic hook: the payload is all there is.
            let h = rt.spawn(|| -> u8 { std::panic::resume_unwind(Box::new(Code(vec![1, 2]))) });
            let err = h.join().unwrap_err();
            assert_eq!(err.downcast_ref::<Code>(), Some(&Code(vec![1, 2])));
            assert_eq!(panic_message(&*err), "<non-string panic payload>");

            // Through block_on, and through a nested green thread's join.
            let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(|| {
                    let inner = thread::spawn(|| -> () {
                        std::panic::panic_any(rel_util::ExpectedPanic(77))
                    });
                    let payload = inner.join().unwrap_err();
                    std::panic::resume_unwind(payload)
                })
            }))
            .unwrap_err();
            assert_eq!(
                err.downcast_ref::<rel_util::ExpectedPanic>(),
                Some(&rel_util::ExpectedPanic(77))
            );
            // A unit payload.
            let h = rt.spawn(|| std::panic::resume_unwind(Box::new(())));
            assert!(h.join().unwrap_err().is::<()>());
        }
    });
}

// ---------------------------------------------------------------------------
// Sync primitives with edge counts.

#[test]
fn semaphores_with_no_or_all_permits() {
    watchdog(|| {
        let none = Semaphore::new(0);
        assert!(none.try_acquire().is_none());
        assert_eq!(none.available_permits(), 0);
        none.add_permits(0);
        assert!(none.try_acquire().is_none());
        none.add_permits(1);
        let p = none.try_acquire().expect("one permit was added");
        assert!(none.try_acquire().is_none());
        drop(p);
        assert_eq!(none.available_permits(), 1);

        let all = Semaphore::new(usize::MAX);
        let a = all.try_acquire().unwrap();
        let b = all.acquire();
        assert_eq!(all.available_permits(), usize::MAX - 2);
        drop((a, b));
        assert_eq!(all.available_permits(), usize::MAX);
    });
}

#[test]
fn semaphore_permit_overflow_is_refused() {
    let sem = Semaphore::new(usize::MAX);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sem.add_permits(1)));
    // Either refused with a panic (tokio: "a semaphore may not have more
    // than MAX_PERMITS permits") or saturated; never wrapped to zero.
    assert!(
        outcome.is_err() || sem.available_permits() == usize::MAX,
        "permits wrapped to {}",
        sem.available_permits()
    );
    assert!(sem.try_acquire().is_some());
}

#[test]
fn barriers_of_zero_and_one_never_block() {
    watchdog(|| {
        green_and_os(|| {
            for n in [0, 1] {
                let barrier = Barrier::new(n);
                for _ in 0..3 {
                    assert!(barrier.wait().is_leader(), "alone, every wait leads");
                }
            }
        });
    });
}

#[test]
fn wait_group_edge_counts() {
    quiet_expected_panics();
    watchdog(|| {
        green_and_os(|| {
            let wg = WaitGroup::new();
            wg.add(0);
            assert_eq!(wg.count(), 0);
            wg.wait(); // zero: returns at once
            wg.add(1);
            wg.add(0);
            assert_eq!(wg.count(), 1);
            wg.done();
            wg.wait();
            let msg = expect_panic(|| wg.done());
            assert!(msg.contains("negative WaitGroup counter"), "{msg}");
            assert_eq!(wg.count(), 0, "the failed done() left the counter alone");
            let msg = expect_panic(|| wg.add(usize::MAX));
            assert!(msg.contains("WaitGroup"), "{msg}");
            assert_eq!(wg.count(), 0, "the refused add left the counter alone");
            wg.wait();
        });
    });
}

#[test]
fn wait_group_overflow_leaves_the_counter_alone() {
    let wg = WaitGroup::new();
    wg.add(isize::MAX as usize);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wg.add(1)));
    assert!(outcome.is_err(), "overflowing the counter panics");
    assert_eq!(wg.count(), isize::MAX as usize, "and leaves it as it was");
}

#[test]
fn once_lock_set_twice_gives_the_value_back() {
    watchdog(|| {
        green_and_os(|| {
            let cell = OnceLock::new();
            assert_eq!(cell.get(), None);
            assert_eq!(cell.set(String::from("first")), Ok(()));
            assert_eq!(
                cell.set(String::from("second")),
                Err(String::from("second"))
            );
            assert_eq!(cell.get().map(String::as_str), Some("first"));
            let v = cell.get_or_init(|| unreachable!("already set"));
            assert_eq!(v, "first");
        });
    });
}

// ---------------------------------------------------------------------------
// Empty and odd selects, and never().

#[test]
fn selects_with_no_arms() {
    quiet_expected_panics();
    watchdog(|| {
        green_and_os(|| {
            assert!(Select::new().try_select().is_err());
            assert!(Select::new().select_timeout(Duration::ZERO).is_err());
            let start = Instant::now();
            assert!(Select::new()
                .select_timeout(Duration::from_millis(2))
                .is_err());
            assert!(start.elapsed() >= Duration::from_millis(2), "never early");
            assert!(Select::new()
                .select_deadline(Instant::now() - Duration::from_millis(1))
                .is_err());
            let msg = expect_panic(|| Select::new().select().index());
            assert!(msg.contains("no operations"), "{msg}");
            let default_ran = select! { default => true };
            assert!(default_ran);
        });
    });
}

#[test]
fn select_misuse_panics_with_a_clear_message() {
    watchdog(|| {
        let (tx, rx) = chan::bounded::<u8>(1);
        let (_tx2, rx2) = chan::bounded::<u8>(1);
        tx.send(1).unwrap();
        let mut sel = Select::new();
        let i = sel.recv(&rx);
        let msg = expect_panic(|| sel.remove(i + 10));
        assert!(msg.contains("no operation with this index"), "{msg}");
        let oper = sel.select();
        let msg = expect_panic(|| oper.recv(&rx2));
        assert!(msg.contains("wasn't selected"), "{msg}");
        // The abandoned operation gave its claim back.
        assert_eq!(rx.try_recv(), Ok(1));
    });
}

#[test]
fn never_is_never_ready() {
    watchdog(|| {
        green_and_os(|| {
            let never = chan::never::<u8>();
            assert_eq!(never.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(
                never.recv_timeout(Duration::ZERO),
                Err(RecvTimeoutError::Timeout)
            );
            assert_eq!(never.capacity(), Some(0));
            assert!(!never.is_closed() && never.is_empty());
            let got = select! {
                recv(never) -> _ => false,
                default(Duration::from_millis(1)) => true,
            };
            assert!(got);
        });
    });
}
