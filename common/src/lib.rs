//! riptide-common: what the three riptide trackers share.
//!
//! Owns: configuration machinery, the access list, privilege dropping, CPU
//! pinning, logging set-up, the start-up sequence and CLI entry, protocol newtypes with the
//! shard function, and the per-shard swarm store. Not: any I/O on the hot
//! path (that is uring-rt and the trackers' `server` modules) or any wire
//! format.

pub mod access_list;
pub mod config;
pub mod histogram;
pub mod loadgen;
pub mod logging;
pub mod metrics;
pub mod pinning;
pub mod privileges;
pub mod startup;
pub mod swarm;
pub mod types;

pub use types::{mesh_tag, shard_of, ClientName, InfoHash, PeerId};
