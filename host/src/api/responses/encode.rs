//! A canonical `chat.completion` as a Responses `response` object, and the pieces the stream
//! encoder shares with it: output items, usage, status.
//!
//! Output items come in the order the Responses API writes them: a `reasoning` item (its
//! summary is the `reasoning_content` a provider returned), the assistant `message` with one
//! `output_text` part, then one `function_call` item per tool call. A completion cut by the
//! token limit is `incomplete` with `incomplete_details.reason = "max_output_tokens"`.

use serde_json::{Value, json};

/// `resp_…` from the upstream's id (kept behind the prefix).
pub fn response_id(id: Option<&Value>) -> String {
    match id.and_then(Value::as_str) {
        Some(id) if id.starts_with("resp_") => id.to_string(),
        Some(id) => format!("resp_{id}"),
        None => "resp_freeway".to_string(),
    }
}

/// The Responses `usage` from chat usage.
pub fn usage(openai: Option<&Value>) -> Value {
    let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
    let openai = openai.unwrap_or(&Value::Null);
    let input = count(openai.get("prompt_tokens"));
    let output = count(openai.get("completion_tokens"));
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": count(openai.get("prompt_tokens_details").and_then(|d| d.get("cached_tokens"))),
        },
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": count(openai.get("completion_tokens_details").and_then(|d| d.get("reasoning_tokens"))),
        },
        "total_tokens": input + output,
    })
}

pub fn reasoning_item(id: &str, text: &str) -> Value {
    json!({
        "type": "reasoning", "id": format!("rs_{id}"),
        "summary": [{"type": "summary_text", "text": text}],
    })
}

pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": format!("msg_{id}"), "status": status, "role": "assistant",
        "content": [output_text(text)],
    })
}

pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

pub fn function_call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "type": "function_call", "id": format!("fc_{id}"), "call_id": call_id, "name": name,
        "arguments": arguments, "status": status,
    })
}

/// The `response` object around finished output items.
pub fn response(
    id: &str,
    model: &Value,
    created: u64,
    output: Vec<Value>,
    finish_reason: Option<&str>,
    usage_value: Option<&Value>,
) -> Value {
    let incomplete = finish_reason == Some("length");
    json!({
        "id": response_id(Some(&json!(id))),
        "object": "response",
        "created_at": created,
        "status": if incomplete { "incomplete" } else { "completed" },
        "error": null,
        "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage(usage_value),
    })
}

/// The whole answer; `None` when the body is not a chat completion.
pub fn answer(body: &str) -> Option<Value> {
    let completion: Value = serde_json::from_str(body).ok()?;
    let choice = completion.get("choices")?.get(0)?;
    let message = choice.get("message")?;
    let id = completion
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("freeway");
    let mut output = Vec::new();
    if let Some(text) = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        output.push(reasoning_item(id, text));
    }
    if let Some(text) = message.get("content").and_then(Value::as_str) {
        output.push(message_item(id, text, "completed"));
    }
    for (i, call) in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = call.get("function");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        output.push(function_call_item(
            &format!("{id}_{i}"),
            &text(call.get("id")),
            &text(function.and_then(|f| f.get("name"))),
            &text(function.and_then(|f| f.get("arguments"))),
            "completed",
        ));
    }
    let created = completion
        .get("created")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(response(
        id,
        completion.get("model").unwrap_or(&Value::Null),
        created,
        output,
        choice.get("finish_reason").and_then(Value::as_str),
        completion.get("usage"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_becomes_a_response() {
        let body = json!({
            "id": "chatcmpl-1", "model": "m", "created": 7,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "ok", "reasoning_content": "hm",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "f", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                      "prompt_tokens_details": {"cached_tokens": 4}},
        });
        let response = answer(&body.to_string()).expect("a completion");
        assert_eq!(response["id"], "resp_chatcmpl-1");
        assert_eq!(response["status"], "completed");
        let kinds: Vec<&str> = response["output"]
            .as_array()
            .expect("output")
            .iter()
            .map(|item| item["type"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"]);
        assert_eq!(response["output"][2]["call_id"], "call_1");
        assert_eq!(
            response["usage"]["input_tokens_details"]["cached_tokens"],
            4
        );
        assert_eq!(response["usage"]["total_tokens"], 15);
    }
}
