//! Go's `context`: cancellation, deadlines and request-scoped values that
//! flow from parent to children.
//!
//! A context is a node in a tree. Cancelling one (through its
//! [`CancelHandle`]) cancels its whole subtree, closing each `done()`
//! channel, before `cancel()` returns; it leaves the parent alone. A
//! deadline needs no timer thread: a context is done once its deadline (the
//! earlier of its own and its ancestors') has passed, and its `done()`
//! channel behaves as closed from that instant (the runtime's timers wake
//! whoever waits on it).
//!
//! ```
//! use grove_runtime::context::{Context, ContextError};
//! use std::time::Duration;
//!
//! let (ctx, cancel) = Context::background().with_cancel();
//! let worker = {
//!     let ctx = ctx.clone();
//!     grove_runtime::go(move || {
//!         let mut ticks = 0;
//!         loop {
//!             grove_channels::select! {
//!                 recv(ctx.done()) -> _ => return (ticks, ctx.err()),
//!                 default(Duration::from_millis(1)) => ticks += 1,
//!             }
//!         }
//!     })
//! };
//! cancel.cancel();
//! let (_ticks, err) = worker.join().unwrap();
//! assert_eq!(err, Some(ContextError::Cancelled));
//! ```
//!
//! # The model
//!
//! A [`Context`] is two links: to its *cancellation node* (`None` for
//! [`Context::background`] and [`Context::without_cancel`]: never done) and
//! to its *value chain* ([`Context::with_value`]). A value context shares its
//! parent's node, so values cost nothing on the cancellation path, and
//! `without_cancel` keeps the values while dropping the node.
//!
//! Each node holds, behind one short-held lock: its error and cause once
//! cancelled, its lazily made `done()` channel, weak links to its children,
//! and *hooks* run when it is cancelled — an unparker of a waiter
//! (`Semaphore::acquire_ctx`) or an [`after_func`].
//!
//! Invariants:
//!
//! 1. The first cancellation of a node wins: its error and cause never
//!    change afterwards (Go). A node whose deadline passed before it was
//!    cancelled keeps `DeadlineExceeded` as its error and cause.
//! 2. A child is cancelled with its parent's error and cause, unless it was
//!    cancelled first.
//! 3. Hooks run after the node's lock is released: no user code (a
//!    destructor, an `after_func`) runs under it.
//! 4. A node dropped with `after_func` hooks still armed hands them to its
//!    parent: once nobody can cancel the node itself, its parent's
//!    cancellation is the only way it could have become done (a node with
//!    hooks has no deadline anywhere up its chain; see [`after_func`]).

use std::any::Any;
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use grove_channels::{bounded, never, Receiver, Sender};
use grove_scheduler::Unparker;

mod after_func;

use after_func::AfterFunc;
pub use after_func::{after_func, AfterFuncHandle};

