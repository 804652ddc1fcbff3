//! Go's channels for grove: buffered and unbuffered channels, close,
//! `for v in &rx`, timer channels, and `select!` with Go's semantics in
//! crossbeam-channel's syntax.
//!
//! Every blocking operation parks a green thread (its worker runs others)
//! and blocks a plain OS thread, so green threads and an application's own
//! threads can share channels in any mix.
//!
//! ```
//! use grove_channels::{bounded, select};
//! use std::time::Duration;
//!
//! let (tx, rx) = bounded::<u32>(0); // unbuffered, like make(chan uint32)
//! let producer = std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx.send(i).unwrap();
//!     }
//!     // dropping the last Sender closes the channel
//! });
//! let received: Vec<u32> = rx.iter().collect(); // for v := range ch
//! assert_eq!(received, [0, 1, 2]);
//! producer.join().unwrap();
//!
//! let (_keep, quiet) = bounded::<u32>(1);
//! let got = select! {
//!     recv(quiet) -> msg => msg.ok(),
//!     default(Duration::from_millis(10)) => None,
//! };
//! assert_eq!(got, None);
//! ```
//!
//! # Layout
//!
//! - `chan`: the channel (Go's `hchan`): a lock, a buffer, two wait queues.
//! - wait nodes on a blocked thread's stack live in `grove_scheduler::wait`;
//!   the only unsafe code here is the type-erased select token in `select`.
//! - `select`: [`Select`], [`SelectedOperation`], and the select protocol;
//!   [`select!`] and [`select_biased!`] are thin parsers over it.
//! - `timers`: [`after`], [`tick`], [`never()`], and the state behind
//!   `timer`'s [`Timer`], [`Ticker`] and [`after_func`] (Go's
//!   `time.Timer`, `time.Ticker`, `time.AfterFunc`).

#![warn(missing_docs)]

mod api;
mod chan;
mod err;
mod select;
mod timer;
mod timers;

pub use api::{after, bounded, never, tick, unbounded, IntoIter, Iter, Receiver, Sender, TryIter};
pub use err::{
    ReadyTimeoutError, RecvError, RecvTimeoutError, SelectTimeoutError, SendError,
    SendTimeoutError, TryReadyError, TryRecvError, TrySelectError, TrySendError,
};
pub use select::{Select, SelectedOperation};

/// What the `select!` expansion calls; not for users.
#[doc(hidden)]
pub mod __private {
    use crate::chan::{RECV_READY, SEND_READY};
    use crate::{Receiver, RecvError, Sender};

