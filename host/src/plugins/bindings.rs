//! The host's one bindgen site: Rust types and call stubs for the three worlds of
//! `wit/freeway.wit`. The `types` interface is generated once (in `provider`) and shared by the
//! other two worlds, so an error or usage record is the same Rust type whichever plugin made it.

pub mod provider {
    wasmtime::component::bindgen!({
        world: "provider",
        path: "../wit",
    });
}

pub mod router {
    wasmtime::component::bindgen!({
        world: "router",
        path: "../wit",
        with: { "freeway:plugin/types": crate::plugins::bindings::types },
    });
}

pub mod filter {
    wasmtime::component::bindgen!({
        world: "filter",
        path: "../wit",
        with: { "freeway:plugin/types": crate::plugins::bindings::types },
    });
}

pub use filter::exports::freeway::plugin::guard;
pub use provider::exports::freeway::plugin::adapter;
pub use provider::freeway::plugin::types;
pub use router::exports::freeway::plugin::policy;
