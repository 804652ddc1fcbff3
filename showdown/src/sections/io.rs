//! The I/O section: a TCP echo server per implementation (grove, Go,
//! tokio, may, std::thread; a task per connection), driven by one load
//! generator in this process at 1, 100, 1,000 and 10,000 connections
//! (`echo_*`); the server memory an idle connection costs
//! (`idle_conns`, and in `--full` `idle_conns_most`, as many as the limits
//! allow); and whether grove's readiness reaches one worker's green
//! threads while the other worker computes (`responsive`).
//!
//! Every repetition starts a fresh server child (see `servers`) with the
//! run's worker count (Go: GOMAXPROCS), drives it with
//! `grove_workloads::echo::load` (one thread of this process: the server
//! and the load generator share the machine's cores), and stops it. The
//! open-descriptor limit (`ulimit -n`) is raised to the hard limit for the
//! run and restored ([`NofileGuard`]); where the hard limit or the
//! ephemeral port range leaves no room for a workload's connections, it
//! runs at what fits and says why.

use std::time::Duration;

use grove_test_support::NofileGuard;
use grove_workloads::echo::load::{self, Plan};
use grove_workloads::echo::server::{Imp, STD_THREAD_STACK, TICK};
use grove_workloads::util;

use super::Ctx;
use crate::plan::{human, Entry, Fail, Workload};
use crate::run::figure;
use crate::servers::{Kind, Server};

/// Descriptors left for everything but the connections (the process's
/// own files, pipes, the pollers).
const FD_HEADROOM: u64 = 512;

/// Ephemeral ports left unused (other programs on the machine).
const PORT_HEADROOM: u64 = 1_000;

/// Connections opened and closed on a fresh server before its memory is
/// first read (its accept path, pools and worker threads warmed up).
const IDLE_WARM_CONNS: usize = 64;

/// Pause before each reading of a server's memory, so that the last
/// connections' tasks have gone back to waiting.
const SETTLE: Duration = Duration::from_millis(200);

/// The side figures of the echo rows.
pub const P50: &str = "p50 µs";
/// See [`P50`].
pub const P99: &str = "p99 µs";
/// The grove server's ticker: its latest wake-up, past its period.
pub const TICK_LATE: &str = "tick late ms";
/// `responsive`: the longest round trip.
pub const MAX: &str = "max µs";
/// `responsive`: pings with no answer within a second.
pub const STALLS: &str = "stalls";

/// The echo workloads, by connections.
pub const ECHO: [(&str, usize); 4] = [
    ("echo_1", 1),
    ("echo_100", 100),
    ("echo_1000", 1_000),
    ("echo_10000", 10_000),
];

/// `echo_1`: one connection.
pub fn echo_1(ctx: &Ctx) -> Workload {
    echo(ctx, 0)
}

/// `echo_100`.
pub fn echo_100(ctx: &Ctx) -> Workload {
    echo(ctx, 1)
}

/// `echo_1000`.
pub fn echo_1000(ctx: &Ctx) -> Workload {
    echo(ctx, 2)
}

/// `echo_10000` (`--full`).
pub fn echo_10000(ctx: &Ctx) -> Workload {
    echo(ctx, 3)
}

/// The servers, in the table's order: name, kind, note; `Err` with why
/// one cannot run `conns` connections.
fn servers(ctx: &Ctx, conns: usize) -> Vec<(&'static str, Result<Kind, String>, String)> {
    let w = ctx.workers;
    let go = match &ctx.go {
        Some(go) => Ok(Kind::Go(go.clone())),
        None => Err("Go not here".to_string()),
    };
    let go_note = ctx.go.as_ref().map_or(String::new(), |g| {
        format!("{}, GOMAXPROCS={w}, a goroutine per connection", g.version)
    });
    let budget = util::may_budget();
    let may = if conns + 16 > budget {
        Err(format!(
            "{} coroutines do not fit under vm.max_map_count (room for about {}; may maps every \
             stack at spawn)",
            human(conns),
            human(budget)
        ))
    } else {
        Ok(Kind::Rust(Imp::May))
    };
    vec![
        (
            "grove",
            Ok(Kind::Rust(Imp::Grove)),
            "a green thread per connection, grove::net".into(),
        ),
        ("Go", go, go_note),
        (
            "tokio",
            Ok(Kind::Rust(Imp::Tokio)),
            "a task per connection, tokio::net".into(),
        ),
        ("may", may, "a coroutine per connection, may::net".into()),
        (
            "std::thread",
            Ok(Kind::Rust(Imp::StdThread)),
            format!(
                "an OS thread per connection ({} KiB stacks), std::net",
                STD_THREAD_STACK / 1024
            ),
        ),
    ]
}

