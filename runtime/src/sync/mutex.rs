//! `Mutex`: std's API and poisoning, parking green threads.
//!
//! The lock word:
//!
//! ```text
//!  bit 0  LOCKED  someone holds the lock
//!  bit 1  QUEUED  waiters may be parked: unlock takes the slow path
//! ```
//!
//! Uncontended, `lock` and `unlock` are one atomic operation each. A locker
//! that finds the lock held spins briefly (the holder may be running on
//! another worker), then parks in the wait queue with the time it started
//! waiting. `unlock` wakes the first waiter to compete for the lock again,
//! except that a waiter that has waited over 1 ms is handed the lock
//! directly (Go's starvation mode, `sync/mutex.go`), so a stream of new
//! lockers cannot keep it waiting forever.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use grove_scheduler::park::WaitReason;
use grove_scheduler::wait::{self, WaitQueue, Woken};

const LOCKED: u32 = 1;
const QUEUED: u32 = 2;

/// A waiter that has waited this long is handed the lock (Go's value).
const STARVATION: Duration = Duration::from_millis(1);
/// Spin rounds before parking (Go spins 4 times, `sync_runtime_canSpin`).
const SPINS: u32 = 4;

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
    waiters: std::sync::Mutex<WaitQueue<Instant>>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to `data`, as for
// std's Mutex: T: Send is enough for both.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

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

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU32::new(0),
            poison: AtomicBool::new(false),
            waiters: std::sync::Mutex::new(WaitQueue::new()),
            data: UnsafeCell::new(value),
        }
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

    /// Takes the lock if it is free; true if taken.
    fn try_acquire(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
        false
    }

    #[cold]
    fn lock_slow(&self, at: &'static Location<'static>) {
        grove_scheduler::park::coop_tick();
        for spin in 0..SPINS {
            if self.try_acquire() {
                return;
            }
            for _ in 0..(1 << spin) {
                std::hint::spin_loop();
            }
        }
        let since = Instant::now();
        loop {
            if self.try_acquire() {
                return;
            }
            let queue = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            // Announce ourselves before the last look, so an unlock that
            // misses us in the queue cannot also miss the flag.
            if self.state.fetch_or(QUEUED, Ordering::SeqCst) & LOCKED == 0 {
                drop(queue);
                continue;
            }
            let woken = wait::block(
                queue,
                || self.waiters.lock().unwrap_or_else(|e| e.into_inner()),
                |q: &mut WaitQueue<Instant>| q,
                Some(since),
                None,
                &LOCK,
                at,
            );
            if let Woken::Done(_) = woken {
                return; // handed over: we hold the lock
            }
        }
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
        let mut queue = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let Some(first) = queue.claim_first(None) else {
            self.state.store(0, Ordering::Release);
            return;
        };
        let more = if queue.is_empty() { 0 } else { QUEUED };
        let starving = first
            .peek()
            .is_some_and(|since| since.elapsed() > STARVATION);
        if starving {
            // Hand the lock over: it stays LOCKED, now owned by the waiter.
            self.state.store(LOCKED | more, Ordering::Release);
            let (_since, waker) = first.take();
            drop(queue);
            waker.wake();
        } else {
            self.state.store(more, Ordering::Release);
            drop(queue);
            drop(first); // wakes it to compete for the lock again
        }
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
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
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
