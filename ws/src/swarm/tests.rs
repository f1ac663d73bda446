use super::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn conn(worker: u16, i: u32) -> PeerConn {
    PeerConn {
        worker,
        conn: ConnId::from_parts(i, 1),
    }
}

fn pid(i: u32) -> PeerId {
    let mut id = [b'-'; 20];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id
}

fn oid(i: u32) -> OfferId {
    OfferId::new(format!("offer-{i}").as_bytes()).unwrap()
}

const IH: InfoHash = InfoHash([7; 20]);

fn ann(i: u32, event: SwarmEvent, seeder: bool, offers: &[OfferId]) -> SwarmAnnounce<'_> {
    SwarmAnnounce {
        info_hash: IH,
        peer_id: pid(i),
        conn: conn(0, i),
        event,
        seeder,
        offers,
    }
}

/// An empty shard and the test's seeded RNG.
fn shard(seed: u64) -> (WsShard, SmallRng) {
    (WsShard::new(), SmallRng::seed_from_u64(seed))
}

/// `a` at second `now`, with the offer timeout (60 s) and peer id takeover
/// time (120 s) of every test.
fn announce(
    s: &mut WsShard,
    a: &SwarmAnnounce<'_>,
    now: u32,
    rng: &mut SmallRng,
    targets: &mut Vec<PeerConn>,
) -> Result<ScrapeCounts, AnnounceError> {
    s.announce(a, now, 60, 120, rng, targets)
}

/// Peer 0, a leecher, announces `offers` at second `now`.
fn offer(
    s: &mut WsShard,
    offers: &[OfferId],
    now: u32,
    rng: &mut SmallRng,
    targets: &mut Vec<PeerConn>,
) -> Result<ScrapeCounts, AnnounceError> {
    announce(
        s,
        &ann(0, SwarmEvent::Update, false, offers),
        now,
        rng,
        targets,
    )
}

fn join(s: &mut WsShard, rng: &mut SmallRng, i: u32, seeder: bool) -> ScrapeCounts {
    let mut t = Vec::new();
    announce(s, &ann(i, SwarmEvent::Update, seeder, &[]), 0, rng, &mut t).unwrap()
}

#[test]
fn offers_go_to_distinct_peers_never_the_sender() {
    let mut rng = SmallRng::seed_from_u64(1);
    for size in [1u32, 2, 3, 6, 40, 100] {
        let mut s = WsShard::new();
        for i in 0..size {
            join(&mut s, &mut rng, i, false);
        }
        let offers: Vec<OfferId> = (0..5).map(oid).collect();
        let mut targets = Vec::new();
        offer(&mut s, &offers, 1, &mut rng, &mut targets).unwrap();
        assert_eq!(targets.len(), (size as usize - 1).min(5), "swarm of {size}");
        assert!(!targets.contains(&conn(0, 0)), "never back to the sender");
        let mut sorted: Vec<u32> = targets.iter().map(|t| t.conn.index() as u32).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            targets.len(),
            "each offer to a different peer"
        );
        assert_eq!(s.pending_offers(), targets.len());
    }
}

#[test]
fn a_seeder_offers_to_leechers_only() {
    let (mut s, mut rng) = shard(2);
    for i in 1..=10 {
        join(&mut s, &mut rng, i, i % 2 == 0);
    }
    let offers: Vec<OfferId> = (0..10).map(oid).collect();
    let mut targets = Vec::new();
    let a = ann(0, SwarmEvent::Update, true, &offers);
    let counts = announce(&mut s, &a, 1, &mut rng, &mut targets).unwrap();
    assert_eq!(counts.complete, 6);
    assert_eq!(counts.incomplete, 5);
    assert_eq!(targets.len(), 5);
    assert!(
        targets.iter().all(|t| t.conn.index() % 2 == 1),
        "{targets:?}"
    );
}

