//! A weighted, first-come first-served semaphore: golang.org/x/sync's
//! `semaphore.Weighted` with tokio's permit guards.
//!
//! # The model
//!
//! The state, behind one short-held lock: `avail` free permits, `total`
//! permits in all (free plus held; `add_permits` grows it, `forget` shrinks
//! it), and a FIFO queue of waiters, each asking for `n` permits.
//!
//! 1. An acquire takes its permits at once only if nobody is queued and
//!    `avail >= n`; otherwise it joins the back of the queue and parks.
//! 2. Whoever frees permits (a permit's drop, `add_permits`, a waiter that
//!    gives up) grants them to the waiters at the front, in order, while
//!    the front one's `n` fits in `avail`; it marks each granted waiter and
//!    wakes it after the lock is released. A big waiter at the front thus
//!    holds back smaller ones behind it (no barging, no starvation).
//! 3. A waiter leaves by being granted (its permits are then already
//!    counted as taken) or by giving up (context done, or unwound): it
//!    takes itself out of the queue, or, if it was granted meanwhile, gives
//!    the permits back (step 2), so no permit is ever lost.

use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use grove_scheduler::lock::{Lock, LockGuard};
use grove_scheduler::park::{self, WaitReason};
use grove_scheduler::Unparker;

use crate::context::{Context, ContextError};

static ACQUIRE: WaitReason = WaitReason("Semaphore::acquire");

/// A counting semaphore: at most `permits` holders at once, or, weighted,
/// at most `permits` units held in all.
///
/// Waiters are served first come, first served: a waiter that asks for
/// more permits than are free parks, and everyone who comes after it waits
/// behind it even if their smaller request would fit (as Go's
/// `semaphore.Weighted`; no big request starves).
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
///
/// Weighted, to bound memory rather than tasks:
///
/// ```
/// use grove_runtime::sync::{Arc, Semaphore};
///
/// let budget = Arc::new(Semaphore::new(64 << 20)); // 64 MiB of buffers
/// let jobs: Vec<_> = [8 << 20, 40 << 20, 30 << 20]
///     .into_iter()
///     .map(|bytes: usize| {
///         let budget = budget.clone();
///         grove_runtime::go(move || {
///             let _mem = budget.acquire_many(bytes); // parks while over budget
///             vec![0u8; bytes].len()
///         })
///     })
///     .collect();
/// let total: usize = jobs.into_iter().map(|j| j.join().unwrap()).sum();
/// assert_eq!(total, 78 << 20);
/// assert_eq!(budget.available_permits(), 64 << 20);
/// ```
///
/// # Asking for more than the semaphore holds
///
/// `acquire_many(n)` with `n` larger than the permits the semaphore holds
/// in all (free and held) waits for [`add_permits`](Semaphore::add_permits)
/// to grow it, and holds back nobody meanwhile: the requests behind it
/// that fit are served as if it were not there (Go's `Acquire` waits only
/// for its context then, and its test `TestWeightedDoesntBlockIfTooBig`
/// checks the others get through). Once the semaphore is grown enough, it
/// is served in its place in line. `try_acquire_many` returns `None` for
/// it. Go's `Acquire` with a context that is never done blocks forever
/// there too; use [`acquire_many_ctx`](Semaphore::acquire_many_ctx) to
/// bound the wait.
///
/// ```
/// use grove_runtime::context::Context;
/// use grove_runtime::sync::{Arc, Semaphore};
///
/// let sem = Arc::new(Semaphore::new(2));
/// let (ctx, cancel) = Context::background().with_cancel();
/// let s = sem.clone();
/// let too_big = grove_runtime::go(move || s.acquire_many_ctx(3, &ctx).is_ok());
/// while format!("{sem:?}").contains("waiters: 0") {
///     grove_runtime::thread::yield_now(); // until it waits
/// }
/// // The request for 3 of 2 holds back nobody:
/// let one = sem.try_acquire().expect("a permit is free");
/// let two = sem.acquire();
/// drop((one, two));
/// cancel.cancel();
/// assert!(!too_big.join().unwrap());
/// ```
pub struct Semaphore {
    /// The channels' spin lock, not a futex mutex: every section is a few
    /// loads and stores (no park, no user code), and two green threads on
    /// two workers taking and giving permits made the futex mutex sleep
    /// and wake (Go's x/sync `BenchmarkAcquire` in parallel: 5–6x Go).
    state: Lock<State>,
}

struct State {
    avail: usize,
    total: usize,
    queue: VecDeque<Arc<Waiter>>,
}

/// A queued request (protocol step 1).
struct Waiter {
    n: usize,
    /// Set under the semaphore's lock when its permits were granted.
    granted: AtomicBool,
    unparker: Unparker,
}

/// Permits of a [`Semaphore`]; given back when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

/// Permits of a semaphore behind an `Arc` (from
/// [`Semaphore::acquire_owned`]): `'static`, so it can move into a green
/// thread; given back when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    n: usize,
}

