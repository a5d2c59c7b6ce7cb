//! The `pii` filter: finds personal data and secrets in prompts and keeps them from reaching
//! providers that should not see them.
//!
//! Entity types: e-mail addresses, phone numbers (checked against libphonenumber's numbering
//! plans), payment cards (every major brand's IIN ranges, Luhn), IBANs, US SSNs, IP addresses
//! and secrets (the token formats of ~70 services, private keys, passwords in URLs), in text
//! of any script: a value glued to Japanese, Chinese or Thai text is found, and full-width
//! forms are matched as ASCII. Per type, the settings choose an action:
//! `redact` (typed placeholders such as `[EMAIL_1]`), `block`, `route-trusted` (tags
//! `pii:trusted-only` and `pii:<type>`, so the router keeps the request on trusted providers)
//! or `allow`; `regions` chooses the national phone formats recognised and `exempt` the values
//! an operator considers harmless (private IPs, test cards, documentation e-mails; off by
//! default). A block of any type blocks the request; otherwise redactions and route-trusted
//! apply together (the trusted provider sees the route-trusted values, never the redacted
//! ones). With `"reversible": true` the placeholders are pseudonyms: the mapping travels in
//! the request's opaque state, and the answer — whole or streamed — gets the originals back,
//! so the user reads their own data while the provider never saw it.
//!
//! Only message text is read (contents, text parts, tool-call arguments, tool results), never
//! keys, roles or the model, and a rewritten body differs from the client's only inside the
//! strings that held findings. Detection is hand-written scanners and generated tables, not
//! regular expressions: ~22 µs for a 4 KB prompt inside wasm and a ~440 KB `.wasm`, ~100 KB
//! of it the numbering plans (see `examples/pii-bench.rs`); its precision and recall are
//! measured on two labelled corpora, one of them fifteen locales generated from public format
//! rules (`corpus/`, `examples/pii-eval.rs`).
//!
//! Module map: [`detect`] finds entities in a text; [`settings`] reads the config;
//! [`request`] decides and rewrites; [`pseudonym`] numbers placeholders and restores them;
//! [`response`] and [`stream`] restore answers; [`json`] locates message text in OpenAI JSON.

pub mod detect;
pub mod json;
pub mod pseudonym;
#[cfg(test)]
mod quality;
pub mod request;
pub mod response;
pub mod settings;
pub mod stream;

use std::cell::RefCell;

use freeway_plugin_sdk::filter::exports::freeway::plugin::guard::{
    self, ChunkVerdict, RequestInfo, RequestOutcome, RequestVerdict, ResponseVerdict,
};
use freeway_plugin_sdk::filter::{self as filter_world, PluginMetadata};
use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::types::{Error, ErrorKind, PluginKind};

use pseudonym::Restorer;
use request::Outcome;
use settings::Settings;
use stream::StreamRestorer;

/// Bad settings or state are the gateway's configuration or a bug, not the client's request:
/// `internal`, and never retryable — another target would run the same filter.
fn internal(message: String) -> Error {
    error(ErrorKind::Internal, false, message)
}

fn parse_settings(json: &str) -> Result<Settings, Error> {
    Settings::parse(json).map_err(internal)
}

fn restorer(state: Option<&str>) -> Result<Option<Restorer>, Error> {
    state
        .map(Restorer::from_state)
        .transpose()
        .map_err(internal)
}

struct Pii;

impl filter_world::Guest for Pii {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "pii".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Filter,
            description: "Finds e-mails, phones, cards, IBANs, SSNs, IPs and secrets in prompts; \
                          redacts, pseudonymises, blocks or routes to trusted providers"
                .to_owned(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        Settings::parse(&settings).map(drop)
    }
}

impl guard::Guest for Pii {
    type StreamFilter = StreamFilter;

