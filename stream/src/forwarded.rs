//! Which peers are trusted proxies, and the client address behind them.
//!
//! The client address is the socket's peer unless that peer is a trusted
//! proxy: then it is the rightmost `X-Forwarded-For` entry that is not a
//! trusted proxy (every proxy appends the address it received from, so
//! entries left of the first untrusted one may be forged by the client).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Most `X-Forwarded-For` entries looked at, from the right.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// An address block: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("{0:?}: not an IP address or CIDR block (like \"10.0.0.0/8\" or \"::1/128\")")]
    Address(String),
    /// The prefix is not a number within 0..=32 (IPv4) or 0..=128 (IPv6).
    #[error("{0:?}: prefix length must be 0..=32 for IPv4, 0..=128 for IPv6")]
    Prefix(String),
    /// Bits set after the prefix (a typo like "10.0.0.1/8").
    #[error("{value:?}: host bits set after the prefix; did you mean {suggest}?")]
    HostBits {
        /// What was given.
        value: String,
        /// The block with the host bits cleared.
        suggest: String,
    },
}

impl IpCidr {
    /// A block from an address and prefix length (host bits are cleared).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpCidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then(|| normalize(mask(addr, prefix), prefix))
    }

    /// Whether `ip` lies in this block (an IPv4-mapped IPv6 address counts
    /// as the IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl std::fmt::Display for IpCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpCidr {
    type Err = CidrError;

    /// "10.0.0.0/8", "::1/128", or a bare address (a single host).
    fn from_str(s: &str) -> Result<IpCidr, CidrError> {
        let t = s.trim();
        let (a, p) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| CidrError::Prefix(s.to_owned()))?,
        };
        let masked = mask(addr, prefix);
        if masked != addr {
            return Err(CidrError::HostBits {
                value: s.to_owned(),
                suggest: format!("{masked}/{prefix}"),
            });
        }
        Ok(normalize(addr, prefix))
    }
}

