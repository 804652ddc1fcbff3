//! The select protocol (see the module docs of `select`): [`select`]
//! completes one arm, [`ready`] only reports one; both end a timeout
//! through a snapshot ([`try_snapshot`], [`ready_snapshot`]), the only
//! places that lock every arm's channel at once ([`AllLocked`]).

#[cfg(not(loom))]
use std::cell::Cell;
use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use grove_scheduler::park::{self, WaitReason};
use grove_scheduler::wait::SelectCx;

use super::handle::{Accept, Erased, SelectHandle, Token};
use super::SelectedOperation;

static SELECT: WaitReason = WaitReason("select");
static READY: WaitReason = WaitReason("select (ready)");

/// One arm of a select: a channel end, the index `Select` gave it, and its
/// direction.
#[derive(Clone, Copy)]
pub(crate) struct Arm<'a> {
    pub(crate) handle: &'a dyn SelectHandle,
    pub(crate) index: usize,
    pub(crate) send: bool,
}

/// How long a select may wait.
#[derive(Clone, Copy)]
pub(crate) enum Timeout {
    /// Not at all (`default`, `try_select`).
    Now,
    Never,
    At(Instant),
}

impl Timeout {
    /// The deadline, or `None` for no wait at all or no limit.
    fn deadline(self) -> Option<Instant> {
        match self {
            Timeout::At(d) => Some(d),
            Timeout::Now | Timeout::Never => None,
        }
    }

    /// Whether the time to wait is over: `Now`, or a deadline passed.
    fn is_over(self) -> bool {
        match self {
            Timeout::Now => true,
            Timeout::Never => false,
            Timeout::At(d) => Instant::now() >= d,
        }
    }
}

#[cfg(not(loom))]
thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// xorshift64*, seeded per thread from the thread's address.
#[cfg(not(loom))]
fn random(n: usize) -> usize {
    // Through `tls`: a select's green thread may have migrated since its
    // caller last touched a thread-local.
    grove_scheduler::tls_access!(random_here(n))
}

#[cfg(not(loom))]
fn random_here(n: usize) -> usize {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            x = (rng as *const Cell<u64> as u64) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        // Lemire's multiply-shift maps 32 random bits onto 0..n without a
        // division (a 64-bit div is ~40 cycles, a select's biggest cost).
        let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        ((bits * n as u64) >> 32) as usize
    })
}

/// Under loom every execution must make the same choices: no shuffle (the
/// models run each arm order themselves, with biased selects).
#[cfg(loom)]
fn random(n: usize) -> usize {
    n - 1
}

pub(crate) fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, random(i + 1));
    }
}

/// The earliest instant an arm's timer (or closing receiver) may make it
/// ready, or the caller's deadline.
fn wake_at(arms: &[Arm<'_>], deadline: Option<Instant>) -> Option<Instant> {
    arms.iter()
        .filter_map(|a| a.handle.deadline())
        .chain(deadline)
        .min()
}

/// Completes one arm (see the module docs for the phases). `None` once
/// the timeout is over with no arm ready at one instant ([`try_snapshot`]).
pub(crate) fn select<'a>(
    arms: &mut [Arm<'a>],
    biased: bool,
    looked: bool,
    timeout: Timeout,
    at: &'static Location<'static>,
) -> Option<SelectedOperation<'a>> {
    // `looked`: `select!` did phase 1 by type just now, and counted the
    // select against the budget.
    if !looked {
        park::coop_tick();
    }
    if !biased {
        shuffle(arms);
    }
    let mut phase_1_done = looked;
    loop {
        // Phase 1 (the first time round, unless `select!` just did it).
        if !std::mem::take(&mut phase_1_done) {
            for arm in arms.iter() {
                // Only a claimed deferred sender needs `resolve` (a second
                // virtual call): skip it for everything else.
                let token = match arm.handle.try_select() {
                    Some(deferred @ Token::DeferredRecv(_)) => arm.handle.resolve(deferred),
                    token => token,
                };
                if let Some(token) = token {
                    return Some(SelectedOperation::new(arm, token));
                }
            }
        }
        if timeout.is_over() {
            if none_ready_twice(arms) {
                return None;
            }
            return try_snapshot(arms);
        }
        // Phase 2.
        let cx = Arc::new(SelectCx::new());
        let mut packets: Vec<Option<Erased>> = Vec::with_capacity(arms.len());
        let mut ready = false;
        for (i, arm) in arms.iter().enumerate() {
            let (packet, now_ready) = arm.handle.register(&cx, i);
            packets.push(packet);
            if now_ready {
                ready = true;
                break;
            }
        }
        let aborted = ready && cx.abort();
        // From here every registered arm is unregistered when this frame is
        // left, also if a park below unwinds (the runtime is unwinding this
        // green thread): the entries would be harmless (they hold `cx`), but
        // they would keep the arms' packets and this thread's unparker.
        let mut registered = Registered {
            arms,
            count: packets.len(),
            cx: &cx,
            lazily: false,
        };
        // Dropped first if a park below unwinds: an arm chosen meanwhile
        // is settled before the arms are unregistered.
        let mut chosen = SettleOnUnwind {
            arms,
            packets,
            cx: &cx,
            at,
            armed: true,
        };
        // Phase 3.
        let mut spin_first = true;
        let outcome = loop {
            if let Some(i) = cx.selected() {
                let packet = chosen.packets[i]
                    .as_mut()
                    .expect("a chosen arm was registered");
                match arms[i].handle.accept(packet) {
                    Accept::Pending => park::park_with(&SELECT, None, at),
                    Accept::Done(token) => break Some((i, token)),
                    Accept::Retry => break None,
                }
                continue;
            }
            if aborted {
                break None;
            }
            // Afresh each time: a timer arm that was reset woke us, and its
            // deadline moved.
            let wake_at = wake_at(arms, timeout.deadline());
            if wake_at.is_some_and(|w| Instant::now() >= w) {
                if cx.abort() {
                    break None; // a timer arm is due, or the timeout: phase 1
                }
                continue; // an arm was chosen just now
            }
            // A plain OS thread spins once before its first park, as a
            // plain wait does (`grove_scheduler::wait::block`); a green
            // thread's park spins by itself where that pays.
            if wake_at.is_none()
                && std::mem::take(&mut spin_first)
                && !park::in_green_thread()
                && park::spin_before_park(|| cx.selected().is_some())
            {
                continue;
            }
            park::park_with(&SELECT, wake_at, at);
        };
        chosen.armed = false;
        // The packets first: those of the arms not chosen let go of this
        // green thread, and their entries may then stay in long queues.
        drop(chosen);
        registered.lazily = true;
        drop(registered);
        if let Some((i, token)) = outcome {
            return Some(SelectedOperation::new(&arms[i], token));
        }
    }
}

