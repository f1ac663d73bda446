//! What a stream tracker's worker (riptide-http, riptide-ws) does below its
//! protocol, once: its listeners and which of them speak TLS, and per
//! connection slot the PROXY protocol header still expected, the TLS
//! session, the addresses and the protocol's own state ([`Conn`]).
//!
//! A receive ([`Front::recv`]) goes in three steps so the protocol can send
//! (through [`Front::send`]) while it handles the plaintext: the front
//! strips the PROXY header and decrypts in place, the protocol
//! ([`Protocol::serve`]) consumes what it can of the plaintext, the front
//! says how much of the runtime's buffer that was.

use crate::{parse_proxy_header, CertStore, ProxyAddrs, ProxyHeader, Read, TlsSession};
use crate::{MetricsPlace, StreamState, TlsError, TrustedProxies};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut, Range};
use std::sync::Arc;
use std::time::Duration;
use uring_rt::mesh::bytes::ReturnAddr;
use uring_rt::{ConnId, Ctx, Handler, ListenerId, SendError};

/// The series (indices into a worker's values) a [`Front`] counts its own
/// events in, and its worker's [`Seat`](crate::Seat) the records a full
/// mesh refused.
#[derive(Clone, Copy, Debug)]
pub struct FrontSeries {
    /// Bytes received (before decryption).
    pub bytes_received: usize,
    /// TLS handshakes completed.
    pub tls_handshakes: usize,
    /// TLS sessions that could not be made or that the peer broke.
    pub tls_failures: usize,
    /// PROXY headers from peers that are not trusted proxies.
    pub untrusted_proxy: usize,
    /// Invalid PROXY headers where one was required.
    pub bad_proxy_header: usize,
    /// Records the full mesh to another worker refused.
    pub mesh_full: usize,
}

/// A connection the worker serves: its addresses and what its protocol
/// keeps for it (`C`, reached through `Deref`).
#[derive(Debug)]
pub struct Conn<C> {
    /// Its id (a slot is reused by later connections).
    pub id: ConnId,
    /// The direct peer (a proxy, or the client itself).
    pub peer: IpAddr,
    /// The client: the peer, or whom a trusted proxy's PROXY header names.
    pub client: IpAddr,
    /// Sequence number of the last request sent to another worker.
    seq: u32,
    /// The protocol's state.
    pub state: C,
}

impl<C> Conn<C> {
    /// The return address of a new request this connection (on worker
    /// `worker`) sends to another worker: its sequence number follows the
    /// last one's, so an answer that comes after a newer request is known
    /// as late.
    pub fn next_return(&mut self, worker: usize) -> ReturnAddr {
        self.seq = self.seq.wrapping_add(1);
        ReturnAddr {
            worker,
            conn: self.id,
            seq: self.seq,
        }
    }
}

impl<C> Deref for Conn<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.state
    }
}

impl<C> DerefMut for Conn<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.state
    }
}

/// One connection slot's state.
struct Slot<C> {
    /// Boxed: a plain connection's slot holds a pointer, not a session.
    tls: Option<Box<TlsSession>>,
    proxy_pending: bool,
    conn: Option<Conn<C>>,
}

impl<C> Default for Slot<C> {
    fn default() -> Self {
        Slot {
            tls: None,
            proxy_pending: false,
            conn: None,
        }
    }
}

/// The listeners and the connections of a worker, with their TLS and
/// PROXY state; `C` is what the protocol keeps per connection.
pub struct Front<C> {
    /// Until [`Front::start`] hands them to the runtime.
    listeners: Vec<(TcpListener, bool)>,
    /// The listeners the runtime took, and whether each speaks TLS.
    listener_tls: Vec<(ListenerId, bool)>,
    slots: Vec<Slot<C>>,
    certs: Option<Arc<CertStore>>,
    trusted: Arc<TrustedProxies>,
    proxy_protocol: bool,
    metrics: MetricsPlace,
    series: FrontSeries,
}

/// Why the front refused a connection (it was aborted; counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// No TLS session could be made, or the peer broke TLS (closed).
    Tls,
    /// A PROXY header from a peer that is not a trusted proxy.
    UntrustedProxy,
    /// Not a valid PROXY header where one was required.
    BadProxyHeader,
}

