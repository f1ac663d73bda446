//! riptide-http: the HTTP BitTorrent tracker (BEP 3, 7, 23, 48).
//!
//! Owns: the HTTP tracker wire format (`protocol`: request heads, query
//! decoding, bencoded responses, no I/O), its config and metrics, and the
//! server (`server`: listeners, connection state, the hops to the shard
//! owner through uring-rt's byte mesh). The swarm store lives in
//! `riptide_common::swarm`, the runtime in `uring_rt`.

pub mod config;
pub mod metrics;
pub mod protocol;
pub mod server;
