//! The workloads about tasks themselves (spawn_join, skynet,
//! parked_memory, mutex, fib_fork), each built with its implementations;
//! the channel workloads are in `suite_chan`.

use std::rc::Rc;
use std::time::Duration;

use grove_benches::{fib_fork, mutex, parked_memory, skynet, spawn_join, util};

use super::go::{self, GoTwin};
use super::plan::{human, millis, per_op, Entry, Sizes, Workload};

/// What every builder needs.
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
    /// Go's entry for workload `name` at `scale` with `procs` Ps, if Go is
    /// here.
    pub fn go_entry(
        &self,
        name: &'static str,
        scale: f64,
        procs: usize,
        per: f64,
    ) -> Option<Entry> {
        let go = Rc::clone(self.go.as_ref()?);
        let version = go.version.clone();
        Some(
            Entry::new("Go", 1, move |_| go.run(name, scale, procs))
                .warm(0)
                .per(per)
                .note(format!("{version}, GOMAXPROCS={procs}")),
        )
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

/// The may note for a size scaled down to fit `vm.max_map_count` (also
/// used by `suite_sync`).
pub fn may_note(fit: usize, wanted: usize, what: &str) -> String {
    if fit < wanted {
        format!(
            "{} {what}: {} do not fit under vm.max_map_count (may maps every stack at spawn)",
            human(fit),
            human(wanted)
        )
    } else {
        String::new()
    }
}

/// `spawn_join`: spawn N tasks that bump a shared counter; wait for all.
/// grove's first row is the program Go's twin runs (borrowed counter, one
/// wait for all); the second joins a handle per task (see `spawn_join`).
pub fn spawn_join(ctx: &Ctx) -> Workload {
    let (n, n_std) = (ctx.sizes.spawn, ctx.sizes.spawn_std);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let rt2 = Rc::clone(&rt);
    let n_may = util::may_fit_quiet(n);
    let mut entries = vec![
        Entry::new("grove", n, move |n| {
            Ok(per_op(spawn_join::grove_scope(&rt, n), n))
        })
        .note("thread::scope: tasks borrow the counter, one wait for all (Go's twin: WaitGroup)"),
        Entry::new(JOIN_EACH, n, move |n| {
            Ok(per_op(spawn_join::grove(&rt2, n), n))
        })
        .note("grove::go, an Arc clone and a JoinHandle per task, each joined"),
    ];
    entries.extend(ctx.go_entry("spawn_join", go::scale(n, spawn_join::N), ctx.workers, 1.0));
    entries.push(Entry::new("tokio", n, move |n| {
        Ok(per_op(spawn_join::tokio(&tk, n), n))
    }));
    entries.push(
        Entry::new("may", n_may, |n| Ok(per_op(spawn_join::may(n), n))).note(may_note(
            n_may,
            n,
            "coroutines",
        )),
    );
    entries.push(
        Entry::new("std::thread", n_std, |n| {
            Ok(per_op(spawn_join::std_thread(n), n))
        })
        .note(format!("{} threads (about 50 µs each here)", human(n_std))),
    );
    Workload {
        key: "spawn_join",
        what: "spawn N tasks that each bump a shared counter, wait for them all".into(),
        unit: "ns/task",
        size: format!("{} tasks", human(n)),
        notes: Vec::new(),
        entries,
    }
}

/// The name of grove's spawn_join row that joins each task's handle.
pub const JOIN_EACH: &str = "grove, join each";

/// `skynet`: a 10-ary tree of tasks, leaves send their ordinal.
pub fn skynet(ctx: &Ctx) -> Workload {
    let (leaves, leaves_std) = (ctx.sizes.leaves, ctx.sizes.leaves_std);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let leaves_may = skynet::may_fit_leaves(leaves as u64) as usize;
    let tasks = |l: usize| skynet::tasks(l as u64) as f64;
    let mut entries = vec![Entry::new("grove", leaves, move |l| {
        Ok(millis(skynet::grove(&rt, l as u64)))
    })
    .per(tasks(leaves))];
    let go_scale = go::scale(leaves, skynet::LEAVES as usize);
    entries.extend(ctx.go_entry("skynet", go_scale, ctx.workers, tasks(leaves)));
    entries.push(
        Entry::new("tokio", leaves, move |l| {
            Ok(millis(skynet::tokio(&tk, l as u64)))
        })
        .per(tasks(leaves))
        .note("children's JoinHandles awaited"),
    );
    entries.push(
        Entry::new("may", leaves_may, |l| Ok(millis(skynet::may(l as u64))))
            .per(tasks(leaves_may))
            .note(may_note(leaves_may, leaves, "leaves")),
    );
    entries.push(
        Entry::new("std::thread", leaves_std, |l| {
            Ok(millis(skynet::std_thread(l as u64)))
        })
        .per(tasks(leaves_std))
        .note(format!(
            "{} leaves ({} threads); {} leaves would need one OS thread per node: impossible",
            human(leaves_std),
            human(tasks(leaves_std) as usize),
            human(leaves)
        )),
    );
    Workload {
        key: "skynet",
        what: format!(
            "10-ary tree of tasks, {} of them; each node sums its children's answers sent on a channel",
            human(tasks(leaves) as usize)
        ),
        unit: "ms",
        size: format!("{} leaves", human(leaves)),
        notes: vec!["x grove compares time per node where the tree is smaller".into()],
        entries,
    }
}

/// `parked_memory`: N tasks blocked at once; RSS growth per task, each
/// measurement in a fresh child process.
pub fn parked_memory(ctx: &Ctx) -> Workload {
    let (n, n_std, w, limit) = (
        ctx.sizes.parked,
        ctx.sizes.parked_std,
        ctx.workers,
        ctx.child_limit,
    );
    let n_may = util::may_fit_quiet(n);
    let child = move |imp: &'static str| move |n: usize| super::child::parked(imp, n, w, limit);
    let mut notes = vec!["each figure from a fresh process; RSS counts no kernel memory".into()];
    let grove = match parked_memory::grove_can_run(n) {
        Ok(()) => Entry::new("grove", n, child("grove")).warm(0),
        Err(reason) => {
            notes.push(reason.clone());
            Entry::na("grove", reason)
        }
    };
    if n > 30_000 && grove::runtime::stack_mode() == grove::runtime::StackMode::Mappings {
        notes.push(format!(
            "grove: {} stacks of a mapping each need vm.max_map_count above its default 65530; \
             raised for the measurement and restored",
            human(n)
        ));
    }
    let mut entries = vec![grove.note("blocked receiving on one shared channel")];
    entries.extend(ctx.go_entry("parked_memory", go::scale(n, parked_memory::N), w, 1.0));
    entries.push(
        Entry::new("tokio", n, child("tokio"))
            .warm(0)
            .note("stackless; await one Notify"),
    );
    entries.push(
        Entry::new("may", n_may, child("may"))
            .warm(0)
            .note(may_note(n_may, n, "coroutines")),
    );
    entries.push(
        Entry::new("std::thread", n_std, child("std_thread"))
            .warm(0)
            .note(format!(
                "{} threads, 64 KiB stacks; + ~16 KiB kernel stack each",
                human(n_std)
            )),
    );
    Workload {
        key: "parked_memory",
        what: "N tasks blocked at once; resident memory growth per task".into(),
        unit: "KiB/task",
        size: format!("{} tasks", human(n)),
        notes,
        entries,
    }
}

/// `mutex`: 8 tasks increment one counter under one mutex.
pub fn mutex(ctx: &Ctx) -> Workload {
    let n = ctx.sizes.increments;
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let mut entries = vec![
        Entry::new("grove", n, move |n| Ok(per_op(mutex::grove(&rt, n), n)))
            .note("grove::sync::Mutex"),
    ];
    entries.extend(ctx.go_entry("mutex", go::scale(n, mutex::TOTAL), ctx.workers, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| Ok(per_op(mutex::tokio(&tk, n), n)))
            .note("tokio::sync::Mutex"),
    );
    entries.push(Entry::new("may", n, |n| Ok(per_op(mutex::may(n), n))).note("may::sync::Mutex"));
    entries.push(
        Entry::new("std::thread", n, |n| Ok(per_op(mutex::std_thread(n), n)))
            .note("std::sync::Mutex, 8 OS threads"),
    );
    Workload {
        key: "mutex",
        what: "8 tasks increment one counter under one mutex".into(),
        unit: "ns/incr",
        size: format!("{} increments", human(n)),
        notes: Vec::new(),
        entries,
    }
}

/// `fib_fork`: fib(n), every call with n >= 2 forks fib(n-1).
pub fn fib_fork(ctx: &Ctx) -> Workload {
    let n = ctx.sizes.fib;
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let pool = Rc::new(util::rayon_pool(ctx.workers));
    // Half of may's room: grove's runtime of this workload keeps stacks
    // pooled beside it, and may's forks pile up before they finish.
    let may_room = util::may_capacity() as u64 / 2;
    let n_may = (0..=n)
        .rev()
        .find(|&k| fib_fork::tasks(k as u32) <= may_room)
        .unwrap_or(0);
    let tasks = |n: usize| fib_fork::tasks(n as u32) as f64;
    let warm = n.saturating_sub(8);
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(millis(fib_fork::grove(&rt, n as u32)))
    })
    .warm(warm)
    .per(tasks(n))];
    entries.extend(ctx.go_entry("fib_fork", go::fib_scale(n), ctx.workers, tasks(n)));
    entries.push(
        Entry::new("tokio", n, move |n| {
            Ok(millis(fib_fork::tokio(&tk, n as u32)))
        })
        .warm(warm)
        .per(tasks(n)),
    );
    let may_note = if n_may < n {
        format!(
            "fib({n_may}): fib({n})'s forks do not fit under vm.max_map_count beside grove's stacks"
        )
    } else {
        String::new()
    };
    entries.push(
        Entry::new("may", n_may, |n| Ok(millis(fib_fork::may(n as u32))))
            .warm(n_may.saturating_sub(8))
            .per(tasks(n_may))
            .note(may_note),
    );
    entries.push(
        Entry::new("rayon::join", n, move |n| {
            Ok(millis(fib_fork::rayon(&pool, n as u32)))
        })
        .warm(warm)
        .per(tasks(n))
        .note("runs inline unless a thread is idle: a lower bound, not a peer"),
    );
    entries.push(
        Entry::new("sequential", n, |n| {
            Ok(millis(fib_fork::sequential(n as u32)))
        })
        .warm(warm)
        .per(tasks(n))
        .note("plain recursion, no tasks"),
    );
    Workload {
        key: "fib_fork",
        what: format!(
            "fib({n}); every call with n >= 2 forks a task for fib(n-1) ({} tasks)",
            human(tasks(n) as usize)
        ),
        unit: "ms",
        size: format!("fib({n})"),
        notes: Vec::new(),
        entries,
    }
}
