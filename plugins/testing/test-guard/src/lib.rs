//! A filter with fixed, visible rules, for testing how the host applies filter verdicts.
//! Never bundled.
//!
//! Requests: a body containing `FORBIDDEN` is blocked, `REWRITEME` is rewritten to `rewritten`,
//! `LABELME` adds the tag `labelled` (with any of the others); anything else is allowed. Every request's state is
//! `"seen"`, so a test can check that state reaches the response hooks. Responses and stream
//! chunks have `SECRET-ANSWER` replaced by `[redacted]`. Settings `{"behaviour": "trap"}` or
//! `{"behaviour": "loop"}` make `on-request` trap or spin, to test that a broken filter fails
//! closed. `{"behaviour": "garble"}` rewrites every whole answer to text that is not JSON.
//! `{"behaviour": "remember"}` breaks the contract's "no state between calls" on
//! purpose: it keeps the last body it saw in the instance's memory and rewrites each request
//! to carry the previous one (`REMEMBERED<<...>>`), so a test can see which requests shared an
//! instance.

use std::hint::black_box;

use serde::Deserialize;

use freeway_plugin_sdk::filter::exports::freeway::plugin::guard::{
    self, ChunkVerdict, RequestInfo, RequestOutcome, RequestVerdict, ResponseVerdict,
};
use freeway_plugin_sdk::filter::{self as filter_world, PluginMetadata};
use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::types::{Error, ErrorKind, PluginKind};

const SECRET: &str = "SECRET-ANSWER";
const REDACTED: &str = "[redacted]";

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Behaviour {
    Trap,
    Loop,
    Remember,
    /// `on-response` rewrites every answer to text that is not JSON.
    Garble,
}

