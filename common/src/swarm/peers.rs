//! The peers of one torrent in one address family.
//!
//! Owns the peer records and their layout in memory. Every form keeps the
//! peers in one dense run partitioned as `[leechers | seeders]` (so a
//! stored peer needs no seeder flag), and grows through three forms:
//!
//! - **Inline**: up to [`PeerAddr::INLINE`] peers in the torrent entry
//!   itself (two IPv4, one IPv6), no allocation — most torrents of a
//!   public tracker.
//! - **Sorted**: up to [`SORTED_MAX`] peers in a heap array, each half
//!   sorted by (address, port) and found by binary search: no index at
//!   all, 8 bytes per IPv4 peer plus at most 1/8 slack. An insert or a
//!   removal moves the tail of the array (at most a few KiB).
//! - **Indexed**: larger swarms, in arrival order (swap-removal) with a
//!   [`PosIndex`] by hash, behind one box so the entry stays small.
//!
//! Random selection reads a window of the run. Not: torrent lookup or
//! shard-wide counts (`torrents.rs`).

use core::hash::{BuildHasher, Hash};

use rand::{rngs::SmallRng, Rng};

use super::pos_index::PosIndex;

/// A peer address as stored and returned: what goes into a response.
pub(crate) trait PeerAddr: Copy + Eq + Hash + Default {
    /// Sort key: (address, port), totally ordered.
    type Key: Ord + Copy;
    /// The inline slots: `[Stored<Self>; INLINE]`.
    type Slots: Copy + Default + AsRef<[Stored<Self>]> + AsMut<[Stored<Self>]>;
    /// Peers stored in the torrent entry itself.
    const INLINE: usize;
    /// The announced port; 0 is never stored.
    fn port(&self) -> u16;
    /// The sort key.
    fn key(&self) -> Self::Key;
}

/// One stored peer: 8 bytes for IPv4 (address 4, port 2, seen 2), 20 for
/// IPv6. Whether it seeds is its position (`[leechers | seeders]`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stored<A> {
    pub(crate) addr: A,
    /// Low 16 bits of the coarse seconds of the last announce: an age up
    /// to 18.2 hours reads right (see [`Stored::age`]).
    pub(crate) seen: u16,
}

impl<A> Stored<A> {
    fn new(addr: A, now: u32) -> Self {
        Stored {
            addr,
            seen: now as u16,
        }
    }

    /// Seconds since the last announce, modulo 65,536: right as long as
    /// the cleaner visits every torrent at least every 65,536 − timeout
    /// seconds (at 4,096 torrents per 10-second slice, up to 25 million
    /// torrents per shard with the default timeout).
    pub(crate) fn age(&self, now: u32) -> u32 {
        u32::from((now as u16).wrapping_sub(self.seen))
    }
}

/// Most peers a swarm keeps in a sorted array; above, it gets an index.
/// 1,024 IPv4 peers are 8 KiB: a binary search of 10 steps over L1/L2,
/// and an insert moves 4 KiB on average.
pub(crate) const SORTED_MAX: usize = 1024;
/// An indexed swarm shrinking below this goes back to a sorted array
/// (hysteresis, so a swarm hovering around the threshold does not
/// rebuild its index on every announce).
const SORTED_AGAIN_BELOW: usize = SORTED_MAX / 2;

/// A binary search of a sorted swarm, one probe per warm-up pass:
/// `size` peers from `base` left to search (0: done).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Probe {
    base: u32,
    size: u32,
}

impl Probe {
    /// More lines to read.
    pub(crate) fn active(self) -> bool {
        self.size > 0
    }

    /// The position the search reads next: the middle while more than one
    /// peer is left, then the base; `None` when done.
    fn next(self) -> Option<u32> {
        match self.size {
            0 => None,
            1 => Some(self.base),
            n => Some(self.base + n / 2),
        }
    }

    /// Prefetch the line of `list` the search reads next, if any.
    fn prefetch_next<T>(self, list: &[T]) {
        if let Some(q) = self.next().and_then(|i| list.get(i as usize)) {
            uring_rt::prefetch(q);
        }
    }
}

