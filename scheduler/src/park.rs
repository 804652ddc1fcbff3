//! The park seam: the one way anything above the scheduler blocks.
//!
//! "Park the current task until unparked or until a deadline" and an
//! [`Unparker`] handle to end the park. In a green thread, parking suspends
//! the green thread and its worker runs others; on a plain OS thread, the
//! same call blocks that thread (crossbeam's `Parker`). Channels and sync
//! primitives are written once against this seam, which is what lets green
//! threads and an application's own threads share them.
//!
//! Semantics are std's `thread::park`: an unpark that comes before the park
//! is kept as a token and makes the next park return at once; tokens do not
//! add up; a park may also return spuriously. Callers loop on their own
//! condition.

#[cfg(not(loom))]
use std::cell::Cell;
use std::fmt;
#[cfg(not(loom))]
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[cfg(not(loom))]
use crossbeam_utils::sync::{Parker, Unparker as OsUnparker};
/// Under loom, OS threads are loom's model threads.
#[cfg(loom)]
type OsUnparker = ::loom::thread::Thread;

use crate::coroutine::{self, Request};
use crate::loom::AtomicU8;
use crate::task::{TaskRef, Unpark};
use crate::worker;

/// What a parked green thread waits for, shown by `Runtime::tasks()`.
///
/// ```
/// use grove_scheduler::park::{self, WaitReason};
/// static READY: WaitReason = WaitReason("ready flag");
/// # let _ = &READY;
/// ```
#[derive(Debug)]
pub struct WaitReason(pub &'static str);

/// Waiting for another green thread to finish (`JoinHandle::join`).
pub static JOIN: WaitReason = WaitReason("JoinHandle::join");
/// `thread::park`.
pub static PARK: WaitReason = WaitReason("park");
/// `thread::sleep`.
pub static SLEEP: WaitReason = WaitReason("sleep");

/// Wakes one parked green thread or OS thread (or, for a `JoinHandle`
/// awaited as a future, the awaiting task's `Waker`).
///
/// `#[must_use]`: an unparker handed back by a wait queue (a claimed
/// waiter's) is a wake-up owed; dropping it instead of calling
/// [`wake`](Self::wake) leaves that waiter parked.
#[derive(Clone)]
#[must_use = "dropping an Unparker wakes nobody: call `wake` (or `unpark`)"]
pub struct Unparker(Inner);

#[derive(Clone)]
enum Inner {
    Green(TaskRef),
    Os(OsUnparker),
    Waker(std::task::Waker),
    /// Wakes nobody: what a wait queue hands back for a waiter that spins
    /// for its completion (`wait`, "Spinning waiters").
    Nobody,
}

impl Unparker {
    /// Ends the park of the thread this handle belongs to, or makes its next
    /// park return at once.
    pub fn unpark(&self) {
        match &self.0 {
            Inner::Green(task) => unpark_task(task),
            Inner::Os(unparker) => unparker.unpark(),
            Inner::Waker(waker) => waker.wake_by_ref(),
            Inner::Nobody => {}
        }
    }

    /// Like [`Unparker::unpark`], consuming the handle (saves a reference
    /// count round trip when the handle is not needed afterwards).
    #[inline(always)]
    pub fn wake(self) {
        match self.0 {
            Inner::Green(task) => wake_task(task),
            Inner::Os(unparker) => unparker.unpark(),
            Inner::Waker(waker) => waker.wake(),
            Inner::Nobody => {}
        }
    }

    pub(crate) fn green(task: TaskRef) -> Unparker {
        Unparker(Inner::Green(task))
    }

    /// An unparker that wakes nobody (a spinning waiter needs no wake).
    pub(crate) fn nobody() -> Unparker {
        Unparker(Inner::Nobody)
    }

    /// An unparker that wakes an async task: `unpark` calls the waker.
    /// The waker is called with no lock of the scheduler held.
    pub(crate) fn waker(waker: std::task::Waker) -> Unparker {
        Unparker(Inner::Waker(waker))
    }
}

impl fmt::Debug for Unparker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Green(task) => write!(f, "Unparker(green thread {})", task.header().id),
            Inner::Os(_) => write!(f, "Unparker(OS thread)"),
            Inner::Waker(_) => write!(f, "Unparker(Waker)"),
            Inner::Nobody => write!(f, "Unparker(nobody)"),
        }
    }
}

