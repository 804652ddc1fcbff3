//! `fib_fork`: fib(n) where every call with n >= 2 spawns a task for
//! fib(n-1), computes fib(n-2) itself, then waits for the child. fib(27)
//! must be 196,418 and spawns 317,810 tasks. The value is the whole run.
//!
//! Fan-in: as in Go's twin, grove's child sends its result on a channel
//! of capacity 1 (`GroveChild`); tokio and may await or join the child's
//! handle.

use std::time::{Duration, Instant};

use crate::util::{check, may_fit, may_go, MayFit};

/// The right answer: fib(n), iteratively.
pub fn expected(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a + b);
    }
    a
}

/// Tasks spawned by fib_fork(n): one per call with n >= 2, which is
/// fib(n+1) - 1 (317,810 for 27).
pub fn tasks(n: u32) -> u64 {
    expected(n + 1) - 1
}

/// The plain recursive fib, for a baseline with no tasks at all.
pub fn sequential(n: u32) -> Duration {
    fn fib(n: u64) -> u64 {
        if n < 2 {
            n
        } else {
            fib(n - 1) + fib(n - 2)
        }
    }
    let start = Instant::now();
    let got = fib(std::hint::black_box(u64::from(n)));
    let elapsed = start.elapsed();
    check("fib_fork/sequential", got, expected(n));
    elapsed
}

// ---------------------------------------------------------------- grove --

/// grove: the top call runs as a green thread on `rt`.
pub fn grove(rt: &grove::Runtime, n: u32) -> Duration {
    let (elapsed, got) = rt.block_on(move || {
        let start = Instant::now();
        let got = grove_fib(u64::from(n));
        (start.elapsed(), got)
    });
    check("fib_fork/grove", got, expected(n));
    elapsed
}

fn grove_fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let child = GroveChild::fork(n - 1);
    let x = grove_fib(n - 2);
    x + child.wait()
}

/// A forked fib(n-1) whose result comes back on a channel of capacity 1,
/// as in Go's twin (the child never waits for its parent to receive).
struct GroveChild(grove::chan::Receiver<u64>);

impl GroveChild {
    fn fork(n: u64) -> GroveChild {
        let (tx, rx) = grove::chan::bounded(1);
        // Detached, as a goroutine: the result comes back on `tx`.
        drop(grove::go(move || {
            tx.send(grove_fib(n))
                .expect("fib_fork/grove: the parent stopped receiving");
        }));
        GroveChild(rx)
    }

    fn wait(self) -> u64 {
        self.0.recv().expect("fib_fork/grove: a child died")
    }
}

// ---------------------------------------------------------------- tokio --

/// tokio: the top call runs in a task spawned on `rt`; every fork is a
/// `tokio::spawn` whose `JoinHandle` is awaited.
pub fn tokio(rt: &tokio::runtime::Runtime, n: u32) -> Duration {
    let (elapsed, got) = rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let got = tokio_fib(u64::from(n)).await;
            (start.elapsed(), got)
        })
        .await
        .expect("fib_fork/tokio: the top task panicked")
    });
    check("fib_fork/tokio", got, expected(n));
    elapsed
}

/// Boxed because an async fn cannot name its own type.
fn tokio_fib(n: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send>> {
    Box::pin(async move {
        if n < 2 {
            return n;
        }
        let child = tokio::spawn(tokio_fib(n - 1));
        let x = tokio_fib(n - 2).await;
        x + child.await.expect("fib_fork/tokio: a child panicked")
    })
}

// ---------------------------------------------------------------- rayon --

/// rayon: `rayon::join(fib(n-1), fib(n-2))` in `pool`. rayon runs the
/// first closure inline and lets the second be stolen, so nothing is
/// spawned unless a thread is idle: a lower bound, not a peer.
pub fn rayon(pool: &rayon::ThreadPool, n: u32) -> Duration {
    let start = Instant::now();
    let got = pool.install(|| rayon_fib(u64::from(n)));
    let elapsed = start.elapsed();
    check("fib_fork/rayon", got, expected(n));
    elapsed
}

fn rayon_fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| rayon_fib(n - 1), || rayon_fib(n - 2));
    a + b
}

// ------------------------------------------------------------------ may --

/// may: the top call runs in a coroutine; every fork is a coroutine that is
/// joined. may allocates a stack per spawn, and forks pile up faster than
/// they finish, so fib(27) fails at the default `vm.max_map_count`; size
/// `n` with [`may_fit_n`].
pub fn may(n: u32) -> Duration {
    let (elapsed, got) = may_go(move || {
        let start = Instant::now();
        let got = may_fib(u64::from(n));
        (start.elapsed(), got)
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
    check("fib_fork/may", got, expected(n));
    elapsed
}

/// The largest argument, at most `n`, whose forks may can all hold at
/// once (forks pile up: may allocates each one's stack at spawn):
/// [`may_fit`]'s rule, one less each step down. At the default
/// `vm.max_map_count` that is about 21 (17,710 coroutines).
pub fn may_fit_n(n: u32) -> MayFit<u32> {
    may_fit(n, |n| tasks(n) as usize, |n| n.checked_sub(1))
}

fn may_fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let child = may_go(move || may_fib(n - 1));
    let x = may_fib(n - 2);
    x + child.join().expect("fib_fork/may: a child panicked")
}
