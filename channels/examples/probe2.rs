//! Cross-worker hand-off probe.
use grove_channels::bounded;
use grove_scheduler::{Config, Scheduler, SpawnOptions};
use std::time::Instant;

fn main() {
    let s = Scheduler::new(Config {
        workers: 2,
        ..Config::default()
    })
    .unwrap();
    let h = s.handle();
    for _ in 0..3 {
        let h2 = h.clone();
        let before = s.stats();
        let m = 100_000u64;
        let (tx, rx) = bounded::<u64>(0);
        let t = Instant::now();
        let c = h
            .spawn(SpawnOptions::default(), move || rx.iter().sum::<u64>())
            .unwrap();
        let p = h2
            .spawn(SpawnOptions::default(), move || {
                for i in 0..m {
                    tx.send(i).unwrap();
                }
            })
            .unwrap();
        p.join().unwrap();
        assert_eq!(c.join().unwrap(), m * (m - 1) / 2);
        let r = t.elapsed().as_nanos() as f64 / m as f64;
        let after = s.stats();
        println!(
            "prodcons0 {r:.0} ns/msg  parks {} resumes {} steals {}",
            after.parks - before.parks,
            after.resumes - before.resumes,
            after.steals - before.steals
        );
    }
}
