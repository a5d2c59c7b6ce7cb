//! Per-instance state of one target: the circuit breaker, latency and error averages, the
//! in-flight count, health-check verdicts and a key the provider refused. Each instance
//! judges health from its own traffic, so it stays here even when quotas are shared.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::latency::FirstAnswerHistogram;

/// Why a target was not tried, without a network call.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Cooling down after a 429 or an exhausted quota.
    Cooling(Duration),
    /// A token bucket would be overdrawn: which limit, and when it refills enough.
    OverLimit(&'static str, Duration),
    /// The circuit breaker is open (or its single probe is already out).
    BreakerOpen(Duration),
    /// The provider refused this key; it stays out until the config changes.
    KeyRefused,
    /// The last health check failed.
    Unhealthy(String),
}

/// What kind of failure an attempt ended in, as far as target state cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    RateLimited,
    /// A spent daily (or longer) allowance.
    QuotaExhausted,
    /// The upstream refused the provider's key.
    KeyRefused,
    /// Unavailable, timed out or answered nonsense: counts towards the breaker.
    Unwell,
    /// Anything else (the request's fault, a plugin's fault).
    Other,
}

/// One failed attempt, reduced to what state needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// What the upstream asked for (`Retry-After`, a `retryDelay`), if anything.
    pub retry_after: Option<Duration>,
}

/// A snapshot of a target's state for routing decisions.
#[derive(Debug, Clone, Default)]
pub struct TargetView {
    pub cooldown: Option<Duration>,
    /// False while the circuit breaker is open, the key was refused or health checks fail.
    pub healthy: bool,
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// Fraction of the daily allowance used, when the catalog publishes one.
    pub quota_used: Option<f32>,
    pub in_flight: u32,
    pub latency_ms: Option<f32>,
    pub ttft_ms: Option<f32>,
    pub error_rate: f32,
}

/// A circuit breaker: opens after `BREAKER_THRESHOLD` consecutive failures that say the
/// target is unwell, stays open for a while, then lets exactly one probe through
/// (half-open); the probe's outcome closes or re-opens it, each re-open twice as long (up to
/// five minutes).
#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    open_for: Duration,
    probe_in_flight: bool,
}

pub const BREAKER_THRESHOLD: u32 = 5;
pub const BREAKER_FIRST_OPEN: Duration = Duration::from_secs(15);
const BREAKER_LONGEST_OPEN: Duration = Duration::from_secs(300);
const EWMA_WEIGHT: f32 = 0.2;

#[derive(Debug, Default)]
struct Stats {
    consecutive_rate_limits: u32,
    latency_ms: Option<f32>,
    ttft_ms: Option<f32>,
    error_rate: f32,
    breaker: Breaker,
    /// The config digest under which the provider refused this key (401): the target stays
    /// out until the config changes.
    auth_refused_under: Option<String>,
    /// Set while more than `QUOTA_WARNING` of a daily allowance is used (warned once).
    quota_warned: bool,
    /// Why the last health check failed, while it keeps failing.
    health_failed: Option<String>,
    /// Time to the first chunk of streamed answers, and to the whole of the others.
    first_chunk: FirstAnswerHistogram,
    whole_answer: FirstAnswerHistogram,
}

/// This instance's view of one target.
#[derive(Debug, Default)]
pub struct TargetState {
    in_flight: AtomicU32,
    inner: Mutex<Stats>,
}

impl TargetState {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(super) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// May an attempt go to this target, as far as this instance knows: a refused key, a
    /// failing health check, an open breaker. `Ok(true)` means the attempt is the breaker's
    /// single half-open probe, now reserved (release it with [`TargetState::release_probe`]
    /// if the attempt does not go out after all).
    pub fn check(&self, config_digest: &str, now: Instant) -> Result<bool, Refusal> {
        let mut stats = self.stats();
        match &stats.auth_refused_under {
            Some(digest) if digest == config_digest => return Err(Refusal::KeyRefused),
            Some(_) => stats.auth_refused_under = None,
            None => {}
        }
        if let Some(why) = &stats.health_failed {
            return Err(Refusal::Unhealthy(why.clone()));
        }
        let Some(until) = stats.breaker.open_until else {
            return Ok(false);
        };
        if until > now {
            return Err(Refusal::BreakerOpen(until - now));
        }
        if stats.breaker.probe_in_flight {
            return Err(Refusal::BreakerOpen(stats.breaker.open_for));
        }
        stats.breaker.probe_in_flight = true;
        Ok(true)
    }

    pub fn release_probe(&self) {
        self.stats().breaker.probe_in_flight = false;
    }

    /// Whether `used` (share of the daily allowance) just crossed `threshold`: true once per
    /// crossing, so the operator is warned once.
    pub fn crossed_quota_warning(&self, used: Option<f32>, threshold: f32) -> bool {
        let mut stats = self.stats();
        match used {
            Some(used) if used >= threshold && !stats.quota_warned => {
                stats.quota_warned = true;
                true
            }
            Some(used) if used < threshold => {
                stats.quota_warned = false;
                false
            }
            _ => false,
        }
    }

