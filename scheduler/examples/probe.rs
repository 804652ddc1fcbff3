use grove_scheduler::{park, Config, Scheduler, SpawnOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    for workers in [1usize, 2] {
        let s = Scheduler::new(Config {
            workers,
            ..Config::default()
        })
        .unwrap();
        let h = s.handle();
        for _ in 0..3 {
            let h2 = h.clone();
            let r = h
                .spawn(SpawnOptions::default(), move || {
                    let n = 100_000;
                    let c = Arc::new(AtomicUsize::new(0));
                    let t = Instant::now();
                    let mut hs = Vec::with_capacity(n);
                    for _ in 0..n {
                        let c = c.clone();
                        hs.push(
                            h2.spawn(SpawnOptions::default(), move || {
                                c.fetch_add(1, Ordering::Relaxed);
                            })
                            .unwrap(),
                        );
                    }
                    for j in hs {
                        j.join().unwrap();
                    }
                    assert_eq!(c.load(Ordering::Relaxed), n);
                    t.elapsed().as_nanos() as f64 / n as f64
                })
                .unwrap()
                .join()
                .unwrap();
            // yield round trip
            let y = h
                .spawn(SpawnOptions::default(), || {
                    let n = 1_000_000;
                    let t = Instant::now();
                    for _ in 0..n {
                        park::yield_now();
                    }
                    t.elapsed().as_nanos() as f64 / n as f64
                })
                .unwrap()
                .join()
                .unwrap();
            println!("workers={workers} spawn_join {r:.0} ns/task  yield {y:.1} ns");
        }
        println!("{:?}", s.stats());
    }
}
