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
}

/// A snapshot of a target's state for routing decisions.
#[derive(Debug, Clone, Default)]
pub struct TargetView {
    pub cooldown: Option<Duration>,
    pub in_flight: u32,
    pub latency_ms: Option<f32>,
    pub ttft_ms: Option<f32>,
    pub error_rate: f32,
}

const EWMA_WEIGHT: f32 = 0.2;

impl TargetState {
    pub fn view(&self, now: Instant) -> TargetView {
        let stats = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        TargetView {
            cooldown: stats
                .cooldown_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero()),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency_ms: stats.latency_ms,
            ttft_ms: stats.ttft_ms,
            error_rate: stats.error_rate,
        }
    }

    pub fn record_success(&self, latency: Duration, ttft: Option<Duration>) {
        let mut stats = self.inner.lock().unwrap_or_else(|e| e.into_inner());
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
    pub fn record_failure(&self, error: &AttemptError, now: Instant) {
        let mut stats = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        stats.error_rate = stats.error_rate * (1.0 - EWMA_WEIGHT) + EWMA_WEIGHT;
        if matches!(
            error.kind,
            ErrorKind::RateLimited | ErrorKind::QuotaExhausted
        ) {
            stats.consecutive_rate_limits = stats.consecutive_rate_limits.saturating_add(1);
            let wait = error.retry_after.unwrap_or_else(|| {
                let base = 1000u64 << (stats.consecutive_rate_limits - 1).min(6);
                let jitter = rand::random::<u64>() % (base / 4 + 1);
                Duration::from_millis((base + jitter).min(60_000))
            });
            stats.cooldown_until = Some(now + wait);
        }
    }
}

/// All targets' state, shared by every request and kept across reloads.
#[derive(Default)]
pub struct TargetStates {
    map: RwLock<HashMap<TargetRef, Arc<TargetState>>>,
}

impl TargetStates {
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
                RouteOutcome::Cooling(d) => Some(*d),
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
