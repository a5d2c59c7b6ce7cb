//! The `cascade` router: a cheap judge model decides which tier of targets answers a request
//! (tiered routing: easy questions to small free models, hard ones to large models).
//!
//! It exports the router world plus the optional `judging` interface (the `judged-router`
//! world, contract 0.2.1): `ask` builds the judge's question from the request's newest user
//! message; the gateway asks the judge through itself and hands the verdict to `decide`, which
//! turns it into a tier label (the `default` tier when the verdict is late, failed or names no
//! tier, and the explanation says so); `route` then puts that tier's targets first.
//!
//! Settings: `judge` (a public model name), `tiers` (label -> list of targets as `provider`,
//! `provider/model` or `tag:<tag>`), `default` (a label), `prompt` (optional instruction),
//! `timeout_ms` (3000), `fallback` (true: after the tier's targets, the other ready targets in
//! configured order, so a tier that is down still gets an answer).

use std::collections::BTreeMap;

use serde_json::{Value, json};

wit_bindgen::generate!({
    world: "judged-router",
    path: "../../wit",
    with: { "freeway:plugin/types@0.2.1": freeway_plugin_sdk::types },
});

use exports::freeway::plugin::judging::{self, Judgement, Question, Verdict};
use exports::freeway::plugin::policy::{self, Candidate, RequestInfo};
use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::types::{Error, ErrorKind, PluginKind};

struct Cascade;

const DEFAULT_PROMPT: &str = "You sort requests for an AI assistant by how hard they are to \
answer well.";

/// The metadata key the gateway hands the judgement's label under.
const JUDGEMENT_KEY: &str = "judgement";

/// At most this much of the request's text goes to the judge (its start).
const MAX_QUESTION_CHARS: usize = 4000;

#[derive(Debug)]
struct Settings {
    judge: String,
    tiers: BTreeMap<String, Vec<Selector>>,
    default: String,
    prompt: String,
    timeout_ms: u32,
    fallback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Provider(String),
    Target(String, String),
    Tag(String),
}

impl Selector {
    fn parse(text: &str) -> Result<Self, String> {
        if let Some(tag) = text.strip_prefix("tag:") {
            return (!tag.is_empty())
                .then(|| Selector::Tag(tag.to_string()))
                .ok_or_else(|| format!("`{text}` names no tag"));
        }
        match text.split_once('/') {
            None if !text.is_empty() => Ok(Selector::Provider(text.to_string())),
            Some((p, m)) if !p.is_empty() && !m.is_empty() => {
                Ok(Selector::Target(p.to_string(), m.to_string()))
            }
            _ => Err(format!(
                "`{text}` is neither `provider` nor `provider/model`"
            )),
        }
    }

    fn matches(&self, candidate: &Candidate) -> bool {
        match self {
            Selector::Provider(p) => candidate.provider == *p,
            Selector::Target(p, m) => candidate.provider == *p && candidate.model == *m,
            Selector::Tag(tag) => candidate.tags.iter().any(|t| t == tag),
        }
    }
}

