//! `build-request`: the client's OpenAI request, aimed at one upstream model.
//!
//! The body is the client's own: only `model`, `stream` and `stream_options` are rewritten, and
//! every other field (messages, tools, images, provider extensions the gateway has never heard
//! of) is copied byte for byte — except the Anthropic extensions the gateway's Messages dialect
//! writes for the Anthropic adapter (`thinking` and `anthropic_beta` at the top,
//! `thinking_blocks` and `is_error` on messages), which OpenAI-compatible APIs refuse as
//! unknown arguments and are dropped.

use serde_json::{Map, Value};

use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{HttpRequest, Target};
use freeway_plugin_sdk::types::{Error, ErrorKind};

use crate::json::{RawObject, write_entry, write_string};
use crate::settings::Settings;

pub(crate) fn build_request(target: &Target, request: &str) -> Result<HttpRequest, Error> {
    let settings = Settings::parse(&target.provider, &target.settings)?;
    let body = rewrite_body(request, &target.model, target.stream)?;
    let url = format!("{}{}", target.base_url.trim_end_matches('/'), settings.path);
    let accept = if target.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), accept.to_owned()),
    ];
    for (name, value) in settings.headers {
        // A configured header replaces a default of the same name rather than doubling it.
        match headers.iter_mut().find(|(existing, _)| *existing == name) {
            Some(existing) => existing.1 = value,
            None => headers.push((name, value)),
        }
    }
    Ok(HttpRequest {
        method: "POST".to_owned(),
        url,
        headers,
        body,
        auth: settings.auth,
    })
}

/// The request body with `model` set to the upstream's id and the stream fields matching the
/// attempt. When streaming, usage is always requested (`stream_options.include_usage`): the host
/// needs it for accounting and drops the usage chunk if the client did not ask for it. When not
/// streaming, `stream` and `stream_options` are dropped, since OpenAI refuses `stream_options`
/// without `stream: true`.
pub(crate) fn rewrite_body(request: &str, model: &str, stream: bool) -> Result<Vec<u8>, Error> {
    let object = RawObject::parse(request).map_err(|problem| {
        error(
            ErrorKind::BadRequest,
            false,
            format!("the request body {problem}; expected a JSON object"),
        )
    })?;
    let mut body = Vec::with_capacity(request.len() + model.len() + 64);
    body.push(b'{');
    body.extend_from_slice(b"\"model\":");
    write_string(&mut body, model);
    for (key, value) in &object.entries {
        match key.as_ref() {
            "model" | "stream" | "stream_options" | "thinking" | "anthropic_beta" => {}
            "messages" if carries_anthropic_extensions(value.get()) => {
                write_entry(&mut body, key, &without_anthropic_extensions(value.get())?);
            }
            _ => write_entry(&mut body, key, value.get()),
        }
    }
    if stream {
        body.extend_from_slice(b",\"stream\":true,\"stream_options\":");
        match object.get("stream_options") {
            Some(options) => write_stream_options(&mut body, options.get())?,
            None => body.extend_from_slice(b"{\"include_usage\":true}"),
        }
    }
    body.push(b'}');
    Ok(body)
}

const MESSAGE_EXTENSIONS: [&str; 2] = ["thinking_blocks", "is_error"];

/// A cheap look before any parsing: most requests carry neither field.
fn carries_anthropic_extensions(messages: &str) -> bool {
    messages.contains("\"thinking_blocks\"") || messages.contains("\"is_error\"")
}

/// The messages with the Anthropic-only fields removed (the rest re-serialized as is).
fn without_anthropic_extensions(messages: &str) -> Result<String, Error> {
    let mut messages: Value = serde_json::from_str(messages)
        .map_err(|_| error(ErrorKind::BadRequest, false, "`messages` is not valid JSON"))?;
    for message in messages.as_array_mut().into_iter().flatten() {
        if let Some(message) = message.as_object_mut() {
            for field in MESSAGE_EXTENSIONS {
                message.remove(field);
            }
        }
    }
    Ok(messages.to_string())
}

