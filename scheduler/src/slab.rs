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
//! - Chunks are carved one after another from an arena: a large
//!   reservation (`ARENA` bytes of address space, committed by the kernel
//!   page by page as chunks are first written) marked `MADV_HUGEPAGE`. A
//!   spawn writes a record and the worker that runs it reads it back; with
//!   100,000 records in flight, on 4 KiB pages nearly every record is a
//!   TLB miss on both sides, and the more so as the free lists mix blocks
//!   of many chunks over time. On 2 MiB pages 8,192 records share one TLB
//!   entry. One reservation is one memory mapping, however many chunks it
//!   holds (mappings are budgeted: `vm.max_map_count`). Where the arena
//!   cannot be mapped, chunks come from the global allocator.
//! - Every block, free or in use, begins with a word that is only ever
//!   accessed atomically ([`alloc`] hands it out holding 0, [`dealloc`]
//!   takes it back holding 0), and [`for_each_block`] visits every block
//!   there is: a task keeps its reference count in that word, so finding
//!   every live task (`Runtime::tasks`, shutdown) walks the blocks and
//!   spawning registers nothing anywhere. Blocks too big for a class are
//!   listed while they are allocated.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ptr::NonNull;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use crate::stack::HUGE_PAGE;

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

/// Every chunk carved so far, with its block size.
static CHUNKS: Mutex<Vec<(Block, usize)>> = Mutex::new(Vec::new());

/// The addresses of the allocated blocks too big for a class.
static BIG: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

fn lock<T>(m: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn global(class: usize) -> std::sync::MutexGuard<'static, Vec<Block>> {
    lock(&GLOBAL[class])
}

/// Makes the first word of `block` an atomic zero.
///
/// # Safety
///
/// `block` is valid for writes of a word and aligned for one, and nobody
/// else accesses it yet.
unsafe fn zero_first_word(block: NonNull<u8>) {
    // SAFETY: per the contract.
    unsafe { block.cast::<AtomicUsize>().write(AtomicUsize::new(0)) };
}

fn class_of(layout: Layout) -> Option<usize> {
    (layout.align() <= ALIGN && layout.size() <= CLASS * CLASSES && layout.size() > 0)
        .then(|| (layout.size() - 1) / CLASS)
}

/// Address space reserved at a time for chunks (see the module docs).
const ARENA: usize = 1 << 30;

/// The part of the current arena not yet carved: `[next, end)`.
static ARENA_LEFT: Mutex<(usize, usize)> = Mutex::new((0, 0));

/// A chunk of `size` bytes (a multiple of `CLASS`, far below `ARENA`) from
/// the arena, which is mapped, or replaced when too little is left; `None`
/// if no arena can be mapped.
fn carve(size: usize) -> Option<NonNull<u8>> {
    carve_from(&mut lock(&ARENA_LEFT), size)
}

/// [`carve`] from the arena whose uncarved part is `left`.
fn carve_from(left: &mut (usize, usize), size: usize) -> Option<NonNull<u8>> {
    if left.1 - left.0 < size {
        let start = map_arena()?;
        *left = (start, start + ARENA);
    }
    let chunk = left.0;
    left.0 += size;
    NonNull::new(chunk as *mut u8)
}

/// Reserves `ARENA` bytes aligned to `HUGE_PAGE`, asked to be backed by
/// huge pages; the address, or `None` if the kernel refuses.
#[cold]
fn map_arena() -> Option<usize> {
    let len = ARENA + HUGE_PAGE;
    // SAFETY: a new private anonymous mapping where the kernel chooses: it
    // touches no memory that exists. `MAP_NORESERVE`: pages are committed
    // as they are first written, like the rest of the heap.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return None;
    }
    let at = at as usize;
    let start = at.next_multiple_of(HUGE_PAGE);
    let tail = at + len - (start + ARENA);
    // SAFETY: both ranges lie inside the mapping just made, outside the
    // aligned part kept, and nothing uses them. A failure leaves a few
    // unused pages mapped, which is harmless.
    unsafe {
        if start > at {
            libc::munmap(at as *mut libc::c_void, start - at);
        }
        if tail > 0 {
            libc::munmap((start + ARENA) as *mut libc::c_void, tail);
        }
        // A hint: where transparent huge pages are off it fails, and the
        // arena is made of ordinary pages.
        libc::madvise(start as *mut libc::c_void, ARENA, libc::MADV_HUGEPAGE);
    }
    Some(start)
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
    let chunk = carve(layout.size()).unwrap_or_else(|| {
        // SAFETY: the layout is not zero-sized.
        let chunk = unsafe { alloc::alloc(layout) };
        NonNull::new(chunk).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    });
    for i in 0..CHUNK {
        // SAFETY: `i * size` stays inside the chunk just allocated.
        let block = unsafe { chunk.add(i * size) };
        // SAFETY: a fresh block (blocks are 64-byte aligned), not yet
        // listed anywhere.
        unsafe { zero_first_word(block) };
        list.push(Block(block));
    }
    // Listed once its first words are written: `for_each_block` reads them.
    lock(&CHUNKS).push((Block(chunk), size));
}

/// Memory for a value of `layout` (at least a word, word-aligned). Its
/// first word is an `AtomicUsize` holding 0: the caller accesses that word
/// only atomically, for as long as it holds the block, since
/// [`for_each_block`] may read it at any time.
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    if let Some(class) = class_of(layout) {
        let block = crate::tls_access!({
            CACHE.try_with(|c| {
                let list = &mut c.borrow_mut().lists[class];
                if list.is_empty() {
                    refill(class, list);
                }
                list.pop()
            })
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
    assert!(
        layout.size() >= size_of::<AtomicUsize>() && layout.align() >= align_of::<AtomicUsize>(),
        "a slab block holds at least an aligned word"
    );
    // SAFETY: not zero-sized (asserted above).
    let block = unsafe { alloc::alloc(layout) };
    let block = NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout));
    // SAFETY: fresh, big and aligned enough for a word (asserted above).
    unsafe { zero_first_word(block) };
    lock(&BIG).insert(block.as_ptr() as usize);
    block
}

