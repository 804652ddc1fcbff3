//! TCP: [`TcpListener`] and [`TcpStream`], std's twins.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use grove_scheduler::io::Direction;

use crate::addr;
use crate::fd::{fd_impls, owned_stream_io};
use crate::socket::{accept_timeout, stream_len, vectored_len, Expiry, Socket};
use crate::sys;

/// A TCP socket server, listening for connections: `std::net::TcpListener`
/// whose [`accept`](TcpListener::accept) parks the calling green thread
/// (not its worker) until a connection comes.
///
/// ```
/// use std::io::{Read, Write};
/// use grove_net::{TcpListener, TcpStream};
///
/// grove_runtime::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = grove_runtime::go(move || {
///         // A green thread per connection.
///         let (mut conn, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap();
///     });
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut echo = [0; 5];
///     client.read_exact(&mut echo).unwrap();
///     assert_eq!(&echo, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener(Socket<net::TcpListener>);

/// A TCP connection: `std::net::TcpStream` whose reads, writes and
/// connects park the calling green thread (not its worker) until the
/// socket is ready. `Read` and `Write` are implemented for `TcpStream` and
/// for `&TcpStream`, so one green thread may read while another writes.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use grove_net::{TcpListener, TcpStream};
///
/// grove_runtime::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
///     let (mut server, _) = listener.accept().unwrap();
///     // Go's SetReadDeadline: a read that waits longer returns WouldBlock.
///     server.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
///     let mut buf = [0; 4];
///     let err = server.read(&mut buf).unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
///     client.write_all(b"ping").unwrap();
///     server.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
/// });
/// ```
pub struct TcpStream(Socket<net::TcpStream>);

fd_impls!(TcpListener, net::TcpListener);
fd_impls!(TcpStream, net::TcpStream);

impl TcpListener {
    /// Creates a listener bound to `addr` (std's `bind`: the first address
    /// that binds, `SO_REUSEADDR` set). A host name is resolved on the
    /// runtime's blocking pool (see the crate doc).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        addr::each_addr(addr, net::TcpListener::bind).map(TcpListener::from)
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().local_addr()
    }

    /// A new handle of the same socket (`dup(2)`).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener(self.0.clone_with(self.0.get().try_clone()?)))
    }

    /// Accepts a connection, parking the green thread until one comes. A
    /// failure (`EMFILE` when the process is out of descriptors, say) is
    /// returned; the listener keeps working. A receive timeout set on the
    /// listener's descriptor (`SO_RCVTIMEO`, socket2's `set_read_timeout`)
    /// bounds the wait, as it bounds std's: `WouldBlock` when it passes.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) =
            self.0
                .io(Direction::Read, Expiry::WouldBlock, accept_timeout, |l| {
                    l.accept()
                })?;
        stream.set_nonblocking(true)?;
        Ok((TcpStream(Socket::new(stream)), peer))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.0.get().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.0.get().ttl()
    }

    /// std's deprecated `set_only_v6` (`IPV6_V6ONLY`; std's own note: it
    /// has no effect once the listener is bound, as here).
    #[deprecated(note = "as std's: this option can only be set before the socket is bound")]
    #[allow(deprecated)]
    pub fn set_only_v6(&self, only_v6: bool) -> io::Result<()> {
        self.0.get().set_only_v6(only_v6)
    }

    /// std's deprecated `only_v6`: reads `IPV6_V6ONLY`.
    #[deprecated(note = "as std's: this option can only be set before the socket is bound")]
    #[allow(deprecated)]
    pub fn only_v6(&self) -> io::Result<bool> {
        self.0.get().only_v6()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get().take_error()
    }

    /// In non-blocking mode, `accept` returns `WouldBlock` instead of
    /// waiting. As std's, the mode is the socket's:
    /// it holds for every handle `try_clone` made of it.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// The iterator of [`TcpListener::incoming`]: never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}

