//! Go's `sync.WaitGroup`.

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use grove_scheduler::park::WaitReason;

use super::monitor::Monitor;

static WAIT: WaitReason = WaitReason("WaitGroup::wait");

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
    #[inline]
    pub fn add(&self, n: usize) {
        let n = isize::try_from(n).expect("WaitGroup::add: n too large");
        // One atomic add, as Go's: a counter within `n` of `isize::MAX` is
        // out of reach of any real program, and is refused (and undone)
        // should it happen.
        let prev = self.inner.count.fetch_add(n, Ordering::SeqCst);
        if prev.checked_add(n).is_none() {
            self.inner.count.fetch_sub(n, Ordering::SeqCst);
            panic!("sync: WaitGroup counter overflow");
        }
    }

    /// Subtracts one from the counter; at zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// If the counter would go below zero ("negative WaitGroup counter", as
    /// in Go).
    #[inline]
    pub fn done(&self) {
        // Refused before it is stored: a counter that went below zero even
        // for a moment could strand a waiter (one that re-checked it then
        // would park again with nobody left to wake it) or, with a
        // concurrent `add`, show a false zero.
        let prev = self
            .inner
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c > 0).then(|| c - 1)
            })
            .unwrap_or_else(|_| panic!("sync: negative WaitGroup counter"));
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
