//! The route explanation: what happened to each target for one request, in order. It becomes
//! the `x-freeway-route` header and the log line's `route` field, and when no target
//! succeeded it decides what the client is told.

use std::time::Duration;

use hyper::StatusCode;

use crate::config::TargetRef;
use crate::error::GatewayError;
use crate::events::RouteStep;
use crate::plugins::bindings::types::ErrorKind;
use crate::state::Refusal;
use crate::upstream::error::human;
use crate::upstream::{AttemptError, Source};

#[derive(Debug, Default, Clone)]
pub struct RouteLog {
    entries: Vec<(String, RouteOutcome)>,
    /// How the order was chosen, when there is something to say (a judge's verdict).
    notes: Vec<String>,
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
    /// The response cache held this target's answer, stored this long ago.
    Cached(Duration),
    /// Started, then cancelled after this long: another (hedged) attempt answered first.
    Cancelled(Duration),
    /// The request waited this long for capacity (`queue_wait_ms`) before the next pass.
    Waited(Duration),
    /// A whole answer the model escalates on (`escalate_on`: "length", "empty",
    /// "invalid_json"), after this long; the next target was tried.
    Escalated(&'static str, Duration),
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

impl RouteOutcome {
    /// What happened, as the route header says it.
    fn describe(&self) -> String {
        match self {
            RouteOutcome::Ok(took) => format!("ok {} ms", took.as_millis()),
            RouteOutcome::Failed(error) => error.summary(),
            RouteOutcome::Skipped(why) => format!("skipped ({why})"),
            RouteOutcome::Incapable(why) => format!("cannot serve ({why})"),
            RouteOutcome::Cooling(left) => format!("skipped (cooldown {})", human(*left)),
            RouteOutcome::OverLimit(limit, wait) => {
                format!("skipped ({limit} limit reached, frees in {})", human(*wait))
            }
            RouteOutcome::Cached(age) => format!("cached answer, stored {} ago", human(*age)),
            RouteOutcome::Cancelled(after) => format!(
                "cancelled after {} ms, another attempt answered first",
                after.as_millis()
            ),
            RouteOutcome::Waited(waited) => {
                format!("waited {} ms for capacity", waited.as_millis())
            }
            RouteOutcome::Escalated(why, took) => {
                format!("escalated ({why}) {} ms", took.as_millis())
            }
        }
    }

    fn verdict(&self) -> &'static str {
        match self {
            RouteOutcome::Ok(_) => "ok",
            RouteOutcome::Failed(_) => "failed",
            RouteOutcome::Skipped(_) => "skipped",
            RouteOutcome::Incapable(_) => "incapable",
            RouteOutcome::Cooling(_) => "cooling",
            RouteOutcome::OverLimit(..) => "over-limit",
            RouteOutcome::Cached(_) => "cached",
            RouteOutcome::Cancelled(_) => "cancelled",
            RouteOutcome::Waited(_) => "waited",
            RouteOutcome::Escalated(..) => "escalated",
        }
    }
}

impl RouteLog {
    pub fn push(&mut self, target: &TargetRef, outcome: RouteOutcome) {
        self.entries.push((target.to_string(), outcome));
    }

    /// An attempt started beside a slow one: the route names it `provider/model (hedge)`.
    pub fn push_hedge(&mut self, target: &TargetRef, outcome: RouteOutcome) {
        self.entries.push((format!("{target} (hedge)"), outcome));
    }

    /// The request waited for capacity between two passes over its targets.
    pub fn push_wait(&mut self, waited: Duration) {
        self.entries
            .push(("queue".to_string(), RouteOutcome::Waited(waited)));
    }

