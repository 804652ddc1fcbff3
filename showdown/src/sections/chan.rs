//! The channel section: pingpong0 on all workers and on one, the three
//! prodcons shapes, select2; each of pingpong0, prodcons and select2 also
//! with its communicating green threads split across workers
//! (`*_split`, against Go's natural twin: Go places its goroutines as it
//! likes), and prodcons and select2 as natural programs (`*_natural`,
//! `--natural`: the main green thread spawns producers and consumers and
//! joins them, no placement; every repetition's figure printed).

use grove_workloads::chans::Placement;
use grove_workloads::prodcons::{self, Shape};
use grove_workloads::{pingpong0, select2};

use super::{warm_of, Ctx};
use crate::plan::{human, per_op, Entry, Workload};

/// `pingpong0`: two tasks bounce a counter over two unbuffered channels,
/// on `ctx.workers` workers.
pub fn pingpong0(ctx: &Ctx) -> Workload {
    pingpong(ctx, false)
}

/// `pingpong0_1w`: the same on one worker (grove, tokio and Go only, as
/// may's worker count is fixed once per process).
pub fn pingpong0_1w(ctx: &Ctx) -> Workload {
    pingpong(ctx, true)
}

fn pingpong(ctx: &Ctx, one_worker: bool) -> Workload {
    let w = if one_worker { 1 } else { ctx.workers };
    let (n, n_std) = (ctx.sizes.rounds, ctx.sizes.rounds_std);
    let (rt, tk) = (ctx.grove(w), ctx.tokio(w));
    let mut entries =
        vec![
            Entry::new("grove", n, move |n| Ok(per_op(pingpong0::grove(&rt, n), n)))
                .note("grove::chan::bounded(0)"),
        ];
    entries.extend(ctx.go_entry("pingpong0", n, warm_of(n), w, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| Ok(per_op(pingpong0::tokio(&tk, n), n)))
            .note("mpsc::channel(1): tokio has no rendezvous channel"),
    );
    let mut notes = Vec::new();
    if one_worker {
        notes.push("may is left out: its worker count is set once per process".into());
    } else {
        entries.push(
            Entry::new("may", n, |n| Ok(per_op(pingpong0::may(n), n)))
                .note("may::sync::mpsc (unbounded: may has no bounded channel)"),
        );
        let std_note = |ch: &str| format!("{}, {} round trips", ch, human(n_std));
        entries.push(
            Entry::new("crossbeam (threads)", n_std, |n| {
                Ok(per_op(pingpong0::crossbeam(n), n))
            })
            .note(std_note("crossbeam bounded(0)")),
        );
        entries.push(
            Entry::new("std mpsc (threads)", n_std, |n| {
                Ok(per_op(pingpong0::std_mpsc(n), n))
            })
            .note(std_note("sync_channel(0)")),
        );
    }
    Workload {
        key: if one_worker {
            "pingpong0_1w"
        } else {
            "pingpong0"
        },
        what: format!(
            "two tasks bounce a counter over two unbuffered channels, {w} worker{}",
            if w == 1 { "" } else { "s" }
        ),
        unit: "ns/round trip",
        size: format!("{} round trips", human(n)),
        notes,
        entries,
        each_rep: false,
    }
}

/// `prodcons_cap0`: 1 producer / 1 consumer over an unbuffered channel.
pub fn prodcons_cap0(ctx: &Ctx) -> Workload {
    prodcons_shape(ctx, prodcons::CAP0)
}

/// `prodcons_cap128`: 1 producer / 1 consumer over capacity 128.
pub fn prodcons_cap128(ctx: &Ctx) -> Workload {
    prodcons_shape(ctx, prodcons::CAP128)
}

/// `prodcons_4p4c`: 4 producers / 4 consumers over capacity 128.
pub fn prodcons_4p4c(ctx: &Ctx) -> Workload {
    prodcons_shape(ctx, prodcons::FOUR_BY_FOUR)
}

/// The workload key of a prodcons shape.
fn prodcons_key(shape: Shape) -> &'static str {
    match (shape.producers, shape.cap) {
        (1, 0) => "prodcons_cap0",
        (1, _) => "prodcons_cap128",
        _ => "prodcons_4p4c",
    }
}

/// What a prodcons shape does, for the block's title.
fn prodcons_what(shape: Shape) -> String {
    let several = shape.consumers > 1;
    format!(
        "{} producer{} / {} consumer{} over one channel of capacity {}",
        shape.producers,
        if several { "s" } else { "" },
        shape.consumers,
        if several { "s" } else { "" },
        shape.cap
    )
}

