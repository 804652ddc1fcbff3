//! How much CPU grove uses when there is little to do: a green thread that
//! wakes every `period` (a ticker, a poller, a server with a request now
//! and then) hands a value to another, for half a second per period.
//! Prints the process's CPU time as a share of one core.
//!
//! `cargo run --release --example light_load [MICROS...]` (default: 100,
//! 1000 and 5000 µs). Idle workers spin a little before they sleep, which
//! is what keeps hand-offs between busy workers fast; with nothing coming,
//! the spin shrinks back and the workers sleep.

use std::time::{Duration, Instant};

/// The CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes a `rusage` to the pointer it is given,
    // which points to a zeroed one of ours.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn main() {
    let periods: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a period in microseconds"))
        .collect();
    let periods = if periods.is_empty() {
        vec![100, 1_000, 5_000]
    } else {
        periods
    };
    let rt = grove::Runtime::builder().workers(2).build().unwrap();
    for micros in periods {
        let period = Duration::from_micros(micros);
        let ticks = (Duration::from_millis(500).as_micros() / period.as_micros().max(1)) as u64;
        let (cpu_before, start) = (cpu_time(), Instant::now());
        let received = rt.block_on(move || {
            let (tx, rx) = grove::chan::bounded::<u64>(0);
            let consumer = grove::go(move || rx.iter().count() as u64);
            for i in 0..ticks {
                grove::thread::sleep(period);
                tx.send(i).unwrap();
            }
            drop(tx);
            consumer.join().unwrap()
        });
        assert_eq!(received, ticks);
        let (cpu, wall) = (cpu_time() - cpu_before, start.elapsed());
        println!(
            "a wake-up every {micros} µs: {ticks} hand-offs in {wall:.2?}, \
             CPU {cpu:.2?} ({:.0}% of a core)",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
        );
    }
}
