//! The failover loop: resolve the model, run the request filters, ask the router for an
//! order (a sticky session's target first), then try each target — admission against its
//! live state, one upstream attempt, its outcome recorded — until one commits or a failure
//! says no other target would do better. Every target's outcome goes into the route log.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::config::TargetRef;
use crate::error::GatewayError;
use crate::plugins::bindings::adapter;
use crate::state::{Admission, InFlight};
use crate::telemetry::AttemptSpan;
use crate::upstream::error::kind_name;
use crate::upstream::{Attempt, OpenStream};

use super::cached::Hit;
use super::caller::{has_hard_budget, refused, worst_case};
use super::canonical::Operation;
use super::context::RequestContext;
use super::embeddings;
use super::filters::{self, ActiveFilter};
use super::record::{LogSafe, log_text};
use super::resolve::resolve;
use super::route_log::{RouteLog, RouteOutcome, refused_by_upstream};
use super::{Gateway, Snapshot};

/// Output tokens assumed for the token-bucket pre-check when a request sets no max_tokens.
const EXPECTED_OUTPUT_TOKENS: u32 = 256;

/// A target answered: a whole completion, or a stream whose first chunk is in hand.
pub(super) enum Committed {
    Json {
        target: TargetRef,
        completion: adapter::Completion,
        filters: Vec<ActiveFilter>,
    },
    Stream(Box<CommittedStream>),
    /// The response cache holds the answer: no target was tried.
    Cached(Box<Hit>),
}

/// Everything the relay needs to carry a committed stream to its end.
pub(super) struct CommittedStream {
    pub target: TargetRef,
    pub open: OpenStream,
    pub filters: Vec<ActiveFilter>,
    pub in_flight: InFlight,
    pub attempt_started: Instant,
    pub admission: Admission,
}

enum Success {
    Json(adapter::Completion),
    Stream(Box<OpenStream>),
}

impl Gateway {
    /// Find a target that answers; the route log ends up in the request's record.
    pub(super) async fn failover(
        self: &Arc<Self>,
        snapshot: &Arc<Snapshot>,
        ctx: &mut RequestContext,
        body: Bytes,
    ) -> Result<Committed, GatewayError> {
        let mut log = RouteLog::default();
        let result = self.try_targets(snapshot, ctx, body, &mut log).await;
        ctx.record.route = log;
        result
    }