/// Unparks a green thread: schedules it if it was parked, or leaves a token.
pub(crate) fn unpark_task(task: &TaskRef) {
    match task.header().state.unpark() {
        Unpark::Nothing => {}
        Unpark::Schedule => worker::schedule_woken(task.clone()),
        Unpark::WakeBlockedThread => worker::wake_blocked_thread(task),
    }
}

/// `unpark_task`, consuming the reference.
#[inline(always)]
fn wake_task(task: TaskRef) {
    match task.header().state.unpark() {
        Unpark::Nothing => {}
        Unpark::Schedule => worker::schedule_woken(task),
        Unpark::WakeBlockedThread => worker::wake_blocked_thread(&task),
    }
}

#[cfg(not(loom))]
thread_local! {
    /// The OS thread's parker.
    ///
    /// The slot is a raw pointer (from `Parker::into_raw`) in a thread-local
    /// with no destructor, so it stays usable while the thread's other
    /// thread-locals are destroyed: a channel operation in some other
    /// thread-local's `Drop` blocks and wakes as anywhere else, instead of
    /// panicking ("cannot access a Thread Local Storage value during or after
    /// destruction", an abort inside a destructor). The parker is freed by
    /// [`ParkerOwner`]'s destructor; one made after that ran (by a later
    /// destructor) is owned by [`LATE_PARKER_OWNER`], whose destructor std
    /// runs after the one that made it. A parker made after both ran is
    /// leaked (a few dozen bytes, once per thread at most).
    static OS_PARKER: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
    static PARKER_OWNER: ParkerOwner = const { ParkerOwner };
    static LATE_PARKER_OWNER: ParkerOwner = const { ParkerOwner };
}

/// Frees the thread's parker when the thread-locals are destroyed.
#[cfg(not(loom))]
struct ParkerOwner;

#[cfg(not(loom))]
impl Drop for ParkerOwner {
    fn drop(&mut self) {
        let raw = OS_PARKER.with(|slot| slot.replace(std::ptr::null()));
        if !raw.is_null() {
            // SAFETY: the slot held a pointer from `Parker::into_raw` (see
            // `with_os_parker`), and replacing it with null made this the
            // only owner; no borrow of it is alive (`with_os_parker` lends
            // it only for the duration of a call on this thread).
            drop(unsafe { Parker::from_raw(raw) });
        }
    }
}

#[cfg(not(loom))]
fn with_os_parker<R>(f: impl FnOnce(&Parker) -> R) -> R {
    let mut raw = OS_PARKER.with(Cell::get);
    if raw.is_null() {
        raw = Parker::into_raw(Parker::new());
        OS_PARKER.with(|slot| slot.set(raw));
        // Touching an owner registers its destructor; if both are gone
        // already, the parker is leaked (see `OS_PARKER`).
        if PARKER_OWNER.try_with(|_| ()).is_err() {
            let _ = LATE_PARKER_OWNER.try_with(|_| ());
        }
    }
    // SAFETY: `raw` came from `Parker::into_raw` and is freed only by an
    // owner's destructor, which runs on this thread and not during `f` (a
    // park or an unparker clone runs no destructor of a thread-local).
    // `ManuallyDrop`: the slot keeps its ownership.
    let parker = ManuallyDrop::new(unsafe { Parker::from_raw(raw) });
    f(&parker)
}

#[cfg(not(loom))]
fn os_unparker() -> OsUnparker {
    with_os_parker(|p| p.unparker().clone())
}

#[cfg(not(loom))]
fn os_park(deadline: Option<Instant>) {
    with_os_parker(|p| match deadline {
        Some(d) => p.park_deadline(d),
        None => p.park(),
    });
}

#[cfg(loom)]
fn os_unparker() -> OsUnparker {
    ::loom::thread::current()
}

/// Loom has no clock: a park with a deadline returns at once (a spurious
/// wake-up, which every caller tolerates).
#[cfg(loom)]
fn os_park(deadline: Option<Instant>) {
    if deadline.is_none() {
        ::loom::thread::park();
    }
}

