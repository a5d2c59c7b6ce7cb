//! One chat-completions request from validated body to answer: filters (in configured order) →
//! router (ordered candidates) → for each candidate until one succeeds: the adapter builds the
//! upstream request, the host sends it under the provider's deadline, the adapter parses the
//! answer. Streams commit to a target only once its first chunk is decoded, so a target that
//! fails before that is skipped like any other; after that, a failure ends the stream with an
//! OpenAI error event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;
use wasmtime::component::ResourceAny;

use crate::config::{Config, LogContent, OnRouterError, Provider, TargetRef};
use crate::openai::{ApiError, ChatRequestInfo, inspect_chat_request};
use crate::plugin_call;
use crate::plugins::bindings::adapter::{self, Target};
use crate::plugins::bindings::guard::{self, ChunkVerdict, RequestVerdict, ResponseVerdict};
use crate::plugins::bindings::policy;
use crate::plugins::{Lease, Plugin, PluginFault, PluginSet, Runtime};
use crate::routing::{
    Admission, AttemptError, InFlight, Limits, RouteLog, RouteOutcome, TargetState, TargetStates,
    client_error,
};
use crate::server::{ChannelBody, ResponseBody, full_body};
use crate::upstream::Upstream;

/// What a request is served from: one consistent config and plugin set. Swapped whole on
/// reload; a request keeps the snapshot it started with.
pub struct Snapshot {
    pub config: Config,
    pub plugins: PluginSet,
    pub loaded_at: std::time::SystemTime,
}

impl Snapshot {
    pub fn new(config: Config, plugins: PluginSet) -> Self {
        Snapshot {
            config,
            plugins,
            loaded_at: std::time::SystemTime::now(),
        }
    }
}

/// The gateway's shared state.
pub struct Gateway {
    pub snapshot: ArcSwap<Snapshot>,
    pub upstream: Upstream,
    pub targets: TargetStates,
    pub runtime: Arc<Runtime>,
    pub sticky: StickySessions,
    /// Daily usage per gateway key.
    pub key_usage: crate::routing::KeyUsage,
}

/// Conversations and the target that last served them: a conversation keeps its target
/// while that target can serve (healthy, not cooling, chosen by the router), for a TTL.
/// Keyed by the `x-freeway-session` header, or the OpenAI `user` field plus a hash of how
/// the conversation began.
#[derive(Default)]
pub struct StickySessions {
    map: std::sync::Mutex<std::collections::HashMap<String, (TargetRef, Instant)>>,
}

impl StickySessions {
    fn get(&self, key: &str, now: Instant) -> Option<TargetRef> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, until)| *until > now)
            .map(|(t, _)| t.clone())
    }

    fn set(&self, key: String, target: &TargetRef, until: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Bound memory: drop expired entries when the map grows.
        if map.len() >= 10_000 {
            let now = Instant::now();
            map.retain(|_, (_, expires)| *expires > now);
        }
        map.insert(key, (target.clone(), until));
    }
}

/// Per-request facts carried through the pipeline.
struct RequestContext {
    id: String,
    started: Instant,
    info: ChatRequestInfo,
    tags: Vec<String>,
    session: Option<String>,
    /// The gateway key's name, when keys are configured.
    caller: Option<String>,
    /// Size of the body sent upstream, after request filters (logged instead of its text).
    prompt_bytes: usize,
    /// Whether this request's text may be logged, once its serving target is known.
    log_content: LogContent,
}

/// A public model resolved to what serves it.
struct Route<'a> {
    router: &'a str,
    router_settings: &'a str,
    on_router_error: OnRouterError,
    filters: Vec<&'a str>,
    targets: Vec<TargetRef>,
}

fn resolve<'a>(config: &'a Config, model: &str) -> Option<Route<'a>> {
    let global = config.filters.iter().map(String::as_str);
    if let Some(public) = config.models.get(model) {
        return Some(Route {
            router: &public.router,
            router_settings: &public.router_settings,
            on_router_error: public.on_router_error,
            filters: global
                .chain(public.filters.iter().map(String::as_str))
                .collect(),
            targets: public.targets.clone(),
        });
    }
    // "provider/model" reaches one provider model directly.
    let (provider, upstream_model) = model.split_once('/')?;
    let p = config.providers.get(provider)?;
    p.models.iter().any(|m| m == upstream_model).then(|| Route {
        router: &config.default_router,
        router_settings: "{}",
        on_router_error: OnRouterError::Fail,
        filters: global.collect(),
        targets: vec![TargetRef {
            provider: provider.to_string(),
            model: upstream_model.to_string(),
        }],
    })
}

/// The public model names `GET /v1/models` lists: configured names, then every enabled
/// provider's models as `provider/model`.
pub fn model_ids(config: &Config) -> Vec<String> {
    let mut ids: Vec<String> = config.models.keys().cloned().collect();
    for provider in config.providers.values().filter(|p| p.disabled.is_none()) {
        ids.extend(
            provider
                .models
                .iter()
                .map(|m| format!("{}/{m}", provider.name)),
        );
    }
    ids
}

