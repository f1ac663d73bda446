//! The torrents of one shard in one address family.
//!
//! Owns the map info hash -> torrent: a dense `Vec` of cache-line-aligned
//! entries (so the cleaning cursor is a plain position) and a `PosIndex` of
//! positions into it (8 bytes per slot instead of a whole entry), the
//! shard-wide seeder/leecher counters of the family, and the cleaning
//! cursor. Not: the layout of a torrent's peers (`peers.rs`).

use core::hash::BuildHasher;

use rand::rngs::SmallRng;

use super::peers::{malloc_size, Change, PeerAddr, Peers, Probe};
use super::pos_index::PosIndex;
use super::{Announce, AnnounceCounts, CleanReport, Event, ScrapeStats, Upcoming, WARM_BATCH};
use crate::InfoHash;

/// One torrent: 48 bytes (hash, counter and the peers: inline, or a heap
/// array's pointer and lengths, or the box of a large swarm).
pub(crate) struct Entry<A: PeerAddr> {
    hash: InfoHash,
    /// `event=completed` announces seen, saturating.
    completed: u32,
    peers: Peers<A>,
}

impl<A: PeerAddr> Entry<A> {
    fn counts(&self) -> AnnounceCounts {
        let seeders = self.peers.seeders();
        AnnounceCounts {
            seeders: seeders as u32,
            leechers: (self.peers.len() - seeders) as u32,
            completed: self.completed,
        }
    }
}

/// All torrents of one family in one shard.
pub(crate) struct Torrents<A: PeerAddr> {
    index: PosIndex,
    entries: Vec<Entry<A>>,
    pub(crate) seeders: u64,
    pub(crate) leechers: u64,
    cursor: usize,
}

impl<A: PeerAddr> Default for Torrents<A> {
    fn default() -> Self {
        Torrents {
            index: PosIndex::default(),
            entries: Vec::new(),
            seeders: 0,
            leechers: 0,
            cursor: 0,
        }
    }
}

