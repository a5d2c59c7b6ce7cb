//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages dialect,
//! for the Anthropic SDKs and Claude Code. Requests are decoded into the canonical OpenAI
//! form (`decode`), routed like any other, and answers encoded back as a `message`
//! (`encode`) or Anthropic's event stream (`stream`). Errors take Anthropic's shape,
//! `{"type":"error","error":{"type","message"},"request_id"}`, with the gateway's status.

mod decode;
mod encode;
mod stream;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::error::GatewayError;
use crate::http::{ResponseBody, full_body, read_body, response, set_header};
use crate::pipeline::Gateway;
use crate::pipeline::canonical::inspect_chat_request;

use super::{Canonical, Dialect};

/// The Messages dialect; one value serves one request, so it can carry its stream's state.
#[derive(Default)]
pub struct Messages {
    stream: stream::MessageStream,
    /// The client's `anthropic-beta` features, for an Anthropic target.
    betas: Vec<String>,
}

impl Dialect for Messages {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream";

    fn read_headers(&mut self, headers: &HeaderMap) {
        self.betas = client_betas(headers);
    }

    fn decode(&mut self, body: Bytes) -> Result<Canonical, GatewayError> {
        canonical(&body, false, &self.betas)
    }

    fn encode_answer(&self, body: String) -> Bytes {
        match encode::message(&body) {
            Some(message) => Bytes::from(message.to_string()),
            None => Bytes::from(body),
        }
    }

    fn encode_chunk(&mut self, chunk: String) -> Bytes {
        self.stream.chunk(&chunk)
    }

    fn encode_end(&mut self) -> Option<Bytes> {
        Some(self.stream.end())
    }

    fn encode_stream_error(&mut self, error: &GatewayError) -> Bytes {
        self.stream.error(&error_json(error, None))
    }

    fn encode_error(&self, error: &GatewayError, request_id: &str) -> Response<ResponseBody> {
        error_response(error, request_id)
    }
}

/// The features a client turns on with `anthropic-beta: a,b` (one header or several). They
/// reach an Anthropic target as its own `anthropic-beta` header: the canonical body carries
/// them as `anthropic_beta`, which the Anthropic adapter turns back into the header and the
/// others drop. Only feature-name characters are kept, so no value can forge a header.
fn client_betas(headers: &HeaderMap) -> Vec<String> {
    let mut betas: Vec<String> = Vec::new();
    for value in headers.get_all("anthropic-beta") {
        let Ok(value) = value.to_str() else { continue };
        for beta in value.split(',').map(str::trim) {
            let valid = !beta.is_empty()
                && beta.len() <= 100
                && beta
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if valid && !betas.iter().any(|seen| seen == beta) {
                betas.push(beta.to_string());
            }
        }
    }
    betas
}

fn canonical(body: &[u8], count_only: bool, betas: &[String]) -> Result<Canonical, GatewayError> {
    let mut canonical = decode::to_canonical(body, count_only)?;
    if !betas.is_empty() {
        canonical.insert("anthropic_beta".into(), json!(betas));
    }
    let body = Bytes::from(Value::Object(canonical).to_string());
    let mut info = inspect_chat_request(&body)?;
    info.include_usage = info.stream;
    Ok(Canonical { body, info })
}

/// Anthropic's `error.type` for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

fn error_json(error: &GatewayError, request_id: Option<&str>) -> Value {
    let mut body = json!({
        "type": "error",
        "error": {"type": error_type(error.status()), "message": error.to_string()},
    });
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    body
}

/// A whole error response in Anthropic's shape, with `request-id` as Anthropic names it
/// (and `x-request-id`, as every gateway answer has it) and `retry-after` when waiting helps.
pub fn error_response(error: &GatewayError, request_id: &str) -> Response<ResponseBody> {
    let body = error_json(error, Some(request_id)).to_string();
    let mut response = response(error.status(), "application/json", full_body(body));
    let headers = response.headers_mut();
    set_header(headers, "x-request-id", request_id);
    set_header(headers, "request-id", request_id);
    if let Some(after) = error.retry_after_header()
        && let Ok(value) = HeaderValue::from_str(&after)
    {
        headers.insert(hyper::header::RETRY_AFTER, value);
    }
    response
}

/// `POST /v1/messages/count_tokens`: the gateway's own estimate (characters / 4 over the
/// conversation and tool declarations), the same figure routing and budgets use — no
/// upstream is called, so counting is free and works for every provider.
pub async fn count_tokens(
    gateway: &Arc<Gateway>,
    request: Request<Incoming>,
    request_id: &str,
) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let (max, deadlines) = super::body_limits(gateway);
    let counted = async {
        let bytes = read_body(&parts.headers, body, max, deadlines).await?;
        let canonical = canonical(&bytes, true, &[])?;
        let tools = serde_json::from_slice::<Value>(&canonical.body)
            .ok()
            .and_then(|v| v.get("tools").map(|t| t.to_string().len() / 4))
            .unwrap_or(0);
        Ok::<_, GatewayError>(u64::from(canonical.info.prompt_tokens) + tools as u64)
    }
    .await;
    match counted {
        Ok(tokens) => {
            let body = json!({"input_tokens": tokens}).to_string();
            let mut response = response(StatusCode::OK, "application/json", full_body(body));
            set_header(response.headers_mut(), "x-request-id", request_id);
            response
        }
        Err(error) => error_response(&error, request_id),
    }
}
