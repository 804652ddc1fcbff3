//! Green-thread stacks: one guarded `mmap` reservation each, committed lazily
//! by the kernel, pooled so that a spawn reuses a stack whose top pages are
//! already resident.
//!
//! This module owns stack memory: nothing else maps or unmaps a stack (the
//! one other mapping grove makes is the task slab's arena, see `slab`).
//!
//! One stack, addresses growing upwards:
//!
//! ```text
//!   base ────────►┌──────────────────────────┐  high address, page aligned
//!                 │ top slot (TOP_SLOT)      │  the coroutine itself (`coroutine::Coro`)
//!                 ├──────────────────────────┤  corosensei's base: 16-byte aligned
//!                 │ first frames (hot pages) │  committed on first touch and kept
//!                 ├ ─ ─ hot watermark ─ ─ ─ ─┤  when the stack goes to the global pool
//!                 │ reserved, not committed  │  MAP_NORESERVE: costs address space only
//!                 │            ...           │  released again with MADV_DONTNEED
//!   limit+page ──►├──────────────────────────┤
//!                 │ guard page (PROT_NONE)   │  an overflow faults here; see `signal`
//!   limit ───────►└──────────────────────────┘  low address
//! ```
//!
//! Every stack is two memory mappings (the guard and the rest never merge), so
//! Linux's `vm.max_map_count` (65530 by default) caps how many can exist at
//! once. `Budget` reads that limit, counts mapped stacks, and turns running
//! out into an error that says what to raise, before the kernel's bare ENOMEM.

use std::io;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use corosensei::stack::valgrind::ValgrindStackRegistration;
use corosensei::stack::StackPointer;

/// Default most a green thread's stack may grow to.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Largest stack limit accepted: far below the 128 TiB user address space, so
/// a typo gets an error instead of a reservation that can never succeed.
pub const MAX_STACK_SIZE: usize = 1 << 40;

/// Pages at the top of a pooled stack that stay resident when it moves to the
/// global pool. Most green threads never leave them; two pages is a guess
/// that covers a typical park path with room to spare.
const HOT_WATERMARK: usize = 2 * 4096;

/// Stacks a worker keeps for itself before handing half to the global pool
/// (Go keeps 64 dead Gs per P and trims to 32: `runtime/proc.go` gfput).
pub(crate) const WORKER_CACHE: usize = 64;

/// Stacks the global pool of one runtime keeps before unmapping the rest.
const GLOBAL_POOL: usize = 1024;

/// Mappings left to the rest of the program (allocator arenas, libraries,
/// thread stacks) when the stack budget is computed.
const MAP_HEADROOM: usize = 2048;

/// The transparent huge page size. Stacks of at least this size could hold
/// one; they are marked `MADV_NOHUGEPAGE` so that touching one page does
/// not commit 2 MiB. (The task slab's arena, which wants them, is aligned
/// to it.)
pub(crate) const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// The system page size.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            page as usize
        } else {
            4096
        }
    })
}

/// Rounds a requested stack limit up to whole pages and checks it.
pub fn validate_stack_size(size: usize) -> io::Result<usize> {
    let page = page_size();
    if size < page {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("stack size {size} is below one page ({page} bytes)"),
        ));
    }
    if size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stack size {size} is beyond what the address space allows (at most {MAX_STACK_SIZE} bytes)"
            ),
        ));
    }
    Ok(size.div_ceil(page) * page)
}

/// Bytes at the very top of every stack kept for the coroutine that runs
/// on it (see `coroutine::Coro`): corosensei pushes its frames below them.
pub(crate) const TOP_SLOT: usize = 128;

/// One guarded stack reservation. Dropping it unmaps it.
pub(crate) struct Stack {
    /// Highest address (exclusive); the top slot lies just below it, and
    /// the first frame below that.
    base: usize,
    /// Whole mapping, guard page included.
    len: usize,
    valgrind: ManuallyDrop<ValgrindStackRegistration>,
}

