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
    let _ = writeln!(out, "# TYPE freeway_requests_total counter");
    for (outcome, count) in gateway.requests.snapshot() {
        let _ = writeln!(
            out,
            "freeway_requests_total{{outcome=\"{outcome}\"}} {count}"
        );
    }
    response(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        full_body(Bytes::from(out)),
    )
}
