//! Green-thread stacks: guarded `MAP_NORESERVE` memory, committed lazily by
//! the kernel, pooled so that a spawn reuses a stack whose top pages are
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
//!                 │ guard page               │  an overflow faults here; see `signal`
//!   limit ───────►└──────────────────────────┘  low address
//! ```
//!
//! # Two modes, chosen once per process ([`stack_mode`])
//!
//! **Guard regions** ([`StackMode::GuardRegions`], Linux ≥ 6.13). Stacks
//! are slots carved one after another from large reservations (`RESERVATION`
//! bytes of address space each, `MAP_NORESERVE`, `MADV_NOHUGEPAGE`), the
//! slots of a reservation all of one size. A slot's guard page is installed with
//! `madvise(MADV_GUARD_INSTALL)` the first time the slot is carved and
//! stays for the life of the reservation: it survives `MADV_DONTNEED`, and
//! it does not split the mapping, so a reservation of thousands of stacks
//! is *one* memory mapping and `vm.max_map_count` no longer limits how many
//! green threads can be blocked at once; memory does. A new stack costs one
//! `madvise` (none when a freed slot is reused); a stack that leaves the
//! pools has its pages released (`MADV_DONTNEED`) and its slot goes back to
//! its reservation's free list. New stacks come from the reservation with
//! the lowest address that has room, so that the others drain as green
//! threads finish; a reservation with no stack in use is unmapped, except
//! a few (one per slot size, `KEPT_EMPTY` in all) kept for the next burst.
//!
//! ```text
//!   one reservation (one mapping):
//!   ┌───────┬─────────────────┬───────┬─────────────────┬─────┬──────────────┐
//!   │ guard │ stack 0         │ guard │ stack 1         │ ... │ not carved   │
//!   └───────┴─────────────────┴───────┴─────────────────┴─────┴──────────────┘
//!   low                                                                    high
//! ```
//!
//! **Per-stack mappings** ([`StackMode::Mappings`], older kernels, where
//! `MADV_GUARD_INSTALL` fails with `EINVAL`). Every stack is its own `mmap`
//! with a `PROT_NONE` guard page made by `mprotect`: two memory mappings
//! per stack (the guard and the rest never merge), so Linux's
//! `vm.max_map_count` (65530 by default) caps how many can exist at once.
//! `Budget` reads that limit, counts mapped stacks, and turns running out
//! into an error that says what to raise, before the kernel's bare ENOMEM.
//!
//! The mode is detected on first use (the first stack, or a call of
//! [`stack_mode`]) and never changes. Setting the environment variable
//! `GROVE_STACK_MODE=mappings` ([`STACK_MODE_ENV`]) before that forces the
//! per-stack mappings on any kernel (the tests run the overflow and stack
//! tests both ways with it; it also serves a tool that does not know guard
//! regions: valgrind 3.19 passes the advice through to the kernel and
//! memcheck runs clean in both modes). Either way a stack looks the same
//! from above: the guard is the page below the usable part, and the
//! overflow handler (`signal`) recognises a fault there the same way.
//!
//! Measured on Linux 6.18, 2 workers: a million green threads parked at
//! once at the default `vm.max_map_count` take 4.04 GiB of RSS (4.24 KiB
//! each) and 22 lines of `/proc/self/maps` (adjacent reservations merge);
//! starting 30,000 blocked green threads on a fresh runtime cost 2.2 µs
//! each (1.5-2.2, five runs) against 5.2 µs (4.3-6.6) with a mapping per
//! stack (`mmap` + `mprotect`), and releasing and joining them 1.8 µs
//! (1.6-2.7) against 3.8 (3.6-5.5).
//!
//! Both modes rely on a function's stack frame touching the guard page
//! before anything below it (Rust probes frames larger than a page): in
//! guard-region mode what lies below a stack's guard is the top of the
//! neighbouring slot.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// Stacks the global pool of one runtime keeps before releasing the rest.
const GLOBAL_POOL: usize = 1024;

