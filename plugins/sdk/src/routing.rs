//! What routing policies share: strict settings parsing, which candidates may be returned, and
//! the `provider` / `provider/model` / `tag:<tag>` selectors operators use to name targets.
//!
//! Every router answers the same questions the same way here, so an operator who learnt one
//! policy's settings can read another's: unknown keys are refused and every error names the
//! setting at fault; unhealthy candidates are never returned; cooling candidates only with
//! `include_cooling`, after the ready ones and soonest-free first; ties keep the configured
//! order (every sort is stable); unknown live values (`None`, NaN, negative) sort after known
//! ones.
//!
//! A router is then its ordering function plus its settings type: implement [`Policy`] (or,
//! for a policy that only ranks ready candidates, [`Ranking`]) and name the type with
//! [`export_policy!`](crate::export_policy), which writes the world's `metadata`,
//! `check-settings` and `route` exports once for every router, so `check-settings` refuses
//! exactly what `route` would.
//!
//! Enabled by the SDK's `routing` feature.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Display;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::http::error;
use crate::router::PluginMetadata;
use crate::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use crate::types::{Error, ErrorKind, PluginKind};

/// A routing policy: what the router world needs from a router besides the boilerplate.
///
/// ```ignore
/// struct Newest;
///
/// impl Policy for Newest {
///     const NAME: &'static str = "newest";
///     const DESCRIPTION: &'static str = "Tries the last configured target first";
///     type Settings = IncludeCooling;
///
///     fn order(_: &RequestInfo, candidates: &[Candidate], settings: &IncludeCooling) -> Vec<u32> {
///         let mut eligible = Eligible::new(candidates, settings.include_cooling);
///         eligible.ready.reverse();
///         eligible.ids()
///     }
/// }
///
/// freeway_plugin_sdk::export_policy!(Newest);
/// ```
pub trait Policy {
    /// The metadata name config refers to; also the name in every settings error.
    const NAME: &'static str;
    /// One line for `metadata`.
    const DESCRIPTION: &'static str;
    /// The policy's settings, read strictly from the JSON the host passes.
    type Settings: PolicySettings;

    /// Candidate ids in the order to try them.
    fn order(
        request: &RequestInfo,
        candidates: &[Candidate],
        settings: &Self::Settings,
    ) -> Vec<u32>;
}

/// A policy that only ranks the ready candidates, with no settings but `include_cooling`: it
/// is its comparison alone. Cooling candidates, when asked for, follow soonest-free first, as
/// with every policy; ties keep the configured order (the sort is stable).
pub trait Ranking {
    /// The metadata name config refers to; also the name in every settings error.
    const NAME: &'static str;
    /// One line for `metadata`.
    const DESCRIPTION: &'static str;

    /// `Less` when `a` is to be tried before `b`.
    fn compare(request: &RequestInfo, a: &Candidate, b: &Candidate) -> Ordering;
}

impl<R: Ranking> Policy for R {
    const NAME: &'static str = R::NAME;
    const DESCRIPTION: &'static str = R::DESCRIPTION;
    type Settings = IncludeCooling;

    fn order(
        request: &RequestInfo,
        candidates: &[Candidate],
        settings: &IncludeCooling,
    ) -> Vec<u32> {
        let mut eligible = Eligible::new(candidates, settings.include_cooling);
        eligible.ready.sort_by(|a, b| R::compare(request, a, b));
        eligible.ids()
    }
}

/// A policy's settings type: reads its keys from the strict reader, which then refuses any key
/// it did not take.
pub trait PolicySettings: Sized {
    fn read(settings: &mut Settings) -> Result<Self, Error>;
}

/// The settings most policies take: only `include_cooling` (default false).
#[derive(Debug, Default)]
pub struct IncludeCooling {
    pub include_cooling: bool,
}

impl PolicySettings for IncludeCooling {
    fn read(settings: &mut Settings) -> Result<Self, Error> {
        Ok(Self {
            include_cooling: settings.take("include_cooling")?.unwrap_or(false),
        })
    }
}

/// `P`'s settings from the JSON text the host passes: one function for `check-settings` and
/// `route`, so the check at load refuses exactly what a call would.
pub fn parse_settings<P: Policy>(json: &str) -> Result<P::Settings, Error> {
    let mut raw = Settings::parse(P::NAME, json)?;
    let settings = P::Settings::read(&mut raw)?;
    raw.finish()?;
    Ok(settings)
}

