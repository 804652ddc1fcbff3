//! The atomics and locks of the lock-free cores (`task::State`, `idle`,
//! the wait queue's packets and select contexts in `wait`, a scope's
//! count in `scope`, the channels' spin lock in `lock`),
//! routed through one place so that loom can model them: built with
//! `--cfg loom`, these are loom's types and the models in those modules'
//! `loom_tests` run plain threads through every interleaving. Loom cannot
//! see inside a stack switch, which is why the protocols themselves are
//! written against plain state words and tested here with plain threads.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

#[cfg(loom)]
pub(crate) use ::loom::sync::atomic::{
    fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use ::loom::sync::Mutex;