/// Why a context is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Its `cancel()` (or an ancestor's) was called.
    Cancelled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Go's wording.
        f.write_str(match self {
            ContextError::Cancelled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for ContextError {}

/// The cause of a cancellation: any error, shared by the whole subtree.
pub type Cause = Arc<dyn Error + Send + Sync>;

/// A cancellation scope: carries a done signal, an error once done, an
/// optional deadline and typed values. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Context {
    node: Option<Arc<Node>>,
    values: Option<Arc<ValueLink>>,
}

// A context only moves forward (not done → done, once) and its values
// never change: a panic cannot leave one half changed.
impl std::panic::UnwindSafe for Context {}
impl std::panic::RefUnwindSafe for Context {}

/// Cancels the context it came with (and that context's descendants).
/// Dropping it does not cancel (call [`CancelHandle::cancel`], as Go's vet
/// insists).
#[derive(Clone)]
pub struct CancelHandle {
    node: Arc<Node>,
}

/// Cancels the context it came with (and its descendants) with a cause:
/// Go's `CancelCauseFunc`. Dropping it does not cancel.
#[derive(Clone)]
pub struct CancelCauseHandle {
    node: Arc<Node>,
}

struct Node {
    id: u64,
    parent: Option<Arc<Node>>,
    /// The earlier of its own deadline and its ancestors'.
    deadline: Option<Instant>,
    cancelled: AtomicBool,
    /// Cancelled, and so is every descendant (see `Node::cancel`); read
    /// and written under `inner`'s lock.
    settled: AtomicBool,
    inner: Mutex<NodeInner>,
    /// The receiving end of `inner.done`, published once the channel
    /// exists (and is closed, if the node was cancelled by then), so that
    /// `done()` hands out clones without the node's lock. Set under the
    /// lock; a cancel closes the same channel through `inner.done`.
    done_rx: OnceLock<Receiver<()>>,
}

#[derive(Default)]
struct NodeInner {
    err: Option<ContextError>,
    /// Set with `err` when the cancellation carried a cause; `None` means
    /// "the cause is `err`".
    cause: Option<Cause>,
    /// Created on the first `done()`; closed on cancel.
    done: Option<(Sender<()>, Receiver<()>)>,
    children: IdMap<Weak<Node>>,
    hooks: Hooks,
}

/// What runs when a node is cancelled (invariant 3).
enum Hook {
    /// A waiter parked until the context is done.
    Wake(Unparker),
    /// An armed `after_func`.
    Func(Arc<AfterFunc>),
}

impl Hook {
    fn is_live(&self) -> bool {
        match self {
            Hook::Wake(_) => true,
            Hook::Func(f) => f.is_armed(),
        }
    }

    fn fire(self) {
        match self {
            Hook::Wake(unparker) => unparker.wake(),
            Hook::Func(f) => f.spawn(),
        }
    }
}

/// A node's hooks by id. Stopped `after_func`s are normally removed by
/// their `stop()`; a sweep on insertion catches the few a race left behind,
/// so a long-lived context with `after_func` + `stop` per request does not
/// grow (the timers' sweep rule, `grove_scheduler::timer`).
#[derive(Default)]
struct Hooks {
    map: IdMap<Hook>,
    sweep_at: usize,
}

/// Hooks kept before dead ones are swept; doubles with the live count.
/// A guess: small enough that a sweep is cheap.
const MIN_SWEEP: usize = 64;

impl Hooks {
    fn insert(&mut self, id: u64, hook: Hook) {
        if self.map.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.map.retain(|_, h| h.is_live());
            self.sweep_at = 2 * self.map.len();
        }
        self.map.insert(id, hook);
    }

    fn take(&mut self) -> Vec<Hook> {
        std::mem::take(&mut self.map).into_values().collect()
    }
}

/// One link of a context's value chain; the nearest link holding a `T`
/// answers `value::<T>()`.
struct ValueLink {
    value: Box<dyn Any + Send + Sync>,
    parent: Option<Arc<ValueLink>>,
}