/// Mappings left to the rest of the program (allocator arenas, libraries,
/// thread stacks) when the stack budget is computed.
const MAP_HEADROOM: usize = 2048;

/// The transparent huge page size. Stacks of at least this size could hold
/// one; they are marked `MADV_NOHUGEPAGE` so that touching one page does
/// not commit 2 MiB. (The task slab's arena, which wants them, is aligned
/// to it.)
pub(crate) const HUGE_PAGE: usize = 2 * 1024 * 1024;

/// Address space of one reservation in guard-region mode (or one slot, if
/// a slot is larger): 4,032 stacks of the default 256 KiB.
const RESERVATION: usize = 1 << 30;

/// `madvise` advice that turns pages into guard pages without splitting
/// the mapping (Linux 6.13, `include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The environment variable read once, at the first stack, to choose the
/// [`StackMode`]: `mappings` forces [`StackMode::Mappings`]; unset, empty
/// or `auto` detects guard-region support.
pub const STACK_MODE_ENV: &str = "GROVE_STACK_MODE";

/// How this process lays out green-thread stacks (see [`stack_mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StackMode {
    /// Stacks carved from large reservations, each guarded by a guard
    /// region (`MADV_GUARD_INSTALL`, Linux ≥ 6.13): one memory mapping per
    /// thousands of stacks, so `vm.max_map_count` does not limit how many
    /// green threads can be blocked at once; memory does.
    GuardRegions,
    /// One memory mapping per stack plus an `mprotect`ed guard page: two
    /// mappings each, so at most about `vm.max_map_count / 2` stacks can
    /// exist at once (see [`stack_budget`]).
    Mappings,
}

/// The stack mode of this process: [`StackMode::GuardRegions`] where the
/// kernel supports guard regions, unless the environment variable
/// [`STACK_MODE_ENV`] (`GROVE_STACK_MODE=mappings`) forced
/// [`StackMode::Mappings`]. Decided on the first call (the first stack
/// mapped calls it) and the same for the life of the process.
///
/// ```
/// use grove_scheduler::stack::{stack_mode, StackMode};
/// match stack_mode() {
///     StackMode::GuardRegions => println!("blocked green threads are limited by memory"),
///     StackMode::Mappings => println!("and by vm.max_map_count"),
///     _ => {}
/// }
/// ```
pub fn stack_mode() -> StackMode {
    static MODE: OnceLock<StackMode> = OnceLock::new();
    *MODE.get_or_init(detect_mode)
}

#[cold]
fn detect_mode() -> StackMode {
    match std::env::var(STACK_MODE_ENV).as_deref() {
        Ok("mappings") => return StackMode::Mappings,
        Ok("" | "auto") | Err(_) => {}
        Ok(other) => eprintln!(
            "grove: ignoring {STACK_MODE_ENV}={other:?} (\"mappings\" forces one mapping per \
             stack; \"auto\" detects guard regions)"
        ),
    }
    if guard_regions_work() {
        StackMode::GuardRegions
    } else {
        StackMode::Mappings
    }
}

/// Whether `MADV_GUARD_INSTALL` works here: tried on a scratch mapping
/// (kernels before 6.13 answer `EINVAL`).
fn guard_regions_work() -> bool {
    let page = page_size();
    // SAFETY: a fresh anonymous private mapping nothing else knows about.
    let addr = unsafe {
        libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return false;
    }
    // SAFETY: advice on the first page of the mapping made above.
    let works = unsafe { libc::madvise(addr, page, MADV_GUARD_INSTALL) } == 0;
    // SAFETY: unmapping the scratch mapping, which nothing uses.
    unsafe { libc::munmap(addr, 2 * page) };
    works
}

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

