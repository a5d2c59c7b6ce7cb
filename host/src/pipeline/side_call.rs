//! Model calls the gateway makes for a request, through itself: a cascade's judge and a
//! summarizing fitter's summary. A side call is a request of its own — the same key, filters,
//! router, buckets, failover, and its own ledger row whose request id is the parent's plus
//! `.judge` or `.summary` — run under its own deadline, never judged or summarized itself
//! (depth 1), and answered from a bounded cache keyed by the SHA-256 of what it asks.
//!
//! The call runs on a task of its own: when the caller stops waiting (the deadline), the call
//! still finishes and is accounted like any request, it just no longer matters.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cache::Directives;
use crate::error::GatewayError;

use super::canonical::inspect_chat_request;
use super::context::RequestContext;
use super::{Answer, Decoded, Failed, Gateway, RequestMeta};

/// Why the gateway asks a model on a request's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideCall {
    /// A judging router's question (a cascade's judge).
    Judge,
    /// A fitter's summary of the span it leaves out.
    Summary,
}

impl SideCall {
    pub fn as_str(self) -> &'static str {
        match self {
            SideCall::Judge => "judge",
            SideCall::Summary => "summary",
        }
    }
}

/// Answers kept, at most; the oldest goes first when full.
const CACHED_ANSWERS: usize = 4096;
/// How long a cached answer is reused.
const ANSWER_TTL: Duration = Duration::from_secs(3600);

/// The SHA-256 of a side call's body.
type Question = [u8; 32];

/// Side-call answers by the SHA-256 of the call's body, with when they were stored.
#[derive(Default)]
pub struct SideAnswers {
    answers: Mutex<HashMap<Question, (Arc<str>, Instant)>>,
}

impl SideAnswers {
    fn get(&self, key: &Question) -> Option<Arc<str>> {
        let answers = self.answers.lock().ok()?;
        let (answer, at) = answers.get(key)?;
        (at.elapsed() < ANSWER_TTL).then(|| answer.clone())
    }

    fn put(&self, key: Question, answer: Arc<str>) {
        let Ok(mut answers) = self.answers.lock() else {
            return;
        };
        if answers.len() >= CACHED_ANSWERS {
            answers.retain(|_, (_, at)| at.elapsed() < ANSWER_TTL);
            if answers.len() >= CACHED_ANSWERS
                && let Some(oldest) = answers
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| *k)
            {
                answers.remove(&oldest);
            }
        }
        answers.insert(key, (answer, Instant::now()));
    }
}

/// A side call's answer text, and whether it came from the cache.
pub struct SideAnswer {
    pub text: Arc<str>,
    pub cached: bool,
    pub took: Duration,
}

type ChatFuture = Pin<Box<dyn Future<Output = Result<Answer, Failed>> + Send>>;

impl Gateway {
    /// Ask public model `model` the chat-completions `body` (its `model` and streaming are
    /// replaced) on behalf of `ctx`'s request, waiting at most `wait`. The error says why
    /// there is no answer (late, refused, failed, empty), in one line.
    pub(super) async fn side_call(
        self: &Arc<Self>,
        ctx: &RequestContext,
        kind: SideCall,
        model: &str,
        body: &str,
        wait: Duration,
    ) -> Result<SideAnswer, String> {
        let started = Instant::now();
        let mut value: Value =
            serde_json::from_str(body).map_err(|e| format!("the question is not JSON: {e}"))?;
        let Some(object) = value.as_object_mut() else {
            return Err("the question is not a JSON object".into());
        };
        object.insert("model".into(), Value::String(model.to_string()));
        object.insert("stream".into(), Value::Bool(false));
        object.remove("stream_options");
        let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
        let key: Question = Sha256::digest(&bytes).into();
        if let Some(text) = self.side_answers.get(&key) {
            return Ok(SideAnswer {
                text,
                cached: true,
                took: started.elapsed(),
            });
        }
        let info = inspect_chat_request(&bytes).map_err(|e| format!("invalid question: {e}"))?;
        let decoded = Decoded {
            body: bytes.into(),
            info,
            tags: ctx.tags.clone(),
            session: None,
            cache: Directives::default(),
            // A side call waits in line where the request it serves stands.
            priority: Some(ctx.priority),
        };
        let meta = RequestMeta {
            id: format!("{}.{}", ctx.record.id, kind.as_str()),
            caller: ctx.record.caller.clone(),
            started: Instant::now(),
        };
        let call = tokio::spawn(self.clone().side_chat(meta, decoded, kind));
        let answer = match tokio::time::timeout(wait, call).await {
            Err(_) => return Err(format!("no answer within {} ms", wait.as_millis())),
            Ok(Err(join)) => return Err(format!("the call failed: {join}")),
            Ok(Ok(Err(failed))) => return Err(one_line(&failed.error)),
            Ok(Ok(Ok(Answer::Stream { .. }))) => return Err("it answered with a stream".into()),
            Ok(Ok(Ok(Answer::Json { body, .. }))) => body,
        };
        let text = answer_text(&answer).ok_or("the answer holds no text")?;
        let text: Arc<str> = Arc::from(text);
        self.side_answers.put(key, text.clone());
        Ok(SideAnswer {
            text,
            cached: false,
            took: started.elapsed(),
        })
    }

    /// The side call as a boxed, `Send` future of a known type: `chat` calls back into itself
    /// through this, which keeps the compiler from having to prove the recursion `Send`.
    fn side_chat(
        self: Arc<Self>,
        meta: RequestMeta,
        decoded: Decoded,
        kind: SideCall,
    ) -> ChatFuture {
        Box::pin(async move { self.chat_as(meta, Ok(decoded), Some(kind)).await })
    }
}

/// The first choice's text of a chat.completion, when it has any.
fn answer_text(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let text = value
        .pointer("/choices/0/message/content")?
        .as_str()?
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}

fn one_line(error: &GatewayError) -> String {
    let text = error.to_string();
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 300 {
        let mut end = 300;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_and_bounded() {
        let answers = SideAnswers::default();
        for i in 0..(CACHED_ANSWERS + 10) {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            answers.put(key, Arc::from(format!("answer {i}")));
        }
        assert!(answers.answers.lock().expect("lock").len() <= CACHED_ANSWERS);
        let mut newest = [0u8; 32];
        newest[..8].copy_from_slice(&((CACHED_ANSWERS + 9) as u64).to_le_bytes());
        assert_eq!(
            answers.get(&newest).as_deref(),
            Some(format!("answer {}", CACHED_ANSWERS + 9).as_str())
        );
    }

    #[test]
    fn answer_text_is_the_first_choice() {
        assert_eq!(
            answer_text(r#"{"choices":[{"message":{"content":" hard\n"}}]}"#).as_deref(),
            Some("hard")
        );
        assert_eq!(
            answer_text(r#"{"choices":[{"message":{"content":""}}]}"#),
            None
        );
        assert_eq!(answer_text(r#"{"choices":[]}"#), None);
    }
}
