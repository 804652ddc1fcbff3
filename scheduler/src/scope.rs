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
//! std. The scope waits on one count (`Count`, modelled with loom).
//!
//! Dropping a runtime while scoped green threads are parked unwinds them
//! before the scope's owner, wherever it is parked (in the scope's wait,
//! or on a channel inside its closure): its worker does not unwind it
//! while a scope it has open has live scoped threads (`Header::open_scope`,
//! `has_live_scoped_threads`), so their destructors still find what they
//! borrow, and `scope`, which catches the owner's unwind as it catches any
//! panic of its closure, finds nothing left to wait for and lets it go on.

use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicPtr;
use std::sync::{Arc, Mutex};
use std::{fmt, io, mem, thread};

use crate::loom::{AtomicUsize, Ordering};
use crate::park::{self, Unparker, WaitReason};
use crate::scheduler::{Handle, SpawnOptions};
use crate::task::Header;
use crate::thread::{JoinHandle, Thread};
use crate::worker;

static SCOPE: WaitReason = WaitReason("thread::scope");

/// Set in `Count::running` once the scope's closure has returned and
/// `scope` waits for the scoped green threads still running.
const WAITING: usize = 1 << (usize::BITS - 1);

/// How `scope` learns that its scoped green threads are done, apart from
/// parking (so that loom can model it, see `loom_tests`): a count of those
/// running, and a flag for the scope waiting, in one word, so that exactly
/// one of them (the last to finish once the scope waits) wakes the scope.
///
/// The scope may return as soon as the count reaches zero. A finishing
/// thread's writes to borrowed data come before its decrement, and what it
/// touches after (the count, the waker) it holds a reference to; see
/// `Finish`.
struct Count {
    /// Scoped green threads not finished (or not dropped unrun), plus
    /// `WAITING`.
    running: AtomicUsize,
}

impl Count {
    fn new() -> Count {
        Count {
            running: AtomicUsize::new(0),
        }
    }

    /// A scoped green thread is about to be spawned.
    fn add(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// A scoped green thread is done; true if the caller must wake the
    /// scope.
    #[must_use]
    fn finish(&self) -> bool {
        self.running.fetch_sub(1, Ordering::AcqRel) == WAITING | 1
    }

    /// The scope's closure has returned: true if it must wait.
    fn start_waiting(&self) -> bool {
        self.running.fetch_or(WAITING, Ordering::AcqRel) != 0
    }

    /// Whether every scoped green thread is done (once waiting).
    fn all_done(&self) -> bool {
        self.running.load(Ordering::Acquire) == WAITING
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed) & !WAITING
    }
}

struct ScopeData {
    count: Count,
    /// The scope that was open in the owner green thread when this one
    /// opened (see `Header::open_scope`), or null.
    outer: AtomicPtr<()>,
    /// Scoped green threads that panicked, less those whose panic a `join`
    /// returned: if any are left when the scope ends, `scope` panics.
    panicked: AtomicUsize,
    main: Unparker,
}

impl ScopeData {
    /// A scoped green thread is done (finished, or dropped unrun).
    fn finish(&self) {
        if self.count.finish() {
            self.main.unpark();
        }
    }
}

/// Marks a scope open in its owner green thread (`Header::open_scope`)
/// for as long as it lives, so that a runtime's shutdown unwinds the
/// owner only after the scoped green threads (see
/// [`has_live_scoped_threads`]). Declared before the wait in `scope`, it is
/// dropped after it, whether `scope` returns or unwinds.
struct Open(Option<NonNull<Header>>);

impl Open {
    fn new(data: &Arc<ScopeData>) -> Open {
        let header = worker::with_current_header(|h| h.map(NonNull::from));
        if let Some(header) = header {
            // SAFETY: the running green thread's own header, alive while it
            // runs (and this guard lives on its stack).
            let header = unsafe { header.as_ref() };
            let outer = header
                .open_scope
                .swap(Arc::as_ptr(data) as *mut (), Ordering::Relaxed);
            data.outer.store(outer, Ordering::Relaxed);
        }
        Open(header)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(header) = self.0 {
            // SAFETY: as in `new`: still the same green thread, running.
            let header = unsafe { header.as_ref() };
            let mine = header.open_scope.load(Ordering::Relaxed);
            // SAFETY: `mine` is this scope's data (scopes close innermost
            // first), alive: `scope` holds it until after this guard.
            let outer = unsafe { &*(mine as *const ScopeData) }
                .outer
                .load(Ordering::Relaxed);
            header.open_scope.store(outer, Ordering::Relaxed);
        }
    }
}

