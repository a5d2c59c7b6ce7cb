//! A typed view of the client's OpenAI chat-completions request, which translating adapters
//! render their upstream's request from.
//!
//! Every translating adapter reads the same fields the same way: `messages` and their roles,
//! content parts (text, images, audio, files), the assistant's `tool_calls`, `tools`,
//! `tool_choice`, the token limit and `stop`. They are read here once, so a malformed request
//! is refused with the same message and the same `param` path whichever provider it was
//! routed to. Only what the upstream does with each value stays in the adapter.
//!
//! The view is lazy on purpose: each accessor checks its field when the adapter asks, and
//! messages, parts and tool calls are checked one at a time as the adapter walks them, so the
//! first error a request meets is the one an adapter meets walking it in its own order.
//! Messages name the field at fault (`messages[2].content[0]`), never its contents.

use serde_json::{Map, Value};

use crate::http::error;
use crate::types::{Error, ErrorKind};

/// The client's request body as a JSON object, or a bad-request error saying why not.
pub fn parse_request_object(request: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(request) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad_request(
            "the request body is JSON but not an object",
            None,
        )),
        Err(parse_error) => Err(bad_request(
            format!(
                "the request body is not valid JSON (line {}, column {})",
                parse_error.line(),
                parse_error.column()
            ),
            None,
        )),
    }
}

/// The request is malformed for this API: not retryable, another target would refuse it too.
pub fn bad_request(message: impl Into<String>, param: Option<String>) -> Error {
    let mut failure = error(ErrorKind::BadRequest, false, message);
    failure.param = param;
    failure
}

/// Something valid in OpenAI's API that this upstream cannot do: another target may.
pub fn unsupported(message: impl Into<String>, param: Option<String>) -> Error {
    let mut failure = error(ErrorKind::Unsupported, true, message);
    failure.param = param;
    failure
}

/// The function name and the decoded arguments object of one OpenAI `tool_calls` entry.
/// `at(".field")` names the field for errors (e.g. `messages[2].tool_calls[0].function`).
pub fn tool_call_function(
    call: &Value,
    at: impl Fn(&str) -> Option<String>,
) -> Result<(&str, Value), Error> {
    let function = call
        .get("function")
        .ok_or_else(|| bad_request("a tool call needs a `function`", at(".function")))?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("a tool call needs `function.name`", at(".function.name")))?;
    let arguments = function
        .get("arguments")
        .and_then(Value::as_str)
        .unwrap_or("");
    if arguments.trim().is_empty() {
        return Ok((name, Value::Object(Map::new())));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => Ok((name, object)),
        Ok(_) => Err(bad_request(
            "a tool call's `function.arguments` must encode a JSON object",
            at(".function.arguments"),
        )),
        Err(_) => Err(bad_request(
            "a tool call's `function.arguments` is not valid JSON",
            at(".function.arguments"),
        )),
    }
}

/// The client's request: its top-level fields, read on demand.
pub struct ChatRequest {
    body: Map<String, Value>,
}

impl ChatRequest {
    /// The request body, which must be a JSON object.
    pub fn parse(text: &str) -> Result<Self, Error> {
        parse_request_object(text).map(|body| Self { body })
    }

