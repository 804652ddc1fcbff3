//! The wait-queue core under grove's sync primitives: a small state behind
//! a short-held lock, plus a queue of parked waiters (`grove_scheduler::wait`).
//!
//! Protocol:
//!
//! 1. A waiter takes the lock, counts itself in `queued` (until it
//!    returns), and tests its condition on the state; if it does not hold,
//!    it queues itself and parks, releasing the lock only once queued
//!    (inside `wait::block`).
//! 2. A notifier changes the state (or an atomic next to it) first, then,
//!    if `queued` is non-zero, takes the lock and wakes waiters, which test
//!    their condition again.
//!
//! `queued` is read with SeqCst after the notifier's SeqCst state change,
//! and written with SeqCst before the waiter's test, so either the waiter
//! sees the change or the notifier sees the waiter: no wake-up is lost.

use std::panic::Location;
use std::sync::atomic::Ordering;
use std::time::Instant;

// loom's under `--cfg loom`, for the model at the end of this file.
#[cfg(loom)]
use loom::sync::{atomic::AtomicUsize, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::{atomic::AtomicUsize, Mutex, MutexGuard};

use grove_scheduler::park::WaitReason;
use grove_scheduler::wait::{self, Claimed, WaitQueue, Woken};

pub(crate) struct Monitor<S> {
    inner: Mutex<Inner<S>>,
    queued: AtomicUsize,
}

pub(crate) struct Inner<S> {
    pub(crate) state: S,
    waiters: WaitQueue<()>,
}

/// The deadline passed before the condition held.
#[derive(Debug)]
pub(crate) struct TimedOut;

/// A waiter's unwind guard: if its park unwinds (its runtime is shutting
/// down), it leaves the count of waiters, and passes on the wake-up a
/// `notify(1)` may have spent on it, so that a waiter queued behind it (an
/// OS thread, another runtime's green thread) is not left parked. Every
/// waiter tests its condition again when woken, so a wake-up it did not
/// need costs only that test.
struct PassOn<'a, S> {
    monitor: &'a Monitor<S>,
}

impl<S> Drop for PassOn<'_, S> {
    fn drop(&mut self) {
        self.monitor.queued.fetch_sub(1, Ordering::SeqCst);
        self.monitor.notify(1);
    }
}

impl<S> Monitor<S> {
    const_unless_loom! {
        pub(crate) fn new(state: S) -> Monitor<S> {
            Monitor {
                inner: Mutex::new(Inner {
                    state,
                    waiters: WaitQueue::new(),
                }),
                queued: AtomicUsize::new(0),
            }
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `ready` returns `Some` (step 1); `ready` runs under the
    /// lock each time the waiter is woken.
    pub(crate) fn wait_until<R>(
        &self,
        reason: &'static WaitReason,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
        mut ready: impl FnMut(&mut S) -> Option<R>,
    ) -> Result<R, TimedOut> {
        let mut guard = self.lock();
        // Counted until it returns, across its wake-ups too: between a
        // wake-up and its next look under the lock, a notifier that skipped
        // the lock because `queued` was 0 (a Condvar's `notify_one` then
        // changes nothing) would leave it parked for good.
        self.queued.fetch_add(1, Ordering::SeqCst);
        loop {
            if let Some(r) = ready(&mut guard.state) {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return Ok(r);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return Err(TimedOut);
            }
            let unwinding = PassOn { monitor: self };
            let woken = wait::block(
                guard,
                || self.lock(),
                |inner: &mut Inner<S>| &mut inner.waiters,
                None,
                deadline,
                reason,
                at,
            );
            std::mem::forget(unwinding);
            if let Woken::Timeout(_) = woken {
                // One last look: the condition may have come true just now.
                let r = ready(&mut self.lock().state).ok_or(TimedOut);
                self.queued.fetch_sub(1, Ordering::SeqCst);
                return r;
            }
            guard = self.lock();
        }
    }

    /// Whether anyone may be waiting (step 2's check).
    pub(crate) fn has_waiters(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
    }

    /// Wakes up to `n` waiters so they test their condition again.
    pub(crate) fn notify(&self, n: usize) -> usize {
        if !self.has_waiters() {
            return 0;
        }
        let mut guard = self.lock();
        let mut claimed: Vec<Claimed<()>> = Vec::new();
        while claimed.len() < n {
            match guard.waiters.claim_first(None) {
                Some(c) => claimed.push(c),
                None => break,
            }
        }
        drop(guard);
        let woken = claimed.len();
        for c in claimed {
            c.deliver(()).wake();
        }
        woken
    }

    /// Changes the state under the lock, then wakes up to `n` waiters.
    pub(crate) fn update_and_notify<R>(&self, n: usize, f: impl FnOnce(&mut S) -> R) -> R {
        let mut guard = self.lock();
        let r = f(&mut guard.state);
        let mut claimed: Vec<Claimed<()>> = Vec::new();
        while claimed.len() < n {
            match guard.waiters.claim_first(None) {
                Some(c) => claimed.push(c),
                None => break,
            }
        }
        drop(guard);
        for c in claimed {
            c.deliver(()).wake();
        }
        r
    }
}
