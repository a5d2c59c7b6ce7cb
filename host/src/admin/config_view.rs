//! `GET /admin/config`'s view of the running config, with anything that may be a secret
//! replaced by "***": keys are never in it (only the names of their variables), settings whose
//! names look secret, URL query strings and userinfo, and every value `${VAR}` expanded to.

use serde_json::{Value, json};

use crate::config::Config;

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
        "store": match &config.store {
            crate::config::StorePath::Sqlite(path) => json!(path.display().to_string()),
            crate::config::StorePath::Memory => json!("memory"),
        },
        "ledger": {"enabled": config.ledger.enabled, "queue": config.ledger.queue},
        "telemetry": {
            "otlp_endpoint": config.telemetry.otlp_endpoint.as_deref().map(mask_url),
            "service_name": config.telemetry.service_name,
            // Header values are credentials: only their names are shown.
            "headers": config.telemetry.headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
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
