//! The lock under every channel: a
//! test-and-test-and-set spin lock.
//!
//! A channel's critical sections are a handful of loads and stores (pop a
//! waiter, push a value); nothing in them parks, allocates for long or runs
//! user code. For sections that short a spin lock beats a futex mutex on
//! the hand-off path that matters most: taking it is one compare-exchange,
//! and releasing it is a plain store (a futex mutex must swap on release to
//! learn whether someone sleeps). A waiter looks at the flag every few
//! dozen PAUSEs, leaving the holder's line alone meanwhile (see
//! `LOOK_PAUSES`), and after some microseconds yields its OS thread
//! (crossbeam's `Backoff`), so a holder whose OS thread was preempted gets
//! the CPU back.
//!
//! Never hold a [`Lock`] across a park or a call into user code.
//!
//! Beside the flag the lock keeps one word its holder may publish for
//! readers that do not take the lock ([`Lock::published`],
//! [`LockGuard::publish`]): a channel says there whether an operation
//! could complete, so that a non-blocking receive from an empty channel
//! (Go's `select` with a `default`) reads a line every core may share
//! instead of taking the lock, whose line every taker must own.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use crate::loom::{fence, AtomicBool, AtomicU32, Ordering};

/// A spin lock for short critical sections (see the module docs).
///
/// ```
/// use grove_scheduler::lock::Lock;
/// let lock = Lock::new(Vec::new());
/// lock.lock().push(1);
/// assert_eq!(*lock.lock(), [1]);
/// ```
///
/// `Send + Sync` when `T: Send`, as std's `Mutex`; a value that may not
/// leave its thread may not be locked across threads either:
///
/// ```compile_fail,E0277
/// fn shared<L: Sync>(_: &L) {}
/// shared(&grove_scheduler::lock::Lock::new(std::rc::Rc::new(0u64)));
/// ```
///
/// `repr(C)`, flag first: a value laid out for it (a channel's state) can
/// keep the fields every operation writes on the flag's cache line.
#[repr(C)]
pub struct Lock<T: ?Sized> {
    locked: AtomicBool,
    /// What the holder published last (see [`LockGuard::publish`]). Beside
    /// the flag, in the padding before a value aligned to 8 bytes.
    published: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one holder at a time
// (the `locked` flag, taken with Acquire and released with Release), so the
// value only needs to be Send to be shared, as with `std::sync::Mutex`.
unsafe impl<T: ?Sized + Send> Send for Lock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Lock<T> {}

/// Access to a [`Lock`]'s value; releases the lock when dropped.
///
/// Like std's `MutexGuard`, it is `Sync` only if `T` is: sharing the guard
/// shares `&T`. (It is `Send` if `T` is: the lock has no owner thread.)
///
/// ```compile_fail,E0277
/// fn shared<G: Sync>(_: &G) {}
/// let lock = grove_scheduler::lock::Lock::new(std::cell::Cell::new(0u64));
/// shared(&lock.lock()); // a Cell must not be reached from two threads
/// ```
///
/// ```compile_fail,E0277
/// fn sendable<G: Send>(_: G) {}
/// let lock = grove_scheduler::lock::Lock::new(std::rc::Rc::new(0u64));
/// sendable(lock.lock()); // nor an Rc moved to another thread
/// ```
pub struct LockGuard<'a, T: ?Sized> {
    lock: &'a Lock<T>,
    /// What the guard hands out: `&mut T`. Makes the guard `Send`/`Sync`
    /// exactly when `&mut T` is (with `&Lock<T>`: when `T: Send`, and for
    /// `Sync` also `T: Sync`).
    _access: PhantomData<&'a mut T>,
}

impl<T> Lock<T> {
    /// An unlocked lock holding `value`, its published word 0.
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Lock<T> {
        Lock::with_published(value, 0)
    }

    /// An unlocked lock holding `value`, its published word `word`.
    #[cfg(not(loom))]
    pub const fn with_published(value: T, word: u32) -> Lock<T> {
        Lock {
            locked: AtomicBool::new(false),
            published: AtomicU32::new(word),
            value: UnsafeCell::new(value),
        }
    }

    /// An unlocked lock holding `value` (loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new(value: T) -> Lock<T> {
        Lock::with_published(value, 0)
    }

    /// As above, its published word `word`.
    #[cfg(loom)]
    pub fn with_published(value: T, word: u32) -> Lock<T> {
        Lock {
            locked: AtomicBool::new(false),
            published: AtomicU32::new(word),
            value: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> Lock<T> {
    /// The word the holders published (see [`LockGuard::publish`]), 0
    /// before the first. An Acquire load: what a holder wrote before it
    /// published is visible once its word is seen.
    ///
    /// ```
    /// use grove_scheduler::lock::Lock;
    /// let lock = Lock::new(0u64);
    /// assert_eq!(lock.published(), 0);
    /// lock.lock().publish(7);
    /// assert_eq!(lock.published(), 7);
    /// ```
    #[inline]
    pub fn published(&self) -> u32 {
        self.published.load(Ordering::Acquire)
    }

    /// [`published`](Self::published) after a SeqCst fence. A reader that
    /// decides from the word alone (say, that a channel is empty) reads it
    /// this way: its own earlier writes elsewhere (a value it sent on
    /// another channel) are then ordered before the read, so two threads
    /// that each write one lock's word and then read the other's cannot
    /// both miss the other's write (what the two locks would give them).
    #[inline]
    pub fn published_fenced(&self) -> u32 {
        fence(Ordering::SeqCst);
        self.published.load(Ordering::Acquire)
    }

    /// Takes the lock, spinning (then yielding the OS thread) while another
    /// thread holds it.
    #[inline]
    pub fn lock(&self) -> LockGuard<'_, T> {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        LockGuard {
            lock: self,
            _access: PhantomData,
        }
    }

    /// Waits for the holder: see `LOOK_PAUSES` for how often it looks.
    #[cold]
    fn lock_contended(&self) {
        let backoff = Backoff::new();
        let mut looks = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                wait_before_look(looks, &backoff);
                looks = looks.saturating_add(1);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            looks = looks.saturating_add(1);
        }
    }
}

