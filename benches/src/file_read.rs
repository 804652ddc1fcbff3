//! `file_read`: [`TASKS`] tasks each open [`PATH`] (`/dev/zero`) and read
//! [`BLOCK`] bytes from it `total / TASKS` times ([`reads`] rounds
//! `total` to whole shares). This is what a program pays for blocking
//! file I/O made from many tasks at once: the read itself costs the
//! kernel a `memset`, so what the row shows is how each implementation
//! gets a blocking system call off its schedulers and back.
//!
//! Each task checks every read: it counts the reads that returned all
//! [`BLOCK`] bytes, and before each read sets a few bytes of its buffer
//! to a non-zero value, then sums them after it (they must read back as
//! zero). The full reads must add up to [`reads`]`(total)` and the sums to
//! zero. The value is the whole run (the tasks' start, their opens and
//! closes included, as in Go's twin); divide by [`reads`]`(total)` for ns
//! per read.
//!
//! | implementation | a read | tasks |
//! |---|---|---|
//! | grove | `grove::blocking(\|\| file.read(&mut buf))` on a `std::fs::File`: the call runs on the runtime's blocking pool while the green thread parks (the open too) | green threads |
//! | std_thread | `std::fs::File::read` | OS threads |
//! | tokio | `tokio::fs::File` with `AsyncReadExt::read_exact` (tokio's own fs: each read a `spawn_blocking` call) | tasks |
//! | may | plain blocking `std::fs::File::read` on a may coroutine (may has no file I/O of its own: the read blocks the worker it runs on) | coroutines |

use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chans::{in_may, GroveSpawn, Joiner, MaySpawn, Spawner, ThreadSpawn};
use crate::util::check;

/// Tasks reading at once (in every mode: the sizes change the reads, not
/// the tasks).
pub const TASKS: usize = 64;

/// Bytes asked for by each read.
pub const BLOCK: usize = 4096;

/// The file every task reads: it never ends and every byte is zero.
pub const PATH: &str = "/dev/zero";

/// `total` rounded down to whole shares of the [`TASKS`] tasks (at least
/// one read each): the reads the run makes and checks.
pub fn reads(total: usize) -> usize {
    (total / TASKS).max(1) * TASKS
}

/// The bytes of the buffer set non-zero before each read and summed after
/// it: the first, the middle and the last.
const SAMPLED: [usize; 3] = [0, BLOCK / 2, BLOCK - 1];

/// What a sampled byte holds before a read (anything but zero).
const POISON: u8 = 0xA5;

/// What one task, or the whole run, read.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// Reads that returned all [`BLOCK`] bytes.
    full: u64,
    /// The sum of the sampled bytes after every read: zero when every read
    /// wrote them.
    sampled: u64,
}

impl Tally {
    /// Counts one read that returned `got` bytes into `buf`.
    fn count(&mut self, got: usize, buf: &[u8]) {
        self.full += u64::from(got == BLOCK);
        self.sampled += SAMPLED.iter().map(|&i| u64::from(buf[i])).sum::<u64>();
    }

    fn add(&mut self, other: Tally) {
        self.full += other.full;
        self.sampled += other.sampled;
    }
}

/// Makes the sampled bytes non-zero, so that only a read can zero them.
fn poison(buf: &mut [u8]) {
    for i in SAMPLED {
        buf[i] = POISON;
    }
}

/// Checks the run's tally: every read full, every sampled byte zero.
fn verify(what: &str, tally: Tally, total: usize) {
    check(what, tally.full, reads(total) as u64);
    if tally.sampled != 0 {
        panic!(
            "{what}: WRONG RESULT: the sampled bytes summed to {}, want 0 (a read left its buffer \
             unwritten)",
            tally.sampled
        );
    }
}

/// Where a task makes its blocking calls.
#[derive(Clone, Copy, Debug)]
enum Calls {
    /// On the task's own thread.
    Inline,
    /// On grove's blocking pool (`grove::blocking`), the green thread
    /// parked meanwhile.
    GrovePool,
}

impl Calls {
    fn run<T: Send>(self, f: impl FnOnce() -> T + Send) -> T {
        match self {
            Calls::Inline => f(),
            Calls::GrovePool => grove::blocking(f),
        }
    }
}

