//! Health checks: for providers that configure `health_check`, a trivial prompt is sent to each
//! listed model every `interval_ms`, through the provider's own adapter and the shared client.
//! A target that fails (error, timeout, or slower than `max_latency_ms`) leaves the pool —
//! requests skip it without a network call — until a later check passes.
//!
//! A probe spends the upstream's free-tier quota like a request, so it takes from the target's
//! token buckets; when a limit is reached the probe waits for the next interval instead.
//!
//! One task serves every provider; it reads the live config snapshot on each tick, so a reload
//! that adds, changes or removes a health check takes effect without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{HealthCheckSpec, Provider, TargetRef};
use crate::upstream::Attempt;

use super::{Gateway, Snapshot};

const TICK: Duration = Duration::from_millis(100);

/// The longest answer a probe asks for.
const PROBE_MAX_TOKENS: u64 = 5;

pub fn spawn(gateway: Arc<Gateway>) {
    tokio::spawn(async move {
        let mut next_due: HashMap<TargetRef, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let snapshot = gateway.snapshot.load_full();
            let now = Instant::now();
            for provider in snapshot.config.providers.values() {
                let Some(spec) = provider
                    .health_check
                    .as_ref()
                    .filter(|_| provider.disabled.is_none())
                else {
                    continue;
                };
                for model in &spec.models {
                    let target = TargetRef {
                        provider: provider.name.clone(),
                        model: model.clone(),
                    };
                    let due = next_due.entry(target.clone()).or_insert(now);
                    if *due > now {
                        continue;
                    }
                    *due = now + spec.interval;
                    let (gateway, snapshot) = (gateway.clone(), snapshot.clone());
                    let (provider, spec) = (provider.clone(), spec.clone());
                    tokio::spawn(async move {
                        check(&gateway, &snapshot, provider, target, &spec).await
                    });
                }
            }
        }
    });
}

async fn check(
    gateway: &Gateway,
    snapshot: &Snapshot,
    mut provider: Provider,
    target: TargetRef,
    spec: &HealthCheckSpec,
) {
    let Some(adapter) = snapshot.plugins.get(&provider.adapter) else {
        return;
    };
    provider.timeout = spec.timeout;
    let body = serde_json::json!({
        "model": target.model,
        "messages": [{"role": "user", "content": spec.prompt}],
        "max_tokens": PROBE_MAX_TOKENS,
    })
    .to_string();
    // Estimated like a request: prompt characters / 4, plus the answer it allows.
    let estimate = spec.prompt.len() as u64 / 4 + PROBE_MAX_TOKENS;
    let limits = provider.limits(&target.model);
    if let Err((limit, wait)) = gateway
        .targets
        .take_for_probe(&target, limits, estimate, Instant::now())
        .await
    {
        tracing::debug!(target = %target, "health check skipped: its {limit} limit is reached, frees in {}s", wait.as_secs().max(1));
        return;
    }
    let started = Instant::now();
    let attempt = Attempt {
        upstream: &gateway.upstream,
        targets: &gateway.targets,
        adapter,
        provider: &provider,
        target: &target,
        deadline: tokio::time::Instant::now() + spec.timeout,
        max_response_bytes: snapshot.config.deadlines.max_response_bytes,
        // Probes carry no client's text.
        tenant: crate::plugins::Tenant::ANONYMOUS,
    };
    let verdict = match attempt.json(&body).await {
        Ok(_) => {
            let took = started.elapsed();
            spec.max_latency.filter(|max| took > *max).map(|max| {
                format!(
                    "answered in {} ms, over its limit of {} ms",
                    took.as_millis(),
                    max.as_millis()
                )
            })
        }
        Err(error) => Some(error.summary()),
    };
    if gateway
        .targets
        .local(&target)
        .record_health(verdict.clone())
    {
        match verdict {
            Some(why) => {
                tracing::warn!(target = %target, "health check failed, target leaves the pool: {why}")
            }
            None => {
                tracing::info!(target = %target, "health check passed, target is back in the pool")
            }
        }
    }
}
