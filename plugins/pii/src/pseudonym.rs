//! Placeholders: `[EMAIL_1]`, `[CARD_2]`, ... — numbered per type in order of appearance, the
//! same value always getting the same placeholder within one request, so the model can still
//! tell "the same address twice" from "two addresses".
//!
//! With `reversible`, the mapping travels in the request's opaque `state` as a JSON object
//! (placeholder → original) and [`Restorer`] puts the originals back into the answer. The
//! state is handed only to this filter's own hooks for the same request; it never reaches an
//! upstream.

use std::collections::BTreeMap;

use crate::detect::Kind;

/// The longest placeholder: `[SECRET_` + 7 digits + `]`. Longer bracketed text is never held
/// back in a stream.
const MAX_PLACEHOLDER: usize = 16;

/// Assigns placeholders for one request.
#[derive(Default)]
pub struct Pseudonyms {
    /// (kind, original, placeholder) in order of first appearance.
    entries: Vec<(Kind, String, String)>,
    counters: [u32; Kind::ALL.len()],
}

impl Pseudonyms {
    /// The placeholder for `value`, allocating the next number for its kind on first sight.
    pub fn placeholder(&mut self, kind: Kind, value: &str) -> &str {
        let index = match self
            .entries
            .iter()
            .position(|(k, original, _)| *k == kind && same_bytes(original, value))
        {
            Some(index) => index,
            None => {
                let counter = &mut self.counters[kind as usize];
                *counter += 1;
                let placeholder = format!("[{}_{}]", kind.label(), counter);
                self.entries.push((kind, value.to_owned(), placeholder));
                self.entries.len() - 1
            }
        };
        &self.entries[index].2
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The mapping as the request's state: `{"[EMAIL_1]":"jane@example.org",...}`.
    pub fn to_state(&self) -> String {
        let mut state = String::from("{");
        for (index, (_, original, placeholder)) in self.entries.iter().enumerate() {
            if index > 0 {
                state.push(',');
            }
            state.push_str(&json_string(placeholder));
            state.push(':');
            state.push_str(&json_string(original));
        }
        state.push('}');
        state
    }
}

/// `a == b`, eight bytes at a time. A long prompt repeats its few values many times, and each
/// occurrence is compared with the values seen so far; inside wasm, `==` on strings calls
/// wasi-libc's byte-at-a-time `memcmp`, several times slower than this.
fn same_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut left, mut right) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut left).zip(&mut right) {
        if u64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]])
            != u64::from_le_bytes([y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]])
        {
            return false;
        }
    }
    left.remainder() == right.remainder()
}

/// `text` as a JSON string literal. Most texts need no escaping: then the quotes are simply
/// added (in wasm that is 5× cheaper than serde's byte-by-byte escaper on a 4 KB text).
pub fn json_string(text: &str) -> String {
    if !crate::json::needs_escaping(text.as_bytes()) {
        let mut literal = String::with_capacity(text.len() + 2);
        literal.push('"');
        literal.push_str(text);
        literal.push('"');
        return literal;
    }
    // Serialising a `str` cannot fail.
    serde_json::to_string(text).unwrap_or_default()
}

/// Puts originals back in place of placeholders. A `BTreeMap`, not a `HashMap`: a hash map's
/// random seed would make the component import `wasi:random` for nothing.
#[derive(Debug, Default)]
pub struct Restorer {
    map: BTreeMap<String, String>,
}

/// How a restored value is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Into plain text.
    None,
    /// Into the inside of a JSON string (tool-call arguments are JSON text).
    JsonString,
}

