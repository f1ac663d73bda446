//! The completion-driven interface protocol code implements: one `Handler`
//! per worker, called from that worker's loop with a `Ctx` to act through.

use crate::ctx::Ctx;
use std::net::{IpAddr, SocketAddr};

/// Everything a worker's protocol code reacts to. Completion-driven: no
/// futures, no per-request allocation. Every method runs on the worker's
/// own thread; what it queues through `ctx` is submitted at the end of the
/// loop turn.
pub trait Handler: Send + 'static {
    /// Mesh message type (small, `Copy`).
    type Msg: Copy + Send + 'static;

    /// Called once before the loop starts: register sockets and timers here.
    fn on_start(&mut self, ctx: &mut Ctx<Self::Msg>) {
        let _ = ctx;
    }

    /// A datagram arrived on one of this worker's UDP sockets.
    fn on_datagram(&mut self, ctx: &mut Ctx<Self::Msg>, dgram: Datagram<'_>);

    /// Called once per loop turn that received two or more datagrams,
    /// before the first `on_datagram` of the turn, with those datagrams in
    /// the order they will be handed over. For looking ahead only, e.g. to
    /// touch the memory their requests will need so that the cache misses
    /// of a batch overlap instead of following one another; nothing here
    /// may assume a datagram is valid. The iterator is lazy: a handler
    /// that does not use it costs nothing.
    fn look_ahead<'a>(&mut self, batch: impl Iterator<Item = Datagram<'a>>) {
        let _ = batch;
    }

    /// A message from worker `from` arrived through the mesh.
    fn on_mesh(&mut self, ctx: &mut Ctx<Self::Msg>, from: usize, msg: Self::Msg) {
        let _ = (ctx, from, msg);
    }

    /// A timer registered with `Ctx::add_timer` fired.
    fn on_timer(&mut self, ctx: &mut Ctx<Self::Msg>, token: u64) {
        let _ = (ctx, token);
    }

    /// `Reload` (SIGUSR1) reaches worker 0's handler only. `Terminate`
    /// (SIGTERM/SIGINT) reaches every worker's handler, then the runtime stops
    /// gracefully.
    fn on_signal(&mut self, ctx: &mut Ctx<Self::Msg>, signal: Signal) {
        let _ = (ctx, signal);
    }

    /// A TCP connection was accepted on one of this worker's listeners.
    fn on_accept(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId, peer: SocketAddr) {
        let _ = (ctx, conn, peer);
    }

    /// Bytes arrived on a connection; `data` is valid for this call only.
    fn on_recv(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId, data: &[u8]) {
        let _ = (ctx, conn, data);
    }

    /// A connection is gone (closed by us, by the peer, or by an error); its
    /// `ConnId` is dead from now on.
    fn on_closed(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId) {
        let _ = (ctx, conn);
    }

    /// The deadline set with `Ctx::set_deadline` passed on an open
    /// connection. The default aborts it (e.g. an idle or slow client); a
    /// protocol may send a last response and `close` instead.
    fn on_deadline(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId) {
        ctx.abort(conn);
    }

    /// The loop is stopping; queued sends are still flushed after this.
    fn on_stop(&mut self, ctx: &mut Ctx<Self::Msg>) {
        let _ = ctx;
    }
}

/// A signal the runtime turns into a handler call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGUSR1: reload configuration/access lists (worker 0 only).
    Reload,
    /// SIGTERM or SIGINT: every worker stops gracefully.
    Terminate,
}

/// A UDP socket registered with `Ctx::add_udp` on this worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketId(pub(crate) u32);

/// A TCP connection of this worker: slot index + generation, so a stale id
/// never reaches a newer connection in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// One received datagram, borrowed straight from the provided buffer; the
/// buffer returns to the kernel right after `on_datagram` returns.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// The socket it arrived on.
    pub socket: SocketId,
    /// Source address. A v4-mapped source on a v6 socket is not rewritten
    /// (sockets are expected to be `IPV6_V6ONLY`).
    pub src: SocketAddr,
    /// Destination address from IP_PKTINFO / IPV6_PKTINFO, when enabled.
    pub dst: Option<IpAddr>,
    /// The payload.
    pub payload: &'a [u8],
}

/// Why a send was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No free send slot and the bounded queue (or the connection's out
    /// buffer) is full; counted in `send_queue_overflow`.
    #[error("send queue full")]
    QueueFull,
    /// The socket or connection id is unknown, closed or closing.
    #[error("unknown or closed socket/connection")]
    Closed,
    /// The bytes can never fit (longer than a send slot / the connection buffer).
    #[error("message larger than a send buffer")]
    TooLarge,
}
