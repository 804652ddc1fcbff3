//! What a run is made of: workloads, each with its implementations
//! (entries), and the figures collected. The sizes of each mode are the
//! workloads library's one table (`grove_workloads::sizes::Sizes`).

use std::time::Duration;

/// Why a repetition has no figure.
#[derive(Clone, Debug)]
pub enum Fail {
    /// The workload computed a wrong answer (it said `WRONG RESULT`).
    Wrong(String),
    /// It could not run: a panic, a crash, a child that failed.
    Failed(String),
}

impl Fail {
    /// From a panic or error message: `Wrong` when it says WRONG RESULT.
    pub fn from_message(msg: String) -> Fail {
        if msg.contains("WRONG RESULT") {
            Fail::Wrong(msg)
        } else {
            Fail::Failed(msg)
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Fail::Wrong(m) | Fail::Failed(m) => m,
        }
    }
}

/// One repetition of an implementation at `size`: its figure in the
/// workload's unit.
pub type RunFn = Box<dyn FnMut(usize) -> Result<f64, Fail>>;

/// One implementation of a workload.
pub struct Entry {
    /// Its name in the table ("grove", "Go", "tokio", ...).
    pub name: String,
    /// What the table says beside it (a different size, the channel used).
    pub note: String,
    /// The size it runs at (tasks, round trips, messages, leaves, n).
    pub size: usize,
    /// Size of the untimed warm-up run before the first repetition; 0:
    /// none (Go and child processes warm up themselves or need not).
    pub warm: usize,
    /// Divides the figure before the ratio to grove is taken, so that
    /// whole-run times at different sizes compare per task (1 for figures
    /// that are already per operation).
    pub per: f64,
    /// `None`: not applicable here (see `na`).
    pub run: Option<RunFn>,
    /// Why it does not run.
    pub na: Option<String>,
    /// The figures of the repetitions that succeeded.
    pub values: Vec<f64>,
    /// The repetitions that failed.
    pub fails: Vec<Fail>,
    /// Go's entries: the twin's argument (`NAME=SIZE[:WARM]`).
    pub go_job: Option<String>,
    /// Side figures of the repetitions that succeeded, by name, in the
    /// order first recorded (the echo rows' p50 and p99 beside their
    /// requests/s; see [`crate::run::figure`]).
    pub side: Vec<(String, Vec<f64>)>,
}

impl Entry {
    /// An implementation run as `run(size)`, with a warm-up at 1/100.
    pub fn new(
        name: &str,
        size: usize,
        run: impl FnMut(usize) -> Result<f64, Fail> + 'static,
    ) -> Entry {
        Entry {
            name: name.to_string(),
            note: String::new(),
            size,
            warm: (size / 100).max(1),
            per: 1.0,
            run: Some(Box::new(run)),
            na: None,
            values: Vec::new(),
            fails: Vec::new(),
            go_job: None,
            side: Vec::new(),
        }
    }

    /// An implementation that cannot run here, and why.
    pub fn na(name: &str, reason: impl Into<String>) -> Entry {
        Entry {
            name: name.to_string(),
            note: String::new(),
            size: 0,
            warm: 0,
            per: 1.0,
            run: None,
            na: Some(reason.into()),
            values: Vec::new(),
            fails: Vec::new(),
            go_job: None,
            side: Vec::new(),
        }
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Entry {
        self.note = note.into();
        self
    }

    /// Sets the warm-up size (0: none).
    pub fn warm(mut self, warm: usize) -> Entry {
        self.warm = warm;
        self
    }

    /// Sets the divisor for the ratio to grove.
    pub fn per(mut self, per: f64) -> Entry {
        self.per = per;
        self
    }

    /// The median of the figures, if any succeeded.
    pub fn median(&self) -> Option<f64> {
        median(&self.values)
    }

    /// The values of side figure `name`, one per successful repetition.
    pub fn side(&self, name: &str) -> Option<&[f64]> {
        self.side
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The median of side figure `name`.
    pub fn side_median(&self, name: &str) -> Option<f64> {
        median(self.side(name)?)
    }

    /// Records a repetition's side figure.
    pub fn push_side(&mut self, name: String, value: f64) {
        match self.side.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => self.side.push((name, vec![value])),
        }
    }
}

/// A workload: one block of the table.
pub struct Workload {
    /// Its name (as in Go's twin and BENCHMARKS.md).
    pub key: &'static str,
    /// One line on what it does.
    pub what: String,
    /// The unit of every figure ("ns/round trip", "ms", "KiB/task").
    pub unit: &'static str,
    /// The size most implementations run at, for the header.
    pub size: String,
    /// Lines printed under the block.
    pub notes: Vec<String>,
    /// grove first: the ratios are to it.
    pub entries: Vec<Entry>,
    /// Print every repetition's figure under the block (the natural
    /// programs, whose repetitions may fall into different modes).
    pub each_rep: bool,
}

impl Workload {
    /// Whether a bigger figure is better: a rate (a unit per second, as
    /// the echo rows' requests/s). Times and memory are better smaller.
    pub fn higher_is_better(&self) -> bool {
        self.unit.ends_with("/s")
    }

    /// grove's median, the base of the ratios.
    pub fn grove_median(&self) -> Option<f64> {
        let grove = self.entries.first()?;
        Some(grove.median()? / grove.per)
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// `name`'s median over grove's (per task where sizes differ).
    pub fn ratio_to_grove(&self, name: &str) -> Option<f64> {
        let e = self.entry(name)?;
        Some(e.median()? / e.per / self.grove_median()?)
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Nanoseconds per operation.
pub fn per_op(d: Duration, ops: usize) -> f64 {
    d.as_nanos() as f64 / ops.max(1) as f64
}

/// Milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `1000` as `1k`, `1000000` as `1M`, `2500` as `2.5k`.
pub fn human(n: usize) -> String {
    let (v, suffix) = match n {
        n if n >= 1_000_000 => (n as f64 / 1e6, "M"),
        n if n >= 1_000 => (n as f64 / 1e3, "k"),
        n => return n.to_string(),
    };
    let s = format!("{v:.1}");
    format!("{}{suffix}", s.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_names() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(human(1_000), "1k");
        assert_eq!(human(2_500), "2.5k");
        assert_eq!(human(1_000_000), "1M");
        assert_eq!(human(999), "999");
    }
}
