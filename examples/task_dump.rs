//! A goroutine dump: block a few green threads on different primitives and
//! print `Runtime::tasks()` as a table: id, name, state, what each one is
//! blocked on, where, and where it was spawned.

use std::time::{Duration, Instant};

use grove::chan;
use grove::runtime::{TaskInfo, TaskState};
use grove::sync::{Arc, Mutex, RwLock, Semaphore, WaitGroup};
use grove::thread;
use grove::Runtime;

/// Spawns a named green thread; `#[track_caller]` passes our caller's line
/// on to `spawn_on`, so the table shows where each thread was started.
#[track_caller]
fn spawn_named<F: FnOnce() + Send + 'static>(rt: &Runtime, name: &str, f: F) {
    thread::Builder::new()
        .name(name.to_string())
        .spawn_on(rt, f)
        .expect("spawn");
}

fn print_table(tasks: &[TaskInfo]) {
    let rows: Vec<[String; 6]> = tasks
        .iter()
        .map(|t| {
            [
                t.id.as_u64().to_string(),
                t.name.clone().unwrap_or_else(|| "-".into()),
                format!("{:?}", t.state),
                t.blocked_on.unwrap_or("-").to_string(),
                t.blocked_at.map_or("-".into(), |at| at.to_string()),
                t.spawned_at.to_string(),
            ]
        })
        .collect();
    let header = ["id", "name", "state", "blocked on", "where", "spawned at"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    line(&widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str));
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
}

fn main() {
    let rt = Runtime::builder().workers(2).build().unwrap();

    let (tx, rx) = chan::bounded::<u32>(0);
    spawn_named(&rt, "consumer", move || {
        let _ = rx.recv(); // nobody sends yet
    });
    let lock = Arc::new(Mutex::new(0));
    let held = lock.lock().unwrap(); // main holds it
    let l = lock.clone();
    spawn_named(&rt, "counter", move || *l.lock().unwrap() += 1);
    let table = Arc::new(RwLock::new(()));
    let writing = table.write().unwrap();
    let t = table.clone();
    spawn_named(&rt, "reader", move || drop(t.read().unwrap()));
    let sem = Arc::new(Semaphore::new(0));
    let s = sem.clone();
    spawn_named(&rt, "limited", move || drop(s.acquire()));
    let wg = WaitGroup::new();
    wg.add(1);
    let w = wg.clone();
    spawn_named(&rt, "waiter", move || w.wait());
    spawn_named(&rt, "napper", || thread::sleep(Duration::from_millis(300)));

    // Wait until all six are parked, then dump.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tasks = loop {
        let tasks = rt.tasks();
        if tasks.len() == 6 && tasks.iter().all(|t| t.state == TaskState::Parked) {
            break tasks;
        }
        assert!(
            Instant::now() < deadline,
            "the green threads never all parked"
        );
        std::thread::yield_now();
    };
    print_table(&tasks);

    let mut reasons: Vec<&str> = tasks.iter().filter_map(|t| t.blocked_on).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "Mutex::lock",
            "RwLock::read",
            "Semaphore::acquire",
            "WaitGroup::wait",
            "chan recv",
            "sleep"
        ]
    );
    assert!(tasks
        .iter()
        .all(|t| t.spawned_at.file() == file!()
            && t.blocked_at.is_some_and(|at| at.file() == file!())));

    // Let everyone go; the napper wakes by itself.
    tx.send(1).unwrap();
    drop((held, writing));
    sem.add_permits(1);
    wg.done();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !rt.tasks().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the green threads never finished"
        );
        std::thread::yield_now();
    }
    assert_eq!(*lock.lock().unwrap(), 1);
    let report = rt.shutdown();
    assert!(report.is_clean(), "{report}");
    println!("\nall released; {report}");
}
