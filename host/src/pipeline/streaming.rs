//! Streams from endpoints that cannot stream, and whole answers from endpoints that only
//! stream. What an endpoint can do is a catalog fact (`streaming = false | "only"` on a
//! provider or a model) or learned: an upstream that refuses a streamed request as unsupported
//! is asked again without streaming (and the reverse), and the answer is remembered in
//! [`StreamFacts`] for the life of the config snapshot. A client's stream is then replayed from
//! the whole answer ([`super::assemble::chunks_of`]: role, content, tool calls, finish reason,
//! usage when asked); a client's plain request is answered with the stream folded into one
//! answer ([`Assembler`]).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::config::{Streaming, TargetRef};
use crate::plugins::bindings::adapter;
use crate::plugins::bindings::types::ErrorKind;
use crate::upstream::{Attempt, AttemptError, OpenStream};

use super::assemble::{Assembler, chunks_of};

/// What this snapshot learned of targets' streaming from their refusals.
#[derive(Default)]
pub struct StreamFacts(Mutex<HashMap<TargetRef, Streaming>>);

impl StreamFacts {
    fn get(&self, target: &TargetRef) -> Option<Streaming> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
            .copied()
    }

    fn learn(&self, target: &TargetRef, fact: Streaming) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.clone(), fact);
    }
}

/// An attempt that answered.
pub(super) enum Success {
    Json(adapter::Completion),
    Stream(Box<OpenStream>),
    /// A whole answer to a client that asked for a stream (the target cannot stream).
    Replayed(adapter::Completion),
}

/// One attempt in the shape the target can answer in, converted to the shape the client
/// asked for; a target that refuses the shape as unsupported is asked once more in the other.
pub(super) async fn attempt(
    attempt: &Attempt<'_>,
    facts: &StreamFacts,
    client_streams: bool,
    body: &str,
) -> Result<Success, AttemptError> {
    let known = facts
        .get(attempt.target)
        .unwrap_or_else(|| attempt.provider.streaming(&attempt.target.model));
    let upstream_streams = match known {
        Streaming::Yes => client_streams,
        Streaming::No => false,
        Streaming::Only => true,
    };
    match attempt_as(attempt, client_streams, upstream_streams, body).await {
        Err(error) if known == Streaming::Yes && refuses_shape(&error) => {
            let learned = if upstream_streams {
                Streaming::No
            } else {
                Streaming::Only
            };
            tracing::info!(
                target = %attempt.target,
                "{} refused a {} request as unsupported; asking it {} from now on",
                attempt.target,
                if upstream_streams { "streamed" } else { "non-streamed" },
                if upstream_streams { "without streaming" } else { "to stream" },
            );
            facts.learn(attempt.target, learned);
            attempt_as(attempt, client_streams, !upstream_streams, body).await
        }
        other => other,
    }
}

async fn attempt_as(
    attempt: &Attempt<'_>,
    client_streams: bool,
    upstream_streams: bool,
    body: &str,
) -> Result<Success, AttemptError> {
    match (client_streams, upstream_streams) {
        (true, true) => attempt
            .stream(body)
            .await
            .map(|open| Success::Stream(Box::new(open))),
        (false, false) => attempt.json(body).await.map(Success::Json),
        (true, false) => attempt
            .json(&with_stream(body, false))
            .await
            .map(Success::Replayed),
        (false, true) => {
            let open = attempt.stream(&with_stream(body, true)).await?;
            whole_answer(open, attempt.max_response_bytes).await
        }
    }
}

/// Did the upstream refuse the request because of its `stream` setting? Adapters report it as
/// a bad or unsupported request whose message or parameter names streaming.
fn refuses_shape(error: &AttemptError) -> bool {
    matches!(error.kind, ErrorKind::BadRequest | ErrorKind::Unsupported)
        && (error.param.as_deref() == Some("stream")
            || error.message.to_ascii_lowercase().contains("stream"))
}

/// The canonical body asking for a stream or a whole answer (usage included either way).
fn with_stream(body: &str, stream: bool) -> String {
    let Ok(Value::Object(mut request)) = serde_json::from_str::<Value>(body) else {
        return body.to_string();
    };
    request.insert("stream".into(), Value::Bool(stream));
    if stream {
        request.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
    } else {
        request.remove("stream_options");
    }
    Value::Object(request).to_string()
}

/// Read an upstream stream to its end and fold it into one answer.
async fn whole_answer(mut open: OpenStream, max_bytes: usize) -> Result<Success, AttemptError> {
    let mut assembler = Assembler::new(max_bytes);
    let mut usage = None;
    let mut chunks = std::mem::take(&mut open.pending);
    let read = async {
        loop {
            for chunk in chunks.drain(..) {
                if chunk.usage.is_some() {
                    usage = chunk.usage;
                }
                assembler.push(&chunk.data);
            }
            if open.finished {
                return Ok(());
            }
            let quiet_until = tokio::time::Instant::now() + open.idle_timeout;
            chunks =
                match tokio::time::timeout_at(quiet_until.min(open.deadline), open.next_chunks())
                    .await
                {
                    Ok(next) => next?,
                    Err(_) => {
                        return Err(AttemptError::upstream(
                            ErrorKind::Timeout,
                            "the upstream's stream stalled before its answer was whole",
                        ));
                    }
                };
        }
    };
    let outcome = read.await;
    open.close().await;
    outcome?;
    let body = assembler.finish().ok_or_else(|| {
        AttemptError::upstream(
            ErrorKind::InvalidResponse,
            "the upstream's stream ended without a complete answer",
        )
    })?;
    Ok(Success::Json(adapter::Completion { body, usage }))
}

/// A whole answer as the chunks of a client's stream.
pub(super) fn replay(
    completion: &adapter::Completion,
    include_usage: bool,
) -> Result<Vec<adapter::Chunk>, AttemptError> {
    let chunks = chunks_of(&completion.body, include_usage).ok_or_else(|| {
        AttemptError::upstream(
            ErrorKind::InvalidResponse,
            "the upstream's answer is not a chat completion that can be streamed",
        )
    })?;
    Ok(chunks
        .into_iter()
        .map(|data| adapter::Chunk { data, usage: None })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_flag_is_rewritten_and_usage_asked_for() {
        let body =
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false}}"#;
        let whole: Value = serde_json::from_str(&with_stream(body, false)).unwrap();
        assert_eq!(whole["stream"], false);
        assert!(whole.get("stream_options").is_none());
        let streamed: Value =
            serde_json::from_str(&with_stream(r#"{"model":"m","messages":[]}"#, true)).unwrap();
        assert_eq!(streamed["stream"], true);
        assert_eq!(streamed["stream_options"]["include_usage"], true);
    }

    #[test]
    fn only_a_refusal_that_names_streaming_is_learned() {
        let mut error = AttemptError::upstream(
            ErrorKind::BadRequest,
            "Streaming is not supported for this model",
        );
        assert!(refuses_shape(&error));
        error.message = "messages must not be empty".into();
        assert!(!refuses_shape(&error));
        error.param = Some("stream".into());
        assert!(refuses_shape(&error));
        let outage = AttemptError::upstream(ErrorKind::Unavailable, "stream broke");
        assert!(!refuses_shape(&outage));
    }
}
