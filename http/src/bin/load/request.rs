//! Request bytes. An announce is one preformatted template per thread in
//! which only the changing fields (info hash, peer id, port, left, key) are
//! patched in place, all of them fixed width; a scrape is a fixed prefix,
//! 1 to N `info_hash=` parameters and a fixed suffix written into one
//! buffer sized at start-up. Nothing here allocates after [`Templates::new`].

use riptide_common::loadgen::Peer;

/// `%XX` for each of 20 bytes.
const ENCODED_20: usize = 60;
const HEX: &[u8; 16] = b"0123456789ABCDEF";
const SCRAPE_PREFIX: &[u8] = b"GET /scrape?";
const SCRAPE_PARAM: &[u8] = b"info_hash=";

/// Write `bytes` percent-encoded, every byte as `%XX`, into `out`.
pub(crate) fn percent_encode_20(bytes: &[u8; 20], out: &mut [u8]) {
    for (b, o) in bytes.iter().zip(out.chunks_exact_mut(3)) {
        o[0] = b'%';
        o[1] = HEX[usize::from(b >> 4)];
        o[2] = HEX[usize::from(b & 15)];
    }
}

/// Write `v` as exactly `out.len()` decimal digits, zero-padded (trackers
/// read `00080` as 80). `v` must fit.
fn write_digits(mut v: u64, out: &mut [u8]) {
    for o in out.iter_mut().rev() {
        *o = b'0' + (v % 10) as u8;
        v /= 10;
    }
    debug_assert_eq!(v, 0, "number wider than its field");
}

/// One thread's request templates.
pub(crate) struct Templates {
    announce: Vec<u8>,
    at_info_hash: usize,
    at_peer_id: usize,
    at_port: usize,
    at_left: usize,
    at_key: usize,
    /// Prefix, room for the hashes, then the suffix, written per request.
    scrape: Vec<u8>,
    scrape_suffix: Vec<u8>,
}

/// `left` of a leecher; its field is as wide as this.
const LEECHER_LEFT: u64 = 1_048_576;
const LEFT_WIDTH: usize = 7;

impl Templates {
    /// `close`: every request says `Connection: close`.
    pub(crate) fn new(host: &str, close: bool, numwant: u32, max_scrape_hashes: usize) -> Self {
        let connection = if close { "Connection: close\r\n" } else { "" };
        let suffix = format!(" HTTP/1.1\r\nHost: {host}\r\n{connection}\r\n");
        let mut announce = Vec::new();
        let field = |a: &mut Vec<u8>, name: &str, width: usize| {
            a.extend_from_slice(name.as_bytes());
            let at = a.len();
            a.resize(at + width, b'0');
            at
        };
        announce.extend_from_slice(b"GET /announce?");
        let at_info_hash = field(&mut announce, "info_hash=", ENCODED_20);
        let at_peer_id = field(&mut announce, "&peer_id=", ENCODED_20);
        let at_port = field(&mut announce, "&port=", 5);
        announce.extend_from_slice(b"&uploaded=0&downloaded=0");
        let at_left = field(&mut announce, "&left=", LEFT_WIDTH);
        announce.extend_from_slice(format!("&numwant={numwant}&compact=1").as_bytes());
        let at_key = field(&mut announce, "&key=", 8);
        announce.extend_from_slice(suffix.as_bytes());
        let per_hash = SCRAPE_PARAM.len() + ENCODED_20 + 1;
        let mut scrape = vec![0; SCRAPE_PREFIX.len() + max_scrape_hashes * per_hash + suffix.len()];
        scrape[..SCRAPE_PREFIX.len()].copy_from_slice(SCRAPE_PREFIX);
        Self {
            announce,
            at_info_hash,
            at_peer_id,
            at_port,
            at_left,
            at_key,
            scrape,
            scrape_suffix: suffix.into_bytes(),
        }
    }

    /// Longest request either writer returns.
    pub(crate) fn max_len(&self) -> usize {
        self.announce.len().max(self.scrape.len())
    }

