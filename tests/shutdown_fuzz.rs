//! Shutdown fuzz: random programs of green threads dropped at random
//! moments. Each run builds a runtime of 1–4 workers and starts a random
//! mix of green threads — parked on channels, on timers, on a contended
//! `Mutex`, in `select!` with a context, scope owners with parked scoped
//! threads whose destructors read the owner's data, spawners still
//! spawning, short workers, a few that swallow their runtime's unwind and
//! a few whose destructor blocks while they unwind a panic — then waits a
//! random moment and shuts the runtime down. Every run must:
//!
//! - return from shutdown within [`DROP_BOUND`], never crash or abort;
//! - drop every value a green thread owned at most once, and every one of
//!   them if the report lists no green thread as not unwound;
//! - never let a scoped thread's destructor see its owner's data gone;
//! - report what it leaked (`ShutdownReport::not_unwound`).
//!
//! `shutdown_fuzz_smoke` runs a few hundred programs in every `cargo test`;
//! `shutdown_fuzz` (ignored; `.ci/soak` runs it in release) runs for
//! `GROVE_FUZZ_SECS` (default 30). `GROVE_FUZZ_SEED` replays a run.

#[path = "common/rel_util.rs"]
mod rel_util;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use grove::chan;
use grove::context::Context;
use grove::sync::Mutex;
use grove::{select, thread, Runtime};
use rel_util::{quiet_expected_panics, ExpectedPanic, Rng};

/// The longest a shutdown may take. Destructors here take at most a few
/// milliseconds; a stuck worker is given up after 250 ms without progress
/// and the rest leaked 50 ms later.
const DROP_BOUND: Duration = Duration::from_secs(10);

/// Counts the drops of every value the green threads of one run own.
#[derive(Default)]
struct Ledger {
    /// Per value: how many times it was dropped.
    drops: StdMutex<Vec<AtomicU32>>,
    made: AtomicUsize,
    /// A scoped thread saw its owner's data gone, or a value dropped twice.
    violations: StdMutex<Vec<String>>,
}

impl Ledger {
    fn track(self: &Arc<Ledger>) -> Owned {
        let id = self.made.fetch_add(1, Ordering::SeqCst);
        let mut drops = self.drops.lock().unwrap();
        while drops.len() <= id {
            drops.push(AtomicU32::new(0));
        }
        Owned {
            ledger: self.clone(),
            id,
        }
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }
}

/// A value owned by a green thread (captured or made inside it).
struct Owned {
    ledger: Arc<Ledger>,
    id: usize,
}

impl Drop for Owned {
    fn drop(&mut self) {
        let drops = self.ledger.drops.lock().unwrap();
        if drops[self.id].fetch_add(1, Ordering::SeqCst) != 0 {
            drop(drops);
            self.ledger
                .violation(format!("value {} dropped twice", self.id));
        }
    }
}

/// A scope owner's data, which records its own drop in a flag its scoped
/// threads hold separately (so they can tell it is gone without reading
/// freed memory).
struct OwnerData {
    dropped: Arc<AtomicBool>,
}

impl Drop for OwnerData {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Dropped by a scoped thread: its owner's data must still be there.
struct NeedsOwner<'a> {
    _data: &'a OwnerData,
    gone: Arc<AtomicBool>,
    ledger: Arc<Ledger>,
}

impl Drop for NeedsOwner<'_> {
    fn drop(&mut self) {
        if self.gone.load(Ordering::SeqCst) {
            self.ledger
                .violation("a scoped thread outlived its owner's data".to_string());
        }
    }
}

/// Blocks (bounded) when dropped: run while its green thread unwinds a
/// panic, it blocks the worker's OS thread.
struct BlocksWhenDropped(chan::Receiver<()>, Duration);

impl Drop for BlocksWhenDropped {
    fn drop(&mut self) {
        let _ = self.0.recv_timeout(self.1);
    }
}

/// What the green threads of one run share.
#[derive(Clone)]
struct World {
    ledger: Arc<Ledger>,
    lock: Arc<Mutex<u64>>,
    /// Never sent on: a receive parks for good.
    never: chan::Receiver<u64>,
    ctx: Context,
}

