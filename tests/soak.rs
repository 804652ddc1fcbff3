//! Soak: random mixes of everything grove does, on runtimes of 1–8 workers,
//! with OS threads joining in, for a bounded time; every message and count
//! is checked.
//!
//! The run is a sequence of *epochs*. Each builds a runtime (random worker
//! count and stack limit; one time in four with `full_migration`), starts
//! 3–8 randomly chosen *scenarios* at once (each driven from a green thread
//! or, one time in four, an OS thread), reads `stats()` and `tasks()` while
//! they run, waits for them, checks that no green thread is left
//! (`live == 0`, a clean `ShutdownReport`) and shuts the runtime down. Each
//! scenario checks its own invariants and returns how many operations it
//! verified:
//!
//! | scenario        | what is checked                                                   |
//! |-----------------|-------------------------------------------------------------------|
//! | `pipeline`      | producers → channel (bounded 0/1/64, unbounded) → consumers, with send/send_timeout/try_send/select sends and recv/recv_timeout/try_recv/select/iter receives: every value received exactly once |
//! | `router`        | a dynamic `Select` with send and receive arms routes 2–4 inputs to one output: every value exactly once |
//! | `mutex`         | a pair incremented under a `Mutex` (parking while holding): never torn, exact final count |
//! | `rwlock`        | writers and readers: readers never see a torn pair, counts exact  |
//! | `condvar`       | a queue under `Mutex` + `Condvar`: every item exactly once        |
//! | `semaphore`     | never more holders than permits; every permit back                |
//! | `barrier_wg`    | `Barrier` rounds (all arrive before any leaves, one leader each) and a `WaitGroup` |
//! | `context`       | work until a random cancel, then drain: exact sum; every watcher sees `Cancelled` |
//! | `panics`        | a planned subset panics (plain, non-string, inside a `Mutex`): each panic matched to its green thread, poison and counts exact |
//! | `timers`        | `sleep`, `after`, `tick`, `recv_timeout`, `select!` timeouts, `with_timeout`: never early |
//! | `spawn_tree`    | a fork-join tree, some of it scoped (joined or not): exact node count |
//! | `swarm`         | hundreds of short-lived green threads (half detached) send one value each: each exactly once |
//! | `ring`          | a token passed around a ring of green and OS threads: exact count |
//! | `fairness`      | a hand-off pair runs until the green threads it spawned beside itself (some yielding) have all reported: none starved |
//! | `sockets`       | an echo server (TCP or Unix, a green thread per connection) and clients on green and OS threads, in random chunks, with half-closes, `try_clone`d writers and read timeouts: every byte back exactly once |
//!
//! `soak` is `#[ignore]`d: CI runs it in release through `.ci/soak`.
//! `GROVE_SOAK_SECS` sets its length (default 60; 5 is a quick mode),
//! `GROVE_SOAK_SEED` replays a run (the seed is printed first). `soak_smoke`
//! runs the same code for two seconds in every `cargo test`.

#[path = "common/rel_util.rs"]
mod rel_util;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use grove::chan::{self, Receiver, RecvTimeoutError, Select, Sender};
use grove::context::{Context, ContextError};
use grove::net::unix::{UnixListener, UnixStream};
use grove::net::{Shutdown, TcpListener, TcpStream};
use grove::sync::{
    Barrier, Condvar, Mutex, PoisonError, RwLock, Semaphore, TryLockError, WaitGroup,
};
use grove::thread;
use grove::{select, Runtime};
use rel_util::{
    assert_each_once, jitter, make_chan, panic_message, quiet_expected_panics, recv_all,
    send_somehow, short, wait_until, ExpectedPanic, Joiner, Mix, Rng, EXPECTED, OS_ONE_IN,
};

/// Work sizes grow by this factor in release builds.
const SCALE: usize = if cfg!(debug_assertions) { 1 } else { 4 };

/// An epoch that has not finished after this long is hung.
const EPOCH_LIMIT: Duration = Duration::from_secs(60);

/// Panics provoked and matched, over the whole run.
static PANICS_MATCHED: AtomicU64 = AtomicU64::new(0);

fn pipeline(mut cx: Mix) -> u64 {
    let producers = cx.rng.range(1, 6);
    let consumers = cx.rng.range(1, 6);
    let per = cx.rng.range(20, 300) * SCALE;
    let explicit_close = cx.rng.percent(50);
    let (tx, rx) = make_chan::<u64>(&mut cx.rng);
    let prods: Vec<Joiner<()>> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            cx.any(move |mut rng| {
                for i in 0..per {
                    send_somehow(&tx, (p * per + i) as u64, &mut rng);
                    jitter(&mut rng);
                }
            })
        })
        .collect();
    let cons: Vec<Joiner<Vec<u64>>> = (0..consumers)
        .map(|_| {
            let rx = rx.clone();
            cx.any(move |mut rng| recv_all(&rx, &mut rng))
        })
        .collect();
    drop(rx);
    if explicit_close {
        prods.into_iter().for_each(Joiner::join);
        assert!(tx.close(), "nobody else closes it");
    } else {
        drop(tx); // the last producer's drop closes it
        prods.into_iter().for_each(Joiner::join);
    }
    let all: Vec<u64> = cons.into_iter().flat_map(Joiner::join).collect();
    assert_each_once(all, producers * per, "pipeline");
    (producers * per) as u64
}