/// Whether the green thread of `header`, suspended, has a scope open whose
/// scoped green threads are not all done. The caller holds its run token
/// (it cannot resume and close its scopes meanwhile).
pub(crate) fn has_live_scoped_threads(header: &Header) -> bool {
    let mut open = header.open_scope.load(Ordering::Relaxed) as *const ScopeData;
    while !open.is_null() {
        // SAFETY: every open scope's data is held by its `scope` frame on
        // the suspended green thread's stack until the scope closes, which
        // needs the run token the caller holds.
        let data = unsafe { &*open };
        if data.count.running() > 0 {
            return true;
        }
        open = data.outer.load(Ordering::Relaxed) as *const ScopeData;
    }
    false
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
/// It holds a reference to the scope's data: the scope may return as soon
/// as the count it gives back reaches zero, before this has woken it.
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
            outer: AtomicPtr::new(ptr::null_mut()),
            panicked: AtomicUsize::new(0),
            main: park::current_unparker(),
        }),
        handle: Handle::current(),
        scope: PhantomData,
        env: PhantomData,
    };
    let _open = Open::new(&scope.data);
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Wait for every scoped green thread, whatever happened above: they
    // borrow from our caller.
    let data = &scope.data;
    if data.count.start_waiting() {
        let at = Location::caller();
        while !data.count.all_done() {
            park::park_with(&SCOPE, None, at);
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

    /// What a scoped green thread borrows: written by it, read by the
    /// scope's owner once the scope has ended.
    type Borrowed = Arc<UnsafeCell<u32>>;

    /// A scoped green thread: it writes what it borrows, then is done.
    fn scoped(count: &Count, woken: &AtomicUsize, borrowed: &Borrowed) {
        // SAFETY: loom checks this access.
        borrowed.with_mut(|b| unsafe { *b += 1 });
        if count.finish() {
            woken.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The scope's end: wait, then read what the scoped threads wrote. Loom
    /// reports a read not ordered after the writes as a data race; the
    /// wait must end in every interleaving, and the scope is woken at most
    /// once, and only if it waited. Returns whether it waited.
    fn end(count: &Count, woken: &AtomicUsize, borrowed: &[Borrowed]) -> bool {
        let waited = count.start_waiting();
        while !count.all_done() {
            // Parking and spinning both come down to looking again.
            thread::yield_now();
        }
        for b in borrowed {
            // SAFETY: loom checks this access.
            assert_eq!(b.with(|b| unsafe { *b }), 1);
        }
        assert!(woken.load(Ordering::Relaxed) <= usize::from(waited));
        waited
    }

    /// Once every scoped thread is through: a scope that waited (it would
    /// have parked) was woken exactly once.
    fn woken_once_if_waited(waited: bool, woken: &AtomicUsize) {
        assert_eq!(woken.load(Ordering::Relaxed), usize::from(waited));
    }

    /// Two scoped green threads finish while the scope starts to wait.
    #[test]
    fn the_scope_ends_after_its_scoped_threads() {
        loom::model(|| {
            let count = Arc::new(Count::new());
            let woken = Arc::new(AtomicUsize::new(0));
            let borrowed: Vec<Borrowed> = (0..2).map(|_| Arc::new(UnsafeCell::new(0))).collect();
            let threads: Vec<_> = borrowed
                .iter()
                .map(|b| {
                    count.add();
                    let (count, woken, b) = (count.clone(), woken.clone(), b.clone());
                    thread::spawn(move || scoped(&count, &woken, &b))
                })
                .collect();
            let waited = end(&count, &woken, &borrowed);
            for t in threads {
                t.join().unwrap();
            }
            woken_once_if_waited(waited, &woken);
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
            let woken = Arc::new(AtomicUsize::new(0));
            let borrowed: Vec<Borrowed> = (0..2).map(|_| Arc::new(UnsafeCell::new(0))).collect();
            count.add();
            let (count2, woken2, outer_b, inner_b) = (
                count.clone(),
                woken.clone(),
                borrowed[0].clone(),
                borrowed[1].clone(),
            );
            let outer = thread::spawn(move || {
                count2.add();
                let (count3, woken3) = (count2.clone(), woken2.clone());
                let inner = thread::spawn(move || scoped(&count3, &woken3, &inner_b));
                scoped(&count2, &woken2, &outer_b);
                inner
            });
            let waited = end(&count, &woken, &borrowed);
            outer.join().unwrap().join().unwrap();
            woken_once_if_waited(waited, &woken);
        });
    }
}
