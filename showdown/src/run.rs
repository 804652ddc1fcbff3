//! Running a workload: warm-up, then the implementations interleaved
//! (each once per repetition, the order reversed every other one), each
//! run guarded so that a panic (a WRONG RESULT among them) becomes a table
//! cell instead of a crash, a watchdog for runs that hang, and the
//! progress line on stderr.

use std::io::{IsTerminal, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::plan::{Fail, RunFn, Workload};

/// Panic messages since the last [`take_panics`], from every thread
/// (a WRONG RESULT may be raised in a green thread or a tokio worker).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Notes for the workload now running (printed under its block).
static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Side figures recorded by the repetition now running (see [`figure`]).
static FIGURES: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// The run in progress, for the watchdog: what, since when.
static CURRENT: Mutex<Option<(String, Instant)>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records panic messages instead of printing them: the table shows them.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic without a message".to_string()
        };
        let at = info
            .location()
            .map(|l| format!(" (at {}:{})", l.file(), l.line()))
            .unwrap_or_default();
        lock(&PANICS).push(format!("{msg}{at}"));
    }));
}

fn take_panics() -> Vec<String> {
    std::mem::take(&mut *lock(&PANICS))
}

/// Adds a note to the workload now running (duplicates are dropped).
pub fn note(text: &str) {
    let mut notes = lock(&NOTES);
    if !notes.iter().any(|n| n == text) {
        notes.push(text.to_string());
    }
}

/// Records a side figure of the repetition now running (the echo rows'
/// p50 and p99 beside their requests/s): kept with the entry if the
/// repetition succeeds, printed beside its median, written to `--json`.
pub fn figure(name: &str, value: f64) {
    lock(&FIGURES).push((name.to_string(), value));
}

fn take_figures() -> Vec<(String, f64)> {
    std::mem::take(&mut *lock(&FIGURES))
}

/// The notes gathered since the last call.
pub fn take_notes() -> Vec<String> {
    std::mem::take(&mut *lock(&NOTES))
}

/// Starts the watchdog: a run that takes longer than `limit` ends the
/// program (status 3) after `on_abort`, with a message naming it; the
/// blocks already printed stay.
pub fn start_watchdog(limit: Duration, on_abort: fn()) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(250));
        let over = lock(&CURRENT)
            .as_ref()
            .filter(|(_, since)| since.elapsed() > limit)
            .map(|(what, _)| what.clone());
        if let Some(what) = over {
            eprintln!(
                "\r\x1b[K\n{what} has run for more than {} s, longer than this mode allows: \
                 giving up (it hangs or this machine is overloaded)",
                limit.as_secs()
            );
            on_abort();
            std::process::exit(3);
        }
    });
}

/// Runs `f(size)` under the watchdog, turning a panic into a [`Fail`].
fn guarded(label: &str, f: &mut RunFn, size: usize) -> Result<f64, Fail> {
    take_panics();
    take_figures();
    *lock(&CURRENT) = Some((label.to_string(), Instant::now()));
    let result = catch_unwind(AssertUnwindSafe(|| f(size)));
    *lock(&CURRENT) = None;
    let panics = take_panics();
    match result {
        Ok(Ok(v)) if v.is_finite() => Ok(v),
        Ok(Ok(v)) => Err(Fail::Failed(format!("not a number: {v}"))),
        Ok(Err(fail)) => Err(fail),
        Err(_) => Err(Fail::from_message(if panics.is_empty() {
            "panicked".to_string()
        } else {
            panics.join("; ")
        })),
    }
}

/// The progress line on stderr: overwritten in place on a terminal, one
/// line per workload otherwise.
pub struct Progress {
    tty: bool,
    start: Instant,
    /// Workloads selected, and how many have started.
    pub total: usize,
    /// How many have started.
    pub index: usize,
}

impl Progress {
    /// A progress line for `total` workloads.
    pub fn new(total: usize) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
            total,
            index: 0,
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Moves on to the next workload.
    pub fn next_workload(&mut self, key: &str) {
        self.index += 1;
        if !self.tty {
            eprintln!("[{}/{}] {key} ...", self.index, self.total);
        }
    }

    /// Shows what runs now.
    pub fn show(&self, what: &str) {
        if self.tty {
            let line = if self.total == 0 {
                what.to_string()
            } else {
                format!(
                    "[{}/{}] {:>3}s  {what}",
                    self.index,
                    self.total,
                    self.start.elapsed().as_secs()
                )
            };
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
        }
    }

    /// Clears the line (before something is printed on stdout).
    pub fn clear(&self) {
        if self.tty {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

/// Runs every implementation of `w`: one untimed warm-up each, then
/// `reps` rounds in which each runs once (interleaved, so that the
/// machine's drift hits all of them alike), in order in even rounds and
/// in reverse in odd ones. A fixed order would give each implementation
/// the same predecessor every time, and what a predecessor leaves behind
/// is not alike: right after std::thread's 1,000 thread spawns and joins,
/// grove's spawn_join measured 10% slower (89.4 against 81.4 ns per task,
/// medians of 24), and in a fixed order grove's first row always came
/// right after std::thread.
pub fn run_workload(w: &mut Workload, reps: usize, progress: &Progress) {
    let key = w.key;
    for e in w.entries.iter_mut().filter(|e| e.warm > 0) {
        if let Some(f) = e.run.as_mut() {
            progress.show(&format!("{key}: warming up {}", e.name));
            let _ = guarded(&format!("{key}/{} (warm-up)", e.name), f, e.warm);
        }
    }
    let n = w.entries.len();
    for rep in 0..reps {
        for i in 0..n {
            let e = &mut w.entries[if rep % 2 == 0 { i } else { n - 1 - i }];
            let Some(f) = e.run.as_mut() else { continue };
            progress.show(&format!("{key}: repetition {}/{reps}: {}", rep + 1, e.name));
            match guarded(&format!("{key}/{}", e.name), f, e.size) {
                Ok(v) => {
                    e.values.push(v);
                    for (name, value) in take_figures() {
                        e.push_side(name, value);
                    }
                }
                Err(fail) => e.fails.push(fail),
            }
        }
    }
    // Drop the runtimes the closures hold before the next workload starts.
    for e in w.entries.iter_mut() {
        e.run = None;
    }
    w.notes.extend(take_notes());
}
