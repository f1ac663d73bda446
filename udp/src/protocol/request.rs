//! Requests: parsing (server side) and writing (client side).
//!
//! Owns the request layouts of BEP 15 and the BEP 41 option walk. Parsing
//! borrows from the packet and never allocates or panics, whatever the bytes.
//!
//! Decisions:
//! - connect: at least 16 bytes with the protocol id; trailing bytes ignored.
//! - announce: the 98-byte body is parsed, everything after it is kept raw
//!   as BEP 41 options (never an exact-length check).
//! - scrape: exactly `16 + 20·n` bytes (BEP 15). `n = 0` is a full scrape:
//!   an error. A hash block that is not a whole number of 20-byte hashes is
//!   an error too, unlike trailing bytes elsewhere: a scrape has no options,
//!   and the stray bytes are more likely a broken client or a cut hash than
//!   something to skip. More than [`MAX_SCRAPE_HASHES`] hashes is an error
//!   (the client asked for more than a response can carry; silently
//!   answering a prefix would look like zeros for the rest).
//! - unknown action: an error response when the transaction id is readable.

use riptide_common::{InfoHash, PeerId};

use super::{
    array, be_i32, be_i64, be_u16, be_u32, AnnounceEvent, BufferTooSmall, ConnectionId, ParseError,
    TransactionId, ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_SCRAPE, PROTOCOL_ID,
};

/// Bytes of an announce request before the BEP 41 options.
pub const ANNOUNCE_MIN_LEN: usize = 98;
/// Most info hashes in one scrape (what fits a typical response packet).
pub const MAX_SCRAPE_HASHES: usize = 74;

const HEADER_LEN: usize = 16;

/// The first `len` bytes of `out`, with the 16-byte header every request
/// starts with written: connection id (the protocol id on a connect),
/// action, transaction id.
fn with_header(
    out: &mut [u8],
    len: usize,
    connection_id: i64,
    action: u32,
    transaction_id: TransactionId,
) -> Result<&mut [u8], BufferTooSmall> {
    let out = out.get_mut(..len).ok_or(BufferTooSmall)?;
    out[0..8].copy_from_slice(&connection_id.to_be_bytes());
    out[8..12].copy_from_slice(&action.to_be_bytes());
    out[12..16].copy_from_slice(&transaction_id.0.to_be_bytes());
    Ok(out)
}

/// A parsed request, borrowing from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Action 0.
    Connect(ConnectRequest),
    /// Action 1.
    Announce(AnnounceRequest<'a>),
    /// Action 2.
    Scrape(ScrapeRequest<'a>),
}

impl Request<'_> {
    /// The transaction id of any request.
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Request::Connect(r) => r.transaction_id,
            Request::Announce(r) => r.transaction_id,
            Request::Scrape(r) => r.transaction_id,
        }
    }

    /// Write the request (client side).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        match self {
            Request::Connect(r) => r.write(out),
            Request::Announce(r) => r.write(out),
            Request::Scrape(r) => r.write_to(out),
        }
    }
}

/// Connect request: asks for a connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Echoed in the response.
    pub transaction_id: TransactionId,
}

impl ConnectRequest {
    /// Write the 16-byte request (client side).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        with_header(
            out,
            HEADER_LEN,
            PROTOCOL_ID,
            ACTION_CONNECT,
            self.transaction_id,
        )?;
        Ok(HEADER_LEN)
    }
}

/// Announce request (98 bytes + BEP 41 options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceRequest<'a> {
    /// To be checked by the server before anything else.
    pub connection_id: ConnectionId,
    /// Echoed in the response.
    pub transaction_id: TransactionId,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's self-chosen id.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: i64,
    /// Bytes left; 0 = seeder.
    pub left: i64,
    /// Bytes uploaded.
    pub uploaded: i64,
    /// The event word.
    pub event: AnnounceEvent,
    /// IP field; ignored by the server (the packet source counts).
    pub ip: u32,
    /// Client key.
    pub key: u32,
    /// Peers wanted; -1 or 0 = the tracker default.
    pub num_want: i32,
    /// The port the client listens on.
    pub port: u16,
    /// Raw BEP 41 option bytes after offset 98 (may be empty).
    pub options: &'a [u8],
}

