//! The tracker core without sockets (the quinn-proto way): each worker's
//! [`Tracker`] runs against a [`FakeIo`] that records what it would send and
//! push through the mesh, the test moves the clock, and mesh messages are
//! delivered by hand, so fan-out, expiry and back-pressure are deterministic
//! and every test runs in microseconds.

use super::*;
use crate::connection_id::FUTURE_SKEW_SECS;
use crate::metrics::DESCS;
use crate::protocol::{
    parse_response, scrape_stats, AnnounceRequest, AnnounceResponse, ConnectRequest, ConnectionId,
    Response, ScrapeRequest,
};
use riptide_common::access_list::SharedAccessList;
use riptide_common::PeerId;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The connection id key every worker of a test cluster shares.
const KEY: [u8; 16] = *b"core-tests-key!!";
/// Unix seconds at the cluster's start.
const UNIX_BASE: u32 = 1_700_000_000;
/// Workers in a test cluster.
const WORKERS: usize = 4;
/// The clock when a cluster starts (seconds since start, as the backends pass it).
const START: u32 = 1000;
/// What a backend's send slot holds: one Ethernet-sized IPv4 payload.
const SEND_BUF: usize = 1472;
/// The address v4 requests arrive on (pktinfo); answers must leave from it.
const LOCAL_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
/// The address v6 requests arrive on.
const LOCAL_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

/// A datagram a tracker handed to its backend.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    to: SocketAddr,
    from: Option<IpAddr>,
    bytes: Vec<u8>,
}

/// An [`Io`] that records instead of sending.
#[derive(Default)]
struct FakeIo {
    /// Every accepted send, in order.
    sent: Vec<Sent>,
    /// Every accepted mesh push, as (to worker, message), in order.
    forwarded: Vec<(usize, MeshMsg)>,
    /// Mesh pushes still accepted; `None`: no limit, `Some(0)`: the mesh is full.
    mesh_room: Option<usize>,
    /// Refuse every send (the send queue is full).
    refuse_sends: bool,
}

impl Io for FakeIo {
    fn send(
        &mut self,
        to: SocketAddr,
        from: Option<IpAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        if self.refuse_sends {
            return false;
        }
        let mut buf = [0u8; SEND_BUF];
        let n = fill(&mut buf);
        self.sent.push(Sent {
            to,
            from,
            bytes: buf[..n].to_vec(),
        });
        true
    }

    fn forward(&mut self, to: usize, msg: MeshMsg) -> bool {
        match &mut self.mesh_room {
            Some(0) => return false,
            Some(room) => *room -= 1,
            None => {}
        }
        self.forwarded.push((to, msg));
        true
    }
}

/// N workers built as `server::run` builds them, each with its own
/// [`FakeIo`], and the clock.
struct Cluster {
    trackers: Vec<Tracker>,
    io: Vec<FakeIo>,
    settings: Settings,
    max_age: u32,
    /// Seconds since start, passed to every call.
    now: u32,
}

impl Cluster {
    fn new(workers: usize) -> Self {
        let config = UdpConfig::default();
        let settings = Settings::from_config(&config);
        let max_age = config.udp.connection_id_max_age;
        let ids = ConnectionIds::new(KEY, max_age);
        let access = SharedAccessList::load(&config.access_list).expect("access list off");
        let trackers = (0..workers)
            .map(|i| {
                Tracker::new(
                    i,
                    workers,
                    settings,
                    ids.clone(),
                    UNIX_BASE,
                    access.cache(),
                    Arc::new(WorkerMetrics::new(DESCS.len())),
                )
            })
            .collect();
        Self {
            trackers,
            io: (0..workers).map(|_| FakeIo::default()).collect(),
            settings,
            max_age,
            now: START,
        }
    }

    /// The id a client gets from a connect at `now` (same key as the cluster).
    fn issue(&self, client: SocketAddr, now: u32) -> ConnectionId {
        ConnectionIds::new(KEY, self.max_age).issue(client.ip(), UNIX_BASE.wrapping_add(now))
    }

    /// A datagram from `client` arrives at `worker`.
    fn datagram(&mut self, worker: usize, client: SocketAddr, payload: &[u8]) {
        let local = if client.is_ipv4() { LOCAL_V4 } else { LOCAL_V6 };
        self.trackers[worker].on_datagram(
            &mut self.io[worker],
            client,
            Some(local),
            payload,
            self.now,
        );
    }

    /// Hands one mesh message from `from` to `to`.
    fn deliver(&mut self, from: usize, to: usize, msg: MeshMsg) {
        self.trackers[to].on_mesh(&mut self.io[to], from, msg, self.now);
    }

