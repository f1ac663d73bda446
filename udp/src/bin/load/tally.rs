//! Request kinds and what the threads count: each thread keeps a plain
//! [`Tally`] and publishes part of it to its [`Live`] now and then, which
//! the main thread sums for the per-second lines.

use riptide_common::loadgen::run;

// Request kinds, indexing the counters below.
pub(crate) const CONNECT: usize = 0;
pub(crate) const ANNOUNCE: usize = 1;
pub(crate) const SCRAPE: usize = 2;
/// Response index for error responses.
pub(crate) const ERROR: usize = 3;
pub(crate) const KIND_NAMES: [&str; 4] = ["connect", "announce", "scrape", "error"];

/// What one thread publishes for the per-second lines: the responses by
/// kind (indexed like [`Tally::responses`]), requests sent, timeouts.
pub(crate) type Live = run::Live<LIVE_LEN>;
/// Counters in [`Live`].
pub(crate) const LIVE_LEN: usize = 6;
/// Index of requests sent in [`Live`].
pub(crate) const LIVE_SENT: usize = 4;
/// Index of timeouts in [`Live`].
pub(crate) const LIVE_TIMEOUTS: usize = 5;

/// What a thread counts; plain integers, published to [`Live`] now and then.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Tally {
    pub(crate) sent: [u64; 3],
    pub(crate) responses: [u64; 4],
    pub(crate) timeouts: u64,
    /// An answer after its request had timed out, or with an unknown id.
    pub(crate) late: u64,
    /// Paced mode: requests due while the window was full.
    pub(crate) skipped: u64,
    /// Answers that did not parse.
    pub(crate) malformed: u64,
    pub(crate) send_dropped: u64,
    pub(crate) io_errors: u64,
    /// Peers in announce answers.
    pub(crate) peers: u64,
}

impl Tally {
    pub(crate) fn sent_total(&self) -> u64 {
        self.sent.iter().sum()
    }

    pub(crate) fn responses_total(&self) -> u64 {
        self.responses.iter().sum()
    }

    pub(crate) fn publish(&self, live: &Live) {
        let r = self.responses;
        live.publish([r[0], r[1], r[2], r[3], self.sent_total(), self.timeouts]);
    }
}

impl run::Tally for Tally {
    fn add(&mut self, o: &Tally) {
        for i in 0..3 {
            self.sent[i] += o.sent[i];
        }
        for i in 0..4 {
            self.responses[i] += o.responses[i];
        }
        self.timeouts += o.timeouts;
        self.late += o.late;
        self.skipped += o.skipped;
        self.malformed += o.malformed;
        self.send_dropped += o.send_dropped;
        self.io_errors += o.io_errors;
        self.peers += o.peers;
    }
}
