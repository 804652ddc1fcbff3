//! `prodcons`: producers send the values `1..=m` over one channel (each
//! producer its own contiguous share), consumers receive and sum them
//! until the channel closes; the total must be `m * (m + 1) / 2`. Three
//! shapes ([`CAP0`], [`CAP128`], [`FOUR_BY_FOUR`]). The value is the whole
//! run (tasks' start included, as in Go's twin); divide by `m` for ns per
//! message.
//!
//! The driver (the task that starts the run) is one of the consumers.
//!
//! | implementation | channel |
//! |---|---|
//! | grove | `grove::chan::bounded(cap)`, green threads |
//! | tokio | `tokio::sync::mpsc::channel(cap.max(1))`: no capacity 0, so capacity 1 stands in for the unbuffered channel; several consumers share the receiver behind a `tokio::sync::Mutex` (tokio's mpsc has one consumer) |
//! | may | `may::sync::mpsc` (one consumer) / `may::sync::mpmc` (several), both unbounded: may has no bounded channel; several consumers stop on an end-of-stream value (see [`crate::chans::Tx::finish`]) |
//! | crossbeam | `crossbeam_channel::bounded(cap)` between OS threads |
//! | std_mpsc | `std::sync::mpsc::sync_channel(cap)` between OS threads; several consumers share the receiver behind a `std::sync::Mutex` |

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chans::{
    in_may, GroveOn, GroveSpawn, Joiner, MaySpawn, Placement, Rx, SharedStdRx, Spawner,
    ThreadSpawn, Tx,
};
use crate::util::check;

/// The shape of a prodcons run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Producer tasks.
    pub producers: usize,
    /// Consumer tasks (the driver is one of them).
    pub consumers: usize,
    /// Channel capacity (0: unbuffered).
    pub cap: usize,
}

/// 1 producer, 1 consumer, unbuffered.
pub const CAP0: Shape = Shape {
    producers: 1,
    consumers: 1,
    cap: 0,
};

/// 1 producer, 1 consumer, capacity 128.
pub const CAP128: Shape = Shape {
    producers: 1,
    consumers: 1,
    cap: 128,
};

/// 4 producers, 4 consumers, capacity 128.
pub const FOUR_BY_FOUR: Shape = Shape {
    producers: 4,
    consumers: 4,
    cap: 128,
};

/// `m` rounded down to a multiple of the producers (each sends as many).
pub fn messages(shape: Shape, m: usize) -> usize {
    m / shape.producers * shape.producers
}

fn expected(m: usize) -> u64 {
    let m = m as u64;
    m * (m + 1) / 2
}

/// Starts the producers: producer `p` sends its share, and the last one to
/// finish calls [`Tx::finish`]; each drops its sender when done.
fn start_producers<S: Spawner, T: Tx + Clone>(
    what: &'static str,
    spawn: S,
    tx: T,
    shape: Shape,
    m: usize,
) -> Vec<Joiner> {
    let per = (m / shape.producers) as u64;
    let left = Arc::new(AtomicUsize::new(shape.producers));
    (0..shape.producers as u64)
        .map(|p| {
            let (tx, left) = (tx.clone(), Arc::clone(&left));
            let consumers = shape.consumers;
            spawn.spawn(
                what,
                Box::new(move || {
                    for v in p * per + 1..=(p + 1) * per {
                        tx.put(v);
                    }
                    if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        tx.finish(consumers);
                    }
                }),
            )
        })
        .collect()
}

/// Starts one consumer per receiver in `rxs`: each sums what it receives
/// until the channel closes, and adds its sum to `total`.
fn start_consumers<S: Spawner, R: Rx>(
    what: &'static str,
    spawn: S,
    rxs: Vec<R>,
    total: &Arc<AtomicU64>,
) -> Vec<Joiner> {
    rxs.into_iter()
        .map(|rx| {
            let total = Arc::clone(total);
            spawn.spawn(
                what,
                Box::new(move || {
                    let sum: u64 = std::iter::from_fn(|| rx.take()).sum();
                    total.fetch_add(sum, Ordering::Relaxed);
                }),
            )
        })
        .collect()
}

/// What the task that starts a run does besides starting the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Driver {
    /// It is one of the consumers (the co-located programs).
    Consumes,
    /// It only joins (the spawned programs: natural and split).
    Joins,
}

/// One run over any channel and any kind of task; runs on the caller,
/// which must be a task of the spawners' kind. The producers start on
/// `producer_side`, the consumers on `consumer_side`; `rxs` holds one
/// receiver per consumer, and where the driver consumes, one of them is
/// its own.
fn flow<P: Spawner, C: Spawner, T: Tx + Clone, R: Rx>(
    what: &'static str,
    (producer_side, consumer_side): (P, C),
    driver: Driver,
    tx: T,
    mut rxs: Vec<R>,
    shape: Shape,
    m: usize,
) -> Duration {
    let m = messages(shape, m);
    let total = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut joins = start_producers(what, producer_side, tx, shape, m);
    let mine = match driver {
        Driver::Consumes => Some(rxs.pop().expect("at least one consumer")),
        Driver::Joins => None,
    };
    joins.extend(start_consumers(what, consumer_side, rxs, &total));
    if let Some(mine) = mine {
        let sum: u64 = std::iter::from_fn(|| mine.take()).sum();
        total.fetch_add(sum, Ordering::Relaxed);
    }
    for join in joins {
        join();
    }
    let elapsed = start.elapsed();
    check(what, total.load(Ordering::SeqCst), expected(m));
    elapsed
}

