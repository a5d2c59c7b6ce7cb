//! Inbound dialects: the wire formats clients speak, each one file behind [`Dialect`].
//!
//! A dialect decodes a request body into the canonical form (an OpenAI chat-completions body,
//! or for `embeddings` an OpenAI embeddings body, and its routing facts) and encodes what the pipeline gives back — a whole answer, each
//! chunk of a stream, its end, and errors before or after the stream was committed.
//! [`serve`] does the rest the same way for every dialect: read the body under the size
//! limit, hand the request to the pipeline (which checks the caller's key), and write the
//! answer with the `x-freeway-*` headers. Adding an endpoint is one
//! file here and one line in the server's URL table.

pub mod chat;
pub mod embeddings;
pub mod messages;
pub mod models;
pub mod openai;
pub mod responses;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::cache::{CacheStatus, Directives};
use crate::error::GatewayError;
use crate::http::{BodyDeadlines, ResponseBody, full_body, read_body, response, set_header};
use crate::pipeline::canonical::ChatRequestInfo;
use crate::pipeline::queue::HIGHEST_PRIORITY;
use crate::pipeline::{Answer, Decoded, Failed, Gateway, RequestMeta, Served, StreamEvent};
use crate::state::Caller;

/// A request in canonical form, as a dialect decoded it.
pub struct Canonical {
    /// An OpenAI chat-completions body.
    pub body: Bytes,
    pub info: ChatRequestInfo,
}

/// One inbound wire format.
pub trait Dialect: Send + Sync + Unpin + 'static {
    /// The content type of a streamed answer.
    const STREAM_CONTENT_TYPE: &'static str;

    /// Validate a request body and turn it into the canonical form. Errors name the field.
    /// Read what the dialect takes from the request's headers, before `decode` (none by
    /// default).
    fn read_headers(&mut self, _headers: &HeaderMap) {}
    /// A dialect may remember what it needs to encode this request's answer.
    fn decode(&mut self, body: Bytes) -> Result<Canonical, GatewayError>;
    /// A whole answer, from a canonical `chat.completion` body.
    fn encode_answer(&self, body: String) -> Bytes;
    /// The stream frames for a canonical `chat.completion.chunk` (empty when the chunk says
    /// nothing in this dialect). A dialect may keep state across one stream's chunks.
    fn encode_chunk(&mut self, chunk: String) -> Bytes;
    /// What ends a completed stream, if anything.
    fn encode_end(&mut self) -> Option<Bytes>;
    /// The last frame of a stream that broke after it was committed.
    fn encode_stream_error(&mut self, error: &GatewayError) -> Bytes;
    /// A whole error response, before anything was committed.
    fn encode_error(&self, error: &GatewayError, request_id: &str) -> Response<ResponseBody>;
}

/// Serve one request of dialect `D`: body, daily cap, pipeline, answer.
pub async fn serve<D: Dialect>(
    mut dialect: D,
    gateway: &Arc<Gateway>,
    request: Request<Incoming>,
    request_id: String,
    caller: Option<Arc<Caller>>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    dialect.read_headers(&parts.headers);
    let (max, deadlines) = body_limits(gateway);
    let decoded = async {
        let bytes = read_body(&parts.headers, body, max, deadlines).await?;
        let canonical = dialect.decode(bytes)?;
        Ok(Decoded {
            body: canonical.body,
            info: canonical.info,
            tags: client_tags(&parts.headers),
            session: header(&parts.headers, "x-freeway-session").map(str::to_string),
            priority: requested_priority(&parts.headers)?,
            cache: Directives::from_headers(&parts.headers),
        })
    }
    .await;
    let meta = RequestMeta {
        id: request_id,
        caller,
        started,
    };
    match gateway.chat(meta, decoded).await {
        Ok(Answer::Stream { served, mut events }) => {
            // The relay has the upstream's first chunk in hand: wait for what it makes of it,
            // so the headers and the first event leave in one write. Sent alone, the headers
            // wake the client once for nothing and the first event wakes it again.
            let first = events.recv().await;
            respond(dialect, Answer::Stream { served, events }, first)
        }
        Ok(answer) => respond(dialect, answer, None),
        Err(failed) => refuse(&dialect, failed),
    }
}