impl Stack {
    /// Maps a new stack whose usable part is `size` bytes (a page multiple).
    fn map(size: usize) -> io::Result<Stack> {
        let page = page_size();
        let len = size + page;
        // SAFETY: a fresh anonymous private mapping at an address the kernel
        // picks; nothing else refers to it yet.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page lies inside the mapping made above, which
        // nothing else knows about yet.
        if unsafe { libc::mprotect(addr, page, libc::PROT_NONE) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping the mapping made above, still unused.
            unsafe { libc::munmap(addr, len) };
            return Err(err);
        }
        if size >= HUGE_PAGE {
            // SAFETY: advice on our own mapping; failure only loses the hint.
            unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
        }
        Ok(Stack {
            base: addr as usize + len,
            len,
            valgrind: ManuallyDrop::new(ValgrindStackRegistration::new(addr.cast(), len)),
        })
    }

    /// Usable bytes (guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.len - page_size()
    }

    /// The slot at the top (`TOP_SLOT` bytes, 16-byte aligned) where the
    /// coroutine running on this stack keeps itself.
    pub(crate) fn top_slot(&self) -> NonNull<u8> {
        NonNull::new((self.base - TOP_SLOT) as *mut u8).expect("a stack's top is never null")
    }

    /// The guard page's address range, for the overflow handler.
    pub(crate) fn guard(&self) -> (usize, usize) {
        let low = self.base - self.len;
        (low, low + page_size())
    }

    /// Gives the pages below the hot watermark back to the kernel. The next
    /// touch commits a fresh zero page, so this is invisible to the stack's
    /// next user.
    fn release_cold_pages(&self) {
        let page = page_size();
        let cold_top = self.base - HOT_WATERMARK;
        let cold_low = self.base - self.len + page;
        if cold_top > cold_low {
            // SAFETY: the range lies inside our mapping, above the guard page,
            // and no coroutine runs on a pooled stack.
            unsafe {
                libc::madvise(
                    cold_low as *mut libc::c_void,
                    cold_top - cold_low,
                    libc::MADV_DONTNEED,
                )
            };
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: deregister before unmapping, as valgrind expects.
        unsafe { ManuallyDrop::drop(&mut self.valgrind) };
        // SAFETY: we own the mapping and nothing runs on it any more.
        unsafe { libc::munmap((self.base - self.len) as *mut libc::c_void, self.len) };
        BUDGET.mapped.fetch_sub(1, Ordering::Relaxed);
    }
}

// SAFETY: the mapping has a PROT_NONE guard page below at least one usable
// page (sizes are validated to a page or more); the base corosensei sees is
// the top less `TOP_SLOT` (kept for the coroutine itself), and it and the
// limit are 16-byte aligned (pages are, and `TOP_SLOT` is a multiple of 16).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.base - TOP_SLOT).expect("stack base is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.base - self.len).expect("stack limit is never null")
    }
}

/// The process-wide count of mapped stacks against `vm.max_map_count`.
pub(crate) struct Budget {
    mapped: AtomicUsize,
    /// Most stacks that may be mapped at once; 0 until first read.
    limit: AtomicUsize,
}

pub(crate) static BUDGET: Budget = Budget {
    mapped: AtomicUsize::new(0),
    limit: AtomicUsize::new(0),
};

/// Reads `/proc/sys/vm/max_map_count`; Linux's default where unreadable.
pub fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530)
}

fn current_map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(1024)
}

impl Budget {
    /// Most stacks that may be mapped at once, computed on first use.
    pub(crate) fn limit(&self) -> usize {
        match self.limit.load(Ordering::Relaxed) {
            0 => self.refresh_limit(),
            limit => limit,
        }
    }

    /// Re-reads `vm.max_map_count`: a benchmark may raise it while we run.
    #[cold]
    pub(crate) fn refresh_limit(&self) -> usize {
        let others = current_map_count().saturating_sub(2 * self.mapped());
        let limit = (max_map_count().saturating_sub(others + MAP_HEADROOM) / 2).max(1);
        self.limit.store(limit, Ordering::Relaxed);
        limit
    }

