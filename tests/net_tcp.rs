//! `grove::net` TCP: exact byte counts through green-thread servers and
//! clients on 1, 2 and 4 workers, mixed with OS threads and std sockets;
//! half-close, slow readers and writers, timeouts that lose nothing,
//! `shutdown` waking a parked reader, connect errors and timeouts, the
//! std conversions, and a runtime dropped with green threads parked on
//! sockets.

#[path = "common/net_util.rs"]
mod net_util;

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use grove::net::{SocketAddr, TcpListener, TcpStream};
use grove::{chan, thread};
use net_util::{
    full_backlog_listener, is_nonblocking, is_open, on_each_runtime, pattern, read_pattern,
    runtime, set_receive_timeout, wait_blocked, watchdog, write_pattern, NET_WORKERS,
};

fn local_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// An echo server green thread that serves `conns` connections, a green
/// thread each, and returns the bytes it echoed.
fn echo_server(listener: TcpListener, conns: usize) -> thread::JoinHandle<u64> {
    grove::go(move || {
        let handlers: Vec<_> = (0..conns)
            .map(|_| {
                let (mut conn, _) = listener.accept().unwrap();
                grove::go(move || {
                    let mut buf = [0u8; 1500];
                    let mut total = 0u64;
                    loop {
                        let n = conn.read(&mut buf).unwrap();
                        if n == 0 {
                            return total;
                        }
                        conn.write_all(&buf[..n]).unwrap();
                        total += n as u64;
                    }
                })
            })
            .collect();
        handlers.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// A client writes `len` pattern bytes from one green thread while another
/// reads the echo back through `&TcpStream`; returns the bytes read.
fn echo_client(addr: SocketAddr, stream: u64, len: u64) -> u64 {
    let conn = std::sync::Arc::new(TcpStream::connect(addr).unwrap());
    let writer = {
        let conn = conn.clone();
        grove::go(move || {
            write_pattern(&*conn, stream, len, 7919).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
        })
    };
    let got = read_pattern(&*conn, stream, 4096).unwrap();
    writer.join().unwrap();
    got
}

#[test]
fn green_echo_server_and_green_clients_move_every_byte() {
    on_each_runtime(|workers| {
        const CLIENTS: u64 = 16;
        const LEN: u64 = 200_000;
        let (listener, addr) = local_listener();
        let server = echo_server(listener, CLIENTS as usize);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| grove::go(move || echo_client(addr, c, LEN)))
            .collect();
        for c in clients {
            assert_eq!(c.join().unwrap(), LEN, "{workers} workers");
        }
        assert_eq!(server.join().unwrap(), CLIENTS * LEN);
    });
}

/// A grove server, std clients on OS threads.
#[test]
fn green_server_serves_std_clients_on_os_threads() {
    on_each_runtime(|_| {
        const CLIENTS: u64 = 8;
        const LEN: u64 = 100_000;
        let (listener, addr) = local_listener();
        let server = echo_server(listener, CLIENTS as usize);
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                std::thread::spawn(move || {
                    let conn = std::net::TcpStream::connect(addr).unwrap();
                    let reader = conn.try_clone().unwrap();
                    let r = std::thread::spawn(move || read_pattern(reader, c, 1000).unwrap());
                    write_pattern(&conn, c, LEN, 3000).unwrap();
                    conn.shutdown(Shutdown::Write).unwrap();
                    r.join().unwrap()
                })
            })
            .collect();
        // The main green thread parks in join; the workers serve meanwhile.
        let totals = grove::blocking(|| {
            clients
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        });
        assert_eq!(totals, vec![LEN; CLIENTS as usize]);
        assert_eq!(server.join().unwrap(), CLIENTS * LEN);
    });
}

/// A std server on OS threads, grove clients in green threads.
#[test]
fn green_clients_talk_to_a_std_server() {
    on_each_runtime(|_| {
        const CLIENTS: u64 = 8;
        const LEN: u64 = 100_000;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let handlers: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let (mut conn, _) = listener.accept().unwrap();
                    std::thread::spawn(move || io::copy(&mut conn.try_clone().unwrap(), &mut conn))
                })
                .collect();
            handlers
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .sum::<u64>()
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| grove::go(move || echo_client(addr, c, LEN)))
            .collect();
        for c in clients {
            assert_eq!(c.join().unwrap(), LEN);
        }
        assert_eq!(grove::blocking(|| server.join().unwrap()), CLIENTS * LEN);
    });
}

