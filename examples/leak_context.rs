//! The leaky goroutine, fixed with a context.
//!
//! `search` starts a worker that produces results on an unbuffered channel
//! and returns as soon as it has the first one. Nobody reads the rest, so
//! the worker blocks for ever on its next send: a leak. Here the caller
//! even keeps the receiver (in a cache, a struct...), so the send never
//! fails either.
//!
//! The fix is Go's: the worker selects on `ctx.done()` next to its send,
//! and the caller cancels the context once it has what it needs. The
//! worker's select then takes the done arm and the worker returns.
//! `Runtime::tasks()` and `Runtime::shutdown()` show the difference.

use grove::chan::{self, Receiver};
use grove::context::Context;
use grove::runtime::ShutdownReport;
use grove::{select, Runtime};
use std::time::{Duration, Instant};

/// Leaky: the worker's send blocks for ever after the first result.
fn search_leaky() -> (u64, Receiver<u64>) {
    let (tx, rx) = chan::bounded(0);
    grove::go(move || {
        for n in 1.. {
            if tx.send(n * n).is_err() {
                return;
            }
        }
    });
    (rx.recv().unwrap(), rx)
}

/// Fixed: the worker also listens for cancellation.
fn search(ctx: Context) -> (u64, Receiver<u64>) {
    let (tx, rx) = chan::bounded(0);
    grove::go(move || {
        for n in 1.. {
            select! {
                send(tx, n * n) -> res => if res.is_err() { return },
                recv(ctx.done()) -> _ => return, // cancelled: stop
            }
        }
    });
    (rx.recv().unwrap(), rx)
}

/// Waits (at most 10 s) for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn print_tasks(rt: &Runtime) {
    for t in rt.tasks() {
        println!(
            "    green thread {} {:?}, blocked on {} at {}, spawned at {}",
            t.id.as_u64(),
            t.state,
            t.blocked_on.unwrap_or("-"),
            t.blocked_at.map_or("-".to_string(), |at| at.to_string()),
            t.spawned_at
        );
    }
}

fn main() {
    // The leak.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (first, kept) = rt.block_on(search_leaky);
    wait_for("the worker to block", || {
        rt.tasks().iter().any(|t| t.blocked_on == Some("chan send"))
    });
    println!("leaky: first result {first}; still live:");
    print_tasks(&rt);
    let report: ShutdownReport = rt.shutdown();
    println!("  {report}");
    assert_eq!(report.leaked().len(), 1);
    assert_eq!(report.leaked()[0].blocked_on, Some("chan send"));
    drop(kept);

    // The fix.
    let rt = Runtime::builder().workers(2).build().unwrap();
    let (ctx, cancel) = Context::background().with_cancel();
    let (first, kept) = rt.block_on(move || search(ctx));
    cancel.cancel(); // done with the search: tell the worker
    wait_for("the worker to return", || rt.tasks().is_empty());
    println!(
        "fixed: first result {first}; still live: {}",
        rt.tasks().len()
    );
    let report = rt.shutdown();
    println!("  {report}");
    assert!(report.is_clean(), "{report}");
    assert_eq!(first, 1);
    drop(kept);
}
