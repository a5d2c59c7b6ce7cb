//! `parse-response`: a whole upstream answer becomes a completion or a typed error; also the
//! reading of upstream error bodies, shared with the stream decoder.
//!
//! A successful body is already OpenAI's `chat.completion`, so it is validated and returned
//! as the same text; only `usage` is read out of it. For failures, the message shown (never
//! an echoed key, one length limit) and the status-derived kind are the SDK's `upstream`
//! skeleton; this module owns the body shapes OpenAI-compatible servers use and what their
//! codes and types sharpen.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use freeway_plugin_sdk::http::invalid_response;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::Completion;
use freeway_plugin_sdk::types::{Error, ErrorKind, Usage};
use freeway_plugin_sdk::upstream::{self, ErrorBody, Wording};

use crate::json::starts_as_object;

const WORDING: Wording = Wording {
    refused_credentials: "the upstream refused the gateway's credentials for this provider (HTTP 401)",
    who: "upstream",
    reported: "the upstream reported an error",
};

pub(crate) fn parse_response(
    status: u16,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Completion, Error> {
    if !(200..300).contains(&status) {
        let failure = classify(Some(status), read_error_body(&body));
        return Err(upstream::with_retry_after(failure, headers));
    }
    let body = String::from_utf8(body)
        .map_err(|_| invalid_response("the upstream answer is not valid UTF-8"))?;
    let usage = read_completion(&body)?;
    Ok(Completion { body, usage })
}

/// The fields of a `chat.completion` the adapter checks; serde skips the rest unparsed.
#[derive(Deserialize)]
struct CompletionEnvelope<'a> {
    #[serde(borrow, default)]
    choices: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Validates a successful body and returns its usage.
fn read_completion(body: &str) -> Result<Option<Usage>, Error> {
    if !starts_as_object(body) {
        return Err(invalid_response("the upstream answer is not a JSON object"));
    }
    let envelope: CompletionEnvelope = serde_json::from_str(body).map_err(|parse_error| {
        invalid_response(format!(
            "the upstream answer is not valid JSON (line {}, column {})",
            parse_error.line(),
            parse_error.column()
        ))
    })?;
    match envelope.choices {
        Some(choices) if choices.get().starts_with('[') => Ok(envelope.usage.and_then(read_usage)),
        // Some gateways (OpenRouter among them) report upstream failures in a 200 body.
        _ if envelope.error.is_some() => Err(error_from_body_value(body)),
        Some(_) => Err(invalid_response(
            "the upstream answer's \"choices\" is not an array",
        )),
        None => Err(invalid_response("the upstream answer has no \"choices\"")),
    }
}

/// Token counts from an OpenAI `usage` object; `None` when it carries neither count.
pub(crate) fn read_usage(usage: &RawValue) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Counts {
        // f64 accepts both `12` and the `12.0` a few servers send.
        prompt_tokens: Option<f64>,
        completion_tokens: Option<f64>,
    }
    let counts: Counts = serde_json::from_str(usage.get()).ok()?;
    if counts.prompt_tokens.is_none() && counts.completion_tokens.is_none() {
        return None;
    }
    // `as` saturates: negative and NaN become 0, huge values u32::MAX.
    let tokens = |count: Option<f64>| count.map_or(0, |count| count as u32);
    Some(Usage {
        prompt_tokens: tokens(counts.prompt_tokens),
        completion_tokens: tokens(counts.completion_tokens),
    })
}

/// What an upstream error body said, in the forms OpenAI-compatible servers use.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct UpstreamError {
    pub message: Option<String>,
    /// OpenAI's `type` (e.g. "insufficient_quota", "invalid_request_error").
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
    /// An HTTP status given in the body (`"code": 429`), as OpenRouter and Gemini do.
    pub status: Option<u16>,
}

