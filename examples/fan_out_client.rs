//! A client fan-out: one query sent to several backends at once, each
//! request with its own timeout, the first error cancelling the rest (Go's
//! `errgroup.WithContext`), built from channels and a context:
//!
//! - every request runs in its own green thread under a child context of
//!   the fan-out; the first failure cancels that context;
//! - a request parked reading its socket is cut short by a watcher green
//!   thread that `select!`s on the context and shuts the socket down, which
//!   wakes the reader at once;
//! - a read timeout (`set_read_timeout`, Go's `SetReadDeadline`) bounds
//!   each request; `connect_timeout` bounds each connect.
//!
//! ```text
//! cargo run --release --example fan_out_client
//! ```
//!
//! It starts five local backends (fast, slow, one that fails, one that
//! never answers) and runs three fan-outs: all healthy; one backend timing
//! out; one failing at once. The cancelled requests end within a few
//! milliseconds of the first error, not when their own timeouts would.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use grove::chan;
use grove::context::Context;
use grove::net::{SocketAddr, TcpListener, TcpStream};
use grove::select;

/// How a backend answers.
#[derive(Clone, Copy)]
enum Backend {
    /// "ok" after this long.
    Answer(Duration),
    /// "error" at once.
    Fail,
    /// Never answers (until the client goes).
    Hang,
}

/// Starts a backend on a loopback port; it serves until the process ends.
fn start_backend(name: &'static str, how: Backend) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    grove::go(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            grove::go(move || {
                let mut query = String::new();
                if BufReader::new(&conn).read_line(&mut query).is_err() {
                    return;
                }
                let answer = match how {
                    Backend::Answer(delay) => {
                        grove::thread::sleep(delay);
                        format!("ok {name}: {}", query.trim())
                    }
                    Backend::Fail => "error: out of coffee".to_string(),
                    Backend::Hang => {
                        // Waits for the client to go away.
                        let _ = io::copy(&mut &conn, &mut io::sink());
                        return;
                    }
                };
                let _ = (&conn).write_all(format!("{answer}\n").as_bytes());
            });
        }
    });
    addr
}

#[derive(Debug)]
enum FetchError {
    Io(SocketAddr, io::Error),
    Backend(SocketAddr, String),
    TimedOut(SocketAddr),
    Cancelled(SocketAddr),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Io(a, e) => write!(f, "{a}: {e}"),
            FetchError::Backend(a, msg) => write!(f, "{a} said {msg:?}"),
            FetchError::TimedOut(a) => write!(f, "{a}: timed out"),
            FetchError::Cancelled(a) => write!(f, "{a}: cancelled"),
        }
    }
}

/// One request: connect, send `query`, read one line, within `timeout`,
/// or until `ctx` is done.
fn fetch(
    ctx: &Context,
    addr: SocketAddr,
    query: &str,
    timeout: Duration,
) -> Result<String, FetchError> {
    let io_err = |e| FetchError::Io(addr, e);
    let conn = TcpStream::connect_timeout(&addr, timeout).map_err(io_err)?;
    conn.set_read_timeout(Some(timeout)).map_err(io_err)?;
    // The watcher: on cancellation, shut the socket down; that wakes the
    // read below. It goes when the request is done (`finished` closes).
    let (finished_tx, finished_rx) = chan::bounded::<()>(0);
    let watcher = {
        let (ctx, conn) = (ctx.clone(), conn.try_clone().map_err(io_err)?);
        grove::go(move || {
            select! {
                recv(ctx.done()) -> _ => { let _ = conn.shutdown(Shutdown::Both); }
                recv(finished_rx) -> _ => {}
            }
        })
    };
    let outcome = (|| {
        (&conn)
            .write_all(format!("{query}\n").as_bytes())
            .map_err(io_err)?;
        let mut line = String::new();
        match BufReader::new(&conn).read_line(&mut line) {
            Ok(_) if ctx.is_done() => Err(FetchError::Cancelled(addr)),
            Ok(0) => Err(FetchError::Io(addr, io::ErrorKind::UnexpectedEof.into())),
            Ok(_) if line.starts_with("error") => {
                Err(FetchError::Backend(addr, line.trim().to_string()))
            }
            Ok(_) => Ok(line.trim().to_string()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(FetchError::TimedOut(addr)),
            Err(_) if ctx.is_done() => Err(FetchError::Cancelled(addr)),
            Err(e) => Err(io_err(e)),
        }
    })();
    finished_tx.close();
    watcher.join().unwrap();
    outcome
}

/// Sends `query` to every backend at once; all the answers, or the first
/// error (the others cancelled then, and waited for).
fn fan_out(
    ctx: &Context,
    backends: &[SocketAddr],
    query: &str,
    timeout: Duration,
) -> Result<Vec<String>, FetchError> {
    let (ctx, cancel) = ctx.with_cancel();
    let (results_tx, results_rx) = chan::bounded(backends.len());
    let requests: Vec<_> = backends
        .iter()
        .enumerate()
        .map(|(i, &addr)| {
            let (ctx, results, query) = (ctx.clone(), results_tx.clone(), query.to_string());
            grove::go(move || {
                let started = Instant::now();
                let outcome = fetch(&ctx, addr, &query, timeout);
                results.send((i, outcome, started.elapsed())).unwrap();
            })
        })
        .collect();
    drop(results_tx);
    let mut answers = vec![String::new(); backends.len()];
    let mut first_error = None;
    for (i, outcome, took) in &results_rx {
        match outcome {
            Ok(answer) => answers[i] = answer,
            Err(e) => {
                println!("    request {i} failed after {took:.1?}: {e}");
                if first_error.is_none() {
                    first_error = Some(e);
                    cancel.cancel(); // the rest stop now
                }
            }
        }
    }
    for r in requests {
        r.join().unwrap();
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(answers),
    }
}

fn main() {
    grove::run(|| {
        let ms = Duration::from_millis;
        let healthy = [
            start_backend("a", Backend::Answer(ms(10))),
            start_backend("b", Backend::Answer(ms(30))),
            start_backend("c", Backend::Answer(ms(20))),
        ];
        let slow = start_backend("slow", Backend::Answer(ms(2_000)));
        let failing = start_backend("failing", Backend::Fail);
        let hanging = start_backend("hanging", Backend::Hang);
        let ctx = Context::background();

        println!("fan-out 1: three healthy backends, 500 ms timeout");
        let started = Instant::now();
        let answers = fan_out(&ctx, &healthy, "weather?", ms(500)).expect("all healthy");
        println!("    {answers:?} in {:.1?}", started.elapsed());
        assert_eq!(answers.len(), 3);

        println!("fan-out 2: plus one that takes 2 s and one that hangs, 100 ms timeout");
        let started = Instant::now();
        let backends = [healthy[0], healthy[1], slow, hanging];
        let err = fan_out(&ctx, &backends, "weather?", ms(100)).unwrap_err();
        let took = started.elapsed();
        println!("    first error: {err}; whole fan-out took {took:.1?}");
        assert!(matches!(err, FetchError::TimedOut(_)));
        assert!(took < ms(1_000), "cancelled requests ended early");

        println!("fan-out 3: one fails at once, the slow and the hanging ones are cancelled");
        let started = Instant::now();
        let backends = [slow, hanging, failing, healthy[2]];
        let err = fan_out(&ctx, &backends, "weather?", ms(5_000)).unwrap_err();
        let took = started.elapsed();
        println!("    first error: {err}; whole fan-out took {took:.1?}");
        assert!(matches!(err, FetchError::Backend(..)));
        assert!(
            took < ms(1_000),
            "not the 2 s or 5 s the others would have taken"
        );
    });
}
