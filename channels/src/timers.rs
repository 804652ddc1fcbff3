//! Timer channels: `after` (Go's `time.After`), `tick` (`time.Tick`) and
//! `never` (a nil channel). They need no sender and no background thread:
//! a receive waits on the runtime's timers until the channel's deadline.
//!
//! Go 1.23 semantics: nothing is buffered ahead of the receiver, so there is
//! never a stale value; `tick` drops the ticks a slow receiver missed and
//! stays on its original grid.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

    pub(crate) fn len(&self, now: Instant) -> usize {
        usize::from(now >= self.deadline && !self.fired.load(Ordering::Acquire))
    }
}

/// `tick(d)`: a value every period, on the grid `start + k * period`.
pub(crate) struct Tick {
    period: Duration,
    /// The next tick; `None` once the next would be past the end of time.
    next: Mutex<Option<Instant>>,
}

impl Tick {
    /// `None` if the first tick lies beyond what an `Instant` can hold
    /// (such a ticker never ticks).
    pub(crate) fn new(period: Duration) -> Option<Tick> {
        // A zero period would tick without end; Go's NewTicker panics on
        // it, Tick returns nil. Tick as fast as a nanosecond instead.
        let period = period.max(Duration::from_nanos(1));
        Some(Tick {
            period,
            next: Mutex::new(Some(Instant::now().checked_add(period)?)),
        })
    }

    /// The latest due tick, if any; ticks missed before it are dropped.
    pub(crate) fn try_take(&self, now: Instant) -> Option<Instant> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let due = (*next)?;
        if now < due {
            return None;
        }
        let missed = (now - due).as_nanos() / self.period.as_nanos();
        let skipped = u32::try_from(missed)
            .ok()
            .and_then(|m| self.period.checked_mul(m));
        let latest = skipped.and_then(|d| due.checked_add(d)).unwrap_or(now);
        *next = latest.checked_add(self.period);
        Some(latest)
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        *self.next.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn len(&self, now: Instant) -> usize {
        usize::from(self.next().is_some_and(|n| now >= n))
    }
}
