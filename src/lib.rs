//! # grove: goroutines for Rust
//!
//! Green threads (stackful coroutines with small, lazily grown stacks) run
//! M:N on a work-stealing scheduler, and talk through Go's channels,
//! `select`, sync primitives and context cancellation. Write blocking-style
//! code; run thousands to millions of cheap concurrent tasks.
//!
//! ```
//! let total = grove::run(|| {
//!     let handles: Vec<_> = (1..=100u64).map(|i| grove::go(move || i)).collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, 5050);
//! ```
//!
//! This crate only re-exports: the engine is `grove-scheduler`, the
//! user-facing runtime `grove-runtime`, the channels `grove-channels`, the
//! sockets `grove-net`.

pub use grove_channels as chan;
pub use grove_channels::{select, select_biased};
pub use grove_net as net;
pub use grove_runtime::{blocking, context, future, go, run, sync, thread, Runtime};

/// Runtime configuration and diagnostics types.
pub mod runtime {
    pub use grove_runtime::runtime::{
        num_green_threads, Builder, Runtime, ShutdownReport, Stats, TaskInfo, TaskState,
        DEFAULT_DEADLOCK_GRACE,
    };
    pub use grove_scheduler::stack::{
        mapped_stacks, max_map_count, stack_budget, stack_mode, StackMode, STACK_MODE_ENV,
    };
}
