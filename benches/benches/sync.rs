//! Criterion benchmarks of grove's sync primitives against tokio, may and
//! std on OS threads: `mutex_uncontended`, `rwlock_read`,
//! `waitgroup_fanout`, and the uncontended `sync_fast_paths` (the
//! contended `mutex` is in `channels`). Named
//! `<workload>/<impl>`. The workloads live in the `grove_workloads` library,
//! which verifies every result; here they are only timed, with
//! `iter_custom` so that building runtimes is never timed.
//!
//! Sizes are a tenth of the full table's ([`Sizes::FULL`]) per iteration (criterion repeats
//! iterations); OS threads in `waitgroup_fanout` spawn fewer tasks, and
//! the throughput line (elements = lock + unlock pairs, operations,
//! tasks) is what compares.
//!
//! `cargo bench -p grove-workloads --bench sync -- --test` runs every
//! benchmark once, as a smoke test.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

mod common;

use common::{flat_group, timed};
use grove_workloads::sizes::Sizes;
use grove_workloads::util::{self, may_fit_count, may_init, workers};
use grove_workloads::{mutex_uncontended, rwlock_read, waitgroup_fanout};

/// A group of few samples of equal iteration counts (flat sampling).
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    flat_group(c, name, Duration::from_millis(300), Duration::from_secs(2))
}

fn mutex_uncontended_group(c: &mut Criterion) {
    let w = workers();
    let mut g = group(c, "mutex_uncontended");
    let n = Sizes::FULL.uncontended / 10;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || mutex_uncontended::grove(&rt, n)))
        });
    }
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || mutex_uncontended::std_thread(n)))
    });
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || mutex_uncontended::tokio(&rt, n)))
        });
    }
    may_init(w);
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || mutex_uncontended::may(n)))
    });
    g.finish();
}

fn rwlock_read_group(c: &mut Criterion) {
    let w = workers();
    let mut g = group(c, "rwlock_read");
    let n = rwlock_read::operations(Sizes::FULL.rw_ops / 10);
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || rwlock_read::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || rwlock_read::tokio(&rt, n)))
        });
    }
    may_init(w);
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || rwlock_read::may(n)))
    });
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || rwlock_read::std_thread(n)))
    });
    g.finish();
}

fn waitgroup_fanout_group(c: &mut Criterion) {
    let w = workers();
    let mut g = group(c, "waitgroup_fanout");
    let n = Sizes::FULL.fanout / 10;
    g.throughput(Throughput::Elements(n as u64));
    {
        let rt = util::grove_runtime(w);
        g.bench_function("grove", |b| {
            b.iter_custom(|i| timed(i, || waitgroup_fanout::grove(&rt, n)))
        });
    }
    {
        let rt = util::tokio_multi_thread(w);
        g.bench_function("tokio", |b| {
            b.iter_custom(|i| timed(i, || waitgroup_fanout::tokio(&rt, n)))
        });
    }
    may_init(w);
    let fit = may_fit_count(n);
    fit.say("waitgroup_fanout");
    let n_may = fit.size;
    g.throughput(Throughput::Elements(n_may as u64));
    g.bench_function("may", |b| {
        b.iter_custom(|i| timed(i, || waitgroup_fanout::may(n_may)))
    });
    let n_std = Sizes::FULL.fanout_std;
    g.throughput(Throughput::Elements(n_std as u64));
    g.bench_function("std_thread", |b| {
        b.iter_custom(|i| timed(i, || waitgroup_fanout::std_thread(n_std)))
    });
    g.finish();
}

/// The uncontended fast paths, one operation per iteration on the bench's
/// own OS thread (grove's primitives work there too): what a program pays
/// for a semaphore permit, a finished `Once` or a WaitGroup add/done when
/// nobody contends (Go's `BenchmarkSemaUncontended`, `BenchmarkOnce`,
/// `BenchmarkWaitGroupUncontended` without the parallel loop).
fn fast_paths_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync_fast_paths");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    let sem = grove::sync::Semaphore::new(1);
    g.bench_function("semaphore_acquire/grove", |b| {
        b.iter(|| drop(std::hint::black_box(&sem).acquire()))
    });
    g.bench_function("semaphore_try_acquire/grove", |b| {
        b.iter(|| drop(std::hint::black_box(&sem).try_acquire()))
    });
    let tokio_sem = tokio::sync::Semaphore::new(1);
    g.bench_function("semaphore_try_acquire/tokio", |b| {
        b.iter(|| drop(std::hint::black_box(&tokio_sem).try_acquire()))
    });
    let once = grove::sync::Once::new();
    once.call_once(|| {});
    g.bench_function("once_done/grove", |b| {
        b.iter(|| std::hint::black_box(&once).call_once(|| unreachable!()))
    });
    let std_once = std::sync::Once::new();
    std_once.call_once(|| {});
    g.bench_function("once_done/std", |b| {
        b.iter(|| std::hint::black_box(&std_once).call_once(|| unreachable!()))
    });
    let wg = grove::sync::WaitGroup::new();
    g.bench_function("waitgroup_add_done/grove", |b| {
        b.iter(|| {
            let wg = std::hint::black_box(&wg);
            wg.add(1);
            wg.done();
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    mutex_uncontended_group,
    rwlock_read_group,
    waitgroup_fanout_group,
    fast_paths_group
);
criterion_main!(benches);
