//! Cheapest-first routing with escalation: use free targets while they last, and pay only
//! when they fail, the cheapest paid target first, within a per-request budget.
//!
//! Each candidate's cost for this request is estimated as
//!
//! ```text
//! (prompt-tokens × input-price + output-tokens × output-price) / 1 000 000   USD
//! ```
//!
//! where output-tokens is the request's `max-tokens`, or `expected_output_tokens` when the
//! client set no limit (the true completion is unknown before the call; `max-tokens` makes the
//! estimate an upper bound). The order is:
//!
//! 1. free targets (input and output price both 0), in configured order;
//! 2. paid targets, cheapest estimate first (ties in configured order); a target whose price
//!    is negative or not a number has no estimate and follows the paid ones.
//!
//! The host tries targets in that order and moves on only when one fails, so a paid target is
//! used only once every free one has failed or is cooling down: escalation, not load sharing.
//!
//! Paid targets whose estimate exceeds the budget are omitted, and so are those without an
//! estimate when a budget is set. The budget is the smaller of the operator's `max_price`
//! setting and the client's `max_price` request metadata (a decimal string in USD, e.g.
//! `"metadata": {"max_price": "0.002"}`): a client can lower the operator's cap, never raise
//! it. A client `max_price` that is not a non-negative number is read as 0 (free targets only):
//! the client asked for a cap, and failing open would spend money it did not agree to.
//!
//! Only ready candidates (healthy, not cooling) are returned unless `include_cooling` says
//! otherwise; cooling ones then follow the ready ones of their group (free or paid), soonest
//! cooldown end first, so a paid target still comes after every free one.
//!
//! Settings (all optional):
//!
//! - `expected_output_tokens`: completion tokens assumed when the request sets no
//!   `max_tokens` (default 256).
//! - `max_price`: the most, in USD, one request may be estimated to cost (no limit by default).
//! - `allow_paid`: false omits paid targets entirely (default true).
//! - `include_cooling`: also return healthy candidates that are cooling down (default false).

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::{Eligible, Policy, PolicySettings, ids, metadata, unknown_last};
use freeway_plugin_sdk::types::Error;

/// The request metadata key carrying the client's budget.
const MAX_PRICE_KEY: &str = "max_price";

const DEFAULT_EXPECTED_OUTPUT_TOKENS: u32 = 256;

#[derive(Debug)]
struct Settings {
    expected_output_tokens: u32,
    max_price: Option<f64>,
    allow_paid: bool,
    include_cooling: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            expected_output_tokens: DEFAULT_EXPECTED_OUTPUT_TOKENS,
            max_price: None,
            allow_paid: true,
            include_cooling: false,
        }
    }
}

impl PolicySettings for Settings {
    fn read(raw: &mut freeway_plugin_sdk::routing::Settings) -> Result<Self, Error> {
        let max_price: Option<f64> = raw.take("max_price")?;
        if let Some(price) = max_price
            && !(price.is_finite() && price >= 0.0)
        {
            return Err(raw.invalid("max_price", format!("{price} is not a price in USD")));
        }
        Ok(Self {
            expected_output_tokens: raw
                .take("expected_output_tokens")?
                .unwrap_or(DEFAULT_EXPECTED_OUTPUT_TOKENS),
            max_price,
            allow_paid: raw.take("allow_paid")?.unwrap_or(true),
            include_cooling: raw.take("include_cooling")?.unwrap_or(false),
        })
    }
}

fn is_free(candidate: &Candidate) -> bool {
    candidate.input_price == 0.0 && candidate.output_price == 0.0
}

/// The estimated cost of this request on `candidate`, in USD; `None` when its prices are not
/// prices.
fn estimate(request: &RequestInfo, candidate: &Candidate, settings: &Settings) -> Option<f64> {
    let output_tokens = request
        .max_tokens
        .unwrap_or(settings.expected_output_tokens);
    let cost = (f64::from(request.prompt_tokens) * candidate.input_price
        + f64::from(output_tokens) * candidate.output_price)
        / 1_000_000.0;
    let sane = |price: f64| price.is_finite() && price >= 0.0;
    (sane(candidate.input_price) && sane(candidate.output_price)).then_some(cost)
}