impl Restorer {
    /// From the state [`Pseudonyms::to_state`] wrote.
    pub fn from_state(state: &str) -> Result<Restorer, String> {
        let map: BTreeMap<String, String> = serde_json::from_str(state)
            .map_err(|problem| format!("pii: unreadable request state: {problem}"))?;
        Ok(Restorer { map })
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `text` with every known placeholder replaced, or `None` when nothing changed.
    pub fn restore(&self, text: &str, escape: Escape) -> Option<String> {
        if self.map.is_empty() || !text.contains('[') {
            return None;
        }
        let mut out = String::with_capacity(text.len() + 32);
        let mut copied = 0;
        let mut from = 0;
        while let Some(offset) = text[from..].find('[') {
            let open = from + offset;
            from = open + 1;
            let window = &text[open..text.len().min(open + MAX_PLACEHOLDER)];
            let Some(close) = window.find(']') else {
                continue;
            };
            let Some(original) = self.map.get(&text[open..=open + close]) else {
                continue;
            };
            out.push_str(&text[copied..open]);
            match escape {
                Escape::None => out.push_str(original),
                Escape::JsonString => {
                    let quoted = json_string(original);
                    out.push_str(&quoted[1..quoted.len() - 1]);
                }
            }
            copied = open + close + 1;
            from = copied;
        }
        if copied == 0 {
            return None;
        }
        out.push_str(&text[copied..]);
        Some(out)
    }
}

/// How many bytes at the end of `text` could be the start of a placeholder cut by a stream
/// chunk boundary (`[`, `[EM`, `[EMAIL_`, `[EMAIL_1`); 0 when none. Bracketed text that cannot
/// become a placeholder (`[1]`, `[Note`) is not held back.
pub fn partial_tail(text: &str) -> usize {
    let Some(open) = text.rfind('[') else {
        return 0;
    };
    let tail = &text.as_bytes()[open + 1..];
    if tail.len() >= MAX_PLACEHOLDER - 1 {
        return 0;
    }
    let letters = tail.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let (word, rest) = tail.split_at(letters);
    let possible = if rest.is_empty() {
        Kind::ALL
            .iter()
            .any(|kind| kind.label().as_bytes().starts_with(word))
    } else {
        rest[0] == b'_'
            && Kind::ALL.iter().any(|kind| kind.label().as_bytes() == word)
            && rest[1..].iter().all(u8::is_ascii_digit)
    };
    if possible { text.len() - open } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let values = [
            "",
            "a",
            "jane@example.org",
            "jane@example.orh",
            "jane@example.or",
            "+44 20 7946 0958",
            "+44 20 7946 0959",
        ];
        for a in values {
            for b in values {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn numbering_per_type_and_value() {
        let mut names = Pseudonyms::default();
        assert_eq!(names.placeholder(Kind::Email, "a@x.io"), "[EMAIL_1]");
        assert_eq!(
            names.placeholder(Kind::Phone, "+44 20 7946 0958"),
            "[PHONE_1]"
        );
        assert_eq!(names.placeholder(Kind::Email, "b@x.io"), "[EMAIL_2]");
        assert_eq!(names.placeholder(Kind::Email, "a@x.io"), "[EMAIL_1]");
        assert_eq!(
            names.to_state(),
            r#"{"[EMAIL_1]":"a@x.io","[PHONE_1]":"+44 20 7946 0958","[EMAIL_2]":"b@x.io"}"#
        );
    }

    #[test]
    fn state_round_trip_and_restore() {
        let mut names = Pseudonyms::default();
        names.placeholder(Kind::Email, "a@x.io");
        names.placeholder(Kind::Secret, "line1\n\"quoted\"");
        let restorer = Restorer::from_state(&names.to_state()).expect("valid state");
        assert_eq!(
            restorer
                .restore("Hi [EMAIL_1], [EMAIL_1]! [EMAIL_9] [1] [", Escape::None)
                .as_deref(),
            Some("Hi a@x.io, a@x.io! [EMAIL_9] [1] [")
        );
        assert_eq!(
            restorer
                .restore(r#"{"key":"[SECRET_1]"}"#, Escape::JsonString)
                .as_deref(),
            Some(r#"{"key":"line1\n\"quoted\""}"#)
        );
        assert_eq!(restorer.restore("nothing [here]", Escape::None), None);
        assert!(Restorer::from_state("not json").is_err());
    }

    #[test]
    fn partial_placeholders_at_the_end() {
        assert_eq!(partial_tail("hello ["), 1);
        assert_eq!(partial_tail("hello [EM"), 3);
        assert_eq!(partial_tail("hello [EMAIL_"), 7);
        assert_eq!(partial_tail("hello [EMAIL_12"), 9);
        assert_eq!(partial_tail("hello [EMAIL_1]"), 0);
        assert_eq!(partial_tail("see [1"), 0);
        assert_eq!(partial_tail("a [Note"), 0);
        assert_eq!(partial_tail("[EMAILS"), 0);
        assert_eq!(partial_tail("[EMAIL_1a"), 0);
        assert_eq!(partial_tail("no bracket"), 0);
    }
}
