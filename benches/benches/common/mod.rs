//! What the criterion bench files share: every workload here reports the
//! time it measured itself, and most iterations take milliseconds to
//! seconds, so groups use few samples of equal iteration counts.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode};

/// Runs `f` once per iteration and sums what it measured.
pub fn timed(iters: u64, mut f: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| f()).sum()
}

/// A group of 10 samples of equal iteration counts (flat sampling), warmed
/// up for `warm_up` and measured for `measure`.
pub fn flat_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    warm_up: Duration,
    measure: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measure);
    g
}
