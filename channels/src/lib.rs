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
//! - `select`: [`Select`], [`SelectedOperation`], and the select protocol.
//! - `timers`: [`after`], [`tick`], [`never()`].

#![warn(missing_docs)]

mod api;
mod chan;
mod err;
mod select;
mod timers;

pub use api::{after, bounded, never, tick, unbounded, IntoIter, Iter, Receiver, Sender, TryIter};
pub use err::{
    RecvError, RecvTimeoutError, SelectTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySelectError, TrySendError,
};
pub use select::{Select, SelectedOperation};

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
///   arm starves. A closed channel is always ready (`recv` yields `Err`); a
///   [`never()`] receiver never is.
/// - A send arm's value is evaluated only if that arm is chosen; channel
///   expressions may be temporaries (`recv(ctx.done())`); the same channel
///   may appear in several arms.
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
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
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

/// Parses `select!` arms into a list; one rule per arm shape.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms parsed.
    (($($arms:tt)*) ($($default:tt)*) $idents:tt ()) => {
        $crate::__select_gen!(($($arms)*) ($($default)*))
    };
    // recv, block body.
    ($arms:tt $default:tt ($id:ident $($ids:ident)*)
        (recv($r:expr) -> $res:pat => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($arms [recv $id ($r) ($res) $body] $default ($($ids)*) ($($($rest)*)?))
    };
    // recv, block body, no comma before the next arm (as crossbeam).
    ($arms:tt $default:tt ($id:ident $($ids:ident)*)
        (recv($r:expr) -> $res:pat => $body:block $($rest:tt)+)) => {
        $crate::__select_push!($arms [recv $id ($r) ($res) $body] $default ($($ids)*) ($($rest)+))
    };
    // recv, expression body.
    ($arms:tt $default:tt ($id:ident $($ids:ident)*)
        (recv($r:expr) -> $res:pat => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($arms [recv $id ($r) ($res) { $body }] $default ($($ids)*) ($($($rest)*)?))
    };
    // send, block body.
    ($arms:tt $default:tt ($id:ident $($ids:ident)*)
        (send($s:expr, $v:expr) -> $res:pat => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($arms [send $id ($s) ($v) ($res) $body] $default ($($ids)*) ($($($rest)*)?))
    };
    // send, block body, no comma before the next arm.
    ($arms:tt $default:tt ($id:ident $($ids:ident)*)
        (send($s:expr, $v:expr) -> $res:pat => $body:block $($rest:tt)+)) => {
        $crate::__select_push!($arms [send $id ($s) ($v) ($res) $body] $default ($($ids)*) ($($rest)+))
    };
    // send, expression body.
    ($arms:tt $default:tt ($id:ident $($ids:ident)*)
        (send($s:expr, $v:expr) -> $res:pat => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_push!($arms [send $id ($s) ($v) ($res) { $body }] $default ($($ids)*) ($($($rest)*)?))
    };
    // default with a timeout.
    ($arms:tt () $idents:tt (default($t:expr) => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($arms (timeout ($t) $body) $idents ($($($rest)*)?))
    };
    ($arms:tt () $idents:tt (default($t:expr) => $body:block $($rest:tt)+)) => {
        $crate::__select_parse!($arms (timeout ($t) $body) $idents ($($rest)+))
    };
    ($arms:tt () $idents:tt (default($t:expr) => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($arms (timeout ($t) { $body }) $idents ($($($rest)*)?))
    };
    // default.
    ($arms:tt () $idents:tt (default => $body:block $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($arms (now $body) $idents ($($($rest)*)?))
    };
    ($arms:tt () $idents:tt (default => $body:block $($rest:tt)+)) => {
        $crate::__select_parse!($arms (now $body) $idents ($($rest)+))
    };
    ($arms:tt () $idents:tt (default => $body:expr $(, $($rest:tt)*)?)) => {
        $crate::__select_parse!($arms (now { $body }) $idents ($($($rest)*)?))
    };
    ($arms:tt ($($default:tt)+) $idents:tt (default $($rest:tt)*)) => {
        ::core::compile_error!("select! takes at most one `default` arm")
    };
    ($arms:tt $default:tt () ($($rest:tt)+)) => {
        ::core::compile_error!("select! takes at most 32 arms")
    };
    ($arms:tt $default:tt $idents:tt ($($rest:tt)+)) => {
        ::core::compile_error!(
            "select! arms are `recv(rx) -> v => body`, `send(tx, value) -> res => body`, \
             `default => body` or `default(timeout) => body`, separated by commas"
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_push {
    (($($arms:tt)*) $arm:tt $default:tt $idents:tt $rest:tt) => {
        $crate::__select_parse!(($($arms)* $arm) $default $idents $rest)
    };
}

/// Generates the select over the parsed arms.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_gen {
    (($($arm:tt)*) ($($default:tt)*)) => {{
        $( $crate::__select_bind!($arm); )*
        let mut _grove_sel = $crate::Select::new();
        $( $crate::__select_register!(_grove_sel $arm); )*
        $crate::__select_run!(_grove_sel ($($arm)*) ($($default)*))
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_bind {
    ([recv $id:ident ($r:expr) $res:tt $body:tt]) => {
        let $id: &$crate::Receiver<_> = &$r;
    };
    ([send $id:ident ($s:expr) $v:tt $res:tt $body:tt]) => {
        let $id: &$crate::Sender<_> = &$s;
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
