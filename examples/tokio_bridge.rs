//! An async (tokio) program that hands blocking-style work to green
//! threads and awaits them, and green threads that wait on tokio tasks:
//! `grove::future`, the bridge both ways.
//!
//! - **async → green**: a green thread's `JoinHandle` is a future, so a
//!   tokio task can `.await` it. The green threads here run a pipeline of
//!   blocking-style stages connected by grove channels, which would tie up
//!   tokio's worker threads if written with blocking calls in async code.
//! - **green → async**: `grove::future::block_on` parks a green thread
//!   until a future is ready. A future that needs tokio's reactor (its
//!   timers, its sockets) must run on tokio, so the green thread spawns it
//!   there and waits for tokio's `JoinHandle`, which only needs a waker.

use std::time::Duration;

use grove::chan;
use grove::future::block_on;

/// A blocking-style pipeline in green threads: numbers, squared by four
/// workers, summed.
fn pipeline(n: u64) -> u64 {
    let (nums_tx, nums_rx) = chan::bounded::<u64>(16);
    let (squares_tx, squares_rx) = chan::bounded::<u64>(16);
    grove::go(move || {
        for i in 1..=n {
            nums_tx.send(i).unwrap();
        }
    });
    for _ in 0..4 {
        let (nums_rx, squares_tx) = (nums_rx.clone(), squares_tx.clone());
        grove::go(move || {
            for i in &nums_rx {
                squares_tx.send(i * i).unwrap();
            }
        });
    }
    drop(squares_tx);
    squares_rx.iter().sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // async → green: await green threads from tokio tasks.
    let mut tasks = Vec::new();
    for n in [10u64, 100, 1000] {
        tasks.push(tokio::spawn(async move {
            let green = grove::go(move || pipeline(n));
            (n, green.await.expect("the pipeline panicked"))
        }));
    }
    for task in tasks {
        let (n, sum) = task.await.unwrap();
        println!("sum of squares 1..={n}: {sum} (computed by green threads)");
        assert_eq!(sum, n * (n + 1) * (2 * n + 1) / 6);
    }

    // green → async: green threads wait on tokio tasks that use tokio's
    // timers, spawned on tokio's runtime.
    let tokio_rt = tokio::runtime::Handle::current();
    let greens: Vec<_> = (0..8u64)
        .map(|i| {
            let tokio_rt = tokio_rt.clone();
            grove::go(move || {
                let reply = tokio_rt.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5 * i)).await;
                    format!("reply {i}")
                });
                // Parks this green thread only; tokio's JoinHandle wakes it.
                block_on(reply).expect("the tokio task panicked")
            })
        })
        .collect();
    for green in greens {
        // Awaited, not joined: joining would block a tokio worker thread.
        let reply = green.await.unwrap();
        println!("a green thread got {reply:?} from tokio");
    }
}
