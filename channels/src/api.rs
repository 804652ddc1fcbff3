//! The public channel ends and constructors.

use std::fmt;
use std::panic::{Location, RefUnwindSafe, UnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove_scheduler::park::{self, WaitReason};

use crate::chan::Chan;
use crate::err::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::timers::{self, After, Tick};

static NEVER: WaitReason = WaitReason("chan recv (never)");
static TIMER: WaitReason = WaitReason("chan recv (timer)");

/// Go's `make(chan T, cap)`: a channel with a buffer of `cap` values.
/// `bounded(0)` is unbuffered: every send waits for a receive (and the
/// other way round).
///
/// ```
/// let (tx, rx) = grove_channels::bounded(1);
/// tx.send("hello").unwrap();
/// assert_eq!(rx.recv(), Ok("hello"));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    new(Some(cap))
}

/// A channel whose buffer grows as needed: a send never waits.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new(None)
}

fn new<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (
        Sender { chan: chan.clone() },
        Receiver {
            flavor: Flavor::Chan(chan, None),
        },
    )
}

/// Go's `time.After(d)`: receives one `Instant` once `d` has passed (never
/// earlier), then nothing. The `Instant` is the timer's deadline (when it
/// fired), however late it is received, as in Go. No thread or task waits
/// behind it: a receive parks on the runtime's timers.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let timer = grove_channels::after(Duration::from_millis(5));
/// let made = Instant::now();
/// grove_channels::after(Duration::from_millis(20)).recv().unwrap(); // be late
/// let fired = timer.recv().unwrap();
/// // the deadline, not the moment of the receive
/// assert!(fired >= start + Duration::from_millis(5));
/// assert!(fired <= made + Duration::from_millis(5));
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    let deadline = Instant::now()
        .checked_add(d)
        .map(|at| Flavor::After(Arc::new(After::new(at)), identity));
    Receiver {
        flavor: deadline.unwrap_or(Flavor::Never),
    }
}

/// Go's `time.Tick(d)`: receives an `Instant` every `d`, on the fixed
/// schedule `start + d`, `start + 2d`, ...; each value is its tick's
/// scheduled instant.
///
/// A slow receiver gets the latest due tick, and the ticks it missed
/// before that are dropped; the schedule stays fixed (Go 1.23's
/// `time.Ticker`, whose one tick for a slow receiver carries the earliest
/// missed instant instead). That is on purpose unlike crossbeam-channel's `tick`,
/// which starts its next period from the moment a late tick is received
/// and so drifts: a Go program's ticker keeps its rhythm whatever its
/// receiver does.
///
/// A period of zero gives a channel that is never ready, as Go's `Tick`
/// gives nil ([`Ticker::new`](crate::Ticker::new) panics on it, as Go's
/// `NewTicker`).
///
/// ```
/// use std::time::{Duration, Instant};
/// let period = Duration::from_millis(5);
/// let start = Instant::now();
/// let ticker = grove_channels::tick(period);
/// let first = ticker.recv().unwrap();
/// assert!(first >= start + period);
/// // A slow receiver: several ticks pass, one value waits.
/// grove_channels::after(4 * period).recv().unwrap();
/// let late = ticker.recv().unwrap();
/// assert!(late > first + period, "the ticks in between were dropped");
/// assert_eq!((late - first).as_nanos() % period.as_nanos(), 0, "on the schedule");
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        // Go's `Tick` returns nil for a period of 0: a channel never ready.
        return never();
    }
    Receiver {
        flavor: Flavor::Tick(Arc::new(Tick::periodic(d)), identity),
    }
}

/// Go's nil channel: never ready. In a select, an arm on it never fires.
pub fn never<T>() -> Receiver<T> {
    Receiver {
        flavor: Flavor::Never,
    }
}

fn identity(i: Instant) -> Instant {
    i
}

/// The sending end of a channel (Go's `chan<- T`). Clone it for more
/// producers; the channel closes when [`Sender::close`] is called or the
/// last `Sender` is dropped.
///
/// `Send + Sync` when `T: Send`, and always `UnwindSafe + RefUnwindSafe`
/// (as crossbeam's): a panic never leaves a channel half-updated, since no
/// user code runs while a channel is locked.
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

/// The receiving end of a channel (Go's `<-chan T`). Clone it for more
/// consumers. `for v in &rx` receives until the channel is closed and
/// drained (Go's `for v := range ch`).
///
/// `Send + Sync` when `T: Send`, and always `UnwindSafe + RefUnwindSafe`,
/// as [`Sender`].
///
/// Dropping the last `Receiver` drops the values still buffered. If one of
/// their destructors panics, the others are dropped all the same and the
/// first panic then goes on from the drop (crossbeam-channel instead leaks
/// the values after the one that panicked).
pub struct Receiver<T> {
    pub(crate) flavor: Flavor<T>,
}

impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

pub(crate) enum Flavor<T> {
    /// A channel, behaving as closed from the instant, if any.
    Chan(Arc<Chan<T>>, Option<Instant>),
    After(Arc<After>, fn(Instant) -> T),
    Tick(Arc<Tick>, fn(Instant) -> T),
    Never,
}

