//! One worker's shard of WebRTC swarms, sans-IO: who is in each torrent and
//! on which connection (`PeerConn`: worker and connection id, so offers and
//! answers go straight to the worker holding the target), and which offers
//! wait for an answer. Time (coarse seconds) and randomness come in as
//! arguments.
//!
//! A peer is keyed by its `peer_id` within a torrent: WebRTC peers have no
//! address the tracker could use. A `peer_id` belongs to the connection
//! that announced it first until that connection leaves or goes silent: a
//! second connection announcing it is refused ([`AnnounceError::PeerIdInUse`]),
//! never silently ignored and never allowed to take the live peer's offers.
//!
//! Swarms are a dense `Vec` (a random target is an index draw), with a
//! `peer_id` index only above [`INDEX_ABOVE`] peers. Offers waiting for an
//! answer are kept at the offering peer, at most [`MAX_PENDING`], each
//! until its deadline.

use crate::protocol::{OfferId, PeerId, ScrapeCounts};
use hashbrown::HashMap;
use rand::Rng;
use riptide_common::InfoHash;
use std::collections::hash_map::RandomState;
use uring_rt::ConnId;

/// Swarms larger than this get a `peer_id` index; smaller ones are
/// searched linearly (faster below this size, and no memory).
pub const INDEX_ABOVE: usize = 32;
/// Offers one peer may have waiting for answers; a new one replaces the
/// oldest (WebTorrent sends at most 5 per announce and re-announces every
/// interval).
pub const MAX_PENDING: usize = 20;

/// Where a peer's connection lives: the worker holding it and its id there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerConn {
    /// The worker.
    pub worker: u16,
    /// The connection on that worker.
    pub conn: ConnId,
}

/// The event of an announce, as the swarm sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwarmEvent {
    /// `started`, absent or unknown: join or refresh.
    Update,
    /// `completed`: join or refresh as a seeder and count a download.
    Completed,
    /// `stopped`: leave.
    Stopped,
}

/// An announce as the swarm takes it.
#[derive(Clone, Copy, Debug)]
pub struct SwarmAnnounce<'a> {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Its connection.
    pub conn: PeerConn,
    /// What happened.
    pub event: SwarmEvent,
    /// Has the whole torrent.
    pub seeder: bool,
    /// The ids of the offers to relay, one target each.
    pub offers: &'a [OfferId],
}

/// Why an announce or answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceError {
    /// Another live connection holds this `peer_id` in this torrent.
    PeerIdInUse,
}

/// Why an answer was not forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// The answering or the offering peer is not in the swarm (on that
    /// connection).
    UnknownPeer,
    /// No offer with that id from `to_peer_id` to the answerer is pending
    /// (never sent, already answered, or expired).
    NoPendingOffer,
}

/// An offer waiting for its answer, kept at the offering peer.
#[derive(Clone, Copy, Debug)]
struct Pending {
    offer_id: OfferId,
    to: PeerId,
    expires: u32,
}

#[derive(Debug)]
struct Peer {
    id: PeerId,
    conn: PeerConn,
    seeder: bool,
    seen: u32,
    pending: Vec<Pending>,
}

#[derive(Debug, Default)]
struct Torrent {
    peers: Vec<Peer>,
    /// `peer_id` → position in `peers`, above `INDEX_ABOVE` peers.
    index: Option<HashMap<PeerId, u32, RandomState>>,
    seeders: u32,
    downloaded: u32,
}

impl Torrent {
    fn find(&self, id: &PeerId) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(id).map(|&i| i as usize),
            None => self.peers.iter().position(|p| p.id == *id),
        }
    }

    fn push(&mut self, peer: Peer, hasher: &RandomState) {
        if peer.seeder {
            self.seeders += 1;
        }
        let pos = self.peers.len() as u32;
        if let Some(index) = &mut self.index {
            index.insert(peer.id, pos);
        }
        self.peers.push(peer);
        if self.index.is_none() && self.peers.len() > INDEX_ABOVE {
            let mut index = HashMap::with_capacity_and_hasher(self.peers.len() * 2, hasher.clone());
            index.extend(self.peers.iter().enumerate().map(|(i, p)| (p.id, i as u32)));
            self.index = Some(index);
        }
    }

    fn remove(&mut self, pos: usize) -> Peer {
        let peer = self.peers.swap_remove(pos);
        if peer.seeder {
            self.seeders -= 1;
        }
        if let Some(index) = &mut self.index {
            index.remove(&peer.id);
            if let Some(moved) = self.peers.get(pos) {
                index.insert(moved.id, pos as u32);
            }
            if self.peers.len() <= INDEX_ABOVE / 2 {
                self.index = None;
            }
        }
        peer
    }

    fn counts(&self) -> ScrapeCounts {
        ScrapeCounts {
            complete: self.seeders,
            incomplete: self.peers.len() as u32 - self.seeders,
            downloaded: self.downloaded,
        }
    }
}

