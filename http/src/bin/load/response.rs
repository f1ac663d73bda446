//! Response checking, no I/O: [`parse`] says whether the bytes received so
//! far hold one whole HTTP response (status line, headers, exactly
//! `Content-Length` body bytes) and, once they do, whether it is an HTTP
//! 200 whose body is one well-formed bencoded dictionary, and what kind of
//! tracker answer that dictionary is. No allocation: httparse fills a
//! fixed header array and the bencode walk keeps a depth counter.

/// Most response headers read.
const MAX_HEADERS: usize = 24;
/// Deepest bencode nesting accepted (a tracker answer needs 4).
const MAX_DEPTH: u32 = 16;

/// A complete response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Bytes of head and body.
    pub(crate) len: usize,
    /// The server closes after it (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`).
    pub(crate) close: bool,
    pub(crate) verdict: Verdict,
}

/// What the response was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// HTTP 200, a bencoded dictionary without `failure reason`; `peers`
    /// counts compact IPv4 and IPv6 peers (0 for a scrape).
    Tracker { peers: u32 },
    /// HTTP 200 with a bencoded `failure reason`.
    Failure,
    /// Another status.
    HttpStatus(u16),
    /// HTTP 200 whose body is not one bencoded dictionary.
    NotBencode,
}

/// The outcome of [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Read more.
    Incomplete,
    Done(Answer),
    /// Not HTTP as riptide-http-load reads it (no `Content-Length` is one
    /// of the reasons).
    Invalid(&'static str),
}

/// Parse the response at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(_) => return Parsed::Invalid("bad response head"),
    };
    let mut content_length = None;
    let mut connection_close = res.version == Some(0);
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            else {
                return Parsed::Invalid("bad Content-Length");
            };
            if content_length.replace(n).is_some_and(|m| m != n) {
                return Parsed::Invalid("two Content-Lengths");
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                connection_close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                connection_close = false;
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Invalid("Transfer-Encoding");
        }
    }
    let Some(body_len) = content_length else {
        return Parsed::Invalid("no Content-Length");
    };
    let Some(len) = head_len.checked_add(body_len) else {
        return Parsed::Invalid("bad Content-Length");
    };
    if buf.len() < len {
        return Parsed::Incomplete;
    }
    let code = res.code.unwrap_or(0);
    let verdict = if code == 200 {
        // aquatic_http counts a CRLF after the dictionary in Content-Length;
        // clients ignore it, so does this check.
        let body = &buf[head_len..len];
        body_verdict(body.strip_suffix(b"\r\n").unwrap_or(body))
    } else {
        Verdict::HttpStatus(code)
    };
    Parsed::Done(Answer {
        len,
        close: connection_close,
        verdict,
    })
}

/// Check that `body` is exactly one bencoded dictionary; note its
/// `failure reason` and compact peers.
fn body_verdict(body: &[u8]) -> Verdict {
    if body.first() != Some(&b'd') {
        return Verdict::NotBencode;
    }
    let mut pos = 1;
    let mut peers = 0_u32;
    let mut failure = false;
    loop {
        match body.get(pos) {
            Some(b'e') => {
                pos += 1;
                break;
            }
            Some(_) => {}
            None => return Verdict::NotBencode,
        }
        let Some((key, after_key)) = string(body, pos) else {
            return Verdict::NotBencode;
        };
        let value_at = after_key;
        let Some(end) = skip(body, value_at, 1) else {
            return Verdict::NotBencode;
        };
        match key {
            b"failure reason" => failure = true,
            b"peers" | b"peers6" => {
                let size = if key == b"peers" { 6 } else { 18 };
                if let Some((v, _)) = string(body, value_at) {
                    peers += (v.len() / size) as u32;
                }
            }
            _ => {}
        }
        pos = end;
    }
    if pos != body.len() {
        Verdict::NotBencode
    } else if failure {
        Verdict::Failure
    } else {
        Verdict::Tracker { peers }
    }
}

