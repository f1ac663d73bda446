//! The PROXY protocol header (HAProxy's `doc/proxy-protocol.txt`), v1 text
//! and v2 binary, parsed from the first bytes of a connection. Sans-IO:
//! feed it what arrived so far; `Incomplete` means wait for more (the
//! runtime carries the bytes), `Parsed` says how many bytes the header
//! took. Never panics, looks at no more than [`MAX_V1_LEN`] /
//! [`MAX_V2_LEN`] bytes.
//!
//! Only accept the header from trusted proxies: whoever can send it picks
//! the client address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v1 line is at most 107 bytes, CRLF included (spec section 2.1).
pub const MAX_V1_LEN: usize = 107;

/// The longest v2 header accepted (16-byte fixed part + addresses + TLVs);
/// longer ones are `Invalid`. The spec allows 16 + 65535; proxies send a
/// few hundred bytes at most.
pub const MAX_V2_LEN: usize = 16 + 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// What the first bytes of a connection say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A prefix of a header: wait for more bytes.
    Incomplete,
    /// Not a PROXY header, or a broken one: abort the connection.
    Invalid(ProxyError),
    /// A whole header.
    Parsed {
        /// The addresses it carries.
        addrs: ProxyAddrs,
        /// Bytes it took: the connection's own data starts after them.
        header_len: usize,
    },
}

/// The addresses a PROXY header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyAddrs {
    /// A proxied TCP connection: the client's and the address it connected to.
    Proxied {
        /// The client.
        src: SocketAddr,
        /// The address the client connected to (at the proxy).
        dst: SocketAddr,
    },
    /// v2 `LOCAL` (the proxy's own connection, e.g. a health check): use
    /// the socket's addresses.
    Local,
    /// v1 `UNKNOWN`, or v2 `PROXY` with a family or transport we do not
    /// take (AF_UNSPEC, AF_UNIX, DGRAM): use the socket's addresses.
    Unknown,
}

/// Why a header is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The bytes start like neither a v1 nor a v2 header.
    #[error("no PROXY protocol header")]
    NotProxy,
    /// v1: no CRLF within 107 bytes.
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    /// v1: the line does not match `PROXY TCP4|TCP6|UNKNOWN ...`.
    #[error("malformed PROXY v1 line: {0}")]
    V1Malformed(&'static str),
    /// v2: version nibble is not 2, or the command is neither LOCAL nor PROXY.
    #[error("unsupported PROXY v2 version or command")]
    V2VersionCommand,
    /// v2: address family or transport byte not allowed by the spec.
    #[error("invalid PROXY v2 family/transport")]
    V2Family,
    /// v2: the length is shorter than the addresses need, or over `MAX_V2_LEN`.
    #[error("invalid PROXY v2 length")]
    V2Length,
}

/// Parse a PROXY header at the start of `bytes`.
pub fn parse_proxy_header(bytes: &[u8]) -> ProxyHeader {
    if let Some(first) = bytes.first() {
        if *first == V2_SIGNATURE[0] {
            return parse_v2(bytes);
        }
        if *first == V1_PREFIX[0] {
            return parse_v1(bytes);
        }
        return ProxyHeader::Invalid(ProxyError::NotProxy);
    }
    ProxyHeader::Incomplete
}

fn parse_v1(bytes: &[u8]) -> ProxyHeader {
    let n = bytes.len().min(V1_PREFIX.len());
    if bytes[..n] != V1_PREFIX[..n] {
        return ProxyHeader::Invalid(ProxyError::NotProxy);
    }
    let window = &bytes[..bytes.len().min(MAX_V1_LEN)];
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        if bytes.len() >= MAX_V1_LEN {
            return ProxyHeader::Invalid(ProxyError::V1TooLong);
        }
        // A lone LF (or CR followed by something) never ends the line.
        if window.contains(&b'\n') {
            return ProxyHeader::Invalid(ProxyError::V1Malformed("bare LF"));
        }
        return ProxyHeader::Incomplete;
    };
    let header_len = cr + 2;
    let line = &window[V1_PREFIX.len()..cr];
    match v1_fields(line) {
        Ok(addrs) => ProxyHeader::Parsed { addrs, header_len },
        Err(e) => ProxyHeader::Invalid(e),
    }
}

