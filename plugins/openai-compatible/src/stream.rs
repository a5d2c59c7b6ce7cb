//! The stream translation: an OpenAI-style SSE body becomes `chat.completion.chunk`s. SSE
//! framing and the pending error are the SDK's (`freeway_plugin_sdk::stream`); this module
//! owns what one event becomes.
//!
//! Chunks pass through as the upstream's own text. Two things are normalised, because the host
//! relies on them: usage always arrives on a chunk of its own (Groq puts it on the last content
//! chunk, sometimes under `x_groq.usage`), and an error event or a body that stops before
//! `[DONE]` or any `finish_reason` becomes a typed error instead of a silently short answer.

use serde::Deserialize;
use serde_json::value::RawValue;

use freeway_plugin_sdk::http::{error, invalid_response};
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Chunk, Target};
use freeway_plugin_sdk::sse::SseEvent;
use freeway_plugin_sdk::stream::EventTranslator;
use freeway_plugin_sdk::types::{Error, ErrorKind, Usage};

use crate::json::{RawObject, starts_as_object, write_entry};
use crate::response::{error_from_body_value, read_usage};

/// This adapter's part of the SDK's stream decoder.
#[derive(Default)]
pub(crate) struct Translator {
    saw_done: bool,
    saw_finish_reason: bool,
}

impl EventTranslator for Translator {
    fn for_target(_target: &Target) -> Self {
        Self::default()
    }

    fn stopped(&self) -> bool {
        // The host writes its own `[DONE]`; anything after the upstream's is ignored.
        self.saw_done
    }

    fn end(&mut self, _chunks: &mut Vec<Chunk>) -> Result<(), Error> {
        if !self.saw_done && !self.saw_finish_reason {
            return Err(error(
                ErrorKind::Unavailable,
                true,
                "upstream stream ended early",
            ));
        }
        Ok(())
    }

    fn translate_event(&mut self, event: SseEvent, chunks: &mut Vec<Chunk>) -> Result<(), Error> {
        let payload = event.data.trim();
        if payload == "[DONE]" {
            self.saw_done = true;
            return Ok(());
        }
        if payload.is_empty() {
            return Ok(());
        }
        if event.event.as_deref() == Some("error") {
            return Err(error_from_body_value(payload));
        }
        if !starts_as_object(payload) {
            return Err(invalid_response(
                "the upstream sent a stream event that is not a JSON object",
            ));
        }
        let envelope: ChunkEnvelope = serde_json::from_str(payload).map_err(|parse_error| {
            invalid_response(format!(
                "the upstream sent a stream event that is not valid JSON (line {}, column {})",
                parse_error.line(),
                parse_error.column()
            ))
        })?;
        if envelope.error.is_some() || envelope.object.map(RawValue::get) == Some("\"error\"") {
            return Err(error_from_body_value(payload));
        }
        let choices = envelope.choices.as_deref().unwrap_or_default();
        if choices.iter().any(|choice| choice.finish_reason.is_some()) {
            self.saw_finish_reason = true;
        }
        let groq_usage = envelope.x_groq.as_ref().and_then(|x_groq| x_groq.usage);
        let Some((usage_text, usage)) = envelope
            .usage
            .or(groq_usage)
            .and_then(|raw| Some((raw, read_usage(raw)?)))
        else {
            chunks.push(Chunk {
                data: take_trimmed(event.data),
                usage: None,
            });
            return Ok(());
        };
        if !choices.is_empty() {
            let content = without_usage(payload, groq_usage.is_some())?;
            let usage_only = usage_only_chunk(&envelope, usage_text.get());
            chunks.push(Chunk {
                data: content,
                usage: None,
            });
            chunks.push(usage_chunk(usage_only, usage));
        } else if envelope.usage.is_some() {
            // Already a usage chunk in OpenAI's shape.
            chunks.push(usage_chunk(take_trimmed(event.data), usage));
        } else {
            // Usage only under `x_groq`: give it OpenAI's place.
            let usage_only = usage_only_chunk(&envelope, usage_text.get());
            chunks.push(usage_chunk(usage_only, usage));
        }
        Ok(())
    }
}

fn usage_chunk(data: String, usage: Usage) -> Chunk {
    Chunk {
        data,
        usage: Some(usage),
    }
}

