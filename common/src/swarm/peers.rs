//! The peers of one torrent in one address family.
//!
//! Owns the peer records and their layout in memory: two peers inline in the
//! torrent (no heap allocation, the common case on a public tracker), beyond
//! that a dense array partitioned as `[leechers | seeders]`, plus an index by
//! (address, port) once the swarm is large. The array's pointer, length and
//! index live in the torrent entry itself (no box between them), so an
//! announce to a large swarm costs the entry's cache line, one index line
//! and the peer's line. Random selection reads a window of that array. Not:
//! torrent lookup or shard-wide counts (`torrents.rs`).

use core::hash::{BuildHasher, Hash};

use rand::{rngs::SmallRng, Rng};

use super::pos_index::PosIndex;

/// A peer address as stored and returned: what goes into a response.
pub(crate) trait PeerAddr: Copy + Eq + Hash + Default {
    /// The announced port; 0 is never stored and marks an empty inline slot.
    fn port(&self) -> u16;
}

/// One stored peer: 12 bytes for IPv4 (address 4, port 2, last-seen 4,
/// seeder flag 1, padding 1), 24 for IPv6.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stored<A> {
    pub(crate) addr: A,
    /// Coarse seconds of the last announce.
    pub(crate) last_seen: u32,
    pub(crate) seeder: bool,
}

impl<A: PeerAddr> Stored<A> {
    fn occupied(&self) -> bool {
        self.addr.port() != 0
    }
}

/// Peers stored in the torrent entry itself (no allocation: most torrents
/// of a public tracker have this few). Two IPv4 peers (24 bytes) fit
/// beside the heap form's 40 bytes of pointers, length and index; three
/// would not leave the enum a niche and cost the entry a second line.
pub(crate) const INLINE: usize = 2;

/// A swarm gets an index by (address, port) when it grows above this many
/// peers; below it a linear scan over a few cache lines is faster.
const INDEX_ABOVE: usize = 32;
/// ... and loses it again below this (hysteresis, so a swarm hovering
/// around the threshold does not rebuild it on every announce).
const INDEX_DROP_BELOW: usize = 16;

/// What an announce did to the peer set, for the caller's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// A new peer was stored; its seeder flag.
    Added { seeder: bool },
    /// An existing peer was refreshed; its seeder flag before and after.
    Updated { was: bool, now: bool },
}

/// The peers of one torrent in one family.
pub(crate) enum Peers<A> {
    /// Up to `INLINE` peers, packed at the front; an empty slot has port 0.
    Inline([Stored<A>; INLINE]),
    /// Three or more peers (or recently so).
    Heap(HeapPeers<A>),
}

/// A dense array `[leechers | seeders]`: `list[..len]` are the peers,
/// `list[..leechers]` the leechers. A boxed slice and a `u32` length rather
/// than a `Vec`, so that a torrent entry with its peers stays within one
/// cache line (64 bytes for IPv4).
pub(crate) struct HeapPeers<A> {
    list: Box<[Stored<A>]>,
    len: u32,
    leechers: u32,
    /// Positions in `list`, hashed by the peer's address; allocated only
    /// when the swarm is large. Kept in sync on every move.
    index: PosIndex,
}

impl<A: PeerAddr> Default for Peers<A> {
    fn default() -> Self {
        Peers::Inline([Stored::default(); INLINE])
    }
}

