//! `Select`: wait on several channel operations, complete exactly one.
//!
//! crossbeam-channel's shape, Go's semantics. A select runs in phases:
//!
//! 1. **Try**: visit the arms in a random order (Go's `pollorder`, so a
//!    ready arm is chosen uniformly) and take the first that can complete
//!    without blocking. What it needs is *reserved* in the channel (a
//!    buffered item, a free slot, a claimed waiting peer), so the
//!    [`SelectedOperation`] is sure to complete; its `send`/`recv` finishes
//!    it. That is what lets a send arm's value be evaluated only once the arm
//!    is chosen.
//! 2. **Register** every arm in its channel's queue, all pointing at one
//!    `SelectCx` on this stack frame. If an arm turns out ready meanwhile,
//!    abort and go back to 1.
//! 3. **Park** until a peer claims one arm by winning the CAS on the
//!    context's `selected` word (so exactly one arm completes), or until the
//!    timeout. Then unregister every arm (under each channel's lock, after
//!    which no peer can touch the context) and finish the chosen one.
//!
//! Channels are locked one at a time, never together (unlike Go's
//! `selectgo`, which locks all of them in address order): registration and
//! the `selected` CAS give the same guarantee with less lock holding.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::Location;
use std::time::{Duration, Instant};
use std::{fmt, mem};

use grove_scheduler::lock::LockGuard;
use grove_scheduler::park::{self, Unparker, WaitReason};

use crate::api::{Flavor, Receiver, Sender};
use crate::chan::{RecvClaim, SendClaim, State, RECV};
use crate::err::{RecvError, SelectTimeoutError, SendError, TrySelectError};
use grove_scheduler::wait::{
    self, ArmOutcome, ArmPacket, Claimed, Packet, Rendezvous, SelectCx, SendRendezvous,
};

static SELECT: WaitReason = WaitReason("select");

/// A value of a type known only to the arm that made it.
pub(crate) struct Erased {
    ptr: *mut (),
    /// Drops the value behind `ptr`; called once, with `ptr` (see
    /// `drop_boxed`'s safety section).
    drop: unsafe fn(*mut ()),
}

/// Drops the `Box<S>` behind `ptr`.
///
/// # Safety
///
/// `ptr` came from `Box::<S>::into_raw` and is dropped once.
unsafe fn drop_boxed<S>(ptr: *mut ()) {
    // SAFETY: `ptr` came from `Box::<S>::into_raw` in `Erased::new` (the
    // pointer and this function are made together there).
    drop(unsafe { Box::from_raw(ptr.cast::<S>()) });
}

impl Erased {
    fn new<S>(value: S) -> Erased {
        Erased {
            ptr: Box::into_raw(Box::new(value)).cast(),
            drop: drop_boxed::<S>,
        }
    }

    /// # Safety
    ///
    /// `S` is the type this was made from.
    unsafe fn into_inner<S>(self) -> S {
        // SAFETY: per the contract, `ptr` is a `Box<S>`; forgetting `self`
        // keeps its drop from freeing it again.
        let boxed = unsafe { Box::from_raw(self.ptr.cast::<S>()) };
        mem::forget(self);
        *boxed
    }

    /// # Safety
    ///
    /// `S` is the type this was made from.
    unsafe fn get<S>(&self) -> &S {
        // SAFETY: per the contract.
        unsafe { &*self.ptr.cast::<S>() }
    }
}

impl Erased {
    /// # Safety
    ///
    /// `S` is the type this was made from.
    unsafe fn get_mut<S>(&mut self) -> &mut S {
        // SAFETY: per the contract.
        unsafe { &mut *self.ptr.cast::<S>() }
    }
}