impl Gateway {
    /// Answer a chat-completions request. `caller` is the gateway key's name, when keys are
    /// configured: its tokens count against that key's daily cap.
    pub async fn chat_completions(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: Bytes,
        request_id: String,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        let info = match inspect_chat_request(&body) {
            Ok(info) => info,
            Err(error) => return error_response(&error, &request_id),
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let tags = header("x-freeway-tags")
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let session = header("x-freeway-session").map(str::to_string);
        let mut tags: Vec<String> = tags;
        if info
            .metadata
            .iter()
            .any(|(k, v)| k == "sensitive" && v == "true")
        {
            tags.push("sensitive".into());
        }
        let mut ctx = RequestContext {
            id: request_id,
            started,
            info,
            tags,
            session,
            caller,
            prompt_bytes: 0,
            log_content: LogContent::None,
        };
        let snapshot = self.snapshot.load_full();
        let result = self.serve(&snapshot, &mut ctx, body).await;
        match result {
            Ok(response) => response,
            Err((error, route)) => {
                tracing::info!(
                    request_id = %ctx.id,
                    model = %ctx.info.model,
                    status = error.status.as_u16(),
                    attempts = route.attempts(),
                    latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
                    route = %route.header_value(),
                    "request failed: {}",
                    error.message
                );
                let mut response = error_response(&error, &ctx.id);
                if route.attempts() > 0 {
                    set_header(
                        response.headers_mut(),
                        "x-freeway-route",
                        &route.header_value(),
                    );
                }
                response
            }
        }
    }

    async fn serve(
        self: &Arc<Self>,
        snapshot: &Arc<Snapshot>,
        ctx: &mut RequestContext,
        body: Bytes,
    ) -> Result<Response<ResponseBody>, (ApiError, RouteLog)> {
        let config = &snapshot.config;
        let no_route = |e: ApiError| (e, RouteLog::default());
        let route = resolve(config, &ctx.info.model).ok_or_else(|| {
            no_route(ApiError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!(
                    "the model '{}' does not exist on this gateway; GET /v1/models lists the available ones",
                    ctx.info.model
                ),
            ))
        })?;

        // Body is valid JSON, hence valid UTF-8.
        let mut body = String::from_utf8(body.to_vec()).map_err(|_| {
            no_route(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the request body is not UTF-8",
            ))
        })?;
        let filters = self
            .run_request_filters(snapshot, &route, ctx, &mut body)
            .await
            .map_err(no_route)?;
        ctx.prompt_bytes = body.len();

