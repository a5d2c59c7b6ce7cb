//! Between the two shapes of a canonical answer: a stream of `chat.completion.chunk`s and one
//! `chat.completion`. [`Assembler`] folds a stream's chunks into the answer a non-streaming
//! client would have got (content, reasoning, tool calls with their arguments joined, finish
//! reasons, usage); [`chunks_of`] replays a whole answer as a valid stream (a role-and-content
//! delta per choice, its finish, and the usage chunk when the client asked for it). The cache
//! stores answers in the first shape and serves them in whichever the client asked for.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

#[derive(Default)]
struct ToolCall {
    id: Option<Value>,
    kind: Option<Value>,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct Choice {
    role: Option<Value>,
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u64, ToolCall>,
    finish_reason: Value,
}

/// Folds a stream's chunks into one `chat.completion`, up to `limit` bytes of chunks.
pub struct Assembler {
    head: Map<String, Value>,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Value>,
    bytes: usize,
    limit: usize,
    /// Something could not be read or the limit was passed: no answer comes out.
    spoiled: bool,
}

impl Assembler {
    pub fn new(limit: usize) -> Self {
        Assembler {
            head: Map::new(),
            choices: BTreeMap::new(),
            usage: None,
            bytes: 0,
            limit,
            spoiled: false,
        }
    }

    pub fn push(&mut self, chunk: &str) {
        if self.spoiled {
            return;
        }
        self.bytes += chunk.len();
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(chunk) else {
            self.spoiled = true;
            return;
        };
        if self.bytes > self.limit {
            self.spoiled = true;
            return;
        }
        for field in [
            "id",
            "created",
            "model",
            "system_fingerprint",
            "service_tier",
        ] {
            if let Some(value) = chunk.remove(field).filter(|v| !v.is_null()) {
                self.head.entry(field).or_insert(value);
            }
        }
        if let Some(usage) = chunk.remove("usage").filter(|v| !v.is_null()) {
            self.usage = Some(usage);
        }
        let Some(Value::Array(choices)) = chunk.remove("choices") else {
            return;
        };
        for choice in choices {
            let index = choice["index"].as_u64().unwrap_or(0);
            let into = self.choices.entry(index).or_default();
            let delta = &choice["delta"];
            if let Some(role) = delta.get("role").filter(|v| !v.is_null()) {
                into.role.get_or_insert_with(|| role.clone());
            }
            for (field, text) in [
                ("content", &mut into.content),
                ("reasoning_content", &mut into.reasoning),
                ("refusal", &mut into.refusal),
            ] {
                if let Some(piece) = delta[field].as_str() {
                    text.get_or_insert_with(String::new).push_str(piece);
                }
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let at = call["index"].as_u64().unwrap_or(0);
                let tool = into.tool_calls.entry(at).or_default();
                if let Some(id) = call.get("id").filter(|v| !v.is_null()) {
                    tool.id = Some(id.clone());
                }
                if let Some(kind) = call.get("type").filter(|v| !v.is_null()) {
                    tool.kind = Some(kind.clone());
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    tool.name.push_str(name);
                }
                if let Some(arguments) = call["function"]["arguments"].as_str() {
                    tool.arguments.push_str(arguments);
                }
            }
            if !choice["finish_reason"].is_null() {
                into.finish_reason = choice["finish_reason"].clone();
            }
        }
    }

    /// The whole answer, or `None` when the stream could not be read in full or held no
    /// choice that finished.
    pub fn finish(self) -> Option<String> {
        if self.spoiled
            || self.choices.is_empty()
            || self.choices.values().any(|c| c.finish_reason.is_null())
        {
            return None;
        }
        let mut answer = self.head;
        answer.insert("object".into(), json!("chat.completion"));
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, choice)| {
                let mut message = Map::new();
                message.insert(
                    "role".into(),
                    choice.role.unwrap_or_else(|| json!("assistant")),
                );
                message.insert(
                    "content".into(),
                    choice.content.map_or(Value::Null, Value::String),
                );
                if let Some(reasoning) = choice.reasoning {
                    message.insert("reasoning_content".into(), Value::String(reasoning));
                }
                if let Some(refusal) = choice.refusal {
                    message.insert("refusal".into(), Value::String(refusal));
                }
                if !choice.tool_calls.is_empty() {
                    let calls: Vec<Value> = choice
                        .tool_calls
                        .into_values()
                        .map(|call| {
                            json!({
                                "id": call.id.unwrap_or(Value::Null),
                                "type": call.kind.unwrap_or_else(|| json!("function")),
                                "function": {"name": call.name, "arguments": call.arguments},
                            })
                        })
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                json!({"index": index, "message": message, "finish_reason": choice.finish_reason})
            })
            .collect();
        answer.insert("choices".into(), Value::Array(choices));
        if let Some(usage) = self.usage {
            answer.insert("usage".into(), usage);
        }
        serde_json::to_string(&answer).ok()
    }
}

