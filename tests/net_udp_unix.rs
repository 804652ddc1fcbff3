//! `grove::net` UDP and Unix sockets: datagrams counted exactly, receive
//! timeouts, Unix streams under the TCP rules (exact bytes, `shutdown`
//! waking a parked reader, writes to a gone peer that fail without
//! `SIGPIPE`), Unix datagrams, and the std conversions.

#[path = "common/net_util.rs"]
mod net_util;

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove::net::unix::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use grove::net::UdpSocket;
use net_util::{
    blocked_on, child_output, describe, in_child, is_nonblocking, on_each_runtime, read_pattern,
    runtime, wait_blocked, wait_until, watchdog, write_pattern, NET_WORKERS,
};

/// A fresh socket path in a directory of this test process.
fn sock_path(name: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("grove-net-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{name}-{n}.sock"));
    let _ = std::fs::remove_file(&path);
    path
}

/// Datagrams go one way, their acknowledgements the other (so no queue
/// overflows): every one arrives exactly once, in a green thread parked on
/// `recv_from` between them.
#[test]
fn udp_datagrams_arrive_exactly_once() {
    on_each_runtime(|_| {
        const COUNT: u32 = 2000;
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let receiver = grove::go(move || {
            let mut buf = [0u8; 64];
            let mut next = 0u32;
            while next < COUNT {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                assert_eq!(n, 4);
                let seq = u32::from_le_bytes(buf[..4].try_into().unwrap());
                assert_eq!(seq, next, "lost, duplicated or reordered");
                server.send_to(&buf[..4], from).unwrap();
                next += 1;
            }
            next
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server_addr).unwrap();
        assert_eq!(client.peer_addr().unwrap(), server_addr);
        let mut ack = [0u8; 8];
        for seq in 0..COUNT {
            client.send(&seq.to_le_bytes()).unwrap();
            assert_eq!(client.peek(&mut ack).unwrap(), 4);
            assert_eq!(client.recv(&mut ack).unwrap(), 4);
            assert_eq!(u32::from_le_bytes(ack[..4].try_into().unwrap()), seq);
        }
        assert_eq!(receiver.join().unwrap(), COUNT);
    });
}

#[test]
fn udp_timeouts_peek_and_options() {
    on_each_runtime(|_| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let clone = a.try_clone().unwrap();
        assert_eq!(clone.read_timeout().unwrap(), a.read_timeout().unwrap());
        let start = Instant::now();
        let err = clone.recv_from(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(20));
        b.send_to(b"peeked", a.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = a.peek_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"peeked"[..], b.local_addr().unwrap()));
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"peeked");
        a.set_broadcast(true).unwrap();
        assert!(a.broadcast().unwrap());
        a.set_ttl(9).unwrap();
        assert_eq!(a.ttl().unwrap(), 9);
        a.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
        assert!(a.write_timeout().unwrap().is_some());
        assert!(a.take_error().unwrap().is_none());
        a.set_nonblocking(true).unwrap();
        assert_eq!(
            a.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let std = a.into_std().unwrap();
        assert!(!is_nonblocking(std.as_raw_fd()));
        let back = UdpSocket::from(std);
        assert!(is_nonblocking(back.as_raw_fd()));
        let err = back.send_to(b"x", "no port here").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}

/// A Unix stream echo: every byte, in order, through green threads.
#[test]
fn unix_streams_move_every_byte() {
    on_each_runtime(|_| {
        const CLIENTS: u64 = 8;
        const LEN: u64 = 150_000;
        let path = sock_path("echo");
        let listener = UnixListener::bind(&path).unwrap();
        let server = grove::go(move || {
            let handlers: Vec<_> = listener
                .incoming()
                .take(CLIENTS as usize)
                .map(|conn| {
                    let conn = conn.unwrap();
                    grove::go(move || {
                        let mut buf = [0u8; 2048];
                        loop {
                            let n = (&conn).read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            (&conn).write_all(&buf[..n]).unwrap();
                        }
                    })
                })
                .collect();
            for h in handlers {
                h.join().unwrap();
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let path = path.clone();
                grove::go(move || {
                    let conn = Arc::new(UnixStream::connect(&path).unwrap());
                    let w = conn.clone();
                    let writer = grove::go(move || {
                        write_pattern(&*w, c, LEN, 5000).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let got = read_pattern(&*conn, c, 3000).unwrap();
                    writer.join().unwrap();
                    got
                })
            })
            .collect();
        for c in clients {
            assert_eq!(c.join().unwrap(), LEN);
        }
        server.join().unwrap();
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn unix_stream_shutdown_or_peer_close_wakes_a_parked_reader() {
    for how in [Some(Shutdown::Read), Some(Shutdown::Both), None] {
        for workers in NET_WORKERS {
            watchdog(move || {
                let rt = runtime(workers);
                let (a, b) = UnixStream::pair().unwrap();
                let handle = a.try_clone().unwrap();
                let reader = rt.spawn(move || (&a).read(&mut [0u8; 16]));
                wait_blocked(&rt, "socket read", 1);
                match how {
                    Some(how) => handle.shutdown(how).unwrap(),
                    None => drop(b),
                }
                match reader.join().unwrap() {
                    Ok(n) => assert_eq!(n, 0, "{how:?}"),
                    Err(e) => assert_ne!(e.kind(), io::ErrorKind::WouldBlock, "{how:?}: {e}"),
                }
            });
        }
    }
}

#[test]
fn unix_stream_timeouts_and_conversions() {
    on_each_runtime(|_| {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let clone = a.try_clone().unwrap();
        let start = Instant::now();
        let err = (&clone).read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(20));
        // Nothing was lost: what is written now is read whole.
        (&b).write_all(b"after").unwrap();
        let mut buf = [0u8; 5];
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"after");
        assert_eq!(clone.read_timeout().unwrap(), a.read_timeout().unwrap());
        a.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(a.write_timeout().unwrap().is_some());
        assert!(a.take_error().unwrap().is_none());
        assert!(a.local_addr().unwrap().is_unnamed());
        assert!(b.peer_addr().unwrap().is_unnamed());
        let std = a.into_std().unwrap();
        assert!(!is_nonblocking(std.as_raw_fd()));
        let a = UnixStream::from(std);
        assert!(is_nonblocking(a.as_raw_fd()));
        a.set_nonblocking(true).unwrap();
        assert_eq!(
            (&a).read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    });
}

/// Connects to an abstract address and through `connect_addr`.
#[test]
fn unix_connect_variants() {
    use std::os::linux::net::SocketAddrExt;
    on_each_runtime(|workers| {
        let name = format!("grove-net-test-{}-{workers}", std::process::id());
        // std's address type, re-exported where a program swapped from
        // `std::os::unix::net` looks for it.
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let clone = listener.try_clone().unwrap();
        let server = grove::go(move || {
            (0..3)
                .map(|_| clone.accept().map(|_| ()).is_ok())
                .filter(|&ok| ok)
                .count()
        });
        let _a = UnixStream::connect_addr(&addr).unwrap();
        let _b = UnixStream::connect_addr(&listener.local_addr().unwrap()).unwrap();
        let _c = UnixStream::connect_addr(&addr).unwrap();
        assert_eq!(server.join().unwrap(), 3);
        // `for stream in &listener`, as std's.
        let client = grove::go(move || UnixStream::connect_addr(&addr).map(drop));
        let accepted = (&listener).into_iter().next().unwrap().unwrap();
        assert!(accepted.peer_addr().unwrap().is_unnamed());
        client.join().unwrap().unwrap();
        let missing = sock_path("missing");
        assert!(UnixStream::connect(&missing).is_err());
        listener.set_nonblocking(true).unwrap();
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(listener.take_error().unwrap().is_none());
    });
}

/// A listener whose backlog is full still gets the connection once it
/// accepts: the connect parks meanwhile (trying again after a pause: no
/// event says when room is made), it holds neither a worker nor a thread
/// of the blocking pool. And a runtime dropped while one waits so unwinds
/// it at once: the connect used to wait in std's blocking connect on the
/// pool, which a shutdown waits for, until the listener accepted.
#[test]
fn unix_connect_to_a_full_backlog_parks() {
    for workers in NET_WORKERS {
        watchdog(move || {
            let path = sock_path("backlog");
            // Fill the backlog (lowered to zero, which holds one), then one more.
            let listener = UnixListener::bind(&path).unwrap();
            // SAFETY: listen(2) again on a listening socket only changes its backlog.
            assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
            let mut queued = Vec::new();
            for round in 0..2 {
                let rt = runtime(workers);
                let waiter = loop {
                    assert!(queued.len() < 16, "the backlog never filled");
                    let p = path.clone();
                    let h = rt.spawn(move || UnixStream::connect(&p));
                    // Either it connects at once, or it waits.
                    wait_until("the connect to finish or wait", || {
                        h.is_finished() || !blocked_on(&rt, "sleep").is_empty()
                    });
                    if h.is_finished() {
                        queued.push(h.join().unwrap().unwrap());
                    } else {
                        break h;
                    }
                };
                if round == 0 {
                    // Dropped while it waits: unwound, however long the
                    // listener takes.
                    let dropped = Instant::now();
                    let report = rt.shutdown();
                    assert!(waiter.join().is_err());
                    assert!(report.not_unwound().is_empty(), "{report}");
                    assert!(dropped.elapsed() < Duration::from_secs(5));
                    continue;
                }
                let accepted = listener.accept().unwrap();
                let conn = waiter.join().unwrap().unwrap();
                (&conn).write_all(b"!").unwrap();
                queued.push(conn);
                drop(accepted);
            }
            drop((queued, listener));
            std::fs::remove_file(&path).unwrap();
        });
    }
}

#[test]
fn unix_datagrams() {
    on_each_runtime(|_| {
        let (a, b) = UnixDatagram::pair().unwrap();
        let receiver = grove::go(move || {
            let mut buf = [0u8; 16];
            (0..500u32)
                .map(|i| {
                    let n = b.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..n], &i.to_le_bytes());
                })
                .count()
        });
        for i in 0..500u32 {
            a.send(&i.to_le_bytes()).unwrap();
        }
        assert_eq!(receiver.join().unwrap(), 500);

        let path = sock_path("dgram");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"to a path", &path).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"to a path");
        assert!(from.is_unnamed());
        server
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let start = Instant::now();
        assert_eq!(
            server.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(start.elapsed() >= Duration::from_millis(20));
        client.connect(&path).unwrap();
        client.send(b"connected").unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"connected");
        client
            .send_to_addr(b"by addr", &server.local_addr().unwrap())
            .unwrap();
        assert_eq!(server.recv(&mut buf).unwrap(), 7);
        let std = server.into_std().unwrap();
        assert!(!is_nonblocking(std.as_raw_fd()));
        std::fs::remove_file(&path).unwrap();
    });
}

/// A Unix datagram socket whose reading half is shut down (through the
/// handle or a `try_clone`) ends every receive with `Ok(0)`, as std's blocking receive does, and a
/// receive already parked wakes with it (the contract: it never hangs). The
/// kernel's non-blocking receive says `EAGAIN` there: in non-blocking mode
/// that is what the caller gets, as from std. Green threads and an OS
/// thread.
fn dgram_read_shutdown_ends_receives() {
    let mut buf = [0u8; 8];
    let (a, b) = UnixDatagram::pair().unwrap();
    let parked = {
        let a = a.try_clone().unwrap();
        grove::go(move || a.recv(&mut [0u8; 8]).unwrap())
    };
    a.try_clone().unwrap().shutdown(Shutdown::Read).unwrap();
    assert_eq!(parked.join().unwrap(), 0, "the parked receive ends");
    assert_eq!(a.recv(&mut buf).unwrap(), 0);
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert!(n == 0 && from.is_unnamed());
    a.set_nonblocking(true).unwrap();
    assert_eq!(
        a.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    // Sending to the read-shut end fails, as std's does.
    assert_eq!(
        b.send(b"late").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    // Datagrams queued before the shutdown are still received, then the
    // end (`Both` through the handle itself).
    let (c, d) = UnixDatagram::pair().unwrap();
    d.send(b"queued").unwrap();
    c.shutdown(Shutdown::Both).unwrap();
    assert_eq!(c.recv(&mut buf).unwrap(), 6);
    assert_eq!(c.recv(&mut buf).unwrap(), 0);
}

#[test]
fn unix_datagram_read_shutdown_ends_receives() {
    on_each_runtime(|_| dgram_read_shutdown_ends_receives());
    watchdog(dgram_read_shutdown_ends_receives);
}

/// An unconnected datagram send to a receiver whose queue is full waits
/// (the kernel never says when room comes: it retries after pauses) and
/// delivers once the receiver reads.
#[test]
fn unix_datagram_send_to_a_full_receiver_waits() {
    on_each_runtime(|_| {
        let path = sock_path("full");
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.set_nonblocking(true).unwrap();
        let mut sent = 0u32;
        while client.send_to(&sent.to_le_bytes(), &path).is_ok() {
            sent += 1;
        }
        client.set_nonblocking(false).unwrap();
        let sender = grove::go(move || client.send_to(&u32::MAX.to_le_bytes(), &path));
        let mut buf = [0u8; 4];
        for i in 0..sent {
            server.recv(&mut buf).unwrap();
            assert_eq!(u32::from_le_bytes(buf), i);
        }
        assert_eq!(sender.join().unwrap().unwrap(), 4);
        server.recv(&mut buf).unwrap();
        assert_eq!(u32::from_le_bytes(buf), u32::MAX);
    });
}

/// With `SIGPIPE` at its default action (which kills), a write to a Unix
/// or TCP peer that has gone fails with `EPIPE`/`ECONNRESET` and the
/// process lives. std's `UnixStream::write` and vectored writes would die
/// here. Runs in a child process.
#[test]
fn writes_to_a_gone_peer_never_raise_sigpipe() {
    let out = child_output("sigpipe_child");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}",
        describe(&out)
    );
}

#[test]
#[ignore = "run by writes_to_a_gone_peer_never_raise_sigpipe in a child process"]
fn sigpipe_child() {
    if !in_child("sigpipe_child") {
        return;
    }
    // SAFETY: restoring the default disposition of SIGPIPE, in a process
    // that runs this one test alone.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    runtime(2).block_on(|| {
        let is_gone = |e: io::Error| {
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ),
                "{e}"
            );
        };
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        is_gone((&a).write(b"x").unwrap_err());
        is_gone((&a).write_vectored(&[IoSlice::new(b"x")]).unwrap_err());
        let listener = grove::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = grove::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        drop(listener.accept().unwrap());
        // The first write may still be taken; a later one meets the reset.
        let err = loop {
            match (&conn).write_vectored(&[IoSlice::new(&[1u8; 1024])]) {
                Ok(n) => {
                    assert!(n > 0);
                    grove::thread::yield_now();
                }
                Err(e) => break e,
            }
        };
        is_gone(err);
        is_gone((&conn).write(b"x").unwrap_err());
    });
}

