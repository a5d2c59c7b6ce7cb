//! The `summarize` context fitter: like `middle-out`, but the span of turns it leaves out is
//! replaced by a summary a cheap model writes. Two phases, so the plugin stays pure: `fit`
//! says what to ask (`model`, the transcript of the span, under `timeout_ms`); the gateway
//! asks it through itself and calls `complete` with the summary — or without one, when it was
//! late or failed, and then the span is simply dropped (middle-out).
//!
//! Settings: `model` (the public model that summarizes; required), `timeout_ms` (8000),
//! `max_summary_tokens` (512: room kept for the summary, and its `max_tokens`), `prompt`
//! (the instruction), `max_span_chars` (48000: the transcript sent, its middle cut beyond).

use freeway_plugin_sdk::fitter::PluginMetadata;
use freeway_plugin_sdk::fitter::exports::freeway::plugin::fitting::{
    FitOutcome, Fitted, Guest, Limits, ModelCall,
};
use freeway_plugin_sdk::fitting::{Conversation, budget_chars};
use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::types::{Error, ErrorKind, PluginKind};
use serde_json::{Value, json};

struct Summarize;

const DEFAULT_PROMPT: &str = "Summarize the following part of a conversation between a user and \
an assistant in a few sentences. Keep names, numbers, decisions, open questions and anything the \
assistant promised. Answer with the summary only.";

/// Characters the summary message adds beyond the summary itself (its heading).
const HEADING_CHARS: usize = 120;

#[derive(Debug)]
struct Settings {
    model: String,
    timeout_ms: u32,
    max_summary_tokens: u32,
    prompt: String,
    max_span_chars: usize,
}

fn settings(json: &str) -> Result<Settings, String> {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(json) else {
        return Err("summarize settings must be a JSON object".into());
    };
    let mut number = |key: &str, default: u64, least: u64| -> Result<u64, String> {
        match map.remove(key) {
            None => Ok(default),
            Some(value) => match value.as_u64() {
                Some(n) if n >= least => Ok(n),
                _ => Err(format!(
                    "summarize setting `{key}` must be a whole number of at least {least}"
                )),
            },
        }
    };
    let timeout_ms = number("timeout_ms", 8000, 1)?;
    let max_summary_tokens = number("max_summary_tokens", 512, 16)?;
    let max_span_chars = number("max_span_chars", 48_000, 1000)?;
    let model = match map.remove("model") {
        Some(Value::String(model)) if !model.is_empty() => model,
        Some(_) => return Err("summarize setting `model` must be a public model name".into()),
        None => {
            return Err("summarize needs `model`: the public model that writes summaries".into());
        }
    };
    let prompt = match map.remove("prompt") {
        None => DEFAULT_PROMPT.to_string(),
        Some(Value::String(prompt)) if !prompt.trim().is_empty() => prompt,
        Some(_) => return Err("summarize setting `prompt` must be a non-empty string".into()),
    };
    if let Some(key) = map.keys().next() {
        return Err(format!(
            "unknown summarize setting `{key}` (known: model, timeout_ms, max_summary_tokens, prompt, max_span_chars)"
        ));
    }
    Ok(Settings {
        model,
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
        max_summary_tokens: u32::try_from(max_summary_tokens).unwrap_or(u32::MAX),
        prompt,
        max_span_chars: usize::try_from(max_span_chars).unwrap_or(usize::MAX),
    })
}

fn parsed(json: &str) -> Result<Settings, Error> {
    settings(json).map_err(|why| error(ErrorKind::Internal, false, why))
}

/// Room kept for the summary message.
fn reserved_chars(settings: &Settings) -> usize {
    settings.max_summary_tokens as usize * 4 + HEADING_CHARS
}

/// The budget left for the kept messages once the summary has its room; `None` when the
/// summary would not leave enough (then the span is just dropped).
fn budget_beside_summary(limits: &Limits, settings: &Settings) -> Option<usize> {
    let budget = budget_chars(limits);
    let reserved = reserved_chars(settings);
    (budget > 2 * reserved).then(|| budget - reserved)
}

fn middle_out(request: &str, limits: &Limits) -> Result<Fitted, Error> {
    let conversation = Conversation::parse(request)?;
    let cut = conversation.cut(budget_chars(limits), limits)?;
    Ok(conversation.fitted(&cut, None))
}

impl freeway_plugin_sdk::fitter::Guest for Summarize {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "summarize".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Filter,
            description: "Fits a conversation to a target's window, a cheap model's summary in place of the turns it drops".into(),
        }
    }

    fn check_settings(json: String) -> Result<(), String> {
        settings(&json).map(|_| ())
    }
}

