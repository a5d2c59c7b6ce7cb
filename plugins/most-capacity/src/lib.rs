//! Most-capacity routing: try the target with the most free allowance left first, so free
//! tiers are drained evenly instead of one after another and a daily quota is less likely to
//! run out in the middle of a busy hour.
//!
//! Ready candidates (healthy, not cooling) are ordered by
//!
//! 1. ascending `quota-used` (the fraction of the daily free allowance spent),
//! 2. then descending `remaining-requests` (the tightest request window),
//! 3. then descending `remaining-tokens` (the tightest token window).
//!
//! At each step a known value beats an unknown one (a target whose provider publishes no
//! limits is tried after those that are known to have room; a `quota-used` outside 0..1 or
//! NaN counts as unknown); remaining ties keep the configured order.
//!
//! Settings (all optional):
//!
//! - `include_cooling`: also return healthy candidates that are cooling down, after the ready
//!   ones, soonest cooldown end first (default false).

use std::cmp::Ordering;

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::{Ranking, known, unknown_last};

struct MostCapacity;

impl Ranking for MostCapacity {
    const NAME: &'static str = "most-capacity";
    const DESCRIPTION: &'static str =
        "Tries the ready target with the most free quota and rate limit left first";

    /// Which of two candidates has more room; equal room keeps the configured order.
    fn compare(_request: &RequestInfo, a: &Candidate, b: &Candidate) -> Ordering {
        let quota = |c: &Candidate| known(c.quota_used).filter(|used| *used <= 1.0);
        let descending = |a: &u64, b: &u64| b.cmp(a);
        unknown_last(quota(a), quota(b), f32::total_cmp)
            .then_with(|| unknown_last(a.remaining_requests, b.remaining_requests, descending))
            .then_with(|| unknown_last(a.remaining_tokens, b.remaining_tokens, descending))
    }
}

freeway_plugin_sdk::export_policy!(MostCapacity);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{candidate, request};
    use freeway_plugin_sdk::types::{Error, ErrorKind};

    fn room(
        id: u32,
        quota_used: Option<f32>,
        requests: Option<u64>,
        tokens: Option<u64>,
    ) -> Candidate {
        Candidate {
            quota_used,
            remaining_requests: requests,
            remaining_tokens: tokens,
            ..candidate(id)
        }
    }

    fn route(candidates: &[Candidate], settings: &str) -> Result<Vec<u32>, Error> {
        freeway_plugin_sdk::routing::route::<MostCapacity>(&request(), candidates, settings)
    }

    #[test]
    fn least_quota_used_first() {
        let fleet = [
            room(0, Some(0.9), Some(1_000), None),
            room(1, Some(0.1), Some(1), None),
            room(2, None, Some(10_000), None),
            room(3, Some(0.5), None, None),
        ];
        assert_eq!(route(&fleet, "{}").expect("valid"), [1, 3, 0, 2]);
    }

    #[test]
    fn then_most_requests_then_most_tokens() {
        let fleet = [
            room(0, Some(0.2), Some(5), Some(100)),
            room(1, Some(0.2), Some(50), Some(1)),
            room(2, Some(0.2), None, Some(1_000_000)),
            room(3, Some(0.2), Some(5), Some(9_000)),
            room(4, Some(0.2), Some(5), None),
        ];
        assert_eq!(route(&fleet, "{}").expect("valid"), [1, 3, 0, 4, 2]);
    }

    #[test]
    fn unknown_everything_keeps_the_configured_order() {
        let fleet = [
            room(3, None, None, None),
            room(1, None, None, None),
            room(2, None, Some(0), None),
        ];
        // Zero requests left is still known, and known beats unknown: the host's cooldown,
        // not this policy, is what holds an exhausted target out.
        assert_eq!(route(&fleet, "{}").expect("valid"), [2, 3, 1]);
        let ties = [
            room(5, Some(0.3), Some(9), Some(9)),
            room(4, Some(0.3), Some(9), Some(9)),
        ];
        assert_eq!(route(&ties, "{}").expect("valid"), [5, 4]);
    }

    #[test]
    fn nonsense_quota_counts_as_unknown() {
        let fleet = [
            room(0, Some(f32::NAN), Some(100), None),
            room(1, Some(1.5), Some(200), None),
            room(2, Some(1.0), Some(1), None),
            room(3, Some(-0.1), Some(300), None),
        ];
        assert_eq!(route(&fleet, "{}").expect("valid"), [2, 3, 1, 0]);
    }

    #[test]
    fn unhealthy_and_cooling_are_left_out_unless_asked() {
        let mut fleet = [
            room(0, Some(0.0), None, None),
            room(1, Some(0.5), None, None),
            room(2, Some(0.9), None, None),
            room(3, Some(0.1), None, None),
        ];
        fleet[0].healthy = false;
        fleet[3].cooldown_ms = 60_000;
        assert_eq!(route(&fleet, "{}").expect("valid"), [1, 2]);
        assert_eq!(
            route(&fleet, r#"{"include_cooling": true}"#).expect("valid"),
            [1, 2, 3]
        );
        assert!(route(&[], "").expect("valid").is_empty());
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (settings, names) in [
            (r#"{"by": "tokens"}"#, "unknown most-capacity setting `by`"),
            (r#"{"include_cooling": []}"#, "setting `include_cooling`"),
            ("{not json", "most-capacity settings"),
        ] {
            let error = route(&[candidate(0)], settings).expect_err(settings);
            assert_eq!(error.kind, ErrorKind::Internal);
            assert!(!error.retryable);
            assert!(
                error.message.contains(names),
                "{settings}: {}",
                error.message
            );
        }
    }
}
