//! One connection slot: its life as an explicit [`Phase`], what its read
//! side is doing ([`ReadSide`]), which operations the kernel holds
//! ([`InFlight`]) and the one decision every loop turn asks of it:
//! [`Conn::next_op`], the next SQE it needs. The flush pushes that op and
//! reports back with [`Conn::started`]; completions update the same fields.
//! Nothing here touches the kernel.

use crate::tcp::carry::Carry;
use crate::tcp::outbound::Outbound;
use std::os::fd::OwnedFd;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The slot holds no connection.
    Free,
    /// The handler receives and sends.
    Open,
    /// `close` was called: queued bytes still go out, then SHUTDOWN(SHUT_WR).
    Draining,
    /// The write side is shut (or its SHUTDOWN is in flight): what the peer
    /// still sends is read and discarded until EOF or the linger deadline,
    /// so unread bytes never turn our last response into an RST.
    Lingering,
    /// Ending now: cancel what is in flight, drop what is queued, then close.
    Aborting,
    /// The CLOSE is in flight; `on_closed` follows its completion.
    Closing,
}

/// The read side of an open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadSide {
    /// Bytes are delivered as they arrive.
    Open,
    /// The handler paused receiving: the receive is cancelled (bytes it
    /// already had go to the carry) until `resume_recv`.
    Paused,
    /// The peer sent EOF (half-close).
    Eof,
    /// The peer sent EOF while receiving was paused: `on_peer_closed`
    /// waits until the handler resumes and has seen what was kept.
    PausedEof,
}

impl ReadSide {
    /// The peer has not sent EOF yet.
    pub(crate) fn before_eof(self) -> bool {
        matches!(self, ReadSide::Open | ReadSide::Paused)
    }
}

/// Whether a connection's socket is in the worker's file table (at the
/// slot's own entry), so that its SENDs skip the file lookup and reference
/// count (a multishot RECV looks its file up once per arm). The descriptor
/// stays open beside it: `shutdown(2)` and `SO_LINGER` need one
/// (IORING_OP_SHUTDOWN would run on an io-wq thread). Going in and out
/// costs two ops, more than one SEND saves, so a connection goes in only
/// once it has answered once and stays open: a keep-alive connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableEntry {
    /// Not in the table: ops name the descriptor.
    Unused,
    /// Not yet: wanted once a send completes while the connection is open.
    AfterFirstSend,
    /// To be put in with a FILES_UPDATE before its first other op.
    Wanted,
    /// In the table (or its FILES_UPDATE is in flight ahead of every op that
    /// uses it: the ring issues a connection's SQEs in order); taken out by
    /// a CLOSE of the entry before the descriptor's CLOSE.
    Held,
}

/// The operations of a slot the kernel holds, and cancels already asked for.
/// (Facts about the ring, one per kind of op; the connection's life is
/// [`Phase`].)
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub(crate) recv: bool,
    pub(crate) send: bool,
    pub(crate) cancel_recv: bool,
    pub(crate) cancel_send: bool,
}

impl InFlight {
    /// No operation on the socket is in flight (cancels only name ops).
    pub(crate) fn none(self) -> bool {
        !self.recv && !self.send
    }
}

/// The next operation a slot needs (an SQE, except `Shutdown`: the kernel
/// runs IORING_OP_SHUTDOWN on an io-wq thread, so the worker calls the
/// non-blocking `shutdown(2)` itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// FILES_UPDATE: put the socket in the file table.
    Register,
    /// CLOSE of the socket's file-table entry (the descriptor stays).
    Unregister,
    ArmRecv,
    Send,
    CancelRecv,
    CancelSend,
    Shutdown,
    Close,
}

