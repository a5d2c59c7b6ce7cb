//! The host's one bindgen site: Rust types and call stubs for the three worlds of
//! `wit/freeway.wit`, and for the optional `embedder` interface a provider may export beside
//! `adapter` (looked up per plugin, see `registry`). The `types` interface is generated once
//! (in `provider`) and shared by the others, so an error or usage record is the same Rust
//! type whichever plugin made it.
//!
//! Exports are called asynchronously (on a wasmtime fiber): WASI's blocking calls, such as the
//! panic message a Rust guest writes to stderr before it traps, then await instead of blocking
//! a tokio worker with a nested runtime.

pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider",
        path: "../wit",
        exports: { default: async },
    });
}

pub mod router {
    wasmtime::component::bindgen!({
        world: "router",
        path: "../wit",
        exports: { default: async },
        with: { "freeway:plugin/types": crate::plugins::bindings::types },
    });
}

pub mod filter {
    wasmtime::component::bindgen!({
        world: "filter",
        path: "../wit",
        exports: { default: async },
        with: { "freeway:plugin/types": crate::plugins::bindings::types },
    });
}

/// The `embedder-part` world: only the `embedder` interface, whose typed exports the registry
/// loads from a provider instance that has it.
pub mod embedding {
    wasmtime::component::bindgen!({
        world: "embedder-part",
        path: "../wit",
        exports: { default: async },
        with: { "freeway:plugin/types": crate::plugins::bindings::types },
    });
}

pub use embedding::exports::freeway::plugin::embedder;
pub use filter::exports::freeway::plugin::guard;
pub use provider::exports::freeway::plugin::adapter;
pub use provider::freeway::plugin::types;
pub use router::exports::freeway::plugin::policy;

/// An upstream error kind's WIT name (`rate-limited`, `quota-exhausted`, …): how logs, route
/// explanations and `freeway plugin test` cases spell it.
pub fn error_kind_name(kind: types::ErrorKind) -> &'static str {
    match kind {
        types::ErrorKind::RateLimited => "rate-limited",
        types::ErrorKind::QuotaExhausted => "quota-exhausted",
        types::ErrorKind::Auth => "auth",
        types::ErrorKind::Permission => "permission",
        types::ErrorKind::BadRequest => "bad-request",
        types::ErrorKind::NotFound => "not-found",
        types::ErrorKind::ContextLength => "context-length",
        types::ErrorKind::ContentFilter => "content-filter",
        types::ErrorKind::Unavailable => "unavailable",
        types::ErrorKind::Timeout => "timeout",
        types::ErrorKind::Unsupported => "unsupported",
        types::ErrorKind::InvalidResponse => "invalid-response",
        types::ErrorKind::Internal => "internal",
    }
}