/// Fills a Unix stream's send buffer (its peer never reads): writes with
/// a short timeout until one times out.
fn fill(stream: &UnixStream) {
    stream
        .set_write_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    while (&*stream).write(&[0u8; 1 << 16]).is_ok() {}
    stream.set_write_timeout(None).unwrap();
}

/// A Unix stream shut down for writing by its own side is never reported
/// writable by the poller; a write on it must still fail at once with
/// `BrokenPipe` (std's), on a full socket too, and a green thread parked
/// writing on the same handle must wake with it.
#[test]
fn unix_write_shutdown_ends_writes_at_once() {
    watchdog(|| {
        let rt = runtime(1);
        // Its own write after the shutdown.
        let err = rt.block_on(|| {
            let (a, _b) = UnixStream::pair().unwrap();
            fill(&a);
            a.shutdown(Shutdown::Write).unwrap();
            (&a).write(b"x").unwrap_err()
        });
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

        // A writer parked on the full socket, woken by the shutdown.
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Arc::new(a);
        fill(&a);
        let writer = {
            let a = a.clone();
            rt.spawn(move || (&*a).write_all(&[1u8; 1 << 16]).unwrap_err())
        };
        wait_blocked(&rt, "socket write", 1);
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(writer.join().unwrap().kind(), io::ErrorKind::BrokenPipe);
    });
}

