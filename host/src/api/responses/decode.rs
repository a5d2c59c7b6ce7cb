//! An OpenAI Responses request as the canonical chat-completions body, statelessly.
//!
//! `instructions` becomes the first `system` message; `input` (a string, or items) becomes the
//! conversation: message items keep their role and their `input_text` / `output_text` /
//! `input_image` / `input_file` parts as chat content parts, `function_call` items join the
//! assistant message before them as `tool_calls`, `function_call_output` items become `tool`
//! messages, and `reasoning` items (opaque to every other provider) are left out. Function
//! tools are re-nested under `function`, `text.format` becomes `response_format`,
//! `reasoning.effort` `reasoning_effort`, `max_output_tokens` `max_completion_tokens`.
//!
//! The gateway stores no responses, so `previous_response_id` and `conversation` are refused
//! with a clear 400 rather than silently answering without the earlier turns; so are
//! `background` and OpenAI's hosted tools, which only OpenAI can run.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;

pub fn to_canonical(body: &[u8]) -> Result<Map<String, Value>, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid_json(format!("the request body is not valid JSON: {e}"))
    })?;
    let Value::Object(request) = value else {
        return Err(GatewayError::invalid_json(
            "the request body must be a JSON object",
        ));
    };
    for field in ["previous_response_id", "conversation"] {
        if request.get(field).is_some_and(|v| !v.is_null()) {
            return Err(GatewayError::invalid(
                field,
                format!(
                    "`{field}` is not supported: this gateway does not store responses; send \
                     the whole conversation in `input` (with `store: false`)"
                ),
            ));
        }
    }
    if request.get("background") == Some(&Value::Bool(true)) {
        return Err(GatewayError::invalid(
            "background",
            "`background` responses are not supported by this gateway",
        ));
    }
    let mut out = Map::new();
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {
            out.insert("model".into(), Value::String(model.clone()));
        }
        Some(_) => return Err(GatewayError::invalid("model", "`model` must be a string")),
        None => return Err(GatewayError::missing("model")),
    }
    let mut messages = Vec::new();
    match request.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(_) => {
            return Err(GatewayError::invalid(
                "instructions",
                "`instructions` must be a string",
            ));
        }
    }
    match request.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        None => return Err(GatewayError::missing("input")),
        Some(_) => {
            return Err(GatewayError::invalid(
                "input",
                "`input` must be a string or an array of input items",
            ));
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    copy_options(&request, &mut out)?;
    Ok(out)
}

fn str_field<'a>(value: &'a Value, field: &str, at: &str) -> Result<&'a str, GatewayError> {
    value.get(field).and_then(Value::as_str).ok_or_else(|| {
        GatewayError::invalid(
            format!("{at}.{field}"),
            format!("`{at}.{field}` must be a string"),
        )
    })
}

fn input_item(item: &Value, at: &str, messages: &mut Vec<Value>) -> Result<(), GatewayError> {
    let kind = item.get("type").and_then(Value::as_str);
    match kind {
        None | Some("message") => {
            let role = str_field(item, "role", at)?;
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(GatewayError::invalid(
                    format!("{at}.role"),
                    format!("`{at}.role` must be user, assistant, system or developer"),
                ));
            }
            let content = message_content(item.get("content"), &format!("{at}.content"))?;
            messages.push(json!({"role": role, "content": content}));
        }
        Some("function_call") => {
            let call = json!({
                "id": str_field(item, "call_id", at)?,
                "type": "function",
                "function": {
                    "name": str_field(item, "name", at)?,
                    "arguments": str_field(item, "arguments", at)?,
                },
            });
            // Calls join the assistant message right before them (or start one).
            match messages.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    match last.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        Some(calls) => calls.push(call),
                        None => last["tool_calls"] = json!([call]),
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        Some("function_call_output") => {
            let output = match item.get("output") {
                Some(Value::String(text)) => Value::String(text.clone()),
                Some(parts @ Value::Array(_)) => message_content(Some(parts), at)?,
                _ => {
                    return Err(GatewayError::invalid(
                        format!("{at}.output"),
                        format!("`{at}.output` must be a string"),
                    ));
                }
            };
            messages.push(json!({
                "role": "tool",
                "tool_call_id": str_field(item, "call_id", at)?,
                "content": output,
            }));
        }
        // Encrypted or summarised reasoning of an earlier turn: nothing another provider reads.
        Some("reasoning") => {}
        Some(other) => {
            return Err(GatewayError::invalid(
                format!("{at}.type"),
                format!("input items of type `{other}` are not supported by this gateway"),
            ));
        }
    }
    Ok(())
}