/// From plain OS threads, the grove types block the thread, as std's.
#[test]
fn grove_sockets_on_os_threads_block_like_std() {
    watchdog(|| {
        let (listener, addr) = local_listener();
        let server = std::thread::spawn(move || {
            let (mut conn, peer) = listener.accept().unwrap();
            assert_eq!(peer, conn.peer_addr().unwrap());
            let mut got = Vec::new();
            conn.read_to_end(&mut got).unwrap();
            conn.write_all(&got).unwrap();
            got.len()
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        write_pattern(&conn, 3, 300_000, 65536).unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_pattern(&mut conn, 3, 10_000).unwrap(), 300_000);
        assert_eq!(server.join().unwrap(), 300_000);
    });
}

/// Vectored reads and writes move the bytes in order.
#[test]
fn vectored_io_moves_every_byte_in_order() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        let server = echo_server(listener, 1);
        let mut conn = TcpStream::connect(addr).unwrap();
        let a: Vec<u8> = (0..3000).map(|i| pattern(9, i)).collect();
        let b: Vec<u8> = (3000..10_000).map(|i| pattern(9, i)).collect();
        let mut sent = 0;
        let total = a.len() + b.len();
        while sent < total {
            let (x, y) = if sent < a.len() {
                (&a[sent..], &b[..])
            } else {
                (&b[sent - a.len()..], &[][..])
            };
            sent += conn
                .write_vectored(&[IoSlice::new(x), IoSlice::new(y)])
                .unwrap();
        }
        conn.shutdown(Shutdown::Write).unwrap();
        let mut first = [0u8; 100];
        let mut rest = vec![0u8; total];
        let mut got = 0;
        loop {
            let n = if got < 100 {
                let mut bufs = [
                    io::IoSliceMut::new(&mut first[got..]),
                    io::IoSliceMut::new(&mut rest[..]),
                ];
                conn.read_vectored(&mut bufs).unwrap()
            } else {
                conn.read(&mut rest[got - 100..]).unwrap()
            };
            if n == 0 {
                break;
            }
            if got < 100 && got + n > 100 {
                // The first buffer filled, the tail went to the start of
                // `rest`; move it where the plain reads continue.
                let spill = got + n - 100;
                rest.copy_within(0..spill, 0);
            }
            got += n;
        }
        assert_eq!(got, total);
        let mut back = first.to_vec();
        back.extend_from_slice(&rest[..total - 100]);
        assert!(back
            .iter()
            .enumerate()
            .all(|(i, &v)| v == pattern(9, i as u64)));
        assert_eq!(server.join().unwrap(), total as u64);
    });
}

/// Half-close: the client shuts its writing half, the server reads to the
/// end, then answers on the still-open other half.
#[test]
fn half_close_lets_the_other_half_finish() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        let server = grove::go(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let got = read_pattern(&mut conn, 1, 512).unwrap();
            conn.write_all(&got.to_le_bytes()).unwrap();
            // Writing after the peer's half-close still works.
            write_pattern(&conn, 2, 50_000, 999).unwrap();
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        write_pattern(&conn, 1, 77_777, 4096).unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut count = [0u8; 8];
        conn.read_exact(&mut count).unwrap();
        assert_eq!(u64::from_le_bytes(count), 77_777);
        assert_eq!(read_pattern(&mut conn, 2, 333).unwrap(), 50_000);
        server.join().unwrap();
    });
}

/// The end of a stream that came with the last data is seen: a read that
/// moves fewer bytes than asked takes the socket for drained, but the
/// peer's FIN may sit behind that data with its event already taken (one
/// edge for both). The server corks its socket so that the data and the
/// FIN leave in one segment; a hang shows as the read timeout.
#[test]
fn a_short_read_then_the_end_of_the_stream() {
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            rt.block_on(|| {
                for round in 0..100u8 {
                    let (listener, addr) = local_listener();
                    let server = std::thread::spawn(move || {
                        let (mut conn, _) = listener.accept().unwrap();
                        let mut go = [0u8; 1];
                        conn.read_exact(&mut go).unwrap();
                        let one: libc::c_int = 1;
                        // SAFETY: a valid socket and a c_int option value of
                        // the size given.
                        let rc = unsafe {
                            libc::setsockopt(
                                conn.as_raw_fd(),
                                libc::IPPROTO_TCP,
                                libc::TCP_CORK,
                                (&one as *const libc::c_int).cast(),
                                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                            )
                        };
                        assert_eq!(rc, 0, "TCP_CORK");
                        conn.write_all(&[round; 5]).unwrap();
                        conn.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut conn = TcpStream::connect(addr).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    conn.write_all(&[0]).unwrap();
                    let mut buf = [0u8; 4096];
                    let mut got = 0;
                    loop {
                        match conn.read(&mut buf[got..]) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) => {
                                panic!("round {round}: {e} after {got} bytes (the end was lost)")
                            }
                        }
                    }
                    assert_eq!(&buf[..got], &[round; 5]);
                    server.join().unwrap();
                }
            });
        }
    });
}

