//! Go's `sync.WaitGroup` and a counting `Semaphore`.

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;

use grove_scheduler::park::WaitReason;

use super::monitor::Monitor;

static WAIT: WaitReason = WaitReason("WaitGroup::wait");
static ACQUIRE: WaitReason = WaitReason("Semaphore::acquire");

/// Go's `sync.WaitGroup`: waits for a collection of green threads to finish.
/// Clones share one counter.
///
/// ```
/// use grove_runtime::sync::WaitGroup;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let wg = WaitGroup::new();
/// let done = Arc::new(AtomicUsize::new(0));
/// for _ in 0..100 {
///     wg.add(1);
///     let (wg, done) = (wg.clone(), done.clone());
///     grove_runtime::go(move || {
///         done.fetch_add(1, Ordering::Relaxed);
///         wg.done();
///     });
/// }
/// wg.wait();
/// assert_eq!(done.load(Ordering::Relaxed), 100);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<WaitGroupInner>,
}

struct WaitGroupInner {
    count: AtomicIsize,
    monitor: Monitor<()>,
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.inner.count.load(Ordering::Relaxed))
            .finish()
    }
}

impl WaitGroup {
    /// A wait group with a zero counter.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(WaitGroupInner {
                count: AtomicIsize::new(0),
                monitor: Monitor::new(()),
            }),
        }
    }

    /// Adds `n` to the counter.
    ///
    /// # Panics
    ///
    /// If the counter would overflow (it is left as it was).
    pub fn add(&self, n: usize) {
        let n = isize::try_from(n).expect("WaitGroup::add: n too large");
        let updated = self
            .inner
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_add(n));
        assert!(updated.is_ok(), "sync: WaitGroup counter overflow");
    }

    /// Subtracts one from the counter; at zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// If the counter would go below zero ("negative WaitGroup counter", as
    /// in Go).
    pub fn done(&self) {
        let prev = self.inner.count.fetch_sub(1, Ordering::SeqCst);
        if prev <= 0 {
            self.inner.count.fetch_add(1, Ordering::SeqCst);
            panic!("sync: negative WaitGroup counter");
        }
        if prev == 1 {
            self.inner.monitor.notify(usize::MAX);
        }
    }

    /// Parks until the counter is zero.
    #[track_caller]
    pub fn wait(&self) {
        if self.inner.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let count = &self.inner.count;
        let _ = self
            .inner
            .monitor
            .wait_until(&WAIT, None, Location::caller(), |_| {
                (count.load(Ordering::SeqCst) == 0).then_some(())
            });
    }

    /// The counter now.
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst).max(0) as usize
    }
}

/// A counting semaphore: at most `permits` holders at once.
///
/// ```
/// use grove_runtime::sync::Semaphore;
/// let sem = Semaphore::new(2);
/// let a = sem.acquire();
/// let b = sem.try_acquire().unwrap();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert_eq!(sem.available_permits(), 1);
/// # drop(b);
/// ```
pub struct Semaphore {
    permits: AtomicUsize,
    monitor: Monitor<()>,
}

/// A permit of a [`Semaphore`]; given back when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: AtomicUsize::new(permits),
            monitor: Monitor::new(()),
        }
    }

    fn try_take(&self) -> bool {
        let mut n = self.permits.load(Ordering::SeqCst);
        while n > 0 {
            match self
                .permits
                .compare_exchange_weak(n, n - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// Takes a permit, parking until one is free.
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        if !self.try_take() {
            let at = Location::caller();
            grove_scheduler::park::coop_tick();
            let _ = self
                .monitor
                .wait_until(&ACQUIRE, None, at, |_| self.try_take().then_some(()));
        }
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_take().then(|| SemaphorePermit { sem: self })
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.permits.load(Ordering::SeqCst)
    }

    /// Adds `n` permits.
    ///
    /// # Panics
    ///
    /// If the semaphore would hold more than `usize::MAX` permits (it is
    /// left as it was).
    pub fn add_permits(&self, n: usize) {
        let updated = self
            .permits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| p.checked_add(n));
        assert!(
            updated.is_ok(),
            "a Semaphore may not hold more than usize::MAX permits"
        );
        self.monitor.notify(n);
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (the semaphore shrinks by one).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(1);
    }
}
