//! Reading upstream HTTP answers: header lookup, `Retry-After`, rate-limit headers and the
//! status-to-error classification every adapter shares.
//!
//! These live in the SDK so that a 429 from Groq and a 429 from Mistral become the same typed
//! error with the same retry hint: the host's failover engine decides from those fields only,
//! so two adapters disagreeing about what a status means would make routing inconsistent.

use std::fmt::Display;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::types::{Error, ErrorKind, RateLimits};

/// The value of the first header called `name`, compared case-insensitively.
///
/// The host lower-cases names on the way in, but adapters are also handed headers from tests
/// and other languages' hosts, so the lookup does not rely on it.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// An error with no upstream status, for failures found by the plugin itself.
pub fn error(kind: ErrorKind, retryable: bool, message: impl Into<String>) -> Error {
    Error {
        kind,
        retryable,
        message: message.into(),
        status: None,
        retry_after_ms: None,
        code: None,
        param: None,
    }
}

/// The upstream answered something that is not what its API promises (not JSON, a missing
/// field). Retryable: another target may answer sensibly.
pub fn invalid_response(message: impl Into<String>) -> Error {
    error(ErrorKind::InvalidResponse, true, message)
}

/// An adapter's settings are wrong: `invalid <adapter> settings for provider `<provider>`:
/// <problem>` (without the provider part when `provider` is empty, as when the host checks
/// settings at load and names the config key itself). Retryable: another provider's
/// configuration may be fine.
pub fn invalid_adapter_settings(adapter: &str, provider: &str, problem: impl Display) -> Error {
    let whose = if provider.is_empty() {
        String::new()
    } else {
        format!(" for provider `{provider}`")
    };
    error(
        ErrorKind::Internal,
        true,
        format!("invalid {adapter} settings{whose}: {problem}"),
    )
}

/// Classifies an upstream HTTP status into a typed error.
///
/// Retryable means "another target may succeed": a refused key (401) or a model this key may
/// not use (403, 404) is a property of this provider, not of the request, so the next target
/// is worth trying. A malformed request (400, 413, 422) would be refused everywhere.
pub fn error_for_status(status: u16, message: impl Into<String>) -> Error {
    let (kind, retryable) = match status {
        400 | 413 | 422 => (ErrorKind::BadRequest, false),
        401 => (ErrorKind::Auth, true),
        // Payment Required: OpenRouter and others answer it when prepaid credits are spent.
        402 => (ErrorKind::QuotaExhausted, true),
        403 => (ErrorKind::Permission, true),
        404 => (ErrorKind::NotFound, true),
        408 | 504 => (ErrorKind::Timeout, true),
        409 | 425 => (ErrorKind::Unavailable, true),
        429 => (ErrorKind::RateLimited, true),
        500..=599 => (ErrorKind::Unavailable, true),
        // Redirects and other non-error statuses reaching an error path: the target answered
        // something this adapter does not handle (a moved base URL, say); another may not.
        0..=399 => (ErrorKind::InvalidResponse, true),
        _ => (ErrorKind::BadRequest, false),
    };
    Error {
        kind,
        retryable,
        message: message.into(),
        status: Some(status),
        retry_after_ms: None,
        code: None,
        param: None,
    }
}

/// Milliseconds to wait according to a `Retry-After` value: delay seconds (whole or
/// fractional, as some providers send) or an HTTP-date. A date in the past means "now" (0).
pub fn retry_after_ms(value: &str) -> Option<u64> {
    retry_after_ms_at(value, SystemTime::now())
}

/// [`retry_after_ms`] against a given clock, so date handling can be tested deterministically.
pub fn retry_after_ms_at(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Some(ms) = seconds_to_ms(value) {
        return Some(ms);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).map_or(0, duration_to_ms_ceil))
}

