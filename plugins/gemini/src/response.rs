//! `parse-response`: a whole `GenerateContentResponse` as OpenAI's `chat.completion`, or a
//! failed answer as a typed error; also the candidate and usage translation the stream
//! decoder shares.
//!
//! Each candidate becomes a choice: its text parts joined into `message.content` (thought
//! summaries are not part of OpenAI's format and are dropped), its `functionCall` parts
//! `tool_calls` with ids `call_<n>` (Gemini's calls carry no id; the request side maps them
//! back by name), its `finishReason` a `finish_reason`. A prompt blocked before any candidate
//! was generated is a `content-filter` error. Thinking tokens count as completion tokens, as
//! OpenAI counts reasoning tokens.

use serde::Deserialize;
use serde_json::Value;

use freeway_plugin_sdk::http::{error, invalid_response};
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Completion, Target};
use freeway_plugin_sdk::types::{Error, ErrorKind, Usage};
use freeway_plugin_sdk::upstream;

use crate::errors::{classify, read_error_body, read_error_value};
use crate::openai;

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
            "Gemini's answer is not valid JSON (line {}, column {})",
            parse_error.line(),
            parse_error.column()
        ))
    })?;
    let response = GenerateContentResponse::from_value(value)?;
    if response.candidates.is_empty() {
        return Err(match response.block_reason() {
            Some(failure) => failure,
            None => invalid_response("Gemini answered without any candidate"),
        });
    }
    let mut choices = Vec::with_capacity(response.candidates.len());
    for (position, candidate) in response.candidates.iter().enumerate() {
        let output = candidate.read();
        let tool_calls: Vec<openai::ToolCall> = output
            .calls
            .iter()
            .enumerate()
            .map(|(call_index, call)| call.to_openai(call_index, None))
            .collect();
        let finish = finish_reason(candidate.finish_reason.as_deref(), !tool_calls.is_empty());
        let content = (!output.text.is_empty() || tool_calls.is_empty()).then_some(output.text);
        choices.push(openai::Choice {
            index: candidate.index.unwrap_or(position as u32),
            message: openai::Message {
                role: "assistant",
                content,
                tool_calls,
                refusal: None,
                reasoning_content: (!output.reasoning.is_empty()).then_some(output.reasoning),
                thinking_blocks: Vec::new(),
            },
            logprobs: None,
            finish_reason: finish.unwrap_or("stop"),
        });
    }
    let usage = response.usage_metadata.unwrap_or_default();
    let id = response
        .response_id
        .unwrap_or_else(|| format!("gen-{created}"));
    let completion = openai::Completion {
        id: &id,
        object: "chat.completion",
        created,
        model: response.model_version.as_deref().unwrap_or(&target.model),
        choices,
        usage: usage.to_openai(),
    };
    Ok(Completion {
        body: openai::to_json(&completion),
        usage: Some(usage.to_usage()),
    })
}

/// OpenAI's `finish_reason` for a Gemini `finishReason`; `None` while the candidate is still
/// being generated. A candidate that called functions finishes with `tool_calls`.
pub(crate) fn finish_reason(reason: Option<&str>, called_functions: bool) -> Option<&'static str> {
    let reason = reason.filter(|reason| *reason != "FINISH_REASON_UNSPECIFIED")?;
    Some(match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called_functions => "tool_calls",
        // STOP, LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL and reasons added later.
        _ => "stop",
    })
}

/// The parts of a `GenerateContentResponse` the translation uses.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
}

