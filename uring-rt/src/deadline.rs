//! Per-connection deadlines: a hashed timing wheel over connection slots.
//!
//! Setting, moving or clearing a deadline is O(1) and allocates nothing once
//! the slot has been seen (the links live in a table indexed by slot, which
//! grows with the connection table and never past it), so a protocol can
//! push a connection's deadline back on every request. Time is cut into
//! ticks of [`TICK`]; a deadline is due at the first tick boundary at or
//! after it, and the worker looks at the wheel every turn and wakes at least
//! once a tick, so a deadline never fires early and less than two ticks
//! late. Deadlines further away than one turn of the
//! wheel wait in their bucket and are passed over until their turn comes.
//!
//! Owns: which slot is due when. Not: waking the worker (one TIMEOUT of
//! `TICK` while the wheel is not empty, in the worker) or what a due
//! deadline means (the worker asks the handler, or aborts a lingering close).

use std::time::{Duration, Instant};

/// Resolution of deadlines, and the period of the worker's wake-up while
/// any deadline is set.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Buckets of the wheel: one turn covers `BUCKETS * TICK` (25.6 s).
const BUCKETS: usize = 256;

/// End of a bucket's list.
const NIL: u32 = u32::MAX;

/// A slot's place in the wheel: `due` is its tick (0 = no deadline; no
/// deadline is ever due at tick 0, see `set`), `prev`/`next` its neighbours
/// in the bucket `due % BUCKETS`. `fired`: `expire` handed the slot out and
/// no `set` or `clear` came since (see `take_fired`).
#[derive(Clone, Copy)]
struct Link {
    due: u64,
    prev: u32,
    next: u32,
    fired: bool,
}

const UNLINKED: Link = Link {
    due: 0,
    prev: NIL,
    next: NIL,
    fired: false,
};

/// The deadlines of one worker's connection slots.
pub(crate) struct Deadlines {
    epoch: Instant,
    heads: Vec<u32>,
    links: Vec<Link>,
    len: usize,
    /// Every tick up to and including this one has been expired.
    done: u64,
}

impl Deadlines {
    pub(crate) fn new(now: Instant) -> Deadlines {
        Deadlines {
            epoch: now,
            heads: vec![NIL; BUCKETS],
            links: Vec::new(),
            len: 0,
            done: 0,
        }
    }

    /// No deadline is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slot `slot` is due `after` from `now` (replacing its earlier deadline).
    pub(crate) fn set(&mut self, slot: u32, now: Instant, after: Duration) {
        self.clear(slot);
        let at = now
            .saturating_duration_since(self.epoch)
            .saturating_add(after);
        let due = u64::try_from(at.as_nanos().div_ceil(TICK.as_nanos()))
            .unwrap_or(u64::MAX)
            .max(self.done + 1);
        let i = slot as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, UNLINKED);
        }
        let b = bucket(due);
        let head = self.heads[b];
        self.links[i] = Link {
            due,
            prev: NIL,
            next: head,
            fired: false,
        };
        if head != NIL {
            self.links[head as usize].prev = slot;
        }
        self.heads[b] = slot;
        self.len += 1;
    }

    /// Slot `slot` has no deadline any more, and one that `expire` handed
    /// out is withdrawn (see `take_fired`).
    pub(crate) fn clear(&mut self, slot: u32) {
        let Some(&Link {
            due, prev, next, ..
        }) = self.links.get(slot as usize)
        else {
            return;
        };
        if due == 0 {
            self.links[slot as usize].fired = false;
            return;
        }
        if prev == NIL {
            self.heads[bucket(due)] = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        self.links[slot as usize] = UNLINKED;
        self.len -= 1;
    }

    /// Whether `expire` handed out `slot` and no `set` or `clear` came
    /// since: the caller acts on a handed-out slot only if this says so,
    /// because its handler may have moved or cleared a deadline that was
    /// due in the same turn. Answers `true` once.
    pub(crate) fn take_fired(&mut self, slot: u32) -> bool {
        self.links
            .get_mut(slot as usize)
            .is_some_and(|l| std::mem::take(&mut l.fired))
    }

    /// Take every slot whose deadline has passed at `now` out of the wheel
    /// and append it to `due`.
    pub(crate) fn expire(&mut self, now: Instant, due: &mut Vec<u32>) {
        let tick = ticks(now.saturating_duration_since(self.epoch));
        if tick <= self.done {
            return;
        }
        // After a gap longer than a turn, every bucket is visited once.
        let span = (tick - self.done).min(BUCKETS as u64);
        for t in self.done + 1..=self.done + span {
            let mut i = self.heads[bucket(t)];
            while i != NIL {
                let link = self.links[i as usize];
                if link.due <= tick {
                    self.clear(i);
                    self.links[i as usize].fired = true;
                    due.push(i);
                }
                i = link.next;
            }
        }
        self.done = tick;
    }
}