impl Drop for Erased {
    fn drop(&mut self) {
        // SAFETY: `drop` matches `ptr` (made together in `new`).
        unsafe { (self.drop)(self.ptr) }
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
    /// Receive: a claimed select sender to wait for (`Rendezvous<T>`).
    FromLazySender(Erased),
    /// Receive: our registered arm was handed a value (`T`).
    Received(Erased),
    /// Send: a claimed waiting receiver (`Claimed<T>`).
    ToReceiver(Erased),
    /// Send: a receiver waits for our value (`SendRendezvous<T>`).
    ToWaitingReceiver(Erased),
}

/// How a registered arm looks once its select chose it.
pub(crate) enum Accept {
    Pending,
    Done(Token),
    Retry,
}

/// One channel end as an arm of a select.
pub(crate) trait SelectHandle {
    /// Phase 1: reserve the operation if it can complete now.
    fn try_select(&self) -> Option<Token>;
    /// Phase 2: queue arm `arm` of `cx`. Returns the arm's packet, and
    /// whether the operation is ready now.
    fn register(&self, cx: &SelectCx, arm: usize) -> (Option<Erased>, bool);
    /// Phase 3: remove `cx`'s entries.
    fn unregister(&self, cx: &SelectCx);
    /// Phase 3: the chosen arm's packet, read.
    fn accept(&self, packet: &Erased) -> Accept;
    /// When a timer channel could next be ready.
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
    /// The address of this arm's channel, for locking several channels in
    /// order; `None` for timer channels (nothing to lock).
    fn chan_addr(&self) -> Option<usize>;
    /// Locks this arm's channel; the guard comes back type-erased and must
    /// be dropped while the handle is borrowed.
    fn lock(&self) -> Erased;
    /// Phase 1 with the channel already locked: `guard` came from `lock` of
    /// an arm on the same channel. Also returns whom to wake once unlocked.
    fn try_select_locked(&self, guard: &mut Erased) -> Option<(Token, Option<Unparker>)>;
}

#[derive(Clone, Copy)]
struct Arm<'a> {
    handle: &'a dyn SelectHandle,
    index: usize,
    ptr: *const u8,
}

/// Fills unused inline arm slots.
struct NoHandle;

impl SelectHandle for NoHandle {
    fn try_select(&self) -> Option<Token> {
        None
    }
    fn register(&self, _: &SelectCx, _: usize) -> (Option<Erased>, bool) {
        (None, false)
    }
    fn unregister(&self, _: &SelectCx) {}
    fn accept(&self, _: &Erased) -> Accept {
        Accept::Retry
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn release(&self, _: Token) {}
    fn chan_addr(&self) -> Option<usize> {
        None
    }
    fn lock(&self) -> Erased {
        Erased::new(())
    }
    fn try_select_locked(&self, _: &mut Erased) -> Option<(Token, Option<Unparker>)> {
        None
    }
}

static NO_HANDLE: NoHandle = NoHandle;

const INLINE: usize = 4;

/// Waits on several channel operations and completes exactly one; the
/// dynamic form of [`select!`](crate::select!), for arms known only at run
/// time or switched on and off (Go's nil channel in a case).
///
/// ```
/// use grove_channels::{bounded, Select};
///
/// let (tx1, rx1) = bounded::<i32>(1);
/// let (tx2, rx2) = bounded::<i32>(1);
/// tx2.send(7).unwrap();
///
/// let mut sel = Select::new();
/// let a = sel.recv(&rx1);
/// let b = sel.recv(&rx2);
/// let oper = sel.select();
/// assert_eq!(oper.index(), b);
/// assert_eq!(oper.recv(&rx2), Ok(7));
/// # let _ = (a, tx1);
/// ```
pub struct Select<'a> {
    inline: [Arm<'a>; INLINE],
    spill: Vec<Arm<'a>>,
    len: usize,
    next_index: usize,
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select").field("arms", &self.len).finish()
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl<'a> Select<'a> {
    /// An empty select.
    #[inline]
    pub fn new() -> Select<'a> {
        let filler = Arm {
            handle: &NO_HANDLE,
            index: usize::MAX,
            ptr: std::ptr::null(),
        };
        Select {
            inline: [filler; INLINE],
            spill: Vec::new(),
            len: 0,
            next_index: 0,
        }
    }

    #[inline]
    fn push(&mut self, handle: &'a dyn SelectHandle, ptr: *const u8) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        let arm = Arm { handle, index, ptr };
        if self.spill.is_empty() && self.len < INLINE {
            self.inline[self.len] = arm;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.inline[..self.len]);
            }
            self.spill.push(arm);
        }
        self.len += 1;
        index
    }

    #[inline]
    fn arms(&mut self) -> &mut [Arm<'a>] {
        if self.spill.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill
        }
    }

    /// Adds a send arm; returns its index.
    #[inline]
    pub fn send<T>(&mut self, tx: &'a Sender<T>) -> usize {
        self.push(tx, tx as *const Sender<T> as *const u8)
    }

    /// Adds a receive arm; returns its index.
    #[inline]
    pub fn recv<T>(&mut self, rx: &'a Receiver<T>) -> usize {
        self.push(rx, rx as *const Receiver<T> as *const u8)
    }

    /// Removes the arm with this index (switching it off).
    ///
    /// # Panics
    ///
    /// If no arm has this index.
    pub fn remove(&mut self, index: usize) {
        let arms = self.arms();
        let pos = arms
            .iter()
            .position(|a| a.index == index)
            .expect("no operation with this index in the select");
        if self.spill.is_empty() {
            self.inline.copy_within(pos + 1..self.len, pos);
        } else {
            self.spill.remove(pos);
        }
        self.len -= 1;
    }

    /// Blocks until one arm completes (is reserved); finish it with
    /// [`SelectedOperation::send`] or [`SelectedOperation::recv`].
    ///
    /// # Panics
    ///
    /// With no arms, this would block forever; it panics instead.
    #[track_caller]
    pub fn select(&mut self) -> SelectedOperation<'a> {
        let at = Location::caller();
        assert!(
            self.len > 0,
            "select with no operations would block forever"
        );
        run(self.arms(), Timeout::Never, at).expect("an untimed select completes")
    }

    /// Completes an arm that is ready now, if any (Go's `default`).
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        run(self.arms(), Timeout::Now, Location::caller()).ok_or(TrySelectError)
    }

    /// Like [`Select::select`], for at most `timeout`.
    #[track_caller]
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        let timeout = match Instant::now().checked_add(timeout) {
            Some(deadline) => Timeout::At(deadline),
            None => Timeout::Never,
        };
        run(self.arms(), timeout, Location::caller()).ok_or(SelectTimeoutError)
    }

    /// Like [`Select::select`], until `deadline`.
    #[track_caller]
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        run(self.arms(), Timeout::At(deadline), Location::caller()).ok_or(SelectTimeoutError)
    }
}

