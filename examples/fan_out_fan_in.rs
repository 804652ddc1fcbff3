//! Fan-out, fan-in: several green threads read from one channel (fan-out)
//! and their results are merged into one channel (fan-in).

use grove::chan;

fn main() {
    let (jobs_tx, jobs_rx) = chan::bounded::<u64>(32);
    let (results_tx, results_rx) = chan::unbounded::<(usize, u64)>();

    let total = grove::run(move || {
        for worker in 0..8 {
            let jobs = jobs_rx.clone();
            let results = results_tx.clone();
            grove::go(move || {
                for n in &jobs {
                    results.send((worker, n * 2)).unwrap();
                }
            });
        }
        // Only the workers hold senders now: the merged channel closes when
        // the last worker is done.
        drop((jobs_rx, results_tx));

        grove::go(move || {
            for n in 0..10_000 {
                jobs_tx.send(n).unwrap();
            }
        });

        let mut per_worker = [0usize; 8];
        let mut total = 0;
        for (worker, doubled) in &results_rx {
            per_worker[worker] += 1;
            total += doubled;
        }
        println!("jobs per worker: {per_worker:?}");
        total
    });
    println!("sum of doubled jobs: {total}");
    assert_eq!(total, 2 * (0..10_000u64).sum::<u64>());
}
