//! The peers of one torrent in one address family.
//!
//! Owns the peer records and their layout in memory: two peers inline in the
//! torrent (no heap allocation, the common case on a public tracker), beyond
//! that a dense array partitioned as `[leechers | seeders]`, plus an index by
//! (address, port) once the swarm is large. Random selection is an index
//! draw over that array. Not: torrent lookup or shard-wide counts
//! (`torrents.rs`).

use core::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rand::{rngs::SmallRng, Rng};

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
    /// Up to two peers; an empty slot has port 0; slot 1 is used only when
    /// slot 0 is.
    Inline([Stored<A>; 2]),
    /// Three or more peers (or recently so).
    Heap(Box<HeapPeers<A>>),
}

/// A dense array `[leechers | seeders]`, `list[..leechers]` are leechers.
pub(crate) struct HeapPeers<A> {
    list: Vec<Stored<A>>,
    leechers: u32,
    /// Positions in `list`, hashed by the peer's address; present only when
    /// the swarm is large. Kept in sync on every move. Boxed: small heap
    /// swarms should not pay for an empty table header.
    index: Option<Box<HashTable<u32>>>,
}

impl<A: PeerAddr> Default for Peers<A> {
    fn default() -> Self {
        Peers::Inline([Stored::default(); 2])
    }
}

