//! Routing state and failover decisions: the live state of every target (cooldowns, in-flight
//! count, latency), the typed error of one attempt, the per-request route explanation, and the
//! choice of what the client is told when no target succeeded.
//!
//! State is keyed by `provider/model` and lives outside the config snapshot, so a reload keeps
//! the cooldowns and statistics of targets that still exist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hyper::StatusCode;

use crate::config::TargetRef;
use crate::openai::ApiError;
use crate::plugins::PluginFault;
use crate::plugins::bindings::types::{self, ErrorKind};

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The gateway itself (configuration, limits).
    Gateway,
    /// A plugin trapped, timed out, ran out of memory or returned nonsense.
    Plugin,
    /// The upstream provider or the network to it.
    Upstream,
}

/// Why one attempt at one target failed. The failover loop reads `retryable` and `kind` only.
#[derive(Debug, Clone)]
pub struct AttemptError {
    pub source: Source,
    pub kind: ErrorKind,
    pub retryable: bool,
    pub message: String,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    pub code: Option<String>,
    pub param: Option<String>,
}

impl AttemptError {
    pub fn from_plugin_error(error: types::Error) -> Self {
        AttemptError {
            source: Source::Upstream,
            kind: error.kind,
            retryable: error.retryable,
            message: error.message,
            status: error.status,
            retry_after: error.retry_after_ms.map(Duration::from_millis),
            code: error.code,
            param: error.param,
        }
    }

    pub fn timeout(after: Duration) -> Self {
        AttemptError {
            source: Source::Upstream,
            kind: ErrorKind::Timeout,
            retryable: true,
            message: format!(
                "the upstream did not answer within {} ms",
                after.as_millis()
            ),
            status: None,
            retry_after: None,
            code: None,
            param: None,
        }
    }

    pub fn upstream(kind: ErrorKind, message: impl Into<String>) -> Self {
        AttemptError {
            source: Source::Upstream,
            kind,
            retryable: true,
            message: message.into(),
            status: None,
            retry_after: None,
            code: None,
            param: None,
        }
    }

    /// What the route explanation says of this failure, e.g. "429 rate-limited".
    pub fn summary(&self) -> String {
        let kind = kind_name(self.kind);
        let mut out = match (self.source, self.status) {
            (Source::Plugin, _) => format!("plugin error: {}", self.message),
            (_, Some(status)) => format!("{status} {kind}"),
            (_, None) => format!("{kind}: {}", self.message),
        };
        if let Some(after) = self.retry_after {
            out.push_str(&format!(" (retry in {})", human(after)));
        }
        out
    }
}

impl From<PluginFault> for AttemptError {
    fn from(fault: PluginFault) -> Self {
        AttemptError {
            source: Source::Plugin,
            kind: ErrorKind::Internal,
            retryable: true,
            message: fault.to_string(),
            status: None,
            retry_after: None,
            code: None,
            param: None,
        }
    }
}

pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RateLimited => "rate-limited",
        ErrorKind::QuotaExhausted => "quota-exhausted",
        ErrorKind::Auth => "auth",
        ErrorKind::Permission => "permission",
        ErrorKind::BadRequest => "bad-request",
        ErrorKind::NotFound => "not-found",
        ErrorKind::ContextLength => "context-length",
        ErrorKind::ContentFilter => "content-filter",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::InvalidResponse => "invalid-response",
        ErrorKind::Internal => "internal",
    }
}

fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{}s", d.as_millis().div_ceil(1000))
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Live state of one target.
#[derive(Debug, Default)]
pub struct TargetState {
    pub in_flight: AtomicU32,
    inner: Mutex<TargetStats>,
}

#[derive(Debug, Default)]
struct TargetStats {
    cooldown_until: Option<Instant>,
    consecutive_rate_limits: u32,
    latency_ms: Option<f32>,
    ttft_ms: Option<f32>,
    error_rate: f32,
    buckets: Buckets,
    breaker: Breaker,
    /// The config digest under which the provider refused this key (401): the target stays
    /// out until the config changes.
    auth_refused_under: Option<String>,
    /// Set while more than `QUOTA_WARNING` of a daily allowance is used (warned once).
    quota_warned: bool,
    /// Why the last health check failed, while it keeps failing.
    health_failed: Option<String>,
    /// What the upstream last said is left, and when it said so.
    remaining_requests: Option<u64>,
    remaining_tokens: Option<u64>,
}

