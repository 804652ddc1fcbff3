//! A semaphore from a buffered channel: a send takes a permit (blocking when
//! all are taken), a receive gives it back. At most `PERMITS` green threads
//! are inside the critical part at once.

use grove::chan;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const PERMITS: usize = 3;

fn main() {
    let peak = grove::run(|| {
        let sem = chan::bounded::<()>(PERMITS);
        let inside = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (acquire, release) = (sem.0.clone(), sem.1.clone());
                let (inside, peak) = (inside.clone(), peak.clone());
                grove::go(move || {
                    acquire.send(()).unwrap(); // take a permit
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    grove::thread::yield_now(); // let others try to get in
                    inside.fetch_sub(1, Ordering::SeqCst);
                    release.recv().unwrap(); // give it back
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        peak.load(Ordering::SeqCst)
    });
    println!("at most {peak} of 20 green threads were inside at once (limit {PERMITS})");
    assert!((1..=PERMITS).contains(&peak));
}