/// The arm a select chose. Finish it with [`send`](Self::send) or
/// [`recv`](Self::recv) on the same channel end the arm was made from.
/// Dropping it unfinished gives back what it reserved (a value already
/// delivered to a receive arm is then lost).
#[must_use = "a selected operation must be completed with send or recv"]
pub struct SelectedOperation<'a> {
    token: Option<Token>,
    index: usize,
    ptr: *const u8,
    handle: &'a dyn SelectHandle,
    _marker: PhantomData<&'a ()>,
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl SelectedOperation<'_> {
    /// The chosen arm's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Finishes a chosen send arm.
    ///
    /// # Panics
    ///
    /// If `tx` is not the sender the arm was made from.
    #[track_caller]
    pub fn send<T>(mut self, tx: &Sender<T>, msg: T) -> Result<(), SendError<T>> {
        assert!(
            std::ptr::eq(tx as *const Sender<T> as *const u8, self.ptr),
            "passed a sender that wasn't selected"
        );
        let token = self.token.take().expect("completed once");
        finish_send(tx, token, msg)
    }

    /// Finishes a chosen receive arm.
    ///
    /// # Panics
    ///
    /// If `rx` is not the receiver the arm was made from.
    #[track_caller]
    pub fn recv<T>(mut self, rx: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            std::ptr::eq(rx as *const Receiver<T> as *const u8, self.ptr),
            "passed a receiver that wasn't selected"
        );
        let token = self.token.take().expect("completed once");
        finish_recv(rx, token)
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.handle.release(token);
        }
    }
}

#[derive(Clone, Copy)]
enum Timeout {
    Now,
    Never,
    At(Instant),
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// xorshift64*, seeded per thread from the thread's address.
fn random(n: usize) -> usize {
    // Through `tls`: a select's green thread may have migrated since its
    // caller last touched a thread-local.
    grove_scheduler::tls::tls(|| random_here(n))
}

fn random_here(n: usize) -> usize {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            x = (rng as *const _ as u64) | 1;
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

fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, random(i + 1));
    }
}