/// The budget for this request: the operator's cap, lowered by the client's when it is lower.
fn budget(request: &RequestInfo, settings: &Settings) -> Option<f64> {
    let client = metadata(request, MAX_PRICE_KEY).map(|text| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|price| price.is_finite() && *price >= 0.0)
            .unwrap_or(0.0)
    });
    match (settings.max_price, client) {
        (Some(operator), Some(client)) => Some(operator.min(client)),
        (operator, client) => operator.or(client),
    }
}

struct Cheapest;

impl Policy for Cheapest {
    const NAME: &'static str = "cheapest";
    const DESCRIPTION: &'static str =
        "Free targets first, then paid ones cheapest first, within a budget";
    type Settings = Settings;

    fn order(request: &RequestInfo, candidates: &[Candidate], settings: &Settings) -> Vec<u32> {
        let budget = budget(request, settings);
        let mut eligible = Eligible::new(candidates, settings.include_cooling);
        eligible.retain(|candidate| {
            if is_free(candidate) {
                return true;
            }
            settings.allow_paid
                && match (budget, estimate(request, candidate, settings)) {
                    (None, _) => true,
                    (Some(budget), Some(cost)) => cost <= budget,
                    (Some(_), None) => false,
                }
        });
        let (free_ready, mut paid_ready): (Vec<&Candidate>, Vec<&Candidate>) =
            eligible.ready.into_iter().partition(|c| is_free(c));
        let (free_cooling, paid_cooling): (Vec<&Candidate>, Vec<&Candidate>) =
            eligible.cooling.into_iter().partition(|c| is_free(c));
        // Stable: equal estimates keep the configured order.
        paid_ready.sort_by(|a, b| {
            unknown_last(
                estimate(request, a, settings),
                estimate(request, b, settings),
                f64::total_cmp,
            )
        });
        ids(free_ready
            .into_iter()
            .chain(free_cooling)
            .chain(paid_ready)
            .chain(paid_cooling))
    }
}

