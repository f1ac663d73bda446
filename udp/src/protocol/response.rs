//! Responses: writing (server side, hot path) and parsing (client side).
//!
//! Owns the response layouts of BEP 15. The writers fill a caller's send
//! buffer in place and return the length written: no allocation, and 0
//! instead of a panic when the buffer cannot hold the fixed header. Peer
//! lists and scrape stats are truncated to what fits.

use super::{
    be_i32, be_i64, be_u16, be_u32, BufferTooSmall, ConnectionId, PeerV4, PeerV6, ScrapeStats,
    TransactionId, ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_ERROR, ACTION_SCRAPE,
};

/// Bytes of an announce response before the peers.
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
const HEADER_LEN: usize = 8;
const CONNECT_LEN: usize = 16;
const PEER_V4_LEN: usize = 6;
const PEER_V6_LEN: usize = 18;
const STATS_LEN: usize = 12;

/// A parsed response, borrowing from the packet (client side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// Action 0.
    Connect {
        /// Echo of the request's.
        transaction_id: TransactionId,
        /// To use in announces and scrapes.
        connection_id: ConnectionId,
    },
    /// Action 1.
    Announce(AnnounceResponse<'a>),
    /// Action 2.
    Scrape {
        /// Echo of the request's.
        transaction_id: TransactionId,
        /// `12·n` bytes: seeders, completed, leechers per hash; see
        /// [`scrape_stats`].
        stats: &'a [u8],
    },
    /// Action 3.
    Error {
        /// Echo of the request's.
        transaction_id: TransactionId,
        /// Message text, no terminator.
        message: &'a [u8],
    },
}

impl Response<'_> {
    /// The transaction id of any response.
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
            Response::Announce(a) => a.transaction_id,
        }
    }

    /// Write the response back out as parsed (tests, tools). Unlike the
    /// hot-path writers this fails rather than truncating.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let (action, tid, body_at, body): (u32, TransactionId, usize, &[u8]) = match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                let o = out.get_mut(..CONNECT_LEN).ok_or(BufferTooSmall)?;
                o[8..16].copy_from_slice(&connection_id.0.to_be_bytes());
                (ACTION_CONNECT, *transaction_id, CONNECT_LEN, &[])
            }
            Response::Announce(a) => {
                let o = out
                    .get_mut(..ANNOUNCE_RESPONSE_HEADER_LEN)
                    .ok_or(BufferTooSmall)?;
                o[8..12].copy_from_slice(&a.interval.to_be_bytes());
                o[12..16].copy_from_slice(&a.leechers.to_be_bytes());
                o[16..20].copy_from_slice(&a.seeders.to_be_bytes());
                (
                    ACTION_ANNOUNCE,
                    a.transaction_id,
                    ANNOUNCE_RESPONSE_HEADER_LEN,
                    a.peers,
                )
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => (ACTION_SCRAPE, *transaction_id, HEADER_LEN, stats),
            Response::Error {
                transaction_id,
                message,
            } => (ACTION_ERROR, *transaction_id, HEADER_LEN, message),
        };
        let len = body_at + body.len();
        let o = out.get_mut(..len).ok_or(BufferTooSmall)?;
        o[0..4].copy_from_slice(&action.to_be_bytes());
        o[4..8].copy_from_slice(&tid.0.to_be_bytes());
        o[body_at..].copy_from_slice(body);
        Ok(len)
    }
}

/// An announce response (client side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceResponse<'a> {
    /// Echo of the request's.
    pub transaction_id: TransactionId,
    /// Seconds until the next announce.
    pub interval: i32,
    /// Leechers in the swarm (note: before seeders on the wire).
    pub leechers: i32,
    /// Seeders in the swarm.
    pub seeders: i32,
    /// Whole peer records: 6 bytes each, or 18 when `ipv6`.
    pub peers: &'a [u8],
    /// Peers are IPv6 (the request went over IPv6).
    pub ipv6: bool,
}

impl<'a> AnnounceResponse<'a> {
    /// Number of peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len() / if self.ipv6 { PEER_V6_LEN } else { PEER_V4_LEN }
    }

    /// The IPv4 peers (empty when `ipv6`).
    pub fn peers_v4(&self) -> PeersV4<'a> {
        PeersV4(if self.ipv6 { &[] } else { self.peers }.chunks_exact(PEER_V4_LEN))
    }

    /// The IPv6 peers (empty unless `ipv6`).
    pub fn peers_v6(&self) -> PeersV6<'a> {
        PeersV6(if self.ipv6 { self.peers } else { &[] }.chunks_exact(PEER_V6_LEN))
    }
}

