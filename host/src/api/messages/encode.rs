//! A canonical `chat.completion` as an Anthropic `message`, and the pieces the stream encoder
//! shares with it: the stop reason and the usage counts.
//!
//! Content comes out in Anthropic's order: thinking (the adapter's `thinking_blocks`, with
//! signatures, else the `reasoning_content` other providers return), text, then `tool_use`
//! blocks whose `input` is the call's parsed arguments. Usage splits OpenAI's prompt count
//! back into `input_tokens` and the cache counts Anthropic reports apart from it.

use serde_json::{Map, Value, json};

/// Anthropic's `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's `usage` from OpenAI's: cached prompt tokens (read or written) are not part of
/// Anthropic's `input_tokens`.
pub fn usage(openai: Option<&Value>) -> Value {
    let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
    let openai = openai.unwrap_or(&Value::Null);
    let details = openai.get("prompt_tokens_details");
    let read = count(details.and_then(|d| d.get("cached_tokens")));
    let written = count(details.and_then(|d| d.get("cache_creation_tokens")));
    let prompt = count(openai.get("prompt_tokens"));
    json!({
        "input_tokens": prompt.saturating_sub(read + written),
        "output_tokens": count(openai.get("completion_tokens")),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    })
}

/// A tool call's arguments as the `input` object (`{}` when they are not a JSON object).
pub fn tool_input(arguments: Option<&str>) -> Value {
    arguments
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// The whole answer. A body that is not a chat completion is passed on as it is (it cannot
/// happen with the bundled adapters; a client is better served by seeing it than by a guess).
pub fn message(body: &str) -> Option<Value> {
    let completion: Value = serde_json::from_str(body).ok()?;
    let choice = completion.get("choices")?.get(0)?;
    let message = choice.get("message")?;
    let mut content = Vec::new();
    match message.get("thinking_blocks").and_then(Value::as_array) {
        Some(blocks) if !blocks.is_empty() => content.extend(blocks.iter().cloned()),
        _ => {
            if let Some(text) = message
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                content.push(json!({"type": "thinking", "thinking": text, "signature": ""}));
            }
        }
    }
    if let Some(text) = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function");
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").and_then(Value::as_str).unwrap_or_default(),
            "name": function.and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default(),
            "input": tool_input(function.and_then(|f| f.get("arguments")).and_then(Value::as_str)),
        }));
    }
    let mut out = Map::new();
    out.insert("id".into(), message_id(completion.get("id")));
    out.insert("type".into(), json!("message"));
    out.insert("role".into(), json!("assistant"));
    out.insert(
        "model".into(),
        completion.get("model").cloned().unwrap_or(json!("")),
    );
    out.insert("content".into(), Value::Array(content));
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    out.insert("stop_reason".into(), json!(stop_reason(finish)));
    out.insert("stop_sequence".into(), Value::Null);
    out.insert("usage".into(), usage(completion.get("usage")));
    Some(Value::Object(out))
}

/// Anthropic ids start with `msg_`; an upstream's own id is kept behind that prefix.
pub fn message_id(id: Option<&Value>) -> Value {
    match id.and_then(Value::as_str) {
        Some(id) if id.starts_with("msg_") => json!(id),
        Some(id) => json!(format!("msg_{id}")),
        None => json!("msg_freeway"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_becomes_a_message() {
        let body = json!({
            "id": "chatcmpl-1", "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "let me look",
                "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "s1"}],
                "tool_calls": [{"id": "toolu_1", "type": "function",
                                "function": {"name": "Read", "arguments": "{\"path\":\"a\"}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5,
                      "prompt_tokens_details": {"cached_tokens": 60, "cache_creation_tokens": 30}},
        });
        let message = message(&body.to_string()).expect("a completion");
        assert_eq!(message["id"], "msg_chatcmpl-1");
        assert_eq!(message["content"][0]["signature"], "s1");
        assert_eq!(message["content"][1]["text"], "let me look");
        assert_eq!(message["content"][2]["input"]["path"], "a");
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(message["usage"]["input_tokens"], 10);
        assert_eq!(message["usage"]["cache_read_input_tokens"], 60);
        assert_eq!(message["usage"]["cache_creation_input_tokens"], 30);
    }
}
