//! {{name}}: a Freeway router that tries the cheapest ready candidate first.
//!
//! Ready means healthy and not cooling down; candidates that are not ready come after the
//! ready ones (also cheapest first), so failover can still reach them.

wit_bindgen::generate!({ path: "wit", world: "router" });

use exports::freeway::plugin::policy::{Candidate, Guest as Policy, RequestInfo};
use freeway::plugin::types::{Error, ErrorKind, PluginKind};

struct Plugin;

impl Guest for Plugin {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "{{name}}".into(),
            version: "0.1.0".into(),
            kind: PluginKind::Router,
            description: "tries the cheapest ready candidate first".into(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        no_settings(&settings)
    }
}

impl Policy for Plugin {
    fn route(
        _request: RequestInfo,
        candidates: Vec<Candidate>,
        settings: String,
    ) -> Result<Vec<u32>, Error> {
        no_settings(&settings).map_err(|message| Error {
            kind: ErrorKind::Internal,
            retryable: false,
            message,
            status: None,
            retry_after_ms: None,
            code: None,
            param: None,
        })?;
        Ok(by_price(&candidates))
    }
}

/// This router takes no settings: refuse anything but an empty object, so a typo in the
/// config fails `freeway check` instead of being ignored.
fn no_settings(settings: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(settings) {
        Ok(serde_json::Value::Object(map)) if map.is_empty() => Ok(()),
        _ if settings.trim().is_empty() => Ok(()),
        _ => Err(format!("{{name}} takes no settings, got {settings}")),
    }
}

/// Ready candidates first, then the rest; cheapest (prompt + completion price) first in each.
fn by_price(candidates: &[Candidate]) -> Vec<u32> {
    let mut ordered: Vec<&Candidate> = candidates.iter().collect();
    ordered.sort_by(|a, b| {
        let ready = |c: &Candidate| !(c.healthy && c.cooldown_ms == 0);
        let price = |c: &Candidate| c.input_price + c.output_price;
        (ready(a), price(a))
            .partial_cmp(&(ready(b), price(b)))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    ordered.iter().map(|c| c.id).collect()
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: u32, price: f64, healthy: bool) -> Candidate {
        Candidate {
            id,
            provider: format!("p{id}"),
            model: "m".into(),
            healthy,
            cooldown_ms: 0,
            remaining_requests: None,
            remaining_tokens: None,
            quota_used: None,
            in_flight: 0,
            latency_ms: None,
            ttft_ms: None,
            error_rate: 0.0,
            input_price: price,
            output_price: price,
            context_window: None,
            weight: 1,
            tags: vec![],
        }
    }

    #[test]
    fn cheapest_ready_first_unhealthy_last() {
        let list = [candidate(0, 3.0, true), candidate(1, 0.0, false), candidate(2, 1.0, true)];
        assert_eq!(by_price(&list), vec![2, 0, 1]);
    }

    #[test]
    fn settings_must_be_empty() {
        assert!(no_settings("{}").is_ok());
        assert!(no_settings("{\"max\": 1}").is_err());
    }
}
