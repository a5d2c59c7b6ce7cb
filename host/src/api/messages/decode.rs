//! An Anthropic Messages request as the canonical OpenAI chat-completions body.
//!
//! What moves where: `system` (a string or text blocks) becomes the first `system` message;
//! `user` turns keep their text, image and document blocks as OpenAI content parts, and their
//! `tool_result` blocks become `tool` messages placed before the rest of the turn (OpenAI
//! wants results right after the calls); `assistant` turns keep text and turn `tool_use`
//! blocks into `tool_calls`. `tools`, `tool_choice`, `stop_sequences`, `metadata.user_id`,
//! `temperature`, `top_p`, `top_k` and `stream` have OpenAI counterparts.
//!
//! What OpenAI's format cannot hold rides along as extension fields the Anthropic adapter
//! reads and the others drop, so nothing reaches an Anthropic target changed: the request's
//! `thinking` (top level), an assistant turn's `thinking` and `redacted_thinking` blocks with
//! their signatures (`thinking_blocks` on the message), `cache_control` on every block,
//! system block and tool it was set on, and `is_error` on a tool result. They live inside the
//! messages they belong to, so a filter that rewrites or redacts a message rewrites what
//! reaches the provider — there is no second copy of the conversation to fall out of step.

use serde_json::{Map, Value, json};

use crate::error::GatewayError;

/// The canonical body for an Anthropic request. `count_only` skips what only a generation
/// needs (`max_tokens`, which `count_tokens` does not take).
pub fn to_canonical(body: &[u8], count_only: bool) -> Result<Map<String, Value>, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid_json(format!("the request body is not valid JSON: {e}"))
    })?;
    let Value::Object(request) = value else {
        return Err(GatewayError::invalid_json(
            "the request body must be a JSON object",
        ));
    };
    let mut out = Map::new();
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {
            out.insert("model".into(), Value::String(model.clone()));
        }
        Some(_) => return Err(GatewayError::invalid("model", "`model` must be a string")),
        None => return Err(GatewayError::missing("model")),
    }
    if !count_only {
        match request.get("max_tokens") {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
                out.insert("max_tokens".into(), Value::Number(n.clone()));
            }
            Some(_) => {
                return Err(GatewayError::invalid(
                    "max_tokens",
                    "`max_tokens` must be a positive integer",
                ));
            }
            None => return Err(GatewayError::missing("max_tokens")),
        }
    }
    let mut messages = Vec::new();
    match request.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                let at = format!("system[{i}]");
                if kind(block) != Some("text") {
                    return Err(GatewayError::invalid(
                        at.clone(),
                        format!("`{at}` must be a text block"),
                    ));
                }
                parts.push(text_part(block, &at)?);
            }
            messages.push(json!({"role": "system", "content": parts}));
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "system",
                "`system` must be a string or an array of text blocks",
            ));
        }
    }
    let turns = match request.get("messages") {
        Some(Value::Array(turns)) if !turns.is_empty() => turns,
        Some(Value::Array(_)) => {
            return Err(GatewayError::invalid(
                "messages",
                "`messages` must contain at least one message",
            ));
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "messages",
                "`messages` must be an array of messages",
            ));
        }
        None => return Err(GatewayError::missing("messages")),
    };
    for (i, turn) in turns.iter().enumerate() {
        let at = format!("messages[{i}]");
        match turn.get("role").and_then(Value::as_str) {
            Some("user") => user_turn(turn.get("content"), &at, &mut messages)?,
            Some("assistant") => messages.push(assistant_turn(turn.get("content"), &at)?),
            _ => {
                return Err(GatewayError::invalid(
                    format!("{at}.role"),
                    format!("`{at}.role` must be \"user\" or \"assistant\""),
                ));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    copy_options(&request, &mut out)?;
    if let Some(tools) = request.get("tools").filter(|v| !v.is_null()) {
        let tools = translate_tools(tools)?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
            if let Some(choice) = request.get("tool_choice").filter(|v| !v.is_null()) {
                translate_tool_choice(choice, &mut out)?;
            }
        }
    }
    Ok(out)
}

/// Sampling, stop, streaming, thinking and the end user.
fn copy_options(
    request: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), GatewayError> {
    for field in ["temperature", "top_p", "top_k"] {
        match request.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                out.insert(field.into(), Value::Number(n.clone()));
            }
            Some(_) => {
                return Err(GatewayError::invalid(
                    field,
                    format!("`{field}` must be a number"),
                ));
            }
        }
    }
    match request.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            if !stops.is_empty() {
                out.insert("stop".into(), Value::Array(stops.clone()));
            }
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "stop_sequences",
                "`stop_sequences` must be an array of strings",
            ));
        }
    }
    match request.get("stream") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("stream".into(), Value::Bool(true));
            // Messages streams always end with usage; the canonical stream must carry it.
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "stream",
                "`stream` must be a boolean",
            ));
        }
    }
    match request.get("thinking") {
        None | Some(Value::Null) => {}
        Some(thinking @ Value::Object(object)) => {
            match object.get("type").and_then(Value::as_str) {
                Some("enabled") => {
                    if object
                        .get("budget_tokens")
                        .and_then(Value::as_u64)
                        .is_none_or(|n| n == 0)
                    {
                        return Err(GatewayError::invalid(
                            "thinking.budget_tokens",
                            "`thinking.budget_tokens` must be a positive integer",
                        ));
                    }
                }
                Some("disabled" | "adaptive") => {}
                _ => {
                    return Err(GatewayError::invalid(
                        "thinking.type",
                        "`thinking.type` must be \"enabled\" or \"disabled\"",
                    ));
                }
            }
            out.insert("thinking".into(), thinking.clone());
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "thinking",
                "`thinking` must be an object",
            ));
        }
    }
    match request.get("metadata").and_then(|m| m.get("user_id")) {
        None | Some(Value::Null) => {}
        Some(Value::String(user)) => {
            out.insert("user".into(), Value::String(user.clone()));
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                "metadata.user_id",
                "`metadata.user_id` must be a string",
            ));
        }
    }
    Ok(())
}