/// PAUSEs before a waiter's first look at a held lock: about 100 ns on
/// the Xeon we measure on, the time a hand-off's short hold (a waiter
/// queued, a value taken) takes to end.
#[cfg_attr(loom, allow(dead_code))]
const FIRST_LOOK_PAUSES: u32 = 10;

/// PAUSEs between a waiter's later looks, as Go's runtime lock spins
/// (`procyield(30)`). The flag shares its cache line with the state it
/// guards (a channel's hot 64 bytes), so every look takes that line from
/// the holder, whose next write must take it back: a waiter that looks
/// often (crossbeam's `Backoff`, 1, 2, 4, ... PAUSEs) stalls the holder
/// at each look. A holder that keeps the lock busy is a partner streaming
/// into (or out of) a buffer; leaving it alone lets it do several
/// operations per line transfer. Measured on the 2-vCPU Xeon, producer and
/// consumers on two workers (`on_worker`), interleaved 4 × 5 repetitions,
/// ns per message, before → after: prodcons cap 128 65–67 → 51–53, 4P/4C
/// 72–78 → 61–62, select2 260–278 → 249–267; pingpong (unbuffered, whose
/// waits end within the first look) 539–578 → 556–573 per round trip,
/// unchanged. A look every 30 PAUSEs from the first cost pingpong 10 %.
#[cfg_attr(loom, allow(dead_code))]
const LOOK_PAUSES: u32 = 30;

/// Looks at [`LOOK_PAUSES`] before the waiter yields its OS thread: some
/// 7 µs, far longer than any critical section, so a holder still there was
/// preempted and the waiter's CPU is better given back (`Backoff`, then
/// yields).
#[cfg_attr(loom, allow(dead_code))]
const SPINNING_LOOKS: u32 = 24;

/// The wait before a contended lock's next look.
#[cfg(not(loom))]
#[inline]
fn wait_before_look(looks: u32, backoff: &Backoff) {
    let pauses = match looks {
        0 => FIRST_LOOK_PAUSES,
        n if n < SPINNING_LOOKS => LOOK_PAUSES,
        _ => return backoff.snooze(),
    };
    for _ in 0..pauses {
        std::hint::spin_loop();
    }
}

/// Loom: every look lets the other threads run.
#[cfg(loom)]
fn wait_before_look(_looks: u32, backoff: &Backoff) {
    backoff.snooze();
}

impl<T: ?Sized> LockGuard<'_, T> {
    /// Publishes `word` for readers that do not take the lock
    /// ([`Lock::published`]), with a Release store, made only if the word
    /// changes (a store the readers need not see costs their copies of
    /// the line). Holders publish in lock order, so a reader sees the
    /// word of the latest holder to publish, or a later one.
    #[inline]
    pub fn publish(&self, word: u32) {
        if self.lock.published.load(Ordering::Relaxed) != word {
            self.lock.published.store(word, Ordering::Release);
        }
    }

    /// The word published last, read by the holder (no ordering needed:
    /// only holders write it).
    #[inline]
    pub fn published(&self) -> u32 {
        self.lock.published.load(Ordering::Relaxed)
    }
}

impl<T: ?Sized> Deref for LockGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder owns the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while its holder owns the lock, and
        // `&mut self` makes this the only borrow through it.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// crossbeam's `Backoff`; under loom, a yield to the model's scheduler
/// (loom runs one thread at a time: a spin that never yields would never
/// let the holder release the lock).
#[cfg(not(loom))]
use crossbeam_utils::Backoff;

#[cfg(loom)]
struct Backoff;

#[cfg(loom)]
impl Backoff {
    fn new() -> Backoff {
        Backoff
    }
    fn snooze(&self) {
        ::loom::thread::yield_now();
    }
}

impl<T: ?Sized> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The auto traits every type here is meant to have, checked at compile
/// time; the negative ones are `compile_fail` doctests on the types.
const _: () = {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    #[allow(dead_code)]
    fn check<T: Send + 'static>() {
        // A lock shares its value only through one holder at a time: T:
        // Send is enough for the lock, as for std's Mutex.
        send_sync::<Lock<T>>();
        send_sync::<Lock<std::cell::Cell<u64>>>();
        // A guard moves with its holder (no owner thread), and is shared
        // only if the value may be.
        send::<LockGuard<'static, T>>();
        send_sync::<LockGuard<'static, u64>>();
    }
};

#[cfg(test)]
mod tests {
    use super::Lock;
    use std::sync::Arc;

    #[test]
    fn many_threads_count_exactly() {
        let lock = Arc::new(Lock::new(0u64));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 160_000);
    }

    #[test]
    fn guard_releases_on_drop() {
        let lock = Lock::new(String::from("a"));
        {
            let mut g = lock.lock();
            g.push('b');
        }
        lock.lock().push('c');
        assert_eq!(&*lock.lock(), "abc");
    }
}