/// What [`Front::open`] made of a receive.
#[derive(Debug)]
enum Opened {
    /// Nothing for the protocol yet: `on_recv` returns this many.
    Wait(usize),
    /// The connection was refused and closed: `on_recv` returns this many.
    Refused(usize),
    /// Plaintext for the protocol (`data[opening.plaintext()]`); then
    /// [`Front::finish`].
    Ready(Opening),
}

/// A receive between [`Front::open`] and [`Front::finish`].
#[derive(Debug)]
struct Opening {
    /// Bytes of a PROXY header at the front.
    start: usize,
    /// The TLS read, on TLS connections.
    read: Option<Read>,
    end: usize,
    /// The peer sent close_notify: answer what is there, then close.
    peer_closed: bool,
}

impl Opening {
    /// Where the plaintext is in the receive buffer.
    fn plaintext(&self) -> Range<usize> {
        match &self.read {
            Some(r) => self.start + r.plaintext.start..self.start + r.plaintext.end,
            None => self.start..self.end,
        }
    }
}

/// The protocol above a worker's [`Front`] (riptide-http's or riptide-ws's
/// worker): what [`Front::recv`] hands the plaintext to.
pub trait Protocol: Handler {
    /// What the protocol keeps per connection.
    type State;

    /// The worker's front.
    fn front(&mut self) -> &mut Front<Self::State>;

    /// Handles the plaintext `data` of `conn`; returns how many bytes it
    /// used (the rest is kept for the next receive).
    fn serve(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId, data: &mut [u8]) -> usize;

    /// The front refused `conn` (it is aborted or closed): nothing more
    /// comes from it.
    fn refused(&mut self, ctx: &mut Ctx<Self::Msg>, conn: ConnId) {
        let _ = (ctx, conn);
    }
}

impl<C> Front<C> {
    /// A worker's front over its `listeners` (`(socket, speaks TLS)`),
    /// with the certificates, trusted proxies and PROXY setting of
    /// `shared`, counting its events in `series` of `metrics`.
    pub fn new(
        listeners: Vec<(TcpListener, bool)>,
        shared: &StreamState,
        metrics: MetricsPlace,
        series: FrontSeries,
    ) -> Front<C> {
        Front {
            listeners,
            listener_tls: Vec::new(),
            slots: Vec::new(),
            certs: shared.certs.clone(),
            trusted: Arc::clone(&shared.trusted),
            proxy_protocol: shared.proxy_protocol,
            metrics,
            series,
        }
    }

