//! Canonical `chat.completion.chunk`s as the Responses event stream.
//!
//! `response.created` and `response.in_progress` open it; each output item is announced by
//! `response.output_item.added`, fed by its deltas (`response.output_text.delta` inside a
//! `content_part`, `response.function_call_arguments.delta`, `response.reasoning_summary_text
//! .delta` inside a summary part) and closed by its `.done` events and
//! `response.output_item.done`; `response.completed` (or `response.incomplete` when the token
//! limit cut the answer) carries the whole response with usage. Every event has its
//! `sequence_number`. A stream that breaks after it was committed ends with an `error` event.

use bytes::Bytes;
use serde_json::{Value, json};

use super::encode::{function_call_item, message_item, output_text, response};

enum Open {
    Reasoning(String),
    Message(String),
    /// OpenAI tool-call index, call id, name, arguments so far.
    Call(u64, String, String, String),
}

#[derive(Default)]
pub struct ResponseStream {
    started: bool,
    sequence: u64,
    id: String,
    model: Value,
    created: u64,
    output: Vec<Value>,
    open: Option<Open>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    out: Vec<u8>,
}

impl ResponseStream {
    fn event(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        self.out.extend_from_slice(b"event: ");
        self.out.extend_from_slice(kind.as_bytes());
        self.out.extend_from_slice(b"\ndata: ");
        self.out.extend_from_slice(data.to_string().as_bytes());
        self.out.extend_from_slice(b"\n\n");
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }

    fn item_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}_{}", self.id, self.output.len())
    }

    fn start(&mut self, chunk: &Value) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = chunk
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("freeway")
            .to_string();
        self.model = chunk.get("model").cloned().unwrap_or(Value::Null);
        self.created = chunk.get("created").and_then(Value::as_u64).unwrap_or(0);
        let mut snapshot = response(&self.id, &self.model, self.created, Vec::new(), None, None);
        snapshot["status"] = json!("in_progress");
        snapshot["usage"] = Value::Null;
        self.event("response.created", json!({"response": snapshot}));
        self.event("response.in_progress", json!({"response": snapshot}));
    }

    /// Closes the open item, if any, with its `.done` events.
    fn close(&mut self) {
        let index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning(text)) => {
                let id = self.item_id("rs");
                let part = json!({"type": "summary_text", "text": text});
                let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                let mut done = at.clone();
                done["text"] = json!(text);
                self.event("response.reasoning_summary_text.done", done);
                let mut done = at;
                done["part"] = part.clone();
                self.event("response.reasoning_summary_part.done", done);
                json!({"type": "reasoning", "id": id, "summary": [part]})
            }
            Some(Open::Message(text)) => {
                let id = self.item_id("msg");
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut done = at.clone();
                done["text"] = json!(text);
                self.event("response.output_text.done", done);
                let mut done = at;
                done["part"] = output_text(&text);
                self.event("response.content_part.done", done);
                let mut item = message_item("", &text, "completed");
                item["id"] = json!(id);
                item
            }
            Some(Open::Call(_, call_id, name, arguments)) => {
                let id = self.item_id("fc");
                self.event(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": arguments}),
                );
                let mut item = function_call_item("", &call_id, &name, &arguments, "completed");
                item["id"] = json!(id);
                item
            }
        };
        self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn add_item(&mut self, item: Value) {
        let index = self.output.len();
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
    }

    fn reasoning(&mut self, delta: &str) {
        if !matches!(self.open, Some(Open::Reasoning(_))) {
            self.close();
            let id = self.item_id("rs");
            self.add_item(json!({"type": "reasoning", "id": id, "summary": []}));
            self.event(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": self.output.len(), "summary_index": 0,
                       "part": {"type": "summary_text", "text": ""}}),
            );
            self.open = Some(Open::Reasoning(String::new()));
        }
        let id = self.item_id("rs");
        let index = self.output.len();
        if let Some(Open::Reasoning(text)) = &mut self.open {
            text.push_str(delta);
        }
        self.event(
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
        );
    }

    fn text(&mut self, delta: &str) {
        if !matches!(self.open, Some(Open::Message(_))) {
            self.close();
            let id = self.item_id("msg");
            self.add_item(json!({"type": "message", "id": id, "status": "in_progress",
                                 "role": "assistant", "content": []}));
            self.event(
                "response.content_part.added",
                json!({"item_id": id, "output_index": self.output.len(), "content_index": 0,
                       "part": output_text("")}),
            );
            self.open = Some(Open::Message(String::new()));
        }
        let id = self.item_id("msg");
        let index = self.output.len();
        if let Some(Open::Message(text)) = &mut self.open {
            text.push_str(delta);
        }
        self.event(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta,
                   "logprobs": []}),
        );
    }

    fn tool_call(&mut self, call: &Value) {
        let position = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        if let Some(call_id) = call.get("id").and_then(Value::as_str) {
            self.close();
            let name = function
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let id = self.item_id("fc");
            let mut item = function_call_item("", call_id, &name, "", "in_progress");
            item["id"] = json!(id);
            self.add_item(item);
            self.open = Some(Open::Call(
                position,
                call_id.to_string(),
                name,
                String::new(),
            ));
        }
        let Some(delta) = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let id = self.item_id("fc");
        let index = self.output.len();
        if let Some(Open::Call(open, _, _, arguments)) = &mut self.open
            && *open == position
        {
            arguments.push_str(delta);
            self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": delta}),
            );
        }
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
        let text_of = |field: &str| {
            delta
                .get(field)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        };
        if let Some(text) = text_of("reasoning_content") {
            self.reasoning(text);
        }
        if let Some(text) = text_of("content") {
            self.text(text);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call(call);
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        self.take()
    }

    /// The end of a completed stream: the whole response.
    pub fn end(&mut self) -> Bytes {
        self.start(&Value::Null);
        self.close();
        let output = std::mem::take(&mut self.output);
        let finished = response(
            &self.id,
            &self.model,
            self.created,
            output,
            self.finish_reason.as_deref(),
            self.usage.as_ref(),
        );
        let kind = if finished["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.event(kind, json!({"response": finished}));
        self.take()
    }

    /// The `error` event that ends a broken stream.
    pub fn error(&mut self, code: &str, message: &str) -> Bytes {
        self.event(
            "error",
            json!({"code": code, "message": message, "param": null}),
        );
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_then_call_is_two_items_and_a_completed_response() {
        let mut stream = ResponseStream::default();
        let mut out = Vec::new();
        for chunk in [
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": " there"}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
        ] {
            out.extend_from_slice(&stream.chunk(&chunk.to_string()));
        }
        out.extend_from_slice(&stream.end());
        let events: Vec<Value> = String::from_utf8_lossy(&out)
            .split("\n\n")
            .filter_map(|frame| frame.split_once("data: "))
            .map(|(_, data)| serde_json::from_str(data).expect("json"))
            .collect();
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds[0], "response.created");
        assert_eq!(kinds.last(), Some(&"response.completed"));
        assert!(kinds.contains(&"response.function_call_arguments.done"));
        let done = events.last().expect("completed");
        assert_eq!(
            done["response"]["output"][0]["content"][0]["text"],
            "Hi there"
        );
        assert_eq!(done["response"]["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(done["response"]["usage"]["total_tokens"], 5);
        let numbers: Vec<u64> = events
            .iter()
            .filter_map(|e| e["sequence_number"].as_u64())
            .collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    }
}
