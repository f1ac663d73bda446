//! What the threads count: each keeps a plain [`Tally`] and publishes part
//! of it to its [`Live`] now and then, which the main thread sums for the
//! per-second lines.

use riptide_common::loadgen::run;
use riptide_common::loadgen::tcp::ConnErrors;

/// Request kinds, indexing `sent` and `ok`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Announce = 0,
    Scrape = 1,
}

/// What one thread publishes for the per-second lines: ok, errors,
/// connections.
pub(crate) type Live = run::Live<3>;

/// What a thread counts; plain integers.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Tally {
    pub(crate) sent: [u64; 2],
    /// Full HTTP 200 responses with a bencoded tracker answer.
    pub(crate) ok: [u64; 2],
    /// HTTP 200 with a bencoded `failure reason`.
    pub(crate) failures: u64,
    /// A status other than 200.
    pub(crate) http_errors: u64,
    /// Connection errors: malformed is unreadable HTTP, a body that is not
    /// bencode, a response larger than the receive buffer, bytes nobody
    /// asked for; closed is the server closing before a whole response.
    pub(crate) conn: ConnErrors,
    /// Paced mode: requests due while no connection was free.
    pub(crate) skipped: u64,
    /// TCP connections opened.
    pub(crate) connections: u64,
    pub(crate) handshakes_full: u64,
    pub(crate) handshakes_resumed: u64,
    /// Peers in announce answers.
    pub(crate) peers: u64,
}

impl Tally {
    pub(crate) fn ok_total(&self) -> u64 {
        self.ok.iter().sum()
    }

    pub(crate) fn errors(&self) -> u64 {
        self.failures + self.http_errors + self.conn.total()
    }

    /// Every request that got a whole HTTP response, good or not.
    pub(crate) fn responses(&self) -> u64 {
        self.ok_total() + self.failures + self.http_errors
    }

    pub(crate) fn publish(&self, live: &Live) {
        live.publish([self.ok_total(), self.errors(), self.connections]);
    }
}

impl run::Tally for Tally {
    fn add(&mut self, o: &Tally) {
        for i in 0..2 {
            self.sent[i] += o.sent[i];
            self.ok[i] += o.ok[i];
        }
        self.failures += o.failures;
        self.http_errors += o.http_errors;
        self.conn.add(&o.conn);
        self.skipped += o.skipped;
        self.connections += o.connections;
        self.handshakes_full += o.handshakes_full;
        self.handshakes_resumed += o.handshakes_resumed;
        self.peers += o.peers;
    }
}
