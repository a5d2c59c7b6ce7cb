//! A JSON object read one level deep: keys in their original order, each value kept as the
//! exact text it had in the input.
//!
//! The adapter only ever edits top-level fields (`model`, `stream`, `stream_options`, `usage`),
//! so parsing `messages` (which holds the whole prompt, images included) into a tree and
//! printing it again would be pure cost. Values are validated by the parser but copied as
//! byte slices.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Top-level entries of a JSON object, borrowed from the text it was parsed from.
pub(crate) struct RawObject<'a> {
    pub entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// Why a text is not a JSON object. Carries only positions, never the text itself, so it can
/// go into error messages without leaking request or answer contents.
pub(crate) enum NotAnObject {
    /// Valid JSON, but not an object (an array, a string, ...).
    OtherValue,
    /// Not JSON at all.
    Syntax { line: usize, column: usize },
}

impl fmt::Display for NotAnObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAnObject::OtherValue => f.write_str("is JSON but not an object"),
            NotAnObject::Syntax { line, column } => {
                write!(f, "is not valid JSON (line {line}, column {column})")
            }
        }
    }
}

impl<'a> RawObject<'a> {
    pub fn parse(text: &'a str) -> Result<Self, NotAnObject> {
        if !starts_as_object(text) {
            // Tell "not JSON" from "JSON, wrong shape" for the message.
            return Err(match serde_json::from_str::<de::IgnoredAny>(text) {
                Ok(_) => NotAnObject::OtherValue,
                Err(error) => syntax(&error),
            });
        }
        serde_json::from_str(text).map_err(|error| syntax(&error))
    }

    /// The value of `key`; the last one wins when a key repeats, as in `serde_json::Value`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| *value)
    }
}

fn syntax(error: &serde_json::Error) -> NotAnObject {
    NotAnObject::Syntax {
        line: error.line(),
        column: error.column(),
    }
}

/// Whether the first non-whitespace character opens an object. Checked before deserializing
/// into structs, which serde would also accept from a JSON array.
pub(crate) fn starts_as_object(text: &str) -> bool {
    text.trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
}

/// Appends `value` as a JSON string literal.
pub(crate) fn write_string(out: &mut Vec<u8>, value: &str) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut copied = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[copied..index]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        copied = index + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// Appends `"key":value` (with a leading comma unless `out` just opened the object).
pub(crate) fn write_entry(out: &mut Vec<u8>, key: &str, value: &str) {
    if out.last() != Some(&b'{') {
        out.push(b',');
    }
    write_string(out, key);
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(RawObject { entries })
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// An object key, borrowed from the input unless it contained escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }

            fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_exact_value_text() {
        let text = r#" {"b": [1, 2 ,3], "a\u0041": {"x" :null}, "b": "last"} "#;
        let object = RawObject::parse(text).ok().expect("an object");
        let keys: Vec<&str> = object.entries.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["b", "aA", "b"]);
        assert_eq!(object.entries[0].1.get(), "[1, 2 ,3]");
        assert_eq!(object.entries[1].1.get(), r#"{"x" :null}"#);
        assert_eq!(object.get("b").map(RawValue::get), Some(r#""last""#));
        assert!(object.get("missing").is_none());
    }

    #[test]
    fn tells_syntax_errors_from_other_values() {
        assert!(matches!(
            RawObject::parse("[1]"),
            Err(NotAnObject::OtherValue)
        ));
        assert!(matches!(
            RawObject::parse("\"secret prompt\""),
            Err(NotAnObject::OtherValue)
        ));
        assert!(matches!(
            RawObject::parse("{\"a\": }"),
            Err(NotAnObject::Syntax { line: 1, column: 7 })
        ));
        assert!(matches!(
            RawObject::parse(""),
            Err(NotAnObject::Syntax { .. })
        ));
        assert!(matches!(
            RawObject::parse("{} trailing"),
            Err(NotAnObject::Syntax { .. })
        ));
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let mut out = Vec::new();
        write_string(&mut out, "a\"b\\c\nd\u{1}é");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
