//! `RwLock`: std's API and poisoning; many readers or one writer; writers
//! go first once one waits (so a stream of readers cannot starve them),
//! and a writer's unlock lets in the readers that have waited a
//! millisecond before the next writer (so writers taking turns cannot
//! starve readers, as Go's `RWMutex` lets blocked readers in).
//!
//! The lock word: bit 0 WRITER (a writer holds it), bit 1 WRITERS_WAITING,
//! the rest counts readers. Readers take it with one CAS while neither
//! writer bit is set; everyone else waits in the monitor.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use grove_scheduler::park::WaitReason;

use super::monitor::Monitor;
use super::spin::Spin;

const WRITER: usize = 1;
const WRITERS_WAITING: usize = 2;
const READER: usize = 4;

static READ: WaitReason = WaitReason("RwLock::read");
static WRITE: WaitReason = WaitReason("RwLock::write");

/// A reader-writer lock, like `std::sync::RwLock`, that parks green threads.
///
/// ```
/// use grove_runtime::sync::RwLock;
///
/// let lock = RwLock::new(5);
/// {
///     let (r1, r2) = (lock.read().unwrap(), lock.read().unwrap());
///     assert_eq!(*r1 + *r2, 10);
/// }
/// *lock.write().unwrap() += 1;
/// assert_eq!(*lock.read().unwrap(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    poison: AtomicBool,
    monitor: Monitor<Waiting>,
    data: UnsafeCell<T>,
}

// SAFETY: as std's RwLock: readers share &T across threads (T: Sync), a
// writer gets &mut T (T: Send).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

// A panic while the lock is held poisons it, as std's: unwind safe, as
// std's.
impl<T: ?Sized> std::panic::UnwindSafe for RwLock<T> {}
impl<T: ?Sized> std::panic::RefUnwindSafe for RwLock<T> {}

/// Shared access to a read-locked [`RwLock`].
///
/// Covariant in `T`, as std's: it holds a pointer to the data and the
/// lock's words, not `&RwLock<T>` (whose `UnsafeCell` would pin `T`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized + 'a> {
    data: NonNull<T>,
    state: &'a AtomicUsize,
    monitor: &'a Monitor<Waiting>,
    _shared: PhantomData<&'a T>,
}

/// Exclusive access to a write-locked [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized + 'a> {
    lock: &'a RwLock<T>,
    panicking: bool,
}

