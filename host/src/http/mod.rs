//! HTTP plumbing every layer above shares and none owns: the response body type, small response builders, reading a request body under a size limit,
//! and bearer-token parsing with a constant-time comparison. Knows nothing of dialects,
//! routing or plugins.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::error::GatewayError;

pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    ResponseBody::new(Full::new(bytes.into()))
}

/// A response with a body and a content type.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    response(
        status,
        "application/json",
        full_body(Bytes::from(value.to_string())),
    )
}

/// Set a header when the value is a valid header value; skip it otherwise (a value built from
/// client input must never fail a response).
pub fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// How long a client may take to send its request body.
#[derive(Clone, Copy, Debug)]
pub struct BodyDeadlines {
    /// The whole body.
    pub total: Duration,
    /// The longest gap between two pieces of it.
    pub idle: Duration,
}

/// Read a whole request body, refusing one over `max` bytes (by `Content-Length` before
/// reading anything, or while reading when the length was not announced) and one that takes
/// longer than its deadlines (408): a client sending a byte a second holds a connection for
/// `deadlines.idle` at most, however long its body. Two timers per body, no extra task.
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    max: usize,
    deadlines: BodyDeadlines,
) -> Result<Bytes, GatewayError> {
    let announced = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|length| length > max) {
        return Err(GatewayError::BodyTooLarge { max });
    }
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::with_capacity(announced.unwrap_or(0).min(max));
    // A small body usually arrives with the head: take what is already here without arming
    // the deadlines (arming a timer that ends first wakes the thread's driver, a syscall and
    // an extra turn of its event loop per request). The deadlines start at the first wait.
    while let Some(frame) = body.frame().now_or_never() {
        if take_frame(frame, &mut collected, max)? {
            return Ok(collected.freeze());
        }
    }
    let total = tokio::time::sleep(deadlines.total);
    let idle = tokio::time::sleep(deadlines.idle);
    let mut total = std::pin::pin!(total);
    let mut idle = std::pin::pin!(idle);
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            () = &mut idle => return Err(GatewayError::ClientTimeout {
                message: format!(
                    "the request body stalled: nothing arrived for {} ms",
                    deadlines.idle.as_millis()
                ),
            }),
            () = &mut total => return Err(GatewayError::ClientTimeout {
                message: format!(
                    "the request body was not received within {} ms",
                    deadlines.total.as_millis()
                ),
            }),
        };
        if take_frame(frame, &mut collected, max)? {
            return Ok(collected.freeze());
        }
        idle.as_mut()
            .reset(tokio::time::Instant::now() + deadlines.idle);
    }
}

/// Add one frame of a request body to `collected`; true at the body's end.
fn take_frame(
    frame: Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>,
    collected: &mut BytesMut,
    max: usize,
) -> Result<bool, GatewayError> {
    match frame {
        None => Ok(true),
        Some(Ok(frame)) => {
            if let Ok(data) = frame.into_data() {
                if collected.len() + data.len() > max {
                    return Err(GatewayError::BodyTooLarge { max });
                }
                collected.extend_from_slice(&data);
            }
            Ok(false)
        }
        Some(Err(error)) => Err(GatewayError::InvalidRequest {
            code: "invalid_body",
            param: None,
            message: format!("the request body could not be read: {error}"),
        }),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Compare secrets without leaking, through timing, how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
