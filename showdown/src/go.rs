//! Go's twins of the workloads (`benches/go`): built once with `go build`
//! into `target/showdown/go/`, then run once per repetition as
//! `grovebench -reps 1 -procs P NAME=SIZE[:WARM]` (every size from the one
//! table, `grove_workloads::sizes::Sizes`), which prints
//! `RESULT <name> <value> <unit> procs=<P>`; and its echo server
//! (`grovebench -procs P -echo ADDR`), which the I/O section drives with its
//! own load generator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::child::output_within;
use crate::plan::Fail;

/// The message when Go is not installed.
pub const MISSING: &str = "Go not found: install it with `apt-get install -y golang-go` to compare";

/// The built twin program.
#[derive(Debug)]
pub struct GoTwin {
    exe: PathBuf,
    /// `go version`'s version, e.g. `go1.19.8`.
    pub version: String,
    /// Longest one run may take before it counts as failed.
    pub limit: Duration,
}

/// Whether Go can be compared, and if not, why.
#[derive(Debug)]
pub enum GoStatus {
    /// Built and ready.
    Ready(GoTwin),
    /// Not compared, and why (not installed, build failed, `--no-go`).
    Absent(String),
}

/// `go` on the PATH, if any.
fn find_go() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("go"))
        .find(|p| p.is_file())
}

/// Where the twins' source is: `benches/go` of this checkout.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/go")
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Whether `exe` is older than any of the twins' source files.
fn stale(exe: &Path, src: &Path) -> bool {
    let Some(built) = modified(exe) else {
        return true;
    };
    ["main.go", "go.mod"]
        .iter()
        .any(|f| modified(&src.join(f)).is_none_or(|t| t > built))
}

/// The environment variable naming a twin built elsewhere (`go build` in
/// `benches/go`), for machines without Go.
pub const PREBUILT: &str = "GROVE_GO_TWIN";

/// A twin built elsewhere, named by `GROVE_GO_TWIN`: its version comes from
/// its own `-version`.
fn prebuilt(exe: PathBuf, limit: Duration) -> GoStatus {
    let mut cmd = Command::new(&exe);
    cmd.arg("-version");
    match output_within(cmd, Duration::from_secs(30)) {
        Ok(out) if out.status.success() => GoStatus::Ready(GoTwin {
            version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            exe,
            limit,
        }),
        Ok(out) => GoStatus::Absent(format!(
            "{PREBUILT}={}: `-version` failed ({}); rebuild it from benches/go",
            exe.display(),
            out.status
        )),
        Err(err) => GoStatus::Absent(format!("{PREBUILT}={}: {err}", exe.display())),
    }
}

/// Finds Go and builds the twins into `out_dir` (once; rebuilt when the
/// source is newer). Building needs no network: the module has no
/// dependencies. `GROVE_GO_TWIN=/path/to/grovebench` uses a twin built
/// elsewhere instead (a machine without Go).
pub fn prepare(out_dir: &Path, limit: Duration) -> GoStatus {
    if let Some(exe) = std::env::var_os(PREBUILT).filter(|v| !v.is_empty()) {
        return prebuilt(PathBuf::from(exe), limit);
    }
    let Some(go) = find_go() else {
        return GoStatus::Absent(MISSING.to_string());
    };
    let src = source_dir();
    if !src.join("main.go").is_file() {
        return GoStatus::Absent(format!(
            "Go twins' source not found at {} (run from the grove checkout)",
            src.display()
        ));
    }
    let exe = out_dir.join("grovebench");
    if stale(&exe, &src) {
        if let Err(err) = std::fs::create_dir_all(out_dir) {
            return GoStatus::Absent(format!("cannot create {}: {err}", out_dir.display()));
        }
        let mut cmd = Command::new(&go);
        cmd.arg("build")
            .arg("-o")
            .arg(&exe)
            .arg(".")
            .current_dir(&src)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod");
        match output_within(cmd, Duration::from_secs(300)) {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                return GoStatus::Absent(format!(
                    "`go build` of benches/go failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(err) => return GoStatus::Absent(format!("`go build` of benches/go: {err}")),
        }
    }
    let version = Command::new(&go)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            s.split_whitespace().nth(2).map(str::to_string)
        })
        .unwrap_or_else(|| "go (unknown version)".into());
    GoStatus::Ready(GoTwin {
        exe,
        version,
        limit,
    })
}

impl GoTwin {
    /// A twin not built (for `--go-command`, which only prints arguments).
    pub fn unbuilt() -> GoTwin {
        GoTwin {
            exe: PathBuf::from("grovebench"),
            version: "go".into(),
            limit: Duration::from_secs(1),
        }
    }

    /// One repetition of workload `name` at `size` (after an untimed run
    /// at `warm` in the same process; 0: none) with GOMAXPROCS `procs`: its
    /// figure, in the unit of the Rust side.
    pub fn run(&self, name: &str, size: usize, warm: usize, procs: usize) -> Result<f64, Fail> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["-reps", "1", "-procs"])
            .arg(procs.to_string())
            .arg(job(name, size, warm));
        let out = output_within(cmd, self.limit)
            .map_err(|err| Fail::Failed(format!("Go {name}: {err}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(Fail::from_message(format!(
                "Go {name} exited with {}: {}",
                out.status,
                stderr.trim()
            )));
        }
        parse_result(&stdout, name)
            .ok_or_else(|| Fail::Failed(format!("Go {name}: no RESULT line in {stdout:?}")))
    }
}

impl GoTwin {
    /// The command that starts the twin's echo server (`-echo`, on a port
    /// the kernel picks) with GOMAXPROCS `procs` (see `servers`).
    pub fn echo_command(&self, procs: usize) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("-procs")
            .arg(procs.to_string())
            .args(["-echo", grove_workloads::echo::LOCALHOST]);
        cmd
    }
}

/// The value of the first `RESULT <name> <value> ...` line.
fn parse_result(stdout: &str, name: &str) -> Option<f64> {
    stdout.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        (f.next()? == "RESULT" && f.next()? == name)
            .then(|| f.next()?.parse().ok())
            .flatten()
    })
}

/// The twins' arguments of `w`'s Go entries.
pub fn twin_jobs(w: &crate::plan::Workload) -> Vec<String> {
    w.entries.iter().filter_map(|e| e.go_job.clone()).collect()
}

/// The twin's argument for workload `name` at `size`, warmed up at `warm`.
pub fn job(name: &str, size: usize, warm: usize) -> String {
    if warm > 0 {
        format!("{name}={size}:{warm}")
    } else {
        format!("{name}={size}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines() {
        let out = "RESULT pingpong0 243.10 ns/roundtrip procs=2\n";
        assert_eq!(parse_result(out, "pingpong0"), Some(243.1));
        assert_eq!(parse_result(out, "skynet"), None);
        assert_eq!(job("fib_fork", 27, 19), "fib_fork=27:19");
        assert_eq!(job("parked_memory", 100_000, 0), "parked_memory=100000");
    }
}