/// A worker's WebRTC swarms.
pub struct WsShard {
    torrents: HashMap<InfoHash, Torrent, RandomState>,
    hasher: RandomState,
    pending: usize,
}

/// Sizes for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Torrents with at least one peer.
    pub torrents: usize,
    /// Seeders over all torrents.
    pub seeders: u64,
    /// Leechers over all torrents.
    pub leechers: u64,
}

impl Default for WsShard {
    fn default() -> Self {
        WsShard::new()
    }
}

impl WsShard {
    /// An empty shard with fresh random hash keys (info hashes and peer ids
    /// are chosen by clients).
    pub fn new() -> WsShard {
        let hasher = RandomState::new();
        WsShard {
            torrents: HashMap::with_hasher(hasher.clone()),
            hasher,
            pending: 0,
        }
    }

    /// Joins, refreshes or (on `stopped`) removes the peer, and picks one
    /// target per offer: distinct random peers of the swarm, never the
    /// sender, leechers only when the sender seeds. `targets` gets their
    /// connections, in offer order (fewer when the swarm is smaller); each
    /// relayed offer is remembered as pending until `now + offer_timeout`.
    /// Returns the torrent's counts after the change. Another connection
    /// holding the `peer_id` refuses the announce, unless it has been
    /// silent for more than `takeover_after` seconds (an announce
    /// interval: a live client re-announces within it).
    #[allow(clippy::too_many_arguments)]
    pub fn announce<R: Rng>(
        &mut self,
        a: &SwarmAnnounce<'_>,
        now: u32,
        offer_timeout: u32,
        takeover_after: u32,
        rng: &mut R,
        targets: &mut Vec<PeerConn>,
    ) -> Result<ScrapeCounts, AnnounceError> {
        targets.clear();
        if a.event == SwarmEvent::Stopped {
            let Some(t) = self.torrents.get_mut(&a.info_hash) else {
                return Ok(ScrapeCounts::default());
            };
            if let Some(pos) = t.find(&a.peer_id) {
                if t.peers[pos].conn != a.conn {
                    return Err(AnnounceError::PeerIdInUse);
                }
                let gone = t.remove(pos);
                self.pending -= gone.pending.len();
            }
            let counts = t.counts();
            if t.peers.is_empty() {
                self.torrents.remove(&a.info_hash);
            }
            return Ok(counts);
        }
        let t = self.torrents.entry(a.info_hash).or_default();
        let seeder = a.seeder || a.event == SwarmEvent::Completed;
        let pos = if let Some(pos) = t.find(&a.peer_id) {
            let p = &mut t.peers[pos];
            if p.conn != a.conn {
                // A tab that reconnected: its old connection missed its
                // re-announce (it died, or its leave is still on the way).
                if p.seen.saturating_add(takeover_after) >= now {
                    return Err(AnnounceError::PeerIdInUse);
                }
                p.conn = a.conn;
                self.pending -= p.pending.len();
                p.pending.clear();
            }
            if a.event == SwarmEvent::Completed && !p.seeder {
                t.downloaded = t.downloaded.saturating_add(1);
            }
            if p.seeder != seeder {
                p.seeder = seeder;
                if seeder {
                    t.seeders += 1;
                } else {
                    t.seeders -= 1;
                }
            }
            p.seen = now;
            pos
        } else {
            if a.event == SwarmEvent::Completed {
                t.downloaded = t.downloaded.saturating_add(1);
            }
            t.push(
                Peer {
                    id: a.peer_id,
                    conn: a.conn,
                    seeder,
                    seen: now,
                    pending: Vec::new(),
                },
                &self.hasher,
            );
            t.peers.len() - 1
        };
        let n = t.peers.len();
        if !a.offers.is_empty() && n > 1 {
            // Walk from a random start with a random step coprime to n: each
            // peer at most once, in an order no client can predict.
            let start = rng.random_range(0..n);
            let step = coprime_step(n, rng);
            let mut i = start;
            let mut picked = 0;
            // Bounded: a seeder in a swarm of seeders finds few targets,
            // and never costs a walk over the whole swarm.
            for _ in 0..n.min(8 * a.offers.len() + 32) {
                if picked == a.offers.len() {
                    break;
                }
                let cand = &t.peers[i];
                if i != pos && !(seeder && cand.seeder) {
                    let to = cand.id;
                    targets.push(cand.conn);
                    let offer_id = a.offers[picked];
                    picked += 1;
                    let sender = &mut t.peers[pos];
                    if sender.pending.len() >= MAX_PENDING {
                        sender.pending.remove(0);
                        self.pending -= 1;
                    }
                    sender.pending.push(Pending {
                        offer_id,
                        to,
                        expires: now.saturating_add(offer_timeout),
                    });
                    self.pending += 1;
                }
                i = (i + step) % n;
            }
        }
        Ok(t.counts())
    }

