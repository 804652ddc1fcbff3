//! The echo servers of the I/O section as child processes: each
//! repetition starts a fresh one (its own memory, nothing left over from
//! another run), drives it from this process (the load generator, one
//! thread), and stops it.
//!
//! A server child is this program (`--child echo-server IMPL WORKERS`:
//! grove, tokio, std_thread, may) or Go's twin (`-procs P -echo ADDR`).
//! Both speak the same few lines: `LISTEN <addr>` on stdout once
//! listening; they serve until their stdin closes, then print `TICKER
//! <ticks> <worst lateness in ns>` (the ticker task's record) and exit.
//! Lines on stderr starting `note:` (a failed accept, a thread that could
//! not start) become notes under the workload's block.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_workloads::echo::server::{Imp, Stop, TickerReport};

use crate::go::GoTwin;
use crate::plan::Fail;

/// How long a server may take to start listening, and to stop.
const START_LIMIT: Duration = Duration::from_secs(20);

/// Which server.
#[derive(Clone)]
pub enum Kind {
    /// One of this crate's, run as a child of this program.
    Rust(Imp),
    /// Go's twin.
    Go(Rc<GoTwin>),
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Rust(imp) => imp.key(),
            Kind::Go(_) => "Go",
        }
    }
}

/// A running server child.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// Where it listens.
    pub addr: SocketAddr,
    name: &'static str,
}

impl Server {
    /// Starts server `kind` with `workers` workers and waits until it
    /// listens.
    pub fn start(kind: &Kind, workers: usize) -> Result<Server, Fail> {
        let mut cmd = match kind {
            Kind::Rust(imp) => crate::child::self_command(&[
                "echo-server".into(),
                imp.key().into(),
                workers.to_string(),
            ])
            .map_err(Fail::Failed)?,
            Kind::Go(go) => go.echo_command(workers),
        };
        let name = kind.name();
        let mut child = spawn(&mut cmd).map_err(|e| Fail::Failed(format!("{name} server: {e}")))?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().map(BufReader::new);
        std::thread::spawn(move || {
            for line in stdout.into_iter().flat_map(|s| s.lines()) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err_lines = stderr.clone();
        let mut err_pipe = child.stderr.take();
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(pipe) = err_pipe.as_mut() {
                let mut reader = BufReader::new(pipe);
                while reader.read_line(&mut text).is_ok_and(|n| n > 0) {
                    lock(&err_lines).push(text.trim_end().to_string());
                    text.clear();
                }
                let _ = reader.read_to_end(&mut Vec::new());
            }
        });
        let mut server = Server {
            child,
            stdin,
            lines,
            stderr,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            name,
        };
        let line = server.expect("LISTEN")?;
        server.addr = line
            .trim()
            .parse()
            .map_err(|e| server.failure(&format!("its address {line:?} does not parse ({e})")))?;
        Ok(server)
    }

    /// The server's resident set now, in bytes (`/proc/PID/statm`).
    pub fn rss_bytes(&self) -> Result<u64, Fail> {
        let path = format!("/proc/{}/statm", self.child.id());
        let statm = std::fs::read_to_string(&path)
            .map_err(|e| self.failure(&format!("cannot read {path}: {e}")))?;
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.failure(&format!("{path} holds {statm:?}")))?;
        Ok(pages * grove_test_support::procfs::page_size() as u64)
    }

    /// A failure of this server: `what`, with the last lines it wrote on
    /// stderr.
    pub fn failure(&self, what: &str) -> Fail {
        let err = lock(&self.stderr);
        let tail: Vec<&str> = err.iter().rev().take(3).rev().map(String::as_str).collect();
        let said = if tail.is_empty() {
            String::new()
        } else {
            format!(" (its stderr: {})", tail.join(" / "))
        };
        Fail::from_message(format!("{} server: {what}{said}", self.name))
    }

    /// Stops the server (closes its stdin) and returns its ticker's
    /// record; its `note:` lines become notes of the workload.
    pub fn finish(mut self) -> Result<TickerReport, Fail> {
        drop(self.stdin.take());
        let line = self.expect("TICKER")?;
        let mut f = line.split_whitespace().map(str::parse::<u64>);
        let report = match (f.next(), f.next()) {
            (Some(Ok(ticks)), Some(Ok(worst))) => TickerReport {
                ticks,
                worst_late: Duration::from_nanos(worst),
            },
            _ => return Err(self.failure(&format!("a bad TICKER line {line:?}"))),
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                _ => return Err(self.failure("did not exit after its stdin closed")),
            }
        }
        for line in lock(&self.stderr).iter() {
            if let Some(note) = line.strip_prefix("note:") {
                crate::run::note(&format!("{}: {}", self.name, note.trim()));
            }
        }
        Ok(report)
    }

    /// Waits for the line starting `word`; returns the rest of it.
    fn expect(&mut self, word: &str) -> Result<String, Fail> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(word) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!(
                        "no {word} line within {} s",
                        START_LIMIT.as_secs()
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self
                        .child
                        .wait()
                        .map_or_else(|e| e.to_string(), |s| s.to_string());
                    return Err(self.failure(&format!("exited ({status}) before its {word} line")));
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The child side, `--child echo-server IMPL WORKERS`: serves until stdin
/// closes (see the module doc). Returns the exit status.
pub fn child(args: &[String]) -> i32 {
    let (Some(imp), Some(workers)) = (
        args.first().and_then(|k| Imp::from_key(k)),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("--child echo-server wants IMPL WORKERS (IMPL: grove, tokio, std_thread, may)");
        return 2;
    };
    let stop = Stop::new();
    let on_eof = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        on_eof.request();
    });
    let served = grove_workloads::echo::server::serve(imp, workers, stop, |addr| {
        println!("LISTEN {addr}");
    });
    match served {
        Ok(report) => {
            println!("TICKER {} {}", report.ticks, report.worst_late.as_nanos());
            0
        }
        Err(e) => {
            eprintln!("echo server {}: {e}", imp.key());
            1
        }
    }
}
