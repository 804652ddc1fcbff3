//! `Select`: wait on several channel operations, complete exactly one.
//!
//! crossbeam-channel's shape, Go's semantics. A select runs in phases
//! (`run::select`):
//!
//! 1. **Try**: visit the arms in a random order (Go's `pollorder`, so a
//!    ready arm is chosen uniformly; in order for a biased select) and take
//!    the first that can complete without blocking. What it needs is
//!    *reserved* in the channel (a buffered item, a free slot, a claimed
//!    waiting peer), so the [`SelectedOperation`] is sure to complete; its
//!    `send`/`recv` finishes it. That is what lets a send arm's value be
//!    evaluated only once the arm is chosen.
//! 2. **Register** every arm in its channel's queue, all pointing at one
//!    `SelectCx`. If an arm turns out ready meanwhile, abort and go back
//!    to 1.
//! 3. **Park** until a peer claims one arm by winning the CAS on the
//!    context's `selected` word (so exactly one arm completes), or until the
//!    timeout or a timer arm's deadline. Then unregister every arm (under
//!    each channel's lock, after which no peer can touch the context) and
//!    finish the chosen one.
//! 4. **Decide "nothing ready"** (a `default`, a timeout, `try_select`)
//!    only with every channel locked at once, in address order (Go's
//!    `sellock`; `run::try_snapshot`): polling arms one at a time cannot
//!    tell that no arm was ready at one instant, and a select that gives up
//!    must have seen exactly that (it is linearizable).
//!
//! Phases 1-3 hold one channel's lock at a time (Go's `selectgo` holds
//! every arm's lock through its whole pass): registration and the
//! `selected` CAS give the same guarantee with less lock holding. Phase 4,
//! the rare "nothing ready" answer, is the one place that holds them all at
//! once.
//!
//! A send arm's value is evaluated only once the arm is chosen: a send arm
//! that waits in a queue is a *deferred sender*, and a receiver that claims
//! it waits for the value; `grove_scheduler::wait`'s module docs ("Deferred
//! sends") walk that exchange end to end, through `chan.rs` and
//! `handle.rs`.
//!
//! Readiness ([`Select::ready`] and friends) runs the same phases without
//! reserving anything: it parks as a *watcher* of the arms' channels, woken
//! by any change to them, and answers "nothing ready" from a snapshot too.

mod handle;
mod run;

use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::api::{Receiver, Sender};
use crate::err::{
    ReadyTimeoutError, RecvError, SelectTimeoutError, SendError, TryReadyError, TrySelectError,
};
use handle::{SelectHandle, Token, NO_HANDLE};
use run::{Arm, Timeout};

const INLINE: usize = 4;

/// Shuffles a `select!`'s first-look order (see `__private::new`).
#[inline]
pub(crate) fn shuffle_order(order: &mut [u8]) {
    run::shuffle(order);
}

/// A `select!` send arm in the typed first look (see
/// `__private::RecvArm`): the arm's reservation is taken first (a slot, or
/// a waiting receiver claimed), and the value is evaluated only once the
/// arm is chosen, as in the dynamic select. Dropped holding a reservation
/// (the value's expression panicked), it gives the reservation back.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    token: Option<Token>,
}

impl<'a, T> SendArm<'a, T> {
    #[inline(always)]
    pub fn new(tx: &'a Sender<T>) -> SendArm<'a, T> {
        SendArm { tx, token: None }
    }

    /// Reserves what the send needs if it can complete now; true if so.
    #[inline(always)]
    pub fn complete_now(&mut self) -> bool {
        self.token = handle::send_now(self.tx);
        self.token.is_some()
    }

    /// Sends `msg` with the reservation.
    #[inline(always)]
    pub fn finish(&mut self, msg: T) -> Result<(), SendError<T>> {
        let token = self.token.take().expect("the arm completed");
        handle::finish_send(self.tx, token, msg)
    }

    /// Its sender, for the select that waits.
    #[inline(always)]
    pub fn tx(&self) -> &'a Sender<T> {
        self.tx
    }
}

impl<T> Drop for SendArm<'_, T> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            handle::release_send(self.tx, token);
        }
    }
}