/// The entries of an I/O workload: each server's run, or why it cannot.
fn entries(
    ctx: &Ctx,
    conns: usize,
    run: impl Fn(&Kind, usize, usize) -> Result<f64, Fail> + Clone + 'static,
) -> Vec<Entry> {
    let workers = ctx.workers;
    servers(ctx, conns)
        .into_iter()
        .filter(|(name, kind, _)| kind.is_ok() || *name != "Go")
        .map(|(name, kind, note)| match kind {
            Ok(kind) => {
                let run = run.clone();
                Entry::new(name, conns, move |n| run(&kind, workers, n))
                    .warm(0)
                    .note(note)
            }
            Err(why) => Entry::na(name, why),
        })
        .collect()
}

/// How many connections this machine's limits leave room for, and the
/// limit that sets it.
fn room() -> (usize, String) {
    let hard = grove_test_support::nofile().map_or(1024, |(_, hard)| hard);
    let by_fds = hard.saturating_sub(FD_HEADROOM);
    let ports = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut f = s.split_whitespace().map(str::parse::<u64>);
            match (f.next(), f.next()) {
                (Some(Ok(lo)), Some(Ok(hi))) if hi >= lo => Some(hi - lo + 1),
                _ => None,
            }
        })
        .unwrap_or(28_232);
    let by_ports = ports.saturating_sub(PORT_HEADROOM);
    if by_fds <= by_ports {
        (
            by_fds as usize,
            format!(
                "the open-file hard limit (ulimit -Hn) is {}",
                human(hard as usize)
            ),
        )
    } else {
        (
            by_ports as usize,
            format!(
                "the ephemeral port range has {} ports",
                human(ports as usize)
            ),
        )
    }
}

