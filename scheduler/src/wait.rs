//! Wait queues: the one wait-queue core under channels and sync primitives.
//! The only module that holds pointers to a parked thread's stack;
//! everything built on it is safe code.
//!
//! A blocked operation puts an `Entry` in a queue, under the lock that
//! guards the queue (the channel's or the primitive's), and parks. An entry
//! is one word, a pointer to the waiter's `Packet`, which holds the rest
//! (value, state, unparker, select): for a plain `send`/`recv` the packet
//! lives on the blocked thread's own stack (sound because green-thread
//! stacks never move) and is written there in place; for a `select` arm it
//! is shared (`Arc`), since it may be used after the select returns, and
//! it holds its select's context (`Arc<SelectCx>`, the `selected` word
//! that all of the select's arms share).
//!
//! ```text
//!   channel (locked)             blocked thread's stack
//!   ┌───────────────┐            ┌──────────────────────────┐
//!   │ recvq: Entry ─┼─ *packet ─►│ Packet { state, value,   │
//!   │        Entry ─┼──┐         │          unparker }      │
//!   │ sendq: ...    │  │         └──────────────────────────┘
//!   └───────────────┘  │  heap (a select arm; tag bit set)
//!                      │         ┌──────────────────────────┐    ┌──────────────┐
//!                      └────────►│ Arc<Packet { state, ..., │    │ SelectCx {   │
//!                                │   select: Arc ─────────────►  │  selected }  │
//!                                └──────────────────────────┘    └──────────────┘
//! ```
//!
//! # Protocol
//!
//! 1. A peer pops an entry under the channel lock and claims it
//!    (`Entry::claim`): a plain entry is claimed by popping it; a select
//!    entry by winning the CAS on its select's `selected` word, so exactly
//!    one arm of a select completes. A popped select entry whose CAS fails
//!    is dropped: its select was already decided.
//! 2. The claimer completes the packet ([`Claimed`] methods): writes or
//!    takes the value and sets the packet's state with Release. It moves
//!    the waiter's `Unparker` out of the entry first and unparks only after
//!    the channel lock is released; after setting the state it never
//!    touches the packet again.
//! 3. A waiter returns only once its entry is out of every queue and its
//!    packet's state is no longer WAITING; a waiter that times out removes
//!    its own entry under the lock, and if the entry is gone (claimed),
//!    waits for the claimer to finish. So a packet outlives every pointer to
//!    it.
//! 4. A claim dropped without completion sets RETRY: the waiter starts its
//!    operation again. Nobody is ever left parked by a claim that vanished.
//!
//! # Packet states
//!
//! A packet's `state` is one byte. Every move, and who makes it:
//!
//! | from | to | who | how |
//! |---|---|---|---|
//! | (new) | WAITING | the owner | [`block`] or [`WaitQueue::push_select`] makes the packet |
//! | WAITING | READY | the claimer | [`Claimed::deliver`] (a receiver got its value), [`Claimed::take`] (a sender's value was taken), and the fast paths [`WaitQueue::deliver_to_plain_receiver`], [`WaitQueue::take_from_plain_sender`] |
//! | WAITING | CLOSED | the claimer | [`Claimed::close`]: the channel closed, or lost its receivers |
//! | WAITING | RETRY | the claimer | a [`Claimed`] dropped unfinished (step 4) |
//! | WAITING | SLOT | the claimer | [`Claimed::grant_slot`]: a deferred sender gets a reserved buffer slot |
//! | WAITING | DEFERRED | the claimer (a receiver) | [`Claimed::into_deferred_recv`]: it waits for a deferred sender's value |
//! | DEFERRED | FILLING | the deferred sender | [`DeferredSend::fill`] (CAS), then writes the value |
//! | FILLING | FILLED | the deferred sender | [`DeferredSend::fill`] (Release), then wakes the receiver |
//! | DEFERRED | ABANDONED | the deferred sender | [`DeferredSend`] dropped (CAS): it will not send; the receiver retries |
//! | DEFERRED | RECEIVER_GONE | the receiver | [`DeferredRecv`] dropped unwaited (CAS): the sender keeps its value |
//!
//! | (new) | SPINNING | the owner | [`block`], a plain waiter that may spin or be watched (see below) |
//! | SPINNING | READY, CLOSED or RETRY | the claimer | as from WAITING, by a compare-exchange, and without waking the owner; a claimer on the worker that watches the packet: a store, and it wakes the owner |
//! | SPINNING | WAITING | the owner | its spin ended unanswered and no worker watches it, or it runs again after a watched park (compare-exchange) |
//! | SPINNING | WAITING | the watching worker | before it sleeps (compare-exchange) |
//!
//! WAITING moves once, by the one claimer, with a Release store that is
//! its last touch of a plain packet; the owner reads every state with
//! Acquire ([`block`], [`ArmPacket::outcome`]). READY, CLOSED, RETRY and
//! SLOT end the packet's use for the claimer; FILLED, ABANDONED and
//! RECEIVER_GONE end a deferred send. Only DEFERRED has two possible
//! movers (the sender and the receiver), which is why its moves are CASes.
//!
//! # Spinning waiters
//!
//! A plain waiter on a worker where nothing else could run meanwhile (see
//! `park::completion_wait`) spins a few microseconds before it
//! parks, watching its packet's state, which starts as SPINNING. Its
//! claimer completes such a packet with a compare-exchange SPINNING →
//! final state and stops there: it does not take the unparker, and wakes
//! nobody (it hands back a no-op [`Unparker`]). A cross-worker hand-off
//! then moves two cache lines, the queue's and the packet's, instead of
//! also the waiter's task header (the unpark's compare-exchange) and its
//! worker's mailbox; it is most of what a hand-off between green threads
//! on different workers costs. A spin that ends unanswered moves the
//! packet SPINNING → WAITING by a compare-exchange too, so exactly one
//! side decides: either the claimer's exchange succeeded (the waiter sees
//! the final state, drops its own unparker and returns) or the waiter's
//! did (the claimer then finds WAITING and completes and wakes as ever).
//! Select arms never spin: their packets are shared, and a select's
//! waiter wakes from whichever arm completes first.
//!
//! ## Watched waits
//!
//! A spin that ends because other work came to the waiter's worker (or
//! after its few microseconds) need not end the cheap completion: the
//! waiter parks with its packet still SPINNING, and its *worker* watches
//! the packet (`Worker::watch`: a pointer to the state and to the
//! unparker, at most four per worker). The claimer completes it as above,
//! waking nobody; the worker sees the state move where it looks at its
//! inbox, when it spins idle, or in another green thread's spin, and wakes
//! the waiter itself, a wake within one worker. Without it, several green
//! threads of one worker whose partners are elsewhere (producers feeding a
//! consumer on another worker) take turns being the parked one, and every
//! message pays a cross-worker wake. A green thread whose latest such wait
//! was answered from another worker (`Header::partner_away`) is watched
//! from the start, even beside ready green threads, where it would not
//! spin; one whose partners share its worker never is, and pays nothing.
//!
//! Who ends a watch, and how exactly one side decides:
//!
//! - The claimer on another worker: its exchange from SPINNING (the
//!   worker then finds the final state and wakes the waiter with the
//!   unparker the claimer left in the packet).
//! - A claimer on the watching worker (the waiter is parked there, not
//!   spinning): it takes the entry out (`Worker::unwatch`) and completes
//!   and wakes the ordinary way, the cheapest wake there is.
//! - The worker, before it sleeps: SPINNING → WAITING by a
//!   compare-exchange; if that fails the claimer was first, and the worker
//!   wakes the waiter. Nobody watches a sleeping worker's packets.
//! - The waiter, whenever it runs again (woken by any of these, or by
//!   anything else: the runtime's shutdown unwinding it, a spurious
//!   wake), before it looks at its packet: it takes its entry out if it is
//!   still there and moves a packet still SPINNING to WAITING. Its unwind
//!   guard does the same. So an entry never outlives its packet: the
//!   waiter runs only on its worker (watches are off with full
//!   migration), the thread that holds the entry.
//!
//! A waiter that is unwinding (or panicking) is never watched: its park
//! blocks its worker's OS thread, and no worker would look.
//!
//! # Deferred sends
//!
//! A select's send arm must not evaluate its value unless the arm is
//! chosen (Go's and crossbeam's rule), so the arm waits in a send queue
//! with no value: a *deferred sender*. The whole exchange, end to end:
//!
//! 1. **Register.** The select queues the arm with
//!    [`WaitQueue::push_select`]`(cx, arm, deferred: true)` (in
//!    `grove-channels`: `SelectHandle::register` for a `Sender`). Its
//!    packet has no value and is shared with the select ([`ArmPacket`]).
//! 2. **Claim.** A receiver finds it in the send queue and claims it
//!    ([`WaitQueue::claim_first`]: the CAS on the select's `selected` word,
//!    so exactly one arm of that select completes); [`Claimed::kind`] says
//!    [`Kind::DeferredSender`]. The receiver is a plain `recv`
//!    (`chan::State::try_recv`), a select's receive arm
//!    (`chan::State::select_recv`), or a receive that freed a buffer slot
//!    (`chan::State::refill`).
//! 3. **Slot or wait.** (a) Where a buffer slot is free (a receive just
//!    freed one), nobody needs to wait: the claimer reserves the slot in
//!    the channel and [`Claimed::grant_slot`] sets SLOT. (b) Otherwise the
//!    receiver waits for the value: [`Claimed::into_deferred_recv`] leaves
//!    its unparker in the packet (`deferred_receiver`), sets DEFERRED and
//!    gives the receiver a [`DeferredRecv`]; once the channel is unlocked
//!    it wakes the select and parks in [`DeferredRecv::wait`] (a plain
//!    receive: `chan::Got::finish`; a select receive: inside its select,
//!    `SelectHandle::resolve`, so both selects complete together).
//! 4. **Send.** The select wakes and reads its arm:
//!    [`ArmPacket::outcome`] says [`ArmOutcome::Slot`] (then the value,
//!    evaluated now, goes into the reserved slot:
//!    `chan::State::fill_reserved`) or [`ArmOutcome::Deferred`] with a
//!    [`DeferredSend`];
//!    the user's `send` on the selected operation evaluates the value and
//!    [`DeferredSend::fill`] writes it (DEFERRED → FILLING → FILLED) and
//!    wakes the receiver, whose [`DeferredRecv::wait`] returns it.
//! 5. **Give-ups.** A selected operation dropped without its send drops the
//!    [`DeferredSend`] (ABANDONED): the receiver's wait returns `None` and
//!    it receives again; a dropped slot is released
//!    (`chan::State::release_reserved`). A receiver unwound while it waits
//!    drops its [`DeferredRecv`] (RECEIVER_GONE): `fill` then gives the
//!    value back and the send completes the ordinary way
//!    (`select::handle::finish_send`: `Sender::send`). A select unwound
//!    while its chosen send arm waits in SLOT or DEFERRED settles it as a
//!    dropped selected operation would (`select::run::SettleOnUnwind`):
//!    the slot released, the deferred send abandoned.
//!
//! # Soundness from safe code
//!
//! Every public item here is safe to call in any order, from any thread;
//! misuse can make a waiter wait forever, never touch freed or shared
//! memory. What makes that hold:
//!
//! - Only [`block`] makes an entry that points at a stack, and it does not
//!   return (nor unwind) before that entry is out of the queue and
//!   completed: the stack frame outlives the pointer, whatever closures it
//!   was given.
//! - A select arm's packet ([`WaitQueue::push_select`]) is made by the
//!   queue itself and holds its select's context by an `Arc`: dropping a
//!   [`SelectCx`] while its arms are still queued is harmless.
//! - A packet is completed only by the holder of its [`Claimed`] (which is
//!   unique: claiming pops the entry), and read only by its owner (the
//!   [`block`] frame, or the one [`ArmPacket`], which is not `Clone` and
//!   reads through `&mut self`).
//! - Dropping a [`Claimed`] wakes its waiter; the values whose loss would
//!   lose a wake-up (`Claimed`, the [`Unparker`]s a completion returns) are
//!   `#[must_use]`.

