//! `--json FILE`: the raw figures, every repetition of every
//! implementation, as JSON (serde). The document's shape: `mode`,
//! `repetitions`, `workers`, `machine`, `go` (its version, or null),
//! `workloads` (each with its `implementations`, their `values`,
//! `failures` and, where recorded, `side` figures) and `capacity` (or
//! null).

use serde::Serialize;

use crate::capacity::{Capacity, Probe};
use crate::machine::Machine;
use crate::plan::{Entry, Fail, Workload};

/// What the file holds.
#[derive(Serialize)]
pub struct Run<'a> {
    /// "quick" or "full".
    pub mode: &'a str,
    /// Repetitions.
    #[serde(rename = "repetitions")]
    pub reps: usize,
    /// Workers of every runtime.
    pub workers: usize,
    /// The machine.
    #[serde(serialize_with = "machine")]
    pub machine: &'a Machine,
    /// Go's version, if Go ran.
    pub go: Option<&'a str>,
    /// The workloads run.
    #[serde(serialize_with = "workloads")]
    pub workloads: &'a [Workload],
    /// The capacity probes, if run.
    #[serde(serialize_with = "capacity")]
    pub capacity: Option<&'a Capacity>,
}

#[derive(Serialize)]
struct MachineOut<'a> {
    cores: usize,
    cpu: &'a str,
    kernel: &'a str,
    max_map_count: Option<u64>,
    threads_max: Option<u64>,
    pid_max: Option<u64>,
    ulimit_u: Option<u64>,
    mem_total_bytes: Option<u64>,
    date: &'a str,
}

fn machine<S: serde::Serializer>(m: &&Machine, s: S) -> Result<S::Ok, S::Error> {
    MachineOut {
        cores: m.cores,
        cpu: &m.cpu,
        kernel: &m.kernel,
        max_map_count: m.max_map_count,
        threads_max: m.threads_max,
        pid_max: m.pid_max,
        ulimit_u: m.nproc_limit,
        mem_total_bytes: m.mem_total,
        date: &m.date,
    }
    .serialize(s)
}

#[derive(Serialize)]
struct WorkloadOut<'a> {
    workload: &'a str,
    what: &'a str,
    unit: &'a str,
    size: &'a str,
    notes: &'a [String],
    implementations: Vec<EntryOut<'a>>,
}

#[derive(Serialize)]
struct EntryOut<'a> {
    name: &'a str,
    size: usize,
    note: &'a str,
    per: f64,
    values: &'a [f64],
    median: Option<f64>,
    failures: Vec<FailOut<'a>>,
    not_applicable: Option<&'a str>,
    /// Side figures by name (the echo rows' `p50 µs`, `p99 µs`): one
    /// value per successful repetition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    side: Vec<SideOut<'a>>,
}

#[derive(Serialize)]
struct SideOut<'a> {
    name: &'a str,
    values: &'a [f64],
}

#[derive(Serialize)]
struct FailOut<'a> {
    kind: &'static str,
    message: &'a str,
}

impl<'a> From<&'a Fail> for FailOut<'a> {
    fn from(f: &'a Fail) -> FailOut<'a> {
        FailOut {
            kind: match f {
                Fail::Wrong(_) => "wrong",
                Fail::Failed(_) => "failed",
            },
            message: f.message(),
        }
    }
}

impl<'a> From<&'a Entry> for EntryOut<'a> {
    fn from(e: &'a Entry) -> EntryOut<'a> {
        EntryOut {
            name: &e.name,
            size: e.size,
            note: &e.note,
            per: e.per,
            values: &e.values,
            median: e.median(),
            failures: e.fails.iter().map(FailOut::from).collect(),
            not_applicable: e.na.as_deref(),
            side: e
                .side
                .iter()
                .map(|(name, values)| SideOut { name, values })
                .collect(),
        }
    }
}

fn workloads<S: serde::Serializer>(ws: &&[Workload], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ws.iter().map(|w| WorkloadOut {
        workload: w.key,
        what: &w.what,
        unit: w.unit,
        size: &w.size,
        notes: &w.notes,
        implementations: w.entries.iter().map(EntryOut::from).collect(),
    }))
}

#[derive(Serialize)]
struct PointOut {
    tasks: usize,
    rss_bytes: u64,
    memavailable_drop_bytes: i64,
    seconds: f64,
}

#[derive(Serialize)]
struct ProbeOut<'a> {
    points: Vec<PointOut>,
    stopped_by: &'a str,
    notes: &'a [String],
}

impl<'a> From<&'a Probe> for ProbeOut<'a> {
    fn from(p: &'a Probe) -> ProbeOut<'a> {
        ProbeOut {
            points: p
                .points
                .iter()
                .map(|pt| PointOut {
                    tasks: pt.n,
                    rss_bytes: pt.rss,
                    memavailable_drop_bytes: pt.sys,
                    seconds: pt.secs,
                })
                .collect(),
            stopped_by: &p.stop,
            notes: &p.notes,
        }
    }
}

#[derive(Serialize)]
struct CapacityOut<'a> {
    green_threads: ProbeOut<'a>,
    os_threads: ProbeOut<'a>,
    go_kib_per_goroutine: &'a [(usize, f64)],
}

fn capacity<S: serde::Serializer>(c: &Option<&Capacity>, s: S) -> Result<S::Ok, S::Error> {
    c.map(|c| CapacityOut {
        green_threads: ProbeOut::from(&c.green),
        os_threads: ProbeOut::from(&c.threads),
        go_kib_per_goroutine: &c.go,
    })
    .serialize(s)
}

/// The document.
pub fn render(r: &Run) -> String {
    let mut text = serde_json::to_string_pretty(r).expect("the figures serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_serialises_with_its_figures() {
        let machine = Machine::probe();
        let mut entry = Entry::new("grove", 10, |_| Ok(0.0));
        entry.values = vec![1.5, 2.5];
        entry.push_side("p99 µs".into(), 40.0);
        entry.push_side("p99 µs".into(), 42.0);
        entry
            .fails
            .push(Fail::Wrong("WRONG RESULT \"quoted\"".into()));
        let w = Workload {
            key: "pingpong0",
            what: "w".into(),
            unit: "ns/round trip",
            size: "10 round trips".into(),
            notes: vec![],
            entries: vec![entry],
            each_rep: false,
        };
        let text = render(&Run {
            mode: "quick",
            reps: 2,
            workers: 2,
            machine: &machine,
            go: None,
            workloads: std::slice::from_ref(&w),
            capacity: None,
        });
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(v["repetitions"], 2);
        let imp = &v["workloads"][0]["implementations"][0];
        assert_eq!(imp["values"], serde_json::json!([1.5, 2.5]));
        assert_eq!(imp["median"], 2.0);
        assert_eq!(imp["failures"][0]["kind"], "wrong");
        assert_eq!(imp["failures"][0]["message"], "WRONG RESULT \"quoted\"");
        assert_eq!(imp["side"][0]["name"], "p99 µs");
        assert_eq!(imp["side"][0]["values"], serde_json::json!([40.0, 42.0]));
        assert!(v["capacity"].is_null() && v["go"].is_null());
    }
}
