//! TCP state of one worker: listeners (multishot ACCEPT), connection slots
//! (multishot RECV on the TCP buffer group, SEND from a per-slot out buffer
//! with partial-send continuation) and the pending-work lists the flush
//! turns into SQEs.
//!
//! Connection slots are reused with a new generation; their out buffers are
//! allocated the first time a slot is used and kept for later connections,
//! so a warm server allocates nothing per connection or per request.

use crate::handler::{ConnId, SendError};
use crate::region::Region;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub(crate) struct Listener {
    pub(crate) sock: TcpListener,
}

/// One connection slot.
#[allow(clippy::struct_excessive_bools)]
pub(crate) struct Conn {
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) generation: u32,
    out: Option<Region>,
    /// Bytes buffered in `out[0..out_len]`.
    out_len: usize,
    /// Bytes of `out` already written by completed sends.
    sent: usize,
    /// End of the range the in-flight SEND covers (`out[sent..flight_end]`).
    flight_end: usize,
    pub(crate) recv_in_flight: bool,
    pub(crate) send_in_flight: bool,
    /// `close` was called or the peer/kernel ended the connection.
    pub(crate) closing: bool,
    /// Closing without waiting for buffered bytes.
    aborting: bool,
    queued_recv: bool,
    queued_send: bool,
    queued_cancel: bool,
}

/// All TCP state of a worker.
pub(crate) struct Tcp {
    pub(crate) listeners: Vec<Listener>,
    pub(crate) conns: Vec<Conn>,
    free: Vec<u32>,
    max_conns: usize,
    out_cap: usize,
    pub(crate) arm_accept: Vec<u32>,
    pub(crate) arm_recv: Vec<u32>,
    pub(crate) send_now: Vec<u32>,
    pub(crate) cancel: Vec<u32>,
    /// Slots whose ops are all done and which wait for `on_closed`.
    pub(crate) finished: Vec<u32>,
}

