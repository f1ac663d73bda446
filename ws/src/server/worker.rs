//! One riptide-ws worker on uring-rt: its connections (state in a `Vec` by
//! slot), its shard of the WebRTC swarms, and the records it exchanges with
//! the other workers.
//!
//! A connection's messages are handled as they come (WebTorrent needs no
//! ordering between them). An announce goes to the torrent's owner (this
//! worker or another, through the byte mesh, in one encoding); the owner
//! updates the swarm and sends each output — the announce reply, every
//! relayed offer, a forwarded answer — straight to the worker holding the
//! target connection, which writes it as one text frame if that connection
//! is still the same one. When a connection closes, with or without a
//! close frame, its peer leaves every torrent it joined, on every shard.

use super::relay::{self, AnnounceRecord, Record};
use super::Settings;
use crate::metrics::Metric;
use crate::protocol::{
    announce_reply_max_len, failure_max_len, relayed_max_len, scrape_reply_max_len, PeerId,
};
use crate::protocol::{
    frame_header_len, parse_message, parse_upgrade, write_accept, write_announce_reply,
    write_close, write_failure, write_frame, write_pong, write_reject, write_relayed,
    write_scrape_reply, Action, Announce, ClientMessage, CloseCode, Event, FrameLimits,
    FrameReader, HandshakeError, HandshakeLimits, Message, MessageLimits, OfferId, Opcode,
    ParseBuffers, Relayed, Role, Scrape, ScrapeCounts, ACCEPT_MAX_LEN, CLOSE_MAX_LEN,
    REJECT_MAX_LEN,
};
use crate::swarm::{AnnounceError, PeerConn, SwarmAnnounce, WsShard};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use riptide_common::access_list::AccessCache;
use riptide_common::{shard_of, InfoHash};
use riptide_stream::{client_from_forwarded, Front, Protocol, ScrapeParts, Seat};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uring_rt::mesh::bytes::Lane;
use uring_rt::{ConnId, Ctx, Handler, ListenerId, SendError, Signal};

/// Timer token: a cleaning pass over the shard.
pub const TIMER_CLEAN: u64 = 201;
/// Timer token: copy statistics into the metrics.
pub const TIMER_STATS: u64 = 202;

/// Where a worker's series live in its values (at 0 alone; after another
/// tracker's in one process).
pub use riptide_stream::MetricsPlace;

impl From<Metric> for usize {
    fn from(m: Metric) -> usize {
        m.index()
    }
}

const ERR_NOT_ALLOWED: &str = "info hash is not allowed on this tracker";
const ERR_BUSY: &str = "tracker busy, retry later";
const ERR_PEER_ID_IN_USE: &str = "peer_id is in use by another connection to this tracker";
const ERR_TOO_MANY_TORRENTS: &str = "too many torrents on one connection";
const ERR_EMPTY_SCRAPE: &str = "scrape needs at least one info_hash";

/// How long a scrape waits for other workers' counts.
const SCRAPE_PATIENCE: Duration = Duration::from_secs(2);
/// Receives in a row that leave a message unfinished before the client is
/// cut off (1008): a frame trickled in tiny pieces (over TLS each costs a
/// move of what came so far) is an attack, not a slow link.
const MAX_UNFINISHED_READS: u16 = 256;

/// Leaves kept per owner while the mesh to it is full (58 bytes each).
const MAX_QUEUED_LEAVES: usize = 1 << 16;

/// Largest frame written straight into the send space (one send chunk,
/// `RuntimeConfig::tcp_send_chunk`); larger ones go through the scratch.
pub const DIRECT_MAX: usize = 16 * 1024;

/// Longest close frame (2-byte header, code and reason).
const CLOSE_FRAME_MAX: usize = 2 + CLOSE_MAX_LEN;

/// Close codes the tracker sends (RFC 6455 7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_UNSUPPORTED: u16 = 1003;

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the whole upgrade request.
    Handshake,
    /// WebSocket messages flow.
    Open,
    /// A close frame was sent: nothing more is read or written.
    Closing,
}

/// A scrape some of whose hashes other workers count.
struct PendingScrape {
    seq: u32,
    /// When it was asked: answered with what is known after
    /// [`SCRAPE_PATIENCE`] (an owner's answer may be lost to a full mesh).
    since: Instant,
    parts: ScrapeParts<ScrapeCounts>,
}

