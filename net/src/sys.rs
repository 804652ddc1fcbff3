//! The system calls std does not make the way a server needs them:
//! writes that never raise `SIGPIPE`, a look at a socket's read
//! shutdown, and the flags std's Linux extension sets (`TCP_QUICKACK`).
//!
//! std's `TcpStream::write` sends with `MSG_NOSIGNAL`, but its vectored
//! write is `writev(2)`, and every `UnixStream` write is `write(2)`: a
//! write to a peer that has gone raises `SIGPIPE`, which kills a process
//! that has not ignored it (Rust's `main` ignores it; a library inside a C
//! program, or a binary built with `-Zon-broken-pipe=kill`, does not). These
//! send with `MSG_NOSIGNAL` instead, so the write fails with `EPIPE`.

use std::io::{self, IoSlice};
use std::os::fd::RawFd;

/// Flags of every stream write: no `SIGPIPE`, never block (the socket is
/// non-blocking already; `MSG_DONTWAIT` keeps a write from blocking even if
/// somebody cleared `O_NONBLOCK` through another handle of it).
const FLAGS: libc::c_int = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;

/// `send(2)` of `buf` on the stream socket `fd`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call;
    // send(2) only reads it. A bad `fd` is an error, not undefined behaviour.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), FLAGS) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `sendmsg(2)` of `bufs` (gathered) on the stream socket `fd`.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // The kernel takes at most IOV_MAX (1024 on Linux) slices at once; a
    // short write of the first 1024 is a valid answer.
    let count = bufs.len().min(1024);
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (its documented
    // guarantee), and sendmsg(2) only reads the slices.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = count as _;
    // SAFETY: `msg` points to `count` valid iovecs, borrowed for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, FLAGS) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether the socket `fd`'s reading half is shut down (by this end's
/// `shutdown(Read)`, or a connected datagram peer's `shutdown(Write)`):
/// `poll(2)` reports `POLLRDHUP` then. A Unix datagram socket's
/// non-blocking receive says `EAGAIN` there, where a blocking one (std's)
/// returns 0: only the kernel's blocking wait turns the shutdown into an
/// end.
pub(crate) fn read_shut_down(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, borrowed for the call; no wait.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n == 1 && pfd.revents & libc::POLLRDHUP != 0
}

/// `setsockopt(2)` of an `int` flag.
pub(crate) fn set_bool_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    on: bool,
) -> io::Result<()> {
    let value = libc::c_int::from(on);
    // SAFETY: `value` is a live `c_int`, and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `getsockopt(2)` of an `int` flag.
pub(crate) fn bool_opt(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<bool> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and describe a `c_int` buffer.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value != 0)
    }
}

/// The receive timeout (`SO_RCVTIMEO`) of the socket `fd`: `None` where it
/// is zero (no timeout), as std's `read_timeout` reads it.
pub(crate) fn rcv_timeout(fd: RawFd) -> io::Result<Option<std::time::Duration>> {
    // SAFETY: an all-zero timeval is a valid value to be overwritten.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are live and describe a `timeval` buffer.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if tv.tv_sec == 0 && tv.tv_usec == 0 {
        return Ok(None);
    }
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(tv.tv_usec).unwrap_or(0) * 1000;
    Ok(Some(std::time::Duration::new(secs, nanos)))
}
