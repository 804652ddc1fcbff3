//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`], the twins of `std::os::unix::net`'s, under the same
//! rules as the TCP types (park the green thread, timeouts that belong to
//! the socket, `From`/`into_std`, file descriptors).

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net;

/// A Unix socket's address: std's own (`std::os::unix::net::SocketAddr`),
/// which the sockets here take and give, re-exported so that a program
/// swapped from `std::os::unix::net` finds it here.
pub use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use grove_scheduler::io::Direction;
use grove_scheduler::park;

use crate::fd::{fd_impls, owned_stream_io};
use crate::socket::{
    accept_timeout, stream_len, vectored_len, Expiry, Socket, FIRST_PAUSE, LAST_PAUSE,
};
use crate::sys;

/// A Unix socket server: `std::os::unix::net::UnixListener` whose
/// [`accept`](UnixListener::accept) parks the calling green thread.
///
/// ```
/// use std::io::{Read, Write};
/// use grove_net::unix::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("grove-net-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("listener.sock");
/// let _ = std::fs::remove_file(&path);
/// grove_runtime::run(move || {
///     let listener = UnixListener::bind(&path).unwrap();
///     let server = grove_runtime::go(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         conn.write_all(b"hi").unwrap();
///     });
///     let mut client = UnixStream::connect(&path).unwrap();
///     let mut buf = String::new();
///     client.read_to_string(&mut buf).unwrap();
///     assert_eq!(buf, "hi");
///     server.join().unwrap();
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
pub struct UnixListener(Socket<net::UnixListener>);

/// A Unix stream socket: `std::os::unix::net::UnixStream` whose reads,
/// writes and connect park the calling green thread. Writes never raise
/// `SIGPIPE` (std's do): a peer that has gone is an `EPIPE` error.
///
/// ```
/// use std::io::{Read, Write};
/// use grove_net::unix::UnixStream;
///
/// grove_runtime::run(|| {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     let echo = grove_runtime::go(move || {
///         let mut buf = [0; 3];
///         b.read_exact(&mut buf).unwrap();
///         b.write_all(&buf).unwrap();
///     });
///     a.write_all(b"abc").unwrap();
///     let mut buf = [0; 3];
///     a.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"abc");
///     echo.join().unwrap();
/// });
/// ```
pub struct UnixStream(Socket<net::UnixStream>);

/// A Unix datagram socket: `std::os::unix::net::UnixDatagram` whose
/// receives and sends park the calling green thread.
///
/// ```
/// use grove_net::unix::UnixDatagram;
///
/// grove_runtime::run(|| {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     let receiver = grove_runtime::go(move || {
///         let mut buf = [0; 8];
///         let n = b.recv(&mut buf).unwrap();
///         buf[..n].to_vec()
///     });
///     a.send(b"note").unwrap();
///     assert_eq!(receiver.join().unwrap(), b"note");
/// });
/// ```
pub struct UnixDatagram(Socket<net::UnixDatagram>);

fd_impls!(UnixListener, net::UnixListener);
fd_impls!(UnixStream, net::UnixStream);
fd_impls!(UnixDatagram, net::UnixDatagram);

impl UnixListener {
    /// Creates a listener bound to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        net::UnixListener::bind(path).map(UnixListener::from)
    }

    /// Creates a listener bound to `addr` (an abstract address, say).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        net::UnixListener::bind_addr(addr).map(UnixListener::from)
    }

    /// Accepts a connection, parking the green thread until one comes.
    /// A failure (`EMFILE`, say) is returned; the listener keeps working.
    /// A receive timeout set on the listener's descriptor (`SO_RCVTIMEO`)
    /// bounds the wait, as it bounds std's: `WouldBlock` when it passes.
    /// A listener whose reading half is shut down (a raw `shutdown(2)`,
    /// a way to end an accept loop) answers `InvalidInput` (`EINVAL`), as
    /// std's does, to the accept waiting and to every one after it.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.0.io_read_shut(
            Expiry::WouldBlock,
            accept_timeout,
            |l| l.accept(),
            || Err(io::Error::from_raw_os_error(libc::EINVAL)),
        )?;
        stream.set_nonblocking(true)?;
        Ok((UnixStream(Socket::new(stream)), addr))
    }

    /// A new handle of the same socket (`dup(2)`).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener(self.0.clone_with(self.0.get().try_clone()?)))
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().local_addr()
    }

    /// In non-blocking mode, `accept` returns `WouldBlock` instead of
    /// waiting. As std's, the mode is the socket's:
    /// it holds for every handle `try_clone` made of it.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get().take_error()
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

