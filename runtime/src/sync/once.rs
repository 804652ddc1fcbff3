//! `Once`, `OnceLock`: one-time initialisation; later callers park (green)
//! or block (OS) until it is done.

use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicU8, Ordering};

use grove_scheduler::park::WaitReason;

use super::monitor::Monitor;

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;
const POISONED: u8 = 3;

static ONCE: WaitReason = WaitReason("Once::call_once");

/// Runs a closure exactly once, like `std::sync::Once`.
///
/// ```
/// use grove_runtime::sync::Once;
/// static INIT: Once = Once::new();
/// let mut runs = 0;
/// INIT.call_once(|| runs += 1);
/// INIT.call_once(|| runs += 1);
/// assert_eq!(runs, 1);
/// ```
pub struct Once {
    state: AtomicU8,
    monitor: Monitor<()>,
}

/// What [`Once::call_once_force`]'s closure is told.
#[derive(Debug)]
pub struct OnceState {
    poisoned: bool,
}

impl OnceState {
    /// True if an earlier initialisation panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

impl fmt::Debug for Once {
    /// `Once { .. }`, as std's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").finish_non_exhaustive()
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl Once {
    const_unless_loom! {
        /// A `Once` that has not run.
        pub fn new() -> Once {
            Once {
                state: AtomicU8::new(INCOMPLETE),
                monitor: Monitor::new(()),
            }
        }
    }

    /// Runs `f` if no call has completed yet; every caller returns after
    /// one has. Panics if an earlier `f` panicked (the `Once` is poisoned).
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        self.call(false, Location::caller(), &mut |_| {
            (f.take().expect("runs once"))()
        });
    }

    /// Like [`call_once`](Self::call_once), but runs even if poisoned.
    #[track_caller]
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        self.call(true, Location::caller(), &mut |state| {
            (f.take().expect("runs once"))(state)
        });
    }

    /// Whether a call completed.
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    /// Waits until a call has completed, running nothing itself (std's
    /// `Once::wait`). Parks a green caller; blocks an OS thread.
    ///
    /// # Panics
    ///
    /// If the `Once` is poisoned (a call panicked), as std's.
    #[track_caller]
    pub fn wait(&self) {
        let at = Location::caller();
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                POISONED => panic!("Once instance has previously been poisoned"),
                _ => {
                    let _ = self.monitor.wait_until(&ONCE, None, at, |_| {
                        matches!(self.state.load(Ordering::Acquire), COMPLETE | POISONED)
                            .then_some(())
                    });
                }
            }
        }
    }

    /// Waits until a call has completed, running nothing itself, and
    /// whether or not an earlier call panicked (std's `Once::wait_force`):
    /// it returns once a [`call_once_force`](Self::call_once_force)
    /// completes a poisoned `Once`. Parks a green caller; blocks an OS
    /// thread.
    #[track_caller]
    pub fn wait_force(&self) {
        let at = Location::caller();
        while !self.is_completed() {
            let _ = self
                .monitor
                .wait_until(&ONCE, None, at, |_| self.is_completed().then_some(()));
        }
    }

    fn call(
        &self,
        ignore_poison: bool,
        at: &'static Location<'static>,
        f: &mut dyn FnMut(&OnceState),
    ) {
        loop {
            match self.state.load(Ordering::Acquire) {
                COMPLETE => return,
                POISONED if !ignore_poison => panic!("Once instance has previously been poisoned"),
                RUNNING => {
                    let _ = self.monitor.wait_until(&ONCE, None, at, |_| {
                        (self.state.load(Ordering::Acquire) != RUNNING).then_some(())
                    });
                }
                prev => {
                    if self
                        .state
                        .compare_exchange(prev, RUNNING, Ordering::Acquire, Ordering::Acquire)
                        .is_err()
                    {
                        continue;
                    }
                    let state = OnceState {
                        poisoned: prev == POISONED,
                    };
                    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&state)));
                    let end = if result.is_ok() { COMPLETE } else { POISONED };
                    self.monitor.update_and_notify(usize::MAX, |_| {
                        self.state.store(end, Ordering::Release);
                    });
                    if let Err(payload) = result {
                        panic::resume_unwind(payload);
                    }
                    return;
                }
            }
        }
    }
}

/// A cell written once, like `std::sync::OnceLock`; concurrent
/// initialisers park until the winner is done.
///
/// ```
/// use grove_runtime::sync::OnceLock;
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// assert_eq!(CONFIG.get_or_init(|| "ready".to_string()), "ready");
/// assert_eq!(CONFIG.get().map(String::as_str), Some("ready"));
/// ```
pub struct OnceLock<T> {
    once: Once,
    value: std::sync::OnceLock<T>,
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    /// `OnceLock(value)`, or `OnceLock(<uninit>)` while empty, as std's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

impl<T> OnceLock<T> {
    const_unless_loom! {
        /// An empty cell.
        pub fn new() -> OnceLock<T> {
            OnceLock {
                once: Once::new(),
                value: std::sync::OnceLock::new(),
            }
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.value.get()
    }

    /// The value, through a unique borrow.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut()
    }

