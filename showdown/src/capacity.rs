//! "How many concurrent tasks fit": green threads against OS threads on
//! this machine, each held blocked in growing numbers until a limit of
//! the system or the probe's own cap stops it, with the memory they take
//! at each step. Each probe runs in a child process (a system limit hit
//! there cannot take the run down, and its memory goes back at exit).
//!
//! The OS-thread probe runs with `vm.max_map_count` raised to what its cap
//! needs, when this process may raise it (and restored after): at Linux's
//! default of 65530 threads stop near 32,000, two mappings per stack. The
//! green-thread probe leaves the limit alone where grove's stacks are
//! guard regions in shared reservations (Linux ≥ 6.13,
//! `grove::runtime::stack_mode()`): there memory is its limit, and the
//! probe shows how many blocked green threads fit at the default setting.
//! Where each grove stack is its own mapping it raises the limit as the
//! thread probe does. A probe stops short of 90% of a
//! system-wide limit (`kernel.threads-max`, `ulimit -u`, the cgroup's
//! `pids.max`) so that the rest of the machine keeps working, and short
//! of its memory cap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use grove_test_support::procfs;
use grove_test_support::MapCountGuard;

use crate::machine;
use crate::plan::{human, Fail};

/// Live-task counts at which a probe measures.
const CHECKPOINTS: &[usize] = &[
    1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
];

/// Most green threads a probe holds.
pub const GREEN_CAP: usize = 1_000_000;

/// Most OS threads a probe holds.
pub const THREAD_CAP: usize = 100_000;

/// Stack size of the probe's OS threads.
const THREAD_STACK: usize = 64 * 1024;

/// One step of a probe.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Tasks held blocked.
    pub n: usize,
    /// Resident set growth of the process, bytes.
    pub rss: u64,
    /// Drop of the system's MemAvailable, bytes (kernel memory included;
    /// noisy: other processes move it too).
    pub sys: i64,
    /// Time to start them all, seconds.
    pub secs: f64,
}

/// What one probe found.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    /// Its steps.
    pub points: Vec<Point>,
    /// What stopped it.
    pub stop: String,
    /// Notes (the `vm.max_map_count` raise).
    pub notes: Vec<String>,
}

impl Probe {
    /// The last step.
    pub fn last(&self) -> Option<&Point> {
        self.points.last()
    }
}

/// Both probes, and Go's memory per goroutine where measured.
#[derive(Clone, Debug, Default)]
pub struct Capacity {
    /// grove green threads.
    pub green: Probe,
    /// OS threads with 64 KiB stacks.
    pub threads: Probe,
    /// Go: (goroutines, KiB per goroutine) from its parked_memory twin.
    pub go: Vec<(usize, f64)>,
}

impl Capacity {
    /// RSS of `n` parked green threads, GiB, if the probe reached `n`.
    pub fn green_gib_at(&self, n: usize) -> Option<f64> {
        let p = self.green.points.iter().find(|p| p.n == n)?;
        Some(p.rss as f64 / (1u64 << 30) as f64)
    }
}

// ------------------------------------------------------------ the child --

/// The baseline a probe measures growth from.
struct Base {
    rss: u64,
    avail: u64,
}

impl Base {
    fn now() -> Base {
        procfs::trim_heap();
        Base {
            rss: procfs::rss_bytes(),
            avail: machine::meminfo("MemAvailable:").unwrap_or(0),
        }
    }

    fn point(&self, n: usize, secs: f64) -> Point {
        let avail = machine::meminfo("MemAvailable:").unwrap_or(0);
        let p = Point {
            n,
            rss: procfs::rss_bytes().saturating_sub(self.rss),
            sys: self.avail as i64 - avail as i64,
            secs,
        };
        println!("POINT {} {} {} {:.4}", p.n, p.rss, p.sys, p.secs);
        p
    }

    /// Most tasks the memory cap allows, from the cost per task so far.
    fn memory_allows(&self, live: usize, mem_cap: u64) -> Option<(usize, String)> {
        if live == 0 {
            return None;
        }
        let rss = procfs::rss_bytes().saturating_sub(self.rss);
        let avail = machine::meminfo("MemAvailable:").unwrap_or(0);
        let sys = self.avail.saturating_sub(avail);
        let per = rss.max(sys).max(1) as f64 / live as f64;
        let n = (mem_cap as f64 / per) as usize;
        Some((
            n,
            format!(
                "memory: this probe's cap of {:.1} GiB (min of 8 GiB and half of MemAvailable)",
                mem_cap as f64 / (1u64 << 30) as f64
            ),
        ))
    }
}

