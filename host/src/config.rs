//! Gateway configuration: the TOML file as written (`raw`, unknown keys refused) and the
//! validated form the rest of the gateway uses. Every error carries the key path that caused it
//! (`models.smart.targets[1]`) and the reason, so an operator never has to guess.
//!
//! Secrets: the file holds only the *names* of environment variables; keys are read from the
//! environment here and kept in `ApiKey`, whose `Debug` never prints them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::plugins::{InstanceMode, PluginLimits, PluginSet, PluginWorld};

/// A config problem: where (dotted key path) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid config: {}", self.reason)
        } else {
            write!(f, "invalid config at `{}`: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

fn error(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        reason: reason.into(),
    }
}

mod raw {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        /// Provider catalog files merged under `providers` (this file's entries win). Read
        /// from the TOML tree by `merge_catalogs` before this struct is parsed.
        #[serde(default)]
        #[allow(dead_code)]
        pub catalog: Vec<PathBuf>,
        #[serde(default)]
        pub server: Server,
        #[serde(default)]
        pub admin: Admin,
        #[serde(default)]
        pub privacy: GatewayPrivacy,
        #[serde(default)]
        pub auth: Auth,
        pub plugins: Plugins,
        #[serde(default)]
        pub pipeline: Pipeline,
        #[serde(default)]
        pub providers: BTreeMap<String, Provider>,
        #[serde(default)]
        pub models: BTreeMap<String, Model>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Admin {
        pub listen: Option<String>,
        pub api_key_env: Option<String>,
        pub on_public_listener: Option<bool>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Server {
        pub listen: Option<String>,
        pub max_body_bytes: Option<u64>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Plugins {
        pub dir: PathBuf,
        pub cache_dir: Option<PathBuf>,
        #[serde(default)]
        pub defaults: Limits,
        #[serde(default)]
        pub overrides: BTreeMap<String, Limits>,
    }

    #[derive(Deserialize, Default, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct Limits {
        pub instances: Option<InstanceMode>,
        pub pool_size: Option<u32>,
        pub timeout_ms: Option<u64>,
        pub memory_mb: Option<u64>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Pipeline {
        #[serde(default)]
        pub filters: Vec<String>,
        pub default_router: Option<String>,
        /// How long a conversation keeps its target (0 turns sticky sessions off).
        pub sticky_ttl_s: Option<u64>,
        /// Settings handed to each filter plugin, by plugin name.
        #[serde(default)]
        pub settings: BTreeMap<String, toml::Table>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Provider {
        pub adapter: String,
        pub base_url: String,
        pub api_key_env: Option<String>,
        /// For keyless (local) providers: enabled only when this variable is set.
        pub enable_env: Option<String>,
        /// Model id → facts. A plain list of ids is accepted too (normalised before parsing).
        #[serde(default)]
        pub models: BTreeMap<String, ModelInfo>,
        pub timeout_ms: Option<u64>,
        pub stream_idle_timeout_ms: Option<u64>,
        pub settings: Option<toml::Table>,
        pub enabled: Option<bool>,
        /// Where the catalog's figures come from.
        pub docs: Option<String>,
        /// Whether the provider (its free tier) may log or train on prompts.
        pub privacy: Option<Privacy>,
        /// Explicitly trusted with sensitive data (self-hosted, or a no-log contract).
        pub trusted: Option<bool>,
        /// Labels for routing policies (e.g. "free", "paid", "local").
        #[serde(default)]
        pub tags: Vec<String>,
        pub health_check: Option<HealthCheck>,
        /// Whether prompts and answers of requests this provider serves may be logged.
        pub log_content: Option<LogContent>,
    }

    #[derive(Deserialize, Clone, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct HealthCheck {
        pub interval_ms: Option<u64>,
        pub timeout_ms: Option<u64>,
        pub prompt: Option<String>,
        /// A probe slower than this fails too.
        pub max_latency_ms: Option<u64>,
        /// Models to probe (default: all of the provider's).
        pub models: Option<Vec<String>>,
    }

    #[derive(Deserialize, Default, Clone, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct Privacy {
        pub logs_prompts: Option<bool>,
        pub trains_on_prompts: Option<bool>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Auth {
        #[serde(default)]
        pub keys: Vec<GatewayKey>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GatewayKey {
        pub name: String,
        pub key_env: String,
        pub daily_requests: Option<u64>,
        pub daily_tokens: Option<u64>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct GatewayPrivacy {
        /// Request tags (from filters, `x-freeway-tags`, or `metadata.sensitive = "true"`) that
        /// restrict routing to trusted providers.
        pub trusted_only_tags: Option<Vec<String>>,
    }

    #[derive(Deserialize, Default, Clone, Debug)]
    #[serde(deny_unknown_fields)]
    pub struct ModelInfo {
        pub context_window: Option<u32>,
        pub max_output_tokens: Option<u32>,
        /// USD per million tokens; 0 for free tiers.
        pub input_price: Option<f64>,
        pub output_price: Option<f64>,
        pub rpm: Option<u64>,
        pub rpd: Option<u64>,
        pub tpm: Option<u64>,
        pub tpd: Option<u64>,
        pub tools: Option<bool>,
        pub vision: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Model {
        pub targets: Vec<String>,
        pub router: Option<String>,
        pub settings: Option<toml::Table>,
        #[serde(default)]
        pub filters: Vec<String>,
        pub on_router_error: Option<OnRouterError>,
        /// Overrides the serving provider's `log_content` for requests to this model.
        pub log_content: Option<LogContent>,
    }
}

/// The admin API (`/admin/*`): its own listener by default, never the public one unless asked.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    pub listen: Option<SocketAddr>,
    pub on_public_listener: bool,
    /// When set, admin requests need `Authorization: Bearer <key>`.
    pub key: Option<ApiKey>,
}

/// A key a client presents to the gateway, with its daily allowance.
#[derive(Debug, Clone)]
pub struct GatewayKey {
    pub name: String,
    pub key: ApiKey,
    pub daily_requests: Option<u64>,
    pub daily_tokens: Option<u64>,
}

/// A provider key read from the environment. Never printed.
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

pub use raw::{ModelInfo, Privacy};

/// A periodic trivial prompt to a provider's models; a target that fails it (or answers slower
/// than `max_latency`) leaves the pool until it passes again.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckSpec {
    pub interval: Duration,
    pub timeout: Duration,
    pub prompt: String,
    pub max_latency: Option<Duration>,
    pub models: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub adapter: String,
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub api_key: Option<ApiKey>,
    /// Why this provider cannot be used, when it cannot (e.g. its key variable is unset).
    pub disabled: Option<String>,
    pub models: Vec<String>,
    /// What the catalog or config says of each model (missing facts are unknown, not false).
    pub model_info: BTreeMap<String, ModelInfo>,
    pub docs: Option<String>,
    pub privacy: Privacy,
    /// May serve requests labelled sensitive: explicitly trusted, keyless (self-hosted), or
    /// documented to neither log nor train on prompts.
    pub trusted: bool,
    pub tags: Vec<String>,
    pub health_check: Option<HealthCheckSpec>,
    /// Per-attempt deadline: the whole answer when not streaming, the first chunk when streaming.
    pub timeout: Duration,
    /// Once a stream is committed: the longest gap between two upstream chunks.
    pub stream_idle_timeout: Duration,
    /// Adapter settings as a JSON object.
    pub settings: Arc<str>,
    /// Whether the text of requests this provider serves may be logged.
    pub log_content: LogContent,
}

/// One attempt destination: a provider and one of its upstream models.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetRef {
    pub provider: String,
    pub model: String,
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Whether a request's text may appear in the log (`log_content` of a provider or a public
/// model). The default is `none`: log lines carry sizes and counts, never text. Content is
/// logged as the provider saw it — after request filters, before response filters — so a
/// redacting filter protects the log too; requests tagged trusted-only are never logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogContent {
    #[default]
    None,
    Prompts,
    Answers,
    All,
}

impl LogContent {
    pub fn prompts(self) -> bool {
        matches!(self, LogContent::Prompts | LogContent::All)
    }

    pub fn answers(self) -> bool {
        matches!(self, LogContent::Answers | LogContent::All)
    }
}

/// What a request does when its model's router errs or faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnRouterError {
    /// Refuse the request (500 `plugin_error`): the router may be enforcing a policy.
    #[default]
    Fail,
    /// Try the targets in configured order.
    ConfiguredOrder,
}

#[derive(Debug, Clone)]
pub struct PublicModel {
    pub name: String,
    pub router: String,
    /// Router settings as a JSON object.
    pub router_settings: Arc<str>,
    /// Filters for this model, after the global ones.
    pub filters: Vec<String>,
    pub on_router_error: OnRouterError,
    pub targets: Vec<TargetRef>,
    /// When set, overrides the serving provider's `log_content`.
    pub log_content: Option<LogContent>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub source: PathBuf,
    /// Keys clients must present; none configured means the gateway is open.
    pub gateway_keys: Vec<GatewayKey>,
    /// Request tags that allow only trusted providers.
    pub trusted_only_tags: Vec<String>,
    /// The catalog files merged in (watched for changes like the config itself).
    pub catalog_files: Vec<PathBuf>,
    /// SHA-256 of the effective configuration.
    pub digest: String,
    /// Values `${VAR}` references expanded to; views of the config mask them.
    pub env_values: Vec<String>,
    pub admin: Admin,
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub plugin_dir: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub default_limits: PluginLimits,
    pub limit_overrides: BTreeMap<String, PluginLimits>,
    pub filters: Vec<String>,
    /// Filter settings as JSON objects, by filter plugin name.
    pub filter_settings: BTreeMap<String, Arc<str>>,
    pub default_router: String,
    /// How long a conversation keeps the target that last served it; zero disables.
    pub sticky_ttl: Duration,
    pub providers: BTreeMap<String, Provider>,
    pub models: BTreeMap<String, PublicModel>,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY: u64 = 4 * 1024 * 1024;
const DEFAULT_PROVIDER_TIMEOUT_MS: u64 = 120_000;
const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 300_000;

impl Config {
    /// Read, expand `${VAR}`s, parse and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error("", format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, path, &|name| std::env::var(name).ok())
    }

    /// Parse config text; `env` resolves variables (so tests need not touch the process env).
    pub fn parse(
        text: &str,
        base_dir: &Path,
        source: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| {
            let reason = e.message().to_string();
            let line = e
                .span()
                .map(|span| text[..span.start].lines().count().max(1));
            error(
                "",
                match line {
                    Some(line) => format!("TOML syntax error on line {line}: {reason}"),
                    None => format!("TOML syntax error: {reason}"),
                },
            )
        })?;
        let catalog_files = merge_catalogs(&mut value, base_dir)?;
        normalise_model_lists(&mut value);
        // Every value read from the environment may be a secret: remember them, so views of
        // the config can mask them wherever they ended up.
        let expanded = std::cell::RefCell::new(Vec::new());
        let recording_env = |name: &str| {
            let value = env(name);
            if let Some(v) = &value
                && v.len() >= 4
            {
                expanded.borrow_mut().push(v.clone());
            }
            value
        };
        expand_env(&mut value, &mut String::new(), &recording_env)?;
        // What the gateway actually runs with, catalogs merged and variables expanded: equal
        // digests mean equal behaviour. A hash, so it reveals nothing of expanded secrets.
        let digest = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(value.to_string().as_bytes()))
        };
        let raw: raw::Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let reason = e.into_inner().message().to_string();
            error(if path == "." { String::new() } else { path }, reason)
        })?;
        let mut config = validate(raw, base_dir, source, env)?;
        config.digest = digest;
        config.env_values = expanded.into_inner();
        config.catalog_files = catalog_files;
        Ok(config)
    }

    /// Whether this config uses a plugin of that name (as filter, router or adapter).
    pub fn references(&self, plugin: &str) -> bool {
        self.filters.iter().any(|f| f == plugin)
            || self.default_router == plugin
            || self.providers.values().any(|p| p.adapter == plugin)
            || self
                .models
                .values()
                .any(|m| m.router == plugin || m.filters.iter().any(|f| f == plugin))
    }

    pub fn filter_settings(&self, filter: &str) -> String {
        self.filter_settings
            .get(filter)
            .map_or_else(|| "{}".to_string(), |s| s.to_string())
    }

    pub fn limits_for(&self, plugin: &str) -> PluginLimits {
        self.limit_overrides
            .get(plugin)
            .cloned()
            .unwrap_or_else(|| self.default_limits.clone())
    }

    /// Check every plugin the config names is loaded and of the right world.
    pub fn check_plugins(&self, plugins: &PluginSet) -> Result<(), ConfigError> {
        let expect = |path: String, name: &str, world: PluginWorld| -> Result<(), ConfigError> {
            match plugins.get(name) {
                None => Err(error(
                    path,
                    format!(
                        "no {world} plugin named '{name}' is loaded from {} (loaded: {})",
                        self.plugin_dir.display(),
                        plugins
                            .plugins
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                Some(p) if p.world != world => Err(error(
                    path,
                    format!(
                        "plugin '{name}' is a {} plugin, not a {world} plugin",
                        p.world
                    ),
                )),
                Some(_) => Ok(()),
            }
        };
        for (i, name) in self.filters.iter().enumerate() {
            expect(format!("pipeline.filters[{i}]"), name, PluginWorld::Filter)?;
        }
        expect(
            "pipeline.default_router".into(),
            &self.default_router,
            PluginWorld::Router,
        )?;
        for (name, provider) in &self.providers {
            expect(
                format!("providers.{name}.adapter"),
                &provider.adapter,
                PluginWorld::Provider,
            )?;
        }
        for (name, model) in &self.models {
            expect(
                format!("models.{name}.router"),
                &model.router,
                PluginWorld::Router,
            )?;
            for (i, filter) in model.filters.iter().enumerate() {
                expect(
                    format!("models.{name}.filters[{i}]"),
                    filter,
                    PluginWorld::Filter,
                )?;
            }
        }
        Ok(())
    }

    /// Ask each plugin the config uses whether the settings it would be handed suit it, so a
    /// misspelt or invalid setting is refused at start, by `freeway check` and on reload —
    /// naming its key — instead of failing requests later. Call after [`Config::check_plugins`].
    pub async fn check_plugin_settings(&self, plugins: &PluginSet) -> Result<(), ConfigError> {
        let mut uses: Vec<(String, &str, &str)> = Vec::new();
        let filters_in_use: std::collections::BTreeSet<&str> = self
            .filters
            .iter()
            .chain(self.models.values().flat_map(|m| m.filters.iter()))
            .map(String::as_str)
            .collect();
        for name in self.filter_settings.keys() {
            if !filters_in_use.contains(name.as_str()) {
                return Err(error(
                    format!("pipeline.settings.{name}"),
                    format!(
                        "no filter named '{name}' is in use (pipeline.filters or models.*.filters name: {})",
                        if filters_in_use.is_empty() {
                            "none".to_string()
                        } else {
                            filters_in_use
                                .iter()
                                .copied()
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                ));
            }
        }
        for name in &filters_in_use {
            let settings = self.filter_settings.get(*name).map_or("{}", |s| s);
            uses.push((format!("pipeline.settings.{name}"), name, settings));
        }
        // Direct `provider/model` requests use the default router without settings.
        uses.push(("pipeline.default_router".into(), &self.default_router, "{}"));
        for (name, provider) in &self.providers {
            uses.push((
                format!("providers.{name}.settings"),
                &provider.adapter,
                &provider.settings,
            ));
        }
        for (name, model) in &self.models {
            uses.push((
                format!("models.{name}.settings"),
                &model.router,
                &model.router_settings,
            ));
        }
        for (path, plugin, settings) in uses {
            let Some(loaded) = plugins.get(plugin) else {
                continue; // `check_plugins` reports it.
            };
            match loaded.check_settings(settings).await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    return Err(error(
                        path,
                        format!("plugin '{plugin}' refused its settings: {why}"),
                    ));
                }
                Err(fault) => {
                    return Err(error(path, format!("cannot check these settings: {fault}")));
                }
            }
        }
        Ok(())
    }
}

/// Merge the provider catalogs named by `catalog = [...]` under this file's `providers`:
/// a catalog gives every provider's defaults, this file's keys win, table by table.
fn merge_catalogs(value: &mut toml::Value, base_dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(files) = value
        .get("catalog")
        .and_then(toml::Value::as_array)
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let mut read = Vec::new();
    let mut merged = toml::Table::new();
    for (i, file) in files.iter().enumerate() {
        let path = format!("catalog[{i}]");
        let Some(name) = file.as_str() else {
            return Err(error(path, "must be a file path"));
        };
        let file_path = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            base_dir.join(name)
        };
        read.push(file_path.clone());
        let text = std::fs::read_to_string(&file_path).map_err(|e| {
            error(
                path.clone(),
                format!("cannot read {}: {e}", file_path.display()),
            )
        })?;
        let catalog: toml::Table = toml::from_str(&text).map_err(|e| {
            error(
                path.clone(),
                format!("{}: {}", file_path.display(), e.message()),
            )
        })?;
        for (key, item) in catalog {
            if key != "providers" {
                return Err(error(
                    path,
                    format!(
                        "{}: a catalog holds only [providers.*], found `{key}`",
                        file_path.display()
                    ),
                ));
            }
            let toml::Value::Table(providers) = item else {
                return Err(error(
                    path,
                    format!("{}: `providers` must be a table", file_path.display()),
                ));
            };
            deep_merge(&mut merged, providers);
        }
    }
    if let Some(toml::Value::Table(own)) = value.get("providers").cloned() {
        deep_merge(&mut merged, own);
    }
    if let toml::Value::Table(root) = value {
        root.insert("providers".into(), toml::Value::Table(merged));
    }
    Ok(read)
}

fn deep_merge(base: &mut toml::Table, top: toml::Table) {
    for (key, item) in top {
        match (base.get_mut(&key), item) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(top_table)) => {
                deep_merge(base_table, top_table)
            }
            (_, item) => {
                base.insert(key, item);
            }
        }
    }
}

