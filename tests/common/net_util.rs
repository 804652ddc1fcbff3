//! Helpers shared by the socket tests (`tests/net_*.rs`): worker sweeps of
//! 1, 2 and 4, a byte pattern that says where a lost or duplicated byte
//! went, counts of the process's descriptors and mappings, and a loopback
//! listener whose backlog is full.
//!
//! Included with `#[path = "common/net_util.rs"] mod net_util;`; the helpers
//! all tests share come from `base.rs`. Each test binary uses a subset.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};

#[path = "base.rs"]
mod base;
#[allow(unused_imports)] // each test binary uses a subset
pub use base::*;

/// The worker counts the socket tests sweep.
pub const NET_WORKERS: [usize; 3] = [1, 2, 4];

/// Under one watchdog, runs `f(workers)` as the main green thread of a
/// fresh runtime of 1, 2 and 4 workers.
pub fn on_each_runtime<F>(f: F)
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let f = std::sync::Arc::new(f);
    watchdog(move || {
        for workers in NET_WORKERS {
            let f = f.clone();
            let run = AssertUnwindSafe(|| runtime(workers).block_on(move || f(workers)));
            if let Err(payload) = panic::catch_unwind(run) {
                eprintln!("test failed with {workers} worker(s)");
                panic::resume_unwind(payload);
            }
        }
    });
}

/// Byte `i` of stream `stream`: a lost, duplicated or reordered byte shows.
pub fn pattern(stream: u64, i: u64) -> u8 {
    (i.wrapping_mul(31).wrapping_add(stream.wrapping_mul(7)) % 251) as u8
}

/// Writes `len` bytes of `stream`'s pattern, in chunks of up to `chunk`.
pub fn write_pattern(mut w: impl Write, stream: u64, len: u64, chunk: usize) -> io::Result<()> {
    let mut buf = vec![0u8; chunk];
    let mut sent = 0;
    while sent < len {
        let n = chunk.min((len - sent) as usize);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(stream, sent + k as u64);
        }
        w.write_all(&buf[..n])?;
        sent += n as u64;
    }
    Ok(())
}

/// Reads to end of stream in reads of up to `chunk`, checking every byte
/// against `stream`'s pattern; returns how many came.
pub fn read_pattern(mut r: impl Read, stream: u64, chunk: usize) -> io::Result<u64> {
    let mut buf = vec![0u8; chunk];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(got);
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            let at = got + k as u64;
            assert_eq!(
                b,
                pattern(stream, at),
                "stream {stream}: byte {at} is wrong"
            );
        }
        got += n as u64;
    }
}

/// The process's open file descriptors.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The process's memory mappings.
pub fn maps_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .count()
}

/// Whether `fd` is open.
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed one is
    // an EBADF error.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Whether `fd` has `O_NONBLOCK` set.
pub fn is_nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL only reads the descriptor's status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A loopback TCP listener with a backlog of zero that never accepts, and
/// its address: once a connection or two sit in its queue, further SYNs
/// are dropped, so a connect to it waits until it times out. (std's `bind`
/// listens with a large backlog; this one is made with libc.)
pub fn full_backlog_listener() -> (OwnedFd, std::net::SocketAddr) {
    // SAFETY: socket(2) with constant arguments; the result is checked
    // before it is owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_in is valid; its fields are set below.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sin` is a valid sockaddr_in of `len` bytes for the call.
    let r = unsafe { libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len) };
    assert_eq!(r, 0, "bind: {}", io::Error::last_os_error());
    // SAFETY: listen(2) on the socket owned above.
    let r = unsafe { libc::listen(fd, 0) };
    assert_eq!(r, 0, "listen: {}", io::Error::last_os_error());
    let mut len = len;
    // SAFETY: getsockname writes at most `len` bytes into `sin`.
    let r = unsafe { libc::getsockname(fd, (&mut sin as *mut libc::sockaddr_in).cast(), &mut len) };
    assert_eq!(r, 0, "getsockname: {}", io::Error::last_os_error());
    let port = u16::from_be(sin.sin_port);
    (owned, (std::net::Ipv4Addr::LOCALHOST, port).into())
}

/// Sets the `SOL_SOCKET` option `name` of `fd` to `value`.
pub fn set_socket_option<T>(fd: i32, name: libc::c_int, value: &T) {
    // SAFETY: `value` is a live `T` of the size passed, read by the call.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// Sets `SO_LINGER` to zero seconds: closing the socket then resets the
/// connection (RST) instead of closing it gracefully.
pub fn linger_zero(fd: i32) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_socket_option(fd, libc::SO_LINGER, &linger);
}

/// Sets `SO_RCVTIMEO` (std has no setter for a listener's; socket2's
/// `set_read_timeout` does this).
pub fn set_receive_timeout(fd: i32, timeout: std::time::Duration) {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    set_socket_option(fd, libc::SO_RCVTIMEO, &tv);
}

/// The soft limit on open descriptors.
pub fn nofile_limit() -> libc::rlimit {
    // SAFETY: an all-zero rlimit is valid; getrlimit fills it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit writes one rlimit.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(r, 0, "getrlimit: {}", io::Error::last_os_error());
    lim
}

/// Sets the soft limit on open descriptors.
pub fn set_nofile_limit(soft: u64) {
    let mut lim = nofile_limit();
    lim.rlim_cur = soft as libc::rlim_t;
    // SAFETY: setrlimit reads one valid rlimit.
    let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(r, 0, "setrlimit: {}", io::Error::last_os_error());
}
