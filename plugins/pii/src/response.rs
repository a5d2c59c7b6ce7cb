//! Putting originals back into a whole answer (`chat.completion`): inside
//! `choices[].message.content` (string or text parts) and tool-call `arguments`, where values
//! are written JSON-escaped because the arguments are JSON text themselves.

use serde::Deserialize;

use crate::json::{self, Message};
use crate::pseudonym::{Escape, Restorer, json_string};

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
}

/// The restored body, or `None` when no placeholder was found.
pub fn restore_completion(body: &str, restorer: &Restorer) -> Result<Option<String>, String> {
    if restorer.is_empty() {
        return Ok(None);
    }
    let completion: Completion<'_> =
        serde_json::from_str(body).map_err(|e| json::shape("answer", &e))?;
    let mut segments = Vec::new();
    for message in completion
        .choices
        .iter()
        .flatten()
        .filter_map(|choice| choice.message.as_ref())
    {
        json::message_segments(body, message, &mut segments)?;
    }
    let mut edits = Vec::new();
    for segment in segments {
        let text = json::decode(&body[segment.range.clone()])?;
        let escape = if segment.arguments {
            Escape::JsonString
        } else {
            Escape::None
        };
        if let Some(restored) = restorer.restore(&text, escape) {
            edits.push((segment.range, json_string(&restored)));
        }
    }
    Ok((!edits.is_empty()).then(|| json::splice(body, &edits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restorer() -> Restorer {
        Restorer::from_state(r#"{"[EMAIL_1]":"jane@example.org","[SECRET_1]":"a\"b"}"#)
            .expect("state")
    }

    #[test]
    fn content_and_arguments_are_restored() {
        let body = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Dear [EMAIL_1], key [SECRET_1]","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"to\":\"[EMAIL_1]\",\"k\":\"[SECRET_1]\"}"}}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}"#;
        let restored = restore_completion(body, &restorer())
            .expect("valid")
            .expect("changed");
        let value: serde_json::Value = serde_json::from_str(&restored).expect("JSON");
        assert_eq!(
            value["choices"][0]["message"]["content"],
            "Dear jane@example.org, key a\"b"
        );
        let arguments = value["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .expect("string");
        let arguments: serde_json::Value =
            serde_json::from_str(arguments).expect("arguments stay JSON");
        assert_eq!(arguments["to"], "jane@example.org");
        assert_eq!(arguments["k"], "a\"b");
        // Everything else is untouched.
        assert!(restored.starts_with(r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"#));
        assert!(restored.ends_with(r#""finish_reason":"stop"}],"usage":{"prompt_tokens":1}}"#));
    }

    #[test]
    fn answers_without_placeholders_are_left_alone() {
        let body = r#"{"choices":[{"message":{"content":"[1] see [EMAIL_7]"}}]}"#;
        assert_eq!(restore_completion(body, &restorer()), Ok(None));
        assert_eq!(restore_completion("{}", &restorer()), Ok(None));
        assert!(restore_completion("nope", &restorer()).is_err());
    }
}
