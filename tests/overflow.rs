//! A green thread that overflows its stack hits the guard page; grove's
//! SIGSEGV handler names the green thread and its stack limit, then aborts.
//! Other faults are left to the default action, so they are not reported
//! as overflows.
//!
//! Each case runs in a child process: the test binary re-runs itself with
//! an environment variable naming one of the `#[ignore]`d child tests below, which do
//! nothing unless that variable asks for them. Every child says which stack
//! mode it ran in, and the parent checks it.
//!
//! The guard is a guard region (`MADV_GUARD_INSTALL`) on Linux ≥ 6.13 and
//! an `mprotect`ed page of a mapping of its own before that. The stack mode
//! is chosen once per process, so the whole binary runs once more with
//! `GROVE_STACK_MODE=mappings` (`every_overflow_test_passes_with_one_mapping_per_stack`):
//! both kinds of guard are tested on any kernel that has both.

#[path = "common/base.rs"]
mod base;

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;

use base::{child_output, describe, in_child, recurse_forever};

use grove::runtime::{self, StackMode};
use grove::thread;
use grove::Runtime;

/// What each child prints first.
fn mode_line(mode: StackMode) -> String {
    format!("stack mode: {mode:?}")
}

/// Called first by every child: says which stack mode it runs in.
fn say_mode() {
    eprintln!("{}", mode_line(runtime::stack_mode()));
}

/// The child ran in the same stack mode as this process (the mode switch,
/// if set, is inherited; detection gives the same answer).
#[track_caller]
fn assert_same_mode(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&mode_line(runtime::stack_mode())),
        "the child did not run in {:?} mode\n{}",
        runtime::stack_mode(),
        describe(output)
    );
}

#[test]
fn stack_overflow_is_reported_and_aborts() {
    let output = child_output("overflow_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_same_mode(&output);
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "the child did not die of SIGABRT\n{}",
        describe(&output)
    );
    assert!(
        stderr.contains("green thread 'deep' overflowed its stack of 64 KiB"),
        "{}",
        describe(&output)
    );
    assert!(
        !stderr.contains("unreachable"),
        "the child went on after the overflow\n{}",
        describe(&output)
    );
}

#[test]
#[ignore = "helper: the child process of stack_overflow_is_reported_and_aborts"]
fn overflow_child() {
    if !in_child("overflow_child") {
        return;
    }
    say_mode();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let h = thread::Builder::new()
        .name("deep".to_string())
        .stack_size(64 * 1024)
        .spawn_on(&rt, || recurse_forever(0))
        .unwrap();
    let _ = h.join();
    eprintln!("unreachable: the overflowing green thread was joined");
}

#[test]
fn overflow_with_the_default_stack_names_its_size() {
    let output = child_output("default_overflow_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_same_mode(&output);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("overflowed its stack of 256 KiB"),
        "{}",
        describe(&output)
    );
}

#[test]
#[ignore = "helper: the child process of overflow_with_the_default_stack_names_its_size"]
fn default_overflow_child() {
    if !in_child("default_overflow_child") {
        return;
    }
    say_mode();
    let rt = Runtime::builder().workers(1).build().unwrap();
    let _ = rt.spawn(|| recurse_forever(0)).join();
    eprintln!("unreachable: the overflowing green thread was joined");
}

#[test]
fn other_segfaults_are_not_reported_as_overflows() {
    let output = child_output("segfault_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_same_mode(&output);
    assert!(!output.status.success(), "{}", describe(&output));
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "the child did not die of SIGSEGV\n{}",
        describe(&output)
    );
    assert!(!stderr.contains("overflowed"), "{}", describe(&output));
}

#[test]
#[ignore = "helper: the child process of other_segfaults_are_not_reported_as_overflows"]
fn segfault_child() {
    if !in_child("segfault_child") {
        return;
    }
    say_mode();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let h = thread::Builder::new()
        .name("faulty".to_string())
        .spawn_on(&rt, || {
            // An aligned address in the never-mapped page at 0: the write
            // faults like a null-pointer write would. (A literal null would
            // trip the debug-build precondition check of `write_volatile`
            // and abort instead of faulting.)
            let near_null = black_box(16usize) as *mut u64;
            // SAFETY: none; faulting is the point of this child process.
            unsafe { near_null.write_volatile(1) };
        })
        .unwrap();
    let _ = h.join();
    eprintln!("unreachable: the faulting green thread was joined");
}

#[test]
fn an_overflow_among_many_stacks_names_the_green_thread_that_overflowed() {
    let output = child_output("neighbours_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_same_mode(&output);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("green thread 'deep-7' overflowed its stack of 32 KiB"),
        "{}",
        describe(&output)
    );
    assert!(!stderr.contains("unreachable"), "{}", describe(&output));
}

#[test]
#[ignore = "helper: the child process of an_overflow_among_many_stacks_names_the_green_thread_that_overflowed"]
fn neighbours_child() {
    if !in_child("neighbours_child") {
        return;
    }
    say_mode();
    // Stacks of one size side by side (in guard-region mode, slots of one
    // reservation: each guard lies just above a neighbour's top), all
    // parked but one, which overflows.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = grove::chan::bounded::<()>(0);
    let parked: Vec<_> = (0..64)
        .map(|i| {
            let rx = rx.clone();
            thread::Builder::new()
                .name(format!("idle-{i}"))
                .stack_size(32 * 1024)
                .spawn_on(&rt, move || {
                    let _ = rx.recv();
                })
                .unwrap()
        })
        .collect();
    let h = thread::Builder::new()
        .name("deep-7".to_string())
        .stack_size(32 * 1024)
        .spawn_on(&rt, || recurse_forever(0))
        .unwrap();
    let _ = h.join();
    drop((tx, parked));
    eprintln!("unreachable: the overflowing green thread was joined");
}

#[test]
fn every_overflow_test_passes_with_one_mapping_per_stack() {
    if std::env::var(runtime::STACK_MODE_ENV).is_ok_and(|v| v == "mappings") {
        return; // this is the rerun
    }
    if runtime::stack_mode() == StackMode::Mappings {
        eprintln!("skipped: this process already uses one mapping per stack");
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let output = std::process::Command::new(exe)
        .args([
            "--skip",
            "every_overflow_test_passes_with_one_mapping_per_stack",
        ])
        .env(runtime::STACK_MODE_ENV, "mappings")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 4 passed"),
        "{}",
        describe(&output)
    );
}
