//! `cargo run --release -p grove-benches`: grove's green threads against
//! kernel threads (`std::thread`) and the peers (tokio, may,
//! crossbeam-channel, `std::sync::mpsc`, and Go's twins when `go` is on
//! the PATH), every workload of BENCHMARKS.md, in one run on this machine:
//! implementations interleaved, repeated, reported as medians with min-max
//! and the ratio to grove, and drawn as charts. `--help` lists the options.
//!
//! The workloads themselves, and the one table of their sizes, are the
//! `grove-workloads` library (`benches/`); this program runs them, one
//! module per section of the table (`sections`), and reports.

mod capacity;
mod charts;
mod child;
mod cli;
mod go;
mod json;
mod machine;
mod plan;
mod report;
mod run;
mod scaling;
mod sections;
mod servers;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use grove_workloads::sizes::Sizes;
use grove_workloads::util;

use crate::capacity::Capacity;
use crate::cli::Options;
use crate::go::{GoStatus, GoTwin};
use crate::machine::Machine;
use crate::plan::Workload;
use crate::run::Progress;
use crate::sections::{Ctx, CAPACITY, WORKLOADS};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        std::process::exit(child::main(&args[1..]));
    }
    let opts = Options::parse_args();
    if opts.go_command {
        println!("{}", go_command(&opts));
        return;
    }
    std::process::exit(run_all(&opts));
}

/// The command that runs every selected workload's Go twin at this mode's
/// sizes, as the table does (one repetition per process there; and
/// pingpong0_1w is pingpong0 with `-procs 1`).
fn go_command(opts: &Options) -> String {
    let ctx = Ctx {
        sizes: sizes(opts),
        workers: opts.workers(),
        go: Some(Rc::new(GoTwin::unbuilt())),
        child_limit: run_limit(opts),
    };
    let mut jobs: Vec<String> = Vec::new();
    for spec in WORKLOADS.iter().filter(|s| opts.selects(s.key)) {
        for job in go::twin_jobs(&(spec.build)(&ctx)) {
            if !jobs.contains(&job) {
                jobs.push(job);
            }
        }
    }
    format!(
        "cd benches/go && go run . -reps {} -procs {} {}",
        opts.reps(),
        opts.workers(),
        jobs.join(" ")
    )
}

fn sizes(opts: &Options) -> Sizes {
    if opts.full {
        Sizes::FULL
    } else {
        Sizes::QUICK
    }
}

/// `target/` of this build: the program lives in `target/<profile>/`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The longest one run may take before the watchdog gives up.
fn run_limit(opts: &Options) -> Duration {
    Duration::from_secs(if opts.full { 300 } else { 90 })
}

fn header(opts: &Options, machine: &Machine, go: &GoStatus, sizes: &Sizes) -> String {
    let scaled = if opts.full {
        "full mode: the sizes of BENCHMARKS.md".to_string()
    } else {
        format!(
            "quick mode: scaled down (skynet {}k leaves, fib({}), {}k messages, {}k parked \
             tasks to fit the default vm.max_map_count; --full for BENCHMARKS.md sizes)",
            sizes.leaves / 1000,
            sizes.fib,
            sizes.messages / 1000,
            sizes.parked / 1000
        )
    };
    let go_line = match go {
        GoStatus::Ready(g) => format!(
            "peers:   Go {} (benches/go twins), tokio, may, crossbeam-channel, std",
            g.version
        ),
        GoStatus::Absent(why) => format!("peers:   tokio, may, crossbeam-channel, std\n{why}"),
    };
    let mut lines = vec![
        "grove green threads vs kernel threads (std::thread) and peers".to_string(),
        if opts.scaling.is_empty() {
            format!(
                "{scaled}; {} repetitions, interleaved; {} workers per runtime",
                opts.reps(),
                opts.workers()
            )
        } else {
            format!(
                "{scaled}; {} repetitions, interleaved; scaling run over {:?} workers",
                opts.reps(),
                opts.scaling
            )
        },
    ];
    lines.extend(machine.describe());
    lines.push(go_line);
    lines.push("method:  BENCHMARKS.md (workloads, sizes, how they are measured, targets)".into());
    lines.join("\n")
}

/// Builds workload `key` (creating its runtimes).
fn build(key: &str, ctx: &Ctx) -> Option<Workload> {
    sections::spec(key).map(|spec| (spec.build)(ctx))
}

/// Whether grove itself failed or answered wrong in `w`.
fn grove_failed(w: &Workload) -> bool {
    w.entries
        .first()
        .is_some_and(|e| e.name == "grove" && !e.fails.is_empty())
}

/// Runs the capacity probes (with Go's memory figures when charts are
/// wanted) and prints their section.
fn capacity_section(opts: &Options, go: Option<&Rc<GoTwin>>, progress: &mut Progress) -> Capacity {
    progress.next_workload(CAPACITY);
    let go = go.filter(|_| opts.charts()).map(|g| &**g);
    let c = capacity::run(opts.workers(), go, &|s| progress.show(s));
    progress.clear();
    println!("{}\n", capacity::render(&c));
    c
}

