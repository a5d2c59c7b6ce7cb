//! Google's error bodies as typed errors, and `read-rate-limits`.
//!
//! Gemini answers failures with a `google.rpc.Status`:
//! `{"error":{"code":429,"message":"...","status":"RESOURCE_EXHAUSTED","details":[...]}}`,
//! sometimes wrapped in a one-element array. The canonical `status` decides the kind, refined by
//! the details: a `QuotaFailure` whose quota id names a per-day window means the daily
//! allowance is spent (not worth retrying for hours), a `RetryInfo` carries the wait, and an
//! `ErrorInfo` with reason `API_KEY_INVALID` turns a 400 into an auth failure. Gemini sends no
//! rate-limit headers, so `read-rate-limits` only has the wait to report.
//!
//! Reading plain-text bodies, the message shown (never an echoed key, one length limit) and
//! the status-derived kind are the SDK's `upstream` skeleton; this module owns the mapping.

use serde_json::Value;

use freeway_plugin_sdk::http::{header, parse_duration_ms, retry_after_ms};
use freeway_plugin_sdk::types::{Error, ErrorKind, RateLimits};
use freeway_plugin_sdk::upstream::{self, ErrorBody, Wording, text_field};

const WORDING: Wording = Wording {
    refused_credentials: "Gemini refused the gateway's credentials for this provider",
    who: "Gemini",
    reported: "Gemini reported an error",
};

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// What an error body said.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct UpstreamError {
    /// The HTTP status repeated in the body (`code`).
    pub code: Option<u16>,
    pub message: Option<String>,
    /// The canonical status name (`RESOURCE_EXHAUSTED`, `INVALID_ARGUMENT`, ...).
    pub status: Option<String>,
    /// `RetryInfo.retryDelay`, in milliseconds.
    pub retry_delay_ms: Option<u64>,
    /// `QuotaFailure.violations[].quotaId`.
    pub quota_ids: Vec<String>,
    /// `ErrorInfo.reason` (`API_KEY_INVALID`, ...).
    pub reasons: Vec<String>,
}

pub(crate) fn read_error_body(body: &[u8]) -> UpstreamError {
    upstream::read_error_body(body, read_error_value)
}

impl ErrorBody for UpstreamError {
    fn message_mut(&mut self) -> &mut Option<String> {
        &mut self.message
    }
}

pub(crate) fn read_error_value(value: &Value) -> UpstreamError {
    let inner = upstream::error_object(upstream::unwrap_array(value));
    let text = |key: &str| text_field(inner, key);
    let mut found = UpstreamError {
        code: inner
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (100..=599).contains(code)),
        message: text("message"),
        status: text("status"),
        ..UpstreamError::default()
    };
    let details = inner.get("details").and_then(Value::as_array);
    for detail in details.into_iter().flatten() {
        match detail.get("@type").and_then(Value::as_str) {
            Some(RETRY_INFO) => {
                found.retry_delay_ms = detail
                    .get("retryDelay")
                    .and_then(Value::as_str)
                    .and_then(parse_duration_ms);
            }
            Some(QUOTA_FAILURE) => {
                let violations = detail.get("violations").and_then(Value::as_array);
                found.quota_ids.extend(
                    violations
                        .into_iter()
                        .flatten()
                        .filter_map(|violation| violation.get("quotaId").and_then(Value::as_str))
                        .map(str::to_owned),
                );
            }
            Some(ERROR_INFO) => {
                if let Some(reason) = detail.get("reason").and_then(Value::as_str) {
                    found.reasons.push(reason.to_owned());
                }
            }
            _ => {}
        }
    }
    found
}

