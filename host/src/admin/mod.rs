//! The operator's API: what is loaded and running, and a way to force a reload.
//!
//! - `GET /admin/plugins`: every loaded plugin (name, kind, version, world, sha256, source file,
//!   load time, instance mode and limits, calls, faults, last error) and every refused file.
//! - `GET /admin/config`: the active config with secrets masked, its digest and load time, and
//!   the outcome of the last reload.
//! - `GET /admin/metrics`: Prometheus text — per target the share of its daily free allowance
//!   used, in-flight requests, error rate and health; per plugin calls and faults.
//! - `POST /admin/reload`: reload now; 200 with what changed, or 409 with why it was refused
//!   (the previous version keeps serving).
//! - `/admin/keys`: virtual keys (list, create, change, revoke); `GET /admin/usage`: the
//!   ledger summed by key, provider, model or day.
//! - `GET /metrics` (admin listener only): Prometheus text from the `prometheus` crate.
//! - The dashboard (`dashboard`): the page at `/admin/dashboard` and `GET /admin/session`
//!   (served without the key: they hold no data); `GET /admin/targets` (providers and
//!   targets, live state), `GET /admin/requests` (recent requests) and `GET /admin/events`
//!   (the live feed, SSE).
//!
//! Served on `admin.listen` (its own listener), and on the public one only with
//! `admin.on_public_listener = true`. With `admin.api_key_env` set, every admin request needs
//! `Authorization: Bearer <key>`.

mod config_view;
mod dashboard;
mod keys;
mod live;
mod metrics;
mod targets;
mod usage;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::api::openai::error_response;
use crate::error::GatewayError;
use crate::http::{
    BodyDeadlines, ResponseBody, bearer_token, constant_time_eq, json_response, read_body,
};
use crate::pipeline::Gateway;
use crate::reload::Reloader;

pub use config_view::masked_config;

/// The most an admin request body (a key's JSON) may hold.
const MAX_ADMIN_BODY: usize = 64 * 1024;