// SAFETY: read guards hand out &T only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: moving a read guard to another thread lets that thread read the
// data (T: Sync) and release the read lock, which any thread may (the
// lock's words are atomics; no owner thread is recorded).
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    /// The guard of a read hold the caller has just taken on `lock`.
    fn new(lock: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard {
            data: NonNull::new(lock.data.get()).expect("a field's address is not null"),
            state: &lock.state,
            monitor: &lock.monitor,
            _shared: PhantomData,
        }
    }
}
// SAFETY: sharing a write guard shares &T.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    const_unless_loom! {
        /// An unlocked lock holding `value`.
        pub fn new(value: T) -> RwLock<T> {
            RwLock {
                state: AtomicUsize::new(0),
                poison: AtomicBool::new(false),
                monitor: Monitor::new(Waiting {
                    writers: 0,
                    readers: 0,
                    granted: 0,
                    since: None,
                }),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// The data; `Err` (with the data) if poisoned.
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

impl<T: ?Sized> RwLock<T> {
    fn try_read_word(&self) -> bool {
        // SeqCst: in the monitor this load follows the waiter's SeqCst count
        // of itself, and must not be ordered before it (see `monitor`).
        let mut s = self.state.load(Ordering::SeqCst);
        while s & (WRITER | WRITERS_WAITING) == 0 {
            match self.state.compare_exchange_weak(
                s,
                s + READER,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// The first attempt of `read`: one add that cannot fail, where the
    /// compare-exchange of `try_read_word` fails and retries whenever
    /// another reader came or went in between (Go's RLock is one add too).
    /// If a writer holds or waits for the lock, the count is taken back as
    /// an unlock would (waking a writer it may have held off).
    fn read_fast(&self) -> bool {
        let prev = self.state.fetch_add(READER, Ordering::SeqCst);
        if prev & (WRITER | WRITERS_WAITING) == 0 {
            return true;
        }
        self.read_unlock();
        false
    }

    /// Takes the write lock if nobody holds the lock. `waiting` writers
    /// besides the caller keep WRITERS_WAITING set.
    fn try_write_word(&self, waiting: usize) -> bool {
        let s = self.state.load(Ordering::SeqCst);
        if s & WRITER != 0 || s >= READER {
            return false;
        }
        let new = WRITER | if waiting > 0 { WRITERS_WAITING } else { 0 };
        self.state
            .compare_exchange(s, new, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// Spins briefly for the lock word to allow `acquire`: a writer holds
    /// the lock for a moment, and parking costs a switch each way (Go's
    /// mutex spins the same way before it sleeps).
    fn spin_for(&self, mut acquire: impl FnMut() -> bool) -> bool {
        let mut spin = Spin::new();
        for _ in 0..spin.rounds() {
            if acquire() {
                return true;
            }
            if !spin.busy(self.state.load(Ordering::Relaxed)) {
                return false;
            }
            Spin::pause();
        }
        acquire()
    }

    /// Locks for reading, parking while a writer holds or waits for it.
    #[track_caller]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        if !self.read_fast() && !self.spin_for(|| self.try_read_word()) {
            self.read_slow(Location::caller());
        }
        let guard = RwLockReadGuard::new(self);
        if self.poison.load(Ordering::Relaxed) {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    #[cold]
    fn read_slow(&self, at: &'static Location<'static>) {
        grove_scheduler::park::coop_tick();
        // If this waiter is unwound while parked (its runtime shuts down),
        // it must stop counting as a waiting reader, and give back a read
        // hold granted to it, or writers would wait for it for ever.
        let mut waiting = WaitingReader {
            lock: self,
            counted: false,
        };
        let _ = self.monitor.wait_until(&READ, None, at, |w| {
            if !waiting.counted {
                waiting.counted = true;
                if w.readers == w.granted {
                    w.since = Some(Instant::now());
                }
                w.readers += 1;
            }
            // A writer's unlock took a read hold for each reader waiting
            // then (`write_unlock`): this one's is there, held already.
            let granted = w.granted > 0;
            if granted || self.try_read_word() {
                w.granted -= usize::from(granted);
                w.readers -= 1;
                if w.readers == w.granted {
                    w.since = None;
                }
                waiting.counted = false;
                Some(())
            } else {
                None
            }
        });
    }

    /// Locks for reading if that needs no waiting.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.try_read_word() {
            return Err(TryLockError::WouldBlock);
        }
        let guard = RwLockReadGuard::new(self);
        if self.poison.load(Ordering::Relaxed) {
            Err(TryLockError::Poisoned(PoisonError::new(guard)))
        } else {
            Ok(guard)
        }
    }

    /// Locks for writing, parking until no reader or writer holds it.
    #[track_caller]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, WRITER, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.write_slow(Location::caller());
        }
        self.write_guard()
    }

    #[cold]
    fn write_slow(&self, at: &'static Location<'static>) {
        grove_scheduler::park::coop_tick();
        let free = || {
            self.state
                .compare_exchange(0, WRITER, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        };
        if self.spin_for(free) {
            return;
        }
        // If this waiter is unwound while parked (its runtime shuts down),
        // it must stop counting as a waiting writer, or readers would wait
        // for it forever.
        let mut waiting = WaitingWriter {
            lock: self,
            counted: false,
        };
        let _ = self.monitor.wait_until(&WRITE, None, at, |w| {
            if !waiting.counted {
                waiting.counted = true;
                w.writers += 1;
                self.state.fetch_or(WRITERS_WAITING, Ordering::SeqCst);
            }
            if self.try_write_word(w.writers - 1) {
                w.writers -= 1;
                waiting.counted = false;
                Some(())
            } else {
                None
            }
        });
    }

    /// Locks for writing if that needs no waiting.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        let s = self.state.load(Ordering::SeqCst);
        if s & WRITER != 0
            || s >= READER
            || self
                .state
                .compare_exchange(s, s | WRITER, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return Err(TryLockError::WouldBlock);
        }
        self.write_guard().map_err(TryLockError::Poisoned)
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let guard = RwLockWriteGuard {
            lock: self,
            panicking: std::thread::panicking(),
        };
        if self.poison.load(Ordering::Relaxed) {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    fn read_unlock(&self) {
        read_unlock(&self.state, &self.monitor);
    }

    /// Lets go of the write lock. Readers that have waited for
    /// [`STARVING`] go before any writer: under the monitor's lock, a read
    /// hold is taken for each reader waiting (unless a writer took the
    /// lock meanwhile: its unlock will), which it finds when it wakes.
    /// Without it two writers taking turns kept the writers-waiting bit set
    /// for good and a reader never got in (5 s, until the writers stopped,
    /// in 5 of 5 runs; std's let it in within 10–190 ms). Go's
    /// `RWMutex.Unlock` admits its blocked readers at every unlock; here
    /// only once they starve, since every such turn makes the next writer
    /// park until they are done: admitting them at every unlock took the
    /// comparison program's `rwlock_read` (one write in ten, 2 workers)
    /// from 5–8 ns an operation to 29–58.
    fn write_unlock(&self) {
        self.state.fetch_and(!WRITER, Ordering::SeqCst);
        if !self.monitor.has_waiters() {
            return;
        }
        self.monitor.update_and_notify(usize::MAX, |w| {
            let ungranted = w.readers - w.granted;
            if ungranted == 0 || w.since.is_none_or(|t| t.elapsed() < STARVING) {
                return;
            }
            let mut s = self.state.load(Ordering::SeqCst);
            while s & WRITER == 0 {
                match self.state.compare_exchange_weak(
                    s,
                    s + ungranted * READER,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => {
                        w.granted += ungranted;
                        w.since = None;
                        return;
                    }
                    Err(now) => s = now,
                }
            }
        });
    }

    /// Whether a writer panicked while holding the lock.
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    /// The data, through a unique borrow.
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

/// A writer counted among the waiting ones; un-counts itself if it leaves
/// without the lock (unwound while parked).
struct WaitingWriter<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    counted: bool,
}

impl<T: ?Sized> Drop for WaitingWriter<'_, T> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        self.lock.monitor.update_and_notify(usize::MAX, |w| {
            w.writers -= 1;
            if w.writers == 0 {
                self.lock
                    .state
                    .fetch_and(!WRITERS_WAITING, Ordering::SeqCst);
            }
        });
    }
}

/// The monitor's state: who waits, and the read holds a writer's unlock
/// took for the readers waiting then (see `write_unlock`).
struct Waiting {
    writers: usize,
    readers: usize,
    /// Read holds taken for waiting readers and not yet picked up: each
    /// reader that wakes and finds one owns it.
    granted: usize,
    /// Since when the longest-waiting reader with no hold taken for it has
    /// waited (roughly: the first to count itself while none waited).
    since: Option<Instant>,
}

/// How long readers wait behind writers taking turns before a writer's
/// unlock lets them in first (Go's mutex starvation threshold).
const STARVING: Duration = Duration::from_millis(1);

/// A reader counted among the waiting ones; un-counts itself if it leaves
/// without the lock (unwound while parked), and gives back a read hold
/// granted to the readers that no reader is left to pick up.
struct WaitingReader<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    counted: bool,
}

