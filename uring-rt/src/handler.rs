//! The completion-driven interface protocol code implements: one `Handler`
//! per worker, called from that worker's loop with a `Ctx` to act through.

use crate::ctx::Ctx;
use crate::mesh::bytes::Lane;
use crate::tcp::accept::ListenerId;
use std::net::{IpAddr, SocketAddr};

/// Most completions one [`Handler::look_ahead`] call covers: a turn's
/// completions are looked ahead in windows of this many, each just before
/// its own are handled, so a saturated turn of hundreds has all of its
/// datagrams looked at, each window's cache misses overlapping.
pub const LOOK_AHEAD: usize = 32;

/// Ask the CPU to start loading the cache line of `r` into its caches, for
/// look-ahead code: unlike a read, a prefetch retires at once, so a batch
/// of them keeps many misses in flight. A hint only: nothing the program
/// computes changes; a no-op off x86-64.
#[inline]
pub fn prefetch<T>(r: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: PREFETCHT0 never faults, even on an unmapped address, and
    // writes no memory or register the program can see; the cfg says SSE,
    // which it needs, is enabled. `r` is a live reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::from_ref(r).cast(),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = r;
}

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
    fn on_datagram(&mut self, ctx: &mut Ctx<Self::Msg>, dgram: Datagram<'_>) {
        let _ = (ctx, dgram);
    }

    /// Called before each window of a turn's completions (at most
    /// [`LOOK_AHEAD`] of them) that holds two or more datagrams, before the
    /// window's first `on_datagram`, with those datagrams in the order
    /// they will be handed over. For looking ahead only, e.g. to
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

    /// A byte-mesh record from worker `from` arrived (`Ctx::mesh_push`), in
    /// place in the ring and valid for this call only.
    fn on_mesh_record(
        &mut self,
        ctx: &mut Ctx<Self::Msg>,
        from: usize,
        lane: Lane,
        record: &mut [u8],
    ) {
        let _ = (ctx, from, lane, record);
    }

    /// A byte-mesh push to worker `to` on `lane` was refused (`Full`) and
    /// `to` has since freed room for a record as long as that one: retry
    /// what was kept back.
    fn on_mesh_space(&mut self, ctx: &mut Ctx<Self::Msg>, to: usize, lane: Lane) {
        let _ = (ctx, to, lane);
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

    /// A TCP connection was accepted on `listener`, one of this worker's.
    fn on_accept(
        &mut self,
        ctx: &mut Ctx<Self::Msg>,
        listener: ListenerId,
        conn: ConnId,
        peer: SocketAddr,
    ) {
        let _ = (ctx, listener, conn, peer);
    }

    /// Bytes arrived on a connection. `data` is what the handler has not
    /// consumed yet followed by the new bytes, mutable (TLS decrypts in
    /// place, WebSocket unmasks in place) and valid for this call only.
    /// Return how many bytes from the front were consumed: the rest is kept
    /// (in a carry buffer bounded by `max_inbound_bytes`) and handed over
    /// again, in front of the next bytes, when more arrive or receiving
    /// resumes. Consume every whole message there is: the rest is offered
    /// again only with more bytes. In the common case (a whole request in
    /// one receive, consumed) nothing is copied.
    fn on_recv(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId, data: &mut [u8]) -> usize {
        let _ = (ctx, conn);
        data.len()
    }

    /// The bytes kept for `conn` would exceed `max_inbound_bytes`. The
    /// handler decides what to say (a protocol error and `close`, or
    /// `abort`); if it leaves the connection open, the runtime aborts it.
    fn on_inbound_full(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId) {
        ctx.abort(conn);
    }

    /// The peer closed its side (EOF). Sending stays allowed until the
    /// handler closes, so an answer still on its way (through the mesh)
    /// reaches a client that half-closed. The default closes gracefully
    /// once queued bytes are out.
    fn on_peer_closed(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId) {
        ctx.close(conn);
    }

    /// A send on `conn` was refused with `QueueFull` and its queue has since
    /// drained to half of `max_outbound_bytes`.
    fn on_writable(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId) {
        let _ = (ctx, conn);
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

impl ConnId {
    /// The id of slot `index` in its `generation`, e.g. read back from a
    /// record another worker wrote, or made up by a test. A made-up id is
    /// harmless: the runtime refuses ids whose slot moved on.
    pub fn from_parts(index: u32, generation: u32) -> ConnId {
        ConnId { index, generation }
    }

    /// The connection's slot on this worker: below `max_connections`, and
    /// reused after `on_closed`, so a handler keeps per-connection state in
    /// a `Vec` indexed by it (checking the whole id where it matters).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The slot's generation (modulo 2^24): it changes each time the slot
    /// is reused.
    pub fn generation(self) -> u32 {
        self.generation
    }
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
    /// No free send slot and the bounded queue is full, or the
    /// connection's queued bytes are at `max_outbound_bytes` (then
    /// `Handler::on_writable` follows once it drains); counted in
    /// `send_queue_overflow`.
    #[error("send queue full")]
    QueueFull,
    /// The socket or connection id is unknown, closed or closing.
    #[error("unknown or closed socket/connection")]
    Closed,
    /// The bytes can never fit (longer than a send slot, or than a send
    /// chunk / `max_outbound_bytes` for `send_with`'s minimum).
    #[error("message larger than a send buffer")]
    TooLarge,
}