/// The note for a workload whose connections came down to fit.
fn scaled_note(wanted: usize, got: usize, why: &str) -> Option<String> {
    (got < wanted).then(|| format!("{} connections, not {}: {why}", human(got), human(wanted)))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Raises this process's open-file limit for `conns` connections (server
/// children inherit it).
fn raise_nofile(conns: usize) -> Result<NofileGuard, Fail> {
    NofileGuard::raise_to(conns as u64 + FD_HEADROOM)
        .map_err(|e| Fail::Failed(format!("cannot raise the open-file limit: {e}")))
}

/// One echo repetition: a fresh server, the load, the server stopped.
fn echo_once(
    kind: &Kind,
    workers: usize,
    conns: usize,
    warm: Duration,
    window: Duration,
) -> Result<f64, Fail> {
    let _nofile = raise_nofile(conns)?;
    let server = Server::start(kind, workers)?;
    let out = load::run(
        server.addr,
        Plan {
            conns,
            warm,
            window,
        },
    )
    .map_err(|e| server.failure(&e))?;
    let ticker = server.finish()?;
    figure(P50, micros(out.p50));
    figure(P99, micros(out.p99));
    figure(TICK_LATE, ticker.worst_late.as_secs_f64() * 1e3);
    Ok(out.per_sec())
}

fn echo(ctx: &Ctx, which: usize) -> Workload {
    let (key, wanted) = ECHO[which];
    let window = Duration::from_millis(ctx.sizes.echo_ms as u64);
    let warm = (window / 4).max(Duration::from_millis(100));
    let (most, why) = room();
    let conns = wanted.min(most);
    let mut notes = vec![
        format!(
            "each repetition: a fresh server process, {} connections opened and answered once, \
             {} ms of load, then {} ms counted; every answer checked byte for byte",
            human(conns),
            warm.as_millis(),
            window.as_millis()
        ),
        format!(
            "the load generator is one thread of this program (epoll); it and the server share \
             this machine's {} cores",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        format!(
            "p50/p99: round trip of a request as the load generator sees it; tick late: the \
             server's ticker task (sleeps {} ms in a loop), its latest wake-up",
            TICK.as_millis()
        ),
    ];
    notes.extend(scaled_note(wanted, conns, &why));
    Workload {
        key,
        what: format!(
            "TCP echo, a task per connection reading up to 4 KiB and writing it back; {} \
             connection{} each with one 64-byte request in flight",
            human(conns),
            if conns == 1 { "" } else { "s" }
        ),
        unit: "requests/s",
        size: format!("{} connections", human(conns)),
        notes,
        entries: entries(ctx, conns, move |kind, workers, conns| {
            echo_once(kind, workers, conns, warm, window)
        }),
        each_rep: false,
    }
}

/// One idle_conns repetition: KiB of server memory per idle connection.
fn idle_once(kind: &Kind, workers: usize, conns: usize) -> Result<f64, Fail> {
    let _nofile = raise_nofile(conns)?;
    let server = Server::start(kind, workers)?;
    drop(load::hold_idle(server.addr, IDLE_WARM_CONNS).map_err(|e| server.failure(&e))?);
    std::thread::sleep(SETTLE);
    let base = server.rss_bytes()?;
    let mut idle = load::hold_idle(server.addr, conns).map_err(|e| server.failure(&e))?;
    std::thread::sleep(SETTLE);
    idle.check_quiet().map_err(|e| server.failure(&e))?;
    let held = server.rss_bytes()?;
    figure("open ms", idle.opened_in().as_secs_f64() * 1e3);
    drop(idle);
    server.finish()?;
    Ok((held as f64 - base as f64) / 1024.0 / conns as f64)
}

fn idle(ctx: &Ctx, key: &'static str, wanted: usize) -> Workload {
    let (most, why) = room();
    let conns = wanted.min(most);
    let mut notes = vec![
        "each repetition: a fresh server process; its resident memory (/proc/PID/statm) before \
         and after the connections were opened, each answered once, then left idle; kernel \
         socket buffers are not in it"
            .to_string(),
    ];
    notes.extend(scaled_note(wanted, conns, &why));
    let mut entries = entries(ctx, conns, idle_once);
    let left_out = if key != "idle_conns_most" {
        None
    } else if wanted == 0 {
        Some("not in this mode (--full)".to_string())
    } else if conns <= ctx.sizes.idle_conns {
        Some(format!(
            "no room beyond idle_conns' {}: {why}",
            human(ctx.sizes.idle_conns)
        ))
    } else {
        None
    };
    if let Some(reason) = left_out {
        for e in &mut entries {
            *e = Entry::na(&e.name, reason.clone());
        }
    }
    Workload {
        key,
        what: format!(
            "{} idle connections to an echo server, each answered once; server memory per \
             connection",
            human(conns)
        ),
        unit: "KiB/conn",
        size: format!("{} connections", human(conns)),
        notes,
        entries,
        each_rep: false,
    }
}

/// `idle_conns`.
pub fn idle_conns(ctx: &Ctx) -> Workload {
    idle(ctx, "idle_conns", ctx.sizes.idle_conns)
}

/// `idle_conns_most` (`--full`): as many idle connections as the limits
/// allow, up to its size.
pub fn idle_conns_most(ctx: &Ctx) -> Workload {
    idle(ctx, "idle_conns_most", ctx.sizes.idle_conns_most)
}

/// Readers on worker 1 in `responsive`.
const READERS: usize = 4;
/// Hog episodes per `responsive` measurement.
const EPISODES: usize = 4;

/// The name of `responsive`'s second row.
pub const HELD: &str = "grove, worker 0 held";

/// `responsive`: readiness round trips to green threads on worker 1, with
/// worker 0 free and with worker 0 held by a CPU-bound green thread.
pub fn responsive(ctx: &Ctx) -> Workload {
    let (pings, limit) = (ctx.sizes.pings, ctx.child_limit);
    let run = move |hog: bool| {
        move |pings: usize| {
            let r = crate::child::responsive(hog, READERS, pings, EPISODES, limit)?;
            figure(P50, r.p50_us);
            figure(MAX, r.max_us);
            figure(STALLS, r.stalls as f64);
            Ok(r.p99_us)
        }
    };
    Workload {
        key: "responsive",
        what: format!(
            "grove, 2 workers: {READERS} green threads on worker 1 answer pings from an OS \
             thread (gaps of 0-3 ms); worker 0 free, or held by a green thread that computes \
             without yielding"
        ),
        unit: "µs p99 round trip",
        size: format!("{} pings", human(pings)),
        notes: vec![format!(
            "a stall: a ping with no answer within {} s (readiness left for worker 0 to poll)",
            grove_workloads::responsive::ANSWER_LIMIT.as_secs()
        )],
        entries: vec![
            Entry::new("grove", pings, run(false))
                .warm(0)
                .note("worker 0 free"),
            Entry::new(HELD, pings, run(true)).warm(0).note(format!(
                "{EPISODES} episodes, each starting a CPU-bound green thread on worker 0"
            )),
        ],
        each_rep: false,
    }
}
