//! Criterion benchmarks of grove's channels, select and mutex against
//! tokio, may, crossbeam-channel and `std::sync::mpsc` on OS threads (and
//! grove's channels on OS threads, `grove_threads`):
//! `pingpong0`, `prodcons` (cap 0, cap 128, 4P/4C), `mutex`, `select2`;
//! and `timers`: a timer armed and stopped (grove's `Timer` against
//! tokio's `sleep` future made and dropped, on a runtime's worker), and an
//! `after_func` armed and stopped; and `polls`: Go's runtime benchmarks
//! of operations that do not wait (`ChanNonblocking`, `ChanClosed`,
//! `ChanPopular`), grove alone.
//! Named `<workload>/<impl>`. The workloads live in the `grove_workloads`
//! library, which verifies every result; here they are only timed, with
//! `iter_custom` so that building runtimes is never timed.
//!
//! Sizes are a tenth of the full table's ([`Sizes::FULL`]) per iteration (criterion repeats
//! iterations); OS threads over unbuffered channels run fewer messages,
//! and the throughput line (elements = round trips, messages,
//! increments) is what compares. may's `select!` loses messages (see
//! `select2`), so it has no benchmark here; the comparison program shows
//! it failing.
//!
//! `cargo bench -p grove-workloads --bench channels -- --test` runs every
//! benchmark once, as a smoke test.

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

mod common;

use common::{flat_group, timed};
use grove_workloads::prodcons::{Shape, CAP0, CAP128, FOUR_BY_FOUR};
use grove_workloads::sizes::Sizes;
use grove_workloads::util::{self, may_init, workers};
use grove_workloads::{mutex, pingpong0, prodcons, select2};

/// A group of few samples of equal iteration counts (flat sampling).
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    flat_group(c, name, Duration::from_millis(300), Duration::from_secs(2))
}

fn pingpong(c: &mut Criterion) {
    let w = workers();
    let mut g = group(c, "pingpong0");
    let n = Sizes::FULL.rounds / 10;
    g.throughput(Throughput::Elements(n as u64));
    for (name, workers) in [("grove", w), ("grove_1_worker", 1)] {
        let rt = util::grove_runtime(workers);
        g.bench_function(name, |b| {
            b.iter_custom(|i| timed(i, || pingpong0::grove(&rt, n)))
        });
    }
    for (name, workers) in [("tokio", w), ("tokio_1_worker", 1)] {
        let rt = util::tokio_multi_thread(workers);
        g.bench_function(name, |b| {
            b.iter_custom(|i| timed(i, || pingpong0::tokio(&rt, n)))
        });
    }
    may_init(w);
    g.bench_function("may", |b| b.iter_custom(|i| timed(i, || pingpong0::may(n))));

    let n_std = Sizes::FULL.rounds_std / 10;
    g.throughput(Throughput::Elements(n_std as u64));
    g.bench_function("crossbeam_threads", |b| {
        b.iter_custom(|i| timed(i, || pingpong0::crossbeam(n_std)))
    });
    g.bench_function("std_mpsc_threads", |b| {
        b.iter_custom(|i| timed(i, || pingpong0::std_mpsc(n_std)))
    });
    g.finish();
}

fn prodcons_shape(c: &mut Criterion, name: &str, shape: Shape) {
    let w = workers();
    let mut g = group(c, name);
    let n = Sizes::FULL.messages / 10;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || prodcons::grove(&rt, shape, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || prodcons::tokio(&rt, shape, n)))
        });
    }
    may_init(w);
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || prodcons::may(shape, n)))
    });
    let n_std = if shape.cap == 0 {
        Sizes::FULL.messages_std_cap0 / 10
    } else {
        n
    };
    g.throughput(Throughput::Elements(n_std as u64));
    g.bench_function("crossbeam_threads", |b| {
        b.iter_custom(|i| timed(i, || prodcons::crossbeam(shape, n_std)))
    });
    g.bench_function("grove_threads", |b| {
        b.iter_custom(|i| timed(i, || prodcons::grove_threads(shape, n_std)))
    });
    g.bench_function("std_mpsc_threads", |b| {
        b.iter_custom(|i| timed(i, || prodcons::std_mpsc(shape, n_std)))
    });
    g.finish();
}

fn prodcons_all(c: &mut Criterion) {
    prodcons_shape(c, "prodcons_cap0", CAP0);
    prodcons_shape(c, "prodcons_cap128", CAP128);
    prodcons_shape(c, "prodcons_4p4c", FOUR_BY_FOUR);
}

fn mutex_group(c: &mut Criterion) {
    let w = workers();
    let mut g = group(c, "mutex");
    let n = Sizes::FULL.increments / 10;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || mutex::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || mutex::tokio(&rt, n)))
        });
    }
    may_init(w);
    g.bench_function("may", |b| b.iter_custom(|i| timed(i, || mutex::may(n))));
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || mutex::std_thread(n)))
    });
    g.finish();
}

fn select2_group(c: &mut Criterion) {
    let w = workers();
    let mut g = group(c, "select2");
    let n = Sizes::FULL.select / 10;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || select2::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || select2::tokio(&rt, n)))
        });
    }
    g.bench_function("crossbeam_threads", |b| {
        b.iter_custom(|i| timed(i, || select2::crossbeam(n)))
    });
    g.finish();
}

