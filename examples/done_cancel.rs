//! Cancellation with a done channel: closing one channel tells every worker
//! to stop (Go's `done := make(chan struct{})` ... `close(done)`).

use grove::chan;
use grove::select;

fn main() {
    let counts = grove::run(|| {
        let (done_tx, done_rx) = chan::bounded::<()>(0);
        let (out_tx, out_rx) = chan::bounded::<u64>(0);
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (done, out) = (done_rx.clone(), out_tx.clone());
                grove::go(move || {
                    let mut sent = 0u64;
                    loop {
                        select! {
                            send(out, sent) -> res => { if res.is_err() { break } sent += 1 },
                            recv(done) -> _ => break, // closed: stop
                        }
                    }
                    sent
                })
            })
            .collect();
        // Take 1000 values from whoever is fastest, then cancel everyone.
        for _ in 0..1000 {
            out_rx.recv().unwrap();
        }
        done_tx.close();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    println!("values sent per worker before cancellation: {counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 1000);
}
