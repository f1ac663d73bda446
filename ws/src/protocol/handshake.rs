//! The opening handshake (RFC 6455 §4.2), server side: the client's HTTP/1.1
//! upgrade request, the `101 Switching Protocols` answer, and the refusals.
//!
//! Decisions:
//! - The head is parsed by `httparse` into a stack array of [`MAX_HEADERS`]
//!   slots: no allocation. Not complete yet: [`HandshakeError::Incomplete`]
//!   until it reaches [`HandshakeLimits::max_head_len`] bytes, then 431 (as
//!   for too many header lines).
//! - Any request path is accepted (trackers are announced as
//!   `wss://host/announce`, `wss://host/`, …).
//! - Only GET on HTTP/1.1 (405, 400). A GET with a body framing header
//!   (`Transfer-Encoding`, or a `Content-Length` other than a single `0`) is
//!   a request-smuggling shape: 400. Whitespace before a header's colon is
//!   refused by `httparse` itself (400).
//! - `Upgrade` must list `websocket` and `Connection` must list `upgrade`
//!   (token lists, any case, possibly over several lines); otherwise 426
//!   with `Upgrade: websocket`, as for a `Sec-WebSocket-Version` other
//!   than `13`, which also gets `Sec-WebSocket-Version: 13` (§4.4).
//! - `Host` must appear once; `Sec-WebSocket-Key` once, the base64 of 16
//!   bytes: otherwise 400.
//! - Extensions (permessage-deflate) and subprotocols are declined by not
//!   echoing them; `Origin` is not checked (a public tracker).
//! - The forwarded-for header (name configured) is handed out as raw bytes,
//!   the last line when there are several; trusting it is the caller's call.

use base64::Engine as _;
use riptide_stream::Cursor;

/// Header lines an upgrade request may have (more: 431). Browsers send about
/// 15.
pub const MAX_HEADERS: usize = 32;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Limits and choices of the upgrade parser (from the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeLimits<'a> {
    /// Longest request head in bytes, request line to the empty line.
    pub max_head_len: usize,
    /// Header whose value is handed out in [`Upgrade::forwarded_for`]
    /// (e.g. `X-Forwarded-For`); `None`: not looked at.
    pub forwarded_header: Option<&'a str>,
}

impl Default for HandshakeLimits<'_> {
    fn default() -> Self {
        Self {
            max_head_len: 4096,
            forwarded_header: None,
        }
    }
}

/// A valid upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upgrade<'a> {
    /// Length of the request head; frames start right after it.
    pub head_len: usize,
    /// The `Sec-WebSocket-Accept` value for [`write_accept`].
    pub accept: [u8; 28],
    /// Value of the configured forwarded-for header (the last one), raw.
    pub forwarded_for: Option<&'a [u8]>,
}

/// A refusal: an HTTP status and why, sent by [`write_reject`] before the
/// connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reject {
    /// HTTP status code (400, 405, 426, 431, or the caller's own, e.g. 503).
    pub status: u16,
    /// Short human reason, written into the body (cut at
    /// [`Reject::MAX_REASON_LEN`] bytes).
    pub reason: &'static str,
}

impl Reject {
    /// Longest reason written into a response body.
    pub const MAX_REASON_LEN: usize = 96;

    const fn new(status: u16, reason: &'static str) -> Self {
        Self { status, reason }
    }

    /// Reason phrase of the status line.
    pub fn phrase(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            426 => "Upgrade Required",
            429 => "Too Many Requests",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }
}

/// Why [`parse_upgrade`] gave no upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The head is not complete yet (and still under the limit): read more.
    Incomplete,
    /// Answer with [`write_reject`] and close.
    Reject(Reject),
}

const BAD_REQUEST: &str = "malformed request";

fn reject(status: u16, reason: &'static str) -> HandshakeError {
    HandshakeError::Reject(Reject::new(status, reason))
}