/// What a connection's WebSocket side holds when idle, and no more (its
/// addresses are the front's).
pub struct ConnState {
    phase: Phase,
    reader: FrameReader,
    /// Receives in a row that ended inside a message.
    unfinished: u16,
    /// Torrents joined from this connection, left when it closes.
    joined: Vec<(InfoHash, PeerId)>,
    scrape: Option<Box<PendingScrape>>,
}

/// One worker's WebTorrent tracker; `M` is the runtime's small-mesh message
/// (unused here: `()` when it runs alone).
pub struct WsWorker<M = ()> {
    _msg: std::marker::PhantomData<fn() -> M>,
    /// Its place, front (listeners and connections) and metrics.
    seat: Seat<ConnState>,
    settings: Arc<Settings>,
    shard: WsShard,
    rng: SmallRng,
    access: AccessCache,
    limits: MessageLimits,
    /// JSON parse buffers (taken while a message borrows them).
    bufs: Option<ParseBuffers>,
    /// Where a TLS connection's frames are written before encryption.
    scratch: Vec<u8>,
    /// Where this worker's own announces are encoded as records.
    record: Vec<u8>,
    /// Scratch: offer ids of an announce, and their targets.
    offer_ids: Vec<OfferId>,
    targets: Vec<PeerConn>,
    /// Scratch for a scrape: hashes per owner worker.
    remote: Vec<Vec<(u8, InfoHash)>>,
    /// Leaves the mesh refused, per owner, sent on `on_mesh_space`.
    leaves: Vec<std::collections::VecDeque<(PeerConn, InfoHash, PeerId)>>,
}

