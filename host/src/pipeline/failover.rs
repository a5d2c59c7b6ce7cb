//! The failover loop: resolve the model, run the request filters, ask the router for an
//! order (a sticky session's target first), then pass over the targets (`attempts`: admission
//! against live state, one upstream attempt each, hedged when the model says so) until one
//! commits or a failure says no other target would do better. Each target gets the body fitted
//! to its limits (`fit`); a whole answer the model escalates on (`escalate_on`) moves on to the
//! next target, kept in case nothing better comes. When every target is out of
//! capacity and the model has `queue_wait_ms`, the request waits in the model's line (`queue`)
//! until the soonest known refill and passes again. Every outcome goes into the route log.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::config::TargetRef;
use crate::error::GatewayError;
use crate::plugins::bindings::adapter;
use crate::state::{Admission, InFlight};
use crate::upstream::OpenStream;

use super::attempts::{Kept, Pass, PassEnd, Won};
use super::cached::Hit;
use super::caller::{has_hard_budget, refused, worst_case};
use super::canonical::Operation;
use super::context::RequestContext;
use super::embeddings;
use super::filters::{self, ActiveFilter};
use super::fit::Fits;
use super::queue::{Place, Waiter};
use super::record::log_text;
use super::resolve::resolve;
use super::route_log::RouteLog;
use super::streaming::{self, Success};
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

/// Where a committed stream's chunks come from.
pub(super) enum StreamSource {
    /// The upstream's own stream, its first chunk in hand.
    Upstream(Box<OpenStream>),
    /// A whole answer replayed as a stream (the target cannot stream).
    Replayed(Vec<adapter::Chunk>),
    /// A whole answer that cannot be replayed: the stream ends with this error.
    Broken(String),
}

/// Everything the relay needs to carry a committed stream to its end.
pub(super) struct CommittedStream {
    pub target: TargetRef,
    pub source: StreamSource,
    pub filters: Vec<ActiveFilter>,
    pub in_flight: InFlight,
    pub attempt_started: Instant,
    pub admission: Admission,
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

