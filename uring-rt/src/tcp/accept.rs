//! Listeners: one multishot ACCEPT each, paused while the worker is at
//! `max_connections` (cancelled, re-armed once a slot frees) and backed off
//! after EMFILE/ENFILE/ENOMEM/ENOBUFS (a TIMEOUT, then ACCEPT again) instead
//! of re-arming in a hot loop while the process has no descriptor to give.

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

/// Where a listener's ACCEPT is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListenState {
    /// No ACCEPT in flight.
    Idle,
    /// The multishot ACCEPT is armed.
    Armed,
    /// Its cancel is pushed; waiting for the last completion.
    Cancelling,
    /// The back-off TIMEOUT is in flight.
    BackingOff,
}

/// What a listener needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListenOp {
    Accept,
    Cancel,
    Backoff,
}

pub(crate) struct Listener {
    pub(crate) sock: TcpListener,
    pub(crate) state: ListenState,
    /// The last ACCEPT failed for want of resources: back off before the next.
    pub(crate) backoff_due: bool,
    /// The back-off TIMEOUT's duration, boxed so its address is stable.
    pub(crate) backoff: Box<Timespec>,
}

impl Listener {
    pub(crate) fn new(sock: TcpListener) -> Listener {
        Listener {
            sock,
            state: ListenState::Idle,
            backoff_due: false,
            backoff: Box::new(Timespec::from(ACCEPT_BACKOFF)),
        }
    }

    /// The next op, given whether accepting is paused (at max_connections).
    pub(crate) fn next_op(&self, paused: bool) -> Option<ListenOp> {
        match self.state {
            ListenState::Idle if self.backoff_due => Some(ListenOp::Backoff),
            ListenState::Idle if !paused => Some(ListenOp::Accept),
            ListenState::Armed if paused => Some(ListenOp::Cancel),
            _ => None,
        }
    }

    pub(crate) fn started(&mut self, op: ListenOp) {
        self.state = match op {
            ListenOp::Accept => ListenState::Armed,
            ListenOp::Cancel => ListenState::Cancelling,
            ListenOp::Backoff => {
                self.backoff_due = false;
                ListenState::BackingOff
            }
        };
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
        assert_eq!(l.next_op(false), Some(ListenOp::Accept));
        assert_eq!(l.next_op(true), None, "paused before arming: stay idle");
        l.started(ListenOp::Accept);
        assert_eq!(l.next_op(false), None);
        assert_eq!(l.next_op(true), Some(ListenOp::Cancel));
        l.started(ListenOp::Cancel);
        assert_eq!(l.next_op(true), None);
        // The multishot ended with EMFILE.
        l.state = ListenState::Idle;
        l.backoff_due = true;
        assert_eq!(l.next_op(false), Some(ListenOp::Backoff));
        l.started(ListenOp::Backoff);
        assert_eq!(l.next_op(false), None, "waiting for the back-off");
        l.state = ListenState::Idle;
        assert_eq!(l.next_op(false), Some(ListenOp::Accept));
    }
}
