//! golang.org/x/sync's errgroup fan-out: fetch many pages with at most 4
//! requests in flight; the first failure cancels the rest, and `wait`
//! returns it.
//!
//! ```go
//! g, ctx := errgroup.WithContext(ctx)
//! g.SetLimit(4)
//! for _, url := range urls {
//!     g.Go(func() error { return fetch(ctx, url) })
//! }
//! if err := g.Wait(); err != nil { ... }
//! ```
//!
//! `go` parks the spawner while 4 fetches run (the limit), so the group
//! never holds more than 4 in flight however many URLs there are. Each
//! fetch watches the group's context, so the ones still running when page
//! 13 fails give up at once instead of finishing their work.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::context::{Context, ContextError};
use grove::sync::{Arc, ErrGroup};

#[derive(Debug)]
enum FetchError {
    NotFound(String),
    Cancelled(ContextError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NotFound(url) => write!(f, "{url}: 404 not found"),
            FetchError::Cancelled(err) => write!(f, "gave up: {err}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A stand-in for a slow request: 20 ms of "network", cut short when the
/// context is done.
fn fetch(ctx: &Context, url: &str) -> Result<usize, FetchError> {
    grove::select! {
        recv(ctx.done()) -> _ => {
            return Err(FetchError::Cancelled(ctx.err().expect("done")));
        }
        default(Duration::from_millis(20)) => {}
    }
    if url.ends_with("/13") {
        return Err(FetchError::NotFound(url.to_string()));
    }
    Ok(url.len())
}

fn main() {
    let urls: Vec<String> = (0..40)
        .map(|i| format!("https://example.com/page/{i}"))
        .collect();

    let (result, fetched, in_flight_peak, took) = grove::run(move || {
        let start = Instant::now();
        let (g, ctx) = ErrGroup::<FetchError>::with_context(&Context::background());
        g.set_limit(4);
        let fetched = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for url in urls {
            if ctx.is_done() {
                break; // no point starting more
            }
            let (ctx, fetched, in_flight, peak) = (
                ctx.clone(),
                fetched.clone(),
                in_flight.clone(),
                peak.clone(),
            );
            g.go(move || {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let outcome = fetch(&ctx, &url);
                in_flight.fetch_sub(1, Ordering::SeqCst);
                outcome.map(|_bytes| {
                    fetched.fetch_add(1, Ordering::SeqCst);
                })
            });
        }
        let result = g.wait();
        (
            result,
            fetched.load(Ordering::SeqCst),
            peak.load(Ordering::SeqCst),
            start.elapsed(),
        )
    });

    match &result {
        Err(err) => println!("the group failed: {err}"),
        Ok(()) => println!("every page fetched"),
    }
    println!("{fetched} pages fetched before the failure, at most {in_flight_peak} in flight, in {took:?}");
    assert!(matches!(result, Err(FetchError::NotFound(ref url)) if url.ends_with("/13")));
    assert!(in_flight_peak <= 4);
    assert!(fetched < 40, "the failure stopped the fan-out early");
}