/// Unregisters a select's arms when dropped (see `select`, phase 3).
struct Registered<'s, 'a> {
    arms: &'s [Arm<'a>],
    count: usize,
    cx: &'s SelectCx,
    /// Phase 3 ended normally (the select decided, its packets dropped):
    /// entries in long queues may be left for claimers to drop. False
    /// while unwinding: everything is removed at once.
    lazily: bool,
}

impl Drop for Registered<'_, '_> {
    fn drop(&mut self) {
        for arm in self.arms.iter().take(self.count) {
            arm.handle.unregister(self.cx, self.lazily);
        }
    }
}

/// Settles the arm a peer chose for a select that is left by unwinding
/// while it waits (phase 3: the runtime's drop unwinds the green thread
/// parked in it). The peer may have completed the arm's packet into a
/// state that waits for this select: a buffer slot reserved for its send
/// (SLOT), or a receiver waiting for its deferred value (DEFERRED). Left
/// alone, the slot would stay reserved for good (the channel one value
/// smaller for ever) and the receiver would wait for ever. Settling is
/// what dropping the chosen operation does: the slot released, the
/// deferred send abandoned (its receiver tries again), a value received
/// given back. A claim not completed yet is waited for (the claimer
/// completes it right after it releases the channel's lock; a park while
/// unwinding blocks the OS thread).
struct SettleOnUnwind<'s, 'a> {
    arms: &'s [Arm<'a>],
    packets: Vec<Option<Erased>>,
    cx: &'s SelectCx,
    at: &'static Location<'static>,
    /// False once phase 3 ended normally: its outcome was taken there.
    armed: bool,
}

impl Drop for SettleOnUnwind<'_, '_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Decide first: until the arms are unregistered (right after this),
        // a peer could still choose one and hand a value, or grant a
        // buffer slot, to a select that is gone.
        if self.cx.abort() {
            return;
        }
        let Some(i) = self.cx.selected() else {
            return;
        };
        let Some(packet) = self.packets.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let handle = self.arms[i].handle;
        loop {
            match handle.accept(packet) {
                Accept::Pending => park::park_with(&SELECT, None, self.at),
                Accept::Done(token) => return handle.release(token),
                Accept::Retry => return,
            }
        }
    }
}