/// A bencoded byte string at `pos`: its bytes and where it ends.
fn string(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let colon = pos + buf.get(pos..)?.iter().position(|&b| b == b':')?;
    let digits = &buf[pos..colon];
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0_usize, |a, &d| a * 10 + usize::from(d - b'0'));
    let end = colon + 1 + n;
    Some((buf.get(colon + 1..end)?, end))
}

/// Where the bencoded value at `pos` ends.
fn skip(buf: &[u8], pos: usize, depth: u32) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    match *buf.get(pos)? {
        b'i' => {
            let end = pos + buf[pos..].iter().position(|&b| b == b'e')?;
            let digits = &buf[pos + 1..end];
            let digits = digits.strip_prefix(b"-").unwrap_or(digits);
            (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit)).then_some(end + 1)
        }
        b'l' | b'd' => {
            let dict = buf[pos] == b'd';
            let mut p = pos + 1;
            while *buf.get(p)? != b'e' {
                if dict {
                    p = string(buf, p)?.1;
                }
                p = skip(buf, p, depth + 1)?;
            }
            Some(p + 1)
        }
        b'0'..=b'9' => string(buf, pos).map(|(_, end)| end),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &str, extra: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn announce_answer_counts_peers_and_every_prefix_is_incomplete() {
        let mut body = b"d8:completei1e10:incompletei2e8:intervali1800e5:peers12:".to_vec();
        body.extend_from_slice(&[7; 12]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&[9; 18]);
        body.push(b'e');
        let r = response("200 OK", "", &body);
        for n in 0..r.len() {
            assert_eq!(parse(&r[..n]), Parsed::Incomplete, "prefix {n}");
        }
        let done = Parsed::Done(Answer {
            len: r.len(),
            close: false,
            verdict: Verdict::Tracker { peers: 3 },
        });
        assert_eq!(parse(&r), done);
        // A pipelined byte after it does not change the answer.
        let mut more = r.clone();
        more.extend_from_slice(b"HTTP/1.1");
        assert_eq!(parse(&more), done);
    }

    #[test]
    fn scrape_failure_close_and_statuses() {
        let scrape =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei0e10:downloadedi0e10:incompletei1eeee";
        let r = response("200 OK", "Connection: close\r\n", scrape);
        assert_eq!(
            parse(&r),
            Parsed::Done(Answer {
                len: r.len(),
                close: true,
                verdict: Verdict::Tracker { peers: 0 }
            })
        );
        let r = response("200 OK", "", b"d14:failure reason4:nopee");
        assert!(matches!(
            parse(&r),
            Parsed::Done(Answer {
                verdict: Verdict::Failure,
                ..
            })
        ));
        let r = response("404 Not Found", "Connection: close\r\n", b"not found");
        assert!(matches!(
            parse(&r),
            Parsed::Done(Answer {
                verdict: Verdict::HttpStatus(404),
                close: true,
                ..
            })
        ));
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nde";
        assert!(matches!(parse(r), Parsed::Done(Answer { close: true, .. })));
    }

    #[test]
    fn bad_bodies_and_heads() {
        for body in [
            &b""[..],
            b"le",
            b"d",
            b"d3:abc",
            b"d3:abci1e",
            b"d3:abci1ee trailing",
            b"d3:abci1x",
            b"d3:abc99:xe",
            b"d3:abcie",
            b"d1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ai1eeeeeeeeeeeeeeeeee",
        ] {
            let r = response("200 OK", "", body);
            assert!(
                matches!(
                    parse(&r),
                    Parsed::Done(Answer {
                        verdict: Verdict::NotBencode,
                        ..
                    })
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\n\r\nde"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse(b"HTTX/1.1 200 OK\r\n\r\n"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Parsed::Invalid(_)
        ));
        // Every length of garbage: no panic.
        let junk: Vec<u8> = (0..300_u32).map(|i| (i * 37 % 251) as u8).collect();
        for n in 0..junk.len() {
            let _ = parse(&junk[..n]);
            let _ = body_verdict(&junk[..n]);
        }
    }
}