    /// A field as the client sent it, for what only one upstream reads.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.body.get(key)
    }

    /// The conversation, one message at a time.
    pub fn messages(&self) -> Result<impl Iterator<Item = Result<ChatMessage<'_>, Error>>, Error> {
        match self.body.get("messages") {
            Some(Value::Array(messages)) => Ok(messages
                .iter()
                .enumerate()
                .map(|(index, value)| ChatMessage::read(index, value))),
            _ => Err(bad_request(
                "`messages` must be an array",
                Some("messages".into()),
            )),
        }
    }

    /// The completion token limit: `max_completion_tokens`, else the older `max_tokens`.
    pub fn max_tokens(&self) -> Result<Option<u64>, Error> {
        for key in ["max_completion_tokens", "max_tokens"] {
            match self.body.get(key) {
                None | Some(Value::Null) => {}
                Some(value) => match value.as_u64() {
                    Some(tokens) if tokens > 0 => return Ok(Some(tokens)),
                    _ => {
                        return Err(bad_request(
                            format!("`{key}` must be a positive integer"),
                            Some(key.into()),
                        ));
                    }
                },
            }
        }
        Ok(None)
    }

    /// The stop sequences, empty ones dropped (none at all when the list ends up empty).
    pub fn stop(&self) -> Result<Vec<&str>, Error> {
        let invalid = || {
            bad_request(
                "`stop` must be a string or an array of strings",
                Some("stop".into()),
            )
        };
        match self.body.get("stop") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(stop)) if stop.is_empty() => Ok(Vec::new()),
            Some(Value::String(stop)) => Ok(vec![stop.as_str()]),
            Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => Ok(stops
                .iter()
                .filter_map(Value::as_str)
                .filter(|stop| !stop.is_empty())
                .collect()),
            Some(_) => Err(invalid()),
        }
    }

    /// Whether the client asked for audio output (`modalities` names `"audio"`).
    pub fn wants_audio_output(&self) -> bool {
        self.body
            .get("modalities")
            .and_then(Value::as_array)
            .is_some_and(|modalities| modalities.iter().any(|m| m == "audio"))
    }

    /// The function tools; `None` when the request has none. A tool of another type is
    /// refused as unsupported with `other_types`, the adapter's words for what it takes.
    pub fn tools(&self, other_types: &str) -> Result<Option<Vec<FunctionTool<'_>>>, Error> {
        let tools = match self.body.get("tools") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(tools)) if tools.is_empty() => return Ok(None),
            Some(Value::Array(tools)) => tools,
            Some(_) => {
                return Err(bad_request(
                    "`tools` must be an array",
                    Some("tools".into()),
                ));
            }
        };
        let mut functions = Vec::with_capacity(tools.len());
        for (index, tool) in tools.iter().enumerate() {
            let param = || Some(format!("tools[{index}]"));
            let kind = tool
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("function");
            if kind != "function" {
                return Err(unsupported(other_types, param()));
            }
            let function = tool
                .get("function")
                .and_then(Value::as_object)
                .ok_or_else(|| bad_request("a tool needs a `function` object", param()))?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .ok_or_else(|| bad_request("a tool function needs a `name`", param()))?;
            let parameters = match function.get("parameters") {
                None | Some(Value::Null) => None,
                Some(schema @ Value::Object(_)) => Some(schema),
                Some(_) => {
                    return Err(bad_request(
                        "a tool's `parameters` must be a JSON Schema object",
                        param(),
                    ));
                }
            };
            functions.push(FunctionTool {
                name,
                description: function.get("description").filter(|d| d.is_string()),
                parameters,
            });
        }
        Ok(Some(functions))
    }

    /// `tool_choice`, when the client set one.
    pub fn tool_choice(&self) -> Result<Option<ToolChoice<'_>>, Error> {
        let invalid = || {
            bad_request(
                "`tool_choice` must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}",
                Some("tool_choice".into()),
            )
        };
        Ok(Some(match self.body.get("tool_choice") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(mode)) => match mode.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                _ => return Err(invalid()),
            },
            Some(Value::Object(named)) => ToolChoice::Function(
                named
                    .get("function")
                    .and_then(|function| function.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(invalid)?,
            ),
            Some(_) => return Err(invalid()),
        }))
    }
}

/// One function tool.
pub struct FunctionTool<'a> {
    pub name: &'a str,
    /// The description, when it is a string.
    pub description: Option<&'a Value>,
    /// The JSON Schema object; `None` when the client left it out (a function without
    /// arguments).
    pub parameters: Option<&'a Value>,
}

impl FunctionTool<'_> {
    /// `{"name", "description"}` (the description when there is one), the start of a function
    /// declaration in every upstream's format.
    pub fn declaration(&self) -> Map<String, Value> {
        let mut declaration = Map::new();
        declaration.insert("name".into(), Value::String(self.name.to_owned()));
        if let Some(description) = self.description {
            declaration.insert("description".into(), description.clone());
        }
        declaration
    }
}

/// What `tool_choice` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolChoice<'a> {
    Auto,
    None,
    Required,
    /// This function, and only it.
    Function(&'a str),
}

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    /// The legacy role `tool` replaced.
    Function,
}

/// One message of the conversation.
pub struct ChatMessage<'a> {
    pub index: usize,
    pub role: Role,
    /// The message as the client sent it.
    pub value: &'a Value,
}