fn v1_fields(line: &[u8]) -> Result<ProxyAddrs, ProxyError> {
    let malformed = ProxyError::V1Malformed;
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        // "the receiver must ignore anything presented before the CRLF"
        return Ok(ProxyAddrs::Unknown);
    }
    let text = std::str::from_utf8(line).map_err(|_| malformed("not ASCII"))?;
    let mut fields = text.split(' ');
    let family = fields.next().unwrap_or("");
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(malformed("expected 4 fields after the protocol"));
    };
    let (src, dst): (IpAddr, IpAddr) = match family {
        "TCP4" => v1_addrs::<Ipv4Addr>(src, dst, ["bad IPv4 source", "bad IPv4 destination"])?,
        "TCP6" => v1_addrs::<Ipv6Addr>(src, dst, ["bad IPv6 source", "bad IPv6 destination"])?,
        _ => return Err(malformed("protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let sport = v1_port(sport).ok_or(malformed("bad source port"))?;
    let dport = v1_port(dport).ok_or(malformed("bad destination port"))?;
    Ok(ProxyAddrs::Proxied {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
    })
}

/// The source and destination addresses of a v1 line, both of family `A`;
/// `errors` say which one was bad.
fn v1_addrs<A: std::str::FromStr + Into<IpAddr>>(
    src: &str,
    dst: &str,
    errors: [&'static str; 2],
) -> Result<(IpAddr, IpAddr), ProxyError> {
    let parse = |s: &str, error| {
        s.parse::<A>()
            .map(Into::into)
            .map_err(|_| ProxyError::V1Malformed(error))
    };
    Ok((parse(src, errors[0])?, parse(dst, errors[1])?))
}

/// A decimal port 0..=65535 without leading zeros.
fn v1_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn parse_v2(bytes: &[u8]) -> ProxyHeader {
    let n = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..n] != V2_SIGNATURE[..n] {
        return ProxyHeader::Invalid(ProxyError::NotProxy);
    }
    if bytes.len() < 16 {
        // Check what has arrived of the fixed part before waiting.
        if let Some(&ver_cmd) = bytes.get(12) {
            if ver_cmd >> 4 != 2 || ver_cmd & 0x0F > 1 {
                return ProxyHeader::Invalid(ProxyError::V2VersionCommand);
            }
        }
        return ProxyHeader::Incomplete;
    }
    let ver_cmd = bytes[12];
    let fam = bytes[13];
    let len = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    if ver_cmd >> 4 != 2 {
        return ProxyHeader::Invalid(ProxyError::V2VersionCommand);
    }
    let local = match ver_cmd & 0x0F {
        0 => true,
        1 => false,
        _ => return ProxyHeader::Invalid(ProxyError::V2VersionCommand),
    };
    let header_len = 16 + len;
    if header_len > MAX_V2_LEN {
        return ProxyHeader::Invalid(ProxyError::V2Length);
    }
    // family: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX; transport: 0 UNSPEC, 1 STREAM, 2 DGRAM
    let (family, transport) = (fam >> 4, fam & 0x0F);
    if family > 3 || transport > 2 {
        return ProxyHeader::Invalid(ProxyError::V2Family);
    }
    let addr_len = match family {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    // The length is checked before waiting for the body: a too-short one
    // is wrong however many bytes follow.
    if !local && transport != 0 && len < addr_len {
        return ProxyHeader::Invalid(ProxyError::V2Length);
    }
    if bytes.len() < header_len {
        return ProxyHeader::Incomplete;
    }
    if local {
        // "discard the protocol block including the family"
        return ProxyHeader::Parsed {
            addrs: ProxyAddrs::Local,
            header_len,
        };
    }
    let body = &bytes[16..header_len];
    let addrs = match (family, transport) {
        (1, 1) => {
            let ip = |i: usize| IpAddr::from([body[i], body[i + 1], body[i + 2], body[i + 3]]);
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            ProxyAddrs::Proxied {
                src: SocketAddr::new(ip(0), port(8)),
                dst: SocketAddr::new(ip(4), port(10)),
            }
        }
        (2, 1) => {
            let ip = |i: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[i..i + 16]);
                IpAddr::from(a)
            };
            let port = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
            ProxyAddrs::Proxied {
                src: SocketAddr::new(ip(0), port(32)),
                dst: SocketAddr::new(ip(16), port(34)),
            }
        }
        // UNSPEC, UNIX, DGRAM: fall back to the socket's addresses (the
        // spec's "UNSPEC mode"). TLVs after the addresses are skipped.
        _ => ProxyAddrs::Unknown,
    };
    ProxyHeader::Parsed { addrs, header_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxied(src: &str, dst: &str, header_len: usize) -> ProxyHeader {
        ProxyHeader::Parsed {
            addrs: ProxyAddrs::Proxied {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
            },
            header_len,
        }
    }

    #[test]
    fn v1_spec_example() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse_proxy_header(line),
            proxied("192.168.0.1:56324", "192.168.0.11:443", 47)
        );
    }

    #[test]
    fn v1_tcp6_and_max_lengths() {
        let l = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
        assert_eq!(l.len(), 56);
        assert_eq!(
            parse_proxy_header(l),
            proxied("255.255.255.255:65535", "255.255.255.255:65535", 56)
        );
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let l = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
        assert_eq!(l.len(), 104);
        let want = format!("[{full}]:65535");
        assert_eq!(parse_proxy_header(l.as_bytes()), proxied(&want, &want, 104));
        let l = b"PROXY TCP6 2001:db8::1 ::1 1 0\r\n";
        assert_eq!(
            parse_proxy_header(l),
            proxied("[2001:db8::1]:1", "[::1]:0", l.len())
        );
        // The 107-byte worst case.
        let l = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
        assert_eq!(l.len(), 107);
        assert_eq!(
            parse_proxy_header(l.as_bytes()),
            ProxyHeader::Parsed {
                addrs: ProxyAddrs::Unknown,
                header_len: 107
            }
        );
        assert_eq!(
            parse_proxy_header(b"PROXY UNKNOWN\r\n"),
            ProxyHeader::Parsed {
                addrs: ProxyAddrs::Unknown,
                header_len: 15
            }
        );
    }

    #[test]
    fn v1_incomplete_then_whole() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
        for n in 0..line.len() {
            assert_eq!(
                parse_proxy_header(&line[..n]),
                ProxyHeader::Incomplete,
                "prefix {n}"
            );
        }
    }

    #[test]
    fn v1_invalid() {
        let bad: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n",
            b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY \r\n",
        ];
        for b in bad {
            assert!(
                matches!(parse_proxy_header(b), ProxyHeader::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(
            parse_proxy_header(&long),
            ProxyHeader::Invalid(ProxyError::V1TooLong)
        );
    }

    fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = V2_SIGNATURE.to_vec();
        v.push(ver_cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn v2_tcp4_with_tlvs() {
        let mut body = vec![192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB];
        // PP2_TYPE_ALPN "h2" and a PP2_TYPE_NOOP: skipped.
        body.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x01, 0x00]);
        let mut h = v2(0x21, 0x11, &body);
        let len = h.len();
        h.extend_from_slice(b"GET /");
        assert_eq!(
            parse_proxy_header(&h),
            proxied("192.168.0.1:56324", "192.168.0.11:443", len)
        );
        for n in 0..len {
            assert_eq!(
                parse_proxy_header(&h[..n]),
                ProxyHeader::Incomplete,
                "prefix {n}"
            );
        }
    }

    #[test]
    fn v2_tcp6_local_unspec() {
        let mut body = Vec::new();
        body.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        body.extend_from_slice(&[0x30, 0x39, 0x00, 0x50]);
        let h = v2(0x21, 0x21, &body);
        assert_eq!(
            parse_proxy_header(&h),
            proxied("[2001:db8::1]:12345", "[2001:db8::2]:80", 52)
        );
        // LOCAL: addresses ignored, whatever the family, length honoured.
        let h = v2(0x20, 0x00, &[]);
        assert_eq!(
            parse_proxy_header(&h),
            ProxyHeader::Parsed {
                addrs: ProxyAddrs::Local,
                header_len: 16
            }
        );
        let h = v2(0x20, 0x11, &[1, 2, 3]);
        assert_eq!(
            parse_proxy_header(&h),
            ProxyHeader::Parsed {
                addrs: ProxyAddrs::Local,
                header_len: 19
            }
        );
        // PROXY over UNSPEC or UDP or UNIX: use the socket's addresses.
        for fam in [0x00, 0x12, 0x22, 0x31, 0x32] {
            let body = vec![0u8; 216];
            assert_eq!(
                parse_proxy_header(&v2(0x21, fam, &body)),
                ProxyHeader::Parsed {
                    addrs: ProxyAddrs::Unknown,
                    header_len: 232
                },
                "fam {fam:#x}"
            );
        }
    }

    #[test]
    fn v2_invalid() {
        let body = [0u8; 12];
        let e = |h: &[u8]| match parse_proxy_header(h) {
            ProxyHeader::Invalid(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e(&v2(0x11, 0x11, &body)), ProxyError::V2VersionCommand);
        assert_eq!(e(&v2(0x22, 0x11, &body)), ProxyError::V2VersionCommand);
        assert_eq!(e(&v2(0x21, 0x41, &body)), ProxyError::V2Family);
        assert_eq!(e(&v2(0x21, 0x13, &body)), ProxyError::V2Family);
        assert_eq!(e(&v2(0x21, 0x11, &body[..11])), ProxyError::V2Length);
        assert_eq!(e(&v2(0x21, 0x21, &body)), ProxyError::V2Length);
        let mut huge = v2(0x21, 0x11, &body);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(e(&huge), ProxyError::V2Length);
        // Wrong signature byte.
        let mut h = v2(0x21, 0x11, &body);
        h[6] = 0;
        assert_eq!(e(&h), ProxyError::NotProxy);
        // Bad version is seen before the length arrives.
        assert_eq!(
            e(&v2(0x31, 0x11, &body)[..13]),
            ProxyError::V2VersionCommand
        );
    }

    /// Every length of every kind of input, and random bytes: no panic.
    #[test]
    fn every_prefix_and_noise_never_panics() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".to_vec(),
            b"PROXY TCP6 2001:db8::1 ::1 1 0\r\n".to_vec(),
            v2(0x21, 0x11, &[0; 40]),
            v2(0x21, 0x21, &[0; 36]),
            v2(0x21, 0x31, &[0; 216]),
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..300 {
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.push(x as u8);
            }
            // Half of them start like a header.
            if len % 2 == 0 && len >= 13 {
                v[..12].copy_from_slice(&V2_SIGNATURE);
                v[12] = 0x21;
            }
            inputs.push(v);
        }
        for input in &inputs {
            for n in 0..=input.len() {
                let r = parse_proxy_header(&input[..n]);
                if let ProxyHeader::Parsed { header_len, .. } = r {
                    assert!(header_len <= n);
                }
            }
        }
    }
}
