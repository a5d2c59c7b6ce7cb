//! The request record: one per request, built up as the request moves through the pipeline
//! and finished exactly once, by [`RequestRecord::finish`], whatever the path — a JSON answer,
//! a stream (completed, broken or abandoned by its client), or an error before anything was
//! committed. Finishing is where a request is accounted: its log line (sizes and counts,
//! never text unless `log_content` allows it), its tokens against the caller's daily cap, and
//! the request counters, its ledger row, its trace span and its event on the dashboard's live
//! feed. The cache hooks in here too.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cache::CacheStatus;
use crate::config::TargetRef;
use crate::error::GatewayError;
use crate::events::RequestEvent;
use crate::metrics::status_class;
use crate::plugins::bindings::types::Usage;
use crate::state::{Caller, Reservation};
use crate::store::ledger::LedgerRow;
use crate::store::unix_ms;
use crate::telemetry::{AttemptSpan, Attr, RequestSpan};

use super::Gateway;
use super::canonical::Operation;
use super::route_log::RouteLog;

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answered in full.
    Served,
    /// Refused or failed before anything was committed to the client.
    Failed(GatewayError),
    /// A committed stream ended early: the upstream broke or went quiet, the deadline
    /// passed, or a filter faulted.
    Interrupted(String),
    /// The client closed its connection before a committed stream ended.
    ClientClosed,
}

fn sum_usage(a: Option<Usage>, b: Option<Usage>) -> Option<Usage> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Usage {
            prompt_tokens: a.prompt_tokens.saturating_add(b.prompt_tokens),
            completion_tokens: a.completion_tokens.saturating_add(b.completion_tokens),
        }),
        (a, b) => a.or(b),
    }
}

/// The status logged for a request whose client left mid-stream (nginx's convention): the
/// client saw 200, but it did not get the answer.
pub const CLIENT_CLOSED_STATUS: u16 = 499;

#[derive(Debug)]
pub struct RequestRecord {
    pub id: String,
    /// The gateway key, when keys are configured.
    pub caller: Option<Arc<Caller>>,
    /// What the request holds against its key's budgets until it is settled here.
    pub reservation: Reservation,
    /// The public model the client asked for.
    pub model: String,
    /// Whether `model` names a model of this gateway (so it may label metrics).
    pub model_known: bool,
    /// Chat or embeddings (the trace's operation name, the embeddings metric).
    pub operation: Operation,
    pub stream: bool,
    pub started: Instant,
    /// The target that served (or was serving when a stream broke).
    pub target: Option<TargetRef>,
    pub route: RouteLog,
    pub usage: Option<Usage>,
    /// Tokens of whole answers the model escalated past (`escalate_on`): part of `usage`.
    pub escalated_usage: Option<Usage>,
    /// Prompt tokens the upstream served from its cache, when it says
    /// (`usage.prompt_tokens_details.cached_tokens` of the canonical answer).
    pub cached_tokens: Option<u32>,
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
    /// Each upstream attempt, timed (for traces).
    pub attempts: Vec<AttemptSpan>,
    /// `finish_reason`s of the answer, collected only while traces are exported.
    pub finish_reasons: Vec<String>,
    /// What the response cache did for this request.
    pub cache: CacheStatus,
    /// What context fitting left out of the body the serving target got.
    pub fit: Option<String>,
    pub outcome: Outcome,
    /// Armed while the request is in progress: a record dropped before [`finish`] (the client
    /// closed its connection, and the server dropped the request's future mid-flight) is
    /// finished from `Drop` as `client_closed`, so no request goes unlogged and no budget
    /// reservation is held forever.
    ///
    /// [`finish`]: RequestRecord::finish
    guard: Option<FinishGuard>,
}

/// The gateway an armed record finishes through when it is dropped.
struct FinishGuard(Arc<Gateway>);

impl std::fmt::Debug for FinishGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("armed")
    }
}

