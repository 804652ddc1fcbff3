//! grove's benchmark workloads, with the same workload written for each
//! peer: grove green threads, OS threads (`std::thread`), tokio, may, and
//! rayon where it has the feature. The criterion benches beside them
//! (`benches/benches/*.rs`: `cargo bench -p grove-workloads`) and the
//! comparison program (`showdown/`, package `grove-benches`) both call
//! these, at the sizes of the one table, [`sizes::Sizes`]. Go's twin of
//! each workload is `benches/go` (`BENCHMARKS.md` at the repository's
//! root describes them all, and how they are measured).
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
//! | [`spawn_join`] | spawn N tasks that bump a shared counter, wait for all (grove: one scope, and a handle per task) | ns per task = time / N |
//! | [`yield_now`] | one task yields N times with nothing else to run | ns per yield = time / N |
//! | [`parked_memory`] | N tasks blocked at once | RSS growth / N, KiB per task |
//! | [`skynet`] | 10-ary tree of 1,000,000 leaves, every node a task | time of the run |
//! | [`fib_fork`] | fib(27), every call with n >= 2 forks fib(n-1) | time of the run |
//! | [`pingpong0`] | two tasks bounce a counter over two unbuffered channels | ns per round trip = time / rounds |
//! | [`prodcons`] | producers and consumers over one channel (cap 0, cap 128, 4P/4C) | ns per message = time / messages |
//! | [`mutex`] | 8 tasks increment one counter under one mutex | ns per increment = time / increments |
//! | [`mutex_uncontended`] | one task locks and unlocks one mutex N times | ns per lock + unlock = time / N |
//! | [`rwlock_read`] | 8 tasks share a reader-writer lock, one operation in 100 a write | ns per operation = time / operations |
//! | [`waitgroup_fanout`] | spawn N tasks that bump a counter and call `done` on one wait group; wait on it | ns per task = time / N |
//! | [`file_read`] | 64 tasks each open `/dev/zero` and read 4 KiB from it N/64 times (grove: every read through `grove::blocking`) | ns per read = time / N |
//! | [`select2`] | one task selects over two channels fed by two producers | ns per message = time / messages |
//! | [`echo`] | a TCP echo server per implementation, a task per connection, driven by one load generator (`echo`), or holding idle connections (`idle_conns`) | requests/s and p50/p99 round trip; KiB of server memory per idle connection |
//! | [`responsive`] | grove only: readiness for the green threads of one worker while a CPU-bound green thread holds the other | round trip p50/p99/max, stalls |
//!
//! [`pingpong0`], [`prodcons`] and [`select2`] also come as *spawned*
//! programs (the main green thread spawns every communicating task, then
//! joins them), placed as the runtime likes ("natural") or deliberately
//! split across workers with `grove::thread::Builder::on_worker`
//! ([`chans::Placement`]).
//!
//! The channel workloads are written once over [`chans`] (channel ends
//! and task spawners for grove, may, crossbeam-channel, `std::sync::mpsc`
//! and OS threads); tokio, being async, has its own version of each.
//!
//! Naming: the workload's name, then the implementation's, as in
//! `spawn_join/grove`, `spawn_join/std_thread`, `spawn_join/tokio`,
//! `spawn_join/may` (see `BENCHMARKS.md` for the rules of measurement).

#![warn(missing_docs)]

