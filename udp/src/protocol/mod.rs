//! The UDP tracker wire format (BEP 15, BEP 41), both directions, no I/O.
//!
//! Owns: parsing requests from untrusted bytes without panicking or
//! allocating, writing responses straight into a send buffer, and the
//! client side of both (for the load generator and tests). Not: connection
//! id checks (`connection_id`), swarm logic (`riptide_common::swarm`) or
//! sockets (`server`).
//!
//! All integers on the wire are big-endian.

mod request;
mod response;

pub use request::{
    parse_request, peek_announce, AnnounceRequest, ConnectRequest, Peek, Request, ScrapeRequest,
    UrlData, ANNOUNCE_MIN_LEN, MAX_SCRAPE_HASHES,
};
pub use response::{
    parse_response, scrape_stats, write_announce_v4, write_announce_v6, write_connect, write_error,
    write_scrape, AnnounceResponse, PeersV4, PeersV6, Response, ResponseError, ScrapeStatsIter,
    ANNOUNCE_RESPONSE_HEADER_LEN,
};
pub use riptide_common::swarm::{PeerV4, PeerV6, ScrapeStats};

use riptide_common::swarm::Event;

/// The magic constant a connect request starts with.
pub const PROTOCOL_ID: i64 = 0x0417_2710_1980;

/// Action word: connect.
pub const ACTION_CONNECT: u32 = 0;
/// Action word: announce.
pub const ACTION_ANNOUNCE: u32 = 1;
/// Action word: scrape.
pub const ACTION_SCRAPE: u32 = 2;
/// Action word: error (responses only).
pub const ACTION_ERROR: u32 = 3;

/// A client-chosen transaction id, echoed in the response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransactionId(pub i32);

/// A connection id issued by a connect response (see `connection_id`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub i64);

/// The announce event word. Unknown values are tolerated, not errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AnnounceEvent {
    /// 0: a regular announce.
    #[default]
    None,
    /// 1: download finished.
    Completed,
    /// 2: joined.
    Started,
    /// 3: leaving.
    Stopped,
    /// Any other value, kept as sent; the swarm treats it as `None`.
    Other(u32),
}

impl AnnounceEvent {
    /// Decode the event word.
    #[inline]
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => AnnounceEvent::None,
            1 => AnnounceEvent::Completed,
            2 => AnnounceEvent::Started,
            3 => AnnounceEvent::Stopped,
            other => AnnounceEvent::Other(other),
        }
    }

    /// Encode the event word.
    #[inline]
    pub fn to_u32(self) -> u32 {
        match self {
            AnnounceEvent::None => 0,
            AnnounceEvent::Completed => 1,
            AnnounceEvent::Started => 2,
            AnnounceEvent::Stopped => 3,
            AnnounceEvent::Other(v) => v,
        }
    }
}

impl From<AnnounceEvent> for Event {
    /// UDP has no `paused`; unknown values become [`Event::None`].
    fn from(e: AnnounceEvent) -> Self {
        match e {
            AnnounceEvent::None | AnnounceEvent::Other(_) => Event::None,
            AnnounceEvent::Completed => Event::Completed,
            AnnounceEvent::Started => Event::Started,
            AnnounceEvent::Stopped => Event::Stopped,
        }
    }
}

/// Why a request could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// We can answer with an error response: the transaction id was readable.
    #[error("bad request: {reason}")]
    Sendable {
        /// The request's transaction id.
        transaction_id: TransactionId,
        /// Short text for the error response.
        reason: &'static str,
    },
    /// Too broken to answer (under 16 bytes, or a connect without the
    /// protocol id); drop and count.
    #[error("unanswerable packet")]
    Unsendable,
}

/// The output buffer cannot hold the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("output buffer too small")]
pub struct BufferTooSmall;

/// The `N` bytes of `b` at `at`, or zeros if `b` is shorter than the
/// caller checked (never a panic on input).
#[inline]
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

/// Big-endian readers over a slice whose length the caller checked; they
/// return 0 instead of panicking if it was not.
#[inline]
fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(b, at))
}

#[inline]
fn be_i32(b: &[u8], at: usize) -> i32 {
    be_u32(b, at) as i32
}

#[inline]
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(array(b, at))
}

#[inline]
fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(b, at))
}

#[cfg(test)]
mod tests;
