//! Scoped green threads: like `std::thread::scope`, they may borrow from the
//! caller's stack, and all of them are joined before `scope` returns.
//!
//! A scoped green thread whose output needs no drop (`()`, numbers,
//! references: most of them) is a plain task running the caller's closure
//! (spawned without the `'static` bound), its output left in the task for
//! `join`: nothing is allocated besides the task, and a guard in the
//! closure counts the thread done. An unjoined output may then be freed
//! with the task after the scope has ended, which is sound because freeing
//! it runs no code. An output with a destructor goes through a result slot (`ResultSlot`) that
//! the scope waits for, so that it is dropped before the scope ends, as in
//! std. The scope waits on one count (`Count`, modelled with loom).
//!
//! Spawning writes nothing that the scoped threads write: every scoped
//! thread decrements the count as it finishes, so a spawner that also
//! incremented it would pull that cache line back across cores on every
//! spawn. The scope's owner (the green thread that opened it, which does
//! nearly all the spawning) takes the count up `BATCH` at a time and hands
//! out the increments from its own word (`ScopeData::credit`), giving back
//! those left over when its closure returns; and a scoped thread holds a
//! plain pointer to the scope's data, not a reference-counted one, because
//! the scope's end waits for the last finisher to be done with the data
//! (`Count::release`), not only for the count to reach zero.
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

use crossbeam_utils::{Backoff, CachePadded};

use crate::loom::{AtomicUsize, Ordering};
use crate::park::{self, Unparker, WaitReason};
use crate::scheduler::{Handle, SpawnOptions};
use crate::task::Header;
use crate::thread::{JoinHandle, Thread};
use crate::worker;

static SCOPE: WaitReason = WaitReason("thread::scope");

/// Set in `Count::running` once the scope's closure has returned and
/// `scope` waits for the scoped green threads still running.
const SCOPE_WAITS: usize = 1 << (usize::BITS - 1);

/// Increments the owner of a scope takes at a time (see the module docs).
const BATCH: usize = 64;

/// How `scope` learns that its scoped green threads are done, apart from
/// parking (so that loom can model it, see `loom_tests`): a count of those
/// running, and a flag for the scope waiting, in one word, so that exactly
/// one of them (the last to finish once the scope waits) wakes the scope.
///
/// A finishing thread's writes to borrowed data come before its
/// decrement. The one whose decrement ends the wait goes on to wake the
/// scope and then sets `released`; the scope, once it sees the count at
/// zero, waits for that too before it returns and frees the data.
struct Count {
    /// Scoped green threads not finished (or not dropped unrun), plus
    /// increments taken ahead by the owner and not handed out yet, plus
    /// `SCOPE_WAITS`.
    running: AtomicUsize,
    /// Set (1) by the thread that woke the waiting scope, once it no
    /// longer touches the scope's data.
    released: AtomicUsize,
}

impl Count {
    fn new() -> Count {
        Count {
            running: AtomicUsize::new(0),
            released: AtomicUsize::new(0),
        }
    }

    /// `n` scoped green threads are about to be spawned (or `n` increments
    /// taken ahead).
    fn add(&self, n: usize) {
        self.running.fetch_add(n, Ordering::Relaxed);
    }

    /// A scoped green thread is done; true if the caller must wake the
    /// scope, and then `release` it.
    #[must_use]
    fn finish(&self) -> bool {
        self.running.fetch_sub(1, Ordering::AcqRel) == SCOPE_WAITS | 1
    }

    /// The thread that woke the scope is done with the scope's data.
    fn release(&self) {
        self.released.store(1, Ordering::Release);
    }

    /// The scope's closure has returned, leaving `unused` increments taken
    /// ahead: true if the scope must wait (for `all_done`, then for
    /// `released`).
    fn start_waiting(&self, unused: usize) -> bool {
        let delta = SCOPE_WAITS.wrapping_sub(unused);
        let before = self.running.fetch_add(delta, Ordering::AcqRel);
        before.wrapping_add(delta) != SCOPE_WAITS
    }

    /// Whether every scoped green thread is done (once waiting).
    fn all_done(&self) -> bool {
        self.running.load(Ordering::Acquire) == SCOPE_WAITS
    }

