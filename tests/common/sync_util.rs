//! Helpers shared by the sync, context and diagnostics tests
//! (`tests/sync_*.rs`, `tests/context_*.rs`, `tests/diagnostics.rs`):
//! worker-count sweeps, a watchdog that bounds every test, and waiting
//! (without sleeping) until green threads are parked on a given primitive.
//!
//! Included with `#[path = "common/sync_util.rs"] mod sync_util;`; the helpers all tests
//! share come from `base.rs`. Each test binary uses a subset.
#![allow(dead_code)]

use std::time::Duration;

#[path = "base.rs"]
mod base;
#[allow(unused_imports)] // each test binary uses a subset
pub use base::*;

/// How late a timed wait may end on a noisy 2-core machine running a debug
/// build before a test calls it broken. Deliberately loose: timing tests
/// check "never early" exactly and "not absurdly late" only.
pub const LATE_LIMIT: Duration = Duration::from_millis(500);

/// Asserts at compile time that `T` is `Send + Sync`.
pub fn assert_send_sync<T: Send + Sync>() {}

/// Asserts at compile time that `T` is `Clone + Send + Sync`.
pub fn assert_clone_send_sync<T: Clone + Send + Sync>() {}
