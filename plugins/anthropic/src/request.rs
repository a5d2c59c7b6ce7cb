//! `build-request`: the client's OpenAI chat-completions request as an Anthropic Messages
//! request.
//!
//! What moves where:
//! - `system` and `developer` messages are lifted to the top-level `system` field, which is the
//!   only place Messages accepts them;
//! - `assistant` `tool_calls` become `tool_use` blocks and `tool` messages become `user` turns of
//!   `tool_result` blocks; consecutive turns of one role are merged, since Messages requires
//!   `user` and `assistant` to alternate;
//! - images become `image` blocks (base64 from `data:` URLs, or `url` sources), PDFs sent as
//!   `file` parts become `document` blocks;
//! - `max_tokens` is always set (Messages requires it), `stop` becomes `stop_sequences`, `user`
//!   becomes `metadata.user_id`, tools and `tool_choice` are re-shaped; `cache_control`
//!   markers on content parts, tools and tool messages (Anthropic's prompt caching) are kept;
//! - what Anthropic clients send that OpenAI's format has no field for arrives as extensions
//!   (the gateway's Messages dialect writes them) and is put back: an assistant message's
//!   `thinking_blocks` (thinking with signatures, redacted thinking) lead its turn, and a tool
//!   message's `is_error` marks its `tool_result`. Thinking blocks without a signature (the
//!   reasoning of another provider) are left out: Anthropic would refuse them.
//!
//! `response_format` and `reasoning_effort` are `structured`'s. What Anthropic cannot do
//! (audio, several choices) is an `unsupported` error, which lets the host try another target. Error messages name the
//! offending field by path (`messages[2].content[0]`), never its contents.
//!
//! The request is read through the SDK's typed view (`openai::request::ChatRequest`), which
//! owns the checks every translating adapter makes (roles, content parts, tool calls, tools,
//! `tool_choice`, limits, `stop`); this module owns what the Messages API makes of each value.

use serde_json::{Map, Value, json};

use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::media::parse_data_url;
use freeway_plugin_sdk::openai::request::{
    ChatMessage, ChatRequest, MessageContent, Part, PartKind, Role, ToolChoice, bad_request,
    unsupported,
};
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Auth, HttpRequest, Target};
use freeway_plugin_sdk::types::{Error, ErrorKind};

use crate::settings::Settings;

pub(crate) fn build_request(target: &Target, request: &str) -> Result<HttpRequest, Error> {
    let settings = Settings::parse(&target.provider, &target.settings)?;
    let request = ChatRequest::parse(request)?;
    let body = translate(&request, &target.model, target.stream, &settings)?;
    let body = serde_json::to_vec(&Value::Object(body)).map_err(|write_error| {
        error(
            ErrorKind::Internal,
            false,
            format!("could not write the Messages request: {write_error}"),
        )
    })?;
    let accept = if target.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), accept.to_owned()),
        ("anthropic-version".to_owned(), settings.version),
    ];
    if let Some(betas) = betas(settings.beta.as_deref(), &request) {
        headers.push(("anthropic-beta".to_owned(), betas));
    }
    Ok(HttpRequest {
        method: "POST".to_owned(),
        url: format!("{}/messages", target.base_url.trim_end_matches('/')),
        headers,
        body,
        auth: Auth::Header("x-api-key".to_owned()),
    })
}

/// The `anthropic-beta` header: the configured features, then the client's (`anthropic_beta`,
/// which the gateway's Messages dialect reads from the client's own header), each once. Only
/// feature-name characters pass, so no value can forge a header line.
fn betas(configured: Option<&str>, request: &ChatRequest) -> Option<String> {
    let client = request
        .get("anthropic_beta")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut betas: Vec<&str> = Vec::new();
    for beta in configured
        .into_iter()
        .flat_map(|c| c.split(','))
        .chain(client)
    {
        let beta = beta.trim();
        let valid = !beta.is_empty()
            && beta
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if valid && !betas.contains(&beta) {
            betas.push(beta);
        }
    }
    (!betas.is_empty()).then(|| betas.join(","))
}