        let mut log = RouteLog::default();
        let mut order = match self.order_targets(snapshot, &route, ctx, &mut log).await {
            Ok(order) => order,
            Err(error) => return Err((error, log)),
        };
        let sticky_key = (!config.sticky_ttl.is_zero())
            .then(|| sticky_key(ctx))
            .flatten();
        if let Some(key) = &sticky_key
            && let Some(target) = self.sticky.get(key, Instant::now())
            && let Some(at) = order.iter().position(|t| *t == target)
        {
            let target = order.remove(at);
            order.insert(0, target);
        }
        for target in order {
            let Some(provider) = config.providers.get(&target.provider) else {
                continue;
            };
            let state = self.targets.get(&target);
            let limits = target_limits(provider, &target);
            let estimated_tokens = u64::from(ctx.info.prompt_tokens)
                + u64::from(ctx.info.max_tokens.unwrap_or(EXPECTED_OUTPUT_TOKENS));
            let admission =
                match state.admit(limits, estimated_tokens, &config.digest, Instant::now()) {
                    Ok(admission) => {
                        if let Some(used) = admission.quota_crossed {
                            tracing::warn!(
                                target = %target,
                                quota_used = used,
                                "{target} has used {:.0}% of its daily free allowance",
                                used * 100.0
                            );
                        }
                        admission
                    }
                    Err(refusal) => {
                        log.push(&target, RouteOutcome::from(refusal));
                        continue;
                    }
                };
            let Some(adapter) = snapshot.plugins.get(&provider.adapter) else {
                log.push(
                    &target,
                    RouteOutcome::Skipped(format!("adapter '{}' not loaded", provider.adapter)),
                );
                continue;
            };
            let attempt_started = Instant::now();
            let in_flight = InFlight::start(state.clone());
            let outcome = if ctx.info.stream {
                self.attempt_stream(adapter, provider, &target, &body, &state)
                    .await
                    .map(|open| Success::Stream(Box::new(open)))
            } else {
                self.attempt_json(adapter, provider, &target, &body, &state)
                    .await
                    .map(Success::Json)
            };
            match outcome {
                Ok(success) => {
                    let took = attempt_started.elapsed();
                    if let Some(key) = sticky_key {
                        self.sticky
                            .set(key, &target, Instant::now() + config.sticky_ttl);
                    }
                    log.push(&target, RouteOutcome::Ok(took));
                    ctx.log_content = content_policy(config, ctx, provider);
                    if ctx.log_content.prompts() {
                        log_text(&ctx.id, "prompt", &body);
                    }
                    return Ok(match success {
                        Success::Json(completion) => {
                            drop(in_flight);
                            let used = completion.usage.map(|u| {
                                u64::from(u.prompt_tokens) + u64::from(u.completion_tokens)
                            });
                            state.record_success(took, None, admission, used);
                            if let (Some(caller), Some(used)) = (&ctx.caller, used) {
                                self.key_usage.add_tokens(caller, used);
                            }
                            self.json_answer(ctx, &target, completion, &filters, &log)
                                .await?
                        }
                        Success::Stream(open) => self.stream_answer(
                            ctx,
                            target,
                            open,
                            filters,
                            log,
                            in_flight,
                            (attempt_started, admission),
                        ),
                    });
                }
                Err(error) => {
                    state.record_failure(&error, Instant::now(), admission, &config.digest);
                    tracing::debug!(request_id = %ctx.id, target = %target, "attempt failed: {}", error.message);
                    let retryable = error.retryable;
                    log.push(&target, RouteOutcome::Failed(error.clone()));
                    if !retryable {
                        return Err((client_error(&error), log));
                    }
                }
            }
        }
        let error = log.exhausted(&ctx.info.model);
        Err((error, log))
    }

    /// Run request filters in order. A filter that faults fails the request closed: an
    /// unfiltered prompt must never reach a provider.
    async fn run_request_filters(
        &self,
        snapshot: &Snapshot,
        route: &Route<'_>,
        ctx: &mut RequestContext,
        body: &mut String,
    ) -> Result<Vec<ActiveFilter>, ApiError> {
        let mut active = Vec::with_capacity(route.filters.len());
        for name in &route.filters {
            let plugin = snapshot.plugins.get(name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "plugin_error",
                    format!("filter plugin '{name}' is not loaded"),
                )
            })?;
            let settings = snapshot.config.filter_settings(name);
            let info = guard_info(ctx);
            let mut lease = plugin.lease().await.map_err(fault_error)?;
            let outcome = plugin_call!(lease, "on-request", |store, b| b
                .guard()?
                .call_on_request(store, &info, body, &settings)
                .await)
            .map_err(fault_error)?
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "plugin_error",
                    format!("filter '{name}' failed: {}", e.message),
                )
            })?;
            match outcome.verdict {
                RequestVerdict::Allow => {}
                RequestVerdict::Rewrite(new_body) => {
                    let new_info = inspect_chat_request(new_body.as_bytes()).map_err(|e| {
                        ApiError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "plugin_error",
                            format!(
                                "filter '{name}' rewrote the request into an invalid one: {}",
                                e.message
                            ),
                        )
                    })?;
                    ctx.info = ChatRequestInfo {
                        model: std::mem::take(&mut ctx.info.model),
                        ..new_info
                    };
                    *body = new_body;
                }
                RequestVerdict::Block(reason) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "blocked_by_filter",
                        format!("the request was blocked by filter '{name}': {reason}"),
                    ));
                }
            }
            // Labels come with any verdict that forwards (a filter may redact and route).
            for tag in outcome.tags {
                if !ctx.tags.contains(&tag) {
                    ctx.tags.push(tag);
                }
            }
            active.push(ActiveFilter {
                plugin: plugin.clone(),
                state: outcome.state,
                settings,
            });
        }
        Ok(active)
    }

    /// Enabled targets in the order the model's router chooses. A router that faults is
    /// logged and the configured order is used: routers only reorder, they guard nothing.
    async fn order_targets(
        &self,
        snapshot: &Snapshot,
        route: &Route<'_>,
        ctx: &RequestContext,
        log: &mut RouteLog,
    ) -> Result<Vec<TargetRef>, ApiError> {
        let config = &snapshot.config;
        let now = Instant::now();
        let mut enabled = Vec::with_capacity(route.targets.len());
        let sensitive = ctx
            .tags
            .iter()
            .find(|tag| config.trusted_only_tags.contains(tag));
        for target in &route.targets {
            match config.providers.get(&target.provider) {
                Some(provider) => match (
                    &provider.disabled,
                    incapability(provider, target, &ctx.info),
                ) {
                    (Some(why), _) => log.push(
                        target,
                        RouteOutcome::Skipped(format!("provider disabled: {why}")),
                    ),
                    (None, Some(why)) => log.push(target, RouteOutcome::Incapable(why)),
                    (None, None) if sensitive.is_some() && !provider.trusted => log.push(
                        target,
                        RouteOutcome::Incapable(format!(
                            "the request is labelled '{}' and provider '{}' is not trusted with sensitive data",
                            sensitive.map(String::as_str).unwrap_or_default(),
                            provider.name
                        )),
                    ),
                    (None, None) => enabled.push(target.clone()),
                },
                None => log.push(
                    target,
                    RouteOutcome::Skipped("provider not configured".into()),
                ),
            }
        }
        if enabled.is_empty() {
            return Ok(enabled);
        }
        let Some(router) = snapshot.plugins.get(route.router) else {
            tracing::warn!(
                router = route.router,
                "router plugin not loaded; using configured order"
            );
            return Ok(enabled);
        };
        let candidates: Vec<policy::Candidate> = enabled
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let provider = config.providers.get(&target.provider);
                let limits = provider
                    .map(|p| target_limits(p, target))
                    .unwrap_or_default();
                let view = self.targets.get(target).view(now, limits);
                let info = provider.and_then(|p| p.model_info.get(&target.model));
                policy::Candidate {
                    id: i as u32,
                    provider: target.provider.clone(),
                    model: target.model.clone(),
                    healthy: view.healthy,
                    cooldown_ms: view.cooldown.map_or(0, |d| d.as_millis() as u64),
                    remaining_requests: view.remaining_requests,
                    remaining_tokens: view.remaining_tokens,
                    quota_used: view.quota_used,
                    in_flight: view.in_flight,
                    latency_ms: view.latency_ms,
                    ttft_ms: view.ttft_ms,
                    error_rate: view.error_rate,
                    input_price: info.and_then(|i| i.input_price).unwrap_or(0.0),
                    output_price: info.and_then(|i| i.output_price).unwrap_or(0.0),
                    context_window: info.and_then(|i| i.context_window),
                    weight: 1,
                    tags: provider.map(candidate_tags).unwrap_or_default(),
                }
            })
            .collect();
        let request = policy::RequestInfo {
            model: ctx.info.model.clone(),
            prompt_tokens: ctx.info.prompt_tokens,
            max_tokens: ctx.info.max_tokens,
            stream: ctx.info.stream,
            has_tools: ctx.info.has_tools,
            has_images: ctx.info.has_images,
            tags: ctx.tags.clone(),
            metadata: ctx.info.metadata.clone(),
            session: ctx.session.clone(),
        };
        let ordered = match router.lease().await {
            Ok(mut lease) => plugin_call!(lease, "route", |store, b| b
                .policy()?
                .call_route(store, &request, &candidates, route.router_settings)
                .await),
            Err(fault) => Err(fault),
        };
        match ordered {
            Ok(Ok(ids)) => {
                let mut seen = vec![false; enabled.len()];
                let mut order = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(slot) = seen.get_mut(id as usize)
                        && !*slot
                    {
                        *slot = true;
                        order.push(enabled[id as usize].clone());
                    }
                }
                for (i, target) in enabled.iter().enumerate() {
                    if !seen[i] {
                        match self.targets.get(target).refusal(now) {
                            Some(refusal) => log.push(target, RouteOutcome::from(refusal)),
                            None => log.push(
                                target,
                                RouteOutcome::Skipped(format!(
                                    "not chosen by router '{}'",
                                    route.router
                                )),
                            ),
                        }
                    }
                }
                Ok(order)
            }
            Ok(Err(error)) => self.router_failed(
                ctx,
                route,
                enabled,
                format!(
                    "router '{}' returned an error: {}",
                    route.router, error.message
                ),
            ),
            Err(fault) => self.router_failed(ctx, route, enabled, fault.to_string()),
        }
    }

    /// A router that errs or faults fails the request closed by default: routers may carry
    /// policy (budgets, trusted-only groups) that the configured order would ignore. Models
    /// whose router only reorders can choose `on_router_error = "configured-order"`.
    fn router_failed(
        &self,
        ctx: &RequestContext,
        route: &Route<'_>,
        enabled: Vec<TargetRef>,
        why: String,
    ) -> Result<Vec<TargetRef>, ApiError> {
        match route.on_router_error {
            OnRouterError::ConfiguredOrder => {
                tracing::warn!(request_id = %ctx.id, router = route.router, "{why}; using the configured order");
                Ok(enabled)
            }
            OnRouterError::Fail => {
                tracing::warn!(request_id = %ctx.id, router = route.router, "{why}; request refused");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "plugin_error",
                    format!("model '{}' cannot be routed: {why}", ctx.info.model),
                ))
            }
        }
    }

    pub(crate) async fn attempt_json(
        &self,
        adapter: &Arc<Plugin>,
        provider: &Provider,
        target: &TargetRef,
        body: &str,
        state: &TargetState,
    ) -> Result<adapter::Completion, AttemptError> {
        let upstream_target = adapter_target(provider, target, false);
        let mut lease = adapter.lease().await?;
        let request = plugin_call!(lease, "build-request", |store, b| b
            .adapter()?
            .call_build_request(store, &upstream_target, body)
            .await)?
        .map_err(AttemptError::from_plugin_error)?;
        let exchange = async {
            let response = self
                .upstream
                .send(request, provider.api_key.as_ref())
                .await?;
            let (parts, incoming) = response.into_parts();
            let bytes = incoming
                .collect()
                .await
                .map_err(|e| {
                    AttemptError::upstream(
                        crate::plugins::bindings::types::ErrorKind::Unavailable,
                        format!("the upstream connection broke while sending the answer: {e}"),
                    )
                })?
                .to_bytes();
            Ok::<_, AttemptError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(provider.timeout, exchange)
            .await
            .map_err(|_| AttemptError::timeout(provider.timeout))??;
        let status = parts.status.as_u16();
        let headers = header_pairs(&parts.headers);
        let parsed = plugin_call!(lease, "parse-response", |store, b| b
            .adapter()?
            .call_parse_response(store, &upstream_target, status, &headers, &bytes)
            .await)?;
        match parsed {
            Ok(completion) => {
                if mentions_rate_limits(&headers) {
                    let limits = plugin_call!(lease, "read-rate-limits", |store, b| b
                        .adapter()?
                        .call_read_rate_limits(store, status, &headers, &[])
                        .await)?;
                    state.record_rate_limits(&limits, Instant::now());
                }
                Ok(completion)
            }
            Err(error) => {
                let limits = plugin_call!(lease, "read-rate-limits", |store, b| b
                    .adapter()?
                    .call_read_rate_limits(store, status, &headers, &bytes)
                    .await)?;
                state.record_rate_limits(&limits, Instant::now());
                let mut error = AttemptError::from_plugin_error(error);
                if error.retry_after.is_none() {
                    error.retry_after = limits.retry_after_ms.map(Duration::from_millis);
                }
                Err(error)
            }
        }
    }

    async fn attempt_stream(
        &self,
        adapter: &Arc<Plugin>,
        provider: &Provider,
        target: &TargetRef,
        body: &str,
        state: &TargetState,
    ) -> Result<OpenStream, AttemptError> {
        let upstream_target = adapter_target(provider, target, true);
        let mut lease = adapter.lease().await?;
        let request = plugin_call!(lease, "build-request", |store, b| b
            .adapter()?
            .call_build_request(store, &upstream_target, body)
            .await)?
        .map_err(AttemptError::from_plugin_error)?;
        let deadline = tokio::time::Instant::now() + provider.timeout;
        let response = tokio::time::timeout_at(
            deadline,
            self.upstream.send(request, provider.api_key.as_ref()),
        )
        .await
        .map_err(|_| AttemptError::timeout(provider.timeout))??;
        let (parts, incoming) = response.into_parts();
        let status = parts.status.as_u16();
        if !parts.status.is_success() {
            let headers = header_pairs(&parts.headers);
            let bytes = tokio::time::timeout_at(deadline, incoming.collect())
                .await
                .map_err(|_| AttemptError::timeout(provider.timeout))?
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let parsed = plugin_call!(lease, "parse-response", |store, b| b
                .adapter()?
                .call_parse_response(store, &upstream_target, status, &headers, &bytes,)
                .await)?;
            let limits = plugin_call!(lease, "read-rate-limits", |store, b| b
                .adapter()?
                .call_read_rate_limits(store, status, &headers, &bytes)
                .await)?;
            state.record_rate_limits(&limits, Instant::now());
            let mut error = match parsed {
                Err(error) => AttemptError::from_plugin_error(error),
                Ok(_) => AttemptError::upstream(
                    crate::plugins::bindings::types::ErrorKind::InvalidResponse,
                    format!("the upstream answered HTTP {status} to a stream request"),
                ),
            };
            if error.retry_after.is_none() {
                error.retry_after = limits.retry_after_ms.map(Duration::from_millis);
            }
            return Err(error);
        }
        let headers = header_pairs(&parts.headers);
        if mentions_rate_limits(&headers) {
            let limits = plugin_call!(lease, "read-rate-limits", |store, b| b
                .adapter()?
                .call_read_rate_limits(store, status, &headers, &[])
                .await)?;
            state.record_rate_limits(&limits, Instant::now());
        }
        let decoder = plugin_call!(lease, "stream-decoder", |store, b| b
            .adapter()?
            .stream_decoder()
            .call_constructor(store, &upstream_target)
            .await)?;
        let mut open = OpenStream {
            lease,
            decoder,
            body: incoming,
            pending: Vec::new(),
            idle_timeout: provider.stream_idle_timeout,
            finished: false,
        };
        // Peek: read until the decoder yields a chunk, so a target that fails before its first
        // chunk can still be skipped.
        loop {
            let next = tokio::time::timeout_at(deadline, open.next_chunks()).await;
            match next {
                Err(_) => {
                    open.close().await;
                    return Err(AttemptError::timeout(provider.timeout));
                }
                Ok(Err(error)) => {
                    open.close().await;
                    return Err(error);
                }
                Ok(Ok(chunks)) => {
                    if !chunks.is_empty() {
                        open.pending = chunks;
                        return Ok(open);
                    }
                    if open.finished {
                        open.close().await;
                        return Err(AttemptError::upstream(
                            crate::plugins::bindings::types::ErrorKind::InvalidResponse,
                            "the upstream stream ended without any chunk",
                        ));
                    }
                }
            }
        }
    }

    async fn json_answer(
        &self,
        ctx: &RequestContext,
        target: &TargetRef,
        completion: adapter::Completion,
        filters: &[ActiveFilter],
        log: &RouteLog,
    ) -> Result<Response<ResponseBody>, (ApiError, RouteLog)> {
        let mut body = completion.body;
        let answer_bytes = body.len();
        if ctx.log_content.answers() {
            log_text(&ctx.id, "answer", &body);
        }
        let info = guard_info(ctx);
        for filter in filters {
            let verdict = match filter.plugin.lease().await {
                Ok(mut lease) => plugin_call!(lease, "on-response", |store, b| b
                    .guard()?
                    .call_on_response(
                        store,
                        &info,
                        filter.state.as_deref(),
                        &body,
                        &filter.settings
                    )
                    .await),
                Err(fault) => Err(fault),
            }
            .map_err(|f| (fault_error(f), log.clone()))?
            .map_err(|e| (filter_error(&filter.plugin.name, &e.message), log.clone()))?;
            match verdict {
                ResponseVerdict::Allow => {}
                ResponseVerdict::Rewrite(new_body) => body = new_body,
                ResponseVerdict::Block(reason) => {
                    return Err((
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "blocked_by_filter",
                            format!(
                                "the answer was blocked by filter '{}': {reason}",
                                filter.plugin.name
                            ),
                        ),
                        log.clone(),
                    ));
                }
            }
        }
        let usage = completion.usage;
        tracing::info!(
            request_id = %ctx.id,
            model = %ctx.info.model,
            provider = %target.provider,
            upstream_model = %target.model,
            status = 200,
            stream = false,
            attempts = log.attempts(),
            latency_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
            messages = ctx.info.messages,
            prompt_bytes = ctx.prompt_bytes,
            answer_bytes,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            route = %log.header_value(),
            "request served"
        );
        let mut response = Response::new(full_body(Bytes::from(body)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        route_headers(headers, &ctx.id, target, log);
        Ok(response)
    }

    #[allow(clippy::too_many_arguments)]
    fn stream_answer(
        self: &Arc<Self>,
        ctx: &RequestContext,
        target: TargetRef,
        open: Box<OpenStream>,
        filters: Vec<ActiveFilter>,
        log: RouteLog,
        in_flight: InFlight,
        (attempt_started, admission): (Instant, Admission),
    ) -> Response<ResponseBody> {
        let (tx, rx) = mpsc::channel::<Bytes>(32);
        let mut response = Response::new(ResponseBody::new(ChannelBody::new(rx)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert("cache-control", HeaderValue::from_static("no-cache"));
        route_headers(headers, &ctx.id, &target, &log);
        let config_digest = &self.snapshot.load().config.digest;
        let pump = StreamPump {
            request_id: ctx.id.clone(),
            model: ctx.info.model.clone(),
            include_usage: ctx.info.include_usage,
            started: ctx.started,
            attempt_started,
            admission,
            config_digest: config_digest.clone(),
            target,
            log,
            filters: Vec::new(),
            gateway: self.clone(),
            caller: ctx.caller.clone(),
            messages: ctx.info.messages,
            prompt_bytes: ctx.prompt_bytes,
            answer: AnswerTally::new(ctx.log_content.answers()),
        };
        let info = guard_info(ctx);
        tokio::spawn(pump.run(open, filters, info, tx, in_flight));
        response
    }
}

enum Success {
    Json(adapter::Completion),
    Stream(Box<OpenStream>),
}

/// A filter that ran on the request, with the state it asked to see again on the answer.
struct ActiveFilter {
    plugin: Arc<Plugin>,
    state: Option<String>,
    settings: String,
}

/// A committed upstream stream: the adapter instance with its decoder and the body.
struct OpenStream {
    lease: Lease,
    decoder: ResourceAny,
    body: Incoming,
    pending: Vec<adapter::Chunk>,
    idle_timeout: Duration,
    finished: bool,
}

impl OpenStream {
    /// Chunks decoded from the next body frame (possibly none), or the decoder's final
    /// chunks once the body has ended.
    async fn next_chunks(&mut self) -> Result<Vec<adapter::Chunk>, AttemptError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let decoder = self.decoder;
        match self.body.frame().await {
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    return Ok(Vec::new());
                };
                plugin_call!(self.lease, "stream-decoder.push", |store, b| b
                    .adapter()?
                    .stream_decoder()
                    .call_push(store, decoder, &data)
                    .await)?
                .map_err(AttemptError::from_plugin_error)
            }
            Some(Err(e)) => Err(AttemptError::upstream(
                crate::plugins::bindings::types::ErrorKind::Unavailable,
                format!("the upstream stream broke: {e}"),
            )),
            None => {
                self.finished = true;
                plugin_call!(self.lease, "stream-decoder.finish", |store, b| b
                    .adapter()?
                    .stream_decoder()
                    .call_finish(store, decoder)
                    .await)?
                .map_err(AttemptError::from_plugin_error)
            }
        }
    }

    /// Release the decoder resource so a pooled instance goes back clean.
    async fn close(&mut self) {
        let decoder = self.decoder;
        let _ = plugin_call!(self.lease, "stream-decoder.drop", |store, _exports| decoder
            .resource_drop_async(store)
            .await);
    }
}

