//! The swarm store: the torrents and peers one worker (shard) owns.
//!
//! Owns: storing peers per torrent and address family, answering announces
//! (random peer selection) and scrapes, incremental counts, and incremental
//! cleaning of expired peers and empty torrents. Shared by the UDP and HTTP
//! trackers. Not: any I/O, clock reads or randomness sources — time (coarse
//! `u32` seconds) and a [`SmallRng`] come in as arguments, so tests run on a
//! fixed clock and a seeded RNG.
//!
//! # Semantics
//!
//! - Peers are keyed by (source IP, announced port): the caller passes the
//!   packet's source address with the announced port. Announcing again
//!   updates the peer in place (seeder flag, last-seen).
//! - IPv4 and IPv6 peers live in separate maps; an IPv4 client gets IPv4
//!   peers, an IPv6 client IPv6 peers. [`AnnounceCounts`] describe the
//!   requester's family; [`Shard::scrape`] sums both families.
//! - [`Event::Stopped`] removes the peer and returns no peers; the counts are
//!   those after the removal.
//! - [`Event::Completed`] increments `completed` once per such announce (as
//!   the reference trackers do), whether or not the peer was already a
//!   seeder. `completed` lives with the torrent of that family and is
//!   forgotten when the torrent empties.
//! - An announce with port 0 is answered (peers and counts) but changes
//!   nothing: it is not stored and its `completed` is not counted.
//! - Seeders get no seeders. [`Event::Paused`] (BEP 21, a partial seed) is
//!   announced with `seeder = true` by the caller: it then receives only
//!   leechers and counts as a seeder.
//! - Peer selection is random, without the requester, up to `numwant`.
//! - Empty torrents are removed at once (on `stopped`) or by [`Shard::clean`].
//! - Cleaning walks the dense torrent array with a cursor. Removing a torrent
//!   moves the last one into its place; if that place is behind the cursor
//!   (a `stopped` emptied it), the moved torrent waits for the next pass.
//!
//! # Memory
//!
//! A stored peer is 8 bytes for IPv4 (address, port, and the low 16 bits
//! of the last-seen second), 20 for IPv6; whether it seeds is where it
//! sits, in a run partitioned `[leechers | seeders]`. A torrent is a
//! 48-byte entry (both families) in a dense array, found through an index
//! of 8-byte slots (tag and position, load 3/8 to 3/4). The entry holds up
//! to two IPv4 peers (one IPv6) inline; up to 1,024 peers live in a heap
//! array with each half sorted by (address, port), found by binary search,
//! at most 1/8 + 2 slots of slack; larger swarms move behind a box, in
//! arrival order, with an index by (address, port) of 11 to 21 bytes per
//! peer. [`Shard::memory_bytes`] reports the capacity-based total.
//!
//! Ages are kept modulo 65,536 seconds, so the cleaner must visit every
//! torrent at least every 65,536 − `peer_timeout_secs` seconds (it does
//! at its default pace up to about 25 million torrents per shard);
//! timeouts above [`MAX_PEER_TIMEOUT_SECS`] are capped to it.

/// Longest peer timeout the 16-bit last-seen field supports.
pub const MAX_PEER_TIMEOUT_SECS: u32 = 32_768;

mod peers;
mod pos_index;

/// Most announces [`Shard::warm_v4`] / [`Shard::warm_v6`] look at per call:
/// the runtime's look-ahead window, so one call covers a whole window.
pub const WARM_BATCH: usize = uring_rt::LOOK_AHEAD;
#[cfg(test)]
mod tests;
mod torrents;

use std::net::{SocketAddrV4, SocketAddrV6};

use hashbrown::DefaultHashBuilder;
use rand::rngs::SmallRng;

use self::peers::{PeerAddr, Stored};
use self::torrents::Torrents;
use crate::InfoHash;

/// An IPv4 peer as it goes on the wire: address and port (6 bytes written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerV4 {
    /// IPv4 address octets.
    pub ip: [u8; 4],
    /// Port, host order.
    pub port: u16,
}

/// An IPv6 peer as it goes on the wire: address and port (18 bytes written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerV6 {
    /// IPv6 address octets.
    pub ip: [u8; 16],
    /// Port, host order.
    pub port: u16,
}

impl PeerAddr for PeerV4 {
    type Key = u64;
    type Slots = [Stored<PeerV4>; 2];
    const INLINE: usize = 2;

    #[inline]
    fn port(&self) -> u16 {
        self.port
    }

    #[inline]
    fn key(&self) -> u64 {
        u64::from(u32::from_be_bytes(self.ip)) << 16 | u64::from(self.port)
    }
}