    async fn try_targets(
        self: &Arc<Self>,
        snapshot: &Arc<Snapshot>,
        ctx: &mut RequestContext,
        body: Bytes,
        log: &mut RouteLog,
    ) -> Result<Committed, GatewayError> {
        let config = &snapshot.config;
        let route =
            resolve(config, &ctx.info.model).ok_or_else(|| GatewayError::ModelNotFound {
                model: ctx.info.model.clone(),
            })?;
        ctx.record.model_known = true;
        // Canonical bodies are valid JSON, hence UTF-8; a dialect that breaks that is caught.
        let mut body = String::from_utf8(body.to_vec())
            .map_err(|_| GatewayError::invalid_json("the request body is not UTF-8"))?;
        if config.cache.enabled {
            self.plan_cache(snapshot, &route, ctx, &body);
        }
        let filters = match ctx.info.operation {
            Operation::Chat => {
                filters::on_request(snapshot, &route.filters, ctx, &mut body).await?
            }
            Operation::Embeddings => {
                embeddings::filter_input(snapshot, &route.filters, ctx, &mut body).await?
            }
        };
        ctx.record.prompt_bytes = body.len();
        if let Some(hit) = self.cached_answer(ctx).await {
            return Ok(Committed::Cached(Box::new(hit)));
        }

        let mut order = self.order_targets(snapshot, &route, ctx, log).await?;
        let sticky_key = (!config.sticky_ttl.is_zero())
            .then(|| ctx.sticky_key())
            .flatten();
        if let Some(key) = &sticky_key
            && let Some(target) = self.shared.sessions.get(key).await
            && let Some(at) = order.iter().position(|t| *t == target)
        {
            let target = order.remove(at);
            order.insert(0, target);
        }
        if let Some(caller) = ctx.record.caller.clone()
            && has_hard_budget(&caller)
            && !order.is_empty()
        {
            let worst = worst_case(config, &order, &ctx.info, EXPECTED_OUTPUT_TOKENS);
            ctx.record.reservation = self
                .shared
                .key_usage
                .reserve(&caller, worst, SystemTime::now())
                .await
                .map_err(|refusal| refused(&caller.name, refusal))?;
        }
        let estimated_tokens = u64::from(ctx.info.prompt_tokens)
            + u64::from(ctx.info.max_tokens.unwrap_or(EXPECTED_OUTPUT_TOKENS));
        for target in order {
            if tokio::time::Instant::now() >= ctx.deadline {
                return Err(GatewayError::UpstreamTimeout {
                    message: format!(
                        "the request's deadline of {} ms (server.request_timeout_ms) passed: {}",
                        config.deadlines.request.as_millis(),
                        log.header_value()
                    ),
                });
            }
            let Some(provider) = config.providers.get(&target.provider) else {
                continue;
            };
            let limits = provider.limits(&target.model);
            let admission = match self
                .targets
                .admit(
                    &target,
                    limits,
                    estimated_tokens,
                    &config.digest,
                    Instant::now(),
                )
                .await
            {
                Ok(admission) => admission,
                Err(refusal) => {
                    log.push(&target, RouteOutcome::from(refusal));
                    continue;
                }
            };
            if let Some(used) = admission.quota_crossed {
                tracing::warn!(
                    target = %target,
                    quota_used = used,
                    "{target} has used {:.0}% of its daily free allowance",
                    used * 100.0
                );
            }
            let Some(adapter) = snapshot.plugins.get(&provider.adapter) else {
                log.push(
                    &target,
                    RouteOutcome::Skipped(format!("adapter '{}' not loaded", provider.adapter)),
                );
                continue;
            };
            let attempt = Attempt {
                upstream: &self.upstream,
                targets: &self.targets,
                adapter,
                provider,
                target: &target,
                deadline: ctx.deadline,
                max_response_bytes: config.deadlines.max_response_bytes,
            };
            let attempt_started = Instant::now();
            let attempt_wall = SystemTime::now();
            let in_flight = InFlight::start(self.targets.local(&target));
            let outcome = match (ctx.info.operation, ctx.info.stream) {
                (Operation::Embeddings, _) => attempt.embeddings(&body).await.map(Success::Json),
                (Operation::Chat, true) => attempt
                    .stream(&body)
                    .await
                    .map(|open| Success::Stream(Box::new(open))),
                (Operation::Chat, false) => attempt.json(&body).await.map(Success::Json),
            };
            ctx.record.attempts.push(AttemptSpan {
                provider: target.provider.clone(),
                model: target.model.clone(),
                started: attempt_wall,
                ended: SystemTime::now(),
                error: outcome
                    .as_ref()
                    .err()
                    .map(|e| kind_name(e.kind).to_string()),
            });
            let error = match outcome {
                Ok(success) => {
                    let took = attempt_started.elapsed();
                    if let Some(key) = sticky_key {
                        self.shared
                            .sessions
                            .set(key, target.clone(), config.sticky_ttl)
                            .await;
                    }
                    log.push(&target, RouteOutcome::Ok(took));
                    ctx.log_content = ctx.content_policy(config, provider);
                    if ctx.log_content.prompts() {
                        log_text(&ctx.record.id, "prompt", &body);
                    }
                    ctx.record.prices = provider
                        .model_info
                        .get(&target.model)
                        .and_then(|m| Some((m.input_price?, m.output_price?)));
                    ctx.record.target = Some(target.clone());
                    return Ok(match success {
                        Success::Json(completion) => {
                            drop(in_flight);
                            // An upstream that does not count embedded tokens (Gemini's
                            // embedContent) is accounted at the gateway's estimate.
                            ctx.record.usage = completion.usage.or_else(|| {
                                (ctx.info.operation == Operation::Embeddings).then_some(
                                    adapter::Usage {
                                        prompt_tokens: ctx.info.prompt_tokens,
                                        completion_tokens: 0,
                                    },
                                )
                            });
                            self.targets
                                .record_success(
                                    &target,
                                    took,
                                    None,
                                    admission,
                                    ctx.record.used_tokens(),
                                )
                                .await;
                            Committed::Json {
                                target,
                                completion,
                                filters,
                            }
                        }
                        Success::Stream(open) => Committed::Stream(Box::new(CommittedStream {
                            target,
                            open: *open,
                            filters,
                            in_flight,
                            attempt_started,
                            admission,
                        })),
                    });
                }
                Err(error) => error,
            };
            // A failed request is accounted to the last target that answered it.
            ctx.record.target = Some(target.clone());
            self.targets
                .record_failure(
                    &target,
                    error.failure(),
                    Instant::now(),
                    admission,
                    &config.digest,
                )
                .await;
            tracing::debug!(request_id = %LogSafe(&ctx.record.id), target = %target, "attempt failed: {}", LogSafe(&error.message));
            let retryable = error.retryable;
            log.push(&target, RouteOutcome::Failed(error.clone()));
            if !retryable {
                return Err(refused_by_upstream(&error));
            }
        }
        Err(log.exhausted(&ctx.info.model))
    }
}
