//! Every live task of a runtime, for `Runtime::tasks()` and for shutdown.
//!
//! Sharded by the spawning worker, and only ever written by whoever
//! spawns into a shard: a task is inserted when spawned, and nobody
//! removes it when it finishes. Instead each insert sweeps the next two
//! entries of its shard (a cursor goes round), taking out those whose task
//! is DONE, and an idle worker goes on sweeping its own shard and the
//! shard of outside spawns while it finds something to free (see
//! `Worker::find_work_or_park`). Finishing a task thus writes nothing
//! shared, and a task finished on another worker costs its spawner one
//! read of the task's state instead of a trip through its shard's lock.
//! Readers skip entries whose task is DONE but not swept yet.
//!
//! Entries outnumber live tasks by at most about two to one: two entries
//! are swept per insert, while at most one task finishes per insert in the
//! long run.

use crossbeam_utils::CachePadded;

use crate::lock::Lock;
use crate::task::TaskRef;

/// Entries swept on every insert.
const SWEEP_ON_INSERT: usize = 2;
/// Entries an idle worker sweeps per turn of its idle loop (see
/// `Registry::sweep`).
const SWEEP_WHEN_IDLE: usize = 32;

#[derive(Default)]
struct Slab {
    entries: Vec<Option<TaskRef>>,
    free: Vec<u32>,
    /// Next entry to sweep.
    cursor: usize,
}

impl Slab {
    /// Looks at the entry under the cursor and moves the cursor on; a
    /// finished task's entry is freed and its reference returned (to be
    /// dropped after the lock is released: that may run its output's
    /// destructor).
    fn sweep_one(&mut self) -> Option<TaskRef> {
        let n = self.entries.len();
        if n == 0 {
            return None;
        }
        let i = if self.cursor < n { self.cursor } else { 0 };
        self.cursor = i + 1;
        let done = self.entries[i]
            .as_ref()
            .is_some_and(|t| t.header().state.load().is_done());
        if !done {
            return None;
        }
        self.free.push(i as u32);
        self.entries[i].take()
    }

    /// Sweeps up to `out.len()` entries (none twice), putting the freed
    /// tasks' references in `out`; whether it freed any.
    fn sweep_into(&mut self, out: &mut [Option<TaskRef>]) -> bool {
        let visits = out.len().min(self.entries.len());
        let mut freed = 0;
        for _ in 0..visits {
            if let Some(task) = self.sweep_one() {
                out[freed] = Some(task);
                freed += 1;
            }
        }
        freed > 0
    }
}

pub(crate) struct Registry {
    shards: Box<[CachePadded<Lock<Slab>>]>,
}

impl Registry {
    pub(crate) fn new(shards: usize) -> Registry {
        Registry {
            shards: (0..shards.max(1))
                .map(|_| CachePadded::new(Lock::new(Slab::default())))
                .collect(),
        }
    }

    /// Registers `task` in `shard` (taken modulo the shard count), and
    /// sweeps two entries of that shard.
    pub(crate) fn insert(&self, shard: usize, task: TaskRef) {
        // Callers pass a worker index or the worker count, both in range;
        // the modulo (a division) is only a fallback.
        let n = self.shards.len();
        let shard = if shard < n { shard } else { shard % n };
        let mut finished: [Option<TaskRef>; SWEEP_ON_INSERT] = Default::default();
        let mut slab = self.shards[shard].lock();
        // Over the fixed-size array (unrolled), not `sweep_into`: its
        // bounded loop costs the spawn path ~25 instructions.
        for f in finished.iter_mut() {
            *f = slab.sweep_one();
        }
        match slab.free.pop() {
            Some(slot) => slab.entries[slot as usize] = Some(task),
            None => slab.entries.push(Some(task)),
        }
        drop(slab);
        drop(finished); // task destructors run outside the lock
    }

    /// Sweeps the next stretch of `shard`, going on from where the last
    /// sweep stopped. True if it freed any (more may be waiting).
    pub(crate) fn sweep(&self, shard: usize) -> bool {
        let Some(shard) = self.shards.get(shard) else {
            return false;
        };
        let mut finished: [Option<TaskRef>; SWEEP_WHEN_IDLE] = [const { None }; SWEEP_WHEN_IDLE];
        let freed = shard.lock().sweep_into(&mut finished);
        drop(finished); // task destructors run outside the lock
        freed
    }

    /// The shard of tasks spawned from outside the runtime.
    pub(crate) fn external_shard(&self) -> usize {
        self.shards.len() - 1
    }

    /// A snapshot of every registered task (some may be DONE already).
    pub(crate) fn snapshot(&self) -> Vec<TaskRef> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let slab = shard.lock();
            out.extend(slab.entries.iter().flatten().cloned());
        }
        out
    }

    /// Empties the registry (after shutdown).
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock());
            drop(taken);
        }
    }
}
