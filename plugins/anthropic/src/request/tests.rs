use super::*;
use freeway_plugin_sdk::http::header;

fn target(stream: bool, settings: &str) -> Target {
    Target {
        provider: "anthropic".into(),
        base_url: "https://api.anthropic.com/v1".into(),
        model: "claude-sonnet-4-5".into(),
        stream,
        settings: settings.into(),
    }
}

fn body_of(request: &Value) -> Value {
    let built = build_request(&target(false, "{}"), &request.to_string()).expect("valid");
    serde_json::from_slice(&built.body).expect("the body is JSON")
}

fn fail(request: Value) -> Error {
    build_request(&target(false, "{}"), &request.to_string()).expect_err("refused")
}

#[test]
fn url_headers_and_auth() {
    let built = build_request(
        &target(true, r#"{"version":"2099-01-01","beta":"b1"}"#),
        r#"{"model":"x","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .expect("valid");
    assert_eq!(built.method, "POST");
    assert_eq!(built.url, "https://api.anthropic.com/v1/messages");
    assert!(matches!(&built.auth, Auth::Header(name) if name == "x-api-key"));
    assert_eq!(
        header(&built.headers, "anthropic-version"),
        Some("2099-01-01")
    );
    assert_eq!(header(&built.headers, "anthropic-beta"), Some("b1"));
    assert_eq!(
        header(&built.headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(header(&built.headers, "accept"), Some("text/event-stream"));
    let body: Value = serde_json::from_slice(&built.body).expect("json");
    assert_eq!(body["stream"], true);

    let built =
        build_request(&target(false, "{}"), r#"{"messages":[],"stream":true}"#).expect("valid");
    assert_eq!(
        header(&built.headers, "anthropic-version"),
        Some("2023-06-01")
    );
    assert_eq!(header(&built.headers, "anthropic-beta"), None);
    let body: Value = serde_json::from_slice(&built.body).expect("json");
    assert!(body.get("stream").is_none(), "the target decides streaming");
}

#[test]
fn the_clients_betas_join_the_configured_ones_in_the_header_only() {
    let request = r#"{"messages":[{"role":"user","content":"hi"}],
        "anthropic_beta":["b1","interleaved-thinking-2025-05-14","bad value\r\nx: y"]}"#;
    let built = build_request(&target(false, r#"{"beta":"b1"}"#), request).expect("valid");
    assert_eq!(
        header(&built.headers, "anthropic-beta"),
        Some("b1,interleaved-thinking-2025-05-14")
    );
    let body: Value = serde_json::from_slice(&built.body).expect("json");
    assert!(body.get("anthropic_beta").is_none(), "{body}");
}

#[test]
fn plain_chat_with_system_and_sampling() {
    let body = body_of(&json!({
        "model": "smart",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello"}
        ],
        "temperature": 0.7, "top_p": 0.9, "stop": "END", "user": "user-42",
        "max_tokens": 300, "presence_penalty": 0.5
    }));
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "system": "You are terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
            "max_tokens": 300,
            "temperature": 0.7,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "user-42"}
        })
    );
}

#[test]
fn max_tokens_precedence() {
    let messages = json!([{"role": "user", "content": "hi"}]);
    let with = |extra: Value, settings: &str| {
        let mut request = json!({"messages": messages});
        request
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        let built = build_request(&target(false, settings), &request.to_string()).expect("valid");
        serde_json::from_slice::<Value>(&built.body).expect("json")["max_tokens"].clone()
    };
    assert_eq!(
        with(json!({"max_completion_tokens": 10, "max_tokens": 20}), "{}"),
        10
    );
    assert_eq!(with(json!({"max_tokens": 20}), "{}"), 20);
    assert_eq!(with(json!({"max_tokens": null}), "{}"), 4096);
    assert_eq!(with(json!({}), r#"{"default_max_tokens":512}"#), 512);
    let error = fail(json!({"messages": messages, "max_tokens": -1}));
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert_eq!(error.param.as_deref(), Some("max_tokens"));
}

#[test]
fn temperature_is_capped_and_stop_arrays_pass() {
    let body = body_of(&json!({
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 1.8, "stop": ["\n\nHuman:", "", "###"]
    }));
    assert_eq!(body["temperature"], 1.0);
    assert_eq!(body["stop_sequences"], json!(["\n\nHuman:", "###"]));
    assert_eq!(
        fail(json!({"messages": [], "stop": [1]})).param.as_deref(),
        Some("stop")
    );
}

#[test]
fn several_system_and_developer_messages_become_text_blocks() {
    let body = body_of(&json!({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Rule one."}]},
        {"role": "developer", "content": "Rule two."},
        {"role": "user", "content": "Go"}
    ]}));
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}])
    );
    let error = fail(json!({"messages": [
        {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}
    ]}));
    assert_eq!(error.kind, ErrorKind::Unsupported);
}

