//! Swarm tests on a fixed clock and a seeded RNG.

use rand::{rngs::SmallRng, Rng, SeedableRng};

use super::peers::{Peers, Stored};
use super::torrents::Entry;
use super::*;

const T0: u32 = 1_000;

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(7)
}

fn hash(n: u32) -> InfoHash {
    let mut h = [0xab; 20];
    h[..4].copy_from_slice(&n.to_be_bytes());
    InfoHash(h)
}

fn v4(n: u32, port: u16) -> PeerV4 {
    PeerV4 {
        ip: n.to_be_bytes(),
        port,
    }
}

fn v6(n: u32, port: u16) -> PeerV6 {
    let mut ip = [0x20; 16];
    ip[12..].copy_from_slice(&n.to_be_bytes());
    PeerV6 { ip, port }
}

fn ann<A>(h: InfoHash, addr: A, event: Event, seeder: bool, numwant: usize) -> Announce<A> {
    Announce {
        info_hash: h,
        addr,
        event,
        seeder,
        numwant,
    }
}

/// A shard under test with its RNG and reply buffer.
struct Swarm {
    s: Shard,
    r: SmallRng,
    out: Vec<PeerV4>,
}

impl Swarm {
    fn new() -> Swarm {
        Swarm {
            s: Shard::new(),
            r: rng(),
            out: Vec::with_capacity(50),
        }
    }

    /// One IPv4 announce at `now`; the peers selected are left in `out`.
    fn v4(&mut self, a: Announce<PeerV4>, now: u32) -> AnnounceCounts {
        self.s.announce_v4(&a, now, &mut self.r, &mut self.out)
    }
}

fn counts(seeders: u32, leechers: u32, completed: u32) -> AnnounceCounts {
    AnnounceCounts {
        seeders,
        leechers,
        completed,
    }
}

#[test]
fn layout_sizes() {
    assert_eq!(size_of::<Stored<PeerV4>>(), 8);
    assert_eq!(size_of::<Stored<PeerV6>>(), 20);
    assert_eq!(
        size_of::<Peers<PeerV4>>(),
        24,
        "sorted array (slice, u16 lengths), two inline peers or a box"
    );
    assert_eq!(size_of::<Peers<PeerV6>>(), 24, "one inline IPv6 peer");
    assert_eq!(size_of::<Entry<PeerV4>>(), 48);
    assert_eq!(size_of::<Entry<PeerV6>>(), 48);
}

#[test]
fn two_peers_see_each_other() {
    let mut w = Swarm::new();
    let (a, b) = (v4(1, 6881), v4(2, 6881));
    let c = w.v4(ann(hash(1), a, Event::Started, false, 50), T0);
    assert_eq!(c, counts(0, 1, 0));
    assert!(w.out.is_empty(), "the requester is never returned");
    let c = w.v4(ann(hash(1), b, Event::Started, false, 50), T0);
    assert_eq!(c, counts(0, 2, 0));
    assert_eq!(w.out, [a]);
    w.v4(ann(hash(1), a, Event::None, false, 50), T0);
    assert_eq!(w.out, [b]);
    w.s.check_invariants();
}

#[test]
fn requester_never_returned_and_no_duplicates() {
    let mut w = Swarm::new();
    for n in 0..200 {
        w.v4(ann(hash(1), v4(n, 1), Event::Started, n % 3 == 0, 30), T0);
        let me = v4(n, 1);
        assert!(!w.out.contains(&me));
        let mut sorted = w.out.clone();
        sorted.sort_by_key(|p| p.ip);
        sorted.dedup();
        assert_eq!(sorted.len(), w.out.len(), "duplicate peer in selection");
        let leechers_before = (0..n).filter(|m| m % 3 != 0).count();
        let expect = if n % 3 == 0 {
            leechers_before
        } else {
            n as usize
        };
        assert_eq!(w.out.len(), expect.min(30));
    }
    w.s.check_invariants();
}