/// The smallest stack handed out: whole pages holding the top slot and,
/// below it, the [`corosensei::stack::MIN_STACK_SIZE`] (4,096) usable bytes
/// corosensei's `Stack` trait requires. Two pages where pages are 4 KiB.
pub fn min_stack_size() -> usize {
    let page = page_size();
    (corosensei::stack::MIN_STACK_SIZE + TOP_SLOT).div_ceil(page) * page
}

/// Rounds a requested stack limit up to whole pages, and to at least
/// [`min_stack_size`] (0 included: std's `Builder::stack_size` takes any
/// size and rounds it up to its minimum, and a program that swaps
/// `std::thread` for grove's must still spawn), and checks it: above
/// [`MAX_STACK_SIZE`] is an `InvalidInput` error naming the size.
pub fn validate_stack_size(size: usize) -> io::Result<usize> {
    let page = page_size();
    if size > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stack size {size} is beyond what the address space allows (at most {MAX_STACK_SIZE} bytes)"
            ),
        ));
    }
    Ok((size.div_ceil(page) * page).max(min_stack_size()))
}

/// Bytes at the very top of every stack kept for the coroutine that runs
/// on it (see `coroutine::Coro`): corosensei pushes its frames below them.
pub(crate) const TOP_SLOT: usize = 128;

/// One guarded stack: its own mapping ([`StackMode::Mappings`]) or a slot
/// of a reservation ([`StackMode::GuardRegions`]). Dropping it unmaps it,
/// or releases its pages and gives the slot back.
pub(crate) struct Stack {
    /// Highest address (exclusive); the top slot lies just below it, and
    /// the first frame below that.
    base: usize,
    /// The whole stack, guard page included.
    len: usize,
    valgrind: ManuallyDrop<ValgrindStackRegistration>,
}