    /// What a look at a channel's published word (see `chan::RECV_READY`)
    /// decided for a select's one arm.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Look {
        /// Could not complete at an instant during the look: `default`.
        NotReady,
        /// A receive: closed and drained, the arm gets `Err(RecvError)`.
        Closed,
        /// Select and see.
        Maybe,
    }

    /// The look for a receive from `rx`. Counts against the green thread's
    /// budget, as every select does: a loop of looks still lets others run.
    #[inline]
    pub fn recv_look<T>(rx: &Receiver<T>) -> Look {
        grove_scheduler::park::coop_tick();
        match &rx.flavor {
            crate::api::Flavor::Chan(chan, closes) => {
                // A receiver that closes at an instant (a context's
                // `done()` with a deadline): not ready if the channel was
                // not, and the instant had not come after that look.
                if chan.surely_not(RECV_READY)
                    && closes.is_none_or(|at| std::time::Instant::now() < at)
                {
                    Look::NotReady
                } else if chan.surely_drained() {
                    Look::Closed
                } else {
                    Look::Maybe
                }
            }
            crate::api::Flavor::Never => Look::NotReady,
            _ => Look::Maybe,
        }
    }

    /// The look for a send on `tx` (never [`Look::Closed`]: the value
    /// comes back in the error, so the select evaluates it).
    #[inline]
    pub fn send_look<T>(tx: &Sender<T>) -> Look {
        grove_scheduler::park::coop_tick();
        if tx.chan.surely_not(SEND_READY) {
            Look::NotReady
        } else {
            Look::Maybe
        }
    }

    /// What a receive arm on a closed, drained `rx` gets.
    #[inline]
    pub fn closed<T>(_rx: &Receiver<T>) -> Result<T, RecvError> {
        Err(RecvError)
    }

    /// A `select!` receive arm in the typed first look. A `select!` first
    /// looks at each arm by its channel end's own type (this, or `SendArm`
    /// for a send arm), in a random order (`select_biased!`: in order),
    /// and completes the first that can complete now, without building a
    /// `Select`: Go's `selectgo` pass 1, without the virtual calls, the
    /// type-erased tokens and the arm table of the dynamic select (about
    /// three quarters of a ready select's instructions). Only if none can
    /// does it build the dynamic select, which then waits (or, with a
    /// `default`, decides that no arm was ready at one instant).
    pub struct RecvArm<'a, T> {
        rx: &'a Receiver<T>,
        got: Option<Result<T, RecvError>>,
    }

    impl<'a, T> RecvArm<'a, T> {
        #[inline(always)]
        pub fn new(rx: &'a Receiver<T>) -> RecvArm<'a, T> {
            RecvArm { rx, got: None }
        }

        /// Completes the arm if it can now; true if it did.
        #[inline(always)]
        pub fn complete_now(&mut self) -> bool {
            self.got = self.rx.select_now();
            self.got.is_some()
        }

        /// What the arm completed with.
        #[inline(always)]
        pub fn take(&mut self) -> Result<T, RecvError> {
            self.got.take().expect("the arm completed")
        }

        /// Its receiver, for the select that waits.
        #[inline(always)]
        pub fn rx(&self) -> &'a Receiver<T> {
            self.rx
        }
    }

    pub use crate::select::SendArm;

    /// Counts the select against the green thread's budget, once.
    #[inline(always)]
    pub fn tick() {
        grove_scheduler::park::coop_tick();
    }

    /// The order a `select!`'s first look takes its `N` arms in: a uniform
    /// random permutation (Go's `pollorder`), so that among several ready
    /// arms each is as likely to win.
    #[inline(always)]
    pub fn new<const N: usize>() -> [u8; N] {
        let mut order = new_biased::<N>();
        crate::select::shuffle_order(&mut order);
        order
    }

    /// `select_biased!`'s order: as listed.
    #[inline(always)]
    pub fn new_biased<const N: usize>() -> [u8; N] {
        let mut order = [0u8; N];
        let mut i = 0;
        while i < N {
            order[i] = i as u8;
            i += 1;
        }
        order
    }
}
pub use timer::{after_func, after_func_entries, Ticker, Timer};

/// The auto traits of every public type, checked at compile time. The
/// negative ones are `compile_fail` doctests: a channel of a value that may
/// not leave its thread is neither `Send` nor `Sync`,
///
/// ```compile_fail,E0277
/// fn sendable<T: Send>(_: T) {}
/// let (tx, _rx) = grove_channels::unbounded::<std::rc::Rc<u8>>();
/// sendable(tx);
/// ```
///
/// ```compile_fail,E0277
/// fn shared<T: Sync>(_: &T) {}
/// let (_tx, rx) = grove_channels::unbounded::<std::rc::Rc<u8>>();
/// shared(&rx);
/// ```
///
/// and a select borrows its channel ends on its own thread, so neither it
/// nor its chosen operation leaves it (crossbeam's chosen operation stays
/// too; its `Select` is `Send` and `Sync` by hand-written unsafe trait
/// implementations, see
/// [`Select`]):
///
/// ```compile_fail,E0277
/// fn sendable<T: Send>(_: T) {}
/// let (tx, rx) = grove_channels::bounded::<u8>(1);
/// tx.send(1).unwrap();
/// let mut sel = grove_channels::Select::new();
/// sel.recv(&rx);
/// sendable(sel.select());
/// ```
///
/// ```compile_fail,E0277
/// fn shared<T: Sync>(_: &T) {}
/// let mut sel = grove_channels::Select::new();
/// shared(&sel);
/// ```
const _: () = {
    use std::panic::{RefUnwindSafe, UnwindSafe};
    fn send_sync<T: Send + Sync>() {}
    fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
    #[allow(dead_code)]
    fn check<T: Send + 'static>() {
        // Values only move through a channel, never shared: T: Send is
        // enough for both ends, as for crossbeam's and std's.
        send_sync::<Sender<T>>();
        send_sync::<Receiver<T>>();
        send_sync::<Sender<std::cell::Cell<u8>>>();
        send_sync::<Iter<'static, T>>();
        send_sync::<TryIter<'static, T>>();
        send_sync::<IntoIter<T>>();
        send_sync::<Timer>();
        send_sync::<Ticker>();
        // No user code runs while a channel is locked: a panic leaves it
        // whole, whatever T.
        unwind_safe::<Sender<std::cell::Cell<u8>>>();
        unwind_safe::<Receiver<std::cell::Cell<u8>>>();
        // An error holding the value is what the value is.
        send_sync::<SendError<u8>>();
        send_sync::<TrySendError<u8>>();
        send_sync::<SendTimeoutError<u8>>();
        send_sync::<RecvError>();
        send_sync::<TryRecvError>();
        send_sync::<RecvTimeoutError>();
        send_sync::<TrySelectError>();
        send_sync::<SelectTimeoutError>();
        send_sync::<TryReadyError>();
        send_sync::<ReadyTimeoutError>();
    }
};

