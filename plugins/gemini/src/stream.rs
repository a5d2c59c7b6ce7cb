//! The stream translation: Gemini's `streamGenerateContent?alt=sse` body becomes
//! `chat.completion.chunk`s. SSE framing and the pending error are the SDK's
//! (`freeway_plugin_sdk::stream`); this module owns what one event becomes.
//!
//! Each SSE `data:` event is a whole `GenerateContentResponse` holding the next piece of every
//! candidate. Per candidate and event one chunk goes out: the first carries `role`, text parts
//! are a `content` delta, and each `functionCall` part (Gemini sends calls whole, never in
//! fragments) is a complete tool-call delta with index, id, name and arguments at once. A
//! `finishReason` closes the choice. Gemini repeats the running `usageMetadata` on events; the
//! last one seen goes out as a usage-only chunk (`choices: []`) when the body ends, which the
//! host needs for accounting. A blocked prompt, an error event or a body that ends before any
//! finish reason is a typed error rather than a silently short answer.

use serde_json::Value;

use freeway_plugin_sdk::http::{error, invalid_response};
use freeway_plugin_sdk::openai::unix_now;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Chunk, Target};
use freeway_plugin_sdk::sse::SseEvent;
use freeway_plugin_sdk::stream::EventTranslator;
use freeway_plugin_sdk::types::{Error, ErrorKind};

use crate::openai;
use crate::response::{GenerateContentResponse, UsageMetadata, finish_reason};

/// This adapter's part of the SDK's stream decoder.
pub(crate) struct Translator {
    header: openai::StreamHeader,
    /// Per choice index: whether its role went out, how many tool calls it made, whether it
    /// finished.
    choices: Vec<ChoiceState>,
    usage: Option<UsageMetadata>,
    saw_event: bool,
}

#[derive(Default, Clone, Copy)]
struct ChoiceState {
    sent_role: bool,
    tool_calls: usize,
    finished: bool,
}

impl Translator {
    pub fn new(model: &str, created: u64) -> Self {
        Self {
            header: openai::StreamHeader {
                id: format!("gen-{created}"),
                created,
                model: model.to_owned(),
            },
            choices: Vec::new(),
            usage: None,
            saw_event: false,
        }
    }
}

impl EventTranslator for Translator {
    fn for_target(target: &Target) -> Self {
        Self::new(&target.model, unix_now())
    }

    fn end(&mut self, chunks: &mut Vec<Chunk>) -> Result<(), Error> {
        if !self.choices.iter().any(|choice| choice.finished) {
            return Err(error(
                ErrorKind::Unavailable,
                true,
                "Gemini's stream ended early",
            ));
        }
        if let Some(usage) = self.usage {
            chunks.push(self.header.usage_chunk(usage.to_openai(), usage.to_usage()));
        }
        Ok(())
    }

