//! `Mutex`: std's API and poisoning, parking green threads.
//!
//! The lock word:
//!
//! ```text
//!  bit 0  LOCKED  someone holds the lock
//!  bit 1  QUEUED  waiters may be parked: unlock takes the slow path
//!  bit 2  WOKEN   a locker is awake and competing for the lock (a waiter
//!                 unlock woke, or a spinner): unlock wakes nobody else
//! ```
//!
//! Uncontended, `lock` and `unlock` are one atomic operation each. A locker
//! that finds the lock held spins briefly where the holder may be running
//! meanwhile (another worker, another CPU; with other green threads ready
//! on its worker, only while the lock stays busy), then parks in the wait
//! queue with the time it started waiting. `unlock` wakes the first waiter to compete for the lock again,
//! except that a waiter that has waited over 1 ms is handed the lock
//! directly (Go's starvation mode, `sync/mutex.go`), so a stream of new
//! lockers cannot keep it waiting forever.
//!
//! As in Go, one locker at a time is awake to compete: while `WOKEN` is
//! set, `unlock` only releases. Without it, every unlock of a busy lock
//! woke another waiter (often on another worker: a cross-core hand-off)
//! before the last one had even run, and most of them lost the race and
//! parked again. The one holding `WOKEN` gives it up in the same atomic
//! step as it takes the lock or announces that it parks again, so an
//! unlock either sees it and leaves the waking to it, or does not see it
//! and wakes the next waiter itself.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use grove_scheduler::park::WaitReason;
use grove_scheduler::wait::{self, Claimed, WaitQueue, Woken};

use super::spin::Spin;

// The lock word, the hand-over slot and the queue's lock are loom's under
// `--cfg loom`, for the model at the end of this file.
#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, AtomicUsize};
#[cfg(loom)]
use loom::sync::Mutex as QueueLock;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, AtomicUsize};
#[cfg(not(loom))]
use std::sync::Mutex as QueueLock;

const LOCKED: u32 = 1;
const QUEUED: u32 = 2;
const WOKEN: u32 = 4;

/// A waiter that has waited this long is handed the lock (Go's value).
#[cfg(not(loom))]
const STARVATION: Duration = Duration::from_millis(1);
/// Loom replays must take the same branches: no clock-dependent hand-over.
#[cfg(loom)]
const STARVATION: Duration = Duration::MAX;

static LOCK: WaitReason = WaitReason("Mutex::lock");

/// A mutual-exclusion lock, like `std::sync::Mutex`, that parks a green
/// thread (never its worker) and blocks an OS thread, so both can share it.
/// Holding its guard across a park (a channel operation, a sleep) is fine.
///
/// ```
/// use grove_runtime::sync::{Arc, Mutex};
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..10)
///     .map(|_| {
///         let counter = counter.clone();
///         grove_runtime::go(move || *counter.lock().unwrap() += 1)
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock().unwrap(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU32,
    poison: AtomicBool,
    /// Parked lockers: when each started waiting, and its [`Waiter`] id.
    waiters: QueueLock<WaitQueue<(Instant, usize)>>,
    /// The id of the parked locker the lock was last handed to, until it
    /// wakes (or unwinds) and clears it; 0 when none.
    handed: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `data`, as for
// std's Mutex: T: Send is enough for both.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

// A panic while the lock is held poisons it, as std's: unwind safe, as
// std's.
impl<T: ?Sized> std::panic::UnwindSafe for Mutex<T> {}
impl<T: ?Sized> std::panic::RefUnwindSafe for Mutex<T> {}

/// Access to a locked [`Mutex`]'s data; unlocks when dropped.
///
/// Unlike std's, it is `Send`: a green thread may carry it across a park.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized + 'a> {
    lock: &'a Mutex<T>,
    panicking: bool,
}

// SAFETY: the guard hands out &T (and &mut T to its one owner); sharing it
// is sharing &T.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