fn selected<'a>(arm: &Arm<'a>, token: Token) -> SelectedOperation<'a> {
    SelectedOperation {
        token: Some(token),
        index: arm.index,
        ptr: arm.ptr,
        handle: arm.handle,
        _marker: PhantomData,
    }
}

fn run<'a>(
    arms: &mut [Arm<'a>],
    timeout: Timeout,
    at: &'static Location<'static>,
) -> Option<SelectedOperation<'a>> {
    park::coop_tick();
    shuffle(arms);
    loop {
        // Phase 1.
        for arm in arms.iter() {
            // Only a claimed select sender needs `resolve` (a second
            // virtual call): skip it for everything else.
            let token = match arm.handle.try_select() {
                Some(lazy @ Token::FromLazySender(_)) => arm.handle.resolve(lazy),
                token => token,
            };
            if let Some(token) = token {
                return Some(selected(arm, token));
            }
        }
        let deadline = match timeout {
            Timeout::Now => return try_all_locked(arms),
            Timeout::Never => None,
            Timeout::At(d) => Some(d),
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        // Phase 2.
        let cx = SelectCx::new();
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
        let wake_at = arms
            .iter()
            .filter_map(|a| a.handle.deadline())
            .chain(deadline)
            .min();
        let aborted = ready && cx.abort();
        // From here every registered arm is unregistered when this frame is
        // left, also if a park below unwinds (the runtime is unwinding this
        // green thread): no queue may keep a pointer to `cx`.
        let registered = Registered {
            arms,
            count: packets.len(),
            cx: &cx,
        };
        // Phase 3.
        let outcome = loop {
            if let Some(i) = cx.selected() {
                let packet = packets[i].as_ref().expect("a chosen arm was registered");
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
            if wake_at.is_some_and(|w| Instant::now() >= w) {
                if cx.abort() {
                    break None;
                }
                continue; // an arm was chosen just now
            }
            park::park_with(&SELECT, wake_at, at);
        };
        drop(registered);
        if let Some((i, token)) = outcome {
            return Some(selected(&arms[i], token));
        }
    }
}

/// Unregisters a select's arms when dropped (see `run`, phase 3).
struct Registered<'s, 'a> {
    arms: &'s [Arm<'a>],
    count: usize,
    cx: &'s SelectCx,
}

impl Drop for Registered<'_, '_> {
    fn drop(&mut self) {
        for arm in self.arms.iter().take(self.count) {
            arm.handle.unregister(self.cx);
        }
    }
}

/// A non-blocking select that found nothing ready polling one arm at a
/// time looks again with every channel locked at once (in address order,
/// each once, as Go's `selectgo`): only a snapshot can tell that no arm was
/// ready at one instant, so `default` is taken only when that is true.
fn try_all_locked<'a>(arms: &[Arm<'a>]) -> Option<SelectedOperation<'a>> {
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
    let mut chosen = None;
    for arm in arms {
        let attempt = match arm.handle.chan_addr() {
            Some(addr) => {
                let guard = &mut guards
                    .iter_mut()
                    .find(|g| g.0 == addr)
                    .expect("every channel was locked")
                    .1;
                arm.handle.try_select_locked(guard)
            }
            None => arm.handle.try_select().map(|token| (token, None)),
        };
        if let Some((token, waker)) = attempt {
            chosen = Some((selected(arm, token), waker));
            break;
        }
    }
    while let Some((_, guard)) = guards.pop() {
        drop(guard); // unlock in reverse order
    }
    let (mut oper, waker) = chosen?;
    if let Some(waker) = waker {
        waker.wake();
    }
    let token = oper.token.take().expect("just chosen");
    match oper.handle.resolve(token) {
        Some(token) => {
            oper.token = Some(token);
            Some(oper)
        }
        // The select sender it paired with gave up: look again.
        None => try_all_locked(arms),
    }
}

