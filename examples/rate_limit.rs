//! Rate limiting with `tick`: handle at most one request per tick, however
//! fast they arrive (Go's `time.Tick` limiter).

use grove::chan;
use std::time::{Duration, Instant};

fn main() {
    let period = Duration::from_millis(10);
    let (requests_tx, requests_rx) = chan::bounded::<u32>(5);
    for id in 1..=5 {
        requests_tx.send(id).unwrap();
    }
    requests_tx.close();

    let handled = grove::run(move || {
        let limiter = chan::tick(period);
        let start = Instant::now();
        let mut handled = Vec::new();
        for request in &requests_rx {
            limiter.recv().unwrap(); // wait for the next tick
            println!("request {request} at {:?}", start.elapsed());
            handled.push((request, start.elapsed()));
        }
        handled
    });
    assert_eq!(handled.len(), 5);
    // One request per tick: five requests span at least three whole
    // periods even if the first tick was received late (a late receiver
    // gets the latest tick at once, then waits for the next grid point).
    assert!(handled[4].1 - handled[0].1 >= period * 3);
}