    /// Whether the thread that woke the scope is done with its data.
    fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire) != 0
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed) & !SCOPE_WAITS
    }
}

struct ScopeData {
    /// Written by every finishing scoped thread: a line of its own.
    count: CachePadded<Count>,
    /// Increments of `count` taken ahead by the owner, not handed out yet;
    /// only the owner writes it.
    credit: AtomicUsize,
    /// The green thread that opened the scope (`None`: an OS thread).
    owner: Option<NonNull<Header>>,
    /// The scope that was open in the owner green thread when this one
    /// opened (see `Header::open_scope`), or null.
    outer: AtomicPtr<()>,
    /// Scoped green threads that panicked, less those whose panic a `join`
    /// returned: if any are left when the scope ends, `scope` panics.
    panicked: AtomicUsize,
    /// Scoped green threads whose body has finished but whose result
    /// slot is still held (by an unjoined `ScopedJoinHandle`): counted in
    /// `count` until the slot goes, yet no longer running. Only a
    /// runtime's shutdown reads it (see [`has_live_scoped_threads`]).
    finished_slots: AtomicUsize,
    main: Unparker,
}

// SAFETY: `owner` is only compared with the running green thread's header,
// never dereferenced; every other field is Send and Sync.
unsafe impl Send for ScopeData {}
// SAFETY: as above.
unsafe impl Sync for ScopeData {}

impl ScopeData {
    /// Counts a scoped green thread about to be spawned: from the owner's
    /// credit if the caller is the owner, else on the shared count.
    fn reserve(&self) {
        let me = worker::with_current_header(|h| h.map(NonNull::from));
        if me.is_none() || me != self.owner {
            self.count.add(1);
            return;
        }
        // Only the owner writes `credit`: no read-modify-write needed.
        match self.credit.load(Ordering::Relaxed) {
            0 => {
                self.count.add(BATCH);
                self.credit.store(BATCH - 1, Ordering::Relaxed);
            }
            left => self.credit.store(left - 1, Ordering::Relaxed),
        }
    }

    /// Scoped green threads not done, their unjoined result slots
    /// included (for diagnostics).
    fn live(&self) -> usize {
        // Credit first: while the owner is suspended it does not change,
        // and a spawn elsewhere only ever raises the count first.
        let credit = self.credit.load(Ordering::Relaxed);
        self.count.running().saturating_sub(credit)
    }

    /// Scoped green threads whose body may still run or be dropped unrun:
    /// [`ScopeData::live`] less the finished ones whose slot an unjoined
    /// handle holds (the owner holds those handles: waiting for them would
    /// wait for the owner itself). Never less than the true number: the
    /// count is read before `finished_slots`, and a slot leaves
    /// `finished_slots` before it leaves the count (see `SlotRef::drop`).
    fn running_tasks(&self) -> usize {
        let live = self.live();
        live.saturating_sub(self.finished_slots.load(Ordering::Acquire))
    }