#[test]
fn cache_control_markers_stay_on_their_blocks() {
    let body = body_of(&json!({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Long manual…", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Question", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "", "cache_control": {"type": "ephemeral"}}
        ]}
    ]}));
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Long manual…", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type": "text", "text": "Question", "cache_control": {"type": "ephemeral", "ttl": "1h"}}])
    );
}

#[test]
fn images_from_data_urls_and_links() {
    let body = body_of(&json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://upload.wikimedia.org/cat.jpg"}}
    ]}]}));
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/cat.jpg"}}
        ])
    );
    for url in [
        "ftp://x/a.png",
        "data:image/png,rawtext",
        "data:;base64,AAAA",
    ] {
        let error = fail(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}
        ]}]}));
        assert_eq!(error.kind, ErrorKind::BadRequest, "{url}");
        assert_eq!(error.param.as_deref(), Some("messages[0].content[0]"));
    }
}

#[test]
fn pdf_files_become_documents_and_audio_is_unsupported() {
    let body = body_of(&json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
    ]}]}));
    assert_eq!(
        body["messages"][0]["content"][0],
        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
    );
    let audio = fail(json!({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    ]}]}));
    assert_eq!(audio.kind, ErrorKind::Unsupported);
    assert!(audio.retryable);
    assert_eq!(audio.param.as_deref(), Some("messages[0].content[0]"));
    let file_id = fail(json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_id": "file-abc"}}
    ]}]}));
    assert_eq!(file_id.kind, ErrorKind::Unsupported);
}

#[test]
fn tool_round_trip() {
    let body = body_of(&json!({
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "functions.get_weather:1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
            {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": [{"type": "text", "text": "21°C"}]},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "now"}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false
    }));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "functions_get_weather_1", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "18°C"}]},
                {"type": "tool_result", "tool_use_id": "functions_get_weather_1", "content": [{"type": "text", "text": "21°C"}]},
                {"type": "text", "text": "Thanks"}
            ]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([
            {"name": "get_weather", "description": "Current weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
}

#[test]
fn tool_choice_forms() {
    let choice = |choice: Value, parallel: Value| {
        let body = body_of(&json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": choice, "parallel_tool_calls": parallel
        }));
        body.get("tool_choice").cloned()
    };
    assert_eq!(
        choice(json!("auto"), Value::Null),
        Some(json!({"type": "auto"}))
    );
    assert_eq!(
        choice(json!("none"), json!(false)),
        Some(json!({"type": "none"}))
    );
    assert_eq!(
        choice(
            json!({"type": "function", "function": {"name": "f"}}),
            json!(true)
        ),
        Some(json!({"type": "tool", "name": "f"}))
    );
    assert_eq!(
        choice(Value::Null, json!(false)),
        Some(json!({"type": "auto", "disable_parallel_tool_use": true}))
    );
    assert_eq!(choice(Value::Null, Value::Null), None);
    let body = body_of(&json!({"messages": [], "tool_choice": "required"}));
    assert!(
        body.get("tool_choice").is_none(),
        "no tools, nothing to choose"
    );
    let error = fail(
        json!({"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}),
    );
    assert_eq!(error.param.as_deref(), Some("tool_choice"));
    let error = fail(json!({"messages": [], "tools": [{"type": "web_search"}]}));
    assert_eq!(error.kind, ErrorKind::Unsupported);
}

#[test]
fn invalid_tool_arguments_are_a_bad_request_without_echo() {
    for arguments in ["{\"city\": secret", "[1,2]"] {
        let error = fail(json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}
        ]}));
        assert_eq!(error.kind, ErrorKind::BadRequest);
        assert!(!error.retryable);
        assert_eq!(
            error.param.as_deref(),
            Some("messages[0].tool_calls[0].function.arguments")
        );
        assert!(!error.message.contains("secret"));
    }
    let error = fail(json!({"messages": [{"role": "tool", "content": "x"}]}));
    assert_eq!(error.param.as_deref(), Some("messages[0].tool_call_id"));
}

