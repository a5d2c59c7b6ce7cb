//! What the gateway reads from an answer it passes on, beside passing it on: its size and,
//! where the content log allows, its text (`AnswerTally`), the cached prompt tokens its usage
//! reports, and its finish reasons. Kept apart from the request record, which only stores
//! the results, because these read the canonical JSON on the hot path and must stay cheap:
//! each checks for its key by substring first and reads only the fields it wants.

use serde::Deserialize;

use super::record::MAX_LOGGED_TEXT;

/// `usage.prompt_tokens_details.cached_tokens` of a canonical answer or chunk, when present.
/// A substring check first: most answers carry no cache figures, and those are not parsed.
/// The rest is read into the few fields wanted (serde skips every other value without
/// building it): a document tree of a whole answer cost ~4 µs a request.
pub fn cached_tokens(json: &str) -> Option<u32> {
    #[derive(Deserialize)]
    struct Answer {
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct Usage {
        prompt_tokens_details: Option<Details>,
    }
    #[derive(Deserialize)]
    struct Details {
        cached_tokens: Option<u64>,
    }
    if !json.contains("cached_tokens") {
        return None;
    }
    let answer: Answer = serde_json::from_str(json).ok()?;
    let cached = answer.usage?.prompt_tokens_details?.cached_tokens?;
    u32::try_from(cached).ok()
}

/// The non-null `finish_reason`s of a canonical answer or chunk, in choice order.
pub fn finish_reasons(json: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        finish_reason: Option<String>,
    }
    if !json.contains("finish_reason") {
        return Vec::new();
    }
    serde_json::from_str::<Answer>(json)
        .map(|answer| {
            answer
                .choices
                .into_iter()
                .filter_map(|choice| choice.finish_reason)
                .collect()
        })
        .unwrap_or_default()
}

/// Sizes a streamed answer and, when it may be logged, collects its text (the `content` of
/// every chunk's deltas, as the upstream sent it) up to [`MAX_LOGGED_TEXT`].
pub struct AnswerTally {
    pub bytes: usize,
    pub text: Option<String>,
}

impl AnswerTally {
    pub fn new(keep_text: bool) -> Self {
        AnswerTally {
            bytes: 0,
            text: keep_text.then(String::new),
        }
    }

    pub fn add(&mut self, chunk: &str) {
        self.bytes += chunk.len();
        let Some(text) = self.text.as_mut().filter(|t| t.len() < MAX_LOGGED_TEXT) else {
            return;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(chunk) else {
            return;
        };
        for choice in value["choices"].as_array().into_iter().flatten() {
            if let Some(content) = choice["delta"]["content"].as_str() {
                text.push_str(content);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cached_tokens, finish_reasons};

    #[test]
    fn cached_tokens_are_read_from_usage_details_only() {
        let answer = r#"{"id":"x","choices":[{"message":{"content":"cached_tokens"}}],
            "usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":7}}}"#;
        assert_eq!(cached_tokens(answer), Some(7));
        assert_eq!(
            cached_tokens(r#"{"usage":{"prompt_tokens_details":{"cached_tokens":null}}}"#),
            None
        );
        assert_eq!(
            cached_tokens(r#"{"usage":null,"note":"cached_tokens"}"#),
            None
        );
        assert_eq!(cached_tokens(r#"{"usage":{"prompt_tokens":3}}"#), None);
        assert_eq!(cached_tokens("not json cached_tokens"), None);
    }

    #[test]
    fn finish_reasons_in_choice_order_without_nulls() {
        let chunk = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"},
            {"index":1,"delta":{"content":"a"},"finish_reason":null},
            {"index":2,"finish_reason":"length"}]}"#;
        assert_eq!(finish_reasons(chunk), ["stop", "length"]);
        assert!(finish_reasons(r#"{"choices":[],"x":"finish_reason"}"#).is_empty());
        assert!(finish_reasons("finish_reason").is_empty());
    }
}
