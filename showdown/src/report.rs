//! The table on the terminal: one block per workload (medians, min-max,
//! ratio to grove), then the targets of BENCHMARKS.md checked against
//! this run's figures.

use crate::capacity::Capacity;
use crate::plan::{Entry, Fail, Workload};

/// A figure with about three significant digits (thousands separated).
pub fn fmt_num(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{}{out}", if v < 0.0 { "-" } else { "" })
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A ratio: `0.45x`, `1.3x`, `168x`.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

fn shorten(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}...")
    }
}

/// The word for an entry's failures: WRONG if any was a wrong result.
fn fail_word(fails: &[Fail]) -> &'static str {
    if fails.iter().any(|f| matches!(f, Fail::Wrong(_))) {
        "WRONG"
    } else {
        "FAILED"
    }
}

/// A row whose slowest repetition took more than this many times its
/// fastest is flagged placement-sensitive: where green threads land (on
/// one worker or on two) changes what they cost, and the median then
/// depends on which placement most repetitions fell into.
const PLACEMENT_SENSITIVE: f64 = 2.0;

/// The slowest repetition over the fastest.
fn spread(e: &Entry) -> Option<f64> {
    let lo = e.values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = e.values.iter().copied().fold(0.0, f64::max);
    (lo > 0.0 && e.values.len() > 1).then(|| hi / lo)
}

/// One row: name, median, min-max, ratio, note.
fn row(e: &Entry, grove: Option<f64>, reps: usize) -> String {
    let (median, range, ratio) = match (e.median(), &e.na) {
        (_, Some(_)) => ("n/a".to_string(), String::new(), String::new()),
        (None, None) => (
            fail_word(&e.fails).to_string(),
            String::new(),
            String::new(),
        ),
        (Some(m), None) => {
            let lo = e.values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = e.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let ratio = grove.map_or_else(String::new, |g| fmt_ratio(m / e.per / g));
            (
                fmt_num(m),
                format!("{} - {}", fmt_num(lo), fmt_num(hi)),
                ratio,
            )
        }
    };
    let mut note = e.na.clone().unwrap_or_else(|| e.note.clone());
    if let Some(spread) = spread(e).filter(|&s| s > PLACEMENT_SENSITIVE) {
        note = format!("PLACEMENT-SENSITIVE: max {} min; {note}", fmt_ratio(spread));
    }
    if !e.fails.is_empty() && e.median().is_some() {
        let word = fail_word(&e.fails);
        note = format!("{} of {reps} {word}; {note}", e.fails.len());
    }
    format!(
        "  {:<21} {:>10} {:>21} {:>8}  {}",
        e.name, median, range, ratio, note
    )
    .trim_end()
    .to_string()
}

/// The block of one workload.
pub fn block(w: &Workload, reps: usize) -> String {
    let mut out = vec![
        format!("{} - {}", w.key, w.what),
        format!(
            "  {}, {}; median of {reps}, min - max, x grove (lower is better)",
            w.unit, w.size
        ),
        format!(
            "  {:<21} {:>10} {:>21} {:>8}  {}",
            "implementation", "median", "min - max", "x grove", "notes"
        ),
    ];
    let grove = w.grove_median();
    out.extend(w.entries.iter().map(|e| row(e, grove, reps)));
    if w.each_rep {
        for e in w.entries.iter().filter(|e| !e.values.is_empty()) {
            let each: Vec<String> = e.values.iter().map(|&v| fmt_num(v)).collect();
            out.push(format!("  {} by repetition: {}", e.name, each.join(", ")));
        }
    }
    for e in &w.entries {
        if let Some(f) = e.fails.first() {
            out.push(format!("  ! {}: {}", e.name, shorten(f.message(), 220)));
        }
    }
    out.extend(w.notes.iter().map(|n| format!("  * {n}")));
    out.join("\n")
}

/// A target: `what`'s figure against `bound`; with no bound, a figure
/// shown for comparison only.
struct Check {
    label: String,
    value: Option<f64>,
    bound: Option<f64>,
    /// `true`: the figure must be at most the bound; `false`: at least.
    at_most: bool,
    unit: &'static str,
}

impl Check {
    fn line(&self) -> String {
        let (sign, unit) = (if self.at_most { "<=" } else { ">=" }, self.unit);
        let Some(v) = self.value else {
            return format!("  -     {:<40} not measured in this run", self.label);
        };
        let Some(bound) = self.bound else {
            return format!(
                "  info  {:<40} {}{unit} (no target; for comparison)",
                self.label,
                fmt_num(v)
            );
        };
        let met = if self.at_most { v <= bound } else { v >= bound };
        let by = if self.at_most { v / bound } else { bound / v };
        let verdict = if met {
            "MET  ".to_string()
        } else {
            "MISS ".to_string()
        };
        let miss = if met {
            String::new()
        } else {
            format!("  (off by {})", fmt_ratio(by))
        };
        format!(
            "  {verdict} {:<40} {}{unit} (target {sign} {}{unit}){miss}",
            self.label,
            fmt_num(v),
            fmt_num(bound)
        )
    }
}

fn find<'a>(ws: &'a [Workload], key: &str) -> Option<&'a Workload> {
    ws.iter().find(|w| w.key == key)
}

/// grove's median over `peer`'s in workload `key` (per task where sizes
/// differ).
fn grove_over(ws: &[Workload], key: &str, peer: &str) -> Option<f64> {
    find(ws, key)?.ratio_to_grove(peer).map(|r| 1.0 / r)
}

fn vs_go(ws: &[Workload], key: &str, bound: f64) -> Check {
    Check {
        label: format!("{key}: grove / Go"),
        value: grove_over(ws, key, "Go"),
        bound: Some(bound),
        at_most: true,
        unit: "x",
    }
}

