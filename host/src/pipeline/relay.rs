//! Carries a committed stream to its end: decode → stream filters → canonical chunks on a
//! channel the inbound dialect encodes. The end — completed, broken upstream, a faulting
//! filter, or a client that went away — updates the target's state and finishes the
//! request's record, on this task, whatever happens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cache::MAX_ENTRY_BYTES;
use crate::config::{Config, TargetRef};
use crate::error::GatewayError;
use crate::plugins::bindings::adapter;
use crate::plugins::bindings::types::ErrorKind;
use crate::state::{Admission, InFlight};
use crate::upstream::{AttemptError, OpenStream};

use super::answer::AnswerTally;
use super::assemble::Assembler;
use super::context::RequestContext;
use super::failover::{CommittedStream, StreamSource};
use super::filters::{ActiveFilter, StreamFilter};
use super::record::Outcome;
use super::{Gateway, StreamEvent};

/// Why a committed stream ended early.
enum StreamEnd {
    /// The client closed its connection: its own outcome, no fault of the target's.
    ClientGone,
    /// The upstream broke, went quiet, passed the deadline, or a filter faulted.
    Broken(String),
}

pub(super) struct Relay {
    gateway: Arc<Gateway>,
    ctx: RequestContext,
    target: TargetRef,
    /// The upstream stream; `None` when the answer is replayed from a whole one.
    open: Option<OpenStream>,
    /// Chunks in hand before the first read: the upstream's first, or a whole replayed answer.
    first: Vec<adapter::Chunk>,
    /// A replayed answer that could not be made into chunks.
    broken: Option<String>,
    pending_filters: Vec<ActiveFilter>,
    filters: Vec<StreamFilter>,
    in_flight: InFlight,
    attempt_started: Instant,
    admission: Admission,
    config_digest: String,
    answer: AnswerTally,
    /// The answer as the client receives it, folded for the response cache when it keeps it.
    for_cache: Option<Assembler>,
}

impl Relay {
    pub fn new(
        gateway: Arc<Gateway>,
        ctx: RequestContext,
        stream: CommittedStream,
        config: &Config,
    ) -> Self {
        let answer = AnswerTally::new(ctx.log_content.answers());
        let for_cache = ctx.cache.stores().then(|| Assembler::new(MAX_ENTRY_BYTES));
        let (open, first, broken) = match stream.source {
            StreamSource::Upstream(mut open) => {
                let first = std::mem::take(&mut open.pending);
                (Some(*open), first, None)
            }
            StreamSource::Replayed(chunks) => (None, chunks, None),
            StreamSource::Broken(why) => (None, Vec::new(), Some(why)),
        };
        Relay {
            gateway,
            ctx,
            target: stream.target,
            open,
            first,
            broken,
            pending_filters: stream.filters,
            filters: Vec::new(),
            in_flight: stream.in_flight,
            attempt_started: stream.attempt_started,
            admission: stream.admission,
            config_digest: config.digest.clone(),
            answer,
            for_cache,
        }
    }

