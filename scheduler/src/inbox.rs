//! A worker's inbox: where other threads hand it the green threads homed
//! on it that they woke (and the green threads spawned `on_worker` it).
//!
//! Many threads push, one worker takes, and it always takes everything at
//! once. So the inbox is an intrusive stack of task headers (Treiber's):
//! a push is one compare-and-swap on the head, linking the task through
//! its own `Header::inbox_next`; the owner swaps the head with null and
//! reverses the chain it got, oldest first. No allocation, no ABA (nobody
//! pops one node by compare-and-swap), and one shared cache line — the
//! head — where a general queue moves three or four (a head, a tail and a
//! block) on every cross-worker wake-up.
//!
//! ```text
//!   head ──► task C ──► task B ──► task A ──► null     (pushed A, B, C)
//!   owner: swap(head, null), reverse ──► A, B, C
//! ```
//!
//! A task is in at most one run queue (it holds its run token), so its
//! `inbox_next` link is used by one inbox at a time.

use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::task::{Header, Runnable};

pub(crate) struct Inbox {
    head: AtomicPtr<Header>,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Hands `task` to the inbox's worker. Any thread.
    #[inline]
    pub(crate) fn push(&self, task: Runnable) {
        let node = task.into_raw();
        // SAFETY: `node` is a live task whose token we hold: nobody else
        // links it until the owner takes it back out.
        let link = unsafe { &node.as_ref().inbox_next };
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            link.store(head, Ordering::Relaxed);
            match self.head.compare_exchange_weak(
                head,
                node.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Whether the inbox looks empty. A push may land right after.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every task in the inbox, oldest first. Only its worker calls
    /// this (it owns what it takes).
    pub(crate) fn take_all(&self) -> Taken {
        if self.is_empty() {
            return Taken(None);
        }
        let mut newest = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // Reverse the chain (newest first) in place.
        let mut oldest: *mut Header = ptr::null_mut();
        while let Some(node) = NonNull::new(newest) {
            // SAFETY: every node on the chain is a task pushed here, whose
            // token the chain holds, and which we now own; the Acquire swap
            // made its pusher's link store visible.
            let link = unsafe { &node.as_ref().inbox_next };
            newest = link.load(Ordering::Relaxed);
            link.store(oldest, Ordering::Relaxed);
            oldest = node.as_ptr();
        }
        Taken(NonNull::new(oldest))
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Tasks left here are dropped with their reference (no user code:
        // a task queued in an inbox is not DONE, so its record stays).
        for task in self.take_all() {
            drop(task);
        }
    }
}

/// Tasks taken out of an inbox, oldest first.
pub(crate) struct Taken(Option<NonNull<Header>>);

impl Iterator for Taken {
    type Item = Runnable;

    fn next(&mut self) -> Option<Runnable> {
        let node = self.0?;
        // SAFETY: a node of a chain `take_all` took over: a live task whose
        // token the chain holds; its link is ours to read.
        self.0 = NonNull::new(unsafe { node.as_ref().inbox_next.load(Ordering::Relaxed) });
        // SAFETY: the chain held this task's reference and token since
        // `push` (`Runnable::into_raw`); each node is taken out once.
        Some(unsafe { Runnable::from_raw(node) })
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        for task in self.by_ref() {
            drop(task);
        }
    }
}
