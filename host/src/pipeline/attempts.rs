//! One pass over a model's ordered targets: admit a target against its live state, start its
//! attempt, and — when the model hedges (`hedge_after_ms`) — start the next admitted target
//! beside an attempt that has not answered in time. The first attempt to answer (a stream's
//! first chunk, or a whole answer) wins; every other one is dropped at once, which closes its
//! connection and hands its plugin instance back, and is logged as cancelled. Failures move on
//! as failover always did: a deterministic one ends the pass (and cancels the rest), a
//! retryable one starts the next target once nothing else is running. Each target gets the body
//! fitted to its limits (`fit`) before it is admitted; a whole answer the model escalates on is
//! accounted, kept if it is the best so far, and the pass moves on as after a retryable failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::config::{ContextFit, EscalateOn, HedgeAfter, HedgePolicy, Provider, TargetRef};
use crate::error::GatewayError;
use crate::plugins::Plugin;
use crate::plugins::bindings::adapter;
use crate::state::{Admission, InFlight};
use crate::telemetry::AttemptSpan;
use crate::upstream::error::kind_name;
use crate::upstream::{Attempt, AttemptError};

use super::canonical::Operation;
use super::context::RequestContext;
use super::escalate;
use super::fit::{FitBody, Fits};
use super::record::LogSafe;
use super::route_log::{RouteLog, RouteOutcome, refused_by_upstream};
use super::streaming::{self, Success};
use super::{Gateway, Snapshot};

type Running<'a> =
    Pin<Box<dyn Future<Output = (usize, Result<Success, AttemptError>)> + Send + 'a>>;

/// An attempt under way, and what it holds until it ends.
struct Live<'a> {
    target: TargetRef,
    provider: &'a Provider,
    adapter: &'a Arc<Plugin>,
    admission: Admission,
    in_flight: InFlight,
    started: Instant,
    wall: SystemTime,
    /// Started beside a slow attempt rather than after a failed one.
    hedge: bool,
    /// The body fitted to this target's limits, and what fitting left out.
    fitted: Option<(Arc<str>, String)>,
}

/// The attempt that answered, with what its commit needs.
pub(super) struct Won<'a> {
    pub target: TargetRef,
    pub provider: &'a Provider,
    pub success: Success,
    pub admission: Admission,
    pub in_flight: InFlight,
    pub started: Instant,
    /// What context fitting left out of the body this target got.
    pub fit: Option<String>,
    /// That fitted body, when it is not the request's own.
    pub sent: Option<Arc<str>>,
}

/// An escalated answer kept in case no later target does better.
pub(super) struct Kept {
    worth: u8,
    pub target: TargetRef,
    pub completion: adapter::Completion,
    pub fit: Option<String>,
}

pub(super) enum PassEnd<'a> {
    Won(Won<'a>),
    /// Every answer was escalated past and nothing better came: the best of them.
    Escalated(Box<Kept>),
    /// A failure no other target would do better with, or the request's deadline.
    Stop(GatewayError),
    /// Every target was refused or failed in a way another target might not.
    Exhausted,
}

/// What a pass needs besides the request.
#[derive(Clone, Copy)]
pub(super) struct Pass<'a> {
    pub snapshot: &'a Snapshot,
    pub order: &'a [TargetRef],
    pub body: &'a str,
    /// Output tokens expected (`max_tokens`, or a default), for admission.
    pub output_tokens: u64,
    pub hedge: Option<HedgePolicy>,
    pub context_fit: &'a ContextFit,
    pub max_input_tokens: Option<u32>,
    /// Empty for a request that is not escalated (streams, models without `escalate_on`).
    pub escalate_on: &'a [EscalateOn],
    pub wants_json: bool,
}

