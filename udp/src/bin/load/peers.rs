//! Who asks about what: the torrents' info hashes, the popularity skew
//! that picks one, the simulated peers of a thread, and the peers of a
//! `--fill-peers` run.

use rand::rngs::SmallRng;
use rand::Rng;
use riptide_common::{InfoHash, PeerId};

/// A simulated peer.
#[derive(Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) id: PeerId,
    pub(crate) port: u16,
    pub(crate) seeder: bool,
}

/// The `count` simulated peers of load thread `thread`: their own peer ids
/// and ports, a `seeders` share of them seeding.
pub(crate) fn thread_peers(
    thread: usize,
    count: usize,
    seeders: f64,
    rng: &mut SmallRng,
) -> Vec<Peer> {
    let base_port = 10_000_u32 + (thread * count) as u32;
    (0..count)
        .map(|i| {
            let mut id = [0_u8; 20];
            id[..8].copy_from_slice(b"-RL0001-");
            id[8..12].copy_from_slice(&(thread as u32).to_be_bytes());
            id[12..20].copy_from_slice(&(i as u64).to_be_bytes());
            Peer {
                id: PeerId(id),
                port: (base_port + i as u32) as u16,
                seeder: rng.random_bool(seeders.clamp(0.0, 1.0)),
            }
        })
        .collect()
}

/// Torrent index and peer of the `i`-th peer of a `--fill-peers` run.
pub(crate) fn fill_peer(i: u64, torrents: usize) -> (usize, Peer) {
    let t = torrents as u64;
    let mut id = [0_u8; 20];
    id[..8].copy_from_slice(b"-RL0001-");
    id[12..20].copy_from_slice(&i.to_be_bytes());
    let peer = Peer {
        id: PeerId(id),
        port: (1 + (i / t) % 65_535) as u16,
        seeder: false,
    };
    ((i % t) as usize, peer)
}

/// Draw a torrent index: Pareto-skewed (shape `a`) or uniform (`a` = 0).
pub(crate) fn pick_torrent(rng: &mut SmallRng, n: usize, a: f64) -> usize {
    if a <= 0.0 || n <= 1 {
        return rng.random_range(0..n.max(1));
    }
    // Pareto(scale 1, shape a) by inversion, capped at 101 and mapped onto
    // 0..n: with a = 1, half the draws land in the first 1%.
    let u: f64 = rng.random();
    let x = (1.0 - u).powf(-1.0 / a).min(101.0);
    (((x - 1.0) / 100.0) * (n - 1) as f64) as usize
}

/// splitmix64: spreads an index over 64 uniform bits.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Info hash of torrent `i`: spread over all 160 bits, the same in every run.
pub(crate) fn info_hash(i: usize) -> InfoHash {
    let mut h = [0_u8; 20];
    for (k, chunk) in h.chunks_mut(8).enumerate() {
        let word = splitmix((i as u64) << 2 | k as u64).to_be_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    InfoHash(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pareto_is_skewed_and_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 10_000;
        let mut head = 0;
        for _ in 0..10_000 {
            let i = pick_torrent(&mut rng, n, 1.0);
            assert!(i < n);
            if i < n / 100 {
                head += 1;
            }
        }
        assert!((4_000..6_000).contains(&head), "{head}");
        for _ in 0..1000 {
            assert!(pick_torrent(&mut rng, n, 0.0) < n);
            assert_eq!(pick_torrent(&mut rng, 1, 1.0), 0);
        }
    }

    #[test]
    fn info_hashes_spread_over_shards() {
        let mut per_shard = [0_u32; 4];
        for i in 0..4000 {
            per_shard[riptide_common::shard_of(&info_hash(i), 4)] += 1;
        }
        assert!(
            per_shard.iter().all(|&n| (800..1200).contains(&n)),
            "{per_shard:?}"
        );
    }
}
