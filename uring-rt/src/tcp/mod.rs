//! TCP state of one worker: listeners, connection slots and the pools their
//! buffers come from. Sans-IO: this module decides which operation each
//! slot needs next ([`conn::Conn::next_op`]); the worker turns the dirty
//! slots into SQEs once per turn (`worker/tcp.rs`) and feeds completions
//! back here.
//!
//! - `conn`: a slot's life ([`conn::Phase`]) and the next op it needs.
//! - `carry`: unconsumed received bytes, pooled.
//! - `outbound`: queued bytes in pooled chunks, written in place.
//! - `accept`: listeners, pausing at `max_connections`, back-off.
//!
//! Slots are reused with a new generation (kept modulo 2^24, the part that
//! travels in `user_data`); a stale [`ConnId`] is refused everywhere.

pub(crate) mod accept;
pub(crate) mod api;
pub(crate) mod carry;
pub(crate) mod conn;
pub(crate) mod outbound;

use crate::handler::{ConnId, SendError};
use crate::user_data::GENERATION_MASK;
use accept::{Listener, ListenerId};
use carry::CarryPool;
use conn::{Conn, Phase, ReadSide, TableEntry};
use outbound::{ChunkPool, HdrPool};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{OwnedFd, RawFd};
use std::time::Duration;

/// Per-connection bounds and pool sizes (from `RuntimeConfig`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_conns: usize,
    pub(crate) max_inbound: usize,
    pub(crate) max_outbound: usize,
    pub(crate) linger: Duration,
}

/// The connections' part of the worker's registered file table: slot `i`'s
/// socket goes in at entry `base + i`.
pub(crate) struct ConnTable {
    pub(crate) base: u32,
    /// The descriptor each slot's FILES_UPDATE reads (an SQE names an
    /// array; the kernel reads it when it issues the op). Zeroed memory,
    /// touched one entry per slot in use.
    pub(crate) fds: Box<[RawFd]>,
    /// Connections still go in (false after the kernel refused one: the
    /// rest go by descriptor rather than each failing the same way).
    pub(crate) open: bool,
}

impl ConnTable {
    /// The entry of slot `index` and the descriptor its FILES_UPDATE
    /// reads, while connections still go in and the slot is in the table.
    pub(crate) fn register(&mut self, index: usize) -> Option<(u32, &mut RawFd)> {
        let base = self.base;
        let fd = self.fds.get_mut(index).filter(|_| self.open)?;
        Some((base + index as u32, fd))
    }
}

/// All TCP state of a worker.
pub(crate) struct Tcp {
    pub(crate) listeners: Vec<Listener>,
    pub(crate) conns: Vec<Conn>,
    free: Vec<u32>,
    open: usize,
    pub(crate) limits: Limits,
    /// Connections go into the file table (`None`: by descriptor).
    pub(crate) table: Option<ConnTable>,
    pub(crate) carries: CarryPool,
    pub(crate) chunks: ChunkPool,
    pub(crate) hdrs: HdrPool,
    /// Accepting is paused: the worker is at `max_conns`.
    pub(crate) accept_paused: bool,
    /// Some listener may need an op.
    pub(crate) listeners_dirty: bool,
    /// Slots that may need an SQE.
    pub(crate) dirty: Vec<u32>,
    /// Slots resumed with carried bytes: deliver them again.
    pub(crate) redeliver: Vec<u32>,
    /// Connections whose queue drained after a refused send.
    pub(crate) writable: Vec<ConnId>,
    /// Slots whose CLOSE completed and which wait for `on_closed`.
    pub(crate) finished: Vec<u32>,
    /// Connections the ACCEPTs took after the worker reached `max_conns`
    /// (before their cancels landed): they wait here for a slot
    /// instead of being closed.
    pub(crate) waiting: std::collections::VecDeque<(OwnedFd, ListenerId, SocketAddr)>,
}

/// Most accepted connections that wait for a slot; beyond, they are closed.
pub(crate) const WAITING_MAX: usize = 64;

impl Tcp {
    pub(crate) fn new(limits: Limits, chunk_size: u32, recv_buffer_size: usize) -> Tcp {
        // Spare pooled buffers are bounded so a burst does not keep its
        // memory for ever (1,024 chunks of 16 KiB: 16 MiB per worker).
        let keep = 1024;
        Tcp {
            listeners: Vec::new(),
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            limits,
            table: None,
            carries: CarryPool::new(2 * recv_buffer_size, keep),
            chunks: ChunkPool::new(chunk_size, keep),
            hdrs: Vec::new(),
            accept_paused: false,
            listeners_dirty: false,
            dirty: Vec::new(),
            redeliver: Vec::new(),
            writable: Vec::new(),
            finished: Vec::new(),
            waiting: std::collections::VecDeque::new(),
        }
    }

