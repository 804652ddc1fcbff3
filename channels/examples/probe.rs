//! Quick channel performance probe (not a benchmark of record).
use grove_channels::{bounded, select};
use grove_scheduler::{Config, Scheduler, SpawnOptions};
use std::time::Instant;

fn main() {
    for workers in [1usize, 2] {
        let s = Scheduler::new(Config {
            workers,
            ..Config::default()
        })
        .unwrap();
        let h = s.handle();
        let h2 = h.clone();
        let s2 = h.clone();
        let r = h.spawn(SpawnOptions::default(), move || {
            let spawn = |f: Box<dyn FnOnce() + Send>| h2.spawn(SpawnOptions::default(), f).unwrap();
            let mut out = vec![];
            // pingpong0
            let n = 200_000u64;
            let (tx1, rx1) = bounded::<u64>(0);
            let (tx2, rx2) = bounded::<u64>(0);
            let t = Instant::now();
            let j = spawn(Box::new(move || { for v in &rx1 { tx2.send(v + 1).unwrap(); } }));
            let mut c = 0;
            for _ in 0..n { tx1.send(c).unwrap(); c = rx2.recv().unwrap(); }
            drop(tx1); j.join().unwrap();
            assert_eq!(c, n);
            out.push(("pingpong0", t.elapsed().as_nanos() as f64 / n as f64));
            for cap in [0usize, 128] {
                let before = s2.stats();
                let m = 500_000u64;
                let (tx, rx) = bounded::<u64>(cap);
                let t = Instant::now();
                let p = spawn(Box::new(move || { for i in 0..m { tx.send(i).unwrap(); } }));
                let sum: u64 = rx.iter().sum();
                p.join().unwrap();
                assert_eq!(sum, m * (m - 1) / 2);
                out.push((if cap == 0 { "prodcons0" } else { "prodcons128" }, t.elapsed().as_nanos() as f64 / m as f64));
                let a = s2.stats();
                eprintln!("cap {cap}: parks {} resumes {} steals {}", a.parks - before.parks, a.resumes - before.resumes, a.steals - before.steals);
            }
            // 4p4c
            let m = 400_000u64;
            let (tx, rx) = bounded::<u64>(128);
            let (rtx, rrx) = bounded::<u64>(4);
            let t = Instant::now();
            let mut js = vec![];
            for p in 0..4 { let tx = tx.clone(); js.push(spawn(Box::new(move || { for i in 0..m/4 { tx.send(p * (m/4) + i).unwrap(); } }))); }
            drop(tx);
            for _ in 0..4 { let rx = rx.clone(); let rtx = rtx.clone(); js.push(spawn(Box::new(move || { rtx.send(rx.iter().sum()).unwrap(); }))); }
            let sum: u64 = (0..4).map(|_| rrx.recv().unwrap()).sum();
            for j in js { j.join().unwrap(); }
            assert_eq!(sum, m * (m - 1) / 2);
            out.push(("4p4c", t.elapsed().as_nanos() as f64 / m as f64));
            // select2
            let m = 400_000u64;
            let (t1, r1) = bounded::<u64>(128);
            let (t2, r2) = bounded::<u64>(128);
            let t = Instant::now();
            let a = spawn(Box::new(move || { for i in 0..m/2 { t1.send(i).unwrap(); } }));
            let b = spawn(Box::new(move || { for i in m/2..m { t2.send(i).unwrap(); } }));
            let (mut sum, mut open) = (0u64, 2);
            let (mut r1o, mut r2o) = (true, true);
            let never = grove_channels::never::<u64>();
            while open > 0 {
                let ra = if r1o { &r1 } else { &never };
                let rb = if r2o { &r2 } else { &never };
                select! {
                    recv(ra) -> v => match v { Ok(v) => sum += v, Err(_) => { r1o = false; open -= 1 } },
                    recv(rb) -> v => match v { Ok(v) => sum += v, Err(_) => { r2o = false; open -= 1 } },
                }
            }
            a.join().unwrap(); b.join().unwrap();
            assert_eq!(sum, m * (m - 1) / 2);
            out.push(("select2", t.elapsed().as_nanos() as f64 / m as f64));
            out
        }).unwrap().join().unwrap();
        println!(
            "workers={workers}: {}",
            r.iter()
                .map(|(k, v)| format!("{k} {v:.0}ns"))
                .collect::<Vec<_>>()
                .join("  ")
        );
    }
}
