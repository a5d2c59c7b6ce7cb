//! Context fitting, per target, after routing: a request over a target's room for a prompt
//! (its context window less the answer's tokens, capped by the model's `max_input_tokens`) is
//! handed to the model's fitter plugin (`context_fit`), which returns the copy that fits and
//! what it left out. A 1M-window target gets the request whole, an 8k one a trimmed copy;
//! targets with the same room share one fitting.
//!
//! A fitter that needs a model (`summarize`) answers in two phases: it says what to ask, the
//! gateway asks it through itself (a side call: bounded time, cached by what it asks), and
//! hands the answer — or its absence, when late or failed — back to the fitter, which then
//! falls back to dropping the span. A request that is itself a side call is never summarized.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ContextFit, Provider, TargetRef};
use crate::plugin_call;
use crate::plugins::bindings::fitting;

use super::canonical::inspect_chat_request;
use super::context::RequestContext;
use super::route_log::RouteOutcome;
use super::side_call::SideCall;
use super::{Gateway, Snapshot};

/// Tokens kept free for the answer when the request sets no `max_tokens`.
pub const DEFAULT_RESERVED_OUTPUT: u32 = 1024;

/// What fitting did to the body one target got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitReport {
    pub fitter: String,
    pub dropped_messages: u32,
    pub dropped_tokens: u32,
    pub truncated_messages: u32,
    pub added_messages: u32,
    /// The fitted request's estimated prompt tokens.
    pub prompt_tokens: u32,
    /// How the summary went, for a summarizing fitter ("summary 230 ms", "summary failed: …").
    pub note: Option<String>,
}

impl FitReport {
    /// The `x-freeway-fit` header and the log line's `fit` field.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}: dropped {} messages (~{} tokens)",
            self.fitter, self.dropped_messages, self.dropped_tokens
        );
        if self.truncated_messages > 0 {
            text.push_str(&format!(
                ", truncated {} in the middle",
                self.truncated_messages
            ));
        }
        if self.added_messages > 0 {
            text.push_str(&format!(", added {} summary", self.added_messages));
        }
        if let Some(note) = &self.note {
            text.push_str(&format!(" ({note})"));
        }
        text
    }
}

/// The body one target gets.
pub(super) enum FitBody {
    /// The request as the client (and filters) wrote it.
    AsIs,
    Fitted(Arc<str>, FitReport),
}

/// Fittings already done for this request, by prompt budget.
#[derive(Default)]
pub(super) struct Fits {
    by_budget: HashMap<u32, Result<(Arc<str>, FitReport), String>>,
}

/// The room a target leaves for the prompt, when it has a limit.
pub(super) fn prompt_budget(
    provider: &Provider,
    target: &TargetRef,
    max_tokens: Option<u32>,
    max_input_tokens: Option<u32>,
) -> Option<fitting::Limits> {
    let window = provider
        .model_info
        .get(&target.model)
        .and_then(|m| m.context_window);
    let reserved = max_tokens.unwrap_or(DEFAULT_RESERVED_OUTPUT);
    let by_window = window.map(|w| w.saturating_sub(reserved));
    let budget = match (by_window, max_input_tokens) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => return None,
    };
    Some(fitting::Limits {
        target: target.to_string(),
        context_window: window,
        max_input_tokens,
        reserved_output: reserved,
        budget,
    })
}

