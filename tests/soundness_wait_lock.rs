//! `grove_scheduler::lock` and `grove_scheduler::wait` are public, so safe
//! code may call them in any order from any thread: issue 19 cases 3 and 4
//! showed two ways that caused undefined behaviour, and a third way to
//! lose a wake-up. Each has a test here named after it; the auto traits
//! of every public type of both modules (and of `grove::chan`) are checked
//! here too, the negative ones with an "implements" probe (the
//! `compile_fail` doctests on the types say the same at compile time).

#[path = "common/base.rs"]
mod base;

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base::{expect_panic, wait_until, watchdog_for};
use grove::chan::{self, Select, SelectedOperation};
use grove_scheduler::lock::{Lock, LockGuard};
use grove_scheduler::wait::{
    self, ArmOutcome, ArmPacket, Claimed, DeferredRecv, DeferredSend, SelectCx, WaitQueue, Woken,
};
use grove_scheduler::WaitReason;

/// Whether `$ty` implements `$tr`, as a `bool` (an inherent associated
/// const wins over the trait's when its bound holds: the "impls" trick).
macro_rules! implements {
    ($ty:ty: $($tr:tt)+) => {{
        #[allow(dead_code)]
        struct Probe<T: ?Sized>(PhantomData<T>);
        #[allow(dead_code)]
        trait No {
            const YES: bool = false;
        }
        impl<T: ?Sized> No for Probe<T> {}
        #[allow(dead_code)]
        impl<T: ?Sized + $($tr)+> Probe<T> {
            const YES: bool = true;
        }
        Probe::<$ty>::YES
    }};
}