#[test]
fn seeders_get_no_seeders() {
    for swarm in [2u32, 40, 500] {
        let mut w = Swarm::new();
        let mut leechers = 0;
        for n in 0..swarm {
            let seeder = n % 2 == 0;
            leechers += u32::from(!seeder);
            w.v4(ann(hash(1), v4(n, 1), Event::Started, seeder, 0), T0);
        }
        let c = w.v4(ann(hash(1), v4(9999, 1), Event::None, true, 1000), T0);
        assert_eq!(w.out.len() as u32, leechers);
        assert!(
            w.out.iter().all(|p| u32::from_be_bytes(p.ip) % 2 == 1),
            "a seeder got a seeder"
        );
        assert_eq!(c.leechers, leechers);
        // A paused (partial seed) peer is announced with seeder = true.
        let c2 = w.v4(ann(hash(1), v4(9998, 1), Event::Paused, true, 1000), T0);
        assert_eq!(c2.seeders, c.seeders + 1);
        assert!(w.out.iter().all(|p| u32::from_be_bytes(p.ip) % 2 == 1));
        w.s.check_invariants();
    }
}

#[test]
fn counts_after_started_completed_stopped() {
    let mut w = Swarm::new();
    let h = hash(5);
    let (a, b, c) = (v4(1, 10), v4(2, 10), v4(3, 10));
    w.v4(ann(h, a, Event::Started, false, 10), T0);
    w.v4(ann(h, b, Event::Started, false, 10), T0);
    let x = w.v4(ann(h, c, Event::Started, true, 10), T0);
    assert_eq!(x, counts(1, 2, 0));
    let x = w.v4(ann(h, a, Event::Completed, true, 10), T0);
    assert_eq!(x, counts(2, 1, 1));
    assert_eq!(w.out, [b], "seeder a gets only leecher b");
    // Counted per event, even from a peer that already is a seeder.
    let x = w.v4(ann(h, a, Event::Completed, true, 10), T0);
    assert_eq!(x, counts(2, 1, 2));
    let x = w.v4(ann(h, b, Event::Stopped, false, 10), T0);
    assert_eq!(x, counts(2, 0, 2));
    assert!(w.out.is_empty(), "stopped gets no peers");
    assert_eq!(
        w.s.scrape(&h),
        ScrapeStats {
            seeders: 2,
            completed: 2,
            leechers: 0
        }
    );
    // Seeder back to leecher (a new download of a changed file, say).
    let x = w.v4(ann(h, c, Event::None, false, 10), T0);
    assert_eq!(x, counts(1, 1, 2));
    let st = w.s.stats();
    assert_eq!((st.torrents, st.seeders_v4, st.leechers_v4), (1, 1, 1));
    w.s.check_invariants();
    w.v4(ann(h, a, Event::Stopped, false, 10), T0);
    let x = w.v4(ann(h, c, Event::Stopped, false, 10), T0);
    assert_eq!(x, counts(0, 0, 2));
    assert_eq!(
        w.s.stats(),
        ShardStats::default(),
        "empty torrent removed at once"
    );
    assert_eq!(w.s.scrape(&h), ScrapeStats::default());
    // Stopped for an unknown torrent or peer changes nothing.
    let x = w.v4(ann(h, c, Event::Stopped, false, 10), T0);
    assert_eq!(x, AnnounceCounts::default());
    assert_eq!(w.s.stats(), ShardStats::default());
}

#[test]
fn reannounce_updates_in_place() {
    for swarm in [1u32, 2, 10, 100] {
        let mut w = Swarm::new();
        for n in 0..swarm {
            w.v4(ann(hash(1), v4(n, 1), Event::Started, false, 0), T0);
        }
        for round in 0..3 {
            for n in 0..swarm {
                let seeder = (n + round) % 2 == 0;
                w.v4(ann(hash(1), v4(n, 1), Event::None, seeder, 0), T0);
            }
        }
        let st = w.s.stats();
        assert_eq!(
            st.seeders_v4 + st.leechers_v4,
            u64::from(swarm),
            "no duplicates"
        );
        // Same IP, other port: another peer.
        w.v4(ann(hash(1), v4(0, 2), Event::None, false, 0), T0);
        let st = w.s.stats();
        assert_eq!(st.seeders_v4 + st.leechers_v4, u64::from(swarm) + 1);
        w.s.check_invariants();
    }
}

#[test]
fn numwant_respected() {
    let mut w = Swarm::new();
    for n in 0..100 {
        w.v4(ann(hash(1), v4(n, 1), Event::Started, false, 0), T0);
    }
    for want in [0usize, 1, 2, 7, 50, 98, 99, 100, 1000] {
        w.out = Vec::with_capacity(want);
        w.v4(ann(hash(1), v4(5, 1), Event::None, false, want), T0);
        assert_eq!(w.out.len(), want.min(99));
        assert!(
            w.out.capacity() <= want.max(99),
            "w.out grown beyond numwant"
        );
    }
}