    /// Why this target would be refused now, as far as this instance knows.
    pub fn refusal(&self, now: Instant) -> Option<Refusal> {
        let stats = self.stats();
        if stats.auth_refused_under.is_some() {
            return Some(Refusal::KeyRefused);
        }
        if let Some(why) = &stats.health_failed {
            return Some(Refusal::Unhealthy(why.clone()));
        }
        match stats.breaker.open_until {
            Some(until) if until > now => Some(Refusal::BreakerOpen(until - now)),
            _ => None,
        }
    }

    /// Healthy, in-flight, latency and error rate; the quota fields are left for the store.
    pub fn view(&self, now: Instant) -> TargetView {
        let stats = self.stats();
        TargetView {
            healthy: stats.breaker.open_until.is_none_or(|until| until <= now)
                && stats.auth_refused_under.is_none()
                && stats.health_failed.is_none(),
            in_flight: self.in_flight(),
            latency_ms: stats.latency_ms,
            ttft_ms: stats.ttft_ms,
            error_rate: stats.error_rate,
            ..TargetView::default()
        }
    }

    /// Record a health check's verdict; returns whether the target's health changed.
    pub fn record_health(&self, failure: Option<String>) -> bool {
        let mut stats = self.stats();
        let changed = stats.health_failed.is_some() != failure.is_some();
        stats.health_failed = failure;
        changed
    }

    pub fn record_success(&self, latency: Duration, ttft: Option<Duration>) {
        let mut stats = self.stats();
        stats.breaker = Breaker::default();
        let ewma =
            |old: Option<f32>, new: f32| Some(old.map_or(new, |o| o + EWMA_WEIGHT * (new - o)));
        stats.latency_ms = ewma(stats.latency_ms, latency.as_secs_f32() * 1000.0);
        if let Some(ttft) = ttft {
            stats.ttft_ms = ewma(stats.ttft_ms, ttft.as_secs_f32() * 1000.0);
            stats.first_chunk.record(ttft);
        } else {
            stats.whole_answer.record(latency);
        }
        stats.error_rate *= 1.0 - EWMA_WEIGHT;
        stats.consecutive_rate_limits = 0;
    }

    /// The 95th percentile of the time to a first chunk (`stream`) or to a whole answer, once
    /// enough answers were seen.
    pub fn first_answer_p95(&self, stream: bool) -> Option<Duration> {
        let stats = self.stats();
        let histogram = if stream {
            &stats.first_chunk
        } else {
            &stats.whole_answer
        };
        histogram.quantile(0.95)
    }

    /// An attempt cancelled after `waited` without an answer (it lost to a hedge): its first
    /// answer would have come no sooner, so the tail estimate counts it as that slow rather
    /// than forgetting the slowest attempts.
    pub fn record_unanswered(&self, waited: Duration, stream: bool) {
        let mut stats = self.stats();
        if stream {
            stats.first_chunk.record(waited);
        } else {
            stats.whole_answer.record(waited);
        }
    }

    /// Record a failure. For a rate limit, returns how long to cool down: exactly what the
    /// upstream asked for, or an exponential backoff (1 s, 2 s, 4 s … 60 s, with jitter) when
    /// it did not say; `until_reset` for a spent allowance with no hint.
    pub fn record_failure(
        &self,
        failure: Failure,
        probe: bool,
        now: Instant,
        config_digest: &str,
        until_reset: Duration,
    ) -> Option<Duration> {
        let mut stats = self.stats();
        stats.error_rate = stats.error_rate * (1.0 - EWMA_WEIGHT) + EWMA_WEIGHT;
        if failure.kind == FailureKind::KeyRefused {
            stats.auth_refused_under = Some(config_digest.to_string());
        }
        if probe {
            stats.breaker.probe_in_flight = false;
        }
        if failure.kind == FailureKind::Unwell {
            let breaker = &mut stats.breaker;
            breaker.consecutive_failures += 1;
            if probe || breaker.consecutive_failures >= BREAKER_THRESHOLD {
                breaker.open_for = if breaker.open_for.is_zero() {
                    BREAKER_FIRST_OPEN
                } else {
                    (breaker.open_for * 2).min(BREAKER_LONGEST_OPEN)
                };
                breaker.open_until = Some(now + breaker.open_for);
            }
        } else if probe {
            // The probe failed for a reason that says nothing of health: let the next one try.
            stats.breaker.open_until = Some(now);
        }
        if !matches!(
            failure.kind,
            FailureKind::RateLimited | FailureKind::QuotaExhausted
        ) {
            return None;
        }
        stats.consecutive_rate_limits = stats.consecutive_rate_limits.saturating_add(1);
        Some(match (failure.kind, failure.retry_after) {
            (_, Some(after)) => after,
            // A spent daily allowance with no hint: daily quotas reset at a day boundary.
            (FailureKind::QuotaExhausted, None) => until_reset,
            _ => {
                let base = 1000u64 << (stats.consecutive_rate_limits - 1).min(6);
                let jitter = rand::random::<u64>() % (base / 4 + 1);
                Duration::from_millis((base + jitter).min(60_000))
            }
        })
    }

    /// A new config may carry a new key: forget a refusal made under another config.
    pub fn config_changed(&self, digest: &str) {
        let mut stats = self.stats();
        if stats
            .auth_refused_under
            .as_deref()
            .is_some_and(|d| d != digest)
        {
            stats.auth_refused_under = None;
        }
    }
}
