//! The channel itself: Go's `hchan` — one lock, a buffer, and two queues of
//! waiters.
//!
//! Invariants (after Go's `runtime/chan.go`), with the lock held:
//!
//! - At most one of `sendq` / `recvq` has claimable waiters, except for a
//!   select that waits on both ends of one channel (it never pairs with
//!   itself).
//! - `recvq` has waiters only while no unclaimed item is buffered;
//!   `sendq` only while the buffer is full (always, when unbuffered).
//! - `claimed` buffered items are promised to selected receive arms;
//!   `reserved` free slots to selected send arms. Neither is taken by
//!   anyone else.
//! - After close, no value enters the buffer; values already there are
//!   still received, then receives fail.
//! - `watchers` (parked [`Select::ready`](crate::Select::ready) calls) are
//!   woken, and forgotten, whenever the state is changed under the lock
//!   ([`ChanGuard`]): a change is what can make an operation ready.
//!
//! The buffer gives memory back as it drains: a burst of a million values
//! does not pin a million slots after the receivers caught up (see
//! [`State::pop`]).

use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use grove_scheduler::lock::{Lock, LockGuard};
use grove_scheduler::park::{self, Unparker, WaitReason};

use crate::err::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use grove_scheduler::wait::{self, Claimed, DeferredRecv, Kind, SelectCx, WaitQueue, Woken};

pub(crate) static SEND: WaitReason = WaitReason("chan send");
pub(crate) static RECV: WaitReason = WaitReason("chan recv");

/// A channel's state, behind its one lock.
///
/// Laid out (`repr(C)`, after the lock's flag) so that what every
/// operation reads and what an unbuffered one writes (the flag, the
/// queues' first waiters, the counts) are 64 contiguous bytes; the buffer
/// and the readiness waiters come after. A hand-off between green threads
/// on two cores moves the lines the other side wrote last: one or two for
/// an unbuffered channel (were it all over the allocation: up to four),
/// plus the waiter's packet (`grove_scheduler::wait`). The test `layout`
/// checks it.
#[repr(C)]
pub(crate) struct State<T> {
    /// `close` was called (by a sender or a receiver): no value enters any
    /// more; those buffered are still received.
    closed: bool,
    /// The last receiver is gone: sends fail, and what was buffered has
    /// been dropped. Not a close (a receive never sees it: there is no
    /// receiver left).
    receivers_gone: bool,
    /// `watchers` is not empty (read on every unlock; the list itself is
    /// on the next line).
    watched: bool,
    /// Made by `unbounded` (its `cap` is `usize::MAX`).
    unbounded: bool,
    /// Free slots promised to selected send arms (a select that chose a
    /// send arm with room, or a deferred sender granted a slot): counted as
    /// taken by [`State::has_room`] until `fill_reserved` fills one or
    /// `release_reserved` gives it back. One per select in progress, so a
    /// `u32` (a select is a thread, of a few KiB at least).
    reserved: u32,
    /// Buffered values promised to selected receive arms: not offered to
    /// anyone else ([`State::has_item`]) until `take_claimed` takes one or
    /// `release_claimed` gives it back. One per select, as `reserved`.
    claimed: u32,
    /// An operation that does not wait found this channel not ready: the
    /// lock holders publish the exact word from then on (see
    /// [`RECV_READY`]). Until then the word says "ready" both ways, which
    /// sends every look to the lock, and a channel nobody polls pays one
    /// flag's test per unlock instead of the word's computation (some 30
    /// instructions; measured, 6 % of a buffered send and receive on one
    /// worker).
    polled: bool,
    /// The channel's capacity, `usize::MAX` for an unbounded channel (the
    /// only place it is kept; [`Chan::capacity`] reads it here).
    cap: usize,
    /// Receivers waiting (plain and select arms).
    pub(crate) recvq: WaitQueue<T>,
    /// Senders waiting (plain, and select arms with deferred values).
    pub(crate) sendq: WaitQueue<T>,
    /// The buffered values, oldest first; the first `claimed` of them are
    /// promised to selected receive arms.
    buf: VecDeque<T>,
    /// Parked readiness waiters: an id (unique among live waiters) and
    /// whom to wake.
    watchers: Vec<(usize, Unparker)>,
    /// The allocation the buffer keeps however far it drains.
    keep: usize,
}