/// The unparker of the calling thread: its green thread, or the OS thread.
#[inline(always)]
pub fn current_unparker() -> Unparker {
    match worker::current_task() {
        Some(task) => Unparker::green(task),
        None => Unparker(Inner::Os(os_unparker())),
    }
}

/// Whether the caller runs in a green thread.
pub fn in_green_thread() -> bool {
    worker::with_current_header(|h| h.is_some())
}

/// Whether the caller is a green thread that its runtime's shutdown is
/// unwinding (the forced unwind of a parked green thread): what
/// `std::thread::panicking()` then says is not a panic of its own.
pub fn is_shutdown_unwinding() -> bool {
    worker::with_current_header(|h| h.is_some_and(|h| h.unwinding.load(Ordering::Relaxed)))
}

/// Parks the calling thread until unparked (or spuriously).
#[track_caller]
pub fn park(reason: &'static WaitReason) {
    park_inner(reason, None, Location::caller());
}

/// Parks until unparked or until `deadline` (or spuriously).
#[track_caller]
pub fn park_until(reason: &'static WaitReason, deadline: Instant) {
    park_inner(reason, Some(deadline), Location::caller());
}

/// Parks until unparked or until `timeout` has passed (or spuriously).
#[track_caller]
pub fn park_timeout(reason: &'static WaitReason, timeout: Duration) {
    // A timeout too large for an Instant is a park without deadline.
    let deadline = Instant::now().checked_add(timeout);
    park_inner(reason, deadline, Location::caller());
}

/// Parks until unparked or until `deadline`, recording `at` as the place
/// of the blocking call (for wrappers that track their caller).
#[inline(always)]
pub fn park_with(
    reason: &'static WaitReason,
    deadline: Option<Instant>,
    at: &'static Location<'static>,
) {
    park_inner(reason, deadline, at);
}

/// [`park_with`] for a wait on the outside world (a socket, a call on the
/// blocking pool): however long it lasts, the runtime's deadlock report
/// never counts the green thread as asleep.
pub fn park_external(
    reason: &'static WaitReason,
    deadline: Option<Instant>,
    at: &'static Location<'static>,
) {
    park_inner_as(reason, deadline, at, true, true);
}

/// [`park_with`], with its spin for an unpark before the switch only if
/// `spin`: `wait::block` spins on its packet instead (see
/// [`spin_while_idle`]) before its first park.
#[inline(always)]
pub(crate) fn park_spinning_if(
    reason: &'static WaitReason,
    deadline: Option<Instant>,
    at: &'static Location<'static>,
    spin: bool,
) {
    park_inner_as(reason, deadline, at, false, spin);
}

#[inline(always)]
fn park_inner(
    reason: &'static WaitReason,
    deadline: Option<Instant>,
    at: &'static Location<'static>,
) {
    park_inner_as(reason, deadline, at, false, true);
}

#[inline(always)]
fn park_inner_as(
    reason: &'static WaitReason,
    deadline: Option<Instant>,
    at: &'static Location<'static>,
    external: bool,
    spin: bool,
) {
    // Inlined by force, as everything between a channel operation's loop
    // and the switch: each call level left there costs a mispredicted
    // return per hand-off (the processor's return stack holds the other
    // stack's calls after a switch).
    let suspended = worker::with_current_header(
        #[inline(always)]
        |header| {
            let Some(header) = header else {
                return false;
            };
            if header.state.take_notified() {
                return true;
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                return true;
            }
            header.wait.set(reason, at);
            if external {
                // Cleared when it next runs (`Worker::resume`).
                header.timed.store(true, Ordering::Relaxed);
            }
            if std::thread::panicking() || header.unwinding.load(Ordering::Relaxed) {
                // Never switch while unwinding: std keeps its panic count in a
                // thread-local, and a forced unwind must reach the root before
                // its worker does anything else. Block this OS thread instead.
                worker::block_os_thread(header, deadline);
            } else if external || deadline.is_some() || !spin || !spin_for_unpark(header) {
                coroutine::suspend(header, Request::Park { deadline });
            }
            header.wait.clear();
            true
        },
    );
    if !suspended {
        worker::os_park(deadline, os_park);
    }
}

