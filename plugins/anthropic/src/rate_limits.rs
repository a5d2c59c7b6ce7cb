//! `read-rate-limits`: Anthropic's `anthropic-ratelimit-*` headers and `retry-after`.
//!
//! Anthropic publishes a requests window and three token windows (`tokens`, `input-tokens`,
//! `output-tokens`); resets are RFC 3339 timestamps. The record has one token window, so it
//! takes `tokens`, which Anthropic defines as the most restrictive limit in effect, and
//! otherwise whichever of the input and output windows has fewer tokens left.

use freeway_plugin_sdk::http::{header, retry_after_from_headers, rfc3339_ms_from_now};
use freeway_plugin_sdk::types::RateLimits;

pub(crate) fn read_rate_limits(_status: u16, headers: &[(String, String)]) -> RateLimits {
    let requests = window(headers, "requests");
    let tokens = ["tokens", "input-tokens", "output-tokens"]
        .iter()
        .map(|what| window(headers, what))
        .filter(Window::is_known)
        .reduce(|tightest, other| {
            // The combined window wins outright; it is read first.
            if tightest.from_combined {
                return tightest;
            }
            match (tightest.remaining, other.remaining) {
                (Some(kept), Some(candidate)) if candidate < kept => other,
                (None, Some(_)) => other,
                _ => tightest,
            }
        })
        .unwrap_or_default();
    RateLimits {
        retry_after_ms: retry_after_from_headers(headers),
        limit_requests: requests.limit,
        remaining_requests: requests.remaining,
        reset_requests_ms: requests.reset_ms,
        limit_tokens: tokens.limit,
        remaining_tokens: tokens.remaining,
        reset_tokens_ms: tokens.reset_ms,
    }
}

#[derive(Default)]
struct Window {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_ms: Option<u64>,
    from_combined: bool,
}

impl Window {
    fn is_known(&self) -> bool {
        self.limit.is_some() || self.remaining.is_some() || self.reset_ms.is_some()
    }
}

fn window(headers: &[(String, String)], what: &str) -> Window {
    let read = |field: &str| header(headers, &format!("anthropic-ratelimit-{what}-{field}"));
    let count = |field: &str| read(field).and_then(|value| value.trim().parse::<u64>().ok());
    Window {
        limit: count("limit"),
        remaining: count("remaining"),
        reset_ms: read("reset").and_then(rfc3339_ms_from_now),
        from_combined: what == "tokens",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn requests_and_combined_tokens() {
        let limits = read_rate_limits(
            429,
            &headers(&[
                ("retry-after", "14"),
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "9999-01-01T00:00:00Z"),
                ("anthropic-ratelimit-tokens-limit", "40000"),
                ("anthropic-ratelimit-tokens-remaining", "38000"),
                ("anthropic-ratelimit-tokens-reset", "2020-01-01T00:00:00Z"),
                ("anthropic-ratelimit-input-tokens-remaining", "1"),
            ]),
        );
        assert_eq!(limits.retry_after_ms, Some(14_000));
        assert_eq!(limits.limit_requests, Some(50));
        assert_eq!(limits.remaining_requests, Some(0));
        assert!(limits.reset_requests_ms.is_some_and(|ms| ms > 0));
        assert_eq!(limits.limit_tokens, Some(40_000));
        assert_eq!(limits.remaining_tokens, Some(38_000));
        assert_eq!(
            limits.reset_tokens_ms,
            Some(0),
            "a reset in the past is now"
        );
    }

    #[test]
    fn tightest_of_input_and_output_without_the_combined_window() {
        let limits = read_rate_limits(
            200,
            &headers(&[
                ("anthropic-ratelimit-input-tokens-limit", "40000"),
                ("anthropic-ratelimit-input-tokens-remaining", "39000"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2020-01-01T00:00:00Z",
                ),
                ("anthropic-ratelimit-output-tokens-limit", "8000"),
                ("anthropic-ratelimit-output-tokens-remaining", "100"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2020-01-01T00:00:01Z",
                ),
            ]),
        );
        assert_eq!(limits.limit_tokens, Some(8_000));
        assert_eq!(limits.remaining_tokens, Some(100));
        assert_eq!(limits.retry_after_ms, None);
        assert_eq!(limits.limit_requests, None);
    }

    #[test]
    fn no_headers_no_facts() {
        let limits = read_rate_limits(200, &[]);
        assert_eq!(limits.retry_after_ms, None);
        assert_eq!(limits.limit_tokens, None);
        assert_eq!(limits.reset_requests_ms, None);
    }
}
