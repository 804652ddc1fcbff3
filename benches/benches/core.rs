//! Criterion benchmarks of grove's core (spawn, yield, park, fork/join,
//! blocking calls handed off: `file_read`) against std threads, tokio, may
//! and rayon. Named `<workload>/<impl>`.
//! The workloads live in the `grove_workloads` library, which verifies every
//! result; here they are only timed, with `iter_custom` so that building
//! runtimes is never timed.
//!
//! Where an implementation runs a smaller size than the others (OS
//! threads, may under `vm.max_map_count`), the throughput line (elements =
//! tasks, yields) is what compares. `parked_memory` is timed here (the
//! park + wake cycle) and prints its real figure, KiB per parked task, to
//! stderr.
//!
//! `cargo bench -p grove-workloads --bench core -- --test` runs every
//! benchmark once, as a smoke test.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

mod common;

use common::{flat_group, timed};
use grove_workloads::sizes::Sizes;
use grove_workloads::util::{self, may_fit_count, may_init, workers};
use grove_workloads::{fib_fork, file_read, parked_memory, skynet, spawn_join, yield_now};

/// A group of benchmarks with few samples of equal iteration counts (flat
/// sampling): most iterations here take milliseconds to seconds.
fn long_group<'a>(c: &'a mut Criterion, name: &str, secs: u64) -> BenchmarkGroup<'a, WallTime> {
    flat_group(
        c,
        name,
        Duration::from_millis(500),
        Duration::from_secs(secs),
    )
}

fn spawn_join(c: &mut Criterion) {
    let w = workers();
    let mut g = long_group(c, "spawn_join", 3);

    let n = Sizes::FULL.spawn;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || spawn_join::grove_scope(&rt, n)))
        });
        g.bench_function("grove_join_each", |b| {
            b.iter_custom(|i| timed(i, || spawn_join::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || spawn_join::tokio(&rt, n)))
        });
    }
    may_init(w);
    let fit = may_fit_count(n);
    fit.say("spawn_join");
    let n_may = fit.size;
    g.throughput(Throughput::Elements(n_may as u64));
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || spawn_join::may(n_may)))
    });

    let n_std = Sizes::FULL.spawn_std;
    g.throughput(Throughput::Elements(n_std as u64));
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || spawn_join::std_thread(n_std)))
    });
    g.finish();
}

fn yield_now(c: &mut Criterion) {
    let w = workers();
    let mut g = long_group(c, "yield_now", 2);
    // 100,000 yields an iteration; criterion repeats iterations as needed.
    let n = Sizes::FULL.yields / 10;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || yield_now::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_current_thread();
        g.bench_function("tokio_current_thread", |b| {
            b.iter_custom(|i| timed(i, || yield_now::tokio(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio_multi_thread", |b| {
            b.iter_custom(|i| timed(i, || yield_now::tokio(&rt, n)))
        });
    }
    may_init(w);
    g.bench_function("may", |b| b.iter_custom(|i| timed(i, || yield_now::may(n))));
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || yield_now::std_thread(n)))
    });
    g.finish();
}

/// Prints the median KiB per parked task of the runs a benchmark made.
fn report_kib(name: &str, runs: &mut [parked_memory::Parked]) {
    if runs.is_empty() {
        return;
    }
    runs.sort_by(|a, b| a.kib_per_task().total_cmp(&b.kib_per_task()));
    let mid = &runs[runs.len() / 2];
    eprintln!(
        "parked_memory/{name}: {:.2} KiB per parked task (median of {} runs of {} tasks; min {:.2}, max {:.2})",
        mid.kib_per_task(),
        runs.len(),
        mid.tasks,
        runs[0].kib_per_task(),
        runs[runs.len() - 1].kib_per_task(),
    );
}