/// Reads an error body of any status:
/// `{"error":{"message","type","code","param"}}` (OpenAI), `{"error":"text"}`,
/// `{"message",...}` (Mistral, vLLM), `{"detail": "text" | [{"msg"}]}` (FastAPI servers),
/// `[{"error":{...}}]` (Gemini's OpenAI endpoint), or plain text.
pub(crate) fn read_error_body(body: &[u8]) -> UpstreamError {
    upstream::read_error_body(body, read_error_value)
}

impl ErrorBody for UpstreamError {
    fn message_mut(&mut self) -> &mut Option<String> {
        &mut self.message
    }
}

pub(crate) fn read_error_value(value: &Value) -> UpstreamError {
    let object = match upstream::unwrap_array(value) {
        Value::Object(object) => object,
        Value::String(text) => {
            return UpstreamError {
                message: Some(text.clone()),
                ..UpstreamError::default()
            };
        }
        _ => return UpstreamError::default(),
    };
    match object.get("error") {
        Some(Value::Object(inner)) => return read_error_fields(inner),
        Some(Value::String(text)) => {
            // `{"error": "text", "code": ...}`: the other fields may sit beside it.
            let mut found = read_error_fields(object);
            found.message = Some(text.clone());
            return found;
        }
        _ => {}
    }
    let mut found = read_error_fields(object);
    if found.message.is_none() {
        found.message = match object.get("detail") {
            Some(Value::String(text)) => Some(text.clone()),
            // FastAPI validation errors: only `msg`, since `input` echoes the request.
            Some(Value::Array(items)) => {
                let messages: Vec<&str> = items
                    .iter()
                    .filter_map(|item| item.get("msg").and_then(Value::as_str))
                    .collect();
                (!messages.is_empty()).then(|| messages.join("; "))
            }
            _ => None,
        };
    }
    found
}

fn read_error_fields(object: &Map<String, Value>) -> UpstreamError {
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    let (code, status) = match object.get("code") {
        Some(Value::String(code)) if !code.is_empty() => (Some(code.clone()), None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(status @ 100..=599) => (None, u16::try_from(status).ok()),
            _ => (Some(number.to_string()), None),
        },
        _ => (None, None),
    };
    UpstreamError {
        message: text("message"),
        error_type: text("type"),
        code,
        param: text("param"),
        status,
    }
}

/// The typed error for an upstream failure. `status` is the HTTP status (or one the body
/// named); without one (a mid-stream error event) the upstream is taken to have failed.
pub(crate) fn classify(status: Option<u16>, upstream: UpstreamError) -> Error {
    let status = status.or(upstream.status);
    let mut failure = upstream::classify(&WORDING, status, upstream.message, status == Some(401));
    failure.code = upstream.code;
    failure.param = upstream.param;
    refine(&mut failure, upstream.error_type.as_deref());
    failure
}

/// Sharpens the status-derived kind with what the body says.
fn refine(failure: &mut Error, error_type: Option<&str>) {
    let says = |name: &str| failure.code.as_deref() == Some(name) || error_type == Some(name);
    let client_error = failure
        .status
        .is_none_or(|status| (400..500).contains(&status));
    let message = failure.message.to_ascii_lowercase();
    let (kind, retryable) =
        if says("context_length_exceeded") || (client_error && mentions_context_length(&message)) {
            (ErrorKind::ContextLength, false)
        } else if says("content_filter") || says("content_policy_violation") {
            (ErrorKind::ContentFilter, false)
        } else if says("insufficient_quota") {
            (ErrorKind::QuotaExhausted, true)
        } else if failure.status == Some(429) && mentions_daily_limit(&message) {
            // Groq answers 429 for a spent daily allowance too ("tokens per day (TPD)").
            (ErrorKind::QuotaExhausted, true)
        } else if failure.status == Some(413) && says("rate_limit_exceeded") {
            // Groq: the request alone exceeds this model's tokens-per-minute limit. It will never
            // fit here, but a target with a larger limit can serve it.
            (ErrorKind::Unsupported, true)
        } else {
            return;
        };
    failure.kind = kind;
    failure.retryable = retryable;
}