    /// The announce of `peer` to `info_hash`, patched in place.
    pub(crate) fn announce(&mut self, info_hash: &[u8; 20], peer: &Peer) -> &[u8] {
        let a = &mut self.announce;
        percent_encode_20(info_hash, &mut a[self.at_info_hash..]);
        percent_encode_20(&peer.id.0, &mut a[self.at_peer_id..]);
        write_digits(u64::from(peer.port), &mut a[self.at_port..self.at_port + 5]);
        let left = if peer.seeder { 0 } else { LEECHER_LEFT };
        write_digits(left, &mut a[self.at_left..self.at_left + LEFT_WIDTH]);
        // The key only has to be stable per peer: its port, in hex.
        let key = &mut a[self.at_key..self.at_key + 8];
        let v = u32::from(peer.port);
        for (i, k) in key.iter_mut().enumerate() {
            *k = HEX[((v >> (28 - 4 * i)) & 15) as usize];
        }
        &self.announce
    }

    /// A scrape of `hashes` (at least one, at most `max_scrape_hashes`).
    pub(crate) fn scrape<'h>(&mut self, hashes: impl Iterator<Item = &'h [u8; 20]>) -> &[u8] {
        let s = &mut self.scrape;
        let mut at = SCRAPE_PREFIX.len();
        for (i, h) in hashes.enumerate() {
            if i > 0 {
                s[at] = b'&';
                at += 1;
            }
            s[at..at + SCRAPE_PARAM.len()].copy_from_slice(SCRAPE_PARAM);
            at += SCRAPE_PARAM.len();
            percent_encode_20(h, &mut s[at..at + ENCODED_20]);
            at += ENCODED_20;
        }
        let end = at + self.scrape_suffix.len();
        s[at..end].copy_from_slice(&self.scrape_suffix);
        &self.scrape[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_http::protocol::{parse_request, Connection, ParseConfig, Target};

    fn parse_cfg() -> ParseConfig<'static> {
        ParseConfig::default()
    }

    #[test]
    fn announce_template_parses_as_the_peer_it_was_patched_for() {
        let mut t = Templates::new("127.0.0.1:6969", false, 50, 4);
        let mut id = [0_u8; 20];
        id[..8].copy_from_slice(b"-RH0001-");
        id[19] = 0xFF;
        let hash = [0xAB; 20];
        for (port, seeder) in [(1_u16, true), (65_535, false), (10_042, false)] {
            let peer = Peer {
                id: riptide_common::PeerId(id),
                port,
                seeder,
            };
            let bytes = t.announce(&hash, &peer).to_vec();
            let req = parse_request(&bytes, &parse_cfg()).unwrap();
            assert_eq!(req.head_len, bytes.len());
            assert_eq!(req.connection, Connection::KeepAlive);
            let Target::Announce(a) = req.target else {
                panic!("not an announce: {}", String::from_utf8_lossy(&bytes))
            };
            assert_eq!(a.info_hash.0, hash);
            assert_eq!(a.peer_id.0, id);
            assert_eq!(a.port, port);
            assert_eq!(a.seeder(), seeder);
            assert_eq!(a.numwant, Some(50));
            assert!(a.compact);
            assert!(a.key.is_some());
        }
    }

    #[test]
    fn scrape_writes_one_to_n_hashes_and_close() {
        let mut t = Templates::new("[::1]:6969", true, 50, 3);
        let hashes = [[1_u8; 20], [0x25; 20], [0xFE; 20]];
        for n in 1..=3 {
            let bytes = t.scrape(hashes[..n].iter()).to_vec();
            assert!(bytes.len() <= t.max_len());
            let req = parse_request(&bytes, &parse_cfg()).unwrap();
            assert_eq!(req.head_len, bytes.len());
            assert_eq!(req.connection, Connection::Close);
            let Target::Scrape(s) = req.target else {
                panic!("not a scrape: {}", String::from_utf8_lossy(&bytes))
            };
            let got: Vec<[u8; 20]> = s.info_hashes().map(|h| h.0).collect();
            assert_eq!(got, hashes[..n]);
        }
    }

    #[test]
    fn digits_are_fixed_width() {
        let mut out = [0_u8; 5];
        write_digits(80, &mut out);
        assert_eq!(&out, b"00080");
        write_digits(65_535, &mut out);
        assert_eq!(&out, b"65535");
    }
}
