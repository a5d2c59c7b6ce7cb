//! A routing policy that misbehaves on request, for testing the host's sandbox around routers.
//! Never bundled.
//!
//! Settings `{"behaviour": ...}` pick what `route` does: `"loop"` spins forever, `"oom"`
//! allocates until the instance traps, `"trap"` (the default) panics, and `"reverse"` behaves:
//! it returns every candidate id in reverse order, an order no built-in policy produces, so a
//! test can tell that this router's answer was used.

use std::hint::black_box;

use serde::Deserialize;

use freeway_plugin_sdk::http::error;
use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{self, Candidate, RequestInfo};
use freeway_plugin_sdk::router::{self as router_world, PluginMetadata};
use freeway_plugin_sdk::types::{Error, ErrorKind, PluginKind};

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Behaviour {
    Loop,
    Oom,
    #[default]
    Trap,
    Reverse,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    behaviour: Behaviour,
}

fn parse_settings(json: &str) -> Result<Settings, Error> {
    let json = json.trim();
    if json.is_empty() {
        return Ok(Settings::default());
    }
    // serde would also fill a struct from a JSON array.
    if !json.starts_with('{') {
        return Err(error(
            ErrorKind::Internal,
            false,
            "invalid hostile-router settings: expected a JSON object",
        ));
    }
    serde_json::from_str(json).map_err(|problem| {
        error(
            ErrorKind::Internal,
            false,
            format!("invalid hostile-router settings: {problem}"),
        )
    })
}

/// Never returns; `black_box` keeps the optimiser from proving the loop has no effect.
fn spin_forever() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Writes 1 MiB blocks of non-zero bytes until allocation fails and the instance traps.
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(black_box(vec![0xA5; 1 << 20]));
        black_box(&mut hoard);
    }
}

fn reversed(candidates: &[Candidate]) -> Vec<u32> {
    candidates
        .iter()
        .rev()
        .map(|candidate| candidate.id)
        .collect()
}

struct HostileRouter;

impl router_world::Guest for HostileRouter {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "hostile-router".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Router,
            description: "Test-only router that loops, exhausts memory, traps or reverses"
                .to_owned(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        parse_settings(&settings)
            .map(drop)
            .map_err(|problem| problem.message)
    }
}

impl policy::Guest for HostileRouter {
    fn route(
        _request: RequestInfo,
        candidates: Vec<Candidate>,
        settings: String,
    ) -> Result<Vec<u32>, Error> {
        match parse_settings(&settings)?.behaviour {
            Behaviour::Loop => spin_forever(),
            Behaviour::Oom => exhaust_memory(),
            Behaviour::Trap => panic!("hostile router trapped on purpose"),
            Behaviour::Reverse => Ok(reversed(&candidates)),
        }
    }
}

freeway_plugin_sdk::export_router!(HostileRouter with_types_in freeway_plugin_sdk::router);

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: u32) -> Candidate {
        Candidate {
            id,
            provider: "p".into(),
            model: "m".into(),
            healthy: id != 1,
            cooldown_ms: 0,
            remaining_requests: None,
            remaining_tokens: None,
            quota_used: None,
            in_flight: 0,
            latency_ms: None,
            ttft_ms: None,
            error_rate: 0.0,
            input_price: 0.0,
            output_price: 0.0,
            context_window: None,
            weight: 1,
            tags: Vec::new(),
        }
    }

    #[test]
    fn behaviour_comes_from_settings_and_defaults_to_trap() {
        let behaviour = |json: &str| parse_settings(json).expect("valid").behaviour;
        assert_eq!(behaviour("{}"), Behaviour::Trap);
        assert_eq!(behaviour(""), Behaviour::Trap);
        assert_eq!(behaviour(r#"{"behaviour":"loop"}"#), Behaviour::Loop);
        assert_eq!(behaviour(r#"{"behaviour":"oom"}"#), Behaviour::Oom);
        assert_eq!(behaviour(r#"{"behaviour":"reverse"}"#), Behaviour::Reverse);
        assert!(parse_settings(r#"{"behaviour":"explode"}"#).is_err());
        assert!(parse_settings(r#"["reverse"]"#).is_err());
    }

    #[test]
    fn reverse_returns_every_id_backwards() {
        let candidates: Vec<Candidate> = (0..4).map(candidate).collect();
        assert_eq!(reversed(&candidates), [3, 2, 1, 0]);
    }
}