impl PeerAddr for PeerV6 {
    type Key = (u128, u16);
    type Slots = [Stored<PeerV6>; 1];
    const INLINE: usize = 1;

    #[inline]
    fn port(&self) -> u16 {
        self.port
    }

    #[inline]
    fn key(&self) -> (u128, u16) {
        (u128::from_be_bytes(self.ip), self.port)
    }
}

impl From<SocketAddrV4> for PeerV4 {
    fn from(a: SocketAddrV4) -> Self {
        PeerV4 {
            ip: a.ip().octets(),
            port: a.port(),
        }
    }
}

impl From<SocketAddrV6> for PeerV6 {
    fn from(a: SocketAddrV6) -> Self {
        PeerV6 {
            ip: a.ip().octets(),
            port: a.port(),
        }
    }
}

impl From<PeerV4> for SocketAddrV4 {
    fn from(p: PeerV4) -> Self {
        SocketAddrV4::new(p.ip.into(), p.port)
    }
}

impl From<PeerV6> for SocketAddrV6 {
    fn from(p: PeerV6) -> Self {
        SocketAddrV6::new(p.ip.into(), p.port, 0, 0)
    }
}

/// The announce event, protocol-independent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Event {
    /// A regular (periodic) announce; also what unknown events map to.
    #[default]
    None,
    /// The peer joined the swarm.
    Started,
    /// The peer finished downloading: counted in `completed`.
    Completed,
    /// The peer leaves: removed, gets no peers.
    Stopped,
    /// BEP 21 partial seed: announce it with `seeder = true`.
    Paused,
}

/// One announce as the swarm sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce<A> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Source IP of the request with the announced port (port 0: not stored).
    pub addr: A,
    /// The event.
    pub event: Event,
    /// `left == 0`, or a partial seed (`Paused`): receives no seeders.
    pub seeder: bool,
    /// Peers wanted, already clamped by the caller (config and datagram size).
    pub numwant: usize,
}

/// An announce about to be handled, as [`Shard::warm_v4`] needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upcoming<A> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Source IP of the request with the announced port.
    pub addr: A,
    /// `left == 0`: its lookup starts in the seeders' half.
    pub seeder: bool,
}

/// Counts of the announced torrent in the requester's address family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnnounceCounts {
    /// Peers with nothing left to download (including partial seeds).
    pub seeders: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// `event=completed` announces seen.
    pub completed: u32,
}

/// Scrape counts of one torrent, both families summed (zeros if unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Seeders.
    pub seeders: u32,
    /// `event=completed` announces seen.
    pub completed: u32,
    /// Leechers.
    pub leechers: u32,
}

/// What one [`Shard::clean`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Torrents looked at (at most the budget).
    pub torrents_visited: usize,
    /// Expired peers removed.
    pub peers_removed: usize,
    /// Empty torrents removed.
    pub torrents_removed: usize,
    /// This call finished a full pass over all torrents (both families).
    pub pass_complete: bool,
}

/// Shard-wide counts, kept incrementally (O(1) to read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Torrents with at least one peer, families counted separately (a
    /// torrent with IPv4 and IPv6 peers counts twice).
    pub torrents: usize,
    /// Torrents with at least one IPv4 peer.
    pub torrents_v4: usize,
    /// Torrents with at least one IPv6 peer.
    pub torrents_v6: usize,
    /// IPv4 seeders.
    pub seeders_v4: u64,
    /// IPv4 leechers.
    pub leechers_v4: u64,
    /// IPv6 seeders.
    pub seeders_v6: u64,
    /// IPv6 leechers.
    pub leechers_v6: u64,
}

/// The torrents one worker owns.
pub struct Shard {
    /// foldhash with a per-process random seed: attackers pick info hashes.
    hasher: DefaultHashBuilder,
    v4: Torrents<PeerV4>,
    v6: Torrents<PeerV6>,
    /// The cleaning cursor is in the IPv6 map (else in the IPv4 map).
    cleaning_v6: bool,
}

impl Default for Shard {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// An empty shard.
    pub fn new() -> Self {
        Shard {
            hasher: DefaultHashBuilder::default(),
            v4: Torrents::default(),
            v6: Torrents::default(),
            cleaning_v6: false,
        }
    }

    /// Store or refresh an IPv4 peer and select peers for it into `out`
    /// (cleared first; never grown beyond `req.numwant`).
    pub fn announce_v4(
        &mut self,
        req: &Announce<PeerV4>,
        now: u32,
        rng: &mut SmallRng,
        out: &mut Vec<PeerV4>,
    ) -> AnnounceCounts {
        self.v4.announce(req, now, rng, out, &self.hasher)
    }

