//! The routing policies a public model may add to its order, and the catalog's streaming fact:
//! hedging (`hedge_after_ms`, `max_hedges`, `hedge_budget`), waiting for capacity
//! (`queue_wait_ms`, `queue_max`), and `streaming` on a provider or one of its models. Kept
//! apart from `validate` so each policy's defaults and limits sit next to its type.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, error};

/// Whether an endpoint can stream: `streaming = false` (it answers whole only) or
/// `streaming = "only"` (it answers only as a stream). Unknown is `Yes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "StreamingRepr")]
pub enum Streaming {
    #[default]
    Yes,
    No,
    Only,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StreamingRepr {
    Flag(bool),
    Word(String),
}

impl TryFrom<StreamingRepr> for Streaming {
    type Error = String;

    fn try_from(repr: StreamingRepr) -> Result<Self, String> {
        match repr {
            StreamingRepr::Flag(true) => Ok(Streaming::Yes),
            StreamingRepr::Flag(false) => Ok(Streaming::No),
            StreamingRepr::Word(word) if word == "only" => Ok(Streaming::Only),
            StreamingRepr::Word(word) => Err(format!(
                "streaming must be true, false or \"only\", not {word:?}"
            )),
        }
    }
}

/// When a hedged attempt starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    /// This long after the attempt before it started without a first token.
    Fixed(Duration),
    /// The running target's observed p95 time to a first token (no hedge until known).
    Auto,
}

/// `models.<m>.hedge_after_ms` and its companions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgePolicy {
    pub after: HedgeAfter,
    /// Attempts started beside a slow one, per request.
    pub max_hedges: u32,
    /// The most hedges may be, as a share of the model's requests over the last minute.
    pub budget: f64,
}

/// `models.<m>.queue_wait_ms`: how long a request may wait for a target to have capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuePolicy {
    pub wait: Duration,
    /// Requests waiting at once for this model; one more is refused at once.
    pub max_waiting: usize,
}

const DEFAULT_HEDGE_BUDGET: f64 = 0.1;
const DEFAULT_QUEUE_MAX: usize = 100;
const LONGEST_QUEUE_WAIT_MS: u64 = 600_000;

/// The raw fields of one public model that these policies read.
pub struct RawPolicies<'a> {
    pub hedge_after_ms: Option<&'a toml::Value>,
    pub max_hedges: Option<u32>,
    pub hedge_budget: Option<f64>,
    pub queue_wait_ms: Option<u64>,
    pub queue_max: Option<usize>,
}

pub fn hedge_policy(path: &str, raw: &RawPolicies) -> Result<Option<HedgePolicy>, ConfigError> {
    let Some(after) = raw.hedge_after_ms else {
        if raw.max_hedges.is_some() || raw.hedge_budget.is_some() {
            return Err(error(
                format!("{path}.hedge_after_ms"),
                "max_hedges and hedge_budget need hedge_after_ms (a number of ms or \"auto\")",
            ));
        }
        return Ok(None);
    };
    let after = match after {
        toml::Value::Integer(ms) if *ms > 0 => HedgeAfter::Fixed(Duration::from_millis(*ms as u64)),
        toml::Value::String(word) if word == "auto" => HedgeAfter::Auto,
        other => {
            return Err(error(
                format!("{path}.hedge_after_ms"),
                format!("must be a positive number of milliseconds or \"auto\", not {other}"),
            ));
        }
    };
    let max_hedges = raw.max_hedges.unwrap_or(1);
    if !(1..=4).contains(&max_hedges) {
        return Err(error(
            format!("{path}.max_hedges"),
            "must be between 1 and 4",
        ));
    }
    let budget = raw.hedge_budget.unwrap_or(DEFAULT_HEDGE_BUDGET);
    if !(budget > 0.0 && budget <= 1.0) {
        return Err(error(
            format!("{path}.hedge_budget"),
            "must be a share of requests above 0 and at most 1 (e.g. 0.1)",
        ));
    }
    Ok(Some(HedgePolicy {
        after,
        max_hedges,
        budget,
    }))
}

pub fn queue_policy(path: &str, raw: &RawPolicies) -> Result<Option<QueuePolicy>, ConfigError> {
    let Some(wait_ms) = raw.queue_wait_ms else {
        if raw.queue_max.is_some() {
            return Err(error(
                format!("{path}.queue_wait_ms"),
                "queue_max needs queue_wait_ms",
            ));
        }
        return Ok(None);
    };
    if wait_ms == 0 || wait_ms > LONGEST_QUEUE_WAIT_MS {
        return Err(error(
            format!("{path}.queue_wait_ms"),
            format!("must be between 1 and {LONGEST_QUEUE_WAIT_MS}"),
        ));
    }
    let max_waiting = raw.queue_max.unwrap_or(DEFAULT_QUEUE_MAX);
    if max_waiting == 0 {
        return Err(error(format!("{path}.queue_max"), "must be at least 1"));
    }
    Ok(Some(QueuePolicy {
        wait: Duration::from_millis(wait_ms),
        max_waiting,
    }))
}
