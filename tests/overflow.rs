//! A green thread that overflows its stack hits the guard page; grove's
//! SIGSEGV handler names the green thread and its stack limit, then aborts.
//! Other faults are left to the default action, so they are not reported
//! as overflows.
//!
//! Each case runs in a child process: the test binary re-runs itself with
//! an environment variable naming one of the `#[ignore]`d child tests below, which do
//! nothing unless that variable asks for them.

#[path = "common/base.rs"]
mod base;

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;

use base::{child_output, describe, in_child, recurse_forever};

use grove::thread;
use grove::Runtime;

#[test]
fn stack_overflow_is_reported_and_aborts() {
    let output = child_output("overflow_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
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
    let rt = Runtime::builder().workers(1).build().unwrap();
    let _ = rt.spawn(|| recurse_forever(0)).join();
    eprintln!("unreachable: the overflowing green thread was joined");
}

#[test]
fn other_segfaults_are_not_reported_as_overflows() {
    let output = child_output("segfault_child");
    let stderr = String::from_utf8_lossy(&output.stderr);
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