pub mod chans;
pub mod echo;
pub mod fib_fork;
pub mod file_read;
pub mod mutex;
pub mod mutex_uncontended;
pub mod parked_memory;
pub mod pingpong0;
pub mod prodcons;
pub mod responsive;
pub mod rwlock_read;
pub mod select2;
pub mod sizes;
pub mod skynet;
pub mod spawn_join;
pub mod util;
pub mod waitgroup_fanout;
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

    /// Every channel workload, small, once per implementation: each
    /// verifies its own result.
    #[test]
    fn channel_workloads_verify() {
        let rt = util::grove_runtime(2);
        let tokio = util::tokio_multi_thread(2);
        util::may_init(2);
        pingpong0::grove(&rt, 1000);
        pingpong0::tokio(&tokio, 1000);
        pingpong0::may(1000);
        pingpong0::crossbeam(200);
        pingpong0::std_mpsc(200);
        for shape in [prodcons::CAP0, prodcons::CAP128, prodcons::FOUR_BY_FOUR] {
            prodcons::grove(&rt, shape, 2000);
            prodcons::tokio(&tokio, shape, 2000);
            prodcons::may(shape, 2000);
            prodcons::crossbeam(shape, 2000);
            prodcons::std_mpsc(shape, 2000);
        }
        select2::grove(&rt, 2000);
        select2::tokio(&tokio, 2000);
        select2::crossbeam(2000);
    }

    /// The spawned programs, natural and split, verify their results, and
    /// split really puts the two sides on different workers.
    #[test]
    fn spawned_programs_verify() {
        use chans::{Placement, Spawner};
        let rt = util::grove_runtime(2);
        for placement in [Placement::Natural, Placement::Split] {
            pingpong0::grove_spawned(&rt, 1000, placement);
            for shape in [prodcons::CAP0, prodcons::CAP128, prodcons::FOUR_BY_FOUR] {
                prodcons::grove_spawned(&rt, shape, 2000, placement);
            }
            select2::grove_spawned(&rt, 2000, placement);
        }
        let workers = rt.block_on(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let joins: Vec<_> = (0..2)
                .map(|i| {
                    let tx = tx.clone();
                    chans::GroveOn(i).spawn(
                        "placement",
                        Box::new(move || tx.send(grove::thread::current_worker()).unwrap()),
                    )
                })
                .collect();
            joins.into_iter().for_each(|join| join());
            drop(tx);
            let mut got: Vec<_> = rx.iter().collect();
            got.sort();
            got
        });
        assert_eq!(workers, vec![Some(0), Some(1)]);
    }

    #[test]
    fn mutex_and_fan_in_workloads_verify() {
        let rt = util::grove_runtime(2);
        let tokio = util::tokio_multi_thread(2);
        util::may_init(2);
        mutex::grove(&rt, 8000);
        mutex::tokio(&tokio, 8000);
        mutex::may(8000);
        mutex::std_thread(8000);
        skynet::grove(&rt, 1000);
        fib_fork::grove(&rt, 12);
    }

    /// The sync-primitive workloads, small, once per implementation.
    #[test]
    fn sync_workloads_verify() {
        let rt = util::grove_runtime(2);
        let tokio = util::tokio_multi_thread(2);
        util::may_init(2);
        mutex_uncontended::grove(&rt, 10_000);
        mutex_uncontended::tokio(&tokio, 10_000);
        mutex_uncontended::may(10_000);
        mutex_uncontended::std_thread(10_000);
        assert_eq!(rwlock_read::operations(4_000_000), 4_000_000);
        assert_eq!(rwlock_read::writes(4_000_000), 40_000);
        assert_eq!(rwlock_read::operations(10), 800);
        rwlock_read::grove(&rt, 8000);
        rwlock_read::tokio(&tokio, 8000);
        rwlock_read::may(8000);
        rwlock_read::std_thread(8000);
        waitgroup_fanout::grove(&rt, 1000);
        waitgroup_fanout::tokio(&tokio, 1000);
        waitgroup_fanout::may(1000);
        waitgroup_fanout::std_thread(50);
    }

    /// file_read, small, once per implementation.
    #[test]
    fn file_read_verifies() {
        let rt = util::grove_runtime(2);
        let tokio = util::tokio_multi_thread(2);
        util::may_init(2);
        let n = 10 * file_read::TASKS;
        file_read::grove(&rt, n);
        file_read::tokio(&tokio, n);
        file_read::may(n);
        file_read::std_thread(n);
    }

    #[test]
    #[should_panic(expected = "WRONG RESULT")]
    fn check_panics_on_a_wrong_result() {
        util::check("demo", 1, 2);
    }
}