impl Tcp {
    pub(crate) fn new(max_conns: usize, out_cap: usize) -> Tcp {
        Tcp {
            listeners: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            max_conns,
            out_cap: out_cap.max(1),
            arm_accept: Vec::new(),
            arm_recv: Vec::new(),
            send_now: Vec::new(),
            cancel: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Number of open (or closing) connections.
    pub(crate) fn open(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    pub(crate) fn add_listener(&mut self, l: TcpListener) -> usize {
        self.listeners.push(Listener { sock: l });
        let i = self.listeners.len() - 1;
        self.arm_accept.push(i as u32);
        i
    }

    /// Take a freshly accepted fd into a slot; `None` when the table is full.
    pub(crate) fn insert(&mut self, fd: OwnedFd) -> Option<ConnId> {
        let index = if let Some(i) = self.free.pop() {
            i
        } else if self.conns.len() < self.max_conns {
            self.conns.push(Conn {
                fd: None,
                generation: 0,
                out: None,
                out_len: 0,
                sent: 0,
                flight_end: 0,
                recv_in_flight: false,
                send_in_flight: false,
                closing: false,
                aborting: false,
                queued_recv: false,
                queued_send: false,
                queued_cancel: false,
            });
            (self.conns.len() - 1) as u32
        } else {
            return None;
        };
        let c = &mut self.conns[index as usize];
        c.fd = Some(fd);
        c.out_len = 0;
        c.sent = 0;
        c.flight_end = 0;
        c.closing = false;
        c.aborting = false;
        let id = ConnId {
            index,
            generation: c.generation,
        };
        self.queue_recv(index);
        Some(id)
    }

    /// The live slot for `id`, if any.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.conns
            .get(id.index as usize)
            .filter(|c| c.generation == id.generation && c.fd.is_some())
    }

    /// The current id of slot `index` (for completions, which carry only the index).
    pub(crate) fn id_of(&self, index: usize) -> Option<ConnId> {
        let c = self.conns.get(index)?;
        c.fd.as_ref()?;
        Some(ConnId {
            index: index as u32,
            generation: c.generation,
        })
    }

    pub(crate) fn raw_fd(&self, index: usize) -> Option<RawFd> {
        self.conns.get(index)?.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    pub(crate) fn queue_recv(&mut self, index: u32) {
        let c = &mut self.conns[index as usize];
        if !c.queued_recv && !c.recv_in_flight && !c.closing {
            c.queued_recv = true;
            self.arm_recv.push(index);
        }
    }

    fn queue_send(&mut self, index: u32) {
        let c = &mut self.conns[index as usize];
        if !c.queued_send && !c.send_in_flight && c.out_len > c.sent && !c.aborting {
            c.queued_send = true;
            self.send_now.push(index);
        }
    }

    fn queue_cancel(&mut self, index: u32) {
        let c = &mut self.conns[index as usize];
        if !c.queued_cancel {
            c.queued_cancel = true;
            self.cancel.push(index);
        }
    }

    /// Append `bytes` to the connection's out buffer and schedule a send.
    pub(crate) fn send(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), SendError> {
        let cap = self.out_cap;
        let Some(c) = self
            .conns
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation && c.fd.is_some() && !c.closing)
        else {
            return Err(SendError::Closed);
        };
        if bytes.len() > cap {
            return Err(SendError::TooLarge);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if c.out.is_none() {
            c.out = Some(Region::new(cap).map_err(|_| SendError::QueueFull)?);
        }
        if !c.send_in_flight && c.sent > 0 {
            compact(c);
        }
        if c.out_len + bytes.len() > cap {
            return Err(SendError::QueueFull);
        }
        let out = c.out.as_ref().map_or(std::ptr::null_mut(), Region::ptr);
        // SAFETY: out_len + len <= cap <= Region length; the in-flight SEND
        // (if any) reads only out[sent..flight_end], with flight_end <=
        // out_len, so these bytes are not shared with the kernel.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(c.out_len), bytes.len()) };
        c.out_len += bytes.len();
        self.queue_send(id.index);
        Ok(())
    }

    /// The next SEND to submit for slot `index`: (fd, ptr, len).
    pub(crate) fn next_send(&mut self, index: u32) -> Option<(RawFd, *const u8, u32)> {
        let c = self.conns.get_mut(index as usize)?;
        c.queued_send = false;
        if c.send_in_flight || c.aborting || c.out_len <= c.sent {
            return None;
        }
        if c.sent > 0 {
            compact(c);
        }
        let fd = c.fd.as_ref()?.as_raw_fd();
        let base = c.out.as_ref()?.ptr();
        c.send_in_flight = true;
        c.flight_end = c.out_len;
        Some((
            fd,
            base.wrapping_add(c.sent).cast_const(),
            (c.flight_end - c.sent) as u32,
        ))
    }

    /// The SEND pushed by `next_send` could not be submitted this turn.
    pub(crate) fn unsend(&mut self, index: u32) {
        let c = &mut self.conns[index as usize];
        c.send_in_flight = false;
        self.queue_send(index);
    }

    /// SEND completion. Returns `(ok, partial)`.
    pub(crate) fn send_done(&mut self, index: usize, res: i32) -> (bool, bool) {
        let Some(c) = self.conns.get_mut(index) else {
            return (false, false);
        };
        c.send_in_flight = false;
        let mut partial = false;
        if res > 0 {
            c.sent = (c.sent + res as usize).min(c.flight_end);
            partial = c.sent < c.flight_end;
            if c.sent == c.out_len {
                c.sent = 0;
                c.out_len = 0;
            }
        } else {
            // Error or zero-length write: drop buffered bytes and close.
            c.out_len = 0;
            c.sent = 0;
            c.aborting = true;
        }
        let ok = res > 0;
        if !ok {
            self.begin_close(index as u32, true);
        }
        self.queue_send(index as u32);
        self.maybe_finish(index as u32);
        (ok, partial)
    }

    /// A RECV completion: `ended` = no `F_MORE`; `close` = Some(abort) when
    /// the peer closed (EOF) or an error ended the connection. Returns
    /// whether the receive was re-armed.
    pub(crate) fn recv_cqe(&mut self, index: usize, ended: bool, close: Option<bool>) -> bool {
        let Some(c) = self.conns.get_mut(index) else {
            return false;
        };
        if c.fd.is_none() {
            return false;
        }
        if ended {
            c.recv_in_flight = false;
        }
        if let Some(abort) = close {
            self.begin_close(index as u32, abort);
        }
        let c = &self.conns[index];
        if ended && !c.closing {
            self.queue_recv(index as u32);
            return true;
        }
        if ended {
            self.maybe_finish(index as u32);
        }
        false
    }

    /// Connections with a SEND in flight (checked while stopping).
    pub(crate) fn sending(&self) -> usize {
        self.conns.iter().filter(|c| c.send_in_flight).count()
    }

    /// Start closing: cancel the receive, and either let buffered bytes go
    /// out first (`abort == false`) or cancel the send too.
    pub(crate) fn begin_close(&mut self, index: u32, abort: bool) {
        let Some(c) = self.conns.get_mut(index as usize) else {
            return;
        };
        if c.fd.is_none() {
            return;
        }
        let first = !c.closing;
        c.closing = true;
        if abort {
            c.aborting = true;
        }
        if c.recv_in_flight || (c.aborting && c.send_in_flight) {
            self.queue_cancel(index);
        }
        if first || abort {
            self.maybe_finish(index);
        }
    }

    /// For a slot in the `cancel` list: which ops to cancel, `(recv, send)`.
    pub(crate) fn cancel_targets(&self, index: u32) -> (bool, bool) {
        match self.conns.get(index as usize) {
            // Not closing: the slot was reused by a new connection since the close.
            Some(c) if c.closing => (c.recv_in_flight, c.aborting && c.send_in_flight),
            _ => (false, false),
        }
    }

    /// The flush pushed every cancel of `index` and took it off the list.
    pub(crate) fn cancel_pushed(&mut self, index: u32) {
        if let Some(c) = self.conns.get_mut(index as usize) {
            c.queued_cancel = false;
        }
    }

    pub(crate) fn mark_recv_in_flight(&mut self, index: u32) -> bool {
        let c = &mut self.conns[index as usize];
        c.queued_recv = false;
        if c.closing || c.recv_in_flight || c.fd.is_none() {
            return false;
        }
        c.recv_in_flight = true;
        true
    }

    pub(crate) fn unmark_recv(&mut self, index: u32) {
        self.conns[index as usize].recv_in_flight = false;
        self.queue_recv(index);
    }

    /// A closing slot whose ops are all done moves to `finished`.
    fn maybe_finish(&mut self, index: u32) {
        let c = &mut self.conns[index as usize];
        let drained = c.aborting || c.out_len == c.sent;
        if c.closing && !c.recv_in_flight && !c.send_in_flight && drained && c.fd.is_some() {
            // Closing the fd here is safe: no op of ours references it now.
            c.fd = None;
            c.out_len = 0;
            c.sent = 0;
            self.finished.push(index);
        }
    }

    /// Called for each `finished` slot after `on_closed` ran: the slot is reusable.
    pub(crate) fn release(&mut self, index: u32) -> ConnId {
        let c = &mut self.conns[index as usize];
        let id = ConnId {
            index,
            generation: c.generation,
        };
        c.generation = c.generation.wrapping_add(1);
        self.free.push(index);
        id
    }
}

/// Move unsent bytes to the front of an idle out buffer.
fn compact(c: &mut Conn) {
    let Some(out) = c.out.as_ref() else { return };
    let rest = c.out_len - c.sent;
    // SAFETY: no SEND is in flight (caller checks), both ranges are inside
    // the Region, and `copy` handles the overlap.
    unsafe { std::ptr::copy(out.ptr().add(c.sent), out.ptr(), rest) };
    c.out_len = rest;
    c.sent = 0;
}

/// Peer address of an accepted socket (unspecified when getpeername fails).
pub(crate) fn peer_of(fd: &OwnedFd) -> SocketAddr {
    socket2::SockRef::from(fd)
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Best-effort: small responses should not wait for Nagle.
pub(crate) fn set_nodelay(fd: &OwnedFd) -> io::Result<()> {
    socket2::SockRef::from(fd).set_nodelay(true)
}
