//! Responses: whole HTTP/1.1 responses written straight into a send
//! buffer.
//!
//! `Content-Length` decision: the body is bencoded first at offset
//! [`HEAD_RESERVE`], its length is then known exactly, the head is written
//! at offset 0 and the body moved down right behind it (`copy_within`,
//! a few hundred bytes for a compact announce). The alternatives were a
//! fixed-width, zero- or space-padded length field, which is valid HTTP
//! but one more thing for each client's parser to get right, or computing
//! the bencoded length in advance, which duplicates every format rule. The
//! price is that the buffer needs [`HEAD_RESERVE`] bytes more than the
//! response; [`announce_response_max_len`] and [`scrape_response_max_len`]
//! include them. Every response starts at `out[0]`; the writers return its
//! length, or [`BufferTooSmall`] (nothing usable written) if it does not
//! fit: peer lists are never silently cut, the caller sizes `out` (or
//! `numwant`) beforehand.

use std::io::Write as _;
use std::net::Ipv6Addr;

use riptide_common::{InfoHash, PeerId};

use super::bencode::BencodeWriter;
use super::{BufferTooSmall, Connection, PeerV4, PeerV6, ScrapeStats, Status};
use riptide_stream::cursor::decimal;

/// Bytes reserved in front of a body for the response head; every head
/// riptide writes is shorter.
pub const HEAD_RESERVE: usize = 128;

/// Longest bencoded non-compact peer:
/// `d2:ip39:<39>7:peer id20:<20>4:porti65535ee`.
const DICT_PEER_MAX: usize = 1 + 4 + 3 + 39 + 9 + 3 + 20 + 6 + 7 + 1;
/// Longest fixed part of an announce body (four counters at their
/// maximum, both peer keys, their length prefixes, the warning key).
const ANNOUNCE_FIXED_MAX: usize = 160;
/// Longest bencoded scrape file entry: key and a dict of three counters.
const SCRAPE_FILE_MAX: usize = 3 + 20 + 1 + 3 * (13 + 12) + 1;

/// Counts and timers of an announce response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse<'a> {
    /// `interval`: seconds until the next regular announce.
    pub interval: u32,
    /// `min interval`: seconds the client must wait at least.
    pub min_interval: u32,
    /// `complete`: seeders.
    pub complete: u32,
    /// `incomplete`: leechers.
    pub incomplete: u32,
    /// `warning message`, if any.
    pub warning: Option<&'a [u8]>,
}

/// The peers of an announce response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peers<'p> {
    /// BEP 23 / BEP 7: `peers` as 6-byte IPv4 records (always written, also
    /// when empty) and `peers6` as 18-byte IPv6 records (written when
    /// there are any).
    Compact {
        /// IPv4 peers.
        v4: &'p [PeerV4],
        /// IPv6 peers.
        v6: &'p [PeerV6],
    },
    /// `compact=0`: `peers` is a list of dicts `ip` (text), `peer id`,
    /// `port`; IPv4 peers first, then IPv6.
    Dicts {
        /// IPv4 peers.
        v4: &'p [PeerV4],
        /// IPv6 peers.
        v6: &'p [PeerV6],
        /// Peer ids in the same order (IPv4 then IPv6); a peer without an
        /// entry gets no `peer id`. `None` (`no_peer_id=1`, or ids not
        /// stored): no `peer id` at all.
        peer_ids: Option<&'p [PeerId]>,
    },
}

/// Send-buffer bytes enough for any announce response with these many
/// peers and this warning (head and [`HEAD_RESERVE`] included).
pub const fn announce_response_max_len(peers: usize, compact: bool, warning_len: usize) -> usize {
    let per_peer = if compact { 18 } else { DICT_PEER_MAX };
    HEAD_RESERVE + ANNOUNCE_FIXED_MAX + warning_len + peers * per_peer
}

/// Send-buffer bytes enough for any scrape response of `files` hashes.
pub const fn scrape_response_max_len(files: usize) -> usize {
    HEAD_RESERVE + 16 + files * SCRAPE_FILE_MAX
}