impl Stack {
    /// A new stack whose usable part is `size` bytes (a page multiple of
    /// at least [`min_stack_size`]).
    fn map(size: usize) -> io::Result<Stack> {
        debug_assert!(size >= min_stack_size() && size % page_size() == 0);
        let len = size + page_size();
        let low = match stack_mode() {
            StackMode::GuardRegions => ARENA.take(len)?,
            StackMode::Mappings => map_one(len)?,
        };
        Ok(Stack {
            base: low + len,
            len,
            valgrind: ManuallyDrop::new(ValgrindStackRegistration::new(low as *mut u8, len)),
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

    /// The guard page's address range, for the overflow handler (the same
    /// in both modes: the page below the usable part).
    pub(crate) fn guard(&self) -> (usize, usize) {
        let low = self.base - self.len;
        (low, low + page_size())
    }

    /// Gives the pages below the hot watermark back to the kernel. The next
    /// touch commits a fresh zero page, so this is invisible to the stack's
    /// next user.
    fn release_cold_pages(&self) {
        let cold_top = self.base - HOT_WATERMARK;
        let cold_low = self.base - self.len + page_size();
        if cold_top > cold_low {
            // SAFETY: the range lies inside our stack, above the guard page,
            // and no coroutine runs on a pooled stack.
            unsafe { dontneed(cold_low, cold_top - cold_low) };
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: deregister before unmapping, as valgrind expects.
        unsafe { ManuallyDrop::drop(&mut self.valgrind) };
        let low = self.base - self.len;
        match stack_mode() {
            StackMode::GuardRegions => {
                let page = page_size();
                // SAFETY: the usable part of our slot, above its guard
                // page; nothing runs on it any more. The guard stays.
                unsafe { dontneed(low + page, self.len - page) };
                ARENA.give(low, self.len);
            }
            // SAFETY: we own the mapping and nothing runs on it any more.
            StackMode::Mappings => unsafe {
                libc::munmap(low as *mut libc::c_void, self.len);
            },
        }
        BUDGET.mapped.fetch_sub(1, Ordering::Relaxed);
    }
}

// SAFETY: the stack has a guard page (`PROT_NONE`, or a guard region)
// below its usable part, which is at least `min_stack_size` bytes; the
// base corosensei sees is the top less `TOP_SLOT` (kept for the coroutine
// itself), which leaves at least corosensei's `MIN_STACK_SIZE` usable
// bytes below it, and it and the limit (the guard page's low end) are
// 16-byte aligned (pages are, and `TOP_SLOT` is a multiple of 16).
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.base - TOP_SLOT).expect("stack base is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.base - self.len).expect("stack limit is never null")
    }
}

/// Makes the page at `low` a guard region: any access faults.
///
/// # Safety
///
/// The page lies inside a reservation of this module and holds nothing
/// (installing a guard discards what the page held).
unsafe fn install_guard(low: usize) -> io::Result<()> {
    loop {
        // SAFETY: the caller's contract.
        let rc =
            unsafe { libc::madvise(low as *mut libc::c_void, page_size(), MADV_GUARD_INSTALL) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // The kernel may ask to retry (a racing fault on the range).
        if !matches!(err.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
            return Err(err);
        }
    }
}

/// `madvise(MADV_DONTNEED)`: the range's pages go back to the kernel and
/// read as zero when touched again. Failure only keeps them resident.
///
/// # Safety
///
/// The range is page aligned, lies inside memory this module mapped, and
/// holds nothing anyone will read again.
unsafe fn dontneed(low: usize, len: usize) {
    // SAFETY: the caller's contract.
    unsafe { libc::madvise(low as *mut libc::c_void, len, libc::MADV_DONTNEED) };
}

/// [`StackMode::Mappings`]: maps one stack of `len` bytes, guard page
/// included, and makes its lowest page the guard. Returns its low end.
fn map_one(len: usize) -> io::Result<usize> {
    let page = page_size();
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
    if len > HUGE_PAGE {
        // SAFETY: advice on our own mapping; failure only loses the hint.
        unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
    }
    Ok(addr as usize)
}

// ------------------------------------------------ guard-region reservations --

/// Reservations with no slot in use that the process keeps mapped, at most
/// one per slot size, for the next burst of green threads (their guards are
/// installed already); any other reservation is unmapped once empty.
const KEPT_EMPTY: usize = 4;

/// [`StackMode::GuardRegions`]: the process's reservations, by slot size
/// (a stack's length, guard page included).
struct Arena {
    inner: Mutex<ArenaInner>,
}

struct ArenaInner {
    /// Few sizes are in use at once (a runtime's default, and what
    /// `Builder::stack_size` asks for), so a list; a size with no
    /// reservation left is removed.
    classes: Vec<Class>,
    /// Empty reservations kept, over all classes (at most `KEPT_EMPTY`).
    kept_empty: usize,
}

/// The reservations holding slots of one size.
struct Class {
    slot: usize,
    /// By low address.
    reservations: BTreeMap<usize, Reservation>,
    /// Low addresses of the reservations with a free or uncarved slot.
    with_room: BTreeSet<usize>,
    /// Whether one of its reservations is a kept empty one.
    kept_empty: bool,
}

/// One reservation: one mapping, carved into slots from its low end.
struct Reservation {
    len: usize,
    /// Slots it holds.
    slots: usize,
    /// Slots carved so far (their guards installed): `[0, carved)`.
    carved: usize,
    /// Low addresses of carved slots not in use (their pages released).
    free: Vec<usize>,
    /// Slots in use (handed out as a `Stack`).
    in_use: usize,
    /// Empty and kept (counted in `kept_empty`).
    kept: bool,
}

static ARENA: Arena = Arena {
    inner: Mutex::new(ArenaInner {
        classes: Vec::new(),
        kept_empty: 0,
    }),
};

impl Arena {
    /// A slot of `slot` bytes, its lowest page a guard; returns its low end.
    /// New slots come from the lowest reservation with room, so that the
    /// higher ones drain and can be unmapped.
    fn take(&self, slot: usize) -> io::Result<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        let class = match inner.classes.iter().position(|c| c.slot == slot) {
            Some(i) => &mut inner.classes[i],
            None => {
                inner.classes.push(Class {
                    slot,
                    reservations: BTreeMap::new(),
                    with_room: BTreeSet::new(),
                    kept_empty: false,
                });
                inner.classes.last_mut().expect("just pushed")
            }
        };
        let base = match class.with_room.first() {
            Some(&base) => base,
            None => {
                let (base, reservation) = Reservation::map(slot)?;
                class.reservations.insert(base, reservation);
                class.with_room.insert(base);
                base
            }
        };
        let r = class
            .reservations
            .get_mut(&base)
            .expect("a reservation with room is listed");
        let low = match r.free.pop() {
            Some(low) => low,
            None => {
                let low = base + r.carved * slot;
                // SAFETY: the slot's lowest page lies inside the reservation
                // (`carved < slots`, or it would not have room) and has
                // never been handed out.
                unsafe { install_guard(low) }?;
                r.carved += 1;
                low
            }
        };
        if r.kept {
            r.kept = false;
            class.kept_empty = false;
            inner.kept_empty -= 1;
        }
        r.in_use += 1;
        if r.free.is_empty() && r.carved == r.slots {
            class.with_room.remove(&base);
        }
        Ok(low)
    }

    /// Takes back the slot at `low` (its pages already released); unmaps
    /// its reservation if that leaves it empty, unless it is kept (see
    /// `KEPT_EMPTY`).
    fn give(&self, low: usize, slot: usize) {
        let unmap = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let inner = &mut *inner;
            let index = inner
                .classes
                .iter()
                .position(|c| c.slot == slot)
                .expect("a slot's class exists while the slot does");
            let class = &mut inner.classes[index];
            let (&base, r) = class
                .reservations
                .range_mut(..=low)
                .next_back()
                .expect("a slot's reservation exists while the slot does");
            debug_assert!(low < base + r.len && (low - base) % slot == 0);
            r.free.push(low);
            r.in_use -= 1;
            class.with_room.insert(base);
            if r.in_use > 0 {
                None
            } else if !class.kept_empty && inner.kept_empty < KEPT_EMPTY {
                r.kept = true;
                class.kept_empty = true;
                inner.kept_empty += 1;
                None
            } else {
                class.with_room.remove(&base);
                let len = r.len;
                class.reservations.remove(&base);
                if class.reservations.is_empty() {
                    inner.classes.swap_remove(index);
                }
                Some((base, len))
            }
        };
        if let Some((base, len)) = unmap {
            // SAFETY: no slot of this reservation is in use, and it is no
            // longer listed: nothing can hand one out again.
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
        }
    }
}

impl Reservation {
    /// Reserves address space for slots of `slot` bytes: `RESERVATION`
    /// bytes' worth, or one slot if the kernel refuses that much (strict
    /// overcommit accounting ignores `MAP_NORESERVE`).
    fn map(slot: usize) -> io::Result<(usize, Reservation)> {
        let slots = (RESERVATION / slot).max(1);
        let mut result = reserve(slots * slot).map(|addr| (addr, slots));
        if slots > 1
            && result
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::ENOMEM))
        {
            result = reserve(slot).map(|addr| (addr, 1));
        }
        let (base, slots) = result?;
        Ok((
            base,
            Reservation {
                len: slots * slot,
                slots,
                carved: 0,
                free: Vec::new(),
                in_use: 0,
                kept: false,
            },
        ))
    }
}