/// Parses the durations OpenAI-style reset headers carry: Go-style (`"1s"`, `"6m0s"`, `"17ms"`,
/// `"1h2m3.5s"`, `"0.5s"`, `"250us"`) or bare seconds (`"30"`, `"0.5"`). Rounds up to whole
/// milliseconds: waiting a fraction too long costs nothing, waiting too little earns a 429.
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Some(ms) = seconds_to_ms(value) {
        return Some(ms);
    }
    if value.is_empty() {
        return None;
    }
    let mut rest = value;
    let mut total_ms = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale_ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" | "μs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += number * scale_ms;
    }
    if total_ms.is_finite() && total_ms >= 0.0 {
        Some(total_ms.ceil() as u64)
    } else {
        None
    }
}

/// Reads the rate-limit headers OpenAI defined and most compatible APIs copy (Groq, DeepSeek,
/// Together, OpenRouter, ...): `retry-after-ms` (preferred, it is exact), `retry-after`, and
/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
///
/// Providers that publish several windows name them with a suffix instead (Cerebras sends
/// `x-ratelimit-limit-requests-day` and `x-ratelimit-limit-tokens-minute`); when the plain
/// headers are missing, the first suffixed family present (`-minute`, then `-day`) is read
/// whole, so limit, remaining and reset always describe the same window.
pub fn openai_style_rate_limits(headers: &[(String, String)]) -> RateLimits {
    let retry_after_ms = retry_after_from_headers(headers);
    let requests = window(headers, "requests");
    let tokens = window(headers, "tokens");
    RateLimits {
        retry_after_ms,
        limit_requests: requests.limit,
        remaining_requests: requests.remaining,
        reset_requests_ms: requests.reset_ms,
        limit_tokens: tokens.limit,
        remaining_tokens: tokens.remaining,
        reset_tokens_ms: tokens.reset_ms,
    }
}

/// How long the upstream asked us to wait: `retry-after-ms` (exact, sent by OpenAI and
/// Azure) when present, else `retry-after` (seconds or an HTTP-date).
pub fn retry_after_from_headers(headers: &[(String, String)]) -> Option<u64> {
    header(headers, "retry-after-ms")
        .and_then(parse_number_ms)
        .or_else(|| header(headers, "retry-after").and_then(retry_after_ms))
}

/// Milliseconds from now until an RFC 3339 timestamp (`2024-07-01T12:00:05Z`,
/// `2024-07-01T12:00:05.123+02:00`), as Anthropic sends in its rate-limit reset headers.
/// A moment in the past means "now" (0).
pub fn rfc3339_ms_from_now(value: &str) -> Option<u64> {
    rfc3339_ms_from(value, SystemTime::now())
}

