//! One worker serving UDP, HTTP and WebTorrent: riptide-udp's io_uring
//! driver owns the shard; riptide-http's worker borrows it for each call
//! (the two are swapped in and out, a few hundred bytes moved, not the
//! torrents), so an announce over either protocol stores its peer where
//! the other sees it. riptide-ws's worker keeps its own WebRTC swarms.
//! Each protocol keeps its own sockets, timers and mesh records (told
//! apart by their tag byte, `riptide_common::mesh_tag`); a TCP connection
//! belongs to the protocol whose listener accepted it. Cleaning of the
//! shared shard is riptide-udp's alone.

use riptide_common::mesh_tag;
use riptide_http::server::worker::{HttpWorker, TIMER_CLEAN as HTTP_CLEAN};
use riptide_udp::server::uring::UringDriver;
use riptide_udp::server::{TIMER_CLEAN as UDP_CLEAN, TIMER_STATS as UDP_STATS};
use riptide_udp::tracker::MeshMsg;
use riptide_ws::server::worker::{WsWorker, TIMER_CLEAN as WS_CLEAN, TIMER_STATS as WS_STATS};
use std::net::SocketAddr;
use uring_rt::mesh::bytes::Lane;
use uring_rt::{ConnId, Ctx, Datagram, Handler, ListenerId, Signal};

/// Which protocol a connection slot serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Http,
    Ws,
}

/// A worker of the combined process; any part may be absent.
pub struct Combined {
    /// UDP (owns the shard when present).
    pub udp: Option<UringDriver>,
    /// HTTP(S).
    pub http: Option<HttpWorker<MeshMsg>>,
    /// WebTorrent over ws:// and wss://.
    pub ws: Option<WsWorker<MeshMsg>>,
    /// The protocol of connection slot `i` (set when it is accepted).
    conns: Vec<Stream>,
}

impl Combined {
    /// A worker from its parts.
    pub fn new(
        udp: Option<UringDriver>,
        http: Option<HttpWorker<MeshMsg>>,
        ws: Option<WsWorker<MeshMsg>>,
    ) -> Combined {
        Combined {
            udp,
            http,
            ws,
            conns: Vec::new(),
        }
    }

    /// Runs `f` on the HTTP worker with the UDP tracker's shard in place of
    /// its own (when both are served), then puts them back.
    fn http<R>(&mut self, f: impl FnOnce(&mut HttpWorker<MeshMsg>) -> R) -> Option<R> {
        let http = self.http.as_mut()?;
        let Some(udp) = self.udp.as_mut() else {
            return Some(f(http));
        };
        std::mem::swap(http.shard_mut(), udp.tracker_mut().shard_mut());
        let r = f(http);
        std::mem::swap(http.shard_mut(), udp.tracker_mut().shard_mut());
        Some(r)
    }
}

/// A handler event that carries nothing but the context.
type Event<H> = fn(&mut H, &mut Ctx<MeshMsg>);

impl Combined {
    /// Hands an event to every protocol served: UDP, HTTP (on the shared
    /// shard), WebTorrent, in that order.
    fn on_every(
        &mut self,
        ctx: &mut Ctx<MeshMsg>,
        udp: Event<UringDriver>,
        http: Event<HttpWorker<MeshMsg>>,
        ws: Event<WsWorker<MeshMsg>>,
    ) {
        if let Some(u) = self.udp.as_mut() {
            udp(u, ctx);
        }
        self.http(|h| http(h, ctx));
        if let Some(w) = self.ws.as_mut() {
            ws(w, ctx);
        }
    }
}

/// Calls `$call` (with `$h` bound to the handler) on the protocol that
/// owns `$conn`; `None` for a slot no protocol took.
macro_rules! by_stream {
    ($self:ident, $conn:expr, |$h:ident| $call:expr) => {
        match $self.conns.get($conn.index()).copied() {
            Some(Stream::Http) => $self.http(|$h| $call),
            Some(Stream::Ws) => $self.ws.as_mut().map(|$h| $call),
            None => None,
        }
    };
}

impl Handler for Combined {
    type Msg = MeshMsg;

    fn on_start(&mut self, ctx: &mut Ctx<MeshMsg>) {
        self.on_every(ctx, Handler::on_start, Handler::on_start, Handler::on_start);
    }

    fn on_datagram(&mut self, ctx: &mut Ctx<MeshMsg>, dgram: Datagram<'_>) {
        if let Some(u) = self.udp.as_mut() {
            u.on_datagram(ctx, dgram);
        }
    }