fn kind(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

/// A turn's content as blocks: a string is one text block.
fn blocks<'a>(content: Option<&'a Value>, at: &str) -> Result<Vec<&'a Value>, GatewayError> {
    match content {
        Some(Value::Array(blocks)) => Ok(blocks.iter().collect()),
        Some(text @ Value::String(_)) => Ok(vec![text]),
        _ => Err(GatewayError::invalid(
            format!("{at}.content"),
            format!("`{at}.content` must be a string or an array of content blocks"),
        )),
    }
}

/// Copies the block's `cache_control` onto the part made from it.
fn keep_cache_control(block: &Value, mut part: Value) -> Value {
    if let (Some(cache), Value::Object(part)) = (block.get("cache_control"), &mut part)
        && cache.is_object()
    {
        part.insert("cache_control".into(), cache.clone());
    }
    part
}

fn text_part(block: &Value, at: &str) -> Result<Value, GatewayError> {
    if let Value::String(text) = block {
        return Ok(json!({"type": "text", "text": text}));
    }
    let text = block.get("text").and_then(Value::as_str).ok_or_else(|| {
        GatewayError::invalid(
            format!("{at}.text"),
            format!("`{at}.text` must be a string"),
        )
    })?;
    Ok(keep_cache_control(
        block,
        json!({"type": "text", "text": text}),
    ))
}

/// A user turn: its tool results as `tool` messages, then the rest as one `user` message.
fn user_turn(
    content: Option<&Value>,
    at: &str,
    messages: &mut Vec<Value>,
) -> Result<(), GatewayError> {
    let mut parts = Vec::new();
    for (i, block) in blocks(content, at)?.into_iter().enumerate() {
        let at = format!("{at}.content[{i}]");
        match kind(block) {
            _ if block.is_string() => parts.push(text_part(block, &at)?),
            Some("text") => parts.push(text_part(block, &at)?),
            Some("image") => parts.push(keep_cache_control(block, image_part(block, &at)?)),
            Some("document") => parts.push(keep_cache_control(block, document_part(block, &at)?)),
            Some("tool_result") => messages.push(tool_message(block, &at)?),
            Some(other) => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    format!("a user turn cannot hold a `{other}` block (`{at}`)"),
                ));
            }
            None => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    format!("`{at}.type` is required"),
                ));
            }
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn source<'a>(block: &'a Value, at: &str) -> Result<(&'a str, &'a Value), GatewayError> {
    let source = block.get("source").filter(|s| s.is_object());
    match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some(kind) => Ok((kind, source.unwrap_or(&Value::Null))),
        None => Err(GatewayError::invalid(
            format!("{at}.source"),
            format!("`{at}.source` must be an object with a `type`"),
        )),
    }
}

fn str_field<'a>(value: &'a Value, field: &str, at: &str) -> Result<&'a str, GatewayError> {
    value.get(field).and_then(Value::as_str).ok_or_else(|| {
        GatewayError::invalid(
            format!("{at}.{field}"),
            format!("`{at}.{field}` must be a string"),
        )
    })
}