impl Gateway {
    /// The body `target` gets under the model's `context_fit`, or why it cannot get one.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fit_for(
        self: &Arc<Self>,
        snapshot: &Snapshot,
        fit: &ContextFit,
        max_input_tokens: Option<u32>,
        ctx: &RequestContext,
        provider: &Provider,
        target: &TargetRef,
        body: &str,
        fits: &mut Fits,
    ) -> Result<FitBody, RouteOutcome> {
        let ContextFit::Plugin { name, settings } = fit else {
            return Ok(FitBody::AsIs);
        };
        let Some(limits) = prompt_budget(provider, target, ctx.info.max_tokens, max_input_tokens)
        else {
            return Ok(FitBody::AsIs);
        };
        if ctx.info.prompt_tokens <= limits.budget {
            return Ok(FitBody::AsIs);
        }
        if limits.budget == 0 {
            return Err(RouteOutcome::Incapable(format!(
                "max_tokens {} leaves no room for a prompt in the context window",
                limits.reserved_output
            )));
        }
        let result = match fits.by_budget.get(&limits.budget) {
            Some(done) => done.clone(),
            None => {
                let done = self
                    .run_fitter(snapshot, name, settings, ctx, &limits, body)
                    .await;
                fits.by_budget.insert(limits.budget, done.clone());
                done
            }
        };
        match result {
            Ok((fitted, report)) => Ok(FitBody::Fitted(fitted, report)),
            Err(why) => Err(RouteOutcome::Incapable(why)),
        }
    }

    async fn run_fitter(
        self: &Arc<Self>,
        snapshot: &Snapshot,
        name: &str,
        settings: &str,
        ctx: &RequestContext,
        limits: &fitting::Limits,
        body: &str,
    ) -> Result<(Arc<str>, FitReport), String> {
        let plugin = snapshot
            .plugins
            .get(name)
            .ok_or_else(|| format!("fitter '{name}' is not loaded"))?;
        let mut lease = plugin.lease().await.map_err(|f| f.to_string())?;
        let outcome = plugin_call!(lease, "fit", |store, b| b
            .fitting()?
            .call_fit(store, body, limits, settings)
            .await)
        .map_err(|f| f.to_string())?
        .map_err(|e| format!("{name} cannot fit it: {}", e.message))?;
        // No instance is held across a model call.
        drop(lease);
        let (fitted, note) = match outcome {
            fitting::FitOutcome::Fitted(fitted) => (fitted, None),
            fitting::FitOutcome::Ask(call) => {
                let (answer, note) = if ctx.side_call.is_some() {
                    (
                        None,
                        "not summarized: this is itself a side call".to_string(),
                    )
                } else {
                    let wait = Duration::from_millis(u64::from(call.timeout_ms.max(1)));
                    match self
                        .side_call(ctx, SideCall::Summary, &call.model, &call.body, wait)
                        .await
                    {
                        Ok(answer) => {
                            let note = if answer.cached {
                                format!("summary by {}, cached", call.model)
                            } else {
                                format!(
                                    "summary by {} in {} ms",
                                    call.model,
                                    answer.took.as_millis()
                                )
                            };
                            (Some(answer.text.to_string()), note)
                        }
                        Err(why) => (
                            None,
                            format!(
                                "summary by {} failed, middle-out instead: {why}",
                                call.model
                            ),
                        ),
                    }
                };
                let mut lease = plugin.lease().await.map_err(|f| f.to_string())?;
                let fitted = plugin_call!(lease, "complete", |store, b| b
                    .fitting()?
                    .call_complete(
                        store,
                        body,
                        limits,
                        settings,
                        &call.state,
                        answer.as_deref()
                    )
                    .await)
                .map_err(|f| f.to_string())?
                .map_err(|e| format!("{name} cannot fit it: {}", e.message))?;
                (fitted, Some(note))
            }
        };
        // What the fitter returns is checked like a filter's rewrite, and must now fit.
        let info = inspect_chat_request(fitted.body.as_bytes())
            .map_err(|e| format!("fitter '{name}' returned a request that is not valid: {e}"))?;
        if info.prompt_tokens > limits.budget {
            return Err(format!(
                "{name} could not fit it: about {} prompt tokens remain over a budget of {}",
                info.prompt_tokens, limits.budget
            ));
        }
        let report = FitReport {
            fitter: name.to_string(),
            dropped_messages: fitted.dropped_messages,
            dropped_tokens: fitted.dropped_tokens,
            truncated_messages: fitted.truncated_messages,
            added_messages: fitted.added_messages,
            prompt_tokens: info.prompt_tokens,
            note,
        };
        Ok((Arc::from(fitted.body), report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_says_what_was_left_out() {
        let report = FitReport {
            fitter: "middle-out".into(),
            dropped_messages: 12,
            dropped_tokens: 3400,
            truncated_messages: 1,
            added_messages: 0,
            prompt_tokens: 900,
            note: None,
        };
        assert_eq!(
            report.describe(),
            "middle-out: dropped 12 messages (~3400 tokens), truncated 1 in the middle"
        );
    }
}
