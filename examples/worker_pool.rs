//! Worker pool: a fixed number of green threads take jobs from a channel
//! and send results back; the caller collects exactly as many results as it
//! sent jobs.

use grove::chan;
use std::time::Duration;

fn main() {
    const JOBS: u64 = 100;
    let squares = grove::run(|| {
        let (jobs_tx, jobs_rx) = chan::bounded::<u64>(JOBS as usize);
        let (results_tx, results_rx) = chan::bounded::<(u64, u64)>(JOBS as usize);
        for id in 1..=3 {
            let jobs = jobs_rx.clone();
            let results = results_tx.clone();
            grove::go(move || {
                for job in &jobs {
                    // stand-in for work: parks this green thread, not its worker
                    grove::thread::sleep(Duration::from_micros(100));
                    results.send((job, job * job)).unwrap();
                }
                println!("worker {id} done");
            });
        }
        for job in 1..=JOBS {
            jobs_tx.send(job).unwrap();
        }
        jobs_tx.close();
        let mut squares: Vec<(u64, u64)> = (0..JOBS).map(|_| results_rx.recv().unwrap()).collect();
        squares.sort_unstable();
        squares
    });
    assert_eq!(squares.len() as u64, JOBS);
    assert!(squares.iter().all(|&(n, sq)| sq == n * n));
    println!(
        "{} results, last {:?}",
        squares.len(),
        squares.last().unwrap()
    );
}
