//! A worker's deadline heap. Only its own worker touches it: a green thread
//! that parks with a deadline asks its worker, which arms the timer after
//! the switch (see `coroutine`). Entries carry the park sequence they were
//! armed for (`task::State::fire_timer`), so a timer whose park already ended
//! is recognised as stale and dropped.
//!
//! Every entry holds a reference to its task, and the last reference to a
//! finished, detached task frees it, dropping its output: user code. So no
//! method here drops an entry: whatever leaves the heap is handed back to
//! the caller, who drops it once it holds no borrow of the worker's queues
//! or of this heap (a destructor may wake green threads into them).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::task::TaskRef;

struct Entry {
    deadline: Instant,
    /// Insertion order, so equal deadlines fire first-armed first.
    order: u64,
    park_seq: u32,
    task: TaskRef,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.order).cmp(&(self.deadline, self.order))
    }
}

/// Entries kept before stale ones are swept; doubles with the live count.
const MIN_SWEEP: usize = 64;

pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    order: u64,
    sweep_at: usize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            order: 0,
            sweep_at: MIN_SWEEP,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Arms a timer for park number `park_seq` of `task`. Returns the stale
    /// entries a sweep took out (see [`Stale`]), for the caller to drop.
    #[must_use = "dropping stale timers may run user code: drop them after releasing the heap"]
    pub(crate) fn insert(&mut self, deadline: Instant, park_seq: u32, task: TaskRef) -> Stale {
        let stale = if self.heap.len() >= self.sweep_at {
            self.sweep()
        } else {
            Stale(Vec::new())
        };
        self.order += 1;
        self.heap.push(Entry {
            deadline,
            order: self.order,
            park_seq,
            task,
        });
        stale
    }

    /// Takes out timers whose park already ended (the task was woken early),
    /// so a loop of `recv_timeout(long)` that always gets its value in time
    /// does not grow the heap without bound.
    fn sweep(&mut self) -> Stale {
        let (live, stale): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.heap)
            .into_iter()
            .partition(|e| e.task.header().state.timer_is_live(e.park_seq));
        self.heap = BinaryHeap::from(live);
        self.sweep_at = (2 * self.heap.len()).max(MIN_SWEEP);
        Stale(stale.into_iter().map(|e| e.task).collect())
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    /// Takes out the earliest timer due at `now`, if any: its task and the
    /// park it was armed for. The caller fires it (`State::fire_timer`)
    /// and drops the reference if it was stale, holding no borrow.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TaskRef, u32)> {
        if self.heap.peek().is_some_and(|e| e.deadline <= now) {
            let entry = self.heap.pop().expect("peeked");
            Some((entry.task, entry.park_seq))
        } else {
            None
        }
    }

    /// Takes out every entry (shutdown), for the caller to drop.
    #[must_use = "dropping timers may run user code: drop them after releasing the heap"]
    pub(crate) fn take_all(&mut self) -> Stale {
        Stale(
            std::mem::take(&mut self.heap)
                .into_iter()
                .map(|e| e.task)
                .collect(),
        )
    }
}

/// Task references taken out of the heap without firing. Dropping one may
/// free a finished task and run its output's destructor, so the caller
/// drops this only after releasing every borrow of its worker's state.
pub(crate) struct Stale(#[allow(dead_code, reason = "held only to be dropped")] Vec<TaskRef>);