/// A stream filter opened for one answer.
struct StreamFilter {
    name: String,
    lease: Result<Lease, PluginFault>,
    resource: Option<ResourceAny>,
}

impl StreamFilter {
    async fn open(filter: ActiveFilter, info: &guard::RequestInfo) -> StreamFilter {
        let name = filter.plugin.name.clone();
        let mut lease = filter.plugin.lease().await;
        let resource = match &mut lease {
            Ok(lease) => plugin_call!(*lease, "stream-filter", |store, b| b
                .guard()?
                .stream_filter()
                .call_constructor(store, info, filter.state.as_deref(), &filter.settings,)
                .await)
            .ok(),
            Err(_) => None,
        };
        StreamFilter {
            name,
            lease,
            resource,
        }
    }

    /// Pass chunks through this filter. A fault ends the stream (fail closed).
    async fn apply(&mut self, chunks: Vec<String>) -> Result<Vec<String>, String> {
        let (Ok(lease), Some(resource)) = (&mut self.lease, self.resource) else {
            return Err(format!(
                "filter '{}' could not start its stream hook",
                self.name
            ));
        };
        let mut out = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let verdict = plugin_call!(*lease, "stream-filter.on-chunk", |store, b| b
                .guard()?
                .stream_filter()
                .call_on_chunk(store, resource, &chunk)
                .await)
            .map_err(|f| f.to_string())?
            .map_err(|e| format!("filter '{}' failed: {}", self.name, e.message))?;
            match verdict {
                ChunkVerdict::Pass => out.push(chunk),
                ChunkVerdict::Replace(replacement) => out.extend(replacement),
            }
        }
        Ok(out)
    }

    async fn finish(&mut self) -> Result<Vec<String>, String> {
        let (Ok(lease), Some(resource)) = (&mut self.lease, self.resource.take()) else {
            return Err(format!(
                "filter '{}' could not start its stream hook",
                self.name
            ));
        };
        let out = plugin_call!(*lease, "stream-filter.finish", |store, b| b
            .guard()?
            .stream_filter()
            .call_finish(store, resource)
            .await)
        .map_err(|f| f.to_string())?
        .map_err(|e| format!("filter '{}' failed: {}", self.name, e.message));
        let _ = plugin_call!(*lease, "stream-filter.drop", |store, _exports| resource
            .resource_drop_async(store)
            .await);
        out
    }
}

