//! One attempt, JSON or streamed. A stream is peeked: the upstream body is read until the
//! adapter's decoder yields a first chunk, so a target that fails before that can still be
//! skipped by the failover loop. Rate-limit facts the adapter reads from each answer go to
//! target state as they arrive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::HeaderMap;
use wasmtime::component::ResourceAny;

use super::body::{Decoded, read_answer, too_large};
use super::client::Upstream;
use super::error::AttemptError;
use crate::config::{Provider, TargetRef};
use crate::plugin_call;
use crate::plugins::bindings::adapter::{self, HttpRequest, Target};
use crate::plugins::bindings::embedder;
use crate::plugins::bindings::types::{self, ErrorKind, RateLimits};
use crate::plugins::{InstanceMode, Lease, Plugin, Tenant};
use crate::state::{ReportedLimits, Targets};

/// Everything one attempt needs.
pub struct Attempt<'a> {
    pub upstream: &'a Upstream,
    pub targets: &'a Targets,
    pub adapter: &'a Arc<Plugin>,
    pub provider: &'a Provider,
    pub target: &'a TargetRef,
    /// When the whole request must be done: an attempt ends at this or at its own
    /// `timeout_ms`, whichever comes first.
    pub deadline: tokio::time::Instant,
    /// The largest answer read from the upstream (`server.max_response_bytes`).
    pub max_response_bytes: usize,
    /// Whose request it is: adapter instances are leased for this key.
    pub tenant: Tenant,
}