/// One connection slot. Small on purpose: an idle connection holds this,
/// its deadline link and (once it has sent) an empty chunk queue. The
/// bools are list memberships and owed callbacks; the life is `phase`.
#[allow(clippy::struct_excessive_bools)]
pub(crate) struct Conn {
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) generation: u32,
    pub(crate) phase: Phase,
    pub(crate) read: ReadSide,
    pub(crate) ops: InFlight,
    pub(crate) table: TableEntry,
    /// The slot is on the dirty list (it may need an SQE).
    pub(crate) dirty: bool,
    /// The slot is on the redeliver list (resumed with carried bytes).
    pub(crate) redeliver: bool,
    /// A send was refused for want of space: call `on_writable` once the
    /// queue drains below half the bound.
    pub(crate) want_writable: bool,
    /// EOF came while paused: `on_peer_closed` is owed once the handler
    /// resumed and was handed the kept bytes.
    pub(crate) eof_owed: bool,
    /// Bytes received but not yet consumed by the handler.
    pub(crate) carry: Carry,
    pub(crate) out: Outbound,
}

impl Conn {
    pub(crate) fn new() -> Conn {
        Conn {
            fd: None,
            generation: 0,
            phase: Phase::Free,
            read: ReadSide::Open,
            ops: InFlight::default(),
            table: TableEntry::Unused,
            dirty: false,
            redeliver: false,
            want_writable: false,
            eof_owed: false,
            carry: Carry::default(),
            out: Outbound::default(),
        }
    }