/// A Unix socket's write shutdown that comes from elsewhere brings no
/// event at all: through another handle (`try_clone`), or the peer's read
/// shutdown. A writer parked on the full socket, a green thread or an OS
/// thread, must still end with `BrokenPipe` as std's blocking write does
/// (it waited for an event that never came); so must a connected
/// datagram sender.
#[test]
fn unix_writes_end_on_a_shutdown_no_event_reports() {
    for workers in NET_WORKERS {
        watchdog(move || {
            let rt = runtime(workers);
            // The peer shuts its reading half.
            let (a, b) = UnixStream::pair().unwrap();
            fill(&a);
            let writer = rt.spawn(move || (&a).write_all(&[1u8; 1 << 16]).unwrap_err());
            wait_blocked(&rt, "socket write", 1);
            b.shutdown(Shutdown::Read).unwrap();
            assert_eq!(writer.join().unwrap().kind(), io::ErrorKind::BrokenPipe);

            // A clone shuts the writing half.
            let (a, _b) = UnixStream::pair().unwrap();
            fill(&a);
            let clone = a.try_clone().unwrap();
            let writer = rt.spawn(move || (&a).write_all(&[1u8; 1 << 16]).unwrap_err());
            wait_blocked(&rt, "socket write", 1);
            clone.shutdown(Shutdown::Write).unwrap();
            assert_eq!(writer.join().unwrap().kind(), io::ErrorKind::BrokenPipe);

            // An OS thread writing, the same handle shut from a green
            // thread (the writer may not have blocked yet: then it fails
            // at once).
            let (a, _b) = UnixStream::pair().unwrap();
            let a = Arc::new(a);
            fill(&a);
            let writer = {
                let a = a.clone();
                std::thread::spawn(move || (&*a).write_all(&[1u8; 1 << 16]).unwrap_err())
            };
            rt.block_on(move || a.shutdown(Shutdown::Write).unwrap());
            assert_eq!(writer.join().unwrap().kind(), io::ErrorKind::BrokenPipe);

            // A connected datagram sender, a clone shut for writing.
            let (a, _b) = UnixDatagram::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            while a.send(&[0u8; 256]).is_ok() {}
            a.set_nonblocking(false).unwrap();
            let clone = a.try_clone().unwrap();
            let sender = rt.spawn(move || a.send(&[1u8; 256]).unwrap_err());
            wait_blocked(&rt, "socket write", 1);
            clone.shutdown(Shutdown::Write).unwrap();
            assert_eq!(sender.join().unwrap().kind(), io::ErrorKind::BrokenPipe);
        });
    }
}