impl TcpStream {
    /// Connects to `addr`, trying each address it names in turn (std's
    /// `connect`); the green thread parks while the handshake runs. A host
    /// name is resolved on the runtime's blocking pool.
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        addr::each_addr(addr, |a| connect(a, None))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout` (std's
    /// `connect_timeout`; a zero timeout is an `InvalidInput` error).
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        connect(*addr, Some(timeout))
    }

    /// The address of the peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().local_addr()
    }

    /// Shuts the reading, writing or both halves down. Shutting reading
    /// down wakes a green thread parked reading this socket (through any
    /// handle): it reads `Ok(0)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.0.shutdown_with(how, |s, how| s.shutdown(how))
    }

    /// A new handle of the same socket (`dup(2)`): timeouts and options
    /// are the socket's, so they are shared.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream(self.0.clone_with(self.0.get().try_clone()?)))
    }

    /// Sets the read timeout (`None`: wait forever; a zero duration is an
    /// `InvalidInput` error). A read that waits longer returns `WouldBlock`,
    /// having read nothing. It is the socket's: it applies to every handle.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.0.get().set_read_timeout(timeout)
    }

    /// Sets the write timeout, as [`set_read_timeout`](Self::set_read_timeout).
    /// A write that times out has written nothing.
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

    /// Reads without taking the bytes out of the queue, parking until some
    /// are there (`MSG_PEEK`).
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.0.io_read_nothing(read_timeout, |s| s.peek(buf));
        }
        self.0
            .io(Direction::Read, Expiry::WouldBlock, read_timeout, |s| {
                s.peek(buf)
            })
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.0.get().set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.0.get().nodelay()
    }

    /// Sets `TCP_QUICKACK` (acknowledge at once rather than delayed; the
    /// kernel may clear it again): what std's Linux `TcpStreamExt` gives a
    /// `std::net::TcpStream`.
    pub fn set_quickack(&self, quickack: bool) -> io::Result<()> {
        sys::set_bool_opt(
            self.0.get().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            quickack,
        )
    }

    /// Reads `TCP_QUICKACK`.
    pub fn quickack(&self) -> io::Result<bool> {
        sys::bool_opt(
            self.0.get().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
        )
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.0.get().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.0.get().ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.get().take_error()
    }

    /// In non-blocking mode, reads and writes return `WouldBlock` instead
    /// of waiting. As std's, the mode is the socket's:
    /// it holds for every handle `try_clone` made of it.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// A non-blocking connect to `addr`, then a wait for writable: connected,
/// or the error `SO_ERROR` holds.
#[track_caller]
fn connect(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let stream: net::TcpStream = mio::net::TcpStream::connect(addr)?.into();
    let sock = Socket::new(stream);
    sock.io(
        Direction::Write,
        Expiry::TimedOut,
        |_| Ok(timeout),
        finish_connect,
    )?;
    Ok(TcpStream(sock))
}

/// Whether the connect in progress on `s` is done: `Ok`, its error, or
/// `WouldBlock` while the handshake runs.
fn finish_connect(s: &net::TcpStream) -> io::Result<()> {
    if let Some(err) = s.take_error()? {
        return Err(err);
    }
    match s.peer_addr() {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

fn read_timeout(s: &net::TcpStream) -> io::Result<Option<Duration>> {
    s.read_timeout()
}

fn write_timeout(s: &net::TcpStream) -> io::Result<Option<Duration>> {
    s.write_timeout()
}

impl Read for &TcpStream {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = stream_len(buf.len());
        if len == 0 {
            return self.0.io_read_nothing(read_timeout, |mut s| s.read(buf));
        }
        self.0
            .io_stream(Direction::Read, read_timeout, len, |mut s| s.read(buf))
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let len = vectored_len(bufs.iter().map(|b| b.len()));
        if len == 0 {
            return self
                .0
                .io_read_nothing(read_timeout, |mut s| s.read_vectored(bufs));
        }
        self.0
            .io_stream(Direction::Read, read_timeout, len, |mut s| {
                s.read_vectored(bufs)
            })
    }
}

impl Write for &TcpStream {
    /// Sends with `MSG_NOSIGNAL`: a peer that has gone is an `EPIPE` or
    /// `ECONNRESET` error, never a `SIGPIPE`.
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.io_stream(
            Direction::Write,
            write_timeout,
            stream_len(buf.len()),
            |mut s| s.write(buf),
        )
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = vectored_len(bufs.iter().map(|b| b.len()));
        self.0.io_stream(Direction::Write, write_timeout, len, |s| {
            sys::send_vectored(s.as_raw_fd(), bufs)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

owned_stream_io!(TcpStream);
