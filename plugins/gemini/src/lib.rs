//! The provider adapter for Google's Gemini API (the Generative Language API,
//! `POST {base_url}/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`).
//!
//! Gemini speaks its own format, so this adapter translates in both directions: the client's
//! OpenAI chat-completions request becomes a `GenerateContentRequest` (system prompt lifted to
//! `systemInstruction`, roles renamed, turns merged, sampling moved into `generationConfig`,
//! JSON Schemas narrowed to the subset Gemini accepts), and `GenerateContentResponse`s become
//! OpenAI's `chat.completion` or `chat.completion.chunk`s. Google's error bodies (`google.rpc`
//! statuses with `RetryInfo` and `QuotaFailure` details) are typed the way the host's failover
//! engine expects.
//!
//! Modules, in the order a request travels: `settings` (the provider's config entry),
//! `request` (OpenAI → Gemini), `schema` (JSON Schema → Gemini's `Schema`), `response`
//! (Gemini → `chat.completion`), `stream` (Gemini's SSE → chunks), `openai` (the OpenAI
//! objects written back) and `errors` (error bodies, retry delays and rate limits);
//! `embeddings` is the optional `embedder` export (`embedContent` / `batchEmbedContents`).

mod embeddings;
mod errors;
mod openai;
mod request;
mod response;
mod schema;
mod settings;
mod stream;

use freeway_plugin_sdk::embedder::exports::freeway::plugin::embedder::{
    self, EmbeddingHttpRequest, EmbeddingTarget, Embeddings,
};
use freeway_plugin_sdk::openai::unix_now;
use freeway_plugin_sdk::provider::exports::freeway::plugin::adapter::{
    self, Completion, HttpRequest, Target,
};
use freeway_plugin_sdk::provider::{self, PluginMetadata};
use freeway_plugin_sdk::stream::DecoderResource;
use freeway_plugin_sdk::types::{Error, PluginKind, RateLimits};

struct Gemini;

impl provider::Guest for Gemini {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: "gemini".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Provider,
            description: "Adapter for Google's Gemini API (generateContent, embedContent)"
                .to_owned(),
        }
    }

    fn check_settings(settings: String) -> Result<(), String> {
        settings::Settings::parse("", &settings)
            .map(drop)
            .map_err(|problem| problem.message)
    }
}

impl adapter::Guest for Gemini {
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

    fn read_rate_limits(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> RateLimits {
        errors::read_rate_limits(status, &headers, &body)
    }
}

impl embedder::Guest for Gemini {
    fn build_embeddings_request(
        target: EmbeddingTarget,
        request: String,
    ) -> Result<EmbeddingHttpRequest, Error> {
        embeddings::build_request(&target, &request)
    }

    fn parse_embeddings_response(
        target: EmbeddingTarget,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Embeddings, Error> {
        embeddings::parse_response(&target, status, &headers, &body)
    }
}

freeway_plugin_sdk::export_provider!(Gemini with_types_in freeway_plugin_sdk::provider);
freeway_plugin_sdk::export_embedder!(Gemini with_types_in freeway_plugin_sdk::embedder);
