//! The one table of workload sizes: the comparison program's quick and
//! full modes, the criterion benches (the full sizes, or a tenth of them
//! per iteration where criterion repeats iterations), and Go's twin (which
//! takes every size on its command line) all read it here.
//! `BENCHMARKS.md` prints it; a test checks that the two agree.
//!
//! OS threads run smaller sizes where the full one would take minutes or
//! is impossible (a thread per skynet node); their rows compare per task.

/// Defines [`Sizes`], its two modes and [`Sizes::TABLE`] from one list.
macro_rules! sizes {
    ($($(#[doc = $doc:literal])+ $field:ident: $quick:expr, $full:expr;)+) => {
        /// The sizes of one mode: each field the size of one workload (or
        /// of one kind of implementation of it).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Sizes {
            $($(#[doc = $doc])+ pub $field: usize,)+
        }

        impl Sizes {
            /// Scaled down to about a minute on a 2-core machine (the
            /// comparison program's default).
            pub const QUICK: Sizes = Sizes { $($field: $quick,)+ };

            /// The sizes the targets are defined at (`--full`, and the
            /// criterion benches).
            pub const FULL: Sizes = Sizes { $($field: $full,)+ };

            /// Every row: field name, quick size, full size, what it sizes.
            pub const TABLE: &'static [Row] = &[
                $(Row {
                    name: stringify!($field),
                    quick: $quick,
                    full: $full,
                    what: concat!($($doc),+),
                },)+
            ];
        }
    };
}

/// One row of [`Sizes::TABLE`].
#[derive(Clone, Copy, Debug)]
pub struct Row {
    /// The field's name.
    pub name: &'static str,
    /// Its size in quick mode.
    pub quick: usize,
    /// Its size in full mode.
    pub full: usize,
    /// What it sizes (the field's doc).
    pub what: &'static str,
}

sizes! {
    /// spawn_join tasks (green threads, tokio, may, Go).
    spawn: 20_000, 100_000;
    /// spawn_join OS threads.
    spawn_std: 1_000, 1_000;
    /// yield_now yields (criterion only).
    yields: 1_000_000, 1_000_000;
    /// pingpong0 round trips (green threads, tokio, may, Go).
    rounds: 100_000, 1_000_000;
    /// pingpong0 round trips between OS threads (a blocking hand-off costs 16-45 µs).
    rounds_std: 10_000, 50_000;
    /// prodcons messages (and OS threads over a buffered channel).
    messages: 200_000, 1_000_000;
    /// prodcons messages between OS threads over an unbuffered channel.
    messages_std_cap0: 10_000, 50_000;
    /// skynet leaves (a power of ten).
    leaves: 100_000, 1_000_000;
    /// skynet leaves for OS threads (one thread per node).
    leaves_std: 1_000, 1_000;
    /// parked_memory tasks (green threads, tokio, may, Go).
    parked: 20_000, 100_000;
    /// parked_memory OS threads.
    parked_std: 2_000, 2_000;
    /// mutex increments, all 8 tasks together.
    increments: 1_000_000, 8_000_000;
    /// mutex_uncontended lock + unlock pairs.
    uncontended: 2_000_000, 10_000_000;
    /// rwlock_read operations, all 8 tasks together (a multiple of 800).
    rw_ops: 400_000, 4_000_000;
    /// waitgroup_fanout tasks (green threads, tokio, may, Go).
    fanout: 20_000, 100_000;
    /// waitgroup_fanout OS threads.
    fanout_std: 1_000, 1_000;
    /// file_read reads of 4 KiB from /dev/zero, all 64 tasks together (a multiple of 64).
    file_reads: 128_000, 640_000;
    /// select2 messages, both producers together.
    select: 200_000, 1_000_000;
    /// fib_fork's argument n (fib(27) forks 317,810 tasks).
    fib: 25, 27;
    /// echo: the timed window of each repetition, ms (after a warm-up of a quarter of it, at least 100 ms).
    echo_ms: 500, 5_000;
    /// idle_conns: idle connections held open at once.
    idle_conns: 10_000, 10_000;
    /// idle_conns_most: idle connections, as many as ulimit -n and the port range allow up to this (0: not run).
    idle_conns_most: 0, 100_000;
    /// responsive: pings timed, each way (grove's readiness with and without a CPU-bound green thread on the other worker).
    pings: 600, 2_000;
}

impl Sizes {
    /// The table as Markdown, as `BENCHMARKS.md` shows it.
    pub fn markdown() -> String {
        let mut out =
            String::from("| size | quick | full | what it sizes |\n|---|---:|---:|---|\n");
        for row in Sizes::TABLE {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                row.name,
                grouped(row.quick),
                grouped(row.full),
                row.what.trim()
            ));
        }
        out
    }
}

/// `1000000` as `1,000,000`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BENCHMARKS.md shows this table: it must be the same table.
    #[test]
    fn benchmarks_md_shows_this_table() {
        let doc = include_str!("../../BENCHMARKS.md");
        let table = Sizes::markdown();
        assert!(
            doc.contains(&table),
            "BENCHMARKS.md's sizes table differs from benches/src/sizes.rs; paste this:\n{table}"
        );
    }

    #[test]
    fn the_table_has_every_field() {
        assert_eq!(Sizes::TABLE.len(), 23);
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(grouped(25), "25");
        let full = Sizes::TABLE.iter().find(|r| r.name == "fib").unwrap();
        assert_eq!((full.quick, full.full), (Sizes::QUICK.fib, Sizes::FULL.fib));
        // Whole rounds of 100 operations for each of the 8 tasks.
        assert_eq!(Sizes::FULL.rw_ops % 800, 0);
        assert_eq!(Sizes::QUICK.rw_ops % 800, 0);
        // Whole shares for each of file_read's 64 tasks.
        let tasks = crate::file_read::TASKS;
        assert_eq!(Sizes::FULL.file_reads % tasks, 0);
        assert_eq!(Sizes::QUICK.file_reads % tasks, 0);
    }
}
