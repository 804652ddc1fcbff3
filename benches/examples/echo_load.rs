//! The echo workload's pieces, one at a time, for profiling a server or
//! driving one from elsewhere (the showdown runs them all together:
//! `cargo run --release -p grove-benches -- --only echo`).
//!
//! ```text
//! cargo run --release -p grove-workloads --example echo_load -- serve grove 2
//!     # echo server IMPL (grove, tokio, std_thread, may) with WORKERS workers;
//!     # prints its address; stops when its stdin closes (Ctrl-D)
//! cargo run --release -p grove-workloads --example echo_load -- load 127.0.0.1:PORT 100 5
//!     # the load generator alone: CONNS connections for SECS seconds, against any echo
//!     # server (Go's twin: `grovebench -procs 2 -echo 127.0.0.1:0` in benches/go)
//! cargo run --release -p grove-workloads --example echo_load -- idle 127.0.0.1:PORT 10000
//!     # N connections, each answered once, held until stdin closes
//! ```
//!
//! The open-file limit is raised to the hard limit for the connections.

use std::time::Duration;

use grove_test_support::NofileGuard;
use grove_workloads::echo::load::{self, Plan};
use grove_workloads::echo::server::{serve, Imp, Stop};

fn usage() -> ! {
    eprintln!(
        "usage: echo_load serve IMPL [WORKERS] | load ADDR CONNS [SECS] | idle ADDR N\n\
         (IMPL: grove, tokio, std_thread, may)"
    );
    std::process::exit(2);
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Option<T> {
    args.get(i).and_then(|s| s.parse().ok())
}

fn wait_for_stdin_eof() {
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _nofile = NofileGuard::raise_to(u64::MAX).expect("RLIMIT_NOFILE");
    match args.first().map(String::as_str) {
        Some("serve") => {
            let imp = args
                .get(1)
                .and_then(|k| Imp::from_key(k))
                .unwrap_or_else(|| usage());
            let workers = arg(&args, 2).unwrap_or(2);
            let stop = Stop::new();
            let on_eof = stop.clone();
            std::thread::spawn(move || {
                wait_for_stdin_eof();
                on_eof.request();
            });
            let report = serve(imp, workers, stop, |addr| println!("{addr}")).unwrap();
            println!(
                "ticker: {} ticks, the latest {:?} late",
                report.ticks, report.worst_late
            );
        }
        Some("load") => {
            let (Some(addr), Some(conns)) = (arg(&args, 1), arg(&args, 2)) else {
                usage()
            };
            let secs: f64 = arg(&args, 3).unwrap_or(5.0);
            let window = Duration::from_secs_f64(secs);
            let plan = Plan {
                conns,
                warm: (window / 4).max(Duration::from_millis(100)),
                window,
            };
            match load::run(addr, plan) {
                Ok(o) => println!(
                    "{conns} connections: {:.0} requests/s  p50 {:.1?}  p99 {:.1?}  max {:.1?}  \
                     (opened in {:.0?})",
                    o.per_sec(),
                    o.p50,
                    o.p99,
                    o.max,
                    o.opened_in
                ),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        Some("idle") => {
            let (Some(addr), Some(n)) = (arg(&args, 1), arg(&args, 2)) else {
                usage()
            };
            let idle = load::hold_idle(addr, n).unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            });
            println!(
                "{} connections open (in {:.0?}); close stdin to let them go",
                idle.conns(),
                idle.opened_in()
            );
            wait_for_stdin_eof();
        }
        _ => usage(),
    }
}