/// Moves a committed stream from upstream to client: decode → filters → SSE frames.
struct StreamPump {
    request_id: String,
    model: String,
    include_usage: bool,
    started: Instant,
    attempt_started: Instant,
    admission: Admission,
    config_digest: String,
    target: TargetRef,
    log: RouteLog,
    filters: Vec<StreamFilter>,
    gateway: Arc<Gateway>,
    caller: Option<String>,
    messages: usize,
    prompt_bytes: usize,
    /// What the upstream streamed: its size always, its text when it may be logged.
    answer: AnswerTally,
}

/// Why a committed stream ended early when it was not the upstream's fault.
const CLIENT_GONE: &str = "the client went away";

impl StreamPump {
    async fn run(
        mut self,
        mut open: Box<OpenStream>,
        filters: Vec<ActiveFilter>,
        info: guard::RequestInfo,
        tx: mpsc::Sender<Bytes>,
        in_flight: InFlight,
    ) {
        for filter in filters {
            self.filters.push(StreamFilter::open(filter, &info).await);
        }
        let ttft = self.attempt_started.elapsed();
        let mut usage = None;
        let mut chunks = std::mem::take(&mut open.pending);
        let mut outcome: Result<(), String> = Ok(());
        loop {
            if let Err(error) = self.send(&tx, chunks, &mut usage).await {
                outcome = Err(error);
                break;
            }
            if open.finished {
                break;
            }
            chunks = match tokio::time::timeout(open.idle_timeout, open.next_chunks()).await {
                Ok(Ok(chunks)) => chunks,
                Ok(Err(error)) => {
                    outcome = Err(error.message);
                    break;
                }
                Err(_) => {
                    outcome = Err(format!(
                        "the upstream sent nothing for {} ms",
                        open.idle_timeout.as_millis()
                    ));
                    break;
                }
            };
        }
        open.close().await;
        if outcome.is_ok() {
            // Filters may hold text back until the end.
            let mut tail = Vec::new();
            for i in 0..self.filters.len() {
                match self.filters[i].finish().await {
                    Ok(out) => {
                        tail.extend(out);
                    }
                    Err(error) => {
                        outcome = Err(error);
                        break;
                    }
                }
            }
            if outcome.is_ok() {
                for chunk in tail {
                    if tx.send(sse_frame(&chunk)).await.is_err() {
                        outcome = Err(CLIENT_GONE.into());
                        break;
                    }
                }
            }
        }
        let state = self.gateway.targets.get(&self.target);
        match &outcome {
            Ok(()) => {
                let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
                let used =
                    usage.map(|u| u64::from(u.prompt_tokens) + u64::from(u.completion_tokens));
                state.record_success(
                    self.attempt_started.elapsed(),
                    Some(ttft),
                    self.admission,
                    used,
                );
                if let (Some(caller), Some(used)) = (&self.caller, used) {
                    self.gateway.key_usage.add_tokens(caller, used);
                }
            }
            Err(message) => {
                if message != CLIENT_GONE {
                    let error = AttemptError::upstream(
                        crate::plugins::bindings::types::ErrorKind::Unavailable,
                        message.clone(),
                    );
                    state.record_failure(
                        &error,
                        Instant::now(),
                        self.admission,
                        &self.config_digest,
                    );
                }
                let error = ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "stream_interrupted",
                    format!("the stream from {} was interrupted: {message}", self.target),
                );
                let _ = tx
                    .send(Bytes::from(format!("data: {}\n\n", error.json())))
                    .await;
            }
        }
        drop(in_flight);
        tracing::info!(
            request_id = %self.request_id,
            model = %self.model,
            provider = %self.target.provider,
            upstream_model = %self.target.model,
            status = 200,
            stream = true,
            attempts = self.log.attempts(),
            ttft_ms = ttft.as_secs_f64() * 1000.0,
            latency_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            prompt_tokens = usage.map(|u: crate::plugins::bindings::types::Usage| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            route = %self.log.header_value(),
            messages = self.messages,
            prompt_bytes = self.prompt_bytes,
            answer_bytes = self.answer.bytes,
            error = outcome.as_ref().err().map(String::as_str),
            "stream served"
        );
        if let Some(text) = &self.answer.text {
            log_text(&self.request_id, "answer", text);
        }
    }