fn is_past(at: Option<Instant>) -> bool {
    at.is_some_and(|at| Instant::now() >= at)
}

fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

impl<T> Sender<T> {
    /// Sends `msg`, waiting (parking a green thread, blocking an OS thread)
    /// while the buffer is full or, unbuffered, until a receiver takes it.
    /// On a closed channel, or one with no receivers left, the value comes
    /// back in `Err`.
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        self.chan
            .send(msg, None, Location::caller())
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends only if that needs no waiting.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(msg)
    }

    /// Like [`send`](Self::send), for at most `timeout`.
    #[track_caller]
    pub fn send_timeout(&self, msg: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan
            .send(msg, deadline_after(timeout), Location::caller())
    }

    /// Like [`send`](Self::send), until `deadline`.
    #[track_caller]
    pub fn send_deadline(&self, msg: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(msg, Some(deadline), Location::caller())
    }

    /// Closes the channel (Go's `close(ch)`): blocked senders get their
    /// value back, receivers drain the buffer and then get `Err`. Returns
    /// true if this call closed it, false if it was closed already.
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Whether sends fail now: the channel is closed or has no receivers.
    pub fn is_closed(&self) -> bool {
        self.chan.lock_quiet().is_disconnected_for_send()
    }

    /// Values waiting in the buffer.
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity; `None` for unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether the buffer is full, as crossbeam's `is_full`: an unbuffered
    /// channel always is, an unbounded one never.
    ///
    /// ```
    /// let (tx, _rx) = grove_channels::bounded::<u8>(1);
    /// assert!(!tx.is_full());
    /// tx.send(1).unwrap();
    /// assert!(tx.is_full());
    /// assert!(grove_channels::bounded::<u8>(0).0.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.capacity().is_some_and(|cap| self.len() >= cap)
    }

    /// Whether both ends belong to one channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting while there is none. After the channel is
    /// closed and drained, returns `Err(RecvError)`.
    #[track_caller]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None, Location::caller())
            .map_err(|_| RecvError)
    }

    /// Receives only if that needs no waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.flavor {
            Flavor::Chan(chan, closes) => match chan.try_recv() {
                Err(TryRecvError::Empty) if is_past(*closes) => Err(TryRecvError::Disconnected),
                other => other,
            },
            Flavor::After(after, make) => after
                .try_take(Instant::now())
                .map(make)
                .ok_or(TryRecvError::Empty),
            Flavor::Tick(tick, make) => tick
                .try_take(Instant::now())
                .map(make)
                .ok_or(TryRecvError::Empty),
            Flavor::Never => Err(TryRecvError::Empty),
        }
    }

    /// A select's receive arm, looked at once: `Some` with what the arm
    /// gets if it can complete now (a value, or `Err` for a closed and
    /// drained channel), `None` if not. The same decision as the arm's
    /// first phase (see `select::run`), by the receiver's own type.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn select_now(&self) -> Option<Result<T, RecvError>> {
        let got = match &self.flavor {
            Flavor::Chan(chan, closes) => match chan.select_recv_now() {
                Err(TryRecvError::Empty) if is_past(*closes) => Err(TryRecvError::Disconnected),
                other => other,
            },
            _ => self.try_recv(),
        };
        match got {
            Ok(value) => Some(Ok(value)),
            Err(TryRecvError::Disconnected) => Some(Err(RecvError)),
            Err(TryRecvError::Empty) => None,
        }
    }

    /// Like [`recv`](Self::recv), for at most `timeout`.
    ///
    /// One case can take longer: a receive that meets a `select!` send arm
    /// waits for that arm's value, which the select evaluates only once
    /// the arm is chosen (the contract, as crossbeam-channel's): a slow
    /// value expression delays the receiver that claimed it, past its
    /// timeout if need be. The value is then received.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(deadline_after(timeout), Location::caller())
    }

    /// Like [`recv`](Self::recv), until `deadline`.
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline), Location::caller())
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    fn recv_until(
        &self,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
    ) -> Result<T, RecvTimeoutError> {
        match &self.flavor {
            Flavor::Chan(chan, None) => chan.recv(deadline, at),
            _ => self.recv_other(deadline, at),
        }
    }

    /// `recv_until` for everything but a plain channel: kept out of line so
    /// that the channel path stays small.
    #[cold]
    #[inline(never)]
    fn recv_other(
        &self,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
    ) -> Result<T, RecvTimeoutError> {
        match &self.flavor {
            Flavor::Chan(chan, None) => chan.recv(deadline, at),
            Flavor::Chan(chan, Some(closes)) => {
                let until = deadline.map_or(*closes, |d| d.min(*closes));
                match chan.recv(Some(until), at) {
                    Err(RecvTimeoutError::Timeout) if is_past(Some(*closes)) => {
                        Err(RecvTimeoutError::Disconnected)
                    }
                    other => other,
                }
            }
            Flavor::After(after, make) => loop {
                park::coop_tick();
                let now = Instant::now();
                if let Some(fired) = after.try_take(now) {
                    return Ok(make(fired));
                }
                wait_timer(after.next(), deadline, now, at)?;
            },
            Flavor::Tick(tick, make) => loop {
                park::coop_tick();
                let now = Instant::now();
                if let Some(fired) = tick.try_take(now) {
                    return Ok(make(fired));
                }
                // A stop or reset wakes us to look again (the deadline may
                // have moved closer).
                let id = timers::waiter_id();
                if tick.watch(id, &park::current_unparker(), now) {
                    continue;
                }
                let _unwatch = Unwatch(tick, id);
                wait_timer(tick.next(), deadline, now, at)?;
            },
            Flavor::Never => loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(RecvTimeoutError::Timeout);
                }
                park::park_with(&NEVER, deadline, at);
            },
        }
    }

    /// This receiver, behaving as closed from `at` on: once nothing is
    /// buffered, receives fail with `RecvError` and a select arm on it is
    /// ready. Other receivers of the channel are unaffected. A context's
    /// `done()` with a deadline is made this way; no timer thread is needed.
    ///
    /// Timer channels (`after`, `tick`, `never`) are returned unchanged.
    pub fn closing_at(self, at: Instant) -> Receiver<T> {
        match &self.flavor {
            Flavor::Chan(chan, closes) => {
                let at = closes.map_or(at, |c| c.min(at));
                chan.receivers.fetch_add(1, Ordering::Relaxed);
                Receiver {
                    flavor: Flavor::Chan(chan.clone(), Some(at)),
                }
            }
            _ => self,
        }
    }

    /// An iterator that receives until the channel is closed and drained
    /// (Go's `for v := range ch`).
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values that can be received without waiting.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Whether the channel is closed (even if values are still buffered).
    pub fn is_closed(&self) -> bool {
        match &self.flavor {
            Flavor::Chan(chan, closes) => chan.lock_quiet().is_closed() || is_past(*closes),
            _ => false,
        }
    }

    /// Values waiting to be received.
    pub fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Chan(chan, _) => chan.len(),
            Flavor::After(after, _) => after.len(Instant::now()),
            Flavor::Tick(tick, _) => tick.len(Instant::now()),
            Flavor::Never => 0,
        }
    }

    /// Whether nothing waits to be received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity; `None` for unbounded.
    pub fn capacity(&self) -> Option<usize> {
        match &self.flavor {
            Flavor::Chan(chan, _) => chan.capacity(),
            Flavor::After(..) | Flavor::Tick(..) => Some(1),
            Flavor::Never => Some(0),
        }
    }

    /// Whether the buffer is full, as crossbeam's `is_full`: an unbuffered
    /// channel and [`never()`] always are, an unbounded one never is, a timer
    /// is once its value is due.
    pub fn is_full(&self) -> bool {
        self.capacity().is_some_and(|cap| self.len() >= cap)
    }

    /// How many values the channel's buffer has room for without growing
    /// (its allocation; 0 for timer channels). For tests: an unbounded
    /// channel gives memory back as it drains, and this shows it.
    #[doc(hidden)]
    pub fn buffer_allocation(&self) -> usize {
        match &self.flavor {
            Flavor::Chan(chan, _) => chan.lock_quiet().allocated(),
            _ => 0,
        }
    }

    /// Whether both ends belong to one channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        match (&self.flavor, &other.flavor) {
            (Flavor::Chan(a, _), Flavor::Chan(b, _)) => Arc::ptr_eq(a, b),
            (Flavor::After(a, _), Flavor::After(b, _)) => Arc::ptr_eq(a, b),
            (Flavor::Tick(a, _), Flavor::Tick(b, _)) => Arc::ptr_eq(a, b),
            (Flavor::Never, Flavor::Never) => true,
            _ => false,
        }
    }
}

