//! From a public model name to what can serve it: the configured model (router, settings,
//! filters, targets) or a direct `provider/model`; and, per target, whether what the catalog
//! says of it rules this request out. Unknown facts never exclude a target: the upstream
//! decides.

use crate::config::{
    Config, ContextFit, EscalateOn, HedgePolicy, ModelInfo, OnRouterError, Provider, QueuePolicy,
    TargetRef,
};

use super::canonical::{ChatRequestInfo, Operation};

/// A public model resolved to what serves it.
pub struct Route<'a> {
    pub router: &'a str,
    pub router_settings: &'a str,
    pub on_router_error: OnRouterError,
    pub filters: Vec<&'a str>,
    pub targets: Vec<TargetRef>,
    pub hedge: Option<HedgePolicy>,
    pub queue: Option<QueuePolicy>,
    pub context_fit: &'a ContextFit,
    pub max_input_tokens: Option<u32>,
    pub escalate_on: &'a [EscalateOn],
}

/// A direct `provider/model` request is never fitted.
static REFUSE: ContextFit = ContextFit::Refuse;

pub fn resolve<'a>(config: &'a Config, model: &str) -> Option<Route<'a>> {
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
            hedge: public.hedge,
            queue: public.queue,
            context_fit: &public.context_fit,
            max_input_tokens: public.max_input_tokens,
            escalate_on: &public.escalate_on,
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
        hedge: None,
        queue: None,
        context_fit: &REFUSE,
        max_input_tokens: None,
        escalate_on: &[],
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

/// Why this target cannot serve this request, from its adapter (an embeddings request needs
/// one that exports `embedder`) and from what the catalog says of its model (an embedding
/// model, one with `dimensions`, serves only embeddings). With `fitted`, a prompt over the
/// window is no reason: the model's fitter will trim it.
pub fn incapability(
    provider: &Provider,
    target: &TargetRef,
    info: &ChatRequestInfo,
    adapter_embeds: bool,
    fitted: bool,
) -> Option<String> {
    if info.operation == Operation::Embeddings && !adapter_embeds {
        return Some(format!(
            "adapter '{}' cannot create embeddings",
            provider.adapter
        ));
    }
    let model = provider.model_info.get(&target.model)?;
    match (info.operation, model.dimensions) {
        (Operation::Chat, Some(_)) => {
            return Some("an embedding model cannot answer chat requests".into());
        }
        (Operation::Embeddings, None) if model.context_window.is_some() => {
            return Some("not an embedding model (the catalog gives it no dimensions)".into());
        }
        (Operation::Embeddings, _) => return embedding_incapability(model, info),
        (Operation::Chat, None) => {}
    }
    if info.has_images && model.vision == Some(false) {
        return Some("the model does not accept images".into());
    }
    if info.has_tools && model.tools == Some(false) {
        return Some("the model does not support tools".into());
    }
    if let Some(window) = model.context_window.filter(|_| !fitted) {
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

/// What rules an embedding model out: more input than it reads at once (its
/// `context_window`, per input as the upstream counts; the estimate is of the whole request,
/// so this only catches requests over it in total on a one-input request).
fn embedding_incapability(model: &ModelInfo, info: &ChatRequestInfo) -> Option<String> {
    match model.context_window {
        Some(window) if info.messages == 1 && info.prompt_tokens > window => Some(format!(
            "the input is about {} tokens, over the model's input limit of {window}",
            info.prompt_tokens
        )),
        _ => None,
    }
}

/// Tags a router sees for a target: the provider's own, plus "trusted".
pub fn candidate_tags(provider: &Provider) -> Vec<String> {
    let mut tags = provider.tags.clone();
    if provider.trusted {
        tags.push("trusted".into());
    }
    tags
}