/// The word a channel's lock holders publish ([`Lock::publish`]) for the
/// operations that do not wait: bit [`RECV_READY`], a receive could
/// complete (a value buffered and not promised, a sender waiting, or
/// closed); bit [`SEND_READY`], a send could complete or fail at once (room,
/// a receiver waiting, closed, or no receivers left); bit [`DRAINED`];
/// above them a count of the changes of those bits. Every change of the
/// state is made
/// under the lock through a [`ChanGuard`], which publishes the new word
/// before it unlocks, so between two holders the word is exact (once the
/// channel was polled: see `State::polled`; before, both bits are set). A bit set
/// may be stale in the other direction only (a waiting select may have
/// been taken by another channel), which costs the lock, as before; a
/// bit clear is the truth at the instant it is read: a `try_recv` or a
/// select with a `default` that reads it clear fails without the lock
/// (Go's `chanrecv` and `chansend` look at the channel the same way before
/// they lock it). The count lets a select see that none of its arms
/// changed between two looks (see `select::run`).
pub(crate) const RECV_READY: u32 = 1;
/// See [`RECV_READY`].
pub(crate) const SEND_READY: u32 = 2;
/// Set with [`RECV_READY`]: closed, and nothing left to receive (a receive
/// fails at once: Go's receive from a closed channel, decided without the
/// lock too).
pub(crate) const DRAINED: u32 = 4;
const READY_BITS: u32 = RECV_READY | SEND_READY | DRAINED;
const CHANGE: u32 = 8;

/// The smallest allocation (in values) a drained buffer shrinks to.
/// Guessed: small enough not to matter, large enough that a channel
/// carrying a trickle never reallocates.
const KEEP_AT_LEAST: usize = 32;

/// `repr(C)`: the state first, the counts of ends (written when one is
/// cloned or dropped) after it. Not aligned to a cache line: a channel
/// made per request (a result channel per forked task) would pay an
/// aligned allocation each time, which cost fib_fork a quarter of its
/// speed; the state's hot fields take 64 contiguous bytes, on one line or
/// two.
#[repr(C)]
pub(crate) struct Chan<T> {
    state: Lock<State<T>>,
    pub(crate) senders: AtomicUsize,
    pub(crate) receivers: AtomicUsize,
}

/// What a receive found, before the lock is released.
#[must_use = "a receive must be finished (`Got::finish`), or a peer's wake-up is lost"]
pub(crate) enum Got<T> {
    Value(T, Option<Unparker>),
    /// A select sender was claimed; wait for its value after unlocking.
    Deferred(DeferredRecv<T>, Unparker),
}

impl<T> Got<T> {
    /// Wakes whoever must be woken and produces the value; `None` if a
    /// rendezvous was abandoned (try again).
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn finish(self) -> Option<T> {
        match self {
            Got::Value(value, waker) => {
                if let Some(waker) = waker {
                    waker.wake();
                }
                Some(value)
            }
            Got::Deferred(deferred, waker) => {
                waker.wake();
                deferred.wait(&RECV)
            }
        }
    }
}

impl<T> State<T> {
    pub(crate) fn is_disconnected_for_send(&self) -> bool {
        self.closed || self.receivers_gone
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The [`RECV_READY`], [`SEND_READY`] and [`DRAINED`] bits of this
    /// state. Computed without branches (`|`, not `||`): it runs at every
    /// unlock that changed a polled channel's state. An unbuffered
    /// channel's buffer is read too: it holds the values selected receive
    /// arms gave back (`give_back`), which a `try_recv` or a select with a
    /// `default` must see. Nobody writes that line otherwise, so every
    /// core keeps a copy of it.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn readiness(&self) -> u32 {
        let len = self.buf.len();
        let item = len > self.claimed as usize;
        let recv = item | !self.sendq.is_empty() | self.closed;
        let room = len.saturating_add(self.reserved as usize) < self.cap;
        let send = self.closed | self.receivers_gone | !self.recvq.is_empty() | room;
        let drained = self.closed & !item & self.sendq.is_empty();
        (u32::from(recv) * RECV_READY)
            | (u32::from(send) * SEND_READY)
            | (u32::from(drained) * DRAINED)
    }

