//! uring-rt: the thread-per-core io_uring runtime under the riptide trackers.
//!
//! Owns: worker threads (one pinned thread, one io_uring per worker), the
//! kernel-shared memory (provided buffer rings, send slots), the completion
//! loop, timers, signals, the SPSC mesh between workers and the small safe
//! socket helpers the trackers need. Not: any protocol, any swarm state.
//!
//! The model is completion-driven: protocol code implements [`Handler`] and
//! reacts to completions through a [`Ctx`]; there are no futures and no
//! per-request allocation. See README.md for the picture.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod mesh;
pub mod socket;

mod bufring;
pub mod ctx;
mod deadline;
pub mod handler;
pub mod probe;
mod region;
mod ring;
pub mod runtime;
mod send;
pub mod signals;
pub mod stats;
mod tcp;
mod user_data;
mod worker;

pub use ctx::Ctx;
pub use handler::{prefetch, ConnId, Datagram, Handler, SendError, Signal, SocketId, LOOK_AHEAD};
pub use mesh::MeshFull;
pub use probe::Probe;
pub use ring::SetupFlags;
pub use runtime::{run, RuntimeConfig, RuntimeError};
pub use signals::block_runtime_signals;
pub use stats::RtStats;
pub use tcp::accept::ListenerId;
pub use tcp::api::CLOSE_LIMIT;
