//! `--json FILE`: the raw figures, every repetition of every
//! implementation, written by hand (no serde in the build).

use std::fmt::Write as _;

use super::capacity::{Capacity, Probe};
use super::machine::Machine;
use super::plan::{Fail, Workload};

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    format!("[{}]", items.iter().map(f).collect::<Vec<_>>().join(", "))
}

fn fail(f: &Fail) -> String {
    let kind = match f {
        Fail::Wrong(_) => "wrong",
        Fail::Failed(_) => "failed",
    };
    format!(
        "{{\"kind\": {}, \"message\": {}}}",
        string(kind),
        string(f.message())
    )
}

fn workload(w: &Workload) -> String {
    let entries = list(&w.entries, |e| {
        format!(
            "{{\"name\": {}, \"size\": {}, \"note\": {}, \"per\": {}, \"values\": {}, \
             \"median\": {}, \"failures\": {}, \"not_applicable\": {}}}",
            string(&e.name),
            e.size,
            string(&e.note),
            number(e.per),
            list(&e.values, |v| number(*v)),
            e.median().map_or_else(|| "null".into(), number),
            list(&e.fails, fail),
            e.na.as_deref().map_or_else(|| "null".into(), string)
        )
    });
    format!(
        "{{\"workload\": {}, \"what\": {}, \"unit\": {}, \"size\": {}, \"notes\": {}, \
         \"implementations\": {entries}}}",
        string(w.key),
        string(&w.what),
        string(w.unit),
        string(&w.size),
        list(&w.notes, |n| string(n))
    )
}

fn probe(p: &Probe) -> String {
    let points = list(&p.points, |pt| {
        format!(
            "{{\"tasks\": {}, \"rss_bytes\": {}, \"memavailable_drop_bytes\": {}, \"seconds\": {}}}",
            pt.n,
            pt.rss,
            pt.sys,
            number(pt.secs)
        )
    });
    format!(
        "{{\"points\": {points}, \"stopped_by\": {}, \"notes\": {}}}",
        string(&p.stop),
        list(&p.notes, |n| string(n))
    )
}

fn capacity(c: &Capacity) -> String {
    format!(
        "{{\"green_threads\": {}, \"os_threads\": {}, \"go_kib_per_goroutine\": {}}}",
        probe(&c.green),
        probe(&c.threads),
        list(&c.go, |(n, k)| format!("[{n}, {}]", number(*k)))
    )
}

/// What the file holds.
pub struct Run<'a> {
    /// "quick" or "full".
    pub mode: &'a str,
    /// Repetitions.
    pub reps: usize,
    /// Workers of every runtime.
    pub workers: usize,
    /// The machine.
    pub machine: &'a Machine,
    /// Go's version, if Go ran.
    pub go: Option<&'a str>,
    /// The workloads run.
    pub workloads: &'a [Workload],
    /// The capacity probes, if run.
    pub capacity: Option<&'a Capacity>,
}

/// The document.
pub fn render(r: &Run) -> String {
    let m = r.machine;
    let opt = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    let machine = format!(
        "{{\"cores\": {}, \"cpu\": {}, \"kernel\": {}, \"max_map_count\": {}, \
         \"threads_max\": {}, \"pid_max\": {}, \"ulimit_u\": {}, \"mem_total_bytes\": {}, \"date\": {}}}",
        m.cores,
        string(&m.cpu),
        string(&m.kernel),
        opt(m.max_map_count),
        opt(m.threads_max),
        opt(m.pid_max),
        opt(m.nproc_limit),
        opt(m.mem_total),
        string(&m.date)
    );
    format!(
        "{{\n\"mode\": {},\n\"repetitions\": {},\n\"workers\": {},\n\"machine\": {machine},\n\
         \"go\": {},\n\"workloads\": [\n{}\n],\n\"capacity\": {}\n}}\n",
        string(r.mode),
        r.reps,
        r.workers,
        r.go.map_or_else(|| "null".into(), string),
        r.workloads
            .iter()
            .map(workload)
            .collect::<Vec<_>>()
            .join(",\n"),
        r.capacity.map_or_else(|| "null".into(), capacity)
    )
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn escapes() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