impl<T: ?Sized> Drop for WaitingReader<'_, T> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        // Wakes everyone after: a writer may wait for the hold given back.
        self.lock.monitor.update_and_notify(usize::MAX, |w| {
            w.readers -= 1;
            if w.granted > w.readers {
                w.granted -= 1;
                self.lock.state.fetch_sub(READER, Ordering::SeqCst);
            }
            if w.readers == w.granted {
                w.since = None;
            }
        });
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `data` points into the lock, which outlives the guard
        // ('a), and a read guard exists only while the lock is read-held:
        // no writer has access.
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        read_unlock(self.state, self.monitor);
    }
}

/// Releases one read hold: the last reader out wakes the waiting writers.
fn read_unlock(state: &AtomicUsize, monitor: &Monitor<Waiting>) {
    let prev = state.fetch_sub(READER, Ordering::SeqCst);
    if prev < 2 * READER && prev & WRITERS_WAITING != 0 {
        monitor.notify(usize::MAX);
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard exists only while its holder owns the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` makes this the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() {
            self.lock.poison.store(true, Ordering::Relaxed);
        }
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns the write lock into a read lock without letting go of it, as
    /// std's `RwLockWriteGuard::downgrade`: no writer can take the lock in
    /// between, and readers waiting only for this writer (none of the
    /// writers waiting go first) may now read beside it.
    ///
    /// ```
    /// use grove_runtime::sync::{RwLock, RwLockWriteGuard};
    /// let lock = RwLock::new(1);
    /// let mut w = lock.write().unwrap();
    /// *w += 1;
    /// let r = RwLockWriteGuard::downgrade(w);
    /// assert_eq!(*r, 2);
    /// assert_eq!(*lock.try_read().unwrap(), 2); // a second reader
    /// assert!(lock.try_write().is_err());
    /// ```
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let lock = s.lock;
        // The write guard's drop would unlock (and might poison): it is
        // replaced by the read guard instead; it owns nothing else.
        std::mem::forget(s);
        // WRITER off and one READER on in one step: no writer can slip in.
        lock.state.fetch_add(READER - WRITER, Ordering::SeqCst);
        lock.monitor.notify(usize::MAX);
        RwLockReadGuard::new(lock)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