impl Drop for ValueLink {
    /// Drops a chain of values one link at a time: thousands of nested
    /// `with_value`s must not overflow a green thread's stack.
    fn drop(&mut self) {
        let mut parent = self.parent.take();
        while let Some(link) = parent {
            match Arc::try_unwrap(link) {
                Ok(mut last) => parent = last.parent.take(),
                Err(_) => break,
            }
        }
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A map keyed by the ids of [`next_id`] (or a waiter's): unique numbers
/// from a counter, which need no SipHash against hash flooding; a multiply
/// spreads them over the table. Every child context inserts itself in its
/// parent's map and leaves it when dropped: with std's hasher that was a
/// fifth of Go's `WithCancel` benchmark here.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]: the key times an odd constant (Fibonacci
/// hashing); the table uses the high bits as well.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; any other input still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Node {
    fn lock(&self) -> std::sync::MutexGuard<'_, NodeInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn err(&self) -> Option<ContextError> {
        if self.cancelled.load(Ordering::Acquire) {
            return self.lock().err;
        }
        // Not cancelled: done once the deadline passed (and a later cancel
        // keeps DeadlineExceeded, see `cancel_one`).
        self.expired().then_some(ContextError::DeadlineExceeded)
    }

    fn cause(&self) -> Option<Cause> {
        if self.cancelled.load(Ordering::Acquire) {
            let inner = self.lock();
            return match (&inner.cause, inner.err) {
                (Some(cause), _) => Some(cause.clone()),
                (None, Some(err)) => Some(Arc::new(err)),
                (None, None) => None,
            };
        }
        self.expired()
            .then(|| Arc::new(ContextError::DeadlineExceeded) as Cause)
    }

    /// Cancels this node and its subtree; their `done()` channels are
    /// closed before this returns. Iterative, not recursive: a chain of
    /// thousands of contexts must not overflow a green thread's stack.
    ///
    /// A second canceller (this node's, or an ancestor's, or a
    /// descendant's own racing an ancestor's) must not return before the
    /// first is through either: it goes through the nodes the first has
    /// cancelled but not yet *settled* as well (Go's `cancel` holds each
    /// node's lock while it cancels the children, so a second call waits;
    /// this one helps). A canceller settles the nodes it cancelled once it
    /// has been through all of them: their subtrees are done, and later
    /// cancels stop there.
    fn cancel(self: &Arc<Node>, err: ContextError, cause: Option<Cause>) {
        let mut pending = vec![self.clone()];
        let mut to_settle_here = Vec::new();
        while let Some(node) = pending.pop() {
            let (children, hooks, to_settle) = node.cancel_one(err, &cause);
            pending.extend(children.into_iter().filter_map(|c| c.upgrade()));
            // Invariant 3: the node's lock is released.
            hooks.into_iter().for_each(Hook::fire);
            if to_settle {
                to_settle_here.push(node);
            }
        }
        for node in to_settle_here {
            node.settle();
        }
        if let Some(parent) = &self.parent {
            parent.lock().children.remove(&self.id);
        }
    }

    /// Every descendant of this cancelled node is cancelled: later cancels
    /// need not look further, and the children's links can go.
    fn settle(&self) {
        let children = {
            let mut inner = self.lock();
            self.settled.store(true, Ordering::Relaxed);
            std::mem::take(&mut inner.children)
        };
        drop(children);
    }

    /// Cancels this node only; returns its children (unless it is
    /// settled), its hooks, and whether this call cancelled it and left it
    /// to settle (a leaf it cancels is settled here).
    /// Invariant 1: once set, the error never changes, and a deadline that
    /// already passed stays the reason.
    fn cancel_one(
        &self,
        err: ContextError,
        cause: &Option<Cause>,
    ) -> (Vec<Weak<Node>>, Vec<Hook>, bool) {
        let mut inner = self.lock();
        if self.settled.load(Ordering::Relaxed) {
            return (Vec::new(), Vec::new(), false);
        }
        // Kept in the map until settled: a second canceller goes through
        // them too (see `cancel`).
        let children: Vec<Weak<Node>> = inner.children.values().cloned().collect();
        if inner.err.is_some() {
            return (children, Vec::new(), false);
        }
        if self.expired() {
            inner.err = Some(ContextError::DeadlineExceeded);
        } else {
            inner.err = Some(err);
            inner.cause = cause.clone();
        }
        self.cancelled.store(true, Ordering::Release);
        if let Some((tx, _)) = &inner.done {
            tx.close();
        }
        // A leaf is settled at once: no second look for most nodes.
        let leaf = children.is_empty();
        if leaf {
            self.settled.store(true, Ordering::Relaxed);
        }
        (children, inner.hooks.take(), !leaf)
    }

    /// Cancels a node made under a parent that is cancelled already, with
    /// the parent's error and cause as they are (Go's `propagateCancel`
    /// runs before the new deadline is looked at): the node was never
    /// live, so no deadline of its own passed first. It has no children,
    /// hooks or done channel yet.
    fn inherit_cancel(&self, err: ContextError, cause: Option<Cause>) {
        let mut inner = self.lock();
        inner.err = Some(err);
        inner.cause = cause;
        self.cancelled.store(true, Ordering::Release);
        self.settled.store(true, Ordering::Relaxed); // it has no children
    }

    /// Registers `hook`; if the node is cancelled already, gives it back
    /// to be fired by the caller.
    fn add_hook(&self, id: u64, hook: Hook) -> Result<(), Hook> {
        let mut inner = self.lock();
        if inner.err.is_some() {
            return Err(hook);
        }
        inner.hooks.insert(id, hook);
        Ok(())
    }

    fn remove_hook(&self, id: u64) -> Option<Hook> {
        self.lock().hooks.map.remove(&id)
    }
}

impl Drop for Node {
    /// Hands armed `after_func`s up (invariant 4), leaves the parent's
    /// children, and drops the chain of ancestors this was the last
    /// reference to one at a time (not recursively), each handing its own
    /// armed hooks further up.
    fn drop(&mut self) {
        let mut hooks = take_armed(self.inner.get_mut().unwrap_or_else(|e| e.into_inner()));
        let mut to_fire = Vec::new();
        let mut child = self.id;
        let mut parent = self.parent.take();
        while let Some(node) = parent {
            {
                let mut inner = node.lock();
                inner.children.remove(&child);
                if inner.err.is_some() {
                    to_fire.append(&mut hooks);
                } else {
                    for (id, hook) in hooks.drain(..) {
                        inner.hooks.insert(id, hook);
                    }
                }
            }
            match Arc::try_unwrap(node) {
                Ok(mut last) => {
                    child = last.id;
                    hooks = take_armed(last.inner.get_mut().unwrap_or_else(|e| e.into_inner()));
                    parent = last.parent.take();
                    // `last` drops here with no parent and no hooks: no
                    // recursion.
                }
                Err(_) => break,
            }
        }
        // Hooks of a root node are dropped unrun: nothing can cancel it
        // any more. Invariant 3: no lock is held here.
        drop(hooks);
        to_fire.into_iter().for_each(|(_, hook)| hook.fire());
    }
}

/// The armed `after_func`s of a node being dropped (waiter hooks cannot be
/// there: a waiter holds its context).
fn take_armed(inner: &mut NodeInner) -> Vec<(u64, Hook)> {
    std::mem::take(&mut inner.hooks.map)
        .into_iter()
        .filter(|(_, h)| matches!(h, Hook::Func(_)) && h.is_live())
        .collect()
}

impl Context {
    /// The root context: never cancelled, no deadline, no values.
    pub fn background() -> Context {
        Context {
            node: None,
            values: None,
        }
    }