    fn look_ahead<'a>(&mut self, batch: impl Iterator<Item = Datagram<'a>>) {
        if let Some(u) = self.udp.as_mut() {
            u.look_ahead(batch);
        }
    }

    fn on_mesh(&mut self, ctx: &mut Ctx<MeshMsg>, from: usize, msg: MeshMsg) {
        if let Some(u) = self.udp.as_mut() {
            u.on_mesh(ctx, from, msg);
        }
    }

    fn on_mesh_record(
        &mut self,
        ctx: &mut Ctx<MeshMsg>,
        from: usize,
        lane: Lane,
        record: &mut [u8],
    ) {
        match record.first() {
            Some(&mesh_tag::WS) => {
                if let Some(w) = self.ws.as_mut() {
                    w.on_mesh_record(ctx, from, lane, record);
                }
            }
            _ => {
                self.http(|h| h.on_mesh_record(ctx, from, lane, record));
            }
        }
    }

    fn on_mesh_space(&mut self, ctx: &mut Ctx<MeshMsg>, to: usize, lane: Lane) {
        self.http(|h| h.on_mesh_space(ctx, to, lane));
        if let Some(w) = self.ws.as_mut() {
            w.on_mesh_space(ctx, to, lane);
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<MeshMsg>, token: u64) {
        match token {
            UDP_CLEAN | UDP_STATS => {
                if let Some(u) = self.udp.as_mut() {
                    u.on_timer(ctx, token);
                }
            }
            WS_CLEAN | WS_STATS => {
                if let Some(w) = self.ws.as_mut() {
                    w.on_timer(ctx, token);
                }
            }
            // The shared shard is cleaned once, by riptide-udp.
            HTTP_CLEAN if self.udp.is_some() => {}
            _ => {
                self.http(|h| h.on_timer(ctx, token));
            }
        }
    }

    fn on_signal(&mut self, ctx: &mut Ctx<MeshMsg>, signal: Signal) {
        if let Some(u) = self.udp.as_mut() {
            u.on_signal(ctx, signal);
        }
        self.http(|h| h.on_signal(ctx, signal));
        if let Some(w) = self.ws.as_mut() {
            w.on_signal(ctx, signal);
        }
    }

    fn on_accept(&mut self, ctx: &mut Ctx<MeshMsg>, l: ListenerId, conn: ConnId, peer: SocketAddr) {
        let proto = if self.ws.as_ref().is_some_and(|w| w.owns_listener(l)) {
            Stream::Ws
        } else {
            Stream::Http
        };
        let i = conn.index();
        if self.conns.len() <= i {
            self.conns.resize(i + 1, Stream::Http);
        }
        self.conns[i] = proto;
        if by_stream!(self, conn, |h| h.on_accept(ctx, l, conn, peer)).is_none() {
            ctx.abort(conn);
        }
    }

    fn on_recv(&mut self, ctx: &mut Ctx<MeshMsg>, conn: ConnId, data: &mut [u8]) -> usize {
        let len = data.len();
        by_stream!(self, conn, |h| h.on_recv(ctx, conn, data)).unwrap_or(len)
    }

    fn on_inbound_full(&mut self, ctx: &mut Ctx<MeshMsg>, conn: ConnId) {
        if by_stream!(self, conn, |h| h.on_inbound_full(ctx, conn)).is_none() {
            ctx.abort(conn);
        }
    }

    fn on_peer_closed(&mut self, ctx: &mut Ctx<MeshMsg>, conn: ConnId) {
        if by_stream!(self, conn, |h| h.on_peer_closed(ctx, conn)).is_none() {
            ctx.close(conn);
        }
    }

    fn on_writable(&mut self, ctx: &mut Ctx<MeshMsg>, conn: ConnId) {
        by_stream!(self, conn, |h| h.on_writable(ctx, conn));
    }

    fn on_closed(&mut self, ctx: &mut Ctx<MeshMsg>, conn: ConnId) {
        by_stream!(self, conn, |h| h.on_closed(ctx, conn));
    }

    fn on_deadline(&mut self, ctx: &mut Ctx<MeshMsg>, conn: ConnId) {
        if by_stream!(self, conn, |h| h.on_deadline(ctx, conn)).is_none() {
            ctx.abort(conn);
        }
    }

    fn on_stop(&mut self, ctx: &mut Ctx<MeshMsg>) {
        self.on_every(ctx, Handler::on_stop, Handler::on_stop, Handler::on_stop);
    }
}