    /// Delivers every message in flight, and what they cause, until the mesh
    /// is quiet; returns how many were delivered.
    fn deliver_all(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            let before = delivered;
            for from in 0..self.trackers.len() {
                for (to, msg) in std::mem::take(&mut self.io[from].forwarded) {
                    self.deliver(from, to, msg);
                    delivered += 1;
                }
            }
            if delivered == before {
                return delivered;
            }
        }
    }

    fn take_sent(&mut self, worker: usize) -> Vec<Sent> {
        std::mem::take(&mut self.io[worker].sent)
    }

    fn take_forwarded(&mut self, worker: usize) -> Vec<(usize, MeshMsg)> {
        std::mem::take(&mut self.io[worker].forwarded)
    }

    /// Every send of every worker, as (worker, datagram); clears them.
    fn take_all_sent(&mut self) -> Vec<(usize, Sent)> {
        (0..self.io.len())
            .flat_map(|w| self.take_sent(w).into_iter().map(move |s| (w, s)))
            .collect()
    }

    fn tick(&mut self) {
        for t in &mut self.trackers {
            t.on_clean_tick(self.now);
        }
    }

    fn metric(&self, worker: usize, m: Metric) -> u64 {
        self.trackers[worker].metrics().get(m.index())
    }

    fn total(&self, m: Metric) -> u64 {
        (0..self.trackers.len()).map(|w| self.metric(w, m)).sum()
    }

    /// Connect through `worker`; the id from the response.
    fn connect(&mut self, worker: usize, client: SocketAddr) -> ConnectionId {
        self.datagram(worker, client, &connect_bytes(1));
        let sent = self.take_sent(worker);
        assert_eq!(sent.len(), 1, "one connect response");
        expect_connect(&sent[0]).1
    }

    /// Announce through `worker` with a fresh id, deliver the mesh, and
    /// return the one response and the worker that sent it.
    fn announce(
        &mut self,
        worker: usize,
        client: SocketAddr,
        hash: InfoHash,
        left: i64,
        event: AnnounceEvent,
    ) -> (usize, Sent) {
        let cid = self.connect(worker, client);
        self.datagram(
            worker,
            client,
            &announce_bytes(cid, 2, hash, left, event, client.port()),
        );
        self.deliver_all();
        let mut sent = self.take_all_sent();
        assert_eq!(sent.len(), 1, "one announce response: {sent:?}");
        sent.remove(0)
    }
}

/// An info hash owned by worker `shard` of [`WORKERS`]; `tag` tells hashes
/// of one shard apart.
fn hash_on(shard: usize, tag: u8) -> InfoHash {
    let mut h = [tag; 20];
    h[..4].copy_from_slice(&(shard as u32).to_be_bytes());
    let h = InfoHash(h);
    assert_eq!(shard_of(&h, WORKERS), shard);
    h
}

fn v4(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, last)), port)
}

fn v6(last: u16, port: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, last)),
        port,
    )
}

fn connect_bytes(tid: i32) -> Vec<u8> {
    let mut buf = [0u8; 16];
    let n = ConnectRequest {
        transaction_id: TransactionId(tid),
    }
    .write(&mut buf)
    .expect("16 bytes");
    buf[..n].to_vec()
}

fn announce_bytes(
    cid: ConnectionId,
    tid: i32,
    info_hash: InfoHash,
    left: i64,
    event: AnnounceEvent,
    port: u16,
) -> Vec<u8> {
    let mut buf = [0u8; 98];
    let n = AnnounceRequest {
        connection_id: cid,
        transaction_id: TransactionId(tid),
        info_hash,
        peer_id: PeerId(*b"-RT0001-core-tests!!"),
        downloaded: 0,
        left,
        uploaded: 0,
        event,
        ip: 0,
        key: 0,
        num_want: -1,
        port,
        options: &[],
    }
    .write(&mut buf)
    .expect("98 bytes");
    buf[..n].to_vec()
}

fn scrape_bytes(cid: ConnectionId, tid: i32, hashes: &[InfoHash]) -> Vec<u8> {
    let mut buf = vec![0u8; 16 + 20 * hashes.len()];
    let n = ScrapeRequest::write(&mut buf, cid, TransactionId(tid), hashes).expect("sized");
    buf.truncate(n);
    buf
}

fn parse(s: &Sent) -> Response<'_> {
    parse_response(&s.bytes, s.to.is_ipv6()).expect("a well-formed response")
}

fn expect_connect(s: &Sent) -> (TransactionId, ConnectionId) {
    match parse(s) {
        Response::Connect {
            transaction_id,
            connection_id,
        } => (transaction_id, connection_id),
        other => panic!("expected a connect response, got {other:?}"),
    }
}

