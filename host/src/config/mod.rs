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

mod deadlines;
mod raw;
mod routing;
mod sources;
#[cfg(test)]
mod tests;
mod validate;

use sources::{expand_env, merge_catalogs, normalise_model_lists};
use validate::validate;

/// `server.idle_spin_us` when the file does not say: long enough to catch a fast upstream's
/// answer or a keep-alive client's next request without sleeping, short enough that a light
/// load costs little (see `server::spin`).
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(50);

/// Limits one plugin's calls run under (`[plugins.defaults]`, `[plugins.overrides.<name>]`).
#[derive(Clone, Debug, PartialEq)]
pub struct PluginLimits {
    pub mode: InstanceMode,
    pub pool_size: usize,
    pub timeout: Duration,
    pub memory_bytes: usize,
    /// Consecutive faults that quarantine the plugin (0: never).
    pub quarantine_after: u32,
}

/// How long a client or an upstream may hold a request (`server.*_timeout_ms`), and how
/// large an upstream answer may be.
#[derive(Clone, Debug, PartialEq)]
pub struct Deadlines {
    /// Until a client's request head is read (then 408 and the connection is closed).
    pub header_read: Duration,
    /// Until a client's whole request body is read.
    pub body_read: Duration,
    /// The longest gap between two pieces of a client's request body.
    pub body_idle: Duration,
    /// The whole request: every attempt, failover and a relayed stream included.
    pub request: Duration,
    /// The most an upstream answer (a JSON body, or a whole stream) may hold.
    pub max_response_bytes: usize,
}

impl PluginLimits {
    /// The limits a plugin runs under when the config sets none.
    pub fn builtin() -> Self {
        PluginLimits {
            mode: InstanceMode::Pooled,
            // Enough idle instances for a busy gateway: a smaller pool frees (and later
            // re-creates) an instance on most requests under load.
            pool_size: 16,
            timeout: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            // Five faults in a row: a plugin that loops costs timeout_ms of a worker per call.
            quarantine_after: 5,
        }
    }
}

/// How much isolation a plugin's calls pay for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// A new instance for every request.
    Fresh,
    /// Instances are reused across requests of the same gateway key (up to `pool_size` kept
    /// idle); never across keys.
    Pooled,
}

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

pub fn error(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        reason: reason.into(),
    }
}
/// The admin API (`/admin/*`): its own listener by default, never the public one unless asked.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    pub listen: Option<SocketAddr>,
    pub on_public_listener: bool,
    /// When set, admin requests need `Authorization: Bearer <key>`.
    pub key: Option<ApiKey>,
    /// The operator allows an admin listener beyond loopback without a key.
    pub allow_unauthenticated: bool,
}

/// Where durable state lives: keys, the usage ledger, target state that must survive a restart.
#[derive(Debug, Clone, PartialEq)]
pub enum StorePath {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// Nothing survives a restart.
    Memory,
}

/// Where shared state lives: this process, or Redis for several instances.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    pub redis_url: Option<String>,
    /// The deadline of one Redis call; past it the call falls back to local state.
    pub redis_timeout: Duration,
    pub redis_prefix: String,
}

/// The response cache: exact-match answers to deterministic requests (see `cache/`).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub enabled: bool,
    /// How long an answer may be served from the cache.
    pub ttl: Duration,
    /// Bytes of answers this process keeps, at most.
    pub max_bytes: u64,
    pub scope: CacheScope,
    pub backend: CacheBackend,
}

/// Whose cached answers a request may be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// Only answers to the same gateway key.
    #[default]
    Key,
    /// Any caller's answers (the operator says keys may share them).
    Shared,
}

/// Where cached answers live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    /// In this process, and in Redis too when `state.redis_url` is set (shared by instances).
    #[default]
    Auto,
    /// In this process only.
    Memory,
}

/// Which of a model's requests the cache may answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CachePolicy {
    /// Deterministic requests: `temperature: 0`, or the client's `x-freeway-cache: use`.
    #[default]
    Auto,
    /// Every request (the model's answers are fixed, e.g. a classifier).
    Always,
    /// None, whatever the client asks.
    Never,
}

