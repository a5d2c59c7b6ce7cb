//! Canonical `chat.completion.chunk`s as Anthropic's Messages event stream.
//!
//! The sequence a Messages client expects: `message_start`, a `ping`, then for each content
//! block a `content_block_start`, its deltas and a `content_block_stop`, and at the end one
//! `message_delta` (stop reason and usage) and `message_stop`. Blocks open and close as the
//! chunks change kind: `reasoning_content` deltas are a `thinking` block that a signature
//! (from the adapter's `thinking_blocks`) closes; `content` deltas a `text` block; each new
//! tool call (a delta with an `id`) a `tool_use` block fed by `input_json_delta`s. The usage
//! chunk that ends a canonical stream is held for the `message_delta`. A stream that breaks
//! after it was committed ends with an `error` event.

use bytes::Bytes;
use serde_json::{Value, json};

use super::encode::{message_id, stop_reason, usage};

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its OpenAI index.
    Tool(u64),
}

#[derive(Default)]
pub struct MessageStream {
    started: bool,
    /// The open block and its Anthropic index.
    open: Option<(Open, u64)>,
    next_index: u64,
    finish_reason: Option<String>,
    usage: Option<Value>,
    out: Vec<u8>,
}

impl MessageStream {
    fn event(&mut self, name: &str, data: &Value) {
        self.out.extend_from_slice(b"event: ");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\ndata: ");
        self.out.extend_from_slice(data.to_string().as_bytes());
        self.out.extend_from_slice(b"\n\n");
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }

    fn start(&mut self, chunk: &Value) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model").cloned().unwrap_or(json!("")),
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        });
        self.event(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        self.event("ping", &json!({"type": "ping"}));
    }

    fn close(&mut self) {
        if let Some((_, index)) = self.open.take() {
            self.event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// Makes `kind` the open block (opening it with `block` if another kind is open), and
    /// returns its index.
    fn open(&mut self, kind: Open, block: impl FnOnce() -> Value) -> u64 {
        if let Some((open, index)) = self.open
            && open == kind
        {
            return index;
        }
        self.close();
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        self.event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block()}),
        );
        index
    }

    fn delta(&mut self, index: u64, delta: Value) {
        self.event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn thinking_block() -> Value {
        json!({"type": "thinking", "thinking": "", "signature": ""})
    }

    /// The events for one canonical chunk.
    pub fn chunk(&mut self, chunk: &str) -> Bytes {
        let Ok(chunk) = serde_json::from_str::<Value>(chunk) else {
            return Bytes::new();
        };
        self.start(&chunk);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return self.take();
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(text) = delta
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.open(Open::Thinking, Self::thinking_block);
            self.delta(index, json!({"type": "thinking_delta", "thinking": text}));
        }
        for block in delta
            .get("thinking_blocks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.thinking_block_delta(block);
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.open(Open::Text, || json!({"type": "text", "text": ""}));
            self.delta(index, json!({"type": "text_delta", "text": text}));
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call_delta(call);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        self.take()
    }

    /// A thinking block (or its signature) the adapter passed whole.
    fn thinking_block_delta(&mut self, block: &Value) {
        match block.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let index = self.open(Open::Thinking, Self::thinking_block);
                if let Some(text) = block
                    .get("thinking")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.delta(index, json!({"type": "thinking_delta", "thinking": text}));
                }
                if let Some(signature) = block
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    self.delta(
                        index,
                        json!({"type": "signature_delta", "signature": signature}),
                    );
                    // A signature is the last thing a thinking block carries.
                    self.close();
                }
            }
            Some("redacted_thinking") => {
                self.close();
                let index = self.next_index;
                self.next_index += 1;
                self.event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": block}),
                );
                self.event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": index}),
                );
            }
            _ => {}
        }
    }

    fn tool_call_delta(&mut self, call: &Value) {
        let position = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        if let Some(id) = call.get("id").and_then(Value::as_str) {
            let name = function
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            // Each call with an id is a block of its own, even at a repeated index.
            self.close();
            self.open(
                Open::Tool(position),
                || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
            );
        }
        let arguments = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty());
        if let (Some(arguments), Some((Open::Tool(open), index))) = (arguments, self.open)
            && open == position
        {
            self.delta(
                index,
                json!({"type": "input_json_delta", "partial_json": arguments}),
            );
        }
    }

    /// The end of a completed stream.
    pub fn end(&mut self) -> Bytes {
        if !self.started {
            self.start(&Value::Null);
        }
        self.close();
        let usage = usage(self.usage.as_ref());
        let reason = stop_reason(self.finish_reason.as_deref());
        self.event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": usage,
            }),
        );
        self.event("message_stop", &json!({"type": "message_stop"}));
        self.take()
    }

    /// The `error` event that ends a broken stream.
    pub fn error(&mut self, error: &Value) -> Bytes {
        self.event("error", error);
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(bytes: &[u8]) -> Vec<Value> {
        String::from_utf8_lossy(bytes)
            .split("\n\n")
            .filter_map(|frame| frame.split_once("data: "))
            .map(|(_, data)| serde_json::from_str(data).expect("json"))
            .collect()
    }

    #[test]
    fn thinking_text_and_tool_call_become_three_blocks() {
        let mut stream = MessageStream::default();
        let mut out = Vec::new();
        for chunk in [
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "hm"}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig"}]}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "ok"}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "model": "m", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}),
        ] {
            out.extend_from_slice(&stream.chunk(&chunk.to_string()));
        }
        out.extend_from_slice(&stream.end());
        let types: Vec<String> = events(&out)
            .iter()
            .map(|e| {
                let kind = e["type"].as_str().unwrap_or_default();
                let sub = e["delta"]["type"]
                    .as_str()
                    .or(e["content_block"]["type"].as_str())
                    .unwrap_or_default();
                format!("{kind}:{sub}")
            })
            .collect();
        assert_eq!(
            types,
            [
                "message_start:",
                "ping:",
                "content_block_start:thinking",
                "content_block_delta:thinking_delta",
                "content_block_delta:signature_delta",
                "content_block_stop:",
                "content_block_start:text",
                "content_block_delta:text_delta",
                "content_block_stop:",
                "content_block_start:tool_use",
                "content_block_delta:input_json_delta",
                "content_block_stop:",
                "message_delta:",
                "message_stop:",
            ]
        );
        let all = events(&out);
        assert_eq!(all[12]["delta"]["stop_reason"], "tool_use");
        assert_eq!(all[12]["usage"]["output_tokens"], 4);
        assert_eq!(all[9]["index"], 2);
    }
}