/// Whole ticks in `d`.
fn ticks(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() / TICK.as_nanos()).unwrap_or(u64::MAX)
}

fn bucket(tick: u64) -> usize {
    (tick % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn expired(d: &mut Deadlines, at: Instant) -> Vec<u32> {
        let mut v = Vec::new();
        d.expire(at, &mut v);
        v.sort_unstable();
        v
    }

    /// A wheel started now, with slots `0..slots` due `after` from then.
    fn wheel(slots: u32, after: Duration) -> (Instant, Deadlines) {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0);
        for slot in 0..slots {
            d.set(slot, t0, after);
        }
        (t0, d)
    }

    #[test]
    fn due_never_early_and_at_most_a_tick_late() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0);
        d.set(7, t0, Duration::from_millis(250));
        assert!(expired(&mut d, t0 + Duration::from_millis(249)).is_empty());
        assert_eq!(expired(&mut d, t0 + Duration::from_millis(300)), [7]);
        assert!(d.is_empty());
    }

    #[test]
    fn moving_and_clearing() {
        let (t0, mut d) = wheel(4, Duration::from_millis(200));
        d.set(1, t0, Duration::from_secs(5));
        d.clear(2);
        d.clear(2);
        d.clear(99);
        assert_eq!(expired(&mut d, t0 + Duration::from_secs(1)), [0, 3]);
        assert_eq!(expired(&mut d, t0 + Duration::from_secs(5)), [1]);
        assert!(d.is_empty());
    }

    #[test]
    fn a_deadline_moved_or_cleared_after_it_fired_is_withdrawn() {
        let (t0, mut d) = wheel(3, TICK);
        let at = t0 + TICK;
        assert_eq!(expired(&mut d, at), [0, 1, 2]);
        // As if slot 0's handler cleared slot 1 and moved slot 2.
        d.clear(1);
        d.set(2, at, TICK * 3);
        assert!(d.take_fired(0));
        assert!(!d.take_fired(0), "answers once");
        assert!(!d.take_fired(1));
        assert!(!d.take_fired(2));
        assert_eq!(expired(&mut d, at + TICK * 3), [2]);
        assert!(d.take_fired(2));
        assert!(!d.take_fired(99));
    }

    #[test]
    fn a_deadline_beyond_one_turn_waits_for_its_own_turn() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0);
        let turn = TICK * BUCKETS as u32;
        d.set(3, t0, turn + TICK * 2);
        // Its bucket comes round after two ticks: passed over, not fired.
        assert!(expired(&mut d, t0 + TICK * 3).is_empty());
        assert!(expired(&mut d, t0 + turn + TICK).is_empty());
        assert_eq!(expired(&mut d, t0 + turn + TICK * 2), [3]);
    }

    #[test]
    fn a_deadline_set_in_the_past_fires_next_tick() {
        let t0 = Instant::now();
        let mut d = Deadlines::new(t0);
        let later = t0 + Duration::from_secs(3);
        assert!(expired(&mut d, later).is_empty());
        d.set(0, later, Duration::ZERO);
        assert_eq!(expired(&mut d, later + TICK), [0]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u32, u64),
        Clear(u32),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..64u32, 0..60_000u64).prop_map(|(s, ms)| Op::Set(s, ms)),
            (0..64u32).prop_map(Op::Clear),
            (0..40_000u64).prop_map(Op::Advance),
            // Whole ticks: lands exactly on bucket boundaries.
            (0..400u64).prop_map(|t| Op::Advance(t * 100)),
        ]
    }

    proptest! {
        /// Against a map of slot -> deadline: a slot comes out exactly once,
        /// not before its deadline and less than a tick after the first
        /// `expire` at or past it.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec(op(), 1..200)) {
            let t0 = Instant::now();
            let mut d = Deadlines::new(t0);
            let mut model: BTreeMap<u32, Duration> = BTreeMap::new();
            let mut now = Duration::ZERO;
            for op in ops {
                match op {
                    Op::Set(s, ms) => {
                        d.set(s, t0 + now, Duration::from_millis(ms));
                        model.insert(s, now + Duration::from_millis(ms));
                    }
                    Op::Clear(s) => {
                        d.clear(s);
                        model.remove(&s);
                    }
                    Op::Advance(ms) => {
                        now += Duration::from_millis(ms);
                        for s in expired(&mut d, t0 + now) {
                            let at = model.remove(&s).expect("fired once, while set");
                            prop_assert!(at <= now, "slot {s} early: due {at:?} at {now:?}");
                        }
                        for (s, at) in &model {
                            prop_assert!(*at + TICK > now, "slot {s} due {at:?} missed at {now:?}");
                        }
                    }
                }
                prop_assert_eq!(d.len, model.len());
            }
        }
    }
}
