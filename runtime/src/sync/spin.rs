//! The spin before a park that `Mutex` and `RwLock` share: Go's length
//! (`active_spin` rounds of `active_spin_cnt` pauses, about 2 µs here),
//! only where the lock's holder can be running meanwhile
//! (`park::can_spin`), and with other green threads ready on the worker
//! only while the lock stays busy (its word changes between two rounds),
//! which a holder parked with the lock never makes it.

/// Spin rounds before parking. Shorter spins (1 + 2 + 4 + 8 pauses)
/// parked 4% of all lockers in the `mutex` benchmark (8 green threads on 2
/// workers) and cost 2.5x the time.
#[cfg(not(loom))]
const ROUNDS: u32 = 4;
/// Under loom one round: the model explores it, not its length.
#[cfg(loom)]
const ROUNDS: u32 = 1;
/// Pause instructions per round.
const PAUSES: u32 = 30;

/// One locker's spin.
pub(crate) struct Spin {
    rounds: u32,
    /// Nothing else waits to run on this worker.
    patient: bool,
    /// The lock word at the last round.
    seen: Option<usize>,
}

impl Spin {
    pub(crate) fn new() -> Spin {
        Spin {
            rounds: if grove_scheduler::park::can_spin() {
                ROUNDS
            } else {
                0
            },
            patient: !grove_scheduler::park::others_ready_here(),
            seen: None,
        }
    }

    /// How many rounds to spin at most (0 where the holder cannot run).
    pub(crate) fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Whether to spin this round, given the lock word as the caller just
    /// saw it held: not when other green threads wait here and the word
    /// has not changed since the last round.
    pub(crate) fn busy(&mut self, word: usize) -> bool {
        let unchanged = self.seen == Some(word);
        self.seen = Some(word);
        self.patient || !unchanged
    }

    /// One round's pauses.
    pub(crate) fn pause() {
        for _ in 0..PAUSES {
            std::hint::spin_loop();
        }
    }
}
