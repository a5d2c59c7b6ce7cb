//! A judging router's question (cascades): before the router orders the targets, a router that
//! exports `judging` says what to ask a judge model about the request; the gateway asks it
//! through itself (a side call of the same key, under the question's own deadline and within
//! the request's), hands the verdict — or why there is none — back to the router's `decide`,
//! and passes the label it returns to `route` as the metadata entry `judgement`. The route
//! explanation starts with what the judge decided. No wasm instance is held while the judge
//! answers, and a side call is never judged itself.

use std::sync::Arc;
use std::time::Duration;

use crate::plugin_call;
use crate::plugins::Plugin;
use crate::plugins::bindings::judging;

use super::Gateway;
use super::context::RequestContext;
use super::route_log::RouteLog;
use super::side_call::SideCall;

/// The metadata key under which `route` receives the judgement's label.
pub const JUDGEMENT_KEY: &str = "judgement";

impl Gateway {
    /// The label a judging router makes of its judge's verdict on this request, or `None`
    /// when the router does not judge (or this request is itself a side call). An error is
    /// the router's own failure (an error or a fault), handled like one in `route`.
    pub(super) async fn judgement(
        self: &Arc<Self>,
        router: &Arc<Plugin>,
        settings: &str,
        ctx: &RequestContext,
        body: &str,
        log: &mut RouteLog,
    ) -> Result<Option<String>, String> {
        if !router.judges() || ctx.side_call.is_some() {
            return Ok(None);
        }
        let mut lease = router.lease().await.map_err(|f| f.to_string())?;
        let question = plugin_call!(lease, "ask", |store, b| b
            .judging()
            .ok_or_else(|| wasmtime::Error::msg("this router does not judge"))?
            .call_ask(store, &ctx.info.model, body, settings)
            .await)
        .map_err(|f| f.to_string())?
        .map_err(|e| format!("router '{}' returned an error: {}", router.name, e.message))?;
        drop(lease);
        let Some(question) = question else {
            return Ok(None);
        };
        let left = ctx
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let wait = Duration::from_millis(u64::from(question.timeout_ms.max(1))).min(left);
        let (verdict, how) = match self
            .side_call(ctx, SideCall::Judge, &question.model, &question.body, wait)
            .await
        {
            Ok(answer) => (
                judging::Verdict::Answer(answer.text.to_string()),
                if answer.cached {
                    "cached verdict".to_string()
                } else {
                    format!("{} ms", answer.took.as_millis())
                },
            ),
            Err(why) => (judging::Verdict::Failed(why.clone()), why),
        };
        let mut lease = router.lease().await.map_err(|f| f.to_string())?;
        let judgement = plugin_call!(lease, "decide", |store, b| b
            .judging()
            .ok_or_else(|| wasmtime::Error::msg("this router does not judge"))?
            .call_decide(store, &verdict, settings)
            .await)
        .map_err(|f| f.to_string())?
        .map_err(|e| format!("router '{}' returned an error: {}", router.name, e.message))?;
        log.note(format!(
            "judge {}: {} ({how})",
            question.model, judgement.explanation
        ));
        Ok(Some(judgement.label))
    }
}