impl Guest for Summarize {
    fn fit(request: String, limits: Limits, json: String) -> Result<FitOutcome, Error> {
        let settings = parsed(&json)?;
        let Some(budget) = budget_beside_summary(&limits, &settings) else {
            return middle_out(&request, &limits).map(FitOutcome::Fitted);
        };
        let conversation = Conversation::parse(&request)?;
        let cut = conversation.cut(budget, &limits)?;
        if cut.dropped.is_empty() {
            // Only a cut inside one message: nothing to summarize.
            return Ok(FitOutcome::Fitted(conversation.fitted(&cut, None)));
        }
        let transcript = conversation.transcript(&cut, settings.max_span_chars);
        let body = json!({
            "messages": [
                {"role": "system", "content": settings.prompt},
                {"role": "user", "content": transcript},
            ],
            "max_tokens": settings.max_summary_tokens,
            "temperature": 0,
        });
        Ok(FitOutcome::Ask(ModelCall {
            model: settings.model,
            body: body.to_string(),
            timeout_ms: settings.timeout_ms,
            state: cut.dropped.len().to_string(),
        }))
    }

    fn complete(
        request: String,
        limits: Limits,
        json: String,
        _state: String,
        answer: Option<String>,
    ) -> Result<Fitted, Error> {
        let settings = parsed(&json)?;
        let (Some(summary), Some(budget)) = (answer, budget_beside_summary(&limits, &settings))
        else {
            return middle_out(&request, &limits);
        };
        let conversation = Conversation::parse(&request)?;
        let cut = conversation.cut(budget, &limits)?;
        let room = settings.max_summary_tokens as usize * 4;
        let mut summary = summary.trim().to_string();
        if summary.len() > room {
            let mut end = room;
            while !summary.is_char_boundary(end) {
                end -= 1;
            }
            summary.truncate(end);
        }
        let message = json!({
            "role": "system",
            "content": format!(
                "Summary of {} earlier messages, left out to fit the context window:\n{summary}",
                cut.dropped.len()
            ),
        });
        Ok(conversation.fitted(&cut, Some(message)))
    }
}

freeway_plugin_sdk::export_fitter!(Summarize with_types_in freeway_plugin_sdk::fitter);

#[cfg(test)]
mod tests {
    use super::*;

    fn long_request() -> String {
        let mut messages = vec![json!({"role": "system", "content": "be brief"})];
        for i in 0..40 {
            messages.push(
                json!({"role": "user", "content": format!("question {i} {}", "x".repeat(400))}),
            );
            messages.push(json!({"role": "assistant", "content": "y".repeat(400)}));
        }
        json!({"model": "m", "messages": messages}).to_string()
    }

    fn limits() -> Limits {
        Limits {
            target: "p/m".into(),
            context_window: Some(4000),
            max_input_tokens: None,
            reserved_output: 1000,
            budget: 3000,
        }
    }

    const SETTINGS: &str = r#"{"model": "cheap", "max_summary_tokens": 200}"#;

    #[test]
    fn settings_are_checked() {
        assert!(settings(SETTINGS).is_ok());
        assert!(settings("{}").unwrap_err().contains("model"));
        assert!(
            settings(r#"{"model": "m", "timeout": 5}"#)
                .unwrap_err()
                .contains("timeout")
        );
        assert!(settings(r#"{"model": "m", "timeout_ms": 0}"#).is_err());
    }

    #[test]
    fn asks_for_a_summary_then_puts_it_in_place() {
        let request = long_request();
        let FitOutcome::Ask(call) =
            Summarize::fit(request.clone(), limits(), SETTINGS.into()).expect("fit")
        else {
            panic!("expected a model call");
        };
        assert_eq!(call.model, "cheap");
        assert!(call.body.contains("question 1 "));
        let fitted = Summarize::complete(
            request.clone(),
            limits(),
            SETTINGS.into(),
            call.state.clone(),
            Some("They talked about x.".into()),
        )
        .expect("complete");
        assert_eq!(fitted.added_messages, 1);
        assert!(fitted.body.contains("They talked about x."));
        let tokens = Conversation::parse(&fitted.body).expect("valid").tokens();
        assert!(tokens <= 3000, "{tokens}");
        // Without a summary: middle-out over the whole budget.
        let plain = Summarize::complete(request, limits(), SETTINGS.into(), call.state, None)
            .expect("fallback");
        assert_eq!(plain.added_messages, 0);
        assert!(plain.dropped_messages < fitted.dropped_messages);
    }
}