/// One random green thread's body.
fn body(kind: usize, world: World, mut rng: Rng) {
    let _mine = world.ledger.track();
    match kind {
        // Parked on a channel.
        0 => {
            let _ = world.never.recv();
        }
        // Sleeping, or parked with a long timeout.
        1 => {
            if rng.percent(50) {
                thread::sleep(Duration::from_secs(3600));
            } else {
                let _ = world.never.recv_timeout(Duration::from_secs(3600));
            }
        }
        // A contended lock: the holder parks while holding it.
        2 => {
            let mut g = world.lock.lock().unwrap_or_else(|e| e.into_inner());
            *g += 1;
            if rng.percent(30) {
                let _ = world.never.recv();
            }
        }
        // A select over a context that is never cancelled and timers.
        3 => {
            let tick = chan::tick(Duration::from_millis(50));
            loop {
                select! {
                    recv(world.ctx.done()) -> _ => return,
                    recv(world.never) -> _ => return,
                    recv(tick) -> _ => {}
                }
            }
        }
        // A scope owner with parked scoped threads.
        4 => {
            let gone = Arc::new(AtomicBool::new(false));
            let data = OwnerData {
                dropped: gone.clone(),
            };
            let inside = rng.percent(50);
            let n = rng.range(1, 3);
            thread::scope(|s| {
                for _ in 0..n {
                    let (data, gone, ledger, never) = (
                        &data,
                        gone.clone(),
                        world.ledger.clone(),
                        world.never.clone(),
                    );
                    s.spawn(move || {
                        let _needs = NeedsOwner {
                            _data: data,
                            gone,
                            ledger,
                        };
                        let _ = never.recv();
                    });
                }
                if inside {
                    let _ = world.never.recv();
                }
            });
        }
        // Swallows its runtime's unwind and goes on a while (long enough,
        // one time in four, for the shutdown to give up on it).
        5 => {
            let rounds = if rng.percent(25) { 60 } else { 3 };
            for _ in 0..rounds {
                let _ = panic::catch_unwind(|| thread::sleep(Duration::from_millis(2)));
            }
        }
        // Panics; a destructor blocks (bounded; one time in four longer
        // than the shutdown waits for it) while it unwinds.
        6 => {
            let (_tx, rx) = chan::bounded::<()>(0);
            let wait = if rng.percent(25) { 400 } else { 5 };
            let _blocks = BlocksWhenDropped(rx, Duration::from_millis(wait));
            thread::yield_now();
            panic::panic_any(ExpectedPanic(6));
        }
        // Keeps spawning short green threads.
        7 => {
            for _ in 0..rng.range(1, 50) {
                let w = world.clone();
                let owned = world.ledger.track();
                drop(thread::spawn(move || {
                    let _owned = owned;
                    let _ = w.never.try_recv();
                }));
                if rng.percent(20) {
                    thread::yield_now();
                }
            }
        }
        // A short computation with yields.
        _ => {
            for _ in 0..rng.range(1, 20) {
                std::hint::black_box(rng.next_u64());
                thread::yield_now();
            }
        }
    }
}

/// Picks a kind: the two that leave stuck OS threads for a while (5, 6)
/// are rare.
fn pick_kind(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=1 => 5,
        2..=3 => 6,
        n => [0, 1, 2, 3, 4, 7, 8][n % 7],
    }
}

/// What one run saw.
struct Outcome {
    not_unwound: usize,
    drop_took: Duration,
}

