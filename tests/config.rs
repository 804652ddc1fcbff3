//! Configuration errors: every bad value given to `runtime::Builder` or
//! `thread::Builder` comes back from `build()` / `spawn()` as
//! `io::ErrorKind::InvalidInput` with a message that says what was wrong,
//! and good values are taken.

mod common;

use std::io;

use common::watchdog;
use grove::runtime::Builder;
use grove::thread;
use grove::Runtime;

#[track_caller]
fn assert_invalid_input<T: std::fmt::Debug>(result: io::Result<T>) {
    let err = result.expect_err("a bad value was accepted");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(
        !err.to_string().trim().is_empty(),
        "the error has no message"
    );
}

#[test]
fn zero_workers_is_refused() {
    assert_invalid_input(Runtime::builder().workers(0).build());
}

#[test]
fn bad_runtime_stack_sizes_are_refused() {
    for size in [0, 1, 100, 4095, usize::MAX, usize::MAX / 2] {
        let result = Runtime::builder().workers(1).stack_size(size).build();
        if let Err(err) = &result {
            assert!(
                err.to_string().contains(&size.to_string()),
                "the message does not name the bad size {size}: {err}"
            );
        }
        assert_invalid_input(result);
    }
}

#[test]
fn zero_max_stacks_is_refused() {
    assert_invalid_input(Runtime::builder().workers(1).max_stacks(0).build());
}

/// A green thread's stack limit beyond what the address space allows is
/// refused, wherever the spawn comes from, and the runtime is unharmed.
#[test]
fn bad_green_thread_stack_sizes_are_refused() {
    watchdog(|| {
        let rt = Runtime::builder().workers(1).build().unwrap();
        for size in [usize::MAX, usize::MAX / 2] {
            // On a given runtime, from an OS thread.
            assert_invalid_input(thread::Builder::new().stack_size(size).spawn_on(&rt, || ()));
            // On the global runtime.
            assert_invalid_input(thread::Builder::new().stack_size(size).spawn(|| ()));
            // From inside a green thread, on its own runtime.
            let inside = rt.block_on(move || {
                thread::Builder::new()
                    .stack_size(size)
                    .spawn(|| ())
                    .map(|_| ())
            });
            assert_invalid_input(inside);
        }
        // The runtime is unharmed.
        assert_eq!(rt.block_on(|| 1), 1);
        let stats = rt.stats();
        // Two block_on calls in the loop and one after: nothing else.
        assert_eq!(stats.spawned, 3, "refused spawns were counted: {stats:?}");
    });
}

/// A green thread's stack limit below the smallest stack is rounded up, as
/// std's `Builder::stack_size` rounds up to its minimum: a std program
/// that asks for a small stack still spawns with `grove::thread`. Before,
/// anything below one page was refused.
#[test]
fn small_green_thread_stack_sizes_are_rounded_up_as_std_does() {
    watchdog(|| {
        let rt = Runtime::builder().workers(1).build().unwrap();
        for size in [0, 1, 100, 4095] {
            let std_ran = std::thread::Builder::new()
                .stack_size(size)
                .spawn(move || size)
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(std_ran, size);
            let ran = thread::Builder::new()
                .stack_size(size)
                .spawn_on(&rt, move || size)
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(ran, size);
            let inside = rt.block_on(move || {
                thread::Builder::new()
                    .stack_size(size)
                    .spawn(move || size)
                    .unwrap()
                    .join()
                    .unwrap()
            });
            assert_eq!(inside, size);
        }
    });
}

#[test]
fn good_values_are_taken() {
    watchdog(|| {
        let rt = Builder::new()
            .workers(3)
            .stack_size(64 * 1024)
            .thread_name("cfg-test")
            .max_stacks(16)
            .build()
            .unwrap();
        assert_eq!(rt.stats().workers, 3);
        let worker = rt.block_on(|| std::thread::current().name().map(str::to_string));
        let worker = worker.expect("worker threads are named");
        assert!(worker.starts_with("cfg-test-"), "worker named {worker}");

        // A stack limit that is not a page multiple is fine (rounded up).
        let odd = Runtime::builder()
            .workers(1)
            .stack_size(64 * 1024 + 1)
            .build()
            .unwrap();
        assert_eq!(odd.block_on(|| 2), 2);
        let h = thread::Builder::new()
            .stack_size(48 * 1024 + 3)
            .spawn_on(&odd, || 3)
            .unwrap();
        assert_eq!(h.join().unwrap(), 3);

        let default = Runtime::new().unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(default.stats().workers, cores);
    });
}
