//! Command-line options of the comparison program (clap).

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::sections::{self, Runs, CAPACITY};

/// grove green threads against kernel threads (std::thread), tokio, may,
/// crossbeam-channel and Go, on this machine, in one run.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "grove-benches",
    override_usage = "cargo run --release -p grove-benches [-- OPTIONS]",
    after_help = "Implementations run interleaved: each repetition runs every one once, in \
order, the order reversed every other repetition. The table shows medians with min-max and each \
one's ratio to grove (lower is better everywhere); a row whose slowest repetition took more than \
twice its fastest is flagged placement-sensitive. Every run verifies its result; a wrong one shows \
as WRONG instead of a time. GROVE_GO_TWIN=/path/to/grovebench uses Go's twins built elsewhere (a \
machine without Go): `go build -o grovebench .` in benches/go. BENCHMARKS.md describes every \
workload, the method and the targets."
)]
pub struct Options {
    /// Scaled-down sizes, 3 repetitions, about 75 seconds (the default)
    #[arg(long, overrides_with = "full")]
    quick: bool,
    /// The full sizes of BENCHMARKS.md, 5 repetitions, plus the "how many
    /// concurrent tasks fit" section and its memory chart
    #[arg(long, overrides_with = "quick")]
    pub full: bool,
    /// Run only these workloads; a family
    /// prefix works too (prodcons = its three shapes, co-located and split)
    #[arg(long, value_name = "W[,W...]", value_delimiter = ',', value_parser = known_workload)]
    pub only: Vec<String>,
    /// The natural programs only (prodcons and select2 spawned by the main
    /// green thread, no placement), 12 repetitions unless --reps says
    /// otherwise, every repetition's figure printed
    #[arg(long)]
    pub natural: bool,
    /// Timed repetitions of every implementation [default: 3, --full 5,
    /// --natural 12; the I/O workloads 3]
    #[arg(long, value_name = "K", value_parser = at_least_one)]
    reps: Option<usize>,
    /// Workers of every runtime (grove, tokio, may; Go's GOMAXPROCS)
    /// [default: one per core]
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    workers: Option<usize>,
    /// Also write every repetition of every implementation to FILE (JSON)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the charts even with --only (they are written by default)
    #[arg(long, overrides_with = "no_charts")]
    charts: bool,
    /// Write no charts
    #[arg(long, overrides_with = "charts")]
    no_charts: bool,
    /// Leave Go out even when `go` is on the PATH
    #[arg(long)]
    pub no_go: bool,
    /// Instead of the table: speed-up of grove, Go and tokio from the first
    /// worker count to each of the others (e.g. 1,2,4,8,16) on skynet and
    /// fib_fork (or the --only list)
    #[arg(long, value_name = "N,N[,N...]", value_delimiter = ',', value_parser = at_least_one)]
    pub scaling: Vec<usize>,
    /// Print the command that runs Go's twins at this mode's sizes (from
    /// benches/go), and exit
    #[arg(long)]
    pub go_command: bool,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("wants a whole number above 0, got {s:?}")),
    }
}

/// Whether `name` is a workload's name or a family prefix of one.
fn in_family(name: &str, key: &str) -> bool {
    key == name
        || key
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('_'))
}

fn known_workload(s: &str) -> Result<String, String> {
    let name = s.trim();
    if sections::names().any(|key| in_family(name, key)) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "unknown workload {name:?}; known: {}",
            sections::names().collect::<Vec<_>>().join(", ")
        ))
    }
}

impl Options {
    /// Parses the program's arguments (`--help` and errors exit, as clap
    /// does: status 0 and 2).
    pub fn parse_args() -> Options {
        let names = sections::names().collect::<Vec<_>>().join(", ");
        let command = Options::command().mut_arg("only", |arg| {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            arg.help(format!("{help}. Names: {names}"))
        });
        let matches = command.get_matches();
        let opts = Options::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if opts.scaling.len() == 1 {
            Options::command()
                .error(
                    clap::error::ErrorKind::ValueValidation,
                    "--scaling wants at least two worker counts, e.g. 1,2,4,8,16",
                )
                .exit();
        }
        opts
    }