/// [`rfc3339_ms_from_now`] against a given clock, so it can be tested deterministically.
pub fn rfc3339_ms_from(value: &str, now: SystemTime) -> Option<u64> {
    let at = parse_rfc3339(value.trim())?;
    Some(at.duration_since(now).map_or(0, duration_to_ms_ceil))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t` and a space are accepted for `T`,
/// `z` for `Z` (RFC 3339 §5.6 allows both). Years before 1970 are refused.
fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let bytes = value.as_bytes();
    if bytes.len() < 20 || !bytes.is_ascii() {
        return None;
    }
    let field =
        |range: std::ops::Range<usize>| parse_fixed_digits(&value[range.clone()], range.len());
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    if year < 1970
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &value[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Nanosecond precision is all a `SystemTime` can use; further digits are dropped.
        let kept = &fraction[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_seconds: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset = &rest[1..];
            if offset.len() != 5 || offset.as_bytes()[2] != b':' {
                return None;
            }
            let hours = i64::from(parse_fixed_digits(&offset[..2], 2)?);
            let minutes = i64::from(parse_fixed_digits(&offset[3..], 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let local =
        days_since_epoch(year, month, day) * 86_400 + u64::from(hour * 3600 + minute * 60 + second);
    let utc = i64::try_from(local).ok()?.checked_sub(offset_seconds)?;
    let seconds = u64::try_from(utc).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// Cuts an upstream's error message to `max_chars` characters (plus an ellipsis), so a runaway
/// one (an HTML page, a stack trace) does not flood the client's error body.
pub fn truncate_message(mut message: String, max_chars: usize) -> String {
    if let Some((cut, _)) = message.char_indices().nth(max_chars) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// One rate-limit window as read from the `x-ratelimit-*-<what>[-suffix]` family.
#[derive(Default)]
struct Window {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_ms: Option<u64>,
}

fn window(headers: &[(String, String)], what: &str) -> Window {
    for suffix in ["", "-minute", "-day"] {
        let read = |field: &str| header(headers, &format!("x-ratelimit-{field}-{what}{suffix}"));
        let found = Window {
            limit: read("limit").and_then(parse_count),
            remaining: read("remaining").and_then(parse_count),
            reset_ms: read("reset").and_then(parse_duration_ms),
        };
        if found.limit.is_some() || found.remaining.is_some() || found.reset_ms.is_some() {
            return found;
        }
    }
    Window::default()
}

/// A request or token count; some providers send `"14400.0"` or a negative remaining count
/// when a burst overshoots, which means "none left".
fn parse_count(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(count) = value.parse::<u64>() {
        return Some(count);
    }
    let count: f64 = value.parse().ok()?;
    count.is_finite().then(|| count.max(0.0) as u64)
}

/// A non-negative number of milliseconds, whole or fractional (`retry-after-ms`).
fn parse_number_ms(value: &str) -> Option<u64> {
    let ms: f64 = parse_plain_decimal(value.trim())?;
    Some(ms.ceil() as u64)
}

/// Whole or fractional seconds, as milliseconds.
fn seconds_to_ms(value: &str) -> Option<u64> {
    let seconds = parse_plain_decimal(value)?;
    let ms = (seconds * 1000.0).ceil();
    (ms < u64::MAX as f64).then_some(ms as u64)
}

/// A plain non-negative decimal (`"12"`, `"0.5"`); rejects signs, exponents, `inf` and `NaN`,
/// which `f64::from_str` would accept.
fn parse_plain_decimal(value: &str) -> Option<f64> {
    let plain = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().any(|b| b.is_ascii_digit());
    if plain { value.parse().ok() } else { None }
}

fn duration_to_ms_ceil(duration: Duration) -> u64 {
    let ms = duration.as_millis() + u128::from(!duration.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only HTTP-date form senders
/// may generate (RFC 9110 §5.6.7). The weekday is not checked against the date.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let (_weekday, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u32 = parse_fixed_digits(parts.next()?, 2)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: u32 = parse_fixed_digits(parts.next()?, 4)?;
    let mut clock = parts.next()?.split(':');
    let hour: u32 = parse_fixed_digits(clock.next()?, 2)?;
    let minute: u32 = parse_fixed_digits(clock.next()?, 2)?;
    let second: u32 = parse_fixed_digits(clock.next()?, 2)?;
    if clock.next().is_some() || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    // Second 60 is a leap second; treat it as the next second's start.
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    let seconds = days * 86_400 + u64::from(hour * 3600 + minute * 60 + second);
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

fn parse_fixed_digits(text: &str, width: usize) -> Option<u32> {
    if text.len() == width && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's `days_from_civil`), for years ≥ 1970.
fn days_since_epoch(year: u32, month: u32, day: u32) -> u64 {
    let year = u64::from(if month <= 2 { year - 1 } else { year });
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month = u64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
    fn header_lookup_ignores_case_and_takes_the_first() {
        let list = headers(&[("Retry-After", "3"), ("retry-after", "9")]);
        assert_eq!(header(&list, "retry-after"), Some("3"));
        assert_eq!(header(&list, "RETRY-AFTER"), Some("3"));
        assert_eq!(header(&list, "x-missing"), None);
    }

    #[test]
    fn retry_after_seconds_whole_and_fractional() {
        assert_eq!(retry_after_ms("0"), Some(0));
        assert_eq!(retry_after_ms("12"), Some(12_000));
        assert_eq!(retry_after_ms(" 1.5 "), Some(1_500));
        assert_eq!(retry_after_ms("0.0004"), Some(1));
        assert_eq!(retry_after_ms("-1"), None);
        assert_eq!(retry_after_ms("soon"), None);
        assert_eq!(retry_after_ms("inf"), None);
        assert_eq!(retry_after_ms(""), None);
    }

    #[test]
    fn retry_after_http_date_counts_from_now() {
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 seconds after the epoch.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        assert_eq!(retry_after_ms_at(date, now), Some(30_000));
        let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 5);
        assert_eq!(retry_after_ms_at(date, later), Some(0));
        let leap_year = "Thu, 29 Feb 2024 00:00:00 GMT";
        let now = UNIX_EPOCH + Duration::from_secs(1_709_164_800 - 2);
        assert_eq!(retry_after_ms_at(leap_year, now), Some(2_000));
    }

    #[test]
    fn retry_after_http_date_in_the_future_is_positive_against_the_real_clock() {
        let wait = retry_after_ms("Fri, 31 Dec 9999 23:59:59 GMT").expect("a valid date");
        assert!(wait > 0);
    }

    #[test]
    fn retry_after_rejects_malformed_dates() {
        for value in [
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
        ] {
            assert_eq!(retry_after_ms_at(value, UNIX_EPOCH), None, "{value}");
        }
    }

    #[test]
    fn durations_in_go_and_seconds_forms() {
        assert_eq!(parse_duration_ms("1s"), Some(1_000));
        assert_eq!(parse_duration_ms("6m0s"), Some(360_000));
        assert_eq!(parse_duration_ms("17ms"), Some(17));
        assert_eq!(parse_duration_ms("1h2m3.5s"), Some(3_723_500));
        assert_eq!(parse_duration_ms("0.5s"), Some(500));
        assert_eq!(parse_duration_ms("2m59.56s"), Some(179_560));
        assert_eq!(parse_duration_ms("7.66s"), Some(7_660));
        assert_eq!(parse_duration_ms("250us"), Some(1));
        assert_eq!(parse_duration_ms("30"), Some(30_000));
        assert_eq!(parse_duration_ms("0.25"), Some(250));
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("s"), None);
        assert_eq!(parse_duration_ms("5x"), None);
        assert_eq!(parse_duration_ms("1.2.3s"), None);
        assert_eq!(parse_duration_ms("-1s"), None);
    }

    #[test]
    fn openai_rate_limit_headers() {
        let list = headers(&[
            ("x-ratelimit-limit-requests", "14400"),
            ("x-ratelimit-remaining-requests", "14370"),
            ("x-ratelimit-reset-requests", "2m59.56s"),
            ("X-RateLimit-Limit-Tokens", "18000"),
            ("x-ratelimit-remaining-tokens", "17997"),
            ("x-ratelimit-reset-tokens", "7.66s"),
            ("retry-after", "2"),
        ]);
        let limits = openai_style_rate_limits(&list);
        assert_eq!(limits.retry_after_ms, Some(2_000));
        assert_eq!(limits.limit_requests, Some(14_400));
        assert_eq!(limits.remaining_requests, Some(14_370));
        assert_eq!(limits.reset_requests_ms, Some(179_560));
        assert_eq!(limits.limit_tokens, Some(18_000));
        assert_eq!(limits.remaining_tokens, Some(17_997));
        assert_eq!(limits.reset_tokens_ms, Some(7_660));
    }

    #[test]
    fn retry_after_ms_header_wins_over_retry_after() {
        let list = headers(&[("retry-after", "20"), ("retry-after-ms", "1234.5")]);
        assert_eq!(openai_style_rate_limits(&list).retry_after_ms, Some(1_235));
    }

    #[test]
    fn suffixed_windows_are_read_when_plain_headers_are_missing() {
        let list = headers(&[
            ("x-ratelimit-limit-requests-day", "14400"),
            ("x-ratelimit-remaining-requests-day", "14399.0"),
            ("x-ratelimit-reset-requests-day", "33011.382867097855"),
            ("x-ratelimit-limit-tokens-minute", "60000"),
            ("x-ratelimit-remaining-tokens-minute", "-12"),
            ("x-ratelimit-reset-tokens-minute", "11.382867097854614"),
        ]);
        let limits = openai_style_rate_limits(&list);
        assert_eq!(limits.limit_requests, Some(14_400));
        assert_eq!(limits.remaining_requests, Some(14_399));
        assert_eq!(limits.reset_requests_ms, Some(33_011_383));
        assert_eq!(limits.limit_tokens, Some(60_000));
        assert_eq!(limits.remaining_tokens, Some(0));
        assert_eq!(limits.reset_tokens_ms, Some(11_383));
        assert_eq!(limits.retry_after_ms, None);
    }

    #[test]
    fn no_headers_means_no_facts() {
        let limits = openai_style_rate_limits(&[]);
        assert_eq!(limits.retry_after_ms, None);
        assert_eq!(limits.limit_requests, None);
        assert_eq!(limits.remaining_tokens, None);
        assert_eq!(limits.reset_tokens_ms, None);
    }

    #[test]
    fn rfc3339_timestamps_count_from_now() {
        // 2024-07-01T12:00:00Z is 1719835200 seconds after the epoch.
        let now = UNIX_EPOCH + Duration::from_secs(1_719_835_200);
        assert_eq!(rfc3339_ms_from("2024-07-01T12:00:05Z", now), Some(5_000));
        assert_eq!(rfc3339_ms_from("2024-07-01T12:00:00.25Z", now), Some(250));
        assert_eq!(
            rfc3339_ms_from("2024-07-01t12:00:01.000000001z", now),
            Some(1_001)
        );
        assert_eq!(
            rfc3339_ms_from("2024-07-01T14:00:03+02:00", now),
            Some(3_000)
        );
        assert_eq!(
            rfc3339_ms_from("2024-07-01T11:30:03-00:30", now),
            Some(3_000)
        );
        assert_eq!(rfc3339_ms_from(" 2024-07-01 12:01:00Z ", now), Some(60_000));
        assert_eq!(rfc3339_ms_from("2024-07-01T11:59:00Z", now), Some(0));
        for bad in [
            "",
            "2024-07-01",
            "2024-07-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2024-07-01T24:00:00Z",
            "2024-07-01T12:00:00.Z",
            "2024-07-01T12:00:00+0200",
            "1969-12-31T23:59:59Z",
            "Mon, 01 Jul 2024 12:00:00 GMT",
        ] {
            assert_eq!(rfc3339_ms_from(bad, now), None, "{bad}");
        }
        assert!(rfc3339_ms_from_now("9999-12-31T23:59:59Z").is_some_and(|ms| ms > 0));
    }

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        assert_eq!(truncate_message("short".into(), 10), "short");
        assert_eq!(truncate_message("héllo wörld".into(), 5), "héllo…");
        assert_eq!(truncate_message("abc".into(), 3), "abc");
    }

    #[test]
    fn statuses_map_to_kinds_and_retryability() {
        let cases = [
            (400, ErrorKind::BadRequest, false),
            (401, ErrorKind::Auth, true),
            (402, ErrorKind::QuotaExhausted, true),
            (403, ErrorKind::Permission, true),
            (404, ErrorKind::NotFound, true),
            (405, ErrorKind::BadRequest, false),
            (408, ErrorKind::Timeout, true),
            (409, ErrorKind::Unavailable, true),
            (413, ErrorKind::BadRequest, false),
            (418, ErrorKind::BadRequest, false),
            (422, ErrorKind::BadRequest, false),
            (425, ErrorKind::Unavailable, true),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Unavailable, true),
            (502, ErrorKind::Unavailable, true),
            (503, ErrorKind::Unavailable, true),
            (504, ErrorKind::Timeout, true),
            (507, ErrorKind::Unavailable, true),
            (529, ErrorKind::Unavailable, true),
            (301, ErrorKind::InvalidResponse, true),
        ];
        for (status, kind, retryable) in cases {
            let error = error_for_status(status, "boom");
            assert_eq!(error.kind, kind, "{status}");
            assert_eq!(error.retryable, retryable, "{status}");
            assert_eq!(error.status, Some(status));
            assert_eq!(error.message, "boom");
            assert_eq!(error.retry_after_ms, None);
        }
    }
}
