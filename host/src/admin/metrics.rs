//! `GET /admin/metrics`: Prometheus text — per target the share of its daily free allowance
//! used, in-flight requests, error rate and health; per plugin calls and faults; requests
//! finished, by outcome.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use hyper::Response;
use hyper::StatusCode;

use crate::http::{ResponseBody, full_body, response};
use crate::metrics::sync_counter;
use crate::pipeline::{Gateway, Snapshot};

/// Prometheus text: per-target live state (share of the daily allowance used, in-flight,
/// error rate, health) and per-plugin calls and faults.
pub async fn render(gateway: &Gateway, snapshot: &Snapshot) -> Response<ResponseBody> {
    let now = Instant::now();
    let mut rows = Vec::new();
    for target in gateway.targets.all() {
        let limits = snapshot
            .config
            .providers
            .get(&target.provider)
            .map(|p| p.limits(&target.model))
            .unwrap_or_default();
        let label = format!(
            "provider=\"{}\",model=\"{}\"",
            target.provider,
            target.model.replace('"', "'")
        );
        rows.push((label, gateway.targets.view(&target, limits, now).await));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP freeway_quota_used_ratio Share of the daily free allowance used (catalog rpd/tpd)."
    );
    let _ = writeln!(out, "# TYPE freeway_quota_used_ratio gauge");
    for (label, view) in &rows {
        if let Some(used) = view.quota_used {
            let _ = writeln!(out, "freeway_quota_used_ratio{{{label}}} {used}");
        }
    }
    let _ = writeln!(out, "# TYPE freeway_target_in_flight gauge");
    for (label, view) in &rows {
        let _ = writeln!(
            out,
            "freeway_target_in_flight{{{label}}} {}",
            view.in_flight
        );
    }
    let _ = writeln!(out, "# TYPE freeway_target_error_rate gauge");
    for (label, view) in &rows {
        let _ = writeln!(
            out,
            "freeway_target_error_rate{{{label}}} {}",
            view.error_rate
        );
    }
    let _ = writeln!(out, "# TYPE freeway_target_healthy gauge");
    for (label, view) in &rows {
        let _ = writeln!(
            out,
            "freeway_target_healthy{{{label}}} {}",
            u8::from(view.healthy)
        );
    }
    let _ = writeln!(out, "# TYPE freeway_plugin_calls_total counter");
    for p in snapshot.plugins.plugins.values() {
        let _ = writeln!(
            out,
            "freeway_plugin_calls_total{{plugin=\"{}\"}} {}",
            p.name,
            p.stats.calls.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(out, "# TYPE freeway_plugin_faults_total counter");
    for p in snapshot.plugins.plugins.values() {
        let _ = writeln!(
            out,
            "freeway_plugin_faults_total{{plugin=\"{}\"}} {}",
            p.name,
            p.stats.faults.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(out, "# TYPE freeway_plugin_quarantined gauge");
    for p in snapshot.plugins.plugins.values() {
        let _ = writeln!(
            out,
            "freeway_plugin_quarantined{{plugin=\"{}\"}} {}",
            p.name,
            u8::from(p.quarantine.check().is_err())
        );
    }
    response(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        full_body(Bytes::from(out)),
    )
}

/// `GET /metrics`: the `prometheus` registry, with the gauges that describe the present
/// (targets, plugins, the ledger's queue) filled in now.
pub async fn render_prometheus(gateway: &Gateway, snapshot: &Snapshot) -> Response<ResponseBody> {
    let metrics = &gateway.metrics;
    let now = Instant::now();
    for target in gateway.targets.all() {
        let limits = snapshot
            .config
            .providers
            .get(&target.provider)
            .map(|p| p.limits(&target.model))
            .unwrap_or_default();
        let view = gateway.targets.view(&target, limits, now).await;
        let labels = [target.provider.as_str(), target.model.as_str()];
        metrics
            .target_cooldown
            .with_label_values(&labels)
            .set(view.cooldown.map_or(0.0, |d| d.as_secs_f64()));
        metrics
            .target_breaker_open
            .with_label_values(&labels)
            .set(if view.healthy { 0.0 } else { 1.0 });
        metrics
            .target_in_flight
            .with_label_values(&labels)
            .set(f64::from(view.in_flight));
        if let Some(remaining) = view.remaining_requests {
            metrics
                .target_remaining_requests
                .with_label_values(&labels)
                .set(remaining as f64);
        }
        if let Some(remaining) = view.remaining_tokens {
            metrics
                .target_remaining_tokens
                .with_label_values(&labels)
                .set(remaining as f64);
        }
        if let Some(used) = view.quota_used {
            metrics
                .quota_used
                .with_label_values(&labels)
                .set(f64::from(used));
        }
    }
    for plugin in snapshot.plugins.plugins.values() {
        let labels = [plugin.name.as_str()];
        sync_counter(
            &metrics.plugin_calls,
            &labels,
            plugin.stats.calls.load(Ordering::Relaxed),
        );
        sync_counter(
            &metrics.plugin_faults,
            &labels,
            plugin.stats.faults.load(Ordering::Relaxed),
        );
        sync_counter(
            &metrics.plugin_quarantines,
            &labels,
            plugin.quarantine.times.load(Ordering::Relaxed),
        );
        metrics.plugin_quarantined.with_label_values(&labels).set(
            if plugin.quarantine.check().is_err() {
                1.0
            } else {
                0.0
            },
        );
    }
    let ledger = &gateway.ledger.stats;
    metrics
        .ledger_queue_depth
        .set(ledger.queued.load(Ordering::Relaxed).max(0));
    for (counter, total) in [
        (&metrics.ledger_written, &ledger.written),
        (&metrics.ledger_dropped, &ledger.dropped),
    ] {
        let total = total.load(Ordering::Relaxed);
        counter.inc_by(total.saturating_sub(counter.get()));
    }
    if let Some(link) = &gateway.redis {
        metrics.redis_up.set(i64::from(link.is_up()));
        let fallbacks = link.fallbacks.load(Ordering::Relaxed);
        metrics
            .redis_fallbacks
            .inc_by(fallbacks.saturating_sub(metrics.redis_fallbacks.get()));
    }
    response(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        full_body(Bytes::from(metrics.render())),
    )
}
