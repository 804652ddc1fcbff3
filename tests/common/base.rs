//! The helpers every integration-test helper module shares: worker-count
//! sweeps, a watchdog that bounds every test, waiting (without sleeping)
//! until green threads are parked on a given primitive, panic messages, and
//! running one test in a child process.
//!
//! `chan_util.rs`, `sync_util.rs`, `rel_util.rs` and `mod.rs` re-export it
//! with their own additions; a test that needs nothing more includes it
//! alone.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use grove::runtime::TaskInfo;
use grove::Runtime;

/// The worker counts every runtime test sweeps (marl's habit).
pub const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// How long a test body may run before the watchdog calls it hung.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How long a bounded wait (`wait_until`, `wait_blocked`) polls before it
/// fails the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// A runtime with `workers` workers.
pub fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .unwrap_or_else(|err| panic!("building a {workers}-worker runtime: {err}"))
}

/// Runs `f` on a fresh OS thread and fails the test if it has not finished
/// within `limit`; a panic in `f` is resumed on the caller. A hung body is
/// left behind (its thread detached): the test fails either way.
pub fn watchdog_for<F>(limit: Duration, f: F)
where
    F: FnOnce() + Send + 'static,
{
    let name = std::thread::current()
        .name()
        .map_or_else(|| "test".to_string(), |n| format!("{n} (body)"));
    let (done_tx, done_rx) = mpsc::channel();
    let body = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(f));
            let _ = done_tx.send(outcome);
        })
        .expect("spawning the watchdog's body thread");
    match done_rx.recv_timeout(limit) {
        Ok(Ok(())) => body.join().expect("the body thread already finished"),
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("the test did not finish within {limit:?}: a deadlock or a lost wake-up?"),
    }
}

/// [`watchdog_for`] with [`TEST_LIMIT`].
pub fn watchdog<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    watchdog_for(TEST_LIMIT, f);
}

/// Runs `f(workers)` once per entry of [`WORKER_COUNTS`]; a failure says
/// which count it happened with. It sets no time limit of its own: call it
/// inside [`watchdog`] or [`watchdog_for`] (or use [`for_each_workers`]).
pub fn sweep_workers(f: impl Fn(usize)) {
    for workers in WORKER_COUNTS {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(workers))) {
            eprintln!("test failed with {workers} worker(s)");
            panic::resume_unwind(payload);
        }
    }
}

/// [`sweep_workers`] under one [`watchdog`] ([`TEST_LIMIT`] for the whole
/// sweep).
pub fn for_each_workers<F>(f: F)
where
    F: Fn(usize) + Send + 'static,
{
    watchdog(move || sweep_workers(f));
}

/// Under one watchdog, runs `f(workers)` as the main green thread of a
/// fresh runtime of each worker count.
pub fn block_on_each<F>(f: F)
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let f = Arc::new(f);
    for_each_workers(move |workers| {
        let f = f.clone();
        runtime(workers).block_on(move || f(workers));
    });
}

/// Polls `cond` until it holds, yielding in between (a green caller lets its
/// worker run others; an OS caller gives up its CPU). Fails after
/// [`WAIT_LIMIT`].
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "gave up after {WAIT_LIMIT:?} waiting for {what}"
        );
        grove::thread::yield_now();
    }
}

/// The green threads of `rt` parked on `reason` now (`"Mutex::lock"`,
/// `"chan recv"`, ...).
pub fn blocked_on(rt: &Runtime, reason: &str) -> Vec<TaskInfo> {
    rt.tasks()
        .into_iter()
        .filter(|t| t.blocked_on == Some(reason))
        .collect()
}

/// Waits until exactly `n` green threads of `rt` are parked on `reason`.
/// Every primitive queues its waiter before it parks, so once this returns
/// those threads are in the primitive's wait queue.
#[track_caller]
pub fn wait_blocked(rt: &Runtime, reason: &str, n: usize) {
    wait_until(
        &format!("{n} green thread(s) blocked on {reason:?}"),
        || blocked_on(rt, reason).len() == n,
    );
}

/// The message of a panic payload (`&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Runs `f`, which must panic, without printing the panic (the default hook
/// would clutter the test output), and returns the panic's message.
#[track_caller]
pub fn expect_panic<R>(f: impl FnOnce() -> R) -> String {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => panic_message(&*payload),
    }
}

const CHILD_ENV: &str = "GROVE_TEST_CHILD";

/// Runs the named test of this test binary (usually an `#[ignore]`d one
/// that does nothing unless [`in_child`] says so) in a child process, so
/// that an abort or a fatal signal fails that one test instead of killing
/// the whole binary, and returns how the child ended.
pub fn child_output(test_name: &str) -> std::process::Output {
    let exe = std::env::current_exe().expect("current_exe");
    std::process::Command::new(exe)
        .args([
            test_name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, test_name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the test binary as a child")
}

/// A child's status and output, for a failure message.
pub fn describe(out: &std::process::Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// [`child_output`] for a child expected to pass: whether it ran that one
/// test and passed, with its output.
pub fn run_in_child(test_name: &str) -> (bool, String) {
    let out = child_output(test_name);
    // A child that ran no test (a renamed test) must not pass.
    let ran = String::from_utf8_lossy(&out.stdout).contains("1 passed");
    (out.status.success() && ran, describe(&out))
}

/// Whether this process is the child that [`child_output`] started for
/// `test_name`.
pub fn in_child(test_name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test_name)
}

/// Recurses without bound, to overflow a stack; the frame and the work
/// after the call keep it from being turned into a loop.
pub fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 512]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_forever(depth + 1) + u64::from(frame[7])
}
