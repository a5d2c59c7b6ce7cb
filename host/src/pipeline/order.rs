//! Which targets to try, in which order: the model's targets minus those that are disabled,
//! cannot serve this request, or may not see it (trusted-only labels), ordered by the model's
//! router plugin with every candidate's live state as input (and, for a router that judges,
//! its judge's verdict: see `judge`).

use std::sync::Arc;
use std::time::Instant;

use crate::config::{ContextFit, OnRouterError, TargetRef};
use crate::error::GatewayError;
use crate::plugin_call;
use crate::plugins::bindings::policy;

use super::context::RequestContext;
use super::judge::JUDGEMENT_KEY;
use super::resolve::{Route, candidate_tags, incapability};
use super::route_log::{RouteLog, RouteOutcome};
use super::{Gateway, Snapshot};

impl Gateway {
    /// Enabled targets in the order the model's router chooses.
    pub(super) async fn order_targets(
        self: &Arc<Self>,
        snapshot: &Snapshot,
        route: &Route<'_>,
        ctx: &RequestContext,
        body: &str,
        log: &mut RouteLog,
    ) -> Result<Vec<TargetRef>, GatewayError> {
        let config = &snapshot.config;
        let now = Instant::now();
        let mut enabled = Vec::with_capacity(route.targets.len());
        let sensitive = ctx.trusted_only_tag(config);
        let fitted = matches!(route.context_fit, ContextFit::Plugin { .. });
        for target in &route.targets {
            let Some(provider) = config.providers.get(&target.provider) else {
                log.push(
                    target,
                    RouteOutcome::Skipped("provider not configured".into()),
                );
                continue;
            };
            let adapter_embeds = snapshot
                .plugins
                .get(&provider.adapter)
                .is_some_and(|adapter| adapter.embeds);
            match (
                &provider.disabled,
                incapability(provider, target, &ctx.info, adapter_embeds, fitted).or_else(|| {
                    over_input_cap(route.max_input_tokens, fitted, ctx.info.prompt_tokens)
                }),
            ) {
                (Some(why), _) => log.push(
                    target,
                    RouteOutcome::Skipped(format!("provider disabled: {why}")),
                ),
                (None, Some(why)) => log.push(target, RouteOutcome::Incapable(why)),
                (None, None) if sensitive.is_some() && !provider.trusted => log.push(
                    target,
                    RouteOutcome::Incapable(format!(
                        "the request is labelled '{}' and provider '{}' is not trusted with sensitive data",
                        sensitive.map(String::as_str).unwrap_or_default(),
                        provider.name
                    )),
                ),
                (None, None) => enabled.push(target.clone()),
            }
        }
        if enabled.is_empty() {
            return Ok(enabled);
        }
        let Some(router) = snapshot.plugins.get(route.router) else {
            tracing::warn!(
                router = route.router,
                "router plugin not loaded; using configured order"
            );
            return Ok(enabled);
        };
        let mut candidates: Vec<policy::Candidate> = Vec::with_capacity(enabled.len());
        for (i, target) in enabled.iter().enumerate() {
            let provider = config.providers.get(&target.provider);
            let limits = provider
                .map(|p| p.limits(&target.model))
                .unwrap_or_default();
            let view = self.targets.view(target, limits, now).await;
            let info = provider.and_then(|p| p.model_info.get(&target.model));
            candidates.push(policy::Candidate {
                id: i as u32,
                provider: target.provider.clone(),
                model: target.model.clone(),
                healthy: view.healthy,
                cooldown_ms: view.cooldown.map_or(0, |d| d.as_millis() as u64),
                remaining_requests: view.remaining_requests,
                remaining_tokens: view.remaining_tokens,
                quota_used: view.quota_used,
                in_flight: view.in_flight,
                latency_ms: view.latency_ms,
                ttft_ms: view.ttft_ms,
                error_rate: view.error_rate,
                input_price: info.and_then(|i| i.input_price).unwrap_or(0.0),
                output_price: info.and_then(|i| i.output_price).unwrap_or(0.0),
                context_window: info.and_then(|i| i.context_window),
                weight: 1,
                tags: provider.map(candidate_tags).unwrap_or_default(),
            });
        }
        let mut metadata = ctx.info.metadata.clone();
        match self
            .judgement(router, route.router_settings, ctx, body, log)
            .await
        {
            Ok(None) => {}
            Ok(Some(label)) => {
                metadata.retain(|(key, _)| key != JUDGEMENT_KEY);
                metadata.push((JUDGEMENT_KEY.to_string(), label));
            }
            Err(why) => return router_failed(ctx, route, enabled, why),
        }
        let request = policy::RequestInfo {
            model: ctx.info.model.clone(),
            prompt_tokens: ctx.info.prompt_tokens,
            max_tokens: ctx.info.max_tokens,
            stream: ctx.info.stream,
            has_tools: ctx.info.has_tools,
            has_images: ctx.info.has_images,
            tags: ctx.tags.clone(),
            metadata,
            session: ctx.session.clone(),
        };
        let ordered = match router.lease_for(ctx.tenant()).await {
            Ok(mut lease) => plugin_call!(lease, "route", |store, b| b
                .policy()?
                .call_route(store, &request, &candidates, route.router_settings)
                .await),
            Err(fault) => Err(fault),
        };
        let ids = match ordered {
            Ok(Ok(ids)) => ids,
            Ok(Err(error)) => {
                let why = format!(
                    "router '{}' returned an error: {}",
                    route.router, error.message
                );
                return router_failed(ctx, route, enabled, why);
            }
            Err(fault) => return router_failed(ctx, route, enabled, fault.to_string()),
        };
        let mut seen = vec![false; enabled.len()];
        let mut order = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(slot) = seen.get_mut(id as usize)
                && !*slot
            {
                *slot = true;
                order.push(enabled[id as usize].clone());
            }
        }
        for (i, target) in enabled.iter().enumerate() {
            if seen[i] {
                continue;
            }
            let outcome = match self.targets.refusal(target, now).await {
                Some(refusal) => RouteOutcome::from(refusal),
                None => RouteOutcome::Skipped(format!("not chosen by router '{}'", route.router)),
            };
            log.push(target, outcome);
        }
        Ok(order)
    }
}

/// Without a fitter, a prompt over the model's `max_input_tokens` is refused like one over a
/// context window.
fn over_input_cap(cap: Option<u32>, fitted: bool, prompt_tokens: u32) -> Option<String> {
    let cap = cap.filter(|_| !fitted)?;
    (prompt_tokens > cap).then(|| {
        format!("the prompt needs about {prompt_tokens} tokens, over the model's max_input_tokens of {cap}")
    })
}

/// A router that errs or faults fails the request closed by default: routers may carry
/// policy (budgets, trusted-only groups) that the configured order would ignore. Models
/// whose router only reorders can choose `on_router_error = "configured-order"`.
fn router_failed(
    ctx: &RequestContext,
    route: &Route<'_>,
    enabled: Vec<TargetRef>,
    why: String,
) -> Result<Vec<TargetRef>, GatewayError> {
    let request_id = &ctx.record.id;
    match route.on_router_error {
        OnRouterError::ConfiguredOrder => {
            tracing::warn!(%request_id, router = route.router, "{why}; using the configured order");
            Ok(enabled)
        }
        OnRouterError::Fail => {
            tracing::warn!(%request_id, router = route.router, "{why}; request refused");
            Err(GatewayError::plugin(format!(
                "model '{}' cannot be routed: {why}",
                ctx.info.model
            )))
        }
    }
}
