//! grove's benchmark workloads, with the same workload written for each
//! peer: grove green threads, OS threads (`std::thread`), tokio, may, and
//! rayon where it has the feature. The criterion benches
//! (`benches/core.rs`) and the comparison program both call these.
//!
//! Every implementation is a plain function that runs the workload once,
//! returns what it measured (a `Duration` of the timed part, excluding the
//! building and dropping of runtimes, or a [`parked_memory::Parked`]
//! report), and **verifies its own result**: it panics with `WRONG RESULT`
//! on a wrong sum or count. Runtimes are built by the caller with the
//! helpers in [`util`] (except in `parked_memory`, which builds a fresh one
//! per run), so that a benchmark can reuse one across iterations.
//!
//! | module | workload | value |
//! |---|---|---|
//! | [`spawn_join`] | spawn N tasks that bump a shared counter, join all | ns per task = time / N |
//! | [`yield_now`] | one task yields N times with nothing else to run | ns per yield = time / N |
//! | [`parked_memory`] | N tasks blocked at once | RSS growth / N, KiB per task |
//! | [`skynet`] | 10-ary tree of 1,000,000 leaves, every node a task | time of the run |
//! | [`fib_fork`] | fib(27), every call with n >= 2 forks fib(n-1) | time of the run |
//!
//! Naming: the workload's name, then the implementation's, as in
//! `spawn_join/grove`, `spawn_join/std_thread`, `spawn_join/tokio`,
//! `spawn_join/may` (see `BENCHMARKS.md` in the shared folder for the
//! rules of measurement).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod fib_fork;
pub mod parked_memory;
pub mod skynet;
pub mod spawn_join;
pub mod util;
pub mod yield_now;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values() {
        assert_eq!(fib_fork::expected(27), 196_418);
        assert_eq!(fib_fork::tasks(27), 317_810);
        assert_eq!(skynet::expected(1_000_000), 499_999_500_000);
        assert_eq!(skynet::tasks(1_000_000), 1_111_110);
        assert_eq!(skynet::tasks(10), 10);
    }

    #[test]
    #[should_panic(expected = "WRONG RESULT")]
    fn check_panics_on_a_wrong_result() {
        util::check("demo", 1, 2);
    }
}