    /// Sets the value if empty; otherwise gives it back.
    #[track_caller]
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.once.call_once_force(|_| {
            let _ = self.value.set(value.take().expect("set once"));
        });
        match value {
            Some(v) => Err(v),
            None => Ok(()),
        }
    }

    /// The value, initialised by `f` if empty. Exactly one initialiser runs
    /// at a time; if it panics, the cell stays empty and a later caller
    /// tries again.
    #[track_caller]
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(v) = self.value.get() {
            return v;
        }
        self.once.call_once_force(|_| {
            if self.value.get().is_none() {
                let _ = self.value.set(f());
            }
        });
        self.value.get().expect("initialised above")
    }

    /// Waits until the cell is set, and returns the value (std's
    /// `OnceLock::wait`). An initialiser that panics leaves the cell empty:
    /// the wait goes on for the next. Parks a green caller; blocks an OS
    /// thread.
    #[track_caller]
    pub fn wait(&self) -> &T {
        let at = Location::caller();
        loop {
            if let Some(v) = self.value.get() {
                return v;
            }
            // Every set goes through `once`, which notifies when it ends.
            let _ = self
                .once
                .monitor
                .wait_until(&ONCE, None, at, |_| self.value.get().map(|_| ()));
        }
    }

    /// The value, if set.
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        self.once = Once::new();
        self.value.take()
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        match self.get() {
            Some(v) => OnceLock::from(v.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        cell
    }
}

/// A value initialised on first use, like `std::sync::LazyLock`: the
/// first to dereference it runs `f`; concurrent first users park (a green
/// thread) or block (an OS thread) until it is done, instead of blocking
/// their worker as std's would.
///
/// If `f` panics, the `LazyLock` is poisoned: every later use panics too
/// (std's rule).
///
/// ```
/// use grove_runtime::sync::LazyLock;
/// use std::collections::HashMap;
///
/// static PRIMES: LazyLock<HashMap<u32, bool>> =
///     LazyLock::new(|| (1..20).map(|n| (n, (2..n).all(|d| n % d != 0))).collect());
///
/// let found = grove_runtime::go(|| PRIMES[&7]).join().unwrap();
/// assert!(found && !PRIMES[&9]);
/// ```
///
/// Shared between threads only for `Sync` data, as std's:
///
/// ```compile_fail,E0277
/// fn shared<T: Sync>(_: &T) {}
/// let lazy = grove_runtime::sync::LazyLock::new(|| std::cell::Cell::new(1));
/// shared(&lazy);
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    cell: OnceLock<T>,
    /// The initialiser, taken by the one call that runs it (inside the
    /// cell's `Once`, so never contended; a `std` mutex keeps this free of
    /// `unsafe`).
    init: std::sync::Mutex<Option<F>>,
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    const_unless_loom! {
        /// A `LazyLock` that will run `f` on first use.
        pub fn new(f: F) -> LazyLock<T, F> {
            LazyLock {
                cell: OnceLock::new(),
                init: std::sync::Mutex::new(Some(f)),
            }
        }
    }

    /// Runs the initialiser if nobody has yet, and returns the value
    /// (std's `LazyLock::force`).
    ///
    /// # Panics
    ///
    /// If the initialiser panicked, in this call or an earlier one.
    #[track_caller]
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.cell.get_or_init(|| {
            let f = this.init.lock().unwrap_or_else(|e| e.into_inner()).take();
            match f {
                Some(f) => f(),
                None => panic!("LazyLock instance has previously been poisoned"),
            }
        })
    }
}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// Runs the initialiser if nobody has yet, and returns the value
    /// mutably (std's `LazyLock::force_mut`).
    ///
    /// # Panics
    ///
    /// If the initialiser panicked, in this call or an earlier one.
    #[track_caller]
    pub fn force_mut(this: &mut LazyLock<T, F>) -> &mut T {
        LazyLock::force(this);
        this.cell.get_mut().expect("initialised by force")
    }
}

impl<T, F> LazyLock<T, F> {
    /// The value if it is initialised, without running the initialiser
    /// (std's `LazyLock::get`).
    pub fn get(this: &LazyLock<T, F>) -> Option<&T> {
        this.cell.get()
    }

    /// The value mutably if it is initialised, without running the
    /// initialiser (std's `LazyLock::get_mut`).
    pub fn get_mut(this: &mut LazyLock<T, F>) -> Option<&mut T> {
        this.cell.get_mut()
    }
}

impl<T, F: FnOnce() -> T> std::ops::Deref for LazyLock<T, F> {
    type Target = T;

    #[track_caller]
    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T, F: FnOnce() -> T> std::ops::DerefMut for LazyLock<T, F> {
    #[track_caller]
    fn deref_mut(&mut self) -> &mut T {
        LazyLock::force_mut(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    /// A `LazyLock` of `T::default()`.
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    /// `LazyLock(value)`, or `LazyLock(<uninit>)` before first use, as
    /// std's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match self.cell.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
