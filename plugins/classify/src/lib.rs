//! Rule-based routing: classify each request by what the router can see of it and send each
//! class to the targets that suit it (tool calls to models good at tools, images to vision
//! models, long prompts to long-context models, high-priority clients to a fast paid target,
//! code to a coding model).
//!
//! Settings:
//!
//! ```json
//! {
//!   "rules": [
//!     {"when": {"has_images": true}, "prefer": ["gemini", "tag:vision"], "only": true},
//!     {"when": {"tags_any": ["code"]}, "prefer": ["mistral/codestral-latest", "groq"]},
//!     {"when": {"metadata": {"priority": "high"}}, "prefer": ["openai/gpt-4o-mini"]},
//!     {"when": {"min_context": 100000}, "prefer": ["tag:long-context"]}
//!   ],
//!   "default": "keep"
//! }
//! ```
//!
//! Rules are tried in order and the **first** whose `when` holds decides: candidates matching
//! its `prefer` entries come first, in `prefer` order (a candidate matching several entries
//! takes its place at the first; several matching one entry keep the configured order), then
//! every other candidate in configured order, or none of them with `"only": true`. When no
//! rule matches, `default` decides: `"keep"` (the default) returns the candidates in
//! configured order, `"none"` returns nothing, so the request fails (a strict allow-list).
//!
//! `prefer` entries are `"provider"`, `"provider/model"` or `"tag:<tag>"` (a tag from the
//! target's provider config, or "trusted").
//!
//! `when` conditions, all optional, must all hold (an empty or absent `when` always holds):
//!
//! - `min_prompt_tokens`, `max_prompt_tokens`: bounds (inclusive) on the estimated prompt.
//! - `min_context`: the request may need at least this many tokens of context (prompt plus
//!   `max_tokens`).
//! - `has_tools`, `has_images`, `stream`: the request does (true) or does not (false).
//! - `tags_any`: the request carries at least one of these tags (ASCII case-insensitive).
//! - `metadata`: every listed key is present in the request metadata with exactly this value.
//!
//! **Code detection.** A router never sees the request text, so it cannot tell a coding
//! question from any other. Code-heavy routing works through tags instead: a filter that
//! reads the prompt answers `label(["code"])`, or the client sends `x-freeway-tags: code`,
//! and a rule matches `"tags_any": ["code"]`.
//!
//! Other settings (optional):
//!
//! - `long_context` (default true): drop candidates whose known context window is smaller
//!   than prompt plus `max_tokens`, whatever the rules say, since they would refuse the
//!   request anyway (the host checks its catalog too; this also covers windows it only
//!   knows through the candidate record).
//! - `include_cooling` (default false): also return healthy candidates that are cooling down,
//!   after the ready ones, soonest cooldown end first (still subject to `only` and
//!   `long_context`).
//!
//! Unhealthy candidates are never returned.

use std::collections::BTreeMap;

use serde::Deserialize;

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::{
    Eligible, Policy, PolicySettings, Selector, fits_context, ids, needed_context,
};
use freeway_plugin_sdk::types::Error;

/// A rule's conditions as written in settings; absent fields do not constrain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct When {
    min_prompt_tokens: Option<u32>,
    max_prompt_tokens: Option<u32>,
    min_context: Option<u64>,
    has_tools: Option<bool>,
    has_images: Option<bool>,
    stream: Option<bool>,
    tags_any: Option<Vec<String>>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl When {
    fn holds(&self, request: &RequestInfo) -> bool {
        let flag = |wanted: Option<bool>, actual: bool| wanted.is_none_or(|w| w == actual);
        self.min_prompt_tokens
            .is_none_or(|min| request.prompt_tokens >= min)
            && self
                .max_prompt_tokens
                .is_none_or(|max| request.prompt_tokens <= max)
            && self
                .min_context
                .is_none_or(|min| needed_context(request) >= min)
            && flag(self.has_tools, request.has_tools)
            && flag(self.has_images, request.has_images)
            && flag(self.stream, request.stream)
            && self.tags_any.as_ref().is_none_or(|wanted| {
                wanted
                    .iter()
                    .any(|w| request.tags.iter().any(|tag| tag.eq_ignore_ascii_case(w)))
            })
            && self
                .metadata
                .iter()
                .all(|(key, value)| request.metadata.iter().any(|(k, v)| k == key && v == value))
    }
}

