//! The stream translation: Anthropic's Messages event stream becomes `chat.completion.chunk`s.
//! SSE framing and the pending error are the SDK's (`freeway_plugin_sdk::stream`); this module
//! owns what one event becomes.
//!
//! Messages streams typed events (`message_start`, `content_block_start`,
//! `content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`, `ping`,
//! `error`). They map to chunks like this:
//! - `message_start` gives the id, model and prompt usage; the first chunk (carrying `role`)
//!   waits for the first content, so an `error` event before it still lets the host fail over;
//! - a `text_delta` is a `content` delta; a `tool_use` block start is the first delta of a tool
//!   call (id, name, empty arguments) and each `input_json_delta` a fragment of its arguments.
//!   Tool calls are numbered in the order their blocks start, not by Anthropic's block index,
//!   which also counts text and thinking blocks;
//! - `message_delta` carries the `finish_reason` and output usage; `message_stop` ends the
//!   stream with a usage-only chunk (`choices: []`), which the host needs for accounting.
//!
//! A `thinking_delta` is a `reasoning_content` delta; a `signature_delta` (the end of a thinking
//! block) and a whole `redacted_thinking` block arrive as `thinking_blocks` deltas, so the
//! blocks can be rebuilt and sent back intact. Pings and event types added later are skipped. An `error` event or a body
//! that ends before any stop reason is a typed error rather than a silently short answer.

use serde::Deserialize;
use serde_json::Value;

use freeway_plugin_sdk::http::{error, invalid_response};
use freeway_plugin_sdk::openai::unix_now;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{Chunk, Target};
use freeway_plugin_sdk::sse::SseEvent;
use freeway_plugin_sdk::stream::EventTranslator;
use freeway_plugin_sdk::types::{Error, ErrorKind};

use crate::errors::{classify, read_error_value};
use crate::openai;
use crate::response::{MessageUsage, finish_reason};
use crate::structured::JSON_TOOL;

/// This adapter's part of the SDK's stream decoder.
pub(crate) struct Translator {
    header: openai::StreamHeader,
    sent_role: bool,
    /// Anthropic block index → OpenAI tool-call index, for the tool-use blocks seen so far.
    /// (Anthropic block index, OpenAI tool-call index, whether any argument text arrived).
    tool_blocks: Vec<(u64, u32, bool)>,
    /// The block of the structured-answer tool (see `structured`), whose input is text.
    json_block: Option<u64>,
    usage: MessageUsage,
    finish_reason: Option<&'static str>,
    stopped: bool,
}

impl Translator {
    pub fn new(model: &str, created: u64) -> Self {
        Self {
            header: openai::StreamHeader {
                id: format!("msg_{created}"),
                created,
                model: model.to_owned(),
            },
            sent_role: false,
            tool_blocks: Vec::new(),
            json_block: None,
            usage: MessageUsage::default(),
            finish_reason: None,
            stopped: false,
        }
    }

    /// A chunk with one choice; the first chunk of the stream also carries the role.
    fn chunk(&mut self, mut delta: openai::Delta, finish_reason: Option<&'static str>) -> Chunk {
        if !self.sent_role {
            self.sent_role = true;
            delta.role = Some("assistant");
        }
        self.header.chunk(vec![openai::ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }])
    }

    fn usage_chunk(&self) -> Chunk {
        self.header
            .usage_chunk(self.usage.to_openai(), self.usage.to_usage())
    }
}

impl EventTranslator for Translator {
    fn for_target(target: &Target) -> Self {
        Self::new(&target.model, unix_now())
    }

    fn stopped(&self) -> bool {
        self.stopped
    }

    fn end(&mut self, chunks: &mut Vec<Chunk>) -> Result<(), Error> {
        if !self.stopped {
            if self.finish_reason.is_none() {
                return Err(error(
                    ErrorKind::Unavailable,
                    true,
                    "Anthropic's stream ended early",
                ));
            }
            // The answer was complete; only `message_stop` was lost.
            chunks.push(self.usage_chunk());
            self.stopped = true;
        }
        Ok(())
    }

