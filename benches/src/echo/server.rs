//! The echo servers: one task per connection, reading up to
//! [`READ_BUF`] bytes and writing them back, until the peer closes or
//! resets. Each listens on 127.0.0.1 (the kernel picks the port), sets
//! `TCP_NODELAY` on every connection (Go's default), and runs a ticker
//! ([`Ticker`]) beside the connections.
//!
//! | implementation | a connection is | its buffer |
//! |---|---|---|
//! | grove | a green thread (`grove::go`) on `grove::net` | on the green thread's stack |
//! | tokio | a task (`tokio::spawn`) on `tokio::net` | in the task (its future) |
//! | std::thread | an OS thread with a [`STD_THREAD_STACK`] stack, `std::net` | on the thread's stack |
//! | may | a coroutine on `may::net` (32 KiB stacks, may's default) | on the coroutine's stack |
//!
//! Go's twin (`benches/go`, `-echo`) is the same server with a goroutine
//! per connection.
//!
//! A server runs until [`Stop::request`]; an accept that fails (out of
//! descriptors, say) is said once on stderr and retried a millisecond
//! later, and a std thread that cannot be started drops its connection
//! and says why: the load generator then fails, naming the connection.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{LOCALHOST, READ_BUF};
use crate::util::may_go;

/// The OS threads' stack size (the parked_memory workload's).
pub const STD_THREAD_STACK: usize = crate::parked_memory::STD_THREAD_STACK;

/// The ticker's period.
pub const TICK: Duration = Duration::from_millis(10);

/// An echo server of this crate (Go's is its twin's `-echo` mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imp {
    /// A grove green thread per connection.
    Grove,
    /// A tokio task per connection.
    Tokio,
    /// An OS thread per connection.
    StdThread,
    /// A may coroutine per connection.
    May,
}

impl Imp {
    /// Every one.
    pub const ALL: [Imp; 4] = [Imp::Grove, Imp::Tokio, Imp::StdThread, Imp::May];

    /// Its name on a command line.
    pub fn key(self) -> &'static str {
        match self {
            Imp::Grove => "grove",
            Imp::Tokio => "tokio",
            Imp::StdThread => "std_thread",
            Imp::May => "may",
        }
    }

    /// The implementation named `key`.
    pub fn from_key(key: &str) -> Option<Imp> {
        Imp::ALL.into_iter().find(|i| i.key() == key)
    }
}

/// Stops a server: sets the flag its accept loop looks at, and connects
/// once to wake that loop from its accept.
#[derive(Debug, Default)]
pub struct Stop {
    flag: AtomicBool,
    addr: OnceLock<SocketAddr>,
}

impl Stop {
    /// A stop not yet requested.
    pub fn new() -> Arc<Stop> {
        Arc::new(Stop::default())
    }

    /// Asks the server to stop (it may not have started listening yet).
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(addr) = self.addr.get() {
            let _ = std::net::TcpStream::connect(addr);
        }
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn listening(&self, addr: SocketAddr) {
        let _ = self.addr.set(addr);
        if self.is_set() {
            self.request();
        }
    }
}

/// A task of the server that sleeps [`TICK`] in a loop and records how
/// much later than asked each sleep ended.
#[derive(Debug, Default)]
pub struct Ticker {
    ticks: AtomicU64,
    worst_ns: AtomicU64,
}

impl Ticker {
    fn record(&self, slept: Duration) {
        let late = slept.saturating_sub(TICK).as_nanos() as u64;
        self.ticks.fetch_add(1, Ordering::Relaxed);
        self.worst_ns.fetch_max(late, Ordering::Relaxed);
    }

    /// What it recorded.
    pub fn report(&self) -> TickerReport {
        TickerReport {
            ticks: self.ticks.load(Ordering::Relaxed),
            worst_late: Duration::from_nanos(self.worst_ns.load(Ordering::Relaxed)),
        }
    }
}

/// The ticker's record over a server's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickerReport {
    /// Sleeps that ended.
    pub ticks: u64,
    /// The latest a sleep ended, past its [`TICK`].
    pub worst_late: Duration,
}

/// Runs echo server `imp` with `workers` workers (may: its one global
/// scheduler's, set once per process) until `stop` is requested; `ready`
/// is given its address once it listens. Returns its ticker's record.
pub fn serve(
    imp: Imp,
    workers: usize,
    stop: Arc<Stop>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<TickerReport> {
    let ticker = Arc::new(Ticker::default());
    match imp {
        Imp::Grove => grove(workers, &stop, &ticker, ready)?,
        Imp::Tokio => tokio(workers, &stop, &ticker, ready)?,
        Imp::StdThread => std_thread(&stop, &ticker, ready)?,
        Imp::May => may(workers, &stop, &ticker, ready)?,
    }
    Ok(ticker.report())
}

/// Says on stderr, once per kind of error, that accepting failed.
fn accept_failed(e: &io::Error) {
    static SAID: AtomicU64 = AtomicU64::new(0);
    let bit = 1u64 << (e.raw_os_error().unwrap_or(63).clamp(0, 63));
    if SAID.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        eprintln!("note: accept failed ({e}); retrying");
    }
}

/// Pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(1);

/// One connection of any blocking-style server: read, write back, until
/// the peer closes, resets or errs.
fn echo_blocking<S: Read + Write>(mut conn: S) {
    let mut buf = [0u8; READ_BUF];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn grove(
    workers: usize,
    stop: &Arc<Stop>,
    ticker: &Arc<Ticker>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    let rt = grove::Runtime::builder()
        .workers(workers)
        .thread_name("echo-grove")
        .build()?;
    let listener = std::net::TcpListener::bind(LOCALHOST)?;
    let addr = listener.local_addr()?;
    // Connections that come before the accept loop runs wait in the
    // backlog.
    stop.listening(addr);
    ready(addr);
    let (stop, ticker) = (stop.clone(), ticker.clone());
    rt.block_on(move || {
        let listener = grove::net::TcpListener::from(listener);
        let (stop2, ticker) = (stop.clone(), ticker.clone());
        grove::go(move || {
            while !stop2.is_set() {
                let t = Instant::now();
                grove::thread::sleep(TICK);
                ticker.record(t.elapsed());
            }
        });
        loop {
            match listener.accept() {
                Ok(_) if stop.is_set() => return,
                Ok((conn, _)) => {
                    grove::go(move || {
                        let _ = conn.set_nodelay(true);
                        echo_blocking(conn);
                    });
                }
                Err(e) => {
                    accept_failed(&e);
                    grove::thread::sleep(ACCEPT_RETRY);
                }
            }
        }
    });
    Ok(())
}

fn tokio(
    workers: usize,
    stop: &Arc<Stop>,
    ticker: &Arc<Ticker>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("echo-tokio")
        .enable_all()
        .build()?;
    let listener = std::net::TcpListener::bind(LOCALHOST)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    stop.listening(addr);
    ready(addr);
    let (stop, ticker) = (stop.clone(), ticker.clone());
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let stop2 = stop.clone();
        tokio::spawn(async move {
            while !stop2.is_set() {
                let t = Instant::now();
                tokio::time::sleep(TICK).await;
                ticker.record(t.elapsed());
            }
        });
        loop {
            match listener.accept().await {
                Ok(_) if stop.is_set() => return Ok(()),
                Ok((mut conn, _)) => {
                    tokio::spawn(async move {
                        let _ = conn.set_nodelay(true);
                        let mut buf = [0u8; READ_BUF];
                        loop {
                            match conn.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if conn.write_all(&buf[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    accept_failed(&e);
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            }
        }
    })
}

fn std_thread(
    stop: &Arc<Stop>,
    ticker: &Arc<Ticker>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    let listener = std::net::TcpListener::bind(LOCALHOST)?;
    let addr = listener.local_addr()?;
    let (stop2, ticker) = (stop.clone(), ticker.clone());
    std::thread::Builder::new()
        .name("echo-ticker".into())
        .spawn(move || {
            while !stop2.is_set() {
                let t = Instant::now();
                std::thread::sleep(TICK);
                ticker.record(t.elapsed());
            }
        })?;
    stop.listening(addr);
    ready(addr);
    let mut accepted = 0u64;
    loop {
        match listener.accept() {
            Ok(_) if stop.is_set() => return Ok(()),
            Ok((conn, _)) => {
                accepted += 1;
                let started = std::thread::Builder::new()
                    .stack_size(STD_THREAD_STACK)
                    .spawn(move || {
                        let _ = conn.set_nodelay(true);
                        echo_blocking(conn);
                    });
                if let Err(e) = started {
                    eprintln!(
                        "note: std::thread: cannot start a thread for connection {accepted}: {e}"
                    );
                }
            }
            Err(e) => {
                accept_failed(&e);
                std::thread::sleep(ACCEPT_RETRY);
            }
        }
    }
}

fn may(
    workers: usize,
    stop: &Arc<Stop>,
    ticker: &Arc<Ticker>,
    ready: impl FnOnce(SocketAddr),
) -> io::Result<()> {
    crate::util::may_init(workers);
    let listener = may::net::TcpListener::bind(LOCALHOST)?;
    let addr = listener.local_addr()?;
    let (stop2, ticker) = (stop.clone(), ticker.clone());
    may_go(move || {
        while !stop2.is_set() {
            let t = Instant::now();
            may::coroutine::sleep(TICK);
            ticker.record(t.elapsed());
        }
    });
    stop.listening(addr);
    ready(addr);
    let stop = stop.clone();
    let acceptor = may_go(move || loop {
        match listener.accept() {
            Ok(_) if stop.is_set() => return,
            Ok((conn, _)) => {
                may_go(move || {
                    let _ = conn.set_nodelay(true);
                    echo_blocking(conn);
                });
            }
            Err(e) => {
                accept_failed(&e);
                may::coroutine::sleep(ACCEPT_RETRY);
            }
        }
    });
    acceptor
        .join()
        .map_err(|_| io::Error::other("may's accept loop panicked"))
}