/// Rounds of [`PARK_SPIN_PAUSES`] pauses a parking green thread spins for
/// its unpark before it switches away (see `spin_for_unpark`): about 4 µs
/// on the 2-vCPU Xeon we measure on, two or three cross-core hand-offs.
/// Measured there with the channel programs' partners on two workers, 5
/// repetitions each (ns per message, medians), rounds 0 / 4 / 8 / 16 / 32:
/// prodcons 4P/4C 333 / 102 / 105 / 97 / 98, select2 475 / 495 / 397 /
/// 388 / 358, pingpong 1,757 / 1,459 / 1,523 / 1,547 / 1,457 per round
/// trip: past 4 rounds the length hardly matters (that sweep spun also
/// with yielded green threads waiting, since excluded).
const PARK_SPIN_ROUNDS: u32 = 8;
const PARK_SPIN_PAUSES: u32 = 30;

/// Spins a little for an unpark, where nothing else could run on this
/// green thread's worker meanwhile and the waker can run elsewhere: true
/// if one came (consumed), and the park returns without a switch.
///
/// Waking a parked green thread on another worker is a compare-exchange
/// of its state, a push to that worker's inbox and that worker's pickup
/// and switch: about 700 ns here, most of it cache lines moving between
/// the cores. A green thread still running when its unpark comes only has
/// its state's NOTIFIED bit set (invariant 2 of `task`), which this spin
/// sees: the hand-off costs the state's line and nothing else. The worker
/// would spin idle for its inbox anyway (`worker::SPIN`), so the spin costs
/// no CPU the worker would not have burnt; it is skipped wherever another
/// green thread could run here, or sockets are registered (only the worker's
/// own look at the poller sees their readiness).
fn spin_for_unpark(header: &crate::task::Header) -> bool {
    spin_while_idle(|| header.state.take_notified())
}

/// Spins as [`spin_for_unpark`] does, until `done` says so: true if it
/// did. Where the caller may not spin (one worker, one CPU, another green
/// thread ready or queued here, registered sockets), false at once,
/// without calling `done`; a plain OS thread spins as [`spin_os_thread`]
/// says. `wait::block` spins with it on its packet: its claimer then
/// completes the packet without waking the waiter, and a cross-worker
/// hand-off moves the channel's line and the packet's, not the waiter's
/// task header and mailbox.
#[inline]
pub(crate) fn spin_while_idle(mut done: impl FnMut() -> bool) -> bool {
    worker::with_worker(|w| {
        let Some(w) = w else {
            return spin_os_thread(&mut done);
        };
        if !multicore() || w.shared.workers.len() < 2 {
            return false;
        }
        spin_rounds(|| w.may_spin_for_unpark(), &mut done)
    })
}

/// Up to [`PARK_SPIN_ROUNDS`] rounds of [`PARK_SPIN_PAUSES`] pauses, each
/// begun only if `go_on` allows and followed by a look at `done`: whether
/// `done` said so.
#[inline(always)]
fn spin_rounds(mut go_on: impl FnMut() -> bool, done: &mut impl FnMut() -> bool) -> bool {
    for _ in 0..PARK_SPIN_ROUNDS {
        if !go_on() {
            return false;
        }
        for _ in 0..PARK_SPIN_PAUSES {
            std::hint::spin_loop();
        }
        if done() {
            return true;
        }
    }
    false
}

/// Spins a few microseconds until `done` says so (true), where spinning
/// before a park pays: on a plain OS thread (see `spin_os_thread`), or in
/// a green thread whose worker has nothing else to run. False at once
/// elsewhere. For waits whose waker sets a flag and then unparks (a
/// select's decision): an unpark that finds the thread still spinning is
/// an atomic store, no wake-up, and the park that follows may return at
/// once (spuriously, which every park allows).
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let flag = AtomicBool::new(true);
/// // Done at the first look, or no spin where none pays (one CPU).
/// let _ = grove_scheduler::park::spin_before_park(|| flag.load(Ordering::Acquire));
/// ```
pub fn spin_before_park(mut done: impl FnMut() -> bool) -> bool {
    spin_while_idle(&mut done)
}

