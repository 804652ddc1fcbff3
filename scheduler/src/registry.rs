//! Every live task of a runtime, for `Runtime::tasks()` and for shutdown.
//!
//! Sharded by the spawning worker so that spawns on different workers take
//! different locks. A task is inserted when spawned; removal is lazy: the
//! worker that completes a task queues its key and removes keys in batches
//! (see `Worker::complete`), so readers skip entries that are already DONE.

use crossbeam_utils::CachePadded;

use crate::lock::Lock;
use crate::task::TaskRef;

#[derive(Default)]
struct Slab {
    entries: Vec<Option<TaskRef>>,
    free: Vec<u32>,
}

pub(crate) struct Registry {
    shards: Box<[CachePadded<Lock<Slab>>]>,
}

/// A registry key: shard in the high half, slot in the low half.
fn key(shard: usize, slot: u32) -> u64 {
    ((shard as u64) << 32) | u64::from(slot)
}

impl Registry {
    pub(crate) fn new(shards: usize) -> Registry {
        Registry {
            shards: (0..shards.max(1))
                .map(|_| CachePadded::new(Lock::new(Slab::default())))
                .collect(),
        }
    }

    /// Registers `task` in `shard` (taken modulo the shard count).
    pub(crate) fn insert(&self, shard: usize, task: TaskRef) -> u64 {
        // Callers pass a worker index or the worker count, both in range;
        // the modulo (a division) is only a fallback.
        let n = self.shards.len();
        let shard = if shard < n { shard } else { shard % n };
        let mut slab = self.shards[shard].lock();
        let slot = match slab.free.pop() {
            Some(slot) => {
                slab.entries[slot as usize] = Some(task);
                slot
            }
            None => {
                slab.entries.push(Some(task));
                (slab.entries.len() - 1) as u32
            }
        };
        key(shard, slot)
    }

    /// Removes the tasks with these keys; `keys` is left empty. Keys come
    /// mostly in runs of one shard (a worker completes what it spawned),
    /// so each run takes its shard's lock once; no sort.
    pub(crate) fn remove_batch(&self, keys: &mut Vec<u64>) {
        let mut removed = Vec::with_capacity(keys.len());
        let mut i = 0;
        while i < keys.len() {
            let shard = (keys[i] >> 32) as usize;
            let mut slab = self.shards[shard].lock();
            while i < keys.len() && (keys[i] >> 32) as usize == shard {
                let slot = keys[i] as u32;
                // A slot may be gone: shutdown empties the registry, and a
                // green thread it gave up on (see `worker::abandon`) may
                // still finish later.
                if let Some(task) = slab.entries.get_mut(slot as usize).and_then(Option::take) {
                    removed.push(task);
                    slab.free.push(slot);
                }
                i += 1;
            }
        }
        keys.clear();
        drop(removed); // task destructors run outside the locks
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