/// A whole `chat.completion` as the chunks of a stream; `None` if it is not one.
pub fn chunks_of(answer: &str, include_usage: bool) -> Option<Vec<String>> {
    let Value::Object(answer) = serde_json::from_str::<Value>(answer).ok()? else {
        return None;
    };
    let mut head = Map::new();
    for field in [
        "id",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
    ] {
        if let Some(value) = answer.get(field) {
            head.insert(field.into(), value.clone());
        }
    }
    head.insert("object".into(), json!("chat.completion.chunk"));
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = head.clone();
        chunk.insert("choices".into(), choices);
        if let Some(usage) = usage {
            chunk.insert("usage".into(), usage.clone());
        }
        Value::Object(chunk).to_string()
    };
    let mut chunks = Vec::new();
    for choice in answer.get("choices")?.as_array()? {
        let index = choice.get("index").cloned().unwrap_or(json!(0));
        let message = choice.get("message")?.as_object()?;
        let mut delta = Map::new();
        delta.insert(
            "role".into(),
            message.get("role").cloned().unwrap_or(json!("assistant")),
        );
        for field in ["content", "reasoning_content", "refusal"] {
            if let Some(text) = message.get(field).filter(|v| v.is_string()) {
                delta.insert(field.into(), text.clone());
            }
        }
        if let Some(Value::Array(calls)) = message.get("tool_calls") {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    let mut call = call.clone();
                    if let Value::Object(call) = &mut call {
                        call.insert("index".into(), json!(i));
                    }
                    call
                })
                .collect();
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        chunks.push(chunk(
            json!([{"index": index, "delta": delta, "finish_reason": null}]),
            None,
        ));
        let finish = choice
            .get("finish_reason")
            .cloned()
            .unwrap_or(json!("stop"));
        chunks.push(chunk(
            json!([{"index": index, "delta": {}, "finish_reason": finish}]),
            None,
        ));
    }
    if include_usage && let Some(usage) = answer.get("usage") {
        chunks.push(chunk(json!([]), Some(usage)));
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[&str] = &[
        r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"lo","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\""}}]},"finish_reason":null}]}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
    ];

    fn assemble(chunks: &[&str]) -> Option<Value> {
        let mut assembler = Assembler::new(1 << 20);
        for chunk in chunks {
            assembler.push(chunk);
        }
        assembler
            .finish()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn a_stream_folds_into_the_answer_a_plain_request_gets() {
        let answer = assemble(STREAM).expect("complete");
        assert_eq!(answer["object"], "chat.completion");
        assert_eq!(answer["id"], "c1");
        let message = &answer["choices"][0]["message"];
        assert_eq!(message["content"], "Hello");
        assert_eq!(message["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            r#"{"a":1}"#
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(answer["usage"]["total_tokens"], 5);
    }

    #[test]
    fn an_unfinished_or_oversized_stream_gives_nothing() {
        assert!(assemble(&STREAM[..3]).is_none(), "no finish_reason yet");
        let mut small = Assembler::new(100);
        for chunk in STREAM {
            small.push(chunk);
        }
        assert!(small.finish().is_none());
        assert!(assemble(&["not json"]).is_none());
    }

    #[test]
    fn an_answer_replays_as_a_stream_that_folds_back_into_it() {
        let answer = assemble(STREAM).unwrap().to_string();
        let chunks = chunks_of(&answer, true).expect("an answer");
        assert_eq!(chunks.len(), 3);
        let first: Value = serde_json::from_str(&chunks[0]).unwrap();
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        let again = assemble(&refs).unwrap();
        assert_eq!(again, serde_json::from_str::<Value>(&answer).unwrap());
        let without_usage = chunks_of(&answer, false).unwrap();
        assert_eq!(without_usage.len(), 2);
    }
}
