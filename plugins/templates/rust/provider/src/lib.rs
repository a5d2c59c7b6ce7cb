//! {{name}}: a Freeway provider adapter for an OpenAI-compatible API (`{base_url}/chat/completions`,
//! Bearer key). Requests pass through with `model` set to the upstream's id; answers pass back
//! as they are; errors become typed errors the gateway's failover understands.

wit_bindgen::generate!({ path: "wit", world: "provider" });

use std::cell::RefCell;

use exports::freeway::plugin::adapter::{
    Auth, Chunk, Completion, Guest as Adapter, GuestStreamDecoder, Headers, HttpRequest,
    RateLimits, Target,
};
use freeway::plugin::types::{Error, ErrorKind, PluginKind, Usage};
use serde_json::Value;

struct Plugin;

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "{{name}}".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Provider,
            description: "pass-through adapter for an OpenAI-compatible API".into(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        match serde_json::from_str::<Value>(&settings) {
            Ok(Value::Object(map)) if map.is_empty() => Ok(()),
            _ if settings.trim().is_empty() => Ok(()),
            _ => Err(format!("{{name}} takes no settings, got {settings}")),
        }
    }
}

impl Adapter for Plugin {
    type StreamDecoder = Decoder;

    fn build_request(target: Target, request: String) -> Result<HttpRequest, Error> {
        let mut body: Value = serde_json::from_str(&request)
            .map_err(|e| error(ErrorKind::BadRequest, None, format!("the request is not JSON: {e}")))?;
        let Some(fields) = body.as_object_mut() else {
            return Err(error(ErrorKind::BadRequest, None, "the request is not a JSON object".into()));
        };
        fields.insert("model".into(), Value::String(target.model.clone()));
        fields.remove("stream_options");
        if target.stream {
            // The gateway needs token usage: ask for it on every stream.
            fields.insert("stream".into(), Value::Bool(true));
            fields.insert("stream_options".into(), serde_json::json!({"include_usage": true}));
        } else {
            fields.remove("stream");
        }
        Ok(HttpRequest {
            method: "POST".into(),
            url: format!("{}/chat/completions", target.base_url.trim_end_matches('/')),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            auth: Auth::Bearer,
        })
    }

    fn parse_response(
        _target: Target,
        status: u16,
        _headers: Headers,
        body: Vec<u8>,
    ) -> Result<Completion, Error> {
        let text = String::from_utf8_lossy(&body).into_owned();
        if !(200..300).contains(&status) {
            return Err(upstream_error(status, &text));
        }
        let json: Value = serde_json::from_str(&text).map_err(|e| {
            error(ErrorKind::InvalidResponse, Some(status), format!("the upstream answered non-JSON: {e}"))
        })?;
        Ok(Completion {
            usage: usage(&json),
            body: text,
        })
    }

    fn read_rate_limits(_status: u16, headers: Headers, _body: Vec<u8>) -> RateLimits {
        let number = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        };
        RateLimits {
            retry_after_ms: number("retry-after").map(|s| s * 1000),
            limit_requests: number("x-ratelimit-limit-requests"),
            remaining_requests: number("x-ratelimit-remaining-requests"),
            reset_requests_ms: None,
            limit_tokens: number("x-ratelimit-limit-tokens"),
            remaining_tokens: number("x-ratelimit-remaining-tokens"),
            reset_tokens_ms: None,
        }
    }
}

/// Server-sent events in, one chunk per `data:` event out (OpenAI's own stream format).
pub struct Decoder {
    buffer: RefCell<Vec<u8>>,
}

impl GuestStreamDecoder for Decoder {
    fn new(_target: Target) -> Self {
        Decoder { buffer: RefCell::new(Vec::new()) }
    }

    fn push(&self, bytes: Vec<u8>) -> Result<Vec<Chunk>, Error> {
        let mut buffer = self.buffer.borrow_mut();
        buffer.extend_from_slice(&bytes);
        let mut chunks = Vec::new();
        // Events end with a blank line; a frame may split anywhere, so keep the tail.
        while let Some(end) = find(&buffer, b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let event = String::from_utf8_lossy(&event).replace('\r', "");
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:").map(str::trim) else { continue };
                if data == "[DONE]" || data.is_empty() {
                    continue;
                }
                let json: Value = serde_json::from_str(data).map_err(|e| {
                    error(ErrorKind::InvalidResponse, None, format!("a stream event is not JSON: {e}"))
                })?;
                chunks.push(Chunk { usage: usage(&json), data: data.to_string() });
            }
        }
        Ok(chunks)
    }

    fn finish(&self) -> Result<Vec<Chunk>, Error> {
        Ok(vec![])
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn usage(json: &Value) -> Option<Usage> {
    let usage = json.get("usage")?;
    Some(Usage {
        prompt_tokens: usage.get("prompt_tokens")?.as_u64()? as u32,
        completion_tokens: usage.get("completion_tokens")?.as_u64()? as u32,
    })
}

/// A non-2xx answer as a typed error: what failover needs is the kind and whether another
/// target may succeed.
fn upstream_error(status: u16, body: &str) -> Error {
    let (kind, retryable) = match status {
        400 | 422 => (ErrorKind::BadRequest, false),
        401 => (ErrorKind::Auth, true),
        403 => (ErrorKind::Permission, true),
        404 => (ErrorKind::NotFound, true),
        408 | 504 => (ErrorKind::Timeout, true),
        429 => (ErrorKind::RateLimited, true),
        _ => (ErrorKind::Unavailable, true),
    };
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| format!("the upstream answered {status}"));
    Error { retryable, ..error(kind, Some(status), message) }
}

fn error(kind: ErrorKind, status: Option<u16>, message: String) -> Error {
    Error {
        kind,
        retryable: false,
        message,
        status,
        retry_after_ms: None,
        code: None,
        param: None,
    }
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_typed_by_status() {
        let e = upstream_error(429, r#"{"error":{"message":"slow down"}}"#);
        assert!(matches!(e.kind, ErrorKind::RateLimited) && e.retryable);
        assert_eq!(e.message, "slow down");
        assert!(matches!(upstream_error(400, "").kind, ErrorKind::BadRequest));
    }

    #[test]
    fn stream_events_split_anywhere() {
        let decoder = Decoder::new(Target {
            provider: "p".into(),
            base_url: "http://x".into(),
            model: "m".into(),
            stream: true,
            settings: "{}".into(),
        });
        assert!(decoder.push(b"data: {\"choices\":[]".to_vec()).unwrap().is_empty());
        let chunks = decoder.push(b"}\n\ndata: [DONE]\n\n".to_vec()).unwrap();
        assert_eq!(chunks.len(), 1);
    }
}