/// Waits on several channel operations and completes exactly one; the
/// dynamic form of [`select!`](crate::select!), for arms known only at run
/// time or switched on and off (Go's nil channel in a case).
///
/// When several arms are ready, [`Select::new`] picks one uniformly at
/// random (Go's rule); [`Select::new_biased`] picks the first added.
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
///
/// A `Select` can be cloned, to run the same arms from two places; it
/// borrows its channel ends, so it stays on the thread that made it: it is
/// neither `Send` nor `Sync`. (crossbeam's `Select` is both, by
/// hand-written unsafe trait implementations, even over channels of
/// values that are not `Send`; a
/// select moved to another thread could then receive such a value there.
/// Clone it on each thread instead.)
///
/// ```compile_fail,E0277
/// fn sendable<T: Send>(_: T) {}
/// let (_tx, rx) = grove_channels::bounded::<u8>(1);
/// let mut sel = grove_channels::Select::new();
/// sel.recv(&rx);
/// sendable(sel);
/// ```
#[derive(Clone)]
pub struct Select<'a> {
    inline: [Arm<'a>; INLINE],
    spill: Vec<Arm<'a>>,
    len: usize,
    next_index: usize,
    biased: bool,
    /// `select!` looked at every arm by type just now (see
    /// `__private::RecvArm`): the next select skips its own first look.
    looked: bool,
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("arms", &self.len)
            .field("biased", &self.biased)
            .finish()
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl<'a> Select<'a> {
    /// An empty select that chooses uniformly at random among ready arms.
    #[inline]
    pub fn new() -> Select<'a> {
        let filler = Arm {
            handle: &NO_HANDLE,
            index: usize::MAX,
            send: false,
        };
        Select {
            inline: [filler; INLINE],
            spill: Vec::new(),
            len: 0,
            next_index: 0,
            biased: false,
            looked: false,
        }
    }

    /// An empty select that prefers its arms in the order they were added:
    /// when several are ready, the first added wins. That is a priority
    /// select; Go programs write it as nested selects (try the urgent
    /// channel alone with a `default`, then select on all). A busy first arm
    /// can starve the others.
    ///
    /// ```
    /// use grove_channels::{bounded, Select};
    ///
    /// let (urgent_tx, urgent) = bounded::<&str>(1);
    /// let (normal_tx, normal) = bounded::<&str>(1);
    /// normal_tx.send("normal").unwrap();
    /// urgent_tx.send("urgent").unwrap();
    ///
    /// let mut sel = Select::new_biased();
    /// let first = sel.recv(&urgent);
    /// let _second = sel.recv(&normal);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), first); // both are ready: the first wins
    /// assert_eq!(oper.recv(&urgent), Ok("urgent"));
    /// ```
    #[inline]
    pub fn new_biased() -> Select<'a> {
        Select {
            biased: true,
            looked: false,
            ..Select::new()
        }
    }

    #[inline]
    fn push(&mut self, handle: &'a dyn SelectHandle, send: bool) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        let arm = Arm {
            handle,
            index,
            send,
        };
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

    /// For `select!`: its typed first look found no arm ready just now, so
    /// the next select, try or timed select skips its own first look.
    #[doc(hidden)]
    #[inline]
    pub fn __looked(&mut self) {
        self.looked = true;
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
        self.push(tx, true)
    }

    /// Adds a receive arm; returns its index.
    #[inline]
    pub fn recv<T>(&mut self, rx: &'a Receiver<T>) -> usize {
        self.push(rx, false)
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
        let biased = self.biased;
        let looked = std::mem::take(&mut self.looked);
        run::select(self.arms(), biased, looked, Timeout::Never, at)
            .expect("an untimed select completes")
    }

    /// Completes an arm that is ready now, if any (Go's `default`). `Err`
    /// means no arm was ready at one instant (all channels locked at once).
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        let biased = self.biased;
        let looked = std::mem::take(&mut self.looked);
        run::select(
            self.arms(),
            biased,
            looked,
            Timeout::Now,
            Location::caller(),
        )
        .ok_or(TrySelectError)
    }

    /// Like [`Select::select`], for at most `timeout`. `Err` means that,
    /// once the time was up, no arm was ready at one instant.
    #[track_caller]
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        let timeout = match Instant::now().checked_add(timeout) {
            Some(deadline) => Timeout::At(deadline),
            None => Timeout::Never,
        };
        let biased = self.biased;
        let looked = std::mem::take(&mut self.looked);
        run::select(self.arms(), biased, looked, timeout, Location::caller())
            .ok_or(SelectTimeoutError)
    }

    /// Like [`Select::select`], until `deadline`.
    #[track_caller]
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        let biased = self.biased;
        let looked = std::mem::take(&mut self.looked);
        run::select(
            self.arms(),
            biased,
            looked,
            Timeout::At(deadline),
            Location::caller(),
        )
        .ok_or(SelectTimeoutError)
    }

    /// Blocks until an arm is ready and returns its index, without
    /// completing anything: a receive arm is ready when a receive would not
    /// block (a value is there, a sender waits, or the channel is closed), a
    /// send arm when a send would not block.
    ///
    /// Another thread may take what made the arm ready before the caller
    /// acts on it, so try the operation and be ready for it to fail
    /// (`try_recv`, `try_send`), as with crossbeam's `ready`.
    ///
    /// ```
    /// use grove_channels::{bounded, Select};
    ///
    /// let (tx, rx) = bounded::<u32>(1);
    /// let producer = std::thread::spawn(move || tx.send(5).unwrap());
    ///
    /// let mut sel = Select::new();
    /// let arm = sel.recv(&rx);
    /// assert_eq!(sel.ready(), arm);
    /// assert_eq!(rx.try_recv(), Ok(5)); // nobody else receives here
    /// producer.join().unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// With no arms, this would block forever; it panics instead.
    #[track_caller]
    pub fn ready(&mut self) -> usize {
        let at = Location::caller();
        assert!(
            self.len > 0,
            "select with no operations would block forever"
        );
        let biased = self.biased;
        run::ready(self.arms(), biased, Timeout::Never, at).expect("an untimed ready returns")
    }

    /// The index of an arm that is ready now, if any. `Err` means no arm
    /// was ready at one instant (all channels locked at once).
    ///
    /// ```
    /// use grove_channels::{bounded, Select, TryReadyError};
    ///
    /// let (tx, rx) = bounded::<u32>(1);
    /// let mut sel = Select::new();
    /// let recv = sel.recv(&rx);
    /// assert_eq!(sel.try_ready(), Err(TryReadyError));
    /// tx.send(1).unwrap();
    /// assert_eq!(sel.try_ready(), Ok(recv));
    /// ```
    #[track_caller]
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        let biased = self.biased;
        run::ready(self.arms(), biased, Timeout::Now, Location::caller()).ok_or(TryReadyError)
    }

    /// Like [`Select::ready`], for at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use grove_channels::{bounded, ReadyTimeoutError, Select};
    ///
    /// let (tx, rx) = bounded::<u32>(0);
    /// let mut sel = Select::new();
    /// sel.recv(&rx);
    /// // Unbuffered, nobody sending: not ready.
    /// assert_eq!(sel.ready_timeout(Duration::from_millis(5)), Err(ReadyTimeoutError));
    /// # drop(tx);
    /// ```
    #[track_caller]
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        let timeout = match Instant::now().checked_add(timeout) {
            Some(deadline) => Timeout::At(deadline),
            None => Timeout::Never,
        };
        let biased = self.biased;
        run::ready(self.arms(), biased, timeout, Location::caller()).ok_or(ReadyTimeoutError)
    }

    /// Like [`Select::ready`], until `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use grove_channels::{bounded, Select};
    ///
    /// let (tx, rx) = bounded::<u32>(0);
    /// let mut sel = Select::new();
    /// let send = sel.send(&tx);
    /// drop(rx); // a send to a channel without receivers fails at once: ready
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// assert_eq!(sel.ready_deadline(deadline), Ok(send));
    /// ```
    #[track_caller]
    pub fn ready_deadline(&mut self, deadline: Instant) -> Result<usize, ReadyTimeoutError> {
        let biased = self.biased;
        run::ready(
            self.arms(),
            biased,
            Timeout::At(deadline),
            Location::caller(),
        )
        .ok_or(ReadyTimeoutError)
    }
}