/// Calls `f` with every block there is, free or allocated. Only the first
/// word of a block may be read, and only atomically: the block may be
/// allocated, freed and reused meanwhile, but not returned to the system
/// (chunks never are; a big block is unlisted before it is freed, and `f`
/// runs with the list locked). `f` must not allocate or free a big block.
pub(crate) fn for_each_block(mut f: impl FnMut(NonNull<u8>)) {
    let chunks: Vec<(Block, usize)> = lock(&CHUNKS).clone();
    for (Block(chunk), size) in chunks {
        for i in 0..CHUNK {
            // SAFETY: `i * size` stays inside the chunk, which is never freed.
            f(unsafe { chunk.add(i * size) });
        }
    }
    for &block in lock(&BIG).iter() {
        // SAFETY: listed, so allocated and not null; freed only after
        // `dealloc` unlists it, which waits for this lock.
        f(unsafe { NonNull::new_unchecked(block as *mut u8) });
    }
}

/// Gives back memory from [`alloc`] with the same `layout`.
///
/// # Safety
///
/// `block` came from `alloc(layout)` and is not used any more; its first
/// word holds 0 again.
pub(crate) unsafe fn dealloc(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        lock(&BIG).remove(&(block.as_ptr() as usize));
        // SAFETY: per the contract, with the layout `alloc` used; unlisted
        // above, so `for_each_block` no longer reads it.
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
        return;
    };
    let kept = crate::tls_access!({
        CACHE.try_with(|c| {
            let list = &mut c.borrow_mut().lists[class];
            list.push(Block(block));
            if list.len() > KEEP {
                let half = list.len() / 2;
                global(class).extend(list.drain(..half));
            }
        })
    });
    if kept.is_err() {
        global(class).push(Block(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arena_is_aligned_to_huge_pages_and_writable_end_to_end() {
        let start = map_arena().expect("a 1 GiB reservation maps");
        assert_eq!(start % HUGE_PAGE, 0, "arena at {start:#x}");
        let (first, last) = (start as *mut u8, (start + ARENA - 1) as *mut u8);
        // SAFETY: both bytes lie in the arena just mapped, readable and
        // writable, which nothing else knows of.
        unsafe {
            first.write(1);
            last.write(2);
            assert_eq!((first.read(), last.read()), (1, 2));
        }
        // SAFETY: the whole arena, unused from here on.
        let unmapped = unsafe { libc::munmap(start as *mut libc::c_void, ARENA) };
        assert_eq!(unmapped, 0);
    }

    #[test]
    fn chunks_are_carved_in_order_and_a_new_arena_when_one_is_used_up() {
        let size = CHUNK * CLASS;
        let mut left = (0, 0);
        let a = carve_from(&mut left, size).expect("an arena maps").as_ptr() as usize;
        let b = carve_from(&mut left, size).expect("an arena maps").as_ptr() as usize;
        assert_eq!(a % HUGE_PAGE, 0, "the first chunk starts an arena");
        assert_eq!(b, a + size, "the next chunk follows");
        assert_eq!(left, (a + 2 * size, a + ARENA));
        // Too little left for another chunk: a fresh arena.
        left.0 = left.1 - size / 2;
        let c = carve_from(&mut left, size).expect("an arena maps").as_ptr() as usize;
        assert_eq!(c % HUGE_PAGE, 0);
        assert!(
            c + size <= a || c >= a + ARENA,
            "{c:#x} is outside the first arena"
        );
        for arena in [a, c] {
            // SAFETY: both arenas were mapped above and only this test
            // knows of them.
            let unmapped = unsafe { libc::munmap(arena as *mut libc::c_void, ARENA) };
            assert_eq!(unmapped, 0);
        }
    }

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
    fn every_block_is_visited_and_starts_with_an_atomic_zero() {
        use std::collections::HashSet;
        use std::sync::atomic::Ordering;
        let small = Layout::from_size_align(192, 16).unwrap();
        let big = Layout::from_size_align(5000, 64).unwrap();
        let blocks: Vec<(NonNull<u8>, Layout)> = (0..2 * CHUNK)
            .map(|_| (alloc(small), small))
            .chain((0..3).map(|_| (alloc(big), big)))
            .collect();
        for (i, &(block, _)) in blocks.iter().enumerate() {
            // SAFETY: the first word of a block is an atomic (`alloc`).
            let word = unsafe { block.cast::<AtomicUsize>().as_ref() };
            assert_eq!(word.load(Ordering::Relaxed), 0, "handed out holding 0");
            word.store(i + 1, Ordering::Relaxed);
        }
        let mut seen = HashSet::new();
        for_each_block(|block| {
            // SAFETY: as above.
            let word = unsafe { block.cast::<AtomicUsize>().as_ref() };
            let tag = word.load(Ordering::Relaxed);
            if tag != 0 && blocks.get(tag - 1).is_some_and(|b| b.0 == block) {
                seen.insert(block.as_ptr() as usize);
            }
        });
        assert_eq!(seen.len(), blocks.len(), "every allocated block is visited");
        for (block, layout) in blocks {
            // SAFETY: as above; then allocated here with `layout`, unused,
            // its first word back to 0.
            unsafe {
                block
                    .cast::<AtomicUsize>()
                    .as_ref()
                    .store(0, Ordering::Relaxed);
                dealloc(block, layout);
            }
        }
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
