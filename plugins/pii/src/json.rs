//! Finding and replacing message text inside OpenAI JSON without rebuilding the document.
//!
//! The filter reads only message text: `content` strings, the `text` of content parts, and
//! tool-call `arguments`. Everything else — keys, roles, model, numbers, images, fields the
//! gateway does not know — must reach the upstream byte for byte, so the body is deserialised
//! into borrowed [`RawValue`]s that point into it, and only the string literals that change
//! are spliced.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// A chat message (request `messages[]`, response `choices[].message`, stream `delta`): only
/// the fields holding text. Unknown fields are skipped.
#[derive(Deserialize)]
pub struct Message<'a> {
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    /// The deprecated single function call.
    #[serde(borrow, default)]
    pub function_call: Option<Function<'a>>,
}

#[derive(Deserialize)]
pub struct ToolCall<'a> {
    /// Position of the call in a streamed `delta` (absent in whole messages).
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(borrow, default)]
    pub function: Option<Function<'a>>,
}

#[derive(Deserialize)]
pub struct Function<'a> {
    #[serde(borrow, default)]
    pub arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
}

/// Where a text sits: a JSON string literal (quotes included) in the parsed document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub range: Range<usize>,
    /// Tool-call arguments: the string holds JSON text of its own.
    pub arguments: bool,
}