impl GenerateContentResponse {
    /// Reads a response object; one carrying `error` (a failure reported in a 200 body or an
    /// SSE event) is that error.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        if value.get("error").is_some() || value.is_array() {
            return Err(classify(None, read_error_value(&value)));
        }
        if !value.is_object() {
            return Err(invalid_response("Gemini's answer is not a JSON object"));
        }
        serde_json::from_value(value)
            .map_err(|_| invalid_response("Gemini's answer is not a GenerateContentResponse"))
    }

    /// The error for a prompt Gemini blocked (`promptFeedback.blockReason`).
    pub fn block_reason(&self) -> Option<Error> {
        let reason = self
            .prompt_feedback
            .as_ref()?
            .block_reason
            .as_deref()
            .filter(|reason| *reason != "BLOCK_REASON_UNSPECIFIED")?;
        // The reason is one of Google's enum names, safe to show.
        let reason: String = reason
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let mut failure = error(
            ErrorKind::ContentFilter,
            false,
            format!("Gemini blocked the prompt ({reason})"),
        );
        failure.code = Some("content_filter".to_owned());
        Some(failure)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(default)]
    pub content: Option<CandidateContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Deserialize, Default)]
pub(crate) struct CandidateContent {
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default)]
    pub function_call: Option<FunctionCall>,
}

#[derive(Deserialize, Clone)]
pub(crate) struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

impl FunctionCall {
    /// An OpenAI tool call; `call_index` numbers the calls of one choice from 0. `index` is
    /// set for stream deltas.
    pub fn to_openai(&self, call_index: usize, index: Option<u32>) -> openai::ToolCall {
        let arguments = match &self.args {
            Some(args @ Value::Object(_)) => args.to_string(),
            _ => "{}".to_owned(),
        };
        openai::ToolCall {
            index,
            id: Some(format!("call_{call_index}")),
            kind: Some("function"),
            function: openai::FunctionCall {
                name: Some(self.name.clone()),
                arguments,
            },
        }
    }
}

/// A candidate's answer text and function calls.
pub(crate) struct CandidateOutput {
    pub text: String,
    /// Thought summaries (parts marked `thought`), OpenAI's `reasoning_content`.
    pub reasoning: String,
    pub calls: Vec<FunctionCall>,
}

impl Candidate {
    pub fn read(&self) -> CandidateOutput {
        let mut output = CandidateOutput {
            text: String::new(),
            reasoning: String::new(),
            calls: Vec::new(),
        };
        for part in self.content.iter().flat_map(|content| &content.parts) {
            if let Some(call) = &part.function_call {
                output.calls.push(call.clone());
            } else if let Some(text) = &part.text {
                if part.thought == Some(true) {
                    output.reasoning.push_str(text);
                } else {
                    output.text.push_str(text);
                }
            }
        }
        output
    }
}

/// Gemini's token counts.
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub tool_use_prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub thoughts_token_count: u64,
    #[serde(default)]
    pub cached_content_token_count: u64,
    #[serde(default)]
    pub total_token_count: Option<u64>,
}

impl UsageMetadata {
    fn prompt(&self) -> u64 {
        self.prompt_token_count + self.tool_use_prompt_token_count
    }

    fn completion(&self) -> u64 {
        self.candidates_token_count + self.thoughts_token_count
    }

    pub fn to_usage(self) -> Usage {
        let clamp = |count: u64| u32::try_from(count).unwrap_or(u32::MAX);
        Usage {
            prompt_tokens: clamp(self.prompt()),
            completion_tokens: clamp(self.completion()),
        }
    }

