//! The channel workloads (pingpong0 on all workers and on one, the three
//! prodcons shapes, select2), each built with its implementations.

use grove_benches::prodcons::{self, Shape};
use grove_benches::{pingpong0, select2};

use super::go;
use super::plan::{human, per_op, Entry, Workload};
use super::suite::Ctx;

/// `pingpong0`: two tasks bounce a counter over two unbuffered channels;
/// on `ctx.workers` workers, or on one (`one_worker`: grove, tokio and Go
/// only, as may's worker count is fixed once per process).
pub fn pingpong0(ctx: &Ctx, one_worker: bool) -> Workload {
    let w = if one_worker { 1 } else { ctx.workers };
    let (n, n_std) = (ctx.sizes.rounds, ctx.sizes.rounds_std);
    let (rt, tk) = (ctx.grove(w), ctx.tokio(w));
    let mut entries =
        vec![
            Entry::new("grove", n, move |n| Ok(per_op(pingpong0::grove(&rt, n), n)))
                .note("grove::chan::bounded(0)"),
        ];
    entries.extend(ctx.go_entry("pingpong0", go::scale(n, pingpong0::ROUNDS), w, 1.0));
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
    }
}

/// `prodcons_cap0`, `prodcons_cap128`, `prodcons_4p4c`.
pub fn prodcons(ctx: &Ctx, shape: Shape) -> Workload {
    let n = ctx.sizes.messages;
    let n_std = if shape.cap == 0 {
        ctx.sizes.messages_std_cap0
    } else {
        n
    };
    let (rt, tk) = (ctx.grove(ctx.workers), ctx.tokio(ctx.workers));
    let (key, go_name) = match (shape.producers, shape.cap) {
        (1, 0) => ("prodcons_cap0", "prodcons_cap0"),
        (1, _) => ("prodcons_cap128", "prodcons_cap128"),
        _ => ("prodcons_4p4c", "prodcons_4p4c"),
    };
    let several = shape.consumers > 1;
    let mut entries = vec![Entry::new("grove", n, move |n| {
        Ok(per_op(prodcons::grove(&rt, shape, n), n))
    })
    .note(format!("grove::chan::bounded({})", shape.cap))];
    entries.extend(ctx.go_entry(go_name, go::scale(n, prodcons::MESSAGES), ctx.workers, 1.0));
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
        what: format!(
            "{} producer{} / {} consumer{} over one channel of capacity {}",
            shape.producers,
            if several { "s" } else { "" },
            shape.consumers,
            if several { "s" } else { "" },
            shape.cap
        ),
        unit: "ns/msg",
        size: format!("{} messages", human(n)),
        notes: Vec::new(),
        entries,
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
    entries.extend(ctx.go_entry("select2", go::scale(n, select2::MESSAGES), ctx.workers, 1.0));
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
    }
}