macro_rules! new_mutex {
    ($value:expr) => {
        Mutex {
            state: AtomicU32::new(0),
            poison: AtomicBool::new(false),
            waiters: QueueLock::new(WaitQueue::new()),
            handed: AtomicUsize::new(0),
            data: UnsafeCell::new($value),
        }
    };
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Mutex<T> {
        new_mutex!(value)
    }

    /// An unlocked mutex holding `value` (loom's atomics have no `const`
    /// constructor).
    #[cfg(loom)]
    pub fn new(value: T) -> Mutex<T> {
        new_mutex!(value)
    }

    /// The data; `Err` (with the data) if the mutex is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.load(Ordering::Relaxed);
        let data = self.data.into_inner();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking until the lock is free. `Err` if a holder panicked
    /// (the guard is inside, as in std).
    #[track_caller]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow(Location::caller());
        }
        self.guard()
    }

    /// Locks if that needs no waiting.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED != 0 {
                return Err(TryLockError::WouldBlock);
            }
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return self.guard().map_err(TryLockError::Poisoned),
                Err(now) => state = now,
            }
        }
    }

    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let guard = MutexGuard {
            lock: self,
            panicking: std::thread::panicking(),
        };
        if self.poison.load(Ordering::Relaxed) {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    #[cold]
    fn lock_slow(&self, at: &'static Location<'static>) {
        grove_scheduler::park::coop_tick();
        // Whether this locker holds the `WOKEN` bit: set by the unlock that
        // woke it, or by itself while spinning. It gives the bit up when it
        // takes the lock or parks again; if its park unwinds (the runtime
        // is shutting down) `Waiter` does.
        let mut awoke = false;
        let mut spin = Spin::new();
        for _ in 0..spin.rounds() {
            let state = self.state.load(Ordering::Relaxed);
            if state & LOCKED == 0 {
                if self.try_acquire(awoke) {
                    return;
                }
                continue;
            }
            if !spin.busy((state & !WOKEN) as usize) {
                break;
            }
            // Spinning: tell unlock not to wake a parked waiter, this
            // locker is about to take the lock itself (as Go's spinners do).
            if !awoke
                && state & (WOKEN | QUEUED) == QUEUED
                && self
                    .state
                    .compare_exchange(state, state | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                awoke = true;
            }
            Spin::pause();
        }
        let since = Instant::now();
        loop {
            if self.try_acquire(awoke) {
                return;
            }
            let queue = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            // Announce ourselves (and give up `WOKEN`) in one step with the
            // last look, so an unlock that misses us in the queue cannot
            // also miss the flag, nor leave the waking to us.
            let mut state = self.state.load(Ordering::Relaxed);
            let parks = loop {
                if state & LOCKED == 0 {
                    break false;
                }
                let new = (state | QUEUED) & if awoke { !WOKEN } else { !0 };
                match self.state.compare_exchange_weak(
                    state,
                    new,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break true,
                    Err(now) => state = now,
                }
            };
            if !parks {
                drop(queue);
                continue;
            }
            let waiter = Waiter { mutex: self };
            let woken = wait::block(
                queue,
                || self.waiters.lock().unwrap_or_else(|e| e.into_inner()),
                |q: &mut WaitQueue<(Instant, usize)>| q,
                Some((since, waiter.id())),
                None,
                &LOCK,
                at,
            );
            std::mem::forget(waiter);
            if let Woken::Done(_) = woken {
                // Handed over: we hold the lock.
                self.handed.store(0, Ordering::Relaxed);
                return;
            }
            // Woken to compete: `unlock_slow` set `WOKEN` for us.
            awoke = true;
        }
    }

    /// Takes the lock if it is free, giving up `WOKEN` in the same step if
    /// `awoke`; true if taken.
    fn try_acquire(&self, awoke: bool) -> bool {
        let keep = if awoke { !WOKEN } else { !0 };
        let mut state = self.state.load(Ordering::Relaxed);
        while state & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                (state | LOCKED) & keep,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
        false
    }

    /// Releases the lock (the guard's drop).
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        // Nobody parked, or a locker awake to take it: only release.
        while state & QUEUED == 0 || state & WOKEN != 0 {
            match self.state.compare_exchange_weak(
                state,
                state & !LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
        let mut queue = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        // A spinner may have set WOKEN meanwhile; QUEUED changes only under
        // the queue's lock, and the lock is ours.
        let first = queue.claim_first(None);
        let starving = first.as_ref().is_some_and(|first| {
            first
                .peek()
                .is_some_and(|(since, _)| since.elapsed() > STARVATION)
        });
        if !starving {
            // Release, and wake the first waiter to compete.
            self.wake_to_compete(queue, first, LOCKED);
            return;
        }
        let first = first.expect("a starving waiter was claimed");
        // Hand the lock over: it stays LOCKED, now owned by the waiter (a
        // spinner's WOKEN stays with the spinner).
        if queue.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Release);
        }
        // Named before the waiter can see its wake-up, so that if it
        // unwinds instead of returning it knows the lock is its own.
        let id = first.peek().map_or(0, |&(_, id)| id);
        self.handed.store(id, Ordering::Release);
        let (_, waker) = first.take();
        drop(queue);
        waker.wake();
    }

    /// With the queue locked and `first` claimed from it (if anyone was
    /// left): clears `release` and, if the queue is now empty, QUEUED from
    /// the word, sets WOKEN for `first`, and wakes it to compete once the
    /// queue's lock is dropped. (If a spinner set WOKEN meanwhile, both
    /// compete and each gives the bit up in turn: that can cost a later
    /// unlock an extra wake-up, never lose one, because WOKEN is only ever
    /// set for a locker that is awake.)
    fn wake_to_compete<Q>(&self, queue: Q, first: Option<Claimed<(Instant, usize)>>, release: u32)
    where
        Q: std::ops::Deref<Target = WaitQueue<(Instant, usize)>>,
    {
        let more = if queue.is_empty() { 0 } else { QUEUED };
        let woken = if first.is_some() { WOKEN } else { 0 };
        // One read-modify-write: under C11 a store would do where the lock
        // is ours, but loom 0.7 lets a plain store slip between a racing
        // spinner's compare-exchange read and write (its issue #254) and
        // then reports a lost wake-up that cannot happen; this way the
        // model below checks this path.
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                Some((s & !(release | QUEUED)) | more | woken)
            });
        drop(queue);
        drop(first); // wakes it to compete for the lock
    }

    /// Whether a holder panicked while holding the lock.
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    /// The data, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.load(Ordering::Relaxed);
        let data = self.data.get_mut();
        if poisoned {
            Err(PoisonError::new(data))
        } else {
            Ok(data)
        }
    }
}

