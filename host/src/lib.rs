//! Freeway: an OpenAI-compatible LLM gateway whose provider adapters, routing policies and
//! filters are WebAssembly components.
//!
//! One folder per layer, in the order a request flows; each imports only the layers below it
//! (nothing imports `server`):
//!
//! - [`server`]: listeners, accept loop, graceful drain, the URL table, client keys.
//! - [`api`]: inbound dialects behind one trait (chat completions, models), OpenAI errors.
//! - [`admin`]: the operator's API (plugins, config, metrics, reload).
//! - [`reload`]: loading config + plugins into a snapshot, watching files, swapping it in.
//! - [`pipeline`]: one request through filters, router, failover and stream relay, and the
//!   request record that accounts for it; health checks.
//! - [`upstream`]: one attempt at one target — adapter, shared HTTP client, its errors.
//! - [`plugins`]: the wasmtime runtime, the one bindgen site, loading, isolation, and the
//!   check that config and plugins fit.
//! - [`state`]: live target state — shared quotas, cooldowns, sessions, key usage behind async
//!   traits (memory today), per-instance breaker and latency.
//! - [`config`]: the TOML file, validated, with key paths in every error.
//! - [`http`], [`error`]: response bodies and helpers; the one typed gateway error.

pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod http;
pub mod pipeline;
pub mod plugins;
pub mod reload;
pub mod server;
pub mod state;
pub mod upstream;
