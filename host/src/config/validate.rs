//! From the raw file to the validated [`Config`]: defaults, paths resolved against the config's
//! folder, keys read from the environment, cross-references checked. Every error names its key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sources::table_to_json;
use super::*;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The SQLite file, next to the config.
const DEFAULT_STORE: &str = "freeway.db";
const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;
const DEFAULT_PROVIDER_TIMEOUT_MS: u64 = 120_000;
const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 300_000;

fn limits(raw: &raw::Limits, base: &PluginLimits, path: &str) -> Result<PluginLimits, ConfigError> {
    let mut limits = base.clone();
    if let Some(mode) = raw.instances {
        limits.mode = mode;
    }
    if let Some(size) = raw.pool_size {
        if size == 0 || size > 256 {
            return Err(error(
                format!("{path}.pool_size"),
                "must be between 1 and 256",
            ));
        }
        limits.pool_size = size as usize;
    }
    if let Some(ms) = raw.timeout_ms {
        if ms == 0 || ms > 60_000 {
            return Err(error(
                format!("{path}.timeout_ms"),
                "must be between 1 and 60000",
            ));
        }
        limits.timeout = Duration::from_millis(ms);
    }
    if let Some(mb) = raw.memory_mb {
        if mb == 0 || mb > 1024 {
            return Err(error(
                format!("{path}.memory_mb"),
                "must be between 1 and 1024",
            ));
        }
        limits.memory_bytes = (mb as usize) << 20;
    }
    if let Some(after) = raw.quarantine_after {
        if after > 1000 {
            return Err(error(
                format!("{path}.quarantine_after"),
                "must be between 0 (never) and 1000",
            ));
        }
        limits.quarantine_after = after;
    }
    Ok(limits)
}