/// The Messages request body for an OpenAI request.
pub(crate) fn translate(
    request: &ChatRequest,
    model: &str,
    stream: bool,
    settings: &Settings,
) -> Result<Map<String, Value>, Error> {
    refuse_unsupported(request)?;
    let conversation = translate_messages(request)?;
    let mut body = Map::new();
    body.insert("model".into(), Value::String(model.to_owned()));
    if let Some(system) = conversation.system {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(conversation.turns));
    // Messages requires `max_tokens`.
    let max_tokens = request.max_tokens()?.unwrap_or(settings.default_max_tokens);
    body.insert("max_tokens".into(), Value::from(max_tokens));
    if let Some(temperature) = number(request, "temperature")? {
        // OpenAI's range is 0–2, Anthropic's 0–1: a value above 1 would be refused with a 400
        // that another target would not give, so it is capped (both mean "most random").
        body.insert("temperature".into(), Value::from(temperature.min(1.0)));
    }
    if let Some(top_p) = number(request, "top_p")? {
        body.insert("top_p".into(), Value::from(top_p));
    }
    if let Some(top_k) = request.get("top_k").filter(|value| value.is_u64()) {
        // Not OpenAI's, but clients targeting Claude through OpenAI SDKs send it as an extra.
        body.insert("top_k".into(), top_k.clone());
    }
    let stop = request.stop()?;
    if !stop.is_empty() {
        body.insert("stop_sequences".into(), json!(stop));
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    match request.get("user") {
        Some(Value::String(user)) if !user.is_empty() => {
            body.insert("metadata".into(), json!({ "user_id": user }));
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(_) => return Err(bad_request("`user` must be a string", Some("user".into()))),
    }
    if let Some(thinking) = request.get("thinking").filter(|value| value.is_object()) {
        // Anthropic's extended thinking, passed by clients as an extra body field.
        body.insert("thinking".into(), thinking.clone());
    }
    if let Some(tools) = tools(request)? {
        body.insert("tools".into(), tools);
        if let Some(choice) = tool_choice(request)? {
            body.insert("tool_choice".into(), choice);
        }
    }
    crate::structured::apply(request, &mut body)?;
    Ok(body)
}

/// OpenAI features with no Messages equivalent.
fn refuse_unsupported(request: &ChatRequest) -> Result<(), Error> {
    if request
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(unsupported(
            "Anthropic's Messages API returns one choice per request (`n` > 1)",
            Some("n".into()),
        ));
    }
    let wants_audio =
        request.get("audio").is_some_and(|audio| !audio.is_null()) || request.wants_audio_output();
    if wants_audio {
        return Err(unsupported(
            "Anthropic's Messages API cannot produce audio",
            Some("modalities".into()),
        ));
    }
    Ok(())
}

fn number(request: &ChatRequest, key: &str) -> Result<Option<f64>, Error> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_f64() {
            Some(number) if number >= 0.0 => Ok(Some(number)),
            _ => Err(bad_request(
                format!("`{key}` must be a non-negative number"),
                Some(key.into()),
            )),
        },
    }
}

/// `tools` in Messages form; `None` when the request has none.
fn tools(request: &ChatRequest) -> Result<Option<Value>, Error> {
    let Some(tools) = request.tools("Anthropic's Messages API only takes `function` tools here")?
    else {
        return Ok(None);
    };
    let raw = request.get("tools").and_then(Value::as_array);
    let translated = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let mut out = tool.declaration();
            if let Some(cache) = raw
                .and_then(|raw| raw.get(i))
                .and_then(|raw| raw.get("cache_control"))
                .filter(|cache| cache.is_object())
            {
                out.insert("cache_control".into(), cache.clone());
            }
            // OpenAI allows omitting parameters (a function without arguments); Anthropic
            // requires an object schema.
            let schema = tool
                .parameters
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            out.insert("input_schema".into(), schema);
            Value::Object(out)
        })
        .collect();
    Ok(Some(Value::Array(translated)))
}