#[test]
fn an_answer_goes_through_once_while_its_offer_is_pending() {
    let (mut s, mut rng) = shard(3);
    join(&mut s, &mut rng, 1, false);
    let offers = [oid(9)];
    let mut targets = Vec::new();
    offer(&mut s, &offers, 10, &mut rng, &mut targets).unwrap();
    assert_eq!(targets, vec![conn(0, 1)]);
    // The wrong answerer, the wrong offer id, an answerer on another connection.
    assert_eq!(
        s.answer(&IH, &pid(2), conn(0, 2), &pid(0), &oid(9), 11),
        Err(AnswerError::UnknownPeer)
    );
    assert_eq!(
        s.answer(&IH, &pid(1), conn(0, 1), &pid(0), &oid(8), 11),
        Err(AnswerError::NoPendingOffer)
    );
    assert_eq!(
        s.answer(&IH, &pid(1), conn(1, 1), &pid(0), &oid(9), 11),
        Err(AnswerError::UnknownPeer)
    );
    assert_eq!(
        s.answer(&IH, &pid(1), conn(0, 1), &pid(0), &oid(9), 11),
        Ok(conn(0, 0))
    );
    assert_eq!(
        s.answer(&IH, &pid(1), conn(0, 1), &pid(0), &oid(9), 11),
        Err(AnswerError::NoPendingOffer),
        "a second answer to the same offer"
    );
    // An expired offer.
    offer(&mut s, &offers, 20, &mut rng, &mut targets).unwrap();
    assert_eq!(
        s.answer(&IH, &pid(1), conn(0, 1), &pid(0), &oid(9), 81),
        Err(AnswerError::NoPendingOffer)
    );
    assert_eq!(s.pending_offers(), 0);
}

#[test]
fn pending_offers_are_bounded_per_peer() {
    let (mut s, mut rng) = shard(4);
    join(&mut s, &mut rng, 1, false);
    let mut targets = Vec::new();
    for i in 0..(MAX_PENDING as u32 + 7) {
        let offers = [oid(i)];
        offer(&mut s, &offers, 1, &mut rng, &mut targets).unwrap();
    }
    assert_eq!(s.pending_offers(), MAX_PENDING);
    // The oldest went first.
    assert!(s
        .answer(&IH, &pid(1), conn(0, 1), &pid(0), &oid(0), 2)
        .is_err());
    assert!(s
        .answer(
            &IH,
            &pid(1),
            conn(0, 1),
            &pid(0),
            &oid(MAX_PENDING as u32 + 6),
            2
        )
        .is_ok());
}

#[test]
fn a_live_peer_id_is_not_taken_over_by_another_connection() {
    let (mut s, mut rng) = shard(5);
    join(&mut s, &mut rng, 1, false);
    let mut hijack = ann(1, SwarmEvent::Update, true, &[]);
    hijack.conn = conn(1, 9);
    let mut t = Vec::new();
    assert_eq!(
        announce(&mut s, &hijack, 1, &mut rng, &mut t),
        Err(AnnounceError::PeerIdInUse)
    );
    hijack.event = SwarmEvent::Stopped;
    assert_eq!(
        announce(&mut s, &hijack, 1, &mut rng, &mut t),
        Err(AnnounceError::PeerIdInUse)
    );
    // A leave from the other connection changes nothing.
    assert!(!s.leave(&IH, &pid(1), conn(1, 9)));
    assert_eq!(s.scrape(&IH).incomplete, 1);
    // Once the first connection left, the second one may announce it.
    assert!(s.leave(&IH, &pid(1), conn(0, 1)));
    assert_eq!(s.stats(), ShardStats::default());
    hijack.event = SwarmEvent::Update;
    assert_eq!(
        announce(&mut s, &hijack, 2, &mut rng, &mut t)
            .unwrap()
            .complete,
        1
    );
}

