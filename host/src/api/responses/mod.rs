//! `POST /v1/responses`: OpenAI's Responses dialect, stateless. Requests are decoded into the
//! canonical chat form (`decode`), routed like any other, and answers encoded back as a
//! `response` object (`encode`) or the Responses event stream (`stream`). Errors keep
//! OpenAI's error shape, as the Responses API does.

mod decode;
mod encode;
mod stream;

use bytes::Bytes;
use hyper::Response;
use serde_json::Value;

use crate::error::GatewayError;
use crate::http::ResponseBody;
use crate::pipeline::canonical::inspect_chat_request;

use super::openai::error_response;
use super::{Canonical, Dialect};

/// The Responses dialect; one value serves one request, so it can carry its stream's state.
#[derive(Default)]
pub struct Responses {
    stream: stream::ResponseStream,
}

impl Dialect for Responses {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream";

    fn decode(&mut self, body: Bytes) -> Result<Canonical, GatewayError> {
        let canonical = decode::to_canonical(&body)?;
        let body = Bytes::from(Value::Object(canonical).to_string());
        let mut info = inspect_chat_request(&body)?;
        info.include_usage = info.stream;
        Ok(Canonical { body, info })
    }

    fn encode_answer(&self, body: String) -> Bytes {
        match encode::answer(&body) {
            Some(response) => Bytes::from(response.to_string()),
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
        self.stream.error(error.code(), &error.to_string())
    }

    fn encode_error(&self, error: &GatewayError, request_id: &str) -> Response<ResponseBody> {
        error_response(error, request_id)
    }
}
