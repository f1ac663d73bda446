//! The WebTorrent tracker wire format, no I/O.
//!
//! Owns: the HTTP/1.1 upgrade request and its answers ([`parse_upgrade`],
//! [`write_accept`], [`write_reject`]), the RFC 6455 frame codec in both
//! roles ([`FrameReader`], [`write_frame`], [`write_client_frame`]), the
//! JSON messages a WebTorrent client sends ([`parse_message`]) and the ones
//! the tracker sends back ([`write_announce_reply`], [`write_relayed`],
//! [`write_scrape_reply`], [`write_failure`]). Not:
//! sockets, TLS, timeouts, queues, deciding whether a forwarded-for header is
//! trusted, swarm logic or relaying.
//!
//! Nothing here allocates per message: parsers borrow the caller's bytes
//! (the frame reader unmasks and reassembles in place, the JSON parser
//! unescapes in place) and writers write into a caller's `&mut [u8]` sized
//! with the matching `*_max_len`. The one reusable allocation is
//! [`ParseBuffers`], one per worker.
//!
//! The flow for one connection:
//! 1. [`parse_upgrade`] on the bytes so far: `Incomplete` means read more;
//!    `Reject` means send [`write_reject`] and close; `Ok` means send
//!    [`write_accept`]; frames start at [`Upgrade::head_len`].
//! 2. [`FrameReader::read`] over the received bytes (with the carry from
//!    last time in front): each [`Message::Text`] goes to [`parse_message`];
//!    pings are answered with [`write_pong`], a close with [`write_close`];
//!    an `Err(CloseCode)` is answered with [`write_close`] of that code,
//!    then the connection closes.
//! 3. Replies and relayed offers/answers are written with the `write_*`
//!    functions of [`write`](self::write) into the payload of
//!    [`write_frame`].

pub mod frame;
pub mod handshake;
mod latin1;
pub mod message;
pub mod write;

#[cfg(test)]
mod tests;

pub use frame::{
    frame_header_len, write_client_fragment, write_client_frame, write_close, write_frame,
    write_ping, write_pong, CloseCode, Flow, FrameLimits, FrameReader, Message, Opcode, Role,
    CLOSE_MAX_LEN, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN,
};
pub use handshake::{
    parse_upgrade, write_accept, write_reject, HandshakeError, HandshakeLimits, Reject, Upgrade,
    ACCEPT_MAX_LEN, MAX_HEADERS, REJECT_MAX_LEN,
};
pub use message::{
    parse_message, Action, Announce, Answer, ClientMessage, Event, MessageError, MessageLimits,
    Offer, OfferId, Offers, ParseBuffers, PeerId, Scrape, Sdp, MAX_OFFERS, MAX_SCRAPE_HASHES,
};
pub use riptide_common::InfoHash;
pub use write::{
    announce_reply_max_len, failure_max_len, relayed_max_len, scrape_reply_max_len,
    write_announce_reply, write_failure, write_relayed, write_scrape_reply, Relayed,
};

/// Counts of one torrent in a scrape reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Seeders.
    pub complete: u32,
    /// Leechers.
    pub incomplete: u32,
    /// Completed downloads (`event=completed`) seen.
    pub downloaded: u32,
}
