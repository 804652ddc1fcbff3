use grove_scheduler::{global, park, Config, Scheduler, SpawnOptions};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn spawn_and_join() {
    let h = global().handle();
    let j = h.spawn(SpawnOptions::default(), || 40 + 2).unwrap();
    assert_eq!(j.join().unwrap(), 42);
}

#[test]
fn many_park_unpark() {
    let mut config = Config::default();
    config.workers = 2;
    let s = Scheduler::new(config).unwrap();
    let h = s.handle();
    let n = Arc::new(AtomicUsize::new(0));
    let main = {
        let h2 = h.clone();
        let n = n.clone();
        h.spawn(SpawnOptions::default(), move || {
            let mut hs = Vec::new();
            for _ in 0..1000 {
                let n = n.clone();
                hs.push(
                    h2.spawn(SpawnOptions::default(), move || {
                        for _ in 0..10 {
                            park::yield_now();
                        }
                        park::sleep(std::time::Duration::from_millis(1));
                        n.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap(),
                );
            }
            for j in hs {
                j.join().unwrap();
            }
        })
        .unwrap()
    };
    main.join().unwrap();
    assert_eq!(n.load(Ordering::Relaxed), 1000);
    let st = s.stats();
    eprintln!("{st:?}");
    drop(s);
}

#[test]
fn panics_come_back() {
    let h = global().handle();
    let j = h
        .spawn(SpawnOptions::default(), || -> u32 { panic!("boom") })
        .unwrap();
    let err = j.join().unwrap_err();
    assert_eq!(*err.downcast_ref::<&str>().unwrap(), "boom");
}
