//! The showdown's sections, one module each: [`tasks`] (spawning,
//! fan-out trees, parked memory, the contended mutex), [`chan`] (channel
//! hand-offs and select, co-located, split across workers, and as natural
//! programs), [`sync`] (the other sync primitives), [`files`] (blocking
//! file I/O from many tasks) and [`io`](mod@io) (TCP echo
//! servers under load, idle connections, readiness while a worker
//! computes). A section builds
//! each of its workloads ([`Workload`], one block of the table) with its
//! implementations; [`WORKLOADS`] lists them all, in the order the table
//! prints them. A new section is a module here and its rows in
//! [`WORKLOADS`].

pub mod chan;
pub mod files;
pub mod io;
pub mod sync;
pub mod tasks;

use std::rc::Rc;
use std::time::Duration;

use grove_workloads::sizes::Sizes;
use grove_workloads::util::{self, MayFit};

use crate::go::GoTwin;
use crate::plan::{human, Entry, Workload};

/// What every section's builders need.
#[derive(Clone)]
pub struct Ctx {
    /// The sizes of the mode.
    pub sizes: Sizes,
    /// Workers of every runtime.
    pub workers: usize,
    /// Go's twins, when Go is here.
    pub go: Option<Rc<GoTwin>>,
    /// Longest a child process may run.
    pub child_limit: Duration,
}

impl Ctx {
    /// Go's entry for its twin `name` at `size` (warmed up first at `warm`
    /// in each of its processes; 0: not) with `procs` Ps, if Go is here.
    pub fn go_entry(
        &self,
        name: &'static str,
        size: usize,
        warm: usize,
        procs: usize,
        per: f64,
    ) -> Option<Entry> {
        let go = Rc::clone(self.go.as_ref()?);
        let version = go.version.clone();
        let mut entry = Entry::new("Go", size, move |n| go.run(name, n, warm, procs))
            .warm(0)
            .per(per)
            .note(format!("{version}, GOMAXPROCS={procs}"));
        entry.go_job = Some(crate::go::job(name, size, warm));
        Some(entry)
    }

    /// A grove runtime with `workers` workers, shared by a workload's
    /// closures.
    pub fn grove(&self, workers: usize) -> Rc<grove::Runtime> {
        Rc::new(util::grove_runtime(workers))
    }

    /// A tokio multi-thread runtime with `workers` workers.
    pub fn tokio(&self, workers: usize) -> Rc<tokio::runtime::Runtime> {
        Rc::new(util::tokio_multi_thread(workers))
    }
}

/// The warm-up size of an entry of `size` (tasks, messages, round trips):
/// a hundredth, as [`Entry::new`] sets it.
pub fn warm_of(size: usize) -> usize {
    (size / 100).max(1)
}

/// The note beside may's row when its size had to come down to fit
/// [`util::may_fit`]'s budget (empty when it did not).
pub fn may_note<T: Copy + PartialEq + TryInto<usize>>(fit: &MayFit<T>, what: &str) -> String {
    let count = |v: T| v.try_into().unwrap_or(usize::MAX);
    if fit.size == fit.wanted {
        return String::new();
    }
    format!(
        "{} {what}: {} do not fit under vm.max_map_count (may maps every stack at spawn)",
        human(count(fit.size)),
        human(count(fit.wanted))
    )
}

/// When a workload runs without being named in `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// In every run.
    Always,
    /// With `--natural` (the natural programs, placed as the runtime
    /// likes, each repetition's figure printed).
    Natural,
    /// With `--full` (too long for the quick run).
    Full,
}

/// One workload of the table.
pub struct Spec {
    /// Its name (as in Go's twin and BENCHMARKS.md).
    pub key: &'static str,
    /// Builds it (creating its runtimes).
    pub build: fn(&Ctx) -> Workload,
    /// When it runs.
    pub runs: Runs,
    /// Its repetitions, when not the mode's (and `--reps` does not say).
    pub reps: Option<usize>,
}

const fn always(key: &'static str, build: fn(&Ctx) -> Workload) -> Spec {
    Spec {
        key,
        build,
        runs: Runs::Always,
        reps: None,
    }
}

const fn natural(key: &'static str, build: fn(&Ctx) -> Workload) -> Spec {
    Spec {
        key,
        build,
        runs: Runs::Natural,
        reps: None,
    }
}

/// The I/O workloads run seconds per repetition: 3 repetitions in every
/// mode unless `--reps` says otherwise.
const IO_REPS: Option<usize> = Some(3);

const fn io(key: &'static str, build: fn(&Ctx) -> Workload, runs: Runs) -> Spec {
    Spec {
        key,
        build,
        runs,
        reps: IO_REPS,
    }
}

/// Every workload, in the order of the table.
pub const WORKLOADS: &[Spec] = &[
    always("spawn_join", tasks::spawn_join),
    always("pingpong0", chan::pingpong0),
    always("pingpong0_split", chan::pingpong0_split),
    always("pingpong0_1w", chan::pingpong0_1w),
    always("prodcons_cap0", chan::prodcons_cap0),
    always("prodcons_cap0_split", chan::prodcons_cap0_split),
    always("prodcons_cap128", chan::prodcons_cap128),
    always("prodcons_cap128_split", chan::prodcons_cap128_split),
    always("prodcons_4p4c", chan::prodcons_4p4c),
    always("prodcons_4p4c_split", chan::prodcons_4p4c_split),
    always("skynet", tasks::skynet),
    always("parked_memory", tasks::parked_memory),
    always("mutex", tasks::mutex),
    always("mutex_uncontended", sync::mutex_uncontended),
    always("rwlock_read", sync::rwlock_read),
    always("waitgroup_fanout", sync::waitgroup_fanout),
    always("select2", chan::select2),
    always("select2_split", chan::select2_split),
    always("fib_fork", tasks::fib_fork),
    always("file_read", files::file_read),
    io("echo_1", io::echo_1, Runs::Always),
    io("echo_100", io::echo_100, Runs::Always),
    io("echo_1000", io::echo_1000, Runs::Always),
    io("echo_10000", io::echo_10000, Runs::Full),
    io("idle_conns", io::idle_conns, Runs::Always),
    io("idle_conns_most", io::idle_conns_most, Runs::Full),
    io("responsive", io::responsive, Runs::Always),
    natural("prodcons_cap0_natural", chan::prodcons_cap0_natural),
    natural("prodcons_cap128_natural", chan::prodcons_cap128_natural),
    natural("prodcons_4p4c_natural", chan::prodcons_4p4c_natural),
    natural("select2_natural", chan::select2_natural),
];

/// The "how many concurrent tasks fit" section's name for `--only`: not a
/// workload of the table (see `capacity`).
pub const CAPACITY: &str = "capacity";

/// The workload named `key`.
pub fn spec(key: &str) -> Option<&'static Spec> {
    WORKLOADS.iter().find(|s| s.key == key)
}

/// Every name `--only` accepts, in order.
pub fn names() -> impl Iterator<Item = &'static str> {
    WORKLOADS.iter().map(|s| s.key).chain([CAPACITY])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let all: Vec<_> = names().collect();
        for (i, n) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(n), "{n} twice");
        }
        assert!(spec("select2_split").is_some());
        assert!(spec("capacity").is_none());
    }
}