/// A writer far ahead of a slow reader parks on a full socket; a slow
/// writer leaves its reader parked on an empty one; nothing is lost.
#[test]
fn slow_readers_and_slow_writers_lose_nothing() {
    on_each_runtime(|_| {
        const LEN: u64 = 2 << 20;
        let (listener, addr) = local_listener();
        // Slow reader: tiny reads with a yield after each.
        let reader = grove::go(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 61];
            let mut got = 0u64;
            loop {
                let n = (&conn).read(&mut buf).unwrap();
                if n == 0 {
                    return got;
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, pattern(4, got + k as u64));
                }
                got += n as u64;
                if got % 7 == 0 {
                    thread::yield_now();
                }
            }
        });
        let conn = TcpStream::connect(addr).unwrap();
        write_pattern(&conn, 4, LEN, 1 << 16).unwrap();
        drop(conn);
        assert_eq!(reader.join().unwrap(), LEN);

        // Slow writer: one byte at a time, yielding in between.
        let (listener, addr) = local_listener();
        let writer = grove::go(move || {
            let (conn, _) = listener.accept().unwrap();
            for i in 0..2000u64 {
                (&conn).write_all(&[pattern(5, i)]).unwrap();
                thread::yield_now();
            }
        });
        let conn = TcpStream::connect(addr).unwrap();
        assert_eq!(read_pattern(&conn, 5, 4096).unwrap(), 2000);
        writer.join().unwrap();
    });
}

/// Read timeouts that elapse return `WouldBlock` and lose nothing: a
/// reader with a short timeout, reading from a writer that pauses longer,
/// gets every byte exactly once.
#[test]
fn read_timeouts_lose_nothing() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        let (go_tx, go_rx) = chan::bounded::<()>(0);
        let writer = grove::go(move || {
            let (conn, _) = listener.accept().unwrap();
            for round in 0..5u64 {
                // Each pause outlasts the reader's timeout at least once.
                go_rx.recv().unwrap();
                write_pattern(&conn, 6, 1000, 100).unwrap();
                assert!(round < 5);
            }
        });
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        // The kernel keeps it in clock ticks, rounded up.
        assert!(conn.read_timeout().unwrap() >= Some(Duration::from_millis(5)));
        let mut buf = [0u8; 333];
        let mut got = 0u64;
        let mut timeouts = 0;
        for round in 0..5u64 {
            // Nothing was sent for this round yet: the read times out.
            let start = Instant::now();
            let err = conn.read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
            assert!(start.elapsed() >= Duration::from_millis(5));
            timeouts += 1;
            go_tx.send(()).unwrap();
            while got < (round + 1) * 1000 {
                match conn.read(&mut buf) {
                    Ok(n) => {
                        assert!(n > 0);
                        for (k, &b) in buf[..n].iter().enumerate() {
                            assert_eq!(b, pattern(6, (got + k as u64) % 1000));
                        }
                        got += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => timeouts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert_eq!(got, 5000);
        assert!(timeouts >= 5);
        writer.join().unwrap();
    });
}

/// A write timeout that elapses (the peer reads nothing) has written
/// nothing more: the peer then reads exactly what the writes reported.
#[test]
fn write_timeouts_lose_nothing() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        let conn = TcpStream::connect(addr).unwrap();
        let (peer, _) = listener.accept().unwrap();
        conn.set_write_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut written = 0u64;
        let buf: Vec<u8> = (0..65536).map(|i| pattern(8, i)).collect();
        let err = loop {
            // Each write starts where the pattern left off.
            let off = (written % 65536) as usize;
            match (&conn).write(&buf[off..]) {
                Ok(n) => written += n as u64,
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(written > 0);
        drop(conn);
        let mut got = 0u64;
        let mut rbuf = vec![0u8; 65536];
        loop {
            let n = (&peer).read(&mut rbuf).unwrap();
            if n == 0 {
                break;
            }
            for (k, &b) in rbuf[..n].iter().enumerate() {
                assert_eq!(b, pattern(8, (got + k as u64) % 65536));
            }
            got += n as u64;
        }
        assert_eq!(got, written);
    });
}

/// Timeouts belong to the socket: set through one handle, they apply to
/// its `try_clone`s (and to the std socket `into_std` hands back).
#[test]
fn timeouts_are_shared_with_try_clones() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        let a = TcpStream::connect(addr).unwrap();
        let (_b, _) = listener.accept().unwrap();
        let clone = a.try_clone().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(15))).unwrap();
        let timeout = a.read_timeout().unwrap();
        assert!(timeout >= Some(Duration::from_millis(15)), "{timeout:?}");
        assert_eq!(clone.read_timeout().unwrap(), timeout);
        let start = Instant::now();
        let err = (&clone).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(15));
        assert!(a.set_read_timeout(Some(Duration::ZERO)).is_err());
        let std = clone.into_std().unwrap();
        assert_eq!(std.read_timeout().unwrap(), timeout);
    });
}