/// What an announce did to the peer set, for the caller's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// A new peer was stored; its seeder flag.
    Added { seeder: bool },
    /// An existing peer was refreshed; its seeder flag before and after.
    Updated { was: bool, now: bool },
}

/// The peers of one torrent in one family: 24 bytes, so that an IPv4 or
/// IPv6 torrent entry is 48.
pub(crate) enum Peers<A: PeerAddr> {
    /// `slots[..len]`, `slots[..leechers]` the leechers, each half sorted.
    Inline {
        slots: A::Slots,
        len: u8,
        leechers: u8,
    },
    /// `list[..len]`, `list[..leechers]` the leechers, each half sorted;
    /// `list.len()` is the capacity.
    Sorted {
        list: Box<[Stored<A>]>,
        len: u16,
        leechers: u16,
    },
    /// More than [`SORTED_MAX`] peers (or recently so).
    Indexed(Box<IndexedPeers<A>>),
}

/// A dense array `[leechers | seeders]` in no particular order within a
/// half: `list[..len]` are the peers, `list[..leechers]` the leechers.
pub(crate) struct IndexedPeers<A> {
    list: Box<[Stored<A>]>,
    len: u32,
    leechers: u32,
    /// Positions in `list`, hashed by the peer's address. Kept in sync on
    /// every move.
    index: PosIndex,
}

impl<A: PeerAddr> Default for Peers<A> {
    fn default() -> Self {
        Peers::Inline {
            slots: A::Slots::default(),
            len: 0,
            leechers: 0,
        }
    }
}

