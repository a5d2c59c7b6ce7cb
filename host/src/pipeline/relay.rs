//! Carries a committed stream to its end: decode → stream filters → canonical chunks on a
//! channel the inbound dialect encodes. The end — completed, broken upstream, a faulting
//! filter, or a client that went away — updates the target's state and finishes the
//! request's record, on this task, whatever happens.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::cache::MAX_ENTRY_BYTES;
use crate::config::{Config, TargetRef};
use crate::error::GatewayError;
use crate::plugins::bindings::adapter;
use crate::plugins::bindings::types::ErrorKind;
use crate::state::{Admission, InFlight};
use crate::upstream::{AttemptError, OpenStream};

use super::assemble::Assembler;
use super::context::RequestContext;
use super::failover::CommittedStream;
use super::filters::{ActiveFilter, StreamFilter};
use super::record::{AnswerTally, Outcome};
use super::{Gateway, StreamEvent};

/// Why a committed stream ended early when it was not the upstream's fault.
const CLIENT_GONE: &str = "the client went away";

pub(super) struct Relay {
    gateway: Arc<Gateway>,
    ctx: RequestContext,
    target: TargetRef,
    open: OpenStream,
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
        Relay {
            gateway,
            ctx,
            target: stream.target,
            open: stream.open,
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
        let mut chunks = std::mem::take(&mut self.open.pending);
        let mut outcome: Result<(), String> = Ok(());
        loop {
            if let Err(error) = self.send(&tx, chunks).await {
                outcome = Err(error);
                break;
            }
            if self.open.finished {
                break;
            }
            let idle = self.open.idle_timeout;
            chunks = match tokio::time::timeout(idle, self.open.next_chunks()).await {
                Ok(Ok(chunks)) => chunks,
                Ok(Err(error)) => {
                    outcome = Err(error.message);
                    break;
                }
                Err(_) => {
                    outcome = Err(format!(
                        "the upstream sent nothing for {} ms",
                        idle.as_millis()
                    ));
                    break;
                }
            };
        }
        self.open.close().await;
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
            Err(message) => {
                if message != CLIENT_GONE {
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
                }
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
        if let Err(why) = outcome {
            record.outcome = Outcome::Interrupted(why);
        }
        record.finish(&self.gateway).await;
    }

    /// Filters may hold text back until the end.
    async fn finish_filters(&mut self, tx: &mpsc::Sender<StreamEvent>) -> Result<(), String> {
        let mut tail = Vec::new();
        for filter in &mut self.filters {
            tail.extend(filter.finish().await?);
        }
        for chunk in tail {
            if let Some(assembler) = &mut self.for_cache {
                assembler.push(&chunk);
            }
            if tx.send(StreamEvent::Chunk(chunk)).await.is_err() {
                return Err(CLIENT_GONE.into());
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        tx: &mpsc::Sender<StreamEvent>,
        chunks: Vec<adapter::Chunk>,
    ) -> Result<(), String> {
        for chunk in chunks {
            if let Some(usage) = chunk.usage {
                self.ctx.record.usage = Some(usage);
                if let Some(cached) = super::record::cached_tokens(&chunk.data) {
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
                let reasons = super::record::finish_reasons(&chunk.data);
                if !reasons.is_empty() {
                    self.ctx.record.finish_reasons = reasons;
                }
            }
            let mut texts = vec![chunk.data];
            for filter in &mut self.filters {
                texts = filter.apply(texts).await?;
            }
            for text in texts {
                if let Some(assembler) = &mut self.for_cache {
                    assembler.push(&text);
                }
                tx.send(StreamEvent::Chunk(text))
                    .await
                    .map_err(|_| CLIENT_GONE.to_string())?;
            }
        }
        Ok(())
    }
}