/// Write the status line and headers for a body of `body_len` bytes.
fn write_head(
    out: &mut [u8],
    status: Status,
    body_len: usize,
    connection: Connection,
) -> Result<usize, BufferTooSmall> {
    let mut w = BencodeWriter::new(out);
    w.raw(b"HTTP/1.1 ")?;
    w.raw(status.line().as_bytes())?;
    w.raw(b"\r\nContent-Type: text/plain\r\nContent-Length: ")?;
    let mut d = [0u8; 20];
    w.raw(decimal(body_len as u64, &mut d))?;
    w.raw(b"\r\n")?;
    if status == Status::MethodNotAllowed {
        w.raw(b"Allow: GET\r\n")?;
    }
    w.raw(match connection {
        Connection::Close => b"Connection: close\r\n\r\n",
        Connection::KeepAlive => &b"\r\n"[..],
        Connection::KeepAliveHttp10 => b"Connection: keep-alive\r\n\r\n",
    })?;
    Ok(w.len())
}

/// Bencode a body at [`HEAD_RESERVE`] with `body`, then put the head in
/// front of it.
#[inline]
fn with_body(
    out: &mut [u8],
    connection: Connection,
    body: impl FnOnce(&mut BencodeWriter<'_>) -> Result<(), BufferTooSmall>,
) -> Result<usize, BufferTooSmall> {
    let body_len = {
        let mut w = BencodeWriter::new(out.get_mut(HEAD_RESERVE..).ok_or(BufferTooSmall)?);
        body(&mut w)?;
        w.len()
    };
    let head_len = write_head(&mut out[..HEAD_RESERVE], Status::Ok, body_len, connection)?;
    out.copy_within(HEAD_RESERVE..HEAD_RESERVE + body_len, head_len);
    Ok(head_len + body_len)
}

/// Write an announce response (HTTP 200, bencoded dict, keys sorted).
pub fn write_announce(
    out: &mut [u8],
    resp: &AnnounceResponse<'_>,
    peers: Peers<'_>,
    connection: Connection,
) -> Result<usize, BufferTooSmall> {
    with_body(out, connection, |w| {
        w.dict()?;
        w.key_uint(b"complete", resp.complete.into())?;
        w.key_uint(b"incomplete", resp.incomplete.into())?;
        w.key_uint(b"interval", resp.interval.into())?;
        w.key_uint(b"min interval", resp.min_interval.into())?;
        w.bytes(b"peers")?;
        match peers {
            Peers::Compact { v4, v6 } => {
                let s = w.bytes_space(v4.len() * 6)?;
                for (dst, p) in s.chunks_exact_mut(6).zip(v4) {
                    dst[..4].copy_from_slice(&p.ip);
                    dst[4..].copy_from_slice(&p.port.to_be_bytes());
                }
                if !v6.is_empty() {
                    w.bytes(b"peers6")?;
                    let s = w.bytes_space(v6.len() * 18)?;
                    for (dst, p) in s.chunks_exact_mut(18).zip(v6) {
                        dst[..16].copy_from_slice(&p.ip);
                        dst[16..].copy_from_slice(&p.port.to_be_bytes());
                    }
                }
            }
            Peers::Dicts { v4, v6, peer_ids } => {
                w.list()?;
                let id = |i: usize| peer_ids.and_then(|ids| ids.get(i));
                for (i, p) in v4.iter().enumerate() {
                    let mut text = [0u8; 15];
                    let n = ipv4_text(&mut text, p.ip);
                    dict_peer(w, &text[..n], id(i), p.port)?;
                }
                for (i, p) in v6.iter().enumerate() {
                    let mut text = [0u8; 39];
                    let n = ip_text(&mut text, Ipv6Addr::from(p.ip));
                    dict_peer(w, &text[..n], id(v4.len() + i), p.port)?;
                }
                w.end()?;
            }
        }
        if let Some(warning) = resp.warning {
            w.bytes(b"warning message")?;
            w.bytes(warning)?;
        }
        w.end()
    })
}

/// Dotted-decimal IPv4 text into `buf`, without the formatting machinery.
fn ipv4_text(buf: &mut [u8; 15], ip: [u8; 4]) -> usize {
    let mut n = 0;
    for (i, octet) in ip.into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        let mut d = [0u8; 20];
        let digits = decimal(octet.into(), &mut d);
        buf[n..n + digits.len()].copy_from_slice(digits);
        n += digits.len();
    }
    n
}

