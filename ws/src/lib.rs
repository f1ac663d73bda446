//! riptide-ws: the WebTorrent tracker (WebRTC signalling over WebSocket).
//!
//! Owns: the wire formats (`protocol`: the upgrade handshake, RFC 6455
//! frames, WebTorrent's JSON messages; no I/O), the WebRTC swarms of one
//! shard (`swarm`: peers by `peer_id` with the connection that holds each,
//! pending offers), its config and metrics, and the server (`server`:
//! listeners, connection state, the byte-mesh records that carry announces
//! to a torrent's owner and offers and answers to the worker holding the
//! target connection). TLS and proxy handling come from `riptide_stream`,
//! the runtime from `uring_rt`.
#![forbid(unsafe_code)]

pub mod config;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod swarm;