#[test]
fn selection_is_spread_over_the_swarm() {
    let mut w = Swarm::new();
    let swarm = 1000u32;
    for n in 0..swarm {
        w.v4(ann(hash(1), v4(n, 1), Event::Started, false, 0), T0);
    }
    let mut seen = vec![0u32; swarm as usize];
    for _ in 0..2000 {
        w.v4(ann(hash(1), v4(0, 2), Event::None, false, 50), T0);
        for p in &w.out {
            seen[u32::from_be_bytes(p.ip) as usize] += 1;
        }
    }
    // Expected 100 per peer; every peer picked, none wildly over-picked.
    assert!(
        seen.iter().all(|&c| c > 30 && c < 250),
        "{:?}",
        (seen.iter().min(), seen.iter().max())
    );
}

#[test]
fn port_zero_answered_not_stored() {
    let mut w = Swarm::new();
    let x = w.v4(ann(hash(1), v4(1, 0), Event::Started, false, 10), T0);
    assert_eq!(x, AnnounceCounts::default());
    assert_eq!(w.s.stats(), ShardStats::default(), "no torrent created");
    w.v4(ann(hash(1), v4(2, 5), Event::Started, false, 10), T0);
    let x = w.v4(ann(hash(1), v4(1, 0), Event::Completed, true, 10), T0);
    assert_eq!(x, counts(0, 1, 0));
    assert_eq!(w.out, [v4(2, 5)]);
    let x = w.v4(ann(hash(1), v4(1, 0), Event::Stopped, true, 10), T0);
    assert_eq!(x, counts(0, 1, 0));
    w.s.check_invariants();
}

#[test]
fn ten_thousand_peers_then_all_stopped() {
    let mut w = Swarm::new();
    let n = 10_000u32;
    for i in 0..n {
        w.v4(ann(hash(1), v4(i, 7), Event::Started, i % 4 == 0, 50), T0);
        if i % 997 == 0 {
            w.s.check_invariants();
        }
    }
    w.s.check_invariants();
    assert_eq!(w.s.stats().seeders_v4, 2500);
    assert_eq!(w.s.stats().leechers_v4, 7500);
    // Flip half of them, then remove in a scrambled order.
    for i in (0..n).step_by(2) {
        w.v4(ann(hash(1), v4(i, 7), Event::None, i % 4 != 0, 50), T0);
    }
    w.s.check_invariants();
    let mut order: Vec<u32> = (0..n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, w.r.random_range(0..=i));
    }
    for (k, &i) in order.iter().enumerate() {
        w.v4(ann(hash(1), v4(i, 7), Event::Stopped, false, 50), T0);
        assert!(w.out.is_empty());
        if k % 1009 == 0 {
            w.s.check_invariants();
        }
    }
    w.s.check_invariants();
    assert_eq!(w.s.stats(), ShardStats::default());
    assert!(
        w.s.memory_bytes() < 1024,
        "peer storage freed: {}",
        w.s.memory_bytes()
    );
}

