//! The provider adapter for Anthropic's Messages API (`POST {base_url}/messages`).
//!
//! Anthropic speaks its own format, so unlike the OpenAI-compatible adapter this one translates
//! in both directions: the client's OpenAI chat-completions request becomes a Messages request
//! (system prompt lifted out, turns merged to alternate, tools and images re-shaped), and the
//! Messages answer or event stream becomes OpenAI's `chat.completion` or
//! `chat.completion.chunk`s. Errors and rate-limit headers are read in Anthropic's shapes and
//! typed the way the host's failover engine expects.
//!
//! Modules, in the order a request travels: `settings` (the provider's config entry),
//! `request` (OpenAI → Messages), `response` (Messages → `chat.completion`), `stream`
//! (Messages events → chunks), `openai` (the OpenAI objects written back), `errors` (error
//! bodies and events → typed errors) and `rate_limits` (the `anthropic-ratelimit-*` headers).

mod errors;
mod openai;
mod rate_limits;
mod request;
mod response;
mod settings;
mod stream;
mod structured;

use freeway_plugin_sdk::openai::unix_now;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{
    self, Completion, HttpRequest, Target,
};
use freeway_plugin_sdk::provider::{self, PluginMetadata};
use freeway_plugin_sdk::stream::DecoderResource;
use freeway_plugin_sdk::types::{Error, PluginKind, RateLimits};

struct Anthropic;

impl provider::Guest for Anthropic {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "anthropic".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Provider,
            description: "Adapter for Anthropic's Messages API (Claude)".to_owned(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        settings::Settings::parse("", &settings)
            .map(drop)
            .map_err(|problem| problem.message)
    }
}

impl adapter::Guest for Anthropic {
    type StreamDecoder = DecoderResource<stream::Translator>;

    fn build_request(target: Target, request: String) -> Result<HttpRequest, Error> {
        request::build_request(&target, &request)
    }

    fn parse_response(
        target: Target,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Completion, Error> {
        response::parse_response(&target, status, &headers, &body, unix_now())
    }

    fn read_rate_limits(status: u16, headers: Vec<(String, String)>, _body: Vec<u8>) -> RateLimits {
        rate_limits::read_rate_limits(status, &headers)
    }
}

freeway_plugin_sdk::export_provider!(Anthropic with_types_in freeway_plugin_sdk::provider);
