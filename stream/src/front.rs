//! What a stream tracker's worker (riptide-http, riptide-ws) does below its
//! protocol, once: its listeners and which of them speak TLS, and per
//! connection slot the PROXY protocol header still expected and the TLS
//! session. A receive goes in two steps so the protocol can send (through
//! [`Front::session_mut`]) while it handles the plaintext:
//! [`Front::open`] strips the PROXY header and decrypts in place, the
//! protocol consumes what it can of the plaintext, [`Front::finish`] says
//! how much of the runtime's buffer that was.

use crate::{parse_proxy_header, CertStore, ProxyAddrs, ProxyHeader, Read, TlsSession};
use crate::{TlsError, TrustedProxies};
use std::net::{IpAddr, TcpListener};
use std::ops::Range;
use std::sync::Arc;
use uring_rt::{ConnId, Ctx, ListenerId, SendError};

/// One connection slot's state below the protocol.
#[derive(Default)]
struct Slot {
    /// Boxed: a plain connection's slot holds a pointer, not a session.
    tls: Option<Box<TlsSession>>,
    proxy_pending: bool,
}

/// The listeners and the per-connection TLS and PROXY state of a worker.
pub struct Front {
    /// Until [`Front::start`] hands them to the runtime.
    listeners: Vec<(TcpListener, bool)>,
    /// The listeners the runtime took, and whether each speaks TLS.
    listener_tls: Vec<(ListenerId, bool)>,
    slots: Vec<Slot>,
    certs: Option<Arc<CertStore>>,
    trusted: Arc<TrustedProxies>,
    proxy_protocol: bool,
}

/// Why [`Front::accept`] or [`Front::open`] refused a connection (it was
/// aborted; count it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No TLS session could be made, or the peer broke TLS (closed).
    Tls,
    /// A PROXY header from a peer that is not a trusted proxy.
    UntrustedProxy,
    /// Not a valid PROXY header where one was required.
    BadProxyHeader,
}

/// What [`Front::open`] made of a receive.
#[derive(Debug)]
pub enum Opened {
    /// Nothing for the protocol yet: `on_recv` returns this many.
    Wait(usize),
    /// The connection was refused and closed: `on_recv` returns this many.
    Refused(Refusal, usize),
    /// Plaintext for the protocol (`data[opening.plaintext()]`); then
    /// [`Front::finish`].
    Ready(Opening),
}

/// A receive between [`Front::open`] and [`Front::finish`].
#[derive(Debug)]
pub struct Opening {
    /// Bytes of a PROXY header at the front.
    start: usize,
    /// The TLS read, on TLS connections.
    read: Option<Read>,
    end: usize,
    /// The client a PROXY header named (only from a trusted proxy).
    pub proxied: Option<IpAddr>,
    /// The TLS handshake completed in this receive.
    pub handshake_done: bool,
    /// The peer sent close_notify: answer what is there, then close.
    pub peer_closed: bool,
}

impl Opening {
    /// Where the plaintext is in the receive buffer.
    pub fn plaintext(&self) -> Range<usize> {
        match &self.read {
            Some(r) => self.start + r.plaintext.start..self.start + r.plaintext.end,
            None => self.start..self.end,
        }
    }
}

impl Front {
    /// A worker's front over its `listeners` (`(socket, speaks TLS)`).
    pub fn new(
        listeners: Vec<(TcpListener, bool)>,
        certs: Option<Arc<CertStore>>,
        trusted: Arc<TrustedProxies>,
        proxy_protocol: bool,
    ) -> Front {
        Front {
            listeners,
            listener_tls: Vec::new(),
            slots: Vec::new(),
            certs,
            trusted,
            proxy_protocol,
        }
    }

    /// Hands the listeners to the runtime (`Handler::on_start`).
    pub fn start<M: Copy + Send + 'static>(&mut self, ctx: &mut Ctx<M>) -> std::io::Result<()> {
        for (l, tls) in std::mem::take(&mut self.listeners) {
            let id = ctx.add_listener(l)?;
            self.listener_tls.push((id, tls));
        }
        Ok(())
    }

    /// Whether `l` is one of these listeners (after `start`).
    pub fn owns_listener(&self, l: ListenerId) -> bool {
        self.listener_tls.iter().any(|&(id, _)| id == l)
    }

    /// The certificates, for a reload.
    pub fn certs(&self) -> Option<&Arc<CertStore>> {
        self.certs.as_ref()
    }

    /// The proxies whose word about the client is believed.
    pub fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// A connection accepted on `l`: its slot is made ready (a TLS session
    /// on a TLS listener, made from the current certificates).
    pub fn accept(&mut self, l: ListenerId, conn: ConnId) -> Result<(), Refusal> {
        let i = conn.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        let tls = self.listener_tls.iter().any(|&(id, tls)| id == l && tls);
        let session = if tls {
            match self.certs.as_ref().map(|c| c.new_session()) {
                Some(Ok(s)) => Some(Box::new(s)),
                _ => return Err(Refusal::Tls),
            }
        } else {
            None
        };
        self.slots[i] = Slot {
            tls: session,
            proxy_pending: self.proxy_protocol,
        };
        Ok(())
    }

    /// The slot is free again (`Handler::on_closed`).
    pub fn closed(&mut self, conn: ConnId) {
        if let Some(s) = self.slots.get_mut(conn.index()) {
            *s = Slot::default();
        }
    }

    /// The TLS session of `conn`, on TLS connections.
    pub fn session_mut(&mut self, conn: ConnId) -> Option<&mut TlsSession> {
        self.slots
            .get_mut(conn.index())
            .and_then(|s| s.tls.as_deref_mut())
    }

    /// First step of a receive on `conn` (whose socket peer is `peer`):
    /// the PROXY header if one is due, then TLS (handshake records
    /// answered, application data decrypted in place).
    pub fn open<M: Copy + Send + 'static>(
        &mut self,
        ctx: &mut Ctx<M>,
        conn: ConnId,
        peer: IpAddr,
        data: &mut [u8],
    ) -> Opened {
        let Some(slot) = self.slots.get_mut(conn.index()) else {
            return Opened::Wait(data.len());
        };
        let mut opening = Opening {
            start: 0,
            read: None,
            end: data.len(),
            proxied: None,
            handshake_done: false,
            peer_closed: false,
        };
        if slot.proxy_pending {
            match parse_proxy_header(data) {
                ProxyHeader::Incomplete => return Opened::Wait(0),
                ProxyHeader::Parsed { addrs, header_len } => {
                    slot.proxy_pending = false;
                    if !self.trusted.contains(peer) {
                        ctx.abort(conn);
                        return Opened::Refused(Refusal::UntrustedProxy, data.len());
                    }
                    if let ProxyAddrs::Proxied { src, .. } = addrs {
                        opening.proxied = Some(src.ip());
                    }
                    opening.start = header_len;
                }
                ProxyHeader::Invalid(_) => {
                    ctx.abort(conn);
                    return Opened::Refused(Refusal::BadProxyHeader, data.len());
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
                opening.handshake_done = read.handshake_done;
                opening.peer_closed = read.peer_closed;
                opening.read = Some(read);
                Opened::Ready(opening)
            }
            Err(e) => {
                log::debug!("TLS: {e}");
                ctx.close(conn);
                Opened::Refused(Refusal::Tls, data.len())
            }
        }
    }

    /// Second step: the protocol used `used` bytes of the plaintext; returns
    /// what `on_recv` consumed (the rest is kept for the next receive).
    pub fn finish(
        &mut self,
        conn: ConnId,
        data: &mut [u8],
        opening: &Opening,
        used: usize,
    ) -> usize {
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