impl<A: PeerAddr> Peers<A> {
    /// Number of stored peers.
    pub(crate) fn len(&self) -> usize {
        match self {
            Peers::Inline(s) => s.iter().filter(|p| p.occupied()).count(),
            Peers::Heap(h) => h.list.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of stored seeders.
    pub(crate) fn seeders(&self) -> usize {
        match self {
            Peers::Inline(s) => s.iter().filter(|p| p.occupied() && p.seeder).count(),
            Peers::Heap(h) => h.list.len() - h.leechers as usize,
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
                    // A third peer: move to the heap and continue there.
                    let mut h = Box::new(HeapPeers::from_slots(slots, s));
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
                if i == 0 {
                    slots[0] = slots[1];
                }
                slots[1] = Stored::default();
                Some(was)
            }
            Peers::Heap(h) => {
                let p = h.find(addr, s)?;
                let was = h.remove_at(p, s).seeder;
                if h.list.len() <= 1 {
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
                for i in [1, 0] {
                    if slots[i].occupied() && stale(&slots[i]) {
                        if slots[i].seeder {
                            removed.0 += 1;
                        } else {
                            removed.1 += 1;
                        }
                        if i == 0 {
                            slots[0] = slots[1];
                        }
                        slots[1] = Stored::default();
                    }
                }
            }
            Peers::Heap(h) => {
                let mut i = 0;
                while i < h.list.len() {
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

    /// Give memory back: inline when at most two peers remain, smaller
    /// array and index (or none) when much smaller than their capacity.
    fn compact<S: BuildHasher>(&mut self, s: &S) {
        let Peers::Heap(h) = self else { return };
        let n = h.list.len();
        if n <= 2 {
            let mut slots = [Stored::default(); 2];
            for (slot, p) in slots.iter_mut().zip(&h.list) {
                *slot = *p;
            }
            *self = Peers::Inline(slots);
            return;
        }
        if h.list.capacity() > 4 * n && h.list.capacity() > 8 {
            h.list.shrink_to(2 * n);
        }
        if n < INDEX_DROP_BELOW {
            h.index = None;
        } else if let Some(ix) = &mut h.index {
            if ix.capacity() > 4 * n {
                let list = &h.list;
                ix.shrink_to(n, |&q| s.hash_one(list[q as usize].addr));
            }
        }
    }

    /// Bytes this peer set owns on the heap (capacity-based, as glibc
    /// malloc chunks).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Peers::Inline(_) => 0,
            Peers::Heap(h) => {
                let mut b = malloc_size(size_of::<HeapPeers<A>>());
                b += malloc_size(h.list.capacity() * size_of::<Stored<A>>());
                if let Some(ix) = &h.index {
                    b += malloc_size(size_of::<HashTable<u32>>());
                    b += table_bytes(ix.capacity(), size_of::<u32>());
                }
                b
            }
        }
    }

    /// Panics if an internal invariant does not hold (tests only).
    pub(crate) fn check_invariants<S: BuildHasher>(&self, s: &S) {
        match self {
            Peers::Inline(slots) => {
                assert!(slots[0].occupied() || !slots[1].occupied(), "inline hole");
                assert!(
                    !slots[0].occupied() || !slots[1].occupied() || slots[0].addr != slots[1].addr
                );
            }
            Peers::Heap(h) => {
                assert!(h.leechers as usize <= h.list.len());
                for (i, p) in h.list.iter().enumerate() {
                    assert!(p.occupied(), "port 0 stored");
                    assert_eq!(
                        p.seeder,
                        i >= h.leechers as usize,
                        "partition broken at {i}"
                    );
                }
                if let Some(ix) = &h.index {
                    assert_eq!(ix.len(), h.list.len(), "index size");
                    for (i, p) in h.list.iter().enumerate() {
                        let found =
                            ix.find(s.hash_one(p.addr), |&q| h.list[q as usize].addr == p.addr);
                        assert_eq!(found.map(|&q| q as usize), Some(i), "index position");
                    }
                } else {
                    assert!(h.list.len() <= INDEX_ABOVE, "large swarm without index");
                    for (i, p) in h.list.iter().enumerate() {
                        assert!(
                            !h.list[..i].iter().any(|q| q.addr == p.addr),
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

/// Bytes of a hashbrown table with `capacity` items of `item` bytes
/// (buckets, a control byte each, one trailing group), as malloc'd.
pub(crate) fn table_bytes(capacity: usize, item: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    malloc_size(buckets * (item + 1) + 16)
}

fn select_inline<A: PeerAddr>(
    slots: &[Stored<A>; 2],
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
    fn from_slots<S: BuildHasher>(slots: &[Stored<A>; 2], s: &S) -> Self {
        let mut h = HeapPeers {
            list: Vec::with_capacity(3),
            leechers: 0,
            index: None,
        };
        for p in slots.iter().filter(|p| p.occupied()) {
            h.insert(*p, s);
        }
        h
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
        match &self.index {
            Some(ix) => ix
                .find(s.hash_one(addr), |&q| {
                    self.list.get(q as usize).is_some_and(|p| p.addr == *addr)
                })
                .map(|&q| q as usize),
            None => self.list.iter().position(|p| p.addr == *addr),
        }
    }

    /// Drop the index entry of position `pos` (leaving a hole).
    fn ix_remove<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        if let Some(ix) = &mut self.index {
            if let Ok(e) = ix.find_entry(s.hash_one(self.list[pos].addr), |&q| q as usize == pos) {
                e.remove();
            }
        }
    }

    /// Add the index entry of position `pos`.
    fn ix_insert<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        if let Some(ix) = &mut self.index {
            let list = &self.list;
            ix.insert_unique(s.hash_one(list[pos].addr), pos as u32, |&q| {
                s.hash_one(list[q as usize].addr)
            });
        }
    }

    /// Copy the peer at `from` into the hole at `to` and repoint its index
    /// entry; `from` becomes the hole.
    fn move_slot<S: BuildHasher>(&mut self, from: usize, to: usize, s: &S) {
        if from == to {
            return;
        }
        self.list[to] = self.list[from];
        if let Some(ix) = &mut self.index {
            if let Some(q) = ix.find_mut(s.hash_one(self.list[to].addr), |&q| q as usize == from) {
                *q = to as u32;
            }
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
        let n = self.list.len();
        if n == self.list.capacity() {
            // Grow by half, not double: memory per peer is the budget.
            self.list.reserve_exact((n / 2).max(2));
        }
        let pos = if p.seeder {
            self.list.push(p);
            self.ix_insert(n, s);
            n
        } else {
            let l = self.leechers as usize;
            if l < n {
                // Move the first seeder to the end, the new leecher into its place.
                self.list.push(self.list[l]);
                if let Some(ix) = &mut self.index {
                    if let Some(q) =
                        ix.find_mut(s.hash_one(self.list[n].addr), |&q| q as usize == l)
                    {
                        *q = n as u32;
                    }
                }
                self.list[l] = p;
                self.ix_insert(l, s);
            } else {
                self.list.push(p);
                self.ix_insert(n, s);
            }
            self.leechers += 1;
            l
        };
        if self.index.is_none() && self.list.len() > INDEX_ABOVE {
            self.build_index(s);
        }
        pos
    }

    fn build_index<S: BuildHasher>(&mut self, s: &S) {
        let list = &self.list;
        let mut ix = HashTable::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            ix.insert_unique(s.hash_one(p.addr), i as u32, |&q| {
                s.hash_one(list[q as usize].addr)
            });
        }
        self.index = Some(Box::new(ix));
    }

    /// Remove the peer at `pos`, keeping the partition; the peer moved into
    /// `pos` (if any) comes from a higher position.
    fn remove_at<S: BuildHasher>(&mut self, pos: usize, s: &S) -> Stored<A> {
        let removed = self.list[pos];
        self.ix_remove(pos, s);
        let last = self.list.len() - 1;
        if pos < self.leechers as usize {
            let last_leecher = self.leechers as usize - 1;
            self.move_slot(last_leecher, pos, s);
            self.move_slot(last, last_leecher, s);
            self.leechers -= 1;
        } else {
            self.move_slot(last, pos, s);
        }
        self.list.pop();
        if self.list.len() < INDEX_DROP_BELOW {
            self.index = None;
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
            &self.list[..]
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
