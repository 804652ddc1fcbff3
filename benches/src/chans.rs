//! What the channel workloads ([`crate::pingpong0`], [`crate::prodcons`],
//! [`crate::select2`]) share across implementations: the ends of a
//! blocking channel ([`Tx`], [`Rx`]) for grove, may, crossbeam-channel and
//! `std::sync::mpsc`, and a way to start a task ([`Spawner`]) as a green
//! thread, a may coroutine or an OS thread. Each workload is written once
//! over these, and monomorphised per implementation, so the hot loops call
//! the channel methods directly (the wrappers are always inlined, for
//! every implementation alike). tokio is async and has its own versions.

use std::sync::{Arc, Mutex};

/// The sending end of a blocking channel of `u64`.
pub trait Tx: Send + 'static {
    /// Sends `v`, blocking while the channel is full; panics if it is
    /// closed (no receiver: a bug of the workload).
    fn put(&self, v: u64);

    /// Called once, by the last producer, before it drops its end: a
    /// channel whose close does not wake every blocked receiver sends one
    /// end-of-stream `0` per consumer here. Others do nothing.
    fn finish(&self, _consumers: usize) {}
}

/// The receiving end of a blocking channel of `u64`: `None` once it is
/// closed and drained.
pub trait Rx: Send + 'static {
    /// Receives the next value, blocking while the channel is empty.
    fn take(&self) -> Option<u64>;
}

impl Tx for grove::chan::Sender<u64> {
    #[inline(always)]
    fn put(&self, v: u64) {
        self.send(v).expect("grove channel closed under a sender");
    }
}

impl Rx for grove::chan::Receiver<u64> {
    #[inline(always)]
    fn take(&self) -> Option<u64> {
        self.recv().ok()
    }
}

impl Tx for crossbeam_channel::Sender<u64> {
    #[inline(always)]
    fn put(&self, v: u64) {
        self.send(v)
            .expect("crossbeam channel closed under a sender");
    }
}

impl Rx for crossbeam_channel::Receiver<u64> {
    #[inline(always)]
    fn take(&self) -> Option<u64> {
        self.recv().ok()
    }
}

impl Tx for std::sync::mpsc::SyncSender<u64> {
    #[inline(always)]
    fn put(&self, v: u64) {
        self.send(v)
            .expect("std mpsc channel closed under a sender");
    }
}

impl Rx for std::sync::mpsc::Receiver<u64> {
    #[inline(always)]
    fn take(&self) -> Option<u64> {
        self.recv().ok()
    }
}

/// `std::sync::mpsc` has one consumer: several share it behind a mutex.
#[derive(Clone)]
pub struct SharedStdRx(pub Arc<Mutex<std::sync::mpsc::Receiver<u64>>>);

impl Rx for SharedStdRx {
    #[inline(always)]
    fn take(&self) -> Option<u64> {
        let rx = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rx.recv().ok()
    }
}

impl Tx for may::sync::mpsc::Sender<u64> {
    #[inline(always)]
    fn put(&self, v: u64) {
        self.send(v).expect("may channel closed under a sender");
    }
}

impl Rx for may::sync::mpsc::Receiver<u64> {
    #[inline(always)]
    fn take(&self) -> Option<u64> {
        self.recv().ok()
    }
}

impl Tx for may::sync::mpmc::Sender<u64> {
    #[inline(always)]
    fn put(&self, v: u64) {
        self.send(v).expect("may channel closed under a sender");
    }

    /// may's mpmc close posts its semaphore only once, so of several
    /// blocked receivers only one would see the close: send an
    /// end-of-stream `0` to each instead.
    fn finish(&self, consumers: usize) {
        for _ in 0..consumers {
            self.put(0);
        }
    }
}

impl Rx for may::sync::mpmc::Receiver<u64> {
    #[inline(always)]
    fn take(&self) -> Option<u64> {
        match self.recv() {
            Ok(0) | Err(_) => None,
            Ok(v) => Some(v),
        }
    }
}

/// A task to start.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Waits for a started task; panics if it panicked.
pub type Joiner = Box<dyn FnOnce() + Send + 'static>;

/// Starts tasks of one kind. Called from the kind's own context: grove's
/// from a green thread, may's from a coroutine.
pub trait Spawner: Copy + Send + 'static {
    /// Starts `job`; `what` names the workload in a panic message.
    fn spawn(self, what: &'static str, job: Job) -> Joiner;
}

/// Green threads on the calling green thread's runtime.
#[derive(Clone, Copy, Debug)]
pub struct GroveSpawn;

impl Spawner for GroveSpawn {
    fn spawn(self, what: &'static str, job: Job) -> Joiner {
        let h = grove::go(job);
        Box::new(move || {
            h.join()
                .unwrap_or_else(|_| panic!("{what}: a green thread panicked"))
        })
    }
}

/// Green threads started on worker `.0` of the calling green thread's
/// runtime (`grove::thread::Builder::on_worker`), where they stay.
#[derive(Clone, Copy, Debug)]
pub struct GroveOn(pub usize);

impl Spawner for GroveOn {
    fn spawn(self, what: &'static str, job: Job) -> Joiner {
        let h = grove::thread::Builder::new()
            .on_worker(self.0)
            .spawn(job)
            .unwrap_or_else(|e| {
                panic!(
                    "{what}: cannot start a green thread on worker {}: {e}",
                    self.0
                )
            });
        Box::new(move || {
            h.join()
                .unwrap_or_else(|_| panic!("{what}: a green thread panicked"))
        })
    }
}

/// Where the green threads of a *spawned* program start: one whose main
/// green thread spawns every communicating task and then joins them
/// (`pingpong0::grove_spawned`, `prodcons::grove_spawned`,
/// `select2::grove_spawned`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the runtime puts them: the program as a user writes it.
    Natural,
    /// Deliberately apart: the sending side on worker 0, the receiving
    /// side on worker 1 (`Builder::on_worker`), so that every hand-off
    /// crosses workers. Needs a runtime of two workers or more.
    Split,
}

impl Placement {
    /// The workers a runtime needs for this placement.
    pub fn workers_needed(self) -> usize {
        match self {
            Placement::Natural => 1,
            Placement::Split => 2,
        }
    }
}

/// may coroutines.
#[derive(Clone, Copy, Debug)]
pub struct MaySpawn;

impl Spawner for MaySpawn {
    fn spawn(self, what: &'static str, job: Job) -> Joiner {
        let h = crate::util::may_go(job);
        Box::new(move || {
            h.join()
                .unwrap_or_else(|_| panic!("{what}: a coroutine panicked"))
        })
    }
}

/// OS threads (`std::thread`).
#[derive(Clone, Copy, Debug)]
pub struct ThreadSpawn;

impl Spawner for ThreadSpawn {
    fn spawn(self, what: &'static str, job: Job) -> Joiner {
        let h = std::thread::Builder::new()
            .name(format!("bench-{what}"))
            .spawn(job)
            .unwrap_or_else(|e| panic!("{what}: cannot spawn a thread: {e}"));
        Box::new(move || {
            h.join()
                .unwrap_or_else(|_| panic!("{what}: a thread panicked"))
        })
    }
}

/// Runs `f` as the driver of a may workload: in a coroutine, joined from
/// the calling thread; a panic in it is resumed here.
pub fn in_may<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    crate::util::may_go(f)
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}
