//! Request kinds and what the threads count: each thread keeps a plain
//! [`Tally`] and publishes part of it to its [`Live`] now and then, which
//! the main thread sums for the per-second lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

// Request kinds, indexing the counters below.
pub(crate) const CONNECT: usize = 0;
pub(crate) const ANNOUNCE: usize = 1;
pub(crate) const SCRAPE: usize = 2;
/// Response index for error responses.
pub(crate) const ERROR: usize = 3;
pub(crate) const KIND_NAMES: [&str; 4] = ["connect", "announce", "scrape", "error"];

/// Counters one thread publishes for the per-second lines. Own cache lines.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) sent: AtomicU64,
    pub(crate) responses: [AtomicU64; 4],
    pub(crate) timeouts: AtomicU64,
}

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

    pub(crate) fn add(&mut self, o: &Tally) {
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

    pub(crate) fn publish(&self, live: &Live) {
        live.sent.store(self.sent_total(), Ordering::Relaxed);
        for (a, &v) in live.responses.iter().zip(&self.responses) {
            a.store(v, Ordering::Relaxed);
        }
        live.timeouts.store(self.timeouts, Ordering::Relaxed);
    }
}

/// Sum of the published counters: (sent, responses by kind, timeouts).
pub(crate) fn sum_live(lives: &[Arc<Live>]) -> (u64, [u64; 4], u64) {
    let mut sent = 0;
    let mut responses = [0; 4];
    let mut timeouts = 0;
    for l in lives {
        sent += l.sent.load(Ordering::Relaxed);
        for (r, a) in responses.iter_mut().zip(&l.responses) {
            *r += a.load(Ordering::Relaxed);
        }
        timeouts += l.timeouts.load(Ordering::Relaxed);
    }
    (sent, responses, timeouts)
}