    /// Store or refresh an IPv6 peer and select peers for it into `out`
    /// (cleared first; never grown beyond `req.numwant`).
    pub fn announce_v6(
        &mut self,
        req: &Announce<PeerV6>,
        now: u32,
        rng: &mut SmallRng,
        out: &mut Vec<PeerV6>,
    ) -> AnnounceCounts {
        self.v6.announce(req, now, rng, out, &self.hasher)
    }

    /// Warm the cache lines that these IPv4 announces will read, for a
    /// batch about to be handled: one pass per level (torrent slot, entry,
    /// then the peer's index slot and the peer, or each probe of a sorted
    /// swarm's binary searches in both halves), prefetching each level's
    /// lines for the whole batch, so the misses of the batch overlap
    /// instead of following one another. Changes nothing; at most
    /// [`WARM_BATCH`] announces are looked at.
    pub fn warm_v4(&self, batch: &[Upcoming<PeerV4>]) {
        self.v4.warm(batch, &self.hasher);
    }

    /// [`Shard::warm_v4`] for IPv6 peers.
    pub fn warm_v6(&self, batch: &[Upcoming<PeerV6>]) {
        self.v6.warm(batch, &self.hasher);
    }

    /// Counts of one torrent, IPv4 and IPv6 summed; zeros if unknown.
    pub fn scrape(&self, h: &InfoHash) -> ScrapeStats {
        let a = self.v4.scrape(h, &self.hasher);
        let b = self.v6.scrape(h, &self.hasher);
        ScrapeStats {
            seeders: a.seeders.saturating_add(b.seeders),
            completed: a.completed.saturating_add(b.completed),
            leechers: a.leechers.saturating_add(b.leechers),
        }
    }

    /// Every torrent's counts (IPv4 and IPv6 summed), sorted by info hash,
    /// into `out` (cleared first): this shard's part of a full scrape.
    pub fn scrape_all(&self, out: &mut Vec<(InfoHash, ScrapeStats)>) {
        out.clear();
        self.v4.for_each(|h, s| out.push((h, s)));
        self.v6.for_each(|h, s| out.push((h, s)));
        out.sort_unstable_by_key(|e| e.0);
        out.dedup_by(|b, a| {
            if a.0 != b.0 {
                return false;
            }
            a.1.seeders = a.1.seeders.saturating_add(b.1.seeders);
            a.1.completed = a.1.completed.saturating_add(b.1.completed);
            a.1.leechers = a.1.leechers.saturating_add(b.1.leechers);
            true
        });
    }

    /// Remove peers not seen for more than `peer_timeout_secs`, and empty
    /// torrents, visiting at most `budget` torrents from a cursor that
    /// persists across calls (IPv4 map, then IPv6 map). The timeout is
    /// capped at [`MAX_PEER_TIMEOUT_SECS`]. Enough calls make a
    /// full pass; [`CleanReport::pass_complete`] says when one ended.
    /// Storage is shrunk as it empties.
    pub fn clean(&mut self, now: u32, peer_timeout_secs: u32, budget: usize) -> CleanReport {
        let peer_timeout_secs = peer_timeout_secs.min(MAX_PEER_TIMEOUT_SECS);
        let mut report = CleanReport::default();
        while report.torrents_visited < budget {
            let left = budget - report.torrents_visited;
            let (visited, done) = if self.cleaning_v6 {
                self.v6
                    .clean_step(now, peer_timeout_secs, left, &mut report, &self.hasher)
            } else {
                self.v4
                    .clean_step(now, peer_timeout_secs, left, &mut report, &self.hasher)
            };
            report.torrents_visited += visited;
            if done {
                self.cleaning_v6 = !self.cleaning_v6;
                if !self.cleaning_v6 {
                    report.pass_complete = true;
                    break;
                }
            }
        }
        report
    }

    /// Shard-wide counts, O(1).
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            torrents: self.v4.len() + self.v6.len(),
            torrents_v4: self.v4.len(),
            torrents_v6: self.v6.len(),
            seeders_v4: self.v4.seeders,
            leechers_v4: self.v4.leechers,
            seeders_v6: self.v6.seeders,
            leechers_v6: self.v6.leechers,
        }
    }

    /// Heap bytes owned by this shard, from capacities (allocated, which is
    /// an upper bound of resident), plus an estimated 16 bytes of allocator
    /// overhead per allocation. O(torrents): for metrics and tests, not the
    /// hot path.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }

    /// Panics if an internal invariant is broken (index positions, leecher/
    /// seeder partition, counters, no empty torrent). O(peers); for tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        self.v4.check_invariants(&self.hasher);
        self.v6.check_invariants(&self.hasher);
    }
}