fn router(mut cx: Mix) -> u64 {
    let inputs = cx.rng.range(2, 4);
    let per = cx.rng.range(20, 200) * SCALE;
    let chans: Vec<(Sender<u64>, Receiver<u64>)> =
        (0..inputs).map(|_| make_chan(&mut cx.rng)).collect();
    let prods: Vec<Joiner<()>> = chans
        .iter()
        .enumerate()
        .map(|(k, (tx, _))| {
            let tx = tx.clone();
            cx.any(move |mut rng| {
                for i in 0..per {
                    send_somehow(&tx, (k * per + i) as u64, &mut rng);
                }
            })
        })
        .collect();
    let rxs: Vec<Receiver<u64>> = chans.into_iter().map(|(_, rx)| rx).collect();
    let (out_tx, out_rx) = make_chan::<u64>(&mut cx.rng);
    let consumer = cx.any(move |mut rng| recv_all(&out_rx, &mut rng));

    // The router: receive arms while it holds fewer than 4 values, a send
    // arm while it holds any.
    let mut live = vec![true; inputs];
    let mut held = VecDeque::new();
    while held.len() + live.iter().filter(|&&l| l).count() > 0 {
        let mut sel = Select::new();
        let send_arm = (!held.is_empty()).then(|| sel.send(&out_tx));
        let mut recv_arms = Vec::new();
        if held.len() < 4 {
            for (k, rx) in rxs.iter().enumerate().filter(|&(k, _)| live[k]) {
                recv_arms.push((sel.recv(rx), k));
            }
        }
        let oper = match cx.rng.below(3) {
            0 => sel.select(),
            1 => match sel.select_timeout(short(&mut cx.rng)) {
                Ok(oper) => oper,
                Err(_) => continue, // timed out
            },
            _ => match sel.try_select() {
                Ok(oper) => oper,
                Err(_) => {
                    thread::yield_now();
                    continue;
                }
            },
        };
        if Some(oper.index()) == send_arm {
            let v = held.pop_front().expect("held a value");
            oper.send(&out_tx, v).expect("the consumer is alive");
        } else {
            let k = recv_arms
                .iter()
                .find(|&&(i, _)| i == oper.index())
                .map(|&(_, k)| k)
                .expect("a receive arm");
            match oper.recv(&rxs[k]) {
                Ok(v) => held.push_back(v),
                Err(_) => live[k] = false, // closed and drained
            }
        }
    }
    drop(out_tx);
    prods.into_iter().for_each(Joiner::join);
    assert_each_once(consumer.join(), inputs * per, "router");
    (inputs * per) as u64
}

// ---------------------------------------------------------------------------
// Locks.

fn mutex(mut cx: Mix) -> u64 {
    let threads = cx.rng.range(2, 8);
    let iters = cx.rng.range(20, 300) * SCALE;
    let m = Arc::new(Mutex::new((0u64, 0u64)));
    let hs: Vec<Joiner<()>> = (0..threads)
        .map(|_| {
            let m = m.clone();
            cx.any(move |mut rng| {
                for _ in 0..iters {
                    let mut g = if rng.percent(20) {
                        loop {
                            match m.try_lock() {
                                Ok(g) => break g,
                                Err(TryLockError::WouldBlock) => thread::yield_now(),
                                Err(TryLockError::Poisoned(_)) => panic!("poisoned"),
                            }
                        }
                    } else {
                        m.lock().unwrap()
                    };
                    assert_eq!(g.0, g.1, "a torn pair: two holders at once");
                    g.0 += 1;
                    jitter(&mut rng); // may park while holding the lock
                    g.1 += 1;
                }
            })
        })
        .collect();
    hs.into_iter().for_each(Joiner::join);
    let total = (threads * iters) as u64;
    assert_eq!(*m.lock().unwrap(), (total, total));
    total
}

fn rwlock(mut cx: Mix) -> u64 {
    let writers = cx.rng.range(1, 4);
    let readers = cx.rng.range(1, 5);
    let iters = cx.rng.range(20, 200) * SCALE;
    let rw = Arc::new(RwLock::new((0u64, 0u64)));
    let ws: Vec<Joiner<()>> = (0..writers)
        .map(|_| {
            let rw = rw.clone();
            cx.any(move |mut rng| {
                for _ in 0..iters {
                    let mut w = rw.write().unwrap();
                    w.0 += 1;
                    jitter(&mut rng);
                    w.1 += 1;
                }
            })
        })
        .collect();
    let rs: Vec<Joiner<u64>> = (0..readers)
        .map(|_| {
            let rw = rw.clone();
            cx.any(move |mut rng| {
                let mut last = 0;
                for _ in 0..iters {
                    let r = rw.read().unwrap();
                    assert_eq!(r.0, r.1, "a reader saw a write in progress");
                    assert!(r.0 >= last, "the count went backwards");
                    last = r.0;
                    drop(r);
                    jitter(&mut rng);
                }
                iters as u64
            })
        })
        .collect();
    ws.into_iter().for_each(Joiner::join);
    let reads: u64 = rs.into_iter().map(Joiner::join).sum();
    let writes = (writers * iters) as u64;
    assert_eq!(*rw.read().unwrap(), (writes, writes));
    writes + reads
}