    /// An answer from `answerer` (on `conn`) to the offer `offer_id` that
    /// `to` sent: if that offer is pending, it is answered now (no second
    /// answer goes through) and the offerer's connection is returned.
    pub fn answer(
        &mut self,
        info_hash: &InfoHash,
        answerer: &PeerId,
        conn: PeerConn,
        to: &PeerId,
        offer_id: &OfferId,
        now: u32,
    ) -> Result<PeerConn, AnswerError> {
        let t = self
            .torrents
            .get_mut(info_hash)
            .ok_or(AnswerError::UnknownPeer)?;
        let me = t.find(answerer).ok_or(AnswerError::UnknownPeer)?;
        if t.peers[me].conn != conn {
            return Err(AnswerError::UnknownPeer);
        }
        let them = t.find(to).ok_or(AnswerError::UnknownPeer)?;
        let offerer = &mut t.peers[them];
        let i = offerer
            .pending
            .iter()
            .position(|p| p.offer_id == *offer_id && p.to == *answerer)
            .ok_or(AnswerError::NoPendingOffer)?;
        let p = offerer.pending.swap_remove(i);
        self.pending -= 1;
        if p.expires < now {
            return Err(AnswerError::NoPendingOffer);
        }
        Ok(offerer.conn)
    }

    /// The peer left without a `stopped` (its connection closed): removed
    /// if it is still on `conn` (a newer connection keeps its place).
    pub fn leave(&mut self, info_hash: &InfoHash, peer_id: &PeerId, conn: PeerConn) -> bool {
        let Some(t) = self.torrents.get_mut(info_hash) else {
            return false;
        };
        let Some(pos) = t.find(peer_id).filter(|&p| t.peers[p].conn == conn) else {
            return false;
        };
        let gone = t.remove(pos);
        self.pending -= gone.pending.len();
        if t.peers.is_empty() {
            self.torrents.remove(info_hash);
        }
        true
    }

    /// The torrent's counts (zeros when unknown).
    pub fn scrape(&self, info_hash: &InfoHash) -> ScrapeCounts {
        self.torrents
            .get(info_hash)
            .map(Torrent::counts)
            .unwrap_or_default()
    }

    /// Removes peers not seen for `peer_timeout` seconds (a connection
    /// whose leave was lost), expired pending offers and empty torrents.
    /// One pass over the shard; returns the peers removed.
    pub fn clean(&mut self, now: u32, peer_timeout: u32) -> usize {
        let mut removed = 0;
        let mut pending = 0;
        self.torrents.retain(|_, t| {
            let mut i = 0;
            while i < t.peers.len() {
                if t.peers[i].seen.saturating_add(peer_timeout) < now {
                    t.remove(i);
                    removed += 1;
                } else {
                    let p = &mut t.peers[i];
                    p.pending.retain(|o| o.expires >= now);
                    if p.pending.is_empty() && p.pending.capacity() > 0 {
                        p.pending = Vec::new();
                    }
                    pending += p.pending.len();
                    i += 1;
                }
            }
            !t.peers.is_empty()
        });
        self.pending = pending;
        removed
    }

    /// Torrents and peers, for the metrics.
    pub fn stats(&self) -> ShardStats {
        let mut s = ShardStats {
            torrents: self.torrents.len(),
            ..ShardStats::default()
        };
        for t in self.torrents.values() {
            s.seeders += u64::from(t.seeders);
            s.leechers += u64::from(t.peers.len() as u32 - t.seeders);
        }
        s
    }

    /// Offers waiting for an answer.
    pub fn pending_offers(&self) -> usize {
        self.pending
    }
}

/// A step in `1..n` coprime to `n` (1 when `n` ≤ 2), so `i = (i + step) % n`
/// visits every position once.
fn coprime_step<R: Rng>(n: usize, rng: &mut R) -> usize {
    if n <= 2 {
        return 1;
    }
    for _ in 0..8 {
        let s = rng.random_range(1..n);
        if gcd(s, n) == 1 {
            return s;
        }
    }
    1
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests;