    fn translate_event(&mut self, event: SseEvent, chunks: &mut Vec<Chunk>) -> Result<(), Error> {
        let payload = event.data.trim();
        if payload.is_empty() || payload == "[DONE]" {
            return Ok(());
        }
        let value: Value = serde_json::from_str(payload).map_err(|parse_error| {
            invalid_response(format!(
                "Gemini sent a stream event that is not valid JSON (line {}, column {})",
                parse_error.line(),
                parse_error.column()
            ))
        })?;
        let response = GenerateContentResponse::from_value(value)?;
        if !self.saw_event {
            self.saw_event = true;
            if let Some(id) = &response.response_id {
                self.header.id.clone_from(id);
            }
            if let Some(model) = &response.model_version {
                self.header.model.clone_from(model);
            }
        }
        if let Some(usage) = response.usage_metadata {
            self.usage = Some(usage);
        }
        if response.candidates.is_empty() {
            if let Some(failure) = response.block_reason() {
                return Err(failure);
            }
            return Ok(());
        }
        for (position, candidate) in response.candidates.iter().enumerate() {
            let index = candidate.index.unwrap_or(position as u32);
            let slot = usize::try_from(index).unwrap_or(usize::MAX);
            if slot >= self.choices.len() {
                if slot > 1024 {
                    return Err(invalid_response(
                        "Gemini sent an implausible candidate index",
                    ));
                }
                self.choices.resize(slot + 1, ChoiceState::default());
            }
            let state = &mut self.choices[slot];
            let output = candidate.read();
            let mut delta = openai::Delta::default();
            if !state.sent_role {
                state.sent_role = true;
                delta.role = Some("assistant");
                // The first chunk of a choice says what it is even before any text arrives.
                if output.calls.is_empty() {
                    delta.content = Some(String::new());
                }
            }
            if !output.text.is_empty() {
                delta.content = Some(output.text);
            }
            if !output.reasoning.is_empty() {
                delta.reasoning_content = Some(output.reasoning);
            }
            for call in &output.calls {
                let tool_index = state.tool_calls;
                state.tool_calls += 1;
                let index = u32::try_from(tool_index).unwrap_or(u32::MAX);
                delta
                    .tool_calls
                    .push(call.to_openai(tool_index, Some(index)));
            }
            let finish = finish_reason(candidate.finish_reason.as_deref(), state.tool_calls > 0);
            if finish.is_some() {
                state.finished = true;
            }
            let empty =
                delta.role.is_none() && delta.content.is_none() && delta.tool_calls.is_empty();
            if empty && finish.is_none() {
                continue;
            }
            chunks.push(self.header.chunk(vec![openai::ChunkChoice {
                index,
                delta,
                logprobs: None,
                finish_reason: finish,
            }]));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::stream::{StreamDecoder, fixtures};
    use serde_json::json;

    fn new_decoder(model: &str, created: u64) -> StreamDecoder<Translator> {
        StreamDecoder::new(Translator::new(model, created))
    }

    const CREATED: u64 = 1_730_000_000;

    /// A text answer in three events, as `streamGenerateContent?alt=sse` sends it.
    const TEXT_STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hé\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Z6oGaOOdBcKqz7IP0fXK2QE\"}\r\n\r\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"llo 👋\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 3,\"totalTokenCount\": 12},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Z6oGaOOdBcKqz7IP0fXK2QE\"}\r\n\r\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" there\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 5,\"totalTokenCount\": 20,\"thoughtsTokenCount\": 6},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"Z6oGaOOdBcKqz7IP0fXK2QE\"}\r\n\r\n";

    const TOOL_STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}},{\"functionCall\": {\"name\": \"get_time\",\"args\": {}}}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 50,\"candidatesTokenCount\": 10,\"totalTokenCount\": 60},\"modelVersion\": \"gemini-2.0-flash\"}\n\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_news\",\"args\": {\"topic\": \"ü\"}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 50,\"candidatesTokenCount\": 15,\"totalTokenCount\": 65},\"modelVersion\": \"gemini-2.0-flash\"}\n\n";

    fn decode_in_pieces(body: &str, size: usize) -> (Vec<Chunk>, Result<Vec<Chunk>, Error>) {
        fixtures::decode_in_pieces(new_decoder("gemini-2.5-flash", CREATED), body, size)
    }

    /// Each chunk's JSON, of a stream that must finish cleanly.
    fn decode(body: &str) -> Vec<Value> {
        let chunks =
            fixtures::decode_complete(new_decoder("gemini-2.5-flash", CREATED), body, body.len());
        let json = |chunk: &Chunk| serde_json::from_str(&chunk.data).expect("chunk JSON");
        chunks.iter().map(json).collect()
    }

    #[test]
    fn text_stream() {
        let chunks = decode(TEXT_STREAM);
        let header = |choices: Value| json!({"id": "Z6oGaOOdBcKqz7IP0fXK2QE", "object": "chat.completion.chunk", "created": CREATED, "model": "gemini-2.5-flash", "choices": choices});
        let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        let mut usage_chunk = header(json!([]));
        usage_chunk["usage"] = json!({"prompt_tokens": 9, "completion_tokens": 11, "total_tokens": 20, "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 6}});
        assert_eq!(
            chunks,
            vec![
                header(choice(
                    json!({"role": "assistant", "content": "Hé"}),
                    Value::Null
                )),
                header(choice(json!({"content": "llo 👋"}), Value::Null)),
                header(choice(json!({"content": " there"}), json!("stop"))),
                usage_chunk,
            ]
        );
    }

    #[test]
    fn usage_only_on_the_last_chunk() {
        let (chunks, finished) = decode_in_pieces(TEXT_STREAM, 17);
        assert!(chunks.iter().all(|chunk| chunk.usage.is_none()));
        let tail = finished.expect("complete");
        assert_eq!(tail.len(), 1);
        let usage = tail[0].usage.as_ref().expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (9, 11));
    }

    #[test]
    fn every_split_gives_the_same_chunks() {
        for body in [TEXT_STREAM, TOOL_STREAM] {
            let whole: Vec<String> = {
                let (mut chunks, finished) = decode_in_pieces(body, body.len());
                chunks.extend(finished.expect("complete"));
                chunks.into_iter().map(|chunk| chunk.data).collect()
            };
            for size in [1, 2, 3, 5, 8, 13, 100] {
                let (mut chunks, finished) = decode_in_pieces(body, size);
                chunks.extend(finished.expect("complete"));
                let data: Vec<String> = chunks.into_iter().map(|chunk| chunk.data).collect();
                assert_eq!(data, whole, "piece size {size}");
            }
        }
    }

    #[test]
    fn function_calls_arrive_whole_with_running_indexes() {
        let chunks = decode(TOOL_STREAM);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0]["id"], format!("gen-{CREATED}"));
        assert_eq!(chunks[0]["model"], "gemini-2.0-flash");
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"index": 1, "id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ]})
        );
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"tool_calls": [{"index": 2, "id": "call_2", "type": "function", "function": {"name": "get_news", "arguments": "{\"topic\":\"ü\"}"}}]})
        );
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[2]["usage"]["completion_tokens"], 15);
    }

    #[test]
    fn several_candidates_get_their_own_choices() {
        let body = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"index\":0},{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"index\":1}]}\n\ndata: {\"candidates\":[{\"finishReason\":\"MAX_TOKENS\",\"index\":0},{\"content\":{\"parts\":[{\"text\":\"c\"}]},\"finishReason\":\"SAFETY\",\"index\":1}]}\n\n";
        let chunks = decode(body);
        let summary: Vec<(Value, Value, Value)> = chunks
            .iter()
            .map(|chunk| {
                let choice = &chunk["choices"][0];
                (
                    choice["index"].clone(),
                    choice["delta"].clone(),
                    choice["finish_reason"].clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    json!(0),
                    json!({"role": "assistant", "content": "a"}),
                    Value::Null
                ),
                (
                    json!(1),
                    json!({"role": "assistant", "content": "b"}),
                    Value::Null
                ),
                (json!(0), json!({}), json!("length")),
                (json!(1), json!({"content": "c"}), json!("content_filter")),
            ]
        );
    }

    #[test]
    fn blocked_prompt_and_error_events() {
        let mut decoder = new_decoder("m", CREATED);
        let failure = decoder
            .push(b"data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"},\"usageMetadata\": {\"promptTokenCount\": 7,\"totalTokenCount\": 7}}\n\n")
            .expect_err("blocked");
        assert_eq!(failure.kind, ErrorKind::ContentFilter);
        assert!(!failure.retryable);

        let mut decoder = new_decoder("m", CREATED);
        let failure = decoder
            .push(b"data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded. Please try again later.\", \"status\": \"UNAVAILABLE\"}}\n\n")
            .expect_err("error");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert!(failure.retryable);
        assert_eq!(failure.status, Some(503));
    }

    #[test]
    fn chunks_before_an_error_go_out_first() {
        let first = TEXT_STREAM.split("\r\n\r\n").next().expect("first event");
        let body = format!(
            "{first}\r\n\r\ndata: {{\"error\": {{\"code\": 500, \"message\": \"An internal error has occurred.\", \"status\": \"INTERNAL\"}}}}\r\n\r\n"
        );
        let mut decoder = new_decoder("m", CREATED);
        assert_eq!(decoder.push(body.as_bytes()).expect("text first").len(), 1);
        let failure = decoder.finish().expect_err("then the error");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn cut_short_stream_is_an_error() {
        let first_two: String = TEXT_STREAM.split_inclusive("\r\n\r\n").take(2).collect();
        let (chunks, finished) = decode_in_pieces(&first_two, 9);
        assert_eq!(chunks.len(), 2);
        let failure = finished.expect_err("ended early");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert!(failure.retryable);
        let (_, finished) = decode_in_pieces("", 1);
        assert!(finished.is_err());
    }

    #[test]
    fn trailing_event_without_blank_line_is_flushed() {
        let body = TEXT_STREAM.trim_end();
        let (chunks, finished) = decode_in_pieces(body, 11);
        assert_eq!(chunks.len(), 2);
        let tail = finished.expect("complete");
        assert_eq!(tail.len(), 2);
        assert!(tail[1].usage.is_some());
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        for body in [
            "data: {oops\n\n",
            "data: 42\n\n",
            "data: {\"candidates\": 3}\n\n",
        ] {
            let mut decoder = new_decoder("m", CREATED);
            let failure = decoder.push(body.as_bytes()).expect_err("invalid");
            assert_eq!(failure.kind, ErrorKind::InvalidResponse, "{body}");
        }
    }
}