    fn translate_event(&mut self, event: SseEvent, chunks: &mut Vec<Chunk>) -> Result<(), Error> {
        let payload = event.data.trim();
        if payload.is_empty() {
            return Ok(());
        }
        let value: Value = serde_json::from_str(payload).map_err(|parse_error| {
            invalid_response(format!(
                "Anthropic sent a stream event that is not valid JSON (line {}, column {})",
                parse_error.line(),
                parse_error.column()
            ))
        })?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let start: MessageStart = parse(value)?;
                if let Some(id) = start.message.id {
                    self.header.id = id;
                }
                if let Some(model) = start.message.model {
                    self.header.model = model;
                }
                self.usage.update(start.message.usage);
                // No chunk yet: the host commits to this target at the first chunk, and
                // Anthropic often reports overload as an `error` event right after
                // `message_start`. Until content arrives, failing over is still possible.
            }
            "content_block_start" => {
                let start: BlockStart = parse(value)?;
                match start.content_block {
                    StartBlock::Text { text: start } if !start.is_empty() => {
                        chunks.push(self.chunk(text(start), None));
                    }
                    StartBlock::RedactedThinking { data } => {
                        let block = serde_json::json!({"type": "redacted_thinking", "data": data});
                        chunks.push(self.chunk(thinking_block(block), None));
                    }
                    StartBlock::ToolUse { name, .. } if name == JSON_TOOL => {
                        self.json_block = Some(start.index);
                    }
                    StartBlock::ToolUse { id, name } => {
                        let tool_index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                        self.tool_blocks.push((start.index, tool_index, false));
                        let call = openai::ToolCall {
                            index: Some(tool_index),
                            id: Some(id),
                            kind: Some("function"),
                            function: openai::FunctionCall {
                                name: Some(name),
                                arguments: String::new(),
                            },
                        };
                        chunks.push(self.chunk(tool_call(call), None));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta: BlockDelta = parse(value)?;
                match delta.delta {
                    ContentDelta::TextDelta { text: piece } if !piece.is_empty() => {
                        chunks.push(self.chunk(text(piece), None));
                    }
                    ContentDelta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                        let delta = openai::Delta {
                            reasoning_content: Some(thinking),
                            ..openai::Delta::default()
                        };
                        chunks.push(self.chunk(delta, None));
                    }
                    ContentDelta::SignatureDelta { signature } if !signature.is_empty() => {
                        let block = serde_json::json!({
                            "type": "thinking", "thinking": "", "signature": signature,
                        });
                        chunks.push(self.chunk(thinking_block(block), None));
                    }
                    // The structured answer's input is the message text (an empty first
                    // fragment falls through to the arm that skips it).
                    ContentDelta::InputJsonDelta { partial_json }
                        if self.json_block == Some(delta.index) && !partial_json.is_empty() =>
                    {
                        chunks.push(self.chunk(text(partial_json), None));
                    }
                    ContentDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                        let tool_index = self
                            .tool_blocks
                            .iter_mut()
                            .find(|(block, _, _)| *block == delta.index)
                            .map(|(_, tool, seen)| {
                                *seen = true;
                                *tool
                            })
                            .ok_or_else(|| {
                                invalid_response(
                                    "Anthropic sent tool input for a block that is not a tool call",
                                )
                            })?;
                        let call = openai::ToolCall {
                            index: Some(tool_index),
                            id: None,
                            kind: None,
                            function: openai::FunctionCall {
                                name: None,
                                arguments: partial_json,
                            },
                        };
                        chunks.push(self.chunk(tool_call(call), None));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                let delta: MessageDelta = parse(value)?;
                if let Some(usage) = delta.usage {
                    self.usage.update(usage);
                }
                if let Some(reason) = delta.delta.stop_reason {
                    let reason = match finish_reason(&reason) {
                        // Only the structured-answer tool was called: the text is complete.
                        "tool_calls"
                            if self.json_block.is_some() && self.tool_blocks.is_empty() =>
                        {
                            "stop"
                        }
                        reason => reason,
                    };
                    self.finish_reason = Some(reason);
                    chunks.push(self.chunk(openai::Delta::default(), Some(reason)));
                }
            }
            "message_stop" => {
                if self.finish_reason.is_none() {
                    // No message_delta arrived: close the choice so clients see an end.
                    let reason = if self.tool_blocks.is_empty() {
                        "stop"
                    } else {
                        "tool_calls"
                    };
                    self.finish_reason = Some(reason);
                    chunks.push(self.chunk(openai::Delta::default(), Some(reason)));
                }
                chunks.push(self.usage_chunk());
                self.stopped = true;
            }
            "content_block_stop" => {
                // A tool called without input streams no argument text at all; OpenAI clients
                // parse `arguments` as JSON, so close it as the empty object, as OpenAI does.
                let stop: BlockStop = parse(value)?;
                if let Some((_, tool_index, seen)) = self
                    .tool_blocks
                    .iter_mut()
                    .find(|(block, _, _)| *block == stop.index)
                    && !*seen
                {
                    *seen = true;
                    let call = openai::ToolCall {
                        index: Some(*tool_index),
                        id: None,
                        kind: None,
                        function: openai::FunctionCall {
                            name: None,
                            arguments: "{}".to_string(),
                        },
                    };
                    chunks.push(self.chunk(tool_call(call), None));
                }
            }
            "error" => return Err(classify(None, read_error_value(&value))),
            // ping, and event types added after this adapter.
            _ => {}
        }
        Ok(())
    }
}

/// A delta with text only.
fn text(content: String) -> openai::Delta {
    openai::Delta {
        content: Some(content),
        ..openai::Delta::default()
    }
}

/// A delta with one thinking block (a signature, or a redacted block).
fn thinking_block(block: Value) -> openai::Delta {
    openai::Delta {
        thinking_blocks: vec![block],
        ..openai::Delta::default()
    }
}

/// A delta with one tool-call fragment.
fn tool_call(call: openai::ToolCall) -> openai::Delta {
    openai::Delta {
        tool_calls: vec![call],
        ..openai::Delta::default()
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|_| invalid_response("Anthropic sent a stream event of an unexpected shape"))
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: MessageUsage,
}

#[derive(Deserialize)]
struct BlockStart {
    index: u64,
    content_block: StartBlock,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    RedactedThinking {
        data: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct BlockStop {
    index: u64,
}

#[derive(Deserialize)]
struct BlockDelta {
    index: u64,
    delta: ContentDelta,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    /// Citation deltas and kinds added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    delta: StopDelta,
    #[serde(default)]
    usage: Option<MessageUsage>,
}

#[derive(Deserialize)]
struct StopDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[cfg(test)]
mod tests;