/// Maps `len` bytes of address space for stacks; returns its low end.
fn reserve(len: usize) -> io::Result<usize> {
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
    // SAFETY: advice on our own mapping; failure only loses the hint (and a
    // touched page could then commit a huge page's worth of neighbours).
    unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
    Ok(addr as usize)
}

// ----------------------------------------------------------- the budget --

/// The process-wide count of stacks held (in use or pooled), and in
/// [`StackMode::Mappings`] the most that `vm.max_map_count` allows.
pub(crate) struct Budget {
    mapped: AtomicUsize,
    /// Most stacks that may be held at once; 0 until first read.
    limit: AtomicUsize,
    /// When `limit` was last computed: milliseconds since [`epoch_ms`]'s
    /// epoch, plus one (0: never).
    computed_ms: AtomicU64,
}

pub(crate) static BUDGET: Budget = Budget {
    mapped: AtomicUsize::new(0),
    limit: AtomicUsize::new(0),
    computed_ms: AtomicU64::new(0),
};

/// How often a stack or spawn refused for the budget re-reads the limit.
/// Counting the process's mappings reads all of `/proc/self/maps`: a few
/// milliseconds with 30,000 of them. Re-read on every refusal, 2,000 green
/// threads left waiting for a stack took 30 s of both workers' time
/// before the last of them was refused once.
const RECOMPUTE_EVERY_MS: u64 = 100;