    /// A child that is cancelled by the returned handle or with this
    /// context.
    pub fn with_cancel(&self) -> (Context, CancelHandle) {
        let (ctx, node) = self.child(None);
        (ctx, CancelHandle { node })
    }

    /// A child that is done after `timeout`, when cancelled, or with this
    /// context.
    pub fn with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        let (ctx, node) = self.child(Instant::now().checked_add(timeout));
        (ctx, CancelHandle { node })
    }

    /// A child that is done at `deadline`, when cancelled, or with this
    /// context.
    pub fn with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        let (ctx, node) = self.child(Some(deadline));
        (ctx, CancelHandle { node })
    }

    /// Go's `WithCancelCause`: a child whose handle cancels it with a
    /// cause, which [`cause`](Context::cause) then returns (on it and its
    /// descendants), keeping its type. Its [`err`](Context::err) is still
    /// `Cancelled`.
    ///
    /// ```
    /// use grove_runtime::context::{Context, ContextError};
    ///
    /// #[derive(Debug)]
    /// struct Overloaded;
    /// impl std::fmt::Display for Overloaded {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("backend overloaded")
    ///     }
    /// }
    /// impl std::error::Error for Overloaded {}
    ///
    /// let (ctx, cancel) = Context::background().with_cancel_cause();
    /// let (child, _) = ctx.with_cancel();
    /// cancel.cancel(Overloaded);
    /// assert_eq!(child.err(), Some(ContextError::Cancelled));
    /// assert!(child.cause().unwrap().downcast_ref::<Overloaded>().is_some());
    /// ```
    pub fn with_cancel_cause(&self) -> (Context, CancelCauseHandle) {
        let (ctx, node) = self.child(None);
        (ctx, CancelCauseHandle { node })
    }

    fn child(&self, deadline: Option<Instant>) -> (Context, Arc<Node>) {
        let parent = self.node.clone();
        let deadline = match (deadline, self.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let node = Arc::new(Node {
            id: next_id(),
            parent: parent.clone(),
            deadline,
            cancelled: AtomicBool::new(false),
            settled: AtomicBool::new(false),
            inner: Mutex::new(NodeInner::default()),
            done_rx: OnceLock::new(),
        });
        if let Some(parent) = &parent {
            let mut inner = parent.lock();
            match inner.err {
                Some(err) => {
                    let cause = inner.cause.clone();
                    drop(inner);
                    node.inherit_cancel(err, cause);
                }
                None => {
                    inner.children.insert(node.id, Arc::downgrade(&node));
                }
            }
        }
        let ctx = Context {
            node: Some(node.clone()),
            values: self.values.clone(),
        };
        (ctx, node)
    }

    /// Go's `WithValue`: a child that carries `value`, found by
    /// [`value::<T>()`](Context::value) on it and its descendants. It is
    /// cancelled with this context and has its deadline.
    ///
    /// Values are looked up by type, so give each kind of value its own
    /// type (a newtype), as Go programs give each key its own type.
    ///
    /// ```
    /// use grove_runtime::context::Context;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct RequestId(u64);
    ///
    /// let ctx = Context::background().with_value(RequestId(7));
    /// let (child, _cancel) = ctx.with_cancel();
    /// assert_eq!(child.value::<RequestId>(), Some(&RequestId(7)));
    /// assert_eq!(child.value::<String>(), None);
    /// ```
    pub fn with_value<T: Any + Send + Sync>(&self, value: T) -> Context {
        Context {
            node: self.node.clone(),
            values: Some(Arc::new(ValueLink {
                value: Box::new(value),
                parent: self.values.clone(),
            })),
        }
    }

    /// The value of type `T` of the nearest context up the chain that
    /// carries one ([`with_value`](Context::with_value)); `None` if none
    /// does.
    pub fn value<T: Any>(&self) -> Option<&T> {
        let mut link = self.values.as_deref();
        while let Some(l) = link {
            if let Some(v) = l.value.downcast_ref::<T>() {
                return Some(v);
            }
            link = l.parent.as_deref();
        }
        None
    }

    /// Go's `WithoutCancel`: a context with this one's values that is
    /// never done, whatever happens to this one: no deadline, no error, a
    /// `done()` that never closes. For work that must outlive the request
    /// that started it (an audit log write) yet wants its values.
    ///
    /// ```
    /// use grove_runtime::context::Context;
    ///
    /// let (ctx, cancel) = Context::background().with_value(42u32).with_cancel();
    /// let detached = ctx.without_cancel();
    /// cancel.cancel();
    /// assert!(ctx.is_done());
    /// assert!(!detached.is_done());
    /// assert_eq!(detached.value::<u32>(), Some(&42));
    /// ```
    pub fn without_cancel(&self) -> Context {
        Context {
            node: None,
            values: self.values.clone(),
        }
    }

    /// A channel that is closed when this context is done (cancelled, or
    /// its deadline passed); usable in `select!` (Go's `<-ctx.Done()`).
    pub fn done(&self) -> Receiver<()> {
        let Some(node) = &self.node else {
            return never();
        };
        // A clone of the published end, without the node's lock: a loop
        // of `select! { recv(ctx.done()) .. default .. }` (Go's
        // `BenchmarkCheckCanceled`) locked the node, and on a cancelled
        // context closed its channel again, every time.
        let rx = match node.done_rx.get() {
            Some(rx) => rx.clone(),
            None => {
                let mut inner = node.lock();
                let cancelled = inner.err.is_some();
                let (tx, rx) = inner.done.get_or_insert_with(|| bounded(0));
                if cancelled {
                    tx.close();
                }
                let rx = rx.clone();
                // Under the lock: published closed if cancelled already;
                // a later cancel closes it through `inner.done`.
                let _ = node.done_rx.set(rx.clone());
                rx
            }
        };
        match node.deadline {
            Some(deadline) => rx.closing_at(deadline),
            None => rx,
        }
    }

    /// Why the context is done; `None` while it is not.
    pub fn err(&self) -> Option<ContextError> {
        self.node.as_ref().and_then(|n| n.err())
    }

    /// Go's `context.Cause`: the cause given to the
    /// [`CancelCauseHandle::cancel`] that cancelled this context (or an
    /// ancestor); else, once done, the same as [`err`](Context::err) (a
    /// `ContextError`); `None` while not done. The first cancellation
    /// wins; the cause keeps its type (`downcast_ref` works).
    pub fn cause(&self) -> Option<Cause> {
        self.node.as_ref().and_then(|n| n.cause())
    }

    /// Whether the context is done.
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// The earlier of this context's deadline and its ancestors'.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.as_ref().and_then(|n| n.deadline)
    }

    /// Unparks `unparker` when this context is cancelled, until the
    /// returned guard drops. `None` if the context can never be cancelled.
    /// If it is cancelled already, unparks at once. Deadlines are the
    /// caller's to wait for (`deadline()`): they arm no hook.
    pub(crate) fn wake_on_cancel(&self, unparker: Unparker) -> Option<WakeOnCancel> {
        let node = self.node.as_ref()?;
        let id = next_id();
        match node.add_hook(id, Hook::Wake(unparker)) {
            Ok(()) => Some(WakeOnCancel {
                node: node.clone(),
                id,
            }),
            Err(hook) => {
                hook.fire();
                None
            }
        }
    }
}

