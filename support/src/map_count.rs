//! [`MapCountGuard`]: `vm.max_map_count` raised for a measurement or a
//! test, and put back.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use grove_scheduler::stack::{self, StackMode};

use crate::procfs::{self, MAX_MAP_COUNT};

/// Serialises the guards of concurrent processes (a benchmark's `--test`
/// smoke run beside a real run, a test beside a benchmark), so that one
/// never takes another's raised value for the original.
/// (The name is older than this crate: processes built before it take the
/// same lock.)
const LOCK_FILE: &str = "/tmp/grove-bench-max-map-count.lock";

/// Mappings left to the rest of the process (allocator arenas, thread
/// stacks, the runtime's own) on top of what a guard is asked to hold.
const HEADROOM: usize = 16 * 1024;

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
/// Guards take turns across processes (a lock file). So that a guard never
/// undoes someone else's raise under them, it restores the old value only
/// if the limit still holds the value it wrote, and says so when it does
/// not. Messages go to stderr as lines starting `note:`.
///
/// ```no_run
/// use grove_test_support::MapCountGuard;
///
/// let needed = MapCountGuard::needed_for_stacks(100_000);
/// match MapCountGuard::raise_to(needed) {
///     Ok(_guard) => { /* 100,000 green threads parked at once */ }
///     Err(reason) => eprintln!("skipped: {reason}"),
/// }
/// ```
#[derive(Debug)]
pub struct MapCountGuard {
    /// The value found and the value written, if this guard wrote one.
    raised: Option<(usize, usize)>,
    _lock: Option<FileLock>,
}

impl MapCountGuard {
    /// Makes sure `vm.max_map_count` is at least `needed`; a guard that
    /// writes nothing when it already is. `Err` with the reason (and what
    /// to run instead) when it cannot be read or written, e.g. without
    /// root or with a read-only `/proc/sys`.
    pub fn raise_to(needed: usize) -> io::Result<MapCountGuard> {
        // Held even when nothing is raised: the limit found may be another
        // process's raise, which it would restore under us.
        let lock = FileLock::acquire().ok();
        let old = procfs::max_map_count()?;
        if old >= needed {
            return Ok(MapCountGuard {
                raised: None,
                _lock: lock,
            });
        }
        std::fs::write(MAX_MAP_COUNT, needed.to_string())
            .map_err(|err| cannot_raise(old, needed, &err))?;
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            eprintln!(
                "note: raising vm.max_map_count from {old} to {needed} while it is needed (if \
                 this process dies before restoring it: sysctl -w vm.max_map_count={old})"
            );
        }
        Ok(MapCountGuard {
            raised: Some((old, needed)),
            _lock: lock,
        })
    }

    /// Whether [`MapCountGuard::raise_to`]`(needed)` would succeed, without
    /// changing anything: `Err` with the reason when it would not.
    pub fn check_raise_to(needed: usize) -> io::Result<()> {
        let old = procfs::max_map_count()?;
        if old >= needed {
            return Ok(());
        }
        let path = std::ffi::CString::new(MAX_MAP_COUNT).expect("no NUL in a path");
        // SAFETY: access only reads the NUL-terminated path it is given.
        if unsafe { libc::access(path.as_ptr(), libc::W_OK) } != 0 {
            return Err(cannot_raise(old, needed, &io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Whether this guard wrote a raised limit (and will restore the old).
    pub fn raised(&self) -> bool {
        self.raised.is_some()
    }

    /// A closure that raises the limit again if another process lowered it
    /// meanwhile (for a long test run on a machine others use); it does
    /// nothing for a guard that raised nothing. The guard keeps the
    /// restore.
    pub fn reasserter(&self) -> impl Fn() + Send + 'static {
        let ours = self.raised.map(|(_, needed)| needed);
        move || {
            let Some(needed) = ours else { return };
            if procfs::max_map_count().is_ok_and(|now| now < needed) {
                eprintln!(
                    "note: vm.max_map_count was lowered by another process; raising it again"
                );
                let _ = std::fs::write(MAX_MAP_COUNT, needed.to_string());
            }
        }
    }

    /// The limit needed for `stacks` more green-thread stacks on top of
    /// what this process maps now, with headroom. It follows grove's stack
    /// mode ([`stack::stack_mode`]): two mappings per stack where each is
    /// its own mapping; in guard-region mode one per reservation of
    /// thousands of stacks, which the default `vm.max_map_count` (65530)
    /// covers for millions.
    pub fn needed_for_stacks(stacks: usize) -> usize {
        let for_stacks = match stack::stack_mode() {
            StackMode::Mappings => 2 * stacks,
            // A 1 GiB reservation holds 4,032 stacks of the default 256
            // KiB; 1,024 leaves room for stacks up to 1 MiB.
            _ => stacks / 1024 + 1,
        };
        for_stacks + procfs::map_count() + HEADROOM
    }

    /// The limit needed for `threads` more OS threads (a stack and its
    /// guard page each: two mappings) on top of what this process maps
    /// now, with headroom.
    pub fn needed_for_thread_stacks(threads: usize) -> usize {
        2 * threads + procfs::map_count() + HEADROOM
    }
}

fn cannot_raise(old: usize, needed: usize, err: &io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!(
            "vm.max_map_count is {old}, below the {needed} needed, and raising it failed \
             ({err}); run as root or `sysctl -w vm.max_map_count={needed}`"
        ),
    )
}

impl Drop for MapCountGuard {
    fn drop(&mut self) {
        let Some((old, ours)) = self.raised else {
            return;
        };
        match procfs::max_map_count() {
            Ok(now) if now == ours => {
                if let Err(err) = std::fs::write(MAX_MAP_COUNT, old.to_string()) {
                    eprintln!(
                        "note: FAILED to restore vm.max_map_count to {old}: {err}; \
                         run: sysctl -w vm.max_map_count={old}"
                    );
                }
            }
            now => eprintln!(
                "note: vm.max_map_count was changed by another process while raised \
                 (to {now:?}); leaving it to that process (it was {old} before)"
            ),
        }
        // grove caches its stack budget; let it see the current limit.
        let _ = stack::stack_budget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guard asked for no more than the limit already allows writes
    /// nothing, so it runs anywhere (root or not).
    #[test]
    fn a_guard_that_is_not_needed_changes_nothing() {
        let before = procfs::max_map_count().expect("readable");
        let guard = MapCountGuard::raise_to(before).expect("no raise needed");
        assert!(!guard.raised());
        MapCountGuard::check_raise_to(before).expect("no raise needed");
        drop(guard);
        assert_eq!(procfs::max_map_count().unwrap(), before);
    }

    #[test]
    fn needs_count_what_the_process_maps_already() {
        let now = procfs::map_count();
        assert!(MapCountGuard::needed_for_thread_stacks(10) >= now + 20);
        assert!(MapCountGuard::needed_for_stacks(0) > now);
    }
}