    async fn send(
        &mut self,
        tx: &mpsc::Sender<Bytes>,
        chunks: Vec<adapter::Chunk>,
        usage: &mut Option<crate::plugins::bindings::types::Usage>,
    ) -> Result<(), String> {
        for chunk in chunks {
            if let Some(u) = chunk.usage {
                *usage = Some(u);
                if !self.include_usage {
                    continue;
                }
            }
            self.answer.add(&chunk.data);
            let mut texts = vec![chunk.data];
            for filter in &mut self.filters {
                texts = filter.apply(texts).await?;
            }
            for text in texts {
                tx.send(sse_frame(&text))
                    .await
                    .map_err(|_| CLIENT_GONE.to_string())?;
            }
        }
        Ok(())
    }
}

/// Whether a served request's text may be logged: the public model's `log_content` when it
/// sets one, else the serving provider's. Never for a request labelled trusted-only: whoever
/// marked it sensitive did not mean "but write it to the log".
fn content_policy(config: &Config, ctx: &RequestContext, provider: &Provider) -> LogContent {
    if ctx
        .tags
        .iter()
        .any(|tag| config.trusted_only_tags.contains(tag))
    {
        return LogContent::None;
    }
    config
        .models
        .get(&ctx.info.model)
        .and_then(|model| model.log_content)
        .unwrap_or(provider.log_content)
}