/// `shutdown(Read)` or `shutdown(Both)` through a `try_clone`, or the peer
/// closing, wakes a green thread parked reading: it returns, never hangs.
#[test]
fn shutdown_or_peer_close_wakes_a_parked_reader() {
    for how in [Some(Shutdown::Read), Some(Shutdown::Both), None] {
        for workers in NET_WORKERS {
            watchdog(move || {
                let rt = runtime(workers);
                let (listener, addr) = local_listener();
                let conn = TcpStream::connect(addr).unwrap();
                let (peer, _) = listener.accept().unwrap();
                let handle = conn.try_clone().unwrap();
                let reader = rt.spawn(move || (&conn).read(&mut [0u8; 16]));
                wait_blocked(&rt, "socket read", 1);
                match how {
                    Some(how) => handle.shutdown(how).unwrap(),
                    None => drop(peer),
                }
                match reader.join().unwrap() {
                    Ok(n) => assert_eq!(n, 0, "{how:?}"),
                    Err(e) => assert_ne!(e.kind(), io::ErrorKind::WouldBlock, "{how:?}: {e}"),
                }
            });
        }
    }
}

/// A peer that resets the connection while a green thread writes to it
/// makes the write fail (`ECONNRESET` or `EPIPE`), never kills the process.
#[test]
fn a_peer_reset_mid_write_is_an_error() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        let conn = TcpStream::connect(addr).unwrap();
        let (peer, _) = listener.accept().unwrap();
        let writer = grove::go(move || {
            let buf = vec![7u8; 1 << 16];
            loop {
                // Both the scalar and the vectored path.
                let r = (&conn).write(&buf).and_then(|_| {
                    (&conn).write_vectored(&[IoSlice::new(&buf), IoSlice::new(&buf)])
                });
                if let Err(e) = r {
                    return e;
                }
            }
        });
        // Read a little, then reset.
        let mut buf = [0u8; 4096];
        (&peer).read_exact(&mut buf).unwrap();
        net_util::linger_zero(peer.as_raw_fd());
        drop(peer);
        let err = writer.join().unwrap();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ),
            "{err}"
        );
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        drop(listener);
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    });
}

/// `connect_timeout` to a listener whose backlog is full (the SYN is
/// dropped) gives up with `TimedOut`, not before the timeout.
#[test]
fn connect_timeout_times_out() {
    on_each_runtime(|_| {
        let (_listener, addr) = full_backlog_listener();
        // Fill the queue (a backlog of zero holds one or two).
        let mut queued = Vec::new();
        let err = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(conn) => queued.push(conn),
                Err(e) => break e,
            }
            assert!(queued.len() < 16, "the backlog never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        let start = Instant::now();
        let err = TcpStream::connect_timeout(&addr, Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(50));
        let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

/// Host names resolve (on the blocking pool) in bind and connect.
#[test]
fn host_names_resolve() {
    on_each_runtime(|_| {
        let listener = TcpListener::bind(("localhost", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = grove::go(move || listener.accept().map(|_| ()));
        // "localhost" may name ::1 first: the connect tries each address.
        let conn = TcpStream::connect(format!("localhost:{port}"));
        let conn = conn.or_else(|_| TcpStream::connect(("127.0.0.1", port)));
        conn.unwrap();
        server.join().unwrap().unwrap();
        let err = TcpStream::connect("not an address").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    });
}

/// The address parameters are std's `A: ToSocketAddrs`: a function generic
/// over the address compiles with `grove::net` exactly as with `std::net`,
/// and an address type of the program's own that is not `Sync` works
/// (it resolves on the calling green thread).
#[test]
fn address_parameters_take_any_to_socket_addrs_as_std_does() {
    use grove::net::{ToSocketAddrs, UdpSocket};
    use std::rc::Rc;

    fn listen<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind(addr)
    }
    fn dial<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        TcpStream::connect(addr)
    }
    fn datagram<A: ToSocketAddrs, B: ToSocketAddrs>(bind: A, to: B) -> io::Result<usize> {
        let socket = UdpSocket::bind(bind)?;
        socket.connect(&to)?;
        socket.send_to(b"x", to)
    }
    /// Not `Sync` (nor `Send`): an address kept behind an `Rc`.
    struct Shared(Rc<SocketAddr>);
    impl ToSocketAddrs for Shared {
        type Iter = std::option::IntoIter<SocketAddr>;
        fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
            Ok(Some(*self.0).into_iter())
        }
    }

    on_each_runtime(|_| {
        let listener = listen("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = grove::go(move || {
            for _ in 0..4 {
                listener.accept().unwrap();
            }
        });
        let host = format!("localhost:{}", addr.port());
        let shared = Shared(Rc::new(addr));
        dial(addr).unwrap();
        dial(&shared).unwrap();
        dial(shared).unwrap();
        // "localhost" may name ::1 first: the connect tries each address.
        dial(&host).unwrap();
        server.join().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = peer.local_addr().unwrap();
        assert_eq!(datagram(("127.0.0.1", 0), to).unwrap(), 1);
        assert_eq!(datagram("127.0.0.1:0", Shared(Rc::new(to))).unwrap(), 1);
        let mut buf = [0u8; 4];
        assert_eq!(peer.recv(&mut buf).unwrap(), 1);
        assert_eq!(peer.recv(&mut buf).unwrap(), 1);
    });
}

#[test]
fn ipv6_loopback_works_where_the_host_has_it() {
    on_each_runtime(|_| {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            eprintln!("no IPv6 loopback here: skipped");
            return;
        };
        let addr = listener.local_addr().unwrap();
        let server = echo_server(listener, 1);
        assert_eq!(echo_client(addr, 11, 10_000), 10_000);
        assert_eq!(server.join().unwrap(), 10_000);
    });
}

