//! What grove's integration tests and its benchmarks share about the
//! machine they run on, written once:
//!
//! - [`procfs`]: the process's resident set, its mapping count, the page
//!   size, and `vm.max_map_count` as `/proc` says it (with the reason when
//!   it cannot be read).
//! - [`MapCountGuard`]: raises `vm.max_map_count` for as long as it lives
//!   and puts the old value back, for the measurements and tests that hold
//!   more memory mappings than Linux's default allows. Where grove's stacks
//!   are guard regions in shared reservations
//!   ([`grove_scheduler::stack::stack_mode`] is `GuardRegions`), green
//!   threads need no raise: [`MapCountGuard::needed_for_stacks`] says so,
//!   and a guard that is not needed writes nothing.
//! - [`NofileGuard`]: raises the process's open-descriptor soft limit
//!   (`ulimit -n`) up to its hard limit for a measurement that holds
//!   thousands of sockets, and puts it back.
//!
//! Not published: a `publish = false` member of the workspace, used as a
//! dev-dependency by the root package's tests and as a dependency by the
//! benchmark crates.

#![warn(missing_docs)]

pub mod procfs;

mod map_count;
mod nofile;

pub use map_count::MapCountGuard;
pub use nofile::{nofile, NofileGuard};
