//! A TCP echo load generator, and the two echo servers it compares: grove
//! (a green thread per connection on `grove::net`) and std (an OS thread
//! per connection on `std::net`).
//!
//! ```text
//! cargo run --release --example echo_load                          # quick: both servers, 1 and 100 connections, 1 s each
//! cargo run --release --example echo_load -- grove 1000 5          # one server, 1,000 connections, 5 s
//! cargo run --release --example echo_load -- serve grove 127.0.0.1:7009   # a server alone
//! cargo run --release --example echo_load -- load 127.0.0.1:7009 100 5    # the load alone, against any echo server
//! ```
//!
//! The server runs in a child process (this program, started again), so
//! that it and the load generator are measured as two programs sharing the
//! machine. The load: C connections, each one green thread that sends a
//! 64-byte request (a sequence number and a pattern), reads the 64-byte
//! echo, checks every byte, and goes again at once; requests per second
//! over the measured window (after a warm-up) and the p50/p99 of the round
//! trips. The load generator runs on a grove runtime of 2 workers, the
//! grove server on one of 2 workers.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per request and per response.
const MSG: usize = 64;

/// Workers of the grove server and of the load generator.
const WORKERS: usize = 2;

/// Warm-up before the measured window.
const WARM_UP: Duration = Duration::from_millis(500);

fn grove_server(addr: &str) {
    let rt = grove::Runtime::builder()
        .workers(WORKERS)
        .deadlock_grace(None)
        .build()
        .unwrap();
    let listener = grove::net::TcpListener::bind(addr).unwrap();
    println!("{}", listener.local_addr().unwrap());
    rt.block_on(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            grove::go(move || {
                conn.set_nodelay(true).unwrap();
                let mut buf = [0u8; MSG];
                while conn.read_exact(&mut buf).is_ok() {
                    if conn.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn std_server(addr: &str) {
    let listener = std::net::TcpListener::bind(addr).unwrap();
    println!("{}", listener.local_addr().unwrap());
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                conn.set_nodelay(true).unwrap();
                let mut buf = [0u8; MSG];
                while conn.read_exact(&mut buf).is_ok() {
                    if conn.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("std server: cannot start a thread: {e}");
        }
    }
}

/// The request of connection `c`, number `seq`.
fn request(c: u64, seq: u64) -> [u8; MSG] {
    let mut msg = [0u8; MSG];
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[8..16].copy_from_slice(&c.to_le_bytes());
    for (i, b) in msg[16..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    msg
}

/// What a load run measured.
struct Outcome {
    requests: u64,
    window: Duration,
    p50: Duration,
    p99: Duration,
}

/// Runs `conns` connections against `addr` for `secs` after the warm-up.
fn load(addr: std::net::SocketAddr, conns: usize, secs: f64) -> Outcome {
    let rt = grove::Runtime::builder()
        .workers(WORKERS)
        .deadlock_grace(None)
        .build()
        .unwrap();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..conns as u64)
        .map(|c| {
            let (measuring, stop) = (measuring.clone(), stop.clone());
            rt.spawn(move || {
                let mut conn = grove::net::TcpStream::connect(addr).expect("connect");
                conn.set_nodelay(true).unwrap();
                let mut back = [0u8; MSG];
                let mut samples: Vec<u32> = Vec::new();
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let req = request(c, seq);
                    let start = Instant::now();
                    conn.write_all(&req).unwrap();
                    conn.read_exact(&mut back).unwrap();
                    let took = start.elapsed();
                    assert_eq!(back, req, "connection {c}, request {seq}: wrong echo");
                    if measuring.load(Ordering::Relaxed) {
                        samples.push(took.as_nanos().min(u32::MAX as u128) as u32);
                    }
                    seq += 1;
                }
                samples
            })
        })
        .collect();
    std::thread::sleep(WARM_UP);
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    measuring.store(false, Ordering::Relaxed);
    let window = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = clients
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    let at = |q: f64| {
        let i = ((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1));
        Duration::from_nanos(all.get(i).copied().unwrap_or(0) as u64)
    };
    Outcome {
        requests: all.len() as u64,
        window,
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Starts this program as a server child; returns it and its address.
fn start_server(kind: &str) -> (Child, std::net::SocketAddr) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["serve", kind, "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    (child, line.trim().parse().expect("the server's address"))
}

fn run(kind: &str, conns: usize, secs: f64) {
    let (mut server, addr) = start_server(kind);
    let o = load(addr, conns, secs);
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "{kind:>5} {conns:>6} connections: {:>9.0} requests/s  p50 {:>9.1?}  p99 {:>9.1?}",
        o.requests as f64 / o.window.as_secs_f64(),
        o.p50,
        o.p99
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", "grove", addr] => grove_server(addr),
        ["serve", "std", addr] => std_server(addr),
        ["load", addr, conns, secs] => {
            let o = load(
                addr.parse().unwrap(),
                conns.parse().unwrap(),
                secs.parse().unwrap(),
            );
            println!(
                "{:.0} requests/s  p50 {:.1?}  p99 {:.1?}",
                o.requests as f64 / o.window.as_secs_f64(),
                o.p50,
                o.p99
            );
        }
        [kind @ ("grove" | "std"), conns, secs] => {
            run(kind, conns.parse().unwrap(), secs.parse().unwrap())
        }
        [] => {
            for conns in [1, 100] {
                for kind in ["grove", "std"] {
                    run(kind, conns, 1.0);
                }
            }
        }
        _ => {
            eprintln!("usage: echo_load [grove|std CONNS SECS] | serve grove|std ADDR | load ADDR CONNS SECS");
            std::process::exit(2);
        }
    }
}
