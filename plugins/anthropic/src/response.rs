//! `parse-response`: a whole Messages answer as OpenAI's `chat.completion`, or a failed answer
//! as a typed error.
//!
//! Text blocks are joined into `message.content`, `tool_use` blocks become `tool_calls` (their
//! `input` object serialized as the `arguments` string), `stop_reason` becomes
//! `finish_reason`, and usage counts cached prompt tokens as prompt tokens (Anthropic reports
//! them apart from `input_tokens`). Thinking blocks have no place in OpenAI's format: their
//! text becomes `reasoning_content` and the blocks themselves, signatures included (and
//! `redacted_thinking` blocks), ride along as `thinking_blocks`, so a client can hand them
//! back on the next turn as Anthropic requires during a tool-call loop.

use serde::Deserialize;
use serde_json::Value;

use freeway_plugin_sdk::http::invalid_response;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Completion, Target};
use freeway_plugin_sdk::types::{Error, Usage};
use freeway_plugin_sdk::upstream;

use crate::errors::{classify, read_error_body, read_error_value};
use crate::openai;
use crate::structured::JSON_TOOL;

pub(crate) fn parse_response(
    target: &Target,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    created: u64,
) -> Result<Completion, Error> {
    if !(200..300).contains(&status) {
        let failure = classify(Some(status), read_error_body(body));
        return Err(upstream::with_retry_after(failure, headers));
    }
    let value: Value = serde_json::from_slice(body).map_err(|parse_error| {
        invalid_response(format!(
            "Anthropic's answer is not valid JSON (line {}, column {})",
            parse_error.line(),
            parse_error.column()
        ))
    })?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(classify(None, read_error_value(&value)));
    }
    let message: Message = serde_json::from_value(value)
        .map_err(|_| invalid_response("Anthropic's answer is not a Messages response"))?;
    let (body, usage) = to_completion(message, &target.model, created);
    Ok(Completion {
        body,
        usage: Some(usage),
    })
}

/// The parts of a Messages response the translation uses.
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: MessageUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    /// Server tool results and future block types.
    #[serde(other)]
    Other,
}

/// Anthropic's token counts; the cache counts are prompt tokens not included in
/// `input_tokens`.
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq)]
pub(crate) struct MessageUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl MessageUsage {
    /// Takes every count `newer` carries (a stream's `message_delta` repeats or updates them).
    pub fn update(&mut self, newer: MessageUsage) {
        let take = |mine: &mut Option<u64>, theirs: Option<u64>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.input_tokens, newer.input_tokens);
        take(&mut self.output_tokens, newer.output_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
    }

    fn prompt_tokens(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0)
    }

    /// The host's record of the counts.
    pub fn to_usage(self) -> Usage {
        let clamp = |count: u64| u32::try_from(count).unwrap_or(u32::MAX);
        Usage {
            prompt_tokens: clamp(self.prompt_tokens()),
            completion_tokens: clamp(self.output_tokens.unwrap_or(0)),
        }
    }

    /// OpenAI's `usage` object.
    pub fn to_openai(self) -> openai::Usage {
        let prompt = self.prompt_tokens();
        let completion = self.output_tokens.unwrap_or(0);
        openai::Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: openai::PromptTokensDetails {
                cached_tokens: self.cache_read_input_tokens.unwrap_or(0),
                cache_creation_tokens: self.cache_creation_input_tokens.filter(|&count| count > 0),
            },
            completion_tokens_details: None,
        }
    }
}

/// OpenAI's `finish_reason` for a Messages `stop_reason`.
pub(crate) fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and reasons added later.
        _ => "stop",
    }
}