/// The router world's `route` for `P`.
pub fn route<P: Policy>(
    request: &RequestInfo,
    candidates: &[Candidate],
    settings: &str,
) -> Result<Vec<u32>, Error> {
    Ok(P::order(
        request,
        candidates,
        &parse_settings::<P>(settings)?,
    ))
}

/// The router world's `check-settings` for `P`.
pub fn check_settings<P: Policy>(settings: &str) -> Result<(), String> {
    parse_settings::<P>(settings)
        .map(drop)
        .map_err(|problem| problem.message)
}

/// The router world's `metadata` for `P`, at the plugin crate's `version`.
pub fn plugin_metadata<P: Policy>(version: &str) -> PluginMetadata {
    PluginMetadata {
        name: P::NAME.to_owned(),
        version: version.to_owned(),
        kind: PluginKind::Router,
        description: P::DESCRIPTION.to_owned(),
    }
}

/// Exports a [`Policy`] as the router world: `metadata` (at the plugin crate's version),
/// `check-settings` and `policy.route`, all through the functions above.
#[macro_export]
macro_rules! export_policy {
    ($policy:ident) => {
        impl $crate::router::Guest for $policy {
            fn metadata() -> $crate::router::PluginMetadata {
                $crate::routing::plugin_metadata::<$policy>(env!("CARGO_PKG_VERSION"))
            }

            fn check_settings(settings: String) -> Result<(), String> {
                $crate::routing::check_settings::<$policy>(&settings)
            }
        }

        impl $crate::router::exports::freeway::plugin::policy::Guest for $policy {
            fn route(
                request: $crate::router::exports::freeway::plugin::policy::RequestInfo,
                candidates: Vec<$crate::router::exports::freeway::plugin::policy::Candidate>,
                settings: String,
            ) -> Result<Vec<u32>, $crate::types::Error> {
                $crate::routing::route::<$policy>(&request, &candidates, &settings)
            }
        }

        $crate::export_router!($policy with_types_in $crate::router);
    };
}

/// A policy's settings object, read key by key so every error names the key it is about.
///
/// ```ignore
/// let mut settings = Settings::parse("weighted", json)?;
/// let seed: Option<u64> = settings.take("seed")?;
/// let include_cooling = settings.take("include_cooling")?.unwrap_or(false);
/// settings.finish()?; // refuses keys nobody took
/// ```
#[derive(Debug)]
pub struct Settings {
    policy: &'static str,
    values: Map<String, Value>,
    known: BTreeSet<&'static str>,
}

impl Settings {
    /// Parses the settings text the host passes (`"{}"`, or empty, when there are none).
    pub fn parse(policy: &'static str, json: &str) -> Result<Self, Error> {
        let json = json.trim();
        let values = if json.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str(json) {
                Ok(Value::Object(values)) => values,
                Ok(_) => {
                    return Err(settings_error(format!(
                        "invalid {policy} settings: expected a JSON object"
                    )));
                }
                Err(problem) => {
                    return Err(settings_error(format!(
                        "invalid {policy} settings: {problem}"
                    )));
                }
            }
        };
        Ok(Self {
            policy,
            values,
            known: BTreeSet::new(),
        })
    }

    /// The value of `key`, if present (JSON `null` counts as absent).
    pub fn take<T: DeserializeOwned>(&mut self, key: &'static str) -> Result<Option<T>, Error> {
        self.known.insert(key);
        match self.values.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value)
                .map(Some)
                .map_err(|problem| self.invalid(key, problem)),
        }
    }

    /// An error about the setting `key`: `invalid <policy> setting `key`: <problem>`.
    pub fn invalid(&self, key: &str, problem: impl Display) -> Error {
        settings_error(format!(
            "invalid {} setting `{key}`: {problem}",
            self.policy
        ))
    }

    /// Refuses any key no `take` asked for: a typo must not silently fall back to a default.
    pub fn finish(self) -> Result<(), Error> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(unknown) => {
                let known: Vec<&str> = self.known.into_iter().collect();
                Err(settings_error(format!(
                    "unknown {} setting `{unknown}` (known: {})",
                    self.policy,
                    known.join(", ")
                )))
            }
        }
    }
}

/// Bad settings are the operator's configuration, not the request: `internal`, not retryable.
fn settings_error(message: String) -> Error {
    error(ErrorKind::Internal, false, message)
}

/// Healthy and not cooling down: may be returned by any policy.
pub fn is_ready(candidate: &Candidate) -> bool {
    candidate.healthy && candidate.cooldown_ms == 0
}