/// The arm a select chose. Finish it with [`send`](Self::send) or
/// [`recv`](Self::recv), passing an end of the arm's channel (the one the
/// arm was made from, or any clone of it).
///
/// Finish it promptly. The select has already reserved what the operation
/// needs, and when that is a peer blocked on the channel (a `send` or
/// `recv`, timed or not), the peer stays blocked until the operation is
/// finished or dropped, past its own timeout if need be: its operation took
/// effect when the select chose it (as crossbeam-channel does). Dropping
/// the `SelectedOperation` unfinished gives everything back: a peer that
/// was paired with it starts over, and times out then if its time is up; a
/// value already handed to a receive arm goes back to the front of its
/// channel.
#[must_use = "a selected operation must be completed with send or recv"]
pub struct SelectedOperation<'a> {
    token: Option<Token>,
    index: usize,
    send: bool,
    handle: &'a dyn SelectHandle,
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<'a> SelectedOperation<'a> {
    fn new(arm: &Arm<'a>, token: Token) -> SelectedOperation<'a> {
        SelectedOperation {
            token: Some(token),
            index: arm.index,
            send: arm.send,
            handle: arm.handle,
        }
    }

    /// Finishes what the arm could not finish under its channel's lock (a
    /// claimed select sender's value); `None` if that came to nothing.
    fn resolve(mut self) -> Option<SelectedOperation<'a>> {
        let token = self.token.take().expect("just chosen");
        self.token = Some(self.handle.resolve(token)?);
        Some(self)
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
    /// If the arm is not a send arm, or `tx` is not an end of its channel.
    #[track_caller]
    pub fn send<T>(mut self, tx: &Sender<T>, msg: T) -> Result<(), SendError<T>> {
        assert!(
            self.send && self.handle.identity() == SelectHandle::identity(tx),
            "passed a sender that wasn't selected"
        );
        let token = self.token.take().expect("completed once");
        handle::finish_send(tx, token, msg)
    }

    /// Finishes a chosen receive arm.
    ///
    /// # Panics
    ///
    /// If the arm is not a receive arm, or `rx` is not an end of its
    /// channel.
    #[track_caller]
    pub fn recv<T>(mut self, rx: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            !self.send && self.handle.identity() == SelectHandle::identity(rx),
            "passed a receiver that wasn't selected"
        );
        let token = self.token.take().expect("completed once");
        handle::finish_recv(rx, token)
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.handle.release(token);
        }
    }
}
