//! Connections by the thousand: opened and closed with no descriptor,
//! mapping or stack left behind, and a process out of descriptors
//! (`EMFILE`) whose listener and connections keep working.
//!
//! Each test runs in a child process of its own: they count the process's
//! descriptors and mappings, and run it out of descriptors, which no other
//! test may share. `cargo test` churns 10,000 connections (debug) or 20,000
//! (release); the `#[ignore]`d `hundred_thousand_connections`, run by
//! `.ci/soak` in release, churns 100,000.

#[path = "common/net_util.rs"]
mod net_util;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use grove::chan;
use grove::net::{SocketAddr, TcpListener, TcpStream};
use grove::runtime::mapped_stacks;
use net_util::{
    fd_count, in_child, maps_count, nofile_limit, run_in_child, set_nofile_limit, watchdog_for,
};

/// Concurrent clients of the churn.
const CLIENTS: u64 = 50;

/// Mappings that may come and go on their own (glibc's arenas, the
/// allocator's caches), as in `tests/leaks.rs`.
const MAPS_SLACK: usize = 8;

/// A server that answers each connection's one byte and closes first (so
/// the TIME_WAIT state stays on the server side and the client ports are
/// free again at once), counting connections served.
fn serve(listener: TcpListener, served: Arc<AtomicU64>) {
    loop {
        let (mut conn, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => panic!("accept: {e}"),
        };
        let served = served.clone();
        grove::go(move || {
            let mut b = [0u8; 1];
            conn.read_exact(&mut b).unwrap();
            conn.write_all(&b).unwrap();
            served.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// Opens and closes `count` connections from `CLIENTS` green threads, each
/// sending one byte and reading it back, then the end of stream.
fn churn(addr: SocketAddr, count: u64) {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            grove::go(move || {
                let mut i = c;
                while i < count {
                    let mut conn = TcpStream::connect(addr).unwrap();
                    conn.write_all(&[i as u8]).unwrap();
                    let mut b = [0u8; 2];
                    conn.read_exact(&mut b[..1]).unwrap();
                    assert_eq!(b[0], i as u8);
                    assert_eq!(conn.read(&mut b).unwrap(), 0, "the server closes first");
                    i += CLIENTS;
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

/// A runtime serving `count` connections, after `warm_up` of them; returns
/// the descriptors open after the warm-up and at the end, both with the
/// runtime running.
fn churn_on_a_runtime(warm_up: u64, count: u64) -> (usize, usize) {
    let rt = net_util::runtime(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let s = served.clone();
    rt.spawn(move || serve(listener, s));
    rt.block_on(move || churn(addr, warm_up));
    net_util::wait_until("the warm-up to be served", || {
        served.load(Ordering::Relaxed) == warm_up
    });
    // A handler counts its connection before it closes it and finishes.
    let handlers_done = || rt.tasks().len() == 1; // the accept loop
    net_util::wait_until("the warm-up's handlers to finish", handlers_done);
    let fds = fd_count();
    let start = Instant::now();
    rt.block_on(move || churn(addr, count));
    net_util::wait_until("every connection to be served", || {
        served.load(Ordering::Relaxed) == warm_up + count
    });
    net_util::wait_until("every handler to finish", handlers_done);
    let elapsed = start.elapsed();
    let fds_end = fd_count();
    if count > 0 {
        println!(
            "{count} connections in {elapsed:.2?} ({:.0}/s)",
            count as f64 / elapsed.as_secs_f64()
        );
    }
    let report = rt.shutdown();
    // The server's accept loop is the one green thread left: unwound.
    assert_eq!(report.leaked().len(), 1, "{report}");
    assert!(report.not_unwound().is_empty(), "{report}");
    (fds, fds_end)
}

/// The body of the churn tests (in a child process): `count` connections
/// leave the descriptors exactly as they were (while the runtime runs, and
/// once it is gone), every stack unmapped and the mappings within
/// `MAPS_SLACK`. A first runtime warms up glibc's and the allocator's
/// caches.
fn churn_leaves_nothing_behind(count: u64) {
    churn_on_a_runtime(1_000, 0);
    let (fds, maps, stacks) = (fd_count(), maps_count(), mapped_stacks());
    let (running, running_end) = churn_on_a_runtime(1_000, count);
    let (fds_end, maps_end, stacks_end) = (fd_count(), maps_count(), mapped_stacks());
    println!(
        "fds {fds} -> {fds_end} ({running} -> {running_end} while running), maps {maps} -> \
         {maps_end}, stacks {stacks} -> {stacks_end}"
    );
    assert_eq!(running_end, running, "descriptors left open while running");
    assert_eq!(fds_end, fds, "descriptors left open");
    assert_eq!(stacks_end, stacks, "stacks left mapped");
    assert!(
        maps_end <= maps + MAPS_SLACK,
        "mappings grew: {maps} -> {maps_end}"
    );
}

#[test]
fn connections_open_and_close_leaving_nothing_behind() {
    let (ok, out) = run_in_child("churn_child");
    assert!(ok, "{out}");
    for line in out
        .lines()
        .filter(|l| l.contains("connections in") || l.contains("fds "))
    {
        eprintln!("{line}");
    }
}

#[test]
#[ignore = "run by connections_open_and_close_leaving_nothing_behind in a child process"]
fn churn_child() {
    if in_child("churn_child") {
        let count = if cfg!(debug_assertions) {
            10_000
        } else {
            20_000
        };
        watchdog_for(std::time::Duration::from_secs(120), move || {
            churn_leaves_nothing_behind(count)
        });
    }
}

#[test]
#[ignore = "100,000 connections: run by .ci/soak in release"]
fn hundred_thousand_connections() {
    let (ok, out) = run_in_child("churn_child_100k");
    assert!(ok, "{out}");
    for line in out
        .lines()
        .filter(|l| l.contains("connections in") || l.contains("fds "))
    {
        println!("{line}");
    }
}

#[test]
#[ignore = "run by hundred_thousand_connections in a child process"]
fn churn_child_100k() {
    if in_child("churn_child_100k") {
        watchdog_for(std::time::Duration::from_secs(300), || {
            churn_leaves_nothing_behind(100_000)
        });
    }
}

/// Out of descriptors: `accept` and `connect` return `EMFILE`; the
/// listener, the connections already open and the runtime keep working,
/// and both succeed again once descriptors are free.
#[test]
fn running_out_of_descriptors_is_an_error_not_a_failure() {
    let (ok, out) = run_in_child("emfile_child");
    assert!(ok, "{out}");
}

#[test]
#[ignore = "run by running_out_of_descriptors_is_an_error_not_a_failure in a child process"]
fn emfile_child() {
    if in_child("emfile_child") {
        watchdog_for(std::time::Duration::from_secs(60), emfile);
    }
}

/// A read or write is never the one to fail with `EMFILE` (std's never
/// do): in a runtime where no green thread has waited on a socket yet, a
/// read that must wait while the process is out of descriptors waits (and
/// its timeout passes, `WouldBlock`), and then gets its data.
#[test]
fn a_first_wait_needs_no_descriptor() {
    let (ok, out) = run_in_child("first_wait_child");
    assert!(ok, "{out}");
}

#[test]
#[ignore = "run by a_first_wait_needs_no_descriptor in a child process"]
fn first_wait_child() {
    if in_child("first_wait_child") {
        watchdog_for(std::time::Duration::from_secs(60), first_wait);
    }
}

fn first_wait() {
    let limit = nofile_limit();
    // The sockets are made on this OS thread: nothing has waited on a
    // socket in the runtime when its green thread reads.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client =
        TcpStream::from(std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap());
    let server = TcpStream::from(listener.accept().unwrap().0);
    let rt = net_util::runtime(2);
    rt.block_on(move || {
        let fillers = run_out_of_descriptors(8);
        client
            .set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let err = (&client).read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        // A reader parked (no timeout) while a writer comes: the data
        // arrives, with every descriptor still taken.
        client.set_read_timeout(None).unwrap();
        let writer = grove::go(move || {
            (&server).write_all(b"grove").unwrap();
            server
        });
        let mut got = [0u8; 5];
        (&client).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"grove");
        drop(writer.join().unwrap());
        drop(fillers);
    });
    set_nofile_limit(limit.rlim_cur);
}

/// Lowers the soft limit on descriptors to `spare` above those open now,
/// and takes those with `/dev/null`: the process is out of descriptors
/// until what this returns is dropped (or the limit restored).
fn run_out_of_descriptors(spare: u64) -> Vec<std::fs::File> {
    set_nofile_limit(fd_count() as u64 + spare);
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if is_emfile(&e) => return fillers,
            Err(e) => panic!("open: {e}"),
        }
    }
}

fn is_emfile(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMFILE)
}

/// Echoes one byte per round trip until the peer closes.
fn echo(mut conn: TcpStream) {
    let mut b = [0u8; 1];
    while conn.read(&mut b).unwrap() == 1 {
        conn.write_all(&b).unwrap();
    }
}

fn round_trip(conn: &mut TcpStream, byte: u8) {
    conn.write_all(&[byte]).unwrap();
    let mut b = [0u8; 1];
    conn.read_exact(&mut b).unwrap();
    assert_eq!(b[0], byte);
}

fn emfile() {
    let limit = nofile_limit();
    let rt = net_util::runtime(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The acceptor reports each outcome and waits to be told to go on.
    let (outcome_tx, outcome_rx) = chan::bounded::<io::Result<()>>(0);
    let (again_tx, again_rx) = chan::bounded::<()>(0);
    rt.spawn(move || {
        while again_rx.recv().is_ok() {
            let outcome = listener.accept().map(|(conn, _)| {
                grove::go(move || echo(conn));
            });
            outcome_tx.send(outcome).unwrap();
        }
    });
    rt.block_on(move || {
        let accept = || {
            again_tx.send(()).unwrap();
            outcome_rx.recv().unwrap()
        };
        // Connections made while descriptors are plenty.
        let mut open: Vec<TcpStream> = (0..4)
            .map(|_| {
                let conn = TcpStream::connect(addr).unwrap();
                accept().unwrap();
                conn
            })
            .collect();
        // Two more wait in the backlog, not accepted yet.
        let mut pending: Vec<TcpStream> =
            (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Run out: a low limit, and the rest filled with /dev/null.
        let mut fillers = run_out_of_descriptors(32);
        let err = accept().unwrap_err();
        assert!(is_emfile(&err), "accept: {err}");
        let err = TcpStream::connect(addr).unwrap_err();
        assert!(is_emfile(&err), "connect: {err}");
        // Everything already open keeps working.
        for (i, conn) in open.iter_mut().enumerate() {
            round_trip(conn, i as u8);
        }
        // Free four descriptors: a pending connection is accepted and served.
        fillers.truncate(fillers.len() - 4);
        accept().unwrap();
        round_trip(&mut pending[0], 40);
        // And a new one connects (the server side takes the other).
        fillers.truncate(fillers.len() - 4);
        accept().unwrap();
        round_trip(&mut pending[1], 41);
        open.push(TcpStream::connect(addr).unwrap());
        accept().unwrap();
        round_trip(open.last_mut().unwrap(), 42);
        drop(fillers);
    });
    set_nofile_limit(limit.rlim_cur);
}