/// Sends `data` on the Unix stream socket `sock` with one file descriptor
/// attached (`SCM_RIGHTS`), as a process passing descriptors does.
fn send_with_a_descriptor(sock: std::os::fd::RawFd, data: &[u8], pass: std::os::fd::RawFd) {
    let fd_len = std::mem::size_of::<std::os::fd::RawFd>() as u32;
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    // u64s: the control buffer must be aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: a zeroed msghdr is a valid empty one; it points at `iov`
    // and `control`, which outlive the sendmsg call, and the one cmsghdr
    // written fits in `space` bytes (CMSG_SPACE of one descriptor).
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<std::os::fd::RawFd>(), pass);
        libc::sendmsg(sock, &msg, 0)
    };
    assert_eq!(sent, data.len() as isize, "{}", io::Error::last_os_error());
}

/// The kernel ends a Unix stream read at a message that carries file
/// descriptors, with bytes still queued behind it: a short read there does
/// not mean the socket is drained. The next read returns those bytes at
/// once, as std's does, instead of waiting for data that may never come
/// (it waited forever).
#[test]
fn a_read_cut_short_by_passed_descriptors_still_gets_the_bytes_behind_them() {
    on_each_runtime(|_| {
        for _ in 0..20 {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let ours = UnixStream::from(ours);
            // Registered with the poller, and seen empty, before the data.
            ours.set_read_timeout(Some(Duration::from_millis(1)))
                .unwrap();
            let err = (&ours).read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
            ours.set_read_timeout(None).unwrap();
            send_with_a_descriptor(theirs.as_raw_fd(), b"A", theirs.as_raw_fd());
            (&theirs).write_all(b"B").unwrap();
            let mut buf = [0u8; 8];
            let n = (&ours).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"A", "the kernel stops at the descriptors");
            let n = (&ours).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"B");
        }
    });
}

