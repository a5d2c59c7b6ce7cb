//! Filter plugins around a request: `on-request` in configured order before routing (allow,
//! rewrite, block, with labels), `on-response` on a whole answer, and a `stream-filter`
//! resource per streamed answer. Filters fail closed: a filter that faults fails the request
//! (or ends the stream), because an unfiltered prompt must never reach a provider and an
//! unfiltered answer must never reach the client.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use crate::error::{GatewayError, Stage};
use crate::plugin_call;
use crate::plugins::bindings::guard::{self, ChunkVerdict, RequestVerdict, ResponseVerdict};
use crate::plugins::{Lease, Plugin, PluginFault, Tenant};

use super::Snapshot;
use super::canonical::{ChatRequestInfo, inspect_chat_request};
use super::context::RequestContext;

/// A filter that ran on the request, with the state it asked to see again on the answer.
pub struct ActiveFilter {
    pub plugin: Arc<Plugin>,
    /// Whose request it is: the answer hooks lease instances for the same key.
    pub tenant: Tenant,
    pub state: Option<String>,
    pub settings: String,
}

fn fault_error(fault: PluginFault) -> GatewayError {
    GatewayError::plugin(fault.to_string())
}

fn filter_error(name: &str, message: &str) -> GatewayError {
    GatewayError::plugin(format!("filter '{name}' failed: {message}"))
}

/// Run request filters in order; returns the filters to run on the answer.
pub async fn on_request(
    snapshot: &Snapshot,
    filters: &[&str],
    ctx: &mut RequestContext,
    body: &mut String,
) -> Result<Vec<ActiveFilter>, GatewayError> {
    let mut active = Vec::with_capacity(filters.len());
    for name in filters {
        let plugin = snapshot
            .plugins
            .get(name)
            .ok_or_else(|| GatewayError::plugin(format!("filter plugin '{name}' is not loaded")))?;
        let settings = snapshot.config.filter_settings(name);
        let info = ctx.guard_info();
        let mut lease = plugin.lease_for(ctx.tenant()).await.map_err(fault_error)?;
        let outcome = plugin_call!(lease, "on-request", |store, b| b
            .guard()?
            .call_on_request(store, &info, body, &settings)
            .await)
        .map_err(fault_error)?
        .map_err(|e| filter_error(name, &e.message))?;
        match outcome.verdict {
            RequestVerdict::Allow => {}
            RequestVerdict::Rewrite(new_body) => {
                let new_info = inspect_chat_request(new_body.as_bytes()).map_err(|e| {
                    GatewayError::plugin(format!(
                        "filter '{name}' rewrote the request into an invalid one: {e}"
                    ))
                })?;
                ctx.info = ChatRequestInfo {
                    model: std::mem::take(&mut ctx.info.model),
                    ..new_info
                };
                *body = new_body;
            }
            RequestVerdict::Block(reason) => {
                return Err(GatewayError::Blocked {
                    stage: Stage::Request,
                    filter: name.to_string(),
                    reason,
                });
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
            tenant: ctx.tenant(),
            state: outcome.state,
            settings,
        });
    }
    Ok(active)
}

/// Run each filter's `on-response` over a whole answer, in order.
pub async fn on_response(
    filters: &[ActiveFilter],
    info: &guard::RequestInfo,
    mut body: String,
) -> Result<String, GatewayError> {
    for filter in filters {
        let verdict = match filter.plugin.lease_for(filter.tenant).await {
            Ok(mut lease) => {
                let verdict = plugin_call!(lease, "on-response", |store, b| b
                    .guard()?
                    .call_on_response(
                        store,
                        info,
                        filter.state.as_deref(),
                        &body,
                        &filter.settings
                    )
                    .await);
                // A rewritten answer must still be an answer: a filter that returns
                // something else faults, rather than handing the client a broken body.
                match &verdict {
                    Ok(Ok(ResponseVerdict::Rewrite(new_body))) if !is_json_object(new_body) => {
                        Err(lease.refuse_output(
                            "on-response",
                            "the rewritten answer is not a JSON object",
                        ))
                    }
                    _ => verdict,
                }
            }
            Err(fault) => Err(fault),
        }
        .map_err(fault_error)?
        .map_err(|e| filter_error(&filter.plugin.name, &e.message))?;
        match verdict {
            ResponseVerdict::Allow => {}
            ResponseVerdict::Rewrite(new_body) => body = new_body,
            ResponseVerdict::Block(reason) => {
                return Err(GatewayError::Blocked {
                    stage: Stage::Answer,
                    filter: filter.plugin.name.clone(),
                    reason,
                });
            }
        }
    }
    Ok(body)
}

fn is_json_object(text: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_ok()
}

fn not_started(name: &str) -> String {
    format!("filter '{name}' could not start its stream hook")
}

/// A stream filter opened for one answer.
pub struct StreamFilter {
    name: String,
    lease: Result<Lease, PluginFault>,
    resource: Option<ResourceAny>,
}

impl StreamFilter {
    pub async fn open(filter: ActiveFilter, info: &guard::RequestInfo) -> StreamFilter {
        let name = filter.plugin.name.clone();
        let mut lease = filter.plugin.lease_for(filter.tenant).await;
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
    pub async fn apply(&mut self, chunks: Vec<String>) -> Result<Vec<String>, String> {
        let (Ok(lease), Some(resource)) = (&mut self.lease, self.resource) else {
            return Err(not_started(&self.name));
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

    /// The end of the stream: whatever the filter held back.
    pub async fn finish(&mut self) -> Result<Vec<String>, String> {
        let (Ok(lease), Some(resource)) = (&mut self.lease, self.resource.take()) else {
            return Err(not_started(&self.name));
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
