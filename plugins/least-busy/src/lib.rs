//! Least-busy routing: send each request where the fewest requests are already waiting, so a
//! slow or saturated target stops receiving more work before it starts timing out.
//!
//! Ready candidates (healthy, not cooling) are ordered by ascending `in-flight`, then by
//! ascending recent `error-rate` (a value outside 0..1 or NaN counts as unknown and loses the
//! tie); remaining ties keep the configured order. In-flight counts are the host's, across
//! every request of this gateway instance, so two requests arriving together may still pick
//! the same target: the counts are a snapshot, not a reservation.
//!
//! Settings (all optional):
//!
//! - `include_cooling`: also return healthy candidates that are cooling down, after the ready
//!   ones, soonest cooldown end first (default false).

use std::cmp::Ordering;

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::{Ranking, known, unknown_last};

/// The error rate, when it is a fraction at all.
fn error_rate(candidate: &Candidate) -> Option<f32> {
    known(Some(candidate.error_rate)).filter(|rate| *rate <= 1.0)
}

struct LeastBusy;

impl Ranking for LeastBusy {
    const NAME: &'static str = "least-busy";
    const DESCRIPTION: &'static str =
        "Tries the ready target with the fewest requests in flight first";

    /// Fewer in flight first, then fewer recent errors; equal load keeps the configured order.
    fn compare(_request: &RequestInfo, a: &Candidate, b: &Candidate) -> Ordering {
        a.in_flight
            .cmp(&b.in_flight)
            .then_with(|| unknown_last(error_rate(a), error_rate(b), f32::total_cmp))
    }
}

freeway_plugin_sdk::export_policy!(LeastBusy);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{candidate, request};
    use freeway_plugin_sdk::types::{Error, ErrorKind};

    fn busy(id: u32, in_flight: u32, error_rate: f32) -> Candidate {
        Candidate {
            in_flight,
            error_rate,
            ..candidate(id)
        }
    }

    fn route(candidates: &[Candidate], settings: &str) -> Result<Vec<u32>, Error> {
        freeway_plugin_sdk::routing::route::<LeastBusy>(&request(), candidates, settings)
    }

    #[test]
    fn fewest_in_flight_first_then_fewest_errors() {
        let fleet = [
            busy(0, 3, 0.0),
            busy(1, 1, 0.5),
            busy(2, 1, 0.1),
            busy(3, 0, 0.9),
            busy(4, 2, 0.0),
        ];
        assert_eq!(route(&fleet, "{}").expect("valid"), [3, 2, 1, 4, 0]);
    }

    #[test]
    fn ties_keep_the_configured_order() {
        let fleet = [
            busy(0, 1, 0.2),
            busy(1, 1, 0.2),
            busy(2, 0, 0.0),
            busy(3, 1, 0.2),
        ];
        assert_eq!(route(&fleet, "{}").expect("valid"), [2, 0, 1, 3]);
        let ids = [busy(9, 0, 0.0), busy(4, 0, 0.0)];
        assert_eq!(route(&ids, "{}").expect("valid"), [9, 4]);
    }

    #[test]
    fn nonsense_error_rates_lose_ties() {
        let fleet = [
            busy(0, 1, f32::NAN),
            busy(1, 1, 0.7),
            busy(2, 1, -1.0),
            busy(3, 1, 2.0),
            busy(4, 0, f32::NAN),
        ];
        assert_eq!(route(&fleet, "{}").expect("valid"), [4, 1, 0, 2, 3]);
    }

    #[test]
    fn unhealthy_and_cooling_are_left_out_unless_asked() {
        let mut fleet = [
            busy(0, 5, 0.0),
            busy(1, 0, 0.0),
            busy(2, 0, 0.0),
            busy(3, 0, 0.0),
            busy(4, 4, 0.0),
        ];
        fleet[1].healthy = false;
        fleet[2].cooldown_ms = 700;
        fleet[3].cooldown_ms = 100;
        assert_eq!(route(&fleet, "{}").expect("valid"), [4, 0]);
        assert_eq!(
            route(&fleet, r#"{"include_cooling": true}"#).expect("valid"),
            [4, 0, 3, 2]
        );
        assert!(route(&[], "{}").expect("valid").is_empty());
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (settings, names) in [
            (
                r#"{"include_coling": true}"#,
                "unknown least-busy setting `include_coling`",
            ),
            (r#"{"include_cooling": 1}"#, "setting `include_cooling`"),
            ("[]", "least-busy settings"),
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
