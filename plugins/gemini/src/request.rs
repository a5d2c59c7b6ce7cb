//! `build-request`: the client's OpenAI chat-completions request as a Gemini
//! `GenerateContentRequest`.
//!
//! What moves where:
//! - `system` and `developer` messages become `systemInstruction`; `user` keeps its role and
//!   `assistant` becomes `model`; consecutive contents of one role are merged;
//! - `assistant` `tool_calls` become `functionCall` parts and `tool` messages `functionResponse`
//!   parts of a `user` content, named after the call they answer (Gemini matches responses by
//!   function name, OpenAI by call id);
//! - images, audio and files become `inlineData` (from `data:` URLs) or `fileData` (links);
//! - sampling, limits, `n`, penalties, `seed` and `response_format` go into `generationConfig`;
//!   tools into `functionDeclarations` and `tool_choice` into `toolConfig`.
//!
//! Error messages name the offending field by path (`messages[2].content[0]`), never its
//! contents.
//!
//! The request is read through the SDK's typed view (`openai::request::ChatRequest`), which
//! owns the checks every translating adapter makes (roles, content parts, tool calls, tools,
//! `tool_choice`, limits, `stop`); this module owns what Gemini makes of each value.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::media::{mime_type_from_url, parse_data_url};
use freeway_plugin_sdk::openai::request::{
    ChatMessage, ChatRequest, MessageContent, PartKind, Role, ToolChoice, bad_request, unsupported,
};
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Auth, HttpRequest, Target};
use freeway_plugin_sdk::types::{Error, ErrorKind};

use crate::schema;

/// The `thoughtSignature` Google documents for function calls whose real signature is lost.
const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";
use crate::settings::Settings;

pub(crate) fn build_request(target: &Target, request: &str) -> Result<HttpRequest, Error> {
    let settings = Settings::parse(&target.provider, &target.settings)?;
    let model = model_path(&target.model)?;
    let request = ChatRequest::parse(request)?;
    let mut body = translate(&request, &settings)?;
    keep_thinking_on_where_it_cannot_be_off(&mut body, &target.model);
    let body = serde_json::to_vec(&Value::Object(body)).map_err(|write_error| {
        error(
            ErrorKind::Internal,
            false,
            format!("could not write the Gemini request: {write_error}"),
        )
    })?;
    let base = target.base_url.trim_end_matches('/');
    let (url, accept) = if target.stream {
        (
            format!("{base}/{model}:streamGenerateContent?alt=sse"),
            "text/event-stream",
        )
    } else {
        (
            format!("{base}/{model}:generateContent"),
            "application/json",
        )
    };
    Ok(HttpRequest {
        method: "POST".to_owned(),
        url,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), accept.to_owned()),
        ],
        body,
        auth: Auth::Header("x-goog-api-key".to_owned()),
    })
}

/// `models/{model}`; ids that already name a collection (`models/...`, `tunedModels/...`) are
/// kept. The id comes from config and lands in a URL path, so only the characters Google's
/// resource names use are accepted.
pub(crate) fn model_path(model: &str) -> Result<String, Error> {
    let valid = !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && !model
            .split('/')
            .any(|segment| segment.is_empty() || segment == "..");
    if !valid {
        // Retryable: another target's model id may be fine.
        return Err(error(
            ErrorKind::Internal,
            true,
            format!("the configured model id {model:?} is not a valid Gemini model name"),
        ));
    }
    Ok(if model.contains('/') {
        model.to_owned()
    } else {
        format!("models/{model}")
    })
}

/// The `GenerateContentRequest` body for an OpenAI request.
pub(crate) fn translate(
    request: &ChatRequest,
    settings: &Settings,
) -> Result<Map<String, Value>, Error> {
    if request.wants_audio_output() {
        return Err(unsupported(
            "this adapter does not ask Gemini for audio output",
            Some("modalities".into()),
        ));
    }
    let conversation = translate_messages(request)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(conversation.contents));
    if let Some(system) = conversation.system {
        body.insert("systemInstruction".into(), system);
    }
    let config = generation_config(request)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(declarations) = function_declarations(request)? {
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
        if let Some(config) = tool_config(request)? {
            body.insert("toolConfig".into(), config);
        }
    }
    if let Some(safety) = &settings.safety_settings {
        body.insert("safetySettings".into(), safety.clone());
    }
    Ok(body)
}

