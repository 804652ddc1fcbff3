//! Timer channels: `after` (Go's `time.After`), `tick` (`time.Tick`),
//! `never` (a nil channel), and the state behind [`Timer`](crate::Timer)
//! and [`Ticker`](crate::Ticker). They need no sender and no background
//! thread: a receive waits on the runtime's timers until the channel's
//! deadline.
//!
//! Go 1.23 semantics: nothing is buffered ahead of the receiver, so there is
//! never a stale value (a stopped or reset timer cannot deliver what it
//! would have delivered before); `tick` drops the ticks a slow receiver
//! missed and stays on its original grid.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use grove_scheduler::park::Unparker;
use grove_scheduler::scheduler::Handle;

use crate::timer::AfterFunc;

/// Ids of parked timer and readiness waiters (unique among the live ones).
static NEXT_WAITER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// A fresh waiter id.
pub(crate) fn waiter_id() -> usize {
    NEXT_WAITER.fetch_add(1, Ordering::Relaxed)
}

/// `after(d)`: one value at `deadline`, then nothing.
pub(crate) struct After {
    pub(crate) deadline: Instant,
    fired: AtomicBool,
}

impl After {
    pub(crate) fn new(deadline: Instant) -> After {
        After {
            deadline,
            fired: AtomicBool::new(false),
        }
    }

    /// The value, if due and not yet taken: the deadline, the instant the
    /// timer fired (Go's `time.After` sends the time it fired, whenever it
    /// is received).
    pub(crate) fn try_take(&self, now: Instant) -> Option<Instant> {
        (now >= self.deadline && !self.fired.swap(true, Ordering::AcqRel)).then_some(self.deadline)
    }

    /// When a receive could next succeed.
    pub(crate) fn next(&self) -> Option<Instant> {
        (!self.fired.load(Ordering::Acquire)).then_some(self.deadline)
    }

    /// Puts back the value [`try_take`](Self::try_take) took, for a select
    /// whose chosen receive was dropped unfinished.
    pub(crate) fn give_back(&self) {
        self.fired.store(false, Ordering::Release);
    }

    pub(crate) fn len(&self, now: Instant) -> usize {
        usize::from(now >= self.deadline && !self.fired.load(Ordering::Acquire))
    }
}

