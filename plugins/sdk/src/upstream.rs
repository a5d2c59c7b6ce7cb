//! The skeleton every adapter's upstream-error reading shares: how an error body is read
//! (JSON, plain text, or nothing usable), which message reaches the client (never an echoed
//! key, at most [`MAX_MESSAGE_CHARS`] characters, a fallback naming the provider), and the
//! status-derived kind a provider's own error types then sharpen.
//!
//! Each adapter keeps only its provider-specific mapping: the shape of its error bodies, the
//! error types or status names that decide the kind, and the codes it passes on. What is here
//! must not differ between adapters, because the client sees these messages and the failover
//! engine decides from these kinds.
//!
//! Enabled by the SDK's `upstream` feature.

use serde_json::Value;

use crate::http::{error, error_for_status, retry_after_from_headers, truncate_message};
use crate::types::{Error, ErrorKind};

/// Upstream messages are shown to clients; a runaway one (an HTML page, a stack trace) is cut
/// to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// How a provider is named in the messages written when its own cannot be shown.
pub struct Wording {
    /// The whole message when the upstream refused the gateway's key. Upstreams echo part of
    /// the key they refused ("Incorrect API key provided: sk-ab****wxyz"), so their own
    /// message is never shown then.
    pub refused_credentials: &'static str,
    /// Who answered, as in "`<who>` returned HTTP 502" when the body said nothing usable.
    pub who: &'static str,
    /// The whole message for an error with neither status nor message.
    pub reported: &'static str,
}

/// What a provider read from an error body: at least a message.
pub trait ErrorBody: Default {
    /// Where the message goes (a plain-text body is a message and nothing else).
    fn message_mut(&mut self) -> &mut Option<String>;
}

/// Reads an error body of any status: text that is not UTF-8 says nothing (`T::default()`),
/// JSON goes to the provider's `from_value`, and plain text (a proxy's answer) is the message,
/// unless it is empty or an HTML page, which tells the client nothing the status does not.
pub fn read_error_body<T: ErrorBody>(body: &[u8], from_value: impl FnOnce(&Value) -> T) -> T {
    let Ok(text) = std::str::from_utf8(body) else {
        return T::default();
    };
    match serde_json::from_str::<Value>(text) {
        Ok(value) => from_value(&value),
        Err(_) => {
            let text = text.trim();
            let mut found = T::default();
            if !text.is_empty() && !text.starts_with('<') {
                *found.message_mut() = Some(text.to_owned());
            }
            found
        }
    }
}