    fn on_request(
        _info: RequestInfo,
        body: String,
        settings: String,
    ) -> Result<RequestOutcome, Error> {
        let settings = parse_settings(&settings)?;
        let outcome = request::judge(&body, &settings).map_err(|problem| {
            error(
                ErrorKind::BadRequest,
                false,
                format!("pii filter: {problem}"),
            )
        })?;
        let (verdict, tags, state) = match outcome {
            Outcome::Allow => (RequestVerdict::Allow, Vec::new(), None),
            Outcome::Block(reason) => (RequestVerdict::Block(reason), Vec::new(), None),
            Outcome::Label(tags) => (RequestVerdict::Allow, tags, None),
            Outcome::Rewrite { body, tags, state } => (RequestVerdict::Rewrite(body), tags, state),
        };
        Ok(RequestOutcome {
            verdict,
            tags,
            state,
        })
    }

    fn on_response(
        _info: RequestInfo,
        state: Option<String>,
        body: String,
        settings: String,
    ) -> Result<ResponseVerdict, Error> {
        parse_settings(&settings)?;
        let Some(restorer) = restorer(state.as_deref())? else {
            return Ok(ResponseVerdict::Allow);
        };
        let restored = response::restore_completion(&body, &restorer).map_err(|problem| {
            error(
                ErrorKind::InvalidResponse,
                false,
                format!("pii filter: {problem}"),
            )
        })?;
        Ok(match restored {
            Some(body) => ResponseVerdict::Rewrite(body),
            None => ResponseVerdict::Allow,
        })
    }
}

/// The `stream-filter` resource. The constructor cannot fail in the WIT contract, so bad
/// settings or state are kept and reported by the first `on-chunk`. The generated trait hands
/// out `&self`; calls on one resource never overlap, hence the `RefCell`.
struct StreamFilter(RefCell<Result<Option<StreamRestorer>, Error>>);

impl guard::GuestStreamFilter for StreamFilter {
    fn new(_info: RequestInfo, state: Option<String>, settings: String) -> Self {
        let restorer = parse_settings(&settings)
            .and_then(|_| restorer(state.as_deref()))
            .map(|restorer| restorer.map(StreamRestorer::new));
        StreamFilter(RefCell::new(restorer))
    }

    fn on_chunk(&self, chunk: String) -> Result<ChunkVerdict, Error> {
        let mut filter = self.0.borrow_mut();
        let Some(filter) = filter.as_mut().map_err(|problem| problem.clone())? else {
            return Ok(ChunkVerdict::Pass);
        };
        let replaced = filter.on_chunk(&chunk).map_err(|problem| {
            error(
                ErrorKind::InvalidResponse,
                false,
                format!("pii filter: {problem}"),
            )
        })?;
        Ok(match replaced {
            Some(chunk) => ChunkVerdict::Replace(vec![chunk]),
            None => ChunkVerdict::Pass,
        })
    }

    fn finish(&self) -> Result<Vec<String>, Error> {
        let mut filter = self.0.borrow_mut();
        let filter = filter.as_mut().map_err(|problem| problem.clone())?;
        Ok(filter
            .as_mut()
            .map(StreamRestorer::finish)
            .unwrap_or_default())
    }
}

