//! The host's one bindgen site: Rust types and call stubs for the worlds of `wit/freeway.wit`
//! (provider, router, filter, and since 0.2.1 fitter, the router's optional `judging`
//! interface and the provider's optional `embedder` interface, each looked up per plugin, see
//! `registry`). The `types` interface is generated once (in `provider`) and shared by the other
//! worlds, so an error or usage record is the same Rust type whichever plugin made it.
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

pub mod fitter {
    wasmtime::component::bindgen!({
        world: "fitter",
        path: "../wit",
        exports: { default: async },
        with: { "freeway:plugin/types": crate::plugins::bindings::types },
    });
}

/// Only its `judging` interface is used: a judged router is loaded as a router, and the
/// interface's exports are looked up beside `policy` in the same instance.
pub mod judged_router {
    wasmtime::component::bindgen!({
        world: "judged-router",
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
pub use fitter::exports::freeway::plugin::fitting;
pub use judged_router::exports::freeway::plugin::judging;
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