/// The typed error for an upstream failure. `status` is the HTTP status; `None` for an error
/// inside a stream that had already been accepted with 200 (the body's `code` is used then).
pub(crate) fn classify(status: Option<u16>, upstream: UpstreamError) -> Error {
    let http_status = status.or(upstream.code);
    let canonical = upstream.status.as_deref();
    let lower = upstream
        .message
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let key_refused = upstream
        .reasons
        .iter()
        .any(|reason| reason == "API_KEY_INVALID")
        || lower.contains("api key not valid")
        || canonical == Some("UNAUTHENTICATED")
        || http_status == Some(401);
    let by_status = match canonical {
        _ if key_refused => Some((ErrorKind::Auth, true)),
        Some("INVALID_ARGUMENT") if mentions_context_length(&lower) => {
            Some((ErrorKind::ContextLength, false))
        }
        Some("INVALID_ARGUMENT" | "OUT_OF_RANGE") => Some((ErrorKind::BadRequest, false)),
        // "User location is not supported for the API use", a free tier not offered here: a
        // property of this provider, so another provider may well serve the request.
        Some("FAILED_PRECONDITION") => Some((ErrorKind::BadRequest, true)),
        Some("PERMISSION_DENIED") => Some((ErrorKind::Permission, true)),
        Some("NOT_FOUND") => Some((ErrorKind::NotFound, true)),
        Some("RESOURCE_EXHAUSTED") if is_daily(&upstream.quota_ids) => {
            Some((ErrorKind::QuotaExhausted, true))
        }
        Some("RESOURCE_EXHAUSTED") => Some((ErrorKind::RateLimited, true)),
        Some("INTERNAL" | "UNAVAILABLE" | "ABORTED" | "UNKNOWN") => {
            Some((ErrorKind::Unavailable, true))
        }
        Some("DEADLINE_EXCEEDED") => Some((ErrorKind::Timeout, true)),
        _ => None,
    };
    let mut failure = upstream::classify(&WORDING, http_status, upstream.message, key_refused);
    upstream::settle(
        &mut failure,
        by_status,
        mentions_context_length(&lower),
        upstream.status,
    );
    failure.retry_after_ms = upstream.retry_delay_ms;
    failure
}

/// "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576)."
fn mentions_context_length(message: &str) -> bool {
    message.contains("input token count") && message.contains("exceeds the maximum")
        || message.contains("exceeds the maximum number of tokens")
}

/// Quota ids such as `GenerateRequestsPerDayPerProjectPerModel-FreeTier`.
fn is_daily(quota_ids: &[String]) -> bool {
    quota_ids.iter().any(|id| id.contains("PerDay"))
}

