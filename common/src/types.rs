//! Protocol newtypes shared by every tracker, and the shard function.

use std::fmt;

/// A torrent's 20-byte info hash (a SHA-1, or a SHA-256 truncated to 20 bytes
/// for BEP 52 v2 swarms).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's self-chosen 20-byte id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", hex::encode(self.0))
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PeerId({})",
            String::from_utf8_lossy(&self.0).escape_debug()
        )
    }
}

/// The first byte of every byte-mesh record says which tracker wrote it, so
/// one process serving several protocols (`riptide`) hands each record to
/// the right one.
pub mod mesh_tag {
    /// riptide-http's records.
    pub const HTTP: u8 = b'h';
    /// riptide-ws's records.
    pub const WS: u8 = b'w';
}

/// The worker that owns the torrent `hash` among `workers` workers.
///
/// The first four bytes of a hash are already uniform, and this exact
/// function is one a classic BPF program on a reuseport group can compute,
/// so the kernel can deliver each announce to its owner.
#[inline]
pub fn shard_of(hash: &InfoHash, workers: usize) -> usize {
    debug_assert!(workers > 0);
    let head = u32::from_be_bytes([hash.0[0], hash.0[1], hash.0[2], hash.0[3]]);
    (head % workers as u32) as usize
}

/// A client implementation named by its peer id (Azureus-style `-XXvvvv-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientName {
    /// Human name, e.g. "qBittorrent"; "other" when the prefix is unknown.
    pub name: &'static str,
    /// Version digits as sent, e.g. `[4, 6, 5, 0]`.
    pub version: [u8; 4],
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.version;
        if d == 0 {
            write!(f, "{} {a}.{b}.{c}", self.name)
        } else {
            write!(f, "{} {a}.{b}.{c}.{d}", self.name)
        }
    }
}

const CLIENTS: &[(&[u8; 2], &str)] = &[
    (b"qB", "qBittorrent"),
    (b"TR", "Transmission"),
    (b"UT", "uTorrent"),
    (b"LT", "libtorrent"),
    (b"lt", "libtorrent (rakshasa)"),
    (b"DE", "Deluge"),
    (b"AZ", "Vuze"),
    (b"BT", "BitTorrent"),
    (b"BI", "BiglyBT"),
    (b"WW", "WebTorrent"),
    (b"WD", "WebTorrent Desktop"),
    (b"KT", "KTorrent"),
    (b"FW", "FrostWire"),
    (b"TL", "Tribler"),
    (b"PI", "PicoTorrent"),
    (b"AG", "Ares"),
    (b"LW", "LimeWire"),
];

impl PeerId {
    /// The client this peer id names, if it follows the Azureus convention.
    pub fn client(&self) -> Option<ClientName> {
        let id = &self.0;
        if id[0] != b'-' || id[7] != b'-' {
            return if id.starts_with(b"A2-") {
                Some(ClientName {
                    name: "aria2",
                    version: [0; 4],
                })
            } else {
                None
            };
        }
        let tag = [id[1], id[2]];
        let name = CLIENTS
            .iter()
            .find(|(t, _)| **t == tag)
            .map_or("other", |(_, n)| *n);
        let mut version = [0u8; 4];
        for (v, &c) in version.iter_mut().zip(&id[3..7]) {
            *v = match c {
                b'0'..=b'9' => c - b'0',
                b'A'..=b'Z' => c - b'A' + 10,
                b'a'..=b'z' => c - b'a' + 10,
                _ => return None,
            };
        }
        Some(ClientName { name, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(prefix: &[u8]) -> PeerId {
        let mut id = [b'x'; 20];
        id[..prefix.len()].copy_from_slice(prefix);
        PeerId(id)
    }

    #[test]
    fn client_names_from_peer_id_prefix() {
        assert_eq!(
            pid(b"-qB4650-").client().unwrap().to_string(),
            "qBittorrent 4.6.5"
        );
        assert_eq!(
            pid(b"-TR4060-").client().unwrap().to_string(),
            "Transmission 4.0.6"
        );
        assert_eq!(
            pid(b"-LT2080-").client().unwrap().to_string(),
            "libtorrent 2.0.8"
        );
        assert_eq!(pid(b"-ZZ1234-").client().unwrap().name, "other");
        assert_eq!(pid(b"A2-1-36-0-").client().unwrap().name, "aria2");
        assert_eq!(pid(b"M7-2-3--").client(), None);
    }

    #[test]
    fn shard_of_uses_the_first_four_bytes_big_endian() {
        let mut h = InfoHash([0xff; 20]);
        h.0[..4].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(shard_of(&h, 4), 3);
        assert_eq!(shard_of(&h, 7), 0);
        assert_eq!(shard_of(&h, 1), 0);
    }

    #[test]
    fn shard_of_spreads_random_hashes_evenly() {
        use rand::{rngs::SmallRng, RngCore, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(42);
        for workers in [2usize, 3, 4, 8, 13] {
            let mut counts = vec![0u32; workers];
            let n = 100_000u32;
            for _ in 0..n {
                let mut h = InfoHash::default();
                rng.fill_bytes(&mut h.0);
                counts[shard_of(&h, workers)] += 1;
            }
            let expect = f64::from(n) / workers as f64;
            for c in counts {
                // 5 sigma of a binomial count is well under 3% here.
                assert!(
                    (f64::from(c) - expect).abs() / expect < 0.03,
                    "{workers}: {c} vs {expect}"
                );
            }
        }
    }
}