    /// From now on the word is published exact (see `polled`). Called by
    /// the operations that do not wait when they find the channel not
    /// ready; the guard they hold publishes the word as it unlocks.
    pub(crate) fn mark_polled(&mut self) {
        self.polled = true;
    }

    /// The word to publish after `previous` for this state: the same word
    /// if the bits did not change, else the bits and the count moved on.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn readiness_word(&self, previous: u32) -> u32 {
        let bits = self.readiness();
        if previous & READY_BITS == bits {
            previous
        } else {
            (previous & !READY_BITS).wrapping_add(CHANGE) | bits
        }
    }

    /// Whether a value could go into the buffer. The capacity is checked
    /// first: an unbuffered channel's send never reads the buffer's line.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn has_room(&self) -> bool {
        let reserved = self.reserved as usize;
        reserved < self.cap && self.buf.len() < self.cap - reserved
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn has_item(&self) -> bool {
        self.buf.len() > self.claimed as usize
    }

    /// Takes the first buffered value and, amortised, gives memory back: once
    /// the buffer holds less than a quarter of its allocation, the
    /// allocation is halved (moving fewer values than were received since
    /// it last changed size, so each receive pays O(1) for it).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn pop(&mut self) -> Option<T> {
        let value = self.buf.pop_front();
        let allocated = self.buf.capacity();
        if allocated > self.keep && self.buf.len() < allocated / 4 {
            self.shrink(allocated / 2);
        }
        value
    }

    #[cold]
    #[inline(never)]
    fn shrink(&mut self, to: usize) {
        self.buf.shrink_to(to.max(self.keep));
    }

    /// The buffer's allocation, in values.
    pub(crate) fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// A send that can complete now: to a waiting receiver, else into the
    /// buffer. Returns the receiver to wake.
    #[must_use = "the receiver to wake once the lock is released"]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn try_send(&mut self, value: T) -> Result<Option<Unparker>, TrySendError<T>> {
        if self.is_disconnected_for_send() {
            return Err(TrySendError::Disconnected(value));
        }
        let value = match self.recvq.deliver_to_plain_receiver(value) {
            Ok(receiver) => return Ok(Some(receiver)),
            Err(value) => value,
        };
        if let Some(receiver) = self.recvq.claim_first(None) {
            return Ok(Some(receiver.deliver(value)));
        }
        if self.has_room() {
            self.buf.push_back(value);
            return Ok(None);
        }
        Err(TrySendError::Full(value))
    }

    /// A receive that can complete now.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn try_recv(&mut self, not_of: Option<&SelectCx>) -> Result<Got<T>, TryRecvError> {
        if self.has_item() {
            let value = self.pop().expect("has_item");
            let waker = self.refill();
            return Ok(Got::Value(value, waker));
        }
        if let Some((value, sender)) = self.sendq.take_from_plain_sender() {
            return Ok(Got::Value(value, Some(sender)));
        }
        if let Some(sender) = self.sendq.claim_first(not_of) {
            return Ok(match sender.kind() {
                Kind::DeferredSender => {
                    let (deferred, waker) = sender.into_deferred_recv();
                    Got::Deferred(deferred, waker)
                }
                _ => {
                    let (value, waker) = sender.take();
                    Got::Value(value, Some(waker))
                }
            });
        }
        if self.closed {
            Err(TryRecvError::Disconnected)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// A slot just freed up: move a waiting sender's value into the buffer
    /// (keeping FIFO order, as Go does) or reserve the slot for a waiting
    /// select send arm. Returns that sender, to wake once unlocked.
    #[must_use = "the sender to wake once the lock is released"]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn refill(&mut self) -> Option<Unparker> {
        // The common case, inline: no room, or no sender waiting.
        if !self.has_room() || self.sendq.is_empty() {
            return None;
        }
        self.refill_from_a_waiting_sender()
    }

    #[must_use = "the sender to wake once the lock is released"]
    #[inline(never)]
    fn refill_from_a_waiting_sender(&mut self) -> Option<Unparker> {
        let sender = self.sendq.claim_first(None)?;
        Some(match sender.kind() {
            Kind::DeferredSender => {
                self.reserved += 1;
                sender.grant_slot()
            }
            _ => {
                let (value, waker) = sender.take();
                self.buf.push_back(value);
                waker
            }
        })
    }

    /// Select: whether a send arm could complete now.
    pub(crate) fn send_ready(&self, not_of: Option<&SelectCx>) -> bool {
        self.is_disconnected_for_send() || self.recvq.has_claimable(not_of) || self.has_room()
    }

    /// Select: whether a receive arm could complete now.
    pub(crate) fn recv_ready(&self, not_of: Option<&SelectCx>) -> bool {
        self.has_item() || self.sendq.has_claimable(not_of) || self.closed
    }

    /// Select, try phase, send arm: reserve what the send will need.
    pub(crate) fn select_send(&mut self) -> Option<SendClaim<T>> {
        if self.is_disconnected_for_send() {
            return Some(SendClaim::Closed);
        }
        if let Some(receiver) = self.recvq.claim_first(None) {
            return Some(SendClaim::Receiver(receiver));
        }
        if self.has_room() {
            self.reserved += 1;
            return Some(SendClaim::Slot);
        }
        None
    }

    /// Completes a send into a reserved slot.
    #[must_use = "the receiver to wake once the lock is released"]
    pub(crate) fn fill_reserved(&mut self, value: T) -> Result<Option<Unparker>, T> {
        self.reserved -= 1;
        if self.is_disconnected_for_send() {
            return Err(value);
        }
        if let Some(receiver) = self.recvq.claim_first(None) {
            return Ok(Some(receiver.deliver(value)));
        }
        self.buf.push_back(value);
        Ok(None)
    }

    /// Releases a reserved slot unused (the send arm was abandoned).
    #[must_use = "the sender to wake once the lock is released"]
    pub(crate) fn release_reserved(&mut self) -> Option<Unparker> {
        self.reserved -= 1;
        self.refill()
    }

    /// Select, try phase, receive arm: reserve what the receive will take.
    pub(crate) fn select_recv(&mut self) -> Option<RecvClaim<T>> {
        if self.has_item() {
            self.claimed += 1;
            return Some(RecvClaim::Slot);
        }
        if let Some(sender) = self.sendq.claim_first(None) {
            return Some(match sender.kind() {
                Kind::DeferredSender => {
                    let (deferred, waker) = sender.into_deferred_recv();
                    RecvClaim::Deferred(deferred, waker)
                }
                _ => RecvClaim::Sender(sender),
            });
        }
        if self.closed {
            // A closed channel is polled from here on: what a receive
            // finds there no longer changes (see `DRAINED`).
            self.polled = true;
            return Some(RecvClaim::Closed);
        }
        None
    }

    /// A value a selected receive arm gave up: to a waiting receiver, or to
    /// the front of the buffer (past the capacity if need be; the next
    /// receive takes it), so that nothing is lost.
    /// With no receivers left, the value comes back to be dropped by the
    /// caller once the lock is released (its destructor is user code).
    #[must_use = "the receiver to wake and the value to drop once the lock is released"]
    pub(crate) fn give_back(&mut self, value: T) -> (Option<Unparker>, Option<T>) {
        if let Some(receiver) = self.recvq.claim_first(None) {
            return (Some(receiver.deliver(value)), None);
        }
        if self.receivers_gone {
            return (None, Some(value));
        }
        self.buf.push_front(value);
        (None, None)
    }

    /// Takes a claimed buffered item.
    #[must_use = "the sender to wake once the lock is released"]
    pub(crate) fn take_claimed(&mut self) -> (T, Option<Unparker>) {
        self.claimed -= 1;
        let value = self.pop().expect("a claimed item is buffered");
        (value, self.refill())
    }

    /// Releases a claimed item unused. Returns the receiver it went to and
    /// the sender that took its place in the buffer, to wake once unlocked.
    #[must_use = "the receiver and sender to wake once the lock is released"]
    pub(crate) fn release_claimed(&mut self) -> [Option<Unparker>; 2] {
        self.claimed -= 1;
        // A receiver may have queued while the item was promised away.
        if self.has_item() {
            if let Some(receiver) = self.recvq.claim_first(None) {
                let value = self.pop().expect("has_item");
                let receiver = receiver.deliver(value);
                return [Some(receiver), self.refill()];
            }
        }
        [None, None]
    }

    /// Whether a readiness waiter (`Select::ready`) would see this end
    /// ready: the same test as a select arm's, for either end.
    pub(crate) fn ready(&self, send: bool) -> bool {
        if send {
            self.send_ready(None)
        } else {
            self.recv_ready(None)
        }
    }

    /// Adds a readiness waiter (see `watchers`).
    pub(crate) fn watch(&mut self, id: usize, unparker: Unparker) {
        self.watchers.push((id, unparker));
        self.watched = true;
    }

    /// Removes a readiness waiter, if a change has not taken it already.
    pub(crate) fn unwatch(&mut self, id: usize) {
        self.watchers.retain(|(w, _)| *w != id);
        self.watched = !self.watchers.is_empty();
    }
}

