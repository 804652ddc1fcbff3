//! UDP: [`UdpSocket`], std's twin.

use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use grove_scheduler::io::Direction;

use crate::addr;
use crate::fd::fd_impls;
use crate::socket::{Expiry, Socket};

/// A UDP socket: `std::net::UdpSocket` whose receives (and sends, when
/// the send buffer is full) park the calling green thread, not its worker.
///
/// ```
/// use grove_net::UdpSocket;
///
/// grove_runtime::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b_addr = b.local_addr().unwrap();
///     let receiver = grove_runtime::go(move || {
///         let mut buf = [0; 16];
///         let (n, from) = b.recv_from(&mut buf).unwrap(); // parks until it comes
///         (buf[..n].to_vec(), from)
///     });
///     a.send_to(b"datagram", b_addr).unwrap();
///     let (got, from) = receiver.join().unwrap();
///     assert_eq!(got, b"datagram");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket(Socket<net::UdpSocket>);

fd_impls!(UdpSocket, net::UdpSocket);

fn read_timeout(s: &net::UdpSocket) -> io::Result<Option<Duration>> {
    s.read_timeout()
}

/// A `recv_from` or `peek_from` of a socket whose reading half is shut
/// down: the kernel's blocking call returns 0 bytes and no sender, which
/// std's reports as `InvalidInput` (its first call; a second one panics).
fn no_sender() -> io::Result<(usize, SocketAddr)> {
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "the socket's reading half is shut down: no datagram, no sender",
    ))
}

fn write_timeout(s: &net::UdpSocket) -> io::Result<Option<Duration>> {
    s.write_timeout()
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (the first address that binds). A
    /// host name is resolved on the runtime's blocking pool.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        addr::each_addr(addr, net::UdpSocket::bind).map(UdpSocket::from)
    }

    /// Receives one datagram and its sender, parking until one comes.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read(|s| s.recv_from(buf), no_sender)
    }

    /// As `recv_from`, leaving the datagram queued.
    #[track_caller]
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read(|s| s.peek_from(buf), no_sender)
    }

    /// Sends `buf` to the first address `addr` names.
    #[track_caller]
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = addr::first_addr(addr)?;
        self.write(|s| s.send_to(buf, to))
    }

    /// The address of the peer this socket is connected to.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get().local_addr()
    }

    /// A new handle of the same socket (`dup(2)`).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket(self.0.clone_with(self.0.get().try_clone()?)))
    }

    /// Sets the read timeout: a receive that waits longer returns
    /// `WouldBlock`. It is the socket's, shared by every handle.
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

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.0.get().set_broadcast(broadcast)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.0.get().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.0.get().set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.0.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.0.get().set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.0.get().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.0.get().set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.0.get().multicast_loop_v6()
    }

    /// Joins an IPv4 multicast group.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.0.get().join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.0.get().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.0.get().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.0.get().leave_multicast_v6(multiaddr, interface)
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

    /// Connects the socket to the first address of `addr` that works:
    /// `send` and `recv` then talk to it alone.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        addr::each_addr(addr, |a| self.0.get().connect(a))
    }

    /// Sends `buf` to the connected peer.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.write(|s| s.send(buf))
    }

    /// Receives one datagram from the connected peer, parking until one
    /// comes.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(|s| s.recv(buf), || Ok(0))
    }

    /// As `recv`, leaving the datagram queued.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(|s| s.peek(buf), || Ok(0))
    }

    /// In non-blocking mode, operations return `WouldBlock` instead of
    /// waiting. As std's, the mode is the socket's:
    /// it holds for every handle `try_clone` made of it.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.0.set_nonblocking(nonblocking);
        Ok(())
    }

    /// A receive, parking while it would block; `shut` answers once the
    /// socket's reading half is shut down (a raw `shutdown(2)`), where
    /// std's blocking receive returns (see `Socket::io_read_shut`).
    #[track_caller]
    fn read<R>(
        &self,
        op: impl FnMut(&net::UdpSocket) -> io::Result<R>,
        shut: impl Fn() -> io::Result<R>,
    ) -> io::Result<R> {
        self.0
            .io_read_shut(Expiry::WouldBlock, read_timeout, op, shut)
    }

    #[track_caller]
    fn write<R>(&self, op: impl FnMut(&net::UdpSocket) -> io::Result<R>) -> io::Result<R> {
        self.0
            .io(Direction::Write, Expiry::WouldBlock, write_timeout, op)
    }
}
