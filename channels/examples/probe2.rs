//! Same-worker cap-0 hand-off probe (for callgrind).
use grove_channels::bounded;
use grove_scheduler::{Config, Scheduler, SpawnOptions};

fn main() {
    let s = Scheduler::new(Config {
        workers: 1,
        ..Config::default()
    })
    .unwrap();
    let h = s.handle();
    let h2 = h.clone();
    h.spawn(SpawnOptions::default(), move || {
        let m = 200_000u64;
        let (tx, rx) = bounded::<u64>(0);
        let p = h2
            .spawn(SpawnOptions::default(), move || {
                for i in 0..m {
                    tx.send(i).unwrap();
                }
            })
            .unwrap();
        let sum: u64 = rx.iter().sum();
        p.join().unwrap();
        assert_eq!(sum, m * (m - 1) / 2);
    })
    .unwrap()
    .join()
    .unwrap();
}
