//! The goroutine leak, and its fix.
//!
//! `first_answer` asks two green threads for an answer and keeps the first.
//! With an unbuffered channel the slower one blocks forever on its send:
//! nobody will receive it, yet the channel stays open because the receiver
//! is still referenced. `Runtime::tasks()` shows the green thread, parked on
//! "chan send", with the line it is stuck on. The fix gives the channel room
//! for every answer, so both senders finish whatever the receiver does.

use grove::chan::{self, Receiver};
use grove::Runtime;
use std::time::{Duration, Instant};

/// Returns the first answer, and the receiver, which the caller keeps (in a
/// struct, a map...) but never reads again.
fn first_answer(capacity: usize) -> (u32, Receiver<u32>) {
    let (tx, rx) = chan::bounded(capacity);
    for (id, delay_ms) in [(1u32, 1u64), (2, 20)] {
        let tx = tx.clone();
        grove::go(move || {
            grove::thread::sleep(Duration::from_millis(delay_ms));
            let _ = tx.send(id); // with capacity 0, the loser blocks here
        });
    }
    (rx.recv().unwrap(), rx)
}

/// Waits (at most 10 s) until the runtime's green threads look as expected.
fn wait_for(rt: &Runtime, what: &str, done: impl Fn(&Runtime) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(rt) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::yield_now();
    }
}

fn stuck_on_send(rt: &Runtime) -> usize {
    rt.tasks()
        .iter()
        .filter(|t| t.blocked_on == Some("chan send"))
        .count()
}

fn main() {
    let rt = Runtime::builder().workers(2).build().unwrap();

    let (winner, kept) = rt.block_on(|| first_answer(0));
    wait_for(&rt, "the loser to block", |rt| stuck_on_send(rt) == 1);
    println!("leaky: first answer {winner}; green threads stuck on a send:");
    for task in rt.tasks() {
        println!(
            "  {:?} {:?} on {:?} at {}, spawned at {}",
            task.id,
            task.state,
            task.blocked_on.unwrap_or("-"),
            task.blocked_at.map_or("-".to_string(), |l| l.to_string()),
            task.spawned_at
        );
    }
    // Dropping the last receiver makes the stuck send fail: the green
    // thread ends (in Go it would stay blocked for the life of the program).
    drop(kept);
    wait_for(&rt, "the leaked green thread to end", |rt| {
        rt.stats().live == 0
    });

    let (winner, kept) = rt.block_on(|| first_answer(2));
    wait_for(&rt, "both answerers to finish", |rt| rt.stats().live == 0);
    println!(
        "fixed: first answer {winner}; green threads stuck on a send: {}",
        stuck_on_send(&rt)
    );
    assert_eq!(stuck_on_send(&rt), 0);
    drop(kept);
}