fn generation_config(request: &ChatRequest) -> Result<Map<String, Value>, Error> {
    let mut config = Map::new();
    for (openai, gemini) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        match request.get(openai) {
            None | Some(Value::Null) => {}
            Some(value) if value.is_number() => {
                config.insert(gemini.into(), value.clone());
            }
            Some(_) => {
                return Err(bad_request(
                    format!("`{openai}` must be a number"),
                    Some(openai.into()),
                ));
            }
        }
    }
    if let Some(tokens) = request.max_tokens()? {
        config.insert("maxOutputTokens".into(), Value::from(tokens));
    }
    let stop = request.stop()?;
    if !stop.is_empty() {
        config.insert("stopSequences".into(), json!(stop));
    }
    match request.get("n") {
        None | Some(Value::Null) => {}
        Some(value) => match value.as_u64() {
            Some(n) if n > 0 => {
                if n > 1 {
                    config.insert("candidateCount".into(), Value::from(n));
                }
            }
            _ => {
                return Err(bad_request(
                    "`n` must be a positive integer",
                    Some("n".into()),
                ));
            }
        },
    }
    match request.get("seed") {
        None | Some(Value::Null) => {}
        Some(seed) if seed.is_i64() || seed.is_u64() => {
            config.insert("seed".into(), seed.clone());
        }
        Some(_) => {
            return Err(bad_request(
                "`seed` must be an integer",
                Some("seed".into()),
            ));
        }
    }
    if let Some(thinking) = thinking_config(request) {
        config.insert("thinkingConfig".into(), thinking);
    }
    if let Some(format) = request.get("response_format").filter(|f| !f.is_null()) {
        let invalid = || {
            bad_request(
                "`response_format` must be {\"type\": \"text\" | \"json_object\" | \"json_schema\"}",
                Some("response_format".into()),
            )
        };
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                config.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                let schema = format
                    .get("json_schema")
                    .and_then(|json_schema| json_schema.get("schema"))
                    .ok_or_else(invalid)?;
                config.insert("responseMimeType".into(), "application/json".into());
                config.insert("responseSchema".into(), schema::to_gemini(schema));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(config)
}

/// `thinkingConfig` for OpenAI's `reasoning_effort` (`none` turns thinking off, then budgets
/// of 512, 1024, 8192 and 24576 tokens from `minimal` to `high`) or an Anthropic-style
/// `thinking` budget; thought summaries are asked for, and come back as `reasoning_content`.
fn thinking_config(request: &ChatRequest) -> Option<Value> {
    let budget = match request.get("reasoning_effort").and_then(Value::as_str) {
        Some("none") => return Some(json!({"thinkingBudget": 0})),
        Some("minimal") => 512,
        Some("low") => 1024,
        Some("medium") => 8192,
        Some("high") => 24576,
        _ => request
            .get("thinking")
            .filter(|thinking| thinking["type"] == "enabled")
            .and_then(|thinking| thinking["budget_tokens"].as_u64())?,
    };
    Some(json!({"thinkingBudget": budget, "includeThoughts": true}))
}

/// The smallest thinking budget of the Gemini models that cannot think 0 tokens (2.5 Pro:
/// 128..32768; Gemini answers a budget of 0 with 400 "This model only works in thinking
/// mode"). `reasoning_effort: "none"` asks for as little reasoning as possible, so those
/// models get this budget (and no thought summaries) instead of a request they refuse.
const MIN_THINKING_BUDGET_PRO: u64 = 128;

fn keep_thinking_on_where_it_cannot_be_off(body: &mut Map<String, Value>, model: &str) {
    let always_thinks = model
        .rsplit('/')
        .next()
        .is_some_and(|id| id.starts_with("gemini-2.5-pro"));
    if !always_thinks {
        return;
    }
    if let Some(thinking) = body
        .get_mut("generationConfig")
        .and_then(|config| config.get_mut("thinkingConfig"))
        && thinking["thinkingBudget"] == 0
    {
        thinking["thinkingBudget"] = MIN_THINKING_BUDGET_PRO.into();
    }
}

