//! Putting originals back into a streamed answer, chunk by chunk (`chat.completion.chunk`):
//! inside `choices[].delta.content` and streamed tool-call `arguments`.
//!
//! A placeholder can be cut by a chunk boundary (`... [EMA` | `IL_1] ...`), so the end of each
//! text that could still become a placeholder is held back and put in front of the next text
//! of the same choice (and tool call); a choice's `finish_reason` or the end of the stream
//! releases it. Chunks with no placeholder in sight and nothing held pass unchanged without
//! being parsed — most chunks of most answers.

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::{self, Message};
use crate::pseudonym::{Escape, Restorer, json_string, partial_tail};

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    created: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    delta: Option<&'a RawValue>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

/// Which text of the answer: a choice's content (`tool: None`) or one of its tool calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    choice: u32,
    tool: Option<u32>,
}

pub struct StreamRestorer {
    restorer: Restorer,
    /// Text held back, per text of the answer.
    pending: Vec<(Key, String)>,
    /// `{"id":...,"object":...,"created":...,"model":...,` of the stream, to frame text still
    /// held back at the end.
    envelope: Option<String>,
}

impl StreamRestorer {
    pub fn new(restorer: Restorer) -> Self {
        StreamRestorer {
            restorer,
            pending: Vec::new(),
            envelope: None,
        }
    }

    /// The chunk to send instead of `chunk`, or `None` to send it unchanged.
    pub fn on_chunk(&mut self, chunk: &str) -> Result<Option<String>, String> {
        if self.restorer.is_empty() || (self.pending.is_empty() && !may_hold_placeholder(chunk)) {
            return Ok(None);
        }
        let parsed: Chunk<'_> =
            serde_json::from_str(chunk).map_err(|e| json::shape("stream chunk", &e))?;
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for choice in parsed.choices.iter().flatten() {
            let Some(delta_raw) = choice.delta.filter(|d| d.get().starts_with('{')) else {
                continue;
            };
            let choice_index = choice.index.unwrap_or(0);
            let finishing = choice
                .finish_reason
                .is_some_and(|reason| reason.get() != "null");
            let delta: Message<'_> =
                serde_json::from_str(delta_raw.get()).map_err(|e| json::shape("delta", &e))?;

            let content_key = Key {
                choice: choice_index,
                tool: None,
            };
            match delta.content.filter(|c| c.get().starts_with('"')) {
                Some(content) => {
                    let range = json::range_in(chunk, content);
                    let text = json::decode(&chunk[range.clone()])?;
                    if let Some(text) = self.pass_text(content_key, &text, finishing, Escape::None)
                    {
                        edits.push((range, json_string(&text)));
                    }
                }
                None if finishing => {
                    if let Some(held) = self.take_pending(content_key) {
                        let text = self.restorer.restore(&held, Escape::None).unwrap_or(held);
                        edits.push(insert_content(chunk, delta_raw, &text));
                    }
                }
                None => {}
            }
            for call in delta.tool_calls.iter().flatten() {
                let Some(arguments) = call.function.as_ref().and_then(|f| f.arguments) else {
                    continue;
                };
                if !arguments.get().starts_with('"') {
                    continue;
                }
                let key = Key {
                    choice: choice_index,
                    tool: Some(call.index.unwrap_or(0)),
                };
                let range = json::range_in(chunk, arguments);
                let text = json::decode(&chunk[range.clone()])?;
                if let Some(text) = self.pass_text(key, &text, finishing, Escape::JsonString) {
                    edits.push((range, json_string(&text)));
                }
            }
        }
        if !self.pending.is_empty() && self.envelope.is_none() {
            self.envelope = Some(envelope(&parsed));
        }
        if edits.is_empty() {
            return Ok(None);
        }
        edits.sort_by_key(|(range, _)| range.start);
        Ok(Some(json::splice(chunk, &edits)))
    }

    /// Chunks carrying text still held back when the stream ends.
    pub fn finish(&mut self) -> Vec<String> {
        let envelope = self.envelope.take().unwrap_or_else(|| "{".to_owned());
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(key, held)| {
                let delta = match key.tool {
                    None => {
                        let text = self.restorer.restore(&held, Escape::None).unwrap_or(held);
                        format!(r#"{{"content":{}}}"#, json_string(&text))
                    }
                    Some(tool) => {
                        let text = self.restorer.restore(&held, Escape::JsonString).unwrap_or(held);
                        format!(
                            r#"{{"tool_calls":[{{"index":{tool},"function":{{"arguments":{}}}}}]}}"#,
                            json_string(&text)
                        )
                    }
                };
                format!(
                    r#"{envelope}"choices":[{{"index":{},"delta":{delta},"finish_reason":null}}]}}"#,
                    key.choice
                )
            })
            .collect()
    }

    /// One streamed text with what was held before it: the text to send (restored), or `None`
    /// when it goes out unchanged. Holds back a trailing partial placeholder unless finishing.
    fn pass_text(
        &mut self,
        key: Key,
        text: &str,
        finishing: bool,
        escape: Escape,
    ) -> Option<String> {
        let held_before = self.take_pending(key);
        let had_pending = held_before.is_some();
        let mut combined = held_before.unwrap_or_default();
        combined.push_str(text);
        let hold = if finishing {
            0
        } else {
            partial_tail(&combined)
        };
        if hold > 0 {
            let held = combined.split_off(combined.len() - hold);
            self.pending.push((key, held));
        }
        match self.restorer.restore(&combined, escape) {
            Some(restored) => Some(restored),
            None if had_pending || hold > 0 => Some(combined),
            None => None,
        }
    }

