//! [`Socket`]: a std socket in non-blocking mode and the registrations a
//! green thread waits on; every type of this crate is one of these.
//!
//! # An operation
//!
//! 1. The system call is made through the std socket (non-blocking), with
//!    the readiness word of the socket's registration read first (see
//!    `grove_scheduler::io`) if it has one.
//! 2. Anything but `WouldBlock` is the answer.
//! 3. `WouldBlock` in a green thread: the socket is registered with the
//!    green thread's runtime if it is not yet (the first wait), and the
//!    green thread parks until the poller says the socket is ready for
//!    that direction; then step 1 again. On a plain OS thread, `poll(2)`
//!    blocks the thread instead.
//! 4. The first time a wait is needed, the socket's timeout for that
//!    direction is read back from the kernel (`SO_RCVTIMEO`/`SO_SNDTIMEO`,
//!    set by std's setters, which a non-blocking socket otherwise ignores)
//!    and bounds the whole operation. So timeouts belong to the socket, as
//!    in std: one set through a handle applies to its `try_clone`s. An
//!    elapsed timeout returns `WouldBlock` (`EAGAIN`), as std on Unix; the
//!    system call that would have moved bytes was never made, so none is
//!    lost or duplicated.
//!
//! # Registrations
//!
//! A socket is registered (once, edge-triggered, both directions) with the
//! runtime of the first green thread that waits on it: `home`. A green
//! thread of another runtime (the socket was handed on, or its first
//! runtime was dropped) registers it with its own in `others`, kept until
//! the socket drops; those of runtimes that stopped are dropped when
//! another is added. Registrations are made under the `others` lock, so
//! two green threads never register the same descriptor with one poller.
//!
//! Field order is drop order: the registrations go (deregistering the
//! descriptor) before the std socket closes it.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use grove_scheduler::io::{self as sio, Direction, Registration};
use grove_scheduler::park;

/// What a wait that runs out of time returns.
#[derive(Clone, Copy)]
pub(crate) enum Expiry {
    /// A read or write timeout: `WouldBlock` (`EAGAIN`), as std on Unix.
    WouldBlock,
    /// `connect_timeout`: `TimedOut`, as std.
    TimedOut,
    /// A TCP read or peek of nothing: `Ok(0)` (see `Socket::io_read_nothing`);
    /// the wait's own error is kept for the caller to turn into that.
    Empty,
}

pub(crate) struct Socket<S> {
    home: OnceLock<Registration>,
    others: Mutex<Vec<Arc<Registration>>>,
    /// Set by `set_nonblocking(true)`: operations return `WouldBlock`
    /// instead of waiting. (The descriptor itself is always non-blocking.)
    /// Shared by the handles `try_clone` makes: in std the mode is the
    /// socket's (`O_NONBLOCK` belongs to the open file, which `dup`
    /// shares), so setting it through one handle sets it for all.
    nonblocking: Arc<AtomicBool>,
    sock: S,
}

// A socket is a descriptor and its registrations, as std's sockets (which
// are unwind safe): a panic cannot leave one half changed. Makes every
// public socket type unwind safe.
impl<S> std::panic::UnwindSafe for Socket<S> {}
impl<S> std::panic::RefUnwindSafe for Socket<S> {}

/// A registration to wait on: the home one, or another runtime's.
enum Reg<'a> {
    Home(&'a Registration),
    Other(Arc<Registration>),
}

impl std::ops::Deref for Reg<'_> {
    type Target = Registration;

    fn deref(&self) -> &Registration {
        match self {
            Reg::Home(r) => r,
            Reg::Other(r) => r,
        }
    }
}

/// What the kernel reports of a socket type's write side.
pub(crate) trait WriteEvents {
    /// Whether a write shutdown may come with no event: a Unix socket's
    /// (Linux's `unix_poll` reports writable only from the room in the
    /// sender's buffer, and its shutdown's wake-up carries no event bit),
    /// shut through another handle of it (a `try_clone`) or by its peer's
    /// read shutdown. A writer that found the socket full would wait for
    /// an event that never comes, where std's blocking write returns
    /// `BrokenPipe` at once; so such writes try again now and then (see
    /// `Socket::io_polled`).
    const SILENT_WRITE_SHUTDOWN: bool;
}

