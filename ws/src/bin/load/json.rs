//! The JSON of the load generator: announces and answers written into a
//! reused buffer from per-thread templates, and a scanner that tells
//! which tracker message arrived and where its strings lie (no tree, no
//! allocation).

use std::io::Write as _;
use std::ops::Range;

/// A 20-byte binary string as a JSON literal (quotes included), one
/// character per byte as WebTorrent writes it: printable ASCII as is,
/// `"` and `\` escaped, controls as `\u00XX`, bytes ≥ 0x80 as two UTF-8
/// bytes.
pub(crate) fn binary_literal(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x20..=0x7e => out.push(b),
            0x80.. => out.extend_from_slice(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
    out.push(b'"');
}

/// Decodes a JSON string literal (quotes included) of latin-1 characters
/// into `out`; returns how many bytes it holds, or `None` for a literal
/// that is not one (bad escape, a character > 255, more than `out` holds).
pub(crate) fn decode_binary(lit: &[u8], out: &mut [u8]) -> Option<usize> {
    let inner = lit.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut n = 0;
    let mut i = 0;
    while i < inner.len() {
        let (b, used) = match inner[i] {
            b'\\' => match *inner.get(i + 1)? {
                b'u' => {
                    let hex = std::str::from_utf8(inner.get(i + 2..i + 6)?).ok()?;
                    (u8::try_from(u16::from_str_radix(hex, 16).ok()?).ok()?, 6)
                }
                b'n' => (b'\n', 2),
                b'r' => (b'\r', 2),
                b't' => (b'\t', 2),
                b'b' => (8, 2),
                b'f' => (12, 2),
                c @ (b'"' | b'\\' | b'/') => (c, 2),
                _ => return None,
            },
            c @ 0xc2..=0xc3 => ((c << 6) | (inner.get(i + 1)? & 0x3f), 2),
            c @ 0..=0x7f => (c, 1),
            _ => return None,
        };
        *out.get_mut(n)? = b;
        n += 1;
        i += used;
    }
    Some(n)
}

/// What the tracker sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The reply to an announce (`interval`, `complete`, `incomplete`).
    AnnounceReply,
    /// Another peer's offer, relayed.
    Offer,
    /// The answer to one of our offers, relayed.
    Answer,
    /// `failure reason`.
    Failure,
    /// A scrape reply.
    Scrape,
    /// Anything else.
    Unknown,
}

/// One scanned tracker message: its kind and the literals (quotes
/// included) of the strings an answer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub(crate) kind: Kind,
    pub(crate) info_hash: Option<Range<usize>>,
    pub(crate) peer_id: Option<Range<usize>>,
    pub(crate) offer_id: Option<Range<usize>>,
}