fn finish_send<T>(tx: &Sender<T>, token: Token, msg: T) -> Result<(), SendError<T>> {
    let chan = &tx.chan;
    match token {
        Token::Closed => Err(SendError(msg)),
        Token::Slot => {
            let mut state = chan.lock();
            let result = state.fill_reserved(msg);
            drop(state);
            match result {
                Ok(Some(waker)) => {
                    waker.wake();
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(msg) => Err(SendError(msg)),
            }
        }
        Token::ToReceiver(claim) => {
            // SAFETY: a send token of `Sender<T>` holds a `Claimed<T>`
            // (made in `try_select` below for this same sender).
            let claim = unsafe { claim.into_inner::<Claimed<T>>() };
            claim.deliver(msg).wake();
            Ok(())
        }
        Token::ToWaitingReceiver(rendezvous) => {
            // SAFETY: made as a `SendRendezvous<T>` in `accept` below.
            let rendezvous = unsafe { rendezvous.into_inner::<SendRendezvous<T>>() };
            match rendezvous.fill(msg) {
                Ok(()) => Ok(()),
                // The receiver was unwound while it waited for us: the value
                // goes wherever it can go now, else it comes back.
                Err(msg) => tx.try_send(msg).map_err(|e| SendError(e.into_inner())),
            }
        }
        _ => unreachable!("a receive token passed to send"),
    }
}

fn finish_recv<T>(rx: &Receiver<T>, token: Token) -> Result<T, RecvError> {
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
            if let Some(waker) = waker {
                waker.wake();
            }
            Ok(value)
        }
        Token::FromSender(claim) => {
            // SAFETY: made as a `Claimed<T>` in `try_select` for this receiver.
            let claim = unsafe { claim.into_inner::<Claimed<T>>() };
            let (value, waker) = claim.take();
            waker.wake();
            Ok(value)
        }
        Token::FromLazySender(_) => unreachable!("resolved inside the select"),
        Token::Received(value) => {
            // SAFETY: made as a `T` in `accept` for this receiver.
            Ok(unsafe { value.into_inner::<T>() })
        }
        _ => unreachable!("a send token passed to recv"),
    }
}

fn send_token<T>(state: &mut State<T>) -> Option<Token> {
    Some(match state.select_send()? {
        SendClaim::Closed => Token::Closed,
        SendClaim::Slot => Token::Slot,
        SendClaim::Receiver(claim) => Token::ToReceiver(Erased::new(claim)),
    })
}

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
        RecvClaim::Slot => (Token::Slot, None),
        RecvClaim::Sender(claim) => (Token::FromSender(Erased::new(claim)), None),
        RecvClaim::LazySender(rendezvous, waker) => {
            (Token::FromLazySender(Erased::new(rendezvous)), Some(waker))
        }
    })
}

impl<T> SelectHandle for Sender<T> {
    fn try_select(&self) -> Option<Token> {
        send_token(&mut self.chan.lock())
    }

    fn chan_addr(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.chan) as usize)
    }

    fn lock(&self) -> Erased {
        Erased::new(self.chan.lock())
    }

    fn try_select_locked(&self, guard: &mut Erased) -> Option<(Token, Option<Unparker>)> {
        // SAFETY: `guard` locks the channel at our address (see the trait);
        // one address is one channel, so one `T`.
        let state = unsafe { guard.get_mut::<LockGuard<'_, State<T>>>() };
        send_token(state).map(|token| (token, None))
    }

    fn register(&self, cx: &SelectCx, arm: usize) -> (Option<Erased>, bool) {
        let packet: ArmPacket<T> = std::sync::Arc::new(Packet::new(None));
        let mut state = self.chan.lock();
        state.sendq.push_select(cx, arm, packet.clone(), true);
        let ready = state.send_ready(Some(cx));
        (Some(Erased::new(packet)), ready)
    }

    fn unregister(&self, cx: &SelectCx) {
        self.chan.lock().sendq.remove_select(cx);
    }

    fn accept(&self, packet: &Erased) -> Accept {
        // SAFETY: a send arm's packet is an `ArmPacket<T>` (see `register`).
        let packet = unsafe { packet.get::<ArmPacket<T>>() };
        match wait::arm_outcome(packet) {
            ArmOutcome::Pending => Accept::Pending,
            ArmOutcome::Closed => Accept::Done(Token::Closed),
            ArmOutcome::Slot => Accept::Done(Token::Slot),
            ArmOutcome::Rendezvous(r) => Accept::Done(Token::ToWaitingReceiver(Erased::new(r))),
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
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            // Dropping a claim sets RETRY; dropping a rendezvous abandons it.
            Token::ToReceiver(claim) => {
                // SAFETY: made as a `Claimed<T>` by this sender's `try_select`.
                drop(unsafe { claim.into_inner::<Claimed<T>>() });
            }
            Token::ToWaitingReceiver(r) => {
                // SAFETY: made as a `SendRendezvous<T>` by this sender's `accept`.
                drop(unsafe { r.into_inner::<SendRendezvous<T>>() });
            }
            _ => {}
        }
    }
}