pub async fn handle(
    gateway: &Arc<Gateway>,
    reloader: &Arc<Reloader>,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let snapshot = gateway.snapshot.load_full();
    if request.method() == Method::GET {
        let path = request.uri().path().trim_end_matches('/');
        if let Some(page) = dashboard::asset(path) {
            return page;
        }
        if path == "/admin/session" {
            return dashboard::session(&snapshot, request.headers());
        }
    }
    if let Some(key) = &snapshot.config.admin.key {
        let presented = bearer_token(request.headers());
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), key.expose().as_bytes())) {
            return error_response(&GatewayError::InvalidAdminKey, "admin");
        }
    }
    let path = request.uri().path().trim_end_matches('/').to_string();
    if path == "/admin/keys" || path.starts_with("/admin/keys/") {
        let name = path.strip_prefix("/admin/keys/").map(str::to_string);
        let method = request.method().clone();
        let (parts, body) = request.into_parts();
        let deadlines = BodyDeadlines {
            total: snapshot.config.deadlines.body_read,
            idle: snapshot.config.deadlines.body_idle,
        };
        let body = match read_body(&parts.headers, body, MAX_ADMIN_BODY, deadlines).await {
            Ok(body) => body,
            Err(error) => return error_response(&error, "admin"),
        };
        return keys::handle(gateway, &method, name.as_deref(), body).await;
    }
    match (request.method(), path.as_str()) {
        (&Method::GET, "/metrics") => metrics::render_prometheus(gateway, &snapshot).await,
        (&Method::GET, "/admin/usage") => usage::handle(gateway, request.uri().query()).await,
        (&Method::GET, "/admin/targets") => targets::handle(gateway, &snapshot).await,
        (&Method::GET, "/admin/requests") => live::recent_requests(gateway),
        (&Method::GET, "/admin/events") => live::subscribe(gateway),
        (&Method::GET, "/admin/state") => {
            let redis = gateway.redis.as_ref();
            let (cached_answers, cached_bytes) = gateway.cache.local_size();
            json_response(
                StatusCode::OK,
                &json!({
                    "cache": {
                        "enabled": snapshot.config.cache.enabled,
                        "answers_here": cached_answers,
                        "bytes_here": cached_bytes,
                    },
                    "backend": if redis.is_some() { "redis" } else { "memory" },
                    "redis": redis.map(|l| if l.is_up() { "up" } else { "down" }),
                    "redis_url": redis.map(|l| l.url_masked.clone()),
                    "fallbacks": redis.map_or(0, |l| l.fallbacks.load(Ordering::Relaxed)),
                }),
            )
        }
        (&Method::GET, "/admin/plugins") => {
            let plugins: Vec<Value> = snapshot
                .plugins
                .plugins
                .values()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "kind": p.world.as_str(),
                        "version": p.version,
                        "description": p.description,
                        "world": format!(
                            "freeway:plugin/{}@{}",
                            p.world.as_str(),
                            crate::plugins::registry::WIT_VERSION
                        ),
                        "sha256": p.sha256,
                        "source": p.source.display().to_string(),
                        "loaded_at": unix(p.loaded_at),
                        "instances": p.limits.mode,
                        "pool_size": p.limits.pool_size,
                        "timeout_ms": p.limits.timeout.as_millis() as u64,
                        "memory_mb": p.limits.memory_bytes >> 20,
                        "calls": p.stats.calls.load(Ordering::Relaxed),
                        "faults": p.stats.faults.load(Ordering::Relaxed),
                        "last_error": p.stats.last_error.lock().ok().and_then(|e| e.clone()),
                        "quarantine": quarantine_json(&p.quarantine),
                    })
                })
                .collect();
            let rejected: Vec<Value> = snapshot
                .plugins
                .rejected
                .iter()
                .map(|r| json!({"file": r.path.display().to_string(), "sha256": r.sha256, "reason": r.reason}))
                .collect();
            json_response(
                StatusCode::OK,
                &json!({
                    "plugins": plugins,
                    "rejected": rejected,
                    "reloads": gateway
                        .feed
                        .recent_reloads()
                        .iter()
                        .map(|e| e.as_ref())
                        .collect::<Vec<&crate::events::Event>>(),
                }),
            )
        }
        (&Method::GET, "/admin/config") => {
            let last = reloader.last.lock().ok().and_then(|l| l.clone());
            json_response(
                StatusCode::OK,
                &json!({
                    "source": snapshot.config.source.display().to_string(),
                    "digest": snapshot.config.digest,
                    "loaded_at": unix(snapshot.loaded_at),
                    "last_reload": last,
                    "config": masked_config(&snapshot.config),
                }),
            )
        }
        (&Method::GET, "/admin/metrics") => metrics::render(gateway, &snapshot).await,
        (&Method::POST, release)
            if release.starts_with("/admin/plugins/") && release.ends_with("/release") =>
        {
            let name = &release["/admin/plugins/".len()..release.len() - "/release".len()];
            match snapshot.plugins.get(name) {
                Some(plugin) => {
                    let was = plugin.quarantine.release();
                    tracing::info!(plugin = %plugin.name, was_quarantined = was, "plugin released from quarantine by the operator");
                    json_response(
                        StatusCode::OK,
                        &json!({"plugin": plugin.name, "was_quarantined": was,
                                "quarantine": quarantine_json(&plugin.quarantine)}),
                    )
                }
                None => error_response(
                    &GatewayError::UnknownUrl {
                        scope: "admin",
                        method: "POST".into(),
                        path: release.to_string(),
                    },
                    "admin",
                ),
            }
        }
        (&Method::POST, "/admin/reload") => match reloader.reload("admin request").await {
            Ok(message) => json_response(
                StatusCode::OK,
                &json!({"status": "reloaded", "message": message}),
            ),
            Err(reason) => error_response(&GatewayError::ReloadRefused { reason }, "admin"),
        },
        (
            _,
            "/admin/plugins" | "/admin/config" | "/admin/reload" | "/admin/metrics"
            | "/admin/usage" | "/admin/state" | "/admin/targets" | "/admin/requests"
            | "/admin/events" | "/admin/session" | "/metrics",
        ) => {
            let error = GatewayError::MethodNotAllowed {
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
            };
            error_response(&error, "admin")
        }
        _ => {
            let error = GatewayError::UnknownUrl {
                scope: "admin",
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
            };
            error_response(&error, "admin")
        }
    }
}

/// A plugin's quarantine as the operator sees it (see `plugins::quarantine`).
fn quarantine_json(quarantine: &crate::plugins::Quarantine) -> Value {
    let view = quarantine.view();
    json!({
        "quarantined": view.left.is_some(),
        "left_ms": view.left.map(|d| d.as_millis() as u64),
        "consecutive_faults": view.consecutive_faults,
        "times": view.times,
    })
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