#[test]
fn clean_removes_expired_peers_across_budgeted_calls() {
    let (mut s, mut r, mut out, mut out6) = (Shard::new(), rng(), Vec::new(), Vec::new());
    let timeout = 100;
    // 300 torrents: sizes 1..=5 (inline and heap), old peers and fresh ones.
    for t in 0..300u32 {
        for p in 0..=(t % 5) {
            let seen = if p % 2 == 0 { T0 } else { T0 + 150 };
            s.announce_v4(
                &ann(hash(t), v4(p, 1), Event::Started, p == 1, 0),
                seen,
                &mut r,
                &mut out,
            );
            s.announce_v6(
                &ann(hash(t), v6(p, 1), Event::Started, p == 1, 0),
                seen,
                &mut r,
                &mut out6,
            );
        }
    }
    // A big torrent whose peers expire except 20 (index dropped, inline?).
    for p in 0..500u32 {
        let seen = if p < 20 { T0 + 150 } else { T0 };
        s.announce_v4(
            &ann(hash(9999), v4(p, 1), Event::Started, p % 3 == 0, 0),
            seen,
            &mut r,
            &mut out,
        );
    }
    s.check_invariants();
    let before = s.stats();
    assert_eq!(before.torrents, 601);
    let now = T0 + 150; // T0 peers are 150 s old: expired; T0+150 ones fresh.
    let mut calls = 0;
    let mut removed = 0;
    let mut torrents_removed = 0;
    loop {
        calls += 1;
        let rep = s.clean(now, timeout, 37);
        assert!(rep.torrents_visited <= 37);
        removed += rep.peers_removed;
        torrents_removed += rep.torrents_removed;
        s.check_invariants();
        if rep.pass_complete {
            break;
        }
        assert!(calls < 100);
    }
    assert!(calls >= 601 / 37, "the budget bounds each call");
    let after = s.stats();
    // Torrents with only even-numbered (old) peers: sizes 1 -> 60 torrents per family.
    assert_eq!(after.torrents, 601 - 120);
    assert_eq!(torrents_removed, 120);
    assert_eq!(
        after.seeders_v4 + after.leechers_v4 + after.seeders_v6 + after.leechers_v6,
        {
            let fresh_per_family: u64 = (0..300u64).map(|t| (t % 5).div_ceil(2)).sum();
            2 * fresh_per_family + 20
        }
    );
    let total = |x: ShardStats| x.seeders_v4 + x.leechers_v4 + x.seeders_v6 + x.leechers_v6;
    assert_eq!(total(before) - total(after), removed as u64);
    // Everyone expires later; a full pass empties the shard.
    let rep = s.clean(now + 1000, timeout, 10_000);
    assert!(rep.pass_complete);
    assert_eq!(s.stats(), ShardStats::default());
    s.check_invariants();
    // Cleaning an empty shard terminates and reports a complete pass.
    assert!(s.clean(now, timeout, 5).pass_complete);
    assert_eq!(s.clean(now, timeout, 0), CleanReport::default());
}

#[test]
fn v4_and_v6_are_separate() {
    let (mut s, mut r) = (Shard::new(), rng());
    let (mut o4, mut o6) = (Vec::new(), Vec::new());
    let h = hash(3);
    s.announce_v4(
        &ann(h, v4(1, 1), Event::Started, true, 10),
        T0,
        &mut r,
        &mut o4,
    );
    s.announce_v6(
        &ann(h, v6(1, 1), Event::Started, false, 10),
        T0,
        &mut r,
        &mut o6,
    );
    assert!(
        o6.is_empty(),
        "the IPv4 peer is not given to the IPv6 client"
    );
    let c = s.announce_v6(
        &ann(h, v6(2, 1), Event::Started, false, 10),
        T0,
        &mut r,
        &mut o6,
    );
    assert_eq!(o6, [v6(1, 1)]);
    assert_eq!(c, counts(0, 2, 0), "counts of the requester's family");
    assert_eq!(
        s.scrape(&h),
        ScrapeStats {
            seeders: 1,
            completed: 0,
            leechers: 2
        }
    );
    let st = s.stats();
    assert_eq!(
        (
            st.torrents_v4,
            st.torrents_v6,
            st.seeders_v4,
            st.leechers_v6
        ),
        (1, 1, 1, 2)
    );
    s.check_invariants();
}

/// Memory per stored IPv4 peer, capacity-based (an upper bound on RSS).
/// Budget: 40 bytes per peer, or 120 bytes per torrent for torrents of one
/// or two peers (a cache-line entry, its index slot and array slack). Release-mode
/// sized; run with `--ignored` for 1M peers.
fn bytes_per_peer(torrents: u32, per_torrent: u32) -> f64 {
    let mut w = Swarm::new();
    for t in 0..torrents {
        let mut h = [0u8; 20];
        w.r.fill(&mut h[..]);
        for p in 0..per_torrent {
            let a = ann(
                InfoHash(h),
                v4(t.wrapping_mul(7919) ^ p, 6881),
                Event::Started,
                false,
                0,
            );
            w.s.announce_v4(&a, T0, &mut w.r, &mut w.out);
        }
    }
    let peers = u64::from(torrents) * u64::from(per_torrent);
    assert_eq!(w.s.stats().leechers_v4, peers);
    w.s.memory_bytes() as f64 / peers as f64
}

#[test]
fn memory_per_peer_small() {
    for (t, p) in [(1, 100_000), (50_000, 2), (20_000, 5), (100_000, 1)] {
        let b = bytes_per_peer(t, p);
        println!("{t} torrents x {p} peers: {b:.1} bytes/peer");
        assert!(within_budget(b, p), "{t} x {p}: {b:.1} bytes per peer");
    }
}