/// The fields of a chunk the decoder looks at; serde skips the rest (deltas, logprobs)
/// without building them.
#[derive(Deserialize)]
struct ChunkEnvelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    created: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceEnvelope<'a>>>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    x_groq: Option<GroqExtension<'a>>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChoiceEnvelope<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct GroqExtension<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

/// `{"id","object","created","model","choices":[],"usage"}`: the chunk OpenAI sends last when
/// `stream_options.include_usage` is set.
fn usage_only_chunk(envelope: &ChunkEnvelope, usage: &str) -> String {
    let mut out = Vec::with_capacity(usage.len() + 160);
    out.push(b'{');
    let object = envelope
        .object
        .map_or("\"chat.completion.chunk\"", RawValue::get);
    let header = [
        ("id", envelope.id.map(RawValue::get)),
        ("object", Some(object)),
        ("created", envelope.created.map(RawValue::get)),
        ("model", envelope.model.map(RawValue::get)),
    ];
    for (key, value) in header {
        if let Some(value) = value {
            write_entry(&mut out, key, value);
        }
    }
    write_entry(&mut out, "choices", "[]");
    write_entry(&mut out, "usage", usage);
    out.push(b'}');
    into_string(out)
}

/// The chunk without its usage (top-level `usage`, and `x_groq.usage` when that is where it
/// was), every other field kept as it was.
fn without_usage(payload: &str, strip_groq_usage: bool) -> Result<String, Error> {
    let object = RawObject::parse(payload)
        .map_err(|problem| invalid_response(format!("the upstream stream event {problem}")))?;
    let mut out = Vec::with_capacity(payload.len());
    out.push(b'{');
    for (key, value) in &object.entries {
        match key.as_ref() {
            "usage" => {}
            "x_groq" if strip_groq_usage => {
                let extension = RawObject::parse(value.get()).map_err(|problem| {
                    invalid_response(format!("the upstream's x_groq {problem}"))
                })?;
                let mut inner = Vec::with_capacity(value.get().len());
                inner.push(b'{');
                for (inner_key, inner_value) in &extension.entries {
                    if inner_key != "usage" {
                        write_entry(&mut inner, inner_key, inner_value.get());
                    }
                }
                inner.push(b'}');
                write_entry(&mut out, key, &into_string(inner));
            }
            _ => write_entry(&mut out, key, value.get()),
        }
    }
    out.push(b'}');
    Ok(into_string(out))
}

/// Bytes assembled only from `&str` pieces are UTF-8; the lossy conversion never copies here.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