freeway_plugin_sdk::export_policy!(Cheapest);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{candidate, request};
    use freeway_plugin_sdk::types::ErrorKind;

    /// USD per million tokens.
    fn priced(id: u32, input_price: f64, output_price: f64) -> Candidate {
        Candidate {
            input_price,
            output_price,
            ..candidate(id)
        }
    }

    fn with_budget(max_price: &str) -> RequestInfo {
        RequestInfo {
            metadata: vec![(MAX_PRICE_KEY.to_owned(), max_price.to_owned())],
            ..request()
        }
    }

    fn route(
        request: &RequestInfo,
        candidates: &[Candidate],
        settings: &str,
    ) -> Result<Vec<u32>, Error> {
        freeway_plugin_sdk::routing::route::<Cheapest>(request, candidates, settings)
    }

    /// With the default request (1000 prompt tokens, 256 assumed output tokens):
    /// 0: $0.0035, 1: free, 2: $0.00106, 3: free, 4: $0.0002, 5: $0.0035.
    fn fleet() -> Vec<Candidate> {
        vec![
            priced(0, 2.5, 4.0),
            priced(1, 0.0, 0.0),
            priced(2, 0.3, 3.0),
            priced(3, 0.0, 0.0),
            priced(4, 0.2, 0.0),
            priced(5, 2.5, 4.0),
        ]
    }

    #[test]
    fn free_first_in_configured_order_then_cheapest_paid() {
        assert_eq!(
            route(&request(), &fleet(), "{}").expect("valid"),
            [1, 3, 4, 2, 0, 5]
        );
    }

    #[test]
    fn output_tokens_come_from_max_tokens_or_the_setting() {
        // Input-heavy 6 ($3/M in, $0 out) against output-heavy 7 ($0 in, $10/M out) for
        // 1000 prompt tokens: $0.003 against $0.01 × output tokens / 1000.
        let candidates = [priced(6, 3.0, 0.0), priced(7, 0.0, 10.0)];
        // 256 assumed: 7 costs $0.00256.
        assert_eq!(route(&request(), &candidates, "{}").expect("valid"), [7, 6]);
        let long = RequestInfo {
            max_tokens: Some(400),
            ..request()
        };
        assert_eq!(route(&long, &candidates, "{}").expect("valid"), [6, 7]);
        assert_eq!(
            route(
                &request(),
                &candidates,
                r#"{"expected_output_tokens": 1000}"#
            )
            .expect("valid"),
            [6, 7]
        );
    }

    #[test]
    fn a_budget_omits_what_would_cost_more() {
        let settings = r#"{"max_price": 0.002}"#;
        assert_eq!(
            route(&request(), &fleet(), settings).expect("valid"),
            [1, 3, 4, 2]
        );
        assert_eq!(
            route(&with_budget("0.001"), &fleet(), "{}").expect("valid"),
            [1, 3, 4]
        );
        // Exactly the budget is within it.
        assert_eq!(
            route(&with_budget("0.0002"), &fleet(), "{}").expect("valid"),
            [1, 3, 4]
        );
        assert_eq!(
            route(&with_budget("0"), &fleet(), "{}").expect("valid"),
            [1, 3]
        );
    }

    #[test]
    fn the_client_can_lower_the_operators_cap_but_not_raise_it() {
        let settings = r#"{"max_price": 0.002}"#;
        assert_eq!(
            route(&with_budget("1"), &fleet(), settings).expect("valid"),
            [1, 3, 4, 2]
        );
        assert_eq!(
            route(&with_budget("0.0005"), &fleet(), settings).expect("valid"),
            [1, 3, 4]
        );
    }

    #[test]
    fn an_unreadable_client_budget_means_free_only() {
        for bad in ["cheap", "-1", "NaN", "inf", ""] {
            assert_eq!(
                route(&with_budget(bad), &fleet(), "{}").expect("valid"),
                [1, 3],
                "{bad}"
            );
        }
        assert_eq!(
            route(&with_budget(" 0.002 "), &fleet(), "{}").expect("valid"),
            [1, 3, 4, 2]
        );
    }

    #[test]
    fn allow_paid_false_keeps_free_targets_only() {
        assert_eq!(
            route(&request(), &fleet(), r#"{"allow_paid": false}"#).expect("valid"),
            [1, 3]
        );
        let paid_only = [priced(0, 1.0, 1.0)];
        assert!(
            route(&request(), &paid_only, r#"{"allow_paid": false}"#)
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn nonsense_prices_have_no_estimate() {
        let candidates = [
            priced(0, f64::NAN, 1.0),
            priced(1, 5.0, 5.0),
            priced(2, -1.0, 0.0),
            priced(3, 0.0, 0.0),
        ];
        assert_eq!(
            route(&request(), &candidates, "{}").expect("valid"),
            [3, 1, 0, 2]
        );
        assert_eq!(
            route(&with_budget("10"), &candidates, "{}").expect("valid"),
            [3, 1]
        );
    }

    #[test]
    fn unhealthy_and_cooling_are_left_out_unless_asked() {
        let mut candidates = fleet();
        candidates[1].healthy = false;
        candidates[3].cooldown_ms = 5_000;
        candidates[4].cooldown_ms = 100;
        candidates[0].cooldown_ms = 50;
        assert_eq!(route(&request(), &candidates, "{}").expect("valid"), [2, 5]);
        // Every free target (cooling or not) before any paid one.
        assert_eq!(
            route(&request(), &candidates, r#"{"include_cooling": true}"#).expect("valid"),
            [3, 2, 5, 0, 4]
        );
        // The budget applies to cooling targets too.
        assert_eq!(
            route(
                &with_budget("0.002"),
                &candidates,
                r#"{"include_cooling": true}"#
            )
            .expect("valid"),
            [3, 2, 4]
        );
        assert!(route(&request(), &[], "{}").expect("valid").is_empty());
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (settings, names) in [
            (r#"{"max_cost": 1}"#, "unknown cheapest setting `max_cost`"),
            (r#"{"max_price": -0.5}"#, "setting `max_price`"),
            (r#"{"max_price": "0.5"}"#, "setting `max_price`"),
            (
                r#"{"expected_output_tokens": -1}"#,
                "setting `expected_output_tokens`",
            ),
            (
                r#"{"expected_output_tokens": 1e12}"#,
                "setting `expected_output_tokens`",
            ),
            (r#"{"allow_paid": "no"}"#, "setting `allow_paid`"),
            ("[1]", "cheapest settings"),
        ] {
            let error = route(&request(), &fleet(), settings).expect_err(settings);
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
