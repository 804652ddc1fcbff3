//! Go's classic data race, made safe.
//!
//! In Go this compiles, runs, and prints anything up to 10000 (`go run
//! -race` reports it):
//!
//! ```go
//! var counter int
//! for i := 0; i < 100; i++ {
//!     go func() { for j := 0; j < 100; j++ { counter++ } }()
//! }
//! ```
//!
//! In Rust the racy version does not compile: a `static mut` needs
//! `unsafe` (E0133), two green threads cannot borrow one `&mut counter`
//! (E0499), and a `Cell` shared through an `Arc` is not `Sync` (E0277).
//! Those are checked by the `compile_fail` doctests in grove's library
//! docs. Here is the safe version: the counter lives in a
//! `grove::sync::Mutex`, shared through an `Arc`; green threads that find
//! it locked park (their worker runs others), and the total is exact.

use grove::sync::{Arc, Mutex};

const GREEN_THREADS: u64 = 100;
const INCREMENTS: u64 = 1_000;

fn main() {
    let counter = Arc::new(Mutex::new(0u64));
    let total = grove::run({
        let counter = counter.clone();
        move || {
            let handles: Vec<_> = (0..GREEN_THREADS)
                .map(|_| {
                    let counter = counter.clone();
                    grove::go(move || {
                        for i in 0..INCREMENTS {
                            let mut n = counter.lock().unwrap();
                            *n += 1;
                            if i % 100 == 0 {
                                // Holding the guard across a park is fine:
                                // others just wait for it.
                                grove::thread::yield_now();
                            }
                        }
                    })
                })
                .collect();
            // An OS thread can take the same lock while green threads hold
            // and wait for it.
            let os_counter = counter.clone();
            let os_thread = std::thread::spawn(move || {
                for _ in 0..INCREMENTS {
                    *os_counter.lock().unwrap() += 1;
                }
            });
            for h in handles {
                h.join().unwrap();
            }
            os_thread.join().unwrap();
            let n = *counter.lock().unwrap();
            n
        }
    });
    let expected = (GREEN_THREADS + 1) * INCREMENTS;
    println!("counter = {total} (expected {expected})");
    assert_eq!(total, expected);
    assert_eq!(*counter.lock().unwrap(), expected);
}
