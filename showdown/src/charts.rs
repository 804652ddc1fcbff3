//! "The showdown": SVG charts in `target/showdown/` — memory per task
//! against the number of live tasks, spawn+join time against N, the
//! channel workloads' ratios to grove as bars, and echo requests per
//! second against connections. plotters with only its SVG
//! backend (text is laid out by the viewer, no font stack in the build).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use grove_workloads::sizes::Sizes;

use crate::capacity::Capacity;
use crate::plan::{human, Workload};
use crate::report::fmt_num;
use crate::run::{run_workload, Progress};
use crate::sections::{tasks, Ctx};

type Chart<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws one chart into the file it is given.
type Draw<'a> = &'a dyn Fn(&Path) -> Result<(), String>;

/// A plotters error as text.
fn text<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The colour of an implementation, the same in every chart.
fn colour(name: &str) -> RGBColor {
    match name {
        "grove" => RGBColor(0x2e, 0x7d, 0x32),
        "grove, join each" => RGBColor(0x81, 0xc7, 0x84),
        "Go" => RGBColor(0x00, 0x89, 0xb8),
        "tokio" => RGBColor(0xc6, 0x28, 0x28),
        "may" => RGBColor(0x8e, 0x24, 0xaa),
        "std::thread" | "OS threads" => RGBColor(0x42, 0x42, 0x42),
        "crossbeam (threads)" => RGBColor(0xef, 0x6c, 0x00),
        "std mpsc (threads)" => RGBColor(0x79, 0x55, 0x48),
        _ => RGBColor(0x9e, 0x9e, 0x9e),
    }
}

/// A log-log or log-linear line chart of named series of (x, y) points.
fn lines(
    root: &Chart,
    caption: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[(String, Vec<(f64, f64)>)],
    log_y: bool,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(text)?;
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, 0f64, 0f64);
    let mut y0 = f64::MAX;
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x1 <= 0.0 {
        return Err("no points to draw".into());
    }
    let xs = (x0 * 0.8)..(x1 * 1.25);
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(caption, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|x| human(x.round() as usize))
                .y_label_formatter(&|y| fmt_num(*y))
                .draw()
                .map_err(text)?;
            for (name, points) in series {
                let c = if name.contains("kernel") {
                    RGBColor(0xa0, 0xa0, 0xa0)
                } else {
                    colour(name.split(" (").next().unwrap_or(name))
                };
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
                    .map_err(text)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(text)?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(text)?;
        }};
    }
    if log_y {
        let ys = (y0 * 0.7).max(1e-3)..(y1 * 1.5);
        draw!(builder
            .build_cartesian_2d(xs.log_scale(), ys.log_scale())
            .map_err(text)?);
    } else {
        draw!(builder
            .build_cartesian_2d(xs.log_scale(), 0f64..(y1 * 1.15))
            .map_err(text)?);
    }
    root.present().map_err(text)
}

/// Memory per task against live tasks: green threads, OS threads, Go.
fn memory_chart(path: &Path, c: &Capacity) -> Result<(), String> {
    let per = |p: &crate::capacity::Point, bytes: f64| (p.n as f64, bytes / 1024.0 / p.n as f64);
    let mut series = vec![
        (
            "grove (RSS)".to_string(),
            c.green
                .points
                .iter()
                .map(|p| per(p, p.rss as f64))
                .collect(),
        ),
        (
            "OS threads (RSS)".to_string(),
            c.threads
                .points
                .iter()
                .map(|p| per(p, p.rss as f64))
                .collect(),
        ),
        (
            "OS threads (RSS + kernel, MemAvailable drop)".to_string(),
            c.threads
                .points
                .iter()
                .map(|p| per(p, p.sys.max(0) as f64))
                .collect(),
        ),
    ];
    if !c.go.is_empty() {
        let go = c.go.iter().map(|&(n, k)| (n as f64, k)).collect();
        series.push(("Go (RSS)".to_string(), go));
    }
    series.retain(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty());
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    lines(
        &root,
        "Memory per blocked task, by number of live tasks",
        ("live tasks", "KiB per task"),
        &series,
        false,
    )
}

/// Runs spawn_join at 1k, 10k and 100k tasks (OS threads to 10k) and
/// returns each implementation's (N, ns per task) medians.
pub fn spawn_sweep(ctx: &Ctx, progress: &Progress) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for n in [1_000, 10_000, 100_000] {
        let sized = Ctx {
            sizes: Sizes {
                spawn: n,
                spawn_std: n.min(10_000),
                ..ctx.sizes
            },
            workers: ctx.workers,
            go: ctx.go.clone(),
            child_limit: ctx.child_limit,
        };
        let mut w = tasks::spawn_join(&sized);
        w.key = "spawn_join (chart)";
        run_workload(&mut w, 3, progress);
        for e in &w.entries {
            let Some(m) = e.median() else { continue };
            let point = (e.size as f64, m);
            match series.iter_mut().find(|(name, _)| *name == e.name) {
                Some((_, pts)) if pts.iter().any(|p| p.0 == point.0) => {}
                Some((_, pts)) => pts.push(point),
                None => series.push((e.name.clone(), vec![point])),
            }
        }
    }
    series
}