/// Trace export: one OTLP span per request, a child per attempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetryConfig {
    /// Where to POST OTLP/HTTP protobuf traces; none turns export off.
    pub otlp_endpoint: Option<String>,
    pub service_name: String,
    pub headers: Vec<(String, String)>,
}

/// The usage ledger: one row per request, written off the request path.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerConfig {
    pub enabled: bool,
    /// Rows waiting to be written, at most; past it, rows are dropped and counted.
    pub queue: usize,
}

/// A key a client presents to the gateway, with its daily allowance.
#[derive(Debug, Clone)]
pub struct GatewayKey {
    pub name: String,
    pub key: ApiKey,
    pub daily_requests: Option<u64>,
    pub daily_tokens: Option<u64>,
    /// 0-9: the highest place its requests take in a line waiting for capacity.
    pub priority: Option<u8>,
    /// Caps the model's `queue_wait_ms` for its requests.
    pub queue_wait_ms: Option<u64>,
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
pub use routing::{HedgeAfter, HedgePolicy, QueuePolicy, Streaming};

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
    /// Whether the endpoint streams, unless a model says otherwise.
    pub streaming: Streaming,
}

impl Provider {
    /// Whether one of this provider's models streams (the catalog's fact).
    pub fn streaming(&self, model: &str) -> Streaming {
        self.model_info
            .get(model)
            .and_then(|m| m.streaming)
            .unwrap_or(self.streaming)
    }

    /// The limits the catalog publishes for one of this provider's models (none when unknown).
    pub fn limits(&self, model: &str) -> Limits {
        self.model_info
            .get(model)
            .map(|m| Limits {
                rpm: m.rpm,
                rpd: m.rpd,
                tpm: m.tpm,
                tpd: m.tpd,
            })
            .unwrap_or_default()
    }
}

/// Published limits of one target: requests and tokens per minute and per day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub rpm: Option<u64>,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
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

/// What happens to a request that does not fit a target's limits (`models.<m>.context_fit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextFit {
    /// The target is skipped (`"refuse"`, the default); a 400 when no target fits.
    Refuse,
    /// A fitter plugin makes the request fit each target (`"middle-out"`, `"summarize"`, or
    /// an operator's own), with `context_fit_settings` as a JSON object.
    Plugin { name: String, settings: Arc<str> },
}

/// An answer a model retries on its next target (`models.<m>.escalate_on`), for requests that
/// are not streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalateOn {
    /// Cut off by the token limit (`finish_reason: "length"`).
    Length,
    /// No text and no tool call.
    Empty,
    /// Not valid JSON although the request asked for a JSON response format.
    InvalidJson,
}

impl EscalateOn {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalateOn::Length => "length",
            EscalateOn::Empty => "empty",
            EscalateOn::InvalidJson => "invalid_json",
        }
    }
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
    pub cache: CachePolicy,
    /// Start another target beside a slow one.
    pub hedge: Option<HedgePolicy>,
    /// Wait for capacity instead of failing at once.
    pub queue: Option<QueuePolicy>,
    pub context_fit: ContextFit,
    /// A cap on prompt tokens (estimated) below any window, to protect free quotas.
    pub max_input_tokens: Option<u32>,
    pub escalate_on: Vec<EscalateOn>,
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
    /// The operator allows a public listener beyond loopback with no gateway key.
    pub allow_unauthenticated: bool,
    pub store: StorePath,
    pub ledger: LedgerConfig,
    pub telemetry: TelemetryConfig,
    pub state: StateConfig,
    pub cache: CacheConfig,
    pub max_body_bytes: usize,
    /// After SIGTERM: how long `/healthz` answers 503 while requests are still served, so a
    /// load balancer stops sending before the listener closes.
    pub drain_delay: Duration,
    /// After SIGTERM and the delay: how long in-flight requests and streams may finish.
    pub drain_timeout: Duration,
    /// Request worker threads (0: one per core); read at start, a reload does not change it.
    pub worker_threads: usize,
    /// How long a request worker that ran out of work keeps polling its sockets before it
    /// sleeps (zero: sleep at once); read at start.
    pub idle_spin: Duration,
    pub deadlines: Deadlines,
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
}