/// Milliseconds since the first call, plus one.
fn epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1
}

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
    /// Most stacks that may be held at once, computed on first use.
    pub(crate) fn limit(&self) -> usize {
        match self.limit.load(Ordering::Relaxed) {
            0 => self.refresh_limit(),
            limit => limit,
        }
    }

    /// Re-reads `vm.max_map_count`: a benchmark may raise it while we run.
    /// In guard-region mode no mapping limit applies: `usize::MAX`.
    #[cold]
    pub(crate) fn refresh_limit(&self) -> usize {
        let limit = match stack_mode() {
            StackMode::GuardRegions => usize::MAX,
            StackMode::Mappings => {
                let others = current_map_count().saturating_sub(2 * self.mapped());
                (max_map_count().saturating_sub(others + MAP_HEADROOM) / 2).max(1)
            }
        };
        self.limit.store(limit, Ordering::Relaxed);
        self.computed_ms.store(epoch_ms(), Ordering::Relaxed);
        limit
    }

    /// The limit, re-read if it was last read [`RECOMPUTE_EVERY_MS`] ago
    /// or more: for a request the cached limit refuses.
    #[cold]
    pub(crate) fn recheck_limit(&self) -> usize {
        let computed = self.computed_ms.load(Ordering::Relaxed);
        if computed != 0 && epoch_ms().saturating_sub(computed) < RECOMPUTE_EVERY_MS {
            return self.limit();
        }
        self.refresh_limit()
    }

    pub(crate) fn mapped(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    /// Maps (or carves) one stack if the budget allows it.
    fn map(&self, size: usize) -> io::Result<Stack> {
        let mapped = self.mapped.fetch_add(1, Ordering::Relaxed);
        if mapped >= self.limit() && mapped >= self.recheck_limit() {
            self.mapped.fetch_sub(1, Ordering::Relaxed);
            return Err(out_of_stacks(mapped, None));
        }
        Stack::map(size).map_err(|err| {
            self.mapped.fetch_sub(1, Ordering::Relaxed);
            if err.raw_os_error() != Some(libc::ENOMEM) {
                err
            } else if stack_mode() == StackMode::Mappings {
                out_of_stacks(mapped, None)
            } else {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "cannot reserve address space for another green-thread stack of {} KiB \
                         ({mapped} stacks are held): {err}; keep fewer green threads blocked at \
                         once, or give them smaller stacks",
                        size / 1024
                    ),
                )
            }
        })
    }
}

