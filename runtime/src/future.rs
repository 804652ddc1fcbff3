//! The bridge between green threads and async Rust, both ways.
//!
//! - **Green thread → future**: [`block_on`] runs a future to completion
//!   from blocking-style code. In a green thread it parks only the green
//!   thread (its worker runs others meanwhile); the future's `Waker`
//!   unparks it, from any thread. On a plain OS thread it blocks the thread.
//! - **Future → green thread**: a [`JoinHandle`](crate::thread::JoinHandle)
//!   is `IntoFuture`, so async code (any executor) can `.await` a green
//!   thread's result without blocking its executor thread.
//!
//! So an async application (tokio) can hand blocking-style work to grove
//! and await it, and grove code can wait on work that an async runtime
//! drives.
//!
//! ```
//! use grove_runtime::future::block_on;
//!
//! let n = grove_runtime::run(|| {
//!     // A green thread awaits another green thread through its future.
//!     let handle = grove_runtime::go(|| 20 + 1);
//!     block_on(async move { handle.await.unwrap() * 2 })
//! });
//! assert_eq!(n, 42);
//! ```
//!
//! # What does not work
//!
//! `block_on` is an executor with no I/O reactor and no timer wheel of its
//! own: it polls the future and parks until the future's waker is called.
//! A future that only waits on wakers works anywhere (channels such as
//! `tokio::sync::oneshot`, `futures` combinators, a grove `JoinHandle`). A
//! future that needs another runtime's *reactor* — `tokio::net`,
//! `tokio::time::sleep`, `tokio::fs`, a `reqwest` request — must be polled
//! where that reactor runs: polled by `block_on` it panics ("there is no
//! reactor running") or never wakes. Spawn it on that runtime and wait for
//! its result instead:
//!
//! ```text
//! let rt: tokio::runtime::Handle = ...;
//! let task = rt.spawn(async { tokio::time::sleep(d).await; fetch().await });
//! let body = grove::future::block_on(task)?;      // tokio's JoinHandle only needs a waker
//! ```
//!
//! Do not enter a tokio runtime (`Handle::enter`) inside a green thread to
//! get around this: the guard is thread-local, and other green threads
//! that share the worker would run inside it too.
//!
//! A green thread parked in `block_on` waits for the outside world (the
//! waker may come from any thread), so it is never counted in the "all
//! green threads are asleep - deadlock!" report: a future that never
//! completes parks its green thread for good, silently.

use std::future::Future;
use std::panic::Location;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use grove_scheduler::park::{self, WaitReason};
use grove_scheduler::Unparker;

static BLOCK_ON: WaitReason = WaitReason("future::block_on");

/// How long a green thread in `block_on` parks before it looks again by
/// itself. The park has a deadline only so that the runtime counts the
/// green thread as waiting on something outside it (a timer is armed), not
/// as deadlocked; a wake-up comes from the waker long before. Picked out of
/// thin air: rare enough to cost nothing, and a stale timer is swept.
const OUTSIDE_WAIT: Duration = Duration::from_secs(10);

/// The waker of one `block_on`: a flag and the parked thread.
struct Signal {
    /// Set by a wake, cleared by the poller before it polls again.
    woken: AtomicBool,
    unparker: Unparker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only the wake that sets the flag unparks: the poller clears it
        // before each poll, so a wake during the poll is seen either by the
        // flag or by the unpark token it leaves.
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.unparker.unpark();
        }
    }
}

/// Runs `fut` to completion and returns its output: parks the calling
/// green thread (its worker runs others) or blocks the calling OS thread
/// until the future's waker is called, then polls again.
///
/// The waker may be called from any thread, any number of times, before or
/// during a poll; no wake-up is lost, and the future is polled again only
/// after a wake (a spurious unpark of the thread is absorbed). A panic in
/// the future's `poll` propagates to the caller.
///
/// See the [module docs](self) for the futures this cannot drive (those
/// that need another runtime's reactor) and what to do instead.
///
/// ```
/// use grove_runtime::future::block_on;
/// use std::future::poll_fn;
/// use std::task::Poll;
///
/// // A future woken from another thread.
/// let (tx, rx) = std::sync::mpsc::channel::<u32>();
/// let waker_slot = std::sync::Arc::new(std::sync::Mutex::new(None::<std::task::Waker>));
/// let slot = waker_slot.clone();
/// std::thread::spawn(move || loop {
///     if let Some(waker) = slot.lock().unwrap().take() {
///         tx.send(7).unwrap();
///         waker.wake();
///         return;
///     }
///     std::thread::yield_now();
/// });
/// let got = grove_runtime::run(move || {
///     block_on(poll_fn(|cx| match rx.try_recv() {
///         Ok(v) => Poll::Ready(v),
///         Err(_) => {
///             *waker_slot.lock().unwrap() = Some(cx.waker().clone());
///             match rx.try_recv() {
///                 Ok(v) => Poll::Ready(v),
///                 Err(_) => Poll::Pending,
///             }
///         }
///     }))
/// });
/// assert_eq!(got, 7);
/// ```
#[track_caller]
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let at = Location::caller();
    let mut fut = pin!(fut);
    let signal = Arc::new(Signal {
        woken: AtomicBool::new(false),
        unparker: park::current_unparker(),
    });
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let green = park::in_green_thread();
    loop {
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return output;
        }
        while !signal.woken.swap(false, Ordering::AcqRel) {
            let deadline = if green {
                Instant::now().checked_add(OUTSIDE_WAIT)
            } else {
                None
            };
            park::park_with(&BLOCK_ON, deadline, at);
        }
    }
}
