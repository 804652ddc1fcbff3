//! The load generator: one OS thread, one epoll (mio's), C non-blocking
//! connections each with one request in flight; the same program for
//! every server.
//!
//! A run has three phases, each bounded in time:
//!
//! 1. **Open**: the connections are opened, at most [`OPENING`] at a time
//!    not yet answered, and each echoes one request. A server's accept
//!    backlog (128 for std's listeners) never overflows, and a connection
//!    counts as open only once the server has answered on it. No
//!    connection making progress for [`STALL`] fails the run.
//! 2. **Load** ([`run`]): every connection sends a request, and each
//!    answer, once checked byte for byte, is followed at once by the next
//!    request. Answers that come in the timed window (after the warm-up)
//!    are counted, and their round trips (from the request's write to the
//!    answer's last byte read) sampled.
//! 3. **Drain**: after the window no new request is sent; the answers
//!    still in flight must come within [`DRAIN`].
//!
//! Connections are closed with a reset (`SO_LINGER` 0), so that runs
//! leave no `TIME_WAIT` sockets behind for the next ones.
//!
//! [`hold_idle`] is phase 1 alone, with the connections kept open: the
//! `idle_conns` workload.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::{request, REQUEST};

/// Most connections being opened at once (connected or connecting, not
/// yet answered).
pub const OPENING: usize = 64;

/// No connection opened or answered for this long: the run fails.
pub const STALL: Duration = Duration::from_secs(10);

/// After the window, the answers still in flight must come within this.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Events taken per `epoll_wait`.
const EVENTS: usize = 1024;

/// Longest single wait in the poller (the phases' clocks are looked at
/// between waits).
const POLL_TIMEOUT: Duration = Duration::from_millis(5);

/// One load run: how many connections, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Connections, each with one request in flight.
    pub conns: usize,
    /// Load before the timed window (not counted).
    pub warm: Duration,
    /// The timed window.
    pub window: Duration,
}

/// What a load run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Connections.
    pub conns: usize,
    /// Answers received (and checked) in the window.
    pub requests: u64,
    /// The window.
    pub window: Duration,
    /// Median round trip in the window.
    pub p50: Duration,
    /// 99th percentile round trip.
    pub p99: Duration,
    /// Longest round trip.
    pub max: Duration,
    /// How long opening the connections took (phase 1).
    pub opened_in: Duration,
}

impl Outcome {
    /// Requests per second over the window.
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64()
    }
}

/// Drives the echo server at `addr` with `plan` (see the module doc).
/// `Err` says what went wrong: a connection refused, reset or closed, an
/// answer that differs from its request (`WRONG RESULT`), a phase past its
/// limit, the process out of descriptors.
pub fn run(addr: SocketAddr, plan: Plan) -> Result<Outcome, String> {
    if plan.conns == 0 || plan.window.is_zero() {
        return Err("a load run needs at least one connection and a window".into());
    }
    let mut gen = Generator::new(addr, plan.conns)?;
    let opened_in = gen.open_all()?;
    gen.load(plan.warm, plan.window)?;
    let mut samples = std::mem::take(&mut gen.samples);
    samples.sort_unstable();
    Ok(Outcome {
        conns: plan.conns,
        requests: gen.measured,
        window: plan.window,
        p50: percentile(&samples, 0.50),
        p99: percentile(&samples, 0.99),
        max: percentile(&samples, 1.0),
        opened_in,
    })
}

/// `n` connections to the echo server at `addr`, each answered once, held
/// open while this lives (see the module doc). `Err` as for [`run`].
pub fn hold_idle(addr: SocketAddr, n: usize) -> Result<Idle, String> {
    let mut gen = Generator::new(addr, n)?;
    let opened_in = gen.open_all()?;
    Ok(Idle { gen, opened_in })
}

/// Idle connections, held open until dropped (then reset).
pub struct Idle {
    gen: Generator,
    opened_in: Duration,
}

impl Idle {
    /// Connections held.
    pub fn conns(&self) -> usize {
        self.gen.conns.len()
    }

    /// How long opening them took.
    pub fn opened_in(&self) -> Duration {
        self.opened_in
    }

    /// Checks that the server has neither closed a connection nor sent an
    /// unasked byte since they were opened.
    pub fn check_quiet(&mut self) -> Result<(), String> {
        self.gen.poll_once(Duration::ZERO)
    }
}

