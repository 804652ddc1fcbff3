//! `pingpong0`: two tasks bounce a counter over two unbuffered channels.
//! The driver sends `v + 1` on `ping`, the echo task answers `v + 1` on
//! `pong`, `rounds` times; the counter must end at `2 * rounds`. The value
//! is the whole exchange (the echo task's start included, as in Go's
//! twin); divide by `rounds` for ns per round trip.
//!
//! | implementation | channels |
//! |---|---|
//! | grove | `grove::chan::bounded(0)`, green threads (also on 1 worker) |
//! | tokio | `tokio::sync::mpsc::channel(1)`: tokio has no rendezvous channel; capacity 1 is the closest (a send completes when there is room, not when received), and in a strict ping-pong it never holds more than one value anyway |
//! | may | `may::sync::mpsc::channel()` (unbounded: may has no bounded channel) |
//! | crossbeam | `crossbeam_channel::bounded(0)` between two OS threads |
//! | std_mpsc | `std::sync::mpsc::sync_channel(0)` between two OS threads |

use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::chans::{
    in_may, GroveOn, GroveSpawn, MaySpawn, Placement, Rx, Spawner, ThreadSpawn, Tx,
};
use crate::util::check;

/// The echo task's loop: answers `v + 1` to every `v`, `rounds` times.
#[inline(always)]
fn echo<T: Tx, R: Rx>(ping_rx: R, pong_tx: T, rounds: usize) {
    for _ in 0..rounds {
        let v = ping_rx.take().expect("ping closed early");
        pong_tx.put(v + 1);
    }
}

/// The driver's loop: sends `v + 1` and waits for the answer, `rounds`
/// times; returns the last answer (`2 * rounds` when nothing went wrong).
#[inline(always)]
fn drive<T: Tx, R: Rx>(ping_tx: &T, pong_rx: &R, rounds: usize) -> u64 {
    let mut v = 0;
    for _ in 0..rounds {
        ping_tx.put(v + 1);
        v = pong_rx.take().expect("pong closed early");
    }
    v
}

/// The ping-pong itself, over any channel and any kind of task; runs on
/// the caller, which must be a task of `spawn`'s kind.
fn exchange<S: Spawner, T: Tx, R: Rx>(
    what: &'static str,
    spawn: S,
    (ping_tx, ping_rx): (T, R),
    (pong_tx, pong_rx): (T, R),
    rounds: usize,
) -> Duration {
    let start = Instant::now();
    let echo = spawn.spawn(what, Box::new(move || echo(ping_rx, pong_tx, rounds)));
    let v = drive(&ping_tx, &pong_rx, rounds);
    let elapsed = start.elapsed();
    echo();
    check(what, v, 2 * rounds as u64);
    elapsed
}

/// The ping-pong as a spawned program: the caller starts the echo task
/// (on `echo_side`) and the driver (on `driver_side`), then joins both.
/// The value is the same span as [`exchange`]'s: from before the first
/// spawn to the end of the last round trip, plus the joins.
fn exchange_spawned<A: Spawner, B: Spawner, T: Tx, R: Rx>(
    what: &'static str,
    (driver_side, echo_side): (A, B),
    (ping_tx, ping_rx): (T, R),
    (pong_tx, pong_rx): (T, R),
    rounds: usize,
) -> Duration {
    let last = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&last);
    let start = Instant::now();
    let echo = echo_side.spawn(what, Box::new(move || echo(ping_rx, pong_tx, rounds)));
    let driver = driver_side.spawn(
        what,
        Box::new(move || seen.store(drive(&ping_tx, &pong_rx, rounds), Ordering::Relaxed)),
    );
    driver();
    let elapsed = start.elapsed();
    echo();
    check(what, last.load(Ordering::Relaxed), 2 * rounds as u64);
    elapsed
}

/// grove as a spawned program (see [`Placement`]): the main green thread
/// on `rt` spawns the echo and the driver and joins them; split, the
/// driver runs on worker 0 and the echo on worker 1.
pub fn grove_spawned(rt: &grove::Runtime, rounds: usize, placement: Placement) -> Duration {
    let channels = || (grove::chan::bounded(0), grove::chan::bounded(0));
    rt.block_on(move || {
        let (ping, pong) = channels();
        match placement {
            Placement::Natural => exchange_spawned(
                "pingpong0/grove_natural",
                (GroveSpawn, GroveSpawn),
                ping,
                pong,
                rounds,
            ),
            Placement::Split => exchange_spawned(
                "pingpong0/grove_split",
                (GroveOn(0), GroveOn(1)),
                ping,
                pong,
                rounds,
            ),
        }
    })
}

/// grove: two green threads on `rt` (build it with 1 worker for the
/// 1-worker figure).
pub fn grove(rt: &grove::Runtime, rounds: usize) -> Duration {
    rt.block_on(move || {
        exchange(
            "pingpong0/grove",
            GroveSpawn,
            grove::chan::bounded(0),
            grove::chan::bounded(0),
            rounds,
        )
    })
}

/// may: two coroutines over may's (unbounded) mpsc channels. Call
/// [`crate::util::may_init`] first.
pub fn may(rounds: usize) -> Duration {
    in_may(move || {
        exchange(
            "pingpong0/may",
            MaySpawn,
            may::sync::mpsc::channel(),
            may::sync::mpsc::channel(),
            rounds,
        )
    })
}

/// std::thread with crossbeam-channel's `bounded(0)` (use
/// `Sizes::rounds_std`).
pub fn crossbeam(rounds: usize) -> Duration {
    exchange(
        "pingpong0/crossbeam",
        ThreadSpawn,
        crossbeam_channel::bounded(0),
        crossbeam_channel::bounded(0),
        rounds,
    )
}

/// std::thread with `std::sync::mpsc::sync_channel(0)` (use
/// `Sizes::rounds_std`).
pub fn std_mpsc(rounds: usize) -> Duration {
    exchange(
        "pingpong0/std_mpsc",
        ThreadSpawn,
        std::sync::mpsc::sync_channel(0),
        std::sync::mpsc::sync_channel(0),
        rounds,
    )
}

/// tokio: two tasks on `rt` over `tokio::sync::mpsc::channel(1)` (see the
/// module doc). The driver is itself a spawned task.
pub fn tokio(rt: &tokio::runtime::Runtime, rounds: usize) -> Duration {
    use tokio::sync::mpsc::channel;
    let (elapsed, v) = rt.block_on(async move {
        tokio::spawn(async move {
            let (ping_tx, mut ping_rx) = channel::<u64>(1);
            let (pong_tx, mut pong_rx) = channel::<u64>(1);
            let start = Instant::now();
            let echo = tokio::spawn(async move {
                for _ in 0..rounds {
                    let v = ping_rx.recv().await.expect("ping closed early");
                    pong_tx.send(v + 1).await.expect("pong closed early");
                }
            });
            let mut v = 0;
            for _ in 0..rounds {
                ping_tx.send(v + 1).await.expect("ping closed early");
                v = pong_rx.recv().await.expect("pong closed early");
            }
            let elapsed = start.elapsed();
            echo.await.expect("pingpong0/tokio: the echo task panicked");
            (elapsed, v)
        })
        .await
        .expect("pingpong0/tokio: the driver task panicked")
    });
    check("pingpong0/tokio", v, 2 * rounds as u64);
    elapsed
}