/// The most of one prompt or answer a content log line holds.
const MAX_LOGGED_TEXT: usize = 16 * 1024;

/// One content log line (target `freeway::content`, so it can be routed or filtered apart
/// from the request log). Only called where `log_content` allows it. Debug-quoted, so a
/// newline in a prompt cannot forge a log line.
fn log_text(request_id: &str, part: &'static str, text: &str) {
    let mut end = text.len().min(MAX_LOGGED_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    tracing::info!(
        target: "freeway::content",
        request_id,
        part,
        bytes = text.len(),
        truncated = end < text.len(),
        text = ?&text[..end],
        "content"
    );
}

/// Sizes a streamed answer and, when it may be logged, collects its text (the `content` of
/// every chunk's deltas, as the upstream sent it) up to [`MAX_LOGGED_TEXT`].
struct AnswerTally {
    bytes: usize,
    text: Option<String>,
}

impl AnswerTally {
    fn new(keep_text: bool) -> Self {
        AnswerTally {
            bytes: 0,
            text: keep_text.then(String::new),
        }
    }

    fn add(&mut self, chunk: &str) {
        self.bytes += chunk.len();
        let Some(text) = self.text.as_mut().filter(|t| t.len() < MAX_LOGGED_TEXT) else {
            return;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(chunk) else {
            return;
        };
        for choice in value["choices"].as_array().into_iter().flatten() {
            if let Some(content) = choice["delta"]["content"].as_str() {
                text.push_str(content);
            }
        }
    }
}

/// The sticky-session key of a request, when it has one: per public model, then the
/// client's session header, or its `user` plus how the conversation began.
fn sticky_key(ctx: &RequestContext) -> Option<String> {
    let model = &ctx.info.model;
    match (&ctx.session, &ctx.info.user) {
        (Some(session), _) => Some(format!("{model}\u{0}s:{session}")),
        (None, Some(user)) => Some(format!(
            "{model}\u{0}u:{user}:{:016x}",
            ctx.info.conversation
        )),
        (None, None) => None,
    }
}

/// Output tokens assumed for the token-bucket pre-check when a request sets no max_tokens.
const EXPECTED_OUTPUT_TOKENS: u32 = 256;

pub(crate) fn target_limits(provider: &Provider, target: &TargetRef) -> Limits {
    provider
        .model_info
        .get(&target.model)
        .map(|m| Limits {
            rpm: m.rpm,
            rpd: m.rpd,
            tpm: m.tpm,
            tpd: m.tpd,
        })
        .unwrap_or_default()
}

/// Why this target cannot serve this request, from what the catalog says of its model.
/// Unknown facts never exclude a target: the upstream decides.
fn incapability(provider: &Provider, target: &TargetRef, info: &ChatRequestInfo) -> Option<String> {
    let model = provider.model_info.get(&target.model)?;
    if info.has_images && model.vision == Some(false) {
        return Some("the model does not accept images".into());
    }
    if info.has_tools && model.tools == Some(false) {
        return Some("the model does not support tools".into());
    }
    if let Some(window) = model.context_window {
        let needed = u64::from(info.prompt_tokens) + u64::from(info.max_tokens.unwrap_or(0));
        if needed > u64::from(window) {
            return Some(format!(
                "the request needs about {needed} tokens, over the model's context window of {window}"
            ));
        }
    }
    if let (Some(asked), Some(most)) = (info.max_tokens, model.max_output_tokens)
        && asked > most
    {
        return Some(format!(
            "max_tokens {asked} is over the model's limit of {most}"
        ));
    }
    None
}

/// Tags a router sees for a target: the provider's own, plus "trusted" and "free"/"paid".
fn candidate_tags(provider: &Provider) -> Vec<String> {
    let mut tags = provider.tags.clone();
    if provider.trusted {
        tags.push("trusted".into());
    }
    tags
}

fn sse_frame(data: &str) -> Bytes {
    let mut frame = Vec::with_capacity(data.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(data.as_bytes());
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

fn adapter_target(provider: &Provider, target: &TargetRef, stream: bool) -> Target {
    Target {
        provider: provider.name.clone(),
        base_url: provider.base_url.clone(),
        model: target.model.clone(),
        stream,
        settings: provider.settings.to_string(),
    }
}

fn guard_info(ctx: &RequestContext) -> guard::RequestInfo {
    guard::RequestInfo {
        model: ctx.info.model.clone(),
        tags: ctx.tags.clone(),
        metadata: ctx.info.metadata.clone(),
    }
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

fn fault_error(fault: PluginFault) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_error",
        fault.to_string(),
    )
}

fn filter_error(name: &str, message: &str) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "plugin_error",
        format!("filter '{name}' failed: {message}"),
    )
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn route_headers(headers: &mut HeaderMap, request_id: &str, target: &TargetRef, log: &RouteLog) {
    set_header(headers, "x-request-id", request_id);
    set_header(headers, "x-freeway-provider", &target.provider);
    set_header(headers, "x-freeway-model", &target.model);
    set_header(headers, "x-freeway-attempts", &log.attempts().to_string());
    set_header(headers, "x-freeway-route", &log.header_value());
}

pub fn error_response(error: &ApiError, request_id: &str) -> Response<ResponseBody> {
    let mut response = Response::new(full_body(error.body()));
    *response.status_mut() = error.status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    set_header(headers, "x-request-id", request_id);
    if let Some(after) = error.retry_after_header() {
        set_header(headers, "retry-after", &after);
    }
    response
}
