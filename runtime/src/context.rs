//! Go's `context`: cancellation and deadlines that flow from parent to
//! children.
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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use grove_channels::{bounded, never, Receiver, Sender};

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

/// A cancellation scope: carries a done signal, an error once done, and an
/// optional deadline. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Context {
    node: Option<Arc<Node>>,
}

/// Cancels the context it came with (and that context's descendants).
/// Dropping it does not cancel (call [`CancelHandle::cancel`], as Go's vet
/// insists).
#[derive(Clone)]
pub struct CancelHandle {
    node: Arc<Node>,
}

struct Node {
    id: u64,
    parent: Option<Arc<Node>>,
    /// The earlier of its own deadline and its ancestors'.
    deadline: Option<Instant>,
    cancelled: AtomicBool,
    inner: Mutex<NodeInner>,
}

#[derive(Default)]
struct NodeInner {
    err: Option<ContextError>,
    /// Created on the first `done()`; closed on cancel.
    done: Option<(Sender<()>, Receiver<()>)>,
    children: HashMap<u64, Weak<Node>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Node {
    fn lock(&self) -> std::sync::MutexGuard<'_, NodeInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self) -> Option<ContextError> {
        if self.cancelled.load(Ordering::Acquire) {
            return self.lock().err;
        }
        // Not cancelled: done once the deadline passed (and a later cancel
        // keeps DeadlineExceeded, see `cancel_one`).
        match self.deadline {
            Some(d) if Instant::now() >= d => Some(ContextError::DeadlineExceeded),
            _ => None,
        }
    }

    /// Cancels this node and its subtree; their `done()` channels are
    /// closed before this returns. Iterative, not recursive: a chain of
    /// thousands of contexts must not overflow a green thread's stack.
    fn cancel(self: &Arc<Node>, err: ContextError) {
        let mut pending = vec![self.clone()];
        while let Some(node) = pending.pop() {
            pending.extend(node.cancel_one(err).into_iter().filter_map(|c| c.upgrade()));
        }
        if let Some(parent) = &self.parent {
            parent.lock().children.remove(&self.id);
        }
    }

    /// Cancels this node only; returns its children. Once set, the error
    /// never changes (Go): a deadline that already passed stays the reason.
    fn cancel_one(&self, err: ContextError) -> Vec<Weak<Node>> {
        let mut inner = self.lock();
        if inner.err.is_some() {
            return Vec::new();
        }
        let expired = self.deadline.is_some_and(|d| Instant::now() >= d);
        let err = if expired {
            ContextError::DeadlineExceeded
        } else {
            err
        };
        inner.err = Some(err);
        self.cancelled.store(true, Ordering::Release);
        if let Some((tx, _)) = &inner.done {
            tx.close();
        }
        std::mem::take(&mut inner.children).into_values().collect()
    }
}

impl Drop for Node {
    /// Leaves the parent's children, and drops the chain of ancestors this
    /// was the last reference to one at a time (not recursively).
    fn drop(&mut self) {
        let mut child = self.id;
        let mut parent = self.parent.take();
        while let Some(node) = parent {
            node.lock().children.remove(&child);
            match Arc::try_unwrap(node) {
                Ok(mut last) => {
                    child = last.id;
                    parent = last.parent.take();
                    // `last` drops here with no parent: no recursion.
                }
                Err(_) => break,
            }
        }
    }
}

impl Context {
    /// The root context: never cancelled, no deadline.
    pub fn background() -> Context {
        Context { node: None }
    }

    /// A child that is cancelled by the returned handle or with this
    /// context.
    pub fn with_cancel(&self) -> (Context, CancelHandle) {
        self.child(None)
    }

    /// A child that is done after `timeout`, when cancelled, or with this
    /// context.
    pub fn with_timeout(&self, timeout: Duration) -> (Context, CancelHandle) {
        self.child(Instant::now().checked_add(timeout))
    }

    /// A child that is done at `deadline`, when cancelled, or with this
    /// context.
    pub fn with_deadline(&self, deadline: Instant) -> (Context, CancelHandle) {
        self.child(Some(deadline))
    }

    fn child(&self, deadline: Option<Instant>) -> (Context, CancelHandle) {
        let parent = self.node.clone();
        let deadline = match (deadline, self.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let node = Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            parent: parent.clone(),
            deadline,
            cancelled: AtomicBool::new(false),
            inner: Mutex::new(NodeInner::default()),
        });
        if let Some(parent) = &parent {
            let mut inner = parent.lock();
            match inner.err {
                Some(err) => {
                    drop(inner);
                    node.cancel(err);
                }
                None => {
                    inner.children.insert(node.id, Arc::downgrade(&node));
                }
            }
        }
        (
            Context {
                node: Some(node.clone()),
            },
            CancelHandle { node },
        )
    }

    /// A channel that is closed when this context is done (cancelled, or
    /// its deadline passed); usable in `select!` (Go's `<-ctx.Done()`).
    pub fn done(&self) -> Receiver<()> {
        let Some(node) = &self.node else {
            return never();
        };
        let rx = {
            let mut inner = node.lock();
            let cancelled = inner.err.is_some();
            let (tx, rx) = inner.done.get_or_insert_with(|| bounded(0));
            if cancelled {
                tx.close();
            }
            rx.clone()
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

    /// Whether the context is done.
    pub fn is_done(&self) -> bool {
        self.err().is_some()
    }

    /// The earlier of this context's deadline and its ancestors'.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.as_ref().and_then(|n| n.deadline)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl CancelHandle {
    /// Cancels the context and every descendant; returns once all of them
    /// are cancelled and their `done()` channels closed. Later calls do
    /// nothing.
    pub fn cancel(&self) {
        self.node.cancel(ContextError::Cancelled);
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle").finish_non_exhaustive()
    }
}