struct Queue {
    items: VecDeque<u64>,
    producers_left: usize,
}

fn condvar(mut cx: Mix) -> u64 {
    let producers = cx.rng.range(1, 4);
    let consumers = cx.rng.range(1, 4);
    let per = cx.rng.range(20, 300) * SCALE;
    let q = Arc::new((
        Mutex::new(Queue {
            items: VecDeque::new(),
            producers_left: producers,
        }),
        Condvar::new(),
    ));
    let prods: Vec<Joiner<()>> = (0..producers)
        .map(|p| {
            let q = q.clone();
            cx.any(move |mut rng| {
                for i in 0..per {
                    q.0.lock().unwrap().items.push_back((p * per + i) as u64);
                    if rng.percent(10) {
                        q.1.notify_all();
                    } else {
                        q.1.notify_one();
                    }
                    jitter(&mut rng);
                }
                q.0.lock().unwrap().producers_left -= 1;
                q.1.notify_all();
            })
        })
        .collect();
    let cons: Vec<Joiner<Vec<u64>>> = (0..consumers)
        .map(|_| {
            let q = q.clone();
            cx.any(move |mut rng| {
                let mut got = Vec::new();
                let waiting = |q: &mut Queue| q.items.is_empty() && q.producers_left > 0;
                loop {
                    let mut g = if rng.percent(30) {
                        let (g, _timed_out) =
                            q.1.wait_timeout_while(q.0.lock().unwrap(), short(&mut rng), waiting)
                                .unwrap();
                        g
                    } else {
                        q.1.wait_while(q.0.lock().unwrap(), waiting).unwrap()
                    };
                    match g.items.pop_front() {
                        Some(v) => got.push(v),
                        None if g.producers_left == 0 => return got,
                        None => {} // timed out
                    }
                    drop(g);
                    jitter(&mut rng);
                }
            })
        })
        .collect();
    prods.into_iter().for_each(Joiner::join);
    let all: Vec<u64> = cons.into_iter().flat_map(Joiner::join).collect();
    assert_each_once(all, producers * per, "condvar queue");
    (producers * per) as u64
}

fn semaphore(mut cx: Mix) -> u64 {
    let permits = cx.rng.range(1, 4);
    let threads = cx.rng.range(2, 8);
    let iters = cx.rng.range(10, 100) * SCALE;
    let sem = Arc::new(Semaphore::new(permits));
    let holders = Arc::new(AtomicUsize::new(0));
    let hs: Vec<Joiner<()>> = (0..threads)
        .map(|_| {
            let (sem, holders) = (sem.clone(), holders.clone());
            cx.any(move |mut rng| {
                for _ in 0..iters {
                    let permit = if rng.percent(20) {
                        loop {
                            if let Some(p) = sem.try_acquire() {
                                break p;
                            }
                            thread::yield_now();
                        }
                    } else {
                        sem.acquire()
                    };
                    let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= permits, "{now} holders of {permits} permits");
                    jitter(&mut rng);
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
            })
        })
        .collect();
    hs.into_iter().for_each(Joiner::join);
    assert_eq!(sem.available_permits(), permits, "every permit came back");
    (threads * iters) as u64
}