impl<A: PeerAddr> Torrents<A> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn find<S: BuildHasher>(&self, hash: &InfoHash, s: &S) -> Option<usize> {
        let entries = &self.entries;
        self.index.find(s.hash_one(hash), |q| {
            entries.get(q).is_some_and(|e| e.hash == *hash)
        })
    }

    fn insert<S: BuildHasher>(&mut self, hash: InfoHash, s: &S) -> usize {
        let pos = self.entries.len();
        if pos == self.entries.capacity() {
            // Grow by half, not double: memory per torrent is the budget.
            self.entries.reserve_exact((pos / 2).max(4));
        }
        self.entries.push(Entry {
            hash,
            completed: 0,
            peers: Peers::default(),
        });
        self.index.insert(s.hash_one(hash), pos, pos + 1);
        pos
    }

    /// Remove the (empty) entry at `pos`; the last entry moves into `pos`.
    fn remove_entry<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        self.index.remove(s.hash_one(self.entries[pos].hash), pos);
        let last = self.entries.len() - 1;
        if pos != last {
            self.index
                .repoint(s.hash_one(self.entries[last].hash), last, pos);
        }
        self.entries.swap_remove(pos);
    }

    fn account(&mut self, change: Change) {
        let now = match change {
            Change::Added { seeder } => seeder,
            Change::Updated { was, now } if was != now => {
                *self.count_mut(was) -= 1;
                now
            }
            Change::Updated { .. } => return,
        };
        *self.count_mut(now) += 1;
    }

    /// The shard-wide count of seeders, or of leechers.
    fn count_mut(&mut self, seeder: bool) -> &mut u64 {
        if seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        }
    }

    pub(crate) fn announce<S: BuildHasher>(
        &mut self,
        req: &Announce<A>,
        now: u32,
        rng: &mut SmallRng,
        out: &mut Vec<A>,
        s: &S,
    ) -> AnnounceCounts {
        out.clear();
        let found = self.find(&req.info_hash, s);
        let store = req.addr.port() != 0;
        if req.event == Event::Stopped {
            let Some(pos) = found else {
                return AnnounceCounts::default();
            };
            let e = &mut self.entries[pos];
            let removed = if store {
                e.peers.remove(&req.addr, s)
            } else {
                None
            };
            let counts = e.counts();
            let empty = e.peers.is_empty();
            match removed {
                Some(true) => self.seeders -= 1,
                Some(false) => self.leechers -= 1,
                None => {}
            }
            if empty {
                self.remove_entry(pos, s);
            }
            return counts;
        }
        if !store {
            // Port 0: answered, never stored, nothing counted.
            let Some(pos) = found else {
                return AnnounceCounts::default();
            };
            let e = &self.entries[pos];
            e.peers.select(req.seeder, req.numwant, rng, out);
            return e.counts();
        }
        let pos = match found {
            Some(p) => p,
            None => self.insert(req.info_hash, s),
        };
        let e = &mut self.entries[pos];
        if req.event == Event::Completed {
            e.completed = e.completed.saturating_add(1);
        }
        let change = e
            .peers
            .announce(req.addr, req.seeder, now, req.numwant, rng, out, s);
        let counts = e.counts();
        self.account(change);
        counts
    }

    /// See `Shard::warm_v4`. Each pass covers one level for the whole
    /// batch: the index slot, the entry, a swarm's first line (its index
    /// slot, or the first probe of each half), an indexed swarm's peer are
    /// prefetched; the further probes of a sorted swarm's searches are read
    /// (the next one depends on the value) after the pass before
    /// prefetched them, and folded into a checksum handed to `black_box`
    /// so the loads happen.
    pub(crate) fn warm<S: BuildHasher>(&self, batch: &[Upcoming<A>], s: &S) {
        let batch = &batch[..batch.len().min(WARM_BATCH)];
        let mut hashes = [0u64; WARM_BATCH];
        let mut pos = [usize::MAX; WARM_BATCH];
        let mut probes = [[Probe::default(); 2]; WARM_BATCH];
        let mut sum = 0u64;
        // The first two levels are prefetched, not read: a prefetch retires
        // at once, so the whole batch's misses are in flight together.
        for (h, up) in hashes.iter_mut().zip(batch) {
            *h = s.hash_one(up.info_hash);
            self.index.prefetch(*h);
        }
        for (p, &h) in pos.iter_mut().zip(&hashes[..batch.len()]) {
            if let Some((q, e)) = self
                .index
                .guess(h)
                .and_then(|q| self.entries.get(q).map(|e| (q, e)))
            {
                *p = q;
                uring_rt::prefetch(e);
            }
        }
        for (((h, probe), &p), up) in hashes.iter_mut().zip(&mut probes).zip(&pos).zip(batch) {
            if let Some(e) = self.entries.get(p) {
                (*h, *probe) = e.peers.warm_first(&up.addr, up.seeder, s);
            }
        }
        for (&h, &p) in hashes.iter().zip(&pos[..batch.len()]) {
            if let Some(e) = self.entries.get(p) {
                e.peers.warm_peer(h);
            }
        }
        // Sorted swarms: both searches (own half, other half) one probe
        // further per pass (at most ~11 passes for the largest sorted swarm).
        let mut active = true;
        while active {
            active = false;
            for ((pair, &p), up) in probes.iter_mut().zip(&pos).zip(batch) {
                let Some(e) = self.entries.get(p) else {
                    continue;
                };
                for probe in pair.iter_mut().filter(|q| q.active()) {
                    sum ^= e.peers.warm_step(probe, &up.addr);
                    active |= probe.active();
                }
            }
        }
        std::hint::black_box(sum);
    }

    /// Every torrent's counts, in storage order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(InfoHash, ScrapeStats)) {
        for e in &self.entries {
            let c = e.counts();
            f(
                e.hash,
                ScrapeStats {
                    seeders: c.seeders,
                    completed: c.completed,
                    leechers: c.leechers,
                },
            );
        }
    }

    pub(crate) fn scrape<S: BuildHasher>(&self, hash: &InfoHash, s: &S) -> ScrapeStats {
        self.find(hash, s).map_or_else(ScrapeStats::default, |p| {
            let c = self.entries[p].counts();
            ScrapeStats {
                seeders: c.seeders,
                completed: c.completed,
                leechers: c.leechers,
            }
        })
    }

    /// Visit at most `budget` torrents from the cursor; returns the number
    /// visited and whether the pass over this family is complete (the cursor
    /// then starts again at 0).
    pub(crate) fn clean_step<S: BuildHasher>(
        &mut self,
        now: u32,
        timeout: u32,
        budget: usize,
        report: &mut CleanReport,
        s: &S,
    ) -> (usize, bool) {
        let mut visited = 0;
        while visited < budget {
            let Some(e) = self.entries.get_mut(self.cursor) else {
                self.cursor = 0;
                self.compact();
                return (visited, true);
            };
            visited += 1;
            let (seeders, leechers) = e.peers.retain_fresh(now, timeout, s);
            let empty = e.peers.is_empty();
            self.seeders -= seeders as u64;
            self.leechers -= leechers as u64;
            report.peers_removed += seeders + leechers;
            if empty {
                // The last entry (not yet visited) moves here: stay.
                self.remove_entry(self.cursor, s);
                report.torrents_removed += 1;
            } else {
                self.cursor += 1;
            }
        }
        (visited, false)
    }

    /// Shrink the torrent array and index when much larger than needed.
    fn compact(&mut self) {
        let n = self.entries.len();
        if self.entries.capacity() > 4 * n + 64 {
            self.entries.shrink_to(2 * n);
        }
        self.index.shrink_for(n);
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        malloc_size(self.entries.capacity() * size_of::<Entry<A>>())
            + malloc_size(self.index.table_bytes())
            + self
                .entries
                .iter()
                .map(|e| e.peers.heap_bytes())
                .sum::<usize>()
    }

    pub(crate) fn check_invariants<S: BuildHasher>(&self, s: &S) {
        assert_eq!(self.index.count(), self.entries.len(), "torrent index size");
        let (mut seeders, mut leechers) = (0u64, 0u64);
        for (i, e) in self.entries.iter().enumerate() {
            assert_eq!(self.find(&e.hash, s), Some(i), "torrent index position");
            assert!(!e.peers.is_empty(), "empty torrent kept");
            e.peers.check_invariants(s);
            let c = e.counts();
            seeders += u64::from(c.seeders);
            leechers += u64::from(c.leechers);
        }
        assert_eq!(
            (seeders, leechers),
            (self.seeders, self.leechers),
            "shard counters"
        );
    }
}