/// What a selected receive arm holds until it is finished.
#[must_use = "a claim must be finished or released, or a peer waits for it"]
pub(crate) enum RecvClaim<T> {
    Closed,
    Slot,
    Sender(Claimed<T>),
    /// Wake the sender (after unlocking), then wait for its value.
    Deferred(DeferredRecv<T>, Unparker),
}

/// What a selected send arm holds until its value is supplied.
#[must_use = "a claim must be finished or released, or a peer waits for it"]
pub(crate) enum SendClaim<T> {
    Closed,
    Slot,
    Receiver(Claimed<T>),
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        // "Ready" both ways until someone polls (see `polled`).
        let word = RECV_READY | SEND_READY;
        Chan {
            state: Lock::with_published(
                State {
                    closed: false,
                    receivers_gone: false,
                    watched: false,
                    unbounded: cap.is_none(),
                    reserved: 0,
                    claimed: 0,
                    polled: false,
                    cap: cap.unwrap_or(usize::MAX),
                    recvq: WaitQueue::new(),
                    sendq: WaitQueue::new(),
                    buf: VecDeque::with_capacity(cap.unwrap_or(0).min(1024)),
                    watchers: Vec::new(),
                    keep: cap.unwrap_or(0).clamp(KEEP_AT_LEAST, 1024),
                },
                word,
            ),
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    /// The word the lock holders published last (see [`RECV_READY`]).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn published(&self) -> u32 {
        self.state.published()
    }