use crate::loom::{AtomicU8, AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Instant;

use crate::park::{self, Unparker, WaitReason};

// Packet states: see "Packet states" in the module docs for who moves a
// packet from which to which.

/// Queued, not completed yet.
const WAITING: u8 = 0;
/// A receiver's packet holds the value now; a sender's value was taken.
const READY: u8 = 1;
/// The channel closed (or lost its receivers); a sender keeps its value.
const CLOSED: u8 = 2;
/// A claim was dropped unfinished: start the operation again.
const RETRY: u8 = 3;
/// A deferred sender was claimed: a buffer slot is reserved for it.
const SLOT: u8 = 4;
/// A deferred sender was claimed by a receiver that now waits for the
/// value.
const DEFERRED: u8 = 5;
/// Deferred send: the sender wrote its value.
const FILLED: u8 = 6;
/// Deferred send: the sender gave up without sending.
const ABANDONED: u8 = 7;
/// Deferred send: the sender is writing its value.
const FILLING: u8 = 8;
/// Deferred send: the receiver gave up before the value came; the sender
/// keeps its value and sends it some other way.
const RECEIVER_GONE: u8 = 9;
/// Queued, not completed yet, and the owner (a plain waiter) spins
/// watching the state: the claimer completes with a compare-exchange from
/// here and wakes nobody (see "Spinning waiters" in the module docs).
const SPINNING: u8 = 10;

/// Where a blocked operation's value goes or comes from, and who waits
/// for it. A queue's entry is a pointer to its waiter's packet.
///
/// | field | written by | read by |
/// |---|---|---|
/// | `state` | claimer (Release); the deferred send's two sides (CAS) | both (Acquire) |
/// | `value` | owner before queueing; claimer while WAITING; the deferred sender in FILLING | the other side after the state moved on |
/// | `unparker` | made with the packet | moved out by the claimer before it sets `state` (from WAITING); used by the watching worker after a claimer completed it from SPINNING (see "Watched waits") |
/// | `deferred`, `select` | made with the packet, never changed | claimers, under the queue's lock |
/// | `deferred_receiver` | the receiver that claimed a deferred sender, before DEFERRED | the deferred sender, after it |
///
/// `repr(C)`, state first, value next: a plain waiter's packet is put on a
/// cache line of its own ([`LinePacket`]), and a hand-off between cores
/// then moves one line of it (state and value together, for a value of up
/// to some 50 bytes) to the claimer and back, not two. (A select arm's
/// packet is on the heap, normally aligned: an aligned allocation per
/// arm would cost more than it saves.)
#[repr(C)]
pub(crate) struct Packet<T> {
    state: AtomicU8,
    /// A select send arm: its value is deferred until the arm is chosen.
    deferred: bool,
    value: UnsafeCell<Option<T>>,
    /// The waiter, moved out by the claimer before it sets `state`.
    unparker: UnsafeCell<Option<Unparker>>,
    /// A select arm's select and the arm's index in it.
    select: Option<(Arc<SelectCx>, usize)>,
    /// Deferred sends only: the receiver waiting for the value.
    deferred_receiver: UnsafeCell<Option<Unparker>>,
}

// SAFETY: a packet is shared by its owner and at most one claimer (or, in
// a deferred send, the receiver and the sender that fills it). `value`,
// `unparker` and `deferred_receiver` are written
// by one side and read by the other only across a Release store / Acquire
// load (or CAS) of `state`, or under the queue's lock; the rest is
// immutable. No `&T` is ever handed to both sides: values only move
// through a packet, so T: Send is what sharing it needs (as for a
// channel, or `std::sync::Mutex`).
unsafe impl<T: Send> Sync for Packet<T> {}
// SAFETY: all it owns is Send (T: Send, unparkers, the select's `Arc`).
unsafe impl<T: Send> Send for Packet<T> {}

impl<T> Packet<T> {
    /// A packet holding a sender's value, or empty for a receiver, of the
    /// waiter `unparker` wakes.
    fn new(
        value: Option<T>,
        unparker: Unparker,
        select: Option<(Arc<SelectCx>, usize)>,
        deferred: bool,
    ) -> Packet<T> {
        Packet {
            state: AtomicU8::new(WAITING),
            deferred,
            value: UnsafeCell::new(value),
            unparker: UnsafeCell::new(Some(unparker)),
            select,
            deferred_receiver: UnsafeCell::new(None),
        }
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// A plain packet whose entry its owner removed from the queue before
    /// anyone claimed it: drops the unparker and gives the value back.
    fn release_unclaimed(&self) -> Option<T> {
        // SAFETY: the entry is gone unclaimed (removed under the lock by the
        // caller, the packet's owner): nobody else reads the packet now.
        unsafe {
            drop((*self.unparker.get()).take());
            (*self.value.get()).take()
        }
    }

    /// A plain packet's owner, once its claimer completed it: takes the
    /// value, and drops the unparker if the claimer left it (it completed
    /// the packet from SPINNING, see "Spinning waiters").
    /// True with it if the claimer left the unparker.
    fn take_completed(&self) -> (Option<T>, bool) {
        debug_assert!(!matches!(self.state(), WAITING | SPINNING));
        // SAFETY: completed (Acquire above, in the caller): the claimer is
        // done with the packet, and only its owner touches it from here on.
        unsafe {
            let left = (*self.unparker.get()).is_some();
            if left {
                drop((*self.unparker.get()).take());
            }
            ((*self.value.get()).take(), left)
        }
    }

    /// Takes the value once the packet is no longer WAITING.
    fn take_value(&self) -> Option<T> {
        debug_assert_ne!(self.state(), WAITING);
        // SAFETY: not WAITING (Acquire above): the claimer is done with the
        // value, and only the packet's owner reads it from here on.
        unsafe { (*self.value.get()).take() }
    }
}

/// A plain waiter's packet, on its stack, starting a cache line.
#[repr(align(64))]
struct LinePacket<T>(Packet<T>);

/// The select a waiting arm belongs to: which of its arms was chosen.
/// Its arms' packets hold it by an `Arc` ([`WaitQueue::push_select`]).
#[derive(Debug)]
pub struct SelectCx {
    /// 0 while waiting, `arm + 1` once an arm is chosen, ABORTED after a
    /// timeout or an arm that became ready during registration.
    selected: AtomicUsize,
}

const ABORTED: usize = usize::MAX;

impl Default for SelectCx {
    fn default() -> Self {
        SelectCx::new()
    }
}

impl SelectCx {
    /// A select that has chosen nothing yet.
    #[must_use]
    pub fn new() -> SelectCx {
        SelectCx {
            selected: AtomicUsize::new(0),
        }
    }

    /// The chosen arm, if any.
    pub fn selected(&self) -> Option<usize> {
        match self.selected.load(Ordering::Acquire) {
            0 | ABORTED => None,
            arm => Some(arm - 1),
        }
    }

    /// Gives up waiting; false if an arm was chosen first.
    pub fn abort(&self) -> bool {
        self.selected
            .compare_exchange(0, ABORTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A waiter in a channel queue: one word, a pointer to its packet (a queue
/// push writes nothing else). A plain waiter's packet is on its stack,
/// alive by protocol step 3. A select arm's packet is shared: the pointer
/// comes from `Arc::into_raw` (the entry holds one count) and has its low
/// bit set, which is how the two are told apart.
pub(crate) struct Entry<T> {
    tagged: NonNull<u8>,
    _packet: PhantomData<Arc<Packet<T>>>,
}

const SELECT_ARM: usize = 1;

// SAFETY: the pointers follow the protocol above (their targets outlive the
// entry); the value they lead to is T: Send.
unsafe impl<T: Send> Send for Entry<T> {}

impl<T> Entry<T> {
    fn plain(packet: &Packet<T>) -> Entry<T> {
        Entry {
            tagged: NonNull::from(packet).cast(),
            _packet: PhantomData,
        }
    }

    fn select_arm(packet: Arc<Packet<T>>) -> Entry<T> {
        // The tag bit is free: a packet holds an `Option<Unparker>`.
        const { assert!(std::mem::align_of::<Packet<T>>() > SELECT_ARM) };
        let raw = NonNull::new(Arc::into_raw(packet).cast_mut().cast::<u8>())
            .expect("an Arc's pointer is not null");
        Entry {
            tagged: raw.map_addr(|a| a | SELECT_ARM),
            _packet: PhantomData,
        }
    }

    /// Another count of a select arm's packet.
    fn shared_packet(&self) -> Option<Arc<Packet<T>>> {
        if !self.is_select_arm() {
            return None;
        }
        let packet = self.packet_ptr();
        // SAFETY: from `Arc::into_raw` (see `select_arm`), and this entry
        // holds a count, so the count is at least one while we add ours.
        unsafe {
            Arc::increment_strong_count(packet);
            Some(Arc::from_raw(packet))
        }
    }

    fn is_select_arm(&self) -> bool {
        self.tagged.addr().get() & SELECT_ARM != 0
    }

    fn packet_ptr(&self) -> *const Packet<T> {
        self.tagged
            .as_ptr()
            .map_addr(|a| a & !SELECT_ARM)
            .cast::<Packet<T>>()
    }

    fn packet(&self) -> &Packet<T> {
        // SAFETY: a plain waiter does not drop its packet while an entry
        // pointing at it exists or it is WAITING (protocol step 3); a
        // select arm's packet is kept alive by the count this entry holds.
        unsafe { &*self.packet_ptr() }
    }

    fn select(&self) -> Option<(&SelectCx, usize)> {
        if !self.is_select_arm() {
            return None;
        }
        let (cx, arm) = self.packet().select.as_ref()?;
        Some((cx, *arm))
    }

    /// Whether this entry belongs to the select `cx`.
    fn is_of(&self, cx: &SelectCx) -> bool {
        self.select().is_some_and(|(c, _)| std::ptr::eq(c, cx))
    }

    /// Protocol step 1: claim this waiter. `None` if its select is decided.
    fn claim(self) -> Option<Claimed<T>> {
        if let Some((cx, arm)) = self.select() {
            cx.selected
                .compare_exchange(0, arm + 1, Ordering::AcqRel, Ordering::Acquire)
                .ok()?;
        }
        Some(Claimed { entry: Some(self) })
    }

    /// Whether a claim could succeed now (for readiness checks).
    fn is_claimable(&self) -> bool {
        self.select()
            .is_none_or(|(cx, _)| cx.selected.load(Ordering::Acquire) == 0)
    }
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        if self.is_select_arm() {
            // SAFETY: the pointer came from `Arc::into_raw` in `select_arm`
            // and this entry's count was not given back yet.
            drop(unsafe { Arc::from_raw(self.packet_ptr()) });
        }
    }
}

/// A claimed waiter: complete it with one of the methods, each of which
/// returns the `Unparker` to call once the channel lock is released.
/// Dropping it unfinished sets RETRY and wakes the waiter (step 4).
///
/// A claim is the one right to complete its waiter: it is neither `Clone`
/// nor `Sync`.
///
/// ```compile_fail,E0277
/// fn shared<T: Sync>() {}
/// shared::<grove_scheduler::wait::Claimed<u32>>();
/// ```
#[must_use = "dropping a claim makes its waiter retry; complete it instead"]
pub struct Claimed<T> {
    entry: Option<Entry<T>>,
}

/// What a claimed waiter is.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    /// A receiver: give it a value.
    Receiver,
    /// A plain sender: take its value.
    Sender,
    /// A select send arm: its value is deferred until the arm is chosen
    /// (see "Deferred sends" in the module docs).
    DeferredSender,
}

impl<T> Entry<T> {
    /// Protocol step 2's last act: publishes `state` to the waiter and
    /// hands back its unparker (to call once the channel lock is released),
    /// or a no-op one if the waiter spins for it or another worker watches
    /// it ("Spinning waiters", "Watched waits").
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn complete(self, state: u8) -> Unparker {
        let packet = self.packet();
        // A load first: a waiter on this core never spins, and a locked
        // instruction costs some 7 ns even on a line this core owns.
        if !self.is_select_arm()
            && packet.state.load(Ordering::Relaxed) == SPINNING
            // A waiter this worker watches is parked here: it is woken the
            // ordinary way, a cheap wake on one worker.
            && !park::unwatch(&packet.state)
            && packet
                .state
                .compare_exchange(SPINNING, state, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            // The owner spins on the state, or its worker watches it; it saw
            // nothing before this exchange and keeps its unparker (the
            // worker wakes it with that). A plain packet may be gone from
            // here on: no further access.
            return Unparker::nobody();
        }
        // SAFETY: claimed (step 1) and still WAITING, or SPINNING with its
        // watch just taken out by this thread, the one that held it (the
        // owner is parked on this worker, and the worker, this thread, will
        // not look): the owner does not touch its unparker; it was written
        // before the packet was queued.
        let unparker = unsafe { (*packet.unparker.get()).take() };
        // A plain packet may be gone once this store is seen: the last
        // access to it (the select arm's count is given back after it).
        packet.state.store(state, Ordering::Release);
        drop(self);
        unparker.expect("a queued packet names its waiter")
    }
}

impl<T> Claimed<T> {
    fn finish(mut self, state: u8, value: Option<T>) -> Unparker {
        let entry = self.entry.take().expect("a claim completes once");
        if let Some(value) = value {
            // SAFETY: the claim is exclusive (step 1) and the state is still
            // WAITING, so the owner does not touch the value.
            unsafe { *entry.packet().value.get() = Some(value) };
        }
        entry.complete(state)
    }

    /// What the claimed waiter is.
    pub fn kind(&self) -> Kind {
        let entry = self.entry.as_ref().expect("not finished");
        if entry.packet().deferred {
            Kind::DeferredSender
        } else if self.has_value() {
            Kind::Sender
        } else {
            Kind::Receiver
        }
    }

    fn has_value(&self) -> bool {
        let entry = self.entry.as_ref().expect("not finished");
        // SAFETY: exclusive claim, state WAITING: the owner waits.
        unsafe { (*entry.packet().value.get()).is_some() }
    }

    /// The value a claimed plain sender is waiting to hand over (a sync
    /// primitive's waiter keeps its wait-start time here).
    pub fn peek(&self) -> Option<&T> {
        let entry = self.entry.as_ref().expect("not finished");
        // SAFETY: exclusive claim, state WAITING: the owner does not touch
        // the value while we look; the borrow ends before we finish.
        unsafe { (*entry.packet().value.get()).as_ref() }
    }

    /// Gives `value` to a claimed receiver.
    #[must_use = "wake the returned unparker once the lock is released"]
    pub fn deliver(self, value: T) -> Unparker {
        debug_assert_eq!(self.kind(), Kind::Receiver);
        self.finish(READY, Some(value))
    }

    /// Takes the value of a claimed plain sender.
    #[must_use = "wake the returned unparker once the lock is released"]
    pub fn take(mut self) -> (T, Unparker) {
        let entry = self.entry.take().expect("not finished");
        // SAFETY: exclusive claim, state WAITING: the owner does not touch
        // the value until `complete` sets the state.
        match unsafe { (*entry.packet().value.get()).take() } {
            Some(value) => (value, entry.complete(READY)),
            None => {
                // Broken invariant: leave the claim to its drop (RETRY), so
                // the waiter is not left parked.
                self.entry = Some(entry);
                panic!("a plain sender's packet holds its value")
            }
        }
    }

    /// Tells the waiter its channel closed.
    #[must_use = "wake the returned unparker once the lock is released"]
    pub fn close(self) -> Unparker {
        self.finish(CLOSED, None)
    }

    /// Tells a deferred sender that a buffer slot is reserved for it
    /// (deferred sends, step 3a).
    #[must_use = "wake the returned unparker once the lock is released"]
    pub fn grant_slot(self) -> Unparker {
        debug_assert_eq!(self.kind(), Kind::DeferredSender);
        self.finish(SLOT, None)
    }

    /// Tells a deferred sender that the caller waits for its value (deferred
    /// sends, step 3b); the caller then waits on the returned
    /// [`DeferredRecv`] (after unlocking).
    ///
    /// # Panics
    ///
    /// If the waiter is not a select arm (the claim is dropped first, so
    /// the waiter retries).
    #[must_use = "wake the returned unparker once the lock is released"]
    pub fn into_deferred_recv(mut self) -> (DeferredRecv<T>, Unparker) {
        debug_assert_eq!(self.kind(), Kind::DeferredSender);
        let packet = self
            .entry
            .as_ref()
            .and_then(Entry::shared_packet)
            .expect("a deferred sender is a select arm");
        let entry = self.entry.take().expect("not finished");
        // SAFETY: written before the Release store of DEFERRED in
        // `finish`; the sender reads it only after seeing that state.
        unsafe { *packet.deferred_receiver.get() = Some(park::current_unparker()) };
        let waker = Claimed { entry: Some(entry) }.finish(DEFERRED, None);
        (DeferredRecv { packet }, waker)
    }
}

impl<T> Drop for Claimed<T> {
    fn drop(&mut self) {
        if self.entry.is_some() {
            let waker = Claimed {
                entry: self.entry.take(),
            }
            .finish(RETRY, None);
            waker.wake();
        }
    }
}

/// A receiver waiting for a deferred sender's value (deferred sends, steps
/// 3b and 5).
#[must_use = "wait for the value; dropping it gives the value back to the sender"]
pub struct DeferredRecv<T> {
    packet: Arc<Packet<T>>,
}

impl<T> DeferredRecv<T> {
    /// Waits for the value; `None` if the sender gave up (retry).
    #[track_caller]
    pub fn wait(self, reason: &'static WaitReason) -> Option<T> {
        let at = Location::caller();
        loop {
            match self.packet.state() {
                FILLED => return self.packet.take_value(),
                ABANDONED => return None,
                _ => park::park_with(reason, None, at),
            }
        }
    }
}

impl<T> Drop for DeferredRecv<T> {
    fn drop(&mut self) {
        // Unwaited (the receive was dropped, or unwound while waiting): if
        // the sender has not started writing, it keeps its value. A value
        // already written is dropped with the packet.
        let _ = self.packet.state.compare_exchange(
            DEFERRED,
            RECEIVER_GONE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// A queue of waiters of one direction of one channel. Only touched under
/// the channel's lock: `Send` (when `T` is), not `Sync`.
///
/// ```compile_fail,E0277
/// fn shared<Q: Sync>(_: &Q) {}
/// shared(&grove_scheduler::wait::WaitQueue::<u32>::new());
/// ```
pub struct WaitQueue<T> {
    entries: Entries<T>,
}

/// Queues this long or shorter remove a select's entries at once (see
/// `WaitQueue::remove_select`).
const REMOVE_AT_ONCE: usize = 8;

/// A queue's entries, oldest first: the first in the queue's own memory
/// (a channel keeps it on the line its lock is on), the rest in a ring on
/// the heap, made when a second waiter comes. Most queues hold one waiter
/// at most, and a hand-off between cores then moves no heap line.
struct Entries<T> {
    /// The oldest entry; `None` only while the ring is empty too.
    head: Option<Entry<T>>,
    /// Boxed on purpose: two words less in the queue, which is what lets a
    /// channel keep both of its queues on its lock's line.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Ring<T>>>,
}

/// The heap part of a queue: its entries after the first, and the count of
/// removals of decided selects' entries left undone (see
/// `WaitQueue::remove_select`; only a queue that long has a ring).
struct Ring<T> {
    entries: VecDeque<Entry<T>>,
    left_dead: usize,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            entries: VecDeque::new(),
            left_dead: 0,
        }
    }
}

impl<T> std::ops::Deref for Ring<T> {
    type Target = VecDeque<Entry<T>>;
    fn deref(&self) -> &VecDeque<Entry<T>> {
        &self.entries
    }
}

impl<T> std::ops::DerefMut for Ring<T> {
    fn deref_mut(&mut self) -> &mut VecDeque<Entry<T>> {
        &mut self.entries
    }
}

impl<T> Entries<T> {
    const fn new() -> Entries<T> {
        Entries {
            head: None,
            rest: None,
        }
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn front(&self) -> Option<&Entry<T>> {
        self.head.as_ref()
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn pop_front(&mut self) -> Option<Entry<T>> {
        let head = self.head.take()?;
        if let Some(rest) = &mut self.rest {
            self.head = rest.pop_front();
        }
        Some(head)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn push_back(&mut self, entry: Entry<T>) {
        if self.head.is_none() {
            self.head = Some(entry);
        } else {
            self.rest.get_or_insert_default().push_back(entry);
        }
    }

    fn push_front(&mut self, entry: Entry<T>) {
        if let Some(old) = self.head.replace(entry) {
            self.rest.get_or_insert_default().push_front(old);
        }
    }

    fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }

    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &Entry<T>> {
        let rest = self.rest.iter().flat_map(|r| r.iter());
        self.head.iter().chain(rest)
    }

    fn get(&self, i: usize) -> Option<&Entry<T>> {
        match i {
            0 => self.head.as_ref(),
            _ => self.rest.as_ref()?.get(i - 1),
        }
    }

    fn remove(&mut self, i: usize) -> Option<Entry<T>> {
        match i {
            0 => self.pop_front(),
            _ => self.rest.as_mut()?.remove(i - 1),
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Entry<T>) -> bool) {
        if self.head.as_ref().is_some_and(|e| !keep(e)) {
            self.head = None;
        }
        if let Some(rest) = &mut self.rest {
            rest.retain(|e| keep(e));
            if self.head.is_none() {
                self.head = rest.pop_front();
            }
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = Entry<T>> + '_ {
        let rest = self.rest.iter_mut().flat_map(|r| r.drain(..));
        self.head.take().into_iter().chain(rest)
    }
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        WaitQueue::new()
    }
}

impl<T> WaitQueue<T> {
    /// An empty queue.
    pub const fn new() -> WaitQueue<T> {
        WaitQueue {
            entries: Entries::new(),
        }
    }

    /// Pops and claims the first waiter that can be claimed, skipping (and
    /// dropping) select entries whose select is decided, and entries of
    /// `not_of` (a select does not pair with itself).
    #[must_use = "dropping a claim makes its waiter retry"]
    pub fn claim_first(&mut self, not_of: Option<&SelectCx>) -> Option<Claimed<T>> {
        if not_of.is_none() {
            while let Some(entry) = self.entries.pop_front() {
                if let Some(claimed) = entry.claim() {
                    return Some(claimed);
                }
            }
            return None;
        }
        let mut i = 0;
        while i < self.entries.len() {
            if not_of.is_some_and(|cx| self.entries.get(i).is_some_and(|e| e.is_of(cx))) {
                i += 1;
                continue;
            }
            let entry = self.entries.remove(i).expect("index in range");
            if let Some(claimed) = entry.claim() {
                return Some(claimed);
            }
        }
        None
    }

    /// The common case of [`claim_first`](Self::claim_first) followed by
    /// [`Claimed::take`], in one step: if the first waiter is a plain (not
    /// select) sender, takes its value and completes it. `None` otherwise;
    /// the caller then takes the general path.
    #[must_use = "wake the returned unparker once the lock is released"]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn take_from_plain_sender(&mut self) -> Option<(T, Unparker)> {
        if self.entries.front()?.is_select_arm() {
            return None;
        }
        let entry = self.entries.pop_front()?;
        // SAFETY: popping a plain entry claims it (step 1); its state is
        // WAITING, so the owner does not touch the value until `complete`.
        match unsafe { (*entry.packet().value.get()).take() } {
            Some(value) => Some((value, entry.complete(READY))),
            None => {
                // A receiver in a send queue cannot happen; leave it be.
                self.entries.push_front(entry);
                None
            }
        }
    }

    /// The common case of [`claim_first`](Self::claim_first) followed by
    /// [`Claimed::deliver`]: if the first waiter is a plain (not select)
    /// receiver, gives it `value` and completes it. `Err(value)` otherwise;
    /// the caller then takes the general path.
    #[must_use = "wake the returned unparker once the lock is released"]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn deliver_to_plain_receiver(&mut self, value: T) -> Result<Unparker, T> {
        match self.entries.front() {
            Some(entry) if !entry.is_select_arm() => {}
            _ => return Err(value),
        }
        let entry = self.entries.pop_front().expect("a front entry");
        // SAFETY: popping a plain entry claims it (step 1); its state is
        // WAITING, so the owner does not touch the value until `complete`.
        unsafe { *entry.packet().value.get() = Some(value) };
        Ok(entry.complete(READY))
    }

    /// Whether some waiter (not of `not_of`) could be claimed now.
    pub fn has_claimable(&self, not_of: Option<&SelectCx>) -> bool {
        self.entries
            .iter()
            .any(|e| !not_of.is_some_and(|cx| e.is_of(cx)) && e.is_claimable())
    }

    /// Claims every waiter (for close).
    #[must_use = "dropping the claims makes their waiters retry"]
    pub fn claim_all(&mut self) -> Vec<Claimed<T>> {
        self.entries.drain().filter_map(Entry::claim).collect()
    }

    fn remove_packet(&mut self, packet: *const Packet<T>) -> bool {
        let found = self
            .entries
            .iter()
            .position(|e| std::ptr::eq(e.packet_ptr(), packet));
        found.map(|i| self.entries.remove(i)).is_some()
    }

    /// Whether no waiter is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Waiters queued (claimable or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Removes the entries of select `cx` (unregistering).
    ///
    /// A long queue of a decided select keeps them for a while instead: a
    /// scan per removal made a channel many selects wait on together (a
    /// shared `done` channel, Go's `BenchmarkChanPopular`: a thousand green
    /// threads each selecting on it and on a channel of its own) cost
    /// O(waiters) per select and O(waiters²) per round, all of it under
    /// the lock. An entry of a decided select is dead: a claimer pops and
    /// drops it (its claim fails), and [`has_claimable`](Self::has_claimable)
    /// passes over it. The removals left undone are counted; when they
    /// could be half the queue, every dead entry goes in one scan, so each
    /// removal costs O(1) amortized and the dead never outnumber the live
    /// for long. A select still undecided (unwinding out of its wait) is
    /// removed at once: a claimer could still choose its entries.
    ///
    /// `lazily`: the select is done, its arms' packets dropped (so that an
    /// entry left behind holds no count of its green thread: see
    /// [`ArmPacket`]'s drop); false removes at once whatever the length.
    pub fn remove_select(&mut self, cx: &SelectCx, lazily: bool) {
        let len = self.entries.len();
        let decided = cx.selected.load(Ordering::Acquire) != 0;
        let left = match &mut self.entries.rest {
            Some(ring) if lazily && decided && len > REMOVE_AT_ONCE => {
                ring.left_dead += 1;
                ring.left_dead
            }
            _ => {
                self.entries.retain(|e| !e.is_of(cx));
                return;
            }
        };
        if 2 * left >= len {
            self.entries.retain(Entry::is_claimable);
            if let Some(ring) = &mut self.entries.rest {
                ring.left_dead = 0;
            }
        }
    }

    /// Registers arm `arm` of select `cx`, waited on by the calling thread,
    /// a send arm whose value comes later if `deferred`. Returns the arm's
    /// packet, through which the select learns how its arm was completed.
    /// The queue's entry holds the packet and `cx` alive: the select should
    /// [`remove_select`](Self::remove_select) its arms when it is done, but
    /// nothing unsound follows if it does not.
    #[must_use = "the packet says how the arm was completed"]
    pub fn push_select(&mut self, cx: &Arc<SelectCx>, arm: usize, deferred: bool) -> ArmPacket<T> {
        let packet = Arc::new(Packet::new(
            None,
            park::current_unparker(),
            Some((cx.clone(), arm)),
            deferred,
        ));
        self.entries.push_back(Entry::select_arm(packet.clone()));
        ArmPacket(packet)
    }
}

/// How a plain blocked operation ended.
#[must_use = "a sender's value may come back in it"]
pub enum Woken<T> {
    /// Completed: a receiver's value, or `None` for a sender.
    Done(Option<T>),
    /// The channel closed; a sender gets its value back.
    Closed(Option<T>),
    /// The deadline passed first; a sender gets its value back.
    Timeout(Option<T>),
    /// A claim was dropped unfinished: try again (a sender's value back).
    Retry(Option<T>),
}

/// Puts the caller in a queue and parks it until a peer completes it, the
/// channel closes, or `deadline` passes (protocol step 3).
///
/// `guard` holds the channel's lock; `relock` takes it again; `queue` picks
/// the queue out of the locked state. `value` is a sender's value.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn block<T, S, G>(
    mut guard: G,
    relock: impl Fn() -> G,
    queue: impl Fn(&mut S) -> &mut WaitQueue<T>,
    value: Option<T>,
    deadline: Option<Instant>,
    reason: &'static WaitReason,
    at: &'static Location<'static>,
) -> Woken<T>
where
    G: std::ops::DerefMut<Target = S>,
{
    // Spin first where a green thread has nothing else to run ("Spinning
    // waiters" in the module docs).
    let (spin, watch) = match deadline {
        None => park::completion_wait(),
        Some(_) => (false, false),
    };
    // Not dropped as a whole: every way out takes its value, and its
    // unparker is taken by the claimer or, if the entry was removed
    // unclaimed, by `Packet::release_unclaimed` (or read out by the owner,
    // after a spin that was answered); nothing else in a plain packet owns
    // anything. This saves the drop's checks on every wait.
    let line = ManuallyDrop::new(LinePacket(Packet::new(
        value,
        park::current_unparker(),
        None,
        false,
    )));
    let packet = &line.0;
    if watch {
        packet.state.store(SPINNING, Ordering::Relaxed);
    }
    queue(&mut guard).entries.push_back(Entry::plain(packet));
    // From here the entry must leave the queue before the packet dies,
    // whatever unwinds: the park below (the runtime unwinding this green
    // thread), or the guard's own drop, which is the caller's code.
    let waiting = UnqueueOnUnwind {
        packet,
        relock: &relock,
        queue: &queue,
    };
    drop(guard);
    // The first park skips the park's own spin for an unpark: this one
    // spun already, or found that it may not.
    let mut first_park = true;
    // Parks with the packet left SPINNING, its worker watching it.
    let mut watched = false;
    if watch {
        let answered = (spin && spin_for(packet)) || {
            watched = park::watch_while_parked(&packet.state, unparker_ptr(packet));
            !watched
                && packet
                    .state
                    .compare_exchange(SPINNING, WAITING, Ordering::Acquire, Ordering::Acquire)
                    .is_err()
        };
        if answered {
            // Out of the queue: the claimer took the entry.
            std::mem::forget(waiting);
            // Completed from SPINNING: the claimer left the unparker here
            // and is done with the packet (the state was read with
            // Acquire, so what it wrote before is visible).
            // The value and the unparker are moved out by reading them
            // only: a write would take the packet's line back from the
            // claimer's core once more, and the packet (`ManuallyDrop`) is
            // not used again.
            // SAFETY: the claimer's exchange from SPINNING does not touch
            // the unparker, and nobody touches the packet after it; each
            // field is read once, and never dropped in place.
            let (value, unparker) =
                unsafe { (packet.value.get().read(), packet.unparker.get().read()) };
            drop(unparker);
            // Answered while this green thread ran: from another worker.
            park::set_partner_away(true);
            return match packet.state() {
                READY => Woken::Done(value),
                CLOSED => Woken::Closed(value),
                _ => Woken::Retry(value),
            };
        }
    }
    if watched {
        park_watched(packet, reason, at);
    }
    // From here the packet is never SPINNING: its claimer wakes us, as any
    // waiter's.
    loop {
        match packet.state() {
            WAITING => {}
            READY => {
                std::mem::forget(waiting);
                return Woken::Done(owner_take(packet, watch, watched));
            }
            CLOSED => {
                std::mem::forget(waiting);
                return Woken::Closed(owner_take(packet, watch, watched));
            }
            _ => {
                std::mem::forget(waiting);
                return Woken::Retry(owner_take(packet, watch, watched));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let mut guard = relock();
            if queue(&mut guard).remove_packet(packet) {
                // Out of the queue before the guard's drop, which may
                // panic: nothing is left to undo then.
                std::mem::forget(waiting);
                drop(guard);
                return Woken::Timeout(packet.release_unclaimed());
            }
            // Claimed meanwhile: the claimer finishes shortly (step 3).
            drop(guard);
            park::park_with(reason, None, at);
            continue;
        }
        // One call site: each inlined copy of the switch is a place the
        // processor must learn to predict.
        let spin = !std::mem::take(&mut first_park);
        park::park_spinning_if(reason, deadline, at, spin);
    }
}

/// `block`'s park while its worker watches the packet ("Watched waits"):
/// once it runs again (woken by that worker or otherwise), or if the
/// packet was completed before it parked, the watch ends and the packet
/// is no longer SPINNING. Out of line: only waits whose partners are on
/// other workers come here.
#[inline(never)]
fn park_watched<T>(
    packet: &Packet<T>,
    reason: &'static WaitReason,
    at: &'static Location<'static>,
) {
    if packet.state.load(Ordering::Relaxed) == SPINNING {
        park::park_spinning_if(reason, None, at, false);
    }
    settle_watch(packet);
}

/// `block`'s take once its packet is completed: plain, unless the packet
/// started SPINNING (`watch`: the claimer may have left the unparker, and
/// a watch may still be on).
#[cfg_attr(not(debug_assertions), inline(always))]
fn owner_take<T>(packet: &Packet<T>, watch: bool, was_watched: bool) -> Option<T> {
    if watch {
        take_after_watch(packet, was_watched)
    } else {
        packet.take_value()
    }
}

/// `block`'s take of a completed packet that started SPINNING: takes the
/// value, drops the unparker if the claimer left it, and records where
/// the answer came from (`Header::partner_away`).
#[inline(never)]
fn take_after_watch<T>(packet: &Packet<T>, was_watched: bool) -> Option<T> {
    let (value, left) = packet.take_completed();
    if was_watched {
        // A claimer on another worker completes a watched packet from
        // SPINNING and leaves the unparker; one on this worker takes it
        // and wakes us (`Entry::complete`).
        park::set_partner_away(left);
    }
    value
}

/// Ends the watch of a plain waiter's packet, before anything else looks
/// at it once the waiter runs again: the worker's entry goes, and a packet
/// still SPINNING goes to WAITING (or was completed just before).
fn settle_watch<T>(packet: &Packet<T>) {
    park::unwatch(&packet.state);
    if packet.state.load(Ordering::Relaxed) == SPINNING {
        let _ =
            packet
                .state
                .compare_exchange(SPINNING, WAITING, Ordering::Acquire, Ordering::Acquire);
    }
}

/// Where a plain packet keeps its unparker, for the worker that watches it.
fn unparker_ptr<T>(packet: &Packet<T>) -> NonNull<Option<Unparker>> {
    NonNull::new(packet.unparker.get()).expect("a field's address is not null")
}

/// Whether a watched packet was completed (see `Worker::watch`).
pub(crate) fn watch_answered(state: &AtomicU8) -> bool {
    state.load(Ordering::Relaxed) != SPINNING
}

/// Ends a worker's watch of a parked waiter's packet: SPINNING → WAITING,
/// so that its claimer wakes the waiter; false if the claimer completed it
/// first (the worker then wakes the waiter).
pub(crate) fn end_watch(state: &AtomicU8) -> bool {
    state
        .compare_exchange(SPINNING, WAITING, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

/// Spins until the packet leaves SPINNING (true), or the spin ends.
#[cfg(not(loom))]
#[cfg_attr(not(debug_assertions), inline(always))]
fn spin_for<T>(packet: &Packet<T>) -> bool {
    park::spin_while_idle(|| packet.state() != SPINNING)
}

/// Loom: one look, after letting the other threads run.
#[cfg(loom)]
fn spin_for<T>(packet: &Packet<T>) -> bool {
    ::loom::thread::yield_now();
    packet.state() != SPINNING
}

/// `block`'s unwind guard: takes the entry out of its queue (or waits for
/// its claimer) before the packet on the unwinding stack dies.
struct UnqueueOnUnwind<'a, T, S, G, R, Q>
where
    G: std::ops::DerefMut<Target = S>,
    R: Fn() -> G,
    Q: Fn(&mut S) -> &mut WaitQueue<T>,
{
    packet: &'a Packet<T>,
    relock: &'a R,
    queue: &'a Q,
}

impl<T, S, G, R, Q> Drop for UnqueueOnUnwind<'_, T, S, G, R, Q>
where
    G: std::ops::DerefMut<Target = S>,
    R: Fn() -> G,
    Q: Fn(&mut S) -> &mut WaitQueue<T>,
{
    fn drop(&mut self) {
        // Unwound out of a watched park, maybe: no entry may outlive us.
        settle_watch(self.packet);
        let mut guard = (self.relock)();
        let removed = (self.queue)(&mut guard).remove_packet(self.packet);
        drop(guard);
        if removed {
            drop(self.packet.release_unclaimed());
            return;
        }
        // Claimed: wait for the claimer before the packet goes away. We
        // are unwinding, so this blocks the OS thread (never switches).
        while self.packet.state() == WAITING {
            park::park(&UNWINDING);
        }
        drop(self.packet.take_completed().0);
    }
}

static UNWINDING: WaitReason = WaitReason("chan (unwinding)");

/// A select arm's packet, as its select holds it: the one reader of what
/// the arm's claimer wrote (not `Clone`; read through `&mut self`).
///
/// ```compile_fail,E0599
/// use std::sync::Arc;
/// use grove_scheduler::wait::{SelectCx, WaitQueue};
/// let mut queue = WaitQueue::<u32>::new();
/// let packet = queue.push_select(&Arc::new(SelectCx::new()), 0, false);
/// let second_reader = packet.clone(); // one value, one reader
/// ```
pub struct ArmPacket<T>(Arc<Packet<T>>);

impl<T> fmt::Debug for ArmPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmPacket")
            .field("state", &self.0.state())
            .finish_non_exhaustive()
    }
}

/// What a select arm's packet says once its select chose it.
pub enum ArmOutcome<T> {
    /// Not yet completed by the claimer: wait.
    Pending,
    /// A receive arm got its value.
    Received(T),
    /// The channel closed.
    Closed,
    /// A claim was dropped: select again.
    Retry,
    /// A send arm has a buffer slot reserved.
    Slot,
    /// A send arm must hand its value to a waiting receiver.
    Deferred(DeferredSend<T>),
}

/// A deferred sender that a receiver waits on (deferred sends, steps 4
/// and 5): fill it with the value.
#[must_use = "fill it; dropping it tells the receiver to retry"]
pub struct DeferredSend<T> {
    packet: Arc<Packet<T>>,
}

impl<T> DeferredSend<T> {
    /// Hands the value over and wakes the receiver. `Err` gives the value
    /// back if the receiver already gave up.
    pub fn fill(self, value: T) -> Result<(), T> {
        // Our count of the packet, dropped when this returns: a value the
        // receiver does not take (it was unwound meanwhile) is dropped with
        // the packet's last count, here or by the receiver.
        let packet = self.into_packet();
        let claimed =
            packet
                .state
                .compare_exchange(DEFERRED, FILLING, Ordering::AcqRel, Ordering::Acquire);
        if claimed.is_err() {
            return Err(value);
        }
        // SAFETY: FILLING is ours (won above): the receiver reads the value
        // only after FILLED (Release below) and no longer drops to
        // RECEIVER_GONE; the deferred_receiver was written before DEFERRED (Acquire
        // in `arm_outcome`) and is read only by us.
        let deferred_receiver = unsafe {
            *packet.value.get() = Some(value);
            (*packet.deferred_receiver.get()).take()
        };
        packet.state.store(FILLED, Ordering::Release);
        if let Some(deferred_receiver) = deferred_receiver {
            deferred_receiver.wake();
        }
        Ok(())
    }

    /// The packet, without this sender's `Drop` (which would abandon it).
    fn into_packet(self) -> Arc<Packet<T>> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped nor used again, so the `Arc` is
        // moved out exactly once and its count is not lost (a
        // `mem::forget(self)` here leaked every filled packet).
        unsafe { std::ptr::read(&this.packet) }
    }
}

impl<T> Drop for DeferredSend<T> {
    fn drop(&mut self) {
        let abandoned = self.packet.state.compare_exchange(
            DEFERRED,
            ABANDONED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if abandoned.is_ok() {
            // SAFETY: as in `fill`: the deferred_receiver is ours to take once we
            // moved the state on from DEFERRED.
            let deferred_receiver = unsafe { (*self.packet.deferred_receiver.get()).take() };
            if let Some(deferred_receiver) = deferred_receiver {
                deferred_receiver.wake();
            }
        }
    }
}

impl<T> Drop for ArmPacket<T> {
    /// An arm its select did not choose lets go of the select's green
    /// thread (the packet's unparker): the queue's entry may outlive the
    /// select (see [`WaitQueue::remove_select`]), and its count of the
    /// thread, dropped last under a channel's lock, would run the thread's
    /// output destructor there.
    fn drop(&mut self) {
        let Some((cx, arm)) = &self.0.select else {
            return;
        };
        let decided = cx.selected.load(Ordering::Acquire);
        if decided != 0 && decided != arm + 1 {
            // SAFETY: the select is decided, for another arm or aborted:
            // no claimer can claim this arm any more (a claim is the CAS
            // of `selected` from 0), so nobody but this owner touches the
            // packet's unparker from here on.
            unsafe { drop((*self.0.unparker.get()).take()) };
        }
    }
}

impl<T> ArmPacket<T> {
    /// What the arm's claimer did, once its select chose it. A value
    /// received is taken out (a second look says `Retry`).
    pub fn outcome(&mut self) -> ArmOutcome<T> {
        let packet = &self.0;
        match packet.state() {
            WAITING => ArmOutcome::Pending,
            READY => match packet.take_value() {
                Some(value) => ArmOutcome::Received(value),
                None => ArmOutcome::Retry,
            },
            CLOSED => ArmOutcome::Closed,
            SLOT => ArmOutcome::Slot,
            DEFERRED => ArmOutcome::Deferred(DeferredSend {
                packet: packet.clone(),
            }),
            _ => ArmOutcome::Retry,
        }
    }
}

/// The auto traits every public type here is meant to have, checked at
/// compile time; the negative ones are `compile_fail` doctests on the types
/// (`Claimed`, `WaitQueue`: not `Sync`; `ArmPacket`: not `Clone`).
const _: () = {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    #[allow(dead_code)]
    fn check<T: Send>() {
        send_sync::<SelectCx>();
        send_sync::<Kind>();
        // A claim or a queue moves between threads with its values; a
        // queue is shared only behind its channel's lock.
        send::<Claimed<T>>();
        send::<WaitQueue<T>>();
        // Only `&mut self` (or by-value) methods: sharing one gives nothing.
        send_sync::<ArmPacket<T>>();
        send_sync::<DeferredRecv<T>>();
        send_sync::<DeferredSend<T>>();
        send::<Woken<T>>();
        send::<ArmOutcome<T>>();
    }
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn count(packet: &ArmPacket<u32>) -> usize {
        Arc::strong_count(&packet.0)
    }

    /// A select arm's entry holds one count of its packet: every way the
    /// entry leaves a queue gives it back (the select keeps its own).
    #[test]
    fn select_arm_entries_give_back_their_count() {
        let cx = Arc::new(SelectCx::new());
        let mut queue = WaitQueue::<u32>::new();

        // Unregistered.
        let packet = queue.push_select(&cx, 0, false);
        assert_eq!(count(&packet), 2);
        assert!(queue.entries.front().is_some_and(|e| e.is_of(&cx)));
        queue.remove_select(&cx, false);
        assert!(queue.is_empty());
        assert_eq!(count(&packet), 1);

        // Claimed and completed.
        let mut packet = queue.push_select(&cx, 1, false);
        let claimed = queue.claim_first(None).expect("claimable");
        assert_eq!(claimed.kind(), Kind::Receiver);
        claimed.deliver(7).wake();
        assert_eq!(count(&packet), 1);
        assert_eq!(cx.selected(), Some(1));
        assert!(matches!(packet.outcome(), ArmOutcome::Received(7)));
        assert!(
            matches!(packet.outcome(), ArmOutcome::Retry),
            "a value is taken out once"
        );

        // Skipped because its select was decided elsewhere.
        let decided = Arc::new(SelectCx::new());
        assert!(decided.abort());
        let other = queue.push_select(&decided, 0, true);
        assert_eq!(count(&other), 2);
        assert!(queue.claim_first(None).is_none());
        assert_eq!(count(&other), 1);
    }

    /// The select's context is held by its arms' packets: a select that
    /// drops its context with arms still queued leaves nothing dangling
    /// (issue 19 case 4: the entry used to keep a bare pointer to it).
    #[test]
    fn a_queued_arm_keeps_its_select_alive() {
        let mut queue = WaitQueue::<u32>::new();
        let cx = Arc::new(SelectCx::new());
        let mut packet = queue.push_select(&cx, 3, false);
        let weak = Arc::downgrade(&cx);
        drop(cx);
        assert!(weak.upgrade().is_some(), "the queued entry holds it");
        let claimed = queue.claim_first(None).expect("claimable");
        claimed.deliver(9).wake();
        assert!(matches!(packet.outcome(), ArmOutcome::Received(9)));
        drop(packet);
        assert!(weak.upgrade().is_none(), "freed with its last packet");
    }

    /// A queue keeps its waiters in arrival order however they come and
    /// go: the first is kept inline, the rest in a ring made for the
    /// second (`Entries`).
    #[test]
    fn waiters_keep_their_order() {
        let mut queue = WaitQueue::<u32>::new();
        let cxs: Vec<Arc<SelectCx>> = (0..7).map(|_| Arc::new(SelectCx::new())).collect();
        let mut packets: Vec<ArmPacket<u32>> = cxs
            .iter()
            .enumerate()
            .map(|(i, cx)| queue.push_select(cx, i, false))
            .collect();
        assert_eq!(queue.len(), 7);
        queue.remove_select(&cxs[0], false); // the inline first
        queue.remove_select(&cxs[3], false); // one in the ring
        assert_eq!(queue.len(), 5);
        // A select does not pair with itself: 1 is skipped, 2 is claimed.
        let claimed = queue.claim_first(Some(&cxs[1])).expect("claimable");
        claimed.deliver(20).wake();
        assert_eq!(cxs[2].selected(), Some(2));
        assert_eq!(queue.len(), 4);
        // Then in order: 1, 4, 5 (6 stays).
        for (arm, value) in [(1, 10), (4, 40), (5, 50)] {
            let claimed = queue.claim_first(None).expect("claimable");
            claimed.deliver(value).wake();
            assert_eq!(cxs[arm].selected(), Some(arm));
        }
        assert_eq!(queue.len(), 1);
        // Emptied, then refilled: the inline slot first again.
        let again = Arc::new(SelectCx::new());
        let mut late = queue.push_select(&again, 0, false);
        let closed = queue.claim_all();
        assert_eq!(closed.len(), 2);
        for claim in closed {
            claim.close().wake();
        }
        assert!(queue.is_empty());
        for (arm, value) in [(1, 10), (2, 20), (4, 40), (5, 50)] {
            assert!(matches!(packets[arm].outcome(), ArmOutcome::Received(v) if v == value));
        }
        assert!(matches!(packets[6].outcome(), ArmOutcome::Closed));
        assert!(matches!(late.outcome(), ArmOutcome::Closed));
    }

    /// Decided selects' entries left in a long queue (lazy removal): the
    /// dead never outnumber the live by more than one, no claim goes to
    /// them, and the live keep their order.
    #[test]
    fn decided_selects_left_behind_are_bounded_and_skipped() {
        const LIVE: usize = 20;
        let mut queue = WaitQueue::<u32>::new();
        let live: Vec<Arc<SelectCx>> = (0..LIVE).map(|_| Arc::new(SelectCx::new())).collect();
        let mut packets: Vec<ArmPacket<u32>> = live
            .iter()
            .map(|cx| queue.push_select(cx, 0, false))
            .collect();
        for round in 0..1_000 {
            let cx = Arc::new(SelectCx::new());
            let packet = queue.push_select(&cx, 1, false);
            assert!(cx.abort(), "decided elsewhere");
            drop(packet);
            queue.remove_select(&cx, true);
            let len = queue.len();
            assert!(
                len <= 2 * LIVE + 1,
                "round {round}: {len} entries for {LIVE} live"
            );
            assert!(len >= LIVE, "round {round}: a live entry went");
        }
        for (i, cx) in live.iter().enumerate() {
            let claimed = queue.claim_first(None).expect("a live one");
            claimed.deliver(i as u32).wake();
            assert_eq!(cx.selected(), Some(0));
        }
        assert!(queue.claim_first(None).is_none());
        assert!(queue.is_empty());
        for (i, packet) in packets.iter_mut().enumerate() {
            assert!(matches!(packet.outcome(), ArmOutcome::Received(v) if v == i as u32));
        }
    }

    /// A plain waiter's entry is one untagged word; the fast paths see
    /// through select arms to leave them to the general path.
    #[test]
    fn fast_paths_leave_select_arms_alone() {
        let cx = Arc::new(SelectCx::new());
        let mut queue = WaitQueue::<u32>::new();
        let _packet = queue.push_select(&cx, 0, false);
        assert_eq!(queue.deliver_to_plain_receiver(5).err(), Some(5));
        assert!(queue.take_from_plain_sender().is_none());
        assert_eq!(queue.len(), 1, "still queued for the general path");
        queue.remove_select(&cx, false);
        assert_eq!(
            std::mem::size_of::<Entry<u32>>(),
            std::mem::size_of::<usize>()
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The wait protocol with plain (loom) threads standing in for green
    //! threads: the park seam's OS path parks loom threads.
    use super::*;
    use ::loom::sync::{Arc as LArc, Mutex as LMutex};
    use ::loom::thread;

    static TEST: WaitReason = WaitReason("loom");

    /// Blocks in `queue` (a sender with `value`, a receiver with `None`)
    /// until a peer completes the wait; spinning first if `spin` (under
    /// loom: one look at its packet after letting the others run), as a
    /// green thread with nothing else to run does ("Spinning waiters").
    fn wait_in(queue: &LMutex<WaitQueue<u32>>, value: Option<u32>, spin: bool) -> Woken<u32> {
        park::loom_spin_before_waits(spin);
        block(
            queue.lock().unwrap(),
            || queue.lock().unwrap(),
            |q: &mut WaitQueue<u32>| q,
            value,
            None,
            &TEST,
            Location::caller(),
        )
    }

    /// Both ways to wait: parking at once, and spinning first (where the
    /// claimer's exchange from SPINNING and the waiter's own race).
    const BOTH: [bool; 2] = [false, true];

    /// Claims the first waiter of `queue`, retrying until one is there.
    fn claim(queue: &LMutex<WaitQueue<u32>>, then: impl FnOnce(Claimed<u32>) -> Option<Unparker>) {
        loop {
            let mut q = queue.lock().unwrap();
            if let Some(claimed) = q.claim_first(None) {
                let waker = then(claimed);
                drop(q);
                if let Some(w) = waker {
                    w.wake();
                }
                return;
            }
            drop(q);
            thread::yield_now();
        }
    }

    /// Steps 1-3: a receiver blocks, a sender claims it and delivers; the
    /// receiver gets the value, and its entry is gone from the queue.
    #[test]
    fn a_blocked_receiver_gets_what_is_delivered() {
        for spin in BOTH {
            ::loom::model(move || {
                let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
                let q2 = queue.clone();
                let sender = thread::spawn(move || claim(&q2, |c| Some(c.deliver(42))));
                let woken = wait_in(&queue, None, spin);
                assert!(matches!(woken, Woken::Done(Some(42))));
                sender.join().unwrap();
                assert!(queue.lock().unwrap().is_empty());
            });
        }
    }

    /// A blocked sender's value is taken exactly once; it learns it was.
    #[test]
    fn a_blocked_senders_value_is_taken_once() {
        for spin in BOTH {
            ::loom::model(move || {
                let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
                let q2 = queue.clone();
                let receiver = thread::spawn(move || {
                    let mut got = None;
                    claim(&q2, |c| {
                        let (value, waker) = c.take();
                        got = Some(value);
                        Some(waker)
                    });
                    got
                });
                let woken = wait_in(&queue, Some(7), spin);
                assert!(matches!(woken, Woken::Done(None)), "the value was taken");
                assert_eq!(receiver.join().unwrap(), Some(7));
            });
        }
    }

    /// The channels' fast path for a plain receiver (`deliver_to_plain_receiver`)
    /// keeps steps 1-3: the receiver gets the value and its entry is gone.
    #[test]
    fn the_plain_receiver_fast_path_delivers() {
        for spin in BOTH {
            ::loom::model(move || {
                let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
                let q2 = queue.clone();
                let sender = thread::spawn(move || {
                    let mut value = 42;
                    loop {
                        let mut q = q2.lock().unwrap();
                        match q.deliver_to_plain_receiver(value) {
                            Ok(waker) => {
                                drop(q);
                                waker.wake();
                                return;
                            }
                            Err(back) => value = back,
                        }
                        drop(q);
                        thread::yield_now();
                    }
                });
                let woken = wait_in(&queue, None, spin);
                assert!(matches!(woken, Woken::Done(Some(42))));
                sender.join().unwrap();
                assert!(queue.lock().unwrap().is_empty());
            });
        }
    }

    /// The channels' fast path for a plain sender (`take_from_plain_sender`)
    /// takes its value exactly once, and the sender learns it was.
    #[test]
    fn the_plain_sender_fast_path_takes_once() {
        for spin in BOTH {
            ::loom::model(move || {
                let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
                let q2 = queue.clone();
                let receiver = thread::spawn(move || loop {
                    let mut q = q2.lock().unwrap();
                    if let Some((value, waker)) = q.take_from_plain_sender() {
                        drop(q);
                        waker.wake();
                        return value;
                    }
                    drop(q);
                    thread::yield_now();
                });
                let woken = wait_in(&queue, Some(7), spin);
                assert!(matches!(woken, Woken::Done(None)), "the value was taken");
                assert_eq!(receiver.join().unwrap(), 7);
            });
        }
    }

    /// A closed channel gives a waiting sender its value back.
    #[test]
    fn a_closed_channel_gives_a_waiting_sender_its_value_back() {
        for spin in BOTH {
            ::loom::model(move || {
                let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
                let q2 = queue.clone();
                let closer = thread::spawn(move || claim(&q2, |c| Some(c.close())));
                let woken = wait_in(&queue, Some(3), spin);
                assert!(matches!(woken, Woken::Closed(Some(3))));
                closer.join().unwrap();
            });
        }
    }

    /// Step 4: a claim dropped unfinished wakes the waiter with RETRY, and
    /// the waiter keeps its value.
    #[test]
    fn a_dropped_claim_means_retry() {
        for spin in BOTH {
            ::loom::model(move || {
                let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
                let q2 = queue.clone();
                let peer = thread::spawn(move || {
                    claim(&q2, |c| {
                        drop(c);
                        None
                    })
                });
                let woken = wait_in(&queue, Some(5), spin);
                assert!(matches!(woken, Woken::Retry(Some(5))));
                peer.join().unwrap();
            });
        }
    }

    /// One select waits in two queues; two peers race to claim it: exactly
    /// one arm completes, and the select's context says which.
    #[test]
    fn exactly_one_arm_of_a_select_is_claimed() {
        ::loom::model(|| {
            let cx = Arc::new(SelectCx::new());
            let queues = [
                LArc::new(LMutex::new(WaitQueue::<u32>::new())),
                LArc::new(LMutex::new(WaitQueue::<u32>::new())),
            ];
            let mut packets: Vec<ArmPacket<u32>> = queues
                .iter()
                .enumerate()
                .map(|(arm, q)| q.lock().unwrap().push_select(&cx, arm, false))
                .collect();
            let peers: Vec<_> = (0..2)
                .map(|arm| {
                    let q = queues[arm].clone();
                    thread::spawn(move || {
                        let claimed = q.lock().unwrap().claim_first(None);
                        claimed
                            .map(|c| c.deliver(arm as u32 + 10))
                            .map(Unparker::wake)
                            .is_some()
                    })
                })
                .collect();
            // The select parks until chosen, as `Select` does (the winner
            // unparks it), and only then waits for the peers.
            let arm = loop {
                match cx.selected() {
                    Some(arm) => break arm,
                    None => thread::park(),
                }
            };
            let wins: usize = peers
                .into_iter()
                .map(|p| usize::from(p.join().unwrap()))
                .sum();
            assert_eq!(wins, 1);
            assert!(
                matches!(packets[arm].outcome(), ArmOutcome::Received(v) if v == arm as u32 + 10)
            );
        });
    }

    /// A deferred sender claimed by a receiver that waits for its value:
    /// the value arrives exactly once; if the receiver gives up first, the
    /// sender gets its value back.
    #[test]
    fn a_deferred_send_completes_or_gives_the_value_back() {
        ::loom::model(|| {
            let cx = Arc::new(SelectCx::new());
            let queue = LArc::new(LMutex::new(WaitQueue::<u32>::new()));
            let mut packet = queue.lock().unwrap().push_select(&cx, 0, true);
            let q2 = queue.clone();
            let receiver = thread::spawn(move || {
                let claimed = q2
                    .lock()
                    .unwrap()
                    .claim_first(None)
                    .expect("the sender waits");
                let (deferred, waker) = claimed.into_deferred_recv();
                waker.wake();
                deferred.wait(&TEST)
            });
            // The sender: wait until claimed, then fill.
            let filled = loop {
                match packet.outcome() {
                    ArmOutcome::Pending => thread::yield_now(),
                    ArmOutcome::Deferred(r) => break r.fill(99),
                    _ => panic!("unexpected outcome"),
                }
            };
            assert_eq!(filled, Ok(()));
            assert_eq!(receiver.join().unwrap(), Some(99));
        });
    }
}