/// `read-rate-limits`: the wait from, on a 429, the body's `RetryInfo` (which Gemini sends
/// instead of the header), else `Retry-After` (which a proxy in front of it may add).
pub(crate) fn read_rate_limits(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> RateLimits {
    let from_header = header(headers, "retry-after").and_then(retry_after_ms);
    let from_body = (status == 429)
        .then(|| read_error_body(body).retry_delay_ms)
        .flatten();
    RateLimits {
        retry_after_ms: from_body.or(from_header),
        limit_requests: None,
        remaining_requests: None,
        reset_requests_ms: None,
        limit_tokens: None,
        remaining_tokens: None,
        reset_tokens_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A free-tier 429 as the Gemini API sends it.
    const DAILY_429: &str = r#"{
  "error": {
    "code": 429,
    "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
            "quotaValue": "200"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
      },
      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "37s"
      }
    ]
  }
}"#;

    fn body(code: u16, status: &str, message: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": message, "status": status}})
            .to_string()
    }

    fn classify_body(status: Option<u16>, text: &str) -> Error {
        classify(status, read_error_body(text.as_bytes()))
    }

    #[test]
    fn daily_quota_and_per_minute_rate_limit() {
        let failure = classify_body(Some(429), DAILY_429);
        assert_eq!(failure.kind, ErrorKind::QuotaExhausted);
        assert!(failure.retryable);
        assert_eq!(failure.retry_after_ms, Some(37_000));
        assert_eq!(failure.status, Some(429));
        assert_eq!(failure.code.as_deref(), Some("RESOURCE_EXHAUSTED"));

        let per_minute = DAILY_429
            .replace(
                "GenerateRequestsPerDayPerProjectPerModel",
                "GenerateRequestsPerMinutePerProjectPerModel",
            )
            .replace("\"37s\"", "\"1.5s\"");
        let failure = classify_body(Some(429), &per_minute);
        assert_eq!(failure.kind, ErrorKind::RateLimited);
        assert_eq!(failure.retry_after_ms, Some(1_500));

        let wrapped = format!(
            "[{}]",
            body(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota)."
            )
        );
        let failure = classify_body(Some(429), &wrapped);
        assert_eq!(failure.kind, ErrorKind::RateLimited);
        assert_eq!(
            failure.message,
            "Resource has been exhausted (e.g. check quota)."
        );
        assert_eq!(failure.retry_after_ms, None);
    }

    #[test]
    fn every_canonical_status() {
        let cases = [
            (
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
                ErrorKind::BadRequest,
                false,
            ),
            (
                400,
                "FAILED_PRECONDITION",
                "User location is not supported for the API use.",
                ErrorKind::BadRequest,
                true,
            ),
            (
                403,
                "PERMISSION_DENIED",
                "You do not have permission to access tuned model tunedModels/x",
                ErrorKind::Permission,
                true,
            ),
            (
                404,
                "NOT_FOUND",
                "models/gemini-9 is not found for API version v1beta",
                ErrorKind::NotFound,
                true,
            ),
            (
                500,
                "INTERNAL",
                "An internal error has occurred.",
                ErrorKind::Unavailable,
                true,
            ),
            (
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                ErrorKind::Unavailable,
                true,
            ),
            (
                504,
                "DEADLINE_EXCEEDED",
                "Deadline expired before operation could complete.",
                ErrorKind::Timeout,
                true,
            ),
        ];
        for (code, status, message, kind, retryable) in cases {
            let failure = classify_body(Some(code), &body(code, status, message));
            assert_eq!(failure.kind, kind, "{status}");
            assert_eq!(failure.retryable, retryable, "{status}");
            assert_eq!(failure.status, Some(code));
            assert_eq!(failure.message, message);
            assert_eq!(failure.code.as_deref(), Some(status));
        }
    }

    #[test]
    fn context_length() {
        let failure = classify_body(
            Some(400),
            &body(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1290432) exceeds the maximum number of tokens allowed (1048576).",
            ),
        );
        assert_eq!(failure.kind, ErrorKind::ContextLength);
        assert!(!failure.retryable);
        assert_eq!(failure.code.as_deref(), Some("context_length_exceeded"));
    }

    #[test]
    fn invalid_key_is_auth_and_never_echoed() {
        let text = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}"#;
        let failure = classify_body(Some(400), text);
        assert_eq!(failure.kind, ErrorKind::Auth);
        assert!(failure.retryable);
        assert!(!failure.message.contains("API key not valid"));
        let failure = classify_body(
            Some(401),
            &body(401, "UNAUTHENTICATED", "key AIzaSyX expired"),
        );
        assert_eq!(failure.kind, ErrorKind::Auth);
        assert!(!failure.message.contains("AIza"));
    }

    #[test]
    fn unknown_and_plain_bodies_fall_back_to_the_status() {
        let failure = classify_body(Some(502), "<html>Bad Gateway</html>");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert_eq!(failure.message, "Gemini returned HTTP 502");
        let failure = classify_body(None, r#"{"error":{"code":503,"message":"overloaded"}}"#);
        assert_eq!(failure.status, Some(503));
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        let failure = classify_body(None, "{}");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert_eq!(failure.message, "Gemini reported an error");
        assert_eq!(read_error_body(&[0xff]), UpstreamError::default());
    }

    #[test]
    fn rate_limits_from_header_or_retry_info() {
        let headers = vec![("Retry-After".to_owned(), "5".to_owned())];
        assert_eq!(
            read_rate_limits(429, &headers, DAILY_429.as_bytes()).retry_after_ms,
            Some(37_000)
        );
        assert_eq!(
            read_rate_limits(429, &headers, b"{}").retry_after_ms,
            Some(5_000)
        );
        assert_eq!(
            read_rate_limits(503, &headers, DAILY_429.as_bytes()).retry_after_ms,
            Some(5_000)
        );
        assert_eq!(
            read_rate_limits(200, &[], DAILY_429.as_bytes()).retry_after_ms,
            None
        );
        let limits = read_rate_limits(200, &[], b"{}");
        assert_eq!(limits.remaining_requests, None);
        assert_eq!(limits.retry_after_ms, None);
    }
}