/// `tool_choice` (with `parallel_tool_calls: false` folded in); only called when there are tools.
fn tool_choice(request: &ChatRequest) -> Result<Option<Value>, Error> {
    let mut choice = request.tool_choice()?.map(|choice| match choice {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
    });
    if request.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        // `none` takes no options: with no calls there is nothing to run in parallel.
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    Ok(choice)
}

/// The conversation in Messages form.
pub(crate) struct Conversation {
    /// The top-level `system` value: a string for one plain text, else text blocks.
    pub system: Option<Value>,
    /// Alternating `{"role","content":[blocks]}` turns.
    pub turns: Vec<Value>,
}

struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
}

pub(crate) fn translate_messages(request: &ChatRequest) -> Result<Conversation, Error> {
    let mut system_blocks: Vec<Value> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for message in request.messages()? {
        let message = message?;
        let content = message.content();
        match message.role {
            Role::System | Role::Developer => {
                system_blocks.extend(text_only(&message)?);
            }
            Role::User => {
                let blocks = content_blocks(content)?;
                push_turn(&mut turns, "user", blocks);
            }
            Role::Assistant => {
                let mut blocks = thinking_blocks(&message);
                blocks.extend(content_blocks(content)?);
                blocks.extend(tool_use_blocks(&message)?);
                push_turn(&mut turns, "assistant", blocks);
            }
            Role::Tool => {
                let id = message
                    .tool_call_id()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| message.missing_tool_call_id())?;
                let mut result = Map::new();
                result.insert("type".into(), "tool_result".into());
                result.insert("tool_use_id".into(), Value::String(tool_use_id(id)));
                let blocks = content_blocks(content)?;
                if !blocks.is_empty() {
                    result.insert("content".into(), Value::Array(blocks));
                }
                if message.value.get("is_error") == Some(&Value::Bool(true)) {
                    result.insert("is_error".into(), Value::Bool(true));
                }
                if let Some(cache) = message
                    .value
                    .get("cache_control")
                    .filter(|cache| cache.is_object())
                {
                    result.insert("cache_control".into(), cache.clone());
                }
                push_turn(&mut turns, "user", vec![Value::Object(result)]);
            }
            Role::Function => {
                return Err(unsupported(
                    "the legacy `function` role has no Messages equivalent; use `tool`",
                    message.at(".role"),
                ));
            }
        }
    }
    // Messages refuses a final assistant turn (a prefill) ending in whitespace.
    if let Some(last) = turns.last_mut().filter(|turn| turn.role == "assistant") {
        if let Some(Value::Object(block)) = last.blocks.last_mut()
            && let Some(Value::String(text)) = block.get_mut("text")
        {
            text.truncate(text.trim_end().len());
            if text.is_empty() {
                last.blocks.pop();
            }
        }
        if last.blocks.is_empty() {
            turns.pop();
        }
    }
    // One plain text is sent as a string, the form most examples use; several texts, or one
    // marked for prompt caching, as text blocks.
    let system = match system_blocks.as_slice() {
        [] => None,
        [only] if only.get("cache_control").is_none() => only.get("text").cloned(),
        _ => Some(Value::Array(system_blocks)),
    };
    let turns = turns
        .into_iter()
        .map(|turn| json!({"role": turn.role, "content": turn.blocks}))
        .collect();
    Ok(Conversation { system, turns })
}

/// An assistant message's signed `thinking` and `redacted_thinking` blocks, as they were.
fn thinking_blocks(message: &ChatMessage) -> Vec<Value> {
    let Some(Value::Array(blocks)) = message.value.get("thinking_blocks") else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|block| match block.get("type").and_then(Value::as_str) {
            Some("thinking") => block
                .get("signature")
                .and_then(Value::as_str)
                .is_some_and(|signature| !signature.is_empty()),
            Some("redacted_thinking") => block.get("data").is_some_and(Value::is_string),
            _ => false,
        })
        .cloned()
        .collect()
}

/// Appends blocks as a turn of `role`, merged into the previous turn when it has the same role.
fn push_turn(turns: &mut Vec<Turn>, role: &'static str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => last.blocks.extend(blocks),
        _ => turns.push(Turn { role, blocks }),
    }
}

