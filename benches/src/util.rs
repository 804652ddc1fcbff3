//! What every workload shares: building the runtimes under test, checking
//! results, reading the resident set size, and raising `vm.max_map_count`
//! for the duration of a measurement where a runtime needs it (may always;
//! grove only where each of its stacks is a mapping of its own, see
//! [`MapCountGuard::needed_for_stacks`]).

use std::fmt::Debug;
use std::io;
use std::sync::OnceLock;

/// Worker threads for every runtime under test: one per core, as Go's
/// `GOMAXPROCS` default, unless `GROVE_BENCH_WORKERS` says otherwise.
pub fn workers() -> usize {
    std::env::var("GROVE_BENCH_WORKERS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Panics loudly when a workload computed the wrong answer: a fast wrong
/// answer is a bug, never a result.
#[track_caller]
pub fn check<T: PartialEq + Debug>(what: &str, got: T, want: T) {
    if got != want {
        panic!("{what}: WRONG RESULT: got {got:?}, want {want:?}");
    }
}

/// A grove runtime with `workers` workers and the default stack limit.
pub fn grove_runtime(workers: usize) -> grove::Runtime {
    grove::Runtime::builder()
        .workers(workers)
        .thread_name("bench-grove")
        .build()
        .expect("cannot build a grove runtime")
}

/// A multi-thread tokio runtime with `workers` workers.
pub fn tokio_multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("cannot build a tokio runtime")
}

/// A current-thread tokio runtime (everything runs on the caller).
pub fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("cannot build a tokio runtime")
}

/// A rayon pool with `workers` threads.
pub fn rayon_pool(workers: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("bench-rayon-{i}"))
        .build()
        .expect("cannot build a rayon pool")
}

/// Configures may's one global scheduler, once per process: may reads its
/// configuration when it starts, on the first spawn, and never again. The
/// first caller's `workers` wins; returns the worker count in force.
pub fn may_init(workers: usize) -> usize {
    static WORKERS: OnceLock<usize> = OnceLock::new();
    *WORKERS.get_or_init(|| {
        may::config().set_workers(workers);
        // Pinning workers to cores helps nobody on a shared 2-vCPU VM, and
        // grove, tokio and Go do not pin either.
        may::config().set_worker_pin(false);
        workers
    })
}

/// Spawns a may coroutine.
///
/// may's spawn is `unsafe` (its `go!` macro only hides the `unsafe`
/// block): a coroutine that touches thread-local storage may find another
/// thread's, and one that overflows its fixed 32 KiB stack (no guard
/// check on every frame) is undefined behaviour. The closures the
/// workloads pass here do plain arithmetic, atomics, may's own
/// join/park/yield and further spawns, with a few frames of stack.
///
/// Each live coroutine holds a stack of two memory mappings, so at the
/// default `vm.max_map_count` (65530) may runs out at about 32,000 live
/// coroutines, and then this panics ("failed to alloc sys stack"); see
/// [`may_fit`].
pub fn may_go<F, T>(f: F) -> may::coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: see the doc comment: the workloads' closures use no
    // thread-local storage of their own and little stack.
    unsafe { may::coroutine::spawn(f) }
}

/// Mappings held back from the may budget for everything else the process
/// maps (allocator arenas, thread stacks, grove's pooled stacks...).
const MAY_MAP_HEADROOM: usize = 8192;

/// How many may coroutines can be alive at once in this process now: two
/// mappings per coroutine stack, under `vm.max_map_count`.
pub fn may_capacity() -> usize {
    let max = read_max_map_count().unwrap_or(65530);
    let used = current_map_count();
    // Mappings of may's pooled coroutines are already in `used`.
    max.saturating_sub(used + MAY_MAP_HEADROOM) / 2
}

/// `n`, or fewer if `n` live may coroutines would not fit under
/// `vm.max_map_count` (may then panics, or worse): the largest of 1, 2 or
/// 5 times a power of ten that fits. Prints a note when it scales down, so
/// a report never silently compares different sizes.
pub fn may_fit(workload: &str, n: usize) -> usize {
    let fit = may_fit_quiet(n);
    if fit < n {
        eprintln!(
            "{workload}/may: {n} live coroutines do not fit under vm.max_map_count = {} \
             (about {} do); using {fit}",
            read_max_map_count().unwrap_or(65530),
            may_capacity()
        );
    }
    fit
}

/// [`may_fit`] without the note: the caller reports the size it got.
pub fn may_fit_quiet(n: usize) -> usize {
    let cap = may_capacity();
    if n <= cap {
        return n;
    }
    let mut fit = 1;
    let mut power = 1;
    while power <= cap {
        for step in [1, 2, 5] {
            if step * power <= cap {
                fit = step * power;
            }
        }
        power *= 10;
    }
    fit
}

/// The process's resident set size, in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("cannot read /proc/self/statm");
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad /proc/self/statm: {statm:?}"));
    resident * page_size() as u64
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        page as usize
    } else {
        4096
    }
}

/// Returns the allocator's free memory to the kernel, so that an RSS
/// measurement that follows counts fresh allocations rather than reused
/// ones (glibc keeps freed chunks resident).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Mappings in this process now (lines of `/proc/self/maps`).
pub fn current_map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(1024)
}

const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