fn barrier_wg(mut cx: Mix) -> u64 {
    let n = cx.rng.range(2, 6);
    let rounds = cx.rng.range(5, 30) * SCALE;
    let barrier = Arc::new(Barrier::new(n));
    let arrived: Arc<Vec<AtomicUsize>> =
        Arc::new((0..rounds).map(|_| AtomicUsize::new(0)).collect());
    let leaders: Arc<Vec<AtomicUsize>> =
        Arc::new((0..rounds).map(|_| AtomicUsize::new(0)).collect());
    let hs: Vec<Joiner<()>> = (0..n)
        .map(|_| {
            let (barrier, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
            cx.any(move |mut rng| {
                for r in 0..rounds {
                    arrived[r].fetch_add(1, Ordering::SeqCst);
                    jitter(&mut rng);
                    let res = barrier.wait();
                    assert_eq!(arrived[r].load(Ordering::SeqCst), n, "left round {r} early");
                    if res.is_leader() {
                        leaders[r].fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    hs.into_iter().for_each(Joiner::join);
    for (r, l) in leaders.iter().enumerate() {
        assert_eq!(l.load(Ordering::SeqCst), 1, "round {r}: one leader");
    }

    let tasks = cx.rng.range(5, 50);
    let wg = WaitGroup::new();
    let done = Arc::new(AtomicUsize::new(0));
    wg.add(tasks);
    let waiters: Vec<Joiner<()>> = (0..cx.rng.range(1, 3))
        .map(|_| {
            let (wg, done) = (wg.clone(), done.clone());
            cx.any(move |_| {
                wg.wait();
                assert_eq!(done.load(Ordering::SeqCst), tasks, "wait() returned early");
            })
        })
        .collect();
    let workers: Vec<Joiner<()>> = (0..tasks)
        .map(|_| {
            let (wg, done) = (wg.clone(), done.clone());
            cx.any(move |mut rng| {
                jitter(&mut rng);
                done.fetch_add(1, Ordering::SeqCst);
                wg.done();
            })
        })
        .collect();
    waiters.into_iter().for_each(Joiner::join);
    workers.into_iter().for_each(Joiner::join);
    (n * rounds + tasks) as u64
}

// ---------------------------------------------------------------------------
// Context, panics, timers, spawning, OS threads.

fn context(mut cx: Mix) -> u64 {
    let (root, cancel) = Context::background().with_cancel();
    let workers = cx.rng.range(1, 5);
    let n = (cx.rng.range(20, 300) * SCALE) as u64;
    let cancel_at = 1 + cx.rng.below(n as usize) as u64;
    let (work_tx, work_rx) = make_chan::<u64>(&mut cx.rng);
    let hs: Vec<Joiner<u64>> = (0..workers)
        .map(|_| {
            let (root, work_rx) = (root.clone(), work_rx.clone());
            cx.any(move |mut rng| {
                let (ctx, _handle) = if rng.percent(50) {
                    root.with_cancel()
                } else {
                    root.with_timeout(Duration::from_secs(3600))
                };
                let mut sum = 0;
                loop {
                    select! {
                        recv(ctx.done()) -> _ => {
                            assert_eq!(ctx.err(), Some(ContextError::Cancelled));
                            // Drain what was sent: nothing may be lost.
                            return sum + work_rx.iter().sum::<u64>();
                        },
                        recv(work_rx) -> v => match v {
                            Ok(v) => sum += v,
                            Err(_) => return sum,
                        },
                    }
                }
            })
        })
        .collect();
    drop(work_rx);
    for v in 1..=n {
        work_tx.send(v).expect("the workers drain until it closes");
        if v == cancel_at {
            cancel.cancel();
            assert!(root.is_done());
        }
    }
    drop(work_tx);
    let total: u64 = hs.into_iter().map(Joiner::join).sum();
    assert_eq!(
        total,
        n * (n + 1) / 2,
        "work lost or duplicated around the cancel"
    );
    n
}

/// What green thread `i` of the panics scenario does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    PanicAtOnce,
    PanicAfterBlocking,
    PanicHoldingLock,
    PanicAny,
    Finish,
}

fn panics(mut cx: Mix) -> u64 {
    let n = cx.rng.range(10, 60);
    let plans: Vec<Plan> = (0..n)
        .map(|_| match cx.rng.below(8) {
            0 => Plan::PanicAtOnce,
            1 => Plan::PanicAfterBlocking,
            2 => Plan::PanicHoldingLock,
            3 => Plan::PanicAny,
            _ => Plan::Finish,
        })
        .collect();
    let lock = Arc::new(Mutex::new(0usize));
    let hs: Vec<Joiner<usize>> = plans
        .iter()
        .enumerate()
        .map(|(i, &plan)| {
            let lock = lock.clone();
            let body = move |mut rng: Rng| -> usize {
                match plan {
                    Plan::PanicAtOnce => panic!("{EXPECTED} soak panic {i}"),
                    Plan::PanicAfterBlocking => {
                        thread::sleep(short(&mut rng));
                        let (tx, rx) = chan::bounded(1);
                        tx.send(i).unwrap();
                        panic!("{EXPECTED} soak panic {}", rx.recv().unwrap());
                    }
                    Plan::PanicHoldingLock => {
                        let mut g = lock.lock().unwrap_or_else(PoisonError::into_inner);
                        *g += 1;
                        jitter(&mut rng);
                        panic!("{EXPECTED} soak panic {i}");
                    }
                    Plan::PanicAny => panic::panic_any(ExpectedPanic(i as u64)),
                    Plan::Finish => {
                        jitter(&mut rng);
                        *lock.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                        i
                    }
                }
            };
            // OS threads too: the same payloads must come back through them.
            cx.any(body)
        })
        .collect();
    for ((i, plan), h) in plans.iter().enumerate().zip(hs) {
        match (plan, h.try_join()) {
            (Plan::Finish, Ok(v)) => assert_eq!(v, i),
            (Plan::PanicAny, Err(p)) => {
                assert_eq!(
                    p.downcast_ref::<ExpectedPanic>(),
                    Some(&ExpectedPanic(i as u64))
                );
                PANICS_MATCHED.fetch_add(1, Ordering::Relaxed);
            }
            (Plan::Finish, Err(p)) => panic::resume_unwind(p),
            (_, Err(p)) => {
                assert_eq!(panic_message(&*p), format!("{EXPECTED} soak panic {i}"));
                PANICS_MATCHED.fetch_add(1, Ordering::Relaxed);
            }
            (plan, Ok(v)) => panic!("green thread {i} planned {plan:?} but returned {v}"),
        }
    }
    let held = plans
        .iter()
        .filter(|&&p| p == Plan::PanicHoldingLock)
        .count();
    let finished = plans.iter().filter(|&&p| p == Plan::Finish).count();
    assert_eq!(lock.is_poisoned(), held > 0);
    lock.clear_poison();
    assert_eq!(*lock.lock().unwrap(), held + finished);
    n as u64
}

fn timers(mut cx: Mix) -> u64 {
    let hs: Vec<Joiner<u64>> = (0..cx.rng.range(2, 6))
        .map(|_| {
            cx.any(|mut rng| {
                let d = Duration::from_micros(rng.below(3000) as u64);
                let start = Instant::now();
                match rng.below(6) {
                    0 => thread::sleep(d),
                    1 => {
                        let fired = chan::after(d).recv().unwrap();
                        assert!(fired >= start + d, "after() fired early");
                    }
                    2 => {
                        let period = d.max(Duration::from_micros(100));
                        let ticker = chan::tick(period);
                        let mut last = start;
                        for k in 0..3 {
                            let t = ticker.recv().unwrap();
                            assert!(t >= last + period, "tick {k} came early");
                            last = t;
                        }
                    }
                    3 => {
                        let (_tx, rx) = chan::bounded::<u8>(0);
                        assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
                    }
                    4 => {
                        let never = chan::never::<u8>();
                        let timed_out = select! {
                            recv(never) -> _ => false,
                            default(d) => true,
                        };
                        assert!(timed_out);
                    }
                    _ => {
                        let (ctx, _c) = Context::background().with_timeout(d);
                        assert!(ctx.done().recv().is_err());
                        assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
                    }
                }
                assert!(start.elapsed() >= d, "a timed wait ended early");
                1
            })
        })
        .collect();
    hs.into_iter().map(Joiner::join).sum()
}

/// A fork-join tree; returns its node count.
fn tree(depth: u32, width: usize, mut rng: Rng) -> u64 {
    jitter(&mut rng);
    if depth == 0 {
        return 1;
    }
    if rng.percent(30) {
        // Scoped green threads borrowing from this frame: some joined, some
        // left to the scope, adding their count into a borrowed counter.
        let seeds: Vec<(Rng, bool)> = (0..width).map(|_| (rng.fork(), rng.percent(50))).collect();
        let unjoined = AtomicU64::new(0);
        let joined = thread::scope(|s| {
            let hs: Vec<_> = seeds
                .iter()
                .filter_map(|(seed, join)| {
                    if *join {
                        Some(s.spawn(|| tree(depth - 1, width, seed.clone())))
                    } else {
                        let unjoined = &unjoined;
                        s.spawn(move || {
                            unjoined
                                .fetch_add(tree(depth - 1, width, seed.clone()), Ordering::Relaxed);
                        });
                        None
                    }
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        1 + joined + unjoined.load(Ordering::Relaxed)
    } else {
        let hs: Vec<_> = (0..width)
            .map(|_| {
                let rng = rng.fork();
                thread::spawn(move || tree(depth - 1, width, rng))
            })
            .collect();
        1 + hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    }
}

fn spawn_tree(mut cx: Mix) -> u64 {
    let depth = cx.rng.range(2, if SCALE > 1 { 6 } else { 5 }) as u32;
    let width = cx.rng.range(2, 3);
    // Always a green root: thread::spawn inside it uses its runtime.
    let nodes = cx.green(move |rng| tree(depth, width, rng)).join();
    let expected: u64 = (0..=depth).map(|k| (width as u64).pow(k)).sum();
    assert_eq!(nodes, expected);
    nodes
}

/// Hundreds of short-lived green threads, each sending one value; half of
/// them detached (their handles dropped).
fn swarm(mut cx: Mix) -> u64 {
    let n = cx.rng.range(100, 800) * SCALE;
    let (tx, rx) = make_chan::<u64>(&mut cx.rng);
    let spawner = cx.green(move |mut rng| {
        let mut joined = Vec::new();
        for i in 0..n {
            let tx = tx.clone();
            let h = thread::spawn(move || {
                tx.send(i as u64).expect("the receiver is alive");
                i
            });
            if rng.percent(50) {
                joined.push(h);
            }
            jitter(&mut rng);
        }
        for h in joined {
            let i = h.join().unwrap();
            assert!(i < n);
        }
    });
    let got = recv_all(&rx, &mut cx.rng);
    spawner.join();
    assert_each_once(got, n, "swarm");
    n as u64
}

fn ring(mut cx: Mix) -> u64 {
    let size = cx.rng.range(2, 6);
    let laps = (cx.rng.range(10, 100) * SCALE) as u64;
    let chans: Vec<(Sender<u64>, Receiver<u64>)> = (0..size)
        .map(|_| {
            if cx.rng.percent(50) {
                chan::bounded(0)
            } else {
                chan::bounded(1)
            }
        })
        .collect();
    let mut hs = Vec::new();
    for i in 1..size {
        let rx = chans[i].1.clone();
        let tx = chans[(i + 1) % size].0.clone();
        hs.push(cx.any(move |_| {
            let mut forwarded = 0u64;
            for v in &rx {
                tx.send(v + 1).expect("the ring is whole");
                forwarded += 1;
            }
            forwarded // then drops `tx`: the next one stops too
        }));
    }
    let (first_tx, first_rx) = (chans[1 % size].0.clone(), chans[0].1.clone());
    drop(chans);
    let lead = cx.any(move |_| {
        let mut v = 0;
        for _ in 0..laps {
            first_tx.send(v).unwrap();
            v = first_rx.recv().unwrap() + 1;
        }
        v
    });
    assert_eq!(lead.join(), laps * size as u64);
    for h in hs {
        assert_eq!(h.join(), laps);
    }
    laps * size as u64
}

/// A hand-off pair that goes on until the green threads it spawns beside
/// itself (on its own worker, some yielding first) have all reported in:
/// they get turns although the pair always has one of its two ready there.
fn fairness(mut cx: Mix) -> u64 {
    let others = cx.rng.range(1, 20) * SCALE;
    let lead = cx.green(move |mut rng| {
        let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
        let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
        let pong = thread::spawn(move || {
            for v in &ping_rx {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (done_tx, done_rx) = chan::unbounded::<usize>();
        let mut handles = Vec::new();
        let (mut rounds, mut reported) = (0u64, 0);
        while reported < others {
            if handles.len() < others && rng.percent(10) {
                let (i, yields, done_tx) = (handles.len(), rng.below(20), done_tx.clone());
                handles.push(thread::spawn(move || {
                    for _ in 0..yields {
                        thread::yield_now();
                    }
                    done_tx.send(i).expect("the pair is waiting");
                    i
                }));
            }
            ping_tx.send(rounds).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), rounds);
            rounds += 1;
            reported += done_rx.try_iter().count();
        }
        drop(ping_tx);
        pong.join().unwrap();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i);
        }
        rounds
    });
    lead.join() + others as u64
}

/// Byte `i` of client `c`'s stream in the `sockets` scenario.
fn sock_byte(c: u64, i: u64) -> u8 {
    (i.wrapping_mul(13).wrapping_add(c) % 251) as u8
}

/// A connected stream of either kind, for the `sockets` scenario.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => (&*s).read(buf),
            Conn::Unix(s) => (&*s).read(buf),
        }
    }

    fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => (&*s).write_all(buf),
            Conn::Unix(s) => (&*s).write_all(buf),
        }
    }

    fn try_clone(&self) -> Conn {
        match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone().unwrap()),
            Conn::Unix(s) => Conn::Unix(s.try_clone().unwrap()),
        }
    }

    fn shutdown_write(&self) {
        match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write).unwrap(),
            Conn::Unix(s) => s.shutdown(Shutdown::Write).unwrap(),
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(t).unwrap(),
            Conn::Unix(s) => s.set_read_timeout(t).unwrap(),
        }
    }
}

