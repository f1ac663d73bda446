//! Tracker → client JSON, written straight into the caller's bytes (the
//! payload of a text frame, see [`write_frame`](super::write_frame)): no
//! `String`, no serde, no tree.
//!
//! Binary strings go out as latin-1 characters (bytes ≥ 0x80 as two UTF-8
//! bytes); SDPs and failure reasons are JSON-escaped. Each writer has a
//! `*_max_len` so the caller can reserve room; a writer panics when `out`
//! is shorter than that (a caller bug, never an input).

use riptide_common::InfoHash;
use riptide_stream::Cursor;

use super::latin1;
use super::message::{Action, OfferId, PeerId, Sdp};
use super::ScrapeCounts;

/// Longest decimal `u32`.
const U32_MAX_LEN: usize = 10;
/// A 20-byte binary string as a JSON literal, at worst.
const BIN20_MAX_LEN: usize = latin1::json_max_len(20);

/// Writes the JSON escape of a control character (`< 0x20`); returns its
/// length (2 or 6).
pub(crate) fn write_control_escape(out: &mut [u8], b: u8) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => {
            out[..4].copy_from_slice(b"\\u00");
            out[4] = HEX[usize::from(b >> 4)];
            out[5] = HEX[usize::from(b & 0xf)];
            return 6;
        }
    };
    out[0] = b'\\';
    out[1] = short;
    2
}

/// Longest JSON literal [`Json::string`] makes of `n` bytes of text.
const fn string_max_len(n: usize) -> usize {
    2 + 6 * n
}

/// A JSON writer over the caller's bytes.
struct Json<'a>(Cursor<'a>);

impl<'a> Json<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Json(Cursor::new(out))
    }

    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.put(bytes);
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.decimal(u64::from(v));
        self
    }

    fn bin(&mut self, bytes: &[u8]) -> &mut Self {
        let n = latin1::write_json(self.0.rest(), bytes);
        self.0.advance(n);
        self
    }

    /// A JSON string literal of UTF-8 text: `"` `\` and controls escaped,
    /// the rest as is. Runs of plain bytes are copied at once.
    fn string(&mut self, s: &str) -> &mut Self {
        self.raw(b"\"");
        let bytes = s.as_bytes();
        let mut plain = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b >= 0x20 && b != b'"' && b != b'\\' {
                continue;
            }
            self.raw(&bytes[plain..i]);
            if b < 0x20 {
                let n = write_control_escape(self.0.rest(), b);
                self.0.advance(n);
            } else {
                self.raw(&[b'\\', b]);
            }
            plain = i + 1;
        }
        self.raw(&bytes[plain..]);
        self.raw(b"\"")
    }
}

/// Longest [`write_announce_reply`].
pub const fn announce_reply_max_len() -> usize {
    br#"{"action":"announce","interval":,"info_hash":,"complete":,"incomplete":}"#.len()
        + 3 * U32_MAX_LEN
        + BIN20_MAX_LEN
}

/// Writes the reply to an announce:
/// `{"action":"announce","interval":…,"info_hash":…,"complete":…,"incomplete":…}`.
/// Returns its length.
pub fn write_announce_reply(
    out: &mut [u8],
    info_hash: &InfoHash,
    interval: u32,
    complete: u32,
    incomplete: u32,
) -> usize {
    let mut w = Json::new(out);
    w.raw(br#"{"action":"announce","interval":"#)
        .u32(interval)
        .raw(br#","info_hash":"#)
        .bin(&info_hash.0)
        .raw(br#","complete":"#)
        .u32(complete)
        .raw(br#","incomplete":"#)
        .u32(incomplete)
        .raw(b"}");
    w.0.written()
}

/// What a relayed message carries: a peer's offer, or the answer to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relayed {
    /// An offer, relayed to another peer of the swarm.
    Offer,
    /// An answer, relayed to the peer that made the offer.
    Answer,
}

/// Longest [`write_relayed`] of an SDP of `sdp_len` bytes (its `type` at
/// most 6 bytes, as the parser checks).
pub const fn relayed_max_len(sdp_len: usize) -> usize {
    br#"{"action":"announce","info_hash":,"peer_id":,"answer":{"type":,"sdp":},"offer_id":}"#.len()
        + 3 * BIN20_MAX_LEN
        + string_max_len(6)
        + string_max_len(sdp_len)
}

/// Writes a relayed offer or answer from peer `from`:
/// `{"action":"announce","info_hash":…,"peer_id":<from>,"offer":{"type":"offer","sdp":…},"offer_id":…}`
/// (`"answer":{…}` for an answer). Returns its length.
pub fn write_relayed(
    out: &mut [u8],
    kind: Relayed,
    info_hash: &InfoHash,
    from: &PeerId,
    offer_id: &OfferId,
    sdp: &Sdp<'_>,
) -> usize {
    let field: &[u8] = match kind {
        Relayed::Offer => b"offer",
        Relayed::Answer => b"answer",
    };
    let mut w = Json::new(out);
    w.raw(br#"{"action":"announce","info_hash":"#)
        .bin(&info_hash.0)
        .raw(br#","peer_id":"#)
        .bin(from)
        .raw(b",\"")
        .raw(field)
        .raw(br#"":{"type":"#)
        .string(truncate(sdp.kind, 6))
        .raw(br#","sdp":"#)
        .string(sdp.sdp)
        .raw(br#"},"offer_id":"#)
        .bin(offer_id.as_bytes())
        .raw(b"}");
    w.0.written()
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Longest [`write_scrape_reply`] of `files` hashes.
pub const fn scrape_reply_max_len(files: usize) -> usize {
    br#"{"action":"scrape","files":{}}"#.len()
        + files
            * (br#":{"complete":,"incomplete":,"downloaded":},"#.len()
                + BIN20_MAX_LEN
                + 3 * U32_MAX_LEN)
}

/// Writes a scrape reply:
/// `{"action":"scrape","files":{"<hash>":{"complete":…,"incomplete":…,"downloaded":…},…}}`.
/// Returns its length.
pub fn write_scrape_reply(out: &mut [u8], files: &[(InfoHash, ScrapeCounts)]) -> usize {
    let mut w = Json::new(out);
    w.raw(br#"{"action":"scrape","files":{"#);
    for (i, (hash, c)) in files.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.bin(&hash.0)
            .raw(br#":{"complete":"#)
            .u32(c.complete)
            .raw(br#","incomplete":"#)
            .u32(c.incomplete)
            .raw(br#","downloaded":"#)
            .u32(c.downloaded)
            .raw(b"}");
    }
    w.raw(b"}}");
    w.0.written()
}

/// Longest [`write_failure`] with a reason of `reason_len` bytes.
pub const fn failure_max_len(reason_len: usize) -> usize {
    br#"{"failure reason":,"action":"announce","info_hash":}"#.len()
        + string_max_len(reason_len)
        + BIN20_MAX_LEN
}

/// Writes a failure: `{"failure reason":…}`, with `"action"` and
/// `"info_hash"` when given (the bittorrent-tracker client drops its socket
/// on a message without a known action). Returns its length.
pub fn write_failure(
    out: &mut [u8],
    action: Option<Action>,
    info_hash: Option<&InfoHash>,
    reason: &str,
) -> usize {
    let mut w = Json::new(out);
    w.raw(br#"{"failure reason":"#).string(reason);
    if let Some(a) = action {
        w.raw(br#","action":""#)
            .raw(a.as_str().as_bytes())
            .raw(b"\"");
    }
    if let Some(h) = info_hash {
        w.raw(br#","info_hash":"#).bin(&h.0);
    }
    w.raw(b"}");
    w.0.written()
}
