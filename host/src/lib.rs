//! Freeway: an OpenAI-compatible LLM gateway whose provider adapters, routing policies and
//! filters are WebAssembly components.
//!
//! One folder per layer, in the order a request flows; each imports only the layers below it
//! (nothing imports `server`):
//!
//! - [`server`]: listeners, accept loop, request workers (a runtime per core), graceful drain,
//!   the URL table, client keys;
//!   [`cli`]: the offline commands (keys, usage, plugin new/check/test).
//! - [`api`]: inbound dialects behind one trait (chat completions, models), OpenAI errors.
//! - [`admin`]: the operator's API (plugins, config, metrics, reload).
//! - [`reload`]: loading config + plugins into a snapshot, watching files, swapping it in.
//! - [`pipeline`]: one request through filters, router, failover and stream relay, and the
//!   request record that accounts for it; health checks.
//! - [`upstream`]: one attempt at one target — adapter, shared HTTP client, its errors.
//! - [`plugins`]: the wasmtime runtime, the one bindgen site, loading, isolation, and the
//!   check that config and plugins fit.
//! - [`cache`]: the response cache (exact-match answers to deterministic requests, in this
//!   process and in Redis when configured), consulted by the pipeline after request filters.
//! - [`ledger`], [`metrics`], [`telemetry`], [`events`]: fed by the request record — the usage
//!   ledger's writer thread (bounded queue, batched transactions), the Prometheus families,
//!   OTLP trace export, and the dashboard's live feed (bounded rings and a broadcast).
//! - [`state`]: live target state — shared quotas, cooldowns, sessions, key usage and budgets
//!   behind async traits (memory, saved to the store), per-instance breaker and latency; the
//!   key ring.
//! - [`store`]: the embedded SQLite database — keys, ledger rows, saved target state.
//! - [`config`]: the TOML file, validated, with key paths in every error.
//! - [`http`], [`error`]: response bodies and helpers; the one typed gateway error.

pub mod admin;
pub mod api;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod pipeline;
pub mod plugins;
pub mod reload;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstream;
