//! Timeout with select: wait for a result, but not longer than a deadline
//! (Go's `select { case r := <-c: ... case <-time.After(d): ... }`).

use grove::chan;
use grove::select;
use std::time::Duration;

fn slow_answer(delay: Duration) -> chan::Receiver<&'static str> {
    // Buffered, so the worker can finish even if nobody listens any more.
    let (tx, rx) = chan::bounded(1);
    grove::go(move || {
        grove::thread::sleep(delay);
        let _ = tx.send("answer");
    });
    rx
}

fn main() {
    let outcomes = grove::run(|| {
        let mut outcomes = Vec::new();
        for delay_ms in [5u64, 500] {
            let rx = slow_answer(Duration::from_millis(delay_ms));
            let outcome = select! {
                recv(rx) -> msg => format!("got {:?} after ~{delay_ms} ms", msg.unwrap()),
                recv(chan::after(Duration::from_millis(100))) -> _ => format!("timed out waiting {delay_ms} ms"),
            };
            println!("{outcome}");
            outcomes.push(outcome);
        }
        outcomes
    });
    assert!(outcomes[0].starts_with("got"));
    assert!(outcomes[1].starts_with("timed out"));
}