impl<M: Copy + Send + 'static> WsWorker<M> {
    /// The worker in `seat`, with riptide-ws's `settings` (its listeners
    /// are added to the ring at start).
    pub fn new(seat: Seat<ConnState>, settings: Arc<Settings>) -> WsWorker<M> {
        let s = &settings;
        let limits = MessageLimits {
            max_offers: s.max_offers,
            max_sdp_len: s.max_sdp_len,
            max_scrape_hashes: s.max_scrape_hashes,
            max_depth: 8,
        };
        WsWorker {
            _msg: std::marker::PhantomData,
            access: seat.shared.access_list.cache(),
            remote: (0..seat.workers).map(|_| Vec::new()).collect(),
            leaves: (0..seat.workers)
                .map(|_| std::collections::VecDeque::new())
                .collect(),
            seat,
            shard: WsShard::new(),
            rng: SmallRng::from_os_rng(),
            bufs: Some(ParseBuffers::new(s.max_message_len)),
            limits,
            scratch: Vec::new(),
            record: Vec::new(),
            offer_ids: Vec::with_capacity(s.max_offers),
            targets: Vec::with_capacity(s.max_offers),
            settings,
        }
    }

    /// Whether `l` is one of this worker's listeners (after `on_start`).
    pub fn owns_listener(&self, l: ListenerId) -> bool {
        self.seat.front.owns_listener(l)
    }

    fn is_open(&mut self, conn: ConnId) -> bool {
        self.seat
            .front
            .conn_mut(conn)
            .is_some_and(|c| c.phase == Phase::Open)
    }

    fn me(&self, conn: ConnId) -> PeerConn {
        PeerConn {
            worker: self.seat.id as u16,
            conn,
        }
    }

    /// Queue bytes that `write` writes into at most `need` bytes: straight
    /// into the send space on plain connections, through the scratch buffer
    /// and TLS encryption on TLS ones. A connection that cannot take them
    /// (its queue is at `max_outbound_bytes`: a slow reader) is closed.
    fn emit(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        need: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        let tls = self.seat.front.session_mut(conn).is_some();
        let sent: Result<usize, SendError> = if tls || need > DIRECT_MAX {
            let mut scratch = std::mem::take(&mut self.scratch);
            if scratch.len() < need {
                scratch.resize(need, 0);
            }
            let n = write(&mut scratch[..need]);
            let r = self.seat.front.send(ctx, conn, &scratch[..n]);
            self.scratch = scratch;
            r
        } else {
            ctx.send_with(conn, need, write)
        };
        match sent {
            Ok(n) => {
                self.seat.metrics.add(Metric::BytesSent, n as u64);
                true
            }
            Err(SendError::QueueFull) => {
                // A frame cut short cannot be finished: the client is
                // closed, not buffered for without end.
                self.seat.metrics.count(Metric::ClosesSlowReader);
                self.shut(ctx, conn);
                ctx.abort(conn);
                false
            }
            Err(_) => false,
        }
    }

    /// One text frame whose JSON `write` writes into at most `max` bytes.
    fn send_text(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        max: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        self.emit(ctx, conn, frame_header_len(max) + max, |out| {
            write_frame(out, Opcode::Text, max, write)
        })
    }

    /// Sends a close frame and closes gracefully (TLS: close_notify too).
    fn close_with(&mut self, ctx: &mut Ctx<M>, conn: ConnId, code: u16, reason: &str) {
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return;
        };
        let open = c.phase == Phase::Open;
        c.phase = Phase::Closing;
        if open {
            self.emit(ctx, conn, CLOSE_FRAME_MAX, |out| {
                write_close(out, code, reason)
            });
        }
        self.close(ctx, conn);
    }

    /// The connection is closing: nothing more is read or relayed to it,
    /// and its peer leaves its torrents now, not when the close completes
    /// (that may wait for the client's FIN up to the linger time).
    fn shut(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        if let Some(c) = self.seat.front.conn_mut(conn) {
            c.phase = Phase::Closing;
            let joined = std::mem::take(&mut c.joined);
            self.leave_all(ctx, conn, &joined);
        }
    }

    /// Close gracefully, with a TLS close_notify first on TLS connections.
    fn close(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        self.shut(ctx, conn);
        self.seat.front.close_notify(ctx, conn);
        ctx.close(conn);
    }

    fn failure(
        &mut self,
        ctx: &mut Ctx<M>,
        to: PeerConn,
        action: Option<Action>,
        info_hash: Option<&InfoHash>,
        reason: &str,
    ) {
        self.seat.metrics.count(Metric::ResponsesFailure);
        let max = failure_max_len(reason.len());
        self.deliver(ctx, to, max, |out| {
            write_failure(out, action, info_hash, reason)
        });
    }

    /// Sends one JSON message to a peer's connection: written as a text
    /// frame here if this worker holds it, else as a deliver record to the
    /// worker that does. Returns whether it went out (or into the mesh).
    fn deliver(
        &mut self,
        ctx: &mut Ctx<M>,
        to: PeerConn,
        max: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) -> bool {
        if usize::from(to.worker) == self.seat.id {
            if !self.is_open(to.conn) {
                self.seat.metrics.count(Metric::StaleTargets);
                return false;
            }
            return self.send_text(ctx, to.conn, max, write);
        }
        let pushed = ctx.mesh_push_with(
            usize::from(to.worker),
            Lane::Reply,
            relay::DELIVER_HEAD + max,
            |b| {
                let head = relay::write_deliver_head(b, to);
                head + write(&mut b[head..])
            },
        );
        if pushed.is_err() {
            self.seat.metrics.count(Metric::ErrorsMeshFull);
        }
        pushed.is_ok()
    }

    /// A text message arrived on `conn`.
    fn on_text(&mut self, ctx: &mut Ctx<M>, conn: ConnId, text: &mut [u8]) {
        let mut bufs = self.bufs.take().expect("parse buffers are put back");
        match parse_message(text, &self.limits, &mut bufs) {
            Ok(ClientMessage::Announce(a)) => self.on_announce(ctx, conn, &a),
            Ok(ClientMessage::Scrape(s)) => self.on_scrape(ctx, conn, &s),
            Err(e) => {
                self.seat.metrics.count(Metric::ErrorsMessage);
                let me = self.me(conn);
                // Without a known `action` the bittorrent-tracker client
                // drops its socket (every torrent's): call it an announce.
                let action = e.action.or(Some(Action::Announce));
                self.failure(ctx, me, action, e.info_hash.as_ref(), e.reason);
            }
        }
        self.bufs = Some(bufs);
    }

    fn on_announce(&mut self, ctx: &mut Ctx<M>, conn: ConnId, a: &Announce<'_>) {
        let me = self.me(conn);
        let max_torrents = self.settings.max_torrents;
        let Some(client) = self.seat.front.conn_mut(conn).map(|c| c.client) else {
            return;
        };
        let family = [Metric::RequestsAnnounce4, Metric::RequestsAnnounce6];
        self.seat.metrics.count_by_family(client, family);
        let ih = a.info_hash;
        if !self.access.allows(&ih) {
            self.seat.metrics.count(Metric::ErrorsAccessDenied);
            self.failure(ctx, me, Some(Action::Announce), Some(&ih), ERR_NOT_ALLOWED);
            return;
        }
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return;
        };
        let key = (ih, a.peer_id);
        if a.event == Event::Stopped {
            // Forgotten once the owner has the stop (below).
        } else if !c.joined.contains(&key) {
            if c.joined.len() >= max_torrents {
                self.seat.metrics.count(Metric::ErrorsTooManyTorrents);
                self.failure(
                    ctx,
                    me,
                    Some(Action::Announce),
                    Some(&ih),
                    ERR_TOO_MANY_TORRENTS,
                );
                return;
            }
            c.joined.push(key);
        }
        let len = relay::announce_len(a);
        let owner = shard_of(&ih, self.seat.workers);
        if owner == self.seat.id {
            self.seat.metrics.count(Metric::AnnouncesLocal);
            let mut record = std::mem::take(&mut self.record);
            if record.len() < len {
                record.resize(len, 0);
            }
            let n = relay::write_announce(&mut record, me, a);
            if let Some(Record::Announce(r)) = relay::read(&record[..n]) {
                self.run_announce(ctx, &r);
            }
            self.record = record;
            if a.event == Event::Stopped {
                self.forget(conn, key);
            }
            return;
        }
        let pushed = ctx.mesh_push_with(owner, Lane::Request, len, |b| {
            relay::write_announce(b, me, a)
        });
        if pushed.is_ok() {
            self.seat.metrics.count(Metric::AnnouncesForwarded);
            if a.event == Event::Stopped {
                self.forget(conn, key);
            }
        } else {
            self.seat.metrics.count(Metric::ErrorsMeshFull);
            self.failure(ctx, me, Some(Action::Announce), Some(&ih), ERR_BUSY);
        }
    }

    /// The owner's part of an announce: the swarm changes, then every
    /// output goes to its connection.
    fn run_announce(&mut self, ctx: &mut Ctx<M>, r: &AnnounceRecord<'_>) {
        let now = self.seat.shared.secs(ctx.now());
        let ih = r.info_hash;
        if let Some((to, offer_id, sdp)) = &r.answer {
            match self
                .shard
                .answer(&ih, &r.peer_id, r.conn, to, offer_id, now)
            {
                Ok(target) => {
                    let max = relayed_max_len(sdp.sdp.len());
                    if self.deliver(ctx, target, max, |out| {
                        write_relayed(out, Relayed::Answer, &ih, &r.peer_id, offer_id, sdp)
                    }) {
                        self.seat.metrics.count(Metric::AnswersRelayed);
                    }
                }
                Err(_) => self.seat.metrics.count(Metric::AnswersUnmatched),
            }
            // An answer gets no reply of its own.
            return;
        }
        let mut offer_ids = std::mem::take(&mut self.offer_ids);
        let mut targets = std::mem::take(&mut self.targets);
        offer_ids.clear();
        offer_ids.extend(r.offers().map(|(id, _)| id));
        let a = SwarmAnnounce {
            info_hash: ih,
            peer_id: r.peer_id,
            conn: r.conn,
            event: r.event,
            seeder: r.seeder,
            offers: &offer_ids,
        };
        let (timeout, interval) = (self.settings.offer_timeout, self.settings.interval);
        match self
            .shard
            .announce(&a, now, timeout, interval, &mut self.rng, &mut targets)
        {
            Err(AnnounceError::PeerIdInUse) => {
                self.seat.metrics.count(Metric::ErrorsPeerIdInUse);
                self.failure(
                    ctx,
                    r.conn,
                    Some(Action::Announce),
                    Some(&ih),
                    ERR_PEER_ID_IN_USE,
                );
            }
            Ok(_) if r.event == crate::swarm::SwarmEvent::Stopped => {}
            Ok(counts) => {
                let interval = self.settings.interval;
                if self.deliver(ctx, r.conn, announce_reply_max_len(), |out| {
                    write_announce_reply(out, &ih, interval, counts.complete, counts.incomplete)
                }) {
                    self.seat.metrics.count(Metric::ResponsesAnnounce);
                }
                for ((offer_id, sdp), target) in r.offers().zip(targets.iter().copied()) {
                    let max = relayed_max_len(sdp.sdp.len());
                    if self.deliver(ctx, target, max, |out| {
                        write_relayed(out, Relayed::Offer, &ih, &r.peer_id, &offer_id, &sdp)
                    }) {
                        self.seat.metrics.count(Metric::OffersRelayed);
                    }
                }
            }
        }
        self.offer_ids = offer_ids;
        self.targets = targets;
    }

    fn on_scrape(&mut self, ctx: &mut Ctx<M>, conn: ConnId, s: &Scrape) {
        let me = self.me(conn);
        let Some(client) = self.seat.front.conn_mut(conn).map(|c| c.client) else {
            return;
        };
        let family = [Metric::RequestsScrape4, Metric::RequestsScrape6];
        self.seat.metrics.count_by_family(client, family);
        if s.info_hashes().is_empty() {
            self.failure(ctx, me, Some(Action::Scrape), None, ERR_EMPTY_SCRAPE);
            return;
        }
        let mut pending = Box::new(PendingScrape {
            seq: 0,
            since: ctx.now(),
            parts: ScrapeParts::default(),
        });
        for r in &mut self.remote {
            r.clear();
        }
        let mut local = 0;
        for (i, h) in s.info_hashes().iter().enumerate() {
            let mut counts = ScrapeCounts::default();
            if self.access.allows(h) {
                let owner = shard_of(h, self.seat.workers);
                if owner == self.seat.id {
                    counts = self.shard.scrape(h);
                    local += 1;
                } else {
                    self.remote[owner].push((i as u8, *h));
                }
            }
            pending.parts.files.push((*h, counts));
        }
        self.seat.metrics.add(Metric::ScrapesLocal, local);
        let owners = self.remote.iter().filter(|r| !r.is_empty()).count();
        if owners == 0 {
            self.send_scrape(ctx, conn, &pending.parts.files);
            return;
        }
        let worker = self.seat.id;
        let Some(ret) = self
            .seat
            .front
            .conn_mut(conn)
            .map(|c| c.next_return(worker))
        else {
            return;
        };
        pending.seq = ret.seq;
        pending.parts.missing = owners;
        for owner in 0..self.seat.workers {
            let hashes = &self.remote[owner];
            if hashes.is_empty() {
                continue;
            }
            let n = hashes.len();
            let pushed = ctx.mesh_push_with(owner, Lane::Request, relay::scrape_ask_len(n), |b| {
                relay::write_scrape_ask(b, &ret, hashes)
            });
            if pushed.is_err() {
                self.seat.metrics.count(Metric::ErrorsMeshFull);
                self.failure(ctx, me, Some(Action::Scrape), None, ERR_BUSY);
                return;
            }
            self.seat.metrics.add(Metric::ScrapesForwarded, n as u64);
        }
        // A newer scrape replaces an unfinished one (its answers then
        // carry an old sequence number and are dropped).
        if let Some(c) = self.seat.front.conn_mut(conn) {
            c.scrape = Some(pending);
        }
    }

    fn send_scrape(&mut self, ctx: &mut Ctx<M>, conn: ConnId, files: &[(InfoHash, ScrapeCounts)]) {
        let max = scrape_reply_max_len(files.len());
        if self.send_text(ctx, conn, max, |out| write_scrape_reply(out, files)) {
            self.seat.metrics.count(Metric::ResponsesScrape);
        }
    }

    /// What one WebSocket message on `conn` asks for.
    fn on_message(&mut self, ctx: &mut Ctx<M>, conn: ConnId, msg: Message<'_>) -> bool {
        match msg {
            Message::Text(text) => {
                self.on_text(ctx, conn, text);
                self.is_open(conn)
            }
            Message::Ping(payload) => {
                self.emit(ctx, conn, 2 + payload.len(), |out| write_pong(out, payload));
                self.is_open(conn)
            }
            Message::Pong(_) => true,
            Message::Binary(_) => {
                self.seat.metrics.count(Metric::ErrorsMessage);
                self.close_with(ctx, conn, CLOSE_UNSUPPORTED, "binary messages are not used");
                false
            }
            Message::Close { code, .. } => {
                self.seat.metrics.count(Metric::ClosesByClient);
                let Some(c) = self.seat.front.conn_mut(conn) else {
                    return false;
                };
                if c.phase == Phase::Open {
                    c.phase = Phase::Closing;
                    // Echo the client's code (RFC 6455 5.5.1), 1000 if it gave none.
                    let code = code.unwrap_or(CLOSE_NORMAL);
                    self.emit(ctx, conn, CLOSE_FRAME_MAX, |out| write_close(out, code, ""));
                }
                self.close(ctx, conn);
                false
            }
        }
    }

    fn on_reply(&mut self, ctx: &mut Ctx<M>, record: &Record<'_>) {
        match *record {
            Record::Deliver(to, text) => {
                if !self.is_open(to.conn) {
                    self.seat.metrics.count(Metric::StaleTargets);
                    return;
                }
                self.send_text(ctx, to.conn, text.len(), |out| {
                    out[..text.len()].copy_from_slice(text);
                    text.len()
                });
            }
            Record::ScrapeAnswer(ret, counts) => {
                let Some(c) = self
                    .seat
                    .front
                    .conn_mut(ret.conn)
                    .filter(|c| c.phase == Phase::Open)
                else {
                    return;
                };
                let Some(pending) = c.scrape.as_mut().filter(|p| p.seq == ret.seq) else {
                    return;
                };
                if !pending.parts.fill(relay::answer_counts(counts)) {
                    return;
                }
                if let Some(done) = c.scrape.take() {
                    self.send_scrape(ctx, ret.conn, &done.parts.files);
                }
            }
            // Requests come on the request lane.
            Record::Announce(_) | Record::Leave(..) | Record::ScrapeAsk(..) => {}
        }
    }

    /// Another worker asks this one (the owner).
    fn on_request(&mut self, ctx: &mut Ctx<M>, from: usize, record: Record<'_>) {
        match record {
            Record::Announce(r) => self.run_announce(ctx, &r),
            Record::Leave(conn, ih, peer_id) => {
                self.shard.leave(&ih, &peer_id, conn);
            }
            Record::ScrapeAsk(ret, pairs) => {
                let counts = relay::ask_pairs(pairs).map(|(i, h)| (i, self.shard.scrape(&h)));
                let len = relay::scrape_answer_len(counts.len());
                let answer = |b: &mut [u8]| relay::write_scrape_answer(b, &ret, counts);
                self.seat.push(ctx, from, Lane::Reply, len, answer);
            }
            // Replies come on the reply lane.
            Record::Deliver(..) | Record::ScrapeAnswer(..) => {}
        }
    }

    /// `conn` is gone or going: its peer leaves every torrent it joined.
    fn leave_all(&mut self, ctx: &mut Ctx<M>, conn: ConnId, joined: &[(InfoHash, PeerId)]) {
        let me = self.me(conn);
        for &(ih, peer_id) in joined {
            let owner = shard_of(&ih, self.seat.workers);
            if owner == self.seat.id {
                self.shard.leave(&ih, &peer_id, me);
            } else {
                self.push_leave(ctx, owner, (me, ih, peer_id));
            }
        }
    }

    /// Tells `owner` a peer left; a leave the full mesh refused waits (in
    /// order) for `on_mesh_space`, so a closed tab never stays in a swarm,
    /// holding its `peer_id`, until the cleaner comes.
    fn push_leave(&mut self, ctx: &mut Ctx<M>, owner: usize, leave: (PeerConn, InfoHash, PeerId)) {
        let (me, ih, peer_id) = leave;
        let queued = &mut self.leaves[owner];
        if queued.is_empty()
            && ctx
                .mesh_push_with(owner, Lane::Request, relay::LEAVE_LEN, |b| {
                    relay::write_leave(b, me, &ih, &peer_id)
                })
                .is_ok()
        {
            return;
        }
        self.seat.metrics.count(Metric::ErrorsMeshFull);
        let queued = &mut self.leaves[owner];
        if queued.len() < MAX_QUEUED_LEAVES {
            queued.push_back(leave);
        } else {
            // The owner's cleaner removes it after `peer_timeout`.
            log::warn!(
                "worker {}: leave queue to worker {owner} full",
                self.seat.id
            );
        }
    }

    /// Scrapes whose counts did not all come back in time are answered
    /// with what is known (zeros for the rest).
    fn answer_late_scrapes(&mut self, ctx: &mut Ctx<M>) {
        let now = ctx.now();
        for i in 0..self.seat.front.slots() {
            let Some(c) = self.seat.front.conn_in(i) else {
                continue;
            };
            if c.scrape
                .as_ref()
                .is_none_or(|p| now.saturating_duration_since(p.since) <= SCRAPE_PATIENCE)
            {
                continue;
            }
            let (conn, done) = (c.id, c.scrape.take());
            if let Some(done) = done {
                self.send_scrape(ctx, conn, &done.parts.files);
            }
        }
    }

    /// Forget `key` in `conn`'s joined torrents.
    fn forget(&mut self, conn: ConnId, key: (InfoHash, PeerId)) {
        if let Some(c) = self.seat.front.conn_mut(conn) {
            c.joined.retain(|j| *j != key);
        }
    }
}