fn spawn_chart(path: &Path, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    lines(
        &root,
        "spawn + join: time per task, by number of tasks",
        ("tasks spawned, then joined", "ns per task (log)"),
        series,
        true,
    )
}

/// The channel workloads' ratios to grove, as grouped bars (log scale).
fn ratio_chart(path: &Path, ws: &[Workload]) -> Result<(), String> {
    let keys = [
        "pingpong0",
        "pingpong0_split",
        "pingpong0_1w",
        "prodcons_cap0",
        "prodcons_cap0_split",
        "prodcons_cap128",
        "prodcons_cap128_split",
        "prodcons_4p4c",
        "prodcons_4p4c_split",
        "select2",
        "select2_split",
    ];
    let groups: Vec<&Workload> = keys
        .iter()
        .filter_map(|k| ws.iter().find(|w| w.key == *k))
        .collect();
    let mut names: Vec<String> = Vec::new();
    for w in &groups {
        for e in w.entries.iter().filter(|e| e.median().is_some()) {
            if !names.contains(&e.name) {
                names.push(e.name.clone());
            }
        }
    }
    let bars: Vec<(usize, usize, f64)> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, w)| {
            names
                .iter()
                .enumerate()
                .filter_map(move |(i, name)| Some((g, i, w.ratio_to_grove(name)?)))
        })
        .collect();
    if bars.is_empty() {
        return Err("no channel workloads measured".into());
    }
    // Room above the tallest bar for the legend.
    let top = bars.iter().map(|b| b.2).fold(1.0, f64::max) * 12.0;
    let bottom = bars.iter().map(|b| b.2).fold(0.5, f64::min) * 0.5;
    let root = SVGBackend::new(path, (1500, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let labels: Vec<&str> = groups.iter().map(|w| w.key).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Channel workloads: time relative to grove (1 = grove; above 1, grove is faster)",
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..groups.len() as f64, (bottom..top).log_scale())
        .map_err(text)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            let centred = (x - x.floor() - 0.5).abs() < 0.01;
            labels
                .get(i)
                .filter(|_| centred)
                .map_or(String::new(), |s| s.to_string())
        })
        .y_desc("x grove (log)")
        .y_label_formatter(&|y| fmt_num(*y))
        .draw()
        .map_err(text)?;
    let width = 0.8 / names.len() as f64;
    for (i, name) in names.iter().enumerate() {
        let c = colour(name);
        let rects = bars.iter().filter(|b| b.1 == i).map(|&(g, _, r)| {
            let x = g as f64 + 0.1 + i as f64 * width;
            Rectangle::new([(x, bottom), (x + width * 0.9, r)], c.filled())
        });
        chart
            .draw_series(rects)
            .map_err(text)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(text)?;
    root.present().map_err(text)
}

/// Echo requests per second against connections, every implementation
/// (the `echo_*` workloads' medians).
fn echo_chart(path: &Path, ws: &[Workload]) -> Result<(), String> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (key, _) in crate::sections::io::ECHO {
        let Some(w) = ws.iter().find(|w| w.key == key) else {
            continue;
        };
        for e in &w.entries {
            let Some(m) = e.median() else { continue };
            let point = (e.size as f64, m);
            match series.iter_mut().find(|(name, _)| *name == e.name) {
                Some((_, pts)) => pts.push(point),
                None => series.push((e.name.clone(), vec![point])),
            }
        }
    }
    if series.is_empty() {
        return Err("no echo workload measured".into());
    }
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    lines(
        &root,
        "TCP echo: requests per second, by connections (64-byte requests, one in flight each)",
        ("connections", "requests/s"),
        &series,
        false,
    )
}

/// Writes the charts into `dir`; returns the files written and the
/// reasons for any left out.
pub fn write(
    dir: &Path,
    ws: &[Workload],
    capacity: Option<&Capacity>,
    spawn: &[(String, Vec<(f64, f64)>)],
) -> (Vec<PathBuf>, Vec<String>) {
    let (mut done, mut skipped) = (Vec::new(), Vec::new());
    if let Err(e) = std::fs::create_dir_all(dir) {
        skipped.push(format!("cannot create {}: {e}", dir.display()));
        return (done, skipped);
    }
    let memory = |p: &Path| match capacity {
        Some(c) => memory_chart(p, c),
        None => Err("needs the capacity probes (--full, or --only capacity --charts)".into()),
    };
    let spawn_n = |p: &Path| spawn_chart(p, spawn);
    let ratios = |p: &Path| ratio_chart(p, ws);
    let echo = |p: &Path| echo_chart(p, ws);
    let all: [(&str, Draw); 4] = [
        ("memory_per_task.svg", &memory),
        ("spawn_join_by_n.svg", &spawn_n),
        ("channel_ratios.svg", &ratios),
        ("echo_by_conns.svg", &echo),
    ];
    for (file, draw) in all {
        let path = dir.join(file);
        match draw(&path) {
            Ok(()) => done.push(path),
            Err(e) => skipped.push(format!("{file}: {e}")),
        }
    }
    (done, skipped)
}