/// Waits until an arm is ready and returns its index, completing nothing
/// (`Select::ready`). `None` once the timeout is over with no arm ready at
/// one instant ([`ready_snapshot`]).
///
/// While parked it is a *watcher* of every arm's channel: any change to a
/// channel's state wakes it to look again (see `chan::ChanGuard`), which
/// is simpler than registering in the wait queues, where a peer would take
/// it for a waiting operation.
pub(crate) fn ready(
    arms: &mut [Arm<'_>],
    biased: bool,
    timeout: Timeout,
    at: &'static Location<'static>,
) -> Option<usize> {
    park::coop_tick();
    if !biased {
        shuffle(arms);
    }
    loop {
        if let Some(arm) = arms.iter().find(|a| a.handle.is_ready()) {
            return Some(arm.index);
        }
        if timeout.is_over() {
            return ready_snapshot(arms);
        }
        let id = crate::timers::waiter_id();
        let unparker = park::current_unparker();
        let mut watching = Watching { arms, count: 0, id };
        let mut found = None;
        for arm in arms.iter() {
            watching.count += 1;
            if arm.handle.watch(id, &unparker) {
                found = Some(arm.index);
                break;
            }
        }
        if found.is_none() {
            park::park_with(&READY, wake_at(arms, timeout.deadline()), at);
        }
        drop(watching);
        if found.is_some() {
            return found;
        }
    }
}

/// Takes a readiness waiter's watches back when dropped (also if its park
/// unwinds).
struct Watching<'s, 'a> {
    arms: &'s [Arm<'a>],
    count: usize,
    id: usize,
}

impl Drop for Watching<'_, '_> {
    fn drop(&mut self) {
        for arm in self.arms.iter().take(self.count) {
            arm.handle.unwatch(self.id);
        }
    }
}

/// Every arm's channel, locked, in address order, each once (Go's
/// `sellock`); unlocked in reverse order when dropped.
struct AllLocked {
    guards: Vec<(usize, Erased)>,
}

impl AllLocked {
    fn lock(arms: &[Arm<'_>]) -> AllLocked {
        let mut order: Vec<(usize, usize)> = arms
            .iter()
            .enumerate()
            .filter_map(|(i, arm)| arm.handle.chan_addr().map(|addr| (addr, i)))
            .collect();
        order.sort_unstable();
        let mut guards: Vec<(usize, Erased)> = Vec::with_capacity(order.len());
        for (addr, i) in order {
            if guards.last().map(|g| g.0) != Some(addr) {
                guards.push((addr, arms[i].handle.lock()));
            }
        }
        AllLocked { guards }
    }

    /// The guard of the channel at `addr`.
    fn guard(&mut self, addr: usize) -> &mut Erased {
        &mut self
            .guards
            .iter_mut()
            .find(|g| g.0 == addr)
            .expect("every channel was locked")
            .1
    }
}

impl Drop for AllLocked {
    fn drop(&mut self) {
        while let Some((_, guard)) = self.guards.pop() {
            drop(guard);
        }
    }
}

/// The decision of a select that may not wait (any longer): looks at every
/// arm with every channel locked at once, and completes the first that can
/// complete. Polling one arm at a time cannot tell that no arm was ready
/// at one instant (an arm seen empty may fill as another empties after
/// it was looked at); a snapshot can, so a select returns "nothing ready"
/// (its `default`, its timeout) only when that was true at one instant.
pub(crate) fn try_snapshot<'a>(arms: &[Arm<'a>]) -> Option<SelectedOperation<'a>> {
    let mut locked = AllLocked::lock(arms);
    let mut chosen = None;
    for arm in arms {
        let attempt = match arm.handle.chan_addr() {
            Some(addr) => arm.handle.try_select_locked(locked.guard(addr)),
            None => arm.handle.try_select().map(|token| (token, None)),
        };
        if let Some((token, waker)) = attempt {
            chosen = Some((SelectedOperation::new(arm, token), waker));
            break;
        }
    }
    drop(locked);
    let (oper, waker) = chosen?;
    if let Some(waker) = waker {
        waker.wake();
    }
    match oper.resolve() {
        Some(oper) => Some(oper),
        // The select sender it paired with gave up: look again.
        None => try_snapshot(arms),
    }
}

/// Arms this many or fewer are judged by [`none_ready_twice`]; a select
/// with more locks them all ([`try_snapshot`]).
const LOOKED_AT_TWICE: usize = 8;

