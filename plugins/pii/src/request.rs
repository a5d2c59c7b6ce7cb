//! The request hook: scan every message text and carry out each entity type's action.
//!
//! A block of any type blocks the request; otherwise every `redact` finding is replaced by its
//! placeholder *and*, when any `route-trusted` finding is present, the request is tagged for
//! trusted providers only (`pii:trusted-only`, plus `pii:<type>` for every type found). So an
//! operator who redacts e-mails and routes IBANs gets both: the trusted provider sees the IBAN
//! but never the e-mail. A block reason and the routing tags name entity types, never values.
//! Redaction splices placeholders into the texts that held findings and leaves every other byte
//! of the body alone.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;

use crate::detect::{self, Found, Kind};
use crate::json::{self, Message, Segment};
use crate::pseudonym::{Pseudonyms, json_string};
use crate::settings::{Action, Settings};

/// The tag that asks the router for trusted providers only.
pub const TRUSTED_ONLY_TAG: &str = "pii:trusted-only";

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Block(String),
    /// Forward unchanged with these tags.
    Label(Vec<String>),
    /// Forward this body with these tags (none unless a route-trusted type was found too);
    /// `state` is the pseudonym map when reversible.
    Rewrite {
        body: String,
        tags: Vec<String>,
        state: Option<String>,
    },
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    messages: Option<Vec<Message<'a>>>,
}

/// One scanned text with findings to redact.
struct Piece<'a> {
    segment: usize,
    /// Inside tool-call arguments: the string literal's range in the decoded arguments.
    inner: Option<Range<usize>>,
    text: Cow<'a, str>,
    found: Vec<Found>,
}

pub fn judge<'a>(body: &'a str, settings: &Settings) -> Result<Outcome, String> {
    if settings.allows_everything() {
        return Ok(Outcome::Allow);
    }
    let request: Request<'_> =
        serde_json::from_str(body).map_err(|e| json::shape("request", &e))?;
    let mut segments = Vec::new();
    for message in request.messages.iter().flatten() {
        json::message_segments(body, message, &mut segments)?;
    }

    // Decoded arguments are kept so redaction can splice into them.
    let mut arguments: Vec<Option<String>> = vec![None; segments.len()];
    let mut pieces = Vec::new();
    let mut strongest = Action::Allow;
    let mut kinds = [false; Kind::ALL.len()];
    let mut scratch = Vec::new();
    let mut consider = |segment, inner, text: Cow<'a, str>, pieces: &mut Vec<Piece<'a>>| {
        detect::scan_with(&text, &settings.options, &mut scratch);
        for hit in &scratch {
            let action = settings.action(hit.kind);
            if action != Action::Allow {
                strongest = strongest.max(action);
                kinds[hit.kind as usize] = true;
            }
        }
        // Only redactions change the text; route-trusted findings stay for the trusted
        // provider, allowed ones are nobody's business.
        scratch.retain(|hit| settings.action(hit.kind) == Action::Redact);
        if scratch.is_empty() {
            return;
        }
        let found = std::mem::take(&mut scratch);
        pieces.push(Piece {
            segment,
            inner,
            text,
            found,
        });
    };
    for (index, segment) in segments.iter().enumerate() {
        let text = json::decode(&body[segment.range.clone()])?;
        if !segment.arguments {
            consider(index, None, text, &mut pieces);
            continue;
        }
        match json::string_values(&text) {
            Some(values) => {
                for value in values {
                    let inner = json::decode(&text[value.clone()])?.into_owned();
                    consider(index, Some(value), Cow::Owned(inner), &mut pieces);
                }
                arguments[index] = Some(text.into_owned());
            }
            // Not JSON (a model's half-finished call): scan it as text.
            None => consider(index, None, text, &mut pieces),
        }
    }

    let found_kinds = || Kind::ALL.into_iter().filter(|kind| kinds[*kind as usize]);
    Ok(match strongest {
        Action::Allow => Outcome::Allow,
        Action::Block => {
            let names: Vec<&str> = found_kinds()
                .filter(|kind| settings.action(*kind) == Action::Block)
                .map(Kind::name)
                .collect();
            Outcome::Block(format!(
                "the prompt contains data of type {}",
                names.join(", ")
            ))
        }
        Action::RouteTrusted => {
            let mut tags = vec![TRUSTED_ONLY_TAG.to_owned()];
            tags.extend(found_kinds().map(|kind| format!("pii:{}", kind.name())));
            if pieces.is_empty() {
                Outcome::Label(tags)
            } else {
                redact(
                    body,
                    &segments,
                    &arguments,
                    &pieces,
                    settings.reversible,
                    tags,
                )
            }
        }
        Action::Redact => redact(
            body,
            &segments,
            &arguments,
            &pieces,
            settings.reversible,
            Vec::new(),
        ),
    })
}

