//! Criterion benchmarks of the cross-worker hand-off: the communicating
//! green threads deliberately split across workers
//! (`grove::thread::Builder::on_worker`), beside the same program placed
//! as the runtime likes ("natural"). `pingpong0_split`: two green threads
//! bounce a counter over two unbuffered channels, the driver on worker 0
//! and the echo on worker 1; `prodcons_split`: producers on worker 0,
//! consumers on worker 1, for each prodcons shape. Every hand-off then
//! crosses workers: a wake of the other worker, its pickup, and the cache
//! lines that move. Named `<workload>/<impl>`; sizes are a tenth of the
//! full table's per iteration.
//!
//! `crowded`: the same programs beside busy OS threads, one per CPU (a
//! machine shared with another busy program: more runnable threads than
//! CPUs). A worker that spins there keeps its CPU from the preempted
//! thread whose work would end the spin; the runtime stops spinning once
//! it sees itself preempted (`Worker::crowded` in the scheduler).
//!
//! `cargo bench -p grove-workloads --bench split -- --test` runs every
//! benchmark once, as a smoke test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

mod common;

use common::{flat_group, timed};
use grove_workloads::chans::Placement;
use grove_workloads::prodcons::{CAP0, CAP128, FOUR_BY_FOUR};
use grove_workloads::sizes::Sizes;
use grove_workloads::util::{self, workers};
use grove_workloads::{pingpong0, prodcons};

/// A group of few samples of equal iteration counts (flat sampling).
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    flat_group(c, name, Duration::from_millis(300), Duration::from_secs(2))
}

/// Workers of the runtime: at least two, or nothing can be split.
fn split_workers() -> usize {
    workers().max(Placement::Split.workers_needed())
}

fn pingpong0_split(c: &mut Criterion) {
    let mut g = group(c, "pingpong0_split");
    let n = Sizes::FULL.rounds / 10;
    g.throughput(Throughput::Elements(n as u64));
    let rt = util::grove_runtime(split_workers());
    for (name, placement) in [
        ("grove_split", Placement::Split),
        ("grove_natural", Placement::Natural),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|i| timed(i, || pingpong0::grove_spawned(&rt, n, placement)))
        });
    }
    g.finish();
}

fn prodcons_split(c: &mut Criterion) {
    let mut g = group(c, "prodcons_split");
    let n = Sizes::FULL.messages / 10;
    g.throughput(Throughput::Elements(n as u64));
    let rt = util::grove_runtime(split_workers());
    for (name, shape) in [("cap0", CAP0), ("cap128", CAP128), ("4p4c", FOUR_BY_FOUR)] {
        g.bench_function(format!("grove_split_{name}"), |b| {
            b.iter_custom(|i| {
                timed(i, || {
                    prodcons::grove_spawned(&rt, shape, n, Placement::Split)
                })
            })
        });
    }
    g.finish();
}

/// OS threads that spin, one per CPU, until dropped.
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cpus)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn crowded(c: &mut Criterion) {
    let mut g = group(c, "crowded");
    let rounds = Sizes::FULL.rounds / 100;
    let messages = Sizes::FULL.messages / 100;
    let rt = util::grove_runtime(split_workers());
    let _busy = Busy::start();
    for (name, placement) in [
        ("pingpong0_split", Placement::Split),
        ("pingpong0_natural", Placement::Natural),
    ] {
        g.throughput(Throughput::Elements(rounds as u64));
        g.bench_function(name, |b| {
            b.iter_custom(|i| timed(i, || pingpong0::grove_spawned(&rt, rounds, placement)))
        });
    }
    for (name, shape) in [("cap0", CAP0), ("4p4c", FOUR_BY_FOUR)] {
        g.throughput(Throughput::Elements(messages as u64));
        g.bench_function(format!("prodcons_{name}_natural"), |b| {
            b.iter_custom(|i| {
                timed(i, || {
                    prodcons::grove_spawned(&rt, shape, messages, Placement::Natural)
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, pingpong0_split, prodcons_split, crowded);
criterion_main!(benches);