    /// Timed repetitions of a workload that sets its own (`fixed`, the
    /// I/O section's) unless `--reps` says otherwise.
    pub fn reps_of(&self, fixed: Option<usize>) -> usize {
        self.reps.or(fixed).unwrap_or_else(|| self.reps())
    }

    /// Timed repetitions of every implementation.
    pub fn reps(&self) -> usize {
        self.reps.unwrap_or(match (self.natural, self.full) {
            (true, _) => 12,
            (false, true) => 5,
            (false, false) => 3,
        })
    }

    /// Workers of every runtime under test.
    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Whether to write the charts: by default in a run of the whole table
    /// (quick or full), with `--charts` in any, never with `--no-charts`.
    pub fn charts(&self) -> bool {
        !self.no_charts && (self.charts || (self.only.is_empty() && !self.natural))
    }

    /// Whether workload `key` is selected. By default every workload of
    /// the table runs, and `capacity` only in `--full`; `--natural` runs
    /// the natural programs; `--only` runs what it names, a family prefix
    /// naming the family's table workloads (a natural program is named in
    /// full).
    pub fn selects(&self, key: &str) -> bool {
        let runs = sections::spec(key).map(|s| s.runs);
        if self.only.is_empty() {
            return match runs {
                Some(Runs::Always) => !self.natural,
                Some(Runs::Natural) => self.natural,
                Some(Runs::Full) => self.full && !self.natural,
                None => key == CAPACITY && self.full && !self.natural,
            };
        }
        (self.natural && runs == Some(Runs::Natural))
            || self
                .only
                .iter()
                .any(|o| key == o || (runs != Some(Runs::Natural) && in_family(o, key)))
    }

    /// "quick" or "full".
    pub fn mode(&self) -> &'static str {
        if self.full {
            "full"
        } else {
            "quick"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("grove-benches").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_valid() {
        Options::command().debug_assert();
    }

    #[test]
    fn scaling_counts() {
        let opts = parse(&["--scaling", "1,2,4,8,16"]).unwrap();
        assert_eq!(opts.scaling, vec![1, 2, 4, 8, 16]);
        assert!(parse(&["--scaling", "1,x"]).is_err(), "not a number");
        assert!(parse(&["--scaling", "0,4"]).is_err(), "zero workers");
    }

    #[test]
    fn defaults_by_mode() {
        let quick = parse(&[]).unwrap();
        assert_eq!(
            (quick.reps(), quick.mode(), quick.charts()),
            (3, "quick", true)
        );
        assert!(quick.selects("pingpong0_split") && !quick.selects("select2_natural"));
        assert!(!quick.selects("capacity"));
        assert!(quick.selects("echo_1000") && !quick.selects("echo_10000"));
        assert_eq!((quick.reps_of(Some(3)), quick.reps_of(None)), (3, 3));
        let full = parse(&["--full"]).unwrap();
        assert_eq!((full.reps(), full.mode()), (5, "full"));
        assert!(full.selects("capacity") && full.selects("echo_10000"));
        assert_eq!((full.reps_of(Some(3)), full.reps_of(None)), (3, 5));
        let set = parse(&["--full", "--reps", "2"]).unwrap();
        assert_eq!(set.reps_of(Some(3)), 2);
        let natural = parse(&["--natural", "--reps", "4"]).unwrap();
        assert_eq!(natural.reps(), 4);
        assert!(natural.selects("select2_natural") && !natural.selects("select2"));
        assert_eq!(parse(&["--natural"]).unwrap().reps(), 12);
    }

    #[test]
    fn only_families_and_names() {
        let opts = parse(&["--only", "prodcons,select2_natural"]).unwrap();
        assert!(opts.selects("prodcons_cap0") && opts.selects("prodcons_4p4c_split"));
        assert!(
            !opts.selects("prodcons_cap0_natural"),
            "natural ones by full name"
        );
        assert!(opts.selects("select2_natural") && !opts.selects("select2"));
        assert!(!opts.charts());
        assert!(parse(&["--only", "nonsense"]).is_err());
        assert!(parse(&["--only", "capacity"]).unwrap().selects("capacity"));
    }
}
