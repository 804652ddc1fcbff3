//! `--scaling 1,2,4,8,16`: the same workloads at several worker counts
//! (grove's workers, tokio's worker threads, Go's GOMAXPROCS), and each
//! implementation's speed-up over the first count. BENCHMARKS.md's target:
//! skynet and fib_fork at least 10x faster on 16 workers than on one.

use crate::plan::Workload;
use crate::report::{fmt_num, fmt_ratio};

/// The workloads a scaling run measures when `--only` names none.
pub const DEFAULT: &[&str] = &["skynet", "fib_fork"];

/// The implementations that take a worker count; the others (may's global
/// configuration, std::thread, rayon, sequential) are left out.
const SCALED: &[&str] = &["grove", "Go", "tokio"];

/// BENCHMARKS.md's bound on grove's speed-up from 1 to 16 workers.
const TARGET: f64 = 10.0;

/// Keeps only the implementations whose worker count the run sets.
pub fn keep_scaled(w: &mut Workload) {
    w.entries.retain(|e| SCALED.contains(&e.name.as_str()));
}

/// One workload at one worker count, after it ran.
pub struct Point {
    /// Worker count.
    pub workers: usize,
    /// The workload, with its figures.
    pub workload: Workload,
}

/// Median of implementation `name` in `w`, if it ran.
fn median_of(w: &Workload, name: &str) -> Option<f64> {
    w.entries.iter().find(|e| e.name == name)?.median()
}

/// Cell text: the median and the speed-up over `base` (time units: lower
/// is better, so speed-up is base / value).
fn cell(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if v > 0.0 => format!("{} {:>6}", fmt_num(v), fmt_ratio(b / v)),
        (Some(v), _) => fmt_num(v),
        (None, _) => "-".into(),
    }
}

/// The table: one row per workload and implementation, one column per
/// worker count, then the targets.
pub fn render(counts: &[usize], keys: &[&str], points: &[Point], cores: usize) -> String {
    let mut out = vec![format!(
        "Scaling - median per run at {} workers (x = speed-up over {} worker{})",
        counts
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        counts[0],
        if counts[0] == 1 { "" } else { "s" }
    )];
    let mut head = format!("  {:<14} {:<8}", "workload", "impl");
    for n in counts {
        head.push_str(&format!(" {:>15}", format!("{n} workers")));
    }
    out.push(head);
    let mut checks = Vec::new();
    for key in keys {
        let at = |n: usize| {
            points
                .iter()
                .find(|p| p.workers == n && p.workload.key == *key)
        };
        let Some(first) = at(counts[0]) else { continue };
        let unit = first.workload.unit;
        for name in SCALED {
            if !first.workload.entries.iter().any(|e| e.name == *name) {
                continue;
            }
            let base = median_of(&first.workload, name);
            let mut row = format!("  {:<14} {:<8}", key, name);
            for &n in counts {
                let v = at(n).and_then(|p| median_of(&p.workload, name));
                row.push_str(&format!(" {:>15}", cell(v, base)));
            }
            out.push(row);
            let last = *counts.last().expect("at least two counts");
            if *name == "grove" && DEFAULT.contains(key) && counts[0] == 1 && last == 16 {
                let v = at(last).and_then(|p| median_of(&p.workload, name));
                checks.push((key.to_string(), base.zip(v).map(|(b, v)| b / v)));
            }
        }
        out.push(format!("  ({key}: {unit})"));
    }
    if !checks.is_empty() {
        out.push(String::new());
        out.push("Targets of BENCHMARKS.md, from this run's medians".into());
        for (key, speedup) in checks {
            let (word, value) = match speedup {
                Some(s) if s >= TARGET => ("MET", fmt_ratio(s)),
                Some(s) => ("MISSED", fmt_ratio(s)),
                None => ("-", "no figure".into()),
            };
            out.push(format!(
                "  {word:<5} {:<40} {value} (target >= {TARGET:.0}x)",
                format!("{key}: grove 16 workers over 1")
            ));
        }
    }
    if let Some(&most) = counts.iter().max() {
        if most > cores {
            out.push(format!(
                "  note: this machine has {cores} cores; counts above that share them"
            ));
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Entry;

    fn ran(key: &'static str, workers: usize, grove: f64, go: f64) -> Point {
        let mut g = Entry::new("grove", 1, |_| Ok(0.0));
        g.values = vec![grove];
        let mut o = Entry::new("Go", 1, |_| Ok(0.0));
        o.values = vec![go];
        Point {
            workers,
            workload: Workload {
                key,
                what: String::new(),
                unit: "ms",
                size: String::new(),
                notes: Vec::new(),
                entries: vec![g, o],
                each_rep: false,
            },
        }
    }

    #[test]
    fn speedups_and_targets() {
        let points = vec![
            ran("skynet", 1, 300.0, 900.0),
            ran("skynet", 16, 30.0, 300.0),
            ran("fib_fork", 1, 100.0, 200.0),
            ran("fib_fork", 16, 20.0, 50.0),
        ];
        let out = render(&[1, 16], &["skynet", "fib_fork"], &points, 16);
        assert!(out.contains("10.0x"), "{out}");
        assert!(
            out.contains("MET   skynet: grove 16 workers over 1"),
            "{out}"
        );
        assert!(
            out.contains("MISSED fib_fork: grove 16 workers over 1"),
            "{out}"
        );
        assert!(!out.contains("share them"), "{out}");
        let small = render(&[1, 16], &["skynet"], &points, 2);
        assert!(small.contains("this machine has 2 cores"), "{small}");
    }
}