/// An IPv4-mapped block (`::ffff:a.b.c.d/96` or longer) becomes the IPv4
/// block, since addresses are compared in canonical form.
fn normalize(addr: IpAddr, prefix: u8) -> IpCidr {
    match canonical(addr) {
        IpAddr::V4(v4) if addr.is_ipv6() && prefix >= 96 => IpCidr {
            addr: IpAddr::V4(v4),
            prefix: prefix - 96,
        },
        _ => IpCidr { addr, prefix },
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// The proxies whose word about the client address is taken: a list of
/// CIDR blocks (from the config), empty = trust nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<IpCidr>,
}

impl TrustedProxies {
    /// Trust nobody.
    pub fn none() -> TrustedProxies {
        TrustedProxies::default()
    }

    /// Parse each string as a CIDR block or a single address; the error
    /// names the first bad one.
    pub fn parse<S: AsRef<str>>(blocks: &[S]) -> Result<TrustedProxies, CidrError> {
        let blocks = blocks
            .iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<IpCidr>, _>>()?;
        Ok(TrustedProxies { blocks })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    /// No proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The blocks.
    pub fn blocks(&self) -> &[IpCidr] {
        &self.blocks
    }
}

/// The client address for a request from `peer` carrying the
/// `X-Forwarded-For` value `header` (the comma-separated list; join
/// several such headers with "," in order).
///
/// - `peer` is not a trusted proxy: `peer` (the header is the client's
///   own claim).
/// - Otherwise the entries are walked from the right, skipping trusted
///   proxies; the first untrusted one is the client.
/// - An entry that is not an address (garbage, "unknown", an obfuscated
///   identifier) ends the walk: the last address read (a trusted proxy)
///   is returned, as nothing to its left can be believed.
/// - All entries trusted: the leftmost one. An empty header: `peer`.
///
/// Entries may carry spaces around them and a port: `1.2.3.4:5678`,
/// `[2001:db8::1]:443`, `[2001:db8::1]`, bare `2001:db8::1`. At most
/// [`MAX_FORWARDED_HOPS`] entries are looked at.
pub fn client_from_forwarded(peer: IpAddr, header: &[u8], trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut last = peer;
    for entry in header.rsplit(|&b| b == b',').take(MAX_FORWARDED_HOPS) {
        let entry = entry.trim_ascii();
        if entry.is_empty() {
            continue;
        }
        let Some(ip) = parse_entry(entry) else {
            return last;
        };
        if !trusted.contains(ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// One `X-Forwarded-For` entry: an address, maybe with a port.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(entry).ok()?;
    if let Some(rest) = s.strip_prefix('[') {
        // [v6] or [v6]:port
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return ip.parse::<Ipv6Addr>().ok().map(|a| canonical(a.into()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // v4:port (a bare v6 has several colons and parsed above)
    let (ip, port) = s.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8", "::1/128", "192.168.1.7", "fd00::/8"]).unwrap()
    }

    #[test]
    fn cidr_parse_and_contains() {
        let t = trusted();
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12:3456::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        // IPv4-mapped IPv6 counts as IPv4.
        assert!(t.contains(ip("::ffff:10.0.0.1")));
        let all4: IpCidr = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains(ip("1.2.3.4")));
        assert!(!all4.contains(ip("::2")));
        let all6: IpCidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
        assert!(!all6.contains(ip("1.2.3.4")));
        assert_eq!(
            "10.0.0.0/8".parse::<IpCidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        let mapped: IpCidr = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(mapped.contains(ip("10.9.9.9")));
        assert!(!mapped.contains(ip("11.0.0.0")));
    }

    #[test]
    fn cidr_errors_name_the_value() {
        for (s, want) in [
            ("10.0.0.0/33", "prefix length"),
            ("::/129", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/x", "prefix length"),
            ("10.0.0/8", "not an IP address"),
            ("", "not an IP address"),
            ("example.com", "not an IP address"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
        ] {
            let e = s.parse::<IpCidr>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.contains(&format!("{s:?}")), "{s}: {e}");
        }
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "nope"]).is_err());
    }

    #[test]
    fn untrusted_peer_wins() {
        let t = trusted();
        assert_eq!(
            client_from_forwarded(ip("8.8.8.8"), b"1.2.3.4", &t),
            ip("8.8.8.8")
        );
        assert_eq!(
            client_from_forwarded(ip("8.8.8.8"), b"1.2.3.4", &TrustedProxies::none()),
            ip("8.8.8.8")
        );
    }

    #[test]
    fn rightmost_untrusted() {
        let t = trusted();
        let p = ip("10.0.0.1");
        let cases: &[(&[u8], &str)] = &[
            (b"1.2.3.4", "1.2.3.4"),
            (b"  1.2.3.4  ", "1.2.3.4"),
            (b"6.6.6.6, 1.2.3.4", "1.2.3.4"),
            (b"6.6.6.6,1.2.3.4,10.0.0.9", "1.2.3.4"),
            (b"6.6.6.6, 1.2.3.4, 10.0.0.9, ::1", "1.2.3.4"),
            (b"2001:db8::5", "2001:db8::5"),
            (b"[2001:db8::5]:4711, 10.2.2.2", "2001:db8::5"),
            (b"[2001:db8::5]", "2001:db8::5"),
            (b"1.2.3.4:5678", "1.2.3.4"),
            (b"::ffff:1.2.3.4", "1.2.3.4"),
            // Garbage stops the walk at the last address read.
            (b"1.2.3.4, garbage, 10.0.0.9", "10.0.0.9"),
            (b"unknown", "10.0.0.1"),
            (b"1.2.3.4, [::1", "10.0.0.1"),
            (b"1.2.3.4:99999", "10.0.0.1"),
            (b"fe80::1%eth0", "10.0.0.1"),
            // Empty entries are skipped; all trusted: the leftmost.
            (b"1.2.3.4,, ,", "1.2.3.4"),
            (b"", "10.0.0.1"),
            (b"10.0.0.5, 10.0.0.6", "10.0.0.5"),
            (b"\xff\xfe, 1.2.3.4", "1.2.3.4"),
        ];
        for (h, want) in cases {
            assert_eq!(
                client_from_forwarded(p, h, &t),
                ip(want),
                "{:?}",
                String::from_utf8_lossy(h)
            );
        }
    }

    #[test]
    fn hop_limit() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut h = b"1.2.3.4".to_vec();
        for _ in 0..100 {
            h.extend_from_slice(b", 10.0.0.2");
        }
        assert_eq!(
            client_from_forwarded(ip("10.0.0.1"), &h, &t),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn every_length_never_panics() {
        let t = trusted();
        let sample = b"[2001:db8::5]:4711, 10.2.2.2,1.2.3.4:80 ,garbage,,::1";
        for n in 0..=sample.len() {
            let _ = client_from_forwarded(ip("10.0.0.1"), &sample[..n], &t);
        }
    }
}