    /// A scoped green thread is done (finished, or dropped unrun). Touches
    /// nothing of the scope's data after its decrement unless it is the
    /// one to wake the scope, which waits for its `release`.
    fn finish(&self) {
        if self.count.finish() {
            self.main.unpark();
            self.count.release();
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

/// Whether the green thread of `header`, suspended, has a scope open with
/// scoped green threads that may still run (or be dropped unrun): until
/// they are done, unwinding it would free what they borrow. Finished
/// scoped threads whose result an unjoined handle holds do not count: the
/// owner's own unwind drops those handles. The caller holds its run token
/// (it cannot resume and close its scopes meanwhile).
pub(crate) fn has_live_scoped_threads(header: &Header) -> bool {
    let mut open = header.open_scope.load(Ordering::Relaxed) as *const ScopeData;
    while !open.is_null() {
        // SAFETY: every open scope's data is held by its `scope` frame on
        // the suspended green thread's stack until the scope closes, which
        // needs the run token the caller holds.
        let data = unsafe { &*open };
        if data.running_tasks() > 0 {
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

// As std's `Scope`: a panic caught around a use of `&Scope` leaves nothing
// half changed that a caller could see (its state is the scoped threads'
// count, kept by atomics, and the runtime's handle). Not `UnwindSafe`, as
// std's is not (it holds `&mut` markers).
impl std::panic::RefUnwindSafe for Scope<'_, '_> {}

/// An owned permission to join a scoped green thread.
pub struct ScopedJoinHandle<'scope, T>(Inner<'scope, T>);

enum Inner<'scope, T> {
    /// The result is the green thread's own output (a `T` that needs no
    /// drop): nothing is allocated besides the task.
    Direct {
        inner: JoinHandle<T>,
        scope: &'scope ScopeData,
    },
    /// The result goes through a slot that the scope waits for, so that
    /// a `T` with a destructor is dropped before the scope ends.
    Slot {
        inner: JoinHandle<()>,
        slot: SlotRef<'scope, T>,
    },
}

/// Counts a scoped green thread done when dropped: after its closure ran
/// (a panic included) or, unrun, after its captures were dropped.
///
/// It points to the scope's data without holding a reference (see the
/// module docs): the scope does not end before this has counted itself
/// done and, if it woke the scope, released it.
struct Finish {
    data: NonNull<ScopeData>,
    /// The closure started: a panic while this drops is its panic. Unrun,
    /// it may still be dropped on a panicking thread (a spawn from a
    /// destructor during a runtime's shutdown is dropped at once), which
    /// is no panic of the scoped thread's.
    ran: bool,
}

// SAFETY: a pointer to Sync data, which the scope keeps alive until every
// `Finish` is done with it (see `ScopeData::finish`).
unsafe impl Send for Finish {}

impl Drop for Finish {
    fn drop(&mut self) {
        // SAFETY: the scope's data lives until this has counted itself done
        // (and released the scope, if it woke it): see `scope`.
        let data = unsafe { self.data.as_ref() };
        if self.ran && thread::panicking() {
            data.panicked.fetch_add(1, Ordering::Relaxed);
        }
        data.finish();
    }
}

/// Armed once the scope waits for its scoped threads: when dropped (the
/// wait over, or unwound by a runtime's shutdown) it waits until the
/// thread that woke the scope is done with the scope's data
/// (`Count::release`), which is then free to go.
struct AwaitRelease<'a>(&'a Arc<ScopeData>);

impl Drop for AwaitRelease<'_> {
    fn drop(&mut self) {
        let count = &self.0.count;
        if !count.all_done() {
            // Unwound with scoped threads still live: only when a worker
            // was given up at shutdown (see `has_live_scoped_threads`).
            // Their `Finish` may yet run: the data stays, leaked.
            mem::forget(Arc::clone(self.0));
            return;
        }
        // The last scoped thread brought the count to zero and is between
        // its decrement and its release: a few instructions, unless its OS
        // thread was preempted.
        let backoff = Backoff::new();
        while !count.is_released() {
            if backoff.is_completed() {
                thread::yield_now();
            } else {
                backoff.snooze();
            }
        }
    }
}

/// Where a scoped green thread leaves a result that needs dropping. When
/// the last reference is gone the scope counts the thread as finished.
///
/// A finished thread whose result waits for an unjoined handle is counted
/// in `ScopeData::finished_slots` (see [`ScopeData::running_tasks`]) only
/// while that handle lives: whoever drops the result last is then a
/// running thread holding the handle (the owner, or a scoped thread it
/// was given to). A result the body must drop itself, its handle gone
/// first, is never counted there: dropping it, the body still runs. (It
/// was counted as the body finished; the runtime's shutdown could then
/// unwind the owner past the scope, freeing what the result's destructor,
/// still running, borrowed.)
struct ResultSlot<'scope, T> {
    scope: Arc<ScopeData>,
    state: Mutex<SlotState<T>>,
    _marker: PhantomData<Option<&'scope ScopeData>>,
}

struct SlotState<T> {
    result: Option<thread::Result<T>>,
    /// The handle has not let go yet (dropped or joined).
    handle: bool,
    /// Counted in `ScopeData::finished_slots`.
    counted: bool,
}

impl<T> ResultSlot<'_, T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState<T>> {
        // Nothing panics under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body leaves its result, about to let go of the slot.
    fn body_finished(&self, result: thread::Result<T>) {
        let mut state = self.lock();
        state.result = Some(result);
        if state.handle {
            self.scope.finished_slots.fetch_add(1, Ordering::Release);
            state.counted = true;
        }
    }