/// Takes a receiver's watch of a timer back, also if its park unwinds.
struct Unwatch<'a>(&'a Tick, usize);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.unwatch(self.1);
    }
}

/// Parks until a timer channel's next value is due or the caller's
/// deadline passes.
fn wait_timer(
    next: Option<Instant>,
    deadline: Option<Instant>,
    now: Instant,
    at: &'static Location<'static>,
) -> Result<(), RecvTimeoutError> {
    if deadline.is_some_and(|d| now >= d) {
        return Err(RecvTimeoutError::Timeout);
    }
    let wake = match (next, deadline) {
        (Some(n), Some(d)) => Some(n.min(d)),
        (n, d) => n.or(d),
    };
    park::park_with(&TIMER, wake, at);
    Ok(())
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        let flavor = match &self.flavor {
            Flavor::Chan(chan, closes) => {
                chan.receivers.fetch_add(1, Ordering::Relaxed);
                Flavor::Chan(chan.clone(), *closes)
            }
            Flavor::After(a, make) => Flavor::After(a.clone(), *make),
            Flavor::Tick(t, make) => Flavor::Tick(t.clone(), *make),
            Flavor::Never => Flavor::Never,
        };
        Receiver { flavor }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Flavor::Chan(chan, _) = &self.flavor {
            if chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
                chan.disconnect_receivers();
            }
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// Receives until the channel is closed and drained.
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Receives what is there without waiting.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Receives until the channel is closed and drained, owning the receiver.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