macro_rules! write_events {
    ($($ty:ty => $silent:expr),* $(,)?) => {
        $(impl WriteEvents for $ty {
            const SILENT_WRITE_SHUTDOWN: bool = $silent;
        })*
    };
}

write_events! {
    std::net::TcpStream => false,
    std::net::TcpListener => false,
    std::net::UdpSocket => false,
    std::os::unix::net::UnixStream => true,
    std::os::unix::net::UnixListener => false,
    std::os::unix::net::UnixDatagram => true,
}

/// The first pause of an operation that no event can end and that tries
/// again now and then (a write that [`WriteEvents::SILENT_WRITE_SHUTDOWN`]
/// concerns, a Unix datagram's `send_to` to a full receiver, a Unix connect
/// to a full backlog), doubled after each try up to [`LAST_PAUSE`].
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(1);
pub(crate) const LAST_PAUSE: Duration = Duration::from_millis(32);

impl<S: AsFd + WriteEvents> Socket<S> {
    /// Wraps `sock`, which the caller has set non-blocking.
    pub(crate) fn new(sock: S) -> Socket<S> {
        Socket {
            home: OnceLock::new(),
            others: Mutex::new(Vec::new()),
            nonblocking: Arc::new(AtomicBool::new(false)),
            sock,
        }
    }

    /// The std socket (non-blocking).
    pub(crate) fn get(&self) -> &S {
        &self.sock
    }

    /// `shutdown(how)`, then the directions it shut marked ready in every
    /// registration of this handle, their waiters woken: each tries again
    /// and gets what std's would (end of stream, `BrokenPipe`). A Unix
    /// stream's own write shutdown brings no event at all (see
    /// `Registration::set_ready`). Another handle of the socket
    /// (`try_clone`: a descriptor of its own) is not reached; its waits end
    /// with the events the kernel sends, and its Unix writers, for which
    /// the kernel sends none, within a pause (see `io_polled`).
    pub(crate) fn shutdown_with(
        &self,
        how: Shutdown,
        shutdown: impl FnOnce(&S, Shutdown) -> io::Result<()>,
    ) -> io::Result<()> {
        shutdown(&self.sock, how)?;
        let dirs: &[Direction] = match how {
            Shutdown::Read => &[Direction::Read],
            Shutdown::Write => &[Direction::Write],
            Shutdown::Both => &[Direction::Read, Direction::Write],
        };
        let others = lock(&self.others).clone();
        let regs = self
            .home
            .get()
            .into_iter()
            .chain(others.iter().map(|r| &**r));
        for reg in regs {
            for &dir in dirs {
                reg.set_ready(dir);
            }
        }
        Ok(())
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.as_fd().as_raw_fd()
    }

    /// Deregisters the socket and hands the std socket back (still
    /// non-blocking).
    pub(crate) fn into_inner(self) -> S {
        let Socket {
            home, others, sock, ..
        } = self;
        drop(home);
        drop(others);
        sock
    }

    /// Another handle of this socket (`sock`, a `try_clone` of ours): its
    /// own registrations, the same non-blocking mode.
    pub(crate) fn clone_with(&self, sock: S) -> Socket<S> {
        Socket {
            home: OnceLock::new(),
            others: Mutex::new(Vec::new()),
            nonblocking: self.nonblocking.clone(),
            sock,
        }
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        self.nonblocking.load(Ordering::Relaxed)
    }

