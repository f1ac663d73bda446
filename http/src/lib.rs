//! riptide-http: the HTTP BitTorrent tracker (BEP 3, 7, 23, 48).
//!
//! Owns: the HTTP tracker wire format (`protocol`: request heads, query
//! decoding, bencoded responses, no I/O). Not yet: the server (sockets,
//! TLS, connection state), which will sit on `uring_rt` like riptide-udp's.
//! The swarm store lives in `riptide_common::swarm`.

pub mod protocol;