fn parked_memory(c: &mut Criterion) {
    let w = workers();
    let mut g = long_group(c, "parked_memory", 5);
    let n = Sizes::FULL.parked;

    // Where grove maps each stack on its own (no guard regions), 100,000
    // stacks need vm.max_map_count raised (each run raises it and restores
    // it): skip with the reason if it cannot be.
    match parked_memory::grove_can_run(n) {
        Err(reason) => eprintln!("{reason}"),
        Ok(()) => {
            let mut runs = Vec::new();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function("grove", |b| {
                b.iter_custom(|i| {
                    timed(i, || {
                        let run =
                            parked_memory::grove(w, n).unwrap_or_else(|reason| panic!("{reason}"));
                        runs.push(run);
                        run.elapsed()
                    })
                })
            });
            report_kib("grove", &mut runs);
        }
    }

    let mut runs = Vec::new();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("tokio", |b| {
        b.iter_custom(|i| {
            timed(i, || {
                let run = parked_memory::tokio(w, n);
                runs.push(run);
                run.elapsed()
            })
        })
    });
    report_kib("tokio", &mut runs);

    may_init(w);
    let fit = may_fit_count(n);
    fit.say("parked_memory");
    let n_may = fit.size;
    let mut runs = Vec::new();
    g.throughput(Throughput::Elements(n_may as u64));
    g.bench_function("may", |b| {
        b.iter_custom(|i| {
            timed(i, || {
                let run = parked_memory::may(n_may);
                runs.push(run);
                run.elapsed()
            })
        })
    });
    report_kib("may", &mut runs);

    let n_std = Sizes::FULL.parked_std;
    let mut runs = Vec::new();
    g.throughput(Throughput::Elements(n_std as u64));
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| {
            timed(i, || {
                let run = parked_memory::std_thread(n_std, parked_memory::STD_THREAD_STACK);
                runs.push(run);
                run.elapsed()
            })
        })
    });
    report_kib("std_thread", &mut runs);
    g.finish();
}

fn skynet(c: &mut Criterion) {
    let w = workers();
    let mut g = long_group(c, "skynet", 10);
    let leaves = Sizes::FULL.leaves as u64;
    g.throughput(Throughput::Elements(skynet::tasks(leaves)));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || skynet::grove(&rt, leaves)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || skynet::tokio(&rt, leaves)))
        });
    }
    may_init(w);
    // may holds a stack for every node at once: the tree must fit.
    let fit = skynet::may_fit_leaves(leaves);
    fit.say("skynet");
    let leaves_may = fit.size;
    g.throughput(Throughput::Elements(skynet::tasks(leaves_may)));
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || skynet::may(leaves_may)))
    });

    // One OS thread per node: 1,000,000 leaves is impossible; 1,000 shows
    // the cost per node.
    let leaves_std = Sizes::FULL.leaves_std as u64;
    g.throughput(Throughput::Elements(skynet::tasks(leaves_std)));
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || skynet::std_thread(leaves_std)))
    });
    g.finish();
}

fn fib_fork(c: &mut Criterion) {
    let w = workers();
    let mut g = long_group(c, "fib_fork", 5);
    let n = Sizes::FULL.fib as u32;
    g.throughput(Throughput::Elements(fib_fork::tasks(n)));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || fib_fork::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || fib_fork::tokio(&rt, n)))
        });
    }
    {
        let pool = util::rayon_pool(w);
        g.bench_function("rayon", |b| {
            b.iter_custom(|i| timed(i, || fib_fork::rayon(&pool, n)))
        });
    }
    g.bench_function("sequential", |b| {
        b.iter_custom(|i| timed(i, || fib_fork::sequential(n)))
    });
    may_init(w);
    let fit = fib_fork::may_fit_n(n);
    fit.say("fib_fork");
    let n_may = fit.size;
    g.throughput(Throughput::Elements(fib_fork::tasks(n_may)));
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || fib_fork::may(n_may)))
    });
    g.finish();
}

/// file_read: grove's blocking pool against tokio's (`tokio::fs`) and
/// plain reads on OS threads. may is left to the showdown: its reads are
/// the OS threads' reads, made on its workers.
fn file_read(c: &mut Criterion) {
    let w = workers();
    let mut g = long_group(c, "file_read", 5);
    // 64,000 reads an iteration (tokio takes about half a second for
    // them here); criterion repeats iterations as needed.
    let n = file_read::reads(Sizes::FULL.file_reads / 10);
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || file_read::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || file_read::tokio(&rt, n)))
        });
    }
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || file_read::std_thread(n)))
    });
    g.finish();
}

criterion_group!(
    benches,
    spawn_join,
    yield_now,
    parked_memory,
    skynet,
    fib_fork,
    file_read
);
criterion_main!(benches);
