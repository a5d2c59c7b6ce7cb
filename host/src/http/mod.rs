//! HTTP plumbing every layer above shares and none owns: the response body type, small response builders, reading a request body under a size limit,
//! and bearer-token parsing with a constant-time comparison. Knows nothing of dialects,
//! routing or plugins.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
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

/// Read a whole request body, refusing one over `max` bytes (by `Content-Length` before
/// reading anything, or while reading when the length was not announced).
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    max: usize,
) -> Result<Bytes, GatewayError> {
    if let Some(length) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > max
    {
        return Err(GatewayError::BodyTooLarge { max });
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error)
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::BodyTooLarge { max })
        }
        Err(error) => Err(GatewayError::InvalidRequest {
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