/// The `q` quantile of sorted nanosecond samples.
fn percentile(sorted: &[u32], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Duration::from_nanos(u64::from(sorted[rank - 1]))
}

/// One connection of the load.
struct Conn {
    stream: TcpStream,
    /// The request in flight (or the last one).
    req: [u8; REQUEST],
    /// The answer so far; room for more than a request, so that a server
    /// that answers too much is caught.
    back: [u8; 2 * REQUEST],
    /// The next request's number.
    seq: u64,
    /// Bytes of `req` written.
    written: usize,
    /// Bytes of `back` read.
    got: usize,
    /// When `req` was sent.
    sent_at: Instant,
    connected: bool,
    in_flight: bool,
    /// Answered at least once.
    echoed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Each connection echoes one request, then waits.
    Open,
    /// Every answer is followed by the next request until `until`; those
    /// that come from `from` on are counted.
    Load { from: Instant, until: Instant },
}

struct Generator {
    addr: SocketAddr,
    poll: Poll,
    events: Events,
    /// Tokens of the last poll's events.
    ready: Vec<usize>,
    conns: Vec<Conn>,
    want: usize,
    /// Connections opened and not yet answered.
    opening: usize,
    /// Requests sent and not yet answered.
    in_flight: usize,
    phase: Phase,
    /// Answers in the window.
    measured: u64,
    /// Their round trips, in nanoseconds.
    samples: Vec<u32>,
    /// The last time a connection was answered.
    progress: Instant,
}

fn err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

impl Generator {
    fn new(addr: SocketAddr, want: usize) -> Result<Generator, String> {
        Ok(Generator {
            addr,
            poll: Poll::new().map_err(err("the load generator's poller"))?,
            events: Events::with_capacity(EVENTS),
            ready: Vec::with_capacity(EVENTS),
            conns: Vec::with_capacity(want),
            want,
            opening: 0,
            in_flight: 0,
            phase: Phase::Open,
            measured: 0,
            samples: Vec::new(),
            progress: Instant::now(),
        })
    }

    /// Phase 1: opens every connection and has each answer once.
    fn open_all(&mut self) -> Result<Duration, String> {
        let start = Instant::now();
        self.progress = start;
        loop {
            while self.conns.len() < self.want && self.opening < OPENING {
                self.open()?;
            }
            if self.conns.len() == self.want && self.opening == 0 {
                return Ok(start.elapsed());
            }
            self.poll_once(POLL_TIMEOUT)?;
            if self.progress.elapsed() > STALL {
                return Err(format!(
                    "{} of {} connections open and answered; none more for {} s",
                    self.conns.len() - self.opening,
                    self.want,
                    STALL.as_secs()
                ));
            }
        }
    }

    fn open(&mut self) -> Result<(), String> {
        let i = self.conns.len();
        let mut stream =
            TcpStream::connect(self.addr).map_err(err(format_args!("connection {i}")))?;
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(err(format_args!("connection {i}: registering")))?;
        self.conns.push(Conn {
            stream,
            req: [0; REQUEST],
            back: [0; 2 * REQUEST],
            seq: 0,
            written: 0,
            got: 0,
            sent_at: Instant::now(),
            connected: false,
            in_flight: false,
            echoed: false,
        });
        self.opening += 1;
        Ok(())
    }

    /// Phases 2 and 3.
    fn load(&mut self, warm: Duration, window: Duration) -> Result<(), String> {
        let start = Instant::now();
        let (from, until) = (start + warm, start + warm + window);
        self.phase = Phase::Load { from, until };
        self.samples.reserve(self.want * 64);
        for i in 0..self.conns.len() {
            self.send(i, start)?;
        }
        loop {
            let now = Instant::now();
            if now >= until && self.in_flight == 0 {
                return Ok(());
            }
            if now >= until + DRAIN {
                return Err(format!(
                    "{} answers still missing {} s after the window",
                    self.in_flight,
                    DRAIN.as_secs()
                ));
            }
            self.poll_once(POLL_TIMEOUT)?;
        }
    }

