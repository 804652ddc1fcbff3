//! Many selects waiting on one channel at once (Go's BenchmarkChanPopular
//! shape: each green thread selects on a shared channel and on one of its
//! own, and is answered on its own). A select done with the shared channel
//! may leave its entry in that channel's long queue for the next claimer to
//! drop (`WaitQueue::remove_select`): nothing may be lost or doubled, the
//! queue must not grow without bound, and an entry left behind must not
//! hold its green thread (whose output's destructor would then run under
//! the shared channel's lock).

#[path = "common/chan_util.rs"]
mod chan_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chan_util::{runtime, watchdog};
use grove::chan::{self, Receiver, Sender};

const THREADS: usize = 200;
const ROUNDS: usize = 50;

#[test]
fn many_selects_on_one_channel_answered_on_their_own() {
    watchdog(|| {
        for workers in [1, 2] {
            let rt = runtime(workers);
            rt.block_on(move || {
                let (shared_tx, shared_rx) = chan::bounded::<usize>(0);
                let from_shared = Arc::new(AtomicUsize::new(0));
                let mut own = Vec::new();
                let mut handles = Vec::new();
                for _ in 0..THREADS {
                    let (tx, rx) = chan::bounded::<usize>(0);
                    own.push(tx);
                    let shared = shared_rx.clone();
                    let from_shared = from_shared.clone();
                    handles.push(grove::go(move || {
                        let never = chan::never::<usize>();
                        let (mut sum, mut shared_open) = (0, true);
                        loop {
                            let s = if shared_open { &shared } else { &never };
                            grove::select! {
                                recv(*s) -> v => match v {
                                    Ok(v) => {
                                        from_shared.fetch_add(1, Ordering::Relaxed);
                                        sum += v;
                                    }
                                    Err(_) => shared_open = false,
                                },
                                recv(rx) -> v => match v {
                                    Ok(v) => sum += v,
                                    Err(_) => break,
                                },
                            }
                        }
                        sum
                    }));
                }
                // Every round answers each thread on its own channel, and
                // one in fifty through the shared one (whoever takes it):
                // each value exactly once.
                let mut sent = 0;
                for round in 0..ROUNDS {
                    for (i, tx) in own.iter().enumerate() {
                        let v = round * THREADS + i;
                        if i % 50 == round % 50 {
                            shared_tx.send(v).unwrap();
                        } else {
                            tx.send(v).unwrap();
                        }
                        sent += v;
                    }
                }
                drop(own);
                drop(shared_tx);
                let got: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
                assert_eq!(got, sent, "{workers} workers: values lost or doubled");
                assert_eq!(
                    from_shared.load(Ordering::Relaxed),
                    ROUNDS * THREADS / 50,
                    "{workers} workers"
                );
            });
        }
    });
}

/// A green thread's output whose destructor looks at the shared channel
/// (taking its lock) and counts itself: run under that channel's lock (an
/// entry left behind holding the last count of the thread), it would spin
/// on the lock for ever.
struct LooksOnDrop(Sender<u32>, Arc<AtomicUsize>);

impl Drop for LooksOnDrop {
    fn drop(&mut self) {
        let _ = self.0.len();
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn an_entry_left_behind_does_not_hold_its_green_thread() {
    const DONE: usize = 50;
    const ANCHORS: usize = 200;
    watchdog(|| {
        let rt = runtime(2);
        let (shared_tx, shared_rx) = chan::bounded::<u32>(0);
        let dropped = Arc::new(AtomicUsize::new(0));
        // First in the shared channel's queue: selects answered on their
        // own channels, whose entries there may stay behind.
        let mut own = Vec::new();
        let mut finishers = Vec::new();
        for _ in 0..DONE {
            let (tx, rx) = chan::bounded::<u32>(0);
            own.push(tx);
            let (shared_rx, shared_tx): (Receiver<u32>, _) = (shared_rx.clone(), shared_tx.clone());
            let dropped = dropped.clone();
            finishers.push(rt.spawn(move || {
                grove::select! {
                    recv(shared_rx) -> _v => panic!("nothing is sent there yet"),
                    recv(rx) -> v => assert_eq!(v, Ok(7)),
                }
                LooksOnDrop(shared_tx, dropped)
            }));
        }
        chan_util::wait_blocked(&rt, "select", DONE);
        // Behind them, plain receivers that keep the queue long.
        let anchors: Vec<_> = (0..ANCHORS)
            .map(|_| {
                let shared_rx = shared_rx.clone();
                rt.spawn(move || shared_rx.recv().unwrap())
            })
            .collect();
        chan_util::wait_blocked(&rt, "chan recv", ANCHORS);
        for tx in &own {
            tx.send(7).unwrap();
        }
        // Each finisher done, its handle dropped unjoined: its output goes
        // here, unless an entry in the shared queue still holds the thread.
        for h in finishers {
            while !h.is_finished() {
                std::thread::yield_now();
            }
            drop(h);
        }
        // The sends pop the entries left at the queue's front, under the
        // shared channel's lock, on their way to the anchors.
        for v in 0..ANCHORS as u32 {
            shared_tx.send(v).unwrap();
        }
        let got: u32 = anchors.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(got, (0..ANCHORS as u32).sum::<u32>());
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            DONE,
            "every output dropped once"
        );
    });
}