/// Issue 19 case 3: `LockGuard<T>` was `Sync` whenever `T: Send` (derived
/// through `&Lock<T>`), so two threads sharing a `&LockGuard<Cell<u64>>`
/// raced on the cell (half of 10M increments lost). Now std's rule holds:
/// `Sync` only if `T: Sync`.
#[test]
fn lock_guard_is_sync_only_if_its_value_is() {
    assert!(!implements!(LockGuard<'static, Cell<u64>>: Sync));
    assert!(implements!(LockGuard<'static, Cell<u64>>: Send));
    assert!(implements!(LockGuard<'static, u64>: Sync));
    assert!(!implements!(LockGuard<'static, Rc<u64>>: Send));
    assert!(implements!(Lock<Cell<u64>>: Send + Sync), "as std's Mutex");
    assert!(!implements!(Lock<Rc<u64>>: Sync));
    // And the lock still counts exactly from many threads.
    let lock = Arc::new(Lock::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let lock = lock.clone();
            std::thread::spawn(move || (0..10_000).for_each(|_| *lock.lock() += 1))
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*lock.lock(), 40_000);
}

/// Issue 19 case 4, the auto-trait half: `Packet<T>` was public and `Sync`
/// for `T: Send`, and a select arm's packet was an `Arc` anyone could
/// clone, so two threads could take one value at once. The packet is
/// private now; an arm's packet is read through `ArmPacket`, which is not
/// `Clone` and reads through `&mut self`; a claim is not `Sync`.
#[test]
fn wait_types_have_the_intended_auto_traits() {
    assert!(!implements!(ArmPacket<u32>: Clone));
    assert!(implements!(ArmPacket<u32>: Send + Sync));
    assert!(!implements!(ArmPacket<Rc<u32>>: Send));
    assert!(implements!(Claimed<u32>: Send));
    assert!(!implements!(Claimed<u32>: Sync));
    assert!(!implements!(Claimed<Rc<u32>>: Send));
    assert!(implements!(WaitQueue<u32>: Send));
    assert!(!implements!(WaitQueue<u32>: Sync));
    assert!(!implements!(WaitQueue<Rc<u32>>: Send));
    assert!(implements!(SelectCx: Send + Sync));
    assert!(implements!(DeferredRecv<u32>: Send + Sync));
    assert!(implements!(DeferredSend<u32>: Send + Sync));
    assert!(!implements!(DeferredRecv<Rc<u32>>: Send));
    assert!(implements!(Woken<u32>: Send));
    assert!(implements!(ArmOutcome<u32>: Send));
}

/// The auto traits of `grove::chan`'s public types (the contract: both ends are
/// `Clone + Send + Sync`, and `UnwindSafe + RefUnwindSafe`; a select stays
/// on its thread).
#[test]
fn channel_types_have_the_intended_auto_traits() {
    use grove::chan::{IntoIter, Iter, Receiver, Sender, TryIter};
    assert!(implements!(Sender<Cell<u8>>: Send + Sync + Clone));
    assert!(implements!(Receiver<Cell<u8>>: Send + Sync + Clone));
    assert!(!implements!(Sender<Rc<u8>>: Send));
    assert!(!implements!(Receiver<Rc<u8>>: Sync));
    assert!(implements!(Sender<Cell<u8>>: std::panic::UnwindSafe + std::panic::RefUnwindSafe));
    assert!(implements!(Receiver<Cell<u8>>: std::panic::UnwindSafe + std::panic::RefUnwindSafe));
    assert!(implements!(Iter<'static, u8>: Send + Sync));
    assert!(implements!(TryIter<'static, u8>: Send + Sync));
    assert!(implements!(IntoIter<u8>: Send + Sync));
    assert!(!implements!(Iter<'static, Rc<u8>>: Send));
    assert!(implements!(Select<'static>: Clone));
    assert!(!implements!(Select<'static>: Send));
    assert!(!implements!(Select<'static>: Sync));
    assert!(!implements!(SelectedOperation<'static>: Send));
    assert!(!implements!(SelectedOperation<'static>: Sync));
    // The hidden arms `select!` expands to: a receive arm may travel with
    // its receiver (it holds a reference to it and perhaps a received
    // value), a send arm's reservation stays on the select's thread.
    use grove_channels::__private::{RecvArm, SendArm};
    assert!(implements!(RecvArm<'static, Cell<u8>>: Send));
    assert!(!implements!(RecvArm<'static, Cell<u8>>: Sync));
    assert!(!implements!(RecvArm<'static, Rc<u8>>: Send));
    assert!(!implements!(SendArm<'static, u8>: Send));
    assert!(!implements!(SendArm<'static, u8>: Sync));
}

/// Issue 19 case 4, the lifetime half: `WaitQueue::push_select(&cx, ..)`
/// kept a bare pointer to `cx`; dropping `cx` and then claiming the arm
/// wrote into freed memory (valgrind: invalid read in `Entry::claim`). The
/// queue now makes the arm's packet and holds the select's context by an
/// `Arc`: the same sequence from safe code claims and completes the arm.
#[test]
fn a_select_context_dropped_while_its_arm_is_queued() {
    let queue = Arc::new(Mutex::new(WaitQueue::<String>::new()));
    let mut packets: Vec<ArmPacket<String>> = Vec::new();
    let mut selects = Vec::new();
    for arm in 0..64 {
        let cx = Arc::new(SelectCx::new());
        packets.push(queue.lock().unwrap().push_select(&cx, arm, false));
        selects.push(Arc::downgrade(&cx));
        drop(cx); // the select's own handle is gone; its arm is queued
                  // Reuse the memory, as the old repro did.
        drop(vec![0xa5u8; 64]);
    }
    let claimer = {
        let queue = queue.clone();
        std::thread::spawn(move || {
            let mut delivered = 0;
            while let Some(claim) = queue.lock().unwrap().claim_first(None) {
                claim.deliver(format!("value {delivered}")).wake();
                delivered += 1;
            }
            delivered
        })
    };
    assert_eq!(claimer.join().unwrap(), 64);
    for (i, packet) in packets.iter_mut().enumerate() {
        match packet.outcome() {
            ArmOutcome::Received(v) => assert_eq!(v, format!("value {i}")),
            _ => panic!("arm {i} was not completed"),
        }
    }
    assert!(
        selects.iter().all(|s| s.upgrade().is_some()),
        "the packets hold them"
    );
    drop(packets);
    assert!(
        selects.iter().all(|s| s.upgrade().is_none()),
        "and free them"
    );
}

static TEST: WaitReason = WaitReason("soundness test");

/// A claim misused from safe code must not lose its waiter's wake-up:
/// `Claimed::into_deferred_recv` on a plain waiter (not a select arm) panics, and
/// the waiter is woken to retry (before, the claim's entry was taken out
/// before the check, and the waiter stayed parked forever).
#[test]
fn a_misused_claim_still_wakes_its_waiter() {
    watchdog_for(Duration::from_secs(30), || {
        let queue = Arc::new(Mutex::new(WaitQueue::<u32>::new()));
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                let woken = wait::block(
                    queue.lock().unwrap(),
                    || queue.lock().unwrap(),
                    |q: &mut WaitQueue<u32>| q,
                    Some(5),
                    None,
                    &TEST,
                    std::panic::Location::caller(),
                );
                match woken {
                    Woken::Retry(v) => v,
                    _ => panic!("expected a retry"),
                }
            })
        };
        wait_until("the waiter is queued", || queue.lock().unwrap().len() == 1);
        let claim = queue.lock().unwrap().claim_first(None).expect("queued");
        // (A debug build's kind assertion may be what panics.)
        expect_panic(AssertUnwindSafe(move || claim.into_deferred_recv()));
        assert_eq!(
            waiter.join().unwrap(),
            Some(5),
            "woken, with its value back"
        );
        // And a claim that is simply dropped wakes its waiter too.
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                matches!(
                    wait::block(
                        queue.lock().unwrap(),
                        || queue.lock().unwrap(),
                        |q: &mut WaitQueue<u32>| q,
                        None,
                        None,
                        &TEST,
                        std::panic::Location::caller(),
                    ),
                    Woken::Retry(None)
                )
            })
        };
        wait_until("the waiter is queued", || queue.lock().unwrap().len() == 1);
        let claim = queue.lock().unwrap().claim_first(None).expect("queued");
        drop(claim);
        assert!(waiter.join().unwrap());
    });
}

/// The one function here that points a queue at a stack, `wait::block`,
/// cannot be made to return (or unwind) while its entry is still queued,
/// whatever its closures do: a relock closure that panics while the waiter
/// times out is retried by the unwind guard, which still removes the entry
/// before the frame goes. The queue is left empty and usable.
#[test]
fn block_leaves_no_entry_behind_when_its_closure_panics() {
    watchdog_for(Duration::from_secs(30), || {
        let queue = Arc::new(Mutex::new(WaitQueue::<u32>::new()));
        let relocks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (q, r) = (queue.clone(), relocks.clone());
        let outcome = panic::catch_unwind(AssertUnwindSafe(move || {
            wait::block(
                q.lock().unwrap(),
                || {
                    if r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        panic!("the first relock fails");
                    }
                    q.lock().unwrap_or_else(|e| e.into_inner())
                },
                |q: &mut WaitQueue<u32>| q,
                Some(1),
                Some(std::time::Instant::now()),
                &TEST,
                std::panic::Location::caller(),
            )
        }));
        assert!(outcome.is_err(), "the relock's panic came through");
        assert_eq!(relocks.load(std::sync::atomic::Ordering::SeqCst), 2);
        let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
        assert!(queue.is_empty(), "the entry left with its frame");
    });
}

/// `SelectedOperation` and `Select` borrow channel ends for `'a`: a select
/// cannot outlive them (checked by the compiler; a smoke run here).
#[test]
fn a_select_borrows_its_channels() {
    let (tx, rx) = chan::bounded::<u32>(1);
    tx.send(1).unwrap();
    let mut sel = Select::new();
    sel.recv(&rx);
    let oper = sel.select();
    assert_eq!(oper.recv(&rx), Ok(1));
}

/// `wait::block` takes the caller's guard, relock and queue accessor:
/// caller code. A guard whose `Drop` releases the lock and then panics
/// unwound out of `block` after its entry (a pointer to the packet on
/// `block`'s stack) was queued and before the entry's unwind guard
/// existed: the queue kept a dangling pointer, and the next claimer wrote
/// its value and read its unparker through it (SIGSEGV in 20 of 20 runs,
/// or a live local overwritten). The entry now leaves the queue however
/// `block` is left. Also through a timed wait: a guard that panics on its
/// second drop (the one after the timed-out entry was removed).
#[test]
fn a_guard_whose_drop_panics_leaves_no_entry_behind() {
    static QUEUE: Mutex<WaitQueue<u64>> = Mutex::new(WaitQueue::new());
    static REASON: WaitReason = WaitReason("test: guard drop panics");
    /// The queue's std guard, and how many more drops may pass before one
    /// panics (after releasing the lock).
    struct Guard(
        Option<std::sync::MutexGuard<'static, WaitQueue<u64>>>,
        Arc<Cell2>,
    );
    struct Cell2(std::sync::atomic::AtomicUsize);
    impl std::ops::Deref for Guard {
        type Target = WaitQueue<u64>;
        fn deref(&self) -> &WaitQueue<u64> {
            self.0.as_ref().expect("held")
        }
    }
    impl std::ops::DerefMut for Guard {
        fn deref_mut(&mut self) -> &mut WaitQueue<u64> {
            self.0.as_mut().expect("held")
        }
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            drop(self.0.take());
            let left = &self.1 .0;
            if left.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("test: a guard's drop panics");
            }
        }
    }
    fn lock(passes: &Arc<Cell2>) -> Guard {
        Guard(
            Some(QUEUE.lock().unwrap_or_else(|e| e.into_inner())),
            passes.clone(),
        )
    }
    watchdog_for(Duration::from_secs(30), || {
        // 0: the first drop (right after queueing) panics; 1: the second,
        // after a timed-out entry was taken out under the relock.
        for passes_before_panic in [0, 1] {
            let passes = Arc::new(Cell2(std::sync::atomic::AtomicUsize::new(
                passes_before_panic,
            )));
            let deadline = (passes_before_panic == 1)
                .then(|| std::time::Instant::now() + Duration::from_millis(5));
            let relock_passes = passes.clone();
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                wait::block(
                    lock(&passes),
                    || lock(&relock_passes),
                    |q: &mut WaitQueue<u64>| q,
                    None,
                    deadline,
                    &REASON,
                    std::panic::Location::caller(),
                )
            }));
            let message = base::panic_message(&*outcome.err().expect("the guard's drop panicked"));
            assert!(message.contains("a guard's drop panics"), "{message}");
            let mut queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
            assert!(
                queue.is_empty(),
                "{} entr(ies) left behind by a waiter that is gone",
                queue.len()
            );
            assert!(queue.claim_first(None).is_none());
        }
    });
}
