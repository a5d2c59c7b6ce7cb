//! OpenAI's chat-completions format for adapters that translate to and from another wire
//! format (Anthropic, Gemini): a typed view of the client's request to render from
//! ([`request::ChatRequest`]), and the `chat.completion` and `chat.completion.chunk`
//! objects they write back (here).
//!
//! The answers are typed structs rather than `serde_json::Value` trees: fields come out in OpenAI's order (a
//! `Value` object sorts its keys), which keeps answers readable next to OpenAI's own, and no
//! map is built per object.

use serde::Serialize;

use crate::provider::exports::freeway::plugin::adapter::Chunk as HostChunk;

pub mod request;

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
    /// The model's reasoning as text, where the upstream returns it (DeepSeek's and
    /// LiteLLM's name for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Anthropic's `thinking` and `redacted_thinking` blocks, whole with their signatures,
    /// so a client can send them back on the next turn (a tool-call loop needs them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thinking_blocks: Vec<serde_json::Value>,
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
    /// A piece of the model's reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// A thinking block's signature (`{"type":"thinking","thinking":"","signature":…}`,
    /// the end of that block) or a whole `redacted_thinking` block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thinking_blocks: Vec<serde_json::Value>,
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
    /// Prompt tokens written to the upstream's prompt cache (Anthropic's
    /// `cache_creation_input_tokens`), where it reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_tokens: Option<u64>,
}

/// Thinking tokens (Gemini's name), which OpenAI calls reasoning tokens.
#[derive(Serialize)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

/// What every chunk of one stream repeats: its id, `created` and model.
pub struct StreamHeader {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl StreamHeader {
    /// A `chat.completion.chunk` with these choices, as the host's chunk record.
    pub fn chunk(&self, choices: Vec<ChunkChoice>) -> HostChunk {
        self.host_chunk(choices, None, None)
    }

    /// The usage-only chunk that ends a stream (`choices: []`): `usage` as OpenAI writes it,
    /// `counted` as the host records it for accounting.
    pub fn usage_chunk(&self, usage: Usage, counted: crate::types::Usage) -> HostChunk {
        self.host_chunk(Vec::new(), Some(usage), Some(counted))
    }

    fn host_chunk(
        &self,
        choices: Vec<ChunkChoice>,
        usage: Option<Usage>,
        counted: Option<crate::types::Usage>,
    ) -> HostChunk {
        let data = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        HostChunk {
            data: to_json(&data),
            usage: counted,
        }
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
                    ..Delta::default()
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