/// Parses a WebSocket upgrade request from the bytes received so far.
pub fn parse_upgrade<'a>(
    buf: &'a [u8],
    limits: &HandshakeLimits<'_>,
) -> Result<Upgrade<'a>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(if buf.len() >= limits.max_head_len {
                reject(431, "request head too long")
            } else {
                HandshakeError::Incomplete
            });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(reject(431, "too many header lines")),
        Err(_) => return Err(reject(400, BAD_REQUEST)),
    };
    if head_len > limits.max_head_len {
        return Err(reject(431, "request head too long"));
    }
    if req.method != Some("GET") {
        return Err(reject(405, "only GET upgrades to a WebSocket"));
    }
    if req.version != Some(1) {
        return Err(reject(400, "WebSocket needs HTTP/1.1"));
    }
    let mut seen = Seen::default();
    for h in req.headers.iter() {
        seen.header(h, limits)?;
    }
    seen.finish(head_len)
}

/// What the header lines said, gathered in one pass.
#[derive(Default)]
struct Seen<'a> {
    hosts: u8,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    version: Option<&'a [u8]>,
    versions: u8,
    key: Option<&'a [u8]>,
    keys: u8,
    content_lengths: u8,
    forwarded_for: Option<&'a [u8]>,
}

impl<'a> Seen<'a> {
    fn header(
        &mut self,
        h: &httparse::Header<'a>,
        limits: &HandshakeLimits<'_>,
    ) -> Result<(), HandshakeError> {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case("host") {
            self.hosts = self.hosts.saturating_add(1);
        } else if name.eq_ignore_ascii_case("upgrade") {
            self.upgrade_websocket |= has_token(value, b"websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            self.connection_upgrade |= has_token(value, b"upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            self.version = Some(value);
            self.versions = self.versions.saturating_add(1);
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            self.key = Some(value);
            self.keys = self.keys.saturating_add(1);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(reject(400, "a GET with Transfer-Encoding"));
        } else if name.eq_ignore_ascii_case("content-length") {
            self.content_lengths = self.content_lengths.saturating_add(1);
            if value != b"0" || self.content_lengths > 1 {
                return Err(reject(400, "a GET with a body"));
            }
        }
        if let Some(fwd) = limits.forwarded_header {
            if name.eq_ignore_ascii_case(fwd) {
                self.forwarded_for = Some(value);
            }
        }
        Ok(())
    }

    fn finish(self, head_len: usize) -> Result<Upgrade<'a>, HandshakeError> {
        if self.hosts != 1 {
            return Err(reject(400, "Host missing or repeated"));
        }
        if !self.upgrade_websocket || !self.connection_upgrade {
            return Err(reject(426, "not a WebSocket upgrade request"));
        }
        if self.versions != 1 || self.version != Some(b"13") {
            return Err(reject(426, "unsupported Sec-WebSocket-Version"));
        }
        let key = match (self.keys, self.key) {
            (1, Some(key)) if is_valid_key(key) => key,
            _ => return Err(reject(400, "bad Sec-WebSocket-Key")),
        };
        Ok(Upgrade {
            head_len,
            accept: accept_key(key),
            forwarded_for: self.forwarded_for,
        })
    }
}

/// `value` without surrounding spaces and tabs.
fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// A comma-separated token list contains `token` (ASCII case-insensitive).
fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// The key is the base64 of 16 bytes (24 characters, `==` at the end).
fn is_valid_key(key: &[u8]) -> bool {
    let mut raw = [0u8; 18];
    key.len() == 24
        && matches!(
            base64::engine::general_purpose::STANDARD.decode_slice(key, &mut raw),
            Ok(16)
        )
}

/// `Sec-WebSocket-Accept` for a key: base64(SHA-1(key ++ GUID)).
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    let digest = ctx.finish();
    let mut out = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(digest.as_ref(), &mut out)
        .expect("20 bytes encode to 28");
    debug_assert_eq!(n, 28);
    out
}

const ACCEPT_HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";

/// Length of the response [`write_accept`] writes (it is always this long).
pub const ACCEPT_MAX_LEN: usize = ACCEPT_HEAD.len() + 28 + 4;

/// Writes the `101 Switching Protocols` response; returns its length
/// ([`ACCEPT_MAX_LEN`]). No `Sec-WebSocket-Extensions`: extensions such as
/// permessage-deflate are declined.
///
/// # Panics
/// If `out` is shorter than [`ACCEPT_MAX_LEN`].
pub fn write_accept(out: &mut [u8], accept: &[u8; 28]) -> usize {
    let mut w = Cursor::new(out);
    w.put(ACCEPT_HEAD);
    w.put(accept);
    w.put(b"\r\n\r\n");
    w.written()
}

