//! Anthropic's error bodies (`{"type":"error","error":{"type","message"}}`), from a failed
//! HTTP answer or an `error` event mid-stream, as typed errors.
//!
//! The error `type` decides the kind where it is known, because it is more precise than the
//! status (an `overloaded_error` is 529, which is not a standard status; a prompt that is too
//! long is an `invalid_request_error` 400 that must not be retried). The type is also passed on
//! as the OpenAI error `code`.
//!
//! Reading plain-text bodies, the message shown (never an echoed key, one length limit) and
//! the status-derived kind are the SDK's `upstream` skeleton; this module owns the mapping.

use serde_json::Value;

use freeway_plugin_sdk::types::{Error, ErrorKind};
use freeway_plugin_sdk::upstream::{self, ErrorBody, Wording, text_field};

const WORDING: Wording = Wording {
    refused_credentials: "Anthropic refused the gateway's credentials for this provider",
    who: "Anthropic",
    reported: "Anthropic reported an error",
};

/// What an error body said.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct UpstreamError {
    /// Anthropic's `error.type` (`rate_limit_error`, `overloaded_error`, ...).
    pub error_type: Option<String>,
    pub message: Option<String>,
}

/// Reads `{"type":"error","error":{"type","message"}}`, tolerating proxies that answer with
/// plain text (kept as the message unless it is an HTML page).
pub(crate) fn read_error_body(body: &[u8]) -> UpstreamError {
    upstream::read_error_body(body, read_error_value)
}

impl ErrorBody for UpstreamError {
    fn message_mut(&mut self) -> &mut Option<String> {
        &mut self.message
    }
}

pub(crate) fn read_error_value(value: &Value) -> UpstreamError {
    let inner = upstream::error_object(value);
    UpstreamError {
        error_type: text_field(inner, "type").filter(|kind| kind != "error"),
        message: text_field(inner, "message"),
    }
}

/// The typed error for an upstream failure. `status` is the HTTP status; `None` for an error
/// event inside a stream that had already been accepted with 200.
pub(crate) fn classify(status: Option<u16>, upstream: UpstreamError) -> Error {
    let error_type = upstream.error_type.as_deref();
    let credentials_refused = status == Some(401) || error_type == Some("authentication_error");
    let mut failure = upstream::classify(&WORDING, status, upstream.message, credentials_refused);
    let lower = failure.message.to_ascii_lowercase();
    let by_type = match error_type {
        Some("invalid_request_error") if mentions_context_length(&lower) => {
            Some((ErrorKind::ContextLength, false))
        }
        // Anthropic reports spent prepaid credits as a 400 invalid_request_error.
        Some("invalid_request_error") if lower.contains("credit balance") => {
            Some((ErrorKind::QuotaExhausted, true))
        }
        Some("invalid_request_error" | "request_too_large") => Some((ErrorKind::BadRequest, false)),
        Some("authentication_error") => Some((ErrorKind::Auth, true)),
        Some("permission_error") => Some((ErrorKind::Permission, true)),
        Some("not_found_error") => Some((ErrorKind::NotFound, true)),
        Some("billing_error") => Some((ErrorKind::QuotaExhausted, true)),
        Some("rate_limit_error") => Some((ErrorKind::RateLimited, true)),
        Some("api_error" | "overloaded_error") => Some((ErrorKind::Unavailable, true)),
        Some("timeout_error") => Some((ErrorKind::Timeout, true)),
        _ => None,
    };
    let too_long = mentions_context_length(&lower);
    upstream::settle(&mut failure, by_type, too_long, upstream.error_type);
    failure
}