    /// [`published`](Self::published), after a SeqCst fence if `fenced`.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn published_word(&self, fenced: bool) -> u32 {
        if fenced {
            self.state.published_fenced()
        } else {
            self.state.published()
        }
    }

    /// True if an operation needing `bit` ([`RECV_READY`] or
    /// [`SEND_READY`]) could not complete at an instant during this call:
    /// the published word has the bit clear, also when read again after a
    /// SeqCst fence (see `Lock::published_fenced`). False means "take the
    /// lock and see".
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn surely_not(&self, bit: u32) -> bool {
        self.state.published() & bit == 0 && self.state.published_fenced() & bit == 0
    }

    /// True if a receive would fail at once, the channel closed and
    /// drained ([`DRAINED`]), at an instant during this call (read as in
    /// [`surely_not`](Self::surely_not)).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn surely_drained(&self) -> bool {
        self.state.published() & DRAINED != 0 && self.state.published_fenced() & DRAINED != 0
    }

    /// Locks the state; a change made through the guard wakes the
    /// readiness waiters when it is dropped.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn lock(&self) -> ChanGuard<'_, T> {
        ChanGuard {
            guard: ManuallyDrop::new(self.state.lock()),
            changed: false,
        }
    }

    /// Locks the state to look, or to change only the readiness waiters:
    /// wakes nobody (a readiness waiter's own look must not wake another,
    /// or two of them would wake each other forever).
    pub(crate) fn lock_quiet(&self) -> LockGuard<'_, State<T>> {
        self.state.lock()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        let state = self.lock_quiet();
        (!state.unbounded).then_some(state.cap)
    }

    pub(crate) fn len(&self) -> usize {
        let state = self.lock_quiet();
        state.buf.len() - state.claimed as usize
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn send(
        &self,
        mut value: T,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
    ) -> Result<(), SendTimeoutError<T>> {
        park::coop_tick();
        loop {
            let mut state = self.lock();
            match state.try_send(value) {
                Ok(waker) => {
                    drop(state);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    return Ok(());
                }
                Err(TrySendError::Disconnected(v)) => {
                    return Err(SendTimeoutError::Disconnected(v))
                }
                Err(TrySendError::Full(v)) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(SendTimeoutError::Timeout(v));
                    }
                    let woken = wait::block(
                        state,
                        || self.lock(),
                        |s: &mut State<T>| &mut s.sendq,
                        Some(v),
                        deadline,
                        &SEND,
                        at,
                    );
                    match woken {
                        Woken::Done(_) => return Ok(()),
                        Woken::Closed(v) => {
                            return Err(SendTimeoutError::Disconnected(v.expect("value back")))
                        }
                        Woken::Timeout(v) => {
                            return Err(SendTimeoutError::Timeout(v.expect("value back")))
                        }
                        Woken::Retry(v) => value = v.expect("value back"),
                    }
                }
            }
        }
    }

    pub(crate) fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        park::coop_tick();
        // Full, nobody waiting to receive, not closed: without the lock.
        if self.surely_not(SEND_READY) {
            return Err(TrySendError::Full(value));
        }
        let mut state = self.lock();
        let waker = match state.try_send(value) {
            Ok(waker) => waker,
            Err(e) => {
                state.mark_polled();
                return Err(e);
            }
        };
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn recv(
        &self,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
    ) -> Result<T, RecvTimeoutError> {
        park::coop_tick();
        loop {
            let mut state = self.lock();
            // A buffered value, the common case, taken here rather than
            // through `Got`: moving that enum through the stack cost a
            // store-forwarding stall per receive (`perf annotate`: a 16-byte
            // load of the two 8-byte words just stored).
            if state.has_item() {
                let value = state.pop().expect("has_item");
                let waker = state.refill();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
                return Ok(value);
            }
            match state.try_recv(None) {
                Ok(got) => {
                    drop(state);
                    match got.finish() {
                        Some(value) => return Ok(value),
                        None => continue,
                    }
                }
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    let woken = wait::block(
                        state,
                        || self.lock(),
                        |s: &mut State<T>| &mut s.recvq,
                        None,
                        deadline,
                        &RECV,
                        at,
                    );
                    match woken {
                        Woken::Done(Some(value)) => return Ok(value),
                        Woken::Timeout(_) => return Err(RecvTimeoutError::Timeout),
                        // Closed: drain what is left, then fail (loop).
                        Woken::Done(None) | Woken::Closed(_) | Woken::Retry(_) => {}
                    }
                }
            }
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        park::coop_tick();
        self.try_recv_untallied(true)
    }

    /// A select's receive arm looking at once (see `__private::RecvArm`):
    /// [`try_recv`](Self::try_recv) without its budget tick (the select
    /// counts once) and, as the select's own look, leaving a channel found
    /// empty as it was (see `State::polled`: a blocking select's arm is
    /// not a poller).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn select_recv_now(&self) -> Result<T, TryRecvError> {
        self.try_recv_untallied(false)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn try_recv_untallied(&self, poller: bool) -> Result<T, TryRecvError> {
        // Empty, nobody waiting to send, not closed: without the lock; so
        // closed and drained. A poller decides "empty" at an instant (two
        // reads around a fence, see `surely_not`); a select's arm by one
        // read, as its first phase does: a select that goes on to wait
        // looks again under the lock when it registers.
        if poller {
            if self.surely_not(RECV_READY) {
                return Err(TryRecvError::Empty);
            }
            if self.surely_drained() {
                return Err(TryRecvError::Disconnected);
            }
        } else if self.published() & RECV_READY == 0 {
            return Err(TryRecvError::Empty);
        }
        loop {
            let mut state = self.lock();
            // As in `recv`: a buffered value without `Got`.
            if state.has_item() {
                let value = state.pop().expect("has_item");
                let waker = state.refill();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
                return Ok(value);
            }
            let got = match state.try_recv(None) {
                Ok(got) => got,
                Err(e) => {
                    if poller {
                        state.mark_polled();
                    }
                    return Err(e);
                }
            };
            drop(state);
            if let Some(value) = got.finish() {
                return Ok(value);
            }
        }
    }

    /// Closes the channel: wakes every waiter. True if this call closed it.
    pub(crate) fn close(&self) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.closed = true;
        let mut claims = state.recvq.claim_all();
        claims.extend(state.sendq.claim_all());
        drop(state);
        wake_closed(claims);
        true
    }

    /// The last receiver is gone: senders fail from now on. The values
    /// still buffered are dropped here; if a destructor panics, the others
    /// are still dropped and the first panic then goes on (see
    /// [`drop_all`]).
    pub(crate) fn disconnect_receivers(&self) {
        let mut state = self.lock();
        state.receivers_gone = true;
        let claims = state.sendq.claim_all();
        let buffered = std::mem::take(&mut state.buf);
        state.claimed = 0;
        drop(state);
        wake_closed(claims);
        drop_all(buffered); // values nobody can receive any more
    }
}

