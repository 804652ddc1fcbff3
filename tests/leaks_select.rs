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

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use base::{runtime, wait_blocked, watchdog_for};
use grove::chan::{self, Select};
use grove::select;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is a side effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is (the caller upholds `alloc`'s contract).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

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
            let before = LIVE_BYTES.load(Ordering::Relaxed);
            for i in 0..EXCHANGES as u64 {
                exchange(&rt, kind, i);
            }
            let grew = LIVE_BYTES.load(Ordering::Relaxed) - before;
            assert!(
                grew <= HEAP_SLACK,
                "select exchanges of kind {kind}: the live heap grew by {grew} bytes over \
                 {EXCHANGES} ({} per exchange)",
                grew / EXCHANGES as isize
            );
        }
    });
}