/// `data` without surrounding whitespace, reusing its allocation in the common case of none.
fn take_trimmed(data: String) -> String {
    if data.trim().len() == data.len() {
        data
    } else {
        data.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::stream::{StreamDecoder, fixtures};
    use serde_json::{Value, json};

    fn new_decoder() -> StreamDecoder<Translator> {
        StreamDecoder::new(Translator::default())
    }

    fn decode_all(body: &str) -> (Vec<Chunk>, Result<Vec<Chunk>, Error>) {
        fixtures::decode_in_pieces(new_decoder(), body, 7)
    }

    fn json_of(chunk: &Chunk) -> Value {
        serde_json::from_str(&chunk.data).expect("chunk data is JSON")
    }

    const ROLE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#;
    const TEXT: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hé 👋"},"finish_reason":null}],"usage":null}"#;
    const STOP: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#;
    const USAGE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}"#;

    #[test]
    fn openai_stream_passes_through_with_usage_on_its_own_chunk() {
        let body = format!(
            ": OPENROUTER PROCESSING\n\ndata: {ROLE}\n\ndata: {TEXT}\n\ndata: {STOP}\n\ndata: {USAGE}\n\ndata: [DONE]\n\n"
        );
        let (chunks, finished) = decode_all(&body);
        assert!(finished.expect("complete").is_empty());
        let data: Vec<&str> = chunks.iter().map(|c| c.data.as_str()).collect();
        assert_eq!(data, [ROLE, TEXT, STOP, USAGE]);
        assert!(chunks[..3].iter().all(|c| c.usage.is_none()));
        let usage = chunks[3].usage.as_ref().expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (11, 7));
    }

    #[test]
    fn usage_on_a_content_chunk_is_split_off() {
        let last = r#"{"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"llama","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let (chunks, finished) = decode_all(&format!("data: {last}\r\n\r\n"));
        assert!(finished.is_ok(), "a finish_reason was seen");
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            json_of(&chunks[0]),
            json!({"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"llama","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]})
        );
        assert!(chunks[0].usage.is_none());
        assert_eq!(
            json_of(&chunks[1]),
            json!({"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"llama","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})
        );
        let usage = chunks[1].usage.as_ref().expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 2));
    }

    #[test]
    fn groq_usage_under_x_groq_is_moved_to_its_own_chunk() {
        let last = r#"{"id":"chatcmpl-3","object":"chat.completion.chunk","created":9,"model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_01","usage":{"queue_time":0.01,"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}}"#;
        let (chunks, finished) = decode_all(&format!("data: {last}\n\ndata: [DONE]\n\n"));
        assert!(finished.is_ok());
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            json_of(&chunks[0]),
            json!({"id":"chatcmpl-3","object":"chat.completion.chunk","created":9,"model":"llama-3.1-8b-instant","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_01"}})
        );
        assert_eq!(json_of(&chunks[1])["usage"]["prompt_tokens"], 40);
        assert_eq!(json_of(&chunks[1])["choices"], json!([]));
        let usage = chunks[1].usage.as_ref().expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (40, 9));

        let usage_only = r#"{"id":"c","object":"chat.completion.chunk","created":9,"model":"m","choices":[],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":2}}}"#;
        let (chunks, _) = decode_all(&format!("data: {usage_only}\n\ndata: [DONE]\n\n"));
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            json_of(&chunks[0]),
            json!({"id":"c","object":"chat.completion.chunk","created":9,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}})
        );
        assert!(chunks[0].usage.is_some());
    }

    #[test]
    fn error_event_becomes_a_typed_error() {
        let mut decoder = new_decoder();
        let failure = decoder
            .push(b"data: {\"error\":{\"message\":\"Rate limit exceeded\",\"code\":429}}\n\n")
            .expect_err("an error");
        assert_eq!(failure.kind, ErrorKind::RateLimited);
        assert_eq!(failure.status, Some(429));
        assert_eq!(failure.message, "Rate limit exceeded");

        let mut decoder = new_decoder();
        let failure = decoder
            .push(b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n")
            .expect_err("an error");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert!(failure.retryable);
        assert_eq!(failure.status, None);

        let mut decoder = new_decoder();
        let failure = decoder
            .push(b"data: {\"object\":\"error\",\"message\":\"This model's maximum context length is 4096 tokens\",\"type\":\"BadRequestError\",\"code\":400}\n\n")
            .expect_err("an error");
        assert_eq!(failure.kind, ErrorKind::ContextLength);
        assert!(!failure.retryable);
    }

    #[test]
    fn chunks_before_an_error_are_delivered_first() {
        let mut decoder = new_decoder();
        let body = format!("data: {TEXT}\n\ndata: {{\"error\":{{\"message\":\"cut\"}}}}\n\n");
        let chunks = decoder.push(body.as_bytes()).expect("the text chunk");
        assert_eq!(chunks.len(), 1);
        let failure = decoder.push(b"").expect_err("then the error");
        assert_eq!(failure.message, "cut");
    }

    #[test]
    fn stream_cut_short_is_an_error() {
        let (chunks, finished) = decode_all(&format!("data: {ROLE}\n\ndata: {TEXT}\n\n"));
        assert_eq!(chunks.len(), 2);
        let failure = finished.expect_err("ended early");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert!(failure.retryable);
        assert_eq!(failure.message, "upstream stream ended early");
    }

    #[test]
    fn finish_reason_without_done_is_complete_and_trailing_event_is_flushed() {
        let (chunks, finished) = decode_all(&format!("data: {TEXT}\n\ndata: {STOP}"));
        assert_eq!(chunks.len(), 1);
        let tail = finished.expect("complete");
        assert_eq!(tail.len(), 1);
        assert_eq!(tail[0].data, STOP);
    }

    #[test]
    fn done_without_finish_reason_is_complete_and_later_events_are_ignored() {
        let (chunks, finished) =
            decode_all(&format!("data: {TEXT}\n\ndata: [DONE]\n\ndata: {TEXT}\n\n"));
        assert_eq!(chunks.len(), 1);
        assert!(finished.expect("complete").is_empty());
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        for body in ["data: {not json}\n\n", "data: [1,2]\n\n", "data: hello\n\n"] {
            let mut decoder = new_decoder();
            let failure = decoder.push(body.as_bytes()).expect_err("invalid");
            assert_eq!(failure.kind, ErrorKind::InvalidResponse, "{body}");
        }
    }
}