    pub(crate) fn mapped(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    /// Maps one stack if the budget allows it.
    fn map(&self, size: usize) -> io::Result<Stack> {
        let mapped = self.mapped.fetch_add(1, Ordering::Relaxed);
        if mapped >= self.limit() && mapped >= self.refresh_limit() {
            self.mapped.fetch_sub(1, Ordering::Relaxed);
            return Err(out_of_stacks(mapped, None));
        }
        Stack::map(size).map_err(|err| {
            self.mapped.fetch_sub(1, Ordering::Relaxed);
            if err.raw_os_error() == Some(libc::ENOMEM) {
                out_of_stacks(mapped, None)
            } else {
                err
            }
        })
    }
}

/// The error for "no stack can be mapped", naming the limit to raise.
pub(crate) fn out_of_stacks(mapped: usize, runtime_cap: Option<usize>) -> io::Error {
    let max = max_map_count();
    let msg = match runtime_cap {
        Some(cap) => format!(
            "cannot start another green thread: all {cap} stacks this runtime may map are in use \
             (runtime::Builder::max_stacks, a cap below the vm.max_map_count budget of {max} \
             memory mappings, 2 per stack); raise the cap, or let some green threads finish first"
        ),
        None => format!(
            "cannot map another green-thread stack: {mapped} stacks are mapped and each takes 2 \
             of the {max} memory mappings that vm.max_map_count allows; raise it \
             (sysctl -w vm.max_map_count=1048576) or keep fewer green threads blocked at once"
        ),
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

/// Number of green-thread stacks mapped in this process, pooled ones included.
pub fn mapped_stacks() -> usize {
    BUDGET.mapped()
}

/// Most green-thread stacks this process may map at once under
/// `vm.max_map_count` (re-read on every call).
pub fn stack_budget() -> usize {
    BUDGET.refresh_limit()
}

/// Why a stack could not be had.
pub(crate) enum NoStack {
    /// Every stack the budget allows is in use: wait for one to be freed.
    Exhausted,
    /// The kernel refused for another reason.
    Failed(io::Error),
}

/// A runtime's stacks of its default size: the global half of the pool (each
/// worker keeps its own cache of up to [`WORKER_CACHE`]).
pub(crate) struct StackPool {
    size: usize,
    /// Most stacks this runtime may have mapped (`max_stacks`), if capped.
    cap: Option<usize>,
    /// Stacks of this runtime that are mapped, pooled or in use.
    mapped: AtomicUsize,
    global: Mutex<Vec<Stack>>,
    /// Mirror of `global.len()`, readable without the lock.
    global_len: AtomicUsize,
}

impl StackPool {
    pub(crate) fn new(size: usize, cap: Option<usize>) -> StackPool {
        StackPool {
            size,
            cap,
            mapped: AtomicUsize::new(0),
            global: Mutex::new(Vec::new()),
            global_len: AtomicUsize::new(0),
        }
    }

    /// The default stack size of this runtime.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn cap(&self) -> Option<usize> {
        self.cap
    }

    /// Stacks this runtime has mapped, in use or pooled.
    pub(crate) fn mapped(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    /// More than half of what may be mapped is mapped (this runtime's cap,
    /// or the process budget): returned stacks then go to the global pool,
    /// where every worker can reuse them, instead of a worker's cache.
    pub(crate) fn under_pressure(&self) -> bool {
        self.cap.is_some_and(|cap| self.mapped() * 2 >= cap)
            || BUDGET.mapped() * 2 >= BUDGET.limit()
    }

    /// Whether `get` could succeed now without waiting for a stack.
    pub(crate) fn could_provide(&self) -> bool {
        self.pooled() > 0
            || (self.cap.is_none_or(|cap| self.mapped() < cap) && BUDGET.mapped() < BUDGET.limit())
    }

    /// Stacks waiting in the global pool.
    pub(crate) fn pooled(&self) -> usize {
        self.global_len.load(Ordering::Relaxed)
    }

    /// Whether a new stack could be mapped now (`idle` stacks sit in pools).
    pub(crate) fn check_spawn(&self, idle: usize) -> io::Result<()> {
        if idle > 0 {
            return Ok(());
        }
        if let Some(cap) = self.cap {
            if self.mapped() >= cap {
                return Err(out_of_stacks(self.mapped(), Some(cap)));
            }
        }
        let mapped = BUDGET.mapped();
        if mapped >= BUDGET.limit() && mapped >= BUDGET.refresh_limit() {
            return Err(out_of_stacks(mapped, None));
        }
        Ok(())
    }

    /// A stack of `size` bytes: from the global pool, or freshly mapped.
    pub(crate) fn get(&self, size: usize) -> Result<Stack, NoStack> {
        if size == self.size && self.pooled() > 0 {
            let mut global = self.global.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(stack) = global.pop() {
                self.global_len.store(global.len(), Ordering::Relaxed);
                return Ok(stack);
            }
        }
        if let Some(cap) = self.cap {
            if self.mapped.fetch_add(1, Ordering::Relaxed) >= cap {
                self.mapped.fetch_sub(1, Ordering::Relaxed);
                return Err(NoStack::Exhausted);
            }
        } else {
            self.mapped.fetch_add(1, Ordering::Relaxed);
        }
        BUDGET.map(size).map_err(|err| {
            self.mapped.fetch_sub(1, Ordering::Relaxed);
            if err.kind() == io::ErrorKind::OutOfMemory {
                NoStack::Exhausted
            } else {
                NoStack::Failed(err)
            }
        })
    }

    /// Takes back stacks a worker's cache overflowed with (or a stack of
    /// another size, which is simply unmapped).
    pub(crate) fn put_many(&self, stacks: impl IntoIterator<Item = Stack>) {
        let mut unmap = Vec::new();
        {
            let mut global = self.global.lock().unwrap_or_else(|e| e.into_inner());
            for stack in stacks {
                if stack.size() == self.size && global.len() < GLOBAL_POOL {
                    stack.release_cold_pages();
                    global.push(stack);
                } else {
                    unmap.push(stack);
                }
            }
            self.global_len.store(global.len(), Ordering::Relaxed);
        }
        self.mapped.fetch_sub(unmap.len(), Ordering::Relaxed);
        drop(unmap);
    }

    /// Unmaps one stack of this runtime.
    pub(crate) fn unmap(&self, stack: Stack) {
        self.mapped.fetch_sub(1, Ordering::Relaxed);
        drop(stack);
    }

    /// Unmaps everything pooled (runtime shutdown).
    pub(crate) fn clear(&self) {
        let stacks = std::mem::take(&mut *self.global.lock().unwrap_or_else(|e| e.into_inner()));
        self.global_len.store(0, Ordering::Relaxed);
        self.mapped.fetch_sub(stacks.len(), Ordering::Relaxed);
        drop(stacks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_to_pages_and_bad_sizes_are_refused() {
        let page = page_size();
        assert_eq!(validate_stack_size(page + 1).unwrap(), 2 * page);
        assert_eq!(
            validate_stack_size(0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            validate_stack_size(usize::MAX).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn a_stack_has_a_guard_page_below_its_usable_part() {
        let pool = StackPool::new(64 * 1024, None);
        let Ok(stack) = pool.get(64 * 1024) else {
            panic!("mapping a stack failed")
        };
        let (lo, hi) = stack.guard();
        assert_eq!(hi - lo, page_size());
        assert_eq!(stack.size(), 64 * 1024);
        // The top of the usable part is writable.
        // SAFETY: the word just below `base` lies in the usable part.
        unsafe { ((stack.base - 8) as *mut u64).write_volatile(7) };
        pool.put_many([stack]);
        assert_eq!(pool.pooled(), 1);
        pool.clear();
        assert_eq!(pool.mapped(), 0);
    }

    #[test]
    fn the_top_slot_lies_above_the_frames_and_is_aligned() {
        use corosensei::stack::Stack as _;
        let pool = StackPool::new(16 * 1024, None);
        let Ok(stack) = pool.get(16 * 1024) else {
            panic!("mapping a stack failed")
        };
        let slot = stack.top_slot().as_ptr() as usize;
        assert_eq!(slot % 16, 0);
        assert_eq!(slot + TOP_SLOT, stack.base, "the slot ends at the top");
        assert_eq!(stack.base().get(), slot, "frames start below the slot");
        assert!(stack.limit().get() < slot);
        // SAFETY: the slot lies in the stack's usable part.
        unsafe { (slot as *mut [u8; TOP_SLOT]).write_volatile([7; TOP_SLOT]) };
        pool.put_many([stack]);
        pool.clear();
    }

    #[test]
    fn the_runtime_cap_is_enforced_and_named() {
        let pool = StackPool::new(16 * 1024, Some(1));
        let Ok(first) = pool.get(16 * 1024) else {
            panic!("first stack")
        };
        assert!(matches!(pool.get(16 * 1024), Err(NoStack::Exhausted)));
        let err = pool.check_spawn(0).unwrap_err();
        assert!(err.to_string().contains("vm.max_map_count"), "{err}");
        pool.unmap(first);
        assert!(pool.check_spawn(0).is_ok());
    }
}
