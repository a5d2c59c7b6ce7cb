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
//!
//! Served on `admin.listen` (its own listener), and on the public one only with
//! `admin.on_public_listener = true`. With `admin.api_key_env` set, every admin request needs
//! `Authorization: Bearer <key>`.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::config::Config;
use crate::openai::ApiError;
use crate::pipeline::{Gateway, error_response};
use crate::reload::Reloader;
use crate::server::{ResponseBody, full_body};

pub async fn handle(
    gateway: &Gateway,
    reloader: &Reloader,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let snapshot = gateway.snapshot.load_full();
    if let Some(key) = &snapshot.config.admin.key {
        let presented = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), key.expose().as_bytes())) {
            let error = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_admin_key",
                "admin routes need `Authorization: Bearer <admin key>`",
            );
            return error_response(&error, "admin");
        }
    }
    match (request.method(), request.uri().path().trim_end_matches('/')) {
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
                &json!({"plugins": plugins, "rejected": rejected}),
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
        (&Method::GET, "/admin/metrics") => metrics(gateway, &snapshot),
        (&Method::POST, "/admin/reload") => match reloader.reload("admin request").await {
            Ok(message) => json_response(
                StatusCode::OK,
                &json!({"status": "reloaded", "message": message}),
            ),
            Err(message) => {
                let error = ApiError::new(
                    StatusCode::CONFLICT,
                    "reload_refused",
                    format!("reload refused, the previous version keeps serving: {message}"),
                );
                error_response(&error, "admin")
            }
        },
        (_, "/admin/plugins" | "/admin/config" | "/admin/reload" | "/admin/metrics") => {
            let error = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!(
                    "{} is not allowed on {}",
                    request.method(),
                    request.uri().path()
                ),
            );
            error_response(&error, "admin")
        }
        _ => {
            let error = ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_url",
                format!(
                    "unknown admin URL: {} {}",
                    request.method(),
                    request.uri().path()
                ),
            );
            error_response(&error, "admin")
        }
    }
}

/// Prometheus text: per-target live state (share of the daily allowance used, in-flight,
/// error rate, health) and per-plugin calls and faults.
fn metrics(gateway: &Gateway, snapshot: &crate::pipeline::Snapshot) -> Response<ResponseBody> {
    use std::fmt::Write as _;
    let now = std::time::Instant::now();
    let mut rows = Vec::new();
    for (target, state) in gateway.targets.all() {
        let limits = snapshot
            .config
            .providers
            .get(&target.provider)
            .and_then(|p| p.model_info.get(&target.model))
            .map(|m| crate::routing::Limits {
                rpm: m.rpm,
                rpd: m.rpd,
                tpm: m.tpm,
                tpd: m.tpd,
            })
            .unwrap_or_default();
        let label = format!(
            "provider=\"{}\",model=\"{}\"",
            target.provider,
            target.model.replace('"', "'")
        );
        rows.push((label, state.view(now, limits)));
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
    let mut response = Response::new(full_body(Bytes::from(out)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_response(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let mut response = Response::new(full_body(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The config as the gateway runs it, with anything that may be a secret replaced by "***":
/// keys themselves are never in it (only the names of their variables), but `${VAR}`
/// expansion can put a secret into settings or a URL.
pub fn masked_config(config: &Config) -> Value {
    let view = config_view(config);
    mask_values(view, &config.env_values)
}

/// Replace every string that contains a value read from the environment.
fn mask_values(value: Value, secrets: &[String]) -> Value {
    match value {
        Value::String(text) if secrets.iter().any(|secret| text.contains(secret.as_str())) => {
            Value::String("***".into())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, mask_values(v, secrets)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| mask_values(v, secrets)).collect())
        }
        other => other,
    }
}

fn config_view(config: &Config) -> Value {
    let settings = |json: &str| mask(serde_json::from_str(json).unwrap_or(Value::Null));
    let providers: serde_json::Map<String, Value> = config
        .providers
        .values()
        .map(|p| {
            (
                p.name.clone(),
                json!({
                    "adapter": p.adapter,
                    "base_url": mask_url(&p.base_url),
                    "api_key_env": p.api_key_env,
                    "api_key": p.api_key.as_ref().map(|_| "***"),
                    "disabled": p.disabled,
                    "models": p.models,
                    "timeout_ms": p.timeout.as_millis() as u64,
                    "stream_idle_timeout_ms": p.stream_idle_timeout.as_millis() as u64,
                    "settings": settings(&p.settings),
                    "trusted": p.trusted,
                    "tags": p.tags,
                    "log_content": p.log_content,
                }),
            )
        })
        .collect();
    let models: serde_json::Map<String, Value> = config
        .models
        .values()
        .map(|m| {
            (
                m.name.clone(),
                json!({
                    "router": m.router,
                    "settings": settings(&m.router_settings),
                    "filters": m.filters,
                    "targets": m.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "log_content": m.log_content,
                }),
            )
        })
        .collect();
    json!({
        "server": {"listen": config.listen.to_string(), "max_body_bytes": config.max_body_bytes},
        "admin": {
            "listen": config.admin.listen.map(|a| a.to_string()),
            "on_public_listener": config.admin.on_public_listener,
            "key": config.admin.key.as_ref().map(|_| "***"),
        },
        "plugins": {
            "dir": config.plugin_dir.display().to_string(),
            "cache_dir": config.cache_dir.as_ref().map(|d| d.display().to_string()),
        },
        "pipeline": {
            "filters": config.filters,
            "default_router": config.default_router,
            "settings": config.filter_settings.iter().map(|(k, v)| (k.clone(), settings(v))).collect::<serde_json::Map<_, _>>(),
        },
        "providers": providers,
        "models": models,
    })
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "authorization",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|word| name.contains(word))
}

fn mask(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if is_secret_name(&k) && !v.is_null() {
                        Value::String("***".into())
                    } else {
                        mask(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(mask).collect()),
        other => other,
    }
}

/// Query strings and userinfo of URLs may carry credentials.
fn mask_url(url: &str) -> String {
    let mut out = match url.split_once('?') {
        Some((base, _)) => format!("{base}?***"),
        None => url.to_string(),
    };
    if let Some((scheme, rest)) = out.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        out = format!("{scheme}://***@{host}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_looking_settings_and_urls() {
        let masked = mask(
            json!({"headers": {"Authorization": "Bearer sk-1", "X-Title": "Freeway"}, "api_key": "x"}),
        );
        assert_eq!(
            masked,
            json!({"headers": {"Authorization": "***", "X-Title": "Freeway"}, "api_key": "***"})
        );
        assert_eq!(
            mask_url("https://u:p@host/v1?key=abc"),
            "https://***@host/v1?***"
        );
        assert_eq!(mask_url("https://host/v1"), "https://host/v1");
    }
}
