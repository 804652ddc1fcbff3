//! Go's `sync.WaitGroup` fan-out: start one green thread per job, wait for
//! all of them, then read the results.
//!
//! ```go
//! var wg sync.WaitGroup
//! for _, url := range urls {
//!     wg.Add(1)
//!     go func(url string) { defer wg.Done(); fetch(url) }(url)
//! }
//! wg.Wait()
//! ```
//!
//! `add` comes before the `go`, as in Go (adding inside the green thread
//! could let `wait` see zero too early), and `done` runs on every path out
//! of the job, as Go's `defer` does: here from a guard's `Drop`, so a job
//! that panics still counts itself done.

use std::time::Duration;

use grove::sync::{Arc, Mutex, WaitGroup};

/// Calls `done` when dropped: Go's `defer wg.Done()`.
struct Done(WaitGroup);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.done();
    }
}

/// A stand-in for a slow I/O call: parks the green thread, not the worker.
fn fetch(url: &str) -> usize {
    grove::thread::sleep(Duration::from_millis(10));
    url.len()
}

fn main() {
    let urls: Vec<String> = (0..1_000)
        .map(|i| format!("https://example.com/page/{i}"))
        .collect();
    let expected: usize = urls.iter().map(String::len).sum();

    let (sizes, took) = grove::run(move || {
        let start = std::time::Instant::now();
        let wg = WaitGroup::new();
        let sizes = Arc::new(Mutex::new(Vec::with_capacity(urls.len())));
        for url in urls {
            wg.add(1);
            let (done, sizes) = (Done(wg.clone()), sizes.clone());
            grove::go(move || {
                let _done = done;
                let size = fetch(&url);
                sizes.lock().unwrap().push(size);
            });
        }
        wg.wait();
        let sizes = std::mem::take(&mut *sizes.lock().unwrap());
        (sizes, start.elapsed())
    });

    println!(
        "fetched {} pages, {} bytes in all, in {took:?} (1,000 sleeps of 10 ms each, overlapped)",
        sizes.len(),
        sizes.iter().sum::<usize>()
    );
    assert_eq!(sizes.len(), 1_000);
    assert_eq!(sizes.iter().sum::<usize>(), expected);
}