impl<M: Copy + Send + 'static> Protocol for WsWorker<M> {
    type State = ConnState;

    fn front(&mut self) -> &mut Front<ConnState> {
        &mut self.seat.front
    }

    /// Closed by the front: nothing more for it.
    fn refused(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        self.shut(ctx, conn);
    }

    /// Reads the upgrade request, then WebSocket frames, from (plaintext)
    /// `data`; returns how many bytes it used.
    fn serve(&mut self, ctx: &mut Ctx<M>, conn: ConnId, data: &mut [u8]) -> usize {
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return data.len();
        };
        let mut used = 0;
        match c.phase {
            Phase::Closing => return data.len(),
            Phase::Open => {}
            Phase::Handshake => {
                let (peer, client) = (c.peer, c.client);
                let limits = HandshakeLimits {
                    max_head_len: self.settings.max_head_len,
                    forwarded_header: self.seat.shared.forwarded_header,
                };
                match parse_upgrade(data, &limits) {
                    Err(HandshakeError::Incomplete) => return 0,
                    Err(HandshakeError::Reject(r)) => {
                        self.seat.metrics.count(Metric::ErrorsHandshake);
                        self.emit(ctx, conn, REJECT_MAX_LEN, |out| write_reject(out, &r));
                        if let Some(c) = self.seat.front.conn_mut(conn) {
                            c.phase = Phase::Closing;
                        }
                        self.close(ctx, conn);
                        return data.len();
                    }
                    Ok(up) => {
                        let client = match up.forwarded_for {
                            Some(v) if self.seat.shared.trusted.contains(peer) => {
                                client_from_forwarded(peer, v, &self.seat.shared.trusted)
                            }
                            _ => client,
                        };
                        let accept = up.accept;
                        used = up.head_len;
                        if !self.emit(ctx, conn, ACCEPT_MAX_LEN, |out| write_accept(out, &accept)) {
                            return data.len();
                        }
                        self.seat.metrics.count(Metric::Handshakes);
                        let Some(c) = self.seat.front.conn_mut(conn) else {
                            return data.len();
                        };
                        c.client = client;
                        c.phase = Phase::Open;
                    }
                }
            }
        }
        ctx.set_deadline(conn, Some(self.settings.idle_timeout));
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return data.len();
        };
        let mut reader = std::mem::take(&mut c.reader);
        let limits = FrameLimits {
            role: Role::Server,
            max_message_len: self.settings.max_message_len,
        };
        let read = reader.read(&mut data[used..], &limits, |msg| {
            if self.on_message(ctx, conn, msg) {
                crate::protocol::Flow::Continue
            } else {
                crate::protocol::Flow::Stop
            }
        });
        let Some(c) = self.seat.front.conn_mut(conn) else {
            return data.len();
        };
        c.reader = reader;
        match read {
            Ok(n) if c.phase == Phase::Open => {
                if used + n == data.len() {
                    c.unfinished = 0;
                } else {
                    c.unfinished += 1;
                    if c.unfinished > MAX_UNFINISHED_READS {
                        self.seat.metrics.count(Metric::ErrorsFrame);
                        self.close_with(ctx, conn, 1008, "message sent in too many pieces");
                        return data.len();
                    }
                }
                used + n
            }
            Ok(_) => data.len(),
            Err(code) => {
                self.seat.metrics.count(Metric::ErrorsFrame);
                let CloseCode(code) = code;
                self.close_with(ctx, conn, code, "");
                data.len()
            }
        }
    }
}