    /// The handle lets go: the result, if the body left it, and whether
    /// the slot was counted as finished (the caller takes it off after
    /// the result is dropped or handed out). Again: nothing.
    fn let_go(&self) -> (Option<thread::Result<T>>, bool) {
        let mut state = self.lock();
        state.handle = false;
        (state.result.take(), mem::take(&mut state.counted))
    }
}

/// A scoped result is dropped as a green thread's (`task::drop_output`),
/// with the same abort if its destructor panics, as std's scoped threads.
const SCOPED: &str = "scoped green thread";

impl<T> Drop for ResultSlot<'_, T> {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        debug_assert!(!state.counted, "a counted slot is let go by its handle");
        let result = state.result.take();
        if matches!(result, Some(Err(_))) {
            self.scope.panicked.fetch_add(1, Ordering::Relaxed);
        }
        // The result may hold borrowed data: drop it before the scope can
        // end, i.e. before the count goes down (also if a forced unwind
        // leaves the destructor: it no longer runs then).
        let _finish = Finished(&self.scope);
        crate::task::drop_output(result, SCOPED);
    }
}

/// Counts the slot's thread done when dropped.
struct Finished<'a>(&'a ScopeData);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Takes a slot off `finished_slots` when dropped.
struct Uncount<'a>(Option<&'a ScopeData>);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        if let Some(scope) = self.0 {
            // Before the count goes down (see `ScopeData::running_tasks`).
            scope.finished_slots.fetch_sub(1, Ordering::Release);
        }
    }
}

/// A handle's reference to its thread's result slot.
struct SlotRef<'scope, T>(Arc<ResultSlot<'scope, T>>);

impl<T> Drop for SlotRef<'_, T> {
    /// An unjoined handle dropped: drops the result if the body left it
    /// (while the slot is still counted as finished, this thread running),
    /// then takes the slot off `finished_slots`.
    fn drop(&mut self) {
        let (result, counted) = self.0.let_go();
        if matches!(result, Some(Err(_))) {
            self.0.scope.panicked.fetch_add(1, Ordering::Relaxed);
        }
        let _uncount = Uncount(counted.then_some(&*self.0.scope));
        crate::task::drop_output(result, SCOPED);
    }
}