/// `functionDeclarations`; `None` when the request has no tools.
fn function_declarations(request: &ChatRequest) -> Result<Option<Value>, Error> {
    let Some(tools) = request.tools("this adapter only passes `function` tools to Gemini")? else {
        return Ok(None);
    };
    let declarations = tools
        .iter()
        .map(|tool| {
            let mut declaration = tool.declaration();
            if let Some(parameters) = tool.parameters {
                let parameters = schema::to_gemini(parameters);
                // A function without arguments is declared without `parameters`: Gemini
                // refuses an object schema with no properties.
                if !schema::is_empty_object(&parameters) {
                    declaration.insert("parameters".into(), parameters);
                }
            }
            Value::Object(declaration)
        })
        .collect();
    Ok(Some(Value::Array(declarations)))
}

/// `toolConfig.functionCallingConfig` for `tool_choice`; only called when there are tools.
fn tool_config(request: &ChatRequest) -> Result<Option<Value>, Error> {
    Ok(request.tool_choice()?.map(|choice| {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Function(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        json!({ "functionCallingConfig": config })
    }))
}

/// The conversation in Gemini form.
pub(crate) struct Conversation {
    pub system: Option<Value>,
    pub contents: Vec<Value>,
}

struct Content {
    role: &'static str,
    parts: Vec<Value>,
}

pub(crate) fn translate_messages(request: &ChatRequest) -> Result<Conversation, Error> {
    let mut system_parts: Vec<Value> = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    // Tool call id → function name, from the assistant messages seen so far. Later calls with
    // the same id (Gemini's own ids restart at `call_0` each turn) replace earlier ones.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for message in request.messages()? {
        let message = message?;
        let content = message.content();
        match message.role {
            Role::System | Role::Developer => {
                for part in parts(content)? {
                    if part.get("text").is_none() {
                        return Err(unsupported(
                            "this adapter sends Gemini's system instruction as text only",
                            message.at(".content"),
                        ));
                    }
                    system_parts.push(part);
                }
            }
            Role::User => push_content(&mut contents, "user", parts(content)?),
            Role::Assistant => {
                let mut model_parts = parts(content)?;
                model_parts.extend(function_calls(&message, &mut call_names)?);
                push_content(&mut contents, "model", model_parts);
            }
            Role::Tool | Role::Function => {
                let name = if message.role == Role::Tool {
                    let id = message
                        .tool_call_id()
                        .ok_or_else(|| message.missing_tool_call_id())?;
                    call_names.get(id).cloned()
                } else {
                    None
                };
                let name = name
                    .or_else(|| {
                        message
                            .value
                            .get("name")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .ok_or_else(|| {
                        bad_request(
                            "a tool message's `tool_call_id` matches no earlier assistant tool call",
                            message.at(".tool_call_id"),
                        )
                    })?;
                let response = json!({ "content": tool_output(content)? });
                push_content(
                    &mut contents,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
        }
    }
    let system = (!system_parts.is_empty()).then(|| json!({ "parts": system_parts }));
    let contents = contents
        .into_iter()
        .map(|content| json!({"role": content.role, "parts": content.parts}))
        .collect();
    Ok(Conversation { system, contents })
}

fn push_content(contents: &mut Vec<Content>, role: &'static str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == role => last.parts.extend(parts),
        _ => contents.push(Content { role, parts }),
    }
}

/// A tool's output as the `response.content` value: its JSON when it is JSON, else
/// `{"result": text}`.
fn tool_output(content: MessageContent) -> Result<Value, Error> {
    let text = match content.value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(_) => parts(content)?
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => {
            return Err(bad_request(
                "a tool message's `content` must be a string or text parts",
                content.at(),
            ));
        }
    };
    Ok(serde_json::from_str(&text).unwrap_or_else(|_| json!({ "result": text })))
}

/// Gemini parts for an OpenAI `content` (a string, content parts or null). Empty texts are
/// dropped: Gemini refuses parts without data.
fn parts(content: MessageContent) -> Result<Vec<Value>, Error> {
    let mut parts = Vec::new();
    for part in content.parts()? {
        let part = part?;
        let param = || part.param();
        match part.kind {
            PartKind::Text(text) => parts.push(json!({ "text": text })),
            PartKind::ImageUrl(url) => parts.push(media_part(url, "image/jpeg", param)?),
            PartKind::InputAudio => {
                let audio = part.get("input_audio");
                let data = audio
                    .and_then(|audio| audio.get("data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad_request("an audio part needs `input_audio.data`", param())
                    })?;
                let format = audio
                    .and_then(|audio| audio.get("format"))
                    .and_then(Value::as_str)
                    .unwrap_or("wav");
                let mime_type = match format {
                    "mp3" | "mpeg" => "audio/mp3".to_owned(),
                    other => format!("audio/{}", other.to_ascii_lowercase()),
                };
                parts.push(json!({"inlineData": {"mimeType": mime_type, "data": data}}));
            }
            PartKind::File => {
                let file_data = part
                    .get("file")
                    .and_then(|file| file.get("file_data"))
                    .and_then(Value::as_str)
                    .filter(|data| parse_data_url(data).is_some())
                    .ok_or_else(|| {
                        unsupported(
                            "this adapter passes files to Gemini only as `file_data` data: URLs",
                            param(),
                        )
                    })?;
                parts.push(media_part(file_data, "application/pdf", param)?);
            }
            PartKind::Other => {
                return Err(unsupported(
                    "this content part type has no Gemini equivalent",
                    param(),
                ));
            }
        }
    }
    Ok(parts)
}

/// `inlineData` for a base64 `data:` URL, `fileData` for a link (the MIME type guessed from
/// its extension, else `default_mime`).
fn media_part(
    url: &str,
    default_mime: &str,
    param: impl Fn() -> Option<String>,
) -> Result<Value, Error> {
    if let Some(data_url) = parse_data_url(url) {
        let mime_type = data_url
            .mime_type
            .filter(|_| data_url.base64)
            .ok_or_else(|| {
                bad_request(
                    "a `data:` URL must name its media type and be base64",
                    param(),
                )
            })?;
        return Ok(
            json!({"inlineData": {"mimeType": mime_type.to_ascii_lowercase(), "data": data_url.data}}),
        );
    }
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "gs") => {
            let mime_type = mime_type_from_url(url).unwrap_or(default_mime);
            Ok(json!({"fileData": {"mimeType": mime_type, "fileUri": url}}))
        }
        _ => Err(bad_request(
            "a media URL must be http(s), gs:// or a `data:` URL",
            param(),
        )),
    }
}

