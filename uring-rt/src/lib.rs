//! uring-rt: the thread-per-core io_uring runtime under the riptide trackers.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod mesh;
pub mod socket;