fn mentions_context_length(message: &str) -> bool {
    [
        "maximum context length",
        "context length exceeded",
        "context_length_exceeded",
        "context window",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
}

fn mentions_daily_limit(message: &str) -> bool {
    ["per day", "(rpd)", "(tpd)", "daily"]
        .iter()
        .any(|phrase| message.contains(phrase))
}

/// The error carried by a JSON body that is known to hold one (a 200 body with `"error"`,
/// or a stream event).
pub(crate) fn error_from_body_value(text: &str) -> Error {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => classify(None, read_error_value(&value)),
        Err(_) => invalid_response("the upstream reported an error that is not valid JSON"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::upstream::MAX_MESSAGE_CHARS;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn fail(status: u16, body: &str) -> Error {
        parse_response(status, &[], body.as_bytes().to_vec()).expect_err("an error")
    }

    #[test]
    fn success_body_is_returned_unchanged_with_usage() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}},"x_unknown":[1.50]}"#;
        let completion = parse_response(200, &[], body.as_bytes().to_vec()).expect("valid");
        assert_eq!(completion.body, body);
        let usage = completion.usage.expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (11, 7));
    }

    #[test]
    fn success_without_usage_has_none() {
        for body in [
            r#"{"choices":[]}"#,
            r#"{"choices":[],"usage":null}"#,
            r#"{"choices":[],"usage":{"total_tokens":3}}"#,
        ] {
            let completion = parse_response(200, &[], body.as_bytes().to_vec()).expect("valid");
            assert!(completion.usage.is_none(), "{body}");
        }
    }

    #[test]
    fn success_that_is_not_a_completion_is_an_invalid_response() {
        for (body, problem) in [
            ("[]", "not a JSON object"),
            ("<html>oops</html>", "not a JSON object"),
            (r#"{"id":"x"}"#, "no \"choices\""),
            (r#"{"choices":{}}"#, "not an array"),
            (r#"{"choices":[}"#, "not valid JSON"),
        ] {
            let error = parse_response(200, &[], body.as_bytes().to_vec()).expect_err("invalid");
            assert_eq!(error.kind, ErrorKind::InvalidResponse, "{body}");
            assert!(error.retryable);
            assert!(error.message.contains(problem), "{}", error.message);
        }
        let error = parse_response(200, &[], vec![0xff, 0xfe]).expect_err("invalid");
        assert_eq!(error.kind, ErrorKind::InvalidResponse);
    }

    #[test]
    fn error_in_a_success_body_is_reported() {
        let error = fail(
            200,
            r#"{"error":{"code":502,"message":"Provider returned error"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert_eq!(error.status, Some(502));
        assert_eq!(error.message, "Provider returned error");
    }

    #[test]
    fn openai_error_body() {
        let error = fail(
            400,
            r#"{"error":{"message":"Invalid 'messages': empty array.","type":"invalid_request_error","param":"messages","code":"empty_array"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::BadRequest);
        assert!(!error.retryable);
        assert_eq!(error.status, Some(400));
        assert_eq!(error.message, "Invalid 'messages': empty array.");
        assert_eq!(error.code.as_deref(), Some("empty_array"));
        assert_eq!(error.param.as_deref(), Some("messages"));
    }

    #[test]
    fn other_error_body_shapes() {
        assert_eq!(fail(503, r#"{"error":"overloaded"}"#).message, "overloaded");
        let mistral = fail(
            422,
            r#"{"object":"error","message":"Invalid model: x","type":"invalid_model","param":null,"code":"1500"}"#,
        );
        assert_eq!(mistral.message, "Invalid model: x");
        assert_eq!(mistral.code.as_deref(), Some("1500"));
        assert_eq!(mistral.kind, ErrorKind::BadRequest);
        assert_eq!(fail(404, r#"{"detail":"Not Found"}"#).message, "Not Found");
        let validation = fail(
            422,
            r#"{"detail":[{"loc":["body","messages"],"msg":"field required","type":"missing","input":{"secret":"prompt"}}]}"#,
        );
        assert_eq!(validation.message, "field required");
        let gemini = fail(
            429,
            r#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
        assert_eq!(gemini.message, "Resource has been exhausted");
        assert_eq!(gemini.kind, ErrorKind::RateLimited);
        assert_eq!(gemini.code, None);
        assert_eq!(fail(502, "Bad gateway\n").message, "Bad gateway");
        assert_eq!(
            fail(502, "<html><body>502</body></html>").message,
            "upstream returned HTTP 502"
        );
        assert_eq!(fail(500, "").message, "upstream returned HTTP 500");
        assert_eq!(fail(500, "{}").message, "upstream returned HTTP 500");
        assert_eq!(fail(500, "null").message, "upstream returned HTTP 500");
    }

    #[test]
    fn refused_keys_are_never_echoed() {
        let error = fail(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-ab****wxyz.","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Auth);
        assert!(error.retryable);
        assert!(!error.message.contains("sk-"), "{}", error.message);
        assert_eq!(error.code.as_deref(), Some("invalid_api_key"));
    }

    #[test]
    fn context_length_is_not_retryable() {
        let by_code = fail(
            400,
            r#"{"error":{"message":"Please reduce the length of the messages or completion.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(by_code.kind, ErrorKind::ContextLength);
        assert!(!by_code.retryable);
        let by_message = fail(
            400,
            r#"{"error":{"message":"This model's maximum context length is 65536 tokens. However, you requested 70000 tokens.","type":"invalid_request_error"}}"#,
        );
        assert_eq!(by_message.kind, ErrorKind::ContextLength);
        assert!(!by_message.retryable);
    }

    #[test]
    fn content_filter() {
        for code in ["content_filter", "content_policy_violation"] {
            let error = fail(
                400,
                &format!(r#"{{"error":{{"message":"refused","code":"{code}"}}}}"#),
            );
            assert_eq!(error.kind, ErrorKind::ContentFilter);
            assert!(!error.retryable);
        }
    }

    #[test]
    fn quota_and_rate_limits() {
        let quota = fail(
            429,
            r#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(quota.kind, ErrorKind::QuotaExhausted);
        assert!(quota.retryable);

        let daily = fail(
            429,
            r#"{"error":{"message":"Rate limit reached for model `llama` on tokens per day (TPD): Limit 100000, Used 99500, Requested 1000.","type":"tokens","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(daily.kind, ErrorKind::QuotaExhausted);

        let per_minute = parse_response(
            429,
            &headers(&[("retry-after", "20"), ("x-ratelimit-remaining-requests", "0")]),
            br#"{"error":{"message":"Rate limit reached on requests per min (RPM)","type":"requests","code":"rate_limit_exceeded"}}"#.to_vec(),
        )
        .expect_err("limited");
        assert_eq!(per_minute.kind, ErrorKind::RateLimited);
        assert!(per_minute.retryable);
        assert_eq!(per_minute.retry_after_ms, Some(20_000));
        assert_eq!(per_minute.code.as_deref(), Some("rate_limit_exceeded"));

        let exact = parse_response(429, &headers(&[("retry-after-ms", "250")]), Vec::new())
            .expect_err("limited");
        assert_eq!(exact.retry_after_ms, Some(250));
    }

    #[test]
    fn request_too_large_for_a_tokens_per_minute_limit_can_go_elsewhere() {
        let error = fail(
            413,
            r#"{"error":{"message":"Request too large for model `llama-3.1-8b-instant` on tokens per minute (TPM): Limit 6000, Requested 9000","type":"tokens","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Unsupported);
        assert!(error.retryable);
        let plain_413 = fail(413, "payload too large");
        assert_eq!(plain_413.kind, ErrorKind::BadRequest);
        assert!(!plain_413.retryable);
    }

    #[test]
    fn server_errors_are_retryable() {
        let error = fail(
            503,
            r#"{"error":{"message":"The engine is currently overloaded","type":"server_error"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(error.retryable);
        assert_eq!(fail(504, "").kind, ErrorKind::Timeout);
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(5000);
        let error = fail(500, &long);
        assert_eq!(error.message.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