impl<'a> AnnounceRequest<'a> {
    /// The URL-data option segments (type 2), in order; their concatenation
    /// is the path and query of the announce URL. NOPs (type 1) are skipped;
    /// the walk stops at end-of-options (0), an unknown type, or a truncated
    /// option.
    pub fn url_data(&self) -> UrlData<'a> {
        UrlData { rest: self.options }
    }

    /// Write the request with its options (client side).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = ANNOUNCE_MIN_LEN + self.options.len();
        let out = with_header(
            out,
            len,
            self.connection_id.0,
            ACTION_ANNOUNCE,
            self.transaction_id,
        )?;
        out[16..36].copy_from_slice(&self.info_hash.0);
        out[36..56].copy_from_slice(&self.peer_id.0);
        out[56..64].copy_from_slice(&self.downloaded.to_be_bytes());
        out[64..72].copy_from_slice(&self.left.to_be_bytes());
        out[72..80].copy_from_slice(&self.uploaded.to_be_bytes());
        out[80..84].copy_from_slice(&self.event.to_u32().to_be_bytes());
        out[84..88].copy_from_slice(&self.ip.to_be_bytes());
        out[88..92].copy_from_slice(&self.key.to_be_bytes());
        out[92..96].copy_from_slice(&self.num_want.to_be_bytes());
        out[96..98].copy_from_slice(&self.port.to_be_bytes());
        out[98..].copy_from_slice(self.options);
        Ok(len)
    }
}

/// Iterator over the BEP 41 URL-data segments of an announce.
#[derive(Clone, Debug)]
pub struct UrlData<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for UrlData<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            match *self.rest {
                [1, ref tail @ ..] => self.rest = tail,
                [2, len, ref tail @ ..] if tail.len() >= usize::from(len) => {
                    let (data, tail) = tail.split_at(usize::from(len));
                    self.rest = tail;
                    return Some(data);
                }
                // 0 = end, unknown type, or truncated option.
                _ => {
                    self.rest = &[];
                    return None;
                }
            }
        }
    }
}

impl std::iter::FusedIterator for UrlData<'_> {}

/// Scrape request: one to [`MAX_SCRAPE_HASHES`] info hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    /// To be checked by the server before anything else.
    pub connection_id: ConnectionId,
    /// Echoed in the response.
    pub transaction_id: TransactionId,
    /// `20·n` bytes, n ≥ 1.
    hashes: &'a [u8],
}

impl<'a> ScrapeRequest<'a> {
    /// A scrape over raw hash bytes; `None` unless `hashes` holds 1 to
    /// [`MAX_SCRAPE_HASHES`] whole hashes (e.g. to forward a part of a
    /// scrape to another shard).
    pub fn from_hash_bytes(
        connection_id: ConnectionId,
        transaction_id: TransactionId,
        hashes: &'a [u8],
    ) -> Option<Self> {
        let n = hashes.len() / 20;
        (hashes.len() == 20 * n && (1..=MAX_SCRAPE_HASHES).contains(&n)).then_some(ScrapeRequest {
            connection_id,
            transaction_id,
            hashes,
        })
    }