/// grove's slowest repetition over Go's slowest in workload `key` (the
/// natural programs: a user must never meet grove's slow placement).
fn worst_vs_go(ws: &[Workload], key: &str) -> Check {
    let worst = |name: &str| {
        let e = find(ws, key)?.entry(name)?;
        e.values.iter().copied().reduce(f64::max).map(|v| v / e.per)
    };
    Check {
        label: format!("{key}: grove's worst / Go's worst"),
        value: worst("grove").zip(worst("Go")).map(|(g, go)| g / go),
        bound: Some(1.0),
        at_most: true,
        unit: "x",
    }
}

/// grove over Go in workload `key`, where BENCHMARKS.md sets no target.
fn shown_vs_go(ws: &[Workload], key: &str) -> Check {
    Check {
        bound: None,
        ..vs_go(ws, key, 1.0)
    }
}

/// The targets of BENCHMARKS.md, checked against this run.
pub fn targets(ws: &[Workload], capacity: Option<&Capacity>, full: bool, cores: usize) -> String {
    let mut checks = vec![
        vs_go(ws, "spawn_join", 0.5),
        Check {
            label: format!("spawn_join: {} / Go", crate::sections::tasks::JOIN_EACH),
            value: find(ws, "spawn_join").and_then(|w| {
                Some(
                    w.ratio_to_grove(crate::sections::tasks::JOIN_EACH)?
                        / w.ratio_to_grove("Go")?,
                )
            }),
            bound: None,
            at_most: true,
            unit: "x",
        },
        Check {
            label: "spawn_join: grove / tokio".into(),
            value: grove_over(ws, "spawn_join", "tokio"),
            bound: Some(0.5),
            at_most: true,
            unit: "x",
        },
        Check {
            label: "spawn_join: std::thread / grove".into(),
            value: find(ws, "spawn_join").and_then(|w| w.ratio_to_grove("std::thread")),
            bound: Some(100.0),
            at_most: false,
            unit: "x",
        },
        vs_go(ws, "pingpong0", 0.5),
        vs_go(ws, "pingpong0_1w", 0.5),
        vs_go(ws, "prodcons_cap0", 0.5),
        vs_go(ws, "prodcons_cap128", 0.8),
        vs_go(ws, "prodcons_4p4c", 1.0),
        vs_go(ws, "skynet", 0.5),
        Check {
            label: "parked_memory: grove KiB/task".into(),
            value: find(ws, "parked_memory").and_then(|w| w.entry("grove")?.median()),
            bound: Some(4.5),
            at_most: true,
            unit: "",
        },
        vs_go(ws, "mutex", 1.0),
        Check {
            label: "mutex_uncontended: grove / std::thread".into(),
            value: grove_over(ws, "mutex_uncontended", "std::thread"),
            bound: Some(1.5),
            at_most: true,
            unit: "x",
        },
        shown_vs_go(ws, "mutex_uncontended"),
        shown_vs_go(ws, "rwlock_read"),
        shown_vs_go(ws, "waitgroup_fanout"),
        vs_go(ws, "select2", 1.0),
        vs_go(ws, "pingpong0_split", 1.0),
        vs_go(ws, "prodcons_cap0_split", 1.0),
        vs_go(ws, "prodcons_cap128_split", 1.0),
        vs_go(ws, "prodcons_4p4c_split", 1.0),
        vs_go(ws, "select2_split", 1.0),
        worst_vs_go(ws, "prodcons_cap0_natural"),
        worst_vs_go(ws, "prodcons_cap128_natural"),
        worst_vs_go(ws, "prodcons_4p4c_natural"),
        worst_vs_go(ws, "select2_natural"),
        vs_go(ws, "fib_fork", 0.5),
        Check {
            label: "fib_fork: grove / tokio".into(),
            value: grove_over(ws, "fib_fork", "tokio"),
            bound: Some(1.0),
            at_most: true,
            unit: "x",
        },
    ];
    // Only the targets of the workloads this run measured.
    checks.retain(|c| {
        let key = c.label.split(':').next().unwrap_or("");
        find(ws, key).is_some()
    });
    if let Some(c) = capacity {
        checks.push(Check {
            label: "1M parked green threads: GiB RSS".into(),
            value: c.green_gib_at(1_000_000),
            bound: Some(4.5),
            at_most: true,
            unit: "",
        });
    }
    let mut out = vec!["Targets of BENCHMARKS.md, from this run's medians".to_string()];
    out.extend(checks.iter().map(Check::line));
    if cores < 16 && ws.len() > 1 {
        out.push(format!(
            "  -     {:<40} needs 16 cores; this machine has {cores}",
            "scaling 1 -> 16 workers"
        ));
    }
    if !full {
        out.push(
            "  (quick mode: smaller sizes than the targets are defined at; --full for those)"
                .into(),
        );
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(52_345.0), "52,345");
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(312.4), "312");
        assert_eq!(fmt_num(31.24), "31.2");
        assert_eq!(fmt_num(3.124), "3.12");
        assert_eq!(fmt_ratio(0.456), "0.46x");
        assert_eq!(fmt_ratio(168.2), "168x");
    }

    #[test]
    fn check_lines() {
        let check = |value, bound| Check {
            label: "w: grove / Go".into(),
            value,
            bound,
            at_most: true,
            unit: "x",
        };
        assert!(check(Some(1.2), Some(1.5)).line().starts_with("  MET "));
        assert!(check(Some(2.0), Some(1.5)).line().contains("off by 1.33x"));
        let info = check(Some(0.8), None).line();
        assert!(
            info.starts_with("  info ") && info.contains("no target"),
            "{info}"
        );
        assert!(check(None, None).line().contains("not measured"));
    }
}