/// The iterator of [`UnixListener::incoming`]: never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = Incoming<'a>;

    /// `for stream in &listener`: [`UnixListener::incoming`], as std's.
    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}

impl UnixStream {
    /// Connects to the socket file `path`. Connecting to a listener whose
    /// backlog is full waits until it has room, as std's blocking connect
    /// does (trying again after a growing pause, 1 ms up to 32 ms: no
    /// event says when room is made).
    #[track_caller]
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        connect(|| mio::net::UnixStream::connect(path))
    }

    /// Connects to `addr` (an abstract address, say).
    #[track_caller]
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        connect(|| mio::net::UnixStream::connect_addr(addr))
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixStream(Socket::new(a)), UnixStream(Socket::new(b))))
    }

    /// A new handle of the same socket (`dup(2)`): timeouts and options
    /// are shared.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream(self.0.clone_with(self.0.get().try_clone()?)))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().peer_addr()
    }

    /// Sets the read timeout: a read that waits longer returns
    /// `WouldBlock`, having read nothing. It is the socket's.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.get().set_read_timeout(timeout)
    }

    /// Sets the write timeout.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.get().set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.get().read_timeout()
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.get().write_timeout()
    }

    /// In non-blocking mode, reads and writes return `WouldBlock` instead
    /// of waiting. As std's, the mode is the socket's:
    /// it holds for every handle `try_clone` made of it.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get().take_error()
    }

    /// Shuts the reading, writing or both halves down. A green thread
    /// parked on this handle in the direction shut wakes: a reader reads
    /// `Ok(0)`, a writer gets `BrokenPipe`, as std's blocked calls do. A
    /// writer on another handle of the socket (a `try_clone`), or on the
    /// peer's after its read shutdown, gets `BrokenPipe` too, within a few
    /// tens of milliseconds: the kernel reports no event for it, and such
    /// writers try again now and then.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown_with(how, |s, how| s.shutdown(how))
    }
}