        let sticky_key = (!config.sticky_ttl.is_zero())
            .then(|| ctx.sticky_key())
            .flatten();
        let output_tokens = u64::from(ctx.info.max_tokens.unwrap_or(EXPECTED_OUTPUT_TOKENS));
        let mut fits = Fits::default();
        let escalating = !route.escalate_on.is_empty() && !ctx.info.stream;
        let wants_json = escalating && ctx.info.wants_json;
        if route.hedge.is_some() {
            self.hedge_budgets.request(&ctx.info.model, Instant::now());
        }
        let mut reserved = false;
        let mut place: Option<(Place, tokio::time::Instant)> = None;
        // One pass, or several when the request waits for capacity between them: each asks
        // the router again, as the targets' state changed meanwhile.
        loop {
            let from = log.len();
            let mut order = self
                .order_targets(snapshot, &route, ctx, &body, log)
                .await?;
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
                && !reserved
            {
                let worst = worst_case(config, &order, &ctx.info, EXPECTED_OUTPUT_TOKENS);
                ctx.record.reservation = self
                    .shared
                    .key_usage
                    .reserve(&caller, worst, SystemTime::now())
                    .await
                    .map_err(|refusal| refused(&caller.name, refusal))?;
                reserved = true;
            }
            let pass = Pass {
                snapshot,
                order: &order,
                body: &body,
                output_tokens,
                hedge: route.hedge,
                context_fit: route.context_fit,
                max_input_tokens: route.max_input_tokens,
                escalate_on: if escalating { route.escalate_on } else { &[] },
                wants_json,
            };
            let won = match self.attempt_pass(pass, ctx, log, &mut fits).await {
                PassEnd::Won(won) => won,
                PassEnd::Escalated(kept) => {
                    return Ok(self.serve_kept(snapshot, ctx, *kept, filters));
                }
                PassEnd::Stop(error) => return Err(error),
                PassEnd::Exhausted => {
                    let (Some(queue), Some(soonest)) = (route.queue, log.capacity_returns_in(from))
                    else {
                        return Err(log.exhausted(&ctx.info.model));
                    };
                    let now = tokio::time::Instant::now();
                    let key_limits = ctx.record.caller.as_ref().map(|c| &c.limits);
                    let wait = key_limits
                        .and_then(|limits| limits.queue_wait_ms)
                        .map_or(queue.wait, |ms| queue.wait.min(Duration::from_millis(ms)));
                    let (waiting, until) = match &mut place {
                        Some((waiting, until)) => (waiting, *until),
                        None => {
                            let joined = self
                                .waiting_room
                                .join(
                                    &ctx.info.model,
                                    waiter(ctx),
                                    queue.max_waiting,
                                    &self.metrics,
                                )
                                .map_err(|full| {
                                    no_capacity(
                                        &ctx.info.model,
                                        soonest,
                                        log,
                                        format!(
                                            "{} requests already wait for it (queue_max)",
                                            full.waiting
                                        ),
                                    )
                                })?;
                            let until = (now + wait).min(ctx.deadline);
                            let (waiting, until) = place.insert((joined, until));
                            (waiting, *until)
                        }
                    };
                    if now + soonest > until || !waiting.head(until).await {
                        return Err(no_capacity(
                            &ctx.info.model,
                            soonest,
                            log,
                            format!(
                                "its queue_wait_ms of {} ms would pass first",
                                wait.as_millis()
                            ),
                        ));
                    }
                    tokio::time::sleep_until(now + soonest).await;
                    continue;
                }
            };
            if let Some((waiting, _)) = &place {
                log.push_wait(waiting.waited());
            }
            return Ok(self
                .commit(snapshot, ctx, won, filters, sticky_key.as_deref(), &body)
                .await);
        }
    }

    /// Nothing better came after escalating: the best escalated answer is the client's (its
    /// target state and usage were accounted when it was escalated past).
    fn serve_kept(
        &self,
        snapshot: &Snapshot,
        ctx: &mut RequestContext,
        kept: Kept,
        filters: Vec<ActiveFilter>,
    ) -> Committed {
        let config = &snapshot.config;
        let Kept {
            target,
            completion,
            fit,
            ..
        } = kept;
        ctx.record.fit = fit;
        let provider = config.providers.get(&target.provider);
        ctx.log_content = provider.map_or(ctx.log_content, |p| ctx.content_policy(config, p));
        ctx.record.prices = provider
            .and_then(|p| p.model_info.get(&target.model))
            .and_then(|m| Some((m.input_price?, m.output_price?)));
        ctx.record.target = Some(target.clone());
        ctx.record.set_usage(None);
        Committed::Json {
            target,
            completion,
            filters,
        }
    }

    /// The answering attempt becomes the request's: sticky session, content policy, prices,
    /// and either the whole answer (target state updated now) or the stream to relay.
    async fn commit(
        &self,
        snapshot: &Snapshot,
        ctx: &mut RequestContext,
        won: Won<'_>,
        filters: Vec<ActiveFilter>,
        sticky_key: Option<&str>,
        body: &str,
    ) -> Committed {
        let config = &snapshot.config;
        let Won {
            target,
            provider,
            success,
            admission,
            in_flight,
            started,
            fit,
            sent,
        } = won;
        ctx.record.fit = fit;
        if let Some(key) = sticky_key {
            self.shared
                .sessions
                .set(key.to_string(), target.clone(), config.sticky_ttl)
                .await;
        }
        ctx.log_content = ctx.content_policy(config, provider);
        if ctx.log_content.prompts() {
            log_text(&ctx.record.id, "prompt", sent.as_deref().unwrap_or(body));
        }
        ctx.record.prices = provider
            .model_info
            .get(&target.model)
            .and_then(|m| Some((m.input_price?, m.output_price?)));
        ctx.record.target = Some(target.clone());
        let source = match success {
            Success::Json(completion) => {
                drop(in_flight);
                // An upstream that does not count embedded tokens (Gemini's embedContent) is
                // accounted at the gateway's estimate.
                let usage = completion.usage.or_else(|| {
                    (ctx.info.operation == Operation::Embeddings).then_some(adapter::Usage {
                        prompt_tokens: ctx.info.prompt_tokens,
                        completion_tokens: 0,
                    })
                });
                ctx.record.set_usage(usage);
                self.targets
                    .record_success(
                        &target,
                        started.elapsed(),
                        None,
                        admission,
                        ctx.record.used_tokens(),
                    )
                    .await;
                return Committed::Json {
                    target,
                    completion,
                    filters,
                };
            }
            Success::Stream(open) => StreamSource::Upstream(open),
            Success::Replayed(completion) => {
                ctx.record.set_usage(completion.usage);
                match streaming::replay(&completion, ctx.info.include_usage) {
                    Ok(chunks) => StreamSource::Replayed(chunks),
                    Err(error) => StreamSource::Broken(error.message),
                }
            }
        };
        Committed::Stream(Box::new(CommittedStream {
            target,
            source,
            filters,
            in_flight,
            attempt_started: started,
            admission,
        }))
    }
}

/// Where a request stands in a model's line: its priority and its key's turn.
fn waiter(ctx: &RequestContext) -> Waiter {
    Waiter {
        priority: ctx.priority,
        key: ctx.record.caller.as_ref().map(|caller| caller.name.clone()),
    }
}

/// Every target is out of capacity for longer than the request may wait: 429 with the real
/// time the soonest one frees up.
fn no_capacity(model: &str, soonest: Duration, log: &RouteLog, why: String) -> GatewayError {
    GatewayError::RateLimited {
        message: format!(
            "every target for model '{model}' is rate-limited and capacity returns in {} ms, but {why}: {}",
            soonest.as_millis(),
            log.header_value()
        ),
        retry_after: soonest,
    }
}