const REJECT_BODY: &[u8] =
    b"This is a WebTorrent tracker: connect with a WebSocket (ws:// or wss://).\n";
const REJECT_426: &[u8] = b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";

/// Longest response [`write_reject`] writes.
pub const REJECT_MAX_LEN: usize = 128 // status line, fixed headers, the length digits
    + REJECT_426.len()
    + REJECT_BODY.len()
    + Reject::MAX_REASON_LEN
    + 1;

/// Writes the refusal: status line, `Connection: close`, for 426 the
/// `Upgrade` and `Sec-WebSocket-Version: 13` headers, and a short text body
/// saying this is a WebTorrent tracker and why the request was refused.
/// Returns its length (at most [`REJECT_MAX_LEN`]).
///
/// # Panics
/// If `out` is shorter than [`REJECT_MAX_LEN`].
pub fn write_reject(out: &mut [u8], reject: &Reject) -> usize {
    let reason = truncate(reject.reason, Reject::MAX_REASON_LEN);
    let body_len = REJECT_BODY.len() + reason.len() + 1;
    let mut w = Cursor::new(out);
    w.put(b"HTTP/1.1 ");
    w.decimal(u64::from(reject.status.min(999)));
    w.put(b" ");
    w.put(reject.phrase().as_bytes());
    w.put(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    w.decimal(body_len as u64);
    w.put(b"\r\nConnection: close\r\n");
    if reject.status == 426 {
        w.put(REJECT_426);
    }
    w.put(b"\r\n");
    w.put(REJECT_BODY);
    w.put(reason.as_bytes());
    w.put(b"\n");
    w.written()
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// What Chromium sends to a WebTorrent tracker (with permessage-deflate
    /// offered).
    pub(crate) const CHROMIUM_REQUEST: &[u8] = b"GET /announce HTTP/1.1\r\nHost: tracker.example.org\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\nOrigin: https://webtorrent.io\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

    fn limits() -> HandshakeLimits<'static> {
        HandshakeLimits {
            max_head_len: 4096,
            forwarded_header: Some("X-Forwarded-For"),
        }
    }

    fn status(buf: &[u8]) -> u16 {
        match parse_upgrade(buf, &limits()) {
            Err(HandshakeError::Reject(r)) => r.status,
            other => panic!("expected a reject, got {other:?}"),
        }
    }

    fn replace(from: &str, to: &str) -> Vec<u8> {
        let s = std::str::from_utf8(RFC_REQUEST).unwrap();
        assert!(s.contains(from), "{from}");
        s.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn rfc_example_accept_key() {
        let up = parse_upgrade(RFC_REQUEST, &limits()).unwrap();
        assert_eq!(&up.accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(up.head_len, RFC_REQUEST.len());
        assert_eq!(up.forwarded_for, None);
    }

    #[test]
    fn chromium_request_and_accept_response() {
        let up = parse_upgrade(CHROMIUM_REQUEST, &limits()).unwrap();
        assert_eq!(&up.accept, b"HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
        let mut out = [0u8; ACCEPT_MAX_LEN];
        let n = write_accept(&mut out, &up.accept);
        assert_eq!(n, ACCEPT_MAX_LEN);
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert_eq!(text, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\r\n");
        assert!(!text.contains("Extensions"));
    }

    #[test]
    fn frames_after_head_are_not_part_of_it() {
        let mut buf = CHROMIUM_REQUEST.to_vec();
        buf.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let up = parse_upgrade(&buf, &limits()).unwrap();
        assert_eq!(up.head_len, CHROMIUM_REQUEST.len());
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for n in 0..RFC_REQUEST.len() {
            assert_eq!(
                parse_upgrade(&RFC_REQUEST[..n], &limits()),
                Err(HandshakeError::Incomplete),
                "{n}"
            );
        }
    }

    #[test]
    fn head_too_long() {
        let small = HandshakeLimits {
            max_head_len: 100,
            forwarded_header: None,
        };
        let r = parse_upgrade(&RFC_REQUEST[..100], &small);
        assert!(matches!(
            r,
            Err(HandshakeError::Reject(Reject { status: 431, .. }))
        ));
        let r = parse_upgrade(RFC_REQUEST, &small);
        assert!(matches!(
            r,
            Err(HandshakeError::Reject(Reject { status: 431, .. }))
        ));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(&many), 431);
    }

    #[test]
    fn header_variants_accepted() {
        for (from, to) in [
            ("Connection: Upgrade", "connection: keep-alive, Upgrade"),
            ("Connection: Upgrade", "CONNECTION:upgrade"),
            ("Upgrade: websocket", "upgrade: WebSocket"),
            ("Upgrade: websocket", "Upgrade: h2c, websocket"),
            ("GET /chat", "GET /"),
            ("GET /chat", "GET /announce?x=1"),
            ("Sec-WebSocket-Version: 13", "sec-websocket-version:   13  "),
            ("Origin: http://example.com", "Content-Length: 0"),
        ] {
            let req = replace(from, to);
            let up = parse_upgrade(&req, &limits()).unwrap_or_else(|e| panic!("{to}: {e:?}"));
            assert_eq!(&up.accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        }
    }

    #[test]
    fn refusals() {
        for (from, to, code) in [
            ("GET /chat", "POST /chat", 405),
            ("HTTP/1.1", "HTTP/1.0", 400),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426),
            ("Sec-WebSocket-Version: 13\r\n", "", 426),
            (
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13",
                426,
            ),
            ("Upgrade: websocket\r\n", "", 426),
            ("Upgrade: websocket", "Upgrade: h2c", 426),
            ("Connection: Upgrade", "Connection: keep-alive", 426),
            ("Host: server.example.com\r\n", "", 400),
            ("Host: server.example.com", "Host: a\r\nHost: b", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=!", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZSE=", 400),
            ("dGhlIHNhbXBsZSBub25jZQ==", "", 400),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                400,
            ),
            ("Origin: http://example.com", "Transfer-Encoding: chunked", 400),
            ("Origin: http://example.com", "Content-Length: 5", 400),
            (
                "Origin: http://example.com",
                "Content-Length: 0\r\nContent-Length: 0",
                400,
            ),
            ("Upgrade: websocket", "Upgrade : websocket", 400),
            ("Host: server.example.com\r\n", "Host: server.example.com\n x\r\n", 400),
        ] {
            let req = replace(from, to);
            assert_eq!(status(&req), code, "{to}");
        }
        assert_eq!(status(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400);
    }

    #[test]
    fn forwarded_for_last_line() {
        let req = replace(
            "Origin: http://example.com",
            "X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3 ",
        );
        let up = parse_upgrade(&req, &limits()).unwrap();
        assert_eq!(up.forwarded_for, Some(&b"2.2.2.2, 3.3.3.3"[..]));
        let none = HandshakeLimits {
            forwarded_header: None,
            ..limits()
        };
        assert_eq!(parse_upgrade(&req, &none).unwrap().forwarded_for, None);
    }

    #[test]
    fn reject_responses() {
        let mut out = [0u8; REJECT_MAX_LEN];
        let n = write_reject(
            &mut out,
            &Reject::new(426, "unsupported Sec-WebSocket-Version"),
        );
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("\r\nUpgrade: websocket\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.contains("WebTorrent tracker"));

        let long = "x".repeat(500).leak();
        let n = write_reject(&mut out, &Reject::new(400, long));
        assert!(n <= REJECT_MAX_LEN);
        let text = std::str::from_utf8(&out[..n]).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(!text.contains("Sec-WebSocket-Version"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    }

    #[test]
    fn never_panics_on_short_inputs() {
        let mut out = [0u8; REJECT_MAX_LEN];
        for n in 0..=CHROMIUM_REQUEST.len() {
            for flip in [0u8, 0x20, 0x80] {
                let mut b = CHROMIUM_REQUEST[..n].to_vec();
                if let Some(last) = b.last_mut() {
                    *last ^= flip;
                }
                if let Err(HandshakeError::Reject(r)) = parse_upgrade(&b, &limits()) {
                    assert!(write_reject(&mut out, &r) <= REJECT_MAX_LEN);
                }
            }
        }
    }
}
