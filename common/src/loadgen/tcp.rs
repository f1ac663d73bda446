//! What the TCP load generators (riptide-http-load, riptide-ws-load) share
//! about their connections: [`would_block`], why a connection fails
//! ([`Failure`]), and the errors counted by kind ([`ConnErrors`]).

use std::io;

/// A non-blocking socket has nothing to give or take now (or is still
/// connecting).
pub fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
    )
}

/// Why a connection is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A connect, read or write error (or a refused upgrade).
    Io,
    /// The server closed it (before a whole response, or at all).
    Closed,
    /// A TLS error.
    Tls,
    /// Bytes that are not what the protocol says, or more than fit.
    Malformed,
    /// No answer within `--timeout`.
    Timeout,
}

/// Errors on a thread's connections, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnErrors {
    /// Connect / read / write errors.
    pub io: u64,
    /// The server closed a connection early.
    pub closed: u64,
    /// TLS errors.
    pub tls: u64,
    /// Malformed answers.
    pub malformed: u64,
    /// Requests unanswered after `--timeout`.
    pub timeouts: u64,
}

impl ConnErrors {
    /// Counts one `why`.
    pub fn count(&mut self, why: Failure) {
        *match why {
            Failure::Io => &mut self.io,
            Failure::Closed => &mut self.closed,
            Failure::Tls => &mut self.tls,
            Failure::Malformed => &mut self.malformed,
            Failure::Timeout => &mut self.timeouts,
        } += 1;
    }

    /// Every kind together.
    pub fn total(&self) -> u64 {
        self.io + self.closed + self.tls + self.malformed + self.timeouts
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &ConnErrors) {
        *self = self.zip(o, |a, b| a + b);
    }

    /// `f` of each kind's counts in `self` and `o`.
    #[must_use]
    pub fn zip(&self, o: &ConnErrors, f: impl Fn(u64, u64) -> u64) -> ConnErrors {
        ConnErrors {
            io: f(self.io, o.io),
            closed: f(self.closed, o.closed),
            tls: f(self.tls, o.tls),
            malformed: f(self.malformed, o.malformed),
            timeouts: f(self.timeouts, o.timeouts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_by_kind() {
        let mut e = ConnErrors::default();
        for why in [Failure::Io, Failure::Tls, Failure::Tls, Failure::Timeout] {
            e.count(why);
        }
        assert_eq!((e.io, e.tls, e.timeouts, e.total()), (1, 2, 1, 4));
        let mut sum = e;
        sum.add(&e);
        assert_eq!(sum.total(), 8);
        assert_eq!(sum.zip(&e, |a, b| a - b), e);
        assert!(would_block(&io::ErrorKind::WouldBlock.into()));
        assert!(!would_block(&io::ErrorKind::BrokenPipe.into()));
    }
}