/// Raises `vm.max_map_count` for `tasks` tasks of probe `kind` if it
/// needs and can; says what it did.
fn raise_for(kind: &str, tasks: usize) -> Option<MapCountGuard> {
    let needed = if kind == "green" {
        MapCountGuard::needed_for_stacks(tasks + 4096)
    } else {
        MapCountGuard::needed_for_thread_stacks(tasks + 4096)
    };
    if kind == "green" && grove::runtime::stack_mode() != grove::runtime::StackMode::Mappings {
        println!(
            "NOTE grove's stacks are guard regions in shared reservations (Linux >= 6.13): \
             vm.max_map_count left at {}",
            machine::max_map_count().unwrap_or(0)
        );
    }
    match MapCountGuard::raise_to(needed) {
        Ok(guard) => {
            if guard.raised() {
                println!(
                    "NOTE vm.max_map_count {} during the probe (restored after)",
                    machine::max_map_count().unwrap_or(0)
                );
            }
            Some(guard)
        }
        Err(err) => {
            println!("NOTE vm.max_map_count left as it is: {err}");
            None
        }
    }
}

/// `--child capacity KIND CAP MEM_CAP WORKERS`.
pub fn child(args: &[String]) -> i32 {
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    let (Some(kind), Some(cap), Some(mem_cap), Some(workers)) =
        (args.first(), num(1), num(2), num(3))
    else {
        eprintln!("--child capacity wants KIND CAP MEM_CAP WORKERS");
        return 2;
    };
    let guard = raise_for(kind, cap as usize);
    let stop = match kind.as_str() {
        "green" => green_child(cap as usize, mem_cap, workers as usize),
        "threads" => threads_child(cap as usize, mem_cap),
        other => {
            eprintln!("unknown capacity probe {other:?}");
            return 2;
        }
    };
    println!("STOP {stop}");
    drop(guard);
    // Exit without unwinding the held tasks: the kernel frees them faster.
    std::process::exit(0)
}

fn green_child(cap: usize, mem_cap: u64, workers: usize) -> String {
    let rt = grove_workloads::util::grove_runtime(workers);
    let (tx, rx) = grove::chan::bounded::<()>(0);
    let started = Arc::new(AtomicUsize::new(0));
    let base = Base::now();
    let stop = rt.block_on(move || {
        let (mut live, start, mut failed) = (0, Instant::now(), None);
        for &step in CHECKPOINTS.iter().filter(|&&c| c <= cap) {
            let mut limits = Vec::new();
            // Where each stack is its own mapping, vm.max_map_count limits
            // them; in guard-region mode only memory does.
            if grove::runtime::stack_mode() == grove::runtime::StackMode::Mappings {
                let budget = grove::runtime::stack_budget().saturating_sub(64);
                limits.push((
                    budget,
                    format!(
                        "vm.max_map_count = {}: room for about {} green-thread stacks \
                         (2 mappings each)",
                        machine::max_map_count().unwrap_or(0),
                        human(budget)
                    ),
                ));
            }
            limits.extend(base.memory_allows(live, mem_cap));
            let (allowed, why) = limits
                .into_iter()
                .min_by_key(|l| l.0)
                .unwrap_or((usize::MAX, String::new()));
            let target = step.min(allowed);
            while live < target {
                let (rx, started) = (rx.clone(), Arc::clone(&started));
                let spawned = grove::thread::Builder::new().spawn(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    let _ = rx.recv();
                });
                match spawned {
                    Ok(handle) => drop(handle),
                    Err(err) => failed = Some(format!("spawn failed: {err}")),
                }
                if failed.is_some() {
                    break;
                }
                live += 1;
            }
            while started.load(Ordering::Acquire) < live {
                grove::thread::yield_now();
            }
            grove::thread::sleep(Duration::from_millis(20));
            base.point(live, start.elapsed().as_secs_f64());
            if let Some(reason) = failed {
                return reason;
            }
            if target < step {
                return why;
            }
        }
        format!("the cap of this probe ({})", human(cap))
    });
    // Keep the channel open: closing it would wake every held task.
    std::mem::forget(tx);
    std::mem::forget(rt);
    stop
}

