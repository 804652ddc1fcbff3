//! The one module that switches stacks: a thin layer over corosensei.
//!
//! A green thread's body runs on its own [`Stack`] inside a corosensei
//! coroutine. It leaves its stack only by [`suspend`]ing with a [`Request`]
//! ("park me", "I yield"); its worker acts on the request after the switch,
//! back on the worker's own stack ("switch, then commit": nobody can resume a
//! task that has not finished leaving its stack, see `task::State`).
//!
//! ```text
//!   worker stack                         green thread stack
//!   ────────────                         ──────────────────
//!   Worker::run ── Coro::resume() ────►  body: run the closure
//!                                          ... channel op / park
//!               ◄── Request::Park ─────  suspend(header, Park)
//!   commit the park (State::commit_park)
//!   ... later, on the same worker ...
//!   Worker::run ── Coro::resume() ────►  (suspend returns)
//!               ◄── returns ───────────  closure done
//!   stack back to the pool
//! ```

use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::signal;
use crate::stack::{Stack, TOP_SLOT};
use crate::task::{self, Header, TaskRef};

/// What a green thread asks of its worker when it suspends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Park until unparked, or until the deadline passes.
    Park { deadline: Option<Instant> },
    /// Go to the back of the run queue; `budget`: because the green
    /// thread spent its budget, not by its own call (see
    /// `Worker::keep_for_thief`).
    Yield { budget: bool },
}

type Inner = Coroutine<(), Request, (), Stack>;

/// How a resume ended.
pub(crate) enum Resumed {
    /// The green thread suspended itself with a request.
    Suspended(Request),
    /// The green thread's body returned; its stack can be reused.
    Finished(Stack),
}

/// A started green thread: its coroutine, which owns its stack and lives at
/// the top of that stack, in the slot corosensei's frames start below
/// (`Stack::top_slot`). The task record holds only this pointer: a record
/// is written by its spawner and then by the worker that runs it, so every
/// line it spans is a line the next spawn fetches back from another core,
/// while the top of a stack is written only by the worker running on it
/// (stacks are reused hot, last in first out). What the overflow handler
/// needs is rebuilt per resume (see [`Coro::running`]).
///
/// Valid until [`Coro::resume`] reports the body finished or
/// [`Coro::force_unwind`] returns: the stack then goes back to the pool
/// (and its slot to the next coroutine on it), so the caller drops the
/// `Coro` at once. Dropping a `Coro` whose body has not finished leaks its
/// coroutine and stack (see `Header`: a suspended task is never unwound on
/// a foreign thread).
pub(crate) struct Coro(NonNull<Slot>);

/// What lives in a stack's top slot while a coroutine runs on it.
struct Slot {
    inner: Option<Inner>,
    /// Its stack's guard page, lowest and highest (exclusive) address.
    guard: (usize, usize),
}

const _: () = assert!(
    std::mem::size_of::<Slot>() <= TOP_SLOT && std::mem::align_of::<Slot>() <= 16,
    "a coroutine fits in the slot at the top of its stack"
);

/// A task's header pointer, moved into its own coroutine body.
#[derive(Clone, Copy)]
struct SendPtr(NonNull<Header>);

/// Where a running coroutine's `Yielder` lives. Written once when the body
/// starts, read by [`suspend`] from the same green thread.
#[derive(Default)]
pub(crate) struct YielderSlot(AtomicPtr<()>);

impl Coro {
    /// Prepares `task`'s body to run on `stack`; nothing runs until
    /// [`Coro::resume`].
    pub(crate) fn new(stack: Stack, task: &TaskRef) -> Coro {
        let guard = stack.guard();
        let header = SendPtr(task.as_ptr());
        let body = move |yielder: &Yielder<(), Request>, ()| {
            let header = header;
            // SAFETY: the task owns this coroutine (it sits in the task's
            // header), so the task outlives every run of this body, and the
            // worker resuming it holds the run token.
            unsafe {
                header
                    .0
                    .as_ref()
                    .yielder
                    .0
                    .store(yielder as *const _ as *mut (), Ordering::Relaxed);
                task::run_body(header.0);
            }
        };
        let slot = stack.top_slot().cast::<Slot>();
        let inner = Coroutine::with_stack(stack, body);
        // SAFETY: the slot is `TOP_SLOT` bytes at the top of the stack the
        // coroutine now owns, 16-byte aligned, and no frame is ever pushed
        // there (corosensei starts below it, see `Stack`); the previous
        // coroutine on this stack is gone (its `Coro` was dropped when it
        // finished). The slot stays ours as long as the stack is mapped,
        // which the coroutine in it keeps so.
        unsafe {
            slot.as_ptr().write(Slot {
                inner: Some(inner),
                guard,
            })
        };
        Coro(slot)
    }

    fn slot(&self) -> &Slot {
        // SAFETY: valid while this `Coro` is (see the type's docs), and only
        // the worker holding the task's run token has the `Coro`.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn slot_mut(&mut self) -> &mut Slot {
        // SAFETY: as in `slot`, and `&mut self` makes this the only access.
        unsafe { self.0.as_mut() }
    }

    /// What the overflow handler must know while this coroutine runs: its
    /// guard page, and `header` (its task's) for the name and stack size.
    pub(crate) fn running(&self, header: &Header) -> signal::Running {
        signal::Running::new(self.slot().guard, header)
    }

    /// Switches to the green thread until it suspends or returns. Once it
    /// returns, the stack is handed back and this `Coro` must be dropped.
    #[inline(always)]
    pub(crate) fn resume(&mut self) -> Resumed {
        let slot = self.slot_mut();
        let inner = slot
            .inner
            .as_mut()
            .expect("resumed a finished green thread");
        match inner.resume(()) {
            CoroutineResult::Yield(request) => Resumed::Suspended(request),
            CoroutineResult::Return(()) => {
                let inner = slot.inner.take().expect("coroutine present");
                Resumed::Finished(inner.into_stack())
            }
        }
    }

    /// Unwinds a suspended green thread so that its destructors run, then
    /// hands its stack back (after which this `Coro` must be dropped). The
    /// body sees a panic out of its `suspend`.
    pub(crate) fn force_unwind(&mut self) -> Option<Stack> {
        let mut inner = self.slot_mut().inner.take()?;
        inner.force_unwind();
        Some(inner.into_stack())
    }
}

/// Suspends the calling green thread with `request`.
///
/// Must be called from the body of the green thread whose header this is;
/// [`crate::worker`] guarantees it by only handing out the header of the task
/// it is running.
#[inline(always)]
pub(crate) fn suspend(header: &Header, request: Request) {
    let yielder = header.yielder.0.load(Ordering::Relaxed) as *const Yielder<(), Request>;
    assert!(!yielder.is_null(), "suspend outside a green thread");
    // SAFETY: the pointer was stored by this task's body when it started and
    // points at the Yielder on this task's own stack, which lives as long as
    // the coroutine; we are running on that stack now.
    unsafe { (*yielder).suspend(request) };
}