fn sockets(mut cx: Mix) -> u64 {
    static NEXT_PATH: AtomicU64 = AtomicU64::new(0);
    let clients = cx.rng.range(1, 12);
    let (tcp_listener, unix_listener, path) = if cx.rng.percent(50) {
        (Some(TcpListener::bind("127.0.0.1:0").unwrap()), None, None)
    } else {
        let n = NEXT_PATH.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("grove-soak-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        (None, Some(UnixListener::bind(&path).unwrap()), Some(path))
    };
    let tcp_addr = tcp_listener.as_ref().map(|l| l.local_addr().unwrap());
    let server = cx.green(move |mut rng| {
        let handlers: Vec<_> = (0..clients)
            .map(|_| {
                let conn = match (&tcp_listener, &unix_listener) {
                    (Some(l), _) => Conn::Tcp(l.accept().unwrap().0),
                    (_, Some(l)) => Conn::Unix(l.accept().unwrap().0),
                    _ => unreachable!(),
                };
                let chunk = rng.range(1, 4096);
                thread::spawn(move || {
                    let mut buf = vec![0u8; chunk];
                    let mut echoed = 0u64;
                    loop {
                        match conn.read(&mut buf).unwrap() {
                            0 => return echoed,
                            n => {
                                conn.write_all(&buf[..n]).unwrap();
                                echoed += n as u64;
                            }
                        }
                    }
                })
            })
            .collect();
        handlers.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    let conns: Vec<Joiner<u64>> = (0..clients as u64)
        .map(|c| {
            let path = path.clone();
            let on_os = cx.rng.below(OS_ONE_IN) == 0;
            let client = move |mut rng: Rng| {
                let conn = match (tcp_addr, &path) {
                    (Some(addr), _) => Conn::Tcp(TcpStream::connect(addr).unwrap()),
                    (_, Some(path)) => Conn::Unix(UnixStream::connect(path).unwrap()),
                    _ => unreachable!(),
                };
                let len = rng.range(0, 64 * 1024 * SCALE) as u64;
                let chunk = rng.range(1, 8192);
                if rng.percent(30) {
                    // Timeouts that elapse lose nothing: the reads retry.
                    conn.set_read_timeout(Some(short(&mut rng)));
                }
                let writer = conn.try_clone();
                let mut wrng = rng.fork();
                let mut write = move || {
                    let mut sent = 0u64;
                    while sent < len {
                        let n = (chunk as u64).min(len - sent);
                        let bytes: Vec<u8> = (sent..sent + n).map(|i| sock_byte(c, i)).collect();
                        writer.write_all(&bytes).unwrap();
                        sent += n;
                        jitter(&mut wrng);
                    }
                    writer.shutdown_write();
                };
                // The writer: a green thread of its own, or this thread
                // first (the echo fits in the socket buffers only while
                // small: then alone).
                let separate = len > 16 * 1024 || rng.percent(50);
                type Join = Box<dyn FnOnce() + Send>;
                let write_h: Option<Join> = if !separate {
                    write();
                    None
                } else if on_os {
                    let h = std::thread::spawn(write);
                    Some(Box::new(move || h.join().unwrap()))
                } else {
                    let h = thread::spawn(write);
                    Some(Box::new(move || h.join().unwrap()))
                };
                let mut buf = vec![0u8; rng.range(1, 8192)];
                let mut got = 0u64;
                loop {
                    let n = match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => panic!("client {c}: {e}"),
                    };
                    for (k, &b) in buf[..n].iter().enumerate() {
                        assert_eq!(
                            b,
                            sock_byte(c, got + k as u64),
                            "client {c}: byte {}",
                            got + k as u64
                        );
                    }
                    got += n as u64;
                    jitter(&mut rng);
                }
                if let Some(join) = write_h {
                    join();
                }
                assert_eq!(got, len, "client {c}");
                got
            };
            if on_os {
                cx.os(client)
            } else {
                cx.green(client)
            }
        })
        .collect();
    let bytes: u64 = conns.into_iter().map(|j| j.join()).sum();
    assert_eq!(server.join(), bytes, "the server echoed other than it got");
    if let Some(path) = path {
        std::fs::remove_file(path).unwrap();
    }
    // Counted in KiB, so that the bytes do not drown the other scenarios'
    // operations in the total.
    bytes / 1024 + clients as u64
}

// ---------------------------------------------------------------------------
// Epochs and the run.

type Scenario = fn(Mix) -> u64;

const SCENARIOS: &[(&str, Scenario)] = &[
    ("pipeline", pipeline),
    ("router", router),
    ("mutex", mutex),
    ("rwlock", rwlock),
    ("condvar", condvar),
    ("semaphore", semaphore),
    ("barrier_wg", barrier_wg),
    ("context", context),
    ("panics", panics),
    ("timers", timers),
    ("spawn_tree", spawn_tree),
    ("swarm", swarm),
    ("ring", ring),
    ("fairness", fairness),
    ("sockets", sockets),
];

#[derive(Default)]
struct Totals {
    epochs: u64,
    runs: [u64; SCENARIOS.len()],
    checks: [u64; SCENARIOS.len()],
    /// Epochs whose runtime let started green threads migrate.
    migrating: u64,
    /// Wall time of each scenario's runs, added up.
    busy: [Duration; SCENARIOS.len()],
    spawned: u64,
}

/// Reads the diagnostics of a busy runtime while green threads come and go
/// (the task slab and the counters are shared with the workers) and checks what
/// holds at any instant. The counters are read one by one, so `completed`
/// may briefly run ahead of `spawned`: only monotonicity is checked.
fn probe_diagnostics(rt: &Runtime, workers: usize) {
    let before = rt.stats();
    let tasks = rt.tasks();
    let after = rt.stats();
    assert_eq!(before.workers, workers);
    assert!(after.spawned >= before.spawned, "{before:?} then {after:?}");
    assert!(
        after.completed >= before.completed,
        "{before:?} then {after:?}"
    );
    let mut ids: Vec<_> = tasks.iter().map(|t| t.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), tasks.len(), "a green thread listed twice");
}

fn run_epoch(epoch: u64, seed: u64, totals: &mut Totals) {
    let mut rng = Rng::new(seed);
    let workers = rng.range(1, 8);
    // 64 KiB only in release builds: a debug build's panic machinery (a
    // backtrace for an unexpected failure) needs more.
    let stack = if cfg!(debug_assertions) {
        *rng.pick(&[128 * 1024, 256 * 1024])
    } else {
        *rng.pick(&[64 * 1024, 128 * 1024, 256 * 1024])
    };
    let migrate = rng.below(4) == 0;
    totals.migrating += u64::from(migrate);
    // SAFETY: `full_migration`'s contract: no green thread of this runtime
    // holds a `thread_local!` reference, or a value that is not `Send`,
    // across a blocking call. The scenarios hold only grove guards (`Send`),
    // `Arc`s, channel ends, std `mpsc` senders and plain data across their
    // blocking calls, and never borrow a thread-local.
    let builder = unsafe { Runtime::builder().full_migration(migrate) };
    let rt = builder
        .workers(workers)
        .stack_size(stack)
        .build()
        .unwrap_or_else(|e| panic!("epoch {epoch}: building a runtime: {e}"));
    let rt = Arc::new(rt);
    let picks: Vec<usize> = (0..rng.range(3, 8))
        .map(|_| rng.below(SCENARIOS.len()))
        .collect();
    let (done_tx, done_rx) = mpsc::channel();
    for &s in &picks {
        let cx = Mix {
            rt: rt.clone(),
            rng: rng.fork(),
        };
        let done_tx = done_tx.clone();
        let run = move || {
            let start = Instant::now();
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| (SCENARIOS[s].1)(cx)));
            let _ = done_tx.send((s, start.elapsed(), outcome));
        };
        if rng.below(OS_ONE_IN) == 0 {
            std::thread::spawn(run);
        } else {
            drop(rt.spawn(run));
        }
    }
    drop(done_tx);
    let started = Instant::now();
    let mut left = picks.len();
    while left > 0 {
        match done_rx.recv_timeout(Duration::from_millis(20)) {
            Ok((s, busy, Ok(checks))) => {
                left -= 1;
                totals.runs[s] += 1;
                totals.checks[s] += checks;
                totals.busy[s] += busy;
            }
            Ok((s, _, Err(p))) => panic!(
                "epoch {epoch} ({workers} workers): scenario {} failed: {}",
                SCENARIOS[s].0,
                panic_message(&*p)
            ),
            Err(_) if started.elapsed() < EPOCH_LIMIT => probe_diagnostics(&rt, workers),
            Err(_) => panic!(
                "epoch {epoch} ({workers} workers, scenarios {:?}) hung for {EPOCH_LIMIT:?}\n\
                 stats: {:?}\ngreen threads: {:#?}",
                picks.iter().map(|&s| SCENARIOS[s].0).collect::<Vec<_>>(),
                rt.stats(),
                rt.tasks()
            ),
        }
    }
    // The counters may trail the joins by a moment.
    wait_until(
        "every green thread of the epoch to be counted finished",
        || rt.stats().live == 0,
    );
    totals.spawned += rt.stats().spawned;
    totals.epochs += 1;
    let mut shared = rt;
    let rt = loop {
        match Arc::try_unwrap(shared) {
            Ok(rt) => break rt,
            Err(again) => {
                // An OS driver may still be dropping its clone.
                std::thread::yield_now();
                shared = again;
            }
        }
    };
    let report = rt.shutdown();
    assert!(report.is_clean(), "epoch {epoch}: {report}");
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}")))
}