/// Tasks (threads) of the whole system now, from `/proc/loadavg`.
fn system_threads() -> usize {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let field = s.split_whitespace().nth(3)?.split('/').nth(1)?.to_string();
            field.parse().ok()
        })
        .unwrap_or(0)
}

/// The cgroup's `pids.max` and `pids.current`, where set.
fn cgroup_pids() -> Option<(usize, usize)> {
    // cgroup v2, then v1.
    ["/sys/fs/cgroup", "/sys/fs/cgroup/pids"]
        .iter()
        .find_map(|dir| {
            let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
            let max = read("pids.max")?.trim().parse().ok()?;
            let current = read("pids.current")?.trim().parse().ok()?;
            Some((max, current))
        })
}

/// How many more OS threads each system limit allows (to 90% of it).
fn thread_limits(live: usize) -> Vec<(usize, String)> {
    let room = |limit: usize, used: usize| (limit * 9 / 10).saturating_sub(used) + live;
    let mut limits = Vec::new();
    if let Some(max) = machine::threads_max() {
        let why = format!("kernel.threads-max = {max} (stopped at 90% of it)");
        limits.push((room(max as usize, system_threads()), why));
    }
    if let Some(max) = machine::pid_max() {
        let why =
            format!("kernel.pid_max = {max}: every thread takes a PID (stopped at 90% of it)");
        limits.push((room(max as usize, system_threads()), why));
    }
    if let Some(max) = machine::nproc_limit() {
        let why = format!("ulimit -u = {max} (stopped at 90% of it)");
        limits.push((room(max as usize, system_threads()), why));
    }
    if let Some((max, current)) = cgroup_pids() {
        let why = format!("the cgroup's pids.max = {max} (stopped at 90% of it)");
        limits.push((room(max, current), why));
    }
    if let Some(max) = machine::max_map_count() {
        let maps = procfs::map_count();
        let why = format!("vm.max_map_count = {max}: 2 mappings per thread stack");
        limits.push(((max as usize).saturating_sub(maps + 1024) / 2 + live, why));
    }
    limits
}

fn threads_child(cap: usize, mem_cap: u64) -> String {
    let gate = Arc::new((Mutex::new(()), Condvar::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let base = Base::now();
    let (mut live, start, mut failed) = (0, Instant::now(), None);
    for &step in CHECKPOINTS.iter().filter(|&&c| c <= cap) {
        let mut limits = thread_limits(live);
        limits.extend(base.memory_allows(live, mem_cap));
        let (allowed, why) = limits
            .into_iter()
            .min_by_key(|l| l.0)
            .unwrap_or((usize::MAX, String::new()));
        let target = step.min(allowed);
        while live < target {
            let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
            let spawned = std::thread::Builder::new()
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    let (lock, cv) = &*gate;
                    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                    started.fetch_add(1, Ordering::Release);
                    // Held until the process exits.
                    drop(cv.wait_while(guard, |_| true));
                });
            if let Err(err) = spawned {
                failed = Some(thread_failure(&err));
                break;
            }
            live += 1;
        }
        while started.load(Ordering::Acquire) < live {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(20));
        base.point(live, start.elapsed().as_secs_f64());
        if let Some(reason) = failed {
            return reason;
        }
        if target < step {
            return why;
        }
    }
    format!("the cap of this probe ({})", human(cap))
}

/// Names the limit behind a failed thread spawn.
fn thread_failure(err: &std::io::Error) -> String {
    let near = |used: usize, max: usize| used + 64 >= max;
    let maps = procfs::map_count();
    if machine::max_map_count().is_some_and(|m| near(maps, m as usize)) {
        return format!("vm.max_map_count (spawn failed: {err})");
    }
    if machine::pid_max().is_some_and(|m| near(system_threads(), m as usize)) {
        return format!("kernel.pid_max (spawn failed: {err})");
    }
    if machine::threads_max().is_some_and(|m| near(system_threads(), m as usize)) {
        return format!("kernel.threads-max (spawn failed: {err})");
    }
    if let Some((max, current)) = cgroup_pids().filter(|&(m, c)| near(c, m)) {
        return format!("the cgroup's pids.max = {max}, {current} in use (spawn failed: {err})");
    }
    format!("spawn failed: {err} (ulimit -u, memory or another kernel limit)")
}

// ----------------------------------------------------------- the parent --