    /// Sending is allowed (open, including after the peer's half-close).
    pub(crate) fn can_send(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The next operation this slot needs, given what is in flight; `None`
    /// when it waits for a completion (or needs nothing).
    pub(crate) fn next_op(&self) -> Option<Op> {
        let ops = self.ops;
        // Into the file table before anything else (an open connection
        // only: one closing will not send much more); out of it right
        // before the descriptor's CLOSE.
        let close = if self.table == TableEntry::Held {
            Op::Unregister
        } else {
            Op::Close
        };
        if self.table == TableEntry::Wanted && self.phase == Phase::Open {
            return Some(Op::Register);
        }
        let reading = self.read.before_eof() && !ops.recv;
        let sendable = self.out.has_unsent() && !ops.send;
        match self.phase {
            Phase::Free | Phase::Closing => None,
            Phase::Open => {
                if self.read == ReadSide::Open && !ops.recv {
                    Some(Op::ArmRecv)
                } else if self.read != ReadSide::Open && ops.recv && !ops.cancel_recv {
                    Some(Op::CancelRecv)
                } else if sendable {
                    Some(Op::Send)
                } else {
                    None
                }
            }
            Phase::Draining => {
                if reading {
                    Some(Op::ArmRecv)
                } else if sendable {
                    Some(Op::Send)
                } else if !self.out.has_unsent() && !ops.send {
                    Some(Op::Shutdown)
                } else {
                    None
                }
            }
            Phase::Lingering => {
                if reading {
                    Some(Op::ArmRecv)
                } else if !self.read.before_eof() && ops.none() {
                    Some(close)
                } else {
                    None
                }
            }
            Phase::Aborting => {
                if ops.recv && !ops.cancel_recv {
                    Some(Op::CancelRecv)
                } else if ops.send && !ops.cancel_send {
                    Some(Op::CancelSend)
                } else if ops.none() {
                    Some(close)
                } else {
                    None
                }
            }
        }
    }

    /// `op` was pushed to the ring.
    pub(crate) fn started(&mut self, op: Op) {
        match op {
            Op::Register => self.table = TableEntry::Held,
            Op::Unregister => self.table = TableEntry::Unused,
            Op::ArmRecv => self.ops.recv = true,
            Op::Send => self.ops.send = true,
            Op::CancelRecv => self.ops.cancel_recv = true,
            Op::CancelSend => self.ops.cancel_send = true,
            Op::Shutdown => self.phase = Phase::Lingering,
            Op::Close => self.phase = Phase::Closing,
        }
    }

    /// The multishot receive ended (its last completion came).
    pub(crate) fn recv_ended(&mut self) {
        self.ops.recv = false;
        self.ops.cancel_recv = false;
    }

    /// The send in flight completed (`ok`: it sent bytes).
    pub(crate) fn send_ended(&mut self, ok: bool) {
        self.ops.send = false;
        self.ops.cancel_send = false;
        if ok && self.phase == Phase::Open && self.table == TableEntry::AfterFirstSend {
            self.table = TableEntry::Wanted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(phase: Phase, read: ReadSide, ops: InFlight) -> Conn {
        let mut c = Conn::new();
        c.phase = phase;
        c.read = read;
        c.ops = ops;
        c
    }

    #[test]
    fn an_open_connection_receives_and_a_paused_one_cancels_its_receive() {
        let idle = InFlight::default();
        let recv = InFlight { recv: true, ..idle };
        assert_eq!(
            conn(Phase::Open, ReadSide::Open, idle).next_op(),
            Some(Op::ArmRecv)
        );
        assert_eq!(conn(Phase::Open, ReadSide::Open, recv).next_op(), None);
        assert_eq!(
            conn(Phase::Open, ReadSide::Paused, recv).next_op(),
            Some(Op::CancelRecv)
        );
        let cancelling = InFlight {
            cancel_recv: true,
            ..recv
        };
        assert_eq!(
            conn(Phase::Open, ReadSide::Paused, cancelling).next_op(),
            None
        );
        assert_eq!(conn(Phase::Open, ReadSide::Eof, idle).next_op(), None);
    }

    #[test]
    fn a_graceful_close_shuts_down_lingers_until_eof_then_closes() {
        let idle = InFlight::default();
        let mut c = conn(Phase::Draining, ReadSide::Paused, idle);
        // A paused connection reads again to discard until EOF.
        assert_eq!(c.next_op(), Some(Op::ArmRecv));
        c.started(Op::ArmRecv);
        assert_eq!(c.next_op(), Some(Op::Shutdown));
        c.started(Op::Shutdown);
        assert_eq!(c.phase, Phase::Lingering);
        assert_eq!(c.next_op(), None, "still reading");
        c.recv_ended();
        c.read = ReadSide::Eof;
        assert_eq!(c.next_op(), Some(Op::Close));
        c.started(Op::Close);
        assert_eq!(c.next_op(), None);
    }

    #[test]
    fn a_socket_goes_into_the_table_first_and_out_right_before_its_close() {
        let idle = InFlight::default();
        let mut c = conn(Phase::Open, ReadSide::Open, idle);
        c.table = TableEntry::AfterFirstSend;
        assert_eq!(c.next_op(), Some(Op::ArmRecv));
        c.started(Op::ArmRecv);
        c.started(Op::Send);
        c.send_ended(false);
        assert_eq!(c.table, TableEntry::AfterFirstSend, "a failed send");
        c.started(Op::Send);
        c.send_ended(true);
        assert_eq!(c.table, TableEntry::Wanted);
        assert_eq!(c.next_op(), Some(Op::Register));
        c.started(Op::Register);
        assert_eq!(c.table, TableEntry::Held);
        assert_eq!(c.next_op(), None);
        c.phase = Phase::Aborting;
        assert_eq!(c.next_op(), Some(Op::CancelRecv));
        c.started(Op::CancelRecv);
        assert_eq!(c.next_op(), None, "the receive is still in flight");
        c.recv_ended();
        assert_eq!(c.next_op(), Some(Op::Unregister));
        c.started(Op::Unregister);
        assert_eq!(c.table, TableEntry::Unused);
        assert_eq!(c.next_op(), Some(Op::Close));
        c.started(Op::Close);
        assert_eq!(c.next_op(), None);
        // Closing: never put in.
        let mut c = conn(Phase::Draining, ReadSide::Eof, idle);
        c.table = TableEntry::Wanted;
        assert_eq!(c.next_op(), Some(Op::Shutdown));
        c.started(Op::Shutdown);
        assert_eq!(c.next_op(), Some(Op::Close));
    }

    #[test]
    fn an_abort_cancels_both_ops_then_closes() {
        let both = InFlight {
            recv: true,
            send: true,
            ..InFlight::default()
        };
        let mut c = conn(Phase::Aborting, ReadSide::Open, both);
        assert_eq!(c.next_op(), Some(Op::CancelRecv));
        c.started(Op::CancelRecv);
        assert_eq!(c.next_op(), Some(Op::CancelSend));
        c.started(Op::CancelSend);
        assert_eq!(c.next_op(), None);
        c.recv_ended();
        c.send_ended(false);
        assert_eq!(c.next_op(), Some(Op::Close));
    }
}