    /// `Handler::on_start`: hands the listeners to the runtime and starts
    /// the worker's periodic `timers` (`(interval, token)`). If a listener
    /// cannot be added, worker `id` says so and stops every worker.
    pub fn start<M: Copy + Send + 'static>(
        &mut self,
        ctx: &mut Ctx<M>,
        id: usize,
        timers: impl IntoIterator<Item = (Duration, u64)>,
    ) {
        for (l, tls) in std::mem::take(&mut self.listeners) {
            match ctx.add_listener(l) {
                Ok(added) => self.listener_tls.push((added, tls)),
                Err(e) => {
                    log::error!("worker {id}: cannot add a listener: {e}");
                    ctx.stop_all();
                    return;
                }
            }
        }
        for (interval, token) in timers {
            ctx.add_timer(interval, token);
        }
    }

    /// Whether `l` is one of these listeners (after `start`).
    pub fn owns_listener(&self, l: ListenerId) -> bool {
        self.listener_tls.iter().any(|&(id, _)| id == l)
    }

    /// `Handler::on_accept`: connection `conn` from `peer` on listener `l`
    /// gets its slot, with `state` for the protocol and a TLS session on a
    /// TLS listener (from the current certificates). False if no session
    /// could be made: the connection is aborted (and counted).
    pub fn accept<M: Copy + Send + 'static>(
        &mut self,
        ctx: &mut Ctx<M>,
        l: ListenerId,
        conn: ConnId,
        peer: SocketAddr,
        state: C,
    ) -> bool {
        let i = conn.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        self.slots[i] = Slot::default();
        let tls = self.listener_tls.iter().any(|&(id, tls)| id == l && tls);
        let session = if tls {
            let Some(Ok(s)) = self.certs.as_ref().map(|c| c.new_session()) else {
                self.metrics.count(self.series.tls_failures);
                ctx.abort(conn);
                return false;
            };
            Some(Box::new(s))
        } else {
            None
        };
        self.slots[i] = Slot {
            tls: session,
            proxy_pending: self.proxy_protocol,
            conn: Some(Conn {
                id: conn,
                peer: peer.ip(),
                client: peer.ip(),
                seq: 0,
                state,
            }),
        };
        true
    }

    /// `Handler::on_closed`: the slot is free again; returns what the
    /// protocol kept for `conn`.
    pub fn closed(&mut self, conn: ConnId) -> Option<C> {
        let slot = self.slots.get_mut(conn.index())?;
        let gone = std::mem::take(slot).conn?;
        (gone.id == conn).then_some(gone.state)
    }

    /// The connection `id`, while its slot still holds it.
    #[inline]
    pub fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn<C>> {
        self.slots
            .get_mut(id.index())
            .and_then(|s| s.conn.as_mut())
            .filter(|c| c.id == id)
    }

    /// How many slots there are (connections are found in slots
    /// `0..slots()`, with [`Front::conn_in`]).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The connection in slot `i`, if any.
    pub fn conn_in(&mut self, i: usize) -> Option<&mut Conn<C>> {
        self.slots.get_mut(i).and_then(|s| s.conn.as_mut())
    }

    /// Every connection, in slot order.
    pub fn conns_mut(&mut self) -> impl Iterator<Item = &mut Conn<C>> {
        self.slots.iter_mut().filter_map(|s| s.conn.as_mut())
    }

    /// The TLS session of `conn`, on TLS connections.
    pub fn session_mut(&mut self, conn: ConnId) -> Option<&mut TlsSession> {
        self.slots
            .get_mut(conn.index())
            .and_then(|s| s.tls.as_deref_mut())
    }

    /// `Handler::on_recv` of `protocol`'s worker: the PROXY header if one
    /// is due, TLS (handshake records answered, application data decrypted
    /// in place), the plaintext to [`Protocol::serve`]; then the peer's
    /// close_notify, if it came, to `Handler::on_peer_closed`. Returns how
    /// many bytes of `data` were consumed.
    pub fn recv<P: Protocol<State = C>>(
        protocol: &mut P,
        ctx: &mut Ctx<P::Msg>,
        conn: ConnId,
        data: &mut [u8],
    ) -> usize {
        let front = protocol.front();
        front
            .metrics
            .add(front.series.bytes_received, data.len() as u64);
        let opening = match front.open(ctx, conn, data) {
            Opened::Ready(o) => o,
            Opened::Wait(n) => return n,
            Opened::Refused(n) => {
                protocol.refused(ctx, conn);
                return n;
            }
        };
        let used = protocol.serve(ctx, conn, &mut data[opening.plaintext()]);
        let front = protocol.front();
        let consumed = front.finish(conn, data, &opening, used);
        if opening.peer_closed && front.conn_mut(conn).is_some() {
            protocol.on_peer_closed(ctx, conn);
        }
        consumed
    }

    /// First step of a receive: PROXY header, then TLS.
    fn open<M: Copy + Send + 'static>(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        data: &mut [u8],
    ) -> Opened {
        let Some(slot) = self.slots.get_mut(conn.index()) else {
            return Opened::Wait(data.len());
        };
        let Some(c) = slot.conn.as_mut().filter(|c| c.id == conn) else {
            return Opened::Wait(data.len());
        };
        let mut opening = Opening {
            start: 0,
            read: None,
            end: data.len(),
            peer_closed: false,
        };
        if slot.proxy_pending {
            match parse_proxy_header(data) {
                ProxyHeader::Incomplete => return Opened::Wait(0),
                ProxyHeader::Parsed { addrs, header_len } => {
                    slot.proxy_pending = false;
                    if !self.trusted.contains(c.peer) {
                        return self.refuse(ctx, conn, Refusal::UntrustedProxy, data.len());
                    }
                    if let ProxyAddrs::Proxied { src, .. } = addrs {
                        c.client = src.ip();
                    }
                    opening.start = header_len;
                }
                ProxyHeader::Invalid(_) => {
                    return self.refuse(ctx, conn, Refusal::BadProxyHeader, data.len());
                }
            }
        }
        let Some(session) = slot.tls.as_deref_mut() else {
            return Opened::Ready(opening);
        };
        let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
            ctx.send_with(conn, min, |room| fill(room))
        };
        match session.read(&mut data[opening.start..], &mut out) {
            Ok(read) => {
                if read.handshake_done {
                    self.metrics.count(self.series.tls_handshakes);
                }
                opening.peer_closed = read.peer_closed;
                opening.read = Some(read);
                Opened::Ready(opening)
            }
            Err(e) => {
                log::debug!("TLS: {e}");
                self.refuse(ctx, conn, Refusal::Tls, data.len())
            }
        }
    }

    /// Counts a refusal and ends the connection: closed after a broken TLS
    /// session, aborted after a bad PROXY header.
    fn refuse<M: Copy + Send + 'static>(
        &self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        why: Refusal,
        consumed: usize,
    ) -> Opened {
        let series = match why {
            Refusal::Tls => self.series.tls_failures,
            Refusal::UntrustedProxy => self.series.untrusted_proxy,
            Refusal::BadProxyHeader => self.series.bad_proxy_header,
        };
        self.metrics.count(series);
        if why == Refusal::Tls {
            ctx.close(conn);
        } else {
            ctx.abort(conn);
        }
        Opened::Refused(consumed)
    }

    /// Last step: the protocol used `used` bytes of the plaintext; returns
    /// what `on_recv` consumed (the rest is kept for the next receive).
    fn finish(&mut self, conn: ConnId, data: &mut [u8], opening: &Opening, used: usize) -> usize {
        let start = opening.start;
        match (&opening.read, self.session_mut(conn)) {
            (Some(read), Some(session)) => {
                start + session.finish_read(&mut data[start..], read, used)
            }
            // The session went (closed meanwhile): nothing more is read.
            (Some(_), None) => data.len(),
            (None, _) => start + used,
        }
    }

    /// Queue `plaintext` on `conn`: encrypted on TLS connections, copied
    /// as is on plain ones. `QueueFull` means the connection cannot take
    /// it whole (a slow reader, or a frame cut short: close it).
    pub fn send<M: Copy + Send + 'static>(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        plaintext: &[u8],
    ) -> Result<usize, SendError> {
        let Some(session) = self.session_mut(conn) else {
            return ctx.send(conn, plaintext).map(|()| plaintext.len());
        };
        let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
            ctx.send_with(conn, min, |room| fill(room))
        };
        match session.write(plaintext, &mut out) {
            Ok(n) if n == plaintext.len() => Ok(n),
            Ok(_) | Err(TlsError::Write(SendError::QueueFull)) => Err(SendError::QueueFull),
            Err(_) => Err(SendError::Closed),
        }
    }

    /// Sends close_notify on TLS connections (before a graceful close).
    pub fn close_notify<M: Copy + Send + 'static>(&mut self, ctx: &mut Ctx<M>, conn: ConnId) {
        if let Some(session) = self.session_mut(conn) {
            let mut out = |min: usize, fill: &mut dyn FnMut(&mut [u8]) -> usize| {
                ctx.send_with(conn, min, |room| fill(room))
            };
            let _ = session.send_close_notify(&mut out);
        }
    }

    /// Reloads the certificate pair from its files for new handshakes
    /// (SIGUSR1), logging what happened; the old pair stays on error.
    pub fn reload_certs(&self) {
        if let Some(certs) = &self.certs {
            match certs.reload() {
                Ok(()) => log::info!(
                    "TLS: reloaded {} and {}: new handshakes use them",
                    certs.cert_path().display(),
                    certs.key_path().display()
                ),
                Err(e) => log::error!("TLS: reload failed, the old pair stays: {e}"),
            }
        }
    }
}