    /// Number of open (or closing) connections.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    pub(crate) fn add_listener(&mut self, l: TcpListener) -> ListenerId {
        self.listeners.push(Listener::new(l));
        self.listeners_dirty = true;
        ListenerId((self.listeners.len() - 1) as u32)
    }

    /// Mark slot `index` as possibly needing an SQE this turn.
    pub(crate) fn mark(&mut self, index: u32) {
        if let Some(c) = self.conns.get_mut(index as usize) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(index);
            }
        }
    }

    /// Take a freshly accepted socket into a slot; at `max_conns` it is
    /// handed back (and accepting pauses until a slot frees).
    pub(crate) fn insert(&mut self, fd: OwnedFd) -> Result<ConnId, OwnedFd> {
        if self.open >= self.limits.max_conns {
            self.pause_accepting();
            return Err(fd);
        }
        let index = if let Some(i) = self.free.pop() {
            i
        } else {
            self.conns.push(Conn::new());
            (self.conns.len() - 1) as u32
        };
        let c = &mut self.conns[index as usize];
        c.fd = Some(fd);
        c.table = match &self.table {
            Some(t) if t.open && (index as usize) < t.fds.len() => TableEntry::AfterFirstSend,
            _ => TableEntry::Unused,
        };
        c.phase = Phase::Open;
        c.read = ReadSide::Open;
        c.want_writable = false;
        c.eof_owed = false;
        let id = ConnId {
            index,
            generation: c.generation,
        };
        self.open += 1;
        if self.open >= self.limits.max_conns {
            self.pause_accepting();
        }
        self.mark(index);
        Ok(id)
    }

    fn pause_accepting(&mut self) {
        if !self.accept_paused {
            self.accept_paused = true;
            self.listeners_dirty = true;
        }
    }

    /// Slots are free for a waiting connection.
    pub(crate) fn has_room(&self) -> bool {
        self.open < self.limits.max_conns
    }

    /// The live slot for `id`, if any.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.conns
            .get(id.index as usize)
            .filter(|c| c.generation == id.generation && c.phase != Phase::Free)
    }

    fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation && c.phase != Phase::Free)
    }

    /// The open connection `id`, if it is open (not closing).
    pub(crate) fn open_conn(&self, id: ConnId) -> Option<&Conn> {
        self.get(id).filter(|c| c.phase == Phase::Open)
    }

    /// The current id of slot `index` if its generation matches the low
    /// bits `generation` carried by a completion.
    pub(crate) fn id_for_completion(&self, index: usize, generation: u32) -> Option<ConnId> {
        let c = self.conns.get(index)?;
        (c.phase != Phase::Free && c.generation & GENERATION_MASK == generation).then_some(ConnId {
            index: index as u32,
            generation: c.generation,
        })
    }

    /// Write in place: `fill` gets at least `min` bytes of contiguous room
    /// and returns how many it wrote.
    pub(crate) fn send_with(
        &mut self,
        id: ConnId,
        min: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, SendError> {
        let max_outbound = self.limits.max_outbound;
        let chunk_size = self.chunks.chunk_size();
        let Some(c) = self
            .conns
            .get_mut(id.index as usize)
            .filter(|c| c.generation == id.generation && c.can_send())
        else {
            return Err(SendError::Closed);
        };
        if min > chunk_size || min > max_outbound {
            return Err(SendError::TooLarge);
        }
        let space = max_outbound - c.out.queued();
        if space < min.max(1) {
            c.want_writable = true;
            return Err(SendError::QueueFull);
        }
        let Some(room) = c.out.spare(&mut self.chunks, min) else {
            return Err(SendError::TooLarge);
        };
        let limit = room.len().min(space);
        let n = fill(&mut room[..limit]).min(limit);
        c.out.commit(&mut self.chunks, n);
        if n > 0 {
            self.mark(id.index);
        }
        Ok(n)
    }

    /// Bytes `send_with` may still queue on `id` (0 when closed).
    pub(crate) fn send_space(&self, id: ConnId) -> usize {
        self.get(id)
            .filter(|c| c.can_send())
            .map_or(0, |c| self.limits.max_outbound - c.out.queued())
    }

    /// A send on `id` was refused: call `on_writable` once it drains.
    pub(crate) fn want_writable(&mut self, id: ConnId) {
        if let Some(c) = self.get_mut(id) {
            c.want_writable = true;
        }
    }

    /// Stop delivering received bytes until `resume`.
    pub(crate) fn pause(&mut self, id: ConnId) -> bool {
        let Some(c) = self.get_mut(id).filter(|c| c.phase == Phase::Open) else {
            return false;
        };
        if c.read == ReadSide::Open {
            c.read = ReadSide::Paused;
            self.mark(id.index);
        }
        true
    }

    /// Deliver again: re-arm the receive, and hand over carried bytes.
    pub(crate) fn resume(&mut self, id: ConnId) -> bool {
        let Some(c) = self.get_mut(id).filter(|c| c.phase == Phase::Open) else {
            return false;
        };
        match c.read {
            ReadSide::Paused => c.read = ReadSide::Open,
            ReadSide::PausedEof => {
                c.read = ReadSide::Eof;
                c.eof_owed = true;
            }
            ReadSide::Open | ReadSide::Eof => {}
        }
        if (!c.carry.is_empty() || c.eof_owed) && !c.redeliver {
            c.redeliver = true;
            self.redeliver.push(id.index);
        }
        self.mark(id.index);
        true
    }

    /// Graceful close of an open connection.
    pub(crate) fn close(&mut self, index: u32) {
        let c = &mut self.conns[index as usize];
        if c.phase != Phase::Open {
            return;
        }
        c.phase = Phase::Draining;
        let carry = std::mem::take(&mut c.carry);
        self.carries.give(carry);
        self.mark(index);
    }

    /// End a connection now: cancel what is in flight, drop what is queued.
    /// `rst`: make the close send an RST (SO_LINGER 0).
    pub(crate) fn abort(&mut self, index: u32, rst: bool) {
        let c = &mut self.conns[index as usize];
        if matches!(c.phase, Phase::Free | Phase::Closing | Phase::Aborting) {
            return;
        }
        c.phase = Phase::Aborting;
        if rst {
            if let Some(fd) = c.fd.as_ref() {
                // Best effort: without it the close is a plain FIN.
                let _ = socket2::SockRef::from(fd).set_linger(Some(Duration::ZERO));
            }
        }
        let carry = std::mem::take(&mut c.carry);
        self.carries.give(carry);
        if !c.ops.send {
            c.out.clear(&mut self.chunks, &mut self.hdrs);
        }
        self.mark(index);
    }

    /// A SEND completed with `res`. Returns `(ok, partial)`.
    pub(crate) fn send_done(&mut self, index: usize, res: i32) -> (bool, bool) {
        let Some(c) = self.conns.get_mut(index) else {
            return (false, false);
        };
        c.send_ended(res > 0);
        let partial = if res > 0 {
            c.out.sent(res as usize, &mut self.chunks, &mut self.hdrs)
        } else {
            c.out.sent(0, &mut self.chunks, &mut self.hdrs);
            false
        };
        if res <= 0 || c.phase == Phase::Aborting {
            // An error, or a cancelled send of an aborting connection.
            c.out.clear(&mut self.chunks, &mut self.hdrs);
            if res <= 0 {
                self.abort(index as u32, false);
            }
        } else if c.want_writable
            && c.phase == Phase::Open
            && c.out.queued() <= self.limits.max_outbound / 2
        {
            c.want_writable = false;
            self.writable.push(ConnId {
                index: index as u32,
                generation: c.generation,
            });
        }
        self.mark(index as u32);
        (res > 0, partial)
    }

    /// The CLOSE completed: the slot waits for `on_closed`.
    pub(crate) fn close_done(&mut self, index: usize) {
        self.finished.push(index as u32);
    }

    /// Connections with a SEND in flight (checked while stopping).
    pub(crate) fn sending(&self) -> usize {
        self.conns.iter().filter(|c| c.ops.send).count()
    }

    /// Called for each `finished` slot after `on_closed` ran: the slot is reusable.
    pub(crate) fn release(&mut self, index: u32) -> ConnId {
        let c = &mut self.conns[index as usize];
        let id = ConnId {
            index,
            generation: c.generation,
        };
        c.phase = Phase::Free;
        c.table = TableEntry::Unused;
        c.generation = c.generation.wrapping_add(1) & GENERATION_MASK;
        c.out.clear(&mut self.chunks, &mut self.hdrs);
        let carry = std::mem::take(&mut c.carry);
        self.carries.give(carry);
        self.free.push(index);
        self.open -= 1;
        id
    }

    /// Accept again once slots are free and no accepted connection waits.
    pub(crate) fn maybe_resume_accepting(&mut self) {
        if self.accept_paused && self.has_room() && self.waiting.is_empty() {
            self.accept_paused = false;
            self.listeners_dirty = true;
        }
    }
}
