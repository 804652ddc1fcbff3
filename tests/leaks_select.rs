//! Every way a select's arm can be completed frees what the select made
//! for it: the arm's packet and the select's context. Thousands of
//! exchanges of each kind, after a warm-up, leave the live heap where it
//! was (a counting global allocator). A deferred send (a plain receiver
//! choosing a parked select's send arm, whose value comes afterwards) used
//! to keep its packet for ever: about 130 bytes an exchange.
//!
//! The live-heap count is process-wide, so this binary holds this one
//! test only.

#[path = "common/base.rs"]
mod base;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::time::Duration;

use base::{runtime, wait_blocked, watchdog_for};
use grove::chan::{self, Select};
use grove::select;

/// Exchanges of each kind timed after the warm-up.
const EXCHANGES: usize = 2_000;
/// Allowed growth of the live heap over all of them: a few allocator and
/// runtime caches; a leak of one packet an exchange is 2,000 x ~130 B.
const HEAP_SLACK: isize = 64 * 1024;

/// One exchange of kind `kind` over fresh unbuffered channels, each side
/// a green thread of `rt`; the select is parked before its peer comes.
fn exchange(rt: &grove::Runtime, kind: usize, i: u64) {
    let (tx, rx) = chan::bounded::<u64>(0);
    let (other_tx, other_rx) = chan::bounded::<u64>(0);
    let (sel_tx, sel_rx) = (tx.clone(), rx.clone());
    let selecting = match kind {
        // A parked select's send arm, chosen by a plain receive (deferred).
        0 => rt.spawn(move || {
            select! {
                send(sel_tx, i) -> r => r.unwrap(),
                recv(other_rx) -> _ => unreachable!(),
            }
            0
        }),
        // A parked select's receive arm, given a value by a plain send.
        1 => rt.spawn(move || {
            select! {
                recv(sel_rx) -> v => v.unwrap(),
                recv(other_rx) -> _ => unreachable!(),
            }
        }),
        // A parked dynamic select's receive arm, dropped unfinished: the
        // value goes back to the channel.
        _ => rt.spawn(move || {
            let mut sel = Select::new();
            sel.recv(&sel_rx);
            sel.recv(&other_rx);
            drop(sel.select());
            sel_rx.recv().unwrap()
        }),
    };
    wait_blocked(rt, "select", 1);
    match kind {
        0 => assert_eq!(rt.spawn(move || rx.recv()).join().unwrap(), Ok(i)),
        _ => rt.spawn(move || tx.send(i).unwrap()).join().unwrap(),
    }
    let got = selecting.join().unwrap();
    if kind != 0 {
        assert_eq!(got, i);
    }
    drop(other_tx);
}

#[test]
fn completed_select_arms_leave_nothing_behind() {
    watchdog_for(Duration::from_secs(120), || {
        let rt = runtime(2);
        for kind in 0..3 {
            for i in 0..200 {
                exchange(&rt, kind, i);
            }
            let before = counting_alloc::live_bytes();
            for i in 0..EXCHANGES as u64 {
                exchange(&rt, kind, i);
            }
            let grew = counting_alloc::live_bytes() - before;
            assert!(
                grew <= HEAP_SLACK,
                "select exchanges of kind {kind}: the live heap grew by {grew} bytes over \
                 {EXCHANGES} ({} per exchange)",
                grew / EXCHANGES as isize
            );
        }
    });
}