/// `into_std` hands the socket back in blocking mode; `From` takes a std
/// socket in either mode and never blocks a worker with it.
#[test]
fn std_conversions_round_trip() {
    on_each_runtime(|_| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from(std_listener);
        assert!(is_nonblocking(listener.as_raw_fd()));
        // A blocking std stream taken in: on one worker, a green thread
        // parked reading it must leave the worker to the writer.
        let std_conn = std::net::TcpStream::connect(addr).unwrap();
        assert!(!is_nonblocking(std_conn.as_raw_fd()));
        let conn = TcpStream::from(std_conn);
        let (peer, _) = listener.accept().unwrap();
        let reader = grove::go(move || {
            let mut buf = [0u8; 5];
            (&conn).read_exact(&mut buf).unwrap();
            (conn, buf)
        });
        (&peer).write_all(b"hello").unwrap();
        let (conn, buf) = reader.join().unwrap();
        assert_eq!(&buf, b"hello");
        conn.set_nodelay(true).unwrap();
        // std's Linux `TcpStreamExt` flag (the kernel may clear it again
        // after a while; just set, it reads back).
        conn.set_quickack(true).unwrap();
        assert!(conn.quickack().unwrap());
        #[allow(deprecated)]
        {
            // On an IPv4 socket the kernel refuses `IPV6_V6ONLY`: the same
            // answer as std's.
            let std_answer = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .only_v6()
                .map_err(|e| e.kind());
            assert_eq!(listener.only_v6().map_err(|e| e.kind()), std_answer);
        }
        let std = conn.into_std().unwrap();
        assert!(!is_nonblocking(std.as_raw_fd()));
        assert!(std.nodelay().unwrap());
        let std_listener = listener.into_std().unwrap();
        assert!(!is_nonblocking(std_listener.as_raw_fd()));
        // Raw descriptors: out in blocking mode, back in through FromRawFd.
        let raw = std::os::fd::IntoRawFd::into_raw_fd(TcpStream::from(std));
        assert!(!is_nonblocking(raw));
        // SAFETY: `raw` is an open socket just given up by `into_raw_fd`.
        let back = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        assert_eq!(back.peer_addr().unwrap(), peer.local_addr().unwrap());
        let owned = std::os::fd::OwnedFd::from(back);
        let back = TcpStream::from(owned);
        assert!(format!("{back:?}").contains("TcpStream"));
    });
}

/// `set_nonblocking(true)`: operations return `WouldBlock` at once.
#[test]
fn nonblocking_mode_returns_would_block() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let conn = TcpStream::connect(addr).unwrap();
        conn.set_nonblocking(true).unwrap();
        assert_eq!(
            (&conn).read(&mut [0u8; 4]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            conn.peek(&mut [0u8; 4]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        conn.set_nonblocking(false).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (peer, _) = listener.accept().unwrap();
        (&peer).write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(conn.peek(&mut buf).unwrap(), 1);
        assert_eq!((&conn).read(&mut buf).unwrap(), 1);
    });
}

/// Options and addresses pass through to the socket.
#[test]
fn options_and_addresses() {
    on_each_runtime(|_| {
        let (listener, addr) = local_listener();
        listener.set_ttl(42).unwrap();
        assert_eq!(listener.ttl().unwrap(), 42);
        assert!(listener.take_error().unwrap().is_none());
        let clone = listener.try_clone().unwrap();
        let conn = TcpStream::connect(addr).unwrap();
        let (peer, from) = clone.accept().unwrap();
        assert_eq!(from, conn.local_addr().unwrap());
        assert_eq!(conn.peer_addr().unwrap(), addr);
        assert_eq!(peer.local_addr().unwrap(), addr);
        conn.set_nodelay(true).unwrap();
        assert!(conn.nodelay().unwrap());
        conn.set_ttl(7).unwrap();
        assert_eq!(conn.ttl().unwrap(), 7);
        conn.set_write_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        assert_eq!(conn.write_timeout().unwrap(), Some(Duration::from_secs(3)));
        assert!(conn.take_error().unwrap().is_none());
        let mut incoming = listener.incoming();
        let _c2 = TcpStream::connect(addr).unwrap();
        assert!(incoming.next().unwrap().is_ok());
    });
}

