//! Helpers shared by the reliability suite (`tests/soak.rs`, `leaks.rs`,
//! `faults.rs`, `bad_input.rs`, `prop_chan.rs`): worker-count sweeps, a
//! watchdog that bounds every test, a seeded random-number generator, a
//! panic hook that keeps the thousands of expected panics quiet, and drop
//! counters.
//!
//! Included with `#[path = "common/rel_util.rs"] mod rel_util;`; the helpers all tests
//! share come from `base.rs`. Each test binary uses a subset.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use grove::chan::{
    self, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use grove::{select, thread, Runtime};

#[path = "base.rs"]
mod base;
#[allow(unused_imports)] // each test binary uses a subset
pub use base::*;

/// Waits until `n` green threads of `rt` are parked (on anything); lists
/// the green threads if that does not happen within [`WAIT_LIMIT`].
#[track_caller]
pub fn wait_parked(rt: &Runtime, n: usize) {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let tasks = rt.tasks();
        if tasks.iter().filter(|t| t.blocked_on.is_some()).count() == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {WAIT_LIMIT:?} waiting for {n} parked green thread(s): {tasks:#?}"
        );
        grove::thread::yield_now();
    }
}

/// Put in the message of every panic a test provokes on purpose: the hook
/// that [`quiet_expected_panics`] installs does not print those.
pub const EXPECTED: &str = "[expected panic]";

/// A non-string panic payload the quiet hook does not print either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedPanic(pub u64);

/// Installs (once per process) a panic hook that drops the expected panics
/// (message containing [`EXPECTED`], or an [`ExpectedPanic`] payload) and
/// passes every other one to the default hook. A panic storm then does not
/// bury a real failure under thousands of lines, nor spend seconds printing.
pub fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let expected = payload.is::<ExpectedPanic>()
                || payload
                    .downcast_ref::<&str>()
                    .is_some_and(|s| s.contains(EXPECTED))
                || payload
                    .downcast_ref::<String>()
                    .is_some_and(|s| s.contains(EXPECTED));
            if !expected {
                default(info);
            }
        }));
    });
}

/// Counts the drops of [`Tracked`] values.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A value whose drop this counter counts.
    pub fn track(&self) -> Tracked {
        Tracked(self.0.clone())
    }

    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Bumps its [`DropCounter`] when dropped.
pub struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", 2014): tiny, seedable, good enough to pick test actions, and
/// the same sequence on every platform so a printed seed replays a run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from the clock and the process id, for runs that print it.
    pub fn seed_from_time() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32)).next_u64()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0)");
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An independent generator (for a green thread of its own).
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

// ---------------------------------------------------------------------------
// Green threads and OS threads side by side.

/// One helper thread in this many is an OS thread (see [`Mix::any`]).
pub const OS_ONE_IN: usize = 4;

/// A green thread or an OS thread to join.
pub enum Joiner<T> {
    Green(thread::JoinHandle<T>),
    /// The OS thread sends its outcome on a grove channel, so that a green
    /// thread can wait for it by parking instead of blocking its worker.
    Os(
        Receiver<std::thread::Result<T>>,
        std::thread::JoinHandle<()>,
    ),
}

impl<T> Joiner<T> {
    pub fn try_join(self) -> std::thread::Result<T> {
        match self {
            Joiner::Green(h) => h.join(),
            Joiner::Os(rx, h) => {
                let outcome = rx.recv().expect("the OS thread sends its outcome");
                h.join().expect("the OS thread ends after sending");
                outcome
            }
        }
    }

    /// Joins; a panic of the thread is resumed here.
    pub fn join(self) -> T {
        self.try_join().unwrap_or_else(|p| panic::resume_unwind(p))
    }
}

/// Spawns helpers on a runtime, as green threads or OS threads, each with
/// its own random numbers.
pub struct Mix {
    pub rt: Arc<Runtime>,
    pub rng: Rng,
}

impl Mix {
    pub fn green<T, F>(&mut self, f: F) -> Joiner<T>
    where
        F: FnOnce(Rng) -> T + Send + 'static,
        T: Send + 'static,
    {
        let rng = self.rng.fork();
        Joiner::Green(self.rt.spawn(move || f(rng)))
    }