/// The text blocks of a system message (a string or text parts).
fn text_only(message: &ChatMessage) -> Result<Vec<Value>, Error> {
    let blocks = content_blocks(message.content())?;
    if blocks.iter().any(|block| block["type"] != "text") {
        return Err(unsupported(
            "Anthropic's system prompt holds text only",
            message.at(".content"),
        ));
    }
    Ok(blocks)
}

/// Messages content blocks for an OpenAI `content` (a string, content parts or null). Empty
/// texts are dropped: Messages refuses empty text blocks.
fn content_blocks(content: MessageContent) -> Result<Vec<Value>, Error> {
    let mut blocks = Vec::new();
    for part in content.parts()? {
        let part = part?;
        let before = blocks.len();
        match part.kind {
            PartKind::Text(text) => blocks.push(json!({"type": "text", "text": text})),
            PartKind::ImageUrl(url) => blocks.push(image_block(url, || part.param())?),
            PartKind::File => blocks.push(document_block(&part)?),
            PartKind::InputAudio => {
                return Err(unsupported(
                    "Anthropic's Messages API does not accept audio input",
                    part.param(),
                ));
            }
            PartKind::Other => {
                return Err(unsupported(
                    "this content part type has no Messages equivalent",
                    part.param(),
                ));
            }
        }
        // Anthropic's prompt-caching marker, which clients that know Claude put on OpenAI
        // content parts, stays on the block made from the part.
        if let (Some(cache_control), Some(Value::Object(block))) = (
            part.get("cache_control").filter(|value| value.is_object()),
            blocks.get_mut(before),
        ) {
            block.insert("cache_control".into(), cache_control.clone());
        }
    }
    Ok(blocks)
}

fn image_block(url: &str, param: impl Fn() -> Option<String>) -> Result<Value, Error> {
    if let Some(data_url) = parse_data_url(url) {
        let media_type = data_url
            .mime_type
            .filter(|_| data_url.base64)
            .ok_or_else(|| {
                bad_request(
                    "an image `data:` URL must name its media type and be base64",
                    param(),
                )
            })?;
        return Ok(json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type.to_ascii_lowercase(), "data": data_url.data},
        }));
    }
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => {
            Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
        }
        _ => Err(bad_request(
            "an image URL must be http(s) or a `data:` URL",
            param(),
        )),
    }
}

/// A PDF sent as an OpenAI `file` part (`file.file_data` as a `data:` URL) becomes a
/// `document` block; uploaded file ids live in OpenAI's storage, which Anthropic cannot read.
fn document_block(part: &Part) -> Result<Value, Error> {
    let data = part
        .get("file")
        .and_then(|file| file.get("file_data"))
        .and_then(Value::as_str)
        .and_then(parse_data_url)
        .filter(|data_url| data_url.base64);
    match data {
        Some(data_url)
            if data_url
                .mime_type
                .is_some_and(|mime| mime.eq_ignore_ascii_case("application/pdf")) =>
        {
            Ok(json!({
                "type": "document",
                "source": {"type": "base64", "media_type": "application/pdf", "data": data_url.data},
            }))
        }
        _ => Err(unsupported(
            "Anthropic's Messages API takes files here only as base64 PDF `data:` URLs",
            part.param(),
        )),
    }
}

/// `tool_use` blocks for an assistant message's `tool_calls`.
fn tool_use_blocks(message: &ChatMessage) -> Result<Vec<Value>, Error> {
    let calls = message.tool_calls()?;
    let mut blocks = Vec::with_capacity(calls.len());
    for call in calls {
        let id = call
            .id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| bad_request("a tool call needs an `id`", call.at(".id")))?;
        let (name, input) = call.function()?;
        blocks
            .push(json!({"type": "tool_use", "id": tool_use_id(id), "name": name, "input": input}));
    }
    Ok(blocks)
}

/// Messages accepts tool ids matching `^[a-zA-Z0-9_-]+$`; ids minted by other providers
/// (`functions.get_weather:0`) are mapped character by character, the same way for the
/// `tool_use` and its `tool_result`, so the pair still matches.
fn tool_use_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