/// Waits on several channel operations and runs the arm of the one that
/// completes: crossbeam-channel's syntax, Go's semantics.
///
/// ```text
/// select! {
///     recv(rx) -> msg => { /* msg: Result<T, RecvError> */ },
///     send(tx, value) -> res => { /* res: Result<(), SendError<T>> */ },
///     default => { /* nothing was ready */ },
///     // or: default(Duration::from_millis(50)) => { /* timed out */ },
/// }
/// ```
///
/// - When several arms are ready, one is chosen uniformly at random, so no
///   arm starves ([`select_biased!`] prefers the first instead). A closed
///   channel is always ready (`recv` yields `Err`); a [`never()`] receiver
///   never is.
/// - `default` runs, and `default(timeout)` gives up, only if no arm was
///   ready at one instant (every channel locked at once): a select that
///   gives up is linearizable.
/// - A send arm's value is evaluated only if that arm is chosen; channel
///   expressions may be temporaries (`recv(ctx.done())`), nested ones
///   included (`recv(rx.as_ref().unwrap_or(&never()))`); the same channel
///   may appear in several arms.
/// - Also accepted, as in crossbeam: `default() =>`, and a trailing comma
///   inside an arm's parentheses (`recv(rx,)`, `send(tx, v,)`,
///   `default(d,)`).
/// - Arm bodies are ordinary code of the enclosing function: `break`,
///   `continue`, `return` and `?` act on it.
///
/// ```
/// use grove_channels::{bounded, select};
///
/// let (tx1, rx1) = bounded(1);
/// let (tx2, rx2) = bounded::<&str>(1);
/// tx1.send(10).unwrap();
/// let out = select! {
///     recv(rx1) -> v => v.unwrap() * 2,
///     recv(rx2) -> v => v.map(|s| s.len()).unwrap_or(0),
/// };
/// assert_eq!(out, 20);
/// # drop(tx2);
/// ```
///
/// An optional channel, switched off with [`never()`] (Go's nil channel):
///
/// ```
/// use grove_channels::{bounded, never, select, Receiver};
///
/// let (tx, rx) = bounded::<u8>(1);
/// tx.send(1).unwrap();
/// let maybe: Option<&Receiver<u8>> = None;
/// let got = select! {
///     recv(maybe.unwrap_or(&never())) -> _v => "off",
///     recv(rx) -> v => if v.is_ok() { "on" } else { "closed" },
///     default() => "nothing",
/// };
/// assert_eq!(got, "on");
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
            new
            ()
            ()
            (_grove_sel_a _grove_sel_b _grove_sel_c _grove_sel_d _grove_sel_e _grove_sel_f
             _grove_sel_g _grove_sel_h _grove_sel_i _grove_sel_j _grove_sel_k _grove_sel_l
             _grove_sel_m _grove_sel_n _grove_sel_o _grove_sel_p _grove_sel_q _grove_sel_r
             _grove_sel_s _grove_sel_t _grove_sel_u _grove_sel_v _grove_sel_w _grove_sel_x
             _grove_sel_y _grove_sel_z _grove_sel_0 _grove_sel_1 _grove_sel_2 _grove_sel_3
             _grove_sel_4 _grove_sel_5)
            ($($tokens)*)
        )
    };
}