/// The client's `stream_options` (other options such as `include_obfuscation` kept) with
/// `include_usage` forced on.
fn write_stream_options(body: &mut Vec<u8>, client_options: &str) -> Result<(), Error> {
    let mut options = match serde_json::from_str::<Value>(client_options) {
        Ok(Value::Object(options)) => options,
        // `null` or a wrong type: the client asked for nothing usable; ask for usage only.
        _ => Map::new(),
    };
    options.insert("include_usage".to_owned(), Value::Bool(true));
    serde_json::to_writer(body, &options).map_err(|write_error| {
        error(
            ErrorKind::Internal,
            false,
            format!("could not write stream_options: {write_error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::Auth;
    use serde_json::json;

    fn target(stream: bool, settings: &str) -> Target {
        Target {
            provider: "groq".into(),
            base_url: "https://api.groq.com/openai/v1".into(),
            model: "llama-3.3-70b-versatile".into(),
            stream,
            settings: settings.into(),
        }
    }

    fn body_json(request: &HttpRequest) -> Value {
        serde_json::from_slice(&request.body).expect("the body is JSON")
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
        freeway_plugin_sdk::http::header(&request.headers, name)
    }

    #[test]
    fn plain_request_gets_the_upstream_model_and_everything_else_untouched() {
        let client = r#"{"model":"smart","messages":[{"role":"user","content":[{"type":"text","text":"hi \"there\""},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"temperature":0.25,"x_vendor_extension":{"keep":[1,2.50,null]}}"#;
        let request = build_request(&target(false, "{}"), client).expect("valid");
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://api.groq.com/openai/v1/chat/completions"
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(header(&request, "accept"), Some("application/json"));
        assert!(matches!(request.auth, Auth::Bearer));
        let body = String::from_utf8(request.body.clone()).expect("utf-8");
        // Byte-for-byte pass-through of the values the adapter does not own.
        assert!(body.starts_with(r#"{"model":"llama-3.3-70b-versatile","messages":[{"role":"user","content":[{"type":"text","text":"hi \"there\""}"#));
        assert!(body.contains(r#""temperature":0.25"#));
        assert!(body.contains(r#""x_vendor_extension":{"keep":[1,2.50,null]}"#));
        let mut expected: Value = serde_json::from_str(client).expect("json");
        expected["model"] = json!("llama-3.3-70b-versatile");
        assert_eq!(body_json(&request), expected);
    }

    #[test]
    fn streaming_always_asks_for_usage() {
        let request = build_request(
            &target(true, "{}"),
            r#"{"model":"m","messages":[],"stream":true}"#,
        )
        .expect("valid");
        assert_eq!(header(&request, "accept"), Some("text/event-stream"));
        assert_eq!(
            body_json(&request),
            json!({"model":"llama-3.3-70b-versatile","messages":[],"stream":true,"stream_options":{"include_usage":true}})
        );
    }

    #[test]
    fn streaming_keeps_other_stream_options() {
        let body = rewrite_body(
            r#"{"stream":true,"stream_options":{"include_usage":false,"include_obfuscation":false},"messages":[]}"#,
            "m",
            true,
        )
        .expect("valid");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            body["stream_options"],
            json!({"include_usage":true,"include_obfuscation":false})
        );
        let body = rewrite_body(r#"{"stream_options":null}"#, "m", true).expect("valid");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["stream_options"], json!({"include_usage":true}));
    }

    #[test]
    fn non_streaming_attempt_drops_stream_fields() {
        let body = rewrite_body(
            r#"{"messages":[],"stream":true,"stream_options":{"include_usage":true}}"#,
            "m",
            false,
        )
        .expect("valid");
        assert_eq!(body, br#"{"model":"m","messages":[]}"#);
    }

    #[test]
    fn model_names_are_escaped() {
        let body = rewrite_body("{}", "we\"ird\\model", false).expect("valid");
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["model"], "we\"ird\\model");
    }

    #[test]
    fn settings_change_path_headers_and_auth() {
        let settings = r#"{"path":"/v2/chat","auth":{"header":"api-key"},"headers":{"HTTP-Referer":"https://freeway.dev","Accept":"application/x-ndjson"}}"#;
        let mut aimed = target(false, settings);
        aimed.base_url = "https://example.com/api/".into();
        let request = build_request(&aimed, "{}").expect("valid");
        assert_eq!(request.url, "https://example.com/api/v2/chat");
        assert!(matches!(&request.auth, Auth::Header(name) if name == "api-key"));
        assert_eq!(
            header(&request, "http-referer"),
            Some("https://freeway.dev")
        );
        assert_eq!(header(&request, "accept"), Some("application/x-ndjson"));
        assert_eq!(
            request
                .headers
                .iter()
                .filter(|(name, _)| name == "accept")
                .count(),
            1
        );
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_bad_request_without_echoing_it() {
        for (body, problem) in [
            ("[\"my secret prompt\"]", "is JSON but not an object"),
            ("\"my secret prompt\"", "is JSON but not an object"),
            ("{\"messages\": [my secret prompt", "is not valid JSON"),
            ("", "is not valid JSON"),
        ] {
            let error = build_request(&target(false, "{}"), body).expect_err("invalid");
            assert_eq!(error.kind, ErrorKind::BadRequest);
            assert!(!error.retryable);
            assert!(error.message.contains(problem), "{}", error.message);
            assert!(!error.message.contains("secret"), "{}", error.message);
        }
    }

    #[test]
    fn bad_settings_fail_the_attempt_not_the_plugin() {
        let error = build_request(&target(false, r#"{"auth":"basic"}"#), "{}").expect_err("bad");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(error.retryable);
    }

    #[test]
    fn anthropic_extensions_are_dropped() {
        let client = r#"{"model":"m","thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"x","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]},{"role":"tool","tool_call_id":"c","content":"r","is_error":true}]}"#;
        let request = build_request(&target(false, "{}"), client).expect("valid");
        let body = body_json(&request);
        assert!(body.get("thinking").is_none());
        assert!(body["messages"][1].get("thinking_blocks").is_none());
        assert_eq!(body["messages"][1]["content"], "x");
        assert!(body["messages"][2].get("is_error").is_none());
    }
}