/// Runs one probe in a child process.
fn probe(kind: &str, cap: usize, mem_cap: u64, workers: usize) -> Probe {
    let args: Vec<String> = vec![
        "capacity".into(),
        kind.into(),
        cap.to_string(),
        mem_cap.to_string(),
        workers.to_string(),
    ];
    let mut probe = Probe::default();
    let out = match crate::child::run_child(&args, Duration::from_secs(300)) {
        Ok(out) => out,
        Err(fail) => {
            probe.stop = format!("the probe failed: {}", Fail::message(&fail));
            return probe;
        }
    };
    for line in out.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "POINT" => probe.points.extend(parse_point(rest)),
            "STOP" => probe.stop = rest.to_string(),
            "NOTE" => probe.notes.push(format!("{kind} probe: {rest}")),
            _ => {}
        }
    }
    probe
}

fn parse_point(s: &str) -> Option<Point> {
    let f: Vec<&str> = s.split_whitespace().collect();
    Some(Point {
        n: f.first()?.parse().ok()?,
        rss: f.get(1)?.parse().ok()?,
        sys: f.get(2)?.parse().ok()?,
        secs: f.get(3)?.parse().ok()?,
    })
}

/// The memory cap of a probe: 8 GiB, or half of what is available if less.
fn memory_cap() -> u64 {
    let avail = machine::meminfo("MemAvailable:").unwrap_or(4 << 30);
    (8u64 << 30).min(avail / 2)
}

/// Runs both probes, then Go's memory per goroutine at the same sizes
/// when `go` is given (for the chart).
pub fn run(workers: usize, go: Option<&crate::go::GoTwin>, show: &dyn Fn(&str)) -> Capacity {
    let mem_cap = memory_cap();
    show("capacity: green threads");
    let green = probe("green", GREEN_CAP, mem_cap, workers);
    show("capacity: OS threads");
    let threads = probe("threads", THREAD_CAP, mem_cap, workers);
    let mut go_points = Vec::new();
    if let Some(go) = go {
        for n in [1_000, 10_000, 100_000, 1_000_000] {
            show(&format!("capacity: Go, {} goroutines", human(n)));
            if let Ok(kib) = go.run("parked_memory", n, 0, workers) {
                go_points.push((n, kib));
            }
        }
    }
    Capacity {
        green,
        threads,
        go: go_points,
    }
}

fn kib(bytes: f64) -> String {
    crate::report::fmt_num(bytes / 1024.0)
}

/// One line of the summary for a probe.
fn summary(name: &str, p: &Probe) -> String {
    let Some(last) = p.last() else {
        return format!("  {name:<24} {:>10}  {}", "-", p.stop);
    };
    let n = last.n as f64;
    format!(
        "  {name:<24} {:>10} {:>9} {:>11} {:>9.1} s  {}",
        crate::report::fmt_num(n),
        kib(last.rss as f64 / n),
        kib(last.sys.max(0) as f64 / n),
        last.secs,
        p.stop
    )
}

/// The section printed on the terminal.
pub fn render(c: &Capacity) -> String {
    let mut out = vec![
        "How many concurrent tasks fit: blocked tasks held at once on this machine".to_string(),
        format!(
            "  {:<24} {:>10} {:>9} {:>11} {:>11}  {}",
            "kind", "held", "RSS KiB", "system KiB", "to start", "stopped by"
        ),
        summary("grove green threads", &c.green),
        summary("OS threads, 64 KiB stack", &c.threads),
        "  (per task; system KiB = drop of MemAvailable per task, kernel stacks and page tables \
         included, noisy while other processes run)"
            .to_string(),
    ];
    let mut notes: Vec<&String> = c.green.notes.iter().chain(&c.threads.notes).collect();
    notes.dedup();
    out.extend(notes.into_iter().map(|n| format!("  * {n}")));
    for (name, p) in [("green", &c.green), ("OS threads", &c.threads)] {
        let steps: Vec<String> = p
            .points
            .iter()
            .map(|pt| format!("{} {}", human(pt.n), kib(pt.rss as f64 / pt.n as f64)))
            .collect();
        out.push(format!("  {name} KiB/task by count: {}", steps.join(", ")));
    }
    if !c.go.is_empty() {
        let steps: Vec<String> =
            c.go.iter()
                .map(|(n, k)| format!("{} {}", human(*n), crate::report::fmt_num(*k)))
                .collect();
        out.push(format!("  Go KiB/goroutine by count: {}", steps.join(", ")));
    }
    out.join("\n")
}
