//! Helpers shared by the channel tests (`tests/chan_*.rs`): worker-count
//! sweeps, a watchdog that bounds every test, waiting (without sleeping)
//! until green threads are parked on a channel, drop counters, and the
//! checksum that the stress tests use to prove nothing was lost or
//! duplicated.
//!
//! Included with `#[path = "common/chan_util.rs"] mod chan_util;` so that it
//! stays independent of `common/mod.rs`. Each test binary uses a subset.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use grove::runtime::TaskInfo;
use grove::Runtime;

/// The worker counts every runtime test sweeps.
pub const WORKER_COUNTS: [usize; 4] = [1, 2, 4, 8];

/// How long a test body may run before the watchdog calls it hung.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How long a bounded wait (`wait_until`, `wait_blocked`) polls before it
/// fails the test.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// How late a timer may fire on this (noisy, 2-core, debug build) machine
/// before a test calls it broken. Deliberately loose: the timer tests check
/// "never early" exactly and "not absurdly late" only.
pub const LATE_LIMIT: Duration = Duration::from_millis(200);

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
        .map_or_else(|| "chan test".to_string(), |n| format!("{n} (body)"));
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

/// Under one watchdog, runs `f(workers)` once per entry of
/// [`WORKER_COUNTS`]; a failure says which count it happened with.
pub fn for_each_workers<F>(f: F)
where
    F: Fn(usize) + Send + 'static,
{
    watchdog(move || {
        for workers in WORKER_COUNTS {
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| f(workers))) {
                eprintln!("channel test failed with {workers} worker(s)");
                panic::resume_unwind(payload);
            }
        }
    });
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

/// The green threads of `rt` that are parked on `reason` now (`"chan send"`,
/// `"chan recv"`, `"select"`, ...).
pub fn blocked_on(rt: &Runtime, reason: &str) -> Vec<TaskInfo> {
    rt.tasks()
        .into_iter()
        .filter(|t| t.blocked_on == Some(reason))
        .collect()
}

/// Waits (from an OS thread) until exactly `n` green threads of `rt` are
/// parked on `reason`. Channel operations queue their wait node before they
/// park, so once this returns those operations are waiting in their
/// channel's queue.
#[track_caller]
pub fn wait_blocked(rt: &Runtime, reason: &str, n: usize) {
    wait_until(
        &format!("{n} green thread(s) blocked on {reason:?}"),
        || blocked_on(rt, reason).len() == n,
    );
}

/// Counts drops of [`Tracked`] values.
#[derive(Default)]
pub struct DropCount(AtomicUsize);

impl DropCount {
    pub fn new() -> Arc<DropCount> {
        Arc::new(DropCount::default())
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A value that counts its drop: proves a value was dropped exactly once
/// (neither leaked nor duplicated) and carries an id.
pub struct Tracked {
    pub id: u64,
    count: Arc<DropCount>,
}

impl Tracked {
    pub fn new(id: u64, count: &Arc<DropCount>) -> Tracked {
        Tracked {
            id,
            count: count.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.count.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

/// A message of the stress tests: producer `p`'s `seq`-th value.
pub type Msg = (usize, u64);

/// Checks what the consumers of a stress test received, one `Vec` per
/// consumer in the order it received them, against `producers` producers
/// that each sent `0..per_producer` in order:
///
/// - every `(p, seq)` arrived exactly once (nothing lost, nothing
///   duplicated), so the count and the sum match too;
/// - each consumer saw each producer's values in increasing order (a
///   channel is FIFO, and a producer's sends are sequential).
#[track_caller]
pub fn check_received(received: &[Vec<Msg>], producers: usize, per_producer: u64) {
    let mut seen = vec![vec![false; per_producer as usize]; producers];
    let mut count = 0u64;
    let mut sum = 0u64;
    for (c, values) in received.iter().enumerate() {
        let mut last: Vec<Option<u64>> = vec![None; producers];
        for &(p, seq) in values {
            assert!(
                p < producers && seq < per_producer,
                "consumer {c} got a value nobody sent: ({p}, {seq})"
            );
            assert!(!seen[p][seq as usize], "({p}, {seq}) was received twice");
            seen[p][seq as usize] = true;
            if let Some(prev) = last[p] {
                assert!(
                    seq > prev,
                    "consumer {c} got producer {p}'s {seq} after its {prev}: not FIFO"
                );
            }
            last[p] = Some(seq);
            count += 1;
            sum += p as u64 * per_producer + seq;
        }
    }
    let total = producers as u64 * per_producer;
    let lost: Vec<(usize, usize)> = seen
        .iter()
        .enumerate()
        .flat_map(|(p, s)| {
            s.iter()
                .enumerate()
                .filter(|(_, got)| !**got)
                .map(move |(seq, _)| (p, seq))
        })
        .take(10)
        .collect();
    assert!(
        lost.is_empty(),
        "values never received (first 10): {lost:?}"
    );
    assert_eq!(count, total, "received count");
    assert_eq!(sum, total * (total - 1) / 2, "received checksum");
}

/// Runs the named test of this test binary in a child process (so that a
/// crash, e.g. a use-after-free turning into SIGSEGV, fails that one test
/// instead of killing the whole binary) and returns whether the child ran
/// that one test and passed, with its output. Inside the child,
/// `in_child()` is true.
pub fn run_in_child(test_name: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .args([
            test_name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, test_name)
        .output()
        .expect("running the test binary as a child");
    let text = format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A child that ran no test (a renamed test, a wrong name) must not pass.
    let ran = String::from_utf8_lossy(&out.stdout).contains("1 passed");
    (out.status.success() && ran, text)
}

const CHILD_ENV: &str = "GROVE_CHAN_TEST_CHILD";

/// Whether this process is the child that [`run_in_child`] started for
/// `test_name`.
pub fn in_child(test_name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test_name)
}