// As std's `Mutex` (what the state was behind before): nothing in a
// section of the semaphore's lock can panic half way (no user code runs
// there), so a panic elsewhere cannot leave a state another thread would
// see broken.
impl std::panic::UnwindSafe for Semaphore {}
impl std::panic::RefUnwindSafe for Semaphore {}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Semaphore")
            .field("available_permits", &state.avail)
            .field("waiters", &state.queue.len())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.n)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.n)
            .finish_non_exhaustive()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    #[cfg(not(loom))]
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Lock::new(State {
                avail: permits,
                total: permits,
                queue: VecDeque::new(),
            }),
        }
    }

    /// A semaphore with `permits` permits (loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Lock::new(State {
                avail: permits,
                total: permits,
                queue: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> LockGuard<'_, State> {
        self.state.lock()
    }

    /// Takes a permit, parking until one is free.
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, parking until they are free and every
    /// earlier waiter has been served (see the type's docs for `n` larger
    /// than the semaphore). `n == 0` returns at once.
    #[track_caller]
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        match self.take(n, None, Location::caller()) {
            Ok(()) => SemaphorePermit { sem: self, n },
            Err(err) => unreachable!("no context, yet the acquire gave up: {err}"),
        }
    }

    /// Takes a permit, parking until one is free or until `ctx` is done
    /// (cancelled, or its deadline passed): Go's `Acquire(ctx, 1)`. A
    /// context that is done already fails at once, even if a permit is
    /// free; one that becomes done while the permit is being granted also
    /// fails (the permit goes to the next waiter).
    ///
    /// ```
    /// use grove_runtime::context::{Context, ContextError};
    /// use grove_runtime::sync::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(1);
    /// let held = sem.acquire();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(10));
    /// assert_eq!(sem.acquire_ctx(&ctx).unwrap_err(), ContextError::DeadlineExceeded);
    /// drop(held);
    /// assert!(sem.acquire_ctx(&Context::background()).is_ok());
    /// ```
    #[track_caller]
    pub fn acquire_ctx(&self, ctx: &Context) -> Result<SemaphorePermit<'_>, ContextError> {
        self.acquire_many_ctx(1, ctx)
    }

    /// [`acquire_ctx`](Semaphore::acquire_ctx) for `n` permits at once.
    #[track_caller]
    pub fn acquire_many_ctx(
        &self,
        n: usize,
        ctx: &Context,
    ) -> Result<SemaphorePermit<'_>, ContextError> {
        self.take(n, Some(ctx), Location::caller())?;
        Ok(SemaphorePermit { sem: self, n })
    }

    /// Takes a permit if one is free now and nobody is waiting.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free now and nobody is waiting (a
    /// waiter ahead is served first, as in Go's `TryAcquire`).
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        self.try_take(n).then(|| SemaphorePermit { sem: self, n })
    }

    /// [`acquire`](Semaphore::acquire) for a semaphore behind an `Arc`: the
    /// permit holds the `Arc`, so it is `'static` and can move into a green
    /// thread.
    ///
    /// ```
    /// use grove_runtime::sync::{Arc, Semaphore};
    ///
    /// let sem = Arc::new(Semaphore::new(2));
    /// let workers: Vec<_> = (0..8)
    ///     .map(|i| {
    ///         let permit = sem.clone().acquire_owned(); // at most 2 running
    ///         grove_runtime::go(move || {
    ///             let _permit = permit;
    ///             i * 2
    ///         })
    ///     })
    ///     .collect();
    /// let sum: i32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    /// assert_eq!(sum, 56);
    /// ```
    #[track_caller]
    pub fn acquire_owned(self: Arc<Self>) -> OwnedSemaphorePermit {
        match self.take(1, None, Location::caller()) {
            Ok(()) => OwnedSemaphorePermit { sem: self, n: 1 },
            Err(err) => unreachable!("no context, yet the acquire gave up: {err}"),
        }
    }

    /// [`try_acquire`](Semaphore::try_acquire) for a semaphore behind an
    /// `Arc`.
    pub fn try_acquire_owned(self: Arc<Self>) -> Option<OwnedSemaphorePermit> {
        self.try_take(1)
            .then(|| OwnedSemaphorePermit { sem: self, n: 1 })
    }

    /// Permits free now.
    pub fn available_permits(&self) -> usize {
        self.lock().avail
    }

    /// Adds `n` permits (waking waiters they satisfy).
    ///
    /// # Panics
    ///
    /// If the semaphore would hold more than `usize::MAX` permits in all,
    /// free and held (it is left as it was).
    pub fn add_permits(&self, n: usize) {
        let woken = {
            let mut state = self.lock();
            let Some(total) = state.total.checked_add(n) else {
                drop(state);
                panic!("a Semaphore may not hold more than usize::MAX permits");
            };
            state.total = total;
            state.avail += n;
            if state.queue.is_empty() {
                return;
            }
            state.grant()
        };
        woken.into_iter().for_each(Unparker::wake);
    }

    #[inline]
    fn try_take(&self, n: usize) -> bool {
        // A yield point, as a channel operation or a lock is: a loop of
        // tries still lets the other green threads of its worker run.
        park::coop_tick();
        let mut state = self.lock();
        if n == 0 || (!state.someone_waits() && state.avail >= n) {
            state.avail -= n;
            return true;
        }
        false
    }

    /// Protocol step 1, then waits to be granted (or for `ctx`).
    #[inline]
    fn take(
        &self,
        n: usize,
        ctx: Option<&Context>,
        at: &'static Location<'static>,
    ) -> Result<(), ContextError> {
        if let Some(err) = ctx.and_then(Context::err) {
            return Err(err);
        }
        park::coop_tick();
        let state = {
            let mut state = self.lock();
            if n == 0 || (!state.someone_waits() && state.avail >= n) {
                state.avail -= n;
                return Ok(());
            }
            state
        };
        self.queue_and_wait(state, n, ctx, at)
    }

    /// [`take`](Self::take)'s slow path: queues (step 1), then waits to be
    /// granted (or for `ctx`).
    #[inline(never)]
    fn queue_and_wait(
        &self,
        mut state: LockGuard<'_, State>,
        n: usize,
        ctx: Option<&Context>,
        at: &'static Location<'static>,
    ) -> Result<(), ContextError> {
        let waiter = {
            let waiter = Arc::new(Waiter {
                n,
                granted: AtomicBool::new(false),
                unparker: park::current_unparker(),
            });
            state.queue.push_back(waiter.clone());
            drop(state);
            waiter
        };
        let mut queued = Queued {
            sem: self,
            waiter,
            armed: true,
        };
        let _hook = ctx.and_then(|c| c.wake_on_cancel(park::current_unparker()));
        let deadline: Option<Instant> = ctx.and_then(Context::deadline);
        loop {
            let granted = queued.waiter.granted.load(Ordering::Acquire);
            if let Some(err) = ctx.and_then(Context::err) {
                // Go prefers failing once the context is done, granted or
                // not: `queued` gives the permits back (step 3).
                return Err(err);
            }
            if granted {
                queued.armed = false;
                return Ok(());
            }
            park::park_with(&ACQUIRE, deadline, at);
        }
    }

    /// Gives `n` permits back (a permit's drop).
    #[inline]
    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = self.lock();
        state.avail += n;
        if state.queue.is_empty() {
            return; // nobody to grant to: the common, uncontended case
        }
        let woken = state.grant();
        drop(state);
        woken.into_iter().for_each(Unparker::wake);
    }

    fn forget_permits(&self, n: usize) {
        let woken = {
            let mut state = self.lock();
            state.total -= n;
            if state.queue.is_empty() {
                return;
            }
            // A smaller semaphore may leave a waiter in front asking for
            // more than it now holds, which holds back nobody.
            state.grant()
        };
        woken.into_iter().for_each(Unparker::wake);
    }
}