/// [`select!`] with a priority order: when several arms are ready, the
/// first listed wins ([`Select::new_biased`]). Go programmers write the same
/// with nested selects:
///
/// ```text
/// select {                      // Go: prefer `urgent`
/// case v := <-urgent: ...
/// default:
///     select {
///     case v := <-urgent: ...
///     case v := <-normal: ...
///     }
/// }
/// ```
///
/// The same syntax as [`select!`], `default` included. An always-ready
/// first arm starves the others: use it for priorities, not for fairness.
///
/// ```
/// use grove_channels::{bounded, select_biased};
///
/// let (quit_tx, quit) = bounded::<()>(1);
/// let (work_tx, work) = bounded::<u32>(8);
/// for i in 0..3 {
///     work_tx.send(i).unwrap();
/// }
/// quit_tx.send(()).unwrap();
/// // Both are ready; `quit` is listed first, so it wins every time.
/// let stopped = select_biased! {
///     recv(quit) -> _ => true,
///     recv(work) -> _ => false,
/// };
/// assert!(stopped);
/// ```
#[macro_export]
macro_rules! select_biased {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
            new_biased
            ()
            ()
            (_grove_sel_a _grove_sel_b _grove_sel_c _grove_sel_d _grove_sel_e _grove_sel_f
             _grove_sel_g _grove_sel_h _grove_sel_i _grove_sel_j _grove_sel_k _grove_sel_l
             _grove_sel_m _grove_sel_n _grove_sel_o _grove_sel_p _grove_sel_q _grove_sel_r
             _grove_sel_s _grove_sel_t _grove_sel_u _grove_sel_v _grove_sel_w _grove_sel_x
             _grove_sel_y _grove_sel_z _grove_sel_0 _grove_sel_1 _grove_sel_2 _grove_sel_3
             _grove_sel_4 _grove_sel_5)
            ($($tokens)*)
        )
    };
}

