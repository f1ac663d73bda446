//! One riptide-http worker on uring-rt: its connections (state in a `Vec`
//! by slot), its shard of the torrents, and the hops through the byte mesh
//! when a request is about a torrent another worker owns.
//!
//! A connection answers its requests strictly in order with at most one
//! outstanding at a time: a request for a foreign shard goes to the owner,
//! receiving pauses (pipelined requests wait in the runtime's carry), and
//! the answer resumes it. The sequence number in the return address makes
//! a late answer (the connection timed out or closed meanwhile) harmless.

use super::full_scrape::RateLimit;
use super::relay::{self, Record, RemoteAnnounce};
use super::ServerState;
use crate::metrics::Metric;
use crate::protocol::{
    announce_response_max_len, parse_request, scrape_response_max_len, write_announce,
    write_body_head, write_error, write_failure, write_scrape, AnnounceResponse, Connection,
    ParseError, Peers, ScrapeRequest, Status, Target, HEAD_RESERVE,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use riptide_common::access_list::AccessCache;
use riptide_common::swarm::{PeerV4, PeerV6, ScrapeStats, Shard};
use riptide_common::{shard_of, InfoHash};
use riptide_stream::{client_from_forwarded, Front, Protocol, ScrapeParts, Seat};
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;
use uring_rt::mesh::bytes::Lane;
use uring_rt::{ConnId, Ctx, Handler, ListenerId, Signal};

/// Timer token: a cleaning slice (a process that shares the shard with
/// riptide-udp leaves cleaning to it).
pub const TIMER_CLEAN: u64 = 101;
/// Timer token: copy statistics into the metrics.
pub const TIMER_STATS: u64 = 102;
/// Timer token: publish this shard's part of the full scrape.
pub const TIMER_FULL_SCRAPE: u64 = 103;

/// Where a worker's series live in its values (at 0 alone; after
/// riptide-udp's in one process).
pub use riptide_stream::MetricsPlace;

impl From<Metric> for usize {
    fn from(m: Metric) -> usize {
        m.index()
    }
}
/// Torrents visited per cleaning tick.
const CLEAN_BUDGET: usize = 4096;

const ERR_NOT_ALLOWED: &[u8] = b"info hash is not allowed on this tracker";
const ERR_BUSY: &[u8] = b"tracker busy, retry later";
const ERR_FULL_SCRAPE: &[u8] = b"full scrape is not offered";
const ERR_FULL_SCRAPE_RATE: &[u8] = b"full scrape at most once per full_scrape_interval";

/// What a connection waits for.
enum Waiting {
    /// Nothing: its requests are parsed as they come.
    Nothing,
    /// The owner's answer to the announce with this sequence number.
    Announce(u32),
    /// The owners' counts for the scrape with this sequence number.
    Scrape(u32, PendingScrape),
    /// A full scrape's body is being sent, `sent` bytes so far (its head
    /// went first); more as the connection drains (`on_writable`).
    Body { body: Arc<Vec<u8>>, sent: usize },
}

/// A scrape some of whose hashes other workers count.
type PendingScrape = ScrapeParts<ScrapeStats>;

/// What a connection's HTTP side keeps (its addresses are the front's:
/// `client` is what announces store).
pub struct ConnState {
    waiting: Waiting,
    /// What to do with the connection once the outstanding answer is sent.
    after: Connection,
    /// Requests answered.
    served: u32,
    /// Bytes of an unfinished head are waiting (its deadline runs).
    in_head: bool,
}

/// One worker's HTTP tracker; `M` is the runtime's small-mesh message
/// (unused here: `()` when it runs alone, riptide-udp's in one process
/// with it).
pub struct HttpWorker<M = ()> {
    _msg: std::marker::PhantomData<fn() -> M>,
    /// Its place, front (listeners and connections) and metrics.
    seat: Seat<ConnState>,
    state: ServerState,
    /// Where a TLS connection's response is written before encryption.
    scratch: Vec<u8>,
    shard: Shard,
    rng: SmallRng,
    access: AccessCache,
    peers_v4: Vec<PeerV4>,
    peers_v6: Vec<PeerV6>,
    /// Scratch for a scrape: hashes per owner worker.
    remote: Vec<Vec<(u8, InfoHash)>>,
    spare_scrapes: Vec<PendingScrape>,
    /// Who had a full scrape when.
    full_rate: RateLimit,
}

/// What handling one request left to do.
enum Outcome {
    /// Answered; the connection continues as the request said.
    Answered(Connection),
    /// Sent to another worker; wait for its answer.
    Forwarded,
    /// A long body is on its way out: wait until it is sent.
    Streaming,
}

impl<M: Copy + Send + 'static> HttpWorker<M> {
    /// The worker in `seat` (its listeners are added to the ring at start).
    pub fn new(seat: Seat<ConnState>, state: ServerState) -> HttpWorker<M> {
        let max_numwant = state.settings.max_numwant;
        HttpWorker {
            _msg: std::marker::PhantomData,
            access: seat.shared.access_list.cache(),
            remote: (0..seat.workers).map(|_| Vec::new()).collect(),
            seat,
            state,
            scratch: Vec::new(),
            shard: Shard::new(),
            rng: SmallRng::from_os_rng(),
            peers_v4: Vec::with_capacity(max_numwant),
            peers_v6: Vec::with_capacity(max_numwant),
            spare_scrapes: Vec::new(),
            full_rate: RateLimit::default(),
        }
    }

    /// This worker's shard: swapped with another tracker's when several
    /// protocols serve one swarm in one process (`riptide`).
    pub fn shard_mut(&mut self) -> &mut Shard {
        &mut self.shard
    }

    /// Whether `l` is one of this worker's listeners (after `on_start`).
    pub fn owns_listener(&self, l: ListenerId) -> bool {
        self.seat.front.owns_listener(l)
    }

    /// Queue a whole response that `write` (given this worker, for the
    /// shard) writes into at most `need` bytes: straight into the send
    /// space on plain connections, through the worker's scratch buffer and
    /// TLS encryption (into the send space) on TLS ones.
    fn emit(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        need: usize,
        write: impl FnOnce(&mut Self, &mut [u8]) -> usize,
    ) -> bool {
        let sent = if self.seat.front.session_mut(conn).is_some() {
            let mut scratch = std::mem::take(&mut self.scratch);
            if scratch.len() < need {
                scratch.resize(need, 0);
            }
            let n = write(self, &mut scratch[..need]);
            let sent = self.seat.front.send(ctx, conn, &scratch[..n]).ok();
            self.scratch = scratch;
            sent
        } else {
            ctx.send_with(conn, need, |out| write(self, out)).ok()
        };
        if let Some(n) = sent {
            self.seat.metrics.add(Metric::BytesSent, n as u64);
            true
        } else {
            self.seat.metrics.count(Metric::ErrorsSendQueueFull);
            false
        }
    }

    /// Close gracefully, with a TLS close_notify first on TLS connections.
    fn close(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        self.seat.front.close_notify(ctx, conn);
        ctx.close(conn);
    }

    fn failure(&mut self, ctx: &mut Ctx<M>, conn: ConnId, reason: &[u8], c: Connection) {
        self.seat.metrics.count(Metric::ResponsesFailure);
        self.emit(ctx, conn, 256 + reason.len(), |_, out| {
            write_failure(out, reason, c).unwrap_or(0)
        });
    }

    fn error(&mut self, ctx: &mut Ctx<M>, conn: ConnId, status: Status) {
        self.seat.metrics.count(Metric::ResponsesError);
        self.emit(ctx, conn, 256, |_, out| {
            write_error(out, status).unwrap_or(0)
        });
    }

    /// Runs an announce on this worker's shard and writes the whole HTTP
    /// response into `out`; returns its length.
    fn run_announce(&mut self, a: &RemoteAnnounce, now: u32, out: &mut [u8]) -> usize {
        let (counts, peers) = match a.ip {
            IpAddr::V4(ip) => {
                let req = a.to_swarm(PeerV4::from(SocketAddrV4::new(ip, a.port)));
                let c = self
                    .shard
                    .announce_v4(&req, now, &mut self.rng, &mut self.peers_v4);
                (c, (&self.peers_v4[..], &[][..]))
            }
            IpAddr::V6(ip) => {
                let req = a.to_swarm(PeerV6::from(SocketAddrV6::new(ip, a.port, 0, 0)));
                let c = self
                    .shard
                    .announce_v6(&req, now, &mut self.rng, &mut self.peers_v6);
                (c, (&[][..], &self.peers_v6[..]))
            }
        };
        let (v4, v6) = peers;
        let peers = if a.compact {
            Peers::Compact { v4, v6 }
        } else {
            Peers::Dicts {
                v4,
                v6,
                peer_ids: None,
            }
        };
        let resp = AnnounceResponse {
            interval: self.state.settings.interval,
            min_interval: self.state.settings.min_interval,
            complete: counts.seeders,
            incomplete: counts.leechers,
            warning: None,
        };
        write_announce(out, &resp, peers, a.connection).unwrap_or(0)
    }

    /// Bytes an announce response may take.
    fn announce_need(a: &RemoteAnnounce) -> usize {
        announce_response_max_len(usize::from(a.numwant), a.compact, 0)
    }

    /// Handles one parsed request of `conn`.
    fn handle(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        client: IpAddr,
        target: Target<'_>,
        connection: Connection,
    ) -> Outcome {
        match target {
            Target::Failure(reason) => {
                self.failure(ctx, conn, reason.as_bytes(), connection);
                Outcome::Answered(connection)
            }
            Target::Announce(a) => {
                let family = [Metric::RequestsAnnounce4, Metric::RequestsAnnounce6];
                self.seat.metrics.count_by_family(client, family);
                if !self.access.allows(&a.info_hash) {
                    self.seat.metrics.count(Metric::ErrorsAccessDenied);
                    self.failure(ctx, conn, ERR_NOT_ALLOWED, connection);
                    return Outcome::Answered(connection);
                }
                let ra = RemoteAnnounce {
                    info_hash: a.info_hash,
                    ip: client,
                    port: a.port,
                    event: a.event,
                    seeder: a.seeder(),
                    numwant: a.numwant_or(
                        self.state.settings.max_numwant,
                        self.state.settings.max_numwant,
                    ) as u16,
                    compact: a.compact,
                    connection,
                };
                let owner = shard_of(&a.info_hash, self.seat.workers);
                if owner == self.seat.id {
                    self.seat.metrics.count(Metric::AnnouncesLocal);
                    let now = self.seat.shared.secs(ctx.now());
                    let need = Self::announce_need(&ra);
                    if self.emit(ctx, conn, need, |me, out| me.run_announce(&ra, now, out)) {
                        self.seat.metrics.count(Metric::ResponsesAnnounce);
                    }
                    return Outcome::Answered(connection);
                }
                let me = self.seat.id;
                let Some(ret) = self.seat.front.conn_mut(conn).map(|c| c.next_return(me)) else {
                    return Outcome::Answered(Connection::Close);
                };
                let pushed = ctx.mesh_push_with(owner, Lane::Request, relay::ANNOUNCE_LEN, |b| {
                    relay::write_announce(b, &ret, &ra)
                });
                if pushed.is_ok() {
                    self.seat.metrics.count(Metric::AnnouncesForwarded);
                    if let Some(c) = self.seat.front.conn_mut(conn) {
                        c.waiting = Waiting::Announce(ret.seq);
                        c.after = connection;
                    }
                    Outcome::Forwarded
                } else {
                    self.seat.metrics.count(Metric::ErrorsMeshFull);
                    self.failure(ctx, conn, ERR_BUSY, connection);
                    Outcome::Answered(connection)
                }
            }
            Target::Scrape(s) => {
                let family = [Metric::RequestsScrape4, Metric::RequestsScrape6];
                self.seat.metrics.count_by_family(client, family);
                self.scrape(ctx, conn, client, &s, connection)
            }
        }
    }

    fn scrape(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        client: IpAddr,
        s: &ScrapeRequest<'_>,
        connection: Connection,
    ) -> Outcome {
        if s.is_empty() {
            return self.full_scrape(ctx, conn, client, connection);
        }
        let mut pending = self.spare_scrapes.pop().unwrap_or_default();
        pending.files.clear();
        for r in &mut self.remote {
            r.clear();
        }
        let mut local = 0;
        for (i, h) in s.info_hashes().enumerate() {
            let mut stats = ScrapeStats::default();
            if self.access.allows(&h) {
                let owner = shard_of(&h, self.seat.workers);
                if owner == self.seat.id {
                    stats = self.shard.scrape(&h);
                    local += 1;
                } else {
                    self.remote[owner].push((i as u8, h));
                }
            }
            pending.files.push((h, stats));
        }
        self.seat.metrics.add(Metric::ScrapesLocal, local);
        let owners = self.remote.iter().filter(|r| !r.is_empty()).count();
        if owners == 0 {
            let need = scrape_response_max_len(pending.files.len());
            if self.emit(ctx, conn, need, |_, out| {
                write_scrape(out, &mut pending.files, connection).unwrap_or(0)
            }) {
                self.seat.metrics.count(Metric::ResponsesScrape);
            }
            self.spare_scrapes.push(pending);
            return Outcome::Answered(connection);
        }
        let me = self.seat.id;
        let Some(ret) = self.seat.front.conn_mut(conn).map(|c| c.next_return(me)) else {
            self.spare_scrapes.push(pending);
            return Outcome::Answered(Connection::Close);
        };
        for owner in 0..self.seat.workers {
            let hashes = &self.remote[owner];
            if hashes.is_empty() {
                continue;
            }
            let pushed = ctx.mesh_push_with(
                owner,
                Lane::Request,
                relay::scrape_ask_len(hashes.len()),
                |b| relay::write_scrape_ask(b, &ret, hashes),
            );
            if pushed.is_err() {
                // Answers to the asks already sent find no waiting scrape.
                self.seat.metrics.count(Metric::ErrorsMeshFull);
                self.spare_scrapes.push(pending);
                self.failure(ctx, conn, ERR_BUSY, connection);
                return Outcome::Answered(connection);
            }
            self.seat
                .metrics
                .add(Metric::ScrapesForwarded, hashes.len() as u64);
        }
        pending.missing = owners;
        if let Some(c) = self.seat.front.conn_mut(conn) {
            c.waiting = Waiting::Scrape(ret.seq, pending);
            c.after = connection;
        }
        Outcome::Forwarded
    }

    /// A scrape of every torrent: the shared body (rebuilt at most once per
    /// interval), to each address at most once per interval.
    fn full_scrape(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        client: IpAddr,
        connection: Connection,
    ) -> Outcome {
        let Some(full) = self.state.full_scrape.clone() else {
            self.failure(ctx, conn, ERR_FULL_SCRAPE, connection);
            return Outcome::Answered(connection);
        };
        let now = ctx.now();
        if !self.full_rate.allow(client, now, full.interval()) {
            self.seat.metrics.count(Metric::ErrorsFullScrapeRate);
            self.failure(ctx, conn, ERR_FULL_SCRAPE_RATE, connection);
            return Outcome::Answered(connection);
        }
        let mut part = Vec::new();
        self.shard.scrape_all(&mut part);
        full.publish(self.seat.id, part);
        let body = full.body(now);
        if !self.emit(ctx, conn, HEAD_RESERVE, |_, out| {
            write_body_head(out, body.len(), connection).unwrap_or(0)
        }) {
            return Outcome::Answered(Connection::Close);
        }
        self.seat.metrics.count(Metric::ResponsesFullScrape);
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return Outcome::Answered(Connection::Close);
        };
        c.waiting = Waiting::Body { body, sent: 0 };
        c.after = connection;
        if self.push_body(ctx, conn) {
            Outcome::Streaming
        } else {
            // All of it fitted at once.
            Outcome::Answered(connection)
        }
    }

    /// Sends what the connection can take of its full-scrape body; returns
    /// whether some is left (then `on_writable` goes on). Once all is
    /// queued the connection continues as its request said.
    fn push_body(&mut self, ctx: &mut Ctx<M>, conn: ConnId) -> bool {
        let (body, mut sent) = match self.seat.front.conn_mut(conn).map(|c| &c.waiting) {
            Some(Waiting::Body { body, sent }) => (Arc::clone(body), *sent),
            _ => return false,
        };
        let start = sent;
        while sent < body.len() {
            let rest = &body[sent..];
            let n = match self.seat.front.session_mut(conn) {
                Some(session) => {
                    let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
                        ctx.send_with(conn, min, |room| fill(room))
                    };
                    session.write(rest, &mut out).unwrap_or(0)
                }
                None => ctx
                    .send_with(conn, 1, |room| {
                        let n = room.len().min(rest.len());
                        room[..n].copy_from_slice(&rest[..n]);
                        n
                    })
                    .unwrap_or(0),
            };
            if n == 0 {
                break;
            }
            sent += n;
        }
        self.seat
            .metrics
            .add(Metric::BytesSent, (sent - start) as u64);
        let done = sent == body.len();
        if let Some(c) = self.seat.front.conn_mut(conn) {
            if let Waiting::Body { sent: s, .. } = &mut c.waiting {
                *s = sent;
            }
            if done {
                c.waiting = Waiting::Nothing;
            }
        }
        if !done {
            // A client that stops reading is cut off like an idle one.
            ctx.set_deadline(conn, Some(self.state.settings.idle_timeout));
        }
        !done
    }

    /// The answer came: finish the connection's request as it asked.
    fn finish(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return;
        };
        c.waiting = Waiting::Nothing;
        if c.after.keeps_alive() {
            let idle = self.state.settings.idle_timeout;
            ctx.set_deadline(conn, Some(idle));
            ctx.resume_recv(conn);
        } else {
            self.close(ctx, conn);
        }
    }

    fn on_reply(&mut self, ctx: &mut Ctx<M>, record: Record<'_>) {
        match record {
            Record::AnnounceAnswer(ret, response) => {
                let ok = self
                    .seat
                    .front
                    .conn_mut(ret.conn)
                    .is_some_and(|c| matches!(c.waiting, Waiting::Announce(s) if s == ret.seq));
                if !ok {
                    self.seat.metrics.count(Metric::ErrorsLateReply);
                    return;
                }
                if self.emit(ctx, ret.conn, response.len().max(1), |_, out| {
                    out[..response.len()].copy_from_slice(response);
                    response.len()
                }) {
                    self.seat.metrics.count(Metric::ResponsesAnnounce);
                }
                self.finish(ctx, ret.conn);
            }
            Record::ScrapeAnswer(ret, counts) => {
                let Some(c) = self.seat.front.conn_mut(ret.conn) else {
                    self.seat.metrics.count(Metric::ErrorsLateReply);
                    return;
                };
                let Waiting::Scrape(seq, pending) = &mut c.waiting else {
                    self.seat.metrics.count(Metric::ErrorsLateReply);
                    return;
                };
                if *seq != ret.seq {
                    self.seat.metrics.count(Metric::ErrorsLateReply);
                    return;
                }
                if !pending.fill(relay::answer_counts(counts)) {
                    return;
                }
                let after = c.after;
                let Waiting::Scrape(_, mut pending) =
                    std::mem::replace(&mut c.waiting, Waiting::Nothing)
                else {
                    return;
                };
                let need = scrape_response_max_len(pending.files.len());
                if self.emit(ctx, ret.conn, need, |_, out| {
                    write_scrape(out, &mut pending.files, after).unwrap_or(0)
                }) {
                    self.seat.metrics.count(Metric::ResponsesScrape);
                }
                self.spare_scrapes.push(pending);
                self.finish(ctx, ret.conn);
            }
            // Requests come on the request lane.
            Record::Announce(..) | Record::ScrapeAsk(..) => {}
        }
    }

    /// Another worker asks this one (the owner).
    fn on_request(&mut self, ctx: &mut Ctx<M>, from: usize, record: Record<'_>) {
        match record {
            Record::Announce(ret, a) => {
                let now = self.seat.shared.secs(ctx.now());
                let need = relay::ANNOUNCE_LEN + Self::announce_need(&a);
                let pushed = ctx.mesh_push_with(from, Lane::Reply, need, |b| {
                    let head = relay::write_answer_head(b, &ret);
                    head + self.run_announce(&a, now, &mut b[head..])
                });
                if pushed.is_err() {
                    self.seat.metrics.count(Metric::ErrorsMeshFull);
                }
            }
            Record::ScrapeAsk(ret, pairs) => {
                let counts = relay::ask_pairs(pairs).map(|(i, h)| (i, self.shard.scrape(&h)));
                let len = relay::scrape_answer_len(counts.len());
                let answer = |b: &mut [u8]| relay::write_scrape_answer(b, &ret, counts);
                self.seat.push(ctx, from, Lane::Reply, len, answer);
            }
            // Answers come on the reply lane.
            Record::AnnounceAnswer(..) | Record::ScrapeAnswer(..) => {}
        }
    }
}

