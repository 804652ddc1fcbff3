//! The two system calls std does not make the way a server needs them:
//! writes that never raise `SIGPIPE`.
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
