//! Memory for task records: blocks carved from chunks, kept on per-thread
//! free lists by size class, so that a spawn and the matching free are a pop
//! and a push instead of two trips through the global allocator. (glibc's
//! per-thread cache is seven blocks deep: with 100,000 green threads alive
//! every spawn and every free would take its slow path.)
//!
//! - Records of up to `CLASSES * CLASS` bytes (at most 16-byte aligned) are
//!   rounded up to a multiple of `CLASS`; bigger ones go to the global
//!   allocator directly.
//! - A thread whose list is empty takes a batch from the global list of its
//!   class, or else carves a fresh chunk of `CHUNK` blocks (one allocation).
//!   Chunks are cache-line aligned, and blocks are whole multiples of a
//!   line, so a record never straddles more lines than its size needs: a
//!   record is written by its spawner and then by the worker that runs it,
//!   and every line it spans is a line fetched back across cores.
//! - A freed block joins the freeing thread's list (all blocks of a class
//!   are alike); a list longer than `KEEP` gives half to the global list,
//!   and a thread gives its lists to the global ones when it exits.
//! - Chunks are never returned to the system: like Go's cache of dead
//!   goroutines, memory for task records is kept at its peak for reuse.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Mutex;

const CLASS: usize = 64;
const CLASSES: usize = 16;
const ALIGN: usize = 16;
/// Blocks per chunk, and per batch moved from the global list.
const CHUNK: usize = 64;
/// Blocks a thread keeps per class before it gives half back.
const KEEP: usize = 4096;

/// A free block; only ever touched by whoever holds it.
#[derive(Clone, Copy)]
struct Block(NonNull<u8>);

// SAFETY: a free block is plain memory owned by the list holding it.
unsafe impl Send for Block {}

struct Cache {
    lists: [Vec<Block>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, list) in self.lists.iter_mut().enumerate() {
            if !list.is_empty() {
                global(class).append(list);
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache { lists: [const { Vec::new() }; CLASSES] })
    };
}

static GLOBAL: [Mutex<Vec<Block>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

fn global(class: usize) -> std::sync::MutexGuard<'static, Vec<Block>> {
    GLOBAL[class].lock().unwrap_or_else(|e| e.into_inner())
}

fn class_of(layout: Layout) -> Option<usize> {
    (layout.align() <= ALIGN && layout.size() <= CLASS * CLASSES && layout.size() > 0)
        .then(|| (layout.size() - 1) / CLASS)
}

/// Fills an empty list: a batch from the global list, or a fresh chunk.
#[cold]
fn refill(class: usize, list: &mut Vec<Block>) {
    {
        let mut shared = global(class);
        let take = shared.len().min(CHUNK);
        let from = shared.len() - take;
        list.extend(shared.drain(from..));
    }
    if !list.is_empty() {
        return;
    }
    let size = (class + 1) * CLASS;
    let layout = Layout::from_size_align(size * CHUNK, CLASS).expect("chunk layouts are valid");
    // SAFETY: the layout is not zero-sized.
    let chunk = unsafe { alloc::alloc(layout) };
    let Some(chunk) = NonNull::new(chunk) else {
        alloc::handle_alloc_error(layout)
    };
    for i in 0..CHUNK {
        // SAFETY: `i * size` stays inside the chunk just allocated.
        list.push(Block(unsafe { chunk.add(i * size) }));
    }
}

/// Memory for a value of `layout`.
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    if let Some(class) = class_of(layout) {
        let block = CACHE.try_with(|c| {
            let list = &mut c.borrow_mut().lists[class];
            if list.is_empty() {
                refill(class, list);
            }
            list.pop()
        });
        if let Ok(Some(Block(block))) = block {
            return block;
        }
        // This thread's cache is gone (thread exit): use the global list.
        let mut list = Vec::new();
        refill(class, &mut list);
        let Block(block) = list.pop().expect("refill gives at least one block");
        global(class).append(&mut list);
        return block;
    }
    // SAFETY: task layouts are never zero-sized (a task has a header).
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Gives back memory from [`alloc`] with the same `layout`.
///
/// # Safety
///
/// `block` came from `alloc(layout)` and is not used any more.
pub(crate) unsafe fn dealloc(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: per the contract, with the layout `alloc` used.
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
        return;
    };
    let kept = CACHE.try_with(|c| {
        let list = &mut c.borrow_mut().lists[class];
        list.push(Block(block));
        if list.len() > KEEP {
            let half = list.len() / 2;
            global(class).extend(list.drain(..half));
        }
    });
    if kept.is_err() {
        global(class).push(Block(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_and_large_ones_pass_through() {
        let small = Layout::from_size_align(200, 8).unwrap();
        let a = alloc(small);
        // SAFETY: allocated above with this layout, unused.
        unsafe { dealloc(a, small) };
        let b = alloc(small);
        assert_eq!(a, b, "a freed block is the next one handed out");
        // SAFETY: as above.
        unsafe { dealloc(b, small) };
        let big = Layout::from_size_align(4096, 64).unwrap();
        let c = alloc(big);
        // SAFETY: as above.
        unsafe { dealloc(c, big) };
        assert_eq!(class_of(Layout::from_size_align(64, 16).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(65, 16).unwrap()), Some(1));
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
    }

    #[test]
    fn blocks_freed_on_another_thread_are_reused() {
        let layout = Layout::from_size_align(128, 16).unwrap();
        let blocks: Vec<Block> = (0..3 * CHUNK).map(|_| Block(alloc(layout))).collect();
        let distinct: std::collections::HashSet<usize> =
            blocks.iter().map(|b| b.0.as_ptr() as usize).collect();
        assert_eq!(distinct.len(), blocks.len(), "no block handed out twice");
        std::thread::spawn(move || {
            for b in blocks {
                // SAFETY: allocated above with this layout, unused.
                unsafe { dealloc(b.0, layout) };
            }
        })
        .join()
        .unwrap();
        // The other thread's list went to the global list when it exited
        // (its thread-local destructors ran before `join` returned).
        let class = class_of(layout).unwrap();
        let shared: std::collections::HashSet<usize> = global(class)
            .iter()
            .map(|b| b.0.as_ptr() as usize)
            .collect();
        assert!(
            distinct.is_subset(&shared),
            "every block freed over there is reusable"
        );
    }
}