fn settings(json: &str) -> Result<Settings, String> {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(json) else {
        return Err("cascade settings must be a JSON object".into());
    };
    let judge = match map.remove("judge") {
        Some(Value::String(judge)) if !judge.is_empty() => judge,
        _ => return Err("cascade setting `judge` must name the public model that judges".into()),
    };
    let Some(Value::Object(raw_tiers)) = map.remove("tiers") else {
        return Err("cascade setting `tiers` must map labels to lists of targets".into());
    };
    let mut tiers = BTreeMap::new();
    for (label, targets) in raw_tiers {
        let Value::Array(targets) = targets else {
            return Err(format!(
                "cascade setting `tiers.{label}` must be a list of targets"
            ));
        };
        if targets.is_empty() {
            return Err(format!("cascade setting `tiers.{label}` lists no target"));
        }
        let mut selectors = Vec::new();
        for target in targets {
            let text = target
                .as_str()
                .ok_or_else(|| format!("cascade setting `tiers.{label}` must list strings"))?;
            selectors.push(
                Selector::parse(text)
                    .map_err(|why| format!("cascade setting `tiers.{label}`: {why}"))?,
            );
        }
        tiers.insert(label.to_lowercase(), selectors);
    }
    if tiers.len() < 2 {
        return Err("cascade setting `tiers` needs at least two tiers".into());
    }
    let default = match map.remove("default") {
        Some(Value::String(label)) if tiers.contains_key(&label.to_lowercase()) => {
            label.to_lowercase()
        }
        _ => {
            return Err(format!(
                "cascade setting `default` must be one of the tiers ({})",
                tiers.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    };
    let prompt = match map.remove("prompt") {
        None => DEFAULT_PROMPT.to_string(),
        Some(Value::String(p)) if !p.trim().is_empty() => p,
        Some(_) => return Err("cascade setting `prompt` must be a non-empty string".into()),
    };
    let timeout_ms = match map.remove("timeout_ms") {
        None => 3000,
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("cascade setting `timeout_ms` must be a positive whole number")?,
    };
    let fallback = match map.remove("fallback") {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err("cascade setting `fallback` must be true or false".into()),
    };
    if let Some(key) = map.keys().next() {
        return Err(format!(
            "unknown cascade setting `{key}` (known: judge, tiers, default, prompt, timeout_ms, fallback)"
        ));
    }
    Ok(Settings {
        judge,
        tiers,
        default,
        prompt,
        timeout_ms,
        fallback,
    })
}

fn parsed(json: &str) -> Result<Settings, Error> {
    settings(json).map_err(|why| error(ErrorKind::Internal, false, why))
}

/// The newest user message's text, at most `MAX_QUESTION_CHARS` of it.
fn question_text(body: &str) -> Option<String> {
    let request: Value = serde_json::from_str(body).ok()?;
    let message = request
        .get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let mut text = match message.get("content")? {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    if text.trim().is_empty() {
        return None;
    }
    if text.len() > MAX_QUESTION_CHARS {
        let mut end = MAX_QUESTION_CHARS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Some(text)
}

/// The one tier label the judge's answer names, if exactly one.
fn named_tier(answer: &str, settings: &Settings) -> Option<String> {
    let lower = answer.to_lowercase();
    let mut named: Vec<&String> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .filter_map(|word| settings.tiers.get_key_value(word).map(|(label, _)| label))
        .collect();
    named.dedup();
    match named.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

fn decide(verdict: &Verdict, settings: &Settings) -> Judgement {
    match verdict {
        Verdict::Answer(answer) => match named_tier(answer, settings) {
            Some(label) => Judgement {
                explanation: format!("tier {label}, as the judge answered"),
                label,
            },
            None => {
                let shown: String = answer
                    .chars()
                    .take(40)
                    .filter(|c| !c.is_control())
                    .collect();
                Judgement {
                    label: settings.default.clone(),
                    explanation: format!(
                        "the judge's answer '{shown}' names no one tier: default tier {}",
                        settings.default
                    ),
                }
            }
        },
        Verdict::Failed(_) => Judgement {
            label: settings.default.clone(),
            explanation: format!("no verdict: default tier {}", settings.default),
        },
    }
}

fn order(request: &RequestInfo, candidates: &[Candidate], settings: &Settings) -> Vec<u32> {
    let label = request
        .metadata
        .iter()
        .find(|(k, _)| k == JUDGEMENT_KEY)
        .map(|(_, v)| v.to_lowercase())
        .filter(|label| settings.tiers.contains_key(label))
        .unwrap_or_else(|| settings.default.clone());
    let ready = |c: &&Candidate| c.healthy && c.cooldown_ms == 0;
    let mut ids: Vec<u32> = Vec::new();
    for selector in &settings.tiers[&label] {
        for candidate in candidates
            .iter()
            .filter(ready)
            .filter(|c| selector.matches(c))
        {
            if !ids.contains(&candidate.id) {
                ids.push(candidate.id);
            }
        }
    }
    if settings.fallback {
        for candidate in candidates.iter().filter(ready) {
            if !ids.contains(&candidate.id) {
                ids.push(candidate.id);
            }
        }
    }
    ids
}

impl Guest for Cascade {
    fn metadata() -> freeway_plugin_sdk::types::PluginMetadata {
        freeway_plugin_sdk::types::PluginMetadata {
            name: "cascade".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Router,
            description: "A judge model picks the tier of targets that answers".into(),
        }
    }

    fn check_settings(json: String) -> Result<(), String> {
        settings(&json).map(|_| ())
    }
}

impl policy::Guest for Cascade {
    fn route(
        request: RequestInfo,
        candidates: Vec<Candidate>,
        json: String,
    ) -> Result<Vec<u32>, Error> {
        Ok(order(&request, &candidates, &parsed(&json)?))
    }
}

impl judging::Guest for Cascade {
    fn ask(_model: String, body: String, json: String) -> Result<Option<Question>, Error> {
        let settings = parsed(&json)?;
        let Some(text) = question_text(&body) else {
            return Ok(None);
        };
        let labels = settings
            .tiers
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let body = json!({
            "messages": [
                {"role": "system", "content": format!(
                    "{}\nAnswer with exactly one word, one of: {labels}.", settings.prompt)},
                {"role": "user", "content": text},
            ],
            "max_tokens": 8,
            "temperature": 0,
        });
        Ok(Some(Question {
            model: settings.judge,
            body: body.to_string(),
            timeout_ms: settings.timeout_ms,
        }))
    }

    fn decide(verdict: Verdict, json: String) -> Result<Judgement, Error> {
        Ok(decide(&verdict, &parsed(&json)?))
    }
}

export!(Cascade);

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &str = r#"{"judge": "fast", "default": "easy",
        "tiers": {"easy": ["small"], "hard": ["big/large", "tag:smart"]}}"#;

    fn candidate(id: u32, provider: &str, model: &str) -> Candidate {
        Candidate {
            id,
            provider: provider.into(),
            model: model.into(),
            healthy: true,
            cooldown_ms: 0,
            remaining_requests: None,
            remaining_tokens: None,
            quota_used: None,
            in_flight: 0,
            latency_ms: None,
            ttft_ms: None,
            error_rate: 0.0,
            input_price: 0.0,
            output_price: 0.0,
            context_window: None,
            weight: 1,
            tags: vec![],
        }
    }

    fn request(judgement: Option<&str>) -> RequestInfo {
        RequestInfo {
            model: "auto".into(),
            prompt_tokens: 10,
            max_tokens: None,
            stream: false,
            has_tools: false,
            has_images: false,
            tags: vec![],
            metadata: judgement
                .map(|j| vec![(JUDGEMENT_KEY.to_string(), j.to_string())])
                .unwrap_or_default(),
            session: None,
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(settings(SETTINGS).is_ok());
        for bad in [
            r#"{"tiers": {"a": ["x"], "b": ["y"]}, "default": "a"}"#,
            r#"{"judge": "j", "tiers": {"a": ["x"]}, "default": "a"}"#,
            r#"{"judge": "j", "tiers": {"a": ["x"], "b": []}, "default": "a"}"#,
            r#"{"judge": "j", "tiers": {"a": ["x"], "b": ["y"]}, "default": "c"}"#,
            r#"{"judge": "j", "tiers": {"a": ["x"], "b": ["y"]}, "default": "a", "judges": 1}"#,
        ] {
            assert!(settings(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_judged_tier_goes_first() {
        let s = settings(SETTINGS).expect("valid");
        let candidates = [
            candidate(0, "small", "s"),
            candidate(1, "big", "large"),
            candidate(2, "other", "o"),
        ];
        assert_eq!(order(&request(Some("hard")), &candidates, &s), [1, 0, 2]);
        assert_eq!(order(&request(Some("easy")), &candidates, &s), [0, 1, 2]);
        assert_eq!(order(&request(None), &candidates, &s), [0, 1, 2]);
        assert_eq!(order(&request(Some("bogus")), &candidates, &s), [0, 1, 2]);
    }

    #[test]
    fn verdicts_become_labels_or_the_default() {
        let s = settings(SETTINGS).expect("valid");
        assert_eq!(decide(&Verdict::Answer("Hard.".into()), &s).label, "hard");
        let unclear = decide(&Verdict::Answer("easy or hard".into()), &s);
        assert_eq!(unclear.label, "easy");
        assert!(unclear.explanation.contains("names no one tier"));
        let failed = decide(&Verdict::Failed("late".into()), &s);
        assert_eq!(failed.label, "easy");
        assert!(failed.explanation.contains("no verdict"));
    }

    #[test]
    fn asks_about_the_newest_user_message() {
        let body = r#"{"model":"auto","messages":[{"role":"user","content":"first"},
            {"role":"assistant","content":"a"},{"role":"user","content":"prove it"}]}"#;
        let question =
            <Cascade as judging::Guest>::ask("auto".into(), body.into(), SETTINGS.into())
                .expect("ok")
                .expect("a question");
        assert_eq!(question.model, "fast");
        assert!(question.body.contains("prove it") && !question.body.contains("first"));
        assert!(question.body.contains("easy, hard"));
    }
}