/// `shutdown(2)` of a descriptor's reading half, as a program does it for
/// a socket type whose std twin has no `shutdown` (`UdpSocket`,
/// `UnixListener`): to end a receive or an accept loop, Go's `Close`.
fn shut_read(fd: std::os::fd::RawFd) {
    // SAFETY: a plain system call on a descriptor the caller owns.
    let rc = unsafe { libc::shutdown(fd, libc::SHUT_RD) };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
}

/// A UDP socket, connected to itself (std's answers to a shut socket are
/// compared on one such).
fn udp_self_connected() -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(sock.local_addr().unwrap()).unwrap();
    sock
}

/// A UDP receive ends once the socket's reading half is shut down, as
/// std's does: `recv` and `peek` read nothing, `recv_from` (no sender to
/// give) fails with `InvalidInput`. Before, the kernel's non-blocking
/// receive said `EAGAIN` there and the receive waited for ever (a green
/// thread parked; a plain OS thread spun in `poll`), whether the shutdown
/// came before the receive or while it waited (on a `try_clone`).
#[test]
fn a_udp_receive_ends_when_its_reading_half_is_shut_down() {
    watchdog(|| {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_sock.connect(std_sock.local_addr().unwrap()).unwrap();
        shut_read(std_sock.as_raw_fd());
        assert_eq!(std_sock.recv(&mut [0u8; 8]).unwrap(), 0, "std's answer");
        for workers in [1, 2] {
            let rt = runtime(workers);
            // Shut while a receive waits on another handle.
            let sock = udp_self_connected();
            let waiting = {
                let sock = sock.try_clone().unwrap();
                rt.spawn(move || sock.recv(&mut [0u8; 8]))
            };
            wait_blocked(&rt, "socket read", 1);
            shut_read(sock.as_raw_fd());
            assert_eq!(waiting.join().unwrap().unwrap(), 0);
            // Shut before the receive, in a green thread and on this one.
            let sock = udp_self_connected();
            shut_read(sock.as_raw_fd());
            let sock = rt.block_on(move || {
                let mut buf = [0u8; 8];
                assert_eq!(sock.recv(&mut buf).unwrap(), 0);
                assert_eq!(sock.peek(&mut buf).unwrap(), 0);
                let e = sock.recv_from(&mut buf).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
                sock
            });
            assert_eq!(sock.recv(&mut [0u8; 8]).unwrap(), 0);
            sock.set_nonblocking(true).unwrap();
            let e = sock.recv(&mut [0u8; 8]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "as std's");
        }
    });
}