/// A parked locker, as its unwind guard: if its park unwinds (its runtime
/// is shutting down) it must not take with it what an unlock gave it: the
/// lock itself (a starving waiter is handed it) is released, and the
/// `WOKEN` bit (an unlock woke it to compete and left further waking to it)
/// is given up, waking the next waiter if the lock is free. Without this a
/// locker queued behind the runtime's green threads (an OS thread, another
/// runtime's green thread) waited forever once the runtime was dropped.
/// (If it had not been woken, clearing the bit costs at most an extra
/// wake-up.)
struct Waiter<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

impl<T: ?Sized> Waiter<'_, T> {
    /// Unique among parked lockers: the guard's address on its stack.
    fn id(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }
}

impl<T: ?Sized> Drop for Waiter<'_, T> {
    fn drop(&mut self) {
        let mutex = self.mutex;
        // `block`'s own guard has already taken our entry out of the queue
        // or waited for its claimer to finish, so a hand-over is complete.
        if mutex.handed.load(Ordering::Acquire) == self.id() {
            mutex.handed.store(0, Ordering::Relaxed);
            mutex.unlock();
            return;
        }
        let mut queue = mutex.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let state = mutex.state.fetch_and(!WOKEN, Ordering::AcqRel);
        if state & (LOCKED | QUEUED) != QUEUED {
            return; // held (its unlock wakes), or nobody waits
        }
        let first = queue.claim_first(None);
        mutex.wake_to_compete(queue, first, 0);
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            // Quoted, as std's `Mutex` prints it (its `RwLock` does not).
            Err(TryLockError::WouldBlock) => d.field("data", &"<locked>"),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder owns the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.lock.poison.store(true, Ordering::Relaxed);
        }
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The lock word's protocol (LOCKED, QUEUED, WOKEN; spinners; parked
    //! waiters woken to compete) under loom, on plain threads: every
    //! interleaving up to three preemptions. A lost wake-up shows as
    //! loom's deadlock report; a broken exclusion as a wrong count.
    use super::Mutex;
    use loom::sync::Arc;

    fn model(threads: usize, rounds: usize) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let m = Arc::new(Mutex::new(0usize));
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let m = m.clone();
                    loom::thread::spawn(move || {
                        for _ in 0..rounds {
                            *m.lock().unwrap() += 1;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(*m.lock().unwrap(), threads * rounds);
        });
    }

    #[test]
    fn two_lockers_twice_each() {
        model(2, 2);
    }

    #[test]
    fn three_lockers() {
        model(3, 1);
    }
}
