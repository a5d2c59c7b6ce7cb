//! The deadlines that bound what a client or an upstream can hold: `server.*_timeout_ms` and
//! the cap on an upstream answer's size. Every one is configurable and checked here, so a
//! slow-loris client or an upstream that drips a byte a second is cut at a known time with a
//! known status (408 for the client's side, 504 for the upstream's).

use std::time::Duration;

use super::{ConfigError, Deadlines, error, raw};

const DEFAULT_HEADER_READ_MS: u64 = 30_000;
const DEFAULT_BODY_READ_MS: u64 = 60_000;
const DEFAULT_BODY_IDLE_MS: u64 = 10_000;
/// Long enough for a long streamed answer; short enough that nothing is held for ever.
const DEFAULT_REQUEST_MS: u64 = 900_000;
const DEFAULT_MAX_RESPONSE_BYTES: u64 = 32 * 1024 * 1024;
/// No deadline may exceed a day: a bigger number is a typo, not a policy.
const MAX_MS: u64 = 86_400_000;

fn millis(value: Option<u64>, default: u64, key: &str) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        ms @ 1..=MAX_MS => Ok(Duration::from_millis(ms)),
        _ => Err(error(
            format!("server.{key}"),
            format!("must be between 1 and {MAX_MS} (milliseconds)"),
        )),
    }
}

pub(super) fn deadlines(server: &raw::Server) -> Result<Deadlines, ConfigError> {
    let deadlines = Deadlines {
        header_read: millis(
            server.header_read_timeout_ms,
            DEFAULT_HEADER_READ_MS,
            "header_read_timeout_ms",
        )?,
        body_read: millis(
            server.body_read_timeout_ms,
            DEFAULT_BODY_READ_MS,
            "body_read_timeout_ms",
        )?,
        body_idle: millis(
            server.body_idle_timeout_ms,
            DEFAULT_BODY_IDLE_MS,
            "body_idle_timeout_ms",
        )?,
        request: millis(
            server.request_timeout_ms,
            DEFAULT_REQUEST_MS,
            "request_timeout_ms",
        )?,
        max_response_bytes: match server
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
        {
            bytes @ 1024..=0xFFFF_FFFF => bytes as usize,
            _ => {
                return Err(error(
                    "server.max_response_bytes",
                    "must be between 1024 and 4294967295",
                ));
            }
        },
    };
    if deadlines.body_idle > deadlines.body_read {
        return Err(error(
            "server.body_idle_timeout_ms",
            "must not be longer than server.body_read_timeout_ms",
        ));
    }
    Ok(deadlines)
}