impl<M: Copy + Send + 'static> Protocol for HttpWorker<M> {
    type State = ConnState;

    fn front(&mut self) -> &mut Front<ConnState> {
        &mut self.seat.front
    }

    /// Parses and answers the requests in (plaintext) `data`; returns how
    /// many bytes it used.
    fn serve(&mut self, ctx: &mut Ctx<M>, conn: ConnId, data: &mut [u8]) -> usize {
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return data.len();
        };
        if !matches!(c.waiting, Waiting::Nothing) {
            // Pipelined behind a forwarded request: keep them.
            ctx.pause_recv(conn);
            return 0;
        }
        let (client, peer) = (c.client, c.peer);
        let mut used = 0;
        while used < data.len() {
            let parsed = parse_request(&data[used..], &self.state.parse);
            let req = match parsed {
                Err(ParseError::Incomplete) => {
                    if let Some(c) = self.seat.front.conn_mut(conn) {
                        if !c.in_head {
                            c.in_head = true;
                            ctx.set_deadline(conn, Some(self.state.settings.head_timeout));
                        }
                    }
                    break;
                }
                Err(ParseError::Reject(status)) => {
                    self.seat.metrics.count(Metric::ErrorsMalformed);
                    self.error(ctx, conn, status);
                    self.close(ctx, conn);
                    return data.len();
                }
                Ok(req) => req,
            };
            used += req.head_len;
            let max = self.state.settings.max_requests;
            let Some(c) = self.seat.front.conn_mut(conn) else {
                return data.len();
            };
            c.in_head = false;
            c.served += 1;
            let connection = if max > 0 && c.served >= max {
                Connection::Close
            } else {
                req.connection
            };
            let client = match req.forwarded_for {
                Some(v) if self.seat.shared.trusted.contains(peer) => {
                    client_from_forwarded(peer, v, &self.seat.shared.trusted)
                }
                _ => client,
            };
            match self.handle(ctx, conn, client, req.target, connection) {
                Outcome::Answered(c) if c.keeps_alive() => {
                    ctx.set_deadline(conn, Some(self.state.settings.idle_timeout));
                }
                Outcome::Answered(_) => {
                    self.close(ctx, conn);
                    return data.len();
                }
                Outcome::Forwarded => {
                    // The owner answers within the head timeout or the
                    // client gets "busy".
                    ctx.set_deadline(conn, Some(self.state.settings.head_timeout));
                    ctx.pause_recv(conn);
                    return used;
                }
                Outcome::Streaming => {
                    ctx.pause_recv(conn);
                    return used;
                }
            }
        }
        used
    }
}

