//! How long a target takes to start answering, as a small fixed-bucket histogram: the p95 that
//! hedging's `hedge_after_ms = "auto"` waits for. An EWMA (kept in [`super::local`] for
//! routers) says nothing about the tail; a histogram of 24 counters does, at the cost of one
//! increment per answer. Counts halve once they pass a cap, so the estimate follows a target
//! whose speed changes instead of averaging over its whole life.

use std::time::Duration;

/// Upper bounds of the buckets, in milliseconds; a sample above the last lands in it too.
const BOUNDS_MS: [u64; 24] = [
    10, 20, 30, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000,
    5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 60_000,
];

/// Samples before an estimate is given: fewer say nothing about a tail.
const MIN_SAMPLES: u32 = 5;

/// Counts halve past this many samples.
const DECAY_AT: u32 = 512;

#[derive(Debug, Default, Clone)]
pub struct FirstAnswerHistogram {
    counts: [u32; BOUNDS_MS.len()],
    total: u32,
}

impl FirstAnswerHistogram {
    pub fn record(&mut self, took: Duration) {
        let ms = took.as_millis() as u64;
        let at = BOUNDS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BOUNDS_MS.len() - 1);
        self.counts[at] += 1;
        self.total += 1;
        if self.total >= DECAY_AT {
            self.total = 0;
            for count in &mut self.counts {
                *count /= 2;
                self.total += *count;
            }
        }
    }

    /// The bucket bound under which `quantile` of the samples fall, once there are enough.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        if self.total < MIN_SAMPLES {
            return None;
        }
        let wanted = (f64::from(self.total) * quantile).ceil() as u32;
        let mut seen = 0;
        for (count, bound) in self.counts.iter().zip(BOUNDS_MS) {
            seen += count;
            if seen >= wanted {
                return Some(Duration::from_millis(bound));
            }
        }
        Some(Duration::from_millis(BOUNDS_MS[BOUNDS_MS.len() - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_follows_the_tail_not_the_mean() {
        let mut h = FirstAnswerHistogram::default();
        assert_eq!(h.quantile(0.95), None, "no estimate from nothing");
        for _ in 0..90 {
            h.record(Duration::from_millis(40));
        }
        for _ in 0..10 {
            h.record(Duration::from_millis(900));
        }
        assert_eq!(h.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(h.quantile(0.95), Some(Duration::from_millis(1_000)));
    }

    #[test]
    fn old_samples_fade() {
        let mut h = FirstAnswerHistogram::default();
        for _ in 0..500 {
            h.record(Duration::from_millis(2_500));
        }
        for _ in 0..2_000 {
            h.record(Duration::from_millis(15));
        }
        assert_eq!(h.quantile(0.95), Some(Duration::from_millis(20)));
    }
}
