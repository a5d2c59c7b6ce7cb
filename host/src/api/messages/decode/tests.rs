use super::*;

fn canonical(body: Value) -> Value {
    Value::Object(to_canonical(body.to_string().as_bytes(), false).expect("valid"))
}

#[test]
fn claude_code_shaped_request_keeps_what_openai_cannot_hold() {
    let out = canonical(json!({
        "model": "claude", "max_tokens": 100, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "Read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "read a.txt"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "plan", "signature": "sig=="},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "A", "is_error": true},
                {"type": "text", "text": "go on", "cache_control": {"type": "ephemeral"}}]},
        ],
    }));
    assert_eq!(
        out["messages"][0]["content"][0]["cache_control"]["type"],
        "ephemeral"
    );
    assert_eq!(
        out["messages"][2]["thinking_blocks"][0]["signature"],
        "sig=="
    );
    assert_eq!(
        out["messages"][2]["tool_calls"][0]["function"]["arguments"],
        r#"{"path":"a.txt"}"#
    );
    assert_eq!(out["messages"][3]["role"], "tool");
    assert_eq!(out["messages"][3]["is_error"], true);
    assert_eq!(
        out["messages"][4]["content"][0]["cache_control"]["type"],
        "ephemeral"
    );
    assert_eq!(out["tools"][0]["cache_control"]["type"], "ephemeral");
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["parallel_tool_calls"], false);
    assert_eq!(out["thinking"]["budget_tokens"], 2000);
    assert_eq!(out["user"], "u1");
    assert_eq!(out["stream_options"]["include_usage"], true);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (json!({"max_tokens": 1, "messages": []}), "model"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_use"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "thinking": {"type": "enabled"}, "messages": [{"role": "user", "content": "x"}]}),
            "thinking.budget_tokens",
        ),
    ];
    for (body, param) in cases {
        let error = to_canonical(body.to_string().as_bytes(), false).expect_err("invalid");
        assert_eq!(error.param(), Some(param), "{error}");
    }
}