/// Yields of its CPU a plain OS thread makes after its spin, before it
/// parks (crossbeam's `Backoff` snoozes about as many).
const OS_SPIN_YIELDS: u32 = 4;

/// A plain OS thread's spin before it parks on its futex (see
/// [`completion_wait`]): the rounds a green thread spins, then a few yields
/// of its CPU (its partner may be waiting for that CPU). Without it, an OS
/// thread on a channel paid a futex wait per message, and its partner a
/// futex wake: four OS threads sending into one channel of 1,000 took
/// 158–164 ns a message against crossbeam-channel's 18–20, a one-slot
/// channel between two OS threads 14–17 µs against 0.7–1.6 (a claimer
/// completes a spinning packet without a wake). One CPU: no spin.
fn spin_os_thread(done: &mut impl FnMut() -> bool) -> bool {
    // Loom: each look would be one more interleaving point to explore.
    if cfg!(loom) || !multicore() {
        return false;
    }
    if spin_rounds(|| true, done) {
        return true;
    }
    for _ in 0..OS_SPIN_YIELDS {
        std::thread::yield_now();
        if done() {
            return true;
        }
    }
    false
}

/// Leaves `state`, the packet of the calling green thread's plain wait, to
/// its worker to watch while it parks (see `Worker::watch`): true if the
/// worker took it on. The caller parks with the packet left SPINNING and,
/// once it runs again, calls [`unwatch`] before anything else.
pub(crate) fn watch_while_parked(
    state: &AtomicU8,
    unparker: std::ptr::NonNull<Option<Unparker>>,
) -> bool {
    // A green thread that parks while unwinding blocks its OS thread (see
    // `park_inner_as`), and its worker, which would watch, with it.
    let unwinding =
        worker::with_current_header(|h| h.is_none_or(|h| h.unwinding.load(Ordering::Relaxed)));
    !unwinding
        && !std::thread::panicking()
        && worker::with_worker(|w| w.is_some_and(|w| w.watch(state, unparker)))
}

/// Records whether the calling green thread's latest answered wait was
/// answered from another worker (see [`completion_wait`]).
#[inline]
pub(crate) fn set_partner_away(away: bool) {
    worker::with_current_header(|h| {
        if let Some(h) = h {
            if h.partner_away.load(Ordering::Relaxed) != away {
                h.partner_away.store(away, Ordering::Relaxed);
            }
        }
    });
}

/// Ends the calling thread's worker's watch of `state`, if it watches it:
/// true if it did.
#[inline]
pub(crate) fn unwatch(state: &AtomicU8) -> bool {
    worker::with_worker(|w| w.is_some_and(|w| w.unwatch(state)))
}

/// How a thread about to wait in a queue (`wait::block`, a wait without
/// deadline) waits for its packet's completion: `(spin, watch)`.
///
/// - `spin`: it spins first; it runs on a worker where nothing else could
///   run now, of a runtime with more than one worker, or it is a plain OS
///   thread, on a multicore machine. (The spin never switches, so it needs
///   none of a park's checks for unwinding.)
/// - `watch`: its packet starts SPINNING, to be watched by its worker once
///   it parks ([`watch_while_parked`]): it spins first, or its latest
///   answered wait was answered from another worker (its partners are
///   elsewhere) and the worker could watch one more.
///
/// Under loom, where the models say (`loom_spin_before_waits`).
#[cfg(not(loom))]
#[inline]
pub(crate) fn completion_wait() -> (bool, bool) {
    worker::with_worker(
        #[inline(always)]
        |w| match w {
            Some(w) if w.shared.workers.len() > 1 => {
                let spin = multicore() && w.may_spin_for_unpark();
                let watch = spin
                    || (w.may_watch()
                        && worker::with_current_header(|h| {
                            h.is_some_and(|h| h.partner_away.load(Ordering::Relaxed))
                        }));
                (spin, watch)
            }
            Some(_) => (false, false),
            // A plain OS thread spins too (see `spin_os_thread`).
            None => (multicore(), multicore()),
        },
    )
}