    pub fn to_openai(self) -> openai::Usage {
        openai::Usage {
            prompt_tokens: self.prompt(),
            completion_tokens: self.completion(),
            total_tokens: self
                .total_token_count
                .unwrap_or(self.prompt() + self.completion()),
            prompt_tokens_details: openai::PromptTokensDetails {
                cached_tokens: self.cached_content_token_count,
                cache_creation_tokens: None,
            },
            completion_tokens_details: Some(openai::CompletionTokensDetails {
                reasoning_tokens: self.thoughts_token_count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CREATED: u64 = 1_730_000_000;

    fn target() -> Target {
        Target {
            provider: "gemini".into(),
            base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            model: "gemini-2.5-flash".into(),
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
            r#"{
  "candidates": [
    {
      "content": {"parts": [{"text": "Thinking about it...", "thought": true}, {"text": "AI learns "}, {"text": "patterns from data."}], "role": "model"},
      "finishReason": "STOP",
      "avgLogprobs": -0.17,
      "index": 0
    }
  ],
  "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 50, "thoughtsTokenCount": 30, "cachedContentTokenCount": 4, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]},
  "modelVersion": "gemini-2.5-flash-001",
  "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
}"#,
        );
        assert_eq!(
            completion,
            json!({
                "id": "mAitaLmkHPPlz7IPvtfUqQ4",
                "object": "chat.completion",
                "created": CREATED,
                "model": "gemini-2.5-flash-001",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "AI learns patterns from data.", "refusal": null, "reasoning_content": "Thinking about it..."}, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 8, "completion_tokens": 42, "total_tokens": 50, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 30}}
            })
        );
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (8, 42));
    }

    #[test]
    fn function_calls() {
        let (completion, _) = completion_json(
            r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},{"functionCall":{"name":"get_time"}}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":10,"totalTokenCount":50},"modelVersion":"gemini-2.0-flash"}"#,
        );
        let choice = &completion["choices"][0];
        assert_eq!(choice["message"]["content"], Value::Null);
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([
                {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ])
        );
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(completion["id"], format!("gen-{CREATED}"));
    }

    #[test]
    fn finish_reasons_and_several_candidates() {
        for (reason, expected) in [
            ("STOP", "stop"),
            ("MAX_TOKENS", "length"),
            ("SAFETY", "content_filter"),
            ("RECITATION", "content_filter"),
            ("BLOCKLIST", "content_filter"),
            ("PROHIBITED_CONTENT", "content_filter"),
            ("SPII", "content_filter"),
            ("OTHER", "stop"),
        ] {
            let body = format!(
                r#"{{"candidates":[{{"content":{{"parts":[{{"text":"a"}}]}},"finishReason":"{reason}"}},{{"content":{{"parts":[{{"text":"b"}}]}},"finishReason":"STOP","index":1}}]}}"#
            );
            let (completion, usage) = completion_json(&body);
            assert_eq!(
                completion["choices"][0]["finish_reason"], expected,
                "{reason}"
            );
            assert_eq!(completion["choices"][1]["index"], 1);
            assert_eq!(completion["choices"][1]["message"]["content"], "b");
            assert_eq!(completion["model"], "gemini-2.5-flash");
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (0, 0));
        }
        let (completion, _) =
            completion_json(r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#);
        assert_eq!(completion["choices"][0]["message"]["content"], "");
        assert_eq!(completion["choices"][0]["finish_reason"], "content_filter");
    }

    #[test]
    fn blocked_prompt_is_a_content_filter_error() {
        let failure = parse(
            200,
            &[],
            r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}]},"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}}"#,
        )
        .expect_err("blocked");
        assert_eq!(failure.kind, ErrorKind::ContentFilter);
        assert!(!failure.retryable);
        assert_eq!(failure.message, "Gemini blocked the prompt (SAFETY)");
        let failure = parse(200, &[], r#"{"candidates":[]}"#).expect_err("empty");
        assert_eq!(failure.kind, ErrorKind::InvalidResponse);
    }

    #[test]
    fn errors_carry_retry_delay_from_body_or_header() {
        let body = r#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}"#;
        let failure = parse(429, &[("retry-after", "3")], body).expect_err("limited");
        assert_eq!(failure.kind, ErrorKind::RateLimited);
        assert_eq!(failure.retry_after_ms, Some(12_000));
        let failure = parse(
            503,
            &[("retry-after", "3")],
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        )
        .expect_err("overloaded");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        assert_eq!(failure.retry_after_ms, Some(3_000));
    }

    #[test]
    fn error_in_a_success_body_and_garbage() {
        let failure = parse(
            200,
            &[],
            r#"[{"error":{"code":500,"message":"oops","status":"INTERNAL"}}]"#,
        )
        .expect_err("error");
        assert_eq!(failure.kind, ErrorKind::Unavailable);
        for body in ["<html>", "\"text\"", r#"{"candidates":{}}"#] {
            let failure = parse(200, &[], body).expect_err("invalid");
            assert_eq!(failure.kind, ErrorKind::InvalidResponse, "{body}");
            assert!(failure.retryable);
        }
    }
}