fn read_max_map_count() -> Option<usize> {
    std::fs::read_to_string(MAX_MAP_COUNT)
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Serialises the `vm.max_map_count` guards of concurrent benchmark
/// processes (say, a `--test` smoke run beside a real run), so that one
/// never takes another's raised value for the original.
const LOCK_FILE: &str = "/tmp/grove-bench-max-map-count.lock";

/// An exclusive `flock` on [`LOCK_FILE`], released when dropped (or when
/// the process dies).
#[derive(Debug)]
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn acquire() -> io::Result<FileLock> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// Raises `vm.max_map_count` (system-wide: it needs root) for as long as
/// it lives, and puts the old value back when dropped, on unwinding too.
///
/// The setting is global: while a guard lives, other processes on the
/// machine see the raised limit as well, so keep guards short-lived.
/// Guards of benchmark processes take turns (a lock file). Another program
/// that raises and restores the limit meanwhile (such as the `scale`
/// integration test) is not part of that: so that neither undoes the
/// other's raise under it, a guard restores the old value only if the
/// limit still holds the value it wrote, and says so when it does not.
#[derive(Debug)]
pub struct MapCountGuard {
    /// The value found and the value written, if this guard wrote one.
    raised: Option<(usize, usize)>,
    _lock: Option<FileLock>,
}

impl MapCountGuard {
    /// Makes sure `vm.max_map_count` is at least `needed`; a no-op guard
    /// when it already is. Errors (with the reason) when it cannot be read
    /// or written, e.g. without root or with a read-only `/proc/sys`.
    pub fn raise_to(needed: usize) -> io::Result<MapCountGuard> {
        // Held even when nothing is raised: the limit found may be another
        // benchmark process's raise, which it would restore under us.
        let lock = FileLock::acquire().ok();
        let old = read_max_map_count().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot read {MAX_MAP_COUNT}"),
            )
        })?;
        if old >= needed {
            return Ok(MapCountGuard {
                raised: None,
                _lock: lock,
            });
        }
        std::fs::write(MAX_MAP_COUNT, needed.to_string()).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot raise {MAX_MAP_COUNT} from {old} to {needed}: {err}"),
            )
        })?;
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "bench: raising vm.max_map_count from {old} to {needed} during each such \
                 measurement (if this process dies before restoring it: \
                 sysctl -w vm.max_map_count={old})"
            );
        }
        Ok(MapCountGuard {
            raised: Some((old, needed)),
            _lock: lock,
        })
    }

    /// Whether this guard wrote a raised limit (and will restore the old).
    pub fn raised(&self) -> bool {
        self.raised.is_some()
    }

    /// Whether [`MapCountGuard::raise_to`]`(needed)` would succeed, without
    /// changing anything: `Err` with the reason when it would not.
    pub fn check_raise_to(needed: usize) -> io::Result<()> {
        let old = read_max_map_count().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot read {MAX_MAP_COUNT}"),
            )
        })?;
        if old >= needed {
            return Ok(());
        }
        let path = std::ffi::CString::new(MAX_MAP_COUNT).expect("no NUL in a path");
        // SAFETY: access only reads the NUL-terminated path it is given.
        if unsafe { libc::access(path.as_ptr(), libc::W_OK) } != 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("cannot raise {MAX_MAP_COUNT} from {old} to {needed}: {err}"),
            ));
        }
        Ok(())
    }

    /// The mapping count needed for `stacks` more grove green-thread
    /// stacks on top of what this process maps now, with headroom. It
    /// follows grove's stack mode ([`grove::runtime::stack_mode`]): two
    /// mappings per stack where each is its own mapping; in guard-region
    /// mode one per reservation of thousands of stacks, which the default
    /// `vm.max_map_count` (65530) covers for millions.
    pub fn needed_for_stacks(stacks: usize) -> usize {
        let for_stacks = match grove::runtime::stack_mode() {
            grove::runtime::StackMode::Mappings => 2 * stacks,
            // A 1 GiB reservation holds 4,032 stacks of the default 256
            // KiB; 1,024 leaves room for stacks up to 1 MiB.
            _ => stacks / 1024 + 1,
        };
        for_stacks + current_map_count() + 16 * 1024
    }

    /// The mapping count needed for `threads` more OS threads (a stack and
    /// its guard page each: two mappings) on top of what this process maps
    /// now, with headroom.
    pub fn needed_for_thread_stacks(threads: usize) -> usize {
        2 * threads + current_map_count() + 16 * 1024
    }
}

impl Drop for MapCountGuard {
    fn drop(&mut self) {
        let Some((old, ours)) = self.raised else {
            return;
        };
        match read_max_map_count() {
            Some(now) if now == ours => {
                if let Err(err) = std::fs::write(MAX_MAP_COUNT, old.to_string()) {
                    eprintln!(
                        "bench: FAILED to restore vm.max_map_count to {old}: {err}; \
                         run: sysctl -w vm.max_map_count={old}"
                    );
                }
            }
            now => eprintln!(
                "bench: vm.max_map_count was changed by another process while raised \
                 (to {now:?}); leaving it to that process (it was {old} before this \
                 measurement)"
            ),
        }
        // grove caches its stack budget; let it see the current limit.
        let _ = grove::runtime::stack_budget();
    }
}
