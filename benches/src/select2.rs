//! `select2`: one task selects over two channels of capacity [`CAP`], fed
//! by two producers (`1..=m/2` on one, the rest on the other), until both
//! are closed; a closed channel is switched off (Go's nil channel). The
//! sum must be `m * (m + 1) / 2`. The value is the whole run (producers'
//! start included, as in Go's twin); divide by `m` for ns per message.
//!
//! | implementation | select | channels |
//! |---|---|---|
//! | grove | `grove::select!`, a closed arm switched to `grove::chan::never()` | `grove::chan::bounded(128)` |
//! | crossbeam | `crossbeam_channel::select!` between OS threads, same switch to `never()` | `crossbeam_channel::bounded(128)` |
//! | tokio | `tokio::select!` with `if` guards | `tokio::sync::mpsc::channel(128)` |
//! | may | `may::select!` (one coroutine per arm; the losers are cancelled) | `may::sync::mpsc` (unbounded) |
//!
//! may's select is known to lose messages: an arm's coroutine that has
//! already taken a value when another arm wins is cancelled with it. The
//! may version is kept to show that (it ends `WRONG RESULT` when a
//! message is lost); it never hangs, since each closed channel still ends
//! its arm.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::chans::{
    in_may, GroveOn, GroveSpawn, Joiner, MaySpawn, Placement, Spawner, ThreadSpawn, Tx,
};
use crate::util::check;

/// Capacity of each of the two channels.
pub const CAP: usize = 128;

/// `m` rounded down to an even number (each producer sends half).
pub fn messages(m: usize) -> usize {
    m / 2 * 2
}

fn expected(m: usize) -> u64 {
    let m = m as u64;
    m * (m + 1) / 2
}

/// Starts the two producers: the first sends `1..=m/2` on `a`, the second
/// the rest on `b`; each closes its channel by dropping its sender.
fn feed<S: Spawner, T: Tx>(spawn: S, what: &'static str, a: T, b: T, m: usize) -> [Joiner; 2] {
    let half = (m / 2) as u64;
    let ja = spawn.spawn(what, Box::new(move || (1..=half).for_each(|v| a.put(v))));
    let jb = spawn.spawn(
        what,
        Box::new(move || (half + 1..=2 * half).for_each(|v| b.put(v))),
    );
    [ja, jb]
}

/// grove: green threads on `rt`, `grove::select!` over two
/// `bounded(128)` channels.
pub fn grove(rt: &grove::Runtime, m: usize) -> Duration {
    let m = messages(m);
    let (elapsed, sum) = rt.block_on(move || {
        let (ta, ra) = grove::chan::bounded(CAP);
        let (tb, rb) = grove::chan::bounded(CAP);
        let start = Instant::now();
        let joins = feed(GroveSpawn, "select2/grove", ta, tb, m);
        let sum = grove_select_sum(&ra, &rb);
        joins.into_iter().for_each(|join| join());
        (start.elapsed(), sum)
    });
    check("select2/grove", sum, expected(m));
    elapsed
}

/// The selecting loop: sums what comes on `ra` and `rb` until both are
/// closed, switching a closed one off (Go's nil channel).
#[inline(always)]
fn grove_select_sum(ra: &grove::chan::Receiver<u64>, rb: &grove::chan::Receiver<u64>) -> u64 {
    let never = grove::chan::never::<u64>();
    let (mut a_open, mut b_open, mut sum) = (true, true, 0u64);
    while a_open || b_open {
        let a = if a_open { ra } else { &never };
        let b = if b_open { rb } else { &never };
        grove::select! {
            recv(*a) -> v => match v { Ok(v) => sum += v, Err(_) => a_open = false },
            recv(*b) -> v => match v { Ok(v) => sum += v, Err(_) => b_open = false },
        }
    }
    sum
}

/// grove as a spawned program (see [`Placement`]): the main green thread
/// on `rt` spawns the two producers and the selecting consumer and joins
/// them; split, the producers run on worker 0 and the consumer on worker
/// 1.
pub fn grove_spawned(rt: &grove::Runtime, m: usize, placement: Placement) -> Duration {
    let m = messages(m);
    let (elapsed, sum) = rt.block_on(move || match placement {
        Placement::Natural => select_spawned("select2/grove_natural", (GroveSpawn, GroveSpawn), m),
        Placement::Split => select_spawned("select2/grove_split", (GroveOn(0), GroveOn(1)), m),
    });
    check("select2/grove", sum, expected(m));
    elapsed
}

