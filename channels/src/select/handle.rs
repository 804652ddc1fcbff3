//! One channel end as an arm of a select: the [`SelectHandle`] trait, its
//! two implementations (`Sender`, `Receiver`), and the type-erased values
//! an arm passes through the type-blind select core ([`Erased`], [`Token`]).

use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ptr;
use std::sync::Arc;
use std::time::Instant;

use grove_scheduler::park::{self, Unparker};
use grove_scheduler::wait::{ArmOutcome, ArmPacket, Claimed, DeferredRecv, DeferredSend, SelectCx};

use crate::api::{Flavor, Receiver, Sender};
use crate::chan::{ChanGuard, RecvClaim, SendClaim, State, RECV, RECV_READY, SEND_READY};
use crate::err::{RecvError, SendError};

/// A value of a type known only to the arm that made it: in place if it
/// fits two words (an arm's packet, a claim, a lock guard: most of what a
/// select hands around), else boxed. A blocking select made four
/// allocations per arm and two more of its own; the boxes were half of
/// them.
pub(crate) struct Erased {
    /// The value itself (see [`fits`]), or the `Box<S>` pointer in its
    /// first word.
    data: MaybeUninit<[usize; 2]>,
    /// Drops what `data` holds; called once (see `drop_erased`).
    drop: unsafe fn(*mut MaybeUninit<[usize; 2]>),
    /// Not `Send` nor `Sync`, whatever it holds (a lock guard, say): a
    /// select's values stay with the select.
    _local: PhantomData<*mut ()>,
}

/// Whether an `S` is kept in place in an [`Erased`].
const fn fits<S>() -> bool {
    mem::size_of::<S>() <= mem::size_of::<[usize; 2]>()
        && mem::align_of::<S>() <= mem::align_of::<[usize; 2]>()
}

/// Drops the `S` that `data` holds (in place, or its box).
///
/// # Safety
///
/// `data` was filled by `Erased::new::<S>` and is dropped once.
unsafe fn drop_erased<S>(data: *mut MaybeUninit<[usize; 2]>) {
    if fits::<S>() {
        // SAFETY: per the contract, an `S` in place.
        unsafe { ptr::drop_in_place(data.cast::<S>()) }
    } else {
        // SAFETY: per the contract, a `Box<S>` pointer in the first word.
        drop(unsafe { Box::from_raw(data.cast::<*mut S>().read()) });
    }
}

impl Erased {
    pub(crate) fn new<S>(value: S) -> Erased {
        let mut data = MaybeUninit::<[usize; 2]>::uninit();
        let at = data.as_mut_ptr();
        if fits::<S>() {
            // SAFETY: `fits` checked that an `S` fits `data`'s size and
            // alignment.
            unsafe { at.cast::<S>().write(value) }
        } else {
            // SAFETY: a pointer fits the first word.
            unsafe { at.cast::<*mut S>().write(Box::into_raw(Box::new(value))) }
        }
        Erased {
            data,
            drop: drop_erased::<S>,
            _local: PhantomData,
        }
    }

    /// # Safety
    ///
    /// `S` is the type this was made from.
    unsafe fn into_inner<S>(self) -> S {
        // Not dropped: the value moves out.
        let this = mem::ManuallyDrop::new(self);
        let at = this.data.as_ptr();
        if fits::<S>() {
            // SAFETY: per the contract, an `S` in place, read once (`this`
            // is never dropped).
            unsafe { at.cast::<S>().read() }
        } else {
            // SAFETY: per the contract, a `Box<S>` pointer, taken once.
            *unsafe { Box::from_raw(at.cast::<*mut S>().read()) }
        }
    }

    /// # Safety
    ///
    /// `S` is the type this was made from.
    unsafe fn get_mut<S>(&mut self) -> &mut S {
        let at = self.data.as_mut_ptr();
        if fits::<S>() {
            // SAFETY: per the contract, an `S` in place, borrowed with `self`.
            unsafe { &mut *at.cast::<S>() }
        } else {
            // SAFETY: per the contract, a live `Box<S>` owned by `self`.
            unsafe { &mut **at.cast::<*mut S>() }
        }
    }
}