/// The size cap and read deadlines of a request body, from the live config.
pub fn body_limits(gateway: &Gateway) -> (usize, BodyDeadlines) {
    let snapshot = gateway.snapshot.load();
    let config = &snapshot.config;
    let deadlines = BodyDeadlines {
        total: config.deadlines.body_read,
        idle: config.deadlines.body_idle,
    };
    (config.max_body_bytes, deadlines)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `x-freeway-priority: 0`..`9`, the place a request asks for in a line waiting for capacity.
fn requested_priority(headers: &HeaderMap) -> Result<Option<u8>, GatewayError> {
    let Some(value) = headers.get("x-freeway-priority") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u8>().ok())
        .filter(|priority| *priority <= HIGHEST_PRIORITY)
        .map(Some)
        .ok_or_else(|| {
            GatewayError::invalid(
                "x-freeway-priority",
                format!("the x-freeway-priority header must be a whole number from 0 to {HIGHEST_PRIORITY}"),
            )
        })
}

/// Routing labels from `x-freeway-tags: a, b`.
fn client_tags(headers: &HeaderMap) -> Vec<String> {
    header(headers, "x-freeway-tags")
        .map(|tags| {
            tags.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn route_headers(headers: &mut HeaderMap, served: &Served) {
    set_header(headers, "x-request-id", &served.request_id);
    set_header(headers, "x-freeway-provider", &served.target.provider);
    set_header(headers, "x-freeway-model", &served.target.model);
    set_header(headers, "x-freeway-attempts", &served.attempts.to_string());
    set_header(headers, "x-freeway-route", &served.route);
    if served.cache != CacheStatus::Off {
        set_header(headers, "x-freeway-cache", served.cache.as_str());
    }
    if let Some(age) = served.age_s {
        set_header(headers, "age", &age.to_string());
    }
    if let Some(fit) = &served.fit {
        set_header(headers, "x-freeway-fit", fit);
    }
}

/// The response to an answer; a stream's `first` event (already received) goes out first.
fn respond<D: Dialect>(
    dialect: D,
    answer: Answer,
    first: Option<StreamEvent>,
) -> Response<ResponseBody> {
    match answer {
        Answer::Json { served, body } => {
            let mut response = response(
                StatusCode::OK,
                "application/json",
                full_body(dialect.encode_answer(body)),
            );
            route_headers(response.headers_mut(), &served);
            response
        }
        Answer::Stream { served, events } => {
            let body = EventBody {
                dialect,
                ended: first.is_none(),
                first,
                events,
            };
            let mut response = response(
                StatusCode::OK,
                D::STREAM_CONTENT_TYPE,
                ResponseBody::new(body),
            );
            let headers = response.headers_mut();
            headers.insert("cache-control", HeaderValue::from_static("no-cache"));
            route_headers(headers, &served);
            response
        }
    }
}

fn refuse<D: Dialect>(dialect: &D, failed: Failed) -> Response<ResponseBody> {
    let mut response = dialect.encode_error(&failed.error, &failed.request_id);
    if let Some(route) = &failed.route {
        set_header(response.headers_mut(), "x-freeway-route", route);
    }
    if matches!(
        failed.error,
        GatewayError::ClientTimeout { .. } | GatewayError::BodyTooLarge { .. }
    ) {
        // The rest of the body is still on the wire: this connection cannot be reused.
        response
            .headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A streamed answer's body: the pipeline's events, encoded by the dialect as they arrive.
struct EventBody<D> {
    dialect: D,
    /// The first event, received before the response was made (none: the stream ended
    /// without one).
    first: Option<StreamEvent>,
    events: mpsc::Receiver<StreamEvent>,
    ended: bool,
}

impl<D: Dialect> Body for EventBody<D> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let event = match self.first.take() {
                Some(first) => Some(first),
                None => match self.events.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(event) => event,
                },
            };
            let bytes = match event {
                Some(StreamEvent::Chunk(chunk)) => {
                    let bytes = self.dialect.encode_chunk(chunk);
                    if bytes.is_empty() {
                        continue;
                    }
                    bytes
                }
                Some(StreamEvent::End) => {
                    self.ended = true;
                    match self.dialect.encode_end() {
                        Some(bytes) => bytes,
                        None => continue,
                    }
                }
                Some(StreamEvent::Error(error)) => {
                    self.ended = true;
                    self.dialect.encode_stream_error(&error)
                }
                None => return Poll::Ready(None),
            };
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
    }
}