/// The candidates a policy may return, split by readiness.
#[derive(Debug)]
pub struct Eligible<'a> {
    /// Healthy and not cooling, in configured order; the policy orders these.
    pub ready: Vec<&'a Candidate>,
    /// Healthy but cooling, soonest cooldown end first (ties in configured order); empty
    /// unless asked for. Tried only after every ready one.
    pub cooling: Vec<&'a Candidate>,
}

impl<'a> Eligible<'a> {
    /// Sorts out `candidates`; unhealthy ones are dropped whatever the settings say, since the
    /// circuit breaker holds them out on purpose.
    pub fn new(candidates: &'a [Candidate], include_cooling: bool) -> Self {
        let ready = candidates.iter().filter(|c| is_ready(c)).collect();
        let mut cooling: Vec<&Candidate> = if include_cooling {
            candidates
                .iter()
                .filter(|c| c.healthy && c.cooldown_ms > 0)
                .collect()
        } else {
            Vec::new()
        };
        cooling.sort_by_key(|c| c.cooldown_ms);
        Self { ready, cooling }
    }

    /// Keeps, in both groups, only the candidates `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Candidate) -> bool) {
        self.ready.retain(|c| keep(c));
        self.cooling.retain(|c| keep(c));
    }

    /// Ready ids, then cooling ids.
    pub fn ids(&self) -> Vec<u32> {
        ids(self.ready.iter().chain(&self.cooling).copied())
    }
}

/// The ids of `candidates`, in order.
pub fn ids<'a>(candidates: impl IntoIterator<Item = &'a Candidate>) -> Vec<u32> {
    candidates.into_iter().map(|c| c.id).collect()
}

/// A live measurement the host may not have: NaN, infinite and negative values count as
/// unknown, so a bad number never wins a comparison.
pub fn known(value: Option<f32>) -> Option<f32> {
    value.filter(|v| v.is_finite() && *v >= 0.0)
}

/// Known values by `cmp`, unknown ones after all known ones (equal among themselves, so a
/// stable sort keeps them in configured order).
pub fn unknown_last<T>(
    a: Option<T>,
    b: Option<T>,
    cmp: impl FnOnce(&T, &T) -> Ordering,
) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => cmp(&a, &b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// How an operator names targets in settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `"groq"`: every model of that provider.
    Provider(String),
    /// `"groq/llama-3.3-70b-versatile"`: one target. The model part may itself contain `/`
    /// (`"openrouter/meta-llama/llama-3.3-70b-instruct:free"`); provider names cannot.
    Target { provider: String, model: String },
    /// `"tag:free"`: every target carrying the tag (from config, plus "trusted").
    Tag(String),
}

impl Selector {
    /// Parses a selector; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(tag) = text.strip_prefix("tag:") {
            return if tag.is_empty() {
                Err(format!("`{text}` names no tag"))
            } else {
                Ok(Self::Tag(tag.to_owned()))
            };
        }
        match text.split_once('/') {
            None if text.is_empty() => Err("an empty target name".to_owned()),
            None => Ok(Self::Provider(text.to_owned())),
            Some((provider, model)) if provider.is_empty() || model.is_empty() => Err(format!(
                "`{text}` is neither `provider` nor `provider/model`"
            )),
            Some((provider, model)) => Ok(Self::Target {
                provider: provider.to_owned(),
                model: model.to_owned(),
            }),
        }
    }

    /// Whether `candidate` is one of the targets this selector names.
    pub fn matches(&self, candidate: &Candidate) -> bool {
        match self {
            Self::Provider(provider) => candidate.provider == *provider,
            Self::Target { provider, model } => {
                candidate.provider == *provider && candidate.model == *model
            }
            Self::Tag(tag) => candidate.tags.iter().any(|t| t == tag),
        }
    }
}