/// Whether no arm could complete at one instant, judged from the words the
/// arms' channels published (see `chan::RECV_READY`), without their locks:
/// every arm says "not ready" twice with the same word, the second time
/// after a SeqCst fence. A word changes (its count moves on) whenever its
/// bits do, so each arm was not ready all the time between its two reads,
/// the end of the first round included: an instant when none was (Go
/// locks every channel for this; a select with a `default` polled in a
/// loop then contends for all of them). False if some arm has no word or
/// says "ready", or a word moved: the caller then locks them all.
fn none_ready_twice(arms: &[Arm<'_>]) -> bool {
    if arms.len() > LOOKED_AT_TWICE {
        return false;
    }
    let mut first = [0u32; LOOKED_AT_TWICE];
    for (arm, word) in arms.iter().zip(first.iter_mut()) {
        match arm.handle.published(false) {
            Some((w, false)) => *word = w,
            _ => return false,
        }
    }
    // The fence, once, before the first channel's second read.
    let mut fenced = false;
    for (arm, &word) in arms.iter().zip(first.iter()) {
        let fence_here = !fenced && arm.handle.chan_addr().is_some();
        fenced |= fence_here;
        if arm.handle.published(fence_here) != Some((word, false)) {
            return false;
        }
    }
    true
}

/// [`try_snapshot`] for readiness: the first arm ready with every channel
/// locked at once.
pub(crate) fn ready_snapshot(arms: &[Arm<'_>]) -> Option<usize> {
    let mut locked = AllLocked::lock(arms);
    arms.iter()
        .find(|arm| match arm.handle.chan_addr() {
            Some(addr) => arm.handle.is_ready_locked(locked.guard(addr)),
            None => arm.handle.is_ready(),
        })
        .map(|arm| arm.index)
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The decision "no arm was ready" under loom: every interleaving of a
    //! non-blocking select (and a readiness probe) with a peer that fills
    //! the arm the select looks at second and then empties the arm it looks
    //! at first, so that one arm holds a value at every instant. Polling
    //! the arms one at a time can miss both (crossbeam's
    //! `linearizable_timeout` saw it happen, issue 23 item 5); the snapshot
    //! with every channel locked cannot. Biased selects fix the polling
    //! order, and both orders are modelled.
    use std::time::Duration;

    use crate::{bounded, select_biased, Receiver, Select};

    /// Runs `probe` (which must find an arm ready) against the peer.
    fn model(probe: fn(&Receiver<u8>, &Receiver<u8>) -> bool) {
        loom::model(move || {
            let (s1, r1) = bounded::<u8>(1);
            let (s2, r2) = bounded::<u8>(1);
            s1.send(1).unwrap();
            let r1_peer = r1.clone();
            let peer = loom::thread::spawn(move || {
                s2.send(2).unwrap();
                let _ = r1_peer.try_recv();
                s2 // kept open until joined
            });
            assert!(probe(&r1, &r2), "gave up while an arm was ready");
            drop(peer.join().unwrap());
            drop(s1);
        });
    }

    /// Two threads each send on their own channel and then poll the
    /// other's without its lock (the published word, `chan::RECV_READY`):
    /// both may not miss the other's value, as neither could with the
    /// locks (each poll is ordered after its own send by a SeqCst fence).
    fn each_sends_then_polls(poll: fn(&Receiver<u8>) -> bool) {
        loom::model(move || {
            let (s1, r1) = bounded::<u8>(1);
            let (s2, r2) = bounded::<u8>(1);
            // A first poll of each, under the lock, makes their lock holders
            // publish exact words (`chan::State::polled`).
            assert!(r1.try_recv().is_err() && r2.try_recv().is_err());
            let peer = loom::thread::spawn(move || {
                s2.send(2).unwrap();
                let saw = poll(&r1);
                (saw, s2, r1)
            });
            s1.send(1).unwrap();
            let saw = poll(&r2);
            let (peer_saw, _s2, _r1) = peer.join().unwrap();
            assert!(saw || peer_saw, "both polls missed the other's value");
            drop(s1);
        });
    }

    #[test]
    fn two_polls_do_not_both_miss_the_others_send() {
        each_sends_then_polls(|r| r.try_recv().is_ok());
        each_sends_then_polls(|r| select_biased! { recv(r) -> v => v.is_ok(), default => false });
        each_sends_then_polls(|r| {
            let never = crate::never::<u8>();
            select_biased! { recv(never) -> _v => false, recv(r) -> v => v.is_ok(), default => false }
        });
    }

    #[test]
    fn a_select_with_default_saw_no_arm_ready() {
        model(
            |r1, r2| select_biased! { recv(r2) -> _v => true, recv(r1) -> _v => true, default => false },
        );
        model(
            |r1, r2| select_biased! { recv(r1) -> _v => true, recv(r2) -> _v => true, default => false },
        );
    }

    #[test]
    fn a_select_with_a_zero_timeout_saw_no_arm_ready() {
        model(|r1, r2| {
            select_biased! {
                recv(r2) -> _v => true,
                recv(r1) -> _v => true,
                default(Duration::ZERO) => false,
            }
        });
        model(|r1, r2| {
            select_biased! {
                recv(r1) -> _v => true,
                recv(r2) -> _v => true,
                default(Duration::ZERO) => false,
            }
        });
    }

    #[test]
    fn a_readiness_probe_saw_no_arm_ready() {
        model(|r1, r2| {
            let mut sel = Select::new_biased();
            sel.recv(r2);
            sel.recv(r1);
            sel.try_ready().is_ok()
        });
        model(|r1, r2| {
            let mut sel = Select::new_biased();
            sel.recv(r2);
            sel.recv(r1);
            sel.ready_timeout(Duration::ZERO).is_ok()
        });
    }
}