impl<M: Copy + Send + 'static> Handler for WsWorker<M> {
    type Msg = M;

    fn on_start(&mut self, ctx: &mut Ctx<M>) {
        let timers = [
            (self.settings.clean_interval, TIMER_CLEAN),
            (Duration::from_secs(1), TIMER_STATS),
        ];
        self.seat.front.start(ctx, self.seat.id, timers);
    }

    fn on_accept(&mut self, ctx: &mut Ctx<M>, l: ListenerId, conn: ConnId, peer: SocketAddr) {
        let ws = ConnState {
            phase: Phase::Handshake,
            reader: FrameReader::default(),
            unfinished: 0,
            joined: Vec::new(),
            scrape: None,
        };
        if self.seat.front.accept(ctx, l, conn, peer, ws) {
            ctx.set_deadline(conn, Some(self.settings.handshake_timeout));
        }
    }

    fn on_recv(&mut self, ctx: &mut Ctx<M>, conn: ConnId, data: &mut [u8]) -> usize {
        Front::recv(self, ctx, conn, data)
    }

    fn on_inbound_full(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        // Only a fragmented message can pile up (frames are bounded).
        self.seat.metrics.count(Metric::ErrorsFrame);
        self.close_with(ctx, conn, 1009, "message too big");
    }

    fn on_peer_closed(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        if let Some(c) = self.seat.front.conn_mut(conn) {
            c.phase = Phase::Closing;
        }
        self.close(ctx, conn);
    }

    fn on_deadline(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        let Some(c) = self.seat.front.conn_mut(conn) else {
            ctx.abort(conn);
            return;
        };
        match c.phase {
            Phase::Handshake => {
                self.seat.metrics.count(Metric::ErrorsHandshakeTimeout);
                ctx.abort(conn);
            }
            Phase::Open => {
                self.seat.metrics.count(Metric::ClosesIdle);
                self.close_with(ctx, conn, CLOSE_NORMAL, "idle");
            }
            Phase::Closing => ctx.abort(conn),
        }
    }

    fn on_closed(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        if let Some(c) = self.seat.front.closed(conn) {
            self.leave_all(ctx, conn, &c.joined);
        }
    }

    fn on_mesh_space(&mut self, ctx: &mut Ctx<M>, to: usize, lane: Lane) {
        if lane != Lane::Request {
            return;
        }
        while let Some(&(me, ih, peer_id)) = self.leaves[to].front() {
            let pushed = ctx.mesh_push_with(to, Lane::Request, relay::LEAVE_LEN, |b| {
                relay::write_leave(b, me, &ih, &peer_id)
            });
            if pushed.is_err() {
                break;
            }
            self.leaves[to].pop_front();
        }
    }

    fn on_mesh_record(&mut self, ctx: &mut Ctx<M>, from: usize, lane: Lane, record: &mut [u8]) {
        match relay::read(record) {
            Some(r) if lane == Lane::Reply => self.on_reply(ctx, &r),
            Some(r) => self.on_request(ctx, from, r),
            None => self.seat.unreadable_record(from),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<M>, token: u64) {
        if token == TIMER_CLEAN {
            let now = self.seat.shared.secs(ctx.now());
            self.shard.clean(now, self.settings.peer_timeout);
        } else if token == TIMER_STATS {
            self.answer_late_scrapes(ctx);
            let s = self.shard.stats();
            self.seat.metrics.set(Metric::Torrents, s.torrents as u64);
            self.seat.metrics.set(Metric::Seeders, s.seeders);
            self.seat.metrics.set(Metric::Leechers, s.leechers);
            self.seat
                .metrics
                .set(Metric::PendingOffers, self.shard.pending_offers() as u64);
            self.seat.metrics.fill_runtime(ctx);
        }
    }

    fn on_signal(&mut self, ctx: &mut Ctx<M>, signal: Signal) {
        match signal {
            Signal::Reload => {
                self.seat.shared.access_list.reload_and_log();
                self.seat.front.reload_certs();
            }
            Signal::Terminate => {
                // Every open connection gets close 1001 ("going away").
                let open: Vec<ConnId> = self
                    .seat
                    .front
                    .conns_mut()
                    .filter(|c| c.phase == Phase::Open)
                    .map(|c| c.id)
                    .collect();
                for conn in open {
                    self.close_with(ctx, conn, CLOSE_GOING_AWAY, "tracker shutting down");
                }
            }
        }
    }
}