/// `d` from now; past what an `Instant` can hold, a century from now (Go
/// clamps a timer's `when` the same way): a timer armed for
/// `Duration::MAX` is armed, and its `stop` says so; it never fires.
pub(crate) fn deadline_in(d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// A timer that can be stopped and reset: `tick(d)` and
/// [`Ticker`](crate::Ticker) (periodic, on the grid `start + k * period`),
/// [`Timer`](crate::Timer) (one value, then nothing until reset).
pub(crate) struct Tick {
    state: Mutex<TickState>,
    /// `state.generation`, stored under the lock each time it moves on,
    /// for the `after_func` service's sweeps to tell stale entries without
    /// taking every timer's lock (a stale read can only take a dead entry
    /// for a live one, which its firing then tells).
    pub(crate) generation: AtomicU64,
}

pub(crate) struct TickState {
    /// The next value's instant; `None` when stopped, when a one-shot timer
    /// delivered, or when the next tick would be past the end of time.
    next: Option<Instant>,
    /// `None` for a one-shot timer.
    period: Option<Duration>,
    /// Counts stops and resets: an armed instant is known by its
    /// generation (see `timer`'s `after_func` service).
    pub(crate) generation: u64,
    /// Receivers, selects and readiness waiters parked until `next`: a
    /// stop or reset wakes them to look again.
    waiters: Vec<(usize, Unparker)>,
    /// An `after_func` timer's function, until it starts.
    func: Option<AfterFunc>,
    /// The `after_func` service's shard its current arming is in.
    pub(crate) shard: usize,
    /// A one-shot timer's value taken by a select's receive, and the
    /// generation it was taken in: given back ([`Tick::give_back`]) if
    /// that selected receive is dropped unfinished, unless the timer was
    /// stopped or reset meanwhile.
    taken: Option<(u64, Instant)>,
}

impl TickState {
    /// The armed instant, if any.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Whom a stop or reset wakes: every waiter, which stays registered
    /// (a parked select stays until it unregisters; the others register
    /// anew each time they park).
    fn waiting(&self) -> Vec<Unparker> {
        self.waiters.iter().map(|(_, w)| w.clone()).collect()
    }

    /// Whether an `after_func` timer still has its function to run.
    pub(crate) fn has_func(&self) -> bool {
        self.func.is_some()
    }

    /// Arms a one-shot `after_func` timer for `d` from now, in the
    /// service's shard `shard`: whether it was armed, the new deadline, the
    /// new generation, and the shards of the old arming and the new.
    pub(crate) fn rearm(
        &mut self,
        d: Duration,
        shard: usize,
    ) -> (bool, Option<Instant>, u64, (usize, usize)) {
        let armed = self.next.is_some();
        self.next = Some(deadline_in(d));
        self.generation += 1;
        if let Some(func) = &mut self.func {
            func.set_armed(true);
        }
        let old = std::mem::replace(&mut self.shard, shard);
        (armed, self.next, self.generation, (old, shard))
    }

    /// The `after_func` service fires the arming `(generation, at)`: if it
    /// is still the current one, disarms the timer and hands out its
    /// function. `None` for a stale arming.
    pub(crate) fn fire(&mut self, generation: u64, at: Instant) -> Option<AfterFunc> {
        if self.generation != generation || self.next != Some(at) {
            return None;
        }
        self.next = None;
        self.func.take()
    }
}

impl Tick {
    /// A periodic timer whose first tick is `period` from now (as Go,
    /// whose ticker's first tick comes after one period). A zero period
    /// ticks as fast as a nanosecond; nobody asks for one (Go's
    /// `NewTicker` panics on it, which `Ticker::new` does, and its `Tick`
    /// returns nil, which `tick` does).
    pub(crate) fn periodic(period: Duration) -> Tick {
        let period = period.max(Duration::from_nanos(1));
        Tick::with(Some(deadline_in(period)), Some(period))
    }

    /// A one-shot timer that fires `d` from now.
    pub(crate) fn one_shot(d: Duration) -> Tick {
        Tick::with(Some(deadline_in(d)), None)
    }

    /// A one-shot timer that starts `f` in a green thread of `handle`'s
    /// runtime `d` from now (`after_func`; the service fires it).
    /// `shard` is the service's shard it is armed in.
    pub(crate) fn one_shot_func(
        d: Duration,
        handle: Handle,
        f: Box<dyn FnOnce() + Send>,
        shard: usize,
    ) -> Tick {
        let tick = Tick::one_shot(d);
        {
            let mut state = tick.lock();
            state.func = Some(AfterFunc::new(handle, f));
            state.shard = shard;
        }
        tick
    }

    fn with(next: Option<Instant>, period: Option<Duration>) -> Tick {
        Tick {
            state: Mutex::new(TickState {
                next,
                period,
                generation: 0,
                waiters: Vec::new(),
                func: None,
                shard: 0,
                taken: None,
            }),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, TickState> {
        // Nothing panics under this lock; a poisoned one is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value, if due: a one-shot timer's deadline (then it is spent), or
    /// the latest due tick of a periodic one (the ticks missed before it
    /// are dropped; the next stays on the grid).
    pub(crate) fn try_take(&self, now: Instant) -> Option<Instant> {
        let mut state = self.lock();
        let due = state.next.filter(|&n| now >= n)?;
        let Some(period) = state.period else {
            state.next = None;
            state.taken = Some((state.generation, due));
            return Some(due);
        };
        let missed = (now - due).as_nanos() / period.as_nanos();
        let skipped = u32::try_from(missed)
            .ok()
            .and_then(|m| period.checked_mul(m));
        let latest = skipped.and_then(|d| due.checked_add(d)).unwrap_or(now);
        state.next = latest.checked_add(period);
        Some(latest)
    }

    /// Puts back a one-shot timer's value that [`try_take`](Self::try_take)
    /// took, for a select whose chosen receive was dropped unfinished: the
    /// next receive gets it, and `stop` still reports a delivery it
    /// prevented. Not if the timer was stopped or reset since (its
    /// generation moved on), nor for a periodic one (a tick taken so is as
    /// a tick missed by a slow receiver: the next stays on the grid).
    pub(crate) fn give_back(&self, at: Instant) {
        let waiters = {
            let mut state = self.lock();
            let generation = state.generation;
            if state.period.is_some()
                || state.next.is_some()
                || state.taken != Some((generation, at))
            {
                return;
            }
            state.taken = None;
            state.next = Some(at);
            state.waiting()
        };
        waiters.into_iter().for_each(Unparker::wake);
    }

    /// When a receive could next succeed.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.lock().next
    }

    pub(crate) fn len(&self, now: Instant) -> usize {
        usize::from(self.next().is_some_and(|n| now >= n))
    }

    /// Whether a value is due now; if not, `unparker` is woken by every
    /// stop and reset (registered under the same lock, so none is missed)
    /// until [`unwatch`](Self::unwatch). A waiter parks until
    /// [`next`](Self::next) itself.
    pub(crate) fn watch(&self, id: usize, unparker: &Unparker, now: Instant) -> bool {
        let mut state = self.lock();
        if state.next.is_some_and(|n| now >= n) {
            return true;
        }
        state.waiters.push((id, unparker.clone()));
        false
    }

    /// Takes back what [`watch`](Self::watch) left, if still there.
    pub(crate) fn unwatch(&self, id: usize) {
        self.lock().waiters.retain(|(w, _)| *w != id);
    }

    /// Disarms the timer; true if that kept a value from being delivered
    /// (it was armed, or fired and not yet received). Also says which of
    /// the `after_func` service's shards the arming was in.
    #[must_use]
    pub(crate) fn stop(&self) -> (bool, usize) {
        let (armed, shard, waiters) = {
            let mut state = self.lock();
            let armed = state.next.take().is_some();
            state.generation += 1;
            self.generation.store(state.generation, Ordering::Relaxed);
            if let Some(func) = &mut state.func {
                func.set_armed(false);
            }
            (armed, state.shard, state.waiting())
        };
        waiters.into_iter().for_each(Unparker::wake);
        (armed, shard)
    }

    /// Arms the timer for `d` from now (a periodic one also takes `d` as its
    /// period); true if that kept a value from being delivered. Returns the
    /// new deadline too.
    pub(crate) fn reset(&self, d: Duration) -> (bool, Option<Instant>) {
        let (armed, next, waiters) = {
            let mut state = self.lock();
            if state.period.is_some() {
                let period = d.max(Duration::from_nanos(1));
                state.period = Some(period);
            }
            let armed = state.next.is_some();
            state.next = Some(deadline_in(state.period.unwrap_or(d)));
            state.generation += 1;
            self.generation.store(state.generation, Ordering::Relaxed);
            (armed, state.next, state.waiting())
        };
        waiters.into_iter().for_each(Unparker::wake);
        (armed, next)
    }
}
