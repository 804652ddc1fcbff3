//! The tasks section: the workloads about tasks themselves (spawn_join,
//! skynet, parked_memory, the contended mutex, fib_fork), each built with
//! its implementations.

use std::rc::Rc;

use grove_workloads::{fib_fork, mutex, parked_memory, skynet, spawn_join, util};

use super::{may_note, warm_of, Ctx};
use crate::plan::{human, millis, per_op, Entry, Workload};

/// `spawn_join`: spawn N tasks that bump a shared counter; wait for all.
/// grove's first row is the program Go's twin runs (borrowed counter, one
/// wait for all); the second joins a handle per task (see `spawn_join`).
pub fn spawn_join(ctx: &Ctx) -> Workload {
    let (n, n_std) = (ctx.sizes.spawn, ctx.sizes.spawn_std);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let rt2 = Rc::clone(&rt);
    let may_fit = util::may_fit_count(n);
    let n_may = may_fit.size;
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
    entries.extend(ctx.go_entry("spawn_join", n, warm_of(n), ctx.workers, 1.0));
    entries.push(Entry::new("tokio", n, move |n| {
        Ok(per_op(spawn_join::tokio(&tk, n), n))
    }));
    entries.push(
        Entry::new("may", n_may, |n| Ok(per_op(spawn_join::may(n), n)))
            .note(may_note(&may_fit, "coroutines")),
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
        each_rep: false,
    }
}

/// The name of grove's spawn_join row that joins each task's handle.
pub const JOIN_EACH: &str = "grove, join each";

/// `skynet`: a 10-ary tree of tasks, leaves send their ordinal.
pub fn skynet(ctx: &Ctx) -> Workload {
    let (leaves, leaves_std) = (ctx.sizes.leaves, ctx.sizes.leaves_std);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let may_fit = skynet::may_fit_leaves(leaves as u64);
    let leaves_may = may_fit.size as usize;
    let tasks = |l: usize| skynet::tasks(l as u64) as f64;
    let mut entries = vec![Entry::new("grove", leaves, move |l| {
        Ok(millis(skynet::grove(&rt, l as u64)))
    })
    .per(tasks(leaves))];
    entries.extend(ctx.go_entry(
        "skynet",
        leaves,
        warm_of(leaves),
        ctx.workers,
        tasks(leaves),
    ));
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
            .note(may_note(&may_fit, "leaves")),
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
        each_rep: false,
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
    let may_fit = util::may_fit_count(n);
    let n_may = may_fit.size;
    let child = move |imp: &'static str| move |n: usize| crate::child::parked(imp, n, w, limit);
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
    entries.extend(ctx.go_entry("parked_memory", n, 0, w, 1.0));
    entries.push(
        Entry::new("tokio", n, child("tokio"))
            .warm(0)
            .note("stackless; await one Notify"),
    );
    entries.push(
        Entry::new("may", n_may, child("may"))
            .warm(0)
            .note(may_note(&may_fit, "coroutines")),
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
        each_rep: false,
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
    entries.extend(ctx.go_entry("mutex", n, warm_of(n), ctx.workers, 1.0));
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
        each_rep: false,
    }
}

/// `fib_fork`: fib(n), every call with n >= 2 forks fib(n-1).
pub fn fib_fork(ctx: &Ctx) -> Workload {
    let n = ctx.sizes.fib;
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let pool = Rc::new(util::rayon_pool(ctx.workers));
    let n_may = fib_fork::may_fit_n(n as u32).size as usize;
    let tasks = |n: usize| fib_fork::tasks(n as u32) as f64;
    let warm = n.saturating_sub(8);
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(millis(fib_fork::grove(&rt, n as u32)))
    })
    .warm(warm)
    .per(tasks(n))];
    entries.extend(ctx.go_entry("fib_fork", n, warm, ctx.workers, tasks(n)));
    entries.push(
        Entry::new("tokio", n, move |n| {
            Ok(millis(fib_fork::tokio(&tk, n as u32)))
        })
        .warm(warm)
        .per(tasks(n)),
    );
    let may_note = if n_may < n {
        format!(
            "fib({n_may}): fib({n})'s forks do not fit under vm.max_map_count (may maps every \
             stack at spawn)"
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
        each_rep: false,
    }
}