impl<T> SelectHandle for Receiver<T> {
    fn try_select(&self) -> Option<Token> {
        match &self.flavor {
            Flavor::Chan(chan, closes) => {
                let mut state = chan.lock();
                let (token, waker) = recv_token(&mut state, *closes)?;
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
                Some(token)
            }
            Flavor::After(after, _) => after.try_take(Instant::now()).map(Token::At),
            Flavor::Tick(tick, _) => tick.try_take(Instant::now()).map(Token::At),
            Flavor::Never => None,
        }
    }

    fn register(&self, cx: &SelectCx, arm: usize) -> (Option<Erased>, bool) {
        match &self.flavor {
            Flavor::Chan(chan, closes) => {
                let packet: ArmPacket<T> = std::sync::Arc::new(Packet::new(None));
                let mut state = chan.lock();
                state.recvq.push_select(cx, arm, packet.clone(), false);
                let ready =
                    state.recv_ready(Some(cx)) || closes.is_some_and(|at| Instant::now() >= at);
                (Some(Erased::new(packet)), ready)
            }
            Flavor::After(after, _) => (None, after.len(Instant::now()) > 0),
            Flavor::Tick(tick, _) => (None, tick.len(Instant::now()) > 0),
            Flavor::Never => (None, false),
        }
    }

    fn unregister(&self, cx: &SelectCx) {
        if let Flavor::Chan(chan, _) = &self.flavor {
            chan.lock().recvq.remove_select(cx);
        }
    }

    fn accept(&self, packet: &Erased) -> Accept {
        // SAFETY: a receive arm's packet is an `ArmPacket<T>`.
        let packet = unsafe { packet.get::<ArmPacket<T>>() };
        match wait::arm_outcome(packet) {
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
            Token::FromLazySender(rendezvous) => {
                // SAFETY: made as a `Rendezvous<T>` by this receiver's
                // `try_select` / `try_select_locked`.
                let rendezvous = unsafe { rendezvous.into_inner::<Rendezvous<T>>() };
                let value = rendezvous.wait(&RECV)?;
                Some(Token::Received(Erased::new(value)))
            }
            token => Some(token),
        }
    }

    fn chan_addr(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Chan(chan, _) => Some(std::sync::Arc::as_ptr(chan) as usize),
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
        let state = unsafe { guard.get_mut::<LockGuard<'_, State<T>>>() };
        recv_token(state, *closes)
    }

    fn release(&self, token: Token) {
        let Flavor::Chan(chan, _) = &self.flavor else {
            return;
        };
        match token {
            Token::Slot => {
                let waker = chan.lock().release_claimed();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Token::FromSender(claim) => {
                // SAFETY: made as a `Claimed<T>` by this receiver's `try_select`.
                drop(unsafe { claim.into_inner::<Claimed<T>>() });
            }
            Token::FromLazySender(r) => {
                // SAFETY: made as a `Rendezvous<T>` by this receiver's `try_select`.
                drop(unsafe { r.into_inner::<Rendezvous<T>>() });
            }
            Token::Received(value) => {
                // SAFETY: made as a `T` by this receiver's `accept`/`resolve`.
                let value = unsafe { value.into_inner::<T>() };
                // Not received after all: back to the channel, first in
                // line, so nothing is lost.
                let (waker, unreceivable) = chan.lock().give_back(value);
                drop(unreceivable); // outside the lock: its destructor may be anything
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            _ => {}
        }
    }
}