impl Gateway {
    pub(super) async fn attempt_pass<'a>(
        self: &'a Arc<Self>,
        pass: Pass<'a>,
        ctx: &mut RequestContext,
        log: &mut RouteLog,
        fits: &mut Fits,
    ) -> PassEnd<'a> {
        let stream = ctx.info.stream;
        let mut kept: Option<Kept> = None;
        let mut next = 0;
        let mut running: FuturesUnordered<Running<'a>> = FuturesUnordered::new();
        let mut live: Vec<Option<Live<'a>>> = Vec::new();
        let mut hedges_left = pass.hedge.map_or(0, |h| h.max_hedges);
        let mut hedge_at = None;
        loop {
            if running.is_empty() {
                match self
                    .start_next(&pass, ctx, log, &mut next, false, fits)
                    .await
                {
                    Ok(Some(started)) => {
                        hedge_at = self.hedge_time(&pass, &started, stream, hedges_left);
                        running.push(self.launch(&pass, &started, live.len(), ctx));
                        live.push(Some(started));
                    }
                    Ok(None) => {
                        return kept
                            .map_or(PassEnd::Exhausted, |k| PassEnd::Escalated(Box::new(k)));
                    }
                    Err(error) => {
                        return kept
                            .map_or(PassEnd::Stop(error), |k| PassEnd::Escalated(Box::new(k)));
                    }
                }
                continue;
            }
            tokio::select! {
                Some((slot, outcome)) = running.next() => {
                    let Some(ended) = live[slot].take() else { continue };
                    ctx.record.attempts.push(span(&ended, outcome.as_ref().err()));
                    let error = match outcome {
                        Ok(Success::Json(completion))
                            if let Some(why) =
                                escalate::reason(pass.escalate_on, pass.wants_json, &completion.body) =>
                        {
                            // An answer, but one worth another target's try: account for it,
                            // keep the best such answer, and move on.
                            let took = ended.started.elapsed();
                            drop(ended.in_flight);
                            let used = completion
                                .usage
                                .map(|u| u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                            self.targets
                                .record_success(&ended.target, took, None, ended.admission, used)
                                .await;
                            ctx.record.add_escalated_usage(completion.usage);
                            let outcome = RouteOutcome::Escalated(why.as_str(), took);
                            if ended.hedge {
                                log.push_hedge(&ended.target, outcome);
                            } else {
                                log.push(&ended.target, outcome);
                            }
                            if kept.as_ref().is_none_or(|k| escalate::worth(why) > k.worth) {
                                kept = Some(Kept {
                                    worth: escalate::worth(why),
                                    target: ended.target,
                                    completion,
                                    fit: ended.fitted.map(|(_, fit)| fit),
                                });
                            }
                            continue;
                        }
                        Ok(success) => {
                            self.cancel_losers(ctx, log, live, stream);
                            if ended.hedge {
                                self.metrics.hedges.with_label_values(&[&ctx.info.model, "won"]).inc();
                            }
                            push(log, &ended, RouteOutcome::Ok(ended.started.elapsed()));
                            return PassEnd::Won(Won {
                                target: ended.target,
                                provider: ended.provider,
                                success,
                                admission: ended.admission,
                                in_flight: ended.in_flight,
                                started: ended.started,
                                fit: ended.fitted.as_ref().map(|(_, fit)| fit.clone()),
                                sent: ended.fitted.map(|(body, _)| body),
                            });
                        }
                        Err(error) => error,
                    };
                    let config = &pass.snapshot.config;
                    // A failed request is accounted to the last target that answered it.
                    ctx.record.target = Some(ended.target.clone());
                    self.targets
                        .record_failure(&ended.target, error.failure(), Instant::now(), ended.admission, &config.digest)
                        .await;
                    tracing::debug!(request_id = %LogSafe(&ctx.record.id), target = %ended.target, "attempt failed: {}", LogSafe(&error.message));
                    push(log, &ended, RouteOutcome::Failed(error.clone()));
                    if !error.retryable {
                        self.cancel_losers(ctx, log, live, stream);
                        return match kept {
                            Some(kept) => PassEnd::Escalated(Box::new(kept)),
                            None => PassEnd::Stop(refused_by_upstream(&error)),
                        };
                    }
                }
                () = sleep_until(hedge_at) => {
                    hedge_at = None;
                    if next >= pass.order.len() {
                        continue;
                    }
                    let model = ctx.info.model.clone();
                    let budget = pass.hedge.map_or(0.0, |h| h.budget);
                    if !self.hedge_budgets.spend(&model, budget, Instant::now()) {
                        self.metrics.hedges.with_label_values(&[&model, "over_budget"]).inc();
                        continue;
                    }
                    if let Ok(Some(started)) = self.start_next(&pass, ctx, log, &mut next, true, fits).await {
                        hedges_left -= 1;
                        self.metrics.hedges.with_label_values(&[&model, "started"]).inc();
                        tracing::debug!(request_id = %LogSafe(&ctx.record.id), target = %started.target, "hedging: no first token in time from the attempt before");
                        hedge_at = self.hedge_time(&pass, &started, stream, hedges_left);
                        running.push(self.launch(&pass, &started, live.len(), ctx));
                        live.push(Some(started));
                    }
                }
            }
        }
    }

    /// Drop the attempts still running (their futures are gone once the pass returns) and
    /// say so in the route log and the trace.
    fn cancel_losers(
        &self,
        ctx: &mut RequestContext,
        log: &mut RouteLog,
        live: Vec<Option<Live<'_>>>,
        stream: bool,
    ) {
        for loser in live.into_iter().flatten() {
            let waited = loser.started.elapsed();
            self.targets
                .abandon(&loser.target, loser.admission, waited, stream);
            ctx.record.attempts.push(AttemptSpan {
                provider: loser.target.provider.clone(),
                model: loser.target.model.clone(),
                started: loser.wall,
                ended: SystemTime::now(),
                error: Some("cancelled".into()),
            });
            push(log, &loser, RouteOutcome::Cancelled(waited));
        }
    }

    /// When to start a hedge beside `started`, if this request may still hedge.
    fn hedge_time(
        &self,
        pass: &Pass<'_>,
        started: &Live<'_>,
        stream: bool,
        hedges_left: u32,
    ) -> Option<tokio::time::Instant> {
        let policy = pass.hedge.filter(|_| hedges_left > 0)?;
        let after = match policy.after {
            HedgeAfter::Fixed(after) => after,
            HedgeAfter::Auto => self
                .targets
                .local(&started.target)
                .first_answer_p95(stream)?,
        };
        Some(tokio::time::Instant::from_std(started.started + after))
    }

    /// Admit the next target of the order that may be tried now; `None` when none is left.
    /// Refusals go into the route log.
    async fn start_next<'a>(
        self: &'a Arc<Self>,
        pass: &Pass<'a>,
        ctx: &RequestContext,
        log: &mut RouteLog,
        next: &mut usize,
        hedge: bool,
        fits: &mut Fits,
    ) -> Result<Option<Live<'a>>, GatewayError> {
        let config = &pass.snapshot.config;
        while let Some(target) = pass.order.get(*next) {
            *next += 1;
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
            let Some(adapter) = pass.snapshot.plugins.get(&provider.adapter) else {
                log.push(
                    target,
                    RouteOutcome::Skipped(format!("adapter '{}' not loaded", provider.adapter)),
                );
                continue;
            };
            let fitted = match self
                .fit_for(
                    pass.snapshot,
                    pass.context_fit,
                    pass.max_input_tokens,
                    ctx,
                    provider,
                    target,
                    pass.body,
                    fits,
                )
                .await
            {
                Ok(FitBody::AsIs) => None,
                Ok(FitBody::Fitted(body, report)) => Some((body, report)),
                Err(outcome) => {
                    log.push(target, outcome);
                    continue;
                }
            };
            let prompt_tokens = fitted
                .as_ref()
                .map_or(ctx.info.prompt_tokens, |(_, report)| report.prompt_tokens);
            let limits = provider.limits(&target.model);
            let admission = match self
                .targets
                .admit(
                    target,
                    limits,
                    u64::from(prompt_tokens) + pass.output_tokens,
                    &config.digest,
                    Instant::now(),
                )
                .await
            {
                Ok(admission) => admission,
                Err(refusal) => {
                    log.push(target, RouteOutcome::from(refusal));
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
            return Ok(Some(Live {
                target: target.clone(),
                provider,
                adapter,
                admission,
                in_flight: InFlight::start(self.targets.local(target)),
                started: Instant::now(),
                wall: SystemTime::now(),
                hedge,
                fitted: fitted.map(|(body, report)| (body, report.describe())),
            }));
        }
        Ok(None)
    }

    /// The attempt itself, as a future the pass can race and drop.
    fn launch<'a>(
        &'a self,
        pass: &Pass<'a>,
        live: &Live<'a>,
        slot: usize,
        ctx: &RequestContext,
    ) -> Running<'a> {
        let target = live.target.clone();
        let (provider, adapter) = (live.provider, live.adapter);
        let (snapshot, whole) = (pass.snapshot, pass.body);
        let fitted: Option<Arc<str>> = live.fitted.as_ref().map(|(body, _)| body.clone());
        let (deadline, stream, tenant) = (ctx.deadline, ctx.info.stream, ctx.tenant());
        let embeddings = ctx.info.operation == Operation::Embeddings;
        Box::pin(async move {
            let attempt = Attempt {
                upstream: &self.upstream,
                targets: &self.targets,
                adapter,
                provider,
                target: &target,
                deadline,
                max_response_bytes: snapshot.config.deadlines.max_response_bytes,
                tenant,
            };
            let body = fitted.as_deref().unwrap_or(whole);
            let outcome = if embeddings {
                attempt.embeddings(body).await.map(Success::Json)
            } else {
                streaming::attempt(&attempt, &snapshot.learned, stream, body).await
            };
            (slot, outcome)
        })
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn push(log: &mut RouteLog, attempt: &Live<'_>, outcome: RouteOutcome) {
    if attempt.hedge {
        log.push_hedge(&attempt.target, outcome);
    } else {
        log.push(&attempt.target, outcome);
    }
}

fn span(attempt: &Live<'_>, error: Option<&AttemptError>) -> AttemptSpan {
    AttemptSpan {
        provider: attempt.target.provider.clone(),
        model: attempt.target.model.clone(),
        started: attempt.wall,
        ended: SystemTime::now(),
        error: error.map(|e| kind_name(e.kind).to_string()),
    }
}