impl RequestRecord {
    pub fn start(id: String, caller: Option<Arc<Caller>>, started: Instant) -> Self {
        RequestRecord {
            id,
            caller,
            reservation: Reservation::default(),
            model: String::new(),
            model_known: false,
            operation: Operation::Chat,
            stream: false,
            started,
            target: None,
            route: RouteLog::default(),
            usage: None,
            escalated_usage: None,
            cached_tokens: None,
            prices: None,
            ttft: None,
            messages: 0,
            prompt_bytes: 0,
            answer_bytes: 0,
            answer_text: None,
            attempts: Vec::new(),
            finish_reasons: Vec::new(),
            cache: CacheStatus::Off,
            fit: None,
            outcome: Outcome::Served,
            guard: None,
        }
    }

    /// Finish this record through `gateway` even if it is dropped unfinished.
    pub fn arm(&mut self, gateway: &Arc<Gateway>) {
        self.guard = Some(FinishGuard(gateway.clone()));
    }

    /// The serving answer's usage, plus that of the answers escalated past.
    pub fn set_usage(&mut self, usage: Option<Usage>) {
        self.usage = sum_usage(usage, self.escalated_usage);
    }

    /// Count an escalated answer's tokens (the request spent them).
    pub fn add_escalated_usage(&mut self, usage: Option<Usage>) {
        self.escalated_usage = sum_usage(self.escalated_usage, usage);
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
            Outcome::ClientClosed => CLIENT_CLOSED_STATUS,
            Outcome::Served | Outcome::Interrupted(_) => 200,
        }
    }

    fn outcome_label(&self) -> &'static str {
        match &self.outcome {
            Outcome::Served if self.cache == CacheStatus::Hit => "cache_hit",
            Outcome::Served => "ok",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::ClientClosed => "client_closed",
            Outcome::Failed(error) => error.label(),
        }
    }

    /// Account for the request: content line (when allowed), log line, the caller's usage
    /// and budgets, metrics, and its ledger row.
    pub async fn finish(mut self, gateway: &Gateway) {
        self.guard = None;
        if let Some(text) = &self.answer_text {
            log_text(&self.id, "answer", text);
        }
        let latency = self.started.elapsed();
        // A cached answer cost no upstream anything.
        let cost = match self.cache {
            CacheStatus::Hit => Some(0.0),
            _ => self.cost_usd(),
        };
        // One rendering of the route for the log line, the span, the feed and the ledger.
        let route = self.route.header_value();
        if tracing::enabled!(tracing::Level::INFO) {
            self.log_line(latency, cost, &route);
        }
        let now = SystemTime::now();
        if let Some(caller) = &self.caller {
            let used = Reservation {
                tokens: self.used_tokens().unwrap_or(0),
                usd: cost.unwrap_or(0.0),
                shared: false,
            };
            gateway
                .shared
                .key_usage
                .settle(&caller.name, self.reservation, used, now)
                .await;
        }
        self.observe(gateway, latency, cost);
        if gateway.telemetry.enabled() {
            gateway.telemetry.record(self.span(now, cost, &route));
        }
        gateway
            .feed
            .request(self.event(now, latency, cost, route.clone()));
        if gateway.ledger.enabled() {
            gateway.ledger.record(LedgerRow {
                request_id: self.id.clone(),
                ts: unix_ms(now),
                key: self.caller.as_ref().map(|c| c.name.clone()),
                model: self.model.clone(),
                provider: self.target.as_ref().map(|t| t.provider.clone()),
                upstream_model: self.target.as_ref().map(|t| t.model.clone()),
                prompt_tokens: self.usage.map(|u| u.prompt_tokens),
                completion_tokens: self.usage.map(|u| u.completion_tokens),
                cached_tokens: self.cached_tokens,
                cost_usd: cost,
                latency_ms: latency.as_secs_f64() * 1000.0,
                ttft_ms: self.ttft.map(|t| t.as_secs_f64() * 1000.0),
                attempts: self.route.attempts() as u32,
                route,
                status: self.status(),
                outcome: match &self.outcome {
                    Outcome::Failed(error) => error.code().to_string(),
                    _ => self.outcome_label().to_string(),
                },
                stream: self.stream,
            });
        }
    }

    /// The request on the dashboard's feed: what its log line says, and its route step by step.
    fn event(
        &self,
        now: SystemTime,
        latency: Duration,
        cost: Option<f64>,
        route: String,
    ) -> RequestEvent {
        RequestEvent {
            id: self.id.clone(),
            ts: unix_ms(now),
            key: self.caller.as_ref().map(|c| c.name.clone()),
            model: self.model.clone(),
            provider: self.target.as_ref().map(|t| t.provider.clone()),
            upstream_model: self.target.as_ref().map(|t| t.model.clone()),
            status: self.status(),
            outcome: match &self.outcome {
                Outcome::Failed(error) => error.code().to_string(),
                _ => self.outcome_label().to_string(),
            },
            error: match &self.outcome {
                Outcome::Served => None,
                Outcome::Interrupted(why) => Some(why.clone()),
                Outcome::ClientClosed => Some("the client closed the connection".into()),
                Outcome::Failed(error) => Some(error.to_string()),
            },
            stream: self.stream,
            attempts: self.route.attempts(),
            latency_ms: latency.as_secs_f64() * 1000.0,
            ttft_ms: self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            prompt_tokens: self.usage.map(|u| u.prompt_tokens),
            completion_tokens: self.usage.map(|u| u.completion_tokens),
            cost_usd: cost,
            route,
            steps: self.route.steps(),
        }
    }

    /// The trace of this request: GenAI attributes, one child per attempt.
    fn span(&self, ended: SystemTime, cost: Option<f64>, route: &str) -> RequestSpan {
        let mut attributes = vec![
            (
                "gen_ai.operation.name",
                Attr::Str(self.operation.as_str().into()),
            ),
            ("gen_ai.request.model", Attr::Str(self.model.clone())),
            ("freeway.request_id", Attr::Str(self.id.clone())),
            ("freeway.attempts", Attr::Int(self.route.attempts() as i64)),
            ("freeway.route", Attr::Str(route.to_string())),
            (
                "http.response.status_code",
                Attr::Int(i64::from(self.status())),
            ),
        ];
        if let Some(target) = &self.target {
            attributes.push(("gen_ai.provider.name", Attr::Str(target.provider.clone())));
            attributes.push(("gen_ai.response.model", Attr::Str(target.model.clone())));
        }
        if let Some(usage) = self.usage {
            attributes.push((
                "gen_ai.usage.input_tokens",
                Attr::Int(i64::from(usage.prompt_tokens)),
            ));
            attributes.push((
                "gen_ai.usage.output_tokens",
                Attr::Int(i64::from(usage.completion_tokens)),
            ));
        }
        if !self.finish_reasons.is_empty() {
            attributes.push((
                "gen_ai.response.finish_reasons",
                Attr::Strs(self.finish_reasons.clone()),
            ));
        }
        if let Some(caller) = &self.caller {
            attributes.push(("freeway.key", Attr::Str(caller.name.clone())));
        }
        if let Some(cost) = cost {
            attributes.push(("freeway.cost_usd", Attr::Float(cost)));
        }
        let started = ended.checked_sub(self.started.elapsed()).unwrap_or(ended);
        RequestSpan {
            name: format!("chat {}", self.model),
            started,
            ended,
            attributes,
            error: match &self.outcome {
                Outcome::Served => None,
                Outcome::Interrupted(_) => Some("stream_interrupted".into()),
                Outcome::ClientClosed => Some("client_closed".into()),
                Outcome::Failed(error) => Some(error.code().to_string()),
            },
            attempts: self.attempts.clone(),
        }
    }

    /// The request's log line: sizes and counts, never text.
    fn log_line(&self, latency: Duration, cost: Option<f64>, route: &str) {
        let (message, error) = match &self.outcome {
            Outcome::Served if self.stream => ("stream served".to_string(), None),
            Outcome::Served => ("request served".to_string(), None),
            Outcome::Interrupted(why) => ("stream served".to_string(), Some(why.as_str())),
            Outcome::ClientClosed => ("stream abandoned: the client closed it".to_string(), None),
            Outcome::Failed(error) => (format!("request failed: {error}"), None),
        };
        tracing::info!(
            request_id = %LogSafe(&self.id),
            model = %LogSafe(&self.model),
            key = self.caller.as_ref().map(|c| LogSafe(&c.name)).map(tracing::field::display),
            provider = self.target.as_ref().map(|t| LogSafe(&t.provider)).map(tracing::field::display),
            upstream_model = self.target.as_ref().map(|t| LogSafe(&t.model)).map(tracing::field::display),
            status = self.status(),
            outcome = %self.outcome_label(),
            stream = self.stream,
            attempts = self.route.attempts(),
            ttft_ms = self.ttft.map(|t| t.as_secs_f64() * 1000.0),
            latency_ms = latency.as_secs_f64() * 1000.0,
            messages = self.messages,
            prompt_bytes = self.prompt_bytes,
            answer_bytes = self.answer_bytes,
            prompt_tokens = self.usage.map(|u| u.prompt_tokens),
            completion_tokens = self.usage.map(|u| u.completion_tokens),
            cost_usd = cost,
            route = %LogSafe(route),
            cache = matches!(self.cache, CacheStatus::Hit | CacheStatus::Miss)
                .then(|| self.cache.as_str()),
            fit = self.fit.as_deref().map(LogSafe).map(tracing::field::display),
            error = error.map(LogSafe).map(tracing::field::display),
            message = %LogSafe(&message),
        );
    }

    /// Metrics: labels only from what the config knows.
    fn observe(&self, gateway: &Gateway, latency: Duration, cost: Option<f64>) {
        let metrics = &gateway.metrics;
        let model = if self.model_known {
            self.model.as_str()
        } else {
            "(unknown)"
        };
        let provider = self.target.as_ref().map_or("", |t| t.provider.as_str());
        metrics
            .requests
            .with_label_values(&[model, provider, status_class(self.status())])
            .inc();
        if !matches!(self.outcome, Outcome::Served) {
            metrics
                .outcomes
                .with_label_values(&[self.outcome_label()])
                .inc();
        }
        if self.cache != CacheStatus::Off {
            metrics
                .cache
                .with_label_values(&[self.cache.as_str()])
                .inc();
        }
        metrics
            .duration
            .with_label_values(&[model, provider])
            .observe(latency.as_secs_f64());
        if let Some(ttft) = self.ttft {
            metrics
                .ttft
                .with_label_values(&[model, provider])
                .observe(ttft.as_secs_f64());
        }
        if let Some(usage) = self.usage {
            metrics
                .tokens
                .with_label_values(&[model, provider, "prompt"])
                .inc_by(u64::from(usage.prompt_tokens));
            metrics
                .tokens
                .with_label_values(&[model, provider, "completion"])
                .inc_by(u64::from(usage.completion_tokens));
        }
        if self.operation == Operation::Embeddings && matches!(self.outcome, Outcome::Served) {
            metrics
                .embedding_inputs
                .with_label_values(&[model, provider])
                .inc_by(self.messages as u64);
        }
        if let Some(cost) = cost {
            metrics
                .cost
                .with_label_values(&[model, provider])
                .inc_by(cost);
        }
    }
}

/// A text field of a log line with its control characters escaped (`\n`, `\r`, `\t`,
/// `\u{1b}`): a model name, key name or upstream message with a line break in it (a valid
/// JSON escape in a client's request) cannot forge a log line or a field on a new one.
/// Printable text, the usual case, is written through unchanged.
pub struct LogSafe<'a>(pub &'a str);

impl std::fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        let text = self.0;
        if !text.chars().any(char::is_control) {
            return f.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
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

impl Drop for RequestRecord {
    fn drop(&mut self) {
        let Some(FinishGuard(gateway)) = self.guard.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let blank = RequestRecord::start(String::new(), None, self.started);
        let mut left = std::mem::replace(self, blank);
        left.outcome = Outcome::ClientClosed;
        runtime.spawn(async move { left.finish(&gateway).await });
    }
}