/// Unregisters a [`Context::wake_on_cancel`] hook when dropped.
pub(crate) struct WakeOnCancel {
    node: Arc<Node>,
    id: u64,
}

impl Drop for WakeOnCancel {
    fn drop(&mut self) {
        drop(self.node.remove_hook(self.id));
    }
}

impl Default for Context {
    /// [`Context::background`].
    fn default() -> Context {
        Context::background()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}

impl CancelHandle {
    /// Cancels the context and every descendant; returns once all of them
    /// are cancelled and their `done()` channels closed. Later calls do
    /// nothing.
    pub fn cancel(&self) {
        self.node.cancel(ContextError::Cancelled, None);
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle").finish_non_exhaustive()
    }
}

impl CancelCauseHandle {
    /// Cancels the context and every descendant with `cause` (their
    /// `err()` is `Cancelled`, their `cause()` this `cause`); returns once
    /// all of them are cancelled and their `done()` channels closed. Only
    /// the first cancellation counts: later calls, and a cancellation that
    /// reached the context first from an ancestor, keep the earlier cause.
    pub fn cancel(&self, cause: impl Error + Send + Sync + 'static) {
        // Also when cancelled already: the first canceller may still be
        // working through the descendants (see `Node::cancel_one`).
        self.node
            .cancel(ContextError::Cancelled, Some(Arc::new(cause)));
    }
}

impl fmt::Debug for CancelCauseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelCauseHandle").finish_non_exhaustive()
    }
}
