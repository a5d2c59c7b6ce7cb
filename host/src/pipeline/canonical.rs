//! The canonical request every inbound dialect decodes into: an OpenAI chat-completions body,
//! kept as the text the client (or a filter) wrote — never re-serialised, so fields the gateway
//! does not know reach the provider untouched — plus the facts routing needs, read once.
//! Filters that rewrite a request are checked against the same rules.

use serde_json::{Map, Value};

use crate::error::GatewayError;

/// What a request asks the upstream to do, which picks the adapter's exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Operation {
    /// A chat completion (every dialect but embeddings): `build-request` / `parse-response`.
    #[default]
    Chat,
    /// Embeddings (`POST /v1/embeddings`): the adapter's optional `embedder` export.
    Embeddings,
}

impl Operation {
    /// The OpenTelemetry GenAI operation name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// What the gateway reads from a request. The body itself is kept as bytes.
#[derive(Debug, Clone, Default)]
pub struct ChatRequestInfo {
    pub model: String,
    pub operation: Operation,
    pub stream: bool,
    pub include_usage: bool,
    pub has_tools: bool,
    pub has_images: bool,
    pub max_tokens: Option<u32>,
    /// `response_format` asks for JSON (`json_object` or `json_schema`).
    pub wants_json: bool,
    /// The sampling temperature, when the request sets one (0 makes it cacheable).
    pub temperature: Option<f64>,
    /// A rough prompt size: characters / 4, the usual estimate for English text.
    pub prompt_tokens: u32,
    /// How many messages the conversation holds (logged instead of their text); for
    /// embeddings, how many inputs.
    pub messages: usize,
    pub metadata: Vec<(String, String)>,
    pub user: Option<String>,
    /// A hash of how the conversation began (system and first user message): the same for
    /// every turn of one conversation, so with `user` it keys a sticky session.
    pub conversation: u64,
}

/// A request's `model`: present, a string, not empty (any inbound operation's first check).
pub fn required_model(object: &Map<String, Value>) -> Result<String, GatewayError> {
    match object.get("model") {
        Some(Value::String(m)) if !m.is_empty() => Ok(m.clone()),
        Some(Value::String(_)) => Err(GatewayError::invalid("model", "`model` must not be empty")),
        Some(_) => Err(GatewayError::invalid("model", "`model` must be a string")),
        None => Err(GatewayError::missing("model")),
    }
}

/// Validate a request body and extract what routing needs. Errors name the offending field.
pub fn inspect_chat_request(body: &[u8]) -> Result<ChatRequestInfo, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::invalid_json(format!("the request body is not valid JSON: {e}"))
    })?;
    let Value::Object(object) = value else {
        return Err(GatewayError::invalid_json(
            "the request body must be a JSON object",
        ));
    };
    let model = required_model(&object)?;
    let messages = match object.get("messages") {
        Some(Value::Array(items)) if !items.is_empty() => items,
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
    let mut info = ChatRequestInfo {
        model,
        messages: messages.len(),
        ..Default::default()
    };
    let mut chars = 0usize;
    for (i, message) in messages.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(GatewayError::invalid(
                format!("messages[{i}]"),
                format!("`messages[{i}]` must be an object"),
            ));
        };
        match message.get("role") {
            Some(Value::String(role))
                if matches!(
                    role.as_str(),
                    "system" | "developer" | "user" | "assistant" | "tool" | "function"
                ) => {}
            Some(Value::String(role)) => {
                return Err(GatewayError::invalid(
                    format!("messages[{i}].role"),
                    format!(
                        "`messages[{i}].role` {role:?} is not one of system, developer, user, assistant, tool"
                    ),
                ));
            }
            _ => {
                return Err(GatewayError::invalid(
                    format!("messages[{i}].role"),
                    format!("`messages[{i}].role` is required and must be a string"),
                ));
            }
        }
        match message.get("content") {
            Some(Value::String(text)) => chars += text.len(),
            Some(Value::Array(parts)) => {
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            chars += part.get("text").and_then(Value::as_str).map_or(0, str::len)
                        }
                        Some("image_url") | Some("input_image") => info.has_images = true,
                        _ => {}
                    }
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(GatewayError::invalid(
                    format!("messages[{i}].content"),
                    format!(
                        "`messages[{i}].content` must be a string or an array of content parts"
                    ),
                ));
            }
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            chars += calls.iter().map(|c| c.to_string().len()).sum::<usize>();
        }
    }
    info.prompt_tokens = u32::try_from(chars / 4).unwrap_or(u32::MAX);
    info.conversation = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let first_user = messages
            .iter()
            .position(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .unwrap_or(0);
        for message in &messages[..=first_user] {
            message.get("role").map(Value::to_string).hash(&mut hasher);
            message
                .get("content")
                .map(Value::to_string)
                .hash(&mut hasher);
        }
        hasher.finish()
    };
    match object.get("stream") {
        Some(Value::Bool(stream)) => info.stream = *stream,
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(GatewayError::invalid(
                "stream",
                "`stream` must be a boolean",
            ));
        }
    }
    if let Some(options) = object.get("stream_options").filter(|v| !v.is_null()) {
        match options.get("include_usage") {
            Some(Value::Bool(include)) => info.include_usage = *include,
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(GatewayError::invalid(
                    "stream_options.include_usage",
                    "`stream_options.include_usage` must be a boolean",
                ));
            }
        }
    }
    match object.get("tools") {
        Some(Value::Array(tools)) => info.has_tools = !tools.is_empty(),
        Some(Value::Null) | None => {}
        Some(_) => return Err(GatewayError::invalid("tools", "`tools` must be an array")),
    }
    for field in ["max_completion_tokens", "max_tokens"] {
        match object.get(field) {
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > 0 => {
                    info.max_tokens.get_or_insert(n);
                }
                _ => {
                    return Err(GatewayError::invalid(
                        field,
                        format!("`{field}` must be a positive integer"),
                    ));
                }
            },
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(GatewayError::invalid(
                    field,
                    format!("`{field}` must be a positive integer"),
                ));
            }
        }
    }
    if let Some(Value::Object(metadata)) = object.get("metadata") {
        info.metadata = metadata
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
    }
    info.temperature = object.get("temperature").and_then(Value::as_f64);
    info.wants_json = matches!(
        object
            .get("response_format")
            .and_then(|format| format.get("type"))
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    );
    info.user = object
        .get("user")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_response_format_is_read_from_the_request() {
        let wants = |format: &str| {
            let body =
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{format}}}"#);
            inspect_chat_request(body.as_bytes())
                .expect("valid")
                .wants_json
        };
        assert!(wants(r#","response_format":{"type":"json_object"}"#));
        assert!(wants(
            r#","response_format":{"type":"json_schema","json_schema":{}}"#
        ));
        assert!(!wants(r#","response_format":{"type":"text"}"#));
        assert!(!wants(""));
    }

    #[test]
    fn reads_routing_facts() {
        let info = inspect_chat_request(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":20,
                "tools":[{"type":"function","function":{"name":"f"}}],
                "messages":[{"role":"user","content":[{"type":"text","text":"abcdefgh"},{"type":"image_url","image_url":{"url":"data:"}}]}]}"#,
        )
        .expect("valid");
        assert_eq!(info.model, "m");
        assert!(info.stream && info.include_usage && info.has_tools && info.has_images);
        assert_eq!(info.max_tokens, Some(20));
        assert_eq!(info.prompt_tokens, 2);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (br#"{"model":"m"}"#, "messages"),
            (br#"{"model":"m","messages":{}}"#, "messages"),
            (br#"{"model":1,"messages":[]}"#, "model"),
            (
                br#"{"model":"m","messages":[{"content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                "stream",
            ),
        ];
        for (body, param) in cases {
            let error = inspect_chat_request(body).expect_err("invalid");
            assert_eq!(error.status(), hyper::StatusCode::BAD_REQUEST);
            assert_eq!(error.param(), Some(param), "{error}");
        }
        let error = inspect_chat_request(b"{not json").expect_err("invalid json");
        assert_eq!(error.code(), "invalid_json");
    }
}