    /// Runs `op` on the socket until it returns anything but `WouldBlock`,
    /// waiting for `dir` readiness in between (see the module doc), for at
    /// most the time `timeout` reads back when a wait is first needed.
    #[track_caller]
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        expiry: Expiry,
        timeout: impl FnOnce(&S) -> io::Result<Option<Duration>>,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_with(dir, expiry, timeout, op, None::<fn(&R) -> bool>)
    }

    /// [`io`](Self::io) for a stream socket's read or write of `len`
    /// bytes (as the kernel counts them: [`stream_len`],
    /// [`vectored_len`]): one that moves some but fewer shows the socket
    /// drained for that direction, and the next one waits for readiness
    /// before it tries (`Registration::io_partial`), saving the system
    /// call that would say `WouldBlock`. A transfer of nothing is always
    /// tried (it returns at once, as std's does, whatever the socket's
    /// state).
    ///
    /// The kernel also moves fewer bytes than asked where the socket is
    /// not drained: past 1,024 buffers (`IOV_MAX`), past `MAX_RW_COUNT`
    /// bytes, and at a TCP urgent mark. The first two are taken out of
    /// `len`; a read that stops at an urgent mark (out-of-band data, which
    /// nothing here sends) is taken for a drained socket, as tokio takes it.
    #[track_caller]
    pub(crate) fn io_stream(
        &self,
        dir: Direction,
        timeout: impl FnOnce(&S) -> io::Result<Option<Duration>>,
        len: usize,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if len == 0 {
            return self.io_with(
                dir,
                Expiry::WouldBlock,
                timeout,
                op,
                None::<fn(&usize) -> bool>,
            );
        }
        let partial = move |n: &usize| 0 < *n && *n < len;
        self.io_with(dir, Expiry::WouldBlock, timeout, op, Some(partial))
    }

    /// A blocking read (a receive, an accept) of a socket whose
    /// non-blocking call says `EAGAIN` once its reading half is shut down,
    /// where the kernel's blocking call returns (a UDP socket: 0 bytes; a
    /// Unix listener: `EINVAL`): `shut` gives that answer, as std's would.
    /// Without it the read waited for readiness that never came: the
    /// shutdown brings one event, and the `EAGAIN` after it clears the
    /// ready bit (a raw `shutdown(2)`, std having no `shutdown` on these
    /// types; Go's `Close` of such a socket unblocks its reader too). On a
    /// plain OS thread, whose `poll(2)` reports the shut socket readable,
    /// the read spun instead.
    ///
    /// The shutdown is looked for (a `poll(2)`, `sys::read_shut_down`) at
    /// a `WouldBlock` only where it may have come: on a plain OS thread,
    /// and once the poller reported the reading half closed
    /// (`Registration::is_closed`; a shutdown by any handle, before or
    /// after the socket was registered, brings that report). A busy
    /// receiver's every drained queue does not pay the system call. In
    /// non-blocking mode the `WouldBlock` stands, as std's.
    #[track_caller]
    pub(crate) fn io_read_shut<R>(
        &self,
        expiry: Expiry,
        timeout: impl FnOnce(&S) -> io::Result<Option<Duration>>,
        mut op: impl FnMut(&S) -> io::Result<R>,
        shut: impl Fn() -> io::Result<R>,
    ) -> io::Result<R> {
        let op = |s: &S| match op(s) {
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && !self.is_nonblocking()
                    && self.may_be_read_shut()
                    && crate::sys::read_shut_down(self.fd()) =>
            {
                shut()
            }
            done => done,
        };
        self.io(Direction::Read, expiry, timeout, op)
    }

    /// Whether this handle's reading half may be shut down (see
    /// `io_read_shut`).
    fn may_be_read_shut(&self) -> bool {
        if !park::in_green_thread() {
            return true;
        }
        match self.home.get() {
            Some(home) if home.is_current_runtime() => home.is_closed(Direction::Read),
            _ => lock(&self.others)
                .iter()
                .any(|r| r.is_current_runtime() && r.is_closed(Direction::Read)),
        }
    }

    /// A TCP stream's read or peek into an empty buffer, by `op`: like any
    /// read it waits for data (or the end of the stream), but when the
    /// socket's read timeout passes first it returns `Ok(0)`, which is what
    /// the kernel's blocking `recv` of zero bytes answers then, and so
    /// std's (a Unix stream's answers `EAGAIN`, and goes through
    /// [`io_stream`](Self::io_stream)). In non-blocking mode the one try's
    /// `WouldBlock` stands, as std's.
    #[track_caller]
    pub(crate) fn io_read_nothing(
        &self,
        timeout: impl FnOnce(&S) -> io::Result<Option<Duration>>,
        op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        match self.io_with(
            Direction::Read,
            Expiry::Empty,
            timeout,
            op,
            None::<fn(&usize) -> bool>,
        ) {
            Err(e) if is_expiry(&e) => Ok(0),
            done => done,
        }
    }

    #[track_caller]
    fn io_with<R>(
        &self,
        dir: Direction,
        expiry: Expiry,
        timeout: impl FnOnce(&S) -> io::Result<Option<Duration>>,
        mut op: impl FnMut(&S) -> io::Result<R>,
        partial: Option<impl Fn(&R) -> bool>,
    ) -> io::Result<R> {
        let done = if self.is_nonblocking() {
            op(&self.sock)
        } else if S::SILENT_WRITE_SHUTDOWN && dir == Direction::Write {
            self.io_polled(dir, timeout, &mut op)
        } else {
            let deadline = || deadline_after(timeout(&self.sock)?);
            self.io_wait(dir, deadline, &mut op, partial)
        };
        // An always-ready socket (or a loop retrying an error) must not
        // keep its worker forever.
        park::coop_tick();
        match done {
            Err(e) if is_expiry(&e) => Err(match expiry {
                Expiry::WouldBlock => io::Error::from_raw_os_error(libc::EAGAIN),
                Expiry::TimedOut => io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
                Expiry::Empty => e,
            }),
            done => done,
        }
    }

    /// Steps 1 to 3: `op` until done, waiting for `dir` readiness between
    /// tries, until `deadline` (asked for when a wait is first needed).
    #[track_caller]
    fn io_wait<R>(
        &self,
        dir: Direction,
        deadline: impl FnOnce() -> io::Result<Option<Instant>>,
        op: &mut impl FnMut(&S) -> io::Result<R>,
        partial: Option<impl Fn(&R) -> bool>,
    ) -> io::Result<R> {
        if !park::in_green_thread() {
            return self.io_os(dir, deadline, op);
        }
        match self.home.get() {
            Some(reg) if reg.is_current_runtime() => {
                wait_on(reg, dir, deadline, || op(&self.sock), partial)
            }
            _ => match op(&self.sock) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let reg = self.register()?;
                    wait_on(&reg, dir, deadline, || op(&self.sock), partial)
                }
                done => done,
            },
        }
    }

    /// [`io_wait`](Self::io_wait) for a write whose shutdown may come with
    /// no event ([`WriteEvents`]): each wait ends after a pause too
    /// ([`FIRST_PAUSE`], doubling up to [`LAST_PAUSE`]), and the write is
    /// tried again, whatever the readiness bits say. A shut socket then
    /// answers `BrokenPipe` within a pause; the socket's write timeout
    /// still bounds the whole.
    #[track_caller]
    fn io_polled<R>(
        &self,
        dir: Direction,
        timeout: impl FnOnce(&S) -> io::Result<Option<Duration>>,
        op: &mut impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        match op(&self.sock) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return done,
        }
        let until = deadline_after(timeout(&self.sock)?)?;
        let mut pause = FIRST_PAUSE;
        loop {
            let step = Instant::now().checked_add(pause);
            let step_until = match (step, until) {
                (Some(step), Some(until)) => Some(step.min(until)),
                (step, None) => step,
                (None, until) => until,
            };
            match self.io_wait(dir, || Ok(step_until), op, None::<fn(&R) -> bool>) {
                Err(e) if is_expiry(&e) && until.is_none_or(|u| Instant::now() < u) => {
                    pause = (pause * 2).min(LAST_PAUSE);
                }
                done => return done,
            }
        }
    }

    /// Step 3 on a plain OS thread: `poll(2)` between tries.
    fn io_os<R>(
        &self,
        dir: Direction,
        deadline: impl FnOnce() -> io::Result<Option<Instant>>,
        op: &mut impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut deadline = Some(deadline);
        let mut until = None;
        loop {
            match op(&self.sock) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if let Some(deadline) = deadline.take() {
                until = deadline()?;
            }
            sio::wait_os(self.sock.as_fd(), dir, until)?;
        }
    }

    /// The registration of the calling green thread's runtime, made now if
    /// there is none (see "Registrations" in the module doc).
    #[cold]
    fn register(&self) -> io::Result<Reg<'_>> {
        let mut others = lock(&self.others);
        if let Some(home) = self.home.get() {
            if home.is_current_runtime() {
                return Ok(Reg::Home(home)); // made meanwhile by another
            }
        } else {
            let reg = new_registration(self.sock.as_fd())?;
            // Under the lock, nobody else sets it.
            let home = self.home.get_or_init(|| reg);
            return Ok(Reg::Home(home));
        }
        if let Some(reg) = others.iter().find(|r| r.is_current_runtime()) {
            return Ok(Reg::Other(reg.clone()));
        }
        // No green thread of a runtime that stopped waits any more: its
        // registration can go (after the lock; a wait still returning
        // holds its own reference).
        let mut stale = Vec::new();
        let mut i = 0;
        while i < others.len() {
            if others[i].is_runtime_running() {
                i += 1;
            } else {
                stale.push(others.swap_remove(i));
            }
        }
        let reg = Arc::new(new_registration(self.sock.as_fd())?);
        others.push(reg.clone());
        drop(others);
        drop(stale);
        Ok(Reg::Other(reg))
    }
}