/// The error for "no stack can be had": the runtime's cap
/// (`runtime::Builder::max_stacks`) if given, else (per-stack mappings
/// only) the `vm.max_map_count` budget, naming the limit to raise.
pub(crate) fn out_of_stacks(mapped: usize, runtime_cap: Option<usize>) -> io::Error {
    let msg = match (runtime_cap, stack_mode()) {
        (Some(cap), StackMode::Mappings) => format!(
            "cannot start another green thread: all {cap} stacks this runtime may map are in use \
             (runtime::Builder::max_stacks, a cap below the vm.max_map_count budget of {} \
             memory mappings, 2 per stack); raise the cap, or let some green threads finish first",
            max_map_count()
        ),
        (Some(cap), _) => format!(
            "cannot start another green thread: all {cap} stacks this runtime may hold are in use \
             (runtime::Builder::max_stacks); raise the cap, or let some green threads finish first"
        ),
        (None, _) => format!(
            "cannot map another green-thread stack: {mapped} stacks are mapped and each takes 2 \
             of the {} memory mappings that vm.max_map_count allows; raise it \
             (sysctl -w vm.max_map_count=1048576) or keep fewer green threads blocked at once",
            max_map_count()
        ),
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

/// Number of green-thread stacks this process holds, in use or pooled.
pub fn mapped_stacks() -> usize {
    BUDGET.mapped()
}

/// Most green-thread stacks this process may hold at once. In
/// [`StackMode::Mappings`], what `vm.max_map_count` leaves room for (two
/// mappings per stack, some left to the rest of the program; re-read on
/// every call). In [`StackMode::GuardRegions`] stacks take no mapping of
/// their own and this is `usize::MAX`: memory is the limit.
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
    /// Most stacks this runtime may hold (`max_stacks`), if capped.
    cap: Option<usize>,
    /// Stacks this runtime holds, pooled or in use.
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

    /// Stacks this runtime holds, in use or pooled.
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

    /// What limit a green thread that waits for a stack met (for the
    /// deadlock report): this runtime's cap if it is reached, else the
    /// process's budget of memory maps.
    pub(crate) fn limit_reached(&self) -> io::Error {
        match self.cap {
            Some(cap) if self.mapped() >= cap => out_of_stacks(self.mapped(), Some(cap)),
            _ => out_of_stacks(BUDGET.mapped(), None),
        }
    }

    /// Whether a new stack could be had now (`idle` stacks sit in pools).
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
        if mapped >= BUDGET.limit() && mapped >= BUDGET.recheck_limit() {
            return Err(out_of_stacks(mapped, None));
        }
        Ok(())
    }

    /// A stack of `size` bytes: from the global pool, or a new one.
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
    /// another size, which is simply released).
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

    /// Releases one stack of this runtime (unmaps it, or gives its slot
    /// back to its reservation).
    pub(crate) fn unmap(&self, stack: Stack) {
        self.mapped.fetch_sub(1, Ordering::Relaxed);
        drop(stack);
    }

    /// Releases everything pooled (runtime shutdown).
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
        assert_eq!(validate_stack_size(16 * page + 1).unwrap(), 17 * page);
        for small in [0, 1, page - 1, page] {
            assert_eq!(validate_stack_size(small).unwrap(), min_stack_size());
        }
        assert_eq!(
            validate_stack_size(usize::MAX).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn the_smallest_stack_leaves_corosensei_its_minimum() {
        use corosensei::stack::{Stack as _, MIN_STACK_SIZE};
        let page = page_size();
        // One page is accepted, and rounded up to what corosensei needs
        // below the top slot.
        let size = validate_stack_size(page).unwrap();
        assert_eq!(size, min_stack_size());
        assert!(size - TOP_SLOT >= MIN_STACK_SIZE, "{size}");
        let pool = StackPool::new(size, None);
        let Ok(stack) = pool.get(size) else {
            panic!("mapping a stack failed")
        };
        let usable = stack.base().get() - (stack.limit().get() + page);
        assert!(usable >= MIN_STACK_SIZE, "{usable} usable bytes");
        pool.unmap(stack);
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
        let err = pool.check_spawn(0).unwrap_err().to_string();
        assert!(err.contains("max_stacks"), "{err}");
        assert_eq!(
            err.contains("vm.max_map_count"),
            stack_mode() == StackMode::Mappings,
            "{err}"
        );
        pool.unmap(first);
        assert!(pool.check_spawn(0).is_ok());
    }

    /// Lines of `/proc/self/maps`.
    fn maps() -> usize {
        current_map_count()
    }

    #[test]
    fn guard_regions_carve_many_stacks_from_one_mapping_and_reuse_slots() {
        if stack_mode() != StackMode::GuardRegions {
            eprintln!("skipped: this process uses one mapping per stack");
            return;
        }
        // A slot size no other test uses, so that this test owns its class.
        let size = 20 * page_size();
        let slot = size + page_size();
        let before = maps();
        let stacks: Vec<Stack> = (0..2000).map(|_| BUDGET.map(size).unwrap()).collect();
        // Other tests of this binary map and unmap meanwhile: a margin.
        let after = maps();
        assert!(
            after < before + 100,
            "2,000 stacks took {} mappings",
            after.saturating_sub(before)
        );
        // Carved one after another: consecutive slots.
        let lows: Vec<usize> = stacks.iter().map(|s| s.guard().0).collect();
        assert!(
            lows.windows(2).all(|w| w[1] == w[0] + slot),
            "not consecutive"
        );
        // Every slot is usable to its guard, and its bytes are released
        // when it is freed: a reused slot reads zero.
        for s in &stacks {
            let (_, guard_top) = s.guard();
            // SAFETY: both words lie in the stack's usable part.
            unsafe {
                (guard_top as *mut u64).write_volatile(1);
                ((s.base - 8) as *mut u64).write_volatile(2);
            }
        }
        let first = lows[0];
        // One kept in use: an empty reservation is unmapped unless it is one
        // of the process's few kept empty ones, which other tests of this
        // binary may hold meanwhile.
        let mut stacks = stacks;
        let held = stacks.pop().unwrap();
        drop(stacks);
        let again = BUDGET.map(size).unwrap();
        assert!(again.guard().0 >= first && again.guard().0 < first + 2000 * slot);
        assert_ne!(again.guard().0, held.guard().0);
        // SAFETY: the lowest usable word of a live stack.
        let lowest = unsafe { (again.guard().1 as *const u64).read_volatile() };
        assert_eq!(lowest, 0, "a reused slot's pages were released");
        drop(again);
        drop(held);
    }

    /// The reservations of slot size `slot`: (count, kept empty ones).
    fn reservations_of(slot: usize) -> (usize, usize) {
        let inner = ARENA.inner.lock().unwrap();
        inner
            .classes
            .iter()
            .find(|c| c.slot == slot)
            .map_or((0, 0), |c| {
                let kept = c.reservations.values().filter(|r| r.kept).count();
                (c.reservations.len(), kept)
            })
    }

    #[test]
    fn drained_reservations_are_unmapped_but_one_per_size_at_most() {
        if stack_mode() != StackMode::GuardRegions {
            eprintln!("skipped: this process uses one mapping per stack");
            return;
        }
        // 64 MiB stacks: 15 to a reservation, so 20 take two.
        let size = 64 << 20;
        let slot = size + page_size();
        let stacks: Vec<Stack> = (0..20).map(|_| BUDGET.map(size).unwrap()).collect();
        assert_eq!(reservations_of(slot).0, 2);
        drop(stacks);
        let (left, kept) = reservations_of(slot);
        assert!(
            left <= 1 && kept == left,
            "{left} reservations left, {kept} kept"
        );

        // Many sizes, one stack each, one after another: the empty
        // reservations kept stay few, and sizes without one are forgotten.
        let sizes: Vec<usize> = (0..40).map(|i| (100 + i) * page_size()).collect();
        for &size in &sizes {
            drop(BUDGET.map(size).unwrap());
        }
        let left: usize = sizes
            .iter()
            .map(|&size| reservations_of(size + page_size()).0)
            .sum();
        assert!(left <= KEPT_EMPTY, "{left} empty reservations kept");
        let inner = ARENA.inner.lock().unwrap();
        assert!(inner.kept_empty <= KEPT_EMPTY);
        assert!(
            inner.classes.len() <= KEPT_EMPTY + 8,
            "{} sizes",
            inner.classes.len()
        );
    }
}