/// Drops `values`, each on its own: a panicking destructor does not stop
/// the others (nor abort the process, as a second panic during the first
/// one's unwinding would). The first panic is resumed once all are dropped
/// (unless the caller is unwinding already; then it is dropped); later
/// panics' payloads are leaked, since dropping a payload may panic again.
fn drop_all<T>(values: VecDeque<T>) {
    if !std::mem::needs_drop::<T>() {
        return;
    }
    let mut first = None;
    for value in values {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(value))) {
            match first {
                None => first = Some(payload),
                Some(_) => std::mem::forget(payload),
            }
        }
    }
    if let Some(payload) = first {
        if std::thread::panicking() {
            std::mem::forget(payload);
        } else {
            panic::resume_unwind(payload);
        }
    }
}

/// A locked channel. Dropping it unlocks the channel and then, if the state
/// was changed through it (`DerefMut`) and readiness waiters are parked,
/// wakes them: whatever the change, an operation may be ready now.
pub(crate) struct ChanGuard<'a, T> {
    guard: ManuallyDrop<LockGuard<'a, State<T>>>,
    changed: bool,
}

impl<T> Deref for ChanGuard<'_, T> {
    type Target = State<T>;
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn deref(&self) -> &State<T> {
        &self.guard
    }
}

impl<T> DerefMut for ChanGuard<'_, T> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn deref_mut(&mut self) -> &mut State<T> {
        self.changed = true;
        &mut self.guard
    }
}