    pub async fn run(mut self, tx: mpsc::Sender<StreamEvent>) {
        let info = self.ctx.guard_info();
        for filter in std::mem::take(&mut self.pending_filters) {
            self.filters.push(StreamFilter::open(filter, &info).await);
        }
        let ttft = self.attempt_started.elapsed();
        self.ctx.record.ttft = Some(ttft);
        let mut chunks = std::mem::take(&mut self.first);
        let mut outcome: Result<(), StreamEnd> = match self.broken.take() {
            Some(why) => Err(StreamEnd::Broken(why)),
            None => Ok(()),
        };
        let (idle, deadline) = self
            .open
            .as_ref()
            .map_or((Duration::ZERO, self.ctx.deadline), |open| {
                (open.idle_timeout, open.deadline)
            });
        // Progress is a decoded chunk, not a byte: an upstream dripping bytes that never make
        // an event is cut after `idle` like a silent one.
        let mut quiet_until = tokio::time::Instant::now() + idle;
        while outcome.is_ok() {
            if let Err(end) = self.send(&tx, std::mem::take(&mut chunks)).await {
                outcome = Err(end);
                break;
            }
            let Some(open) = self.open.as_mut().filter(|open| !open.finished) else {
                break;
            };
            chunks = match tokio::time::timeout_at(quiet_until.min(deadline), open.next_chunks())
                .await
            {
                Ok(Ok(chunks)) => {
                    if !chunks.is_empty() {
                        quiet_until = tokio::time::Instant::now() + idle;
                    }
                    chunks
                }
                Ok(Err(error)) => {
                    outcome = Err(StreamEnd::Broken(error.message));
                    break;
                }
                Err(_) if quiet_until < deadline => {
                    outcome = Err(StreamEnd::Broken(format!(
                        "the upstream sent no chunk for {} ms",
                        idle.as_millis()
                    )));
                    break;
                }
                Err(_) => {
                    outcome = Err(StreamEnd::Broken(
                        "the request's deadline (server.request_timeout_ms) passed".into(),
                    ));
                    break;
                }
            };
        }
        if let Some(open) = &mut self.open {
            open.close().await;
        }
        if outcome.is_ok() {
            outcome = self.finish_filters(&tx).await;
        }
        let targets = &self.gateway.targets;
        match &outcome {
            Ok(()) => {
                let _ = tx.send(StreamEvent::End).await;
                if let Some(answer) = self.for_cache.take().and_then(Assembler::finish) {
                    self.gateway.store_answer(&self.ctx, &self.target, answer);
                }
                targets
                    .record_success(
                        &self.target,
                        self.attempt_started.elapsed(),
                        Some(ttft),
                        self.admission,
                        self.ctx.record.used_tokens(),
                    )
                    .await;
            }
            Err(StreamEnd::ClientGone) => {}
            Err(StreamEnd::Broken(message)) => {
                let error = AttemptError::upstream(ErrorKind::Unavailable, message.clone());
                targets
                    .record_failure(
                        &self.target,
                        error.failure(),
                        Instant::now(),
                        self.admission,
                        &self.config_digest,
                    )
                    .await;
                let error = GatewayError::StreamInterrupted {
                    target: self.target.to_string(),
                    reason: message.clone(),
                };
                let _ = tx.send(StreamEvent::Error(error)).await;
            }
        }
        drop(self.in_flight);
        let mut record = self.ctx.record;
        record.answer_bytes = self.answer.bytes;
        record.answer_text = self.answer.text;
        match outcome {
            Ok(()) => {}
            Err(StreamEnd::ClientGone) => record.outcome = Outcome::ClientClosed,
            Err(StreamEnd::Broken(why)) => record.outcome = Outcome::Interrupted(why),
        }
        record.finish(&self.gateway).await;
    }

    /// Filters may hold text back until the end.
    async fn finish_filters(&mut self, tx: &mpsc::Sender<StreamEvent>) -> Result<(), StreamEnd> {
        let mut tail = Vec::new();
        for filter in &mut self.filters {
            tail.extend(filter.finish().await.map_err(StreamEnd::Broken)?);
        }
        for chunk in tail {
            if let Some(assembler) = &mut self.for_cache {
                assembler.push(&chunk);
            }
            if tx.send(StreamEvent::Chunk(chunk)).await.is_err() {
                return Err(StreamEnd::ClientGone);
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        tx: &mpsc::Sender<StreamEvent>,
        chunks: Vec<adapter::Chunk>,
    ) -> Result<(), StreamEnd> {
        for chunk in chunks {
            if let Some(usage) = chunk.usage {
                self.ctx.record.usage = Some(usage);
                if let Some(cached) = super::answer::cached_tokens(&chunk.data) {
                    self.ctx.record.cached_tokens = Some(cached);
                }
                if !self.ctx.info.include_usage {
                    if let Some(assembler) = &mut self.for_cache {
                        assembler.push(&chunk.data);
                    }
                    continue;
                }
            }
            self.answer.add(&chunk.data);
            if self.gateway.telemetry.enabled() {
                let reasons = super::answer::finish_reasons(&chunk.data);
                if !reasons.is_empty() {
                    self.ctx.record.finish_reasons = reasons;
                }
            }
            let mut texts = vec![chunk.data];
            for filter in &mut self.filters {
                texts = filter.apply(texts).await.map_err(StreamEnd::Broken)?;
            }
            for text in texts {
                if let Some(assembler) = &mut self.for_cache {
                    assembler.push(&text);
                }
                tx.send(StreamEvent::Chunk(text))
                    .await
                    .map_err(|_| StreamEnd::ClientGone)?;
            }
        }
        Ok(())
    }
}
