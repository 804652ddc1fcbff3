//! `skynet`: a 10-ary tree of `leaves` leaves (a power of ten). Every inner
//! node spawns its 10 children and sums what they return; leaf `i` returns
//! its ordinal `i`. The root's sum must be `leaves * (leaves - 1) / 2`
//! (499,999,500,000 for 1,000,000 leaves). The value is the whole run.
//!
//! Fan-in: as in Go's twin (and BENCHMARKS.md), grove's children send
//! their sums on a channel (`grove_fan_in`); tokio and may await or join
//! their children's handles.

use std::time::{Duration, Instant};

use crate::util::{check, may_fit, may_go, MayFit};

/// Children per inner node.
pub const DIV: usize = 10;

/// The right answer for `leaves` leaves.
pub fn expected(leaves: u64) -> u64 {
    leaves * (leaves - 1) / 2
}

/// Tasks spawned for `leaves` leaves: every node but the root (which runs
/// on the task that starts the benchmark). 1,111,110 for 1,000,000.
pub fn tasks(leaves: u64) -> u64 {
    let mut nodes = 0;
    let mut level = leaves;
    while level > 1 {
        nodes += level;
        level /= DIV as u64;
    }
    nodes
}

/// The largest power of ten of leaves, at most `leaves`, whose whole tree
/// of coroutines may can hold at once (see [`may()`]): [`may_fit`]'s rule,
/// with `/ 10` as the ladder.
pub fn may_fit_leaves(leaves: u64) -> MayFit<u64> {
    may_fit(
        leaves,
        |l| tasks(l) as usize,
        |l| (l > 1).then(|| l / DIV as u64),
    )
}

fn check_leaves(what: &str, leaves: u64) {
    let mut power = 1;
    while power < leaves {
        power *= DIV as u64;
    }
    assert!(
        power == leaves,
        "{what}: leaves must be a power of ten, got {leaves}"
    );
}

// ---------------------------------------------------------------- grove --

/// grove: the root runs as a green thread on `rt`; every other node is a
/// green thread spawned by its parent.
pub fn grove(rt: &grove::Runtime, leaves: u64) -> Duration {
    check_leaves("skynet/grove", leaves);
    let (elapsed, sum) = rt.block_on(move || {
        let start = Instant::now();
        let sum = grove_node(0, leaves);
        (start.elapsed(), sum)
    });
    check("skynet/grove", sum, expected(leaves));
    elapsed
}

fn grove_node(num: u64, size: u64) -> u64 {
    if size == 1 {
        num
    } else {
        grove_fan_in(num, size / DIV as u64)
    }
}

/// Fan-in over a channel, as in Go's twin: spawns the [`DIV`] children of
/// a node whose first leaf is `num`, each covering `sub` leaves; each
/// child sends its sum on one shared unbuffered channel, and the parent
/// receives [`DIV`] answers and returns their sum.
fn grove_fan_in(num: u64, sub: u64) -> u64 {
    let (tx, rx) = grove::chan::bounded::<u64>(0);
    for i in 0..DIV as u64 {
        let tx = tx.clone();
        let first = num + i * sub;
        // Detached, as Go's goroutines: the answer comes back on `tx`.
        drop(grove::go(move || {
            tx.send(grove_node(first, sub))
                .expect("skynet/grove: the parent stopped receiving");
        }));
    }
    drop(tx);
    (0..DIV)
        .map(|_| rx.recv().expect("skynet/grove: a child died"))
        .sum()
}

// ---------------------------------------------------------------- tokio --

/// tokio: the root runs in a task spawned on `rt`; every other node is a
/// task spawned by its parent, whose `JoinHandle` the parent awaits.
pub fn tokio(rt: &tokio::runtime::Runtime, leaves: u64) -> Duration {
    check_leaves("skynet/tokio", leaves);
    let (elapsed, sum) = rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let sum = tokio_node(0, leaves).await;
            (start.elapsed(), sum)
        })
        .await
        .expect("skynet/tokio: the root panicked")
    });
    check("skynet/tokio", sum, expected(leaves));
    elapsed
}

/// A node's future. Boxed because an async fn cannot name its own type;
/// tokio's spawn allocates every task anyway.
fn tokio_node(
    num: u64,
    size: u64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let sub = size / DIV as u64;
        let children: [tokio::task::JoinHandle<u64>; DIV] =
            std::array::from_fn(|i| tokio::spawn(tokio_node(num + i as u64 * sub, sub)));
        let mut sum = 0;
        for h in children {
            sum += h.await.expect("skynet/tokio: a child panicked");
        }
        sum
    })
}

// ----------------------------------------------------------- std::thread --

/// std::thread: one OS thread per node (use [`Sizes::leaves_std`](crate::sizes::Sizes::leaves_std)).
pub fn std_thread(leaves: u64) -> Duration {
    check_leaves("skynet/std_thread", leaves);
    let start = Instant::now();
    let sum = std_node(0, leaves);
    let elapsed = start.elapsed();
    check("skynet/std_thread", sum, expected(leaves));
    elapsed
}

fn std_node(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / DIV as u64;
    let children: [std::thread::JoinHandle<u64>; DIV] = std::array::from_fn(|i| {
        let first = num + i as u64 * sub;
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || std_node(first, sub))
            .expect("skynet/std_thread: cannot spawn a thread")
    });
    children
        .into_iter()
        .map(|h| h.join().expect("skynet/std_thread: a child panicked"))
        .sum()
}

// ------------------------------------------------------------------ may --

/// may: the root runs in a coroutine; every other node is a coroutine.
/// may allocates a stack per spawned coroutine up front, so the whole tree
/// is alive at once: size `leaves` with [`may_fit_leaves`] (10,000 leaves
/// fit at the default `vm.max_map_count`).
pub fn may(leaves: u64) -> Duration {
    check_leaves("skynet/may", leaves);
    let (elapsed, sum) = may_go(move || {
        let start = Instant::now();
        let sum = may_node(0, leaves);
        (start.elapsed(), sum)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    check("skynet/may", sum, expected(leaves));
    elapsed
}

fn may_node(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / DIV as u64;
    let children: [may::coroutine::JoinHandle<u64>; DIV] = std::array::from_fn(|i| {
        let first = num + i as u64 * sub;
        may_go(move || may_node(first, sub))
    });
    children
        .into_iter()
        .map(|h| h.join().expect("skynet/may: a child panicked"))
        .sum()
}