impl Attempt<'_> {
    fn adapter_target(&self, stream: bool) -> Target {
        Target {
            provider: self.provider.name.clone(),
            base_url: self.provider.base_url.clone(),
            model: self.target.model.clone(),
            stream,
            settings: self.provider.settings.to_string(),
        }
    }

    /// Lease the adapter and have it build the upstream request (for embeddings, with its
    /// `embedder` export).
    async fn build(
        &self,
        call: Call,
        body: &str,
    ) -> Result<(Target, Lease, HttpRequest), AttemptError> {
        let upstream_target = self.adapter_target(call == Call::Stream);
        let mut lease = self.adapter.lease_for(self.tenant).await?;
        let request = match call {
            Call::Embeddings => {
                let target = embedding_target(&upstream_target);
                plugin_call!(lease, "build-embeddings-request", |store, b| b
                    .embedder()?
                    .call_build_embeddings_request(store, &target, body)
                    .await)?
                .map(http_request)
            }
            Call::Json | Call::Stream => plugin_call!(lease, "build-request", |store, b| b
                .adapter()?
                .call_build_request(store, &upstream_target, body)
                .await)?,
        }
        .map_err(AttemptError::from_plugin_error)?;
        Ok((upstream_target, lease, request))
    }

    /// Have the adapter parse a whole answer: a completion, or embeddings in the same
    /// envelope (the body and its usage).
    async fn parse_whole(
        call: Call,
        lease: &mut Lease,
        upstream_target: &Target,
        status: u16,
        headers: &Vec<(String, String)>,
        bytes: &[u8],
    ) -> Result<Result<adapter::Completion, types::Error>, AttemptError> {
        Ok(match call {
            Call::Embeddings => {
                let target = embedding_target(upstream_target);
                plugin_call!(*lease, "parse-embeddings-response", |store, b| b
                    .embedder()?
                    .call_parse_embeddings_response(store, &target, status, headers, bytes)
                    .await)?
                .map(|answer| adapter::Completion {
                    body: answer.body,
                    usage: answer.usage,
                })
            }
            Call::Json | Call::Stream => plugin_call!(*lease, "parse-response", |store, b| b
                .adapter()?
                .call_parse_response(store, upstream_target, status, headers, bytes)
                .await)?,
        })
    }

    /// Have the adapter read the answer's rate-limit facts, and record them.
    async fn read_limits(
        &self,
        lease: &mut Lease,
        status: u16,
        headers: &Vec<(String, String)>,
        body: &[u8],
    ) -> Result<RateLimits, AttemptError> {
        let limits = plugin_call!(*lease, "read-rate-limits", |store, b| b
            .adapter()?
            .call_read_rate_limits(store, status, headers, body)
            .await)?;
        self.record_limits(&limits).await;
        Ok(limits)
    }

    async fn record_limits(&self, limits: &RateLimits) {
        let reported = ReportedLimits {
            remaining_requests: limits.remaining_requests,
            remaining_tokens: limits.remaining_tokens,
            reset_requests: limits.reset_requests_ms.map(Duration::from_millis),
            reset_tokens: limits.reset_tokens_ms.map(Duration::from_millis),
        };
        self.targets
            .record_reported(self.target, reported, Instant::now())
            .await;
    }

    /// When this attempt must be over, and how long that is from now.
    fn attempt_deadline(&self) -> (tokio::time::Instant, Duration) {
        let now = tokio::time::Instant::now();
        let deadline = (now + self.provider.timeout).min(self.deadline);
        (deadline, deadline.saturating_duration_since(now))
    }

    /// Send a non-streaming chat request and parse the whole answer, under the provider's
    /// deadline.
    pub async fn json(&self, body: &str) -> Result<adapter::Completion, AttemptError> {
        self.whole(Call::Json, body).await
    }

    /// Send an embeddings request through the adapter's `embedder` export (the caller checked
    /// that the adapter has one) and parse the answer, like [`Attempt::json`].
    pub async fn embeddings(&self, body: &str) -> Result<adapter::Completion, AttemptError> {
        self.whole(Call::Embeddings, body).await
    }

    async fn whole(&self, call: Call, body: &str) -> Result<adapter::Completion, AttemptError> {
        let (upstream_target, lease, request) = self.build(call, body).await?;
        // A pooled instance goes back to the pool for the upstream round trip (milliseconds to
        // minutes) instead of idling in this request: a handful of instances then serve any
        // concurrency. A fresh one is this request's own, for build and parse alike.
        let lease = (self.adapter.limits.mode == InstanceMode::Fresh).then_some(lease);
        let (deadline, timeout) = self.attempt_deadline();
        let max = self.max_response_bytes;
        let exchange = async {
            let response = self
                .upstream
                .send(request, self.provider.api_key.as_ref())
                .await?;
            let (parts, incoming) = response.into_parts();
            let bytes = read_answer(&parts.headers, incoming, max).await?;
            Ok::<_, AttemptError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout_at(deadline, exchange)
            .await
            .map_err(|_| AttemptError::timeout(timeout))??;
        let status = parts.status.as_u16();
        let headers = header_pairs(&parts.headers);
        let mut lease = match lease {
            Some(lease) => lease,
            None => self.adapter.lease_for(self.tenant).await?,
        };
        let parsed =
            Self::parse_whole(call, &mut lease, &upstream_target, status, &headers, &bytes).await?;
        match parsed {
            Ok(completion) => {
                if let Err(why) = check_output(&completion.body, self.max_response_bytes) {
                    return Err(lease.refuse_output("parse-response", &why).into());
                }
                if mentions_rate_limits(&headers) {
                    self.read_limits(&mut lease, status, &headers, &[]).await?;
                }
                Ok(completion)
            }
            Err(error) => {
                let limits = self
                    .read_limits(&mut lease, status, &headers, &bytes)
                    .await?;
                Err(with_retry_hint(
                    broken_if_success(AttemptError::from_plugin_error(error), status),
                    &limits,
                ))
            }
        }
    }

    /// Open a stream and read until its first decoded chunk (the commit point).
    pub async fn stream(&self, body: &str) -> Result<OpenStream, AttemptError> {
        let (upstream_target, mut lease, request) = self.build(Call::Stream, body).await?;
        let (deadline, timeout) = self.attempt_deadline();
        let response = tokio::time::timeout_at(
            deadline,
            self.upstream.send(request, self.provider.api_key.as_ref()),
        )
        .await
        .map_err(|_| AttemptError::timeout(timeout))??;
        let (parts, incoming) = response.into_parts();
        let status = parts.status.as_u16();
        let headers = header_pairs(&parts.headers);
        if !parts.status.is_success() {
            let bytes = tokio::time::timeout_at(
                deadline,
                read_answer(&parts.headers, incoming, self.max_response_bytes),
            )
            .await
            .map_err(|_| AttemptError::timeout(timeout))?
            .unwrap_or_default();
            let parsed = plugin_call!(lease, "parse-response", |store, b| b
                .adapter()?
                .call_parse_response(store, &upstream_target, status, &headers, &bytes)
                .await)?;
            let limits = self
                .read_limits(&mut lease, status, &headers, &bytes)
                .await?;
            let error = match parsed {
                Err(error) => AttemptError::from_plugin_error(error),
                Ok(_) => AttemptError::upstream(
                    ErrorKind::InvalidResponse,
                    format!("the upstream answered HTTP {status} to a stream request"),
                ),
            };
            return Err(with_retry_hint(error, &limits));
        }
        if mentions_rate_limits(&headers) {
            self.read_limits(&mut lease, status, &headers, &[]).await?;
        }
        let decoder = plugin_call!(lease, "stream-decoder", |store, b| b
            .adapter()?
            .stream_decoder()
            .call_constructor(store, &upstream_target)
            .await)?;
        let mut open = OpenStream {
            lease,
            decoder,
            body: Decoded::new(&parts.headers, incoming)?,
            pending: Vec::new(),
            idle_timeout: self.provider.stream_idle_timeout,
            deadline: self.deadline,
            received: 0,
            max_bytes: self.max_response_bytes,
            finished: false,
            first_frame: true,
            held: None,
        };
        loop {
            match tokio::time::timeout_at(deadline, open.next_chunks()).await {
                Err(_) => {
                    open.close().await;
                    return Err(AttemptError::timeout(timeout));
                }
                Ok(Err(error)) => {
                    open.close().await;
                    return Err(broken_if_success(error, status));
                }
                Ok(Ok(chunks)) if !chunks.is_empty() => {
                    open.pending = chunks;
                    return Ok(open);
                }
                Ok(Ok(_)) if open.finished => {
                    open.close().await;
                    return Err(AttemptError::upstream(
                        ErrorKind::InvalidResponse,
                        "the upstream stream ended without any chunk",
                    ));
                }
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// Which of the adapter's exports an attempt goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    /// `build-request` and `parse-response`, one whole answer.
    Json,
    /// `build-request` and the `stream-decoder`.
    Stream,
    /// The optional `embedder` export.
    Embeddings,
}

/// The embedder's view of a target (the adapter's, which never streams there).
fn embedding_target(target: &Target) -> embedder::EmbeddingTarget {
    embedder::EmbeddingTarget {
        provider: target.provider.clone(),
        base_url: target.base_url.clone(),
        model: target.model.clone(),
        settings: target.settings.clone(),
    }
}

/// The embedder's upstream request as the adapter's: the host sends both the same way.
fn http_request(request: embedder::EmbeddingHttpRequest) -> HttpRequest {
    HttpRequest {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body,
        auth: match request.auth {
            embedder::EmbeddingAuth::None => adapter::Auth::None,
            embedder::EmbeddingAuth::Bearer => adapter::Auth::Bearer,
            embedder::EmbeddingAuth::Header(name) => adapter::Auth::Header(name),
            embedder::EmbeddingAuth::Query(name) => adapter::Auth::Query(name),
        },
    }
}

/// A committed upstream stream: the adapter instance with its decoder and the body.
pub struct OpenStream {
    lease: Lease,
    decoder: ResourceAny,
    body: Decoded,
    /// Chunks decoded while peeking, not yet relayed.
    pub pending: Vec<adapter::Chunk>,
    /// The longest gap allowed between two decoded chunks (bytes that decode to nothing,
    /// such as a drip of one byte a second, do not count as progress).
    pub idle_timeout: Duration,
    /// When the whole request must be over.
    pub deadline: tokio::time::Instant,
    /// Body bytes read so far, and the most that may be.
    received: usize,
    max_bytes: usize,
    /// The upstream body has ended (and the decoder was told).
    pub finished: bool,
    /// No body frame has been read yet.
    first_frame: bool,
    /// The first frame's bytes after its first event, decoded on the next call (see
    /// [`first_event_end`]).
    held: Option<Bytes>,
}

impl OpenStream {
    /// Chunks decoded from the next body frame (possibly none), or the decoder's final
    /// chunks once the body has ended.
    pub async fn next_chunks(&mut self) -> Result<Vec<adapter::Chunk>, AttemptError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let decoder = self.decoder;
        let data = match self.held.take() {
            Some(rest) => {
                // Let the first event's chunks reach the client before decoding the rest.
                tokio::task::yield_now().await;
                rest
            }
            None => match self.body.next_data().await {
                Some(Ok(mut data)) => {
                    self.received += data.len();
                    if self.received > self.max_bytes {
                        return Err(too_large(self.max_bytes));
                    }
                    if std::mem::take(&mut self.first_frame)
                        && let Some(end) = first_event_end(&data)
                    {
                        self.held = Some(data.split_off(end));
                    }
                    data
                }
                Some(Err(error)) => return Err(error),
                None => {
                    self.finished = true;
                    let chunks = plugin_call!(self.lease, "stream-decoder.finish", |store, b| b
                        .adapter()?
                        .stream_decoder()
                        .call_finish(store, decoder)
                        .await)?
                    .map_err(AttemptError::from_plugin_error)?;
                    return self.checked(chunks, "stream-decoder.finish");
                }
            },
        };
        let chunks = plugin_call!(self.lease, "stream-decoder.push", |store, b| b
            .adapter()?
            .stream_decoder()
            .call_push(store, decoder, &data)
            .await)?
        .map_err(AttemptError::from_plugin_error)?;
        self.checked(chunks, "stream-decoder.push")
    }

    /// Chunks go to the client as they are: each must be JSON, and no bigger than an answer.
    fn checked(
        &mut self,
        chunks: Vec<adapter::Chunk>,
        call: &str,
    ) -> Result<Vec<adapter::Chunk>, AttemptError> {
        for chunk in &chunks {
            if let Err(why) = check_output(&chunk.data, self.max_bytes) {
                return Err(self.lease.refuse_output(call, &why).into());
            }
        }
        Ok(chunks)
    }

    /// Release the decoder resource so a pooled instance goes back clean.
    pub async fn close(&mut self) {
        let decoder = self.decoder;
        let _ = plugin_call!(self.lease, "stream-decoder.drop", |store, _exports| decoder
            .resource_drop_async(store)
            .await);
    }
}

/// Where the first server-sent event of a frame ends, when more bytes follow it. An upstream
/// that writes a whole answer at once (a cached or very fast one) sends every event in one
/// frame; decoding and filtering them all before the client sees the first would make the
/// time to first byte grow with the answer. The first frame is therefore decoded in two
/// pushes: its first event, then the rest. Cutting anywhere is safe (decoders already take
/// events split across reads); a stream with no blank line (NDJSON) is left whole.
fn first_event_end(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(offset) = data[from..].iter().position(|&byte| byte == b'\n') {
        let line_start = from + offset + 1;
        let rest = &data[line_start..];
        let end = if rest.starts_with(b"\n") {
            line_start + 1
        } else if rest.starts_with(b"\r\n") {
            line_start + 2
        } else {
            from = line_start;
            continue;
        };
        return (end < data.len()).then_some(end);
    }
    None
}

/// What an adapter hands back for the client must be a JSON object within the answer cap: a
/// plugin cannot make the gateway send broken JSON or buffer without bound. Validation skips
/// every value (no allocation), a few µs per KiB.
fn check_output(json: &str, max: usize) -> Result<(), String> {
    if json.len() > max {
        return Err(format!(
            "{} bytes, over server.max_response_bytes ({max})",
            json.len()
        ));
    }
    if !json.trim_start().starts_with('{') {
        return Err("not a JSON object".into());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(json)
        .map(|_| ())
        .map_err(|e| format!("not valid JSON ({e})"))
}

/// An upstream that answered 2xx and then failed (a body cut short, an error in a 200, bytes
/// that are not what they claim) gave a broken answer, not an outage: the client is told
/// 502 `upstream_error`, not 503.
fn broken_if_success(mut error: AttemptError, status: u16) -> AttemptError {
    if (200..300).contains(&status) && error.kind == ErrorKind::Unavailable {
        error.kind = ErrorKind::InvalidResponse;
    }
    error
}

/// An upstream error takes the wait the rate-limit headers give when its body named none.
fn with_retry_hint(mut error: AttemptError, limits: &RateLimits) -> AttemptError {
    if error.retry_after.is_none() {
        error.retry_after = limits.retry_after_ms.map(Duration::from_millis);
    }
    error
}

/// Only answers that carry rate-limit headers are worth a plugin call on success.
fn mentions_rate_limits(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(name, _)| name.contains("ratelimit") || name == "retry-after")
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::first_event_end;

    #[test]
    fn the_first_event_is_cut_from_a_frame_that_holds_more() {
        let frame = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
        assert_eq!(first_event_end(frame), Some(15));
        let crlf = b"event: x\r\ndata: {}\r\n\r\ndata: {}\r\n\r\n";
        assert_eq!(
            &crlf[..first_event_end(crlf).unwrap()],
            b"event: x\r\ndata: {}\r\n\r\n"
        );
    }

    #[test]
    fn a_frame_of_one_event_or_no_blank_line_stays_whole() {
        assert_eq!(first_event_end(b"data: {}\n\n"), None);
        assert_eq!(first_event_end(b"data: {}\r\n\r\n"), None);
        assert_eq!(first_event_end(b"{\"a\":1}\n{\"a\":2}\n"), None);
        assert_eq!(first_event_end(b"data: {\"a\":"), None);
        assert_eq!(first_event_end(b""), None);
    }
}