#[cfg(loom)]
pub(crate) fn completion_wait() -> (bool, bool) {
    let spin = LOOM_SPIN.with(std::cell::Cell::get);
    (spin, spin)
}

#[cfg(loom)]
::loom::thread_local! {
    /// Whether this loom thread's waits spin first (set by the models).
    static LOOM_SPIN: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// Makes the calling loom thread's waits spin first (or not).
#[cfg(all(loom, test))]
pub(crate) fn loom_spin_before_waits(spin: bool) {
    LOOM_SPIN.with(|s| s.set(spin));
}

/// Gives other green threads a turn: the caller goes to the back of its
/// worker's queue. On an OS thread, `std::thread::yield_now`.
pub fn yield_now() {
    yield_inner(false);
}

fn yield_inner(budget: bool) {
    let in_green = worker::with_current_header(|header| match header {
        Some(header) if !std::thread::panicking() && !header.unwinding.load(Ordering::Relaxed) => {
            coroutine::suspend(header, Request::Yield { budget });
            true
        }
        Some(header) => {
            if !std::thread::panicking() {
                // Being unwound by its runtime's shutdown, it caught the
                // unwind and goes on yielding: it will never be unwound.
                worker::abandon(header, worker::SWALLOWED);
            }
            true
        }
        None => false,
    });
    if !in_green {
        std::thread::yield_now();
    }
}

/// Whether a caller that found a lock held may spin a little before it
/// parks: only where the holder can be running meanwhile. On an OS
/// thread, if the machine has more than one CPU; in a green thread, if
/// also its runtime has other workers (on one worker the holder cannot run
/// while its worker spins).
pub fn can_spin() -> bool {
    multicore() && worker::with_worker(|w| w.is_none_or(|w| w.shared.workers.len() > 1))
}

/// Whether this process may run on more than one CPU. Asked once: the
/// answer reads the process's CPU set and cgroup quota, tens of µs (a
/// scheduler asks when it starts, not its first green thread to park).
pub(crate) fn multicore() -> bool {
    static MULTICORE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MULTICORE.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// Whether other green threads wait to run on the calling green thread's
/// worker (a spinner holds them up); false on an OS thread.
pub fn others_ready_here() -> bool {
    worker::with_worker(|w| w.is_some_and(|w| w.wake_answered() || w.has_resumable()))
}

/// Counts one runtime operation against the running green thread's budget;
/// when the budget is spent the green thread yields, so that a loop of
/// always-ready operations still lets others run. A no-op on OS threads.
#[inline]
pub fn coop_tick() {
    if worker::spend_budget() {
        budget_spent();
    }
}

#[cold]
#[inline(never)]
fn budget_spent() {
    yield_inner(true);
}

/// Sleeps: parks the green thread (not its worker) until `d` has passed.
///
/// A sleep of more than nothing is always a yield point, as Go's `Sleep`
/// of more than nothing always parks: one so short that it is over before
/// it could park (`sleep(1ns)`) yields instead, so that a loop of them
/// (`while !stop { sleep(1ns) }`) lets the green threads homed on its
/// worker run, among them the one that would set `stop`.
#[track_caller]
pub fn sleep(d: Duration) {
    if !in_green_thread() {
        std::thread::sleep(d);
        return;
    }
    let at = Location::caller();
    let Some(deadline) = Instant::now().checked_add(d) else {
        loop {
            park_inner(&SLEEP, None, at);
        }
    };
    if !sleep_until_inner(deadline, at) {
        if d.is_zero() {
            coop_tick(); // a loop of them still lets others run
        } else {
            yield_now();
        }
    }
}

/// Sleeps until `deadline`.
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    if !in_green_thread() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    if !sleep_until_inner(deadline, Location::caller()) {
        coop_tick(); // past already: a loop of them still lets others run
    }
}

/// Parks until `deadline`; false if it was past at the first look (no
/// park was made).
fn sleep_until_inner(deadline: Instant, at: &'static Location<'static>) -> bool {
    let mut parked = false;
    while Instant::now() < deadline {
        park_inner(&SLEEP, Some(deadline), at);
        parked = true;
    }
    parked
}
