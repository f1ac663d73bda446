//! riptide-ws: the WebTorrent tracker (WebRTC signalling over WebSocket).
//!
//! Owns: the wire format (`protocol`: the RFC 6455 upgrade handshake and
//! frame codec, the WebTorrent JSON messages, no I/O). The server (worker,
//! swarm, relay) sits on top of it; the swarm store lives in
//! `riptide_common::swarm`, the runtime in `uring_rt`.
#![forbid(unsafe_code)]

pub mod protocol;
