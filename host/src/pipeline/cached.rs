//! The pipeline's side of the response cache (see `cache/` for what is cached and where).
//!
//! A request's cache plan is made from the body **as the client sent it**, before any filter
//! rewrites it: a filter that replaces names with numbered pseudonyms would otherwise make two
//! different questions one key, and hand one person's restored answer to another. The lookup
//! happens only **after** the request filters have allowed the request, so a block or a
//! trusted-only label still applies to a request the cache could answer. A hit skips routing
//! and every upstream; it is served in whichever shape the client asked for and accounted like
//! any request (log line, metrics, a ledger row with zero cost), with the key charged nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::cache::{self, CacheStatus, Entry, KeyParts};
use crate::config::TargetRef;

use super::assemble::chunks_of;
use super::context::RequestContext;
use super::resolve::Route;
use super::route_log::{RouteLog, RouteOutcome};
use super::{Answer, Gateway, Served, Snapshot, StreamEvent};

/// A stored answer, and the stream it replays as when the client streams.
pub(super) struct Hit {
    entry: Arc<Entry>,
    replay: Option<Vec<String>>,
}

impl Gateway {
    /// Decide what the cache does for this request; `body` is the client's, unfiltered.
    pub(super) fn plan_cache(
        &self,
        snapshot: &Snapshot,
        route: &Route<'_>,
        ctx: &mut RequestContext,
        body: &str,
    ) {
        let config = &snapshot.config;
        let policy = config
            .models
            .get(&ctx.info.model)
            .map(|m| m.cache)
            .unwrap_or_default();
        let (temperature, directives) = (ctx.info.temperature, &ctx.cache_directives);
        if let Some(plan) = cache::not_cached(&config.cache, policy, temperature, directives) {
            ctx.record.cache = plan.status;
            ctx.cache = plan;
            return;
        }
        // What shapes the answer besides the request: where it may come from, and each
        // filter's code and settings. Not the whole config digest, which differs between
        // instances (paths, listeners) that should share answers.
        let mut namespace = String::new();
        for target in &route.targets {
            namespace.push_str(&target.to_string());
            namespace.push('\n');
        }
        for filter in &route.filters {
            namespace.push_str(filter);
            namespace.push(':');
            if let Some(plugin) = snapshot.plugins.get(filter) {
                namespace.push_str(&plugin.sha256);
            }
            namespace.push(':');
            namespace.push_str(&config.filter_settings(filter));
            namespace.push('\n');
        }
        let caller = ctx.record.caller.as_ref().map(|c| c.name.as_str());
        ctx.cache = cache::plan(
            &config.cache,
            policy,
            ctx.info.temperature,
            &ctx.cache_directives,
            KeyParts {
                model: &ctx.info.model,
                caller,
                namespace: &namespace,
            },
            body,
        );
        ctx.record.cache = ctx.cache.status;
    }

    /// The stored answer for this request, with its stream replay when the client streams
    /// (an answer that cannot be replayed is a miss).
    pub(super) async fn cached_answer(&self, ctx: &RequestContext) -> Option<Hit> {
        if ctx.cache.status != CacheStatus::Miss {
            return None;
        }
        let entry = self.cache.get(&ctx.cache).await?;
        let replay = if ctx.info.stream {
            Some(chunks_of(&entry.body, ctx.info.include_usage)?)
        } else {
            None
        };
        Some(Hit { entry, replay })
    }

    /// Answer a request from a stored answer.
    pub(super) async fn serve_cached(&self, mut ctx: RequestContext, hit: Hit) -> Answer {
        let Hit { entry, replay } = hit;
        let age_s = entry.age_s(SystemTime::now());
        let target = TargetRef {
            provider: entry.provider.clone(),
            model: entry.model.clone(),
        };
        let mut route = RouteLog::default();
        route.push(&target, RouteOutcome::Cached(Duration::from_secs(age_s)));
        let record = &mut ctx.record;
        record.cache = CacheStatus::Hit;
        record.answer_bytes = entry.body.len();
        record.cached_tokens = super::answer::cached_tokens(&entry.body);
        record.route = route;
        let served = Served {
            request_id: record.id.clone(),
            target,
            attempts: 0,
            route: record.route.header_value(),
            cache: CacheStatus::Hit,
            age_s: Some(age_s),
            fit: None,
        };
        self.finish(ctx.record).await;
        match replay {
            Some(chunks) => {
                let (tx, events) = mpsc::channel(chunks.len() + 1);
                for chunk in chunks {
                    let _ = tx.try_send(StreamEvent::Chunk(chunk));
                }
                let _ = tx.try_send(StreamEvent::End);
                Answer::Stream { served, events }
            }
            None => Answer::Json {
                served,
                body: entry.body.clone(),
            },
        }
    }

    /// Keep a served answer for the next request with the same plan.
    pub(super) fn store_answer(&self, ctx: &RequestContext, target: &TargetRef, body: String) {
        if ctx.cache.stores() {
            self.cache.put(
                &ctx.cache,
                Entry::new(body, target.provider.clone(), target.model.clone()),
            );
        }
    }
}