impl<M: Copy + Send + 'static> Handler for HttpWorker<M> {
    type Msg = M;

    fn on_start(&mut self, ctx: &mut Ctx<M>) {
        let full_scrape = self.state.full_scrape.as_ref();
        let timers = [
            (self.state.settings.clean_interval, TIMER_CLEAN),
            (Duration::from_secs(1), TIMER_STATS),
        ];
        let full = full_scrape.map(|f| (f.interval(), TIMER_FULL_SCRAPE));
        self.seat
            .front
            .start(ctx, self.seat.id, timers.into_iter().chain(full));
    }

    fn on_accept(&mut self, ctx: &mut Ctx<M>, l: ListenerId, conn: ConnId, peer: SocketAddr) {
        let http = ConnState {
            waiting: Waiting::Nothing,
            after: Connection::KeepAlive,
            served: 0,
            in_head: true,
        };
        if self.seat.front.accept(ctx, l, conn, peer, http) {
            ctx.set_deadline(conn, Some(self.state.settings.head_timeout));
        }
    }

    fn on_recv(&mut self, ctx: &mut Ctx<M>, conn: ConnId, data: &mut [u8]) -> usize {
        Front::recv(self, ctx, conn, data)
    }

    fn on_peer_closed(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        match self.seat.front.conn_mut(conn) {
            // Its answer is still on the way: send it, then close.
            Some(c) if !matches!(c.waiting, Waiting::Nothing) => c.after = Connection::Close,
            _ => self.close(ctx, conn),
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        let streaming = self
            .seat
            .front
            .conn_mut(conn)
            .is_some_and(|c| matches!(c.waiting, Waiting::Body { .. }));
        if streaming && !self.push_body(ctx, conn) {
            self.finish(ctx, conn);
        }
    }

    fn on_deadline(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        let Some(c) = self.seat.front.conn_mut(conn) else {
            ctx.abort(conn);
            return;
        };
        if matches!(c.waiting, Waiting::Body { .. }) {
            // It stopped reading a full scrape.
            ctx.abort(conn);
        } else if !matches!(c.waiting, Waiting::Nothing) {
            // The owner did not answer in time.
            c.waiting = Waiting::Nothing;
            self.failure(ctx, conn, ERR_BUSY, Connection::Close);
            self.close(ctx, conn);
        } else if c.in_head {
            self.seat.metrics.count(Metric::ErrorsHeadTimeout);
            ctx.abort(conn);
        } else {
            self.close(ctx, conn);
        }
    }

    fn on_closed(&mut self, _: &mut Ctx<M>, conn: ConnId) {
        if let Some(ConnState {
            waiting: Waiting::Scrape(_, pending),
            ..
        }) = self.seat.front.closed(conn)
        {
            self.spare_scrapes.push(pending);
        }
    }

    fn on_mesh_record(&mut self, ctx: &mut Ctx<M>, from: usize, lane: Lane, record: &mut [u8]) {
        let reply = lane == Lane::Reply;
        match relay::read(record, reply) {
            Some(r) if reply => self.on_reply(ctx, r),
            Some(r) => self.on_request(ctx, from, r),
            None => self.seat.unreadable_record(from),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<M>, token: u64) {
        if token == TIMER_FULL_SCRAPE {
            if let Some(full) = &self.state.full_scrape {
                let mut part = Vec::new();
                self.shard.scrape_all(&mut part);
                full.publish(self.seat.id, part);
            }
        } else if token == TIMER_CLEAN {
            let now = self.seat.shared.secs(ctx.now());
            self.shard
                .clean(now, self.state.settings.peer_timeout, CLEAN_BUDGET);
        } else {
            let s = self.shard.stats();
            self.seat.metrics.set(Metric::Torrents, s.torrents as u64);
            self.seat.metrics.set(Metric::Seeders4, s.seeders_v4);
            self.seat.metrics.set(Metric::Seeders6, s.seeders_v6);
            self.seat.metrics.set(Metric::Leechers4, s.leechers_v4);
            self.seat.metrics.set(Metric::Leechers6, s.leechers_v6);
            self.seat.metrics.fill_runtime(ctx);
        }
    }

    fn on_signal(&mut self, ctx: &mut Ctx<M>, signal: Signal) {
        if signal == Signal::Terminate {
            // Idle keep-alive connections close now (TLS: close_notify
            // first); one with an answer on its way closes after it.
            let mut idle = Vec::new();
            for c in self.seat.front.conns_mut() {
                if matches!(c.waiting, Waiting::Nothing) {
                    idle.push(c.id);
                } else {
                    c.after = Connection::Close;
                }
            }
            for conn in idle {
                self.close(ctx, conn);
            }
        } else if signal == Signal::Reload {
            self.seat.shared.access_list.reload_and_log();
            self.seat.front.reload_certs();
        }
    }
}
