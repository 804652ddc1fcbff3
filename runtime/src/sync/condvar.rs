//! `Condvar`, `Barrier`: std's API, parking green threads.

use std::panic::Location;
use std::sync::LockResult;
use std::time::{Duration, Instant};
use std::{fmt, mem};

use grove_scheduler::park::WaitReason;

use super::monitor::Monitor;
use super::MutexGuard;

static WAIT: WaitReason = WaitReason("Condvar::wait");
static BARRIER: WaitReason = WaitReason("Barrier::wait");

/// A condition variable, like `std::sync::Condvar`, for grove's
/// [`Mutex`](super::Mutex).
///
/// ```
/// use grove_runtime::sync::{Arc, Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = pair.clone();
/// grove_runtime::go(move || {
///     *pair2.0.lock().unwrap() = true;
///     pair2.1.notify_one();
/// });
/// let (lock, cvar) = &*pair;
/// let ready = cvar.wait_while(lock.lock().unwrap(), |ready| !*ready).unwrap();
/// assert!(*ready);
/// ```
pub struct Condvar {
    /// Counts notifications; a waiter leaves once it sees a newer count.
    monitor: Monitor<u64>,
}

/// Whether a timed wait on a [`Condvar`] timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout passed.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

impl Condvar {
    const_unless_loom! {
        /// A condition variable nobody waits on.
        pub fn new() -> Condvar {
            Condvar {
                monitor: Monitor::new(0),
            }
        }
    }

    /// Unlocks `guard`'s mutex, parks until notified (or spuriously), and
    /// locks it again.
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let (guard, _) = self.wait_inner(guard, None, Location::caller());
        guard
    }

    /// Waits while `condition` holds.
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        let at = Location::caller();
        while condition(&mut *guard) {
            guard = self.wait_inner(guard, None, at).0?;
        }
        Ok(guard)
    }

    /// std's deprecated `wait_timeout_ms`: [`wait_timeout`](Self::wait_timeout)
    /// for `ms` milliseconds; the flag is true if it did *not* time out.
    #[deprecated(note = "replaced by `Condvar::wait_timeout`, as std's `wait_timeout_ms` is")]
    #[track_caller]
    pub fn wait_timeout_ms<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        ms: u32,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        match self.wait_timeout(guard, Duration::from_millis(u64::from(ms))) {
            Ok((guard, result)) => Ok((guard, !result.timed_out())),
            Err(e) => {
                let (guard, result) = e.into_inner();
                Err(std::sync::PoisonError::new((guard, !result.timed_out())))
            }
        }
    }

    /// Like [`wait`](Self::wait), for at most `dur`.
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let deadline = Instant::now().checked_add(dur);
        let (guard, timed_out) = self.wait_inner(guard, deadline, Location::caller());
        match guard {
            Ok(g) => Ok((g, WaitTimeoutResult(timed_out))),
            Err(e) => Err(std::sync::PoisonError::new((
                e.into_inner(),
                WaitTimeoutResult(timed_out),
            ))),
        }
    }

    /// Waits while `condition` holds, for at most `dur` in all.
    #[track_caller]
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let at = Location::caller();
        let deadline = Instant::now().checked_add(dur);
        while condition(&mut *guard) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = match self.wait_inner(guard, deadline, at).0 {
                Ok(g) => g,
                Err(e) => {
                    return Err(std::sync::PoisonError::new((
                        e.into_inner(),
                        WaitTimeoutResult(false),
                    )))
                }
            };
        }
        Ok((guard, WaitTimeoutResult(false)))
    }

    fn wait_inner<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
    ) -> (LockResult<MutexGuard<'a, T>>, bool) {
        let mutex = guard.mutex();
        // Take our lock before letting go of the mutex: a notifier that
        // changes the condition under the mutex then finds us counted.
        let mut seen = None;
        let mut guard = Some(guard);
        let waited = self
            .monitor
            .wait_until(&WAIT, deadline, at, |count| match seen {
                None => {
                    seen = Some(*count);
                    drop(guard.take()); // unlock the mutex, still under our lock
                    None
                }
                Some(seen) if *count != seen => Some(()),
                Some(_) => None,
            });
        mem::drop(guard);
        (mutex.lock(), waited.is_err())
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        if self.monitor.has_waiters() {
            self.monitor.update_and_notify(1, |count| *count += 1);
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        if self.monitor.has_waiters() {
            self.monitor
                .update_and_notify(usize::MAX, |count| *count += 1);
        }
    }
}