fn expect_announce(s: &Sent) -> AnnounceResponse<'_> {
    match parse(s) {
        Response::Announce(a) => a,
        other => panic!("expected an announce response, got {other:?}"),
    }
}

fn expect_scrape(s: &Sent) -> (TransactionId, Vec<ScrapeStats>) {
    match parse(s) {
        Response::Scrape {
            transaction_id,
            stats,
        } => (transaction_id, scrape_stats(stats).collect()),
        other => panic!("expected a scrape response, got {other:?}"),
    }
}

fn expect_error(s: &Sent) -> (TransactionId, &[u8]) {
    match parse(s) {
        Response::Error {
            transaction_id,
            message,
        } => (transaction_id, message),
        other => panic!("expected an error response, got {other:?}"),
    }
}

/// (slot, generation, index, hash) of a `ScrapeAsk`.
fn expect_ask(msg: &MeshMsg) -> (u16, u16, u8, InfoHash) {
    match *msg {
        MeshMsg::ScrapeAsk {
            slot,
            generation,
            index,
            info_hash,
        } => (slot, generation, index, info_hash),
        other => panic!("expected a ScrapeAsk, got {other:?}"),
    }
}

fn stats(seeders: u32, completed: u32, leechers: u32) -> ScrapeStats {
    ScrapeStats {
        seeders,
        completed,
        leechers,
    }
}

fn peer_v4(addr: SocketAddr) -> PeerV4 {
    match addr.ip() {
        IpAddr::V4(ip) => PeerV4 {
            ip: ip.octets(),
            port: addr.port(),
        },
        IpAddr::V6(_) => panic!("not IPv4: {addr}"),
    }
}

fn peer_v6(addr: SocketAddr) -> PeerV6 {
    match addr.ip() {
        IpAddr::V6(ip) => PeerV6 {
            ip: ip.octets(),
            port: addr.port(),
        },
        IpAddr::V4(_) => panic!("not IPv6: {addr}"),
    }
}

#[test]
fn connect_then_announce_round_trip() {
    let mut c = Cluster::new(WORKERS);
    let (leecher, seeder) = (v4(10, 40_000), v4(11, 40_001));
    let hash = hash_on(1, 0xa1);

    c.datagram(1, leecher, &connect_bytes(7));
    let sent = c.take_sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].from), (leecher, Some(LOCAL_V4)));
    assert_eq!(sent[0].bytes.len(), 16);
    let (tid, cid) = expect_connect(&sent[0]);
    assert_eq!(tid, TransactionId(7));
    assert_eq!(cid, c.issue(leecher, START));
    assert_eq!(c.metric(1, Metric::BytesSent), 16);

    c.datagram(
        1,
        leecher,
        &announce_bytes(cid, 8, hash, 500, AnnounceEvent::Started, 6881),
    );
    let sent = c.take_sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].from), (leecher, Some(LOCAL_V4)));
    let a = expect_announce(&sent[0]);
    assert_eq!(a.transaction_id, TransactionId(8));
    assert_eq!(a.interval, c.settings.interval);
    assert_eq!(a.interval, 1800);
    assert_eq!((a.leechers, a.seeders, a.peer_count()), (1, 0, 0));

    let cid = c.connect(1, seeder);
    c.datagram(
        1,
        seeder,
        &announce_bytes(cid, 9, hash, 0, AnnounceEvent::Completed, 6882),
    );
    let sent = c.take_sent(1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bytes.len(), 20 + 6);
    let a = expect_announce(&sent[0]);
    assert_eq!(a.transaction_id, TransactionId(9));
    assert_eq!((a.leechers, a.seeders), (1, 1));
    assert_eq!(
        a.peers_v4().collect::<Vec<_>>(),
        [peer_v4(v4(10, 6881))],
        "the announced port, not the source port"
    );

    for (m, n) in [
        (Metric::RequestsConnect4, 2),
        (Metric::ResponsesConnect4, 2),
        (Metric::RequestsAnnounce4, 2),
        (Metric::AnnouncesLocal, 2),
        (Metric::ResponsesAnnounce4, 2),
        (Metric::BytesReceived, 2 * 16 + 2 * 98),
    ] {
        assert_eq!(c.metric(1, m), n, "{m:?}");
    }
    for m in [
        Metric::AnnouncesForwarded,
        Metric::MeshSent,
        Metric::MeshFull,
    ] {
        assert_eq!(c.total(m), 0, "{m:?}");
    }
    assert!(c.take_all_sent().is_empty());
    assert!((0..WORKERS).all(|w| c.io[w].forwarded.is_empty()));
}

