//! What every workload shares: building the runtimes under test, checking
//! results, and fitting a size under may's budget of live coroutines
//! ([`may_fit`], the one rule every workload and bench uses). Readings of
//! `/proc` and the `vm.max_map_count` guard are the test-support crate's
//! ([`grove_test_support`]), shared with grove's tests.

use std::fmt::Debug;
use std::sync::OnceLock;

use grove_test_support::procfs;

/// Worker threads for every runtime under test: one per core, as Go's
/// `GOMAXPROCS` default, unless `GROVE_BENCH_WORKERS` says otherwise.
pub fn workers() -> usize {
    std::env::var("GROVE_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Panics loudly when a workload computed the wrong answer: a fast wrong
/// answer is a bug, never a result.
#[track_caller]
pub fn check<T: PartialEq + Debug>(what: &str, got: T, want: T) {
    if got != want {
        panic!("{what}: WRONG RESULT: got {got:?}, want {want:?}");
    }
}

/// A grove runtime with `workers` workers and the default stack limit.
pub fn grove_runtime(workers: usize) -> grove::Runtime {
    grove::Runtime::builder()
        .workers(workers)
        .thread_name("bench-grove")
        .build()
        .expect("cannot build a grove runtime")
}

/// A multi-thread tokio runtime with `workers` workers.
pub fn tokio_multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("cannot build a tokio runtime")
}

/// A current-thread tokio runtime (everything runs on the caller).
pub fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("cannot build a tokio runtime")
}

/// A rayon pool with `workers` threads.
pub fn rayon_pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("bench-rayon-{i}"))
        .build()
        .expect("cannot build a rayon pool")
}

/// Configures may's one global scheduler, once per process: may reads its
/// configuration when it starts, on the first spawn, and never again. The
/// first caller's `workers` wins; returns the worker count in force.
pub fn may_init(workers: usize) -> usize {
    static WORKERS: OnceLock<usize> = OnceLock::new();
    *WORKERS.get_or_init(|| {
        may::config().set_workers(workers);
        // Pinning workers to cores helps nobody on a shared 2-vCPU VM, and
        // grove, tokio and Go do not pin either.
        may::config().set_worker_pin(false);
        workers
    })
}

/// Spawns a may coroutine.
///
/// may's spawn is `unsafe` (its `go!` macro only hides the `unsafe`
/// block): a coroutine that touches thread-local storage may find another
/// thread's, and one that overflows its fixed 32 KiB stack (no guard
/// check on every frame) is undefined behaviour. The closures the
/// workloads pass here do plain arithmetic, atomics, may's own
/// join/park/yield/sleep, may's own sockets (`may::net`, with a 4 KiB
/// buffer on the stack in the echo server), plain `std::fs::File` opens
/// and reads (`file_read`, its buffer on the heap) and further spawns,
/// with a few frames of stack.
///
/// Each live coroutine holds a stack of two memory mappings, so at the
/// default `vm.max_map_count` (65530) may runs out at about 32,000 live
/// coroutines, and then this panics ("failed to alloc sys stack"); see
/// [`may_budget`] and [`may_fit`].
pub fn may_go<F, T>(f: F) -> may::coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: see the doc comment: the workloads' closures use no
    // thread-local storage of their own and little stack.
    unsafe { may::coroutine::spawn(f) }
}

/// Mappings held back from may's budget for everything else the process
/// maps (allocator arenas, thread stacks, the other runtimes).
const MAY_MAP_HEADROOM: usize = 8192;

/// How many may coroutines can be alive at once in this process now: two
/// mappings per coroutine stack, under `vm.max_map_count`, less what the
/// process maps already and some headroom. Where grove maps each of its
/// stacks on its own ([`grove::runtime::stack_mode`] is `Mappings`), half
/// of that is left to grove's stacks, which a workload's grove runtime
/// pools beside may's coroutines; in guard-region mode they take next to
/// no mappings.
pub fn may_budget() -> usize {
    let max = procfs::max_map_count().unwrap_or(65530);
    let room = max.saturating_sub(procfs::map_count() + MAY_MAP_HEADROOM) / 2;
    match grove::runtime::stack_mode() {
        grove::runtime::StackMode::Mappings => room / 2,
        _ => room,
    }
}

/// A size fitted under [`may_budget`] by [`may_fit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MayFit<T> {
    /// The size to run may at.
    pub size: T,
    /// The size asked for.
    pub wanted: T,
    /// The budget it was fitted under (live coroutines).
    pub budget: usize,
}

impl<T: PartialEq + std::fmt::Display> MayFit<T> {
    /// Whether the size had to come down.
    pub fn scaled(&self) -> bool {
        self.size != self.wanted
    }

    /// Says on stderr (for a criterion run) that `workload`'s may size
    /// came down, if it did: a report never silently compares different
    /// sizes.
    pub fn say(&self, workload: &str) {
        if self.scaled() {
            eprintln!(
                "{workload}/may: {} does not fit under vm.max_map_count (room for about {} live \
                 coroutines); using {}",
                self.wanted, self.budget, self.size
            );
        }
    }
}

/// The one rule for sizing a may run: the largest size, from `wanted` down
/// the workload's ladder (`smaller` gives the next size down, `None` at
/// the bottom), whose coroutines alive at once (`live`) fit in
/// [`may_budget`]. may panics ("failed to alloc sys stack"), or worse,
/// past it.
pub fn may_fit<T: Copy + PartialEq>(
    wanted: T,
    live: impl Fn(T) -> usize,
    smaller: impl Fn(T) -> Option<T>,
) -> MayFit<T> {
    let budget = may_budget();
    let mut size = wanted;
    while live(size) > budget {
        match smaller(size) {
            Some(next) => size = next,
            None => break,
        }
    }
    MayFit {
        size,
        wanted,
        budget,
    }
}

/// [`may_fit`] for a workload whose size is its count of live coroutines
/// (spawn_join, parked_memory, waitgroup_fanout): its ladder is 1, 2 and
/// 5 times the powers of ten.
pub fn may_fit_count(wanted: usize) -> MayFit<usize> {
    may_fit(wanted, |n| n, next_1_2_5_below)
}

/// The largest of 1, 2 or 5 times a power of ten below `n`.
fn next_1_2_5_below(n: usize) -> Option<usize> {
    let mut best = None;
    let mut power = 1usize;
    while power < n {
        for step in [1, 2, 5] {
            if step * power < n {
                best = Some(step * power);
            }
        }
        power = power.checked_mul(10)?;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_1_2_5_ladder() {
        assert_eq!(next_1_2_5_below(100_000), Some(50_000));
        assert_eq!(next_1_2_5_below(50_000), Some(20_000));
        assert_eq!(next_1_2_5_below(30_000), Some(20_000));
        assert_eq!(next_1_2_5_below(1), None);
        let fit = may_fit(1_000_000usize, |n| n, next_1_2_5_below);
        assert!(fit.size <= fit.budget && fit.scaled());
        assert!(!may_fit_count(10).scaled());
    }
}