/// The first element of a body wrapped in a one-element array, as Google's APIs (and
/// Gemini's OpenAI endpoint) send errors; any other value as it is.
pub fn unwrap_array(value: &Value) -> &Value {
    match value {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

/// The `error` object of `{"error": {...}}`, or the value itself when it has none.
pub fn error_object(value: &Value) -> &Value {
    value
        .get("error")
        .filter(|inner| inner.is_object())
        .unwrap_or(value)
}

/// The string field `key` of `object`, unless it is missing or blank.
pub fn text_field(object: &Value, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
        .map(str::to_owned)
}

/// The typed error for an upstream failure, before the provider's mapping sharpens it.
///
/// `status` is the HTTP status (or one the body named); without one (an error event inside a
/// stream already accepted with 200) the upstream is taken to have failed, retryably. The
/// message is the upstream's own, cut to [`MAX_MESSAGE_CHARS`], unless `credentials_refused`.
pub fn classify(
    wording: &Wording,
    status: Option<u16>,
    message: Option<String>,
    credentials_refused: bool,
) -> Error {
    let message = match (status, message) {
        _ if credentials_refused => wording.refused_credentials.to_owned(),
        (_, Some(message)) if !message.trim().is_empty() => {
            truncate_message(message, MAX_MESSAGE_CHARS)
        }
        (Some(status), _) => format!("{} returned HTTP {status}", wording.who),
        (None, _) => wording.reported.to_owned(),
    };
    match status {
        Some(status) => error_for_status(status, message),
        None => error(ErrorKind::Unavailable, true, message),
    }
}

/// Settles a translating adapter's error: `by_type` (kind, retryable) where the provider's
/// error type or status name decides; otherwise a bad request whose message speaks of the
/// context window (`too_long`) is `context-length`. A context-length error carries OpenAI's
/// code `context_length_exceeded` (what clients test for), any other the provider's `code`.
pub fn settle(
    failure: &mut Error,
    by_type: Option<(ErrorKind, bool)>,
    too_long: bool,
    code: Option<String>,
) {
    if let Some((kind, retryable)) = by_type {
        failure.kind = kind;
        failure.retryable = retryable;
    } else if failure.kind == ErrorKind::BadRequest && too_long {
        failure.kind = ErrorKind::ContextLength;
    }
    failure.code = if failure.kind == ErrorKind::ContextLength {
        Some("context_length_exceeded".to_owned())
    } else {
        code
    };
}

/// A failed HTTP answer's error with the wait the upstream asked for: one the body gave (set
/// by the provider's mapping) wins, else `retry-after-ms` / `Retry-After`.
pub fn with_retry_after(mut failure: Error, headers: &[(String, String)]) -> Error {
    failure.retry_after_ms = failure
        .retry_after_ms
        .or_else(|| retry_after_from_headers(headers));
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORDING: Wording = Wording {
        refused_credentials: "Acme refused the gateway's credentials",
        who: "Acme",
        reported: "Acme reported an error",
    };

    #[derive(Default)]
    struct Said(Option<String>);

    impl ErrorBody for Said {
        fn message_mut(&mut self) -> &mut Option<String> {
            &mut self.0
        }
    }

    fn read(body: &[u8]) -> Option<String> {
        read_error_body(body, |value| {
            Said(text_field(error_object(unwrap_array(value)), "message"))
        })
        .0
    }

    #[test]
    fn bodies_are_json_plain_text_or_nothing() {
        assert_eq!(read(br#"{"message":"boom"}"#).as_deref(), Some("boom"));
        assert_eq!(
            read(br#"[{"error":{"message":"wrapped"}}]"#).as_deref(),
            Some("wrapped")
        );
        assert_eq!(read(br#"{"error":{"message":"  "}}"#), None);
        assert_eq!(
            read(b"  upstream connect error\n").as_deref(),
            Some("upstream connect error")
        );
        assert_eq!(read(b"<html>502</html>"), None);
        assert_eq!(read(b"   "), None);
        assert_eq!(read(&[0xff, 0xfe]), None);
    }

    #[test]
    fn messages_never_echo_keys_are_cut_and_fall_back() {
        let refused = classify(&WORDING, Some(401), Some("bad key sk-1".into()), true);
        assert_eq!(refused.message, "Acme refused the gateway's credentials");
        assert_eq!(refused.kind, ErrorKind::Auth);
        let long = classify(&WORDING, Some(500), Some("x".repeat(5000)), false);
        assert_eq!(long.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            classify(&WORDING, Some(502), Some(" ".into()), false).message,
            "Acme returned HTTP 502"
        );
        let reported = classify(&WORDING, None, None, false);
        assert_eq!(reported.message, "Acme reported an error");
        assert_eq!(reported.kind, ErrorKind::Unavailable);
        assert!(reported.retryable);
        assert_eq!(reported.status, None);
    }

    #[test]
    fn settling_prefers_the_type_then_the_message() {
        let mut failure = classify(&WORDING, Some(400), Some("too long".into()), false);
        settle(&mut failure, None, true, Some("invalid".into()));
        assert_eq!(failure.kind, ErrorKind::ContextLength);
        assert_eq!(failure.code.as_deref(), Some("context_length_exceeded"));
        let mut failure = classify(&WORDING, Some(400), Some("slow".into()), false);
        settle(
            &mut failure,
            Some((ErrorKind::RateLimited, true)),
            true,
            Some("rate".into()),
        );
        assert_eq!(
            (failure.kind, failure.retryable),
            (ErrorKind::RateLimited, true)
        );
        assert_eq!(failure.code.as_deref(), Some("rate"));
    }

    #[test]
    fn a_wait_from_the_body_wins_over_the_header() {
        let headers = vec![("retry-after".to_owned(), "5".to_owned())];
        let failure = with_retry_after(error_for_status(429, "slow"), &headers);
        assert_eq!(failure.retry_after_ms, Some(5_000));
        let mut from_body = error_for_status(429, "slow");
        from_body.retry_after_ms = Some(37_000);
        assert_eq!(
            with_retry_after(from_body, &headers).retry_after_ms,
            Some(37_000)
        );
    }
}
