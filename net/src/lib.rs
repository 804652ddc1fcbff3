//! grove's sockets: `std::net`'s TCP and UDP sockets and
//! `std::os::unix::net`'s Unix sockets, name for name, whose blocking
//! operations park the calling *green thread* and leave its worker free to
//! run others. Swapping `use std::net::...` for `use grove::net::...`
//! turns a thread-per-connection server into a green-thread-per-connection
//! server.
//!
//! ```
//! use std::io::{Read, Write};
//! use grove_net::{TcpListener, TcpStream};
//!
//! grove_runtime::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let server = grove_runtime::go(move || {
//!         for conn in listener.incoming().take(3) {
//!             let mut conn = conn.unwrap();
//!             grove_runtime::go(move || {
//!                 let mut buf = [0; 64];
//!                 loop {
//!                     match conn.read(&mut buf).unwrap() {
//!                         0 => break,
//!                         n => conn.write_all(&buf[..n]).unwrap(),
//!                     }
//!                 }
//!             });
//!         }
//!     });
//!     let clients: Vec<_> = (0..3u8)
//!         .map(|i| {
//!             grove_runtime::go(move || {
//!                 let mut conn = TcpStream::connect(addr).unwrap();
//!                 conn.write_all(&[i; 10]).unwrap();
//!                 let mut back = [0; 10];
//!                 conn.read_exact(&mut back).unwrap();
//!                 assert_eq!(back, [i; 10]);
//!             })
//!         })
//!         .collect();
//!     for c in clients {
//!         c.join().unwrap();
//!     }
//!     server.join().unwrap();
//! });
//! ```
//!
//! # The model
//!
//! - Every socket is a std socket set **non-blocking**, plus the
//!   registrations it is waited on through (see `socket.rs`). Each system
//!   call is the std socket's own (or, for writes that std would let raise
//!   `SIGPIPE`, a `send` with `MSG_NOSIGNAL`).
//! - An operation that would block, in a green thread, **parks** it on the
//!   runtime's poller (`grove_scheduler::io`: epoll, edge-triggered, the
//!   socket registered on its first wait); the worker runs other green
//!   threads, and readiness wakes the green thread on its home worker. A
//!   green thread parked on a socket waits for the outside world: it is
//!   never counted in the "all green threads are asleep" report.
//! - On a plain OS thread the same call **blocks the thread** (`poll(2)`),
//!   as std does.
//! - **Timeouts belong to the socket**, as in std: `set_read_timeout`
//!   stores `SO_RCVTIMEO` in the kernel, and a wait reads it back, so a
//!   timeout set through one handle applies to its `try_clone`s. A timeout
//!   that elapses returns `WouldBlock` (std on Unix; `connect_timeout`
//!   returns `TimedOut`, as std's), having moved no byte.
//! - `shutdown(Read | Both)` through any handle, or the peer closing,
//!   wakes a green thread parked reading: it reads `Ok(0)` (or gets the
//!   error), it never hangs.
//! - `connect` is a non-blocking connect, a wait for writable, and the
//!   socket's pending error. Running out of descriptors is the `EMFILE`
//!   error of that `accept` or `connect`; the rest keeps working.
//! - **Name resolution** (`ToSocketAddrs` with a host name) runs on the
//!   runtime's blocking pool; std's address types, and strings holding a
//!   literal address, resolve inline. The address parameters are std's
//!   `A: ToSocketAddrs`, so code generic over the address compiles as
//!   with std. An address type of the program's own (not one of std's)
//!   resolves on the calling thread: if its `to_socket_addrs` looks names
//!   up, resolve it in `grove::blocking` and pass the `SocketAddr`.
//!
//! # Differences from std
//!
//! - `set_nonblocking` sets a mode kept by grove (operations return
//!   `WouldBlock` instead of waiting), shared, as std's, by every handle
//!   `try_clone` made of the socket; a handle made otherwise of the same
//!   descriptor (a `dup` through `from_raw_fd`) has its own. The
//!   descriptor itself is always non-blocking; `into_std`, `into_raw_fd`
//!   and `OwnedFd::from` hand it back in blocking mode, and since that
//!   mode is the socket's, other grove handles of the same socket
//!   (`try_clone`s) must be gone by then.
//! - A socket waited on by green threads of several runtimes is registered
//!   with each runtime's poller (kept until it drops).

#![warn(missing_docs)]

mod addr;
mod fd;
mod socket;
mod sys;
mod tcp;
mod udp;
pub mod unix;

pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