freeway_plugin_sdk::export_filter!(Pii with_types_in freeway_plugin_sdk::filter);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::filter::exports::freeway::plugin::guard::{Guest, GuestStreamFilter};

    fn info() -> RequestInfo {
        RequestInfo {
            model: "m".into(),
            tags: Vec::new(),
            metadata: Vec::new(),
        }
    }

    const PROMPT: &str = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"Write to jane@example.org about card 4111 1111 1111 1111"}]}"#;

    #[test]
    fn metadata_names_a_filter() {
        let metadata = <Pii as filter_world::Guest>::metadata();
        assert_eq!(metadata.name, "pii");
        assert!(matches!(metadata.kind, PluginKind::Filter));
    }

    #[test]
    fn reversible_round_trip_through_the_hooks() {
        let outcome =
            Pii::on_request(info(), PROMPT.into(), r#"{"reversible":true}"#.into()).expect("ok");
        let RequestVerdict::Rewrite(body) = outcome.verdict else {
            panic!("expected a rewrite")
        };
        assert!(
            body.contains("Write to [EMAIL_1] about card [CARD_1]"),
            "{body}"
        );
        let state = outcome.state.expect("state carries the map");

        let answer = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Sent to [EMAIL_1]."}}]}"#;
        let verdict = Pii::on_response(
            info(),
            Some(state.clone()),
            answer.into(),
            r#"{"reversible":true}"#.into(),
        )
        .expect("ok");
        assert!(
            matches!(verdict, ResponseVerdict::Rewrite(b) if b.contains("Sent to jane@example.org."))
        );

        let filter = StreamFilter::new(info(), Some(state), r#"{"reversible":true}"#.into());
        let chunk =
            |text: &str| format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{text}"}}}}]}}"#);
        assert!(
            matches!(filter.on_chunk(chunk("Sent to [EM")), Ok(ChunkVerdict::Replace(c)) if c == [chunk("Sent to ")])
        );
        assert!(
            matches!(filter.on_chunk(chunk("AIL_1].")), Ok(ChunkVerdict::Replace(c)) if c == [chunk("jane@example.org.")])
        );
        assert!(matches!(
            filter.on_chunk(chunk("Bye.")),
            Ok(ChunkVerdict::Pass)
        ));
        assert!(filter.finish().expect("ok").is_empty());
    }

    #[test]
    fn without_state_answers_pass() {
        let answer = r#"{"choices":[{"message":{"content":"[EMAIL_1]"}}]}"#;
        assert!(matches!(
            Pii::on_response(info(), None, answer.into(), "{}".into()),
            Ok(ResponseVerdict::Allow)
        ));
        let filter = StreamFilter::new(info(), None, "{}".into());
        assert!(matches!(
            filter.on_chunk(answer.into()),
            Ok(ChunkVerdict::Pass)
        ));
    }

    #[test]
    fn errors_are_typed_and_fail_closed() {
        let problem = Pii::on_request(info(), PROMPT.into(), r#"{"revers":true}"#.into())
            .expect_err("bad settings");
        assert!(matches!(problem.kind, ErrorKind::Internal) && !problem.retryable);
        let problem = Pii::on_request(info(), "[1]".into(), "{}".into()).expect_err("bad body");
        assert!(matches!(problem.kind, ErrorKind::BadRequest));
        let filter = StreamFilter::new(info(), Some("{}".into()), r#"{"x":1}"#.into());
        assert!(filter.on_chunk("{}".into()).is_err());
        assert!(filter.finish().is_err());
        let filter = StreamFilter::new(info(), Some("not json".into()), "{}".into());
        assert!(filter.on_chunk("{}".into()).is_err());
    }

    /// Every corpus text, redacted reversibly, sent as a request and echoed back by the
    /// "model" whole and streamed in small pieces: the body stays JSON with other fields
    /// intact, no labelled value survives redaction, and the client reads the original text.
    #[test]
    fn corpus_round_trips_through_redaction_and_restoration() {
        let settings = Settings::parse(r#"{"reversible":true,"actions":{"secret":"redact"}}"#)
            .expect("settings");
        let mut redacted_lines = 0;
        for line in quality::CORPUS.lines() {
            let line: serde_json::Value = serde_json::from_str(line).expect("corpus line");
            let text = line["text"].as_str().expect("text");
            let body = format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":{}}}],"temperature":0.50}}"#,
                pseudonym::json_string(text)
            );
            let (rewritten, state) = match request::judge(&body, &settings).expect("valid") {
                Outcome::Allow => continue,
                Outcome::Rewrite { body, state, .. } => (body, state.expect("reversible state")),
                other => panic!("unexpected {other:?}"),
            };
            redacted_lines += 1;
            assert!(
                rewritten.starts_with(r#"{"model":"m","messages":[{"role":"user","content":""#)
            );
            assert!(rewritten.ends_with(r#""}],"temperature":0.50}"#));
            let value: serde_json::Value = serde_json::from_str(&rewritten).expect("JSON");
            let redacted = value["messages"][0]["content"].as_str().expect("content");
            for entity in line["entities"].as_array().expect("entities") {
                let original = entity["value"].as_str().expect("value");
                assert!(
                    !redacted.contains(original),
                    "{original:?} survived in {redacted:?}"
                );
            }

            let answer = format!(
                r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":{}}}}}]}}"#,
                pseudonym::json_string(redacted)
            );
            let restored = response::restore_completion(
                &answer,
                &Restorer::from_state(&state).expect("state"),
            )
            .expect("valid")
            .expect("restored");
            let restored: serde_json::Value = serde_json::from_str(&restored).expect("JSON");
            assert_eq!(restored["choices"][0]["message"]["content"], text);

            for piece in [1, 3, 7] {
                let mut filter = StreamRestorer::new(Restorer::from_state(&state).expect("state"));
                let mut seen = String::new();
                let mut read = |chunk: &str| {
                    let value: serde_json::Value = serde_json::from_str(chunk).expect("chunk JSON");
                    seen.push_str(
                        value["choices"][0]["delta"]["content"]
                            .as_str()
                            .unwrap_or(""),
                    );
                };
                let mut rest = redacted;
                while !rest.is_empty() {
                    let mut cut = piece.min(rest.len());
                    while !rest.is_char_boundary(cut) {
                        cut += 1;
                    }
                    let (head, tail) = rest.split_at(cut);
                    rest = tail;
                    let chunk = format!(
                        r#"{{"id":"c","choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]}}"#,
                        pseudonym::json_string(head)
                    );
                    match filter.on_chunk(&chunk).expect("valid") {
                        Some(replaced) => read(&replaced),
                        None => read(&chunk),
                    }
                }
                for chunk in filter.finish() {
                    read(&chunk);
                }
                assert_eq!(seen, text, "streamed in pieces of {piece}");
            }
        }
        assert!(redacted_lines >= 300, "{redacted_lines} lines redacted");
    }

    #[test]
    fn one_outcome_rewrites_and_labels() {
        let outcome = Pii::on_request(
            info(),
            PROMPT.into(),
            r#"{"reversible":true,"actions":{"card":"route-trusted"}}"#.into(),
        )
        .expect("ok");
        assert!(
            matches!(&outcome.verdict, RequestVerdict::Rewrite(body) if body.contains("Write to [EMAIL_1] about card 4111 1111 1111 1111"))
        );
        assert_eq!(outcome.tags, ["pii:trusted-only", "pii:card", "pii:email"]);
        assert!(
            outcome
                .state
                .is_some_and(|state| state.contains("[EMAIL_1]"))
        );
    }

    #[test]
    fn blocked_and_labelled_requests_carry_no_state() {
        for actions in [
            r#"{"reversible":true,"actions":{"card":"block"}}"#,
            r#"{"reversible":true,"actions":{"card":"route-trusted","email":"route-trusted"}}"#,
        ] {
            let outcome = Pii::on_request(info(), PROMPT.into(), actions.into()).expect("ok");
            assert!(
                !matches!(outcome.verdict, RequestVerdict::Rewrite(_)),
                "{actions}"
            );
            assert_eq!(outcome.state, None, "{actions}");
        }
    }

    #[test]
    fn settings_are_checked_without_a_request() {
        assert_eq!(
            <Pii as filter_world::Guest>::check_settings("{}".into()),
            Ok(())
        );
        let problem = <Pii as filter_world::Guest>::check_settings(
            r#"{"actions":{"emial":"redact"}}"#.into(),
        )
        .expect_err("typo");
        assert!(problem.contains("emial"), "{problem}");
    }
}