impl<'a> ChatMessage<'a> {
    fn read(index: usize, value: &'a Value) -> Result<Self, Error> {
        let at = |field: &str| Some(format!("messages[{index}]{field}"));
        let role = value
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_request("every message needs a string `role`", at(".role")))?;
        let role = match role {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            "function" => Role::Function,
            _ => {
                return Err(bad_request(
                    "a message's `role` must be system, developer, user, assistant or tool",
                    at(".role"),
                ));
            }
        };
        Ok(Self { index, role, value })
    }

    /// The `param` path of one of this message's fields: `at(".content")` is
    /// `messages[<index>].content`.
    pub fn at(&self, field: &str) -> Option<String> {
        Some(format!("messages[{}]{field}", self.index))
    }

    /// The content (a string, content parts, or null when absent).
    pub fn content(&self) -> MessageContent<'a> {
        MessageContent {
            message: self.index,
            value: self.value.get("content").unwrap_or(&Value::Null),
        }
    }

    /// `tool_call_id`, when it is a string.
    pub fn tool_call_id(&self) -> Option<&'a str> {
        self.value.get("tool_call_id").and_then(Value::as_str)
    }

    /// The error for a tool message without a usable `tool_call_id`.
    pub fn missing_tool_call_id(&self) -> Error {
        bad_request(
            "a tool message needs a `tool_call_id`",
            self.at(".tool_call_id"),
        )
    }

    /// An assistant message's `tool_calls` (none when absent or null), each checked only when
    /// the adapter reads it.
    pub fn tool_calls(&self) -> Result<Vec<ToolCall<'a>>, Error> {
        match self.value.get("tool_calls") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(calls)) => Ok(calls
                .iter()
                .enumerate()
                .map(|(index, value)| ToolCall {
                    message: self.index,
                    index,
                    value,
                })
                .collect()),
            Some(_) => Err(bad_request(
                "`tool_calls` must be an array",
                self.at(".tool_calls"),
            )),
        }
    }
}

/// One entry of an assistant message's `tool_calls`.
pub struct ToolCall<'a> {
    message: usize,
    pub index: usize,
    pub value: &'a Value,
}

impl<'a> ToolCall<'a> {
    /// The `param` path of one of this call's fields.
    pub fn at(&self, field: &str) -> Option<String> {
        Some(format!(
            "messages[{}].tool_calls[{}]{field}",
            self.message, self.index
        ))
    }

    /// The call's `id`, when it is a string.
    pub fn id(&self) -> Option<&'a str> {
        self.value.get("id").and_then(Value::as_str)
    }

    /// The function name and the decoded arguments object.
    pub fn function(&self) -> Result<(&'a str, Value), Error> {
        tool_call_function(self.value, |field| self.at(field))
    }
}

/// A message's content.
#[derive(Clone, Copy)]
pub struct MessageContent<'a> {
    message: usize,
    /// The content as the client sent it (`Null` when absent).
    pub value: &'a Value,
}

impl<'a> MessageContent<'a> {
    /// The content's `param` path (`messages[2].content`).
    pub fn at(&self) -> Option<String> {
        Some(format!("messages[{}].content", self.message))
    }

    /// The content's parts, each checked only when the adapter reads it. A string is one text
    /// part; empty texts are skipped, since no upstream takes an empty part.
    pub fn parts(&self) -> Result<impl Iterator<Item = Result<Part<'a>, Error>> + use<'a>, Error> {
        let message = self.message;
        let (text, items): (Option<&'a str>, &'a [Value]) = match self.value {
            Value::Null => (None, &[]),
            Value::String(text) if text.is_empty() => (None, &[]),
            Value::String(text) => (Some(text.as_str()), &[]),
            Value::Array(items) => (None, items.as_slice()),
            _ => {
                return Err(bad_request(
                    "a message's `content` must be a string or an array of content parts",
                    self.at(),
                ));
            }
        };
        let whole_text = text.map(|text| {
            Ok(Part {
                message,
                index: 0,
                value: None,
                kind: PartKind::Text(text),
            })
        });
        let items = items
            .iter()
            .enumerate()
            .filter_map(move |(index, value)| Part::read(message, index, value).transpose());
        Ok(whole_text.into_iter().chain(items))
    }
}

/// One content part.
pub struct Part<'a> {
    message: usize,
    index: usize,
    /// The part as the client sent it; `None` for a plain string content.
    pub value: Option<&'a Value>,
    pub kind: PartKind<'a>,
}