#[test]
fn ipv6_announce_gets_ipv6_peers_only() {
    let mut c = Cluster::new(WORKERS);
    let hash = hash_on(2, 0xb6);
    c.announce(2, v4(20, 1), hash, 10, AnnounceEvent::Started);
    let (_, first) = c.announce(2, v6(21, 2), hash, 10, AnnounceEvent::Started);
    assert_eq!(first.from, Some(LOCAL_V6));
    let a = expect_announce(&first);
    assert_eq!((a.leechers, a.seeders, a.peer_count()), (1, 0, 0));

    let (_, second) = c.announce(2, v6(22, 3), hash, 0, AnnounceEvent::None);
    assert_eq!(second.to, v6(22, 3));
    assert_eq!(second.bytes.len(), 20 + 18);
    let a = expect_announce(&second);
    assert_eq!((a.leechers, a.seeders), (1, 1), "counts of the v6 swarm");
    assert_eq!(a.peers_v6().collect::<Vec<_>>(), [peer_v6(v6(21, 2))]);
    assert_eq!(c.metric(2, Metric::ResponsesConnect6), 2);
    assert_eq!(c.metric(2, Metric::ResponsesAnnounce6), 2);
    assert_eq!(c.metric(2, Metric::ResponsesAnnounce4), 1);
}

#[test]
fn announce_on_a_foreign_shard_is_answered_by_the_owner() {
    let mut c = Cluster::new(WORKERS);
    let client = v4(30, 50_000);
    let hash = hash_on(2, 0xc2);
    let cid = c.connect(0, client);

    c.datagram(
        0,
        client,
        &announce_bytes(cid, 31, hash, 0, AnnounceEvent::Started, 7000),
    );
    assert!(
        c.io[0].sent.is_empty(),
        "the receiving worker does not answer"
    );
    let fwd = c.take_forwarded(0);
    assert_eq!(fwd.len(), 1);
    let (to, msg) = fwd[0];
    assert_eq!(to, 2);
    let MeshMsg::Announce(a) = msg else {
        panic!("expected an announce, got {msg:?}");
    };
    assert_eq!((a.client, a.local), (client, Some(LOCAL_V4)));
    assert_eq!((a.transaction_id, a.info_hash), (TransactionId(31), hash));
    assert_eq!((a.port, a.event, a.seeder), (7000, Event::Started, true));
    assert_eq!(
        u32::from(a.numwant),
        c.settings.max_numwant.min(MAX_PEERS_V4)
    );
    assert_eq!(c.metric(0, Metric::AnnouncesForwarded), 1);
    assert_eq!(c.metric(0, Metric::MeshSent), 1);
    assert_eq!(c.metric(0, Metric::AnnouncesLocal), 0);

    c.deliver(0, to, msg);
    assert!(c.take_sent(0).is_empty());
    let sent = c.take_sent(2);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].from), (client, Some(LOCAL_V4)));
    let r = expect_announce(&sent[0]);
    assert_eq!(r.transaction_id, TransactionId(31));
    assert_eq!((r.leechers, r.seeders, r.peer_count()), (0, 1, 0));
    assert_eq!(c.metric(2, Metric::MeshReceived), 1);
    assert_eq!(c.metric(2, Metric::ResponsesAnnounce4), 1);
    assert_eq!(c.metric(0, Metric::ResponsesAnnounce4), 0);

    // The swarm lives on worker 2 whichever worker the next client reaches.
    let (by, sent) = c.announce(3, v4(32, 1), hash, 100, AnnounceEvent::Started);
    assert_eq!(by, 2);
    let r = expect_announce(&sent);
    assert_eq!((r.leechers, r.seeders), (1, 1));
    assert_eq!(r.peers_v4().collect::<Vec<_>>(), [peer_v4(v4(30, 7000))]);
}