/// A green thread parked on a socket waits for the outside world: the
/// deadlock report never counts it, however long the wait.
#[test]
fn a_green_thread_parked_on_a_socket_is_no_deadlock() {
    watchdog(|| {
        let rt = grove::Runtime::builder()
            .workers(1)
            .deadlock_grace(Some(Duration::from_millis(100)))
            .build()
            .unwrap();
        let (listener, addr) = local_listener();
        let client = std::thread::spawn(move || {
            let mut conn = std::net::TcpStream::connect(addr).unwrap();
            // Not a synchronisation: the green thread stays parked, with
            // no timer armed, for four grace periods before the bytes come.
            std::thread::sleep(Duration::from_millis(400));
            conn.write_all(b"late").unwrap();
        });
        let got = rt.block_on(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            buf
        });
        assert_eq!(&got, b"late");
        client.join().unwrap();
    });
}

/// Dropping a runtime with green threads parked on sockets (reading,
/// accepting, writing to a full socket) unwinds them: each socket is
/// closed once (the peers see the end), no descriptor is closed twice (an
/// unrelated one stays open) and none is left.
#[test]
fn dropping_a_runtime_unwinds_green_threads_parked_on_sockets() {
    for workers in NET_WORKERS {
        watchdog(move || {
            let keep = std::fs::File::open("/proc/self/maps").unwrap();
            let rt = runtime(workers);
            let (listener, addr) = local_listener();
            let mut peers = Vec::new();
            for _ in 0..8 {
                let conn = TcpStream::connect(addr).unwrap();
                let (peer, _) = listener.accept().unwrap();
                peers.push(peer.into_std().unwrap());
                rt.spawn(move || {
                    let _ = (&conn).read(&mut [0u8; 8]);
                    unreachable!("nothing is ever sent");
                });
            }
            let writer_conn = TcpStream::connect(addr).unwrap();
            let (writer_peer, _) = listener.accept().unwrap();
            let writer_peer = writer_peer.into_std().unwrap();
            rt.spawn(move || {
                let buf = vec![0u8; 1 << 16];
                loop {
                    (&writer_conn).write_all(&buf).unwrap();
                }
            });
            rt.spawn(move || {
                let _ = listener.accept();
                unreachable!("nobody connects");
            });
            // Eight readers and the acceptor (accept waits to read).
            wait_blocked(&rt, "socket read", 9);
            wait_blocked(&rt, "socket write", 1);
            let report = rt.shutdown();
            assert_eq!(report.leaked().len(), 10, "{report}");
            assert!(report.not_unwound().is_empty(), "{report}");
            for mut peer in peers {
                peer.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                assert_eq!(peer.read(&mut [0u8; 8]).unwrap(), 0);
            }
            let mut sink = Vec::new();
            writer_peer
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            (&writer_peer).read_to_end(&mut sink).unwrap();
            assert!(is_open(keep.as_raw_fd()));
            // The listener went too: connecting is refused.
            let err = std::net::TcpStream::connect(addr).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        });
    }
}

/// A listener outlives the runtime it was first waited on in, and serves
/// green threads of the next runtimes (registered with each in turn).
#[test]
fn a_socket_moves_on_to_another_runtime() {
    watchdog(|| {
        let (listener, addr) = local_listener();
        let listener = std::sync::Arc::new(listener);
        for round in 0..6u8 {
            let rt = runtime(1 + usize::from(round % 3));
            let l = listener.clone();
            let server = rt.spawn(move || {
                let (mut conn, _) = l.accept().unwrap();
                let mut b = [0u8; 1];
                conn.read_exact(&mut b).unwrap();
                b[0]
            });
            // Parked on the poller before the client comes.
            wait_blocked(&rt, "socket read", 1);
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(&[round]).unwrap();
            assert_eq!(server.join().unwrap(), round);
            drop(rt);
        }
        // Two live runtimes waiting on one socket at once.
        let (a, b) = (runtime(1), runtime(2));
        let (la, lb) = (listener.clone(), listener.clone());
        let ha = a.spawn(move || la.accept().map(|_| ()));
        let hb = b.spawn(move || lb.accept().map(|_| ()));
        wait_blocked(&a, "socket read", 1);
        wait_blocked(&b, "socket read", 1);
        let _c1 = std::net::TcpStream::connect(addr).unwrap();
        let _c2 = std::net::TcpStream::connect(addr).unwrap();
        ha.join().unwrap().unwrap();
        hb.join().unwrap().unwrap();
    });
}

