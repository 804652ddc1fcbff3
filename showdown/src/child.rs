//! Measurements made in a fresh child process of this program
//! (`grove-benches --child ...`): memory figures, which a process that ran
//! other workloads would skew (reused heap, pooled stacks), and probes
//! that may hit a system limit, which must not take the whole run down.
//! Also the helper that runs any child with a time limit. (The echo
//! servers, which run beside the load generator rather than to
//! completion, are `servers`.)

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use grove_workloads::parked_memory;
use grove_workloads::util;

use crate::plan::Fail;

/// Runs `cmd` to completion, capturing its output, and kills it if it runs
/// past `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ran past its limit of {} s; killed",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// A command that runs this program again with `args`.
pub fn self_command(args: &[String]) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--child").args(args);
    Ok(cmd)
}

/// Runs a child and returns its stdout; a failed child becomes a [`Fail`]
/// carrying its stderr. Lines of stderr starting `note:` (as the
/// `vm.max_map_count` guard writes them) are passed on as notes.
pub fn run_child(args: &[String], limit: Duration) -> Result<String, Fail> {
    let cmd = self_command(args).map_err(Fail::Failed)?;
    let out = output_within(cmd, limit)
        .map_err(|e| Fail::Failed(format!("child {}: {e}", args.join(" "))))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines().filter(|l| l.starts_with("note:")) {
        crate::run::note(line.trim_start_matches("note:").trim());
    }
    if !out.status.success() {
        let last: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(Fail::from_message(format!(
            "child exited with {}: {}",
            out.status,
            last.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One parked_memory measurement of `imp` with `n` tasks, in a fresh
/// process: KiB per parked task. A skip (grove without the
/// `vm.max_map_count` it needs) is a `Failed` with the reason.
pub fn parked(imp: &str, n: usize, workers: usize, limit: Duration) -> Result<f64, Fail> {
    let args: Vec<String> = vec![
        "parked".into(),
        imp.into(),
        n.to_string(),
        workers.to_string(),
    ];
    let out = run_child(&args, limit)?;
    for line in out.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("CHILD") => {
                if let Some(Ok(kib)) = f.next().map(str::parse::<f64>) {
                    return Ok(kib);
                }
            }
            Some("SKIP") => return Err(Fail::Failed(f.collect::<Vec<_>>().join(" "))),
            _ => {}
        }
    }
    Err(Fail::Failed(format!("parked {imp}: no result in {out:?}")))
}

/// The child side: `--child parked IMPL N WORKERS` or `--child capacity
/// ...`. Returns the exit status.
pub fn main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("parked") => parked_child(&args[1..]),
        Some("capacity") => crate::capacity::child(&args[1..]),
        Some("echo-server") => crate::servers::child(&args[1..]),
        Some("responsive") => responsive_child(&args[1..]),
        _ => {
            eprintln!(
                "--child wants `parked IMPL N WORKERS`, `capacity KIND CAP`, `echo-server IMPL \
                 WORKERS` or `responsive HOG READERS PINGS EPISODES`"
            );
            2
        }
    }
}

/// What one `responsive` measurement found, as its child reports it.
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    /// Median round trip, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Longest, µs.
    pub max_us: f64,
    /// Pings with no answer within a second.
    pub stalls: usize,
}

/// One `responsive` measurement in a fresh process: grove's readiness on
/// worker 1, with or without a CPU-bound green thread on worker 0 (see
/// `grove_workloads::responsive`).
pub fn responsive(
    hog: bool,
    readers: usize,
    pings: usize,
    episodes: usize,
    limit: Duration,
) -> Result<Readiness, Fail> {
    let args: Vec<String> = vec![
        "responsive".into(),
        u8::from(hog).to_string(),
        readers.to_string(),
        pings.to_string(),
        episodes.to_string(),
    ];
    let out = run_child(&args, limit)?;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let ["READINESS", p50, p99, max, stalls] = f.as_slice() {
            let us = |s: &str| s.parse::<f64>().map(|ns| ns / 1e3).ok();
            if let (Some(p50_us), Some(p99_us), Some(max_us), Ok(stalls)) =
                (us(p50), us(p99), us(max), stalls.parse())
            {
                return Ok(Readiness {
                    p50_us,
                    p99_us,
                    max_us,
                    stalls,
                });
            }
        }
    }
    Err(Fail::Failed(format!("responsive: no result in {out:?}")))
}

fn responsive_child(args: &[String]) -> i32 {
    let num = |i: usize| args.get(i).and_then(|s| s.parse::<usize>().ok());
    let (Some(hog), Some(readers), Some(pings), Some(episodes)) = (num(0), num(1), num(2), num(3))
    else {
        eprintln!("--child responsive wants HOG(0|1) READERS PINGS EPISODES");
        return 2;
    };
    match grove_workloads::responsive::measure(hog == 1, readers, pings, episodes) {
        Ok(r) => {
            println!(
                "READINESS {} {} {} {}",
                r.p50.as_nanos(),
                r.p99.as_nanos(),
                r.max.as_nanos(),
                r.stalls
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn parked_child(args: &[String]) -> i32 {
    let (Some(imp), Some(n), Some(workers)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("--child parked wants IMPL N WORKERS");
        return 2;
    };
    let run = match imp.as_str() {
        "grove" => parked_memory::grove(workers, n),
        "tokio" => Ok(parked_memory::tokio(workers, n)),
        "may" => {
            util::may_init(workers);
            Ok(parked_memory::may(n))
        }
        "std_thread" => Ok(parked_memory::std_thread(
            n,
            parked_memory::STD_THREAD_STACK,
        )),
        other => {
            eprintln!("unknown parked implementation {other:?}");
            return 2;
        }
    };
    match run {
        Ok(p) => println!(
            "CHILD {:.4} {} {}",
            p.kib_per_task(),
            p.park.as_nanos(),
            p.wake.as_nanos()
        ),
        Err(reason) => println!("SKIP {reason}"),
    }
    0
}