/// An accept on a Unix listener ends once the listener's reading half is
/// shut down, with `InvalidInput` (`EINVAL`), as std's does (and as a TCP
/// listener's does, kernel and all): the accept that waits (on a
/// `try_clone`) and every one after it, in a green thread or not. Before,
/// it waited for ever.
#[test]
fn a_unix_accept_ends_when_the_listeners_reading_half_is_shut_down() {
    watchdog(|| {
        let path = sock_path("shut_std");
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        shut_read(std_listener.as_raw_fd());
        let std_err = std_listener.accept().unwrap_err();
        assert_eq!(std_err.kind(), io::ErrorKind::InvalidInput, "std's answer");
        let std_err = std_err.raw_os_error();
        for workers in [1, 2] {
            let rt = runtime(workers);
            let listener = UnixListener::bind(sock_path("shut")).unwrap();
            let waiting = {
                let listener = listener.try_clone().unwrap();
                rt.spawn(move || listener.accept().map(|_| ()))
            };
            wait_blocked(&rt, "socket read", 1);
            shut_read(listener.as_raw_fd());
            let e = waiting.join().unwrap().unwrap_err();
            assert_eq!(e.raw_os_error(), std_err);
            let listener = rt.block_on(move || {
                let e = listener.accept().unwrap_err();
                assert_eq!(e.raw_os_error(), std_err);
                listener
            });
            let e = listener.accept().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
    });
}
