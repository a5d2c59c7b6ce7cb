//! Freeway: an OpenAI-compatible LLM gateway whose provider adapters, routing policies and
//! filters are WebAssembly components.
//!
//! - [`config`]: the TOML file, validated, with key paths in every error.
//! - [`openai`]: request validation and OpenAI-shaped errors.
//! - [`plugins`]: the wasmtime runtime, the one bindgen site, loading and instance isolation.
//! - [`pipeline`]: one request through filters, router and failover to an answer.
//! - [`routing`]: live target state, attempt errors, route explanations.
//! - [`health`]: periodic health checks that take failing targets out of the pool.
//! - [`upstream`]: the shared HTTP client and credential injection.
//! - [`server`]: the hyper listener and routes.
//! - [`reload`]: watching plugins and config, and swapping snapshots.
//! - [`admin`]: the operator's view (`/admin/plugins`, `/admin/config`, `/admin/reload`).

pub mod admin;
pub mod app;
pub mod config;
pub mod health;
pub mod openai;
pub mod pipeline;
pub mod plugins;
pub mod reload;
pub mod routing;
pub mod server;
pub mod upstream;
