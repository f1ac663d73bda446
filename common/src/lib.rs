//! riptide-common: what the three riptide trackers share.
//!
//! Owns: configuration machinery, the access list, privilege dropping, CPU
//! pinning, protocol newtypes and the shard function, logging set-up and the
//! per-shard swarm store. Not: any I/O on the hot path (that is uring-rt and
//! the trackers' `server` modules) or any wire format.

pub mod types;

pub use types::{shard_of, ClientName, InfoHash, PeerId};
