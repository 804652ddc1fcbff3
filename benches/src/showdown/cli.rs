//! Command-line options of the comparison program.

use std::path::PathBuf;

/// Workload names accepted by `--only` (a prefix before `_` selects a
/// family: `prodcons` is all three prodcons shapes).
pub const WORKLOADS: &[&str] = &[
    "spawn_join",
    "pingpong0",
    "pingpong0_1w",
    "prodcons_cap0",
    "prodcons_cap128",
    "prodcons_4p4c",
    "skynet",
    "parked_memory",
    "mutex",
    "mutex_uncontended",
    "rwlock_read",
    "waitgroup_fanout",
    "select2",
    "fib_fork",
    "capacity",
];

/// What to run and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// BENCHMARKS.md sizes (`--full`) instead of the scaled-down quick run.
    pub full: bool,
    /// Timed repetitions of every implementation.
    pub reps: usize,
    /// Workers of every runtime under test (grove, tokio, may, Go's P).
    pub workers: usize,
    /// `--only`: the workloads to run; empty means all of the mode.
    pub only: Vec<String>,
    /// `--json FILE`: every repetition of every implementation.
    pub json: Option<PathBuf>,
    /// Write the SVG charts (default in `--full`).
    pub charts: bool,
    /// Leave Go out even when it is installed.
    pub no_go: bool,
    /// `--scaling N,N...`: the worker counts of a scaling run; empty: none.
    pub scaling: Vec<usize>,
}

impl Options {
    /// Whether workload `key` is selected. `capacity` runs only in
    /// `--full` or when named; the others run unless `--only` leaves them
    /// out.
    pub fn selects(&self, key: &str) -> bool {
        if self.only.is_empty() {
            return key != "capacity" || self.full;
        }
        self.only.iter().any(|o| {
            key == o
                || key
                    .strip_prefix(o.as_str())
                    .is_some_and(|r| r.starts_with('_'))
        })
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

/// The help text.
pub fn help() -> String {
    format!(
        "grove-benches: grove green threads against kernel threads (std::thread), tokio, may, \
         crossbeam-channel and Go, on this machine, in one run.

USAGE:
    cargo run --release -p grove-benches [-- OPTIONS]

OPTIONS:
    --quick            scaled-down sizes, 3 repetitions, about a minute (the default)
    --full             the sizes of BENCHMARKS.md, 5 repetitions, plus the
                       \"how many concurrent tasks fit\" section and the charts
    --only W[,W...]    run only these workloads; a family prefix works too
                       (prodcons = all three shapes). Names:
                       {}
    --reps K           timed repetitions of every implementation
    --workers N        workers of every runtime (grove, tokio, may; Go's GOMAXPROCS);
                       default: one per core
    --json FILE        also write every repetition of every implementation to FILE
    --charts           write the SVG charts (target/showdown/) in quick mode too
    --no-go            leave Go out even when `go` is on the PATH
    --scaling N[,N...] instead of the table: speed-up of grove, Go and tokio from
                       the first worker count to each of the others (e.g.
                       1,2,4,8,16) on skynet and fib_fork (or the --only list)
    -h, --help         this text

Implementations run interleaved: each repetition runs every one once, in
order, the order reversed every other repetition. The table shows medians
with min-max and each one's ratio to grove (lower is better everywhere).
Every run verifies its result; a wrong one shows as WRONG instead of a time.
GROVE_GO_TWIN=/path/to/grovebench uses Go's twins built elsewhere (a machine
without Go): `go build -o grovebench .` in benches/go.",
        WORKLOADS.join(", ")
    )
}

/// Parses the arguments after the program name. `Err` carries a message
/// for the user; `Ok(None)` means `--help` was printed.
pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut opts = Options {
        full: false,
        reps: 0,
        workers: cores,
        only: Vec::new(),
        json: None,
        charts: false,
        no_go: false,
        scaling: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{}", help());
                return Ok(None);
            }
            "--quick" => opts.full = false,
            "--full" => opts.full = true,
            "--charts" => opts.charts = true,
            "--no-go" => opts.no_go = true,
            "--only" => opts.only = parse_only(&value("--only")?)?,
            "--json" => opts.json = Some(PathBuf::from(value("--json")?)),
            "--reps" => opts.reps = parse_count("--reps", &value("--reps")?)?,
            "--workers" => opts.workers = parse_count("--workers", &value("--workers")?)?,
            "--scaling" => opts.scaling = parse_counts(&value("--scaling")?)?,
            other => return Err(format!("unknown option {other:?} (see --help)")),
        }
    }
    if opts.reps == 0 {
        opts.reps = if opts.full { 5 } else { 3 };
    }
    opts.charts |= opts.full && opts.only.is_empty();
    Ok(Some(opts))
}

fn parse_count(name: &str, s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} wants a whole number above 0, got {s:?}")),
    }
}

fn parse_counts(list: &str) -> Result<Vec<usize>, String> {
    let counts = list
        .split(',')
        .map(|s| parse_count("--scaling", s))
        .collect::<Result<Vec<_>, _>>()?;
    if counts.len() < 2 {
        return Err(format!(
            "--scaling wants at least two worker counts, e.g. 1,2,4,8,16; got {list:?}"
        ));
    }
    Ok(counts)
}

fn parse_only(list: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for name in &names {
        let known = WORKLOADS.iter().any(|w| {
            w == name
                || w.strip_prefix(name.as_str())
                    .is_some_and(|r| r.starts_with('_'))
        });
        if !known {
            return Err(format!(
                "unknown workload {name:?}; known: {}",
                WORKLOADS.join(", ")
            ));
        }
    }
    if names.is_empty() {
        return Err("--only needs at least one workload name".into());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scaling_counts() {
        let opts = parse(&args(&["--scaling", "1,2,4,8,16"])).unwrap().unwrap();
        assert_eq!(opts.scaling, vec![1, 2, 4, 8, 16]);
        assert!(parse(&args(&["--scaling", "16"])).is_err(), "one count");
        assert!(parse(&args(&["--scaling", "1,x"])).is_err(), "not a number");
        assert!(parse(&args(&["--scaling", "0,4"])).is_err(), "zero workers");
    }
}
