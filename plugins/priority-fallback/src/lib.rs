//! The default routing policy: try targets in the order the operator configured them, skipping
//! those that cannot answer now.
//!
//! A candidate is ready when it is healthy and not cooling down. With
//! `{"include_cooling": true}` the healthy-but-cooling candidates are appended after the ready
//! ones, soonest cooldown end first, so a request still has somewhere to go when every target
//! is briefly rate-limited. Unhealthy candidates are never returned: the circuit breaker holds
//! them out on purpose.

use std::cmp::Ordering;

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::Ranking;

struct PriorityFallback;

impl Ranking for PriorityFallback {
    const NAME: &'static str = "priority-fallback";
    const DESCRIPTION: &'static str =
        "Tries targets in configured order, skipping unhealthy and cooling ones";

    /// Every ready candidate ranks the same: the configured order stands.
    fn compare(_request: &RequestInfo, _a: &Candidate, _b: &Candidate) -> Ordering {
        Ordering::Equal
    }
}

freeway_plugin_sdk::export_policy!(PriorityFallback);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{self, request};
    use freeway_plugin_sdk::types::{Error, ErrorKind};

    fn candidate(id: u32, healthy: bool, cooldown_ms: u64) -> Candidate {
        Candidate {
            healthy,
            cooldown_ms,
            ..fixtures::candidate(id)
        }
    }

    fn route(candidates: &[Candidate], settings: &str) -> Result<Vec<u32>, Error> {
        freeway_plugin_sdk::routing::route::<PriorityFallback>(&request(), candidates, settings)
    }

    fn fleet() -> Vec<Candidate> {
        vec![
            candidate(0, true, 5_000),
            candidate(1, false, 0),
            candidate(2, true, 0),
            candidate(3, true, 1_000),
            candidate(4, true, 0),
            candidate(5, false, 200),
            candidate(6, true, 1_000),
        ]
    }

    #[test]
    fn ready_candidates_in_configured_order() {
        assert_eq!(route(&fleet(), "{}").expect("valid"), [2, 4]);
        assert_eq!(
            route(&fleet(), r#"{"include_cooling": false}"#).expect("valid"),
            [2, 4]
        );
    }

    #[test]
    fn cooling_candidates_follow_soonest_first_when_asked() {
        assert_eq!(
            route(&fleet(), r#"{"include_cooling": true}"#).expect("valid"),
            [2, 4, 3, 6, 0]
        );
    }

    #[test]
    fn nothing_ready_means_nothing_to_try() {
        let all_down = [candidate(0, false, 0), candidate(1, true, 10)];
        assert!(route(&all_down, "").expect("valid").is_empty());
        assert!(route(&[], "{}").expect("valid").is_empty());
    }

    #[test]
    fn ids_are_returned_as_given() {
        let candidates = [candidate(7, true, 0), candidate(3, true, 0)];
        assert_eq!(route(&candidates, "{}").expect("valid"), [7, 3]);
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for settings in [
            r#"{"include_coling": true}"#,
            r#"{"include_cooling": "yes"}"#,
            "[]",
        ] {
            let error = route(&fleet(), settings).expect_err("invalid");
            assert_eq!(error.kind, ErrorKind::Internal);
            assert!(error.message.contains("priority-fallback setting"));
        }
    }
}
