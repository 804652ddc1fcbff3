//! `grove::sync::Condvar` and `Barrier` through the public API: every wait
//! and notify method, no lost notification in a 10,000-item
//! producer/consumer loop, timeouts that never end early, waiters on green
//! threads and OS threads at once, poisoning as in std, and a reusable
//! barrier with exactly one leader per generation.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grove::sync::{Arc, Barrier, BarrierWaitResult, Condvar, Mutex, WaitTimeoutResult};
use grove::thread;
use sync_util::{
    assert_send_sync, block_on_each, for_each_workers, runtime, wait_blocked, wait_until, watchdog,
    LATE_LIMIT,
};

/// A one-slot buffer: the tightest producer/consumer hand-off, where every
/// item needs one wake-up each way.
struct Slot {
    item: Mutex<Option<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            item: Mutex::new(None),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        })
    }

    /// Puts with `wait` in a loop (the classic form).
    fn put(&self, v: u64) {
        let mut g = self.item.lock().unwrap();
        while g.is_some() {
            g = self.not_full.wait(g).unwrap();
        }
        *g = Some(v);
        drop(g);
        self.not_empty.notify_one();
    }

    /// Takes with `wait_while`.
    fn take(&self) -> u64 {
        let mut g = self
            .not_empty
            .wait_while(self.item.lock().unwrap(), |item| item.is_none())
            .unwrap();
        let v = g.take().expect("not empty");
        drop(g);
        self.not_full.notify_one();
        v
    }
}

#[test]
fn producer_consumer_10000_items_loses_no_notification() {
    const ITEMS: u64 = 10_000;
    block_on_each(|_| {
        let slot = Slot::new();
        let producer = {
            let slot = slot.clone();
            grove::go(move || (0..ITEMS).for_each(|v| slot.put(v)))
        };
        for expected in 0..ITEMS {
            assert_eq!(slot.take(), expected, "items arrive in order, once each");
        }
        producer.join().unwrap();
    });
}

/// Several producers and consumers on one slot, some of them OS threads:
/// every item arrives exactly once (count and checksum).
#[test]
fn many_producers_and_consumers_green_and_os() {
    const PRODUCERS: u64 = 4;
    const PER: u64 = 1_000;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let slot = Slot::new();
        let mut producers = Vec::new();
        let mut os_producer = None;
        for p in 0..PRODUCERS {
            let slot = slot.clone();
            let job = move || (0..PER).for_each(|i| slot.put(p * PER + i));
            if p == 0 {
                os_producer = Some(std::thread::spawn(job));
            } else {
                producers.push(rt.spawn(job));
            }
        }
        // Consumers take an exact share each: 3 green, 1 OS.
        let share = PRODUCERS * PER / 4;
        let consumer =
            |slot: Arc<Slot>| move || (0..share).map(|_| slot.take()).collect::<Vec<_>>();
        let green: Vec<_> = (0..3).map(|_| rt.spawn(consumer(slot.clone()))).collect();
        let os = std::thread::spawn(consumer(slot.clone()));
        let mut got: Vec<u64> = os.join().unwrap();
        for c in green {
            got.extend(c.join().unwrap());
        }
        os_producer.unwrap().join().unwrap();
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, (0..PRODUCERS * PER).collect::<Vec<_>>());
    });
}

/// `notify_all` wakes every waiter, green or OS. The waiters count
/// themselves under the mutex before waiting, and `wait` releases it only
/// once the waiter is queued, so a notifier that sees all of them counted
/// (under the same mutex) cannot miss any.
#[test]
fn notify_all_wakes_every_waiter() {
    const GREEN: usize = 50;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let state = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
        let waiter = {
            let state = state.clone();
            move || {
                let (m, cv) = &*state;
                let mut g = m.lock().unwrap();
                g.0 += 1;
                while !g.1 {
                    g = cv.wait(g).unwrap();
                }
            }
        };
        let green: Vec<_> = (0..GREEN).map(|_| rt.spawn(waiter.clone())).collect();
        let os = std::thread::spawn(waiter);
        let (m, cv) = &*state;
        wait_until("every waiter to be counted", || {
            m.lock().unwrap().0 == GREEN + 1
        });
        m.lock().unwrap().1 = true;
        cv.notify_all();
        os.join().unwrap();
        for h in green {
            h.join().unwrap();
        }
    });
}