/// The first metadata value under `key` (client metadata keys are case-sensitive, as in
/// OpenAI's `metadata` object).
pub fn metadata<'a>(request: &'a RequestInfo, key: &str) -> Option<&'a str> {
    request
        .metadata
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Tokens the request may need: the prompt plus the completion it allows (`max-tokens`, or
/// nothing when the client set no limit).
pub fn needed_context(request: &RequestInfo) -> u64 {
    u64::from(request.prompt_tokens) + u64::from(request.max_tokens.unwrap_or(0))
}

/// Whether the candidate's context window can hold the request (unknown windows are assumed
/// to: the upstream will say `context-length` if not, and the next target is tried).
pub fn fits_context(request: &RequestInfo, candidate: &Candidate) -> bool {
    candidate
        .context_window
        .is_none_or(|window| needed_context(request) <= u64::from(window))
}

/// Test fixtures shared by the routing policies' unit tests.
#[doc(hidden)]
pub mod fixtures {
    use super::{Candidate, RequestInfo};

    /// A ready, free, unmeasured candidate `provider-<id>/model`.
    pub fn candidate(id: u32) -> Candidate {
        Candidate {
            id,
            provider: format!("provider-{id}"),
            model: "model".to_owned(),
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
            tags: Vec::new(),
        }
    }

    /// A plain request: 1000 prompt tokens, no limit, no stream, no tools, no images.
    pub fn request() -> RequestInfo {
        RequestInfo {
            model: "auto".to_owned(),
            prompt_tokens: 1_000,
            max_tokens: None,
            stream: false,
            has_tools: false,
            has_images: false,
            tags: Vec::new(),
            metadata: Vec::new(),
            session: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{candidate, request};
    use super::*;

    #[test]
    fn settings_name_the_key_at_fault() {
        let mut settings = Settings::parse("demo", r#"{"seed": "x"}"#).expect("object");
        let error = settings.take::<u64>("seed").expect_err("not a number");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(!error.retryable);
        assert!(
            error.message.contains("invalid demo setting `seed`"),
            "{}",
            error.message
        );

        let mut settings = Settings::parse("demo", r#"{"sede": 1}"#).expect("object");
        assert_eq!(settings.take::<u64>("seed").expect("absent"), None);
        let error = settings.finish().expect_err("typo");
        assert!(
            error
                .message
                .contains("unknown demo setting `sede` (known: seed)"),
            "{}",
            error.message
        );

        for bad in ["[]", "1", "{", "\"x\""] {
            let error = Settings::parse("demo", bad).expect_err("not an object");
            assert!(
                error.message.contains("invalid demo settings"),
                "{}",
                error.message
            );
        }
        for empty in ["", " ", "{}", r#"{"seed": null}"#] {
            let mut settings = Settings::parse("demo", empty).expect("empty");
            assert_eq!(settings.take::<u64>("seed").expect("absent"), None);
            settings.finish().expect("nothing left");
        }
    }

    #[test]
    fn eligibility() {
        let mut fleet: Vec<Candidate> = (0..5).map(candidate).collect();
        fleet[1].healthy = false;
        fleet[2].cooldown_ms = 900;
        fleet[3].cooldown_ms = 100;
        fleet[4].healthy = false;
        fleet[4].cooldown_ms = 50;
        assert_eq!(Eligible::new(&fleet, false).ids(), [0]);
        assert_eq!(Eligible::new(&fleet, true).ids(), [0, 3, 2]);
        let mut eligible = Eligible::new(&fleet, true);
        eligible.retain(|c| c.id != 3);
        assert_eq!(eligible.ids(), [0, 2]);
    }

    #[test]
    fn unknown_values_sort_last() {
        let mut values = [None, Some(3.0), Some(f32::NAN), Some(1.0), Some(-2.0)];
        values.sort_by(|a, b| unknown_last(known(*a), known(*b), f32::total_cmp));
        assert_eq!(values[..2], [Some(1.0), Some(3.0)]);
        // The unknown ones keep their order.
        assert!(values[2].is_none() && values[3].is_some_and(f32::is_nan));
        assert_eq!(values[4], Some(-2.0));
    }

    #[test]
    fn selectors() {
        let mut target = candidate(0);
        target.provider = "openrouter".to_owned();
        target.model = "meta-llama/llama-3.3-70b-instruct:free".to_owned();
        target.tags = vec!["free".to_owned()];
        for (text, matches) in [
            ("openrouter", true),
            ("openrouter/meta-llama/llama-3.3-70b-instruct:free", true),
            ("openrouter/meta-llama", false),
            ("groq", false),
            ("tag:free", true),
            ("tag:paid", false),
        ] {
            let selector = Selector::parse(text).expect("valid");
            assert_eq!(selector.matches(&target), matches, "{text}");
        }
        for bad in ["", "tag:", "/model", "groq/"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn context_and_metadata() {
        let mut request = request();
        request.max_tokens = Some(500);
        request.metadata = vec![("priority".to_owned(), "high".to_owned())];
        let mut small = candidate(0);
        small.context_window = Some(1_499);
        let mut exact = candidate(1);
        exact.context_window = Some(1_500);
        assert!(!fits_context(&request, &small));
        assert!(fits_context(&request, &exact));
        assert!(fits_context(&request, &candidate(2)));
        assert_eq!(metadata(&request, "priority"), Some("high"));
        assert_eq!(metadata(&request, "Priority"), None);
    }
}
