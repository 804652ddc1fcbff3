//! Scoped green threads: like `std::thread::scope`, they may borrow from the
//! caller's stack, and all of them are joined before `scope` returns.
//!
//! A scoped green thread whose output needs no drop (`()`, numbers,
//! references: most of them) is a plain task running the caller's closure
//! (spawned without the `'static` bound), its output left in the task for
//! `join`: nothing is allocated besides the task, and a guard in the
//! closure counts the thread done. An unjoined output may then be freed
//! with the task after the scope has ended, which is sound because freeing
//! it runs no code. An output with a destructor goes through a packet that
//! the scope waits for, so that it is dropped before the scope ends, as in
//! std. How the scope waits without a scoped thread touching its data
//! after the end is the business of `Count` (modelled with loom).
//!
//! Dropping a runtime while a scope waits on parked scoped green threads
//! unwinds the scoped threads first (the shutdown leaves a task parked in
//! `scope` for last), so that their destructors still find the owner's
//! borrowed data; the owner is woken by the last of them and unwound after.

use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::{Arc, Mutex};
use std::{fmt, io, mem, thread};

use crate::loom::{AtomicU8, AtomicUsize, Ordering};
use crate::park::{self, Unparker, WaitReason};
use crate::scheduler::{Handle, SpawnOptions};
use crate::thread::{JoinHandle, Thread};

/// What a scope's owner waits on (the runtime's shutdown looks for it).
pub(crate) static SCOPE: WaitReason = WaitReason("thread::scope");

/// Set in `Count::running` once the scope's closure has returned and
/// `scope` waits for the scoped green threads still running.
const WAITING: usize = 1 << (usize::BITS - 1);

/// How `scope` learns that its scoped green threads are done, apart from
/// parking (so that loom can model it, see `loom_tests`).
///
/// The scope may return as soon as the count reaches zero, so a finishing
/// thread touches nothing after its decrement, except the one that finds
/// the scope waiting: it wakes the scope, then `release`s, and the scope,
/// having seen the count at zero, waits for that. (Each scoped thread also
/// holds a reference to the scope's data, for a runtime's shutdown, which
/// unwinds green threads in its own order; see `Finish`.)
struct Count {
    /// Scoped green threads not finished (or not dropped unrun), plus
    /// `WAITING`.
    running: AtomicUsize,
    /// Set by the last scoped green thread to finish after `WAITING` was
    /// set, once it has woken the scope: its last touch of the data.
    released: AtomicU8,
}

/// Where the waiting scope stands.
#[derive(Debug, PartialEq, Eq)]
enum Wait {
    /// Every scoped green thread is done and touches nothing any more.
    Done,
    /// The last one is between its decrement and `release`, on another
    /// thread, without blocking: wait it out.
    Releasing,
    /// Some are running: park (the last one wakes the scope).
    Running,
}

impl Count {
    fn new() -> Count {
        Count {
            running: AtomicUsize::new(0),
            released: AtomicU8::new(0),
        }
    }

    /// A scoped green thread is about to be spawned.
    fn add(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// A scoped green thread is done; true if the caller must wake the
    /// scope and then call `release` (and touch nothing after).
    #[must_use]
    fn finish(&self) -> bool {
        self.running.fetch_sub(1, Ordering::AcqRel) == WAITING | 1
    }

    fn release(&self) {
        self.released.store(1, Ordering::Release);
    }

    /// The scope's closure has returned: true if it must wait.
    fn start_waiting(&self) -> bool {
        self.running.fetch_or(WAITING, Ordering::AcqRel) != 0
    }

    fn wait_state(&self) -> Wait {
        if self.released.load(Ordering::Acquire) != 0 {
            Wait::Done
        } else if self.running.load(Ordering::Acquire) == WAITING {
            Wait::Releasing
        } else {
            Wait::Running
        }
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed) & !WAITING
    }
}

struct ScopeData {
    count: Count,
    /// Scoped green threads that panicked, less those whose panic a `join`
    /// returned: if any are left when the scope ends, `scope` panics.
    panicked: AtomicUsize,
    main: Unparker,
}

impl ScopeData {
    /// A scoped green thread is done (finished, or dropped unrun); see
    /// [`Count`] for why nothing touches `self` after the decrement.
    fn finish(&self) {
        if self.count.finish() {
            self.main.unpark();
            self.count.release();
        }
    }
}