    /// Waits up to `timeout` for events and handles them.
    fn poll_once(&mut self, timeout: Duration) -> Result<(), String> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(format!("the load generator's poller: {e}")),
        }
        self.ready.clear();
        self.ready.extend(self.events.iter().map(|e| e.token().0));
        for k in 0..self.ready.len() {
            let i = self.ready[k];
            self.on_event(i)?;
        }
        Ok(())
    }

    fn on_event(&mut self, i: usize) -> Result<(), String> {
        let now = Instant::now();
        if !self.conns[i].connected {
            if !finish_connect(&mut self.conns[i], i)? {
                return Ok(());
            }
            self.send(i, now)?;
        }
        let c = &mut self.conns[i];
        if c.in_flight && c.written < REQUEST {
            write_rest(c, i)?;
        }
        if read_answer(c, i)? {
            self.answered(i, now)?;
        }
        Ok(())
    }

    /// Sends connection `i`'s next request.
    fn send(&mut self, i: usize, now: Instant) -> Result<(), String> {
        let c = &mut self.conns[i];
        c.req = request(i as u64, c.seq);
        c.seq += 1;
        c.written = 0;
        c.got = 0;
        c.sent_at = now;
        c.in_flight = true;
        self.in_flight += 1;
        write_rest(c, i)
    }

    /// Connection `i`'s answer came whole and right.
    fn answered(&mut self, i: usize, now: Instant) -> Result<(), String> {
        let c = &mut self.conns[i];
        c.in_flight = false;
        self.in_flight -= 1;
        self.progress = now;
        if !c.echoed {
            c.echoed = true;
            self.opening -= 1;
        }
        let Phase::Load { from, until } = self.phase else {
            return Ok(());
        };
        if now >= until {
            return Ok(());
        }
        if now >= from {
            let took = now.saturating_duration_since(c.sent_at).as_nanos();
            self.samples.push(took.min(u128::from(u32::MAX)) as u32);
            self.measured += 1;
        }
        self.send(i, now)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        for c in &self.conns {
            reset_on_close(c.stream.as_raw_fd());
        }
    }
}

/// Whether connection `i`'s connect has completed (`Err`: it failed).
fn finish_connect(c: &mut Conn, i: usize) -> Result<bool, String> {
    if let Some(e) = c
        .stream
        .take_error()
        .map_err(err(format_args!("connection {i}")))?
    {
        return Err(format!("connection {i}: connect: {e}"));
    }
    match c.stream.peer_addr() {
        Ok(_) => {
            c.connected = true;
            c.stream
                .set_nodelay(true)
                .map_err(err(format_args!("connection {i}: TCP_NODELAY")))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(format!("connection {i}: connect: {e}")),
    }
}

/// Writes what is left of the request in flight, as far as the socket
/// takes it now.
fn write_rest(c: &mut Conn, i: usize) -> Result<(), String> {
    while c.written < REQUEST {
        match c.stream.write(&c.req[c.written..]) {
            Ok(0) => return Err(format!("connection {i}: the socket took no byte")),
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("connection {i}: write: {e}")),
        }
    }
    Ok(())
}

/// Reads what has come of the answer; true once it is whole and checked.
/// Stops reading there: the server sends nothing more until the next
/// request (epoll reports the next answer's arrival as a new event).
fn read_answer(c: &mut Conn, i: usize) -> Result<bool, String> {
    loop {
        match c.stream.read(&mut c.back[c.got..]) {
            Ok(0) => {
                return Err(format!(
                    "connection {i}: the server closed it{}",
                    if c.in_flight { " before answering" } else { "" }
                ))
            }
            Ok(n) => {
                c.got += n;
                if !c.in_flight || c.got > REQUEST {
                    return Err(format!(
                        "echo: WRONG RESULT: connection {i} got {} bytes more than it sent",
                        c.got - if c.in_flight { REQUEST } else { 0 }
                    ));
                }
                if c.got == REQUEST {
                    if c.back[..REQUEST] != c.req {
                        return Err(format!(
                            "echo: WRONG RESULT: connection {i}, request {}: the answer differs",
                            c.seq - 1
                        ));
                    }
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("connection {i}: read: {e}")),
        }
    }
}

/// `SO_LINGER` 0: closing the socket resets the connection instead of
/// leaving it in `TIME_WAIT`.
fn reset_on_close(fd: std::os::fd::RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid struct of the size passed; setsockopt
    // only reads it. A descriptor that is not a socket is an error, no
    // harm.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let s: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&s, 0.5), Duration::from_nanos(50));
        assert_eq!(percentile(&s, 0.99), Duration::from_nanos(99));
        assert_eq!(percentile(&s, 1.0), Duration::from_nanos(100));
        assert_eq!(percentile(&[7], 0.99), Duration::from_nanos(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