#[test]
fn same_role_turns_merge_and_prefill_is_trimmed() {
    let body = body_of(&json!({"messages": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": "three"},
        {"role": "assistant", "content": "{\"answer\": "}
    ]}));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "{\"answer\":"}]}
        ])
    );
    let body = body_of(&json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "  "}
    ]}));
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
}

#[test]
fn unsupported_features_are_retryable_elsewhere() {
    for (request, param) in [
        (json!({"messages": [], "n": 2}), "n"),
        (
            json!({"messages": [], "modalities": ["text", "audio"]}),
            "modalities",
        ),
        (
            json!({"messages": [], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
            "response_format",
        ),
        (
            json!({"messages": [{"role": "function", "name": "f", "content": "1"}]}),
            "messages[0].role",
        ),
    ] {
        let error = fail(request);
        assert_eq!(error.kind, ErrorKind::Unsupported, "{param}");
        assert!(error.retryable);
        assert_eq!(error.param.as_deref(), Some(param));
    }
    let body =
        body_of(&json!({"messages": [], "response_format": {"type": "json_object"}, "n": 1}));
    assert!(body.get("response_format").is_none());
}

#[test]
fn malformed_requests_are_bad_requests_without_echo() {
    for (text, problem) in [
        ("[\"my secret prompt\"]", "not an object"),
        ("{\"messages\": [my secret", "not valid JSON"),
        ("{}", "`messages` must be an array"),
        ("{\"messages\":[{\"content\":\"secret\"}]}", "`role`"),
        (
            "{\"messages\":[{\"role\":\"wizard\",\"content\":\"secret\"}]}",
            "`role` must be",
        ),
        (
            "{\"messages\":[{\"role\":\"user\",\"content\":42}]}",
            "`content` must be",
        ),
        ("{\"messages\":[],\"user\":7}", "`user`"),
        ("{\"messages\":[],\"temperature\":\"hot\"}", "`temperature`"),
    ] {
        let error = build_request(&target(false, "{}"), text).expect_err("refused");
        assert_eq!(error.kind, ErrorKind::BadRequest, "{text}");
        assert!(!error.retryable);
        assert!(error.message.contains(problem), "{}", error.message);
        assert!(!error.message.contains("secret"));
    }
}

#[test]
fn extensions_from_the_messages_dialect_are_put_back() {
    let body = body_of(&json!({
        "model": "x",
        "tools": [{"type": "function", "function": {"name": "Read"}, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null,
             "thinking_blocks": [
                 {"type": "thinking", "thinking": "plan", "signature": "sig=="},
                 {"type": "thinking", "thinking": "unsigned", "signature": ""},
                 {"type": "redacted_thinking", "data": "opaque"}],
             "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "no such file", "is_error": true,
             "cache_control": {"type": "ephemeral"}},
        ],
    }));
    assert_eq!(body["tools"][0]["cache_control"]["type"], "ephemeral");
    let assistant = &body["messages"][1]["content"];
    assert_eq!(
        assistant[0],
        json!({"type": "thinking", "thinking": "plan", "signature": "sig=="})
    );
    assert_eq!(assistant[1]["type"], "redacted_thinking");
    assert_eq!(assistant[2]["type"], "tool_use");
    let result = &body["messages"][2]["content"][0];
    assert_eq!(result["is_error"], true);
    assert_eq!(result["cache_control"]["type"], "ephemeral");
}