#[test]
fn scrape_fans_out_across_shards_and_answers_in_request_order() {
    let mut c = Cluster::new(WORKERS);
    let (h0, h1, h2, h3) = (hash_on(0, 1), hash_on(1, 2), hash_on(2, 3), hash_on(3, 4));
    let unknown = hash_on(2, 5);
    c.announce(3, v4(1, 1), h0, 10, AnnounceEvent::Started);
    c.announce(2, v4(2, 2), h1, 0, AnnounceEvent::Completed);
    c.announce(1, v4(3, 3), h2, 10, AnnounceEvent::Started);
    c.announce(0, v4(4, 4), h2, 10, AnnounceEvent::Started);
    c.announce(0, v4(5, 5), h3, 0, AnnounceEvent::None);
    c.announce(1, v4(6, 6), h3, 0, AnnounceEvent::Completed);
    c.announce(2, v6(7, 7), h3, 10, AnnounceEvent::Started);
    let mesh_sent_before = c.metric(0, Metric::MeshSent);
    let mesh_received_before = c.metric(0, Metric::MeshReceived);

    let client = v4(40, 40_040);
    let cid = c.connect(0, client);
    c.datagram(
        0,
        client,
        &scrape_bytes(cid, 99, &[h3, h0, h2, h1, unknown]),
    );
    assert!(c.io[0].sent.is_empty(), "waits for the other shards");
    let asks = c.take_forwarded(0);
    let (slot, generation, _, _) = expect_ask(&asks[0].1);
    let fan: Vec<_> = asks
        .iter()
        .map(|(to, m)| {
            let (s, g, index, hash) = expect_ask(m);
            assert_eq!((s, g), (slot, generation), "one pending slot");
            (*to, index, hash)
        })
        .collect();
    assert_eq!(
        fan,
        [(3, 0, h3), (2, 2, h2), (1, 3, h1), (2, 4, unknown)],
        "only the remote hashes, each to its owner, with its position"
    );
    assert_eq!(c.metric(0, Metric::ScrapesLocal), 1);
    assert_eq!(c.metric(0, Metric::ScrapesForwarded), 4);
    assert_eq!(c.metric(0, Metric::MeshSent) - mesh_sent_before, 4);

    // The owners answer in reverse order of asking.
    for &(to, msg) in asks.iter().rev() {
        c.deliver(0, to, msg);
    }
    let mut answers = Vec::new();
    for w in [2, 1, 3] {
        answers.extend(c.take_forwarded(w).into_iter().map(|(to, m)| (w, to, m)));
    }
    assert_eq!(answers.len(), 4);
    assert!(answers.iter().all(|&(_, to, _)| to == 0));
    let last = answers.pop().expect("4 answers");
    for (from, to, msg) in answers {
        c.deliver(from, to, msg);
        assert!(c.io[0].sent.is_empty(), "not before the last answer");
    }
    c.deliver(last.0, last.1, last.2);

    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to, sent[0].from), (client, Some(LOCAL_V4)));
    assert_eq!(sent[0].bytes.len(), 8 + 12 * 5);
    let (tid, got) = expect_scrape(&sent[0]);
    assert_eq!(tid, TransactionId(99));
    assert_eq!(
        got,
        [
            stats(2, 1, 1), // h3: two v4 seeders, one of them completed, a v6 leecher
            stats(0, 0, 1), // h0, local
            stats(0, 0, 2), // h2
            stats(1, 1, 0), // h1
            stats(0, 0, 0), // unknown
        ]
    );
    assert_eq!(c.metric(0, Metric::ResponsesScrape4), 1);
    assert_eq!(c.metric(0, Metric::MeshReceived) - mesh_received_before, 4);
    assert!(c.take_all_sent().is_empty());
}

#[test]
fn scrape_of_local_hashes_answers_at_once() {
    let mut c = Cluster::new(WORKERS);
    let hash = hash_on(3, 9);
    c.announce(3, v4(1, 1), hash, 0, AnnounceEvent::Completed);
    let client = v6(50, 5);
    let cid = c.connect(3, client);
    c.datagram(3, client, &scrape_bytes(cid, 5, &[hash, hash_on(3, 10)]));
    assert!(c.io[3].forwarded.is_empty());
    let sent = c.take_sent(3);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].from, Some(LOCAL_V6));
    assert_eq!(
        expect_scrape(&sent[0]),
        (TransactionId(5), vec![stats(1, 1, 0), stats(0, 0, 0)])
    );
    assert_eq!(c.metric(3, Metric::ScrapesLocal), 2);
    assert_eq!(c.metric(3, Metric::ResponsesScrape6), 1);
}