/// A rule as written in settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    when: When,
    #[serde(default)]
    prefer: Vec<String>,
    #[serde(default)]
    only: bool,
}

#[derive(Debug)]
struct Rule {
    when: When,
    prefer: Vec<Selector>,
    only: bool,
}

impl Rule {
    /// Checks one rule; the error says what is wrong, the caller says which rule.
    fn parse(value: serde_json::Value) -> Result<Self, String> {
        let raw: RawRule = serde_json::from_value(value).map_err(|problem| problem.to_string())?;
        let prefer = raw
            .prefer
            .iter()
            .map(|text| Selector::parse(text).map_err(|problem| format!("prefer: {problem}")))
            .collect::<Result<Vec<_>, _>>()?;
        if raw.only && prefer.is_empty() {
            return Err("`only` without `prefer` would route nothing (use \"default\": \"none\" for an allow-list)".to_owned());
        }
        if let (Some(min), Some(max)) = (raw.when.min_prompt_tokens, raw.when.max_prompt_tokens)
            && min > max
        {
            return Err(format!(
                "min_prompt_tokens {min} is over max_prompt_tokens {max}: the rule can never match"
            ));
        }
        if raw.when.tags_any.as_ref().is_some_and(Vec::is_empty) {
            return Err("tags_any is empty: the rule can never match".to_owned());
        }
        Ok(Self {
            when: raw.when,
            prefer,
            only: raw.only,
        })
    }

    /// Where a candidate goes under this rule: the index of the first `prefer` entry it
    /// matches, `prefer.len()` for the rest, `None` when `only` leaves it out.
    fn rank(&self, candidate: &Candidate) -> Option<usize> {
        match self.prefer.iter().position(|s| s.matches(candidate)) {
            Some(index) => Some(index),
            None if self.only => None,
            None => Some(self.prefer.len()),
        }
    }
}

/// What happens when no rule matches.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Fallback {
    #[default]
    Keep,
    None,
}

#[derive(Debug)]
struct Settings {
    rules: Vec<Rule>,
    default: Fallback,
    long_context: bool,
    include_cooling: bool,
}

impl PolicySettings for Settings {
    fn read(raw: &mut freeway_plugin_sdk::routing::Settings) -> Result<Self, Error> {
        let rules: Vec<serde_json::Value> = raw.take("rules")?.unwrap_or_default();
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                Rule::parse(rule)
                    .map_err(|problem| raw.invalid("rules", format!("rule {index}: {problem}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rules,
            default: raw.take("default")?.unwrap_or_default(),
            long_context: raw.take("long_context")?.unwrap_or(true),
            include_cooling: raw.take("include_cooling")?.unwrap_or(false),
        })
    }
}

struct Classify;

impl Policy for Classify {
    const NAME: &'static str = "classify";
    const DESCRIPTION: &'static str = "Routes requests by their features (tools, images, size, tags, metadata) to preferred targets";
    type Settings = Settings;

    fn order(request: &RequestInfo, candidates: &[Candidate], settings: &Settings) -> Vec<u32> {
        let mut eligible = Eligible::new(candidates, settings.include_cooling);
        if settings.long_context {
            eligible.retain(|candidate| fits_context(request, candidate));
        }
        let Some(rule) = settings.rules.iter().find(|rule| rule.when.holds(request)) else {
            return match settings.default {
                Fallback::Keep => eligible.ids(),
                Fallback::None => Vec::new(),
            };
        };
        eligible.retain(|candidate| rule.rank(candidate).is_some());
        // Stable: candidates of one rank keep the configured (or, when cooling, soonest) order.
        eligible.ready.sort_by_key(|candidate| rule.rank(candidate));
        ids(eligible.ready.into_iter().chain(eligible.cooling))
    }
}

freeway_plugin_sdk::export_policy!(Classify);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{candidate, request};
    use freeway_plugin_sdk::types::ErrorKind;

