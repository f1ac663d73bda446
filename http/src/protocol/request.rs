//! Requests: the HTTP head (framing, connection persistence) and the
//! tracker parameters of `/announce` and `/scrape`.
//!
//! Decisions:
//! - The head is parsed by `httparse` into a stack array of
//!   [`MAX_HEADERS`] header slots: no allocation. A head that is not
//!   complete yet is [`ParseError::Incomplete`] until it reaches
//!   [`ParseConfig::max_head_len`] bytes; then, like a head with too many
//!   header lines, it is rejected with 431.
//! - Only GET, and GET has no body: any `Transfer-Encoding`, a second
//!   `Content-Length`, or a `Content-Length` other than 0 is a
//!   request-smuggling shape and gets 400 and a close (a front proxy and
//!   riptide must never disagree on where the next request starts).
//!   Whitespace between a header name and its colon, obsolete line folding
//!   and bare LF inside a header are refused by `httparse` itself (400).
//! - HTTP/1.1 needs exactly one `Host` (RFC 9112 §3.2). HTTP/1.0 may lack it
//!   (ctorrent does): answered, then closed. Two `Host` lines: 400.
//! - Persistence: HTTP/1.1 keeps the connection unless `Connection: close`;
//!   HTTP/1.0 closes unless `Connection: keep-alive` (and a `Host`).
//! - Paths: exactly `/announce` or `/scrape`, each also with a trailing `/`;
//!   anything else is 404. A `#fragment` is cut off.
//! - Wrong tracker parameters (a 19-byte `info_hash`, a missing `port`, …)
//!   are a well-formed HTTP request: [`Target::Failure`], answered with a
//!   bencoded `failure reason` and HTTP 200 on a connection that stays
//!   usable.
//! - The forwarded-for header (name configured) is handed out as raw bytes;
//!   whether to trust it is the caller's decision (it knows its proxies).
//!   With several such lines the last one counts: a proxy appends its entry
//!   to the last line or adds a line.

use riptide_common::swarm::{Announce, Event};
use riptide_common::{InfoHash, PeerId};

use super::query::{
    decode_20, decode_i64_saturating, decode_u64, name, pairs, percent_decode, MAX_NAME_LEN,
};
use super::{Connection, Status};

/// Header lines a request may have (more: 431).
pub const MAX_HEADERS: usize = 32;
/// Longest `key` kept, in decoded bytes (aria2 sends 8 random bytes,
/// libtorrent and Transmission 8 hex digits). Longer: a failure.
pub const MAX_KEY_LEN: usize = 32;
/// Default for [`ParseConfig::max_head_len`]: room for a scrape of
/// [`DEFAULT_MAX_SCRAPE_HASHES`] hashes, every byte escaped (about 5.5 KB).
pub const DEFAULT_MAX_HEAD_LEN: usize = 8192;
/// Default for [`ParseConfig::max_scrape_hashes`], as over UDP.
pub const DEFAULT_MAX_SCRAPE_HASHES: usize = 74;

/// Limits and choices of the request parser (from the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseConfig<'c> {
    /// Longest request head in bytes, request line to the empty line.
    pub max_head_len: usize,
    /// Most `info_hash` parameters in one scrape.
    pub max_scrape_hashes: usize,
    /// A scrape without `info_hash` (all torrents) is accepted; otherwise it
    /// is a failure.
    pub full_scrape: bool,
    /// Header whose value is handed out in [`Request::forwarded_for`]
    /// (e.g. `X-Forwarded-For`), matched case-insensitively; `None`: none.
    pub forwarded_header: Option<&'c str>,
}

impl Default for ParseConfig<'_> {
    fn default() -> Self {
        ParseConfig {
            max_head_len: DEFAULT_MAX_HEAD_LEN,
            max_scrape_hashes: DEFAULT_MAX_SCRAPE_HASHES,
            full_scrape: false,
            forwarded_header: None,
        }
    }
}

/// Why no request came out of the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The head is not complete yet (and still under the size limit): read
    /// more bytes and parse again from the same start.
    #[error("incomplete request head")]
    Incomplete,
    /// Answer with this status ([`super::write_error`]), then close.
    #[error("rejected request: {}", .0.line())]
    Reject(Status),
}

/// A request head that HTTP accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Bytes of the head, empty line included: the next pipelined request
    /// starts here (a GET has no body).
    pub head_len: usize,
    /// What to do with the connection after the response.
    pub connection: Connection,
    /// Value of the configured forwarded-for header (last such line), raw.
    pub forwarded_for: Option<&'a [u8]>,
    /// What the tracker is asked.
    pub target: Target<'a>,
}

/// What the tracker is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/announce` with usable parameters.
    Announce(AnnounceRequest),
    /// `/scrape` with usable parameters.
    Scrape(ScrapeRequest<'a>),
    /// `/announce` or `/scrape` with unusable parameters: answer with this
    /// `failure reason` (HTTP 200).
    Failure(&'static str),
}

/// The announce `key`: up to [`MAX_KEY_LEN`] raw bytes (not text).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnnounceKey {
    len: u8,
    bytes: [u8; MAX_KEY_LEN],
}