/// Token buckets for the limits the catalog publishes: requests and tokens per minute and
/// per day. Each refills continuously; a request takes one request token and its estimated
/// tokens up front, and the estimate is corrected with the usage the answer reports.
#[derive(Debug, Default)]
struct Buckets {
    rpm: Option<Bucket>,
    rpd: Option<Bucket>,
    tpm: Option<Bucket>,
    tpd: Option<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    capacity: f64,
    level: f64,
    per_second: f64,
    updated: Instant,
}

impl Bucket {
    fn new(capacity: u64, window: Duration, now: Instant) -> Self {
        Bucket {
            capacity: capacity as f64,
            level: capacity as f64,
            per_second: capacity as f64 / window.as_secs_f64(),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
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

/// Limits of one target, from the catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
}

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

impl Buckets {
    /// Make the buckets match the configured limits (they may change on reload).
    fn configure(&mut self, limits: Limits, now: Instant) {
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
    fn take(&mut self, tokens: u64, now: Instant) -> Result<(), (&'static str, Duration)> {
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
    fn adjust_tokens(&mut self, delta: i64) {
        for bucket in [self.tpm.as_mut(), self.tpd.as_mut()].into_iter().flatten() {
            bucket.level = (bucket.level - delta as f64).min(bucket.capacity);
        }
    }

    fn fraction_used(&mut self, now: Instant) -> Option<f32> {
        [self.rpd.as_mut(), self.tpd.as_mut()]
            .into_iter()
            .flatten()
            .map(|b| {
                b.refill(now);
                (1.0 - b.level / b.capacity) as f32
            })
            .reduce(f32::max)
    }

    fn remaining(&mut self, now: Instant) -> (Option<u64>, Option<u64>) {
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

/// A circuit breaker: opens after `BREAKER_THRESHOLD` consecutive failures that say the
/// target is unwell (unavailable, timeout, broken answers), stays open for a while, then lets
/// exactly one probe through (half-open); the probe's outcome closes or re-opens it, each
/// re-open twice as long (up to five minutes).
#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    open_for: Duration,
    probe_in_flight: bool,
}

const BREAKER_THRESHOLD: u32 = 5;
const BREAKER_FIRST_OPEN: Duration = Duration::from_secs(15);
const BREAKER_LONGEST_OPEN: Duration = Duration::from_secs(300);

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

/// A granted attempt: what was taken from the buckets, to correct afterwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission {
    estimated_tokens: u64,
    probe: bool,
    /// Set on the admission that took the target past `QUOTA_WARNING` of a daily allowance.
    pub quota_crossed: Option<f32>,
}

/// The share of a daily allowance past which the operator is warned (once per crossing).
pub const QUOTA_WARNING: f32 = 0.8;

/// A snapshot of a target's state for routing decisions.
#[derive(Debug, Clone, Default)]
pub struct TargetView {
    pub cooldown: Option<Duration>,
    /// False while the circuit breaker is open or the key was refused.
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

const EWMA_WEIGHT: f32 = 0.2;

impl TargetState {
    fn stats(&self) -> std::sync::MutexGuard<'_, TargetStats> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn view(&self, now: Instant, limits: Limits) -> TargetView {
        let mut stats = self.stats();
        stats.buckets.configure(limits, now);
        let (bucket_requests, bucket_tokens) = stats.buckets.remaining(now);
        let lower = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TargetView {
            cooldown: stats
                .cooldown_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero()),
            healthy: stats.breaker.open_until.is_none_or(|until| until <= now)
                && stats.auth_refused_under.is_none()
                && stats.health_failed.is_none(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency_ms: stats.latency_ms,
            ttft_ms: stats.ttft_ms,
            error_rate: stats.error_rate,
            remaining_requests: lower(bucket_requests, stats.remaining_requests),
            remaining_tokens: lower(bucket_tokens, stats.remaining_tokens),
            quota_used: stats.buckets.fraction_used(now),
        }
    }

    /// May an attempt go to this target now? Checks, without any network call: cooldown,
    /// a key the provider refused, the circuit breaker, and the token buckets (taking one
    /// request and `estimated_tokens` when it says yes).
    pub fn admit(
        &self,
        limits: Limits,
        estimated_tokens: u64,
        config_digest: &str,
        now: Instant,
    ) -> Result<Admission, Refusal> {
        let mut stats = self.stats();
        if let Some(left) = stats
            .cooldown_until
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero())
        {
            return Err(Refusal::Cooling(left));
        }
        match &stats.auth_refused_under {
            Some(digest) if digest == config_digest => return Err(Refusal::KeyRefused),
            Some(_) => stats.auth_refused_under = None,
            None => {}
        }
        if let Some(why) = &stats.health_failed {
            return Err(Refusal::Unhealthy(why.clone()));
        }
        let mut probe = false;
        if let Some(until) = stats.breaker.open_until {
            if until > now {
                return Err(Refusal::BreakerOpen(until - now));
            }
            if stats.breaker.probe_in_flight {
                return Err(Refusal::BreakerOpen(stats.breaker.open_for));
            }
            probe = true;
        }
        stats.buckets.configure(limits, now);
        stats
            .buckets
            .take(estimated_tokens, now)
            .map_err(|(limit, wait)| Refusal::OverLimit(limit, wait))?;
        if probe {
            stats.breaker.probe_in_flight = true;
        }
        let used = stats.buckets.fraction_used(now);
        let quota_crossed = match used {
            Some(used) if used >= QUOTA_WARNING && !stats.quota_warned => {
                stats.quota_warned = true;
                Some(used)
            }
            Some(used) if used < QUOTA_WARNING => {
                stats.quota_warned = false;
                None
            }
            _ => None,
        };
        Ok(Admission {
            estimated_tokens,
            probe,
            quota_crossed,
        })
    }

    /// Take a health probe's share of the free-tier buckets: a probe spends the upstream's
    /// quota like any request, so it must count, or probes alone could earn 429s. Unlike
    /// [`TargetState::admit`] it ignores cooldowns, failed health and the breaker: a probe is
    /// how an ejected target gets back. `Err` names the full limit and when it frees.
    pub fn take_for_probe(
        &self,
        limits: Limits,
        estimated_tokens: u64,
        now: Instant,
    ) -> Result<(), (&'static str, Duration)> {
        let mut stats = self.stats();
        stats.buckets.configure(limits, now);
        stats.buckets.take(estimated_tokens, now)
    }

    /// Why this target would be refused now, if it would (without taking anything).
    pub fn refusal(&self, now: Instant) -> Option<Refusal> {
        let stats = self.stats();
        if let Some(left) = stats
            .cooldown_until
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero())
        {
            return Some(Refusal::Cooling(left));
        }
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

    /// Record a health check's verdict; returns whether the target's health changed.
    pub fn record_health(&self, failure: Option<String>) -> bool {
        let mut stats = self.stats();
        let changed = stats.health_failed.is_some() != failure.is_some();
        stats.health_failed = failure;
        changed
    }

    /// Remaining-capacity facts an adapter read from the upstream's headers.
    pub fn record_rate_limits(&self, limits: &types::RateLimits, now: Instant) {
        let mut stats = self.stats();
        if limits.remaining_requests.is_some() {
            stats.remaining_requests = limits.remaining_requests;
        }
        if limits.remaining_tokens.is_some() {
            stats.remaining_tokens = limits.remaining_tokens;
        }
        // The upstream says nothing is left: wait for its reset rather than learn it by 429.
        let exhausted_until = [
            (limits.remaining_requests, limits.reset_requests_ms),
            (limits.remaining_tokens, limits.reset_tokens_ms),
        ]
        .into_iter()
        .filter_map(|(remaining, reset)| match (remaining, reset) {
            (Some(0), Some(reset)) if reset > 0 => Some(now + Duration::from_millis(reset)),
            _ => None,
        })
        .max();
        if let Some(until) = exhausted_until
            && stats.cooldown_until.is_none_or(|current| current < until)
        {
            stats.cooldown_until = Some(until);
        }
    }

    pub fn record_success(
        &self,
        latency: Duration,
        ttft: Option<Duration>,
        admission: Admission,
        used_tokens: Option<u64>,
    ) {
        let mut stats = self.stats();
        if let Some(used) = used_tokens {
            stats
                .buckets
                .adjust_tokens(used as i64 - admission.estimated_tokens as i64);
        }
        stats.breaker = Breaker::default();
        let ewma =
            |old: Option<f32>, new: f32| Some(old.map_or(new, |o| o + EWMA_WEIGHT * (new - o)));
        stats.latency_ms = ewma(stats.latency_ms, latency.as_secs_f32() * 1000.0);
        if let Some(ttft) = ttft {
            stats.ttft_ms = ewma(stats.ttft_ms, ttft.as_secs_f32() * 1000.0);
        }
        stats.error_rate *= 1.0 - EWMA_WEIGHT;
        stats.consecutive_rate_limits = 0;
    }

    /// Record a failure; rate limits start a cooldown: exactly what the upstream asked for, or
    /// an exponential backoff (1 s, 2 s, 4 s … 60 s, with jitter) when it did not say.
    pub fn record_failure(
        &self,
        error: &AttemptError,
        now: Instant,
        admission: Admission,
        config_digest: &str,
    ) {
        let mut stats = self.stats();
        stats.error_rate = stats.error_rate * (1.0 - EWMA_WEIGHT) + EWMA_WEIGHT;
        if error.kind == ErrorKind::Auth && error.source == Source::Upstream {
            stats.auth_refused_under = Some(config_digest.to_string());
        }
        let unwell = error.source == Source::Upstream
            && matches!(
                error.kind,
                ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::InvalidResponse
            );
        if admission.probe {
            stats.breaker.probe_in_flight = false;
        }
        if unwell {
            let breaker = &mut stats.breaker;
            breaker.consecutive_failures += 1;
            if admission.probe || breaker.consecutive_failures >= BREAKER_THRESHOLD {
                breaker.open_for = if breaker.open_for.is_zero() {
                    BREAKER_FIRST_OPEN
                } else {
                    (breaker.open_for * 2).min(BREAKER_LONGEST_OPEN)
                };
                breaker.open_until = Some(now + breaker.open_for);
            }
        } else if admission.probe {
            // The probe failed for a reason that says nothing of health: let the next one try.
            stats.breaker.open_until = Some(now);
        }
        if matches!(
            error.kind,
            ErrorKind::RateLimited | ErrorKind::QuotaExhausted
        ) {
            stats.consecutive_rate_limits = stats.consecutive_rate_limits.saturating_add(1);
            let wait = match (error.kind, error.retry_after) {
                (_, Some(after)) => after,
                // A spent daily allowance with no hint: daily quotas reset at a day boundary.
                (ErrorKind::QuotaExhausted, None) => until_next_utc_midnight(),
                _ => {
                    let base = 1000u64 << (stats.consecutive_rate_limits - 1).min(6);
                    let jitter = rand::random::<u64>() % (base / 4 + 1);
                    Duration::from_millis((base + jitter).min(60_000))
                }
            };
            stats.cooldown_until = Some(now + wait);
        }
    }
}

/// Per-gateway-key usage for the current UTC day, against the key's daily caps.
#[derive(Default)]
pub struct KeyUsage {
    map: Mutex<HashMap<String, (u64, u64, u64)>>, // name -> (day, requests, tokens)
}

fn utc_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400
}

impl KeyUsage {
    /// Count one request for `key`, or say how long until its caps reset (next UTC midnight).
    pub fn admit(&self, key: &crate::config::GatewayKey) -> Result<(), (String, Duration)> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let today = utc_day();
        let entry = map.entry(key.name.clone()).or_insert((today, 0, 0));
        if entry.0 != today {
            *entry = (today, 0, 0);
        }
        if let Some(cap) = key.daily_requests
            && entry.1 >= cap
        {
            return Err((format!("{cap} requests"), until_next_utc_midnight()));
        }
        if let Some(cap) = key.daily_tokens
            && entry.2 >= cap
        {
            return Err((format!("{cap} tokens"), until_next_utc_midnight()));
        }
        entry.1 += 1;
        Ok(())
    }

    pub fn add_tokens(&self, name: &str, tokens: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(name) {
            entry.2 += tokens;
        }
    }
}

fn until_next_utc_midnight() -> Duration {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(86_400 - since_epoch % 86_400)
}

/// All targets' state, shared by every request and kept across reloads.
#[derive(Default)]
pub struct TargetStates {
    map: RwLock<HashMap<TargetRef, Arc<TargetState>>>,
}

impl TargetStates {
    /// Every target seen so far, for metrics.
    pub fn all(&self) -> Vec<(TargetRef, Arc<TargetState>)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = map.iter().map(|(t, s)| (t.clone(), s.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// A new config may carry new keys: give every target whose key was refused under an
    /// older config another chance.
    pub fn config_changed(&self, digest: &str) {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        for state in map.values() {
            let mut stats = state.stats();
            if stats
                .auth_refused_under
                .as_deref()
                .is_some_and(|d| d != digest)
            {
                stats.auth_refused_under = None;
            }
        }
    }

    pub fn get(&self, target: &TargetRef) -> Arc<TargetState> {
        if let Some(state) = self
            .map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
        {
            return state.clone();
        }
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(target.clone())
            .or_default()
            .clone()
    }
}

/// Keeps a target's in-flight count right however the attempt ends.
pub struct InFlight(Arc<TargetState>);

impl InFlight {
    pub fn start(state: Arc<TargetState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What happened to each target for one request, in order: the `x-freeway-route` header and
/// the log line's `route` field.
#[derive(Debug, Default, Clone)]
pub struct RouteLog {
    entries: Vec<(String, RouteOutcome)>,
}

#[derive(Debug, Clone)]
pub enum RouteOutcome {
    Ok(Duration),
    Failed(AttemptError),
    Skipped(String),
    /// The target cannot serve this request (images, tools, context window).
    Incapable(String),
    Cooling(Duration),
    /// A published limit (token bucket) would be broken; it frees up in this long.
    OverLimit(&'static str, Duration),
}

impl From<Refusal> for RouteOutcome {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Cooling(left) => RouteOutcome::Cooling(left),
            Refusal::OverLimit(limit, wait) => RouteOutcome::OverLimit(limit, wait),
            Refusal::BreakerOpen(left) => RouteOutcome::Skipped(format!(
                "circuit open after repeated failures, next probe in {}",
                human(left)
            )),
            Refusal::KeyRefused => RouteOutcome::Skipped(
                "the provider refused its API key; fix the key and reload the config".into(),
            ),
            Refusal::Unhealthy(why) => {
                RouteOutcome::Skipped(format!("failing its health check: {why}"))
            }
        }
    }
}

impl RouteLog {
    pub fn push(&mut self, target: &TargetRef, outcome: RouteOutcome) {
        self.entries.push((target.to_string(), outcome));
    }

    pub fn attempts(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, o)| matches!(o, RouteOutcome::Ok(_) | RouteOutcome::Failed(_)))
            .count()
    }

    /// Header-safe: printable ASCII only.
    pub fn header_value(&self) -> String {
        let text = self
            .entries
            .iter()
            .map(|(target, outcome)| {
                let what = match outcome {
                    RouteOutcome::Ok(took) => format!("ok {} ms", took.as_millis()),
                    RouteOutcome::Failed(error) => error.summary(),
                    RouteOutcome::Skipped(why) => format!("skipped ({why})"),
                    RouteOutcome::Incapable(why) => format!("cannot serve ({why})"),
                    RouteOutcome::Cooling(left) => format!("skipped (cooldown {})", human(*left)),
                    RouteOutcome::OverLimit(limit, wait) => {
                        format!("skipped ({limit} limit reached, frees in {})", human(*wait))
                    }
                };
                format!("{target}: {what}")
            })
            .collect::<Vec<_>>()
            .join("; ");
        text.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(2000)
            .collect()
    }

    /// The answer when no target succeeded, chosen from every target's outcome:
    /// everything rate-limited → 429 with the soonest Retry-After; everything disabled →
    /// 503; otherwise the class of the failures (plugin → 500, timeouts → 504, …).
    pub fn exhausted(&self, model: &str) -> ApiError {
        let failures: Vec<&AttemptError> = self
            .entries
            .iter()
            .filter_map(|(_, o)| match o {
                RouteOutcome::Failed(e) => Some(e),
                _ => None,
            })
            .collect();
        let cooling: Vec<Duration> = self
            .entries
            .iter()
            .filter_map(|(_, o)| match o {
                RouteOutcome::Cooling(d) | RouteOutcome::OverLimit(_, d) => Some(*d),
                _ => None,
            })
            .collect();
        let detail = self.header_value();
        let rate_limited = |e: &&AttemptError| {
            matches!(e.kind, ErrorKind::RateLimited | ErrorKind::QuotaExhausted)
        };
        if (!failures.is_empty() || !cooling.is_empty()) && failures.iter().all(rate_limited) {
            let soonest = failures
                .iter()
                .map(|e| e.retry_after.unwrap_or(Duration::from_secs(1)))
                .chain(cooling.iter().copied())
                .min()
                .unwrap_or(Duration::from_secs(1));
            return ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "every target for model '{model}' is rate-limited; retry in {}: {detail}",
                    human(soonest)
                ),
            )
            .with_retry_after(Some(soonest));
        }
        let incapable = self
            .entries
            .iter()
            .any(|(_, o)| matches!(o, RouteOutcome::Incapable(_)));
        let all_incapable_or_disabled = self
            .entries
            .iter()
            .all(|(_, o)| matches!(o, RouteOutcome::Incapable(_) | RouteOutcome::Skipped(_)));
        if failures.is_empty() && cooling.is_empty() && incapable && all_incapable_or_disabled {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_request",
                format!("no target of model '{model}' can serve this request: {detail}"),
            );
        }
        let Some(last) = failures.last() else {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_available_target",
                format!("no target can serve model '{model}': {detail}"),
            );
        };
        if failures.iter().all(|e| e.source == Source::Plugin) {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "plugin_error",
                format!("model '{model}' failed: {}", last.message),
            );
        }
        let (status, code) = if failures.iter().all(|e| e.kind == ErrorKind::Timeout) {
            (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
        } else if failures.iter().all(|e| e.kind == ErrorKind::Unavailable) {
            (StatusCode::SERVICE_UNAVAILABLE, "no_available_target")
        } else {
            (StatusCode::BAD_GATEWAY, "upstream_error")
        };
        ApiError::new(
            status,
            code,
            format!("every target for model '{model}' failed: {detail}"),
        )
    }
}