/// A non-blocking connect (`nonblocking`, a fresh socket each time).
/// While the listener's backlog is full (`EAGAIN`) it is tried again after
/// a growing pause (1 ms up to 32 ms): a Unix connect that found no room
/// never completes later by itself, and no event says when room is made
/// (the blocking connect std makes sleeps in the kernel until an accept
/// wakes it). The caller parks meanwhile (an OS thread sleeps), so a
/// runtime's shutdown unwinds it like any parked green thread: it used to
/// wait in std's blocking connect on the blocking pool, which a shutdown
/// waits for, until the listener accepted or closed.
#[track_caller]
fn connect(
    mut nonblocking: impl FnMut() -> io::Result<mio::net::UnixStream>,
) -> io::Result<UnixStream> {
    let mut pause = FIRST_PAUSE;
    loop {
        match nonblocking() {
            Ok(stream) => return Ok(UnixStream(Socket::new(stream.into()))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                park::sleep(pause);
                pause = (pause * 2).min(LAST_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

fn stream_read_timeout(s: &net::UnixStream) -> io::Result<Option<Duration>> {
    s.read_timeout()
}

fn stream_write_timeout(s: &net::UnixStream) -> io::Result<Option<Duration>> {
    s.write_timeout()
}

impl Read for &UnixStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Plain `io`, not `io_stream`: a read that moves fewer bytes than
        // asked is not taken for a drained socket. The kernel ends a Unix
        // stream read at a message that carries file descriptors
        // (`SCM_RIGHTS`, which any process holding the peer end may send)
        // with bytes queued behind it, and no new readiness comes for
        // them: the next read would wait for more data with data there.
        self.0.io(
            Direction::Read,
            Expiry::WouldBlock,
            stream_read_timeout,
            |mut s| s.read(buf),
        )
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        // Plain `io`: see `read`.
        self.0.io(
            Direction::Read,
            Expiry::WouldBlock,
            stream_read_timeout,
            |mut s| s.read_vectored(bufs),
        )
    }
}

impl Write for &UnixStream {
    /// Sends with `MSG_NOSIGNAL`: a peer that has gone is an `EPIPE`
    /// error, never a `SIGPIPE`.
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.io_stream(
            Direction::Write,
            stream_write_timeout,
            stream_len(buf.len()),
            |s| sys::send(s.as_raw_fd(), buf),
        )
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = vectored_len(bufs.iter().map(|b| b.len()));
        self.0
            .io_stream(Direction::Write, stream_write_timeout, len, |s| {
                sys::send_vectored(s.as_raw_fd(), bufs)
            })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

owned_stream_io!(UnixStream);

fn dgram_read_timeout(s: &net::UnixDatagram) -> io::Result<Option<Duration>> {
    s.read_timeout()
}

fn dgram_write_timeout(s: &net::UnixDatagram) -> io::Result<Option<Duration>> {
    s.write_timeout()
}

impl UnixDatagram {
    /// Creates a socket bound to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        net::UnixDatagram::bind(path).map(UnixDatagram::from)
    }

    /// Creates a socket bound to `addr`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        net::UnixDatagram::bind_addr(addr).map(UnixDatagram::from)
    }

    /// Creates a socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        net::UnixDatagram::unbound().map(UnixDatagram::from)
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = net::UnixDatagram::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixDatagram(Socket::new(a)), UnixDatagram(Socket::new(b))))
    }

    /// Connects the socket to `path`: `send` and `recv` then talk to it.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.0.get().connect(path)
    }

    /// Connects the socket to `addr`.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.0.get().connect_addr(addr)
    }

    /// A new handle of the same socket (`dup(2)`).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram(self.0.clone_with(self.0.get().try_clone()?)))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().local_addr()
    }

    /// The address of the connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().peer_addr()
    }

    /// Receives one datagram and its sender, parking until one comes.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read(|s| s.recv_from(buf), || (0, unnamed()))
    }

    /// Receives one datagram from the connected peer.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(|s| s.recv(buf), || 0)
    }

    /// Sends `buf` to the socket file `path`. A receiver whose queue is
    /// full makes it wait (see [`send_to_addr`](Self::send_to_addr)).
    #[track_caller]
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.send_unconnected(|s| s.send_to(buf, path))
    }

    /// Sends `buf` to `addr`. The kernel says nothing when an unconnected
    /// socket's receiver frees room, so while it is full this retries
    /// after a growing pause (1 ms up to 32 ms), within the write timeout.
    #[track_caller]
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_unconnected(|s| s.send_to_addr(buf, addr))
    }

    /// Sends `buf` to the connected peer, parking while its queue is full.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.io(
            Direction::Write,
            Expiry::WouldBlock,
            dgram_write_timeout,
            |s| s.send(buf),
        )
    }

    /// Sets the read timeout: a receive that waits longer returns
    /// `WouldBlock`. It is the socket's.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.get().set_read_timeout(timeout)
    }

    /// Sets the write timeout.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.get().set_write_timeout(timeout)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.get().read_timeout()
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        self.0.get().write_timeout()
    }

    /// In non-blocking mode, operations return `WouldBlock` instead of
    /// waiting. As std's, the mode is the socket's:
    /// it holds for every handle `try_clone` made of it.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get().take_error()
    }

    /// Shuts the reading, writing or both halves down.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown_with(how, |s, how| s.shutdown(how))
    }

    /// A receive, parking while it would block; `shut` is what a receive
    /// returns once the reading half is shut down (std's blocking receive
    /// returns 0 there; the non-blocking one this makes says `EAGAIN`, and
    /// a wait for readiness would never end: see `Socket::io_read_shut`).
    #[track_caller]
    fn read<R>(
        &self,
        op: impl FnMut(&net::UnixDatagram) -> io::Result<R>,
        shut: impl Fn() -> R,
    ) -> io::Result<R> {
        self.0
            .io_read_shut(Expiry::WouldBlock, dgram_read_timeout, op, || Ok(shut()))
    }

    /// A send to an address: retried after pauses while it would block
    /// (see `send_to_addr`).
    fn send_unconnected(
        &self,
        mut op: impl FnMut(&net::UnixDatagram) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut pause = FIRST_PAUSE;
        let mut deadline = None;
        loop {
            match op(self.0.get()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.0.is_nonblocking() => {}
                done => return done,
            }
            let until = match deadline {
                Some(until) => until,
                None => {
                    let timeout = self.0.get().write_timeout()?;
                    *deadline.insert(timeout.and_then(|t| Instant::now().checked_add(t)))
                }
            };
            if until.is_some_and(|d| Instant::now() >= d) {
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            park::sleep(pause);
            pause = (pause * 2).min(LAST_PAUSE);
        }
    }
}

/// The address of an unnamed socket, as std's `recv_from` gives it for a
/// datagram from one (and for the end of a read-shut socket).
fn unnamed() -> SocketAddr {
    SocketAddr::from_pathname("").expect("the empty path is the unnamed address")
}