/// `notify_one` wakes exactly one `wait`, and N calls wake N waiters.
#[test]
fn notify_one_wakes_one_waiter_per_call() {
    const WAITERS: usize = 6;
    block_on_each(|_| {
        let state = Arc::new((Mutex::new(0usize), Condvar::new()));
        let returned = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..WAITERS)
            .map(|_| {
                let (state, returned) = (state.clone(), returned.clone());
                grove::go(move || {
                    let (m, cv) = &*state;
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    let _g = cv.wait(g).unwrap();
                    returned.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let (m, cv) = &*state;
        wait_until("every waiter to wait", || *m.lock().unwrap() == WAITERS);
        for woken in 1..=WAITERS {
            cv.notify_one();
            wait_until("one waiter to return", || {
                returned.load(Ordering::SeqCst) >= woken
            });
            // Let any wrongly woken waiter run, then count again.
            for _ in 0..20 {
                thread::yield_now();
            }
            assert_eq!(
                returned.load(Ordering::SeqCst),
                woken,
                "one wake per notify_one"
            );
        }
        for h in hs {
            h.join().unwrap();
        }
        // Nobody waits now: notifying is a no-op that must not be stored.
        cv.notify_one();
        cv.notify_all();
        let (g, res) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(5))
            .unwrap();
        assert!(
            res.timed_out(),
            "a notify before the wait is not remembered"
        );
        drop(g);
    });
}

/// A `notify_one` spent on a green waiter whose runtime is then dropped is
/// passed on to the next waiter (here a green thread of a second runtime,
/// so that the test can see it queued) when the first one is unwound
/// instead of returning from `wait`. If the first one did return (it ran
/// before the drop), the notification was used and the test sends the
/// second one its own; either way the second one must come back.
#[test]
fn a_notification_spent_on_an_unwound_waiter_is_passed_on() {
    const ROUNDS: usize = 20;
    for_each_workers(|workers| {
        let other = runtime(1);
        let mut unwound = 0;
        for _ in 0..ROUNDS {
            let rt = runtime(workers);
            let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
            let returned = Arc::new(std::sync::atomic::AtomicBool::new(false));
            {
                let (pair, returned) = (pair.clone(), returned.clone());
                rt.spawn(move || {
                    let (m, cv) = &*pair;
                    let g = cv.wait(m.lock().unwrap()).unwrap();
                    returned.store(true, Ordering::SeqCst);
                    drop(g);
                });
            }
            wait_blocked(&rt, "Condvar::wait", 1);
            let last = {
                let pair = pair.clone();
                other.spawn(move || {
                    let (m, cv) = &*pair;
                    let g = cv.wait(m.lock().unwrap_or_else(|e| e.into_inner()));
                    drop(g);
                })
            };
            wait_blocked(&other, "Condvar::wait", 1);
            pair.1.notify_one();
            drop(rt);
            if returned.load(Ordering::SeqCst) {
                pair.1.notify_one();
            } else {
                unwound += 1;
            }
            last.join().unwrap();
        }
        eprintln!("{workers} worker(s): {unwound} of {ROUNDS} first waiters unwound");
    });
}

#[test]
fn wait_timeout_never_ends_early_and_reports_which_way_it_ended() {
    const DUR: Duration = Duration::from_millis(30);
    block_on_each(|_| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let (m, cv) = &*pair;

        // Nobody notifies: times out, no earlier than asked, lock held.
        let t0 = Instant::now();
        let (g, res) = cv.wait_timeout(m.lock().unwrap(), DUR).unwrap();
        let took = t0.elapsed();
        assert!(res.timed_out());
        assert!(took >= DUR, "ended after {took:?} < {DUR:?}");
        assert!(took < DUR + LATE_LIMIT, "ended after {took:?}");
        assert!(m.try_lock().is_err(), "the guard holds the lock again");
        drop(g);
        // std's deprecated spelling: true if it did not time out.
        #[allow(deprecated)]
        let (g, notified) = cv.wait_timeout_ms(m.lock().unwrap(), 1).unwrap();
        assert!(!notified);
        drop(g);

        let t0 = Instant::now();
        let (g, res) = cv
            .wait_timeout_while(m.lock().unwrap(), DUR, |ready| !*ready)
            .unwrap();
        assert!(res.timed_out() && !*g);
        assert!(t0.elapsed() >= DUR);
        drop(g);

        // Notified in time: not timed out.
        let p2 = pair.clone();
        let notifier = grove::go(move || {
            *p2.0.lock().unwrap() = true;
            p2.1.notify_all();
        });
        let (g, res) = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(30), |ready| !*ready)
            .unwrap();
        assert!(!res.timed_out() && *g);
        drop(g);
        notifier.join().unwrap();

        let p2 = pair.clone();
        let g = m.lock().unwrap();
        let notifier = grove::go(move || {
            let _g = p2.0.lock().unwrap(); // waits until the waiter released it
            p2.1.notify_one();
        });
        let (g, res) = cv.wait_timeout(g, Duration::from_secs(30)).unwrap();
        assert!(!res.timed_out());
        drop(g);
        notifier.join().unwrap();

        // A condition already false returns at once, even with no time.
        let (_g, res) = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::ZERO, |ready| !*ready)
            .unwrap();
        assert!(!res.timed_out());
    });
}