/// The error a client gets for a failure no other target can fix (the request itself is at
/// fault): the upstream's own status class and message.
pub fn client_error(error: &AttemptError) -> ApiError {
    let code = match error.kind {
        ErrorKind::ContextLength => "context_length_exceeded".to_string(),
        ErrorKind::ContentFilter => "content_filter".to_string(),
        _ => error
            .code
            .clone()
            .unwrap_or_else(|| "invalid_request".to_string()),
    };
    let status = error
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| {
            s.is_client_error()
                && *s != StatusCode::UNAUTHORIZED
                && *s != StatusCode::TOO_MANY_REQUESTS
        })
        .unwrap_or(StatusCode::BAD_REQUEST);
    let mut api = ApiError::new(status, &code, error.message.clone());
    api.param = error.param.clone();
    api
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: ErrorKind, retry_after: Option<Duration>) -> AttemptError {
        AttemptError {
            retry_after,
            ..AttemptError::upstream(kind, "test")
        }
    }

    #[test]
    fn requests_per_minute_bucket_refuses_then_refills() {
        let state = TargetState::default();
        let limits = Limits {
            rpm: Some(2),
            ..Limits::default()
        };
        let t0 = Instant::now();
        assert!(state.admit(limits, 10, "d", t0).is_ok());
        assert!(state.admit(limits, 10, "d", t0).is_ok());
        match state.admit(limits, 10, "d", t0) {
            Err(Refusal::OverLimit("requests per minute", wait)) => {
                assert!(
                    wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
                    "{wait:?}"
                )
            }
            other => panic!("expected an rpm refusal, got {other:?}"),
        }
        // One request refills every 30 s.
        assert!(
            state
                .admit(limits, 10, "d", t0 + Duration::from_secs(31))
                .is_ok()
        );
    }

    #[test]
    fn token_estimate_is_corrected_with_usage() {
        let state = TargetState::default();
        let limits = Limits {
            tpm: Some(1000),
            ..Limits::default()
        };
        let t0 = Instant::now();
        let admission = state.admit(limits, 900, "d", t0).expect("fits");
        assert!(matches!(
            state.admit(limits, 200, "d", t0),
            Err(Refusal::OverLimit("tokens per minute", _))
        ));
        // The answer used only 100 tokens: 800 come back.
        state.record_success(Duration::from_millis(5), None, admission, Some(100));
        assert!(state.admit(limits, 800, "d", t0).is_ok());
    }

    #[test]
    fn retry_after_sets_exact_cooldown() {
        let state = TargetState::default();
        let t0 = Instant::now();
        let admission = state.admit(Limits::default(), 1, "d", t0).expect("open");
        state.record_failure(
            &failure(ErrorKind::RateLimited, Some(Duration::from_secs(12))),
            t0,
            admission,
            "d",
        );
        assert_eq!(
            state
                .admit(Limits::default(), 1, "d", t0 + Duration::from_secs(2))
                .err(),
            Some(Refusal::Cooling(Duration::from_secs(10)))
        );
        assert!(
            state
                .admit(Limits::default(), 1, "d", t0 + Duration::from_secs(12))
                .is_ok()
        );
    }

    #[test]
    fn breaker_opens_after_repeated_outages_and_half_opens_with_one_probe() {
        let state = TargetState::default();
        let t0 = Instant::now();
        for _ in 0..BREAKER_THRESHOLD {
            let admission = state.admit(Limits::default(), 1, "d", t0).expect("closed");
            state.record_failure(&failure(ErrorKind::Unavailable, None), t0, admission, "d");
        }
        assert!(matches!(
            state.admit(Limits::default(), 1, "d", t0),
            Err(Refusal::BreakerOpen(_))
        ));
        let later = t0 + BREAKER_FIRST_OPEN;
        let probe = state
            .admit(Limits::default(), 1, "d", later)
            .expect("one probe");
        assert!(
            matches!(
                state.admit(Limits::default(), 1, "d", later),
                Err(Refusal::BreakerOpen(_))
            ),
            "only one probe at a time"
        );
        state.record_success(Duration::from_millis(5), None, probe, None);
        assert!(
            state.admit(Limits::default(), 1, "d", later).is_ok(),
            "a good probe closes it"
        );
    }

    #[test]
    fn refused_key_stays_out_until_the_config_changes() {
        let state = TargetState::default();
        let t0 = Instant::now();
        let admission = state.admit(Limits::default(), 1, "v1", t0).expect("open");
        state.record_failure(&failure(ErrorKind::Auth, None), t0, admission, "v1");
        assert_eq!(
            state.admit(Limits::default(), 1, "v1", t0).err(),
            Some(Refusal::KeyRefused)
        );
        assert!(state.admit(Limits::default(), 1, "v2", t0).is_ok());
    }

    #[test]
    fn exhausted_route_answers_429_with_the_soonest_retry() {
        let mut log = RouteLog::default();
        let a = TargetRef {
            provider: "a".into(),
            model: "m".into(),
        };
        let b = TargetRef {
            provider: "b".into(),
            model: "m".into(),
        };
        log.push(
            &a,
            RouteOutcome::Failed(failure(
                ErrorKind::RateLimited,
                Some(Duration::from_secs(30)),
            )),
        );
        log.push(&b, RouteOutcome::Cooling(Duration::from_millis(4200)));
        let error = log.exhausted("fast");
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after_header().as_deref(), Some("5"));
        assert!(
            error.message.contains("a/m: 429") || error.message.contains("a/m: rate-limited"),
            "{}",
            error.message
        );
    }
}
