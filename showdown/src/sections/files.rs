//! The files section: blocking file I/O made from many tasks at once
//! (`file_read`). Each implementation gets its blocking calls off its
//! schedulers its own way: grove hands each one to its blocking pool and
//! back, tokio to its `spawn_blocking` pool (through `tokio::fs`), Go
//! makes it on the goroutine's own M (handing its P off only if the call
//! blocks long), and may and OS threads simply block.

use grove_workloads::file_read::{self, BLOCK, PATH, TASKS};

use super::{warm_of, Ctx};
use crate::plan::{human, per_op, Entry, Workload};

/// `file_read`: [`TASKS`] tasks each open `/dev/zero` and read [`BLOCK`]
/// bytes from it N / [`TASKS`] times.
pub fn file_read(ctx: &Ctx) -> Workload {
    let n = file_read::reads(ctx.sizes.file_reads);
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let mut entries =
        vec![
            Entry::new("grove", n, move |n| Ok(per_op(file_read::grove(&rt, n), n))).note(format!(
                "{TASKS} green threads, grove::blocking(|| file.read(..)) per read"
            )),
        ];
    entries.extend(ctx.go_entry("file_read", n, warm_of(n), ctx.workers, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| Ok(per_op(file_read::tokio(&tk, n), n))).note(format!(
            "{TASKS} tasks, tokio::fs::File read_exact (spawn_blocking per read)"
        )),
    );
    entries.push(
        Entry::new("may", n, |n| Ok(per_op(file_read::may(n), n))).note(format!(
            "{TASKS} coroutines, plain blocking read on a may coroutine (blocks its worker)"
        )),
    );
    entries.push(
        Entry::new("std::thread", n, |n| {
            Ok(per_op(file_read::std_thread(n), n))
        })
        .note(format!("{TASKS} OS threads, std::fs::File::read")),
    );
    Workload {
        key: "file_read",
        what: format!(
            "{TASKS} tasks each open {PATH} and read {} KiB from it N/{TASKS} times, checking \
             every read",
            BLOCK / 1024
        ),
        unit: "ns/read",
        size: format!("{} reads", human(n)),
        notes: Vec::new(),
        entries,
        each_rep: false,
    }
}