/// grove as a spawned program (see [`Placement`]): the main green thread
/// on `rt` spawns the producers and the consumers and joins them; split,
/// every producer runs on worker 0 and every consumer on worker 1.
pub fn grove_spawned(
    rt: &grove::Runtime,
    shape: Shape,
    m: usize,
    placement: Placement,
) -> Duration {
    rt.block_on(move || {
        let (tx, rx) = grove::chan::bounded(shape.cap);
        let rxs = vec![rx; shape.consumers];
        match placement {
            Placement::Natural => flow(
                "prodcons/grove_natural",
                (GroveSpawn, GroveSpawn),
                Driver::Joins,
                tx,
                rxs,
                shape,
                m,
            ),
            Placement::Split => flow(
                "prodcons/grove_split",
                (GroveOn(0), GroveOn(1)),
                Driver::Joins,
                tx,
                rxs,
                shape,
                m,
            ),
        }
    })
}

/// grove: green threads on `rt` over `grove::chan::bounded(shape.cap)`.
pub fn grove(rt: &grove::Runtime, shape: Shape, m: usize) -> Duration {
    rt.block_on(move || {
        let (tx, rx) = grove::chan::bounded(shape.cap);
        let rxs = vec![rx; shape.consumers];
        flow(
            "prodcons/grove",
            (GroveSpawn, GroveSpawn),
            Driver::Consumes,
            tx,
            rxs,
            shape,
            m,
        )
    })
}

/// may: coroutines over may's unbounded channels (see the module doc).
/// Call [`crate::util::may_init`] first.
pub fn may(shape: Shape, m: usize) -> Duration {
    in_may(move || {
        if shape.consumers == 1 {
            let (tx, rx) = may::sync::mpsc::channel();
            flow(
                "prodcons/may",
                (MaySpawn, MaySpawn),
                Driver::Consumes,
                tx,
                vec![rx],
                shape,
                m,
            )
        } else {
            let (tx, rx) = may::sync::mpmc::channel();
            let rxs = vec![rx; shape.consumers];
            flow(
                "prodcons/may",
                (MaySpawn, MaySpawn),
                Driver::Consumes,
                tx,
                rxs,
                shape,
                m,
            )
        }
    })
}

/// std::thread with crossbeam-channel's `bounded(shape.cap)`.
pub fn crossbeam(shape: Shape, m: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded(shape.cap);
    let rxs = vec![rx; shape.consumers];
    flow(
        "prodcons/crossbeam",
        (ThreadSpawn, ThreadSpawn),
        Driver::Consumes,
        tx,
        rxs,
        shape,
        m,
    )
}

/// std::thread with grove's `bounded(shape.cap)`: an application's own
/// OS threads on grove's channels (they block the OS thread), the shape
/// of [`crossbeam`].
pub fn grove_threads(shape: Shape, m: usize) -> Duration {
    let (tx, rx) = grove::chan::bounded(shape.cap);
    let rxs = vec![rx; shape.consumers];
    flow(
        "prodcons/grove_threads",
        (ThreadSpawn, ThreadSpawn),
        Driver::Consumes,
        tx,
        rxs,
        shape,
        m,
    )
}

/// std::thread with `std::sync::mpsc::sync_channel(shape.cap)`.
pub fn std_mpsc(shape: Shape, m: usize) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel(shape.cap);
    if shape.consumers == 1 {
        flow(
            "prodcons/std_mpsc",
            (ThreadSpawn, ThreadSpawn),
            Driver::Consumes,
            tx,
            vec![rx],
            shape,
            m,
        )
    } else {
        let shared = SharedStdRx(Arc::new(std::sync::Mutex::new(rx)));
        let rxs = vec![shared; shape.consumers];
        flow(
            "prodcons/std_mpsc",
            (ThreadSpawn, ThreadSpawn),
            Driver::Consumes,
            tx,
            rxs,
            shape,
            m,
        )
    }
}

/// tokio: tasks on `rt` over `tokio::sync::mpsc::channel(shape.cap.max(1))`
/// (see the module doc). The driver is itself a spawned task.
pub fn tokio(rt: &tokio::runtime::Runtime, shape: Shape, m: usize) -> Duration {
    let m = messages(shape, m);
    let (elapsed, total) = rt.block_on(async move {
        tokio::spawn(tokio_flow(shape, m))
            .await
            .expect("prodcons/tokio: the driver task panicked")
    });
    check("prodcons/tokio", total, expected(m));
    elapsed
}

type SharedTokioRx = Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<u64>>>;

async fn tokio_flow(shape: Shape, m: usize) -> (Duration, u64) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(shape.cap.max(1));
    let per = (m / shape.producers) as u64;
    let start = Instant::now();
    let producers: Vec<_> = (0..shape.producers as u64)
        .map(|p| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for v in p * per + 1..=(p + 1) * per {
                    tx.send(v).await.expect("prodcons/tokio: channel closed");
                }
            })
        })
        .collect();
    drop(tx);
    let mut total = 0;
    if shape.consumers == 1 {
        while let Some(v) = rx.recv().await {
            total += v;
        }
    } else {
        let shared: SharedTokioRx = Arc::new(tokio::sync::Mutex::new(rx));
        let others: Vec<_> = (1..shape.consumers)
            .map(|_| tokio::spawn(tokio_shared_sum(Arc::clone(&shared))))
            .collect();
        total += tokio_shared_sum(shared).await;
        for h in others {
            total += h.await.expect("prodcons/tokio: a consumer panicked");
        }
    }
    for h in producers {
        h.await.expect("prodcons/tokio: a producer panicked");
    }
    (start.elapsed(), total)
}

async fn tokio_shared_sum(rx: SharedTokioRx) -> u64 {
    let mut sum = 0;
    while let Some(v) = rx.lock().await.recv().await {
        sum += v;
    }
    sum
}
