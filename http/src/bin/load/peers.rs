//! Who asks about what: the torrents' info hashes (the same ones
//! riptide-udp-load uses), the Pareto popularity skew that picks one, and
//! the simulated peers of a thread. Every peer comes from the load
//! generator's one address, so each has its own port as well as its own
//! peer id.

use rand::rngs::SmallRng;
use rand::Rng;

/// A simulated peer.
#[derive(Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) id: [u8; 20],
    pub(crate) port: u16,
    pub(crate) seeder: bool,
}

/// The `count` simulated peers of load thread `thread`: their own peer ids
/// and ports (10000 up, distinct across threads), a `seeders` share of them
/// seeding.
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
            id[..8].copy_from_slice(b"-RH0001-");
            id[8..12].copy_from_slice(&(thread as u32).to_be_bytes());
            id[12..20].copy_from_slice(&(i as u64).to_be_bytes());
            Peer {
                id,
                port: (base_port + i as u32) as u16,
                seeder: rng.random_bool(seeders.clamp(0.0, 1.0)),
            }
        })
        .collect()
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

/// Info hash of torrent `i`: spread over all 160 bits, the same in every
/// run and the same as riptide-udp-load's.
pub(crate) fn info_hash(i: usize) -> [u8; 20] {
    let mut h = [0_u8; 20];
    for (k, chunk) in h.chunks_mut(8).enumerate() {
        let word = splitmix((i as u64) << 2 | k as u64).to_be_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    h
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
        }
    }

    #[test]
    fn peers_have_distinct_ports_across_threads() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut ports: Vec<u16> = (0..3)
            .flat_map(|t| thread_peers(t, 100, 0.5, &mut rng))
            .map(|p| p.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 300);
    }
}