impl State {
    /// Whether a waiter that the semaphore could ever serve is queued: a
    /// new request must line up behind it. Waiters asking for more than
    /// the semaphore holds in all do not count (see the type's docs).
    fn someone_waits(&self) -> bool {
        self.queue.iter().any(|w| w.n <= self.total)
    }

    /// Protocol step 2: grants the waiters in front that fit, passing over
    /// those asking for more than the semaphore holds in all; returns whom
    /// to wake once the lock is released.
    fn grant(&mut self) -> Vec<Unparker> {
        let mut woken = Vec::new();
        let mut i = 0;
        while let Some(waiter) = self.queue.get(i) {
            if waiter.n > self.total {
                i += 1;
                continue;
            }
            if waiter.n > self.avail {
                break;
            }
            self.avail -= waiter.n;
            waiter.granted.store(true, Ordering::Release);
            woken.push(waiter.unparker.clone());
            self.queue.remove(i);
        }
        woken
    }
}

/// A waiter in the queue; dropped without being disarmed (the context is
/// done, or the waiter unwinds), it leaves (protocol step 3).
struct Queued<'a> {
    sem: &'a Semaphore,
    waiter: Arc<Waiter>,
    /// Cleared once the waiter took its granted permits.
    armed: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let woken = {
            let mut state = self.sem.lock();
            if self.waiter.granted.load(Ordering::Acquire) {
                state.avail += self.waiter.n;
            } else {
                state.queue.retain(|w| !Arc::ptr_eq(w, &self.waiter));
            }
            // Leaving the front may let the waiters behind in.
            state.grant()
        };
        woken.into_iter().for_each(Unparker::wake);
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permits taken for good (the semaphore shrinks by them).
    pub fn forget(mut self) {
        self.sem.forget_permits(self.n);
        self.n = 0; // the drop gives back nothing
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.n
    }
}

impl Drop for SemaphorePermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.sem.release(self.n);
    }
}

impl OwnedSemaphorePermit {
    /// Keeps the permits taken for good (the semaphore shrinks by them).
    pub fn forget(mut self) {
        self.sem.forget_permits(self.n);
        self.n = 0; // the drop gives back nothing
    }

    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.n
    }

    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }
}

impl Drop for OwnedSemaphorePermit {
    #[inline]
    fn drop(&mut self) {
        self.sem.release(self.n);
    }
}
