//! Token buckets for the limits a provider publishes (requests and tokens per minute and per
//! day). Pure arithmetic over wall-clock time, so any store — memory today, a shared database
//! or Redis later — can keep the same four numbers per bucket and get the same answers.

use std::time::{Duration, SystemTime};

use crate::config::Limits;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// One continuously refilling bucket.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub capacity: f64,
    pub level: f64,
    pub per_second: f64,
    pub updated: SystemTime,
}

impl Bucket {
    fn new(capacity: u64, window: Duration, now: SystemTime) -> Self {
        Bucket {
            capacity: capacity as f64,
            level: capacity as f64,
            per_second: capacity as f64 / window.as_secs_f64(),
            updated: now,
        }
    }

    fn refill(&mut self, now: SystemTime) {
        let elapsed = now
            .duration_since(self.updated)
            .unwrap_or_default()
            .as_secs_f64();
        self.level = (self.level + elapsed * self.per_second).min(self.capacity);
        if now > self.updated {
            self.updated = now;
        }
    }

    /// How long until `amount` is available (zero if it is now).
    fn wait_for(&self, amount: f64) -> Duration {
        if self.level >= amount {
            return Duration::ZERO;
        }
        if amount > self.capacity {
            // Can never fit this window: report the time to a full bucket.
            return Duration::from_secs_f64((self.capacity - self.level) / self.per_second);
        }
        Duration::from_secs_f64((amount - self.level) / self.per_second)
    }
}

/// The four buckets of one target; a limit the catalog does not publish has no bucket.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Buckets {
    rpm: Option<Bucket>,
    rpd: Option<Bucket>,
    tpm: Option<Bucket>,
    tpd: Option<Bucket>,
}

impl Buckets {
    /// Make the buckets match the configured limits (they may change on reload).
    pub fn configure(&mut self, limits: Limits, now: SystemTime) {
        let fit = |slot: &mut Option<Bucket>, limit: Option<u64>, window: Duration| match limit {
            None => *slot = None,
            Some(limit) => match slot {
                Some(bucket) if bucket.capacity == limit as f64 => {}
                _ => *slot = Some(Bucket::new(limit, window, now)),
            },
        };
        fit(&mut self.rpm, limits.rpm, MINUTE);
        fit(&mut self.rpd, limits.rpd, DAY);
        fit(&mut self.tpm, limits.tpm, MINUTE);
        fit(&mut self.tpd, limits.tpd, DAY);
    }

    fn all(&mut self) -> impl Iterator<Item = (&'static str, &mut Bucket, bool)> {
        [
            ("requests per minute", self.rpm.as_mut(), false),
            ("requests per day", self.rpd.as_mut(), false),
            ("tokens per minute", self.tpm.as_mut(), true),
            ("tokens per day", self.tpd.as_mut(), true),
        ]
        .into_iter()
        .filter_map(|(name, bucket, tokens)| bucket.map(|b| (name, b, tokens)))
    }

    /// Take one request and `tokens`, or say which limit would be broken and for how long.
    pub fn take(&mut self, tokens: u64, now: SystemTime) -> Result<(), (&'static str, Duration)> {
        let mut worst: Option<(&'static str, Duration)> = None;
        for (name, bucket, is_tokens) in self.all() {
            bucket.refill(now);
            let wait = bucket.wait_for(if is_tokens { tokens as f64 } else { 1.0 });
            if !wait.is_zero() && worst.is_none_or(|(_, w)| wait > w) {
                worst = Some((name, wait));
            }
        }
        if let Some(worst) = worst {
            return Err(worst);
        }
        for (_, bucket, is_tokens) in self.all() {
            bucket.level -= if is_tokens { tokens as f64 } else { 1.0 };
        }
        Ok(())
    }

    /// Correct a token estimate: positive `delta` charges more, negative refunds.
    pub fn adjust_tokens(&mut self, delta: i64) {
        for bucket in [self.tpm.as_mut(), self.tpd.as_mut()].into_iter().flatten() {
            bucket.level = (bucket.level - delta as f64).min(bucket.capacity);
        }
    }

    /// The share of the daily allowance used (the fuller of requests and tokens per day).
    pub fn fraction_used(&mut self, now: SystemTime) -> Option<f32> {
        [self.rpd.as_mut(), self.tpd.as_mut()]
            .into_iter()
            .flatten()
            .map(|b| {
                b.refill(now);
                (1.0 - b.level / b.capacity) as f32
            })
            .reduce(f32::max)
    }

    /// What is left now: (requests, tokens), each the lower of its minute and day buckets.
    pub fn remaining(&mut self, now: SystemTime) -> (Option<u64>, Option<u64>) {
        let min = |a: Option<&mut Bucket>, b: Option<&mut Bucket>| {
            [a, b]
                .into_iter()
                .flatten()
                .map(|bucket| {
                    bucket.refill(now);
                    bucket.level.max(0.0) as u64
                })
                .min()
        };
        let requests = min(self.rpm.as_mut(), self.rpd.as_mut());
        let tokens = min(self.tpm.as_mut(), self.tpd.as_mut());
        (requests, tokens)
    }
}