fn prodcons_shape(ctx: &Ctx, shape: Shape) -> Workload {
    let n = ctx.sizes.messages;
    let n_std = if shape.cap == 0 {
        ctx.sizes.messages_std_cap0
    } else {
        n
    };
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let key = prodcons_key(shape);
    let several = shape.consumers > 1;
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(per_op(prodcons::grove(&rt, shape, n), n))
    })
    .note(format!("grove::chan::bounded({})", shape.cap))];
    entries.extend(ctx.go_entry(key, n, warm_of(n), ctx.workers, 1.0));
    let tokio_note = match (shape.cap, several) {
        (0, _) => "mpsc capacity 1: tokio has no capacity 0".to_string(),
        (_, true) => "consumers share the receiver behind a tokio Mutex".to_string(),
        (cap, false) => format!("mpsc capacity {cap}"),
    };
    entries.push(
        Entry::new("tokio", n, move |n| {
            Ok(per_op(prodcons::tokio(&tk, shape, n), n))
        })
        .note(tokio_note),
    );
    entries.push(
        Entry::new("may", n, move |n| Ok(per_op(prodcons::may(shape, n), n))).note(if several {
            "may::sync::mpmc, unbounded"
        } else {
            "may::sync::mpsc, unbounded"
        }),
    );
    let std_size = |what: &str| {
        if n_std < n {
            format!("{what}, {} messages", human(n_std))
        } else {
            what.to_string()
        }
    };
    entries.push(
        Entry::new("crossbeam (threads)", n_std, move |n| {
            Ok(per_op(prodcons::crossbeam(shape, n), n))
        })
        .note(std_size(&format!("bounded({})", shape.cap))),
    );
    let std_what = if several {
        format!("sync_channel({}), receiver behind a Mutex", shape.cap)
    } else {
        format!("sync_channel({})", shape.cap)
    };
    entries.push(
        Entry::new("std mpsc (threads)", n_std, move |n| {
            Ok(per_op(prodcons::std_mpsc(shape, n), n))
        })
        .note(std_size(&std_what)),
    );
    Workload {
        key,
        what: prodcons_what(shape),
        unit: "ns/msg",
        size: format!("{} messages", human(n)),
        notes: Vec::new(),
        entries,
        each_rep: false,
    }
}

/// `select2`: one task selects over two capacity-128 channels.
pub fn select2(ctx: &Ctx) -> Workload {
    let n = ctx.sizes.select;
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let mut entries = vec![
        Entry::new("grove", n, move |n| Ok(per_op(select2::grove(&rt, n), n)))
            .note("grove::select!"),
    ];
    entries.extend(ctx.go_entry("select2", n, warm_of(n), ctx.workers, 1.0));
    entries.push(
        Entry::new("tokio", n, move |n| Ok(per_op(select2::tokio(&tk, n), n)))
            .note("tokio::select!, mpsc capacity 128"),
    );
    entries.push(
        Entry::new("crossbeam (threads)", n, |n| {
            Ok(per_op(select2::crossbeam(n), n))
        })
        .note("crossbeam select!, bounded(128), OS threads"),
    );
    entries.push(
        Entry::new("may", n, |n| Ok(per_op(select2::may(n), n)))
            .warm(0)
            .note("may::select! over unbounded mpsc; known to lose messages"),
    );
    Workload {
        key: "select2",
        what: "one task selects over two capacity-128 channels fed by two producers".into(),
        unit: "ns/msg",
        size: format!("{} messages", human(n)),
        notes: Vec::new(),
        entries,
        each_rep: false,
    }
}

// ------------------------------------------------- split and natural --

/// What a spawned program's block needs besides its placement.
struct Spawned {
    /// The block's key.
    key: &'static str,
    /// Go's twin of the natural program (it serves the split row too: Go
    /// places its goroutines as it likes).
    go: &'static str,
    what: String,
    unit: &'static str,
    size: usize,
    size_label: String,
    /// Who sits where when split.
    split_note: &'static str,
}

/// One block of a spawned program: grove's green threads placed by
/// `placement`, beside Go's natural twin in the same run.
fn spawned(
    ctx: &Ctx,
    s: Spawned,
    placement: Placement,
    run: impl FnMut(usize) -> Result<f64, crate::plan::Fail> + 'static,
) -> Workload {
    let n = s.size;
    let grove = if ctx.workers < placement.workers_needed() {
        Entry::na(
            "grove",
            format!(
                "needs {} workers to split (this run has {})",
                placement.workers_needed(),
                ctx.workers
            ),
        )
    } else {
        Entry::new("grove", n, run).note(match placement {
            Placement::Split => s.split_note,
            Placement::Natural => "the main green thread spawns them all, then joins",
        })
    };
    let mut entries = vec![grove];
    entries.extend(
        ctx.go_entry(s.go, n, warm_of(n), ctx.workers, 1.0)
            .map(|e| {
                let note = format!("{}; the natural program, placed as Go likes", e.note);
                e.note(note)
            }),
    );
    let how = match placement {
        Placement::Split => {
            "split across workers (grove: Builder::on_worker; Go: its own placement)"
        }
        Placement::Natural => "the natural program (no placement)",
    };
    Workload {
        key: s.key,
        what: format!("{}; {how}", s.what),
        unit: s.unit,
        size: s.size_label,
        notes: Vec::new(),
        entries,
        each_rep: placement == Placement::Natural,
    }
}