    /// The info hashes, in request order.
    pub fn info_hashes(&self) -> impl ExactSizeIterator<Item = InfoHash> + 'a {
        self.hashes.chunks_exact(20).map(|c| InfoHash(array(c, 0)))
    }

    /// The raw hash bytes (`20·len()`).
    pub fn hash_bytes(&self) -> &'a [u8] {
        self.hashes
    }

    /// Number of info hashes (at least 1 once parsed).
    pub fn len(&self) -> usize {
        self.hashes.len() / 20
    }

    /// Never true for a parsed request (an empty scrape is an error).
    pub fn is_empty(&self) -> bool {
        self.hashes.len() < 20
    }

    /// Write a scrape request for `hashes` (client side). Any number of
    /// hashes is written, so tests can build oversized requests.
    pub fn write(
        out: &mut [u8],
        connection_id: ConnectionId,
        transaction_id: TransactionId,
        hashes: &[InfoHash],
    ) -> Result<usize, BufferTooSmall> {
        let len = HEADER_LEN + 20 * hashes.len();
        let out = with_header(out, len, connection_id.0, ACTION_SCRAPE, transaction_id)?;
        for (dst, h) in out[HEADER_LEN..].chunks_exact_mut(20).zip(hashes) {
            dst.copy_from_slice(&h.0);
        }
        Ok(len)
    }

    /// Write this (parsed) request back out.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = HEADER_LEN + self.hashes.len();
        let (id, tid) = (self.connection_id.0, self.transaction_id);
        let out = with_header(out, len, id, ACTION_SCRAPE, tid)?;
        out[HEADER_LEN..].copy_from_slice(self.hashes);
        Ok(len)
    }
}

/// What [`peek_announce`] reads of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peek {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announced port.
    pub port: u16,
    /// `left == 0`.
    pub seeder: bool,
}

/// The info hash, port and seeder flag of what looks like an announce,
/// without checking anything else: for warming caches ahead of the real
/// parse, never for answering.
pub fn peek_announce(bytes: &[u8]) -> Option<Peek> {
    if bytes.len() < ANNOUNCE_MIN_LEN || bytes[8..12] != ACTION_ANNOUNCE.to_be_bytes() {
        return None;
    }
    let hash: [u8; 20] = bytes[16..36].try_into().ok()?;
    Some(Peek {
        info_hash: InfoHash(hash),
        port: u16::from_be_bytes([bytes[96], bytes[97]]),
        seeder: be_i64(bytes, 64) == 0,
    })
}

/// Parse one request datagram. Never panics, never allocates.
pub fn parse_request(bytes: &[u8]) -> Result<Request<'_>, ParseError> {
    if bytes.len() < HEADER_LEN {
        return Err(ParseError::Unsendable);
    }
    let action = be_u32(bytes, 8);
    let transaction_id = TransactionId(be_i32(bytes, 12));
    let error = |reason| {
        Err(ParseError::Sendable {
            transaction_id,
            reason,
        })
    };
    match action {
        ACTION_CONNECT => {
            if be_i64(bytes, 0) == PROTOCOL_ID {
                Ok(Request::Connect(ConnectRequest { transaction_id }))
            } else {
                Err(ParseError::Unsendable)
            }
        }
        ACTION_ANNOUNCE => {
            if bytes.len() < ANNOUNCE_MIN_LEN {
                return error("announce request too short");
            }
            Ok(Request::Announce(AnnounceRequest {
                connection_id: ConnectionId(be_i64(bytes, 0)),
                transaction_id,
                info_hash: InfoHash(array(bytes, 16)),
                peer_id: PeerId(array(bytes, 36)),
                downloaded: be_i64(bytes, 56),
                left: be_i64(bytes, 64),
                uploaded: be_i64(bytes, 72),
                event: AnnounceEvent::from_u32(be_u32(bytes, 80)),
                ip: be_u32(bytes, 84),
                key: be_u32(bytes, 88),
                num_want: be_i32(bytes, 92),
                port: be_u16(bytes, 96),
                options: bytes.get(ANNOUNCE_MIN_LEN..).unwrap_or_default(),
            }))
        }
        ACTION_SCRAPE => {
            let body = bytes.get(HEADER_LEN..).unwrap_or_default();
            let n = body.len() / 20;
            if body.is_empty() {
                return error("full scrape is not supported");
            }
            if body.len() != 20 * n {
                return error("scrape info hashes are not a multiple of 20 bytes");
            }
            if n > MAX_SCRAPE_HASHES {
                return error("too many info hashes in scrape (at most 74)");
            }
            Ok(Request::Scrape(ScrapeRequest {
                connection_id: ConnectionId(be_i64(bytes, 0)),
                transaction_id,
                hashes: body,
            }))
        }
        _ => error("unknown action"),
    }
}
