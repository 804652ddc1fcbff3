//! std's `mpsc` on grove's channels: the same functions, types, methods and
//! error types as `std::sync::mpsc`, so a thread program that uses
//! `std::sync::mpsc` becomes a green-thread program by swapping the import.
//!
//! std's channels block the OS thread that waits on them, which in a green
//! thread is a worker with every green thread queued or parked on it. These
//! park the green thread instead (and block a plain OS thread, as std's do),
//! because underneath they are [`grove_channels`]' channels: [`channel`] is
//! an unbounded channel, [`sync_channel`]`(n)` a bounded one (`0`: every
//! send meets a receive, as std's rendezvous channel).
//!
//! The error types *are* std's (re-exported), so code that names or matches
//! `std::sync::mpsc::RecvError` and friends keeps compiling. As std's, a
//! [`Receiver`] is `Send` but not `Sync` (one consumer); a program that
//! wants several consumers, `select!`, or `close()` uses [`grove_channels`]
//! directly (`grove::chan`).
//!
//! ```
//! use grove_runtime::sync::mpsc;
//! use grove_runtime::thread;
//!
//! grove_runtime::run(|| {
//!     let (tx, rx) = mpsc::channel();
//!     for id in 0..3 {
//!         let tx = tx.clone();
//!         thread::spawn(move || tx.send(id * 10).unwrap());
//!     }
//!     drop(tx); // the receiver's iterator ends once every sender is gone
//!     let mut got: Vec<i32> = rx.iter().collect();
//!     got.sort();
//!     assert_eq!(got, [0, 10, 20]);
//! });
//! ```
//!
//! ```compile_fail
//! fn shared<T: Sync>(_: &T) {}
//! let (_tx, rx) = grove_runtime::sync::mpsc::channel::<u8>();
//! shared(&rx); // error: a Receiver is not Sync, as std's
//! ```

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::Duration;

use grove_channels as chan;

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// Creates a channel of unbounded capacity, as `std::sync::mpsc::channel`:
/// sends never block; [`Receiver::recv`] parks until a value arrives or
/// every [`Sender`] is gone.
///
/// ```
/// let (tx, rx) = grove_runtime::sync::mpsc::channel();
/// grove_runtime::go(move || tx.send("hello").unwrap());
/// assert_eq!(rx.recv(), Ok("hello"));
/// ```
#[must_use]
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = chan::unbounded();
    (Sender { inner: tx }, Receiver::new(rx))
}

/// Creates a channel that holds at most `bound` values, as
/// `std::sync::mpsc::sync_channel`: [`SyncSender::send`] parks while it is
/// full. With `bound == 0` every send waits until a receive takes its value
/// (a rendezvous, Go's unbuffered channel).
///
/// ```
/// use grove_runtime::sync::mpsc::{sync_channel, TrySendError};
///
/// let (tx, rx) = sync_channel(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.recv(), Ok(1));
/// ```
#[must_use]
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let (tx, rx) = chan::bounded(bound);
    (SyncSender { inner: tx }, Receiver::new(rx))
}

/// The sending half of a [`channel`], as `std::sync::mpsc::Sender`: clone it
/// for more producers; the channel disconnects when the last one is
/// dropped. `Send + Sync` when `T: Send`.
pub struct Sender<T> {
    inner: chan::Sender<T>,
}

impl<T> Sender<T> {
    /// Sends `t` without blocking. Fails, handing `t` back, once the
    /// [`Receiver`] is gone; a successful send does not mean the value will
    /// be received (the receiver may still be dropped first), as in std.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner
            .send(t)
            .map_err(|chan::SendError(t)| SendError(t))
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The sending half of a [`sync_channel`], as `std::sync::mpsc::SyncSender`:
/// [`send`](SyncSender::send) parks while the channel is full. `Send + Sync`
/// when `T: Send`.
pub struct SyncSender<T> {
    inner: chan::Sender<T>,
}

impl<T> SyncSender<T> {
    /// Sends `t`, parking while the channel is full (for a `sync_channel(0)`,
    /// until a receive takes it). Fails, handing `t` back, once the
    /// [`Receiver`] is gone, also while parked.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner
            .send(t)
            .map_err(|chan::SendError(t)| SendError(t))
    }