/// Iterator over the IPv4 peers of an announce response.
#[derive(Clone, Debug)]
pub struct PeersV4<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for PeersV4<'_> {
    type Item = PeerV4;
    fn next(&mut self) -> Option<PeerV4> {
        let c = self.0.next()?;
        Some(PeerV4 {
            ip: c
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default(),
            port: be_u16(c, 4),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for PeersV4<'_> {}

/// Iterator over the IPv6 peers of an announce response.
#[derive(Clone, Debug)]
pub struct PeersV6<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for PeersV6<'_> {
    type Item = PeerV6;
    fn next(&mut self) -> Option<PeerV6> {
        let c = self.0.next()?;
        Some(PeerV6 {
            ip: c
                .get(..16)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default(),
            port: be_u16(c, 16),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for PeersV6<'_> {}

/// Iterator over the stats of a scrape response.
#[derive(Clone, Debug)]
pub struct ScrapeStatsIter<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for ScrapeStatsIter<'_> {
    type Item = ScrapeStats;
    fn next(&mut self) -> Option<ScrapeStats> {
        let c = self.0.next()?;
        Some(ScrapeStats {
            seeders: be_u32(c, 0),
            completed: be_u32(c, 4),
            leechers: be_u32(c, 8),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ScrapeStatsIter<'_> {}

/// The per-hash stats in the `stats` bytes of [`Response::Scrape`].
pub fn scrape_stats(stats: &[u8]) -> ScrapeStatsIter<'_> {
    ScrapeStatsIter(stats.chunks_exact(STATS_LEN))
}

/// Why a response could not be parsed (client side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Shorter than the fixed part of its action.
    #[error("response too short")]
    TooShort,
    /// An action word other than 0..=3.
    #[error("unknown action {0}")]
    UnknownAction(u32),
}

/// Parse one response datagram (client side). `ipv6`: peers are 18 bytes.
/// A trailing partial peer or stats record is ignored. Never panics.
pub fn parse_response(bytes: &[u8], ipv6: bool) -> Result<Response<'_>, ResponseError> {
    if bytes.len() < HEADER_LEN {
        return Err(ResponseError::TooShort);
    }
    let transaction_id = TransactionId(be_i32(bytes, 4));
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    match be_u32(bytes, 0) {
        ACTION_CONNECT => {
            if bytes.len() < CONNECT_LEN {
                return Err(ResponseError::TooShort);
            }
            Ok(Response::Connect {
                transaction_id,
                connection_id: ConnectionId(be_i64(bytes, 8)),
            })
        }
        ACTION_ANNOUNCE => {
            if bytes.len() < ANNOUNCE_RESPONSE_HEADER_LEN {
                return Err(ResponseError::TooShort);
            }
            let peers = bytes
                .get(ANNOUNCE_RESPONSE_HEADER_LEN..)
                .unwrap_or_default();
            let rec = if ipv6 { PEER_V6_LEN } else { PEER_V4_LEN };
            Ok(Response::Announce(AnnounceResponse {
                transaction_id,
                interval: be_i32(bytes, 8),
                leechers: be_i32(bytes, 12),
                seeders: be_i32(bytes, 16),
                peers: peers.get(..peers.len() / rec * rec).unwrap_or_default(),
                ipv6,
            }))
        }
        ACTION_SCRAPE => Ok(Response::Scrape {
            transaction_id,
            stats: body
                .get(..body.len() / STATS_LEN * STATS_LEN)
                .unwrap_or_default(),
        }),
        ACTION_ERROR => Ok(Response::Error {
            transaction_id,
            message: body,
        }),
        other => Err(ResponseError::UnknownAction(other)),
    }
}

#[inline]
fn header(out: &mut [u8], action: u32, tid: TransactionId) {
    out[0..4].copy_from_slice(&action.to_be_bytes());
    out[4..8].copy_from_slice(&tid.0.to_be_bytes());
}

/// Write a connect response; 16, or 0 if `out` is shorter.
#[inline]
pub fn write_connect(out: &mut [u8], tid: TransactionId, cid: ConnectionId) -> usize {
    let Some(o) = out.get_mut(..CONNECT_LEN) else {
        return 0;
    };
    header(o, ACTION_CONNECT, tid);
    o[8..16].copy_from_slice(&cid.0.to_be_bytes());
    CONNECT_LEN
}

#[inline]
fn announce_header(
    out: &mut [u8],
    tid: TransactionId,
    interval: i32,
    leechers: i32,
    seeders: i32,
) -> Option<&mut [u8]> {
    if out.len() < ANNOUNCE_RESPONSE_HEADER_LEN {
        return None;
    }
    let (head, rest) = out.split_at_mut(ANNOUNCE_RESPONSE_HEADER_LEN);
    header(head, ACTION_ANNOUNCE, tid);
    head[8..12].copy_from_slice(&interval.to_be_bytes());
    head[12..16].copy_from_slice(&leechers.to_be_bytes());
    head[16..20].copy_from_slice(&seeders.to_be_bytes());
    Some(rest)
}

/// Write an announce response with IPv4 peers (6 bytes each), as many as
/// fit in `out`; returns the length, or 0 if the 20-byte header does not fit.
#[inline]
pub fn write_announce_v4(
    out: &mut [u8],
    tid: TransactionId,
    interval: i32,
    leechers: i32,
    seeders: i32,
    peers: &[PeerV4],
) -> usize {
    let Some(rest) = announce_header(out, tid, interval, leechers, seeders) else {
        return 0;
    };
    let mut n = 0;
    for (dst, p) in rest.chunks_exact_mut(PEER_V4_LEN).zip(peers) {
        dst[..4].copy_from_slice(&p.ip);
        dst[4..].copy_from_slice(&p.port.to_be_bytes());
        n += 1;
    }
    ANNOUNCE_RESPONSE_HEADER_LEN + n * PEER_V4_LEN
}

/// Write an announce response with IPv6 peers (18 bytes each), as many as
/// fit in `out`; returns the length, or 0 if the 20-byte header does not fit.
#[inline]
pub fn write_announce_v6(
    out: &mut [u8],
    tid: TransactionId,
    interval: i32,
    leechers: i32,
    seeders: i32,
    peers: &[PeerV6],
) -> usize {
    let Some(rest) = announce_header(out, tid, interval, leechers, seeders) else {
        return 0;
    };
    let mut n = 0;
    for (dst, p) in rest.chunks_exact_mut(PEER_V6_LEN).zip(peers) {
        dst[..16].copy_from_slice(&p.ip);
        dst[16..].copy_from_slice(&p.port.to_be_bytes());
        n += 1;
    }
    ANNOUNCE_RESPONSE_HEADER_LEN + n * PEER_V6_LEN
}

/// A count as the wire's signed 32-bit integer (saturating).
#[inline]
fn wire_count(v: u32) -> [u8; 4] {
    v.min(i32::MAX as u32).to_be_bytes()
}

/// Write a scrape response: seeders, completed, leechers per hash in the
/// order given, as many as fit; returns the length, or 0 if the 8-byte
/// header does not fit.
#[inline]
pub fn write_scrape(
    out: &mut [u8],
    tid: TransactionId,
    stats: impl Iterator<Item = ScrapeStats>,
) -> usize {
    if out.len() < HEADER_LEN {
        return 0;
    }
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    header(head, ACTION_SCRAPE, tid);
    let mut n = 0;
    for (dst, s) in rest.chunks_exact_mut(STATS_LEN).zip(stats) {
        dst[0..4].copy_from_slice(&wire_count(s.seeders));
        dst[4..8].copy_from_slice(&wire_count(s.completed));
        dst[8..12].copy_from_slice(&wire_count(s.leechers));
        n += 1;
    }
    HEADER_LEN + n * STATS_LEN
}

/// Write an error response; the message is truncated to fit. Returns the
/// length, or 0 if the 8-byte header does not fit.
#[inline]
pub fn write_error(out: &mut [u8], tid: TransactionId, message: &[u8]) -> usize {
    if out.len() < HEADER_LEN {
        return 0;
    }
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    header(head, ACTION_ERROR, tid);
    let n = message.len().min(rest.len());
    rest[..n].copy_from_slice(&message[..n]);
    HEADER_LEN + n
}