#[test]
fn pending_scrape_expires_after_its_deadline_and_ignores_the_late_answer() {
    let mut c = Cluster::new(WORKERS);
    let hash = hash_on(1, 7);
    c.announce(1, v4(1, 1), hash, 0, AnnounceEvent::Started);
    let client = v4(60, 6000);
    let cid = c.connect(0, client);
    let started = c.now;
    c.datagram(0, client, &scrape_bytes(cid, 61, &[hash]));
    let late_ask = c.take_forwarded(0);
    assert_eq!(late_ask.len(), 1);
    let (slot, generation, _, _) = expect_ask(&late_ask[0].1);

    c.now = started + SCRAPE_DEADLINE_SECS;
    c.tick();
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 0, "not yet");
    c.now = started + SCRAPE_DEADLINE_SECS + 1;
    c.tick();
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 1, "expired");
    assert!(c.take_all_sent().is_empty(), "expiry sends nothing");

    // The owner answers late.
    c.deliver(0, late_ask[0].0, late_ask[0].1);
    let late_answer = c.take_forwarded(1);
    assert_eq!(late_answer.len(), 1);

    // A new scrape takes the freed slot under a new generation ...
    c.datagram(0, client, &scrape_bytes(cid, 62, &[hash]));
    let ask = c.take_forwarded(0);
    let (new_slot, new_generation, _, _) = expect_ask(&ask[0].1);
    assert_eq!(new_slot, slot);
    assert_ne!(new_generation, generation);

    // ... so the late answer completes neither scrape.
    c.deliver(1, 0, late_answer[0].1);
    assert!(c.take_all_sent().is_empty(), "late answer ignored");

    c.deliver(0, ask[0].0, ask[0].1);
    assert_eq!(c.deliver_all(), 1);
    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        expect_scrape(&sent[0]),
        (TransactionId(62), vec![stats(1, 0, 0)])
    );
    c.now += 100;
    c.tick();
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 1);
    assert_eq!(c.metric(0, Metric::ResponsesScrape4), 1);
}

#[test]
fn full_mesh_drops_a_forwarded_announce() {
    let mut c = Cluster::new(WORKERS);
    let client = v4(70, 7000);
    let hash = hash_on(3, 0x70);
    let cid = c.connect(0, client);
    c.io[0].mesh_room = Some(0);
    c.datagram(
        0,
        client,
        &announce_bytes(cid, 71, hash, 10, AnnounceEvent::Started, 7070),
    );
    assert!(c.take_all_sent().is_empty(), "dropped: the client retries");
    assert!(c.io[0].forwarded.is_empty());
    assert_eq!(c.metric(0, Metric::RequestsAnnounce4), 1);
    assert_eq!(c.metric(0, Metric::MeshFull), 1);
    assert_eq!(c.metric(0, Metric::AnnouncesForwarded), 0);
    assert_eq!(c.metric(0, Metric::MeshSent), 0);
    assert_eq!(c.total(Metric::ResponsesError4), 0);

    // The mesh drains; the retry reaches an owner that never saw the first.
    c.io[0].mesh_room = None;
    c.datagram(
        0,
        client,
        &announce_bytes(cid, 72, hash, 10, AnnounceEvent::Started, 7070),
    );
    assert_eq!(c.deliver_all(), 1);
    let sent = c.take_sent(3);
    assert_eq!(sent.len(), 1);
    let r = expect_announce(&sent[0]);
    assert_eq!(r.transaction_id, TransactionId(72));
    assert_eq!((r.leechers, r.seeders), (1, 0));
}

#[test]
fn full_mesh_abandons_a_scrape_without_a_reply() {
    let mut c = Cluster::new(WORKERS);
    let (h1, h2, h3) = (hash_on(1, 1), hash_on(2, 2), hash_on(3, 3));
    c.announce(1, v4(1, 1), h1, 0, AnnounceEvent::Started);
    let client = v4(80, 8000);
    let cid = c.connect(0, client);
    let mesh_sent_before = c.metric(0, Metric::MeshSent);

    // Room for the first ask only.
    c.io[0].mesh_room = Some(1);
    c.datagram(0, client, &scrape_bytes(cid, 81, &[h1, h2, h3]));
    assert!(c.take_all_sent().is_empty(), "no reply, not even an error");
    assert_eq!(c.metric(0, Metric::MeshFull), 1);
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 1);
    assert_eq!(c.metric(0, Metric::MeshSent) - mesh_sent_before, 1);
    assert_eq!(c.metric(0, Metric::ScrapesForwarded), 0);
    assert_eq!(c.total(Metric::ResponsesError4), 0);

    // The ask that got through is answered, and the answer ignored.
    let asks = c.take_forwarded(0);
    assert_eq!(asks.len(), 1);
    assert_eq!(expect_ask(&asks[0].1).3, h1);
    c.deliver(0, asks[0].0, asks[0].1);
    assert_eq!(c.deliver_all(), 1);
    assert!(c.take_all_sent().is_empty());

    // The slot was freed: with room again the same scrape completes.
    c.io[0].mesh_room = None;
    c.datagram(0, client, &scrape_bytes(cid, 82, &[h1, h2, h3]));
    assert_eq!(c.deliver_all(), 6);
    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        expect_scrape(&sent[0]),
        (
            TransactionId(82),
            vec![stats(1, 0, 0), stats(0, 0, 0), stats(0, 0, 0)]
        )
    );
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 1);
}