/// The most buffers one `readv`/`sendmsg` takes (Linux's `IOV_MAX`);
/// std's vectored calls and ours pass no more.
const IOV_MAX: usize = 1024;
/// The most bytes one read or write moves (Linux's `MAX_RW_COUNT`: 2 GiB
/// less a page).
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// The bytes one read or write of a `len`-byte buffer can move.
pub(crate) fn stream_len(len: usize) -> usize {
    len.min(MAX_RW_COUNT)
}

/// The bytes one vectored read or write of `lens` can move: the first
/// [`IOV_MAX`] buffers' worth, at most [`MAX_RW_COUNT`].
pub(crate) fn vectored_len(lens: impl Iterator<Item = usize>) -> usize {
    stream_len(lens.take(IOV_MAX).fold(0usize, usize::saturating_add))
}

/// Step 3 in a green thread: `op` on `reg` until done, parking between
/// tries (see `io_stream` for `partial`).
#[track_caller]
fn wait_on<R>(
    reg: &Registration,
    dir: Direction,
    deadline: impl FnOnce() -> io::Result<Option<Instant>>,
    op: impl FnMut() -> io::Result<R>,
    partial: Option<impl Fn(&R) -> bool>,
) -> io::Result<R> {
    match partial {
        Some(partial) => reg.io_partial(dir, deadline, op, partial),
        None => reg.io_lazy(dir, deadline, op),
    }
}