fn within_budget(bytes_per_peer: f64, per_torrent: u32) -> bool {
    bytes_per_peer <= 40.0 || (per_torrent <= 2 && bytes_per_peer * f64::from(per_torrent) <= 120.0)
}

#[test]
#[ignore = "1M peers; run with --ignored --nocapture to print the numbers"]
fn memory_per_peer_one_million() {
    for (t, p) in [(1, 1_000_000), (100_000, 10), (500_000, 2), (1_000_000, 1)] {
        let b = bytes_per_peer(t, p);
        println!("{t} torrents x {p} peers: {b:.1} bytes/peer");
        assert!(within_budget(b, p), "{t} x {p}: {b:.1} bytes per peer");
    }
}

#[test]
fn warming_reads_only() {
    let mut w = Swarm::new();
    // Nothing stored yet, more pairs than one warm-up looks at.
    let batch: Vec<_> = (0..100u32)
        .map(|i| Upcoming {
            info_hash: hash(i % 5),
            addr: v4(i, 6881),
            seeder: i % 2 == 0,
        })
        .collect();
    w.s.warm_v4(&batch);
    // Inline, heap without index and heap with index swarms, known and
    // unknown peers.
    for t in 0..3u32 {
        for p in 0..[2u32, 20, 200][t as usize] {
            w.v4(ann(hash(t), v4(p, 6881), Event::Started, false, 0), T0);
        }
    }
    let before = w.s.stats();
    w.s.warm_v4(&batch);
    w.s.warm_v4(&[]);
    w.s.warm_v6(&[Upcoming {
        info_hash: hash(1),
        addr: PeerV6 {
            ip: [1; 16],
            port: 1,
        },
        seeder: false,
    }]);
    assert_eq!(w.s.stats(), before);
    w.s.check_invariants();
}

mod model {
    //! Random announce / stop / clean sequences against a plain map.

    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Peers `first..first + count` (of a pool of 1,600) announce to
        /// torrent `t`; `count` large enough to make a swarm indexed.
        Announce {
            t: u32,
            first: u32,
            count: u32,
            seeder: bool,
            event: Event,
        },
        /// Peers `first..first + count` stop.
        Stop { t: u32, first: u32, count: u32 },
        /// The clock moves on.
        Tick(u32),
        /// A full cleaning pass in slices of `budget` torrents.
        Clean { budget: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        let event = prop_oneof![
            Just(Event::None),
            Just(Event::Started),
            Just(Event::Completed),
            Just(Event::Paused)
        ];
        prop_oneof![
            6 => (0u32..4, 0u32..1600, prop_oneof![1u32..4, 1u32..1400], any::<bool>(), event)
                .prop_map(|(t, first, count, seeder, event)| Op::Announce { t, first, count, seeder, event }),
            2 => (0u32..4, 0u32..1600, prop_oneof![1u32..4, 1u32..1400])
                .prop_map(|(t, first, count)| Op::Stop { t, first, count }),
            2 => (1u32..80).prop_map(Op::Tick),
            1 => (1usize..4).prop_map(|budget| Op::Clean { budget }),
        ]
    }

    /// (torrent, peer number) -> (seeder, last seen); torrent -> completed.
    #[derive(Default)]
    struct Model {
        peers: HashMap<(u32, u32), (bool, u32)>,
        completed: HashMap<u32, u32>,
    }

    impl Model {
        fn counts(&self, t: u32) -> AnnounceCounts {
            let mut c = AnnounceCounts::default();
            for (&(tt, _), &(seeder, _)) in &self.peers {
                if tt == t {
                    if seeder {
                        c.seeders += 1;
                    } else {
                        c.leechers += 1;
                    }
                }
            }
            if c.seeders + c.leechers > 0 {
                c.completed = self.completed.get(&t).copied().unwrap_or(0);
            }
            c
        }
    }

    const TIMEOUT: u32 = 100;

    /// Peer number `p` as an IPv4 or IPv6 address (several per address,
    /// distinct by port).
    fn addr4(p: u32) -> PeerV4 {
        v4(p / 3, 1 + (p % 3) as u16)
    }

    fn addr6(p: u32) -> PeerV6 {
        v6(p / 3, 1 + (p % 3) as u16)
    }