/// Runs epochs until `budget` is spent; returns the report line.
fn soak_for(budget: Duration, seed: u64) -> String {
    quiet_expected_panics();
    println!(
        "grove soak: seed {seed:#x} (replay with GROVE_SOAK_SEED={seed:#x}), budget {budget:?}"
    );
    let mut rng = Rng::new(seed);
    let mut totals = Totals::default();
    let panics_before = PANICS_MATCHED.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut epoch = 0;
    while start.elapsed() < budget {
        let epoch_seed = rng.next_u64();
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| {
            run_epoch(epoch, epoch_seed, &mut totals)
        })) {
            eprintln!("grove soak FAILED in epoch {epoch}: seed {seed:#x}");
            panic::resume_unwind(p);
        }
        epoch += 1;
    }
    let elapsed = start.elapsed();
    let checks: u64 = totals.checks.iter().sum();
    let panics = PANICS_MATCHED.load(Ordering::Relaxed) - panics_before;
    let mut report = format!(
        "grove soak: {elapsed:.1?}, seed {seed:#x}: {} epochs (a runtime of 1-8 workers each, \
         {} of them with full_migration), {checks} operations checked, {} green threads \
         spawned, {panics} panics matched\n",
        totals.epochs, totals.migrating, totals.spawned
    );
    for (s, (name, _)) in SCENARIOS.iter().enumerate() {
        let runs = totals.runs[s];
        report += &format!(
            "  {name:<12} {runs:>6} runs {:>12} ops checked {:>10.1?} per run\n",
            totals.checks[s],
            totals.busy[s] / runs.max(1) as u32
        );
    }
    assert!(checks > 0 && totals.epochs > 0);
    assert!(
        elapsed < budget + EPOCH_LIMIT,
        "the soak overran its budget: {elapsed:?}"
    );
    report
}

#[test]
#[ignore = "soak: runs for GROVE_SOAK_SECS (default 60); CI runs it in release with .ci/soak"]
fn soak() {
    let secs = env_u64("GROVE_SOAK_SECS").unwrap_or(60);
    let seed = env_u64("GROVE_SOAK_SEED").unwrap_or_else(Rng::seed_from_time);
    let report = soak_for(Duration::from_secs(secs), seed);
    println!("{report}");
}

#[test]
fn soak_smoke() {
    // Two seconds of the same mixes in every `cargo test`, so the soak code
    // cannot rot; the seed is printed (shown on failure) for a replay.
    let seed = env_u64("GROVE_SOAK_SEED").unwrap_or_else(Rng::seed_from_time);
    rel_util::watchdog_for(EPOCH_LIMIT + Duration::from_secs(30), move || {
        let report = soak_for(Duration::from_secs(2), seed);
        println!("{report}");
    });
}