#[test]
fn wait_timeout_from_an_os_thread() {
    watchdog(|| {
        let pair = Arc::new((Mutex::new(0), Condvar::new()));
        let (m, cv) = &*pair;
        let t0 = Instant::now();
        let (g, res) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(20))
            .unwrap();
        assert!(res.timed_out() && t0.elapsed() >= Duration::from_millis(20));
        drop(g);
        let p2 = pair.clone();
        let notifier = grove::go(move || {
            *p2.0.lock().unwrap() = 1;
            p2.1.notify_one();
        });
        let (g, res) = cv
            .wait_timeout_while(m.lock().unwrap(), Duration::from_secs(30), |v| *v == 0)
            .unwrap();
        assert!(!res.timed_out());
        assert_eq!(*g, 1);
        drop(g);
        notifier.join().unwrap();
    });
}

/// A waiter whose mutex is poisoned while it waits gets `Err` with the
/// guard inside, like std; `wait_while` stops at the poison too.
#[test]
fn waiting_on_a_mutex_poisoned_meanwhile_returns_err() {
    block_on_each(|_| {
        // (the waiter is waiting, the value)
        let pair = Arc::new((Mutex::new((false, 0)), Condvar::new()));
        let (m, cv) = &*pair;
        let waiter = {
            let pair = pair.clone();
            grove::go(move || {
                let (m, cv) = &*pair;
                let mut g = m.lock().unwrap();
                g.0 = true;
                match cv.wait_while(g, |s| s.1 == 0) {
                    Ok(_) => None,
                    Err(e) => Some(e.into_inner().1),
                }
            })
        };
        // The waiter holds the mutex from setting the flag until it waits.
        wait_until("the waiter to wait", || m.lock().unwrap().0);
        let p2 = pair.clone();
        let poisoner = grove::go(move || {
            let mut g = p2.0.lock().unwrap();
            g.1 = 1;
            p2.1.notify_all();
            panic!("poison while the waiter waits");
        });
        assert!(poisoner.join().is_err());
        assert_eq!(waiter.join().unwrap(), Some(1));
        let err = cv.wait_timeout(m.lock().unwrap_err().into_inner(), Duration::ZERO);
        let (_, res) = err.expect_err("still poisoned").into_inner();
        assert!(res.timed_out());
    });
}

