//! Latency [`Histogram`] for the load generators: fixed size, so recording
//! allocates nothing.

use std::time::Duration;

/// Log-linear latency histogram in microseconds: 8 buckets per power of two.
pub struct Histogram {
    buckets: [u64; 512],
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self { buckets: [0; 512] }
    }

    fn index(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let e = 63 - u64::from(us.leading_zeros());
        let sub = (us >> (e - 3)) & 7;
        (((e - 2) * 8 + sub) as usize).min(511)
    }

    /// Lower bound of bucket `i`, in microseconds.
    fn lower(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let e = (i / 8 + 2) as u64;
        (8 + (i % 8) as u64) << (e - 3)
    }

    /// Count one latency.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[Self::index(us)] += 1;
    }

    /// Add another histogram's counts (e.g. another thread's).
    pub fn add(&mut self, o: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a += b;
        }
    }

    /// The latency (µs) below which `p` (0..=1) of the counts fall.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Self::lower(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for us in 0..100_000_u64 {
            let i = Histogram::index(us);
            assert!(i >= last);
            assert!(Histogram::lower(i) <= us, "{us}");
            last = i;
        }
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.percentile(0.5).unwrap();
        assert!((40..=50).contains(&p50), "{p50}");
        assert!(Histogram::new().percentile(0.5).is_none());
    }
}