    /// Say how the order was chosen (shown before the targets).
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Upstream requests made: answered, failed, escalated past, or cancelled when a hedge won.
    pub fn attempts(&self) -> usize {
        self.entries
            .iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    RouteOutcome::Ok(_)
                        | RouteOutcome::Failed(_)
                        | RouteOutcome::Cancelled(_)
                        | RouteOutcome::Escalated(..)
                )
            })
            .count()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the soonest target has capacity again, judged from the outcomes logged since
    /// `from`: rate limits, cooldowns and bucket refills the gateway knows the end of. `None`
    /// when none of them is such a wait (nothing would come back by waiting).
    pub fn capacity_returns_in(&self, from: usize) -> Option<Duration> {
        self.entries
            .iter()
            .skip(from)
            .filter_map(|(_, o)| match o {
                RouteOutcome::Cooling(d) | RouteOutcome::OverLimit(_, d) => Some(*d),
                RouteOutcome::Failed(e)
                    if matches!(e.kind, ErrorKind::RateLimited | ErrorKind::QuotaExhausted) =>
                {
                    Some(e.retry_after.unwrap_or(Duration::from_secs(1)))
                }
                _ => None,
            })
            .min()
    }

    /// Header-safe: printable ASCII only.
    pub fn header_value(&self) -> String {
        let text = self
            .notes
            .iter()
            .cloned()
            .chain(
                self.entries
                    .iter()
                    .map(|(target, outcome)| format!("{target}: {}", outcome.describe())),
            )
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

    /// Each target in order with a one-word verdict and its explanation (the dashboard's
    /// view of one request's attempts).
    pub fn steps(&self) -> Vec<RouteStep> {
        self.entries
            .iter()
            .map(|(target, outcome)| RouteStep {
                target: target.clone(),
                verdict: outcome.verdict(),
                detail: outcome.describe(),
            })
            .collect()
    }

    /// The answer when no target succeeded, chosen from every target's outcome:
    /// everything rate-limited → 429 with the soonest Retry-After; everything disabled →
    /// 503; otherwise the class of the failures (plugin → 500, timeouts → 504, …).
    pub fn exhausted(&self, model: &str) -> GatewayError {
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
            return GatewayError::RateLimited {
                message: format!(
                    "every target for model '{model}' is rate-limited; retry in {}: {detail}",
                    human(soonest)
                ),
                retry_after: soonest,
            };
        }
        // An adapter that calls the request unsupported (a feature its API lacks) is the
        // same verdict as the gateway's own capability check: the client asked for something
        // no target can do, which is a 400 — never an upstream failure.
        let unsupported = |o: &RouteOutcome| match o {
            RouteOutcome::Incapable(_) => true,
            RouteOutcome::Failed(e) => e.kind == ErrorKind::Unsupported,
            _ => false,
        };
        let incapable = self.entries.iter().any(|(_, o)| unsupported(o));
        let all_incapable_or_disabled = self
            .entries
            .iter()
            .all(|(_, o)| unsupported(o) || matches!(o, RouteOutcome::Skipped(_)));
        if cooling.is_empty() && incapable && all_incapable_or_disabled {
            return GatewayError::UnsupportedRequest {
                message: format!("no target of model '{model}' can serve this request: {detail}"),
            };
        }
        let Some(last) = failures.last() else {
            return GatewayError::NoAvailableTarget {
                message: format!("no target can serve model '{model}': {detail}"),
            };
        };
        if failures.iter().all(|e| e.source == Source::Plugin) {
            return GatewayError::plugin(format!("model '{model}' failed: {}", last.message));
        }
        let message = format!("every target for model '{model}' failed: {detail}");
        if failures.iter().all(|e| e.kind == ErrorKind::Timeout) {
            GatewayError::UpstreamTimeout { message }
        } else if failures.iter().all(|e| e.kind == ErrorKind::Unavailable) {
            GatewayError::NoAvailableTarget { message }
        } else {
            GatewayError::Upstream { message }
        }
    }
}

/// The error a client gets for a failure no other target can fix (the request itself is at
/// fault): the upstream's own status class and message.
pub fn refused_by_upstream(error: &AttemptError) -> GatewayError {
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
    GatewayError::UpstreamRefused {
        status,
        code,
        param: error.param.clone(),
        message: error.message.clone(),
    }
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
        assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after_header().as_deref(), Some("5"));
        let message = error.to_string();
        assert!(
            message.contains("a/m: 429") || message.contains("a/m: rate-limited"),
            "{message}"
        );
    }

    #[test]
    fn every_target_refusing_as_unsupported_is_a_400_naming_each() {
        let mut log = RouteLog::default();
        let a = TargetRef {
            provider: "a".into(),
            model: "m".into(),
        };
        let b = TargetRef {
            provider: "b".into(),
            model: "m".into(),
        };
        let mut refusal = failure(ErrorKind::Unsupported, None);
        refusal.message = "`n` > 1 is not supported".into();
        log.push(&a, RouteOutcome::Failed(refusal));
        log.push(
            &b,
            RouteOutcome::Incapable("images to a text-only model".into()),
        );
        let error = log.exhausted("fast");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.code(), "unsupported_request");
        let message = error.to_string();
        assert!(message.contains("a/m: unsupported: `n` > 1"), "{message}");
        assert!(message.contains("b/m: cannot serve (images"), "{message}");

        let mut mixed = RouteLog::default();
        mixed.push(
            &a,
            RouteOutcome::Failed(failure(ErrorKind::Unsupported, None)),
        );
        mixed.push(
            &b,
            RouteOutcome::Failed(failure(ErrorKind::Unavailable, None)),
        );
        assert_eq!(mixed.exhausted("fast").code(), "upstream_error");
    }
}