/// What a content part holds.
pub enum PartKind<'a> {
    /// A `text` or `refusal` part's text, never empty.
    Text(&'a str),
    /// An `image_url` part's URL (a link or a `data:` URL).
    ImageUrl(&'a str),
    /// An `input_audio` part (read by the adapters that take audio).
    InputAudio,
    /// A `file` part.
    File,
    /// Any other part type.
    Other,
}

impl<'a> Part<'a> {
    /// A part, or `None` for an empty text.
    fn read(message: usize, index: usize, value: &'a Value) -> Result<Option<Self>, Error> {
        let param = || Some(format!("messages[{message}].content[{index}]"));
        let kind = match value.get("type").and_then(Value::as_str) {
            Some(kind @ ("text" | "refusal")) => {
                let text = value
                    .get(kind)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad_request("a text part needs a string `text`", param()))?;
                if text.is_empty() {
                    return Ok(None);
                }
                PartKind::Text(text)
            }
            Some("image_url") => PartKind::ImageUrl(
                match value.get("image_url") {
                    Some(Value::String(url)) => Some(url.as_str()),
                    Some(image) => image.get("url").and_then(Value::as_str),
                    None => None,
                }
                .ok_or_else(|| bad_request("an image part needs `image_url.url`", param()))?,
            ),
            Some("input_audio") => PartKind::InputAudio,
            Some("file") => PartKind::File,
            _ => PartKind::Other,
        };
        Ok(Some(Self {
            message,
            index,
            value: Some(value),
            kind,
        }))
    }

    /// The part's `param` path (`messages[2].content[0]`).
    pub fn param(&self) -> Option<String> {
        Some(format!(
            "messages[{}].content[{}]",
            self.message, self.index
        ))
    }

    /// A field of the part object (`input_audio`, `file`, `cache_control`, ...).
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.and_then(|value| value.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: Value) -> ChatRequest {
        ChatRequest::parse(&value.to_string()).expect("an object")
    }

    fn parts<'a>(message: &ChatMessage<'a>) -> Vec<Part<'a>> {
        let parts = message.content().parts().expect("string or array");
        parts.collect::<Result<_, _>>().expect("valid parts")
    }

    #[test]
    fn messages_parts_and_paths() {
        let request = request(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": ""}}]},
            {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "image_url", "image_url": "https://x/a.png"}, {"type": "input_audio"}]}
        ]}));
        let messages: Vec<ChatMessage> = request
            .messages()
            .expect("array")
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(messages[0].role, Role::User);
        assert!(matches!(parts(&messages[0])[0].kind, PartKind::Text("hi")));
        let calls = messages[1].tool_calls().expect("array");
        assert_eq!(calls[0].id(), Some("c1"));
        assert_eq!(calls[0].function().expect("valid"), ("f", json!({})));
        assert_eq!(
            calls[0].at(".id").as_deref(),
            Some("messages[1].tool_calls[0].id")
        );
        let parts = parts(&messages[2]);
        assert_eq!(parts.len(), 2, "the empty text is skipped");
        assert!(matches!(
            parts[0].kind,
            PartKind::ImageUrl("https://x/a.png")
        ));
        assert_eq!(parts[1].param().as_deref(), Some("messages[2].content[2]"));
        assert!(matches!(parts[1].kind, PartKind::InputAudio));
    }

    #[test]
    fn malformed_fields_name_their_path() {
        let param = |value: Value| {
            let request = request(value);
            let failure = match request.messages() {
                Err(failure) => failure,
                Ok(mut messages) => match messages.next().expect("one") {
                    Err(failure) => failure,
                    Ok(message) => match message.content().parts() {
                        Err(failure) => failure,
                        Ok(mut parts) => parts.next().expect("one").err().expect("an invalid part"),
                    },
                },
            };
            assert_eq!(failure.kind, ErrorKind::BadRequest);
            failure.param
        };
        assert_eq!(param(json!({})).as_deref(), Some("messages"));
        assert_eq!(
            param(json!({"messages": [{"content": "x"}]})).as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param(json!({"messages": [{"role": "wizard"}]})).as_deref(),
            Some("messages[0].role")
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": 4}]})).as_deref(),
            Some("messages[0].content")
        );
        assert_eq!(
            param(json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}))
                .as_deref(),
            Some("messages[0].content[0]")
        );
    }

    #[test]
    fn limits_stops_tools_and_choice() {
        let request = request(json!({
            "max_tokens": 20, "max_completion_tokens": 10, "stop": ["", "END"],
            "modalities": ["text", "audio"],
            "tools": [{"type": "function", "function": {"name": "f", "description": "d"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}}
        }));
        assert_eq!(request.max_tokens().expect("valid"), Some(10));
        assert_eq!(request.stop().expect("valid"), ["END"]);
        assert!(request.wants_audio_output());
        let tools = request
            .tools("functions only")
            .expect("valid")
            .expect("some");
        assert_eq!(tools[0].name, "f");
        assert_eq!(tools[0].description, Some(&json!("d")));
        assert!(tools[0].parameters.is_none());
        assert_eq!(
            request.tool_choice().expect("valid"),
            Some(ToolChoice::Function("f"))
        );
        let other = super::tests::request(json!({"tools": [{"type": "web_search"}]}));
        let failure = other.tools("functions only").err().expect("unsupported");
        assert_eq!(failure.kind, ErrorKind::Unsupported);
        assert_eq!(failure.message, "functions only");
        let bad = super::tests::request(json!({"max_tokens": 0, "stop": 3}));
        assert_eq!(
            bad.max_tokens().err().and_then(|f| f.param).as_deref(),
            Some("max_tokens")
        );
        assert_eq!(
            bad.stop().err().and_then(|f| f.param).as_deref(),
            Some("stop")
        );
    }
}
