//! The config file as written: serde structs with `deny_unknown_fields`, so a misspelt key is
//! refused with its path instead of being ignored. Only `validate` reads these.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{
    CacheBackend, CachePolicy, CacheScope, InstanceMode, LogContent, OnRouterError, Streaming,
};

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
    pub store: Store,
    #[serde(default)]
    pub ledger: Ledger,
    #[serde(default)]
    pub telemetry: Telemetry,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub cache: Cache,
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
    /// Serve the admin API beyond loopback without an admin key (refused otherwise).
    pub allow_unauthenticated: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Option<String>,
    pub max_body_bytes: Option<u64>,
    /// After SIGTERM: how long `/healthz` says "draining" while requests are still accepted.
    pub drain_delay_s: Option<u64>,
    /// After SIGTERM: how long in-flight requests and streams may take to finish.
    pub drain_timeout_s: Option<u64>,
    /// Listen beyond loopback with no gateway key (refused otherwise).
    pub allow_unauthenticated: Option<bool>,
    /// Deadlines for reading a client's request (see `config::Deadlines`).
    pub header_read_timeout_ms: Option<u64>,
    pub body_read_timeout_ms: Option<u64>,
    pub body_idle_timeout_ms: Option<u64>,
    /// The whole request, every attempt and a relayed stream included.
    pub request_timeout_ms: Option<u64>,
    /// The largest upstream answer (a JSON body, or a stream in total) the gateway reads.
    pub max_response_bytes: Option<u64>,
    /// Request worker threads, each serving its connections start to end (0: one per core).
    pub worker_threads: Option<u64>,
    /// How long a request worker that ran out of work keeps polling before it sleeps (µs).
    pub idle_spin_us: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// The SQLite file (relative to the config's folder), or "memory".
    pub path: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// `redis://[:password@]host:port[/db]`: shared state for several instances.
    pub redis_url: Option<String>,
    pub redis_timeout_ms: Option<u64>,
    pub redis_prefix: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub enabled: Option<bool>,
    pub ttl_s: Option<u64>,
    /// Bytes of answers kept in this process, at most (MiB).
    pub max_mb: Option<u64>,
    pub scope: Option<CacheScope>,
    /// "auto" (Redis when `state.redis_url` is set) or "memory".
    pub backend: Option<CacheBackend>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    /// Extra headers for the collector (e.g. Langfuse's `Authorization: Basic …`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub enabled: Option<bool>,
    /// Rows waiting to be written, at most.
    pub queue: Option<usize>,
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
    /// Consecutive faults that quarantine the plugin; 0 never does.
    pub quarantine_after: Option<u32>,
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
    /// Whether its endpoint streams (true), answers whole only (false), or only streams.
    pub streaming: Option<Streaming>,
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
    pub priority: Option<u8>,
    pub queue_wait_ms: Option<u64>,
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
    /// Overrides the provider's `streaming` for this model.
    pub streaming: Option<Streaming>,
    /// The length of the vectors an embedding model returns (by default): set only for
    /// embedding models, which then serve `POST /v1/embeddings` and never chat.
    pub dimensions: Option<u32>,
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
    /// Which requests the response cache may answer: "auto" (temperature 0), "always", "never".
    pub cache: Option<CachePolicy>,
    /// Start the next target beside a slow one: milliseconds, or "auto" (the target's p95).
    pub hedge_after_ms: Option<toml::Value>,
    pub max_hedges: Option<u32>,
    /// Hedges as a share of the model's requests over the last minute (default 0.1).
    pub hedge_budget: Option<f64>,
    /// Wait this long for a target to have capacity instead of failing at once.
    pub queue_wait_ms: Option<u64>,
    /// Requests that may wait at once (default 100).
    pub queue_max: Option<usize>,
    /// "refuse" (default) or the name of a fitter plugin ("middle-out", "summarize").
    pub context_fit: Option<String>,
    /// Settings handed to the fitter plugin.
    pub context_fit_settings: Option<toml::Table>,
    pub max_input_tokens: Option<u32>,
    #[serde(default)]
    pub escalate_on: Vec<super::EscalateOn>,
}