/// `pingpong0_split`: the driver on worker 0, the echo on worker 1.
pub fn pingpong0_split(ctx: &Ctx) -> Workload {
    let n = ctx.sizes.rounds;
    let rt = ctx.grove(ctx.workers);
    let s = Spawned {
        key: "pingpong0_split",
        go: "pingpong0_natural",
        what: "two tasks bounce a counter over two unbuffered channels, spawned by main".into(),
        unit: "ns/round trip",
        size: n,
        size_label: format!("{} round trips", human(n)),
        split_note: "driver on worker 0, echo on worker 1",
    };
    spawned(ctx, s, Placement::Split, move |n| {
        Ok(per_op(
            pingpong0::grove_spawned(&rt, n, Placement::Split),
            n,
        ))
    })
}

fn prodcons_spawned(ctx: &Ctx, shape: Shape, placement: Placement) -> Workload {
    let n = ctx.sizes.messages;
    let rt = ctx.grove(ctx.workers);
    // The natural program's key is also its Go twin's name.
    let (split, natural) = match prodcons_key(shape) {
        "prodcons_cap0" => ("prodcons_cap0_split", "prodcons_cap0_natural"),
        "prodcons_cap128" => ("prodcons_cap128_split", "prodcons_cap128_natural"),
        _ => ("prodcons_4p4c_split", "prodcons_4p4c_natural"),
    };
    let s = Spawned {
        key: match placement {
            Placement::Split => split,
            Placement::Natural => natural,
        },
        go: natural,
        what: format!("{}, spawned by main", prodcons_what(shape)),
        unit: "ns/msg",
        size: n,
        size_label: format!("{} messages", human(n)),
        split_note: "producers on worker 0, consumers on worker 1",
    };
    spawned(ctx, s, placement, move |n| {
        Ok(per_op(prodcons::grove_spawned(&rt, shape, n, placement), n))
    })
}

/// `prodcons_cap0_split`: producer on worker 0, consumer on worker 1.
pub fn prodcons_cap0_split(ctx: &Ctx) -> Workload {
    prodcons_spawned(ctx, prodcons::CAP0, Placement::Split)
}

/// `prodcons_cap128_split`: producer on worker 0, consumer on worker 1.
pub fn prodcons_cap128_split(ctx: &Ctx) -> Workload {
    prodcons_spawned(ctx, prodcons::CAP128, Placement::Split)
}

/// `prodcons_4p4c_split`: producers on worker 0, consumers on worker 1.
pub fn prodcons_4p4c_split(ctx: &Ctx) -> Workload {
    prodcons_spawned(ctx, prodcons::FOUR_BY_FOUR, Placement::Split)
}

/// `prodcons_cap0_natural`: spawned by main, placed as the runtime likes.
pub fn prodcons_cap0_natural(ctx: &Ctx) -> Workload {
    prodcons_spawned(ctx, prodcons::CAP0, Placement::Natural)
}

/// `prodcons_cap128_natural`: spawned by main, placed as the runtime likes.
pub fn prodcons_cap128_natural(ctx: &Ctx) -> Workload {
    prodcons_spawned(ctx, prodcons::CAP128, Placement::Natural)
}

/// `prodcons_4p4c_natural`: spawned by main, placed as the runtime likes.
pub fn prodcons_4p4c_natural(ctx: &Ctx) -> Workload {
    prodcons_spawned(ctx, prodcons::FOUR_BY_FOUR, Placement::Natural)
}

fn select2_spawned(ctx: &Ctx, placement: Placement) -> Workload {
    let n = ctx.sizes.select;
    let rt = ctx.grove(ctx.workers);
    let s = Spawned {
        key: match placement {
            Placement::Split => "select2_split",
            Placement::Natural => "select2_natural",
        },
        go: "select2_natural",
        what: "one task selects over two capacity-128 channels fed by two producers, all spawned \
               by main"
            .into(),
        unit: "ns/msg",
        size: n,
        size_label: format!("{} messages", human(n)),
        split_note: "producers on worker 0, the selecting consumer on worker 1",
    };
    spawned(ctx, s, placement, move |n| {
        Ok(per_op(select2::grove_spawned(&rt, n, placement), n))
    })
}

/// `select2_split`: producers on worker 0, the selecting task on worker 1.
pub fn select2_split(ctx: &Ctx) -> Workload {
    select2_spawned(ctx, Placement::Split)
}

/// `select2_natural`: spawned by main, placed as the runtime likes.
pub fn select2_natural(ctx: &Ctx) -> Workload {
    select2_spawned(ctx, Placement::Natural)
}
