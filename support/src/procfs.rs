//! Readings from `/proc` (and `sysconf`) about this process and the
//! system's mapping limit.

use std::io;

/// Where the kernel keeps the system-wide limit on a process's mappings.
pub const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

/// `vm.max_map_count` now, or why it cannot be read.
pub fn max_map_count() -> io::Result<usize> {
    let text = std::fs::read_to_string(MAX_MAP_COUNT)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot read {MAX_MAP_COUNT}: {err}")))?;
    text.trim().parse().map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{MAX_MAP_COUNT} holds {text:?}: {err}"),
        )
    })
}

/// Memory mappings of this process now (lines of `/proc/self/maps`);
/// 1,024 if it cannot be read.
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(1024)
}

/// The process's resident set size, in bytes (`/proc/self/statm`).
///
/// # Panics
///
/// If `/proc/self/statm` cannot be read or parsed (not Linux).
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
/// reading that follows counts fresh allocations rather than reused ones
/// (glibc keeps freed chunks resident).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_sane() {
        let limit = max_map_count().expect("Linux has the setting");
        assert!(limit > 0);
        assert!(map_count() > 0);
        assert!(rss_bytes() > 0);
        assert!(page_size().is_power_of_two());
    }
}
