//! A parent's registry of children does not grow without bound: children
//! leave it when they are cancelled or dropped. Measured with a counting
//! global allocator (the only test in this binary, so nothing else
//! allocates meanwhile): 100,000 short-lived children of one long-lived
//! parent must leave the heap where it was. A registry that kept an entry
//! per child (even a `Weak`, which pins the child's allocation) would hold
//! megabytes.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use grove::context::{Context, ContextError};
use sync_util::watchdog;

/// `System`, counting the bytes currently allocated.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CHILDREN: usize = 100_000;

/// Generous: a few hash-map buckets and allocator noise, far below the
/// ~10 MB that 100,000 retained children would take.
const SLACK: isize = 256 * 1024;

fn live() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Runs `make_one` `children` times and checks the heap is back where it
/// started (the parent still alive).
fn bounded(what: &str, parent: &Context, children: usize, mut make_one: impl FnMut(&Context)) {
    // Warm up: let the registry's table reach its working size first.
    for _ in 0..64 {
        make_one(parent);
    }
    let before = live();
    let mut peak = before;
    for i in 0..children {
        make_one(parent);
        if i % 1024 == 0 {
            peak = peak.max(live());
        }
    }
    let grown = live() - before;
    assert!(
        grown < SLACK && peak - before < SLACK,
        "{what}: the heap grew by {grown} bytes (peak +{}) over {children} children",
        peak - before
    );
}

#[test]
fn children_do_not_accumulate_in_their_parent() {
    watchdog(|| {
        let (parent, cancel_parent) = Context::background().with_timeout(Duration::from_secs(3600));

        bounded("created and cancelled", &parent, CHILDREN, |p| {
            let (child, cancel) = p.with_cancel();
            cancel.cancel();
            assert!(child.is_done());
        });
        // The other shapes, more briefly: a quarter as many is still
        // megabytes if they were kept.
        bounded(
            "created, waited on, cancelled",
            &parent,
            CHILDREN / 4,
            |p| {
                let (child, cancel) = p.with_timeout(Duration::from_secs(60));
                let done = child.done(); // makes the done channel too
                cancel.cancel();
                assert!(done.try_recv().is_err());
            },
        );
        bounded(
            "created and dropped, never cancelled",
            &parent,
            CHILDREN / 4,
            |p| {
                drop(p.with_cancel());
            },
        );
        bounded("a grandchild each, dropped", &parent, CHILDREN / 4, |p| {
            let (child, _c) = p.with_cancel();
            let (grandchild, _g) = child.with_cancel();
            drop(grandchild.done());
        });

        // The parent still works, with live children.
        let (child, _keep) = parent.with_cancel();
        cancel_parent.cancel();
        assert_eq!(child.err(), Some(ContextError::Cancelled));
    });
}