impl<T> Drop for ChanGuard<'_, T> {
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn drop(&mut self) {
        if self.changed && self.guard.polled {
            let word = self.guard.readiness_word(self.guard.published());
            self.guard.publish(word);
        }
        if self.changed && self.guard.watched {
            self.guard.watched = false;
            let watchers = std::mem::take(&mut self.guard.watchers);
            // SAFETY: dropped once, here; the field is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.guard) };
            wake_watchers(watchers);
        } else {
            // SAFETY: as above.
            unsafe { ManuallyDrop::drop(&mut self.guard) };
        }
    }
}

/// Wakes readiness waiters after the channel's lock is released: the slow
/// path of every unlock, kept out of the hot one (a channel with nobody
/// waiting for readiness pays one branch).
#[cold]
#[inline(never)]
fn wake_watchers(watchers: Vec<(usize, Unparker)>) {
    for (_, watcher) in watchers {
        watcher.wake();
    }
}

fn wake_closed<T>(claims: Vec<Claimed<T>>) {
    let wakers: Vec<Unparker> = claims.into_iter().map(Claimed::close).collect();
    for waker in wakers {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    /// What an unbuffered operation writes (the lock's flag, the queues)
    /// and what every operation reads (the flags, counts, capacity) lie in
    /// the channel's first 64 bytes, for any value type.
    #[test]
    fn layout() {
        fn check<T>() {
            assert_eq!(offset_of!(Chan<T>, state), 0);
            // `Lock` is `repr(C)`, its flag first: the state starts at the
            // state's alignment.
            let state = align_of::<State<T>>();
            let queues_end = state + offset_of!(State<T>, sendq) + size_of::<WaitQueue<T>>();
            assert!(queues_end <= 64, "queues end at {queues_end}");
        }
        check::<u8>();
        check::<u64>();
        check::<[u8; 100]>();
        check::<String>();
        check::<()>();
    }
}