/// An address as text into `buf` (39 bytes hold any IPv6 address).
fn ip_text(buf: &mut [u8; 39], ip: impl std::fmt::Display) -> usize {
    let mut rest = &mut buf[..];
    // Cannot fail: the longest IPv6 text is 39 bytes.
    let _ = write!(rest, "{ip}");
    39 - rest.len()
}

fn dict_peer(
    w: &mut BencodeWriter<'_>,
    ip: &[u8],
    peer_id: Option<&PeerId>,
    port: u16,
) -> Result<(), BufferTooSmall> {
    w.dict()?;
    w.bytes(b"ip")?;
    w.bytes(ip)?;
    if let Some(id) = peer_id {
        w.bytes(b"peer id")?;
        w.bytes(&id.0)?;
    }
    w.key_uint(b"port", port.into())?;
    w.end()
}

/// Write a scrape response (BEP 48): `files` keyed by raw 20-byte hash,
/// each `complete`, `downloaded`, `incomplete`. `files` is sorted in place
/// by hash (bencode keys are sorted) and a repeated hash is written once.
/// Unknown hashes are the caller's zeros ([`ScrapeStats::default`]).
pub fn write_scrape(
    out: &mut [u8],
    files: &mut [(InfoHash, ScrapeStats)],
    connection: Connection,
) -> Result<usize, BufferTooSmall> {
    files.sort_unstable_by_key(|f| f.0);
    with_body(out, connection, |w| files_dict(w, files))
}

/// Bytes a full scrape's body of `files` torrents may take.
pub const fn full_scrape_body_max_len(files: usize) -> usize {
    16 + files * SCRAPE_FILE_MAX
}

/// Write a full scrape's body (the whole `d5:filesd…ee`, no head): `files`
/// sorted by hash, as [`write_scrape`]'s. It is written once and sent to
/// many clients, each after its own [`write_body_head`].
pub fn write_full_scrape_body(
    out: &mut [u8],
    files: &[(InfoHash, ScrapeStats)],
) -> Result<usize, BufferTooSmall> {
    debug_assert!(files.windows(2).all(|p| p[0].0 <= p[1].0));
    let mut w = BencodeWriter::new(out);
    files_dict(&mut w, files)?;
    Ok(w.len())
}

/// Write the head of an HTTP 200 whose body of `body_len` bytes is sent
/// separately (a full scrape).
pub fn write_body_head(
    out: &mut [u8],
    body_len: usize,
    connection: Connection,
) -> Result<usize, BufferTooSmall> {
    write_head(out, Status::Ok, body_len, connection)
}

/// `d5:filesd<hash>d8:completei…e10:downloadedi…e10:incompletei…ee…ee` of
/// sorted `files`, a repeated hash once.
fn files_dict(
    w: &mut BencodeWriter<'_>,
    files: &[(InfoHash, ScrapeStats)],
) -> Result<(), BufferTooSmall> {
    w.dict()?;
    w.bytes(b"files")?;
    w.dict()?;
    let mut last = None;
    for (hash, s) in files {
        if last == Some(hash) {
            continue;
        }
        last = Some(hash);
        w.bytes(&hash.0)?;
        w.dict()?;
        w.key_uint(b"complete", s.seeders.into())?;
        w.key_uint(b"downloaded", s.completed.into())?;
        w.key_uint(b"incomplete", s.leechers.into())?;
        w.end()?;
    }
    w.end()?;
    w.end()
}

/// Write a tracker failure: HTTP 200 with `d14:failure reason<…>e` (what
/// clients parse best).
pub fn write_failure(
    out: &mut [u8],
    reason: &[u8],
    connection: Connection,
) -> Result<usize, BufferTooSmall> {
    with_body(out, connection, |w| {
        w.dict()?;
        w.bytes(b"failure reason")?;
        w.bytes(reason)?;
        w.end()
    })
}

/// Write a plain HTTP error (`status` other than 200): the reason phrase
/// as a text body, and always `Connection: close`.
pub fn write_error(out: &mut [u8], status: Status) -> Result<usize, BufferTooSmall> {
    let line = status.line().as_bytes();
    // The reason phrase without the code.
    let body = &line[4..];
    let head = write_head(out, status, body.len(), Connection::Close)?;
    let end = head + body.len();
    out.get_mut(head..end)
        .ok_or(BufferTooSmall)?
        .copy_from_slice(body);
    Ok(end)
}