/// What the `remember` behaviour kept from the previous request on this instance.
static REMEMBERED: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// The request `body` rewritten so its last message also says what this instance saw before.
fn with_remembered(body: &str) -> Result<String, Error> {
    let bad = |why: String| error(ErrorKind::BadRequest, false, why);
    let mut request: serde_json::Value =
        serde_json::from_str(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut kept = REMEMBERED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let previous = std::mem::replace(&mut *kept, body.to_owned());
    let last = request
        .get_mut("messages")
        .and_then(|m| m.as_array_mut())
        .and_then(|m| m.last_mut())
        .and_then(|m| m.get_mut("content"))
        .ok_or_else(|| bad("no message to annotate".to_owned()))?;
    let text = last.as_str().unwrap_or_default().to_owned();
    *last = serde_json::Value::String(format!("{text} REMEMBERED<<{previous}>>"));
    Ok(request.to_string())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    behaviour: Option<Behaviour>,
}

fn parse_settings(json: &str) -> Result<Settings, Error> {
    let json = json.trim();
    if json.is_empty() {
        return Ok(Settings::default());
    }
    // serde would also fill a struct from a JSON array.
    if !json.starts_with('{') {
        return Err(error(
            ErrorKind::Internal,
            false,
            "invalid test-guard settings: expected a JSON object",
        ));
    }
    serde_json::from_str(json).map_err(|problem| {
        error(
            ErrorKind::Internal,
            false,
            format!("invalid test-guard settings: {problem}"),
        )
    })
}

/// The verdict and the tags for a request body. `LABELME` labels whatever else happens, so
/// `REWRITEME LABELME` is rewritten and labelled at once.
fn judge_request(body: &str) -> (RequestVerdict, Vec<String>) {
    let tags = if body.contains("LABELME") {
        vec!["labelled".to_owned()]
    } else {
        Vec::new()
    };
    if body.contains("FORBIDDEN") {
        let reason = "the prompt contains a forbidden word".to_owned();
        (RequestVerdict::Block(reason), tags)
    } else if body.contains("REWRITEME") {
        (
            RequestVerdict::Rewrite(body.replace("REWRITEME", "rewritten")),
            tags,
        )
    } else {
        (RequestVerdict::Allow, tags)
    }
}

fn redact(text: &str) -> Option<String> {
    text.contains(SECRET)
        .then(|| text.replace(SECRET, REDACTED))
}

/// Never returns; `black_box` keeps the optimiser from removing the loop.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

struct TestGuard;

impl filter_world::Guest for TestGuard {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "test-guard".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Filter,
            description: "Test-only filter: blocks FORBIDDEN, rewrites REWRITEME, labels \
                          LABELME, redacts SECRET-ANSWER"
                .to_owned(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        parse_settings(&settings)
            .map(drop)
            .map_err(|problem| problem.message)
    }
}

impl guard::Guest for TestGuard {
    type StreamFilter = StreamFilter;

    fn on_request(
        _info: RequestInfo,
        body: String,
        settings: String,
    ) -> Result<RequestOutcome, Error> {
        match parse_settings(&settings)?.behaviour {
            Some(Behaviour::Trap) => panic!("test-guard trapped on purpose"),
            Some(Behaviour::Loop) => spin_forever(),
            Some(Behaviour::Remember) => {
                return Ok(RequestOutcome {
                    verdict: RequestVerdict::Rewrite(with_remembered(&body)?),
                    tags: Vec::new(),
                    state: None,
                });
            }
            Some(Behaviour::Garble) | None => {}
        }
        let (verdict, tags) = judge_request(&body);
        Ok(RequestOutcome {
            verdict,
            tags,
            state: Some("seen".to_owned()),
        })
    }

    fn on_response(
        _info: RequestInfo,
        _state: Option<String>,
        body: String,
        settings: String,
    ) -> Result<ResponseVerdict, Error> {
        if parse_settings(&settings)?.behaviour == Some(Behaviour::Garble) {
            return Ok(ResponseVerdict::Rewrite("garbled, not JSON".to_owned()));
        }
        Ok(match redact(&body) {
            Some(redacted) => ResponseVerdict::Rewrite(redacted),
            None => ResponseVerdict::Allow,
        })
    }
}

/// Redacts chunk by chunk. A secret split across two chunks passes: this filter tests the
/// host's plumbing, not redaction.
struct StreamFilter;

impl guard::GuestStreamFilter for StreamFilter {
    fn new(_info: RequestInfo, _state: Option<String>, _settings: String) -> Self {
        StreamFilter
    }

    fn on_chunk(&self, chunk: String) -> Result<ChunkVerdict, Error> {
        Ok(match redact(&chunk) {
            Some(redacted) => ChunkVerdict::Replace(vec![redacted]),
            None => ChunkVerdict::Pass,
        })
    }

    fn finish(&self) -> Result<Vec<String>, Error> {
        Ok(Vec::new())
    }
}

freeway_plugin_sdk::export_filter!(TestGuard with_types_in freeway_plugin_sdk::filter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_rules() {
        assert!(matches!(
            judge_request(r#"{"messages":[{"content":"say FORBIDDEN REWRITEME"}]}"#),
            (RequestVerdict::Block(reason), _) if reason == "the prompt contains a forbidden word"
        ));
        assert!(matches!(
            judge_request("REWRITEME and REWRITEME LABELME"),
            (RequestVerdict::Rewrite(body), tags) if body == "rewritten and rewritten LABELME" && tags == ["labelled"]
        ));
        assert!(matches!(
            judge_request("LABELME"),
            (RequestVerdict::Allow, tags) if tags == ["labelled"]
        ));
        assert!(matches!(judge_request("hello"), (RequestVerdict::Allow, tags) if tags.is_empty()));
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            redact(r#"{"content":"the SECRET-ANSWER is 42"}"#).as_deref(),
            Some(r#"{"content":"the [redacted] is 42"}"#)
        );
        assert_eq!(redact("nothing to hide"), None);
    }

    #[test]
    fn settings() {
        assert_eq!(parse_settings("{}").expect("valid").behaviour, None);
        assert_eq!(
            parse_settings(r#"{"behaviour":"trap"}"#)
                .expect("valid")
                .behaviour,
            Some(Behaviour::Trap)
        );
        assert_eq!(
            parse_settings(r#"{"behaviour":"loop"}"#)
                .expect("valid")
                .behaviour,
            Some(Behaviour::Loop)
        );
        assert!(parse_settings(r#"{"behaviour":"nap"}"#).is_err());
        assert!(parse_settings("[]").is_err());
    }
}
