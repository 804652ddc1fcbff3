//! Helpers shared by the channel tests (`tests/chan_*.rs`): worker-count
//! sweeps, a watchdog that bounds every test, waiting (without sleeping)
//! until green threads are parked on a channel, drop counters, and the
//! checksum that the stress tests use to prove nothing was lost or
//! duplicated.
//!
//! Included with `#[path = "common/chan_util.rs"] mod chan_util;`; the helpers all tests
//! share come from `base.rs`. Each test binary uses a subset.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[path = "base.rs"]
mod base;
#[allow(unused_imports)] // each test binary uses a subset
pub use base::*;

/// How late a timer may fire on this (noisy, 2-core, debug build) machine
/// before a test calls it broken. Deliberately loose: the timer tests check
/// "never early" exactly and "not absurdly late" only.
pub const LATE_LIMIT: Duration = Duration::from_millis(200);

/// Counts drops of [`Tracked`] values.
#[derive(Default)]
pub struct DropCount(AtomicUsize);

impl DropCount {
    pub fn new() -> Arc<DropCount> {
        Arc::new(DropCount::default())
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A value that counts its drop: proves a value was dropped exactly once
/// (neither leaked nor duplicated) and carries an id.
pub struct Tracked {
    pub id: u64,
    count: Arc<DropCount>,
}

impl Tracked {
    pub fn new(id: u64, count: &Arc<DropCount>) -> Tracked {
        Tracked {
            id,
            count: count.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.count.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

/// A message of the stress tests: producer `p`'s `seq`-th value.
pub type Msg = (usize, u64);

/// Checks what the consumers of a stress test received, one `Vec` per
/// consumer in the order it received them, against `producers` producers
/// that each sent `0..per_producer` in order:
///
/// - every `(p, seq)` arrived exactly once (nothing lost, nothing
///   duplicated), so the count and the sum match too;
/// - each consumer saw each producer's values in increasing order (a
///   channel is FIFO, and a producer's sends are sequential).
#[track_caller]
pub fn check_received(received: &[Vec<Msg>], producers: usize, per_producer: u64) {
    let mut seen = vec![vec![false; per_producer as usize]; producers];
    let mut count = 0u64;
    let mut sum = 0u64;
    for (c, values) in received.iter().enumerate() {
        let mut last: Vec<Option<u64>> = vec![None; producers];
        for &(p, seq) in values {
            assert!(
                p < producers && seq < per_producer,
                "consumer {c} got a value nobody sent: ({p}, {seq})"
            );
            assert!(!seen[p][seq as usize], "({p}, {seq}) was received twice");
            seen[p][seq as usize] = true;
            if let Some(prev) = last[p] {
                assert!(
                    seq > prev,
                    "consumer {c} got producer {p}'s {seq} after its {prev}: not FIFO"
                );
            }
            last[p] = Some(seq);
            count += 1;
            sum += p as u64 * per_producer + seq;
        }
    }
    let total = producers as u64 * per_producer;
    let lost: Vec<(usize, usize)> = seen
        .iter()
        .enumerate()
        .flat_map(|(p, s)| {
            s.iter()
                .enumerate()
                .filter(|(_, got)| !**got)
                .map(move |(seq, _)| (p, seq))
        })
        .take(10)
        .collect();
    assert!(
        lost.is_empty(),
        "values never received (first 10): {lost:?}"
    );
    assert_eq!(count, total, "received count");
    assert_eq!(sum, total * (total - 1) / 2, "received checksum");
}