/// `models = ["a", "b"]` is shorthand for `models = { a = {}, b = {} }`.
fn normalise_model_lists(value: &mut toml::Value) {
    let Some(toml::Value::Table(providers)) = value.get_mut("providers") else {
        return;
    };
    for (_, provider) in providers.iter_mut() {
        if let Some(models) = provider.get_mut("models")
            && let toml::Value::Array(names) = models
            && names.iter().all(toml::Value::is_str)
        {
            let table = names
                .iter()
                .filter_map(|n| n.as_str())
                .map(|n| (n.to_string(), toml::Value::Table(toml::Table::new())))
                .collect();
            *models = toml::Value::Table(table);
        }
    }
}

/// Replace `${NAME}` / `${NAME:-default}` in every string value.
fn expand_env(
    value: &mut toml::Value,
    path: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand_str(s, env).map_err(|reason| error(path.clone(), reason))?;
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                expand_env(item, path, env)?;
                path.truncate(len);
            }
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                expand_env(item, path, env)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {input:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{expr}}}` is not a valid variable reference"));
        }
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write `${{{name}:-default}}` to give a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn table_to_json(table: Option<toml::Table>) -> Arc<str> {
    let json = table
        .map(|t| serde_json::to_string(&t).unwrap_or_else(|_| "{}".into()))
        .unwrap_or_else(|| "{}".into());
    Arc::from(json)
}

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
    Ok(limits)
}

fn validate(
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
        }
    };
    if max_body < 1024 {
        return Err(error("server.max_body_bytes", "must be at least 1024"));
    }

    let builtin = PluginLimits {
        mode: InstanceMode::Fresh,
        // Enough idle instances for a busy gateway: a smaller pool frees (and later re-creates)
        // an instance on most requests under load.
        pool_size: 16,
        timeout: Duration::from_millis(100),
        memory_bytes: 64 << 20,
    };
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
                let models = h
                    .models
                    .clone()
                    .unwrap_or_else(|| p.models.keys().cloned().collect());
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
        gateway_keys.push(GatewayKey {
            name: k.name.clone(),
            key: ApiKey(Arc::from(key.trim())),
            daily_requests: k.daily_requests,
            daily_tokens: k.daily_tokens,
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
        max_body_bytes: max_body as usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(
            text,
            Path::new("/etc/freeway"),
            Path::new("/etc/freeway/gateway.toml"),
            &|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
    }

    const MINIMAL: &str = r#"
        [plugins]
        dir = "plugins"
        [providers.groq]
        adapter = "openai-compatible"
        base_url = "https://api.groq.com/openai/v1/"
        api_key_env = "GROQ_API_KEY"
        models = ["llama"]
        [models.fast]
        targets = ["groq/llama"]
    "#;

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths() {
        let config = parse(MINIMAL, &[("GROQ_API_KEY", "sk-test")]).expect("valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.plugin_dir, Path::new("/etc/freeway/plugins"));
        let groq = &config.providers["groq"];
        assert_eq!(groq.base_url, "https://api.groq.com/openai/v1");
        assert!(groq.disabled.is_none());
        assert_eq!(groq.api_key.as_ref().map(ApiKey::expose), Some("sk-test"));
        assert_eq!(config.models["fast"].router, "priority-fallback");
        assert!(
            !format!("{config:?}").contains("sk-test"),
            "Debug must not leak keys"
        );
    }

    #[test]
    fn missing_key_disables_provider_with_reason() {
        let config = parse(MINIMAL, &[]).expect("still valid");
        assert_eq!(
            config.providers["groq"].disabled.as_deref(),
            Some("environment variable GROQ_API_KEY is not set")
        );
    }

    #[test]
    fn unknown_key_is_refused_with_its_path() {
        let text = MINIMAL.replace(
            "models = [\"llama\"]",
            "models = [\"llama\"]\nbase_ulr = \"x\"",
        );
        let err = parse(&text, &[]).expect_err("unknown key");
        assert_eq!(err.path, "providers.groq.base_ulr");
        assert!(err.reason.contains("unknown field"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let text = MINIMAL.replace("[plugins]", "[server]\nmax_body_bytes = \"big\"\n[plugins]");
        let err = parse(&text, &[]).expect_err("wrong type");
        assert_eq!(err.path, "server.max_body_bytes");
    }

    #[test]
    fn target_must_name_a_listed_model() {
        let text = MINIMAL.replace(
            "targets = [\"groq/llama\"]",
            "targets = [\"groq/llama\", \"groq/mixtral\"]",
        );
        let err = parse(&text, &[]).expect_err("unlisted model");
        assert_eq!(err.path, "models.fast.targets[1]");
    }

    #[test]
    fn env_references_expand_with_defaults() {
        let text = MINIMAL.replace(
            "https://api.groq.com/openai/v1/",
            "${GROQ_URL:-http://127.0.0.1:9/v1}",
        );
        let config = parse(&text, &[]).expect("default used");
        assert_eq!(config.providers["groq"].base_url, "http://127.0.0.1:9/v1");
        let config = parse(&text, &[("GROQ_URL", "http://10.0.0.1/v1")]).expect("var used");
        assert_eq!(config.providers["groq"].base_url, "http://10.0.0.1/v1");
        let text = MINIMAL.replace("https://api.groq.com/openai/v1/", "${GROQ_URL}");
        let err = parse(&text, &[]).expect_err("unset without default");
        assert_eq!(err.path, "providers.groq.base_url");
        assert!(err.reason.contains("GROQ_URL"));
    }
}