impl Drop for Erased {
    fn drop(&mut self) {
        // SAFETY: `drop` matches what `data` holds (made together in `new`),
        // and this is its one drop.
        unsafe { (self.drop)(&mut self.data) }
    }
}

/// What a chosen arm reserved, to be finished by `send`/`recv`.
pub(crate) enum Token {
    /// The channel is closed: a receive fails, a send gets its value back.
    Closed,
    /// A buffered item is claimed (receive) / a free slot reserved (send).
    Slot,
    /// A timer channel fired at this instant.
    At(Instant),
    /// Receive: a claimed waiting plain sender (`Claimed<T>`).
    FromSender(Erased),
    /// Receive: a claimed select send arm whose deferred value we wait
    /// for (`DeferredRecv<T>`; see `grove_scheduler::wait`, "Deferred
    /// sends").
    DeferredRecv(Erased),
    /// Receive: a value already taken (`T`): handed to our registered
    /// arm, or taken from the buffer in the try phase (see `recv_token`).
    Received(Erased),
    /// Send: a claimed waiting receiver (`Claimed<T>`).
    ToReceiver(Erased),
    /// Send: a receiver waits for our deferred value (`DeferredSend<T>`).
    DeferredSend(Erased),
}

/// How a registered arm looks once its select chose it.
pub(crate) enum Accept {
    Pending,
    Done(Token),
    Retry,
}

/// One channel end as an arm of a select.
///
/// The erased values an arm hands out (tokens, packets, guards) are handed
/// back only to the same arm or to a handle of the same channel (see
/// [`identity`](Self::identity)), which is what makes their casts sound.
pub(crate) trait SelectHandle {
    /// Phase 1: reserve the operation if it can complete now.
    fn try_select(&self) -> Option<Token>;
    /// Phase 2: queue arm `arm` of `cx`. Returns the arm's packet, and
    /// whether the operation is ready now.
    fn register(&self, cx: &Arc<SelectCx>, arm: usize) -> (Option<Erased>, bool);
    /// Phase 3: remove `cx`'s entries; `lazily` once the select is done
    /// and its packets dropped (see `WaitQueue::remove_select`).
    fn unregister(&self, cx: &SelectCx, lazily: bool);
    /// Phase 3: the chosen arm's packet, read.
    fn accept(&self, packet: &mut Erased) -> Accept;
    /// When a timer channel (or a receiver closing at an instant) could
    /// next be ready.
    fn deadline(&self) -> Option<Instant>;
    /// Gives back what an unfinished token reserved.
    fn release(&self, token: Token);
    /// Finishes what phase 1 could not do under the lock: a receive arm
    /// that claimed a select sender waits for its value here, inside the
    /// select (so both sides complete together, as in Go). `None` if that
    /// sender gave up: the arm is not ready after all.
    fn resolve(&self, token: Token) -> Option<Token> {
        Some(token)
    }
    /// The channel this is an end of: the address of its shared state (a
    /// channel's, or a timer's); 0 for `never()`. Two live handles with one
    /// identity are ends of one channel, so of one `T`.
    fn identity(&self) -> usize;
    /// The address of this arm's channel, for locking several channels in
    /// order; `None` for timer channels (nothing to lock).
    fn chan_addr(&self) -> Option<usize>;
    /// Locks this arm's channel; the guard comes back type-erased and must
    /// be dropped while the handle is borrowed.
    fn lock(&self) -> Erased;
    /// Phase 1 with the channel already locked: `guard` came from `lock` of
    /// an arm on the same channel. Also returns whom to wake once unlocked.
    fn try_select_locked(&self, guard: &mut Erased) -> Option<(Token, Option<Unparker>)>;
    /// Readiness (`Select::ready`): whether the operation could complete
    /// now. Wakes no other readiness waiter.
    fn is_ready(&self) -> bool;
    /// [`is_ready`](Self::is_ready) with the channel locked (as in
    /// `try_select_locked`).
    fn is_ready_locked(&self, guard: &mut Erased) -> bool;
    /// Readiness: true if ready now; else leaves `unparker` to be woken by
    /// the channel's next change, under the same lock (so no change is
    /// missed). Timer channels only answer (their time is a deadline).
    fn watch(&self, id: usize, unparker: &Unparker) -> bool;
    /// Readiness: takes back what `watch` left, if it is still there.
    fn unwatch(&self, id: usize);
    /// The word this arm's channel published (see `chan::RECV_READY`)
    /// and whether it says the arm could complete; `None` where no word
    /// tells (a timer channel). "Could not" is the truth at the instant of the read; "could" may
    /// be stale. `fenced`: read after a SeqCst fence (`Lock::published_fenced`).
    fn published(&self, fenced: bool) -> Option<(u32, bool)> {
        let _ = fenced;
        None
    }
}

