//! Who asks about what: the torrents' info hashes (the same ones
//! riptide-udp-load uses), the Pareto popularity skew that picks one, and
//! the simulated peers of a thread. Every peer comes from the load
//! generator's one address, so each has its own port as well as its own
//! peer id.

use rand::rngs::SmallRng;
use rand::Rng;

pub(crate) use riptide_common::loadgen::{info_hash, pick_torrent, splitmix};

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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

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