fn select_spawned<P: Spawner, C: Spawner>(
    what: &'static str,
    (producer_side, consumer_side): (P, C),
    m: usize,
) -> (Duration, u64) {
    let (ta, ra) = grove::chan::bounded(CAP);
    let (tb, rb) = grove::chan::bounded(CAP);
    let sum = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&sum);
    let start = Instant::now();
    let joins = feed(producer_side, what, ta, tb, m);
    let consumer = consumer_side.spawn(
        what,
        Box::new(move || seen.store(grove_select_sum(&ra, &rb), Ordering::Relaxed)),
    );
    joins.into_iter().for_each(|join| join());
    consumer();
    (start.elapsed(), sum.load(Ordering::Relaxed))
}

/// crossbeam: OS threads, `crossbeam_channel::select!` over two
/// `bounded(128)` channels.
pub fn crossbeam(m: usize) -> Duration {
    use crossbeam_channel::{bounded, never, select};
    let m = messages(m);
    let (ta, ra) = bounded(CAP);
    let (tb, rb) = bounded(CAP);
    let start = Instant::now();
    let joins = feed(ThreadSpawn, "select2/crossbeam", ta, tb, m);
    let off = never::<u64>();
    let (mut a_open, mut b_open, mut sum) = (true, true, 0u64);
    while a_open || b_open {
        let a = if a_open { &ra } else { &off };
        let b = if b_open { &rb } else { &off };
        select! {
            recv(a) -> v => match v { Ok(v) => sum += v, Err(_) => a_open = false },
            recv(b) -> v => match v { Ok(v) => sum += v, Err(_) => b_open = false },
        }
    }
    joins.into_iter().for_each(|join| join());
    let elapsed = start.elapsed();
    check("select2/crossbeam", sum, expected(m));
    elapsed
}

/// tokio: tasks on `rt`, `tokio::select!` over two `mpsc::channel(128)`.
pub fn tokio(rt: &tokio::runtime::Runtime, m: usize) -> Duration {
    let m = messages(m);
    let (elapsed, sum) = rt.block_on(async move {
        tokio::spawn(tokio_select(m))
            .await
            .expect("select2/tokio: the driver task panicked")
    });
    check("select2/tokio", sum, expected(m));
    elapsed
}

async fn tokio_select(m: usize) -> (Duration, u64) {
    let (ta, mut ra) = tokio::sync::mpsc::channel::<u64>(CAP);
    let (tb, mut rb) = tokio::sync::mpsc::channel::<u64>(CAP);
    let half = (m / 2) as u64;
    let start = Instant::now();
    let pa = tokio::spawn(async move {
        for v in 1..=half {
            ta.send(v).await.expect("select2/tokio: channel closed");
        }
    });
    let pb = tokio::spawn(async move {
        for v in half + 1..=2 * half {
            tb.send(v).await.expect("select2/tokio: channel closed");
        }
    });
    let (mut a_open, mut b_open, mut sum) = (true, true, 0u64);
    loop {
        tokio::select! {
            v = ra.recv(), if a_open => match v { Some(v) => sum += v, None => a_open = false },
            v = rb.recv(), if b_open => match v { Some(v) => sum += v, None => b_open = false },
            else => break,
        }
    }
    pa.await.expect("select2/tokio: a producer panicked");
    pb.await.expect("select2/tokio: a producer panicked");
    (start.elapsed(), sum)
}

/// may: coroutines, `may::select!` over two may mpsc channels (unbounded:
/// may has none with a capacity). Expect `WRONG RESULT` (see the module
/// doc). Call [`crate::util::may_init`] first.
pub fn may(m: usize) -> Duration {
    let m = messages(m);
    let (elapsed, sum) = in_may(move || {
        let (ta, ra) = may::sync::mpsc::channel::<u64>();
        let (tb, rb) = may::sync::mpsc::channel::<u64>();
        let start = Instant::now();
        let joins = feed(MaySpawn, "select2/may", ta, tb, m);
        let sum = AtomicU64::new(0);
        let (a_closed, b_closed) = (AtomicBool::new(false), AtomicBool::new(false));
        let take = |v: Result<u64, _>, closed: &AtomicBool| match v {
            Ok(v) => {
                sum.fetch_add(v, Ordering::Relaxed);
            }
            Err(_) => closed.store(true, Ordering::Relaxed),
        };
        while !a_closed.load(Ordering::Relaxed) && !b_closed.load(Ordering::Relaxed) {
            may::select!(
                v = ra.recv() => take(v, &a_closed),
                v = rb.recv() => take(v, &b_closed)
            );
        }
        // One is closed: drain the other without select.
        ra.iter()
            .chain(rb.iter())
            .for_each(|v| take(Ok(v), &a_closed));
        joins.into_iter().for_each(|join| join());
        (start.elapsed(), sum.load(Ordering::SeqCst))
    });
    check("select2/may", sum, expected(m));
    elapsed
}