impl<A: PeerAddr> Peers<A> {
    /// Number of stored peers.
    pub(crate) fn len(&self) -> usize {
        match self {
            Peers::Inline { len, .. } => usize::from(*len),
            Peers::Sorted { len, .. } => usize::from(*len),
            Peers::Indexed(h) => h.len as usize,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of stored leechers.
    fn leechers(&self) -> usize {
        match self {
            Peers::Inline { leechers, .. } => usize::from(*leechers),
            Peers::Sorted { leechers, .. } => usize::from(*leechers),
            Peers::Indexed(h) => h.leechers as usize,
        }
    }

    /// Number of stored seeders.
    pub(crate) fn seeders(&self) -> usize {
        self.len() - self.leechers()
    }

    /// The stored peers, `[leechers | seeders]`.
    fn peers(&self) -> &[Stored<A>] {
        match self {
            Peers::Inline { slots, len, .. } => &slots.as_ref()[..usize::from(*len)],
            Peers::Sorted { list, len, .. } => &list[..usize::from(*len)],
            Peers::Indexed(h) => h.peers(),
        }
    }

    /// The whole array (capacity) of an inline or sorted swarm with its
    /// lengths; they are written back with [`Peers::set_lengths`].
    fn run_mut(&mut self) -> (&mut [Stored<A>], usize, usize) {
        match self {
            Peers::Inline {
                slots,
                len,
                leechers,
            } => (slots.as_mut(), usize::from(*len), usize::from(*leechers)),
            Peers::Sorted {
                list,
                len,
                leechers,
            } => (&mut list[..], usize::from(*len), usize::from(*leechers)),
            Peers::Indexed(_) => unreachable!("an indexed swarm has no sorted run"),
        }
    }

    /// Store the lengths of an inline or sorted swarm (within its bounds:
    /// `INLINE` and `SORTED_MAX` + 1 fit their fields).
    fn set_lengths(&mut self, n: usize, l: usize) {
        match self {
            Peers::Inline { len, leechers, .. } => {
                (*len, *leechers) = (n as u8, l as u8);
            }
            Peers::Sorted { len, leechers, .. } => {
                (*len, *leechers) = (n as u16, l as u16);
            }
            Peers::Indexed(h) => {
                (h.len, h.leechers) = (n as u32, l as u32);
            }
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
        if let Peers::Indexed(h) = self {
            let (change, me) = h.store(addr, seeder, now, s);
            h.select(Some(me), seeder, want, rng, out);
            return change;
        }
        let found = sorted_find(self.peers(), self.leechers(), &addr, seeder);
        let (change, me) = if let Some(pos) = found {
            let (list, n, l) = self.run_mut();
            let was = pos >= l;
            list[pos].seen = now as u16;
            let me = if was == seeder {
                pos
            } else {
                let p = list[pos];
                sorted_remove(list, n, pos);
                let l = l - usize::from(!was);
                let at = sorted_insert(list, n - 1, l, p, seeder);
                self.set_lengths(n, l + usize::from(!seeder));
                at
            };
            (Change::Updated { was, now: seeder }, me)
        } else {
            self.reserve_one();
            let (list, n, l) = self.run_mut();
            let at = sorted_insert(list, n, l, Stored::new(addr, now), seeder);
            self.set_lengths(n + 1, l + usize::from(!seeder));
            if n + 1 > SORTED_MAX {
                // Building the index keeps the order: `at` stays right.
                let h = self.make_indexed(s);
                h.select(Some(at), seeder, want, rng, out);
                return Change::Added { seeder };
            }
            (Change::Added { seeder }, at)
        };
        let peers = self.peers();
        let range = if seeder {
            &peers[..self.leechers()]
        } else {
            peers
        };
        select_window(range, Some(me), want, rng, out);
        change
    }

    /// Room for one more peer in an inline or sorted swarm: an inline one
    /// that is full moves to the heap, a full array grows by an eighth.
    fn reserve_one(&mut self) {
        let (n, l) = (self.len(), self.leechers());
        match self {
            Peers::Inline { slots, .. } if n == A::INLINE => {
                let mut v = Vec::with_capacity(n + 2);
                v.extend_from_slice(&slots.as_ref()[..n]);
                v.resize(n + 2, Stored::default());
                *self = Peers::Sorted {
                    list: v.into_boxed_slice(),
                    len: n as u16,
                    leechers: l as u16,
                };
            }
            Peers::Sorted { list, .. } if n == list.len() => {
                resize(list, n + (n / 8).max(2));
            }
            _ => {}
        }
    }

    /// A sorted swarm above [`SORTED_MAX`] gets its index (and a box).
    fn make_indexed<S: BuildHasher>(&mut self, s: &S) -> &mut IndexedPeers<A> {
        let (n, l) = (self.len(), self.leechers());
        if let Peers::Sorted { list, .. } = self {
            let list = std::mem::take(list);
            let mut h = IndexedPeers {
                list,
                len: n as u32,
                leechers: l as u32,
                index: PosIndex::default(),
            };
            h.build_index(s);
            *self = Peers::Indexed(Box::new(h));
        }
        match self {
            Peers::Indexed(h) => h,
            _ => unreachable!("made indexed above"),
        }
    }

    /// Warming, first step: prefetch the line a lookup of `addr` by a
    /// `seeder` or a leecher reads first. An indexed swarm: its index slot;
    /// returns the hash for `warm_peer`. A sorted swarm: the first probe in
    /// each half; returns the searches of [`Peers::warm_probes`], which
    /// [`Peers::warm_step`] goes on with.
    pub(crate) fn warm_first<S: BuildHasher>(
        &self,
        addr: &A,
        seeder: bool,
        s: &S,
    ) -> (u64, [Probe; 2]) {
        match self {
            Peers::Indexed(h) => {
                let hash = s.hash_one(addr);
                h.index.prefetch(hash);
                (hash, [Probe::default(); 2])
            }
            Peers::Sorted { list, .. } => {
                let probes = self.warm_probes(seeder);
                for p in probes {
                    p.prefetch_next(list);
                }
                (0, probes)
            }
            Peers::Inline { .. } => (0, [Probe::default(); 2]),
        }
    }

    /// Warming a sorted swarm: the binary searches of a lookup by a
    /// `seeder` or a leecher, in its own half and then in the other (where
    /// `sorted_find` goes on when the peer is new to the swarm or changed
    /// role, most announces under aquatic_udp_load_test); finished ones for
    /// other forms. Advanced by [`Peers::warm_step`].
    pub(crate) fn warm_probes(&self, seeder: bool) -> [Probe; 2] {
        match self {
            Peers::Sorted { len, leechers, .. } => {
                let (n, l) = (u32::from(*len), u32::from(*leechers));
                let leechers = Probe { base: 0, size: l };
                let seeders = Probe {
                    base: l,
                    size: n - l,
                };
                if seeder {
                    [seeders, leechers]
                } else {
                    [leechers, seeders]
                }
            }
            _ => [Probe::default(); 2],
        }
    }

    /// Warming a sorted swarm: read the next probe of `p` for `addr`, the
    /// one `sorted_find`'s binary search will read (prefetched by the step
    /// before, or by [`Peers::warm_first`]), advance `p` as that search
    /// does, and prefetch the probe after it: a batch's pass reads lines
    /// that the pass before asked for. Returns a value for the checksum.
    pub(crate) fn warm_step(&self, p: &mut Probe, addr: &A) -> u64 {
        let (Peers::Sorted { list, .. }, Some(at)) = (self, p.next()) else {
            p.size = 0;
            return 0;
        };
        let Some(q) = list.get(at as usize) else {
            p.size = 0;
            return 0;
        };
        if p.size == 1 {
            // The search's last read, at its base.
            p.size = 0;
        } else {
            if q.addr.key() <= addr.key() {
                p.base = at;
            }
            p.size -= p.size / 2;
        }
        p.prefetch_next(list);
        u64::from(q.seen)
    }

    /// Warming an indexed swarm, second step: prefetch the peer's own line
    /// if the index slot guessed it.
    pub(crate) fn warm_peer(&self, hash: u64) {
        if let Peers::Indexed(h) = self {
            if let Some(p) = h.index.guess(hash).and_then(|p| h.list.get(p)) {
                uring_rt::prefetch(p);
            }
        }
    }

    /// Select up to `want` peers for a requester that is not stored.
    pub(crate) fn select(&self, seeder: bool, want: usize, rng: &mut SmallRng, out: &mut Vec<A>) {
        if let Peers::Indexed(h) = self {
            h.select(None, seeder, want, rng, out);
        } else {
            {
                let peers = self.peers();
                let range = if seeder {
                    &peers[..self.leechers()]
                } else {
                    peers
                };
                select_window(range, None, want, rng, out);
            }
        }
    }

    /// Remove `addr`; its seeder flag if it was stored.
    pub(crate) fn remove<S: BuildHasher>(&mut self, addr: &A, s: &S) -> Option<bool> {
        let was = if let Peers::Indexed(h) = self {
            let p = h.find(addr, s)?;
            h.remove_at(p, s)
        } else {
            {
                let pos = sorted_find(self.peers(), self.leechers(), addr, false)?;
                let (list, n, l) = self.run_mut();
                let was = pos >= l;
                sorted_remove(list, n, pos);
                self.set_lengths(n - 1, l - usize::from(!was));
                was
            }
        };
        let n = self.len();
        match self {
            Peers::Indexed(_) if n < SORTED_AGAIN_BELOW => self.compact(),
            Peers::Sorted { list, .. } if n <= 1 || list.len() >= 2 * n + 8 => self.compact(),
            _ => {}
        }
        Some(was)
    }

    /// Remove peers not seen for more than `timeout` seconds; returns the
    /// numbers of (seeders, leechers) removed. Shrinks storage afterwards.
    pub(crate) fn retain_fresh<S: BuildHasher>(
        &mut self,
        now: u32,
        timeout: u32,
        s: &S,
    ) -> (usize, usize) {
        let fresh = |p: &Stored<A>| p.age(now) <= timeout;
        let removed = if let Peers::Indexed(h) = self {
            {
                let mut removed = (0, 0);
                let mut i = 0;
                while i < h.len as usize {
                    if fresh(&h.list[i]) {
                        i += 1;
                    } else if h.remove_at(i, s) {
                        // remove_at moved an unvisited peer into `i`.
                        removed.0 += 1;
                    } else {
                        removed.1 += 1;
                    }
                }
                removed
            }
        } else {
            {
                let (list, n, l) = self.run_mut();
                let (kept, kept_leechers) = sorted_retain(list, n, l, fresh);
                self.set_lengths(kept, kept_leechers);
                ((n - l) - (kept - kept_leechers), l - kept_leechers)
            }
        };
        self.compact();
        removed
    }

    /// Give memory back: inline when at most `INLINE` peers remain, sorted
    /// below [`SORTED_AGAIN_BELOW`], an array of at most 1/8 slack (plus 2)
    /// once it holds more than 1/4.
    fn compact(&mut self) {
        let (n, l) = (self.len(), self.leechers());
        if let Peers::Indexed(h) = self {
            if n >= SORTED_AGAIN_BELOW {
                if h.list.len() > n + n / 4 + 4 {
                    resize(&mut h.list, n + n / 8 + 2);
                }
                h.index.shrink_for(n);
                return;
            }
            let mut list = std::mem::take(&mut h.list);
            list[..l].sort_unstable_by_key(|p| p.addr.key());
            list[l..n].sort_unstable_by_key(|p| p.addr.key());
            *self = Peers::Sorted {
                list,
                len: n as u16,
                leechers: l as u16,
            };
        }
        if let Peers::Sorted { list, .. } = self {
            if n <= A::INLINE {
                let mut slots = A::Slots::default();
                slots.as_mut()[..n].copy_from_slice(&list[..n]);
                *self = Peers::Inline {
                    slots,
                    len: n as u8,
                    leechers: l as u8,
                };
            } else if list.len() > n + n / 4 + 4 {
                resize(list, n + n / 8 + 2);
            }
        }
    }

    /// Bytes this peer set owns on the heap (capacity-based, as glibc
    /// malloc chunks).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Peers::Inline { .. } => 0,
            Peers::Sorted { list, .. } => malloc_size(size_of_val::<[Stored<A>]>(list)),
            Peers::Indexed(h) => {
                malloc_size(size_of::<IndexedPeers<A>>())
                    + malloc_size(size_of_val::<[Stored<A>]>(&h.list))
                    + malloc_size(h.index.table_bytes())
            }
        }
    }

    /// Panics if an internal invariant does not hold (tests only).
    pub(crate) fn check_invariants<S: BuildHasher>(&self, s: &S) {
        let (peers, l) = (self.peers(), self.leechers());
        assert!(l <= peers.len(), "more leechers than peers");
        assert!(peers.iter().all(|p| p.addr.port() != 0), "port 0 stored");
        if let Peers::Indexed(h) = self {
            {
                assert!(h.len as usize >= SORTED_AGAIN_BELOW, "small swarm indexed");
                assert!(h.list.len() >= peers.len());
                assert_eq!(h.index.count(), peers.len(), "index size");
                for (i, p) in peers.iter().enumerate() {
                    let found = h
                        .index
                        .find(s.hash_one(p.addr), |q| peers[q].addr == p.addr);
                    assert_eq!(found, Some(i), "index position");
                }
            }
        } else {
            {
                if let Peers::Sorted { list, .. } = self {
                    assert!(peers.len() <= SORTED_MAX, "large swarm without index");
                    assert!(list.len() >= peers.len());
                } else {
                    assert!(peers.len() <= A::INLINE, "inline overflow");
                }
                let (leechers, seeders) = peers.split_at(l);
                for half in [leechers, seeders] {
                    assert!(
                        half.windows(2).all(|w| w[0].addr.key() < w[1].addr.key()),
                        "half not sorted (or a duplicate)"
                    );
                }
                for p in leechers {
                    assert!(
                        seeders
                            .binary_search_by_key(&p.addr.key(), |q| q.addr.key())
                            .is_err(),
                        "peer both leecher and seeder"
                    );
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

/// Reallocate `list` to `cap` (>= the peers it holds) slots: in place
/// when the allocator can.
fn resize<A: PeerAddr>(list: &mut Box<[Stored<A>]>, cap: usize) {
    let mut v = std::mem::take(list).into_vec();
    if cap > v.len() {
        v.reserve_exact(cap - v.len());
        v.resize(cap, Stored::default());
    } else {
        v.truncate(cap);
    }
    *list = v.into_boxed_slice();
}

/// Position of `addr` in a sorted run `[leechers | seeders]`; the half
/// `seeder` says is searched first.
fn sorted_find<A: PeerAddr>(
    peers: &[Stored<A>],
    leechers: usize,
    addr: &A,
    seeder: bool,
) -> Option<usize> {
    let key = addr.key();
    // A half of a few peers (one or two cache lines) is scanned: cheaper
    // than a search's loop, and most swarms are that small.
    let find = |half: &[Stored<A>]| {
        if half.len() <= 8 {
            half.iter().position(|p| p.addr.key() == key)
        } else {
            half.binary_search_by_key(&key, |p| p.addr.key()).ok()
        }
    };
    let (l, s) = peers.split_at(leechers);
    let in_leechers = || find(l);
    let in_seeders = || find(s).map(|i| i + leechers);
    if seeder {
        in_seeders().or_else(in_leechers)
    } else {
        in_leechers().or_else(in_seeders)
    }
}

/// Insert `p` (not stored) into its half of the sorted run `list[..n]`
/// with `l` leechers; `n < list.len()`. Returns its position.
fn sorted_insert<A: PeerAddr>(
    list: &mut [Stored<A>],
    n: usize,
    l: usize,
    p: Stored<A>,
    seeder: bool,
) -> usize {
    let (lo, hi) = if seeder { (l, n) } else { (0, l) };
    let key = p.addr.key();
    let at = lo + list[lo..hi].partition_point(|q| q.addr.key() < key);
    list.copy_within(at..n, at + 1);
    list[at] = p;
    at
}

/// Remove position `pos` from the run `list[..n]`, keeping the order.
fn sorted_remove<A: Copy>(list: &mut [Stored<A>], n: usize, pos: usize) {
    list.copy_within(pos + 1..n, pos);
}

/// Keep the peers of the run `list[..n]` (`l` leechers) for which `keep`
/// holds, in order; returns the new (len, leechers).
fn sorted_retain<A: Copy>(
    list: &mut [Stored<A>],
    n: usize,
    l: usize,
    keep: impl Fn(&Stored<A>) -> bool,
) -> (usize, usize) {
    let mut w = 0;
    let mut kept_leechers = 0;
    for i in 0..n {
        if i == l {
            kept_leechers = w;
        }
        if keep(&list[i]) {
            list[w] = list[i];
            w += 1;
        }
    }
    if l == n {
        kept_leechers = w;
    }
    (w, kept_leechers)
}

/// Up to `want` (minus what `out` holds) random peers of `range`, without
/// position `me`. A window of consecutive peers from a random start,
/// wrapping: every peer is equally likely to be in it, and it reads one
/// contiguous run of memory instead of `want` scattered cache lines. The
/// window is copied as at most four runs, not peer by peer. Inlined up to
/// the common "nothing to select" (a lone peer, numwant 0).
#[inline]
fn select_window<A: PeerAddr>(
    range: &[Stored<A>],
    me: Option<usize>,
    want: usize,
    rng: &mut SmallRng,
    out: &mut Vec<A>,
) {
    let m = range.len();
    let me = me.filter(|&p| p < m);
    let avail = m - usize::from(me.is_some());
    let want = want.saturating_sub(out.len());
    if want > 0 && avail > 0 {
        select_some(range, me, avail, want, rng, out);
    }
}

/// [`select_window`] with `want` (> 0) peers still wanted of `avail` (> 0).
fn select_some<A: PeerAddr>(
    range: &[Stored<A>],
    me: Option<usize>,
    avail: usize,
    want: usize,
    rng: &mut SmallRng,
    out: &mut Vec<A>,
) {
    let m = range.len();
    if avail <= want {
        push_except(out, range, me);
        return;
    }
    // Here m > want: the window of `want` peers, one longer when it covers
    // `me` (skipped), still fits in the range.
    let start = rng.random_range(0..m);
    let covers_me = me.is_some_and(|p| (p + m - start) % m < want);
    let take = want + usize::from(covers_me);
    let first = take.min(m - start);
    out.reserve(want);
    push_except(
        out,
        &range[start..start + first],
        me.map(|p| p.wrapping_sub(start)),
    );
    push_except(out, &range[..take - first], me);
}

/// Append the addresses of `run`, without position `skip` of it.
fn push_except<A: PeerAddr>(out: &mut Vec<A>, run: &[Stored<A>], skip: Option<usize>) {
    match skip.filter(|&k| k < run.len()) {
        Some(k) => {
            out.extend(run[..k].iter().map(|p| p.addr));
            out.extend(run[k + 1..].iter().map(|p| p.addr));
        }
        None => out.extend(run.iter().map(|p| p.addr)),
    }
}

impl<A: PeerAddr> IndexedPeers<A> {
    /// The stored peers.
    fn peers(&self) -> &[Stored<A>] {
        &self.list[..self.len as usize]
    }

    /// Append `p` at position `len` (growing the array by an eighth when
    /// full: memory per peer is the budget).
    fn push(&mut self, p: Stored<A>) {
        let n = self.len as usize;
        if n == self.list.len() {
            resize(&mut self.list, n + n / 8);
        }
        self.list[n] = p;
        self.len += 1;
    }

    /// Store or refresh `addr`; what changed and where the peer now is.
    fn store<S: BuildHasher>(&mut self, addr: A, seeder: bool, now: u32, s: &S) -> (Change, usize) {
        if let Some(p) = self.find(&addr, s) {
            let was = p >= self.leechers as usize;
            self.list[p].seen = now as u16;
            (
                Change::Updated { was, now: seeder },
                self.set_seeder(p, seeder, s),
            )
        } else {
            let p = self.insert(Stored::new(addr, now), seeder, s);
            (Change::Added { seeder }, p)
        }
    }

    fn find<S: BuildHasher>(&self, addr: &A, s: &S) -> Option<usize> {
        let peers = self.peers();
        self.index.find(s.hash_one(addr), |q| {
            peers.get(q).is_some_and(|p| p.addr == *addr)
        })
    }

    /// Drop the index entry of position `pos` (leaving a hole).
    fn ix_remove<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        self.index.remove(s.hash_one(self.list[pos].addr), pos);
    }

    /// Add the index entry of position `pos` (below `len`).
    fn ix_insert<S: BuildHasher>(&mut self, pos: usize, s: &S) {
        let items = self.len as usize;
        self.index
            .insert(s.hash_one(self.list[pos].addr), pos, items);
    }

    /// Copy the peer at `from` into the hole at `to` and repoint its index
    /// entry; `from` becomes the hole.
    fn move_slot<S: BuildHasher>(&mut self, from: usize, to: usize, s: &S) {
        if from == to {
            return;
        }
        self.list[to] = self.list[from];
        self.index.repoint(s.hash_one(self.list[to].addr), from, to);
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
    fn insert<S: BuildHasher>(&mut self, p: Stored<A>, seeder: bool, s: &S) -> usize {
        let n = self.len as usize;
        if seeder {
            self.push(p);
            self.ix_insert(n, s);
            n
        } else {
            let l = self.leechers as usize;
            if l < n {
                // Move the first seeder to the end, the new leecher into its place.
                self.push(self.list[l]);
                self.index.repoint(s.hash_one(self.list[n].addr), l, n);
                self.list[l] = p;
                self.ix_insert(l, s);
            } else {
                self.push(p);
                self.ix_insert(n, s);
            }
            self.leechers += 1;
            l
        }
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
    /// `pos` (if any) comes from a higher position. Returns whether it was
    /// a seeder.
    fn remove_at<S: BuildHasher>(&mut self, pos: usize, s: &S) -> bool {
        self.ix_remove(pos, s);
        let last = self.len as usize - 1;
        let seeder = pos >= self.leechers as usize;
        if seeder {
            self.move_slot(last, pos, s);
        } else {
            let last_leecher = self.leechers as usize - 1;
            self.move_slot(last_leecher, pos, s);
            self.move_slot(last, last_leecher, s);
            self.leechers -= 1;
        }
        self.len -= 1;
        seeder
    }

    /// Make the peer at `pos` a seeder or a leecher; returns its new position.
    fn set_seeder<S: BuildHasher>(&mut self, pos: usize, seeder: bool, s: &S) -> usize {
        if (pos >= self.leechers as usize) == seeder {
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
        to
    }

    /// Up to `want` random peers, without position `me`; only leechers for
    /// a seeder (the array order is shuffled by swap-removals over time).
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
        select_window(range, me, want, rng, out);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::swarm::PeerV4;

    /// The window the obvious way: from the drawn start, peer by peer,
    /// wrapping, skipping `me`.
    fn window_one_by_one(
        range: &[Stored<PeerV4>],
        me: Option<usize>,
        want: usize,
        rng: &mut SmallRng,
    ) -> Vec<PeerV4> {
        let m = range.len();
        let me = me.filter(|&p| p < m);
        let avail = m - usize::from(me.is_some());
        let mut out = Vec::new();
        if avail <= want {
            out.extend((0..m).filter(|&i| Some(i) != me).map(|i| range[i].addr));
            return out;
        }
        let start = rng.random_range(0..m);
        for i in (start..m).chain(0..start) {
            if out.len() == want {
                break;
            }
            if Some(i) != me {
                out.push(range[i].addr);
            }
        }
        out
    }

    /// The positions a binary search of `half` (at `start` in the run) for
    /// `key` reads, in order.
    fn search_reads(half: &[Stored<PeerV4>], start: usize, key: u64) -> Vec<usize> {
        let mut reads = Vec::new();
        let first = half.as_ptr() as usize;
        let _ = half.binary_search_by(|q| {
            let at =
                (std::ptr::from_ref(q) as usize - first) / std::mem::size_of::<Stored<PeerV4>>();
            reads.push(start + at);
            q.addr.key().cmp(&key)
        });
        reads
    }

    #[test]
    fn warm_probes_read_what_both_searches_read() {
        let mut rng = SmallRng::seed_from_u64(9);
        // All leechers, all seeders, a third seeders.
        for seeders_every in [0, 1, 3] {
            for n in 3..300u32 {
                let mut peers = Peers::<PeerV4>::default();
                let (mut out, s) = (Vec::new(), std::hash::RandomState::new());
                for i in 0..n {
                    let addr = PeerV4 {
                        ip: rng.random::<u32>().to_be_bytes(),
                        port: 1,
                    };
                    let seeder = seeders_every > 0 && i % seeders_every == 0;
                    peers.announce(addr, seeder, 0, 0, &mut rng, &mut out, &s);
                }
                let (list, l) = (peers.peers().to_vec(), peers.leechers());
                let stored = list.iter().map(|q| (q.addr, Some(q)));
                let new = (0..20).map(|_| {
                    let ip = rng.random::<u32>().to_be_bytes();
                    (PeerV4 { ip, port: 2 }, None)
                });
                for (k, (addr, found)) in stored.chain(new).enumerate() {
                    let seeder = found.map_or(k % 2 == 0, |_| k >= l);
                    let [own, other] = peers.warm_probes(seeder);
                    let (lh, sh) = list.split_at(l);
                    let (own_half, other_half) = if seeder {
                        ((sh, l), (lh, 0))
                    } else {
                        ((lh, 0), (sh, l))
                    };
                    for (mut p, (half, start)) in [(own, own_half), (other, other_half)] {
                        let mut reads = Vec::new();
                        while let Some(at) = p.next() {
                            reads.push(at as usize);
                            peers.warm_step(&mut p, &addr);
                        }
                        assert!(!p.active());
                        let expected = search_reads(half, start, addr.key());
                        assert_eq!(reads, expected, "n {n} seeders_every {seeders_every} k {k}");
                    }
                    if found.is_some() {
                        let mut p = own;
                        while p.active() {
                            peers.warm_step(&mut p, &addr);
                        }
                        assert_eq!(p.base as usize, k, "n {n}: the probes went elsewhere");
                    }
                }
            }
        }
    }

    #[test]
    fn window_runs_match_one_by_one() {
        for m in 0..12u32 {
            let range: Vec<Stored<PeerV4>> = (0..m)
                .map(|i| {
                    Stored::new(
                        PeerV4 {
                            ip: i.to_be_bytes(),
                            port: 1,
                        },
                        0,
                    )
                })
                .collect();
            let mes = (0..=m as usize + 1).map(Some).chain([None]);
            for me in mes {
                for want in 1..=m as usize + 1 {
                    for seed in 0..8 {
                        let mut a = SmallRng::seed_from_u64(seed);
                        let mut b = SmallRng::seed_from_u64(seed);
                        let mut out = Vec::new();
                        select_window(&range, me, want, &mut a, &mut out);
                        let expected = window_one_by_one(&range, me, want, &mut b);
                        assert_eq!(out, expected, "m {m} me {me:?} want {want} seed {seed}");
                    }
                }
            }
        }
    }
}