/// "prompt is too long: 215000 tokens > 200000 maximum", "input length and `max_tokens`
/// exceed context limit: ...".
fn mentions_context_length(message: &str) -> bool {
    [
        "prompt is too long",
        "context limit",
        "context window",
        "context length",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::upstream::MAX_MESSAGE_CHARS;

    fn classify_body(status: Option<u16>, body: &str) -> Error {
        classify(status, read_error_body(body.as_bytes()))
    }

    fn body(error_type: &str, message: &str) -> String {
        serde_json::json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
            .to_string()
    }

    #[test]
    fn every_documented_error_type() {
        let cases = [
            (
                400,
                "invalid_request_error",
                "messages: roles must alternate",
                ErrorKind::BadRequest,
                false,
            ),
            (
                401,
                "authentication_error",
                "invalid x-api-key",
                ErrorKind::Auth,
                true,
            ),
            (
                403,
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
                ErrorKind::Permission,
                true,
            ),
            (
                404,
                "not_found_error",
                "model: claude-9",
                ErrorKind::NotFound,
                true,
            ),
            (
                413,
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
                ErrorKind::BadRequest,
                false,
            ),
            (
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
                ErrorKind::RateLimited,
                true,
            ),
            (
                500,
                "api_error",
                "Internal server error",
                ErrorKind::Unavailable,
                true,
            ),
            (
                529,
                "overloaded_error",
                "Overloaded",
                ErrorKind::Unavailable,
                true,
            ),
            (
                402,
                "billing_error",
                "Payment required",
                ErrorKind::QuotaExhausted,
                true,
            ),
            (
                504,
                "timeout_error",
                "Request timed out",
                ErrorKind::Timeout,
                true,
            ),
        ];
        for (status, error_type, message, kind, retryable) in cases {
            let failure = classify_body(Some(status), &body(error_type, message));
            assert_eq!(failure.kind, kind, "{error_type}");
            assert_eq!(failure.retryable, retryable, "{error_type}");
            assert_eq!(failure.status, Some(status));
            assert_eq!(failure.code.as_deref(), Some(error_type));
            if status != 401 {
                assert_eq!(failure.message, message);
            }
        }
    }

    #[test]
    fn prompt_too_long_is_context_length() {
        let failure = classify_body(
            Some(400),
            &body(
                "invalid_request_error",
                "prompt is too long: 215384 tokens > 200000 maximum",
            ),
        );
        assert_eq!(failure.kind, ErrorKind::ContextLength);
        assert!(!failure.retryable);
        assert_eq!(failure.code.as_deref(), Some("context_length_exceeded"));
        let failure = classify_body(
            Some(400),
            &body(
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000",
            ),
        );
        assert_eq!(failure.kind, ErrorKind::ContextLength);
    }

    #[test]
    fn spent_credits_are_quota() {
        let failure = classify_body(
            Some(400),
            &body(
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API.",
            ),
        );
        assert_eq!(failure.kind, ErrorKind::QuotaExhausted);
        assert!(failure.retryable);
    }

    #[test]
    fn credentials_are_never_echoed() {
        let failure = classify_body(
            Some(401),
            &body("authentication_error", "invalid x-api-key sk-ant-api03-abc"),
        );
        assert!(!failure.message.contains("sk-ant"));
        assert_eq!(failure.kind, ErrorKind::Auth);
    }

    #[test]
    fn unknown_types_and_plain_bodies_fall_back_to_the_status() {
        let failure = classify_body(Some(503), "upstream connect error");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert_eq!(failure.message, "upstream connect error");
        assert_eq!(failure.code, None);
        let failure = classify_body(Some(502), "<html>bad gateway</html>");
        assert_eq!(failure.message, "Anthropic returned HTTP 502");
        let failure = classify_body(Some(418), &body("teapot_error", "short and stout"));
        assert_eq!(failure.kind, ErrorKind::BadRequest);
        assert_eq!(failure.code.as_deref(), Some("teapot_error"));
        let failure = classify_body(None, "{}");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert!(failure.retryable);
        assert_eq!(failure.message, "Anthropic reported an error");
        assert_eq!(read_error_body(&[0xff]), UpstreamError::default());
    }

    #[test]
    fn long_messages_are_cut() {
        let failure = classify_body(Some(500), &body("api_error", &"x".repeat(5000)));
        assert_eq!(failure.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
