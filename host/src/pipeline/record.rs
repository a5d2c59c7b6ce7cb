//! The request record: one per request, built up as the request moves through the pipeline
//! and finished exactly once, by [`RequestRecord::finish`], whatever the path — a JSON answer,
//! a stream (completed, broken or abandoned by its client), or an error before anything was
//! committed. Finishing is where a request is accounted: its log line (sizes and counts,
//! never text unless `log_content` allows it), its tokens against the caller's daily cap, and
//! the request counters. The ledger, the cache and the dashboard's feed hook in here.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::TargetRef;
use crate::error::GatewayError;
use crate::plugins::bindings::types::Usage;
use crate::state::KeyUsageStore;

use super::route_log::RouteLog;

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answered in full.
    Served,
    /// Refused or failed before anything was committed to the client.
    Failed(GatewayError),
    /// A committed stream ended early: the upstream broke, a filter faulted, or the client
    /// went away.
    Interrupted(String),
}

#[derive(Debug)]
pub struct RequestRecord {
    pub id: String,
    /// The gateway key's name, when keys are configured.
    pub caller: Option<String>,
    /// The public model the client asked for.
    pub model: String,
    pub stream: bool,
    pub started: Instant,
    /// The target that served (or was serving when a stream broke).
    pub target: Option<TargetRef>,
    pub route: RouteLog,
    pub usage: Option<Usage>,
    /// USD per million input and output tokens of the serving target, when the catalog says.
    pub prices: Option<(f64, f64)>,
    /// Time to the first chunk of a stream.
    pub ttft: Option<Duration>,
    pub messages: usize,
    /// Size of the body sent upstream, after request filters (logged instead of its text).
    pub prompt_bytes: usize,
    /// Size of the answer as the upstream sent it.
    pub answer_bytes: usize,
    /// The answer's text, kept only when `log_content` allows it.
    pub answer_text: Option<String>,
    pub outcome: Outcome,
}

impl RequestRecord {
    pub fn start(id: String, caller: Option<String>, started: Instant) -> Self {
        RequestRecord {
            id,
            caller,
            model: String::new(),
            stream: false,
            started,
            target: None,
            route: RouteLog::default(),
            usage: None,
            prices: None,
            ttft: None,
            messages: 0,
            prompt_bytes: 0,
            answer_bytes: 0,
            answer_text: None,
            outcome: Outcome::Served,
        }
    }

    /// Tokens the answer used, as the upstream reported them.
    pub fn used_tokens(&self) -> Option<u64> {
        self.usage
            .map(|u| u64::from(u.prompt_tokens) + u64::from(u.completion_tokens))
    }

    /// What the request cost, from the serving target's catalog prices and the usage.
    pub fn cost_usd(&self) -> Option<f64> {
        let (input, output) = self.prices?;
        let usage = self.usage?;
        Some(
            (f64::from(usage.prompt_tokens) * input + f64::from(usage.completion_tokens) * output)
                / 1_000_000.0,
        )
    }

    /// The HTTP status the client saw (a committed stream always started with 200).
    pub fn status(&self) -> u16 {
        match &self.outcome {
            Outcome::Failed(error) => error.status().as_u16(),
            Outcome::Served | Outcome::Interrupted(_) => 200,
        }
    }

    /// Account for the request: content line (when allowed), log line, key usage, counters.
    pub async fn finish(self, key_usage: &dyn KeyUsageStore, counters: &RequestCounters) {
        if let Some(text) = &self.answer_text {
            log_text(&self.id, "answer", text);
        }
        let (message, error) = match &self.outcome {
            Outcome::Served if self.stream => ("stream served".to_string(), None),
            Outcome::Served => ("request served".to_string(), None),
            Outcome::Interrupted(why) => ("stream served".to_string(), Some(why.as_str())),
            Outcome::Failed(error) => (format!("request failed: {error}"), None),
        };
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let route = self.route.header_value();
        tracing::info!(
            request_id = %self.id,
            model = %self.model,
            provider = self.target.as_ref().map(|t| t.provider.as_str()),
            upstream_model = self.target.as_ref().map(|t| t.model.as_str()),
            status = self.status(),
            stream = self.stream,
            attempts = self.route.attempts(),
            ttft_ms = self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            latency_ms,
            messages = self.messages,
            prompt_bytes = self.prompt_bytes,
            answer_bytes = self.answer_bytes,
            prompt_tokens = self.usage.map(|u| u.prompt_tokens),
            completion_tokens = self.usage.map(|u| u.completion_tokens),
            cost_usd = self.cost_usd(),
            route = %route,
            error,
            message = %message,
        );
        if let (Some(caller), Some(used)) = (&self.caller, self.used_tokens()) {
            key_usage.add_tokens(caller, used).await;
        }
        counters.count(match &self.outcome {
            Outcome::Served => "ok",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::Failed(error) => error.label(),
        });
    }
}

/// Requests finished since start, by outcome label (`ok`, `interrupted`, or the error's
/// metric label): a fixed, small set of keys.
#[derive(Default)]
pub struct RequestCounters {
    by_outcome: Mutex<BTreeMap<&'static str, u64>>,
}

impl RequestCounters {
    fn count(&self, outcome: &'static str) {
        *self
            .by_outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.by_outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

/// The most of one prompt or answer a content log line holds.
pub const MAX_LOGGED_TEXT: usize = 16 * 1024;

/// One content log line (target `freeway::content`, so it can be routed or filtered apart
/// from the request log). Only called where `log_content` allows it. Debug-quoted, so a
/// newline in a prompt cannot forge a log line.
pub fn log_text(request_id: &str, part: &'static str, text: &str) {
    let mut end = text.len().min(MAX_LOGGED_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    tracing::info!(
        target: "freeway::content",
        request_id,
        part,
        bytes = text.len(),
        truncated = end < text.len(),
        text = ?&text[..end],
        "content"
    );
}

/// Sizes a streamed answer and, when it may be logged, collects its text (the `content` of
/// every chunk's deltas, as the upstream sent it) up to [`MAX_LOGGED_TEXT`].
pub struct AnswerTally {
    pub bytes: usize,
    pub text: Option<String>,
}

impl AnswerTally {
    pub fn new(keep_text: bool) -> Self {
        AnswerTally {
            bytes: 0,
            text: keep_text.then(String::new),
        }
    }

    pub fn add(&mut self, chunk: &str) {
        self.bytes += chunk.len();
        let Some(text) = self.text.as_mut().filter(|t| t.len() < MAX_LOGGED_TEXT) else {
            return;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(chunk) else {
            return;
        };
        for choice in value["choices"].as_array().into_iter().flatten() {
            if let Some(content) = choice["delta"]["content"].as_str() {
                text.push_str(content);
            }
        }
    }
}