/// Armed-then-stopped timers: what an idle timeout costs when its work
/// comes in time. A grove `Timer` nobody waits on has no timer-heap entry;
/// tokio's `sleep` registers in its timer wheel when first polled, so it is
/// polled once here (as a `select!` would) before it is dropped.
fn timers_group(c: &mut Criterion) {
    const N: u64 = 10_000;
    const HOUR: Duration = Duration::from_secs(3600);
    let mut g = group(c, "timers");
    g.throughput(Throughput::Elements(N));
    {
        let rt = util::grove_runtime(1);
        g.bench_function("grove_timer", |b| {
            b.iter_custom(|i| {
                timed(i, || {
                    rt.block_on(|| {
                        let start = Instant::now();
                        for _ in 0..N {
                            let t = grove::chan::Timer::new(HOUR);
                            assert!(t.stop());
                        }
                        start.elapsed()
                    })
                })
            })
        });
        g.bench_function("grove_after_func", |b| {
            b.iter_custom(|i| {
                timed(i, || {
                    rt.block_on(|| {
                        let start = Instant::now();
                        for _ in 0..N {
                            let t = grove::chan::after_func(HOUR, || unreachable!());
                            assert!(t.stop());
                        }
                        start.elapsed()
                    })
                })
            })
        });
    }
    {
        let rt = util::tokio_multi_thread(1);
        g.bench_function("tokio_sleep", |b| {
            b.iter_custom(|i| {
                timed(i, || {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..N {
                            let mut sleep = std::pin::pin!(tokio::time::sleep(HOUR));
                            let ready = poll_once(sleep.as_mut()).await;
                            assert!(!ready);
                        }
                        start.elapsed()
                    })
                })
            })
        });
    }
    g.finish();
}

/// Go's runtime benchmarks of operations that do not wait, in their
/// shapes, on green threads (one per worker, as `b.RunParallel`):
/// `ChanNonblocking` (a one-arm `select!` with a `default` on an empty
/// unbuffered channel), `ChanClosed` (the same on a closed channel: the
/// arm runs with an error) and `ChanPopular` (1,000 green threads each
/// selecting on one shared channel and one of its own, answered on their
/// own, 10 rounds: a round is the unit). The first two decide from the
/// channel's published word, without its lock; the third measures
/// unregistering from a long queue.
fn polls_group(c: &mut Criterion) {
    const N: u64 = 100_000;
    let w = workers();
    let mut g = group(c, "polls");
    g.throughput(Throughput::Elements(N * w as u64));
    let rt = util::grove_runtime(w);
    let parallel = |closed: bool| {
        rt.block_on(move || {
            let (tx, rx) = grove::chan::bounded::<u32>(0);
            if closed {
                tx.close();
            }
            let start = Instant::now();
            let handles: Vec<_> = (0..w)
                .map(|i| {
                    let rx = rx.clone();
                    grove::thread::Builder::new()
                        .on_worker(i)
                        .spawn(move || {
                            let mut seen = 0u64;
                            for _ in 0..N {
                                grove::select! {
                                    recv(rx) -> v => { assert!(v.is_err()); seen += 1 },
                                    default => {},
                                }
                            }
                            seen
                        })
                        .expect("a worker per green thread")
                })
                .collect();
            let seen: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(seen, if closed { N * w as u64 } else { 0 });
            drop(tx);
            start.elapsed()
        })
    };
    g.bench_function("grove_nonblocking", |b| {
        b.iter_custom(|i| timed(i, || parallel(false)))
    });
    g.bench_function("grove_closed", |b| {
        b.iter_custom(|i| timed(i, || parallel(true)))
    });
    const POPULAR: usize = 1_000;
    const ROUNDS: u64 = 10;
    g.throughput(Throughput::Elements(ROUNDS));
    g.bench_function("grove_popular", |b| {
        b.iter_custom(|i| {
            timed(i, || {
                rt.block_on(|| {
                    let (_shared_tx, shared) = grove::chan::bounded::<bool>(0);
                    let (own, handles): (Vec<_>, Vec<_>) = (0..POPULAR)
                        .map(|_| {
                            let (tx, rx) = grove::chan::bounded::<bool>(0);
                            let shared = shared.clone();
                            let h = grove::go(move || {
                                for _ in 0..ROUNDS {
                                    grove::select! {
                                        recv(shared) -> _v => unreachable!("nothing is sent there"),
                                        recv(rx) -> v => assert_eq!(v, Ok(true)),
                                    }
                                }
                            });
                            (tx, h)
                        })
                        .unzip();
                    let start = Instant::now();
                    for _ in 0..ROUNDS {
                        for tx in &own {
                            tx.send(true).unwrap();
                        }
                    }
                    handles.into_iter().for_each(|h| h.join().unwrap());
                    start.elapsed()
                })
            })
        })
    });
    g.finish();
}

/// Polls `fut` once; true if it was ready.
async fn poll_once<F: std::future::Future + Unpin>(mut fut: F) -> bool {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::pin::Pin::new(&mut fut).poll(cx).is_ready())
    })
    .await
}

criterion_group!(
    benches,
    pingpong,
    prodcons_all,
    mutex_group,
    select2_group,
    timers_group,
    polls_group
);
criterion_main!(benches);