impl AnnounceKey {
    /// The key's bytes as decoded.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// A key from raw bytes; `None` if longer than [`MAX_KEY_LEN`].
    pub fn new(raw: &[u8]) -> Option<Self> {
        let mut bytes = [0; MAX_KEY_LEN];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(AnnounceKey {
            len: raw.len() as u8,
            bytes,
        })
    }
}

impl std::fmt::Debug for AnnounceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnnounceKey({:02x?})", self.as_bytes())
    }
}

/// `/announce` parameters (BEP 3, 7, 21, 23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// `info_hash`: exactly 20 bytes.
    pub info_hash: InfoHash,
    /// `peer_id`: exactly 20 bytes.
    pub peer_id: PeerId,
    /// `port`: the port the client listens on (0 is passed on: the swarm
    /// answers but does not store it).
    pub port: u16,
    /// `uploaded`, 0 if absent.
    pub uploaded: u64,
    /// `downloaded`, 0 if absent.
    pub downloaded: u64,
    /// `left`; `None` if absent (counted as a leecher).
    pub left: Option<u64>,
    /// `event`: `started`, `completed`, `stopped`, `paused` (BEP 21);
    /// empty, absent, `empty` or unknown: [`Event::None`].
    pub event: Event,
    /// `numwant` when positive; absent, 0 or negative: `None` (the tracker
    /// default). Saturates at `u32::MAX`.
    pub numwant: Option<u32>,
    /// Compact peer lists (BEP 23): true unless `compact=0`.
    pub compact: bool,
    /// `no_peer_id` present and not `0`: leave `peer id` out of
    /// non-compact peer dicts.
    pub no_peer_id: bool,
    /// `key`, raw bytes.
    pub key: Option<AnnounceKey>,
}

impl AnnounceRequest {
    /// Nothing left to download, or a partial seed (`event=paused`):
    /// receives no seeders and counts as one.
    pub fn seeder(&self) -> bool {
        self.left == Some(0) || self.event == Event::Paused
    }

    /// Peers to select: `numwant` or `default` when the client left it to
    /// the tracker, at most `max`.
    pub fn numwant_or(&self, default: usize, max: usize) -> usize {
        self.numwant.map_or(default, |n| n as usize).min(max)
    }

    /// The announce as the swarm takes it; `addr` is the request's source
    /// IP (after any trusted forwarded-for) with [`AnnounceRequest::port`].
    pub fn to_swarm<A>(&self, addr: A, numwant: usize) -> Announce<A> {
        Announce {
            info_hash: self.info_hash,
            addr,
            event: self.event,
            seeder: self.seeder(),
            numwant,
        }
    }
}

/// `/scrape` parameters (BEP 48): the `info_hash` values, validated, kept
/// as the raw query and decoded again when iterated (no copy, no
/// allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    query: &'a [u8],
    count: usize,
}

impl<'a> ScrapeRequest<'a> {
    /// The info hashes in request order (repeats kept).
    pub fn info_hashes(&self) -> impl Iterator<Item = InfoHash> + 'a {
        scrape_hashes(self.query).filter_map(|h| h.map(InfoHash))
    }

    /// Number of `info_hash` parameters.
    pub fn len(&self) -> usize {
        self.count
    }

    /// A full scrape (no `info_hash`; only with [`ParseConfig::full_scrape`]).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Every `info_hash` of a query, decoded (`None`: not 20 bytes).
fn scrape_hashes(query: &[u8]) -> impl Iterator<Item = Option<[u8; 20]>> + '_ {
    pairs(query).filter_map(|(k, v)| {
        let mut buf = [0; MAX_NAME_LEN];
        (name(k, &mut buf)? == b"info_hash").then(|| decode_20(v))
    })
}

