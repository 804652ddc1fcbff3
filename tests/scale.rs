//! Scale: 100,000 green threads parked at once, then all released and
//! joined, with nothing lost.
//!
//! Each stack is two memory mappings, so 100,000 parked green threads need
//! about 200,000 of them: more than Linux's default `vm.max_map_count`
//! (65530). The test raises the limit when it can (root), restores it at the
//! end even on failure, and otherwise skips with a message. It is the only
//! test of this binary, so nothing else in the process sees the raised
//! limit.

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{watchdog_for, Latch};
use grove::thread;
use grove::Runtime;

const TASKS: usize = 100_000;
const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";
/// Two mappings per stack plus room for the rest of the process.
const NEEDED_MAP_COUNT: usize = 262_144;

/// Raises `vm.max_map_count` for the test's lifetime and puts the old value
/// back on drop, unless someone else changed it meanwhile (a benchmark
/// running at the same time may raise and restore it too).
struct RaisedMapCount {
    /// The value found, if we wrote ours over it.
    old: Option<String>,
    needed: usize,
    /// Held while the limit is raised: the benchmarks take the same lock,
    /// so two raisers never save each other's raised value as the "old" one.
    _lock: Option<fs::File>,
}

/// The lock file the benchmarks (`grove-benches` util) use too.
const LOCK_FILE: &str = "/tmp/grove-bench-max-map-count.lock";

fn lock_map_count() -> Option<fs::File> {
    use std::os::unix::io::AsRawFd;
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .ok()?;
    // SAFETY: flock(2) on a descriptor this function owns.
    (unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0).then_some(file)
}

fn read_max_map_count() -> Result<usize, String> {
    let text = fs::read_to_string(MAX_MAP_COUNT)
        .map_err(|e| format!("cannot read {MAX_MAP_COUNT}: {e}"))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{MAX_MAP_COUNT} holds {text:?}: {e}"))
}

impl RaisedMapCount {
    /// Ok when the limit is high enough (raised or already so); Err with the
    /// reason otherwise.
    fn to_at_least(needed: usize) -> Result<RaisedMapCount, String> {
        let lock = lock_map_count();
        let current = read_max_map_count()?;
        let mut raised = RaisedMapCount {
            old: None,
            needed,
            _lock: lock,
        };
        if current < needed {
            raised.write(needed).map_err(|e| {
                format!(
                    "vm.max_map_count is {current}, below the {needed} this test needs, and \
                     raising it failed ({e}); run as root or `sysctl -w vm.max_map_count={needed}`"
                )
            })?;
            raised.old = Some(current.to_string());
        }
        Ok(raised)
    }

    /// A closure that raises the limit again if another process lowered it
    /// meanwhile; it does not own the guard, so the restore stays here.
    fn reasserter(&self) -> impl Fn() + Send + 'static {
        let (ours, needed) = (self.old.is_some(), self.needed);
        move || {
            if ours && read_max_map_count().is_ok_and(|v| v < needed) {
                eprintln!("vm.max_map_count was lowered by another process; raising it again");
                let _ = fs::write(MAX_MAP_COUNT, needed.to_string());
            }
        }
    }

    fn write(&self, value: usize) -> std::io::Result<()> {
        fs::write(MAX_MAP_COUNT, value.to_string())
    }
}

impl Drop for RaisedMapCount {
    fn drop(&mut self) {
        let Some(old) = &self.old else { return };
        if read_max_map_count().is_ok_and(|v| v == self.needed) {
            if let Err(e) = fs::write(MAX_MAP_COUNT, old) {
                eprintln!("could not restore vm.max_map_count to {old}: {e}");
            }
        }
    }
}

#[test]
fn a_hundred_thousand_parked_green_threads() {
    let raised = match RaisedMapCount::to_at_least(NEEDED_MAP_COUNT) {
        Ok(raised) => raised,
        Err(reason) => {
            eprintln!("skipping a_hundred_thousand_parked_green_threads: {reason}");
            return;
        }
    };
    // The watchdog's body thread is detached if it hangs; the limit is put
    // back here, on the test's own thread, whatever happens.
    let reassert = raised.reasserter();
    watchdog_for(Duration::from_secs(120), move || {
        common::for_each_workers(|workers| {
            reassert();
            park_and_release_all(workers);
        });
    });
    drop(raised);
}

fn park_and_release_all(workers: usize) {
    assert!(
        grove::runtime::stack_budget() >= TASKS,
        "the stack budget is {} after raising vm.max_map_count",
        grove::runtime::stack_budget()
    );
    let start = Instant::now();
    let rt = Runtime::builder().workers(workers).build().unwrap();
    let parked = Latch::new(TASKS);
    let released = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let (parked, released) = (parked.clone(), released.clone());
            rt.spawn(move || {
                parked.count_down();
                loop {
                    thread::park();
                    if released.load(Ordering::Acquire) {
                        break;
                    }
                }
                i as u64
            })
        })
        .collect();
    parked.wait();
    let spawned = start.elapsed();

    let stats = rt.stats();
    assert_eq!(stats.live, TASKS as u64, "{stats:?}");
    assert_eq!(stats.live_stacks, TASKS, "{stats:?}");
    assert!(stats.mapped_stacks >= TASKS, "{stats:?}");

    released.store(true, Ordering::Release);
    for h in &handles {
        h.thread().unpark();
    }
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (TASKS as u64) * (TASKS as u64 - 1) / 2);
    let released_in = start.elapsed() - spawned;

    common::wait_until("every stack back", || rt.stats().live_stacks == 0);
    drop(rt);
    eprintln!(
        "{TASKS} green threads on {workers} worker(s): spawned and parked in {spawned:?}, released and joined in \
         {released_in:?}"
    );
}