/// One task's share: opens [`PATH`], then `each` reads of [`BLOCK`] bytes,
/// every call made as `calls` says.
fn read_share(what: &str, calls: Calls, each: usize) -> Tally {
    let mut file = calls
        .run(|| File::open(PATH))
        .unwrap_or_else(|e| panic!("{what}: cannot open {PATH}: {e}"));
    let mut buf = vec![0u8; BLOCK];
    let mut tally = Tally::default();
    for _ in 0..each {
        poison(&mut buf);
        let got: io::Result<usize> = calls.run(|| file.read(&mut buf));
        let got = got.unwrap_or_else(|e| panic!("{what}: cannot read {PATH}: {e}"));
        tally.count(got, &buf);
    }
    tally
}

/// One run with any kind of task; runs on the caller, which must be a
/// task of `spawn`'s kind.
fn share<S: Spawner>(what: &'static str, spawn: S, calls: Calls, total: usize) -> Duration {
    let each = reads(total) / TASKS;
    let full = Arc::new(AtomicU64::new(0));
    let sampled = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let joins: Vec<Joiner> = (0..TASKS)
        .map(|_| {
            let (full, sampled) = (Arc::clone(&full), Arc::clone(&sampled));
            spawn.spawn(
                what,
                Box::new(move || {
                    let tally = read_share(what, calls, each);
                    full.fetch_add(tally.full, Ordering::Relaxed);
                    sampled.fetch_add(tally.sampled, Ordering::Relaxed);
                }),
            )
        })
        .collect();
    for join in joins {
        join();
    }
    let elapsed = start.elapsed();
    let tally = Tally {
        full: full.load(Ordering::Relaxed),
        sampled: sampled.load(Ordering::Relaxed),
    };
    verify(what, tally, total);
    elapsed
}

/// grove: [`TASKS`] green threads on `rt` (`grove::go`, which is
/// `grove::thread::spawn`), every open and read through `grove::blocking`.
pub fn grove(rt: &grove::Runtime, total: usize) -> Duration {
    rt.block_on(move || share("file_read/grove", GroveSpawn, Calls::GrovePool, total))
}

/// std::thread: [`TASKS`] OS threads, each reading with
/// `std::fs::File::read`.
pub fn std_thread(total: usize) -> Duration {
    share("file_read/std_thread", ThreadSpawn, Calls::Inline, total)
}

/// may: [`TASKS`] coroutines, each a plain blocking `std::fs::File::read`
/// on its worker. Call [`crate::util::may_init`] first.
pub fn may(total: usize) -> Duration {
    in_may(move || share("file_read/may", MaySpawn, Calls::Inline, total))
}

/// tokio: [`TASKS`] tasks on `rt`, each with a `tokio::fs::File` read by
/// `read_exact` (a `tokio::fs::File` read may return fewer bytes than
/// asked; `read_exact` asks again until the block is full).
pub fn tokio(rt: &tokio::runtime::Runtime, total: usize) -> Duration {
    use tokio::io::AsyncReadExt;

    const WHAT: &str = "file_read/tokio";
    let each = reads(total) / TASKS;
    let (elapsed, tally) = rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    tokio::spawn(async move {
                        let mut file = tokio::fs::File::open(PATH)
                            .await
                            .unwrap_or_else(|e| panic!("{WHAT}: cannot open {PATH}: {e}"));
                        let mut buf = vec![0u8; BLOCK];
                        let mut tally = Tally::default();
                        for _ in 0..each {
                            poison(&mut buf);
                            let got = file
                                .read_exact(&mut buf)
                                .await
                                .unwrap_or_else(|e| panic!("{WHAT}: cannot read {PATH}: {e}"));
                            tally.count(got, &buf);
                        }
                        tally
                    })
                })
                .collect();
            let mut tally = Tally::default();
            for t in tasks {
                tally.add(t.await.expect("file_read/tokio: a task panicked"));
            }
            (start.elapsed(), tally)
        })
        .await
        .expect("file_read/tokio: the driver task panicked")
    });
    verify(WHAT, tally, total);
    elapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_whole_shares() {
        assert_eq!(reads(128_000), 128_000);
        assert_eq!(reads(640_000), 640_000);
        assert_eq!(reads(100), TASKS);
        assert_eq!(reads(0), TASKS);
    }

    #[test]
    #[should_panic(expected = "WRONG RESULT")]
    fn an_unwritten_buffer_is_wrong() {
        let mut tally = Tally::default();
        let mut buf = vec![0u8; BLOCK];
        poison(&mut buf);
        tally.count(BLOCK, &buf);
        verify("demo", Tally { full: 64, ..tally }, 64);
    }

    #[test]
    #[should_panic(expected = "WRONG RESULT")]
    fn a_short_read_is_wrong() {
        let mut tally = Tally::default();
        let buf = vec![0u8; BLOCK];
        tally.count(BLOCK - 1, &buf);
        verify("demo", tally, 1);
    }
}
