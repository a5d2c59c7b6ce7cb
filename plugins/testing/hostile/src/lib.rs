//! A provider adapter that misbehaves on request, for testing the host's sandbox. Never bundled.
//!
//! The upstream model id (`target.model`) picks the misbehaviour:
//!
//! - `"loop"`: `build-request` spins forever (the host's epoch deadline must stop it);
//! - `"oom"`: `build-request` allocates and touches memory until allocation fails and the
//!   instance traps (the host's memory cap must contain it);
//! - `"trap"`: `build-request` panics, which traps the instance;
//! - `"trap-parse"`: `build-request` works, then `parse-response` and the stream decoder's
//!   `push` panic (a failure after the upstream has been called);
//! - `"bad-json"`: `parse-response` returns a completion that is not JSON, and the stream
//!   decoder chunks that are not JSON (the host must refuse them, not pass them on);
//! - `"huge"`: `parse-response` returns a 40 MiB completion (over the host's answer cap);
//! - anything else: a minimal, well-behaved OpenAI-compatible adapter, so the same plugin can
//!   also serve as a healthy target next to its hostile twins.

use std::cell::RefCell;
use std::hint::black_box;

use serde_json::Value;

use freeway_plugin_sdk::http::{error, error_for_status, openai_style_rate_limits};
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{
    self, Auth, Chunk, Completion, HttpRequest, Target,
};
use freeway_plugin_sdk::provider::{self, PluginMetadata};
use freeway_plugin_sdk::sse::SseDecoder;
use freeway_plugin_sdk::types::{Error, ErrorKind, PluginKind, RateLimits, Usage};

/// Never returns, and cannot be optimised away: every iteration passes its counter through
/// `black_box`, which the optimiser must treat as an observable use.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Grows without bound in 1 MiB blocks of non-zero bytes (so every page is really written)
/// until the allocator fails, which aborts and traps the instance.
fn exhaust_memory() -> ! {
    const BLOCK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![0xA5; BLOCK]));
        black_box(&mut hoard);
    }
}

fn trap(what: &str) -> ! {
    panic!("hostile plugin trapped on purpose{what}")
}

struct Hostile;

impl provider::Guest for Hostile {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Provider,
            description: "Test-only adapter that loops, exhausts memory or traps, by model name"
                .to_owned(),
        }
    }

    /// Takes no settings: its behaviour comes from the model name.
    fn check_settings(settings: String) -> Result<(), String> {
        match settings.trim() {
            "" | "{}" => Ok(()),
            _ => Err("hostile takes no settings".to_owned()),
        }
    }
}

impl adapter::Guest for Hostile {
    type StreamDecoder = StreamDecoder;

    fn build_request(target: Target, request: String) -> Result<HttpRequest, Error> {
        match target.model.as_str() {
            "loop" => spin_forever(),
            "oom" => exhaust_memory(),
            "trap" => trap(""),
            _ => build_openai_request(&target, &request),
        }
    }

    fn parse_response(
        target: Target,
        status: u16,
        _headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Completion, Error> {
        match target.model.as_str() {
            "trap-parse" => trap(" (parse-response)"),
            "bad-json" => {
                return Ok(Completion {
                    body: "{\"choices\": [oops".to_owned(),
                    usage: None,
                });
            }
            "huge" => {
                let mut body = String::with_capacity(40 << 20);
                body.push_str("{\"pad\": \"");
                body.extend(std::iter::repeat_n('x', (40 << 20) - 16));
                body.push_str("\"}");
                return Ok(Completion { body, usage: None });
            }
            _ => {}
        }
        parse_openai_response(status, body)
    }

    fn read_rate_limits(
        _status: u16,
        headers: Vec<(String, String)>,
        _body: Vec<u8>,
    ) -> RateLimits {
        openai_style_rate_limits(&headers)
    }
}

/// Like openai-compatible, without its refinements: POST `<base>/chat/completions`, bearer
/// auth, the client's body with `model` replaced (and usage requested when streaming).
fn build_openai_request(target: &Target, request: &str) -> Result<HttpRequest, Error> {
    let mut body: Value = serde_json::from_str(request).map_err(|_| {
        error(
            ErrorKind::BadRequest,
            false,
            "the request body is not valid JSON",
        )
    })?;
    let Some(object) = body.as_object_mut() else {
        return Err(error(
            ErrorKind::BadRequest,
            false,
            "the request body is not a JSON object",
        ));
    };
    object.insert("model".to_owned(), Value::String(target.model.clone()));
    if target.stream {
        object.insert("stream".to_owned(), Value::Bool(true));
        object.insert(
            "stream_options".to_owned(),
            serde_json::json!({"include_usage": true}),
        );
    } else {
        object.remove("stream");
        object.remove("stream_options");
    }
    let body = serde_json::to_vec(&body).map_err(|problem| {
        error(
            ErrorKind::Internal,
            false,
            format!("could not write the request: {problem}"),
        )
    })?;
    let accept = if target.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    Ok(HttpRequest {
        method: "POST".to_owned(),
        url: format!("{}/chat/completions", target.base_url.trim_end_matches('/')),
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), accept.to_owned()),
        ],
        body,
        auth: Auth::Bearer,
    })
}

