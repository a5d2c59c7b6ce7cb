//! OpenAI's `chat.completion` and `chat.completion.chunk` objects, as adapters that translate
//! from another wire format write them (Anthropic, Gemini).
//!
//! Typed structs rather than `serde_json::Value` trees: fields come out in OpenAI's order (a
//! `Value` object sorts its keys), which keeps answers readable next to OpenAI's own, and no
//! map is built per object.

use serde::Serialize;

#[derive(Serialize)]
pub struct Completion<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

#[derive(Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: Message,
    /// Always `null`: the upstream reports no log probabilities.
    pub logprobs: Option<()>,
    pub finish_reason: &'static str,
}

#[derive(Serialize)]
pub struct Message {
    pub role: &'static str,
    /// `null` when the answer is only tool calls, as OpenAI sends it.
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub refusal: Option<()>,
}

/// A tool call, whole (in a completion) or as a stream delta (with `index`, and `id`, `type`
/// and `name` only on the first delta of a call).
#[derive(Serialize)]
pub struct ToolCall {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    pub function: FunctionCall,
}

#[derive(Serialize)]
pub struct FunctionCall {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub arguments: String,
}

#[derive(Serialize)]
pub struct Chunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub logprobs: Option<()>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    /// Reasoning ("thinking") tokens, where the upstream reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Serialize)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

/// Thinking tokens (Gemini's name), which OpenAI calls reasoning tokens.
#[derive(Serialize)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

/// The client's request body as a JSON object, or a bad-request error saying why not.
pub fn parse_request_object(
    request: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, crate::types::Error> {
    match serde_json::from_str::<serde_json::Value>(request) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
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
pub fn bad_request(message: impl Into<String>, param: Option<String>) -> crate::types::Error {
    let mut failure = crate::http::error(crate::types::ErrorKind::BadRequest, false, message);
    failure.param = param;
    failure
}

/// Something valid in OpenAI's API that this upstream cannot do: another target may.
pub fn unsupported(message: impl Into<String>, param: Option<String>) -> crate::types::Error {
    let mut failure = crate::http::error(crate::types::ErrorKind::Unsupported, true, message);
    failure.param = param;
    failure
}

/// The function name and the decoded arguments object of one OpenAI `tool_calls` entry.
/// `at(".field")` names the field for errors (e.g. `messages[2].tool_calls[0].function`).
pub fn tool_call_function(
    call: &serde_json::Value,
    at: impl Fn(&str) -> Option<String>,
) -> Result<(&str, serde_json::Value), crate::types::Error> {
    use serde_json::Value;
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
        return Ok((name, Value::Object(serde_json::Map::new())));
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

/// Seconds since the Unix epoch, for OpenAI's `created` (Anthropic's answers carry no
/// timestamp, Gemini's none in this form). A clock before 1970 (a sandbox without one) gives 0
/// rather than failing.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The JSON text of one of the objects above.
pub fn to_json<T: Serialize>(value: &T) -> String {
    // Cannot fail: these types hold only strings, numbers, options and sequences.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_out_in_openai_order() {
        let chunk = Chunk {
            id: "msg-1",
            object: "chat.completion.chunk",
            created: 7,
            model: "m",
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some("hi".into()),
                    tool_calls: Vec::new(),
                },
                logprobs: None,
                finish_reason: None,
            }],
            usage: None,
        };
        assert_eq!(
            to_json(&chunk),
            r#"{"id":"msg-1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":null}]}"#
        );
    }
}