    /// Sends `t` only if that needs no wait: [`TrySendError::Full`] when the
    /// channel is full (always, for a `sync_channel(0)` with no receiver
    /// waiting), [`TrySendError::Disconnected`] when the receiver is gone.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(t).map_err(|e| match e {
            chan::TrySendError::Full(t) => TrySendError::Full(t),
            chan::TrySendError::Disconnected(t) => TrySendError::Disconnected(t),
        })
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        SyncSender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

/// The receiving half of a [`channel`] or [`sync_channel`], as
/// `std::sync::mpsc::Receiver`: one consumer, so it is `Send` (when `T: Send`)
/// but not `Sync`. Values sent before the last sender was dropped are all
/// received before [`recv`](Receiver::recv) reports the disconnection.
pub struct Receiver<T> {
    inner: chan::Receiver<T>,
    // std's Receiver is not Sync; neither is this one, so code written
    // against it keeps std's single-consumer shape.
    _not_sync: PhantomData<Cell<()>>,
}

// As std's: the cell above only takes `Sync` away; nothing here can be seen
// half-updated across an unwind (the channel's own state is unwind-safe).
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

impl<T> Receiver<T> {
    fn new(inner: chan::Receiver<T>) -> Self {
        Receiver {
            inner,
            _not_sync: PhantomData,
        }
    }

    /// Takes a value if one is ready: [`TryRecvError::Empty`] if none is yet,
    /// [`TryRecvError::Disconnected`] if none ever will be.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv().map_err(|e| match e {
            chan::TryRecvError::Empty => TryRecvError::Empty,
            chan::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Parks until a value arrives; `Err(RecvError)` once every sender is
    /// gone and nothing is left.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner.recv().map_err(|chan::RecvError| RecvError)
    }

    /// As [`recv`](Receiver::recv), giving up after `timeout` with
    /// [`RecvTimeoutError::Timeout`]. A timeout too far away to be a point in
    /// time waits as long as `recv` would.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.inner.recv_timeout(timeout).map_err(|e| match e {
            chan::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
            chan::RecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// An iterator that parks for each value and ends when the channel is
    /// disconnected and empty.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values ready now; it never parks.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// The iterator of [`Receiver::iter`].
pub struct Iter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("rx", self.rx).finish()
    }
}

/// The iterator of [`Receiver::try_iter`].
pub struct TryIter<'a, T: 'a> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").field("rx", self.rx).finish()
    }
}

/// The owning iterator of a [`Receiver`] (`for v in rx`).
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("rx", &self.rx).finish()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    fn unwind<T: UnwindSafe + RefUnwindSafe>() {}

    #[test]
    fn auto_traits_match_std() {
        send::<Sender<u8>>();
        sync::<Sender<u8>>();
        send::<SyncSender<u8>>();
        sync::<SyncSender<u8>>();
        send::<Receiver<u8>>();
        unwind::<Sender<u8>>();
        unwind::<SyncSender<u8>>();
        unwind::<Receiver<u8>>();
        send::<IntoIter<u8>>();
    }

    #[test]
    fn debug_matches_std() {
        let (tx, rx) = channel::<u8>();
        let (stx, _srx) = sync_channel::<u8>(0);
        let shown = format!("{tx:?} {rx:?} {stx:?} {:?} {:?}", rx.iter(), rx.try_iter());
        assert_eq!(
            shown,
            "Sender { .. } Receiver { .. } SyncSender { .. } \
             Iter { rx: Receiver { .. } } TryIter { rx: Receiver { .. } }"
        );
    }
}
