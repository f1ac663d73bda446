//! An index of positions into a dense array, found by hash.
//!
//! Open addressing with linear probing over one flat array of `u64` slots,
//! each `tag << 32 | (position + 1)` (0 = empty), the tag being the upper
//! half of the hash and also choosing the home slot. A lookup reads one run
//! of adjacent slots (usually one cache line) and compares tags before it
//! touches the array it indexes. Why not `hashbrown::HashTable<u32>`: its
//! control bytes and buckets live in two regions, so a lookup in a table
//! larger than the cache costs two misses before the array's one; on the
//! announce path (torrent, then peer) that was four of the eight misses per
//! request. Growing needs no hashing: a slot's tag gives its home.
//!
//! The owner keeps the number of items (it is its array's length); an
//! index that was never needed is an empty boxed slice, no allocation.

/// Positions of a dense array by hash. Load factor at most 3/4.
#[derive(Default)]
pub(crate) struct PosIndex {
    slots: Box<[u64]>,
}

/// Smallest table.
const MIN_SLOTS: usize = 16;

fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn slot_tag(slot: u64) -> u32 {
    (slot >> 32) as u32
}

fn slot_pos(slot: u64) -> usize {
    (slot as u32 - 1) as usize
}

fn make_slot(tag: u32, pos: usize) -> u64 {
    debug_assert!(pos < u32::MAX as usize);
    u64::from(tag) << 32 | (pos as u64 + 1)
}

/// The fewest slots (a power of two) that hold `items` at a load of at
/// most 3/4. Growing past that doubles the table: the load stays between
/// 3/8 and 3/4, 11 to 21 bytes per item.
fn slots_for(items: usize) -> usize {
    (items * 4 / 3 + 1).next_power_of_two().max(MIN_SLOTS)
}

impl PosIndex {
    /// An index sized for `items` positions (inserted by the caller).
    pub(crate) fn with_items(items: usize) -> Self {
        PosIndex {
            slots: vec![0; slots_for(items)].into_boxed_slice(),
        }
    }

    /// Whether the index has a table (an empty one has none).
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Bytes of the slot table.
    pub(crate) fn table_bytes(&self) -> usize {
        self.slots.len() * size_of::<u64>()
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The position with hash `hash` for which `eq` holds.
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let (t, mask) = (tag(hash), self.mask());
        let mut i = t as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if slot_tag(s) == t && eq(slot_pos(s)) {
                return Some(slot_pos(s));
            }
            i = (i + 1) & mask;
        }
    }

    /// Start loading the home slot of `hash` (see [`uring_rt::prefetch`]).
    pub(crate) fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            uring_rt::prefetch(&self.slots[tag(hash) as usize & self.mask()]);
        }
    }

    /// The position in the home slot of `hash` if its tag matches, else
    /// `None` (no probing): a cheap guess for warming caches, never a
    /// lookup result.
    pub(crate) fn guess(&self, hash: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let t = tag(hash);
        let s = self.slots[t as usize & self.mask()];
        (s != 0 && slot_tag(s) == t).then(|| slot_pos(s))
    }

    /// The slot holding position `pos` with hash `hash`.
    fn slot_of(&self, hash: u64, pos: usize) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let (t, mask) = (tag(hash), self.mask());
        let want = make_slot(t, pos);
        let mut i = t as usize & mask;
        loop {
            match self.slots[i] {
                0 => return None,
                s if s == want => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Add `pos` (not yet indexed) with hash `hash`; `items` is the number
    /// of positions indexed once it is added (the table grows to keep the
    /// load at most 3/4).
    pub(crate) fn insert(&mut self, hash: u64, pos: usize, items: usize) {
        if items * 4 > self.slots.len() * 3 {
            self.resize(slots_for(items));
        }
        self.place(make_slot(tag(hash), pos));
    }

    fn place(&mut self, slot: u64) {
        let mask = self.mask();
        let mut i = slot_tag(slot) as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Drop position `pos` with hash `hash`; closes the gap so that every
    /// probe run stays unbroken (backward-shift deletion).
    pub(crate) fn remove(&mut self, hash: u64, pos: usize) {
        let Some(mut hole) = self.slot_of(hash, pos) else {
            return;
        };
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = slot_tag(s) as usize & mask;
            // `s` may fill the hole if the hole lies on its probe path,
            // i.e. between its home and where it sits now.
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = 0;
    }

    /// The item at `from` (hash `hash`) moved to `to`.
    pub(crate) fn repoint(&mut self, hash: u64, from: usize, to: usize) {
        if let Some(i) = self.slot_of(hash, from) {
            self.slots[i] = make_slot(tag(hash), to);
        }
    }

    /// Give memory back when `items` fill less than 1/8 of the table.
    pub(crate) fn shrink_for(&mut self, items: usize) {
        if self.slots.len() > MIN_SLOTS && items * 8 < self.slots.len() {
            self.resize(slots_for(items));
        }
    }

    fn resize(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; n].into_boxed_slice());
        for s in old.iter().copied().filter(|&s| s != 0) {
            self.place(s);
        }
    }

    /// Number of occupied slots (a full scan: invariant checks only).
    pub(crate) fn count(&self) -> usize {
        self.slots.iter().filter(|&&s| s != 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn h(key: u32) -> u64 {
        // Few distinct tags: long probe runs and tag collisions.
        u64::from(key % 7) << 32 | u64::from(key)
    }

    proptest! {
        /// Against a HashMap model: inserts, removals and moves of
        /// positions with colliding tags; every key stays findable.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u32..200), 1..600)) {
            let mut ix = PosIndex::default();
            // key -> position, and position -> key (the "array").
            let mut model: HashMap<u32, usize> = HashMap::new();
            let mut array: Vec<u32> = Vec::new();
            for (op, key) in ops {
                match op {
                    0 if !model.contains_key(&key) => {
                        array.push(key);
                        model.insert(key, array.len() - 1);
                        ix.insert(h(key), array.len() - 1, array.len());
                    }
                    1 if model.contains_key(&key) => {
                        // swap_remove, as the arrays do.
                        let pos = model.remove(&key).unwrap();
                        ix.remove(h(key), pos);
                        let last = array.len() - 1;
                        array.swap_remove(pos);
                        if pos != last {
                            let moved = array[pos];
                            ix.repoint(h(moved), last, pos);
                            model.insert(moved, pos);
                        }
                        ix.shrink_for(array.len());
                    }
                    _ => {}
                }
                prop_assert_eq!(ix.count(), array.len());
                for (&k, &p) in &model {
                    prop_assert_eq!(ix.find(h(k), |q| array[q] == k), Some(p));
                }
                prop_assert_eq!(ix.find(h(1000), |q| array[q] == 1000), None);
            }
        }
    }

    #[test]
    fn empty_index_finds_nothing_and_allocates_nothing() {
        let ix = PosIndex::default();
        assert!(!ix.is_allocated());
        assert_eq!(ix.find(42, |_| true), None);
        assert_eq!(ix.table_bytes(), 0);
    }

    #[test]
    fn load_stays_at_most_three_quarters() {
        let mut ix = PosIndex::default();
        for i in 0..10_000usize {
            ix.insert(h(i as u32), i, i + 1);
            assert!((i + 1) * 4 <= ix.slots.len() * 3);
        }
    }
}