/// Scans the top level of one JSON object; `None` if it is not one.
pub(crate) fn scan(msg: &[u8]) -> Option<Scanned> {
    let mut s = Scanned {
        kind: Kind::Unknown,
        info_hash: None,
        peer_id: None,
        offer_id: None,
    };
    let (mut offer, mut answer, mut failure, mut reply) = (false, false, false, false);
    let mut action: Option<Range<usize>> = None;
    let mut i = skip_ws(msg, 0);
    if msg.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(msg, i + 1);
    if msg.get(i) == Some(&b'}') {
        return Some(s);
    }
    loop {
        let key = string_end(msg, i)?;
        let key_range = i + 1..key - 1;
        i = skip_ws(msg, key);
        if msg.get(i) != Some(&b':') {
            return None;
        }
        let v = skip_ws(msg, i + 1);
        let end = value_end(msg, v)?;
        match &msg[key_range] {
            b"info_hash" => s.info_hash = Some(v..end),
            b"peer_id" => s.peer_id = Some(v..end),
            b"offer_id" => s.offer_id = Some(v..end),
            b"offer" => offer = true,
            b"answer" => answer = true,
            b"failure reason" => failure = true,
            b"interval" | b"complete" | b"incomplete" => reply = true,
            b"action" => action = Some(v..end),
            _ => {}
        }
        i = skip_ws(msg, end);
        match msg.get(i) {
            Some(b',') => i = skip_ws(msg, i + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    let action = action.map(|r| &msg[r]);
    s.kind = if failure {
        Kind::Failure
    } else if action == Some(&b"\"scrape\""[..]) {
        Kind::Scrape
    } else if offer {
        Kind::Offer
    } else if answer {
        Kind::Answer
    } else if reply {
        Kind::AnnounceReply
    } else {
        Kind::Unknown
    };
    Some(s)
}

fn skip_ws(m: &[u8], mut i: usize) -> usize {
    while matches!(m.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the string literal starting at `i`.
fn string_end(m: &[u8], i: usize) -> Option<usize> {
    if m.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match *m.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// The index after the value starting at `i`.
fn value_end(m: &[u8], i: usize) -> Option<usize> {
    match *m.get(i)? {
        b'"' => string_end(m, i),
        b'{' | b'[' => {
            let mut depth = 0_usize;
            let mut j = i;
            loop {
                match *m.get(j)? {
                    b'"' => {
                        j = string_end(m, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while !matches!(
                m.get(j),
                None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            ) {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Per-thread templates of the messages a peer sends.
pub(crate) struct Templates {
    /// `{"type":"offer","sdp":"…"}`.
    offer: Vec<u8>,
    /// `{"type":"answer","sdp":"…"}`.
    answer: Vec<u8>,
}

/// An SDP-looking text of `len` bytes as a JSON string body (with the
/// `\r\n` escapes real SDPs carry).
fn sdp_body(len: usize, kind: &str) -> Vec<u8> {
    let lines = [
        "v=0",
        "o=- 4625849323381612323 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Gk2R",
        "a=ice-pwd:3bVV6hYq7fVh1ovDx4KnCqSx",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 5B:8E:4C:0A:66:11:CC:DB:42:E9:03:0C:6A:1D:5B:11:91:7F:1C:0E:2C:3D:AA:7B:52:66:FD:38:64:21:08:8E",
        "a=mid:0",
        "a=sctp-port:5000",
        "a=max-message-size:262144",
    ];
    let mut text = String::new();
    let mut i = 0;
    while text.len() < len {
        let line = if i < lines.len() {
            lines[i].to_owned()
        } else {
            format!("a=candidate:{i} 1 udp 2113937151 {kind}.local 54321 typ host generation 0")
        };
        text.push_str(&line);
        text.push_str("\r\n");
        i += 1;
    }
    text.truncate(len);
    let mut out = Vec::with_capacity(len + len / 8);
    for b in text.bytes() {
        match b {
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out
}

impl Templates {
    pub(crate) fn new(sdp_len: usize) -> Self {
        let wrap = |kind: &str| {
            let mut v = format!(r#"{{"type":"{kind}","sdp":""#).into_bytes();
            v.extend_from_slice(&sdp_body(sdp_len, kind));
            v.extend_from_slice(b"\"}");
            v
        };
        Self {
            offer: wrap("offer"),
            answer: wrap("answer"),
        }
    }

    /// Largest announce with `offers` offers.
    pub(crate) fn announce_max_len(&self, offers: usize) -> usize {
        256 + 2 * 120 + offers * (self.offer.len() + 64)
    }

    /// Largest answer.
    pub(crate) fn answer_max_len(&self) -> usize {
        512 + self.answer.len()
    }

    /// Writes an announce; `offer_ids` are 20-character ASCII ids.
    pub(crate) fn announce(
        &self,
        out: &mut Vec<u8>,
        info_hash_lit: &[u8],
        peer_id_lit: &[u8],
        left: u64,
        started: bool,
        offer_ids: &[[u8; 20]],
    ) {
        announce_head(out, info_hash_lit, peer_id_lit);
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            r#","numwant":{},"uploaded":0,"downloaded":0,"left":{left}"#,
            offer_ids.len()
        );
        if started {
            out.extend_from_slice(br#","event":"started""#);
        }
        if !offer_ids.is_empty() {
            out.extend_from_slice(br#","offers":["#);
            for (k, id) in offer_ids.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"offer":"#);
                out.extend_from_slice(&self.offer);
                out.extend_from_slice(br#","offer_id":""#);
                out.extend_from_slice(id);
                out.extend_from_slice(b"\"}");
            }
            out.push(b']');
        }
        out.push(b'}');
    }

    /// Writes the answer to an offer, echoing its literals.
    pub(crate) fn answer(
        &self,
        out: &mut Vec<u8>,
        info_hash_lit: &[u8],
        peer_id_lit: &[u8],
        to_peer_id_lit: &[u8],
        offer_id_lit: &[u8],
    ) {
        announce_head(out, info_hash_lit, peer_id_lit);
        out.extend_from_slice(br#","to_peer_id":"#);
        out.extend_from_slice(to_peer_id_lit);
        out.extend_from_slice(br#","offer_id":"#);
        out.extend_from_slice(offer_id_lit);
        out.extend_from_slice(br#","answer":"#);
        out.extend_from_slice(&self.answer);
        out.push(b'}');
    }
}

/// Starts an announce (an offer's or an answer's) in `out`: the action,
/// the info hash and the sender.
fn announce_head(out: &mut Vec<u8>, info_hash_lit: &[u8], peer_id_lit: &[u8]) {
    out.clear();
    out.extend_from_slice(br#"{"action":"announce","info_hash":"#);
    out.extend_from_slice(info_hash_lit);
    out.extend_from_slice(br#","peer_id":"#);
    out.extend_from_slice(peer_id_lit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut lit = Vec::new();
        binary_literal(&mut lit, &bytes);
        let v: serde_json::Value = serde_json::from_slice(&lit).unwrap();
        let chars: Vec<u32> = v.as_str().unwrap().chars().map(u32::from).collect();
        assert_eq!(chars, (0..=255).collect::<Vec<u32>>());
        let mut out = [0_u8; 256];
        assert_eq!(decode_binary(&lit, &mut out), Some(256));
        assert_eq!(&out[..], &bytes[..]);
        assert_eq!(decode_binary(br#""\u0100""#, &mut out), None);
    }

    #[test]
    fn messages_are_json_and_scan() {
        let t = Templates::new(500);
        let mut out = Vec::new();
        t.announce(
            &mut out,
            br#""abc""#,
            br#""-RW0001-aaaaaaaaaaaa""#,
            50,
            true,
            &[*b"aaaaaaaaaaaaaaaaaaaa"; 5],
        );
        assert!(out.len() <= t.announce_max_len(5));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["offers"].as_array().unwrap().len(), 5);
        assert_eq!(v["offers"][0]["offer"]["sdp"].as_str().unwrap().len(), 500);
        assert_eq!(v["numwant"], 5);
        t.answer(&mut out, br#""h""#, br#""p""#, br#""q""#, br#""o""#);
        assert!(out.len() <= t.answer_max_len());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["to_peer_id"], "q");

        let offer = br#"{"action":"announce","info_hash":"a\"b","peer_id":"pp","offer":{"type":"offer","sdp":"x}\"{"},"offer_id":"oo"}"#;
        let s = scan(offer).unwrap();
        assert_eq!(s.kind, Kind::Offer);
        assert_eq!(&offer[s.info_hash.unwrap()], br#""a\"b""#);
        assert_eq!(&offer[s.peer_id.unwrap()], br#""pp""#);
        assert_eq!(&offer[s.offer_id.unwrap()], br#""oo""#);
        let reply =
            br#"{"action":"announce","interval":120,"info_hash":"h","complete":1,"incomplete":0}"#;
        assert_eq!(scan(reply).unwrap().kind, Kind::AnnounceReply);
        let answer = br#"{"action":"announce","info_hash":"h","peer_id":"p","answer":{"type":"answer","sdp":"s"},"offer_id":"o"}"#;
        assert_eq!(scan(answer).unwrap().kind, Kind::Answer);
        let fail = br#"{"failure reason":"no","action":"announce"}"#;
        assert_eq!(scan(fail).unwrap().kind, Kind::Failure);
        assert_eq!(scan(b"[1]"), None);
        assert_eq!(scan(br#"{"a":}"#), None);
    }
}