/// Registers the socket's descriptor: only `Socket::register` calls it,
/// with `self.sock`, and keeps the registration in `self.home` or
/// `self.others`.
fn new_registration(fd: BorrowedFd<'_>) -> io::Result<Registration> {
    // SAFETY: `fd` is the socket's own descriptor (`Socket::sock`), and its
    // registrations are dropped before it closes: `home` and `others` are
    // declared before `sock` (fields drop in order), `into_inner` drops
    // them first, and a `Reg::Other` clone lives only inside a wait that
    // borrows the socket.
    unsafe { Registration::for_current_runtime(fd) }
        .expect("register() is called in a green thread")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `now + timeout`; `None` (no deadline) if there is no timeout or it is
/// too far off for an `Instant`.
fn deadline_after(timeout: Option<Duration>) -> io::Result<Option<Instant>> {
    Ok(timeout.and_then(|t| Instant::now().checked_add(t)))
}

/// Whether `e` is a wait's own "timed out" (the poller's and `poll(2)`'s
/// carry no OS error code; an `ETIMEDOUT` from the socket itself does).
fn is_expiry(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut && e.raw_os_error().is_none()
}

/// A listener's `accept` timeout: its receive timeout (`SO_RCVTIMEO`),
/// which the kernel's blocking accept, and so std's, honours. std offers no
/// setter for it on a listener; one set through the descriptor (socket2's
/// `set_read_timeout`, `setsockopt`) bounds grove's `accept` as it bounds
/// std's.
pub(crate) fn accept_timeout<S: AsFd>(s: &S) -> io::Result<Option<Duration>> {
    crate::sys::rcv_timeout(s.as_fd().as_raw_fd())
}
