//! `GET /admin/targets`: every provider and target as the dashboard shows them — whether the
//! provider is enabled (and why not), each target's verdict (serving, cooling down, breaker
//! open, key refused, failing its health check) with when it ends, what is left of its
//! published limits, latency and error rate.
//!
//! Times that end are given as wall-clock instants (`*_until_ms`), not durations: the view
//! then stays the same while nothing changes (the live feed sends it only when it changes),
//! and the browser counts down by itself.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::config::TargetRef;
use crate::http::{ResponseBody, json_response};
use crate::pipeline::{Gateway, Snapshot};
use crate::state::{QUOTA_WARNING, Refusal};

fn until_ms(now: SystemTime, left: Duration) -> u64 {
    (now + left)
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Targets the config routes to (each with the public models that use it), then any other
/// target that served a request (addressed as `provider/model`), sorted.
fn known_targets(gateway: &Gateway, snapshot: &Snapshot) -> BTreeMap<TargetRef, Vec<String>> {
    let mut targets: BTreeMap<TargetRef, Vec<String>> = BTreeMap::new();
    for (name, model) in &snapshot.config.models {
        for target in &model.targets {
            targets
                .entry(target.clone())
                .or_default()
                .push(name.clone());
        }
    }
    for target in gateway.targets.all() {
        if snapshot.config.providers.contains_key(&target.provider) {
            targets.entry(target).or_default();
        }
    }
    targets
}

/// The providers and targets view (also what the live feed sends as `targets`).
pub async fn view(gateway: &Gateway, snapshot: &Snapshot) -> Value {
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut rows = Vec::new();
    for (target, models) in known_targets(gateway, snapshot) {
        let Some(provider) = snapshot.config.providers.get(&target.provider) else {
            continue;
        };
        let limits = provider.limits(&target.model);
        let view = gateway.targets.view(&target, limits, now).await;
        let refusal = gateway.targets.refusal(&target, now).await;
        let (state, reason, until) = match (&provider.disabled, refusal) {
            (Some(why), _) => ("disabled", Some(why.clone()), None),
            (None, None) => ("serving", None, None),
            (None, Some(Refusal::Cooling(left))) => (
                "cooling",
                Some("the upstream asked to wait (429 or an exhausted quota)".to_string()),
                Some(until_ms(wall, left)),
            ),
            (None, Some(Refusal::OverLimit(limit, left))) => (
                "over-limit",
                Some(format!("{limit} limit reached")),
                Some(until_ms(wall, left)),
            ),
            (None, Some(Refusal::BreakerOpen(left))) => (
                "breaker-open",
                Some("circuit open after repeated failures".to_string()),
                Some(until_ms(wall, left)),
            ),
            (None, Some(Refusal::KeyRefused)) => (
                "key-refused",
                Some("the provider refused its API key; fix it and reload".to_string()),
                None,
            ),
            (None, Some(Refusal::Unhealthy(why))) => {
                ("unhealthy", Some(format!("health check: {why}")), None)
            }
        };
        rows.push(json!({
            "provider": target.provider,
            "model": target.model,
            "used_by": models,
            "state": state,
            "reason": reason,
            "until_ms": until,
            "healthy": view.healthy,
            "in_flight": view.in_flight,
            "latency_ms": view.latency_ms,
            "ttft_ms": view.ttft_ms,
            "error_rate": view.error_rate,
            "remaining_requests": view.remaining_requests,
            "remaining_tokens": view.remaining_tokens,
            "quota_used": view.quota_used,
            "quota_warning": view.quota_used.is_some_and(|u| u >= QUOTA_WARNING),
            "limits": {"rpm": limits.rpm, "rpd": limits.rpd, "tpm": limits.tpm, "tpd": limits.tpd},
        }));
    }
    let providers: Vec<Value> = snapshot
        .config
        .providers
        .values()
        .map(|p| {
            json!({
                "name": p.name,
                "adapter": p.adapter,
                "enabled": p.disabled.is_none(),
                "disabled_reason": p.disabled,
                "models": p.models.len(),
            })
        })
        .collect();
    json!({
        "quota_warning": QUOTA_WARNING,
        "targets": rows,
        "providers": providers,
    })
}

pub async fn handle(gateway: &Gateway, snapshot: &Snapshot) -> Response<ResponseBody> {
    json_response(StatusCode::OK, &view(gateway, snapshot).await)
}