pub(super) fn validate(
    raw: raw::Config,
    base_dir: &Path,
    source: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let listen_text = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        error(
            "server.listen",
            format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
        )
    })?;
    let max_body = raw.server.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
    let admin = {
        let listen = match &raw.admin.listen {
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                error(
                    "admin.listen",
                    format!("{text:?} is not an address like 127.0.0.1:8081"),
                )
            })?),
            None => None,
        };
        let key = match &raw.admin.api_key_env {
            Some(var) => env(var)
                .filter(|v| !v.trim().is_empty())
                .map(|k| ApiKey(Arc::from(k.trim()))),
            None => None,
        };
        if let (Some(var), None) = (&raw.admin.api_key_env, &key) {
            return Err(error(
                "admin.api_key_env",
                format!("environment variable {var} is not set: admin routes would be open"),
            ));
        }
        Admin {
            listen,
            on_public_listener: raw.admin.on_public_listener.unwrap_or(false),
            key,
            allow_unauthenticated: raw.admin.allow_unauthenticated.unwrap_or(false),
        }
    };
    if max_body < 1024 {
        return Err(error("server.max_body_bytes", "must be at least 1024"));
    }

    let builtin = PluginLimits::builtin();
    let default_limits = limits(&raw.plugins.defaults, &builtin, "plugins.defaults")?;
    let mut limit_overrides = BTreeMap::new();
    for (name, raw_limits) in &raw.plugins.overrides {
        let merged = limits(
            raw_limits,
            &default_limits,
            &format!("plugins.overrides.{name}"),
        )?;
        limit_overrides.insert(name.clone(), merged);
    }

    let mut providers = BTreeMap::new();
    for (name, p) in raw.providers {
        let path = format!("providers.{name}");
        if name.is_empty() || name.contains('/') {
            return Err(error(
                path,
                "a provider name must be non-empty and contain no '/'",
            ));
        }
        let base_url = p.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
            || base_url.parse::<hyper::Uri>().is_err()
        {
            return Err(error(
                format!("{path}.base_url"),
                format!("{:?} is not an http(s) URL", p.base_url),
            ));
        }
        if p.models.is_empty() {
            return Err(error(format!("{path}.models"), "list at least one model"));
        }
        let timeout_ms = p.timeout_ms.unwrap_or(DEFAULT_PROVIDER_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(error(format!("{path}.timeout_ms"), "must be positive"));
        }
        let idle_ms = p
            .stream_idle_timeout_ms
            .unwrap_or(DEFAULT_STREAM_IDLE_TIMEOUT_MS);
        if idle_ms == 0 {
            return Err(error(
                format!("{path}.stream_idle_timeout_ms"),
                "must be positive",
            ));
        }
        let keyless_off = p.api_key_env.is_none()
            && p.enable_env
                .as_ref()
                .is_some_and(|var| env(var).is_none_or(|v| v.is_empty()));
        let (api_key, disabled) = match (&p.api_key_env, p.enabled) {
            (_, Some(false)) => (
                None,
                Some("disabled in config (enabled = false)".to_string()),
            ),
            (None, _) if keyless_off => (
                None,
                Some(format!(
                    "environment variable {} is not set (set it to enable this local provider)",
                    p.enable_env.as_deref().unwrap_or_default()
                )),
            ),
            (Some(var), _) => match env(var).filter(|v| !v.trim().is_empty()) {
                Some(key) => (Some(ApiKey(Arc::from(key.trim()))), None),
                None => (None, Some(format!("environment variable {var} is not set"))),
            },
            (None, _) => (None, None),
        };
        for (model, info) in &p.models {
            if info.input_price.is_some_and(|v| v < 0.0)
                || info.output_price.is_some_and(|v| v < 0.0)
            {
                return Err(error(
                    format!("{path}.models.{model}"),
                    "prices must not be negative",
                ));
            }
        }
        let health_check = match &p.health_check {
            None => None,
            Some(h) => {
                // The probe is a chat prompt: embedding models are not probed by default.
                let models = h.models.clone().unwrap_or_else(|| {
                    p.models
                        .iter()
                        .filter(|(_, info)| info.dimensions.is_none())
                        .map(|(name, _)| name.clone())
                        .collect()
                });
                if let Some(unknown) = models.iter().find(|m| !p.models.contains_key(*m)) {
                    return Err(error(
                        format!("{path}.health_check.models"),
                        format!("'{unknown}' is not one of this provider's models"),
                    ));
                }
                let interval = h.interval_ms.unwrap_or(30_000);
                if interval < 100 {
                    return Err(error(
                        format!("{path}.health_check.interval_ms"),
                        "must be at least 100",
                    ));
                }
                Some(HealthCheckSpec {
                    interval: Duration::from_millis(interval),
                    timeout: Duration::from_millis(h.timeout_ms.unwrap_or(10_000).max(1)),
                    prompt: h
                        .prompt
                        .clone()
                        .unwrap_or_else(|| "Reply with the single word: ok".into()),
                    max_latency: h.max_latency_ms.map(Duration::from_millis),
                    models,
                })
            }
        };
        let privacy = p.privacy.unwrap_or_default();
        let trusted = p.trusted.unwrap_or(
            p.api_key_env.is_none()
                || (privacy.logs_prompts == Some(false)
                    && privacy.trains_on_prompts == Some(false)),
        );
        providers.insert(
            name.clone(),
            Provider {
                name,
                adapter: p.adapter,
                base_url,
                api_key_env: p.api_key_env,
                api_key,
                disabled,
                models: p.models.keys().cloned().collect(),
                model_info: p.models,
                docs: p.docs,
                privacy,
                trusted,
                tags: p.tags,
                health_check,
                timeout: Duration::from_millis(timeout_ms),
                stream_idle_timeout: Duration::from_millis(idle_ms),
                settings: table_to_json(p.settings),
                log_content: p.log_content.unwrap_or_default(),
                streaming: p.streaming.unwrap_or_default(),
            },
        );
    }

    let default_router = raw
        .pipeline
        .default_router
        .unwrap_or_else(|| "priority-fallback".to_string());
    let mut models = BTreeMap::new();
    for (name, m) in raw.models {
        let path = format!("models.{name}");
        if m.targets.is_empty() {
            return Err(error(
                format!("{path}.targets"),
                "list at least one provider/model target",
            ));
        }
        let mut targets = Vec::with_capacity(m.targets.len());
        for (i, target) in m.targets.iter().enumerate() {
            let tpath = format!("{path}.targets[{i}]");
            let Some((provider, model)) = target.split_once('/') else {
                return Err(error(
                    tpath,
                    format!("{target:?} is not of the form provider/model"),
                ));
            };
            let Some(p) = providers.get(provider) else {
                return Err(error(
                    tpath,
                    format!(
                        "unknown provider '{provider}' (configured: {})",
                        providers.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            if !p.models.iter().any(|m| m == model) {
                return Err(error(
                    tpath,
                    format!(
                        "provider '{provider}' does not list model '{model}' in providers.{provider}.models"
                    ),
                ));
            }
            targets.push(TargetRef {
                provider: provider.to_string(),
                model: model.to_string(),
            });
        }
        let policies = routing::RawPolicies {
            hedge_after_ms: m.hedge_after_ms.as_ref(),
            max_hedges: m.max_hedges,
            hedge_budget: m.hedge_budget,
            queue_wait_ms: m.queue_wait_ms,
            queue_max: m.queue_max,
        };
        let hedge = routing::hedge_policy(&path, &policies)?;
        let queue = routing::queue_policy(&path, &policies)?;
        let context_fit = match (m.context_fit.as_deref(), m.context_fit_settings) {
            (None | Some("refuse"), Some(_)) => {
                return Err(error(
                    format!("{path}.context_fit_settings"),
                    "settings for a fitter, but context_fit names none (\"middle-out\", \"summarize\", ...)",
                ));
            }
            (None | Some("refuse"), None) => ContextFit::Refuse,
            (Some(""), _) => {
                return Err(error(
                    format!("{path}.context_fit"),
                    "\"refuse\" or the name of a fitter plugin (\"middle-out\", \"summarize\")",
                ));
            }
            (Some(plugin), settings) => ContextFit::Plugin {
                name: plugin.to_string(),
                settings: table_to_json(settings),
            },
        };
        if m.max_input_tokens == Some(0) {
            return Err(error(
                format!("{path}.max_input_tokens"),
                "must be at least 1 (leave it out for no cap)",
            ));
        }
        models.insert(
            name.clone(),
            PublicModel {
                name,
                router: m.router.unwrap_or_else(|| default_router.clone()),
                router_settings: table_to_json(m.settings),
                filters: m.filters,
                on_router_error: m.on_router_error.unwrap_or_default(),
                targets,
                log_content: m.log_content,
                cache: m.cache.unwrap_or_default(),
                hedge,
                queue,
                context_fit,
                max_input_tokens: m.max_input_tokens,
                escalate_on: m.escalate_on,
            },
        );
    }

    let filter_settings = raw
        .pipeline
        .settings
        .into_iter()
        .map(|(name, table)| (name, table_to_json(Some(table))))
        .collect();
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base_dir.join(p) };
    let mut gateway_keys = Vec::new();
    for (i, k) in raw.auth.keys.iter().enumerate() {
        let path = format!("auth.keys[{i}]");
        let Some(key) = env(&k.key_env).filter(|v| !v.trim().is_empty()) else {
            return Err(error(
                format!("{path}.key_env"),
                format!(
                    "environment variable {} is not set: this key could never be presented",
                    k.key_env
                ),
            ));
        };
        if gateway_keys.iter().any(|g: &GatewayKey| g.name == k.name) {
            return Err(error(
                format!("{path}.name"),
                format!("the name '{}' is used twice", k.name),
            ));
        }
        // The range stored keys have too (`store::keys::HIGHEST_PRIORITY`; config sits below store).
        if k.priority.is_some_and(|priority| priority > 9) {
            return Err(error(format!("{path}.priority"), "must be from 0 to 9"));
        }
        gateway_keys.push(GatewayKey {
            name: k.name.clone(),
            key: ApiKey(Arc::from(key.trim())),
            daily_requests: k.daily_requests,
            daily_tokens: k.daily_tokens,
            priority: k.priority,
            queue_wait_ms: k.queue_wait_ms,
        });
    }
    Ok(Config {
        source: source.to_path_buf(),
        gateway_keys,
        trusted_only_tags: raw
            .privacy
            .trusted_only_tags
            .unwrap_or_else(|| vec!["sensitive".into(), "pii:trusted-only".into()]),
        catalog_files: Vec::new(),
        digest: String::new(),
        env_values: Vec::new(),
        admin,
        listen,
        allow_unauthenticated: raw.server.allow_unauthenticated.unwrap_or(false),
        store: match raw.store.path.as_deref().unwrap_or(DEFAULT_STORE) {
            "memory" => StorePath::Memory,
            "" => return Err(error("store.path", "must be a file path or \"memory\"")),
            path => StorePath::Sqlite(resolve(PathBuf::from(path))),
        },
        state: StateConfig {
            redis_url: match raw.state.redis_url {
                Some(url) if !url.starts_with("redis://") => {
                    return Err(error(
                        "state.redis_url",
                        "must be a redis:// URL (TLS to Redis is not built in)",
                    ));
                }
                other => other,
            },
            redis_timeout: match raw.state.redis_timeout_ms.unwrap_or(50) {
                ms @ 1..=10_000 => Duration::from_millis(ms),
                _ => {
                    return Err(error(
                        "state.redis_timeout_ms",
                        "must be between 1 and 10000",
                    ));
                }
            },
            redis_prefix: match raw.state.redis_prefix {
                Some(prefix)
                    if prefix.is_empty()
                        || !prefix
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                {
                    return Err(error(
                        "state.redis_prefix",
                        "must be letters, digits, - _ or .",
                    ));
                }
                other => other.unwrap_or_else(|| "freeway".to_string()),
            },
        },
        cache: CacheConfig {
            enabled: raw.cache.enabled.unwrap_or(true),
            ttl: match raw.cache.ttl_s.unwrap_or(3600) {
                s @ 1..=2_592_000 => Duration::from_secs(s),
                _ => {
                    return Err(error(
                        "cache.ttl_s",
                        "must be between 1 and 2592000 (30 days)",
                    ));
                }
            },
            max_bytes: match raw.cache.max_mb.unwrap_or(64) {
                mb @ 1..=65_536 => mb * 1024 * 1024,
                _ => return Err(error("cache.max_mb", "must be between 1 and 65536")),
            },
            scope: raw.cache.scope.unwrap_or_default(),
            backend: raw.cache.backend.unwrap_or_default(),
        },
        telemetry: TelemetryConfig {
            otlp_endpoint: match raw.telemetry.otlp_endpoint {
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return Err(error(
                        "telemetry.otlp_endpoint",
                        format!("{url:?} is not an http:// or https:// URL"),
                    ));
                }
                other => other,
            },
            service_name: raw
                .telemetry
                .service_name
                .unwrap_or_else(|| "freeway".to_string()),
            headers: raw.telemetry.headers.into_iter().collect(),
        },
        ledger: LedgerConfig {
            enabled: raw.ledger.enabled.unwrap_or(true),
            queue: match raw.ledger.queue.unwrap_or(10_000) {
                0 => return Err(error("ledger.queue", "must be at least 1")),
                queue => queue,
            },
        },
        max_body_bytes: max_body as usize,
        drain_delay: match raw.server.drain_delay_s.unwrap_or(0) {
            s @ 0..=600 => Duration::from_secs(s),
            _ => return Err(error("server.drain_delay_s", "must be between 0 and 600")),
        },
        drain_timeout: match raw.server.drain_timeout_s.unwrap_or(30) {
            s @ 0..=3600 => Duration::from_secs(s),
            _ => {
                return Err(error(
                    "server.drain_timeout_s",
                    "must be between 0 and 3600",
                ));
            }
        },
        worker_threads: match raw.server.worker_threads.unwrap_or(0) {
            n @ 0..=1024 => n as usize,
            _ => return Err(error("server.worker_threads", "must be between 0 and 1024")),
        },
        idle_spin: match raw.server.idle_spin_us {
            None => super::DEFAULT_IDLE_SPIN,
            Some(us @ 0..=1000) => Duration::from_micros(us),
            Some(_) => return Err(error("server.idle_spin_us", "must be between 0 and 1000")),
        },
        deadlines: super::deadlines::deadlines(&raw.server)?,
        plugin_dir: resolve(raw.plugins.dir),
        cache_dir: raw.plugins.cache_dir.map(resolve),
        default_limits,
        limit_overrides,
        filters: raw.pipeline.filters,
        filter_settings,
        sticky_ttl: Duration::from_secs(raw.pipeline.sticky_ttl_s.unwrap_or(1800)),
        default_router,
        providers,
        models,
    })
}