/// Creates a scope for spawning green threads that borrow from the caller.
///
/// Every green thread spawned in the scope is joined before this returns.
/// If one panicked and was not joined, `scope` panics after joining them
/// all. Scoped green threads run on the caller's runtime (the global one
/// when called from an OS thread). An unjoined result is dropped before
/// `scope` returns; one whose destructor panics aborts the process, as
/// with `std::thread::scope`.
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
            count: CachePadded::new(Count::new()),
            credit: AtomicUsize::new(0),
            owner: worker::with_current_header(|h| h.map(NonNull::from)),
            outer: AtomicPtr::new(ptr::null_mut()),
            panicked: AtomicUsize::new(0),
            finished_slots: AtomicUsize::new(0),
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
    // Only the owner (this thread) writes the credit, and its closure is done.
    let unused = data.credit.swap(0, Ordering::Relaxed);
    if data.count.start_waiting(unused) {
        // Declared after `scope`, so dropped before it, also when a
        // runtime's shutdown unwinds us out of the park below (which it
        // does only once no scoped thread is live, see
        // `has_live_scoped_threads`).
        let _released = AwaitRelease(data);
        let at = Location::caller();
        while !data.count.all_done() {
            park::park_with(&SCOPE, None, at);
        }
    }
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if data.panicked.load(Ordering::Acquire) != 0 => {
            panic!("a scoped thread panicked")
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
        self.data.reserve();
        if !mem::needs_drop::<T>() {
            // A tuple drops in field order: if the body is dropped unrun,
            // `f`'s captures go before the guard that lets the scope end.
            let finish = Finish {
                data: NonNull::from(&*self.data),
                ran: false,
            };
            let captures = (f, finish);
            let body = move || {
                let (f, mut finish) = captures;
                finish.ran = true;
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
        let slot = Arc::new(ResultSlot {
            scope: self.data.clone(),
            state: Mutex::new(SlotState {
                result: None,
                handle: true,
                counted: false,
            }),
            _marker: PhantomData,
        });
        // As above: `f`'s captures go before the slot.
        let captures = (f, slot.clone());
        let body = move || {
            let (f, their_slot) = captures;
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            their_slot.body_finished(result);
            drop(their_slot);
        };
        // SAFETY: as above, with the slot in place of `Finish`; the
        // result, which may need dropping, is dropped with the slot,
        // before the scope ends.
        let inner = unsafe { self.handle.shared().spawn_unchecked(opts, location, body) }?;
        Ok(ScopedJoinHandle(Inner::Slot {
            inner,
            slot: SlotRef(slot),
        }))
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.live())
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
            Inner::Slot { inner, slot } => {
                let outcome = inner.join();
                let (result, counted) = slot.0.let_go();
                // Handed out: the joiner, running, holds it now.
                drop(Uncount(counted.then_some(&*slot.0.scope)));
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
            Inner::Slot { inner, .. } => inner.is_finished(),
        }
    }

    /// The green thread's handle.
    pub fn thread(&self) -> &Thread {
        match &self.0 {
            Inner::Direct { inner, .. } => inner.thread(),
            Inner::Slot { inner, .. } => inner.thread(),
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
            count.release();
        }
    }

    /// The scope's end, `unused` increments taken ahead left over: wait,
    /// then read what the scoped threads wrote. Loom reports a read not
    /// ordered after the writes as a data race; the wait must end in every
    /// interleaving, and the scope is woken at most once, and only if it
    /// waited, in which case the waker has released it when the wait
    /// ends. Returns whether it waited.
    fn end(count: &Count, unused: usize, woken: &AtomicUsize, borrowed: &[Borrowed]) -> bool {
        let waited = count.start_waiting(unused);
        while !count.all_done() {
            // Parking and spinning both come down to looking again.
            thread::yield_now();
        }
        if waited {
            while !count.is_released() {
                thread::yield_now();
            }
            assert_eq!(woken.load(Ordering::Relaxed), 1, "released after waking");
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
    /// The owner takes `ahead` increments before spawning them (0: one per
    /// spawn) and gives back the unused ones as its closure returns.
    fn two_scoped_threads(ahead: usize) {
        loom::model(move || {
            let count = Arc::new(Count::new());
            let woken = Arc::new(AtomicUsize::new(0));
            let borrowed: Vec<Borrowed> = (0..2).map(|_| Arc::new(UnsafeCell::new(0))).collect();
            if ahead > 0 {
                count.add(ahead);
            }
            let threads: Vec<_> = borrowed
                .iter()
                .map(|b| {
                    if ahead == 0 {
                        count.add(1);
                    }
                    let (count, woken, b) = (count.clone(), woken.clone(), b.clone());
                    thread::spawn(move || scoped(&count, &woken, &b))
                })
                .collect();
            let waited = end(&count, ahead.saturating_sub(2), &woken, &borrowed);
            for t in threads {
                t.join().unwrap();
            }
            woken_once_if_waited(waited, &woken);
        });
    }

    #[test]
    fn the_scope_ends_after_its_scoped_threads() {
        two_scoped_threads(0);
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
            count.add(1);
            let (count2, woken2, outer_b, inner_b) = (
                count.clone(),
                woken.clone(),
                borrowed[0].clone(),
                borrowed[1].clone(),
            );
            let outer = thread::spawn(move || {
                count2.add(1);
                let (count3, woken3) = (count2.clone(), woken2.clone());
                let inner = thread::spawn(move || scoped(&count3, &woken3, &inner_b));
                scoped(&count2, &woken2, &outer_b);
                inner
            });
            let waited = end(&count, 0, &woken, &borrowed);
            outer.join().unwrap().join().unwrap();
            woken_once_if_waited(waited, &woken);
        });
    }

    /// The owner takes three increments ahead, spawns two scoped green
    /// threads on them and gives the third back as its closure returns.
    #[test]
    fn increments_taken_ahead_are_given_back() {
        two_scoped_threads(3);
    }
}