#[test]
fn completed_counts_a_download_once_and_stopped_leaves() {
    let (mut s, mut rng) = shard(6);
    let mut t = Vec::new();
    join(&mut s, &mut rng, 1, false);
    let done = ann(1, SwarmEvent::Completed, true, &[]);
    let c = announce(&mut s, &done, 1, &mut rng, &mut t).unwrap();
    assert_eq!((c.complete, c.incomplete, c.downloaded), (1, 0, 1));
    let c = announce(&mut s, &done, 2, &mut rng, &mut t).unwrap();
    assert_eq!(c.downloaded, 1, "a seeder's second completed");
    // A seeder that starts seeding (started, then completed) downloaded nothing.
    join(&mut s, &mut rng, 2, true);
    let completed = ann(2, SwarmEvent::Completed, true, &[]);
    let c = announce(&mut s, &completed, 3, &mut rng, &mut t).unwrap();
    assert_eq!((c.complete, c.downloaded), (2, 1));
    let (stop1, stop2) = (
        ann(1, SwarmEvent::Stopped, true, &[]),
        ann(2, SwarmEvent::Stopped, true, &[]),
    );
    let c = announce(&mut s, &stop1, 4, &mut rng, &mut t).unwrap();
    assert_eq!((c.complete, c.incomplete), (1, 0));
    announce(&mut s, &stop2, 4, &mut rng, &mut t).unwrap();
    assert_eq!(s.stats().torrents, 0, "an empty torrent is removed");
    assert_eq!(s.scrape(&IH), ScrapeCounts::default());
}

#[test]
fn the_index_agrees_with_the_swarm_through_joins_and_leaves() {
    let (mut s, mut rng) = shard(7);
    let mut model = std::collections::BTreeSet::new();
    for step in 0..5000u32 {
        let i = rng.random_range(0..80u32);
        if rng.random_bool(0.55) {
            join(&mut s, &mut rng, i, false);
            model.insert(i);
        } else {
            assert_eq!(
                s.leave(&IH, &pid(i), conn(0, i)),
                model.remove(&i),
                "step {step}"
            );
        }
        assert_eq!(s.scrape(&IH).incomplete as usize, model.len());
    }
    for i in 0..80 {
        let mut t = Vec::new();
        let stop = ann(i, SwarmEvent::Stopped, false, &[]);
        announce(&mut s, &stop, 0, &mut rng, &mut t).unwrap();
    }
    assert_eq!(s.stats().torrents, 0);
}

#[test]
fn cleaning_drops_silent_peers_and_expired_offers() {
    let (mut s, mut rng) = shard(8);
    let mut t = Vec::new();
    let offers = [oid(1)];
    // An offer timeout of 30 s: peer 1 joins at 90, peer 2 offers at 100.
    for (i, now, offers) in [(1, 90, &[][..]), (2, 100, &offers[..])] {
        let a = ann(i, SwarmEvent::Update, false, offers);
        s.announce(&a, now, 30, 120, &mut rng, &mut t).unwrap();
    }
    assert_eq!(s.pending_offers(), 1);
    assert_eq!(s.clean(120, 60), 0);
    assert_eq!(s.pending_offers(), 1);
    assert_eq!(s.clean(131, 60), 0, "the offer expired, both peers stay");
    assert_eq!(s.pending_offers(), 0);
    assert_eq!(s.clean(151, 60), 1, "peer 1 (seen at 90) is gone");
    assert_eq!(s.scrape(&IH).incomplete, 1);
    assert_eq!(s.clean(161, 60), 1);
    assert_eq!(s.stats().torrents, 0);
}

#[test]
fn a_silent_holder_of_a_peer_id_is_taken_over_by_its_new_connection() {
    let (mut s, mut rng) = shard(9);
    let mut t = Vec::new();
    join(&mut s, &mut rng, 2, false);
    let offers = [oid(1)];
    announce(
        &mut s,
        &ann(1, SwarmEvent::Update, false, &offers),
        10,
        &mut rng,
        &mut t,
    )
    .unwrap();
    assert_eq!(s.pending_offers(), 1);
    let mut again = ann(1, SwarmEvent::Update, false, &[]);
    again.conn = conn(1, 7);
    assert_eq!(
        announce(&mut s, &again, 130, &mut rng, &mut t),
        Err(AnnounceError::PeerIdInUse),
        "seen 120 s ago: still live"
    );
    let c = announce(&mut s, &again, 131, &mut rng, &mut t).unwrap();
    assert_eq!(c.incomplete, 2, "the same peer, now on its new connection");
    assert_eq!(
        s.pending_offers(),
        0,
        "the old connection's offers are gone"
    );
    // The old connection's leave, arriving late, changes nothing.
    assert!(!s.leave(&IH, &pid(1), conn(0, 1)));
    assert!(s.leave(&IH, &pid(1), conn(1, 7)));
}