/// A scope to spawn scoped green threads in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    handle: Handle,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// An owned permission to join a scoped green thread.
pub struct ScopedJoinHandle<'scope, T>(Inner<'scope, T>);

enum Inner<'scope, T> {
    /// The result is the green thread's own output (a `T` that needs no
    /// drop): nothing is allocated besides the task.
    Direct {
        inner: JoinHandle<T>,
        scope: &'scope ScopeData,
    },
    /// The result goes through a packet that the scope waits for, so that
    /// a `T` with a destructor is dropped before the scope ends.
    Packet {
        inner: JoinHandle<()>,
        packet: Arc<Packet<'scope, T>>,
    },
}

/// Counts a scoped green thread done when dropped: after its closure ran
/// (a panic included) or, unrun, after its captures were dropped.
///
/// It holds a reference to the scope's data, although `scope` does not
/// return before every `Finish` is dropped: a runtime's shutdown unwinds
/// its parked green threads in no set order, so a scope's owner may be
/// unwound past `scope` while a scoped green thread is still parked, and
/// that one's `Finish` must then find the data still there.
struct Finish(Arc<ScopeData>);

impl Drop for Finish {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.panicked.fetch_add(1, Ordering::Relaxed);
        }
        self.0.finish();
    }
}

/// Where a scoped green thread leaves a result that needs dropping. When
/// the last reference is gone the scope counts the thread as finished.
struct Packet<'scope, T> {
    scope: Arc<ScopeData>,
    result: Mutex<Option<thread::Result<T>>>,
    _marker: PhantomData<Option<&'scope ScopeData>>,
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        let result = self.result.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(result, Some(Err(_))) {
            self.scope.panicked.fetch_add(1, Ordering::Relaxed);
        }
        // The result may hold borrowed data: drop it before the scope can
        // end, i.e. before the count goes down.
        drop(result.take());
        self.scope.finish();
    }
}