    fn take_pending(&mut self, key: Key) -> Option<String> {
        let index = self.pending.iter().position(|(k, _)| *k == key)?;
        Some(self.pending.swap_remove(index).1)
    }
}

/// Could this chunk hold a placeholder or the start of one? `[` before an upper-case letter,
/// or at the very end of a string (`["`). The `[` of JSON arrays is followed by `{`, `"`... of
/// a key-less value or `]`, never by a letter, and `["` only in arrays of strings, which chunk
/// deltas do not have.
fn may_hold_placeholder(chunk: &str) -> bool {
    chunk
        .as_bytes()
        .windows(2)
        .any(|pair| pair[0] == b'[' && (pair[1].is_ascii_uppercase() || pair[1] == b'"'))
}

/// An edit adding `"content":"..."` at the front of a `delta` object that had none.
fn insert_content(chunk: &str, delta: &RawValue, text: &str) -> (Range<usize>, String) {
    let at = json::range_in(chunk, delta).start + 1;
    let empty = delta.get()[1..].trim_start().starts_with('}');
    let comma = if empty { "" } else { "," };
    (at..at, format!(r#""content":{}{comma}"#, json_string(text)))
}

fn envelope(chunk: &Chunk<'_>) -> String {
    let mut out = String::from("{");
    for (name, value) in [
        ("id", chunk.id),
        ("object", None),
        ("created", chunk.created),
        ("model", chunk.model),
    ] {
        match (name, value) {
            ("object", _) => out.push_str(r#""object":"chat.completion.chunk","#),
            (_, Some(value)) => {
                out.push_str(&format!(r#""{name}":{},"#, value.get()));
            }
            (_, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restorer() -> StreamRestorer {
        StreamRestorer::new(
            Restorer::from_state(
                r#"{"[EMAIL_1]":"jane@example.org","[PHONE_1]":"+44 20 7946 0958"}"#,
            )
            .expect("state"),
        )
    }

    fn chunk(content: &str) -> String {
        format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]}}"#,
            json_string(content)
        )
    }

    /// Feeds contents as chunks; returns the text the client sees.
    fn stream(filter: &mut StreamRestorer, contents: &[&str]) -> String {
        let mut seen = String::new();
        let mut read = |out: &str| {
            let value: serde_json::Value = serde_json::from_str(out).expect("chunk stays JSON");
            if let Some(text) = value["choices"][0]["delta"]["content"].as_str() {
                seen.push_str(text);
            }
        };
        for content in contents {
            let input = chunk(content);
            match filter.on_chunk(&input).expect("valid") {
                Some(replaced) => read(&replaced),
                None => read(&input),
            }
        }
        for out in filter.finish() {
            read(&out);
        }
        seen
    }

    #[test]
    fn whole_placeholders_are_restored() {
        assert_eq!(
            stream(&mut restorer(), &["Hi [EMAIL_1]!", " Call [PHONE_1]."]),
            "Hi jane@example.org! Call +44 20 7946 0958."
        );
    }

    #[test]
    fn split_placeholders_are_restored_at_every_cut() {
        let text = "Dear [EMAIL_1], ok";
        for cut in 1..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(
                stream(&mut restorer(), &[a, b]),
                "Dear jane@example.org, ok",
                "cut at {cut}"
            );
        }
        assert_eq!(
            stream(
                &mut restorer(),
                &["[", "E", "M", "A", "I", "L", "_", "1", "]"]
            ),
            "jane@example.org"
        );
    }

    #[test]
    fn held_text_is_released_at_finish() {
        assert_eq!(stream(&mut restorer(), &["the end [EMA"]), "the end [EMA");
        let mut filter = restorer();
        assert!(
            filter
                .on_chunk(&chunk("x [EMAIL_"))
                .expect("valid")
                .is_some()
        );
        let tail = filter.finish();
        assert_eq!(tail.len(), 1);
        assert_eq!(
            tail[0],
            r#"{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"[EMAIL_"},"finish_reason":null}]}"#
        );
    }

    #[test]
    fn finish_reason_releases_into_the_last_chunk() {
        let mut filter = restorer();
        filter.on_chunk(&chunk("mail [EMAIL")).expect("valid");
        let last = r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(
            filter.on_chunk(last).expect("valid").as_deref(),
            Some(
                r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"[EMAIL"},"finish_reason":"stop"}]}"#
            )
        );
        assert!(filter.finish().is_empty());
    }

    #[test]
    fn chunks_without_placeholders_pass_unparsed() {
        let mut filter = restorer();
        assert_eq!(
            filter.on_chunk(&chunk("plain [1] text")).expect("valid"),
            None
        );
        assert_eq!(filter.on_chunk("not json at all").expect("fast path"), None);
        assert_eq!(
            filter
                .on_chunk(r#"{"choices":[],"usage":{"prompt_tokens":3}}"#)
                .expect("valid"),
            None
        );
    }

    #[test]
    fn streamed_tool_arguments_are_restored_escaped() {
        let mut filter = restorer();
        let first = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"to\":\"[EMA"}}]}}]}"#;
        let second = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"IL_1]\"}"}}]}}]}"#;
        let a = filter.on_chunk(first).expect("valid").expect("held back");
        let b = filter.on_chunk(second).expect("valid").expect("restored");
        assert!(a.contains(r#""arguments":"{\"to\":\""#), "{a}");
        assert!(b.contains(r#""arguments":"jane@example.org\"}""#), "{b}");
    }
}
