//! The peers of a `--fill-peers` run. The torrents' info hashes, the
//! popularity skew that picks one and the simulated peers of a thread are
//! shared with the other load generators in [`riptide_common::loadgen`].

use riptide_common::loadgen::Peer;
use riptide_common::PeerId;

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