fn parse_openai_response(status: u16, body: Vec<u8>) -> Result<Completion, Error> {
    if !(200..300).contains(&status) {
        return Err(error_for_status(
            status,
            format!("upstream returned HTTP {status}"),
        ));
    }
    let invalid = || {
        error(
            ErrorKind::InvalidResponse,
            true,
            "the upstream answer is not a JSON object",
        )
    };
    let body = String::from_utf8(body).map_err(|_| invalid())?;
    let parsed: Value = serde_json::from_str(&body).map_err(|_| invalid())?;
    if !parsed.is_object() {
        return Err(invalid());
    }
    let usage = usage_of(&parsed);
    Ok(Completion { body, usage })
}

fn usage_of(value: &Value) -> Option<Usage> {
    let usage = value.get("usage")?;
    let count = |key: &str| {
        usage
            .get(key)
            .and_then(Value::as_u64)
            .map_or(0, |count| u32::try_from(count).unwrap_or(u32::MAX))
    };
    usage.is_object().then(|| Usage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
    })
}

/// Passes each `data:` JSON payload through as a chunk; `[DONE]` ends nothing (the host writes
/// its own).
struct StreamDecoder {
    trap_on_push: bool,
    bad_json: bool,
    sse: RefCell<SseDecoder>,
}

impl StreamDecoder {
    fn chunks(events: Vec<freeway_plugin_sdk::sse::SseEvent>) -> Result<Vec<Chunk>, Error> {
        let mut chunks = Vec::with_capacity(events.len());
        for event in events {
            if event.data == "[DONE]" {
                continue;
            }
            let parsed: Value = serde_json::from_str(&event.data).map_err(|_| {
                error(
                    ErrorKind::InvalidResponse,
                    true,
                    "the upstream sent a stream event that is not JSON",
                )
            })?;
            let usage = match parsed.get("choices").and_then(Value::as_array) {
                Some(choices) if choices.is_empty() => usage_of(&parsed),
                _ => None,
            };
            chunks.push(Chunk {
                data: event.data,
                usage,
            });
        }
        Ok(chunks)
    }
}

impl adapter::GuestStreamDecoder for StreamDecoder {
    fn new(target: Target) -> Self {
        Self {
            trap_on_push: target.model == "trap-parse",
            bad_json: target.model == "bad-json",
            sse: RefCell::new(SseDecoder::new()),
        }
    }

    fn push(&self, bytes: Vec<u8>) -> Result<Vec<Chunk>, Error> {
        if self.trap_on_push {
            trap(" (stream-decoder push)");
        }
        let events = self.sse.borrow_mut().push(&bytes);
        if self.bad_json && !events.is_empty() {
            return Ok(vec![Chunk {
                data: "not json at all".to_owned(),
                usage: None,
            }]);
        }
        Self::chunks(events)
    }

    fn finish(&self) -> Result<Vec<Chunk>, Error> {
        let trailing = self.sse.borrow_mut().finish();
        Self::chunks(trailing.into_iter().collect())
    }
}

freeway_plugin_sdk::export_provider!(Hostile with_types_in freeway_plugin_sdk::provider);

#[cfg(test)]
mod tests {
    use super::*;

    fn target(model: &str, stream: bool) -> Target {
        Target {
            provider: "hostile".into(),
            base_url: "http://127.0.0.1:9/v1".into(),
            model: model.into(),
            stream,
            settings: "{}".into(),
        }
    }

    #[test]
    fn trap_parse_builds_a_valid_request() {
        let request = build_openai_request(
            &target("trap-parse", true),
            r#"{"model":"x","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .expect("valid");
        assert_eq!(request.url, "http://127.0.0.1:9/v1/chat/completions");
        assert!(matches!(request.auth, Auth::Bearer));
        let body: Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(body["model"], "trap-parse");
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][0]["content"], "hi");
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let error = build_openai_request(&target("fine", false), "[1]").expect_err("invalid");
        assert_eq!(error.kind, ErrorKind::BadRequest);
        let error = parse_openai_response(200, b"nope".to_vec()).expect_err("invalid");
        assert_eq!(error.kind, ErrorKind::InvalidResponse);
        let error = parse_openai_response(503, Vec::new()).expect_err("upstream error");
        assert_eq!(error.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn well_behaved_models_parse_answers() {
        let completion = parse_openai_response(
            200,
            br#"{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}"#.to_vec(),
        )
        .expect("valid");
        let usage = completion.usage.expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (2, 3));
    }
}
