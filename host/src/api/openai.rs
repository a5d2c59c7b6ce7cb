//! OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`: how the chat
//! dialect, the models list, the URL table and the admin API all write a [`GatewayError`].

use bytes::Bytes;
use hyper::Response;
use hyper::header::HeaderValue;
use serde_json::{Value, json};

use crate::error::GatewayError;
use crate::http::{ResponseBody, full_body, response, set_header};

/// OpenAI's `error.type`, from the status (and one code it treats apart).
fn error_type(error: &GatewayError) -> &'static str {
    match error.status().as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 if error.code() == "model_not_found" => "invalid_request_error",
        404 => "not_found_error",
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

pub fn error_json(error: &GatewayError) -> Value {
    json!({
        "error": {
            "message": error.to_string(),
            "type": error_type(error),
            "param": error.param(),
            "code": error.code(),
        }
    })
}

/// A whole error response: the status, the JSON body, `x-request-id` and, when waiting
/// helps, `Retry-After`.
pub fn error_response(error: &GatewayError, request_id: &str) -> Response<ResponseBody> {
    let mut response = response(
        error.status(),
        "application/json",
        full_body(Bytes::from(error_json(error).to_string())),
    );
    let headers = response.headers_mut();
    set_header(headers, "x-request-id", request_id);
    if let Some(after) = error.retry_after_header()
        && let Ok(value) = HeaderValue::from_str(&after)
    {
        headers.insert(hyper::header::RETRY_AFTER, value);
    }
    response
}
