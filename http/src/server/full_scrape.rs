//! The full scrape (a scrape without `info_hash`: every torrent), off
//! unless `[http] full_scrape = true`. It is heavy, so it is built rarely
//! and shared: every `full_scrape_interval` each worker publishes its
//! shard's part (counts sorted by hash); the first request after the
//! cached body got older than the interval merges the parts into a new
//! body (once per interval, whichever worker asks, under a lock no other
//! path takes), and every request in between is sent those same bytes (an
//! `Arc`, streamed as the connection drains). A client address may ask
//! once per interval on each worker.

use crate::protocol::{full_scrape_body_max_len, write_full_scrape_body, ScrapeStats};
use riptide_common::InfoHash;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One worker's part: its torrents' counts, sorted by hash.
pub type Part = Vec<(InfoHash, ScrapeStats)>;

/// Addresses remembered per worker for the rate limit; beyond, the oldest
/// are forgotten.
const MAX_REMEMBERED: usize = 1 << 16;

/// The parts and the cached body, shared by the workers.
pub struct FullScrape {
    interval: Duration,
    parts: Vec<Mutex<Arc<Part>>>,
    body: Mutex<Option<(Instant, Arc<Vec<u8>>)>>,
}

impl FullScrape {
    /// For `workers` workers, rebuilt at most every `interval`.
    pub fn new(workers: usize, interval: Duration) -> FullScrape {
        FullScrape {
            interval,
            parts: (0..workers).map(|_| Mutex::new(Arc::default())).collect(),
            body: Mutex::new(None),
        }
    }

    /// How often a body is rebuilt, a part published, and an address served.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Worker `worker`'s new part (sorted by hash).
    pub fn publish(&self, worker: usize, part: Part) {
        if let Some(slot) = self.parts.get(worker) {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(part);
        }
    }

    /// The body to send at `now`: the cached one, or a new one merged from
    /// the parts if that is older than the interval.
    pub fn body(&self, now: Instant) -> Arc<Vec<u8>> {
        let mut cached = self.body.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, body)) = cached.as_ref() {
            if now.saturating_duration_since(*at) < self.interval {
                return Arc::clone(body);
            }
        }
        let parts: Vec<Arc<Part>> = self
            .parts
            .iter()
            .map(|p| Arc::clone(&p.lock().unwrap_or_else(PoisonError::into_inner)))
            .collect();
        let files = merge(&parts);
        let mut body = vec![0; full_scrape_body_max_len(files.len())];
        let n = write_full_scrape_body(&mut body, &files).unwrap_or(0);
        body.truncate(n);
        let body = Arc::new(body);
        *cached = Some((now, Arc::clone(&body)));
        body
    }
}

/// The sorted parts merged into one sorted list (workers own disjoint
/// torrents, so no hash is repeated).
fn merge(parts: &[Arc<Part>]) -> Part {
    let mut at = vec![0usize; parts.len()];
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    loop {
        let next = (0..parts.len())
            .filter(|&i| at[i] < parts[i].len())
            .min_by_key(|&i| parts[i][at[i]].0);
        let Some(i) = next else {
            return out;
        };
        out.push(parts[i][at[i]]);
        at[i] += 1;
    }
}

/// One worker's memory of who asked when.
#[derive(Default)]
pub struct RateLimit {
    last: HashMap<IpAddr, Instant>,
}

impl RateLimit {
    /// Whether `client` may have a full scrape at `now` (and if so, it is
    /// remembered).
    pub fn allow(&mut self, client: IpAddr, now: Instant, interval: Duration) -> bool {
        if let Some(at) = self.last.get(&client) {
            if now.saturating_duration_since(*at) < interval {
                return false;
            }
        }
        if self.last.len() >= MAX_REMEMBERED {
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < interval);
            if self.last.len() >= MAX_REMEMBERED {
                self.last.clear();
            }
        }
        self.last.insert(client, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(n: u32) -> ScrapeStats {
        ScrapeStats {
            seeders: n,
            completed: 0,
            leechers: 1,
        }
    }

    #[test]
    fn parts_merge_sorted_and_the_body_is_cached_for_an_interval() {
        let f = FullScrape::new(3, Duration::from_secs(10));
        let h = |b: u8| InfoHash([b; 20]);
        f.publish(0, vec![(h(1), st(1)), (h(7), st(7))]);
        f.publish(2, vec![(h(3), st(3)), (h(9), st(9))]);
        let t0 = Instant::now();
        let body = f.body(t0);
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with("d5:filesd20:"), "{text}");
        let at: Vec<usize> = [1u8, 3, 7, 9]
            .iter()
            .map(|b| body.windows(20).position(|w| w == [*b; 20]).unwrap())
            .collect();
        assert!(at.windows(2).all(|p| p[0] < p[1]), "sorted: {at:?}");
        f.publish(1, vec![(h(5), st(5))]);
        assert!(Arc::ptr_eq(&body, &f.body(t0 + Duration::from_secs(9))));
        let newer = f.body(t0 + Duration::from_secs(10));
        assert!(newer.windows(20).any(|w| w == [5; 20]));
    }

    #[test]
    fn an_address_is_served_once_per_interval() {
        let mut r = RateLimit::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        let i = Duration::from_secs(60);
        assert!(r.allow(a, t0, i));
        assert!(!r.allow(a, t0 + Duration::from_secs(59), i));
        assert!(r.allow(b, t0 + Duration::from_secs(59), i));
        assert!(r.allow(a, t0 + Duration::from_secs(60), i));
    }
}