/// Parse one request head from the start of `buf`. Never panics, never
/// allocates; bytes after the head (a pipelined request) are not looked
/// at.
pub fn parse_request<'a>(buf: &'a [u8], cfg: &ParseConfig<'_>) -> Result<Request<'a>, ParseError> {
    let reject = |s| Err(ParseError::Reject(s));
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= cfg.max_head_len {
                reject(Status::HeadTooLarge)
            } else {
                Err(ParseError::Incomplete)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return reject(Status::HeadTooLarge),
        Err(_) => return reject(Status::BadRequest),
    };
    if head_len > cfg.max_head_len {
        return reject(Status::HeadTooLarge);
    }

    let mut hosts = 0u32;
    let mut content_length_seen = false;
    let mut close = false;
    let mut keep_alive = false;
    let mut forwarded_for = None;
    for h in &*req.headers {
        let n = h.name.as_bytes();
        if n.eq_ignore_ascii_case(b"content-length") {
            // One, and it says 0: a GET carries no body.
            let v = h.value.trim_ascii();
            if content_length_seen || v.is_empty() || v.iter().any(|&d| d != b'0') {
                return reject(Status::BadRequest);
            }
            content_length_seen = true;
        } else if n.eq_ignore_ascii_case(b"transfer-encoding") {
            return reject(Status::BadRequest);
        } else if n.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if n.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if cfg
            .forwarded_header
            .is_some_and(|f| n.eq_ignore_ascii_case(f.as_bytes()))
        {
            forwarded_for = Some(h.value);
        }
    }
    let http10 = req.version == Some(0);
    if hosts > 1 || (hosts == 0 && !http10) {
        return reject(Status::BadRequest);
    }
    let connection = match (http10, close, keep_alive && hosts == 1) {
        (_, true, _) | (true, false, false) => Connection::Close,
        (false, false, _) => Connection::KeepAlive,
        (true, false, true) => Connection::KeepAliveHttp10,
    };
    if req.method != Some("GET") {
        return reject(Status::MethodNotAllowed);
    }

    let target = req.path.unwrap_or_default().as_bytes();
    let target = target
        .iter()
        .position(|&b| b == b'#')
        .map_or(target, |i| &target[..i]);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &target[target.len()..]),
    };
    let target = match path {
        b"/announce" | b"/announce/" => match parse_announce(query) {
            Ok(a) => Target::Announce(a),
            Err(reason) => Target::Failure(reason),
        },
        b"/scrape" | b"/scrape/" => match parse_scrape(query, cfg) {
            Ok(s) => Target::Scrape(s),
            Err(reason) => Target::Failure(reason),
        },
        _ => return reject(Status::NotFound),
    };
    Ok(Request {
        head_len,
        connection,
        forwarded_for,
        target,
    })
}

fn parse_announce(query: &[u8]) -> Result<AnnounceRequest, &'static str> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut a = AnnounceRequest {
        info_hash: InfoHash::default(),
        peer_id: PeerId::default(),
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: None,
        event: Event::None,
        numwant: None,
        compact: true,
        no_peer_id: false,
        key: None,
    };
    for (k, v) in pairs(query) {
        let mut buf = [0; MAX_NAME_LEN];
        let Some(k) = name(k, &mut buf) else { continue };
        match k {
            b"info_hash" => {
                if info_hash.is_some() {
                    return Err("info_hash given twice");
                }
                info_hash = Some(decode_20(v).ok_or("info_hash is not 20 bytes")?);
            }
            b"peer_id" => {
                if peer_id.is_some() {
                    return Err("peer_id given twice");
                }
                peer_id = Some(decode_20(v).ok_or("peer_id is not 20 bytes")?);
            }
            b"port" => {
                let p = decode_u64(v).and_then(|p| u16::try_from(p).ok());
                port = Some(p.ok_or("invalid port")?);
            }
            b"uploaded" => a.uploaded = decode_u64(v).ok_or("invalid uploaded")?,
            b"downloaded" => a.downloaded = decode_u64(v).ok_or("invalid downloaded")?,
            b"left" => a.left = Some(decode_u64(v).ok_or("invalid left")?),
            b"event" => {
                let mut e = [0u8; 16];
                // Unknown or undecodable events are tolerated, not errors.
                a.event = match percent_decode(v, &mut e).map(|n| &e[..n]) {
                    Ok(b"started") => Event::Started,
                    Ok(b"completed") => Event::Completed,
                    Ok(b"stopped") => Event::Stopped,
                    Ok(b"paused") => Event::Paused,
                    _ => Event::None,
                };
            }
            b"numwant" => {
                let n = decode_i64_saturating(v).ok_or("invalid numwant")?;
                a.numwant = (n > 0).then(|| n.min(i64::from(u32::MAX)) as u32);
            }
            b"compact" => a.compact = v != b"0",
            b"no_peer_id" => a.no_peer_id = v != b"0",
            b"key" => {
                let mut raw = [0u8; MAX_KEY_LEN];
                let n = percent_decode(v, &mut raw).map_err(|e| match e {
                    super::DecodeError::BadEscape => "invalid key",
                    super::DecodeError::TooLong => "key too long",
                })?;
                a.key = AnnounceKey::new(&raw[..n]);
            }
            // ip, ipv4, ipv6 (never trusted), supportcrypto, redundant,
            // corrupt, trackerid, … : ignored.
            _ => {}
        }
    }
    a.info_hash = InfoHash(info_hash.ok_or("missing info_hash")?);
    a.peer_id = PeerId(peer_id.ok_or("missing peer_id")?);
    a.port = port.ok_or("missing port")?;
    Ok(a)
}

fn parse_scrape<'a>(
    query: &'a [u8],
    cfg: &ParseConfig<'_>,
) -> Result<ScrapeRequest<'a>, &'static str> {
    let mut count = 0;
    for h in scrape_hashes(query) {
        h.ok_or("info_hash is not 20 bytes")?;
        count += 1;
        if count > cfg.max_scrape_hashes {
            return Err("too many info hashes in scrape");
        }
    }
    if count == 0 && !cfg.full_scrape {
        return Err("full scrape is not supported");
    }
    Ok(ScrapeRequest { query, count })
}