fn run_one(seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    let workers = rng.range(1, 4);
    let rt = Runtime::builder()
        .workers(workers)
        .stall_warning(None)
        .build()
        .unwrap();
    let ledger = Arc::new(Ledger::default());
    let (never_tx, never_rx) = chan::unbounded::<u64>();
    let (ctx, cancel) = Context::background().with_cancel();
    let world = World {
        ledger: ledger.clone(),
        lock: Arc::new(Mutex::new(0)),
        never: never_rx,
        ctx,
    };
    for _ in 0..rng.range(1, 24) {
        let kind = pick_kind(&mut rng);
        let (w, r) = (world.clone(), rng.fork());
        let captured = ledger.track();
        if rng.percent(70) {
            drop(rt.spawn(move || {
                let _captured = captured;
                body(kind, w, r)
            }));
        } else {
            // Spawned from a green thread: it lands anywhere.
            let (w2, r2) = (world.clone(), rng.fork());
            let kind2 = pick_kind(&mut rng);
            drop(rt.spawn(move || {
                drop(thread::spawn(move || {
                    let _captured = captured;
                    body(kind, w, r)
                }));
                body(kind2, w2, r2)
            }));
        }
    }
    drop(world);
    // A random moment: right away, or after the program ran a little.
    let until = Instant::now() + Duration::from_micros(rng.below(3000) as u64);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    let start = Instant::now();
    let report = rt.shutdown();
    let drop_took = start.elapsed();
    drop((never_tx, cancel));
    assert!(
        drop_took < DROP_BOUND,
        "seed {seed:#x}: shutdown took {drop_took:?}\n{report}"
    );
    let violations = ledger.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "seed {seed:#x}: {violations:?}");
    let not_unwound = report.not_unwound().len();
    if not_unwound == 0 {
        let drops = ledger.drops.lock().unwrap();
        let undropped: Vec<usize> = (0..drops.len())
            .filter(|&i| drops[i].load(Ordering::SeqCst) == 0)
            .collect();
        assert!(
            undropped.is_empty(),
            "seed {seed:#x}: nothing reported leaked, yet values {undropped:?} of {} were never \
             dropped\n{report}",
            drops.len()
        );
    }
    Outcome {
        not_unwound,
        drop_took,
    }
}

/// Runs programs until `budget` is spent (at least `min_runs`); returns a
/// summary line.
fn fuzz_for(budget: Duration, min_runs: usize, seed: u64) -> String {
    quiet_expected_panics();
    println!("grove shutdown fuzz: seed {seed:#x} (replay with GROVE_FUZZ_SEED={seed:#x})");
    let mut rng = Rng::new(seed);
    let start = Instant::now();
    let (mut runs, mut leaking_runs, mut leaked) = (0usize, 0usize, 0usize);
    let mut slowest = Duration::ZERO;
    while runs < min_runs || start.elapsed() < budget {
        let run_seed = rng.next_u64();
        let outcome =
            panic::catch_unwind(AssertUnwindSafe(|| run_one(run_seed))).unwrap_or_else(|p| {
                eprintln!("grove shutdown fuzz FAILED in run {runs}: run seed {run_seed:#x}");
                panic::resume_unwind(p)
            });
        runs += 1;
        leaking_runs += usize::from(outcome.not_unwound > 0);
        leaked += outcome.not_unwound;
        slowest = slowest.max(outcome.drop_took);
    }
    format!(
        "grove shutdown fuzz: {runs} programs in {:.1?}; {leaking_runs} leaked green threads \
         that refused to die ({leaked} in all, reported); slowest shutdown {slowest:.1?}",
        start.elapsed()
    )
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={text:?}: {e}")))
}

#[test]
fn shutdown_fuzz_smoke() {
    let seed = env_u64("GROVE_FUZZ_SEED").unwrap_or_else(Rng::seed_from_time);
    rel_util::watchdog_for(Duration::from_secs(120), move || {
        println!("{}", fuzz_for(Duration::from_secs(3), 100, seed));
    });
}

#[test]
#[ignore = "runs for GROVE_FUZZ_SECS (default 30); CI runs it in release with .ci/soak"]
fn shutdown_fuzz() {
    let secs = env_u64("GROVE_FUZZ_SECS").unwrap_or(30);
    let seed = env_u64("GROVE_FUZZ_SEED").unwrap_or_else(Rng::seed_from_time);
    println!("{}", fuzz_for(Duration::from_secs(secs), 1000, seed));
}
