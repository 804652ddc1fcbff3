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

/// One row: name, median, min-max, ratio, the medians of the side
/// figures named `sides`, note.
fn row(e: &Entry, grove: Option<f64>, reps: usize, sides: &[String]) -> String {
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
    let side: String = sides
        .iter()
        .map(|name| {
            let v = e.side_median(name).map(fmt_num).unwrap_or_default();
            format!(" {v:>width$}", width = side_width(name))
        })
        .collect();
    format!(
        "  {:<21} {:>10} {:>21} {:>8}{side}  {}",
        e.name, median, range, ratio, note
    )
    .trim_end()
    .to_string()
}

/// The width of a side figure's column.
fn side_width(name: &str) -> usize {
    name.chars().count().max(9)
}

/// The side figures of `w`'s entries, in the order first recorded.
fn side_names(w: &Workload) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in w.entries.iter().flat_map(|e| &e.side) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// The block of one workload.
pub fn block(w: &Workload, reps: usize) -> String {
    let sides = side_names(w);
    let side_heads: String = sides
        .iter()
        .map(|name| format!(" {name:>width$}", width = side_width(name)))
        .collect();
    let better = if w.higher_is_better() {
        "higher is better"
    } else {
        "lower is better"
    };
    let medians = if sides.is_empty() {
        String::new()
    } else {
        format!("; {}: medians", sides.join(", "))
    };
    let mut out = vec![
        format!("{} - {}", w.key, w.what),
        format!(
            "  {}, {}; median of {reps}, min - max, x grove ({better}){medians}",
            w.unit, w.size
        ),
        format!(
            "  {:<21} {:>10} {:>21} {:>8}{side_heads}  {}",
            "implementation", "median", "min - max", "x grove", "notes"
        ),
    ];
    let grove = w.grove_median();
    out.extend(w.entries.iter().map(|e| row(e, grove, reps, &sides)));
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
            return format!("  -     {:<46} not measured in this run", self.label);
        };
        let Some(bound) = self.bound else {
            return format!(
                "  info  {:<46} {}{unit} (no target; for comparison)",
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
            "  {verdict} {:<46} {}{unit} (target {sign} {}{unit}){miss}",
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

/// The latest a grove echo server's ticker may wake, past its period,
/// for the ticker to count as ticking through the load: one period.
pub const TICK_LATE_BOUND_MS: f64 = 10.0;

/// The longest `responsive`'s round trip may take, in ms, with worker 0
/// held by a green thread that never yields: readiness for worker 1 must
/// come within the poller's backstop (the stall monitor polls when no
/// worker has for a whole tick of 25 ms: at most two ticks) plus slack.
pub const HELD_MAX_BOUND_MS: f64 = 60.0;

/// The I/O section's targets: echo requests/s at least the best of Go's
/// and tokio's and p99 at most Go's at 100, 1,000 and 10,000
/// connections; idle connections at most Go's memory; the grove server's
/// ticker ticking through the largest echo run; readiness unaffected by a
/// computing worker.
fn io_targets(ws: &[Workload]) -> Vec<Check> {
    use crate::sections::io;
    let mut checks = Vec::new();
    for key in ["echo_100", "echo_1000", "echo_10000"] {
        let w = find(ws, key);
        let rps = |name: &str| w.and_then(|w| w.entry(name)?.median());
        let best = [rps("Go"), rps("tokio")]
            .into_iter()
            .flatten()
            .reduce(f64::max);
        checks.push(Check {
            label: format!("{key}: grove / best of Go, tokio req/s"),
            value: rps("grove").zip(best).map(|(g, b)| g / b),
            bound: Some(1.0),
            at_most: false,
            unit: "x",
        });
        let p99 = |name: &str| w.and_then(|w| w.entry(name)?.side_median(io::P99));
        checks.push(Check {
            label: format!("{key}: grove p99 / Go p99"),
            value: p99("grove").zip(p99("Go")).map(|(g, go)| g / go),
            bound: Some(1.0),
            at_most: true,
            unit: "x",
        });
    }
    let kib = |name: &str| find(ws, "idle_conns").and_then(|w| w.entry(name)?.median());
    checks.push(Check {
        label: "idle_conns: grove / Go KiB per connection".into(),
        value: kib("grove").zip(kib("Go")).map(|(g, go)| g / go),
        bound: Some(1.0),
        at_most: true,
        unit: "x",
    });
    checks.push(Check {
        label: "idle_conns: grove KiB per connection".into(),
        value: kib("grove"),
        bound: None,
        at_most: true,
        unit: "",
    });
    // The ticker: the largest echo run of this mode, its worst repetition.
    if let Some(w) = io::ECHO.iter().rev().find_map(|(key, _)| find(ws, key)) {
        let worst = w
            .entry("grove")
            .and_then(|e| e.side(io::TICK_LATE)?.iter().copied().reduce(f64::max));
        checks.push(Check {
            label: format!("{}: grove ticker's latest tick, ms", w.key),
            value: worst,
            bound: Some(TICK_LATE_BOUND_MS),
            at_most: true,
            unit: "",
        });
    }
    let held = find(ws, "responsive").and_then(|w| w.entry(io::HELD));
    checks.push(Check {
        label: "responsive: worst round trip ms, worker 0 held".into(),
        value: held.and_then(|e| {
            let worst = e.side(io::MAX)?.iter().copied().reduce(f64::max)?;
            Some(worst / 1e3)
        }),
        bound: Some(HELD_MAX_BOUND_MS),
        at_most: true,
        unit: "",
    });
    checks.push(Check {
        label: "responsive: p99 µs, worker 0 held".into(),
        value: held.and_then(Entry::median),
        bound: None,
        at_most: true,
        unit: "",
    });
    checks.push(Check {
        label: "responsive: stalls, worker 0 held".into(),
        value: held.and_then(|e| Some(e.side(io::STALLS)?.iter().sum())),
        bound: Some(0.0),
        at_most: true,
        unit: "",
    });
    checks
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
        shown_vs_go(ws, "file_read"),
    ];
    checks.extend(io_targets(ws));
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
            "  -     {:<46} needs 16 cores; this machine has {cores}",
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