#[test]
fn full_mesh_on_the_answer_leaves_the_scrape_to_expire() {
    let mut c = Cluster::new(WORKERS);
    let hash = hash_on(2, 0x22);
    let client = v4(90, 9000);
    let cid = c.connect(0, client);
    c.datagram(0, client, &scrape_bytes(cid, 91, &[hash]));
    let asks = c.take_forwarded(0);
    assert_eq!(asks.len(), 1);

    c.io[2].mesh_room = Some(0);
    c.deliver(0, asks[0].0, asks[0].1);
    assert_eq!(c.metric(2, Metric::MeshReceived), 1);
    assert_eq!(c.metric(2, Metric::MeshFull), 1);
    assert_eq!(c.metric(2, Metric::MeshSent), 0);
    assert_eq!(c.deliver_all(), 0);

    c.now += SCRAPE_DEADLINE_SECS + 1;
    c.tick();
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 1);
    assert!(c.take_all_sent().is_empty());
}

#[test]
fn full_pending_table_answers_tracker_busy() {
    let mut c = Cluster::new(WORKERS);
    let hash = hash_on(1, 0x11);
    let client = v4(100, 10_000);
    let cid = c.connect(0, client);
    for tid in 0..PENDING_SCRAPES as i32 {
        c.datagram(0, client, &scrape_bytes(cid, tid, &[hash]));
    }
    assert_eq!(c.take_forwarded(0).len(), PENDING_SCRAPES);
    assert!(c.take_all_sent().is_empty());
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 0);

    c.datagram(0, client, &scrape_bytes(cid, -5, &[hash]));
    assert!(c.io[0].forwarded.is_empty());
    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        expect_error(&sent[0]),
        (TransactionId(-5), &b"tracker busy, retry later"[..])
    );
    assert_eq!(c.metric(0, Metric::ErrorsScrapeAbandoned), 1);
    assert_eq!(c.metric(0, Metric::ResponsesError4), 1);

    // Expiry empties the table; scrapes are taken again.
    c.now += SCRAPE_DEADLINE_SECS + 1;
    c.tick();
    assert_eq!(
        c.metric(0, Metric::ErrorsScrapeAbandoned),
        1 + PENDING_SCRAPES as u64
    );
    c.datagram(0, client, &scrape_bytes(cid, 7, &[hash]));
    assert_eq!(c.deliver_all(), 2);
    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(expect_scrape(&sent[0]).0, TransactionId(7));
}

#[test]
fn connection_id_expires_with_the_clock() {
    let mut c = Cluster::new(WORKERS);
    let client = v4(110, 11_000);
    let hash = hash_on(0, 0x10);
    let issued_at = c.now;
    let old = c.connect(0, client);

    // Still good at exactly max age, on any worker (one key for all).
    c.now = issued_at + c.max_age;
    c.datagram(
        0,
        client,
        &announce_bytes(old, 1, hash, 1, AnnounceEvent::Started, 1),
    );
    assert_eq!(c.take_sent(0).len(), 1);
    c.datagram(3, client, &scrape_bytes(old, 2, &[hash_on(3, 1)]));
    assert_eq!(c.take_sent(3).len(), 1);

    c.now = issued_at + c.max_age + 1;
    c.datagram(
        0,
        client,
        &announce_bytes(old, 3, hash, 1, AnnounceEvent::None, 1),
    );
    c.datagram(0, client, &scrape_bytes(old, 4, &[hash]));
    assert!(c.take_all_sent().is_empty(), "refused without a reply");
    assert!(c.io[0].forwarded.is_empty());
    assert_eq!(c.metric(0, Metric::ErrorsConnectionIdExpired), 2);
    assert_eq!(c.total(Metric::ResponsesError4), 0);

    let fresh = c.connect(0, client);
    assert_eq!(fresh, c.issue(client, c.now));
    c.datagram(
        0,
        client,
        &announce_bytes(fresh, 5, hash, 1, AnnounceEvent::None, 1),
    );
    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(expect_announce(&sent[0]).transaction_id, TransactionId(5));
    assert_eq!(c.metric(0, Metric::ErrorsConnectionIdExpired), 2);
    assert_eq!(c.total(Metric::ErrorsConnectionIdForged), 0);
}