fn to_completion(message: Message, model: &str, created: u64) -> (String, Usage) {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut structured = false;
    for block in message.content {
        match block {
            Block::Thinking {
                thinking,
                signature,
            } => {
                reasoning.push_str(&thinking);
                thinking_blocks.push(serde_json::json!({
                    "type": "thinking", "thinking": thinking, "signature": signature,
                }));
            }
            Block::RedactedThinking { data } => {
                thinking_blocks
                    .push(serde_json::json!({"type": "redacted_thinking", "data": data}));
            }
            Block::Text { text: piece } => text.push_str(&piece),
            // A structured answer (see `structured`): the tool's input is the message text.
            Block::ToolUse { name, input, .. } if name == JSON_TOOL => {
                structured = true;
                text.push_str(&input.to_string());
            }
            Block::ToolUse { id, name, input } => {
                let arguments = if input.is_null() {
                    "{}".to_owned()
                } else {
                    input.to_string()
                };
                tool_calls.push(openai::ToolCall {
                    index: None,
                    id: Some(id),
                    kind: Some("function"),
                    function: openai::FunctionCall {
                        name: Some(name),
                        arguments,
                    },
                });
            }
            Block::Other => {}
        }
    }
    let finish_reason = match message.stop_reason.as_deref() {
        // Only the structured-answer tool was called: the answer is complete text.
        Some("tool_use") if structured && tool_calls.is_empty() => "stop",
        Some(reason) => finish_reason(reason),
        None if !tool_calls.is_empty() => "tool_calls",
        None => "stop",
    };
    let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
    let id = message.id.unwrap_or_else(|| format!("msg_{created}"));
    let completion = openai::Completion {
        id: &id,
        object: "chat.completion",
        created,
        model: message.model.as_deref().unwrap_or(model),
        choices: vec![openai::Choice {
            index: 0,
            message: openai::Message {
                role: "assistant",
                content,
                tool_calls,
                refusal: None,
                reasoning_content: (!thinking_blocks.is_empty()).then_some(reasoning),
                thinking_blocks,
            },
            logprobs: None,
            finish_reason,
        }],
        usage: message.usage.to_openai(),
    };
    (openai::to_json(&completion), message.usage.to_usage())
}

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::types::ErrorKind;
    use serde_json::json;

    const CREATED: u64 = 1_730_000_000;

    fn target() -> Target {
        Target {
            provider: "anthropic".into(),
            base_url: "https://api.anthropic.com/v1".into(),
            model: "claude-sonnet-4-5".into(),
            stream: false,
            settings: "{}".into(),
        }
    }

    fn parse(status: u16, headers: &[(&str, &str)], body: &str) -> Result<Completion, Error> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        parse_response(&target(), status, &headers, body.as_bytes(), CREATED)
    }

    fn completion_json(body: &str) -> (Value, Usage) {
        let completion = parse(200, &[], body).expect("a completion");
        (
            serde_json::from_str(&completion.body).expect("JSON"),
            completion.usage.expect("usage"),
        )
    }

    #[test]
    fn text_answer() {
        let (completion, usage) = completion_json(
            r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi! My name is "},{"type":"text","text":"Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"output_tokens":503,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}"#,
        );
        assert_eq!(
            completion,
            json!({
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
                "object": "chat.completion",
                "created": CREATED,
                "model": "claude-sonnet-4-5-20250929",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi! My name is Claude.", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3195, "completion_tokens": 503, "total_tokens": 3698, "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 100}}
            })
        );
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3195, 503));
    }

    #[test]
    fn tool_use_answer() {
        let (completion, _) = completion_json(
            r#"{"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"thinking","thinking":"Need weather.","signature":"EqQB"},{"type":"text","text":"I'll check."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius"}},{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":91}}"#,
        );
        let message = &completion["choices"][0]["message"];
        assert_eq!(message["content"], "I'll check.");
        assert_eq!(
            message["tool_calls"],
            json!([
                {"id": "toolu_01A09q90qw90lq917835lq9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}},
                {"id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ])
        );
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
        let (only_tools, _) = completion_json(
            r#"{"id":"m","type":"message","role":"assistant","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2]}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}"#,
        );
        assert_eq!(only_tools["choices"][0]["message"]["content"], Value::Null);
    }

    #[test]
    fn stop_reasons() {
        for (stop_reason, expected) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
        ] {
            let body = format!(
                r#"{{"id":"m","type":"message","role":"assistant","model":"c","content":[{{"type":"text","text":"x"}}],"stop_reason":"{stop_reason}","usage":{{"input_tokens":1,"output_tokens":1}}}}"#
            );
            let (completion, _) = completion_json(&body);
            assert_eq!(
                completion["choices"][0]["finish_reason"], expected,
                "{stop_reason}"
            );
        }
    }

    #[test]
    fn missing_model_and_id_fall_back() {
        let (completion, usage) = completion_json(r#"{"content":[],"stop_reason":null}"#);
        assert_eq!(completion["model"], "claude-sonnet-4-5");
        assert_eq!(completion["id"], format!("msg_{CREATED}"));
        assert_eq!(completion["choices"][0]["message"]["content"], "");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (0, 0));
    }

    #[test]
    fn errors_carry_retry_after() {
        let failure = parse(
            429,
            &[("retry-after", "30"), ("anthropic-ratelimit-requests-remaining", "0")],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your per-minute rate limit"}}"#,
        )
        .expect_err("limited");
        assert_eq!(failure.kind, ErrorKind::RateLimited);
        assert!(failure.retryable);
        assert_eq!(failure.retry_after_ms, Some(30_000));
        assert_eq!(failure.status, Some(429));

        let failure = parse(
            529,
            &[],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .expect_err("overloaded");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert!(failure.retryable);
        assert_eq!(failure.retry_after_ms, None);
    }

    #[test]
    fn error_in_a_success_body_and_garbage() {
        let failure = parse(
            200,
            &[],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .expect_err("error");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        for body in [
            "<html>",
            "[]",
            r#"{"id":"x"}"#,
            r#"{"content":[{"type":"text"}]}"#,
        ] {
            let failure = parse(200, &[], body).expect_err("invalid");
            assert_eq!(failure.kind, ErrorKind::InvalidResponse, "{body}");
            assert!(failure.retryable);
        }
    }

    #[test]
    fn thinking_comes_back_as_reasoning_and_whole_blocks() {
        let (completion, _) = completion_json(
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"thinking","thinking":"Let me think.","signature":"EqQB"},{"type":"redacted_thinking","data":"opaque"},{"type":"text","text":"42"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}"#,
        );
        let message = &completion["choices"][0]["message"];
        assert_eq!(message["content"], "42");
        assert_eq!(message["reasoning_content"], "Let me think.");
        assert_eq!(
            message["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "Let me think.", "signature": "EqQB"},
                   {"type": "redacted_thinking", "data": "opaque"}])
        );
    }

    #[test]
    fn structured_answer_tool_becomes_the_text() {
        let (completion, _) = completion_json(
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"freeway_json_response","input":{"city":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#,
        );
        let choice = &completion["choices"][0];
        assert_eq!(choice["message"]["content"], r#"{"city":"Paris"}"#);
        assert!(choice["message"].get("tool_calls").is_none());
        assert_eq!(choice["finish_reason"], "stop");
    }
}