fn redact(
    body: &str,
    segments: &[Segment],
    arguments: &[Option<String>],
    pieces: &[Piece<'_>],
    reversible: bool,
    tags: Vec<String>,
) -> Outcome {
    let mut names = Pseudonyms::default();
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut inner_edits: Vec<(Range<usize>, String)> = Vec::new();
    let mut index = 0;
    while index < pieces.len() {
        let segment = pieces[index].segment;
        inner_edits.clear();
        let mut whole = None;
        while index < pieces.len() && pieces[index].segment == segment {
            let piece = &pieces[index];
            let literal = replaced_literal(&piece.text, &piece.found, &mut names);
            match &piece.inner {
                Some(inner) => inner_edits.push((inner.clone(), literal)),
                None => whole = Some(literal),
            }
            index += 1;
        }
        let literal = match (whole, &arguments[segment]) {
            (Some(literal), _) => literal,
            (None, Some(arguments)) => json_string(&json::splice(arguments, &inner_edits)),
            // Every piece without `inner` sets `whole`; pieces with one have arguments.
            (None, None) => continue,
        };
        edits.push((segments[segment].range.clone(), literal));
    }
    let state = (reversible && !names.is_empty()).then(|| names.to_state());
    Outcome::Rewrite {
        body: json::splice(body, &edits),
        tags,
        state,
    }
}

/// `text` with each finding replaced by its placeholder, as a JSON string literal.
/// Placeholders (`[EMAIL_1]`) never need escaping, so a text that needs none — most do not —
/// is written once, quotes and all, instead of being built and then escaped into a copy.
fn replaced_literal(text: &str, found: &[Found], names: &mut Pseudonyms) -> String {
    if json::needs_escaping(text.as_bytes()) {
        let mut replaced = String::with_capacity(text.len());
        replace_onto(&mut replaced, text, found, names);
        return json_string(&replaced);
    }
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    replace_onto(&mut literal, text, found, names);
    literal.push('"');
    literal
}

/// Appends `text` to `out` with each finding replaced by its placeholder.
fn replace_onto(out: &mut String, text: &str, found: &[Found], names: &mut Pseudonyms) {
    let mut copied = 0;
    for hit in found {
        out.push_str(&text[copied..hit.start]);
        out.push_str(names.placeholder(hit.kind, &text[hit.start..hit.end]));
        copied = hit.end;
    }
    out.push_str(&text[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Settings {
        Settings::parse(json).expect("valid settings")
    }

    fn rewrite(outcome: Outcome) -> (String, Option<String>) {
        match outcome {
            Outcome::Rewrite { body, state, .. } => (body, state),
            other => panic!("expected a rewrite, got {other:?}"),
        }
    }

    /// Found by the host's fuzzer (`host/tests/fuzz.rs`, through the real pii.wasm): a
    /// private-key block whose end marker is broken by text in another script trapped.
    #[test]
    fn fuzz_regression_private_key_block_broken_by_other_script_text() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA サーバー192.168.1.10にjane@example.comから接続、電話０３－１２３４－５６７８PRIVATE KEY-----";
        let body =
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": text}]})
                .to_string();
        let all = settings(
            r#"{"actions":{"email":"redact","phone":"redact","card":"redact","iban":"redact","ssn":"redact","ip":"redact","secret":"redact"},"reversible":true}"#,
        );
        let (rewritten, _) = rewrite(judge(&body, &all).expect("judged"));
        assert!(!rewritten.contains("jane@example.com"), "{rewritten}");
    }

    #[test]
    fn clean_requests_are_allowed() {
        let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"What is 2+2? See RFC 6750, v1.2.3."}]}"#;
        assert_eq!(judge(body, &Settings::default()), Ok(Outcome::Allow));
    }

    #[test]
    fn exemptions_and_regions_from_the_settings_apply() {
        let body = r#"{"messages":[{"role":"user","content":"host 10.0.0.12, card 4242 4242 4242 4242, Tel 030 12345678"}]}"#;
        let (rewritten, _) = rewrite(judge(body, &Settings::default()).expect("valid"));
        assert!(
            rewritten.contains("host [IP_1], card [CARD_1], Tel [PHONE_1]"),
            "{rewritten}"
        );
        let relaxed = settings(r#"{"exempt":["private-ip","test-card"],"regions":["US"]}"#);
        // With a phone word, a number of any plausible length counts: only the exemptions
        // change this text.
        let (rewritten, _) = rewrite(judge(body, &relaxed).expect("valid"));
        assert!(
            rewritten.contains("host 10.0.0.12, card 4242 4242 4242 4242, Tel [PHONE_1]"),
            "{rewritten}"
        );
        let unlabelled = r#"{"messages":[{"role":"user","content":"ruf 030 12345678 an"}]}"#;
        assert_eq!(judge(unlabelled, &relaxed), Ok(Outcome::Allow));
    }

    #[test]
    fn redaction_touches_only_message_text() {
        let body = r#"{"model":"jane@example.org","messages":[{"role":"user","name":"bob@example.org","content":"Mail jane@example.org or jane@example.org, call +44 20 7946 0958"}],"temperature":0.70,"metadata":{"owner":"x@y.io"}}"#;
        let (rewritten, state) = rewrite(judge(body, &Settings::default()).expect("valid"));
        assert_eq!(
            rewritten,
            r#"{"model":"jane@example.org","messages":[{"role":"user","name":"bob@example.org","content":"Mail [EMAIL_1] or [EMAIL_1], call [PHONE_1]"}],"temperature":0.70,"metadata":{"owner":"x@y.io"}}"#
        );
        assert_eq!(state, None);
    }

    #[test]
    fn parts_tool_calls_and_tool_results_are_scanned() {
        let body = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"card 4111 1111 1111 1111"},{"type":"image_url","image_url":{"url":"https://x/a@b.com"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"send","arguments":"{\"to\":\"jane@example.org\",\"n\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"sent to jane@example.org\nIBAN DE89 3704 0044 0532 0130 00"}]}"#;
        let (rewritten, state) =
            rewrite(judge(body, &settings(r#"{"reversible":true}"#)).expect("valid"));
        assert_eq!(
            rewritten,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"card [CARD_1]"},{"type":"image_url","image_url":{"url":"https://x/a@b.com"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"send","arguments":"{\"to\":\"[EMAIL_1]\",\"n\":1}"}}]},{"role":"tool","tool_call_id":"c","content":"sent to [EMAIL_1]\nIBAN [IBAN_1]"}]}"#
        );
        serde_json::from_str::<serde_json::Value>(&rewritten).expect("still JSON");
        assert_eq!(
            state.as_deref(),
            Some(
                r#"{"[CARD_1]":"4111 1111 1111 1111","[EMAIL_1]":"jane@example.org","[IBAN_1]":"DE89 3704 0044 0532 0130 00"}"#
            )
        );
    }

    #[test]
    fn escapes_in_text_survive() {
        let body = r#"{"messages":[{"role":"user","content":"line\none \"quoted\" \u00e9 jane@example.org\ttab"}]}"#;
        let (rewritten, _) = rewrite(judge(body, &Settings::default()).expect("valid"));
        let value: serde_json::Value = serde_json::from_str(&rewritten).expect("JSON");
        assert_eq!(
            value["messages"][0]["content"],
            "line\none \"quoted\" \u{e9} [EMAIL_1]\ttab"
        );
    }

    #[test]
    fn secrets_block_by_default_naming_types_only() {
        let body = r#"{"messages":[{"role":"user","content":"key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w and jane@example.org"}]}"#;
        let Ok(Outcome::Block(reason)) = judge(body, &Settings::default()) else {
            panic!("expected a block")
        };
        assert_eq!(reason, "the prompt contains data of type secret");
        assert!(!reason.contains("sk-"));
    }

    #[test]
    fn block_beats_route_trusted_beats_redact() {
        let body = r#"{"messages":[{"role":"user","content":"jane@example.org +44 20 7946 0958 4111 1111 1111 1111"}]}"#;
        let s = settings(r#"{"actions":{"email":"route-trusted","card":"block"}}"#);
        assert_eq!(
            judge(body, &s),
            Ok(Outcome::Block(
                "the prompt contains data of type card".into()
            ))
        );
        let s = settings(
            r#"{"actions":{"email":"route-trusted","phone":"route-trusted","card":"route-trusted"}}"#,
        );
        assert_eq!(
            judge(body, &s),
            Ok(Outcome::Label(vec![
                "pii:trusted-only".into(),
                "pii:card".into(),
                "pii:email".into(),
                "pii:phone".into()
            ]))
        );
        let s = settings(r#"{"actions":{"email":"allow","phone":"allow","card":"allow"}}"#);
        assert_eq!(judge(body, &s), Ok(Outcome::Allow));
    }

    /// Route-trusted no longer swallows redaction: the e-mail (route-trusted) stays for the
    /// trusted provider, the card and phone (redact) are replaced, and the tags name all three.
    #[test]
    fn route_trusted_and_redact_apply_together() {
        let body = r#"{"messages":[{"role":"user","content":"jane@example.org +44 20 7946 0958 4111 1111 1111 1111"}]}"#;
        let s = settings(r#"{"actions":{"email":"route-trusted"},"reversible":true}"#);
        let Ok(Outcome::Rewrite { body, tags, state }) = judge(body, &s) else {
            panic!("expected a rewrite")
        };
        assert_eq!(
            body,
            r#"{"messages":[{"role":"user","content":"jane@example.org [PHONE_1] [CARD_1]"}]}"#
        );
        assert_eq!(
            tags,
            ["pii:trusted-only", "pii:card", "pii:email", "pii:phone"]
        );
        let state = state.expect("reversible");
        assert!(
            state.contains("[CARD_1]") && !state.contains("jane"),
            "{state}"
        );
    }

    #[test]
    fn allow_everything_skips_parsing() {
        let s = settings(
            r#"{"actions":{"secret":"allow","card":"allow","iban":"allow","ssn":"allow","email":"allow","phone":"allow","ip":"allow"}}"#,
        );
        assert_eq!(judge("not even json", &s), Ok(Outcome::Allow));
    }

    #[test]
    fn malformed_bodies_are_errors_without_content() {
        let problem =
            judge(r#"{"messages":"jane@example.org"}"#, &Settings::default()).expect_err("shape");
        assert!(!problem.contains("jane"), "{problem}");
        assert!(judge("{", &Settings::default()).is_err());
    }

    #[test]
    fn non_json_arguments_are_scanned_as_text() {
        let body = r#"{"messages":[{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{\"to\": \"jane@example.org"}}]}]}"#;
        let (rewritten, _) = rewrite(judge(body, &Settings::default()).expect("valid"));
        assert!(rewritten.contains(r#"\"to\": \"[EMAIL_1]"#), "{rewritten}");
    }
}