/// Creates a scope for spawning green threads that borrow from the caller.
///
/// Every green thread spawned in the scope is joined before this returns.
/// If one panicked and was not joined, `scope` panics after joining them
/// all. Scoped green threads run on the caller's runtime (the global one
/// when called from an OS thread).
///
/// ```
/// let mut counts = vec![0; 4];
/// grove_scheduler::scope::scope(|s| {
///     for c in counts.iter_mut() {
///         s.spawn(move || *c += 1);
///     }
/// });
/// assert_eq!(counts, [1, 1, 1, 1]);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            count: Count::new(),
            panicked: AtomicUsize::new(0),
            main: park::current_unparker(),
        }),
        handle: Handle::current(),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Wait for every scoped green thread, whatever happened above: they
    // borrow from our caller.
    let data = &scope.data;
    if data.count.start_waiting() {
        let at = Location::caller();
        loop {
            match data.count.wait_state() {
                Wait::Done => break,
                Wait::Releasing => {
                    std::hint::spin_loop();
                    std::thread::yield_now();
                }
                Wait::Running => park::park_with(&SCOPE, None, at),
            }
        }
    }
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if data.panicked.load(Ordering::Acquire) != 0 => {
            panic!("a scoped green thread panicked")
        }
        Ok(value) => value,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a scoped green thread. Panics if it cannot be spawned (see
    /// [`Scope::spawn_with`] for the error).
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_with(SpawnOptions::default(), Location::caller(), f)
            .unwrap_or_else(|err| panic!("failed to spawn a scoped green thread: {err}"))
    }

    /// Spawns a scoped green thread with options.
    pub fn spawn_with<F, T>(
        &'scope self,
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.data.count.add();
        if !mem::needs_drop::<T>() {
            // A tuple drops in field order: if the body is dropped unrun,
            // `f`'s captures go before the guard that lets the scope end.
            let captures = (f, Finish(Arc::clone(&self.data)));
            let body = move || {
                let (f, finish) = captures;
                let value = f();
                drop(finish);
                value
            };
            // On an error the body was dropped, and its `Finish` with it.
            // SAFETY: `scope` does not return, nor unwind past the borrowed
            // data (a panic in its closure is caught and waited past),
            // before the body's `Finish` is dropped, which happens after
            // the body ran or was dropped unrun; the output, left in the
            // task if nobody joins it, needs no drop. A runtime's shutdown
            // unwinds the scoped threads before the scope's owner (see the
            // module docs).
            let inner = unsafe { self.handle.shared().spawn_unchecked(opts, location, body) }?;
            return Ok(ScopedJoinHandle(Inner::Direct {
                inner,
                scope: &self.data,
            }));
        }
        let packet = Arc::new(Packet {
            scope: self.data.clone(),
            result: Mutex::new(None),
            _marker: PhantomData,
        });
        // As above: `f`'s captures go before the packet.
        let captures = (f, packet.clone());
        let body = move || {
            let (f, their_packet) = captures;
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            *their_packet
                .result
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(result);
            drop(their_packet);
        };
        // SAFETY: as above, with the packet in place of `Finish`; the
        // result, which may need dropping, is dropped with the packet,
        // before the scope ends.
        let inner = unsafe { self.handle.shared().spawn_unchecked(opts, location, body) }?;
        Ok(ScopedJoinHandle(Inner::Packet { inner, packet }))
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.count.running())
            .finish_non_exhaustive()
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the scoped green thread and returns its result.
    #[track_caller]
    pub fn join(self) -> thread::Result<T> {
        match self.0 {
            Inner::Direct { inner, scope } => {
                let result = inner.join();
                if result.is_err() {
                    // This panic is handed over: the scope need not raise it.
                    // (Saturating: a green thread unwound unrun by its
                    // runtime's shutdown joins as `Err` without a count.)
                    let _ =
                        scope
                            .panicked
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            });
                }
                result
            }
            Inner::Packet { inner, packet } => {
                let outcome = inner.join();
                let result = packet
                    .result
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                match (result, outcome) {
                    (Some(result), _) => result,
                    (None, Err(payload)) => Err(payload),
                    (None, Ok(())) => {
                        unreachable!("a finished scoped green thread left its result")
                    }
                }
            }
        }
    }

    /// Whether the scoped green thread has finished.
    pub fn is_finished(&self) -> bool {
        match &self.0 {
            Inner::Direct { inner, .. } => inner.is_finished(),
            Inner::Packet { inner, .. } => inner.is_finished(),
        }
    }

    /// The green thread's handle.
    pub fn thread(&self) -> &Thread {
        match &self.0 {
            Inner::Direct { inner, .. } => inner.thread(),
            Inner::Packet { inner, .. } => inner.thread(),
        }
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("thread", self.thread())
            .finish_non_exhaustive()
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// A scoped green thread's end, as `ScopeData::finish` does it, with
    /// `gone` standing for the scope's data: the one that wakes the scope
    /// reads it.
    fn finish(count: &Count, gone: &UnsafeCell<bool>) {
        if count.finish() {
            // SAFETY: loom checks this access.
            assert!(!gone.with(|g| unsafe { *g }));
            count.release();
        }
    }

    /// The scope's end: wait, then free the data (`gone`). Loom reports a
    /// finishing thread's read not ordered before this write as a data
    /// race, and the wait must end in every interleaving.
    fn end(count: &Count, gone: &UnsafeCell<bool>) {
        if count.start_waiting() {
            while count.wait_state() != Wait::Done {
                // Parking and spinning both come down to looking again.
                thread::yield_now();
            }
        }
        // SAFETY: loom checks this access.
        gone.with_mut(|g| unsafe { *g = true });
    }

    /// Two scoped green threads finish while the scope starts to wait.
    #[test]
    fn no_finisher_touches_the_scope_after_it_ends() {
        loom::model(|| {
            let count = Arc::new(Count::new());
            let gone = Arc::new(UnsafeCell::new(false));
            let finishers: Vec<_> = (0..2)
                .map(|_| {
                    count.add();
                    let (count, gone) = (count.clone(), gone.clone());
                    thread::spawn(move || finish(&count, &gone))
                })
                .collect();
            end(&count, &gone);
            for f in finishers {
                f.join().unwrap();
            }
        });
    }

    /// A scoped green thread spawns another and finishes first: the scope
    /// still waits for the nested one. (Three threads: the preemptions
    /// are bounded to keep the model to seconds.)
    #[test]
    fn a_nested_spawn_is_waited_for() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let count = Arc::new(Count::new());
            let gone = Arc::new(UnsafeCell::new(false));
            count.add();
            let (count2, gone2) = (count.clone(), gone.clone());
            let outer = thread::spawn(move || {
                count2.add();
                let (count3, gone3) = (count2.clone(), gone2.clone());
                let inner = thread::spawn(move || finish(&count3, &gone3));
                finish(&count2, &gone2);
                inner
            });
            end(&count, &gone);
            outer.join().unwrap().join().unwrap();
        });
    }
}
