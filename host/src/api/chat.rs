//! `POST /v1/chat/completions`: OpenAI's chat dialect. The canonical form *is* this dialect,
//! so decoding only validates and reads routing facts, and answers pass through as the
//! adapter wrote them; streams are SSE `data:` frames ending with `data: [DONE]`, and a
//! committed stream that breaks ends with an OpenAI error object as its last frame.

use bytes::Bytes;
use hyper::Response;

use crate::error::GatewayError;
use crate::http::ResponseBody;
use crate::pipeline::canonical::inspect_chat_request;

use super::openai::{error_json, error_response};
use super::{Canonical, Dialect};

pub struct ChatCompletions;

impl Dialect for ChatCompletions {
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream";

    fn decode(&mut self, body: Bytes) -> Result<Canonical, GatewayError> {
        let info = inspect_chat_request(&body)?;
        Ok(Canonical { body, info })
    }

    fn encode_answer(&self, body: String) -> Bytes {
        Bytes::from(body)
    }

    fn encode_chunk(&mut self, chunk: String) -> Bytes {
        sse_frame(chunk.as_bytes())
    }

    fn encode_end(&mut self) -> Option<Bytes> {
        Some(Bytes::from_static(b"data: [DONE]\n\n"))
    }

    fn encode_stream_error(&mut self, error: &GatewayError) -> Bytes {
        sse_frame(error_json(error).to_string().as_bytes())
    }

    fn encode_error(&self, error: &GatewayError, request_id: &str) -> Response<ResponseBody> {
        error_response(error, request_id)
    }
}

fn sse_frame(data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}
