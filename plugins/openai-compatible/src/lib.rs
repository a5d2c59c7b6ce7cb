//! The provider adapter for every OpenAI-compatible chat-completions API: OpenAI itself, Groq,
//! Mistral, DeepSeek, Cerebras, NVIDIA NIM, OpenRouter, Together, GitHub Models, SambaNova, and
//! local Ollama or vLLM servers.
//!
//! These upstreams already speak the gateway's canonical format, so this adapter owns only what
//! differs between them: where the endpoint is and how the key is presented (`settings`),
//! setting the upstream model id and asking for streamed usage, turning the many shapes of
//! their error bodies into typed errors, and normalising where streamed usage arrives. Bodies
//! pass through as text; the gateway targets under 100 µs of added latency, so nothing is
//! parsed into a tree that does not have to be. It also embeds (`embeddings`): the optional
//! `embedder` export, built into the same component.

mod embeddings;
mod json;
mod request;
mod response;
mod settings;
mod stream;

use freeway_plugin_sdk::embedder::exports::freeway::plugin::embedder::{
    self, EmbeddingHttpRequest, EmbeddingTarget, Embeddings,
};
use freeway_plugin_sdk::http::openai_style_rate_limits;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{
    self, Completion, HttpRequest, Target,
};
use freeway_plugin_sdk::provider::{self, PluginMetadata};
use freeway_plugin_sdk::stream::DecoderResource;
use freeway_plugin_sdk::types::{Error, PluginKind, RateLimits};

struct OpenAiCompatible;

impl provider::Guest for OpenAiCompatible {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "openai-compatible".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Provider,
            description: "Adapter for OpenAI-compatible chat-completions APIs (OpenAI, Groq, \
                          Mistral, DeepSeek, Cerebras, OpenRouter, Ollama, vLLM, ...)"
                .to_owned(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        settings::Settings::parse("", &settings)
            .map(drop)
            .map_err(|problem| problem.message)
    }
}

impl adapter::Guest for OpenAiCompatible {
    type StreamDecoder = DecoderResource<stream::Translator>;

    fn build_request(target: Target, request: String) -> Result<HttpRequest, Error> {
        request::build_request(&target, &request)
    }

    fn parse_response(
        _target: Target,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Completion, Error> {
        response::parse_response(status, &headers, body)
    }

    fn read_rate_limits(
        _status: u16,
        headers: Vec<(String, String)>,
        _body: Vec<u8>,
    ) -> RateLimits {
        openai_style_rate_limits(&headers)
    }
}

impl embedder::Guest for OpenAiCompatible {
    fn build_embeddings_request(
        target: EmbeddingTarget,
        request: String,
    ) -> Result<EmbeddingHttpRequest, Error> {
        embeddings::build_request(&target, &request)
    }

    fn parse_embeddings_response(
        _target: EmbeddingTarget,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Embeddings, Error> {
        embeddings::parse_response(status, &headers, body)
    }
}

freeway_plugin_sdk::export_provider!(OpenAiCompatible with_types_in freeway_plugin_sdk::provider);
freeway_plugin_sdk::export_embedder!(OpenAiCompatible with_types_in freeway_plugin_sdk::embedder);
