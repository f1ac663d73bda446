//! What the threads count: each keeps a plain [`Tally`] and publishes part
//! of it to its [`Live`] now and then, which the main thread sums for the
//! per-second lines.

use riptide_common::loadgen::run;

/// What one thread publishes for the per-second lines: replies, offers,
/// answers, errors, upgraded.
pub(crate) type Live = run::Live<LIVE_LEN>;
/// Counters in [`Live`].
pub(crate) const LIVE_LEN: usize = 5;

/// What a thread counts; plain integers.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Tally {
    pub(crate) announces_sent: u64,
    pub(crate) answers_sent: u64,
    /// Announce replies (to our announces, and any a tracker sends to an
    /// answer: aquatic_ws does, riptide-ws does not).
    pub(crate) replies: u64,
    /// Replies that did not match an announce in flight (to answers).
    pub(crate) unmatched_replies: u64,
    pub(crate) offers: u64,
    pub(crate) answers: u64,
    /// `failure reason` messages.
    pub(crate) failures: u64,
    /// Text that is not a tracker message, binary messages, bad frames.
    pub(crate) malformed: u64,
    /// connect / read / write errors, refused upgrades.
    pub(crate) io_errors: u64,
    /// The server closed the connection (close frame or EOF).
    pub(crate) closed: u64,
    pub(crate) tls_errors: u64,
    /// Announces unanswered after `--timeout`, connects or upgrades slower.
    pub(crate) timeouts: u64,
    /// TCP connections opened, and upgraded.
    pub(crate) connections: u64,
    pub(crate) upgraded: u64,
    pub(crate) pings: u64,
}

impl Tally {
    pub(crate) fn messages(&self) -> u64 {
        self.replies + self.offers + self.answers
    }

    pub(crate) fn errors(&self) -> u64 {
        self.failures
            + self.malformed
            + self.io_errors
            + self.closed
            + self.tls_errors
            + self.timeouts
    }

    /// `self - o`, counter by counter.
    pub(crate) fn minus(&self, o: &Tally) -> Tally {
        Tally {
            announces_sent: self.announces_sent - o.announces_sent,
            answers_sent: self.answers_sent - o.answers_sent,
            replies: self.replies - o.replies,
            unmatched_replies: self.unmatched_replies - o.unmatched_replies,
            offers: self.offers - o.offers,
            answers: self.answers - o.answers,
            failures: self.failures - o.failures,
            malformed: self.malformed - o.malformed,
            io_errors: self.io_errors - o.io_errors,
            closed: self.closed - o.closed,
            tls_errors: self.tls_errors - o.tls_errors,
            timeouts: self.timeouts - o.timeouts,
            connections: self.connections - o.connections,
            upgraded: self.upgraded - o.upgraded,
            pings: self.pings - o.pings,
        }
    }

    pub(crate) fn publish(&self, live: &Live) {
        live.publish([
            self.replies,
            self.offers,
            self.answers,
            self.errors(),
            self.upgraded,
        ]);
    }
}

impl run::Tally for Tally {
    fn add(&mut self, o: &Tally) {
        self.announces_sent += o.announces_sent;
        self.answers_sent += o.answers_sent;
        self.replies += o.replies;
        self.unmatched_replies += o.unmatched_replies;
        self.offers += o.offers;
        self.answers += o.answers;
        self.failures += o.failures;
        self.malformed += o.malformed;
        self.io_errors += o.io_errors;
        self.closed += o.closed;
        self.tls_errors += o.tls_errors;
        self.timeouts += o.timeouts;
        self.connections += o.connections;
        self.upgraded += o.upgraded;
        self.pings += o.pings;
    }
}