    fn run<A: Copy + Eq + std::fmt::Debug>(
        ops: &[Op],
        addr: fn(u32) -> A,
        announce: fn(&mut Shard, &Announce<A>, u32, &mut SmallRng, &mut Vec<A>) -> AnnounceCounts,
        stored: fn(&ShardStats) -> (u64, u64, usize),
    ) {
        let (mut s, mut r, mut out) = (Shard::new(), rng(), Vec::new());
        let mut m = Model::default();
        let mut now = T0;
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Announce {
                    t,
                    first,
                    count,
                    seeder,
                    event,
                } => {
                    for p in first..(first + count).min(1600) {
                        let numwant = (p % 60) as usize;
                        let c = announce(
                            &mut s,
                            &ann(hash(t), addr(p), event, seeder, numwant),
                            now,
                            &mut r,
                            &mut out,
                        );
                        m.peers.insert((t, p), (seeder, now));
                        if event == Event::Completed {
                            let e = m.completed.entry(t).or_insert(0);
                            *e = e.saturating_add(1);
                        }
                        assert_eq!(c, m.counts(t), "counts after announce");
                        // Others of the torrent, no seeders for a seeder, no
                        // duplicates, as many as wanted or available.
                        let eligible: Vec<A> = m
                            .peers
                            .iter()
                            .filter(|(&(tt, q), &(sd, _))| tt == t && q != p && !(seeder && sd))
                            .map(|(&(_, q), _)| addr(q))
                            .collect();
                        assert_eq!(out.len(), numwant.min(eligible.len()));
                        for (i, a) in out.iter().enumerate() {
                            assert!(eligible.contains(a), "not eligible: {a:?}");
                            assert!(!out[..i].contains(a), "duplicate");
                        }
                    }
                }
                Op::Stop { t, first, count } => {
                    for p in first..(first + count).min(1600) {
                        let c = announce(
                            &mut s,
                            &ann(hash(t), addr(p), Event::Stopped, false, 50),
                            now,
                            &mut r,
                            &mut out,
                        );
                        // Counts after the removal; `completed` as long as
                        // the torrent existed before it.
                        let existed = m.counts(t) != AnnounceCounts::default();
                        m.peers.remove(&(t, p));
                        let mut want = m.counts(t);
                        if existed {
                            want.completed = m.completed.get(&t).copied().unwrap_or(0);
                        }
                        assert_eq!(c, want, "counts after stop");
                        assert!(out.is_empty());
                        if m.counts(t) == AnnounceCounts::default() {
                            m.completed.remove(&t);
                        }
                    }
                }
                Op::Tick(secs) => now += secs,
                Op::Clean { budget } => {
                    let mut calls = 0;
                    while !s.clean(now, TIMEOUT, budget).pass_complete {
                        calls += 1;
                        assert!(calls < 10_000);
                    }
                    m.peers.retain(|_, &mut (_, seen)| now - seen <= TIMEOUT);
                    let alive: Vec<u32> = (0..4)
                        .filter(|&t| m.counts(t).seeders + m.counts(t).leechers > 0)
                        .collect();
                    m.completed.retain(|t, _| alive.contains(t));
                }
            }
            let (seeders, leechers, torrents) = stored(&s.stats());
            let want: (u64, u64) =
                m.peers.values().fold(
                    (0, 0),
                    |(sd, l), &(seeder, _)| {
                        if seeder {
                            (sd + 1, l)
                        } else {
                            (sd, l + 1)
                        }
                    },
                );
            assert_eq!((seeders, leechers), want, "after op {n}: {op:?}");
            assert_eq!(
                torrents,
                (0..4)
                    .filter(|&t| m.counts(t).seeders + m.counts(t).leechers > 0)
                    .count()
            );
            for t in 0..4 {
                let c = m.counts(t);
                let sc = s.scrape(&hash(t));
                assert_eq!(
                    (sc.seeders, sc.leechers, sc.completed),
                    (c.seeders, c.leechers, c.completed)
                );
            }
            s.check_invariants();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// IPv4: inline, sorted and indexed swarms and the moves between
        /// them, against the model; invariants after every step.
        #[test]
        fn v4_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            run(&ops, addr4, Shard::announce_v4, |st| (st.seeders_v4, st.leechers_v4, st.torrents_v4));
        }

        /// IPv6 (one inline peer), the same.
        #[test]
        fn v6_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            run(&ops, addr6, Shard::announce_v6, |st| (st.seeders_v6, st.leechers_v6, st.torrents_v6));
        }
    }
}
