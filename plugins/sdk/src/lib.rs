//! Guest side of the `freeway:plugin` WIT package, for plugins written in Rust.
//!
//! This crate is the one place guest bindings are generated. A plugin depends on it, implements
//! the generated `Guest` traits of its world and names its type with the world's export macro:
//!
//! ```ignore
//! struct MyAdapter;
//! impl freeway_plugin_sdk::provider::Guest for MyAdapter { /* metadata */ }
//! impl freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::Guest for MyAdapter { /* ... */ }
//! freeway_plugin_sdk::export_provider!(MyAdapter with_types_in freeway_plugin_sdk::provider);
//! ```
//!
//! It also holds what several plugins share, so every adapter reads upstream answers the same
//! way: SSE framing (`sse`) and the stream-decoder skeleton around it (`stream`), rate-limit
//! headers and error construction (`http`), `data:` URLs and media types (`media`); behind
//! features, the upstream-error skeleton (`upstream`), OpenAI's request and answer objects for
//! translating adapters (`openai`), and what routing policies share, down to the export of a
//! whole router (`routing`).

#[cfg(feature = "fitting")]
pub mod fitting;
pub mod http;
pub mod media;
#[cfg(feature = "openai")]
pub mod openai;
#[cfg(feature = "routing")]
pub mod routing;
pub mod sse;
pub mod stream;
#[cfg(feature = "upstream")]
pub mod upstream;

/// The shared `types` interface (errors, rate limits, usage, metadata), one Rust type for all
/// worlds so helpers work for every kind of plugin.
pub use provider::freeway::plugin::types;

// The export macros at the crate root, where the example above names them.
pub use embedder::export_embedder;
pub use filter::export_filter;
pub use fitter::export_fitter;
pub use provider::export_provider;
pub use router::export_router;

/// Bindings for the `provider` world (provider adapters).
pub mod provider {
    wit_bindgen::generate!({
        world: "provider",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_provider",
        default_bindings_module: "freeway_plugin_sdk::provider",
    });
}

/// Bindings for the `embedder-part` world: the optional `embedder` interface alone. An adapter
/// that can embed implements its `Guest` too and exports both halves into one component:
/// `export_provider!(A with_types_in freeway_plugin_sdk::provider);` and
/// `export_embedder!(A with_types_in freeway_plugin_sdk::embedder);`.
pub mod embedder {
    wit_bindgen::generate!({
        world: "embedder-part",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_embedder",
        default_bindings_module: "freeway_plugin_sdk::embedder",
        with: { "freeway:plugin/types@0.2.1": crate::types },
    });
}

/// Bindings for the `router` world (routing policies).
pub mod router {
    wit_bindgen::generate!({
        world: "router",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_router",
        default_bindings_module: "freeway_plugin_sdk::router",
        with: { "freeway:plugin/types@0.2.1": crate::types },
    });
}

/// Bindings for the `filter` world (request/response guards).
pub mod filter {
    wit_bindgen::generate!({
        world: "filter",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_filter",
        default_bindings_module: "freeway_plugin_sdk::filter",
        with: { "freeway:plugin/types@0.2.1": crate::types },
    });
}

/// Bindings for the `fitter` world (context fitters, contract 0.2.1).
///
/// The `judged-router` world is not generated here: its `policy` export would define the
/// same export glue as the `router` world's in one crate. A judging router generates it in its
/// own crate (see `plugins/cascade`).
pub mod fitter {
    wit_bindgen::generate!({
        world: "fitter",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_fitter",
        default_bindings_module: "freeway_plugin_sdk::fitter",
        with: { "freeway:plugin/types@0.2.1": crate::types },
    });
}