#[test]
fn socket_types_are_send_and_sync_like_std() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TcpListener>();
    assert_send_sync::<TcpStream>();
    assert_send_sync::<grove::net::UdpSocket>();
    assert_send_sync::<grove::net::unix::UnixListener>();
    assert_send_sync::<grove::net::unix::UnixStream>();
    assert_send_sync::<grove::net::unix::UnixDatagram>();
    assert_send_sync::<grove::net::Incoming<'_>>();
}

/// Two runtimes serving sockets side by side, their workers handing the
/// poller to each other all the time: every green thread woken onto a
/// worker asleep in the poller gets run (a wake-up sent to the futex of a
/// worker in `epoll_wait` once hung this).
#[test]
fn runtimes_side_by_side_keep_every_worker_wakeable() {
    const ROUNDS: usize = 40;
    watchdog(|| {
        let drive = |stream: u64| {
            move || {
                for round in 0..ROUNDS {
                    for workers in NET_WORKERS {
                        runtime(workers).block_on(move || {
                            let (listener, addr) = local_listener();
                            let server = echo_server(listener, 8);
                            let clients: Vec<_> = (0..8)
                                .map(|c| grove::go(move || echo_client(addr, stream + c, 20_000)))
                                .collect();
                            for c in clients {
                                assert_eq!(c.join().unwrap(), 20_000, "round {round}");
                            }
                            assert_eq!(server.join().unwrap(), 8 * 20_000);
                        });
                    }
                }
            }
        };
        let a = std::thread::spawn(drive(0));
        let b = std::thread::spawn(drive(100));
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// Hundreds of connections ping-ponging between a server runtime and a
/// client runtime of two workers each: every round trip completes. (The
/// poller once woke a waiter for an event whose bit the waiter had
/// already cleared; parked again without its entry, it was never woken.)
#[test]
fn hundreds_of_connections_ping_pong_between_two_runtimes() {
    const CONNS: usize = 400;
    const ROUNDS: usize = 100;
    watchdog(|| {
        let server_rt = runtime(2);
        let client_rt = runtime(2);
        let (listener, addr) = local_listener();
        server_rt.spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                grove::go(move || {
                    let mut buf = [0u8; 64];
                    while conn.read_exact(&mut buf).is_ok() {
                        conn.write_all(&buf).unwrap();
                    }
                });
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                client_rt.spawn(move || {
                    let mut conn = TcpStream::connect(addr).unwrap();
                    let mut back = [0u8; 64];
                    for round in 0..ROUNDS {
                        let msg = [(c + round) as u8; 64];
                        conn.write_all(&msg).unwrap();
                        conn.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg);
                    }
                    ROUNDS
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, CONNS * ROUNDS);
    });
}

/// A connected pair whose client has waited once (a read that timed out):
/// registered with the runtime's poller, the state of any server after
/// its first request.
fn registered_pair() -> (TcpStream, TcpStream) {
    let (listener, addr) = local_listener();
    let client = TcpStream::connect(addr).unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let err = (&*s).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        s.set_read_timeout(None).unwrap();
    }
    (client, server)
}

/// Vectored reads and writes of more buffers than the kernel takes at
/// once (1,024): the short transfer that ends each call is not a drained
/// socket, and the next call goes on at once, as std's does.
#[test]
fn vectored_transfers_past_iov_max_do_not_wait_for_readiness() {
    watchdog(|| {
        runtime(1).block_on(|| {
            let (client, server) = registered_pair();
            let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
            let slices: Vec<IoSlice<'_>> = data.chunks(1).map(IoSlice::new).collect();
            let mut sent = 0;
            while sent < slices.len() {
                sent += (&client).write_vectored(&slices[sent..]).unwrap();
            }
            let mut got = vec![0u8; 3000];
            let mut off = 0;
            while off < got.len() {
                let mut bufs: Vec<io::IoSliceMut<'_>> =
                    got[off..].chunks_mut(1).map(io::IoSliceMut::new).collect();
                off += (&server).read_vectored(&mut bufs).unwrap();
            }
            assert_eq!(got, data);
        });
    });
}

/// A write of nothing returns `Ok(0)` at once, as std's, even on a socket
/// whose send buffer is full. (A read of nothing waits for data, as std's
/// blocking read does.)
#[test]
fn an_empty_write_returns_at_once_on_a_full_socket() {
    watchdog(|| {
        runtime(1).block_on(|| {
            let (client, _server) = registered_pair();
            client
                .set_write_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            while (&client).write(&[0u8; 1 << 16]).is_ok() {}
            client.set_write_timeout(None).unwrap();
            assert_eq!((&client).write(&[]).unwrap(), 0);
            assert_eq!((&client).write_vectored(&[]).unwrap(), 0);
        });
    });
}

/// Non-blocking mode is the socket's, as in std: set through one handle,
/// it holds for a `try_clone` made before and after, and cleared through
/// the clone it is cleared for the first handle.
#[test]
fn nonblocking_mode_is_shared_by_clones() {
    watchdog(|| {
        runtime(1).block_on(|| {
            let (client, _server) = registered_pair();
            let before = client.try_clone().unwrap();
            client.set_nonblocking(true).unwrap();
            let after = client.try_clone().unwrap();
            for s in [&client, &before, &after] {
                let err = (&*s).read(&mut [0u8; 4]).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            }
            before.set_nonblocking(false).unwrap();
            client
                .set_read_timeout(Some(Duration::from_millis(5)))
                .unwrap();
            // Blocking again, through every handle: a read waits out the
            // (shared) timeout, then says WouldBlock.
            let start = Instant::now();
            let err = (&client).read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
            assert!(start.elapsed() >= Duration::from_millis(5));
        });
    });
}

/// A receive timeout set on a listener's descriptor bounds `accept`, as
/// the kernel's blocking accept (std's) honours it: `WouldBlock` once it
/// passes, in a green thread and on an OS thread, for TCP and Unix
/// listeners; cleared, `accept` waits for the connection again.
#[test]
fn accept_honours_the_listeners_receive_timeout() {
    on_each_runtime(|_| {
        let timeout = Duration::from_millis(20);
        let (listener, addr) = local_listener();
        set_receive_timeout(listener.as_raw_fd(), timeout);
        let start = Instant::now();
        let err = listener.accept().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(start.elapsed() >= timeout);
        // The same listener, from an OS thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let err = listener.accept().unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
            })
            .join()
            .unwrap();
        });
        // std's answer on the same kind of socket, for the record.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        set_receive_timeout(std_listener.as_raw_fd(), timeout);
        let std_err = std_listener.accept().unwrap_err();
        assert_eq!(std_err.kind(), err.kind());

        let dir = std::env::temp_dir().join(format!(
            "grove-accept-timeout-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let unix = grove::net::unix::UnixListener::bind(&path).unwrap();
        set_receive_timeout(unix.as_raw_fd(), timeout);
        let err = unix.accept().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        drop(unix);
        std::fs::remove_dir_all(&dir).unwrap();

        // Cleared: the wait lasts until the connection comes.
        set_receive_timeout(listener.as_raw_fd(), Duration::ZERO);
        let client = grove::go(move || TcpStream::connect(addr).unwrap());
        let (server, _) = listener.accept().unwrap();
        let client = client.join().unwrap();
        assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    });
}