#[test]
fn connection_id_from_the_future_is_refused_beyond_the_skew() {
    let mut c = Cluster::new(WORKERS);
    let client = v4(120, 12_000);
    let hash = hash_on(1, 0x12);
    let skewed = c.issue(client, c.now + FUTURE_SKEW_SECS);
    c.datagram(
        1,
        client,
        &announce_bytes(skewed, 1, hash, 1, AnnounceEvent::Started, 1),
    );
    assert_eq!(c.take_sent(1).len(), 1, "within the tolerated skew");

    let future = c.issue(client, c.now + FUTURE_SKEW_SECS + 1);
    c.datagram(
        1,
        client,
        &announce_bytes(future, 2, hash, 1, AnnounceEvent::Started, 1),
    );
    assert!(c.take_all_sent().is_empty());
    assert_eq!(c.metric(1, Metric::ErrorsConnectionIdFuture), 1);
    assert_eq!(c.metric(1, Metric::ResponsesAnnounce4), 1);
}

#[test]
fn forged_connection_id_is_dropped_without_reply() {
    let mut c = Cluster::new(WORKERS);
    let (client, other) = (v4(130, 13_000), v4(131, 13_001));
    let hash = hash_on(2, 0x13);
    let cid = c.connect(0, client);
    let theirs = c.connect(0, other);
    let flipped = ConnectionId(cid.0 ^ 1);

    c.datagram(
        0,
        client,
        &announce_bytes(flipped, 1, hash, 1, AnnounceEvent::Started, 1),
    );
    c.datagram(
        0,
        client,
        &announce_bytes(theirs, 2, hash, 1, AnnounceEvent::Started, 1),
    );
    c.datagram(0, client, &scrape_bytes(flipped, 3, &[hash]));
    assert!(c.take_all_sent().is_empty(), "no reply at all");
    assert!(c.io[0].forwarded.is_empty(), "nothing reaches the owner");
    assert_eq!(c.metric(0, Metric::ErrorsConnectionIdForged), 3);
    assert_eq!(c.metric(0, Metric::RequestsAnnounce4), 2);
    assert_eq!(c.metric(0, Metric::RequestsScrape4), 1);
    assert_eq!(c.total(Metric::ResponsesError4), 0);

    // The swarm never saw the forged announces.
    c.datagram(0, client, &scrape_bytes(cid, 4, &[hash]));
    c.deliver_all();
    let sent = c.take_sent(0);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        expect_scrape(&sent[0]),
        (TransactionId(4), vec![stats(0, 0, 0)])
    );
}

#[test]
fn refused_sends_are_counted_and_the_swarm_still_updates() {
    let mut c = Cluster::new(WORKERS);
    let client = v4(140, 14_000);
    let hash = hash_on(1, 0x14);
    c.io[1].refuse_sends = true;
    c.datagram(1, client, &connect_bytes(1));
    assert_eq!(c.metric(1, Metric::ErrorsSendQueueFull), 1);
    assert_eq!(c.metric(1, Metric::ResponsesConnect4), 0);
    assert_eq!(c.metric(1, Metric::BytesSent), 0);

    // An announce forwarded from worker 0 whose answer cannot leave worker 1.
    let cid = c.issue(client, c.now);
    c.datagram(
        0,
        client,
        &announce_bytes(cid, 2, hash, 1, AnnounceEvent::Started, 1400),
    );
    assert_eq!(c.deliver_all(), 1);
    assert_eq!(c.metric(1, Metric::ErrorsSendQueueFull), 2);
    assert_eq!(c.metric(1, Metric::ResponsesAnnounce4), 0);
    assert!(c.take_all_sent().is_empty());

    c.io[1].refuse_sends = false;
    let (_, sent) = c.announce(1, v4(141, 1), hash, 0, AnnounceEvent::None);
    let r = expect_announce(&sent);
    assert_eq!((r.leechers, r.seeders), (1, 1));
    assert_eq!(r.peers_v4().collect::<Vec<_>>(), [peer_v4(v4(140, 1400))]);
}

#[test]
fn malformed_requests_get_an_error_or_nothing() {
    let mut c = Cluster::new(WORKERS);
    let client = v4(150, 15_000);
    c.datagram(2, client, &[0u8; 15]);
    assert!(c.take_all_sent().is_empty());
    assert_eq!(c.metric(2, Metric::ErrorsUnanswerable), 1);

    // A scrape without hashes: the transaction id is readable.
    let cid = c.issue(client, c.now);
    c.datagram(2, client, &scrape_bytes(cid, 151, &[]));
    let sent = c.take_sent(2);
    assert_eq!(sent.len(), 1);
    let (tid, message) = expect_error(&sent[0]);
    assert_eq!(tid, TransactionId(151));
    assert!(!message.is_empty());
    assert_eq!(c.metric(2, Metric::ErrorsMalformed), 1);
    assert_eq!(c.metric(2, Metric::ResponsesError4), 1);
    assert_eq!(c.metric(2, Metric::RequestsScrape4), 0);
}