fn image_part(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let url = match source(block, at)? {
        ("base64", source) => {
            let media = str_field(source, "media_type", &format!("{at}.source"))?;
            let data = str_field(source, "data", &format!("{at}.source"))?;
            format!("data:{media};base64,{data}")
        }
        ("url", source) => str_field(source, "url", &format!("{at}.source"))?.to_string(),
        (other, _) => {
            return Err(GatewayError::invalid(
                format!("{at}.source.type"),
                format!("image source type `{other}` is not supported; use base64 or url"),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A PDF (base64) becomes OpenAI's `file` part; a plain-text document its text.
fn document_part(block: &Value, at: &str) -> Result<Value, GatewayError> {
    match source(block, at)? {
        ("base64", source) => {
            let media = str_field(source, "media_type", &format!("{at}.source"))?;
            let data = str_field(source, "data", &format!("{at}.source"))?;
            let mut file = json!({"file_data": format!("data:{media};base64,{data}")});
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file["filename"] = Value::String(title.to_string());
            }
            Ok(json!({"type": "file", "file": file}))
        }
        ("text", source) => {
            let text = str_field(source, "data", &format!("{at}.source"))?;
            Ok(json!({"type": "text", "text": text}))
        }
        (other, _) => Err(GatewayError::invalid(
            format!("{at}.source.type"),
            format!("document source type `{other}` is not supported; use base64 or text"),
        )),
    }
}

fn tool_message(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let id = str_field(block, "tool_use_id", at)?;
    let content = match block.get("content") {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(Value::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("{at}.content[{i}]");
                match kind(item) {
                    Some("text") => parts.push(text_part(item, &at)?),
                    Some("image") => parts.push(keep_cache_control(item, image_part(item, &at)?)),
                    Some("document") => {
                        parts.push(keep_cache_control(item, document_part(item, &at)?))
                    }
                    _ => {
                        return Err(GatewayError::invalid(
                            format!("{at}.type"),
                            format!("`{at}` must be a text, image or document block"),
                        ));
                    }
                }
            }
            Value::Array(parts)
        }
        Some(_) => {
            return Err(GatewayError::invalid(
                format!("{at}.content"),
                format!("`{at}.content` must be a string or an array of blocks"),
            ));
        }
    };
    let mut message = json!({"role": "tool", "tool_call_id": id, "content": content});
    if block.get("is_error") == Some(&Value::Bool(true)) {
        message["is_error"] = Value::Bool(true);
    }
    // A cache breakpoint on the result itself stays with the result.
    if let Some(cache) = block.get("cache_control").filter(|c| c.is_object()) {
        message["cache_control"] = cache.clone();
    }
    Ok(message)
}

/// An assistant turn: text, tool calls, and thinking blocks kept whole with their signatures.
fn assistant_turn(content: Option<&Value>, at: &str) -> Result<Value, GatewayError> {
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    for (i, block) in blocks(content, at)?.into_iter().enumerate() {
        let at = format!("{at}.content[{i}]");
        match kind(block) {
            _ if block.is_string() => parts.push(text_part(block, &at)?),
            Some("text") => parts.push(text_part(block, &at)?),
            Some("tool_use") => {
                let id = str_field(block, "id", &at)?;
                let name = str_field(block, "name", &at)?;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                }));
            }
            Some("thinking") => {
                str_field(block, "thinking", &at)?;
                thinking.push(block.clone());
            }
            Some("redacted_thinking") => {
                str_field(block, "data", &at)?;
                thinking.push(block.clone());
            }
            Some(other) => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    format!("an assistant turn cannot hold a `{other}` block (`{at}`)"),
                ));
            }
            None => {
                return Err(GatewayError::invalid(
                    format!("{at}.type"),
                    format!("`{at}.type` is required"),
                ));
            }
        }
    }
    let cached = parts.iter().any(|p| p.get("cache_control").is_some());
    let content = if parts.is_empty() {
        Value::Null
    } else if cached {
        Value::Array(parts)
    } else {
        let text: String = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        Value::String(text)
    };
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        message["thinking_blocks"] = Value::Array(thinking);
    }
    Ok(message)
}

fn translate_tools(tools: &Value) -> Result<Vec<Value>, GatewayError> {
    let Value::Array(tools) = tools else {
        return Err(GatewayError::invalid("tools", "`tools` must be an array"));
    };
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        match kind(tool) {
            None | Some("custom") => {}
            Some(other) => {
                return Err(GatewayError::UnsupportedRequest {
                    message: format!(
                        "`{at}` is Anthropic's server tool `{other}`, which this gateway cannot \
                         route; declare client tools with `name` and `input_schema`"
                    ),
                });
            }
        }
        let name = str_field(tool, "name", &at)?;
        let mut function = json!({"name": name});
        if let Some(description) = tool.get("description").and_then(Value::as_str) {
            function["description"] = Value::String(description.to_string());
        }
        match tool.get("input_schema") {
            Some(schema @ Value::Object(_)) => function["parameters"] = schema.clone(),
            _ => {
                return Err(GatewayError::invalid(
                    format!("{at}.input_schema"),
                    format!("`{at}.input_schema` must be a JSON schema object"),
                ));
            }
        }
        out.push(keep_cache_control(
            tool,
            json!({"type": "function", "function": function}),
        ));
    }
    Ok(out)
}

fn translate_tool_choice(choice: &Value, out: &mut Map<String, Value>) -> Result<(), GatewayError> {
    let openai = match kind(choice) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = str_field(choice, "name", "tool_choice")?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(GatewayError::invalid(
                "tool_choice.type",
                "`tool_choice.type` must be one of auto, any, tool, none",
            ));
        }
    };
    out.insert("tool_choice".into(), openai);
    if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        out.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
