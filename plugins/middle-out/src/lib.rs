//! The `middle-out` context fitter: a request over a target's prompt budget keeps its system
//! messages, its first user turn and its newest turns, and loses whole turns from the middle
//! (an assistant's tool calls stay with their results); when that is not enough, its single
//! largest message is cut in the middle with a marker. No model is asked, no settings are
//! taken. The algorithm is the SDK's `fitting` module, shared with `summarize`.

use freeway_plugin_sdk::fitter::PluginMetadata;
use freeway_plugin_sdk::fitter::exports::freeway::plugin::fitting::{
    FitOutcome, Fitted, Guest, Limits,
};
use freeway_plugin_sdk::fitting::{Conversation, budget_chars};
use freeway_plugin_sdk::types::{Error, PluginKind};

struct MiddleOut;

/// Drop the middle of `request` until it fits `limits`.
fn middle_out(request: &str, limits: &Limits) -> Result<Fitted, Error> {
    let conversation = Conversation::parse(request)?;
    let cut = conversation.cut(budget_chars(limits), limits)?;
    Ok(conversation.fitted(&cut, None))
}

fn check(settings: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(settings) {
        Ok(serde_json::Value::Object(map)) if map.is_empty() => Ok(()),
        Ok(serde_json::Value::Object(map)) => Err(format!(
            "middle-out takes no settings (got: {})",
            map.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
        _ => Err("middle-out settings must be a JSON object".into()),
    }
}

impl freeway_plugin_sdk::fitter::Guest for MiddleOut {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "middle-out".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Filter,
            description:
                "Fits a conversation to a target's window by dropping turns from its middle".into(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        check(&settings)
    }
}

impl Guest for MiddleOut {
    fn fit(request: String, limits: Limits, _settings: String) -> Result<FitOutcome, Error> {
        middle_out(&request, &limits).map(FitOutcome::Fitted)
    }

    fn complete(
        request: String,
        limits: Limits,
        _settings: String,
        _state: String,
        _answer: Option<String>,
    ) -> Result<Fitted, Error> {
        middle_out(&request, &limits)
    }
}

freeway_plugin_sdk::export_fitter!(MiddleOut with_types_in freeway_plugin_sdk::fitter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_no_settings() {
        assert!(check("{}").is_ok());
        assert!(check(r#"{"keep": 2}"#).unwrap_err().contains("keep"));
        assert!(check("[]").is_err());
    }

    #[test]
    fn fits_a_long_conversation() {
        let mut messages = vec![serde_json::json!({"role": "system", "content": "be brief"})];
        for i in 0..40 {
            messages.push(serde_json::json!({"role": "user", "content": format!("question {i} {}", "x".repeat(400))}));
            messages.push(serde_json::json!({"role": "assistant", "content": "y".repeat(400)}));
        }
        let request = serde_json::json!({"model": "m", "messages": messages}).to_string();
        let limits = Limits {
            target: "p/m".into(),
            context_window: Some(3000),
            max_input_tokens: None,
            reserved_output: 1000,
            budget: 2000,
        };
        let fitted = middle_out(&request, &limits).expect("fits");
        assert!(fitted.dropped_messages > 60, "{}", fitted.dropped_messages);
        let body: serde_json::Value = serde_json::from_str(&fitted.body).expect("json");
        let messages = body["messages"].as_array().expect("messages");
        assert!(
            messages[1]["content"]
                .as_str()
                .unwrap()
                .starts_with("question 0 ")
        );
        assert!(
            messages[messages.len() - 2]["content"]
                .as_str()
                .unwrap()
                .starts_with("question 39 ")
        );
    }
}