    pub fn os<T, F>(&mut self, f: F) -> Joiner<T>
    where
        F: FnOnce(Rng) -> T + Send + 'static,
        T: Send + 'static,
    {
        let rng = self.rng.fork();
        let (tx, rx) = chan::bounded(1);
        let handle = std::thread::Builder::new()
            .name("reliability-os".to_string())
            .spawn(move || {
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| f(rng)));
                let _ = tx.send(outcome);
            })
            .expect("spawning an OS thread");
        Joiner::Os(rx, handle)
    }

    /// A green thread, or one time in [`OS_ONE_IN`] an OS thread.
    pub fn any<T, F>(&mut self, f: F) -> Joiner<T>
    where
        F: FnOnce(Rng) -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.rng.below(OS_ONE_IN) == 0 {
            self.os(f)
        } else {
            self.green(f)
        }
    }
}

/// Now and then yields or sleeps a little, to shuffle interleavings.
pub fn jitter(rng: &mut Rng) {
    match rng.below(100) {
        0..=7 => thread::yield_now(),
        8 => thread::sleep(Duration::from_micros(rng.below(200) as u64)),
        _ => {}
    }
}

/// A random timeout of up to half a millisecond.
pub fn short(rng: &mut Rng) -> Duration {
    Duration::from_micros(1 + rng.below(500) as u64)
}

/// Asserts that `values`, sorted, are exactly `0..n`: nothing lost, nothing
/// duplicated.
#[track_caller]
pub fn assert_each_once(mut values: Vec<u64>, n: usize, what: &str) {
    values.sort_unstable();
    assert_eq!(
        values.len(),
        n,
        "{what}: {} values for {n} sent",
        values.len()
    );
    if let Some((i, v)) = values.iter().enumerate().find(|&(i, &v)| v != i as u64) {
        panic!("{what}: value {i} missing or duplicated (found {v} at its place)");
    }
}

// ---------------------------------------------------------------------------
// Channels used in random ways.

/// A channel of a random flavour: bounded 0, 1 or 64, or unbounded.
pub fn make_chan<T>(rng: &mut Rng) -> (Sender<T>, Receiver<T>) {
    match rng.below(4) {
        0 => chan::bounded(0),
        1 => chan::bounded(1),
        2 => chan::bounded(64),
        _ => chan::unbounded(),
    }
}

/// Sends `v` in one of four ways: `send`, `send_timeout` in a loop,
/// `try_send` in a loop, or a `select!` send arm with a timeout.
pub fn send_somehow(tx: &Sender<u64>, v: u64, rng: &mut Rng) {
    match rng.below(4) {
        0 => tx.send(v).expect("the channel closed under a producer"),
        1 => {
            let mut v = v;
            loop {
                match tx.send_timeout(v, short(rng)) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(back)) => v = back,
                    Err(SendTimeoutError::Disconnected(_)) => panic!("closed under a producer"),
                }
            }
        }
        2 => {
            let mut v = v;
            loop {
                match tx.try_send(v) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        v = back;
                        thread::yield_now();
                    }
                    Err(TrySendError::Disconnected(_)) => panic!("closed under a producer"),
                }
            }
        }
        _ => loop {
            select! {
                send(tx, v) -> res => {
                    res.expect("closed under a producer");
                    break;
                },
                default(short(rng)) => {},
            }
        },
    }
}

/// Receives until the channel is closed and drained, each value in one of
/// five ways: `recv`, `recv_timeout`, `try_recv`, a `select!` receive arm
/// with a timeout, or a few at once through `iter()`.
pub fn recv_all(rx: &Receiver<u64>, rng: &mut Rng) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        let next = match rng.below(5) {
            0 => rx.recv().ok(),
            1 => match rx.recv_timeout(short(rng)) {
                Ok(v) => Some(v),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => None,
            },
            2 => match rx.try_recv() {
                Ok(v) => Some(v),
                Err(TryRecvError::Empty) => {
                    thread::yield_now();
                    continue;
                }
                Err(TryRecvError::Disconnected) => None,
            },
            3 => select! {
                recv(rx) -> v => v.ok(),
                default(short(rng)) => continue,
            },
            _ => {
                let want = 1 + rng.below(16);
                let chunk: Vec<u64> = rx.iter().take(want).collect();
                let closed = chunk.len() < want;
                got.extend(chunk);
                if closed {
                    None
                } else {
                    continue;
                }
            }
        };
        match next {
            Some(v) => got.push(v),
            None => return got,
        }
        jitter(rng);
    }
}
