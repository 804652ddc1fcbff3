//! The sync section: the sync-primitive workloads (mutex_uncontended,
//! rwlock_read, waitgroup_fanout), each built with its implementations;
//! the contended `mutex` is in the tasks section.

use grove_workloads::{mutex_uncontended, rwlock_read, util, waitgroup_fanout};

use super::{may_note, warm_of, Ctx};
use crate::plan::{human, per_op, Entry, Workload};

/// `mutex_uncontended`: one task locks and unlocks one mutex N times.
pub fn mutex_uncontended(ctx: &Ctx) -> Workload {
    let n = ctx.sizes.uncontended;
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(per_op(mutex_uncontended::grove(&rt, n), n))
    })
    .note("grove::sync::Mutex, one green thread")];
    entries.extend(ctx.go_entry("mutex_uncontended", n, warm_of(n), ctx.workers, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| {
            Ok(per_op(mutex_uncontended::tokio(&tk, n), n))
        })
        .note("tokio::sync::Mutex, lock().await in one task"),
    );
    entries.push(
        Entry::new("may", n, |n| Ok(per_op(mutex_uncontended::may(n), n)))
            .note("may::sync::Mutex, one coroutine"),
    );
    entries.push(
        Entry::new("std::thread", n, |n| {
            Ok(per_op(mutex_uncontended::std_thread(n), n))
        })
        .note("std::sync::Mutex, one OS thread"),
    );
    Workload {
        key: "mutex_uncontended",
        what: "one task locks and unlocks one mutex, incrementing the counter it guards".into(),
        unit: "ns/lock+unlock",
        size: format!("{} lock + unlock pairs", human(n)),
        notes: Vec::new(),
        entries,
        each_rep: false,
    }
}

/// `rwlock_read`: 8 tasks share one reader-writer lock, one operation in
/// 100 a write.
pub fn rwlock_read(ctx: &Ctx) -> Workload {
    let n = rwlock_read::operations(ctx.sizes.rw_ops);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(per_op(rwlock_read::grove(&rt, n), n))
    })
    .note("grove::sync::RwLock")];
    entries.extend(ctx.go_entry("rwlock_read", n, warm_of(n), ctx.workers, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| {
            Ok(per_op(rwlock_read::tokio(&tk, n), n))
        })
        .note("tokio::sync::RwLock"),
    );
    entries.push(
        Entry::new("may", n, |n| Ok(per_op(rwlock_read::may(n), n))).note("may::sync::RwLock"),
    );
    entries.push(
        Entry::new("std::thread", n, |n| {
            Ok(per_op(rwlock_read::std_thread(n), n))
        })
        .note("std::sync::RwLock, 8 OS threads"),
    );
    Workload {
        key: "rwlock_read",
        what: format!(
            "{} tasks share one RwLock over a counter; 1 operation in {} writes (increments), \
             the rest read",
            rwlock_read::TASKS,
            rwlock_read::WRITE_EVERY
        ),
        unit: "ns/op",
        size: format!("{} operations", human(n)),
        notes: Vec::new(),
        entries,
        each_rep: false,
    }
}

/// `waitgroup_fanout`: spawn N tasks that each bump a counter and call
/// `done` on one wait group; the spawner waits.
pub fn waitgroup_fanout(ctx: &Ctx) -> Workload {
    let (n, n_std) = (ctx.sizes.fanout, ctx.sizes.fanout_std);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let may_fit = util::may_fit_count(n);
    let n_may = may_fit.size;
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(per_op(waitgroup_fanout::grove(&rt, n), n))
    })
    .note("grove::sync::WaitGroup, grove::go")];
    entries.extend(ctx.go_entry("waitgroup_fanout", n, warm_of(n), ctx.workers, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| {
            Ok(per_op(waitgroup_fanout::tokio(&tk, n), n))
        })
        .note("atomic count + Notify (tokio has no wait group)"),
    );
    let may_what = may_note(&may_fit, "coroutines");
    entries.push(
        Entry::new("may", n_may, |n| Ok(per_op(waitgroup_fanout::may(n), n))).note(
            if may_what.is_empty() {
                "may::sync::WaitGroup (a clone per task)".to_string()
            } else {
                may_what
            },
        ),
    );
    entries.push(
        Entry::new("std::thread", n_std, |n| {
            Ok(per_op(waitgroup_fanout::std_thread(n), n))
        })
        .note(format!(
            "{} threads; Mutex + Condvar count (about 50 µs a thread here)",
            human(n_std)
        )),
    );
    Workload {
        key: "waitgroup_fanout",
        what: "spawn N tasks that each bump a counter and call done on one wait group; wait on it"
            .into(),
        unit: "ns/task",
        size: format!("{} tasks", human(n)),
        notes: Vec::new(),
        entries,
        each_rep: false,
    }
}