/// Fills unused inline arm slots.
pub(crate) struct NoHandle;

impl SelectHandle for NoHandle {
    fn try_select(&self) -> Option<Token> {
        None
    }
    fn register(&self, _: &Arc<SelectCx>, _: usize) -> (Option<Erased>, bool) {
        (None, false)
    }
    fn unregister(&self, _: &SelectCx, _: bool) {}
    fn accept(&self, _: &mut Erased) -> Accept {
        Accept::Retry
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn release(&self, _: Token) {}
    fn identity(&self) -> usize {
        0
    }
    fn chan_addr(&self) -> Option<usize> {
        None
    }
    fn lock(&self) -> Erased {
        Erased::new(())
    }
    fn try_select_locked(&self, _: &mut Erased) -> Option<(Token, Option<Unparker>)> {
        None
    }
    fn is_ready(&self) -> bool {
        false
    }
    fn is_ready_locked(&self, _: &mut Erased) -> bool {
        false
    }
    fn watch(&self, _: usize, _: &Unparker) -> bool {
        false
    }
    fn unwatch(&self, _: usize) {}
}

pub(crate) static NO_HANDLE: NoHandle = NoHandle;

#[inline]
fn wake(waker: Option<Unparker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// A send arm's first phase by the sender's own type (see
/// `select::SendArm`): the reservation the arm would take, if it can
/// complete now.
#[inline]
pub(crate) fn send_now<T>(tx: &Sender<T>) -> Option<Token> {
    SelectHandle::try_select(tx)
}

/// Gives back a reservation of [`send_now`] that was not used.
pub(crate) fn release_send<T>(tx: &Sender<T>, token: Token) {
    SelectHandle::release(tx, token);
}

/// Finishes a chosen send arm. `tx` is an end of the arm's channel.
#[inline]
pub(crate) fn finish_send<T>(tx: &Sender<T>, token: Token, msg: T) -> Result<(), SendError<T>> {
    let chan = &tx.chan;
    match token {
        Token::Closed => Err(SendError(msg)),
        Token::Slot => {
            let mut state = chan.lock();
            let result = state.fill_reserved(msg);
            drop(state);
            match result {
                Ok(waker) => {
                    wake(waker);
                    Ok(())
                }
                Err(msg) => Err(SendError(msg)),
            }
        }
        Token::ToReceiver(claim) => {
            // SAFETY: a send token of this channel holds a `Claimed<T>`
            // (made in `send_token`); one channel has one `T`.
            let claim = unsafe { claim.into_inner::<Claimed<T>>() };
            claim.deliver(msg).wake();
            Ok(())
        }
        Token::DeferredSend(deferred) => {
            // SAFETY: made as a `DeferredSend<T>` by `accept` of an arm
            // on this channel.
            let deferred = unsafe { deferred.into_inner::<DeferredSend<T>>() };
            match deferred.fill(msg) {
                Ok(()) => Ok(()),
                // The receiver was unwound while it waited for us: the arm
                // was chosen, so the value is sent the ordinary way (a
                // buffer slot, another receiver, or a wait for one); it
                // comes back only if the channel closed or lost its
                // receivers, as for any send.
                Err(msg) => tx.send(msg),
            }
        }
        _ => unreachable!("a receive token passed to send"),
    }
}

/// Finishes a chosen receive arm. `rx` is an end of the arm's channel.
#[inline]
pub(crate) fn finish_recv<T>(rx: &Receiver<T>, token: Token) -> Result<T, RecvError> {
    match token {
        Token::Closed => Err(RecvError),
        Token::At(instant) => match &rx.flavor {
            Flavor::After(_, make) | Flavor::Tick(_, make) => Ok(make(instant)),
            _ => unreachable!("a timer token of a channel"),
        },
        Token::Slot => {
            let Flavor::Chan(chan, _) = &rx.flavor else {
                unreachable!("a slot token of a timer")
            };
            let mut state = chan.lock();
            let (value, waker) = state.take_claimed();
            drop(state);
            wake(waker);
            Ok(value)
        }
        Token::FromSender(claim) => {
            // SAFETY: made as a `Claimed<T>` by `recv_token` for this channel.
            let claim = unsafe { claim.into_inner::<Claimed<T>>() };
            let (value, waker) = claim.take();
            waker.wake();
            Ok(value)
        }
        Token::DeferredRecv(_) => unreachable!("resolved inside the select"),
        Token::Received(value) => {
            // SAFETY: made as a `T` by `accept`/`resolve`/`recv_token` of
            // this channel.
            Ok(unsafe { value.into_inner::<T>() })
        }
        _ => unreachable!("a send token passed to recv"),
    }
}

#[inline]
fn send_token<T>(state: &mut State<T>) -> Option<Token> {
    Some(match state.select_send()? {
        SendClaim::Closed => Token::Closed,
        SendClaim::Slot => Token::Slot,
        SendClaim::Receiver(claim) => Token::ToReceiver(Erased::new(claim)),
    })
}

#[inline]
fn recv_token<T>(
    state: &mut State<T>,
    closes: Option<Instant>,
) -> Option<(Token, Option<Unparker>)> {
    let Some(claim) = state.select_recv() else {
        let expired = closes.is_some_and(|at| Instant::now() >= at);
        return expired.then_some((Token::Closed, None));
    };
    Some(match claim {
        RecvClaim::Closed => (Token::Closed, None),
        // A value that an `Erased` keeps in place is taken now, under this
        // lock: finishing the arm then takes no lock again (the claim and
        // the later take were two acquisitions of a line the senders
        // write). A larger one stays claimed in the buffer (boxing it
        // would cost more than the second lock).
        RecvClaim::Slot if fits::<T>() => {
            let (value, waker) = state.take_claimed();
            (Token::Received(Erased::new(value)), waker)
        }
        RecvClaim::Slot => (Token::Slot, None),
        RecvClaim::Sender(claim) => (Token::FromSender(Erased::new(claim)), None),
        RecvClaim::Deferred(deferred, waker) => {
            (Token::DeferredRecv(Erased::new(deferred)), Some(waker))
        }
    })
}

#[inline]
fn is_past(at: Option<Instant>) -> bool {
    at.is_some_and(|at| Instant::now() >= at)
}

impl<T> SelectHandle for Sender<T> {
    fn try_select(&self) -> Option<Token> {
        // Not ready by the published word: no need of the lock (phase 2,
        // or the snapshot that ends a select that does not wait, looks
        // again under it).
        if self.chan.published() & SEND_READY == 0 {
            return None;
        }
        send_token(&mut self.chan.lock())
    }

    fn published(&self, fenced: bool) -> Option<(u32, bool)> {
        let word = self.chan.published_word(fenced);
        Some((word, word & SEND_READY != 0))
    }

    fn identity(&self) -> usize {
        Arc::as_ptr(&self.chan) as usize
    }

    fn chan_addr(&self) -> Option<usize> {
        Some(self.identity())
    }

    fn lock(&self) -> Erased {
        Erased::new(self.chan.lock())
    }

    fn try_select_locked(&self, guard: &mut Erased) -> Option<(Token, Option<Unparker>)> {
        // SAFETY: `guard` locks the channel at our address (see the trait);
        // one address is one channel, so one `T`.
        let state = unsafe { guard.get_mut::<ChanGuard<'_, T>>() };
        let token = send_token(state);
        if token.is_none() {
            // Only a select that does not wait gets here (its snapshot).
            state.mark_polled();
        }
        token.map(|token| (token, None))
    }

    fn register(&self, cx: &Arc<SelectCx>, arm: usize) -> (Option<Erased>, bool) {
        let mut state = self.chan.lock();
        let packet = state.sendq.push_select(cx, arm, true);
        let ready = state.send_ready(Some(cx));
        (Some(Erased::new(packet)), ready)
    }

    fn unregister(&self, cx: &SelectCx, lazily: bool) {
        self.chan.lock().sendq.remove_select(cx, lazily);
    }

    fn accept(&self, packet: &mut Erased) -> Accept {
        // SAFETY: a send arm's packet is an `ArmPacket<T>` (see `register`).
        let packet = unsafe { packet.get_mut::<ArmPacket<T>>() };
        match packet.outcome() {
            ArmOutcome::Pending => Accept::Pending,
            ArmOutcome::Closed => Accept::Done(Token::Closed),
            ArmOutcome::Slot => Accept::Done(Token::Slot),
            ArmOutcome::Deferred(r) => Accept::Done(Token::DeferredSend(Erased::new(r))),
            ArmOutcome::Received(_) | ArmOutcome::Retry => Accept::Retry,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        None
    }

    fn release(&self, token: Token) {
        match token {
            Token::Slot => {
                let waker = self.chan.lock().release_reserved();
                wake(waker);
            }
            // Dropping a claim sets RETRY; dropping a deferred send abandons it.
            Token::ToReceiver(claim) => {
                // SAFETY: made as a `Claimed<T>` by `send_token` for this
                // channel.
                drop(unsafe { claim.into_inner::<Claimed<T>>() });
            }
            Token::DeferredSend(r) => {
                // SAFETY: made as a `DeferredSend<T>` by `accept` for this
                // channel.
                drop(unsafe { r.into_inner::<DeferredSend<T>>() });
            }
            _ => {}
        }
    }

    fn is_ready(&self) -> bool {
        self.chan.lock_quiet().ready(true)
    }

    fn is_ready_locked(&self, guard: &mut Erased) -> bool {
        // SAFETY: as in `try_select_locked`.
        let state = unsafe { guard.get_mut::<ChanGuard<'_, T>>() };
        // Through `Deref`: a look changes nothing, so wakes nobody.
        let state: &State<T> = state;
        state.ready(true)
    }

    fn watch(&self, id: usize, unparker: &Unparker) -> bool {
        let mut state = self.chan.lock_quiet();
        if state.ready(true) {
            return true;
        }
        state.watch(id, unparker.clone());
        false
    }

    fn unwatch(&self, id: usize) {
        self.chan.lock_quiet().unwatch(id);
    }
}

impl<T> SelectHandle for Receiver<T> {
    fn published(&self, fenced: bool) -> Option<(u32, bool)> {
        match &self.flavor {
            Flavor::Chan(chan, closes) => {
                let word = chan.published_word(fenced);
                // Closing at an instant: ready by the clock once it came,
                // read after the word (so "not ready" held at the word's
                // read).
                let due = word & RECV_READY == 0 && is_past(*closes);
                Some((word, word & RECV_READY != 0 || due))
            }
            Flavor::Never => Some((0, false)),
            _ => None,
        }
    }

    fn try_select(&self) -> Option<Token> {
        match &self.flavor {
            Flavor::Chan(chan, closes) => {
                // As for a send arm; a receiver that closes at an instant
                // is ready by the clock too.
                if chan.published() & RECV_READY == 0 && !is_past(*closes) {
                    return None;
                }
                let mut state = chan.lock();
                let (token, waker) = recv_token(&mut state, *closes)?;
                drop(state);
                wake(waker);
                Some(token)
            }
            Flavor::After(after, _) => after.try_take(Instant::now()).map(Token::At),
            Flavor::Tick(tick, _) => tick.try_take(Instant::now()).map(Token::At),
            Flavor::Never => None,
        }
    }

    fn register(&self, cx: &Arc<SelectCx>, arm: usize) -> (Option<Erased>, bool) {
        match &self.flavor {
            Flavor::Chan(chan, closes) => {
                let mut state = chan.lock();
                let packet = state.recvq.push_select(cx, arm, false);
                let ready = state.recv_ready(Some(cx)) || is_past(*closes);
                (Some(Erased::new(packet)), ready)
            }
            Flavor::After(after, _) => (None, after.len(Instant::now()) > 0),
            // A stop or reset wakes the select to look at the new deadline.
            Flavor::Tick(tick, _) => {
                let id = Arc::as_ptr(cx) as usize;
                (
                    None,
                    tick.watch(id, &park::current_unparker(), Instant::now()),
                )
            }
            Flavor::Never => (None, false),
        }
    }

    fn unregister(&self, cx: &SelectCx, lazily: bool) {
        match &self.flavor {
            Flavor::Chan(chan, _) => chan.lock().recvq.remove_select(cx, lazily),
            Flavor::Tick(tick, _) => tick.unwatch(cx as *const SelectCx as usize),
            _ => {}
        }
    }

    fn accept(&self, packet: &mut Erased) -> Accept {
        // SAFETY: a receive arm's packet is an `ArmPacket<T>` (see
        // `register`).
        let packet = unsafe { packet.get_mut::<ArmPacket<T>>() };
        match packet.outcome() {
            ArmOutcome::Pending => Accept::Pending,
            ArmOutcome::Received(value) => Accept::Done(Token::Received(Erased::new(value))),
            ArmOutcome::Closed => Accept::Done(Token::Closed),
            _ => Accept::Retry,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.flavor {
            Flavor::After(after, _) => after.next(),
            Flavor::Tick(tick, _) => tick.next(),
            Flavor::Chan(_, closes) => *closes,
            Flavor::Never => None,
        }
    }

    fn resolve(&self, token: Token) -> Option<Token> {
        match token {
            Token::DeferredRecv(deferred) => {
                // SAFETY: made as a `DeferredRecv<T>` by `recv_token` for this
                // channel.
                let deferred = unsafe { deferred.into_inner::<DeferredRecv<T>>() };
                let value = deferred.wait(&RECV)?;
                Some(Token::Received(Erased::new(value)))
            }
            token => Some(token),
        }
    }

    fn identity(&self) -> usize {
        match &self.flavor {
            Flavor::Chan(chan, _) => Arc::as_ptr(chan) as usize,
            Flavor::After(after, _) => Arc::as_ptr(after) as usize,
            Flavor::Tick(tick, _) => Arc::as_ptr(tick) as usize,
            Flavor::Never => 0,
        }
    }

    fn chan_addr(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Chan(chan, _) => Some(Arc::as_ptr(chan) as usize),
            _ => None,
        }
    }

    fn lock(&self) -> Erased {
        match &self.flavor {
            Flavor::Chan(chan, _) => Erased::new(chan.lock()),
            _ => Erased::new(()),
        }
    }

    fn try_select_locked(&self, guard: &mut Erased) -> Option<(Token, Option<Unparker>)> {
        let Flavor::Chan(_, closes) = &self.flavor else {
            return self.try_select().map(|token| (token, None));
        };
        // SAFETY: `guard` locks the channel at our address (see the trait);
        // one address is one channel, so one `T`.
        let state = unsafe { guard.get_mut::<ChanGuard<'_, T>>() };
        let token = recv_token(state, *closes);
        if token.is_none() {
            // As for a send arm.
            state.mark_polled();
        }
        token
    }

    fn release(&self, token: Token) {
        let chan = match (&self.flavor, &token) {
            (Flavor::Chan(chan, _), _) => chan,
            // `after`'s or a `Timer`'s one value, taken for an operation
            // dropped unfinished: it is still there for the next receive.
            // (A periodic tick taken so is as a tick missed by a slow
            // receiver: dropped, the next stays on the grid.)
            (Flavor::After(after, _), Token::At(_)) => return after.give_back(),
            (Flavor::Tick(tick, _), Token::At(at)) => return tick.give_back(*at),
            _ => return,
        };
        match token {
            Token::Slot => {
                let wakers = chan.lock().release_claimed();
                wakers.into_iter().for_each(wake);
            }
            Token::FromSender(claim) => {
                // SAFETY: made as a `Claimed<T>` by `recv_token` for this
                // channel.
                drop(unsafe { claim.into_inner::<Claimed<T>>() });
            }
            Token::DeferredRecv(r) => {
                // SAFETY: made as a `DeferredRecv<T>` by `recv_token` for this
                // channel.
                drop(unsafe { r.into_inner::<DeferredRecv<T>>() });
            }
            Token::Received(value) => {
                // SAFETY: made as a `T` by `accept`/`resolve`/`recv_token`
                // for this channel.
                let value = unsafe { value.into_inner::<T>() };
                // Not received after all: back to the channel, first in
                // line, so nothing is lost.
                let (waker, unreceivable) = chan.lock().give_back(value);
                drop(unreceivable); // outside the lock: its destructor may be anything
                wake(waker);
            }
            _ => {}
        }
    }

    fn is_ready(&self) -> bool {
        match &self.flavor {
            Flavor::Chan(chan, closes) => chan.lock_quiet().ready(false) || is_past(*closes),
            Flavor::After(after, _) => after.len(Instant::now()) > 0,
            Flavor::Tick(tick, _) => tick.len(Instant::now()) > 0,
            Flavor::Never => false,
        }
    }

    fn is_ready_locked(&self, guard: &mut Erased) -> bool {
        let Flavor::Chan(_, closes) = &self.flavor else {
            return self.is_ready();
        };
        // SAFETY: as in `try_select_locked`.
        let state = unsafe { guard.get_mut::<ChanGuard<'_, T>>() };
        // Through `Deref`: a look changes nothing, so wakes nobody.
        let state: &State<T> = state;
        state.ready(false) || is_past(*closes)
    }

    fn watch(&self, id: usize, unparker: &Unparker) -> bool {
        if let Flavor::Tick(tick, _) = &self.flavor {
            return tick.watch(id, unparker, Instant::now());
        }
        let Flavor::Chan(chan, closes) = &self.flavor else {
            return self.is_ready();
        };
        let mut state = chan.lock_quiet();
        if state.ready(false) || is_past(*closes) {
            return true;
        }
        state.watch(id, unparker.clone());
        false
    }

    fn unwatch(&self, id: usize) {
        match &self.flavor {
            Flavor::Chan(chan, _) => chan.lock_quiet().unwatch(id),
            Flavor::Tick(tick, _) => tick.unwatch(id),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Erased;
    use std::rc::Rc;

    /// In place (up to two words) and boxed alike: the value comes back
    /// whole, is changed through `get_mut`, and is dropped exactly once,
    /// whether taken out or dropped with the `Erased`.
    #[test]
    fn erased_values_in_place_and_boxed() {
        let count = Rc::new(());
        let mut small = Erased::new((Rc::clone(&count), 7u32));
        // SAFETY: read as the type it was made from.
        unsafe { small.get_mut::<(Rc<()>, u32)>().1 += 1 };
        // SAFETY: as above.
        let (rc, v) = unsafe { small.into_inner::<(Rc<()>, u32)>() };
        assert_eq!(v, 8);
        drop(rc);
        let mut big = Erased::new((Rc::clone(&count), [1u64; 8]));
        // SAFETY: as above.
        unsafe { big.get_mut::<(Rc<()>, [u64; 8])>().1[7] = 9 };
        // SAFETY: as above.
        let (rc, a) = unsafe { big.into_inner::<(Rc<()>, [u64; 8])>() };
        assert_eq!(a[7], 9);
        drop(rc);
        // Dropped unread, in place and boxed; and a zero-sized value.
        drop(Erased::new(Rc::clone(&count)));
        drop(Erased::new((Rc::clone(&count), [0u8; 100])));
        drop(Erased::new(()));
        assert_eq!(Rc::strong_count(&count), 1, "every copy dropped once");
    }
}