/// N threads (one of them an OS thread) pass a barrier for many
/// generations: nobody leaves generation g before all arrived at it, and
/// each generation has exactly one leader.
#[test]
fn barrier_is_reusable_with_one_leader_per_generation() {
    const GREEN: usize = 15;
    const N: usize = GREEN + 1;
    const GENERATIONS: usize = 50;
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let barrier = Arc::new(Barrier::new(N));
        let arrived: Arc<Vec<AtomicUsize>> =
            Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
        let leaders: Arc<Vec<AtomicUsize>> =
            Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
        let party = {
            let (barrier, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
            move || {
                for g in 0..GENERATIONS {
                    arrived[g].fetch_add(1, Ordering::SeqCst);
                    let res: BarrierWaitResult = barrier.wait();
                    assert_eq!(
                        arrived[g].load(Ordering::SeqCst),
                        N,
                        "left generation {g} before everyone arrived"
                    );
                    if res.is_leader() {
                        leaders[g].fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        };
        let green: Vec<_> = (0..GREEN).map(|_| rt.spawn(party.clone())).collect();
        let os = std::thread::spawn(party);
        os.join().unwrap();
        for h in green {
            h.join().unwrap();
        }
        for (g, l) in leaders.iter().enumerate() {
            assert_eq!(l.load(Ordering::SeqCst), 1, "leaders of generation {g}");
        }
    });
}

/// Green threads parked on a barrier are reported as such, and the last
/// arrival releases all of them at once.
#[test]
fn barrier_waiters_park_until_the_last_arrives() {
    block_on_each(|_| {
        let barrier = Arc::new(Barrier::new(4));
        let passed = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (b, passed) = (barrier.clone(), passed.clone());
                grove::go(move || {
                    let leader = b.wait().is_leader();
                    passed.fetch_add(1, Ordering::SeqCst);
                    leader
                })
            })
            .collect();
        // Give them time to reach the barrier: none may pass it.
        for _ in 0..50 {
            thread::yield_now();
        }
        assert_eq!(passed.load(Ordering::SeqCst), 0);
        let me_leader = barrier.wait().is_leader();
        let leaders = hs.into_iter().map(|h| h.join().unwrap());
        assert_eq!(leaders.filter(|l| *l).count() + usize::from(me_leader), 1);
        assert_eq!(passed.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn barrier_parked_green_threads_show_in_tasks() {
    watchdog(|| {
        let rt = runtime(2);
        let b = Arc::new(Barrier::new(3));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                rt.spawn(move || b.wait().is_leader())
            })
            .collect();
        wait_blocked(&rt, "Barrier::wait", 2);
        let leader = b.wait().is_leader(); // the OS thread completes it
        let green_leaders = hs.into_iter().map(|h| h.join().unwrap());
        assert_eq!(
            green_leaders.filter(|l| *l).count() + usize::from(leader),
            1
        );
    });
}

/// `Barrier::new(0)` and `new(1)` never wait and always lead, as in std.
#[test]
fn barrier_of_zero_or_one_never_waits() {
    watchdog(|| {
        for n in [0, 1] {
            let std_b = std::sync::Barrier::new(n);
            let b = Barrier::new(n);
            for _ in 0..3 {
                assert!(std_b.wait().is_leader());
                assert!(b.wait().is_leader());
                assert!(grove::run(move || Barrier::new(n).wait().is_leader()));
            }
        }
    });
}

#[test]
fn std_traits() {
    watchdog(|| {
        assert_send_sync::<Condvar>();
        assert_send_sync::<Barrier>();
        let cv = Condvar::default();
        assert!(format!("{cv:?}").starts_with("Condvar"));
        let b = Barrier::new(3);
        assert_eq!(format!("{b:?}"), "Barrier { .. }", "std's Debug");
        let leader = Barrier::new(1).wait();
        assert_eq!(
            format!("{leader:?}"),
            "BarrierWaitResult { is_leader: true }"
        );
        let m = Mutex::new(());
        let (_g, res): (_, WaitTimeoutResult) =
            cv.wait_timeout(m.lock().unwrap(), Duration::ZERO).unwrap();
        let copy = res;
        assert_eq!(res, copy);
        assert!(res.timed_out());
        static CV: Condvar = Condvar::new(); // `new` is const
        CV.notify_all();
    });
}
