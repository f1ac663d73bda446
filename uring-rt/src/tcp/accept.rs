//! Listeners: [`ACCEPTS`] single-shot ACCEPTs in flight each, every one
//! with its own address buffer (so the peer's address comes with the
//! connection, with no `getpeername` per accept), re-armed as each
//! completes; all cancelled while the worker is at `max_connections`
//! (re-armed once a slot frees) and backed off after
//! EMFILE/ENFILE/ENOMEM/ENOBUFS (a TIMEOUT, then ACCEPT again) instead of
//! re-arming in a hot loop while the process has no descriptor to give.

use io_uring::types::Timespec;
use std::net::TcpListener;
use std::time::Duration;

/// How long a listener waits after an ACCEPT failed for want of resources.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A listener registered with `Ctx::add_listener`, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u32);

impl ListenerId {
    /// The listener's index on this worker (0, 1, ... in the order added).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// ACCEPTs in flight per listener: a turn takes up to this many new
/// connections from each listener's backlog (each re-armed ACCEPT is tried
/// at once when it is submitted, so a burst drains over a few turns).
pub(crate) const ACCEPTS: usize = 8;

/// What a listener is doing besides accepting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListenState {
    /// Accepting: ACCEPTs are (or are about to be) in flight.
    Open,
    /// Paused: the in-flight ACCEPTs are being cancelled, or are gone.
    Paused,
    /// The back-off TIMEOUT is in flight; no ACCEPT is.
    BackingOff,
}

/// What a listener needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListenOp {
    /// Arm the ACCEPT of address slot `k`.
    Accept(usize),
    /// Cancel the ACCEPT of address slot `k`.
    Cancel(usize),
    Backoff,
}

/// Where one ACCEPT writes its peer's address.
#[derive(Clone, Copy)]
pub(crate) struct AcceptAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

pub(crate) struct Listener {
    pub(crate) sock: TcpListener,
    pub(crate) state: ListenState,
    /// Bit `k`: the ACCEPT of address slot `k` is in flight.
    in_flight: u8,
    /// Bit `k`: the ACCEPT of slot `k` has its cancel pushed.
    cancelled: u8,
    /// An ACCEPT failed for want of resources: back off before the next.
    pub(crate) backoff_due: bool,
    /// The back-off TIMEOUT's duration, boxed so its address is stable.
    pub(crate) backoff: Box<Timespec>,
    /// One address buffer per ACCEPT, boxed so their addresses are stable
    /// while the kernel writes them.
    pub(crate) addrs: Box<[AcceptAddr; ACCEPTS]>,
}

impl Listener {
    pub(crate) fn new(sock: TcpListener) -> Listener {
        let empty = AcceptAddr {
            storage: crate::socket::zeroed_storage(),
            len: 0,
        };
        Listener {
            sock,
            state: ListenState::Open,
            in_flight: 0,
            cancelled: 0,
            backoff_due: false,
            backoff: Box::new(Timespec::from(ACCEPT_BACKOFF)),
            addrs: Box::new([empty; ACCEPTS]),
        }
    }

    /// The next op, given whether accepting is paused (at max_connections).
    pub(crate) fn next_op(&mut self, paused: bool) -> Option<ListenOp> {
        if paused && self.state == ListenState::Open {
            self.state = ListenState::Paused;
        }
        match self.state {
            ListenState::BackingOff => None,
            ListenState::Paused => {
                let k = (self.in_flight & !self.cancelled).trailing_zeros() as usize;
                if k < ACCEPTS {
                    return Some(ListenOp::Cancel(k));
                }
                if !paused && self.in_flight == 0 {
                    self.state = ListenState::Open;
                    return self.next_op(paused);
                }
                None
            }
            ListenState::Open if self.backoff_due => {
                // Back off once every ACCEPT has come back: cancel the ones
                // still waiting (a wake-up goes to one ACCEPT at a time, so
                // those might sleep through the descriptors coming back).
                let k = (self.in_flight & !self.cancelled).trailing_zeros() as usize;
                if k < ACCEPTS {
                    Some(ListenOp::Cancel(k))
                } else {
                    (self.in_flight == 0).then_some(ListenOp::Backoff)
                }
            }
            ListenState::Open => {
                let k = (!self.in_flight).trailing_zeros() as usize;
                (k < ACCEPTS).then_some(ListenOp::Accept(k))
            }
        }
    }

    pub(crate) fn started(&mut self, op: ListenOp) {
        match op {
            ListenOp::Accept(k) => self.in_flight |= 1 << k,
            ListenOp::Cancel(k) => self.cancelled |= 1 << k,
            ListenOp::Backoff => {
                self.backoff_due = false;
                self.state = ListenState::BackingOff;
            }
        }
    }

    /// The ACCEPT of slot `k` completed (with a connection or not).
    pub(crate) fn completed(&mut self, k: usize) {
        self.in_flight &= !(1 << k);
        self.cancelled &= !(1 << k);
    }

    /// The back-off TIMEOUT ended.
    pub(crate) fn backed_off(&mut self) {
        self.state = ListenState::Open;
    }

    /// ACCEPTs in flight.
    #[cfg(test)]
    fn in_flight(&self) -> u32 {
        self.in_flight.count_ones()
    }
}

/// An ACCEPT error after which the listener backs off instead of arming
/// again at once: everything but a connection that went away before it was
/// taken (or an interruption). EMFILE/ENFILE/ENOMEM/ENOBUFS mean "no
/// resources now"; anything else (a policy's EPERM, EINVAL) would fail
/// again at once, and re-arming would spin.
pub(crate) fn backs_off(errno: i32) -> bool {
    !matches!(
        errno,
        libc::ECONNABORTED | libc::EINTR | libc::EAGAIN | libc::ECANCELED
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_pauses_backs_off_and_resumes() {
        let mut l = Listener::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let arm = |l: &mut Listener, paused| {
            let mut ops = Vec::new();
            while let Some(op) = l.next_op(paused) {
                l.started(op);
                ops.push(op);
            }
            ops
        };
        assert_eq!(arm(&mut l, false).len(), ACCEPTS, "every slot armed");
        assert_eq!(l.in_flight(), ACCEPTS as u32);
        // Slot 3 accepted a connection: re-armed alone.
        l.completed(3);
        assert_eq!(arm(&mut l, false), [ListenOp::Accept(3)]);
        // At max_connections: every ACCEPT is cancelled, once.
        let cancels = arm(&mut l, true);
        assert_eq!(cancels.len(), ACCEPTS);
        assert!(cancels.iter().all(|op| matches!(op, ListenOp::Cancel(_))));
        assert_eq!(arm(&mut l, true), []);
        // A slot freed before the cancels came back: still nothing to arm.
        assert_eq!(arm(&mut l, false), []);
        for k in 0..ACCEPTS {
            l.completed(k);
        }
        assert_eq!(arm(&mut l, true), [], "paused and idle: stay idle");
        assert_eq!(arm(&mut l, false).len(), ACCEPTS, "resumed");
        // EMFILE: the others are cancelled, and the back-off waits for
        // every ACCEPT to come back.
        l.backoff_due = true;
        l.completed(0);
        assert_eq!(arm(&mut l, false).len(), ACCEPTS - 1, "the rest cancelled");
        assert_eq!(arm(&mut l, false), []);
        for k in 1..ACCEPTS {
            l.completed(k);
        }
        assert_eq!(arm(&mut l, false), [ListenOp::Backoff]);
        assert_eq!(arm(&mut l, false), [], "waiting for the back-off");
        l.backed_off();
        assert_eq!(arm(&mut l, false).len(), ACCEPTS);
    }
}
