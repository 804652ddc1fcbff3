//! Which workers are searching for work and which are parked, so that new
//! work wakes exactly as many workers as it needs: no storms, no lost
//! wake-ups.
//!
//! The protocol is Go's spinning-M rule as tokio writes it
//! (`runtime/scheduler/multi_thread/idle.rs`):
//!
//! 1. Publishing work (a spawn, a batch in the injector) is followed by a
//!    SeqCst fence and [`Idle::worker_to_notify`]: one parked worker is woken
//!    only if no worker is searching. The woken worker starts as a searcher.
//! 2. At most half the workers search at once.
//! 3. A searcher that finds work and was the last searcher wakes another
//!    (the work it found may have come with more).
//! 4. The last searcher to park re-checks every queue after the fence in
//!    [`Idle::transition_worker_to_parked`]'s lock; work published after its
//!    last look either sees it still searching (and relies on it) or sees it
//!    parked (and wakes a worker).
//!
//! Work homed on one worker (a woken green thread) does not use this: it goes
//! to that worker's inbox and unparks that worker directly.

use crate::loom::{fence, AtomicUsize, Mutex, Ordering};

/// Low 16 bits: searching workers; the rest: unparked workers.
const SEARCH_MASK: usize = 0xffff;
const UNPARK_SHIFT: u32 = 16;

pub(crate) struct Idle {
    state: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
    workers: usize,
}

fn searching(state: usize) -> usize {
    state & SEARCH_MASK
}

fn unparked(state: usize) -> usize {
    state >> UNPARK_SHIFT
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            state: AtomicUsize::new(workers << UNPARK_SHIFT),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
            workers,
        }
    }

    fn should_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        let state = self.state.load(Ordering::SeqCst);
        searching(state) == 0 && unparked(state) < self.workers
    }

    /// Step 1: the parked worker to wake for newly published work, if any.
    /// It is counted as unparked and searching from here on.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        if !self.should_wake() {
            return None;
        }
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        if !self.should_wake() {
            return None;
        }
        let worker = sleepers.pop()?;
        self.state
            .fetch_add((1 << UNPARK_SHIFT) | 1, Ordering::SeqCst);
        Some(worker)
    }

    /// Whether some worker is searching or parked: one that could take
    /// stealable work now or when notified.
    pub(crate) fn has_idle(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        searching(state) > 0 || unparked(state) < self.workers
    }

    /// Step 2: become a searcher if fewer than half the workers search.
    pub(crate) fn transition_worker_to_searching(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        if 2 * searching(state) >= self.workers {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Step 3: stop searching; true if this was the last searcher.
    pub(crate) fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(searching(prev) > 0);
        searching(prev) == 1
    }

    /// Step 4: park `worker`; true if it was the last searcher, which must
    /// then re-check every queue.
    pub(crate) fn transition_worker_to_parked(&self, worker: usize, is_searching: bool) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        let dec = (1 << UNPARK_SHIFT) | usize::from(is_searching);
        let prev = self.state.fetch_sub(dec, Ordering::SeqCst);
        sleepers.push(worker);
        drop(sleepers);
        // The StoreLoad barrier of step 4 (Go: "decrement nmspinning, then
        // StoreLoad barrier, then re-scan"): the caller's re-check of the
        // queues reads them with plain Acquire loads, which could otherwise
        // be ordered before our decrement and miss work a spawner published
        // while it still saw us searching. Pairs with the fence in
        // `should_wake`. (Found by the loom model below.)
        fence(Ordering::SeqCst);
        is_searching && searching(prev) == 1
    }

    /// A parked worker woke (its own inbox, a timer, spuriously, or to leave
    /// a park it had just entered). True if it took itself off the sleepers
    /// list; false if a notifier did that already and counted it as a
    /// searcher.
    pub(crate) fn unpark_worker_by_id(&self, worker: usize) -> bool {
        let mut sleepers = self.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        match sleepers.iter().position(|&w| w == worker) {
            Some(i) => {
                sleepers.swap_remove(i);
                self.state.fetch_add(1 << UNPARK_SHIFT, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Workers that are not parked.
    #[cfg(test)]
    pub(crate) fn unparked(&self) -> usize {
        unparked(self.state.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_half_search() {
        let idle = Idle::new(4);
        assert!(idle.transition_worker_to_searching());
        assert!(idle.transition_worker_to_searching());
        assert!(!idle.transition_worker_to_searching());
        assert!(!idle.transition_worker_from_searching());
        assert!(idle.transition_worker_from_searching());
    }

    #[test]
    fn notify_wakes_a_sleeper_only_when_nobody_searches() {
        let idle = Idle::new(2);
        assert!(!idle.transition_worker_to_parked(1, false));
        assert!(idle.transition_worker_to_searching());
        assert_eq!(idle.worker_to_notify(), None, "a searcher will find it");
        assert!(idle.transition_worker_to_parked(0, true), "last searcher");
        assert_eq!(idle.worker_to_notify(), Some(0));
        assert_eq!(idle.worker_to_notify(), None, "the woken one searches");
        assert!(
            !idle.unpark_worker_by_id(0),
            "a notifier took it off already"
        );
        assert!(idle.unpark_worker_by_id(1));
        assert_eq!(idle.unparked(), 2);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;

    /// Step 4 against step 1: worker 0, the last searcher, finds nothing
    /// and parks while a spawner publishes work and looks for a worker to
    /// wake. Either the worker's re-check (after it counted itself parked)
    /// sees the work, or the spawner is told to wake it: work is never left
    /// with everyone asleep.
    #[test]
    fn last_searcher_parking_races_new_work() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(2));
            // Worker 1 is parked already; worker 0 searches.
            assert!(!idle.transition_worker_to_parked(1, false));
            assert!(idle.transition_worker_to_searching());
            let work = Arc::new(AtomicBool::new(false));
            let (idle2, work2) = (idle.clone(), work.clone());
            // The orderings of the real code: crossbeam publishes work with a
            // Release store and the re-check reads it with Acquire loads.
            let spawner = thread::spawn(move || {
                work2.store(true, Ordering::Release);
                idle2.worker_to_notify()
            });
            let last = idle.transition_worker_to_parked(0, true);
            let rechecked = last && work.load(Ordering::Acquire);
            let woken = spawner.join().unwrap();
            assert!(
                rechecked || woken.is_some(),
                "work published, nobody will run it"
            );
        });
    }

    /// Two spawns at once with one parked worker and nobody searching wake
    /// it once: the second sees the first's searcher.
    #[test]
    fn concurrent_notifies_wake_one() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(2));
            assert!(!idle.transition_worker_to_parked(1, false));
            let a = idle.clone();
            let t = thread::spawn(move || a.worker_to_notify());
            let mine = idle.worker_to_notify();
            let theirs = t.join().unwrap();
            assert_eq!(
                usize::from(mine.is_some()) + usize::from(theirs.is_some()),
                1
            );
        });
    }
}