/// Parses `select!` arms into a list; one rule per arm shape. `$new` is
/// the `Select` constructor (`new` or `new_biased`).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms parsed.
    ($new:ident ($($arms:tt)*) ($($default:tt)*) $idents:tt ()) => {
        $crate::__select_gen!($new ($($arms)*) ($($default)*))
    };
    // recv, block body.
    ($new:ident $arms:tt $default:tt ($id:ident $($ids:ident)*)
        (recv($r:expr $(,)?) -> $res:pat => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($new $arms [recv $id ($r) ($res) $body] $default ($($ids)*) ($($($rest)*)?))
    };
    // recv, block body, no comma before the next arm (as crossbeam).
    ($new:ident $arms:tt $default:tt ($id:ident $($ids:ident)*)
        (recv($r:expr $(,)?) -> $res:pat => $body:block $($rest:tt)+)) => {
        $crate::__select_push!($new $arms [recv $id ($r) ($res) $body] $default ($($ids)*) ($($rest)+))
    };
    // recv, expression body.
    ($new:ident $arms:tt $default:tt ($id:ident $($ids:ident)*)
        (recv($r:expr $(,)?) -> $res:pat => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($new $arms [recv $id ($r) ($res) { $body }] $default ($($ids)*) ($($($rest)*)?))
    };
    // send, block body.
    ($new:ident $arms:tt $default:tt ($id:ident $($ids:ident)*)
        (send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($new $arms [send $id ($s) ($v) ($res) $body] $default ($($ids)*) ($($($rest)*)?))
    };
    // send, block body, no comma before the next arm.
    ($new:ident $arms:tt $default:tt ($id:ident $($ids:ident)*)
        (send($s:expr, $v:expr $(,)?) -> $res:pat => $body:block $($rest:tt)+)) => {
        $crate::__select_push!($new $arms [send $id ($s) ($v) ($res) $body] $default ($($ids)*) ($($rest)+))
    };
    // send, expression body.
    ($new:ident $arms:tt $default:tt ($id:ident $($ids:ident)*)
        (send($s:expr, $v:expr $(,)?) -> $res:pat => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($new $arms [send $id ($s) ($v) ($res) { $body }] $default ($($ids)*) ($($($rest)*)?))
    };
    // default with empty parentheses (before the timeout rules: an empty
    // group is no expression).
    ($new:ident $arms:tt () $idents:tt (default() => $($rest:tt)*)) => {
        $crate::__select_parse!($new $arms () $idents (default => $($rest)*))
    };
    // default with a timeout.
    ($new:ident $arms:tt () $idents:tt (default($t:expr $(,)?) => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($new $arms (timeout ($t) $body) $idents ($($($rest)*)?))
    };
    ($new:ident $arms:tt () $idents:tt (default($t:expr $(,)?) => $body:block $($rest:tt)+)) => {
        $crate::__select_parse!($new $arms (timeout ($t) $body) $idents ($($rest)+))
    };
    ($new:ident $arms:tt () $idents:tt (default($t:expr $(,)?) => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($new $arms (timeout ($t) { $body }) $idents ($($($rest)*)?))
    };
    // default.
    ($new:ident $arms:tt () $idents:tt (default => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($new $arms (now $body) $idents ($($($rest)*)?))
    };
    ($new:ident $arms:tt () $idents:tt (default => $body:block $($rest:tt)+)) => {
        $crate::__select_parse!($new $arms (now $body) $idents ($($rest)+))
    };
    ($new:ident $arms:tt () $idents:tt (default => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($new $arms (now { $body }) $idents ($($($rest)*)?))
    };
    ($new:ident $arms:tt ($($default:tt)+) $idents:tt (default $($rest:tt)*)) => {
        ::core::compile_error!("select! takes at most one `default` arm")
    };
    ($new:ident $arms:tt $default:tt () ($($rest:tt)+)) => {
        ::core::compile_error!("select! takes at most 32 arms")
    };
    ($new:ident $arms:tt $default:tt $idents:tt ($($rest:tt)+)) => {
        ::core::compile_error!(
            "select! arms are `recv(rx) -> v => body`, `send(tx, value) -> res => body`, \
             `default => body` or `default(timeout) => body`, separated by commas"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_push {
    ($new:ident ($($arms:tt)*) $arm:tt $default:tt $idents:tt $rest:tt) => {
        $crate::__select_parse!($new ($($arms)* $arm) $default $idents $rest)
    };
}

/// Generates the select over the parsed arms. The channel expressions are
/// evaluated once, in a `match` scrutinee: temporaries there (`never()` in
/// `recv(r.unwrap_or(&never()))`) live until the whole select is done, as
/// in crossbeam's macro.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_gen {
    // One arm and a `default` (Go compiles this select to a plain
    // non-blocking send or receive): the channel's published word first,
    // which decides an empty (or full) channel without its lock; the
    // select as ever otherwise.
    ($new:ident ($arm:tt) (now $body:block)) => {
        match ($crate::__select_chan!($arm),) {
            ($crate::__select_id!($arm),) => {
                $crate::__select_bind!($arm);
                match $crate::__select_look!($arm) {
                    $crate::__private::Look::NotReady => $body,
                    $crate::__private::Look::Closed => $crate::__select_closed!($arm),
                    $crate::__private::Look::Maybe => {
                        let mut _grove_sel = $crate::Select::$new();
                        $crate::__select_register!(_grove_sel $arm);
                        $crate::__select_run!(_grove_sel ($arm) (now $body))
                    }
                }
            }
        }
    };
    // No `default`, a `default`, or one with a timeout: a first look by
    // type (see `__private::RecvArm`), then the dynamic select, which
    // decides "none ready" at one instant for a `default`.
    ($new:ident ($($arm:tt)*) ($(now $body:block)?)) => {
        match ($( $crate::__select_chan!($arm), )*) {
            ($( $crate::__select_id!($arm), )*) => {
                $crate::__select_now!($new ($($arm)*) ($(now $body)?))
            }
        }
    };
    ($new:ident ($($arm:tt)*) (timeout ($t:expr) $body:block)) => {
        match ($( $crate::__select_chan!($arm), )* $t,) {
            ($( $crate::__select_id!($arm), )* _grove_timeout,) => {
                $crate::__select_now!($new ($($arm)*) (timeout (_grove_timeout) $body))
            }
        }
    };
}

/// The typed first look, then (if no arm completed) the dynamic select;
/// the channels (and the timeout) are evaluated and bound already.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_now {
    ($new:ident ($($arm:tt)*) $default:tt) => {{
        $( $crate::__select_bind!($arm); )*
        $( $crate::__select_arm_now!($arm); )*
        let _grove_done = {
            const _GROVE_ARMS: usize = 0 $( + $crate::__select_one!($arm) )*;
            let _grove_order = $crate::__private::$new::<_GROVE_ARMS>();
            let mut _grove_done = usize::MAX;
            $crate::__private::tick();
            for &_grove_at in _grove_order.iter() {
                let _grove_at = _grove_at as usize;
                $crate::__select_complete_now!(_grove_at _grove_done 0usize ($($arm)*));
            }
            _grove_done
        };
        $crate::__select_done_now!(_grove_done 0usize ($($arm)*) $new ($($arm)*) $default)
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_one {
    ($arm:tt) => {
        1usize
    };
}

/// Wraps a receive arm's receiver for the typed first look.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_arm_now {
    ([recv $id:ident $r:tt $res:tt $body:tt]) => {
        let mut $id = $crate::__private::RecvArm::new($id);
    };
    ([send $id:ident $s:tt $v:tt $res:tt $body:tt]) => {
        let mut $id = $crate::__private::SendArm::new($id);
    };
}

/// The typed first look at arm `$at`: `if $at == 0 { .. } else if ..`.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_complete_now {
    ($at:ident $done:ident $index:tt ()) => {{}};
    ($at:ident $done:ident $index:tt ([$kind:ident $id:ident $($x:tt)*] $($rest:tt)*)) => {
        if $at == $index {
            if $id.complete_now() {
                $done = $index;
                break;
            }
        } else {
            $crate::__select_complete_now!($at $done ($index + 1) ($($rest)*))
        }
    };
}

/// Runs the body of the arm the first look completed; if none did, the
/// dynamic select over the same arms.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_done_now {
    ($done:ident $index:tt () $new:ident ($($arm:tt)*) $default:tt) => {{
        $( $crate::__select_arm_unwrap!($arm); )*
        let mut _grove_sel = $crate::Select::$new();
        $( $crate::__select_register!(_grove_sel $arm); )*
        _grove_sel.__looked();
        $crate::__select_run!(_grove_sel ($($arm)*) $default)
    }};
    ($done:ident $index:tt ([recv $id:ident $r:tt ($res:pat) $body:block] $($rest:tt)*) $new:ident $all:tt $default:tt) => {
        if $done == $index {
            let $res = $id.take();
            $body
        } else {
            $crate::__select_done_now!($done ($index + 1) ($($rest)*) $new $all $default)
        }
    };
    ($done:ident $index:tt ([send $id:ident $s:tt ($v:expr) ($res:pat) $body:block] $($rest:tt)*) $new:ident $all:tt $default:tt) => {
        if $done == $index {
            let $res = $id.finish($v);
            $body
        } else {
            $crate::__select_done_now!($done ($index + 1) ($($rest)*) $new $all $default)
        }
    };
}

/// The receiver back out of a typed arm, for the dynamic select.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_arm_unwrap {
    ([recv $id:ident $r:tt $res:tt $body:tt]) => {
        let $id: &$crate::Receiver<_> = $id.rx();
    };
    ([send $id:ident $s:tt $v:tt $res:tt $body:tt]) => {
        let $id: &$crate::Sender<_> = $id.tx();
    };
}

/// A parsed arm's channel expression, borrowed.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_chan {
    ([recv $id:ident ($r:expr) $res:tt $body:tt]) => {
        &$r
    };
    ([send $id:ident ($s:expr) $v:tt $res:tt $body:tt]) => {
        &$s
    };
}

/// A parsed arm's binding name.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_id {
    ([$kind:ident $id:ident $($rest:tt)*]) => {
        $id
    };
}

/// Gives a parsed arm's borrowed channel its type (a `&&Receiver` from a
/// `recv(&rx)` becomes a `&Receiver`).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_bind {
    ([recv $id:ident $r:tt $res:tt $body:tt]) => {
        let $id: &$crate::Receiver<_> = $id;
    };
    ([send $id:ident $s:tt $v:tt $res:tt $body:tt]) => {
        let $id: &$crate::Sender<_> = $id;
    };
}

/// A look at a parsed arm's channel without its lock (see `__private`).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_look {
    ([recv $id:ident $r:tt $res:tt $body:tt]) => {
        $crate::__private::recv_look($id)
    };
    ([send $id:ident $s:tt $v:tt $res:tt $body:tt]) => {
        $crate::__private::send_look($id)
    };
}

/// Runs a parsed receive arm's body for a closed, drained channel (a send
/// arm's look never says so).
#[doc(hidden)]
#[macro_export]
macro_rules! __select_closed {
    ([recv $id:ident $r:tt ($res:pat) $body:block]) => {{
        let $res = $crate::__private::closed($id);
        $body
    }};
    ([send $id:ident $s:tt $v:tt $res:tt $body:tt]) => {
        ::core::unreachable!("a send arm's look is never Closed")
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_register {
    ($sel:ident [recv $id:ident $r:tt $res:tt $body:tt]) => {
        $sel.recv($id);
    };
    ($sel:ident [send $id:ident $s:tt $v:tt $res:tt $body:tt]) => {
        $sel.send($id);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_run {
    ($sel:ident $arms:tt ()) => {{
        let _grove_oper = $sel.select();
        $crate::__select_dispatch!(_grove_oper 0usize $arms)
    }};
    ($sel:ident $arms:tt (now $body:block)) => {{
        // A local, not a match scrutinee: it must drop before the channel
        // references it borrows (a tail temporary would outlive them).
        let _grove_res = $sel.try_select();
        match _grove_res {
            ::core::result::Result::Ok(_grove_oper) => $crate::__select_dispatch!(_grove_oper 0usize $arms),
            ::core::result::Result::Err(_) => $body,
        }
    }};
    ($sel:ident $arms:tt (timeout ($t:expr) $body:block)) => {{
        let _grove_res = $sel.select_timeout($t);
        match _grove_res {
            ::core::result::Result::Ok(_grove_oper) => $crate::__select_dispatch!(_grove_oper 0usize $arms),
            ::core::result::Result::Err(_) => $body,
        }
    }};
}

/// Runs the chosen arm's body: `if index == 0 {..} else if index == 1 {..}`.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_dispatch {
    ($oper:ident $index:tt ()) => {{
        let _ = $oper;
        ::core::unreachable!("select! chose an arm it does not have")
    }};
    ($oper:ident $index:tt ([recv $id:ident $r:tt ($res:pat) $body:block] $($rest:tt)*)) => {
        if $oper.index() == $index {
            let $res = $oper.recv($id);
            $body
        } else {
            $crate::__select_dispatch!($oper ($index + 1) ($($rest)*))
        }
    };
    ($oper:ident $index:tt ([send $id:ident $s:tt ($v:expr) ($res:pat) $body:block] $($rest:tt)*)) => {
        if $oper.index() == $index {
            let $res = $oper.send($id, $v);
            $body
        } else {
            $crate::__select_dispatch!($oper ($index + 1) ($($rest)*))
        }
    };
}