    fn target(id: u32, provider: &str, model: &str, tags: &[&str]) -> Candidate {
        Candidate {
            provider: provider.to_owned(),
            model: model.to_owned(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..candidate(id)
        }
    }

    /// 0 groq/llama, 1 gemini/flash (vision, long-context), 2 mistral/codestral,
    /// 3 openai/gpt-4o-mini (trusted, vision), 4 groq/qwen, 5 ollama/llama (local).
    fn fleet() -> Vec<Candidate> {
        vec![
            target(0, "groq", "llama", &[]),
            target(1, "gemini", "flash", &["vision", "long-context"]),
            target(2, "mistral", "codestral", &[]),
            target(3, "openai", "gpt-4o-mini", &["trusted", "vision"]),
            target(4, "groq", "qwen", &[]),
            target(5, "ollama", "llama", &["local"]),
        ]
    }

    fn route(
        request: &RequestInfo,
        candidates: &[Candidate],
        settings: &str,
    ) -> Result<Vec<u32>, Error> {
        freeway_plugin_sdk::routing::route::<Classify>(request, candidates, settings)
    }

    const RULES: &str = r#"{"rules": [
        {"when": {"has_images": true}, "prefer": ["tag:vision"], "only": true},
        {"when": {"tags_any": ["code"]}, "prefer": ["mistral/codestral", "groq"]},
        {"when": {"metadata": {"priority": "high"}}, "prefer": ["openai", "gemini"]},
        {"when": {"has_tools": true, "stream": false}, "prefer": ["groq/qwen"], "only": true}
    ]}"#;

    #[test]
    fn no_matching_rule_keeps_the_configured_order() {
        assert_eq!(
            route(&request(), &fleet(), RULES).expect("valid"),
            [0, 1, 2, 3, 4, 5]
        );
        assert_eq!(
            route(&request(), &fleet(), "{}").expect("valid"),
            [0, 1, 2, 3, 4, 5]
        );
        assert!(
            route(&request(), &fleet(), r#"{"default": "none"}"#)
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn preferred_first_in_prefer_order_then_the_rest() {
        let code = RequestInfo {
            tags: vec!["Code".to_owned()],
            ..request()
        };
        assert_eq!(
            route(&code, &fleet(), RULES).expect("valid"),
            [2, 0, 4, 1, 3, 5]
        );
        let high = RequestInfo {
            metadata: vec![("priority".to_owned(), "high".to_owned())],
            ..request()
        };
        assert_eq!(
            route(&high, &fleet(), RULES).expect("valid"),
            [3, 1, 0, 2, 4, 5]
        );
        let low = RequestInfo {
            metadata: vec![("priority".to_owned(), "low".to_owned())],
            ..request()
        };
        assert_eq!(
            route(&low, &fleet(), RULES).expect("valid"),
            [0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn only_leaves_the_rest_out() {
        let images = RequestInfo {
            has_images: true,
            ..request()
        };
        assert_eq!(route(&images, &fleet(), RULES).expect("valid"), [1, 3]);
        let tools = RequestInfo {
            has_tools: true,
            ..request()
        };
        assert_eq!(route(&tools, &fleet(), RULES).expect("valid"), [4]);
        // The same rule does not hold for a stream, and nothing else matches.
        let streamed_tools = RequestInfo {
            stream: true,
            ..tools
        };
        assert_eq!(
            route(&streamed_tools, &fleet(), RULES).expect("valid"),
            [0, 1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        // Images and the code tag: the image rule comes first.
        let both = RequestInfo {
            has_images: true,
            tags: vec!["code".to_owned()],
            ..request()
        };
        assert_eq!(route(&both, &fleet(), RULES).expect("valid"), [1, 3]);
    }

    #[test]
    fn size_conditions() {
        let settings = r#"{"rules": [
            {"when": {"max_prompt_tokens": 200}, "prefer": ["ollama"]},
            {"when": {"min_context": 50000}, "prefer": ["tag:long-context"]},
            {"when": {"min_prompt_tokens": 20000}, "prefer": ["openai"]}
        ]}"#;
        let sized = |prompt_tokens, max_tokens| RequestInfo {
            prompt_tokens,
            max_tokens,
            ..request()
        };
        assert_eq!(
            route(&sized(200, None), &fleet(), settings).expect("valid")[0],
            5
        );
        assert_eq!(
            route(&sized(201, None), &fleet(), settings).expect("valid")[0],
            0
        );
        // 40k prompt + 10k completion needs 50k of context: long-context first.
        assert_eq!(
            route(&sized(40_000, Some(10_000)), &fleet(), settings).expect("valid")[0],
            1
        );
        assert_eq!(
            route(&sized(40_000, Some(9_999)), &fleet(), settings).expect("valid")[0],
            3
        );
        assert_eq!(
            route(&sized(20_000, None), &fleet(), settings).expect("valid")[0],
            3
        );
    }

    #[test]
    fn every_metadata_pair_must_match() {
        let settings = r#"{"rules": [{"when": {"metadata": {"priority": "high", "team": "a"}}, "prefer": ["ollama"]}]}"#;
        let mut request = request();
        request.metadata = vec![("priority".to_owned(), "high".to_owned())];
        assert_eq!(route(&request, &fleet(), settings).expect("valid")[0], 0);
        request.metadata.push(("team".to_owned(), "a".to_owned()));
        assert_eq!(route(&request, &fleet(), settings).expect("valid")[0], 5);
    }

    #[test]
    fn candidates_too_small_for_the_request_are_dropped() {
        let mut candidates = fleet();
        candidates[0].context_window = Some(8_192);
        candidates[1].context_window = Some(1_000_000);
        candidates[2].context_window = Some(32_000);
        let big = RequestInfo {
            prompt_tokens: 30_000,
            max_tokens: Some(4_000),
            ..request()
        };
        assert_eq!(route(&big, &candidates, "{}").expect("valid"), [1, 3, 4, 5]);
        assert_eq!(
            route(&big, &candidates, r#"{"long_context": false}"#).expect("valid"),
            [0, 1, 2, 3, 4, 5]
        );
        // Also under a rule that prefers a too-small target.
        let code = RequestInfo {
            tags: vec!["code".to_owned()],
            ..big
        };
        assert_eq!(
            route(&code, &candidates, RULES).expect("valid"),
            [4, 1, 3, 5]
        );
    }

    #[test]
    fn unhealthy_and_cooling_are_left_out_unless_asked() {
        let mut candidates = fleet();
        candidates[2].healthy = false;
        candidates[0].cooldown_ms = 9_000;
        candidates[4].cooldown_ms = 1_000;
        candidates[3].cooldown_ms = 10;
        let code = RequestInfo {
            tags: vec!["code".to_owned()],
            ..request()
        };
        assert_eq!(route(&code, &candidates, RULES).expect("valid"), [1, 5]);
        let cooling = r#"{"include_cooling": true, "rules": [
            {"when": {"tags_any": ["code"]}, "prefer": ["mistral/codestral", "groq"], "only": true}
        ]}"#;
        assert_eq!(route(&code, &candidates, cooling).expect("valid"), [4, 0]);
        assert_eq!(
            route(&request(), &candidates, cooling).expect("valid"),
            [1, 5, 3, 4, 0]
        );
        assert!(route(&request(), &[], RULES).expect("valid").is_empty());
    }

    #[test]
    fn ids_are_returned_as_given() {
        let candidates = [target(7, "groq", "a", &[]), target(3, "ollama", "b", &[])];
        let settings = r#"{"rules": [{"prefer": ["ollama"]}]}"#;
        assert_eq!(
            route(&request(), &candidates, settings).expect("valid"),
            [3, 7]
        );
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (settings, names) in [
            (r#"{"rule": []}"#, "unknown classify setting `rule`"),
            (r#"{"rules": {}}"#, "setting `rules`"),
            (r#"{"rules": [{"if": {}}]}"#, "rule 0: unknown field `if`"),
            (
                r#"{"rules": [{}, {"when": {"has_tool": true}}]}"#,
                "rule 1: unknown field `has_tool`",
            ),
            (
                r#"{"rules": [{"when": {"stream": "yes"}}]}"#,
                "rule 0: invalid type",
            ),
            (r#"{"rules": [{"prefer": ["tag:"]}]}"#, "rule 0: prefer"),
            (r#"{"rules": [{"prefer": ["/x"]}]}"#, "rule 0: prefer"),
            (
                r#"{"rules": [{"only": true}]}"#,
                "rule 0: `only` without `prefer`",
            ),
            (
                r#"{"rules": [{"when": {"min_prompt_tokens": 9, "max_prompt_tokens": 8}}]}"#,
                "rule 0: min_prompt_tokens",
            ),
            (
                r#"{"rules": [{"when": {"tags_any": []}}]}"#,
                "rule 0: tags_any",
            ),
            (r#"{"default": "drop"}"#, "setting `default`"),
            (r#"{"long_context": 1}"#, "setting `long_context`"),
            ("[]", "classify settings"),
        ] {
            let error = route(&request(), &fleet(), settings).expect_err(settings);
            assert_eq!(error.kind, ErrorKind::Internal);
            assert!(!error.retryable);
            assert!(
                error.message.contains(names),
                "{settings}: {}",
                error.message
            );
        }
    }
}