/// The byte range of `raw` inside `document`, which it was borrowed from.
pub fn range_in(document: &str, raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - document.as_ptr() as usize;
    start..start + raw.get().len()
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// Appends the text segments of one message.
pub fn message_segments(
    document: &str,
    message: &Message<'_>,
    out: &mut Vec<Segment>,
) -> Result<(), String> {
    if let Some(content) = message.content {
        if is_string(content) {
            out.push(Segment {
                range: range_in(document, content),
                arguments: false,
            });
        } else if content.get().starts_with('[') {
            let parts: Vec<&RawValue> =
                serde_json::from_str(content.get()).map_err(|e| shape("content", &e))?;
            for part in parts {
                if !part.get().starts_with('{') {
                    continue;
                }
                let part: Part<'_> =
                    serde_json::from_str(part.get()).map_err(|e| shape("content part", &e))?;
                if let Some(text) = part.text.filter(|text| is_string(text)) {
                    out.push(Segment {
                        range: range_in(document, text),
                        arguments: false,
                    });
                }
            }
        }
    }
    let functions = message
        .tool_calls
        .iter()
        .flatten()
        .filter_map(|call| call.function.as_ref())
        .chain(message.function_call.as_ref());
    for function in functions {
        if let Some(arguments) = function.arguments.filter(|raw| is_string(raw)) {
            out.push(Segment {
                range: range_in(document, arguments),
                arguments: true,
            });
        }
    }
    Ok(())
}

/// A message that is not shaped as expected. Positions only: never quote the text.
pub fn shape(what: &str, error: &serde_json::Error) -> String {
    format!(
        "unexpected {what} in the body (line {}, column {})",
        error.line(),
        error.column()
    )
}

/// The value of a JSON string literal; borrowed when it holds no escapes.
pub fn decode(literal: &str) -> Result<Cow<'_, str>, String> {
    let inner = &literal[1..literal.len() - 1];
    if !has_backslash(inner.as_bytes()) {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(literal)
        .map(Cow::Owned)
        .map_err(|e| shape("string", &e))
}

/// Does `bytes` hold a `\\`? Every message text is searched once, whole.
fn has_backslash(bytes: &[u8]) -> bool {
    any_byte(
        bytes,
        |x| zero_lanes(x ^ (LOW * u64::from(b'\\'))),
        |b| b == b'\\',
    )
}

/// Does `text` hold anything a JSON string literal must escape (`"`, `\\`, a control
/// character)? A redacted text is written back as a literal, and most need no escaping.
pub fn needs_escaping(bytes: &[u8]) -> bool {
    any_byte(
        bytes,
        |x| {
            // `x - 0x20` borrows into a lane's high bit only where the byte was below 0x20
            // (`!x` drops bytes >= 0x80); `"` and `\\` lanes are zero after the XOR.
            (x.wrapping_sub(LOW * 0x20) & !x)
                | zero_lanes(x ^ (LOW * u64::from(b'"')))
                | zero_lanes(x ^ (LOW * u64::from(b'\\')))
        },
        |b| b < 0x20 || b == b'"' || b == b'\\',
    )
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The classic zero-byte test: sets the high bit of each zero lane of `x`. A lane above a true
/// zero may be flagged too (by the borrow), never one without a zero below it, so "any lane
/// flagged" is exact.
fn zero_lanes(x: u64) -> u64 {
    x.wrapping_sub(LOW) & !x
}

/// Whether `flag` marks any byte of `bytes`: eight bytes at a time (SWAR, the bytes of a
/// little-endian `u64` as lanes; `flag` sets the high bit of the lanes it marks, exact for
/// "any" as [`zero_lanes`] is), `scalar` for the tail. Thirty-two bytes per loop turn:
/// inside wasm, `str::contains` goes a byte at a time and every loop turn also pays an
/// interruption check, and these scans are a good part of what a clean request costs.
fn any_byte(bytes: &[u8], flag: impl Fn(u64) -> u64, scalar: impl Fn(u8) -> bool) -> bool {
    let word = |c: &[u8]| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        let marked = flag(word(&block[..8]))
            | flag(word(&block[8..16]))
            | flag(word(&block[16..24]))
            | flag(word(&block[24..]));
        if marked & HIGH != 0 {
            return true;
        }
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for chunk in &mut words {
        if flag(word(chunk)) & HIGH != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| scalar(b))
}

/// The string literals in JSON `text` that are values, not keys (ranges include the quotes).
/// `None` when `text` is not JSON: the caller then treats it as plain text.
pub fn string_values(text: &str) -> Option<Vec<Range<usize>>> {
    serde_json::from_str::<IgnoredAny>(text).ok()?;
    let b = text.as_bytes();
    let mut values = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i += 1;
        let end = i.min(b.len());
        let mut next = end;
        while next < b.len() && b[next].is_ascii_whitespace() {
            next += 1;
        }
        if b.get(next) != Some(&b':') {
            values.push(start..end);
        }
    }
    Some(values)
}

/// `document` with each range replaced, ranges sorted and disjoint.
pub fn splice(document: &str, edits: &[(Range<usize>, String)]) -> String {
    let extra: usize = edits.iter().map(|(_, text)| text.len()).sum();
    let mut out = String::with_capacity(document.len() + extra);
    let mut copied = 0;
    for (range, text) in edits {
        out.push_str(&document[copied..range.start]);
        out.push_str(text);
        copied = range.end;
    }
    out.push_str(&document[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_a_message() {
        let doc = r#"{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:x"}}],"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}"#;
        let message: Message<'_> = serde_json::from_str(doc).expect("valid");
        let mut segments = Vec::new();
        message_segments(doc, &message, &mut segments).expect("shape");
        let texts: Vec<&str> = segments.iter().map(|s| &doc[s.range.clone()]).collect();
        assert_eq!(texts, [r#""hi""#, r#""{\"a\":1}""#]);
        assert_eq!(
            segments.iter().map(|s| s.arguments).collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn null_content_and_missing_fields() {
        let doc = r#"{"role":"assistant","content":null}"#;
        let message: Message<'_> = serde_json::from_str(doc).expect("valid");
        let mut segments = Vec::new();
        message_segments(doc, &message, &mut segments).expect("shape");
        assert!(segments.is_empty());
    }

    #[test]
    fn backslash_search_agrees_with_contains() {
        for len in 0..40 {
            for at in 0..=len {
                let mut bytes = vec![b'a'; len];
                for (k, byte) in bytes.iter_mut().enumerate() {
                    // Neighbours of `\\` (0x5c) and bytes with the high bit set.
                    *byte = [b'[', b']', 0xdc, b'\x1c', b'a'][k % 5];
                }
                assert!(!has_backslash(&bytes), "{len}");
                if at < len {
                    bytes[at] = b'\\';
                    assert!(has_backslash(&bytes), "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn decoding_literals() {
        assert!(matches!(decode(r#""plain""#), Ok(Cow::Borrowed("plain"))));
        assert_eq!(decode(r#""a\nb\u00e9""#).expect("valid"), "a\nb\u{e9}");
    }

    #[test]
    fn string_values_skip_keys() {
        let text = r#"{"to": "a@b.io", "cc" : ["c@d.io"], "n": 1, "q": "say \"hi\""}"#;
        let values: Vec<&str> = string_values(text)
            .expect("json")
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(values, [r#""a@b.io""#, r#""c@d.io""#, r#""say \"hi\"""#]);
        assert_eq!(string_values("send to a@b.io"), None);
    }

    #[test]
    fn splicing() {
        assert_eq!(
            splice("abcdef", &[(1..2, "XX".into()), (4..6, String::new())]),
            "aXXcd"
        );
        assert_eq!(splice("abc", &[]), "abc");
    }

    #[test]
    fn needs_escaping_agrees_with_the_bytewise_rule() {
        let rule = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        for text in ["", "plain text, no escapes", "é ü 😀 ünïcödé", "tab\there"] {
            assert_eq!(
                needs_escaping(text.as_bytes()),
                rule(text.as_bytes()),
                "{text:?}"
            );
        }
        // Every byte value at every lane position, in a clean neighbourhood.
        for byte in 0..=255u8 {
            for at in 0..17 {
                let mut bytes = vec![b'a'; 17];
                bytes[at] = byte;
                assert_eq!(
                    needs_escaping(&bytes),
                    rule(&bytes),
                    "byte {byte:#x} at {at}"
                );
            }
        }
    }
}
