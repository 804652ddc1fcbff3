//! `echo` and `idle_conns`: a TCP echo server per implementation, driven
//! by one load generator.
//!
//! - **The servers** ([`server`]): one task per connection (a green
//!   thread, a tokio task, an OS thread, a may coroutine; Go's twin in
//!   `benches/go` is the fifth, a goroutine), each reading up to
//!   [`READ_BUF`] bytes and writing them back, on 127.0.0.1, with the
//!   runtime at the workers it is given. Each also runs a *ticker*, a task
//!   that sleeps [`server::TICK`] in a loop and records how late it woke:
//!   whether the server's timers keep firing while it serves thousands of
//!   connections. The comparison program runs every server in a child
//!   process of its own (fresh memory, no cross-talk).
//! - **The load generator** ([`load`]): one OS thread, one epoll (mio's),
//!   the same for every server. It opens C connections (at most
//!   [`load::OPENING`] being opened at once, so that no server's accept
//!   backlog overflows), echoes one request on each, then keeps one
//!   [`REQUEST`]-byte request in flight on every connection, checks every
//!   byte of every answer, and reports requests per second over a timed
//!   window after a warm-up, with the p50 and p99 round trip
//!   ([`load::Outcome`]). For `idle_conns` it opens N connections, echoes
//!   once on each and holds them open ([`load::hold_idle`]); the caller
//!   reads the server's resident memory meanwhile.
//!
//! Loopback only, bounded in count and time (every phase has a limit and
//! fails with a message past it). The load generator and the server share
//! the machine's cores: on a 2-core machine the figures are those of two
//! programs competing for two cores, the same for every implementation.

pub mod load;
pub mod server;

/// Bytes of each request, and of each answer.
pub const REQUEST: usize = 64;

/// The servers' read buffer: they read up to this many bytes at a time.
pub const READ_BUF: usize = 4096;

/// Where every server listens (the port is the kernel's choice).
pub const LOCALHOST: &str = "127.0.0.1:0";

/// Request `seq` of connection `conn`: its sequence number, the
/// connection's number and a pattern of both, so that an answer that is
/// another connection's, an earlier request's or shifted by a byte shows.
pub fn request(conn: u64, seq: u64) -> [u8; REQUEST] {
    let mut msg = [0u8; REQUEST];
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[8..16].copy_from_slice(&conn.to_le_bytes());
    let mix = seq.wrapping_mul(31).wrapping_add(conn.wrapping_mul(131));
    for (i, b) in msg[16..].iter_mut().enumerate() {
        *b = mix.wrapping_add(i as u64) as u8;
    }
    msg
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::load::{self, Plan};
    use super::server::{serve, Imp, Stop};
    use super::*;

    /// Every server of this crate answers the load generator, under load
    /// and idle, and stops when asked.
    #[test]
    fn every_server_answers_the_load_generator() {
        for imp in Imp::ALL {
            let stop = Stop::new();
            let (tx, rx) = mpsc::channel();
            let s = stop.clone();
            let server =
                std::thread::spawn(move || serve(imp, 2, s, move |addr| tx.send(addr).unwrap()));
            let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let plan = Plan {
                conns: 8,
                warm: Duration::from_millis(10),
                window: Duration::from_millis(100),
            };
            let out = load::run(addr, plan).unwrap_or_else(|e| panic!("{imp:?}: {e}"));
            assert_eq!(out.conns, 8);
            assert!(out.requests > 0, "{imp:?}: no request answered");
            assert!(out.p50 <= out.p99 && out.p99 <= out.max);
            let mut idle = load::hold_idle(addr, 50).unwrap();
            assert_eq!(idle.conns(), 50);
            idle.check_quiet().unwrap();
            drop(idle);
            stop.request();
            server.join().unwrap().unwrap();
        }
    }

    /// A server that answers wrong bytes fails the load with WRONG RESULT.
    #[test]
    fn a_wrong_answer_is_caught() {
        let listener = std::net::TcpListener::bind(LOCALHOST).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; REQUEST];
            // The first answer right (the connection opens), then one
            // byte flipped.
            for round in 0..2 {
                if conn.read_exact(&mut buf).is_err() {
                    return;
                }
                buf[REQUEST - 1] ^= round;
                if conn.write_all(&buf).is_err() {
                    return;
                }
            }
        });
        let plan = Plan {
            conns: 1,
            warm: Duration::ZERO,
            window: Duration::from_millis(200),
        };
        let err = load::run(addr, plan).unwrap_err();
        assert!(err.contains("WRONG RESULT"), "{err}");
    }

    #[test]
    fn requests_differ_by_connection_and_number() {
        assert_ne!(request(0, 1), request(1, 0));
        assert_ne!(request(3, 7), request(3, 8));
        assert_eq!(request(3, 7), request(3, 7));
    }
}
