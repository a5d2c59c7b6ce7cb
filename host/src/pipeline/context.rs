//! What one request carries through the pipeline: the facts read from its body (updated when
//! a filter rewrites it), its routing labels and session, the content-logging policy once a
//! target is chosen, and the record that accounts for it at the end.

use crate::cache::{Directives, Plan};
use crate::config::{Config, LogContent, Provider};
use crate::plugins::Tenant;
use crate::plugins::bindings::guard;

use super::canonical::ChatRequestInfo;
use super::record::RequestRecord;

pub struct RequestContext {
    pub info: ChatRequestInfo,
    /// Routing labels: from `x-freeway-tags`, `metadata.sensitive = "true"`, and filters.
    pub tags: Vec<String>,
    /// The client's `x-freeway-session`, which keys a sticky session.
    pub session: Option<String>,
    /// Its place in a line waiting for capacity (`queue::priority`): higher is served first.
    pub priority: u8,
    /// Whether this request's text may be logged, once its serving target is known.
    pub log_content: LogContent,
    /// What the client said about caching, and what the cache does for this request.
    pub cache_directives: Directives,
    pub cache: Plan,
    pub record: RequestRecord,
    /// When the whole request must be over (`server.request_timeout_ms` from its start).
    pub deadline: tokio::time::Instant,
    /// Set when this request is a model call the gateway makes for another one (depth 1: it
    /// is never judged or summarized itself).
    pub side_call: Option<super::side_call::SideCall>,
}

impl RequestContext {
    /// Whose request this is, for plugin instance reuse: its gateway key.
    pub fn tenant(&self) -> Tenant {
        self.record
            .caller
            .as_ref()
            .map_or(Tenant::ANONYMOUS, |caller| Tenant::key(&caller.name))
    }

    pub fn guard_info(&self) -> guard::RequestInfo {
        guard::RequestInfo {
            model: self.info.model.clone(),
            tags: self.tags.clone(),
            metadata: self.info.metadata.clone(),
        }
    }

    /// The sticky-session key of this request, when it has one: per public model, then the
    /// client's session header, or its `user` plus how the conversation began.
    pub fn sticky_key(&self) -> Option<String> {
        let model = &self.info.model;
        match (&self.session, &self.info.user) {
            (Some(session), _) => Some(format!("{model}\u{0}s:{session}")),
            (None, Some(user)) => Some(format!(
                "{model}\u{0}u:{user}:{:016x}",
                self.info.conversation
            )),
            (None, None) => None,
        }
    }

    /// The first of this request's labels that restricts it to trusted providers.
    pub fn trusted_only_tag<'a>(&'a self, config: &Config) -> Option<&'a String> {
        self.tags
            .iter()
            .find(|tag| config.trusted_only_tags.contains(tag))
    }

    /// Whether a served request's text may be logged: the public model's `log_content` when
    /// it sets one, else the serving provider's. Never for a request labelled trusted-only:
    /// whoever marked it sensitive did not mean "but write it to the log".
    pub fn content_policy(&self, config: &Config, provider: &Provider) -> LogContent {
        if self.trusted_only_tag(config).is_some() {
            return LogContent::None;
        }
        config
            .models
            .get(&self.info.model)
            .and_then(|model| model.log_content)
            .unwrap_or(provider.log_content)
    }
}