/// Runs the spawn sweep and writes the charts; prints where they are.
fn charts_section(ctx: &Ctx, done: &[Workload], cap: Option<&Capacity>, progress: &mut Progress) {
    progress.next_workload("charts");
    let sweep = charts::spawn_sweep(ctx, progress);
    progress.clear();
    let (files, skipped) = charts::write(&target_dir().join("showdown"), done, cap, &sweep);
    println!("Charts (SVG):");
    for f in files {
        println!("  {}", f.display());
    }
    for s in skipped {
        println!("  not written: {s}");
    }
    println!();
}

fn write_json(path: &Path, r: &json::Run) {
    match std::fs::write(path, json::render(r)) {
        Ok(()) => println!("Raw figures (every repetition): {}", path.display()),
        Err(e) => eprintln!("grove-benches: cannot write {}: {e}", path.display()),
    }
}

/// `--scaling`: every selected workload (skynet and fib_fork by default)
/// at each worker count, then the speed-up table.
fn scaling_run(opts: &Options, ctx: Ctx, cores: usize) -> i32 {
    let keys: Vec<&str> = if opts.only.is_empty() {
        scaling::DEFAULT.to_vec()
    } else {
        WORKLOADS
            .iter()
            .map(|s| s.key)
            .filter(|k| opts.selects(k))
            .collect()
    };
    let mut progress = Progress::new(keys.len() * opts.scaling.len());
    let (mut points, mut failed) = (Vec::new(), false);
    for &workers in &opts.scaling {
        std::env::set_var("GROVE_BENCH_WORKERS", workers.to_string());
        let ctx = Ctx {
            workers,
            ..ctx.clone()
        };
        for &key in &keys {
            progress.next_workload(&format!("{key} on {workers} workers"));
            let Some(mut w) = build(key, &ctx) else {
                continue;
            };
            scaling::keep_scaled(&mut w);
            run::run_workload(&mut w, opts.reps(), &progress);
            progress.clear();
            failed |= grove_failed(&w);
            points.push(scaling::Point {
                workers,
                workload: w,
            });
        }
    }
    println!(
        "{}
",
        scaling::render(&opts.scaling, &keys, &points, cores)
    );
    for p in &points {
        for e in p.workload.entries.iter().filter(|e| !e.fails.is_empty()) {
            println!(
                "  {} on {} workers, {}: {}",
                p.workload.key,
                p.workers,
                e.name,
                e.fails[0].message()
            );
        }
    }
    println!("Total time: {:.0} s", progress.elapsed().as_secs_f64());
    i32::from(failed)
}

fn run_all(opts: &Options) -> i32 {
    run::install_panic_hook();
    run::start_watchdog(run_limit(opts), || {});
    std::env::set_var("GROVE_BENCH_WORKERS", opts.workers().to_string());
    util::may_init(opts.workers());
    let machine = Machine::probe();
    let sizes = sizes(opts);
    let go_status = if opts.no_go {
        GoStatus::Absent("Go left out: --no-go".into())
    } else {
        let progress = Progress::new(0);
        progress.show("building Go's twins (benches/go) with `go build`");
        let s = go::prepare(&target_dir().join("showdown/go"), run_limit(opts));
        progress.clear();
        s
    };
    println!("{}\n", header(opts, &machine, &go_status, &sizes));
    let (go, go_version) = match go_status {
        GoStatus::Ready(twin) => {
            let v = twin.version.clone();
            (Some(Rc::new(twin)), Some(v))
        }
        GoStatus::Absent(_) => (None, None),
    };
    let ctx = Ctx {
        sizes,
        workers: opts.workers(),
        go: go.clone(),
        child_limit: run_limit(opts),
    };
    if !opts.scaling.is_empty() {
        return scaling_run(opts, ctx, machine.cores);
    }
    let keys: Vec<&str> = WORKLOADS
        .iter()
        .map(|s| s.key)
        .filter(|k| opts.selects(k))
        .collect();
    let want_capacity = opts.selects(CAPACITY) || (opts.charts() && opts.full);
    let mut progress =
        Progress::new(keys.len() + usize::from(want_capacity) + usize::from(opts.charts()));
    let (mut done, mut failed) = (Vec::new(), false);
    for key in keys {
        progress.next_workload(key);
        progress.show(&format!("{key}: starting"));
        let Some(spec) = sections::spec(key) else {
            continue;
        };
        let mut w = (spec.build)(&ctx);
        let reps = opts.reps_of(spec.reps);
        run::run_workload(&mut w, reps, &progress);
        progress.clear();
        println!("{}\n", report::block(&w, reps));
        failed |= grove_failed(&w);
        done.push(w);
    }
    let cap = want_capacity.then(|| capacity_section(opts, go.as_ref(), &mut progress));
    println!(
        "{}\n",
        report::targets(&done, cap.as_ref(), opts.full, machine.cores)
    );
    if opts.charts() {
        charts_section(&ctx, &done, cap.as_ref(), &mut progress);
    }
    if let Some(path) = &opts.json {
        write_json(
            path,
            &json::Run {
                mode: opts.mode(),
                reps: opts.reps(),
                workers: opts.workers(),
                machine: &machine,
                go: go_version.as_deref(),
                workloads: &done,
                capacity: cap.as_ref(),
            },
        );
    }
    println!("Total time: {:.0} s", progress.elapsed().as_secs_f64());
    i32::from(failed)
}