/// A read or peek of nothing on a TCP stream waits for data like any read,
/// and if the read timeout passes first returns `Ok(0)`, as std's blocking
/// `recv` of zero bytes does (a Unix stream's says `WouldBlock`, as
/// std's); in non-blocking mode it says `WouldBlock`, as std's.
#[test]
fn an_empty_tcp_read_whose_timeout_passes_reads_nothing_as_std() {
    on_each_runtime(|_| {
        let timeout = Duration::from_millis(10);
        let (client, server) = registered_pair();
        client.set_read_timeout(Some(timeout)).unwrap();
        // std's answers, on a std pair.
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_client = std::net::TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
        let _std_server = std_listener.accept().unwrap();
        std_client.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!((&std_client).read(&mut []).unwrap(), 0);
        assert_eq!(std_client.peek(&mut []).unwrap(), 0);

        let start = Instant::now();
        assert_eq!((&client).read(&mut []).unwrap(), 0);
        assert!(start.elapsed() >= timeout, "it waited for the timeout");
        assert_eq!(client.peek(&mut []).unwrap(), 0);
        let mut none: [io::IoSliceMut<'_>; 0] = [];
        assert_eq!((&client).read_vectored(&mut none).unwrap(), 0);
        // From an OS thread too.
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!((&client).read(&mut []).unwrap(), 0))
                .join()
                .unwrap();
        });
        // Non-blocking: one try, WouldBlock, as std's.
        client.set_nonblocking(true).unwrap();
        std_client.set_nonblocking(true).unwrap();
        let err = (&client).read(&mut []).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let std_err = (&std_client).read(&mut []).unwrap_err();
        assert_eq!(std_err.kind(), io::ErrorKind::WouldBlock);
        client.set_nonblocking(false).unwrap();
        // With data queued, at once; the data stays.
        (&server).write_all(b"x").unwrap();
        client.set_read_timeout(None).unwrap();
        let mut b = [0u8; 1];
        (&client).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
        (&server).write_all(b"y").unwrap();
        assert_eq!(client.peek(&mut b).unwrap(), 1);
        assert_eq!((&client).read(&mut []).unwrap(), 0);
        (&client).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"y");
    });
}
