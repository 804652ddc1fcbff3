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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            monitor: Monitor::new(()),
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OnceLock").field(&self.get()).finish()
    }
}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            once: Once::new(),
            value: std::sync::OnceLock::new(),
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