impl<A: PeerAddr> Peers<A> {
    /// Number of stored peers.
    pub(crate) fn len(&self) -> usize {
        match self {
            Peers::Inline(s) => s.iter().filter(|p| p.occupied()).count(),
            Peers::Heap(h) => h.len as usize,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of stored seeders.
    pub(crate) fn seeders(&self) -> usize {
        match self {
            Peers::Inline(s) => s.iter().filter(|p| p.occupied() && p.seeder).count(),
            Peers::Heap(h) => (h.len - h.leechers) as usize,
        }
    }

    /// Store or refresh `addr` (port != 0) and select up to `want` other
    /// peers into `out` (seeders are not sent to seeders).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn announce<S: BuildHasher>(
        &mut self,
        addr: A,
        seeder: bool,
        now: u32,
        want: usize,
        rng: &mut SmallRng,
        out: &mut Vec<A>,
        s: &S,
    ) -> Change {
        debug_assert!(addr.port() != 0);
        match self {
            Peers::Inline(slots) => {
                let found = slots.iter().position(|p| p.occupied() && p.addr == addr);
                let (change, me) = if let Some(i) = found {
                    let was = slots[i].seeder;
                    slots[i].seeder = seeder;
                    slots[i].last_seen = now;
                    (Change::Updated { was, now: seeder }, i)
                } else if let Some(i) = slots.iter().position(|p| !p.occupied()) {
                    slots[i] = Stored {
                        addr,
                        last_seen: now,
                        seeder,
                    };
                    (Change::Added { seeder }, i)
                } else {
                    // One peer more than fits: move to the heap and continue there.
                    let mut h = HeapPeers::from_slots(slots, s);
                    let change = h.announce(addr, seeder, now, want, rng, out, s);
                    *self = Peers::Heap(h);
                    return change;
                };
                select_inline(slots, Some(me), seeder, want, out);
                change
            }
            Peers::Heap(h) => h.announce(addr, seeder, now, want, rng, out, s),
        }
    }

    /// Warming, first step: read the line a lookup of `addr` starts at (the
    /// index slot, or the array's start); returns a value to fold into the
    /// warm-up's checksum and the hash for `warm_peer`.
    pub(crate) fn warm_slot<S: BuildHasher>(&self, addr: &A, s: &S) -> (u64, u64) {
        match self {
            Peers::Inline(_) => (0, 0),
            Peers::Heap(h) if h.index.is_allocated() => {
                let hash = s.hash_one(addr);
                (h.index.guess(hash).unwrap_or(0) as u64, hash)
            }
            Peers::Heap(h) => (h.list.first().map_or(0, |p| u64::from(p.last_seen)), 0),
        }
    }

    /// Warming, second step: read the peer's own line if the index slot
    /// guessed it.
    pub(crate) fn warm_peer(&self, hash: u64) -> u64 {
        match self {
            Peers::Heap(h) if h.index.is_allocated() => h
                .index
                .guess(hash)
                .and_then(|p| h.list.get(p))
                .map_or(0, |p| u64::from(p.last_seen)),
            _ => 0,
        }
    }

    /// Select up to `want` peers for a requester that is not stored.
    pub(crate) fn select(&self, seeder: bool, want: usize, rng: &mut SmallRng, out: &mut Vec<A>) {
        match self {
            Peers::Inline(slots) => select_inline(slots, None, seeder, want, out),
            Peers::Heap(h) => h.select(None, seeder, want, rng, out),
        }
    }

    /// Remove `addr`; its seeder flag if it was stored.
    pub(crate) fn remove<S: BuildHasher>(&mut self, addr: &A, s: &S) -> Option<bool> {
        match self {
            Peers::Inline(slots) => {
                let i = slots.iter().position(|p| p.occupied() && p.addr == *addr)?;
                let was = slots[i].seeder;
                remove_inline(slots, i);
                Some(was)
            }
            Peers::Heap(h) => {
                let p = h.find(addr, s)?;
                let was = h.remove_at(p, s).seeder;
                if h.len <= 1 {
                    self.compact(s);
                }
                Some(was)
            }
        }
    }

    /// Remove peers not seen for more than `timeout` seconds; returns the
    /// numbers of (seeders, leechers) removed. Shrinks storage afterwards.
    pub(crate) fn retain_fresh<S: BuildHasher>(
        &mut self,
        now: u32,
        timeout: u32,
        s: &S,
    ) -> (usize, usize) {
        let stale = |p: &Stored<A>| now.saturating_sub(p.last_seen) > timeout;
        let mut removed = (0, 0);
        match self {
            Peers::Inline(slots) => {
                for i in (0..INLINE).rev() {
                    if slots[i].occupied() && stale(&slots[i]) {
                        if slots[i].seeder {
                            removed.0 += 1;
                        } else {
                            removed.1 += 1;
                        }
                        remove_inline(slots, i);
                    }
                }
            }
            Peers::Heap(h) => {
                let mut i = 0;
                while i < h.len as usize {
                    if stale(&h.list[i]) {
                        // remove_at moves an unvisited peer into `i`.
                        if h.remove_at(i, s).seeder {
                            removed.0 += 1;
                        } else {
                            removed.1 += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                self.compact(s);
            }
        }
        removed
    }

    /// Give memory back: inline when at most `INLINE` peers remain, smaller
    /// array and index (or none) when much smaller than their capacity.
    fn compact<S: BuildHasher>(&mut self, _s: &S) {
        let Peers::Heap(h) = self else { return };
        let n = h.len as usize;
        if n <= INLINE {
            let mut slots = [Stored::default(); INLINE];
            slots[..n].copy_from_slice(h.peers());
            *self = Peers::Inline(slots);
            return;
        }
        if h.list.len() > 4 * n && h.list.len() > 8 {
            h.reallocate(2 * n);
        }
        if n < INDEX_DROP_BELOW {
            h.index = PosIndex::default();
        } else {
            h.index.shrink_for(n);
        }
    }

    /// Bytes this peer set owns on the heap (capacity-based, as glibc
    /// malloc chunks).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Peers::Inline(_) => 0,
            Peers::Heap(h) => {
                malloc_size(h.list.len() * size_of::<Stored<A>>())
                    + malloc_size(h.index.table_bytes())
            }
        }
    }

    /// Panics if an internal invariant does not hold (tests only).
    pub(crate) fn check_invariants<S: BuildHasher>(&self, s: &S) {
        match self {
            Peers::Inline(slots) => {
                let n = slots.iter().filter(|p| p.occupied()).count();
                assert!(slots[..n].iter().all(Stored::occupied), "inline hole");
                for (i, p) in slots[..n].iter().enumerate() {
                    assert!(
                        !slots[..i].iter().any(|q| q.addr == p.addr),
                        "duplicate peer"
                    );
                }
            }
            Peers::Heap(h) => {
                let peers = h.peers();
                assert!(h.leechers as usize <= peers.len());
                for (i, p) in peers.iter().enumerate() {
                    assert!(p.occupied(), "port 0 stored");
                    assert_eq!(
                        p.seeder,
                        i >= h.leechers as usize,
                        "partition broken at {i}"
                    );
                }
                if h.index.is_allocated() {
                    assert_eq!(h.index.count(), peers.len(), "index size");
                    for (i, p) in peers.iter().enumerate() {
                        let found = h
                            .index
                            .find(s.hash_one(p.addr), |q| peers[q].addr == p.addr);
                        assert_eq!(found, Some(i), "index position");
                    }
                } else {
                    assert!(peers.len() <= INDEX_ABOVE, "large swarm without index");
                    for (i, p) in peers.iter().enumerate() {
                        assert!(
                            !peers[..i].iter().any(|q| q.addr == p.addr),
                            "duplicate peer"
                        );
                    }
                }
            }
        }
    }
}

/// Bytes glibc malloc takes for a request of `n` bytes (8 bytes of header,
/// 16-byte granules, 32 at least; 0 for no allocation).
pub(crate) fn malloc_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// Remove inline slot `i`, keeping the occupied slots packed at the front.
fn remove_inline<A: PeerAddr>(slots: &mut [Stored<A>; INLINE], i: usize) {
    slots.copy_within(i + 1.., i);
    slots[INLINE - 1] = Stored::default();
}

fn select_inline<A: PeerAddr>(
    slots: &[Stored<A>; INLINE],
    me: Option<usize>,
    seeder: bool,
    want: usize,
    out: &mut Vec<A>,
) {
    for (i, p) in slots.iter().enumerate() {
        if out.len() >= want {
            break;
        }
        if p.occupied() && Some(i) != me && !(seeder && p.seeder) {
            out.push(p.addr);
        }
    }
}

impl<A: PeerAddr> HeapPeers<A> {
    fn from_slots<S: BuildHasher>(slots: &[Stored<A>; INLINE], s: &S) -> Self {
        let mut h = HeapPeers {
            list: vec![Stored::default(); INLINE + 2].into_boxed_slice(),
            len: 0,
            leechers: 0,
            index: PosIndex::default(),
        };
        for p in slots.iter().filter(|p| p.occupied()) {
            h.insert(*p, s);
        }
        h
    }

    /// The stored peers.
    fn peers(&self) -> &[Stored<A>] {
        &self.list[..self.len as usize]
    }

    /// Move the peers into an array of `cap` (>= len) slots.
    fn reallocate(&mut self, cap: usize) {
        let mut v = Vec::with_capacity(cap);
        v.extend_from_slice(self.peers());
        v.resize(cap, Stored::default());
        self.list = v.into_boxed_slice();
    }

    /// Append `p` at position `len` (growing the array by half when full:
    /// memory per peer is the budget).
    fn push(&mut self, p: Stored<A>) {
        let n = self.len as usize;
        if n == self.list.len() {
            self.reallocate(n + (n / 2).max(2));
        }
        self.list[n] = p;
        self.len += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn announce<S: BuildHasher>(
        &mut self,
        addr: A,
        seeder: bool,
        now: u32,
        want: usize,
        rng: &mut SmallRng,
        out: &mut Vec<A>,
        s: &S,
    ) -> Change {
        let (change, me) = if let Some(p) = self.find(&addr, s) {
            let was = self.list[p].seeder;
            self.list[p].last_seen = now;
            (
                Change::Updated { was, now: seeder },
                self.set_seeder(p, seeder, s),
            )
        } else {
            let p = self.insert(
                Stored {
                    addr,
                    last_seen: now,
                    seeder,
                },
                s,
            );
            (Change::Added { seeder }, p)
        };
        self.select(Some(me), seeder, want, rng, out);
        change
    }

    fn find<S: BuildHasher>(&self, addr: &A, s: &S) -> Option<usize> {
        let peers = self.peers();
        if self.index.is_allocated() {
            self.index.find(s.hash_one(addr), |q| {
                peers.get(q).is_some_and(|p| p.addr == *addr)
            })
        } else {
            peers.iter().position(|p| p.addr == *addr)
        }
    }

    /// Drop the index entry of position `pos` (leaving a hole).
    fn ix_remove<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        if self.index.is_allocated() {
            self.index.remove(s.hash_one(self.list[pos].addr), pos);
        }
    }

    /// Add the index entry of position `pos` (below `len`).
    fn ix_insert<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        if self.index.is_allocated() {
            let items = self.len as usize;
            self.index
                .insert(s.hash_one(self.list[pos].addr), pos, items);
        }
    }

    /// Copy the peer at `from` into the hole at `to` and repoint its index
    /// entry; `from` becomes the hole.
    fn move_slot<S: BuildHasher>(&mut self, from: usize, to: usize, s: &S) {
        if from == to {
            return;
        }
        self.list[to] = self.list[from];
        if self.index.is_allocated() {
            self.index.repoint(s.hash_one(self.list[to].addr), from, to);
        }
    }

    fn swap<S: BuildHasher>(&mut self, i: usize, j: usize, s: &S) {
        if i == j {
            return;
        }
        let a = self.list[i];
        self.ix_remove(i, s);
        self.move_slot(j, i, s);
        self.list[j] = a;
        self.ix_insert(j, s);
    }

    /// Insert a peer not yet stored; returns its position.
    fn insert<S: BuildHasher>(&mut self, p: Stored<A>, s: &S) -> usize {
        let n = self.len as usize;
        let pos = if p.seeder {
            self.push(p);
            self.ix_insert(n, s);
            n
        } else {
            let l = self.leechers as usize;
            if l < n {
                // Move the first seeder to the end, the new leecher into its place.
                self.push(self.list[l]);
                if self.index.is_allocated() {
                    self.index.repoint(s.hash_one(self.list[n].addr), l, n);
                }
                self.list[l] = p;
                self.ix_insert(l, s);
            } else {
                self.push(p);
                self.ix_insert(n, s);
            }
            self.leechers += 1;
            l
        };
        if !self.index.is_allocated() && self.len as usize > INDEX_ABOVE {
            self.build_index(s);
        }
        pos
    }

    fn build_index<S: BuildHasher>(&mut self, s: &S) {
        let peers = &self.list[..self.len as usize];
        let mut ix = PosIndex::with_items(peers.len());
        for (i, p) in peers.iter().enumerate() {
            ix.insert(s.hash_one(p.addr), i, i + 1);
        }
        self.index = ix;
    }

    /// Remove the peer at `pos`, keeping the partition; the peer moved into
    /// `pos` (if any) comes from a higher position.
    fn remove_at<S: BuildHasher>(&mut self, pos: usize, s: &S) -> Stored<A> {
        let removed = self.list[pos];
        self.ix_remove(pos, s);
        let last = self.len as usize - 1;
        if pos < self.leechers as usize {
            let last_leecher = self.leechers as usize - 1;
            self.move_slot(last_leecher, pos, s);
            self.move_slot(last, last_leecher, s);
            self.leechers -= 1;
        } else {
            self.move_slot(last, pos, s);
        }
        self.len -= 1;
        if (self.len as usize) < INDEX_DROP_BELOW {
            self.index = PosIndex::default();
        }
        removed
    }

    /// Set the seeder flag of the peer at `pos`; returns its new position.
    fn set_seeder<S: BuildHasher>(&mut self, pos: usize, seeder: bool, s: &S) -> usize {
        if self.list[pos].seeder == seeder {
            return pos;
        }
        let to = if seeder {
            // Leecher -> seeder: swap with the last leecher, shrink the leecher part.
            self.leechers -= 1;
            self.leechers as usize
        } else {
            // Seeder -> leecher: swap with the first seeder, grow the leecher part.
            self.leechers += 1;
            self.leechers as usize - 1
        };
        self.swap(pos, to, s);
        self.list[to].seeder = seeder;
        to
    }

    /// Up to `want` random peers, without position `me`; only leechers for
    /// a seeder. A random start and a random stride coprime with the range
    /// walk a permutation of it: no duplicates, no allocation, every peer
    /// equally likely to be picked.
    fn select(
        &self,
        me: Option<usize>,
        seeder: bool,
        want: usize,
        rng: &mut SmallRng,
        out: &mut Vec<A>,
    ) {
        let range = if seeder {
            &self.list[..self.leechers as usize]
        } else {
            self.peers()
        };
        let m = range.len();
        let me = me.filter(|&p| p < m);
        let avail = m - usize::from(me.is_some());
        let want = want.saturating_sub(out.len());
        if want == 0 || avail == 0 {
            return;
        }
        if avail <= want {
            out.extend(
                range
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| Some(i) != me)
                    .map(|(_, p)| p.addr),
            );
            return;
        }
        // Here m >= 2 (avail > want >= 1). A window of `want` consecutive
        // peers from a random start, wrapping: every peer is equally likely
        // to be in it, and it reads one contiguous run of memory instead of
        // `want` scattered cache lines (the array order itself is shuffled
        // by swap-removals over time).
        let start = rng.random_range(0..m);
        let (tail, head) = range.split_at(start);
        let mut taken = 0;
        for (i, p) in head
            .iter()
            .enumerate()
            .map(|(i, p)| (i + start, p))
            .chain(tail.iter().enumerate())
        {
            if Some(i) != me {
                out.push(p.addr);
                taken += 1;
                if taken == want {
                    break;
                }
            }
        }
    }
}
