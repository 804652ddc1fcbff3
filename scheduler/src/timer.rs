//! A worker's deadline heap. Only its own worker touches it: a green thread
//! that parks with a deadline asks its worker, which arms the timer after
//! the switch (see `coroutine`). Entries carry the park sequence they were
//! armed for (`task::State::fire_timer`), so a timer whose park already ended
//! is recognised as stale and dropped.

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

    /// Arms a timer for park number `park_seq` of `task`.
    pub(crate) fn insert(&mut self, deadline: Instant, park_seq: u32, task: TaskRef) {
        if self.heap.len() >= self.sweep_at {
            self.sweep();
        }
        self.order += 1;
        self.heap.push(Entry {
            deadline,
            order: self.order,
            park_seq,
            task,
        });
    }

    /// Drops timers whose park already ended (the task was woken early), so
    /// a loop of `recv_timeout(long)` that always gets its value in time
    /// does not grow the heap without bound.
    fn sweep(&mut self) {
        self.heap
            .retain(|e| e.task.header().state.timer_is_live(e.park_seq));
        self.sweep_at = (2 * self.heap.len()).max(MIN_SWEEP);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    /// Fires every timer due at `now`: `wake` gets each task whose park it
    /// ended (already moved to SCHEDULED). Returns how many were woken.
    pub(crate) fn fire(&mut self, now: Instant, mut wake: impl FnMut(TaskRef)) -> usize {
        let mut woken = 0;
        while self.heap.peek().is_some_and(|e| e.deadline <= now) {
            let entry = self.heap.pop().expect("peeked");
            if entry.task.header().state.fire_timer(entry.park_seq) {
                woken += 1;
                wake(entry.task);
            }
        }
        woken
    }

    /// Removes every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