/// Lets a fixed number of threads wait for each other, like
/// `std::sync::Barrier`; reusable.
pub struct Barrier {
    n: usize,
    /// (arrived in this generation, generation)
    monitor: Monitor<(usize, u64)>,
}

/// What [`Barrier::wait`] returns: one waiter per generation is the leader.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl fmt::Debug for BarrierWaitResult {
    /// `BarrierWaitResult { is_leader: .. }`, as std's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWaitResult")
            .field("is_leader", &self.0)
            .finish()
    }
}

impl BarrierWaitResult {
    /// True for exactly one waiter of each generation.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl fmt::Debug for Barrier {
    /// `Barrier { .. }`, as std's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}

impl Barrier {
    const_unless_loom! {
        /// A barrier for `n` threads (0 and 1 never wait).
        pub fn new(n: usize) -> Barrier {
            Barrier {
                n,
                monitor: Monitor::new((0, 0)),
            }
        }
    }

    /// Parks until `n` threads have called `wait` in this generation.
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        let at = Location::caller();
        let mut leader = false;
        let n = self.n;
        let mut woke_others = false;
        // Un-counts this party if it is unwound while it waits (its runtime
        // shuts down) before its generation is complete.
        let mut arrival = Arrival {
            barrier: self,
            generation: None,
        };
        let _ = self
            .monitor
            .wait_until(&BARRIER, None, at, |(arrived, gen)| {
                match arrival.generation {
                    None => {
                        *arrived += 1;
                        if *arrived >= n {
                            *arrived = 0;
                            *gen += 1;
                            leader = true;
                            woke_others = true;
                            Some(())
                        } else {
                            arrival.generation = Some(*gen);
                            None
                        }
                    }
                    Some(mine) if *gen != mine => {
                        arrival.generation = None;
                        Some(())
                    }
                    Some(_) => None,
                }
            });
        drop(arrival);
        if woke_others {
            self.monitor.notify(usize::MAX);
        }
        BarrierWaitResult(leader)
    }
}

/// A party that arrived and waits for its generation to complete.
struct Arrival<'a> {
    barrier: &'a Barrier,
    /// The generation it waits in; `None` once it may leave.
    generation: Option<u64>,
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if let Some(mine) = self.generation {
            self.barrier.monitor.update_and_notify(0, |(arrived, gen)| {
                if *gen == mine {
                    *arrived -= 1;
                }
            });
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The monitor under `Condvar` (its count of waiters, the wake-ups it
    //! hands out) under loom, on plain threads: every interleaving up to
    //! three preemptions. A lost wake-up shows as loom's deadlock report.
    use super::super::Mutex;
    use super::Condvar;
    use loom::sync::Arc;

    /// A waiter woken by something other than the notify it waits for (a
    /// wake-up handed on by a waiter that left, as `PassOn` does), and a
    /// notify that comes while it is between that wake-up and its next
    /// look under the monitor's lock: the notify must not be lost. It was,
    /// when a waiter left the count of waiters at each wake-up and joined
    /// it again only at its next look: the notifier, seeing nobody
    /// counted, changed nothing, and the waiter slept again for good.
    #[test]
    fn a_notify_between_a_waiters_wake_ups_is_not_lost() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let waiter = {
                let pair = pair.clone();
                loom::thread::spawn(move || {
                    let (ready, cv) = &*pair;
                    let mut guard = ready.lock().unwrap();
                    while !*guard {
                        guard = cv.wait(guard).unwrap();
                    }
                })
            };
            let stray = {
                let pair = pair.clone();
                loom::thread::spawn(move || {
                    pair.1.monitor.notify(1);
                })
            };
            let (ready, cv) = &*pair;
            *ready.lock().unwrap() = true;
            cv.notify_one();
            waiter.join().unwrap();
            stray.join().unwrap();
        });
    }

    /// Two waiters and two `notify_one`s: both waiters return.
    #[test]
    fn two_notifies_wake_two_waiters() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let pair = Arc::new((Mutex::new(0usize), Condvar::new()));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let pair = pair.clone();
                    loom::thread::spawn(move || {
                        let (tickets, cv) = &*pair;
                        let mut guard = tickets.lock().unwrap();
                        while *guard == 0 {
                            guard = cv.wait(guard).unwrap();
                        }
                        *guard -= 1;
                    })
                })
                .collect();
            let (tickets, cv) = &*pair;
            for _ in 0..2 {
                *tickets.lock().unwrap() += 1;
                cv.notify_one();
            }
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(*tickets.lock().unwrap(), 0);
        });
    }
}
