//! What the threads count: each keeps a plain [`Tally`] and publishes part
//! of it to its [`Live`] now and then, which the main thread sums for the
//! per-second lines.

use riptide_common::loadgen::run;
use riptide_common::loadgen::tcp::ConnErrors;

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
    /// Connection errors: malformed is text that is not a tracker message,
    /// binary messages, bad frames; io includes refused upgrades; closed
    /// is a close frame or EOF; timeouts are announces unanswered after
    /// `--timeout`, and connects or upgrades slower.
    pub(crate) conn: ConnErrors,
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
        self.failures + self.conn.total()
    }

    /// `self - o`, counter by counter.
    pub(crate) fn minus(&self, o: &Tally) -> Tally {
        self.zip(o, |a, b| a - b)
    }

    /// `f` of each counter of `self` and `o`.
    fn zip(&self, o: &Tally, f: impl Fn(u64, u64) -> u64) -> Tally {
        Tally {
            announces_sent: f(self.announces_sent, o.announces_sent),
            answers_sent: f(self.answers_sent, o.answers_sent),
            replies: f(self.replies, o.replies),
            unmatched_replies: f(self.unmatched_replies, o.unmatched_replies),
            offers: f(self.offers, o.offers),
            answers: f(self.answers, o.answers),
            failures: f(self.failures, o.failures),
            conn: self.conn.zip(&o.conn, &f),
            connections: f(self.connections, o.connections),
            upgraded: f(self.upgraded, o.upgraded),
            pings: f(self.pings, o.pings),
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
        *self = self.zip(o, |a, b| a + b);
    }
}