/// `functionCall` parts for an assistant message's `tool_calls`, recording each call's name.
fn function_calls(
    message: &ChatMessage,
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, Error> {
    let calls = message.tool_calls()?;
    let mut parts = Vec::with_capacity(calls.len());
    for call in calls {
        let (name, args) = call.function()?;
        if let Some(id) = call.id() {
            call_names.insert(id.to_owned(), name.to_owned());
        }
        let mut part = json!({"functionCall": {"name": name, "args": args}});
        if call.index == 0 {
            // Gemini 3 refuses a history whose function calls lack the `thoughtSignature` it
            // issued, and OpenAI's format has no place to carry one back. Google documents this
            // value for histories that did not come from Gemini: it skips the check (at the
            // cost of the model's earlier reasoning). The first call of a step carries the
            // signature; `thoughtSignature` is a field of every model's `Part`.
            part["thoughtSignature"] = Value::from(SKIP_THOUGHT_SIGNATURE);
        }
        parts.push(part);
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::http::header;

    fn target(stream: bool, model: &str) -> Target {
        Target {
            provider: "gemini".into(),
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            model: model.into(),
            stream,
            settings: "{}".into(),
        }
    }

    fn body_of(request: &Value) -> Value {
        let built =
            build_request(&target(false, "gemini-2.5-flash"), &request.to_string()).expect("valid");
        serde_json::from_slice(&built.body).expect("the body is JSON")
    }

    fn fail(request: Value) -> Error {
        build_request(&target(false, "gemini-2.5-flash"), &request.to_string())
            .expect_err("refused")
    }

    #[test]
    fn urls_headers_and_auth() {
        let request = r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let built = build_request(&target(false, "gemini-2.5-flash"), request).expect("valid");
        assert_eq!(
            built.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(header(&built.headers, "accept"), Some("application/json"));
        assert_eq!(
            header(&built.headers, "content-type"),
            Some("application/json")
        );
        assert!(matches!(&built.auth, Auth::Header(name) if name == "x-goog-api-key"));
        let built = build_request(&target(true, "tunedModels/my-model-1"), request).expect("valid");
        assert_eq!(
            built.url,
            "https://generativelanguage.googleapis.com/v1beta/tunedModels/my-model-1:streamGenerateContent?alt=sse"
        );
        assert_eq!(header(&built.headers, "accept"), Some("text/event-stream"));
        let body: Value = serde_json::from_slice(&built.body).expect("json");
        assert!(body.get("stream").is_none());
        for model in ["", "gemini?key=x", "models/../x", "a b"] {
            let failure = build_request(&target(false, model), request).expect_err("bad model");
            assert_eq!(failure.kind, ErrorKind::Internal, "{model}");
        }
    }

    #[test]
    fn plain_chat_with_generation_config() {
        let body = body_of(&json!({
            "model": "smart",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "user", "content": "Again"}
            ],
            "temperature": 1.5, "top_p": 0.9, "max_tokens": 100, "max_completion_tokens": 200,
            "stop": ["END", ""], "n": 2, "presence_penalty": 0.5, "frequency_penalty": -0.5,
            "seed": 42, "user": "u-1"
        }));
        assert_eq!(
            body,
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Hello"}]},
                    {"role": "model", "parts": [{"text": "Bonjour"}]},
                    {"role": "user", "parts": [{"text": "Again"}]}
                ],
                "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]},
                "generationConfig": {
                    "temperature": 1.5, "topP": 0.9, "presencePenalty": 0.5, "frequencyPenalty": -0.5,
                    "maxOutputTokens": 200, "stopSequences": ["END"], "candidateCount": 2, "seed": 42
                }
            })
        );
        let body =
            body_of(&json!({"messages": [{"role": "user", "content": "hi"}], "n": 1, "stop": "x"}));
        assert_eq!(body["generationConfig"], json!({"stopSequences": ["x"]}));
    }

    #[test]
    fn response_formats() {
        let body = body_of(&json!({"messages": [], "response_format": {"type": "json_object"}}));
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json"})
        );
        let body = body_of(
            &json!({"messages": [], "response_format": {"type": "json_schema", "json_schema": {
                "name": "person", "strict": true,
                "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}
            }}}),
        );
        assert_eq!(
            body["generationConfig"],
            json!({"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}, "required": ["name"]}})
        );
        let body = body_of(&json!({"messages": [], "response_format": {"type": "text"}}));
        assert!(body.get("generationConfig").is_none());
        let failure = fail(json!({"messages": [], "response_format": {"type": "json_schema"}}));
        assert_eq!(failure.param.as_deref(), Some("response_format"));
    }

    #[test]
    fn media_parts() {
        let body = body_of(&json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
            {"type": "image_url", "image_url": "https://example.com/photo"},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}
        ]}]}));
        assert_eq!(
            body["contents"][0]["parts"],
            json!([
                {"text": "Describe"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}
            ])
        );
        let failure = fail(
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}),
        );
        assert_eq!(failure.kind, ErrorKind::Unsupported);
        assert!(failure.retryable);
        let failure = fail(
            json!({"messages": [{"role": "user", "content": [{"type": "video_url", "video_url": "x"}]}]}),
        );
        assert_eq!(failure.kind, ErrorKind::Unsupported);
        assert_eq!(failure.param.as_deref(), Some("messages[0].content[0]"));
        let failure = fail(
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}),
        );
        assert_eq!(failure.kind, ErrorKind::BadRequest);
        let failure = fail(json!({"messages": [], "modalities": ["audio"]}));
        assert_eq!(failure.kind, ErrorKind::Unsupported);
    }

    #[test]
    fn tools_and_tool_round_trip() {
        let body = body_of(&json!({
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_abc", "content": "{\"temp_c\": 18}"},
                {"role": "tool", "tool_call_id": "call_def", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}, "strict": true}},
                {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
            ],
            "tool_choice": "required",
            "parallel_tool_calls": false
        }));
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"},
                    {"functionCall": {"name": "get_time", "args": {}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"content": {"temp_c": 18}}}},
                    {"functionResponse": {"name": "get_time", "response": {"content": {"result": "noon"}}}},
                    {"text": "Thanks"}
                ]}
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"functionDeclarations": [
                {"name": "get_weather", "description": "Current weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
                {"name": "get_time"}
            ]}])
        );
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
    }

    #[test]
    fn tool_choice_forms() {
        let config = |choice: Value| {
            body_of(&json!({
                "messages": [],
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": choice
            }))
            .get("toolConfig")
            .cloned()
        };
        assert_eq!(
            config(json!("auto")),
            Some(json!({"functionCallingConfig": {"mode": "AUTO"}}))
        );
        assert_eq!(
            config(json!("none")),
            Some(json!({"functionCallingConfig": {"mode": "NONE"}}))
        );
        assert_eq!(
            config(json!({"type": "function", "function": {"name": "f"}})),
            Some(json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}))
        );
        assert_eq!(config(Value::Null), None);
        assert!(
            body_of(&json!({"messages": [], "tool_choice": "auto"}))
                .get("toolConfig")
                .is_none()
        );
        assert_eq!(
            fail(json!({"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": 3})).param.as_deref(),
            Some("tool_choice")
        );
        assert_eq!(
            fail(json!({"messages": [], "tools": [{"type": "code_interpreter"}]})).kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn tool_messages_need_a_known_call() {
        let failure = fail(
            json!({"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "secret"}]}),
        );
        assert_eq!(failure.kind, ErrorKind::BadRequest);
        assert_eq!(failure.param.as_deref(), Some("messages[0].tool_call_id"));
        assert!(!failure.message.contains("secret"));
        // A legacy `function` message names its function itself.
        let body =
            body_of(&json!({"messages": [{"role": "function", "name": "f", "content": "7"}]}));
        assert_eq!(
            body["contents"][0]["parts"][0],
            json!({"functionResponse": {"name": "f", "response": {"content": 7}}})
        );
        // A repeated id answers the latest call that used it.
        let body = body_of(&json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "1"},
            {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": "2"}
        ]}));
        assert_eq!(
            body["contents"][3]["parts"][0]["functionResponse"]["name"],
            "b"
        );
    }

    #[test]
    fn invalid_arguments_and_malformed_requests() {
        let failure = fail(json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{secret"}}]}
        ]}));
        assert_eq!(failure.kind, ErrorKind::BadRequest);
        assert!(!failure.retryable);
        assert_eq!(
            failure.param.as_deref(),
            Some("messages[0].tool_calls[0].function.arguments")
        );
        assert!(!failure.message.contains("secret"));
        for (text, problem) in [
            ("[\"secret\"]", "not an object"),
            ("{\"messages\": [secret", "not valid JSON"),
            ("{\"messages\": {}}", "`messages` must be an array"),
            (
                "{\"messages\":[{\"role\":\"bot\",\"content\":\"secret\"}]}",
                "`role` must be",
            ),
            ("{\"messages\":[],\"temperature\":\"hot\"}", "`temperature`"),
            ("{\"messages\":[],\"n\":0}", "`n`"),
            ("{\"messages\":[],\"seed\":1.5}", "`seed`"),
            ("{\"messages\":[],\"max_tokens\":0}", "`max_tokens`"),
        ] {
            let failure =
                build_request(&target(false, "gemini-2.5-flash"), text).expect_err("refused");
            assert_eq!(failure.kind, ErrorKind::BadRequest, "{text}");
            assert!(failure.message.contains(problem), "{}", failure.message);
            assert!(!failure.message.contains("secret"));
        }
    }

    #[test]
    fn safety_settings_from_config() {
        let mut aimed = target(false, "gemini-2.0-flash");
        aimed.settings =
            r#"{"safety_settings":[{"category":"HARM_CATEGORY_HATE_SPEECH","threshold":"BLOCK_NONE"}]}"#.into();
        let built = build_request(&aimed, r#"{"messages":[]}"#).expect("valid");
        let body: Value = serde_json::from_slice(&built.body).expect("json");
        assert_eq!(
            body["safetySettings"],
            json!([{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}])
        );
    }

    #[test]
    fn no_reasoning_is_the_least_a_model_allows() {
        let none =
            json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"});
        for (model, budget) in [
            ("gemini-2.5-flash", 0),
            ("gemini-2.5-flash-lite", 0),
            ("gemini-2.5-pro", 128),
            ("models/gemini-2.5-pro-preview-06-05", 128),
        ] {
            let built = build_request(&target(false, model), &none.to_string()).expect("built");
            let body: Value = serde_json::from_slice(&built.body).expect("json");
            assert_eq!(
                body["generationConfig"]["thinkingConfig"],
                json!({"thinkingBudget": budget}),
                "{model}"
            );
        }
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget() {
        let body = body_of(&json!({"messages": [], "reasoning_effort": "low"}));
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
        let body = body_of(
            &json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 2048}}),
        );
        assert_eq!(
            body["generationConfig"]["thinkingConfig"]["thinkingBudget"],
            2048
        );
    }
}
