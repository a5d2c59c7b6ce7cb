//! Lowest-latency routing: try the target that has been answering fastest first.
//!
//! Streams are ranked by time to first token (`ttft-ms`), which is what a streaming user
//! waits for; other requests by whole-answer latency (`latency-ms`). Both are the host's
//! moving averages. The two are not comparable, so a stream never falls back to `latency-ms`
//! for a target without a `ttft-ms`: that target's latency counts as unknown.
//!
//! Known latencies come first, fastest first; unknown ones (never measured, or NaN/negative)
//! follow in configured order. With `{"explore": true}` unknown ones come *first* instead, so
//! a new target gets measured by real traffic; it drops into its place once the host has an
//! average. Ties keep the configured order. Only ready candidates (healthy, not cooling) are
//! returned unless `include_cooling` says otherwise.
//!
//! Settings (all optional):
//!
//! - `explore`: put unmeasured targets first (default false).
//! - `include_cooling`: also return healthy candidates that are cooling down, after the ready
//!   ones, soonest cooldown end first (default false).

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::{Eligible, Policy, PolicySettings, known, unknown_last};
use freeway_plugin_sdk::types::Error;

#[derive(Debug, Default)]
struct Settings {
    explore: bool,
    include_cooling: bool,
}

impl PolicySettings for Settings {
    fn read(raw: &mut freeway_plugin_sdk::routing::Settings) -> Result<Self, Error> {
        Ok(Self {
            explore: raw.take("explore")?.unwrap_or(false),
            include_cooling: raw.take("include_cooling")?.unwrap_or(false),
        })
    }
}

/// The latency that matters for this request, when the host has measured it.
fn latency(request: &RequestInfo, candidate: &Candidate) -> Option<f32> {
    known(if request.stream {
        candidate.ttft_ms
    } else {
        candidate.latency_ms
    })
}

struct LowestLatency;

impl Policy for LowestLatency {
    const NAME: &'static str = "lowest-latency";
    const DESCRIPTION: &'static str =
        "Tries the fastest ready target first (time to first token for streams)";
    type Settings = Settings;

    fn order(request: &RequestInfo, candidates: &[Candidate], settings: &Settings) -> Vec<u32> {
        let mut eligible = Eligible::new(candidates, settings.include_cooling);
        // Stable: equal latencies, and all unknown ones, keep the configured order.
        eligible.ready.sort_by(|a, b| {
            let (a, b) = (latency(request, a), latency(request, b));
            let known_first = unknown_last(a, b, f32::total_cmp);
            if settings.explore && a.is_some() != b.is_some() {
                known_first.reverse()
            } else {
                known_first
            }
        });
        eligible.ids()
    }
}

freeway_plugin_sdk::export_policy!(LowestLatency);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{candidate, request};
    use freeway_plugin_sdk::types::ErrorKind;

    fn timed(id: u32, latency_ms: Option<f32>, ttft_ms: Option<f32>) -> Candidate {
        Candidate {
            latency_ms,
            ttft_ms,
            ..candidate(id)
        }
    }

    fn route(stream: bool, candidates: &[Candidate], settings: &str) -> Result<Vec<u32>, Error> {
        let request = RequestInfo {
            stream,
            ..request()
        };
        freeway_plugin_sdk::routing::route::<LowestLatency>(&request, candidates, settings)
    }

    fn fleet() -> Vec<Candidate> {
        vec![
            timed(0, None, None),
            timed(1, Some(900.0), Some(100.0)),
            timed(2, Some(400.0), Some(300.0)),
            timed(3, Some(1200.0), None),
            timed(4, None, Some(50.0)),
            timed(5, Some(400.0), Some(300.0)),
        ]
    }

    #[test]
    fn whole_answers_by_latency_streams_by_time_to_first_token() {
        assert_eq!(
            route(false, &fleet(), "{}").expect("valid"),
            [2, 5, 1, 3, 0, 4]
        );
        assert_eq!(
            route(true, &fleet(), "{}").expect("valid"),
            [4, 1, 2, 5, 0, 3]
        );
    }

    #[test]
    fn explore_puts_unmeasured_targets_first() {
        let explore = r#"{"explore": true}"#;
        assert_eq!(
            route(false, &fleet(), explore).expect("valid"),
            [0, 4, 2, 5, 1, 3]
        );
        assert_eq!(
            route(true, &fleet(), explore).expect("valid"),
            [0, 3, 4, 1, 2, 5]
        );
    }

    #[test]
    fn nonsense_latencies_count_as_unknown() {
        let candidates = [
            timed(0, Some(f32::NAN), None),
            timed(1, Some(-5.0), None),
            timed(2, Some(f32::INFINITY), None),
            timed(3, Some(10.0), None),
        ];
        assert_eq!(
            route(false, &candidates, "{}").expect("valid"),
            [3, 0, 1, 2]
        );
    }

    #[test]
    fn unhealthy_and_cooling_are_left_out_unless_asked() {
        let mut candidates = fleet();
        candidates[4].healthy = false;
        candidates[1].cooldown_ms = 300;
        candidates[0].cooldown_ms = 30;
        assert_eq!(route(true, &candidates, "{}").expect("valid"), [2, 5, 3]);
        assert_eq!(
            route(true, &candidates, r#"{"include_cooling": true}"#).expect("valid"),
            [2, 5, 3, 0, 1]
        );
        assert!(route(true, &[], "{}").expect("valid").is_empty());
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (settings, names) in [
            (
                r#"{"exploit": true}"#,
                "unknown lowest-latency setting `exploit`",
            ),
            (r#"{"explore": "true"}"#, "setting `explore`"),
            (r#"{"include_cooling": 0}"#, "setting `include_cooling`"),
            ("1", "lowest-latency settings"),
        ] {
            let error = route(false, &fleet(), settings).expect_err(settings);
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
