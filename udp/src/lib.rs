//! riptide-udp: the UDP BitTorrent tracker (BEP 15, BEP 41).
//!
//! Owns: the wire codec (`protocol`, no I/O), stateless connection ids,
//! the steering BPF program, the config, the metrics table and the server
//! (`server`: socket set-up, the io_uring and mio backends, and the
//! per-worker request logic they share). The swarm store lives in
//! `riptide_common::swarm`; the runtime in `uring_rt`.

pub mod config;
pub mod connection_id;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod steering;
pub mod tracker;
