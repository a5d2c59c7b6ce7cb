//! A router that exists in two versions with one name, for testing hot reload: version 1
//! keeps the configured order, version 2 (feature `reverse`) reverses it. Swapping the file
//! under load shows exactly when the new version started answering. Never bundled.

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{self, Candidate, RequestInfo};
use freeway_plugin_sdk::router::{self as router_world, PluginMetadata};
use freeway_plugin_sdk::types::{Error, PluginKind};

struct FlipRouter;

const REVERSE: bool = cfg!(feature = "reverse");

impl router_world::Guest for FlipRouter {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "flip-router".to_owned(),
            version: if REVERSE { "2.0.0" } else { "1.0.0" }.to_owned(),
            kind: PluginKind::Router,
            description: if REVERSE {
                "Test router v2: reverses the configured order"
            } else {
                "Test router v1: keeps the configured order"
            }
            .to_owned(),
        }
    }

    /// Takes no settings.
    fn check_settings(settings: String) -> Result<(), String> {
        match settings.trim() {
            "" | "{}" => Ok(()),
            _ => Err("flip-router takes no settings".to_owned()),
        }
    }
}

impl policy::Guest for FlipRouter {
    fn route(
        _request: RequestInfo,
        candidates: Vec<Candidate>,
        _settings: String,
    ) -> Result<Vec<u32>, Error> {
        let ids = candidates.iter().map(|c| c.id);
        Ok(if REVERSE {
            ids.rev().collect()
        } else {
            ids.collect()
        })
    }
}

freeway_plugin_sdk::export_router!(FlipRouter with_types_in freeway_plugin_sdk::router);
