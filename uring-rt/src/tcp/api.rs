//! The TCP part of [`Ctx`]: listeners, sending in place, flow control and
//! the three ways a connection ends.

use crate::ctx::Ctx;
use crate::handler::{ConnId, SendError};
use crate::tcp::accept::ListenerId;
use crate::tcp::conn::Phase;
use std::io;
use std::net::TcpListener;
use std::time::Duration;

/// How long a graceful close may take to send what is queued, unless a
/// deadline set after `close` says otherwise.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(30);

impl<M: Copy + Send + 'static> Ctx<M> {
    /// Register a TCP listener (see [`crate::socket::reuseport_listeners`] for building
    /// per-worker `SO_REUSEPORT` listeners): several ACCEPTs in flight;
    /// accepted connections get a multishot RECV and `on_accept` with this
    /// id and their peer's address. `TCP_NODELAY` is set on the listener,
    /// which every accepted connection inherits (small responses should not
    /// wait for Nagle), so no accept costs a `setsockopt`.
    pub fn add_listener(&mut self, l: TcpListener) -> io::Result<ListenerId> {
        l.set_nonblocking(true)?;
        socket2::SockRef::from(&l).set_nodelay(true)?;
        Ok(self.tcp.add_listener(l))
    }

    /// Write in place: `fill` gets the connection's spare send room, at
    /// least `min` contiguous bytes (at most a send chunk, `tcp_send_chunk`,
    /// and no more than the connection may still queue), writes into it and
    /// returns how many bytes it wrote; they are sent at the end of the
    /// turn. Returns that count. `QueueFull` when fewer than `min` bytes may
    /// still be queued (`max_outbound_bytes`): `Handler::on_writable`
    /// follows once the queue drains to half. `TooLarge` when `min` is more
    /// than a chunk. `Closed` after `close`/`abort` or for a stale id.
    pub fn send_with(
        &mut self,
        conn: ConnId,
        min: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, SendError> {
        let r = self.tcp.send_with(conn, min, fill);
        if r == Err(SendError::QueueFull) {
            self.stats.send_queue_overflow += 1;
        }
        r
    }

    /// Queue a copy of `bytes` (over as many chunks as it takes), all or
    /// nothing: `QueueFull` when they do not fit in what the connection
    /// may still queue, `TooLarge` when they never could.
    pub fn send(&mut self, conn: ConnId, mut bytes: &[u8]) -> Result<(), SendError> {
        if bytes.len() > self.tcp.limits.max_outbound {
            return Err(SendError::TooLarge);
        }
        if self.tcp.open_conn(conn).is_none() {
            return Err(SendError::Closed);
        }
        if self.tcp.send_space(conn) < bytes.len() {
            self.tcp.want_writable(conn);
            self.stats.send_queue_overflow += 1;
            return Err(SendError::QueueFull);
        }
        while !bytes.is_empty() {
            let n = self.tcp.send_with(conn, 1, |room| {
                let n = room.len().min(bytes.len());
                room[..n].copy_from_slice(&bytes[..n]);
                n
            })?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Bytes `send`/`send_with` may still queue on `conn` (0 when it is
    /// closing, closed or unknown).
    pub fn send_space(&self, conn: ConnId) -> usize {
        self.tcp.send_space(conn)
    }

    /// Stop receiving on `conn` (flow control against a client that sends
    /// faster than it is answered): its receive is cancelled, so the
    /// kernel's buffer and then the TCP window fill up. Bytes already
    /// received are kept for `resume_recv`. `false` for a connection that
    /// is not open.
    pub fn pause_recv(&mut self, conn: ConnId) -> bool {
        self.tcp.pause(conn)
    }

    /// Receive again on a paused connection; kept bytes are handed to
    /// `on_recv` at the end of this turn.
    pub fn resume_recv(&mut self, conn: ConnId) -> bool {
        self.tcp.resume(conn)
    }

    /// Close gracefully: queued bytes go out, then the write side is shut
    /// (FIN), then what the peer still sends is read and discarded until
    /// its EOF or `tcp_linger`, then the socket is closed through the ring.
    /// Unread pipelined bytes therefore never turn the last response into
    /// an RST. Nothing more is delivered or may be sent; `on_closed`
    /// follows.
    ///
    /// The whole close is bounded: sending what is queued by
    /// [`CLOSE_LIMIT`] (a deadline set after `close` replaces it), the
    /// lingering read by `tcp_linger`; past either the connection is reset.
    pub fn close(&mut self, conn: ConnId) {
        if self.tcp.open_conn(conn).is_some() {
            self.tcp.close(conn.index);
            self.deadlines.set(conn.index, self.now, CLOSE_LIMIT);
        }
    }

    /// End a connection now with an RST (SO_LINGER 0), dropping queued
    /// bytes: for abuse and dead peers. `on_closed` follows.
    pub fn abort(&mut self, conn: ConnId) {
        if self
            .tcp
            .get(conn)
            .is_some_and(|c| c.phase != Phase::Aborting)
        {
            self.stats.conns_aborted += 1;
            self.tcp.abort(conn.index, true);
        }
    }

    /// Give a connection a deadline `after` from now (`None`: no deadline),
    /// replacing its earlier one; returns `false` for an unknown or closed
    /// connection. When the deadline passes, `Handler::on_deadline` runs
    /// (by default it aborts the connection); a connection that is closing
    /// (still sending, or lingering) is aborted instead, whether its
    /// deadline was set before or after `close` (also while the runtime
    /// drains at stop, when `on_deadline` is no longer called). So an idle
    /// timeout is a deadline set at accept and pushed back on every
    /// request, and a deadline set after `close` bounds how long the close
    /// may take on a peer that does not read. It fires less than 200 ms
    /// late, never early. O(1), no allocation or syscall.
    pub fn set_deadline(&mut self, conn: ConnId, after: Option<Duration>) -> bool {
        if self.tcp.get(conn).is_none() {
            return false;
        }
        match after {
            Some(d) => self.deadlines.set(conn.index, self.now, d),
            None => self.deadlines.clear(conn.index),
        }
        true
    }

    /// Number of open connections on this worker.
    pub fn connections(&self) -> usize {
        self.tcp.open()
    }
}