/// A message's content: a string, or Responses content parts as chat content parts.
fn message_content(content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    let parts = match content {
        Some(Value::String(text)) => return Ok(Value::String(text.clone())),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(GatewayError::invalid(
                at,
                format!("`{at}` must be a string or an array of content parts"),
            ));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                out.push(json!({"type": "text", "text": str_field(part, "text", &at)?}));
            }
            Some("refusal") => {}
            Some("input_image") => {
                let url = str_field(part, "image_url", &at)?;
                let mut image = json!({"url": url});
                if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                    image["detail"] = detail.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            Some("input_file") => {
                let mut file = Map::new();
                for field in ["file_data", "file_id", "filename"] {
                    if let Some(value) = part.get(field).filter(|v| v.is_string()) {
                        file.insert(field.into(), value.clone());
                    }
                }
                out.push(json!({"type": "file", "file": file}));
            }
            _ => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    format!(
                        "`{at}.type` must be input_text, output_text, input_image or input_file"
                    ),
                ));
            }
        }
    }
    Ok(Value::Array(out))
}

fn copy_options(
    request: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    for field in ["temperature", "top_p", "user", "parallel_tool_calls"] {
        if let Some(value) = request.get(field).filter(|v| !v.is_null()) {
            out.insert(field.into(), value.clone());
        }
    }
    if let Some(max) = request.get("max_output_tokens").filter(|v| !v.is_null()) {
        out.insert("max_completion_tokens".into(), max.clone());
    }
    match request.get("stream") {
        Some(Value::Bool(true)) => {
            out.insert("stream".into(), Value::Bool(true));
            // `response.completed` carries usage; the canonical stream must too.
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(_) => {
            return Err(GatewayError::invalid(
                "stream",
                "`stream` must be a boolean",
            ));
        }
    }
    if let Some(effort) = request
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|e| e.is_string())
    {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    if let Some(format) = request.get("text").and_then(|t| t.get("format")) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut schema = Map::new();
                for field in ["name", "schema", "strict", "description"] {
                    if let Some(value) = format.get(field).filter(|v| !v.is_null()) {
                        schema.insert(field.into(), value.clone());
                    }
                }
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some("json_object") => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("text") | None => {}
            Some(other) => {
                return Err(GatewayError::invalid(
                    "text.format.type",
                    format!(
                        "`text.format.type` `{other}` is not one of text, json_schema, json_object"
                    ),
                ));
            }
        }
    }
    if let Some(tools) = request.get("tools").filter(|v| !v.is_null()) {
        let Value::Array(tools) = tools else {
            return Err(GatewayError::invalid("tools", "`tools` must be an array"));
        };
        let mut translated = Vec::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            let at = format!("tools[{i}]");
            match tool.get("type").and_then(Value::as_str) {
                Some("function") => {}
                other => {
                    return Err(GatewayError::UnsupportedRequest {
                        message: format!(
                            "`{at}` is a `{}` tool, which only OpenAI can run; this gateway \
                             routes function tools only",
                            other.unwrap_or("untyped")
                        ),
                    });
                }
            }
            let mut function = json!({"name": str_field(tool, "name", &at)?});
            for field in ["description", "parameters", "strict"] {
                if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
                    function[field] = value.clone();
                }
            }
            translated.push(json!({"type": "function", "function": function}));
        }
        if !translated.is_empty() {
            out.insert("tools".into(), Value::Array(translated));
            if let Some(choice) = request.get("tool_choice").filter(|v| !v.is_null()) {
                let choice = match choice {
                    Value::String(_) => choice.clone(),
                    _ => {
                        json!({"type": "function", "function": {"name": str_field(choice, "name", "tool_choice")?}})
                    }
                };
                out.insert("tool_choice".into(), choice);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_a_chat_conversation() {
        let body = json!({
            "model": "m", "instructions": "Be brief.", "max_output_tokens": 50,
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "42"},
            ],
        });
        let out = Value::Object(to_canonical(body.to_string().as_bytes()).expect("valid"));
        assert_eq!(
            out["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(out["messages"][1]["content"][0]["text"], "hi");
        assert_eq!(out["messages"][2]["tool_calls"][0]["id"], "c1");
        assert_eq!(out["messages"][3]["role"], "tool");
        assert_eq!(out["max_completion_tokens"], 50);
        assert_eq!(out["reasoning_effort"], "low");
        assert_eq!(out["response_format"]["json_schema"]["name"], "w");
        assert_eq!(out["tools"][0]["function"]["name"], "f");
        assert_eq!(out["tool_choice"]["function"]["name"], "f");
    }

    #[test]
    fn stored_state_is_refused() {
        let error = to_canonical(br#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#)
            .expect_err("refused");
        assert_eq!(error.param(), Some("previous_response_id"));
        assert!(error.to_string().contains("does not store responses"));
    }
}
