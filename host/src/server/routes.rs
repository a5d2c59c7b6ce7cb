//! The URL table: which handler answers which method and path on which listener. One line
//! per endpoint; everything else is a 404 or 405 in OpenAI's error shape. Anthropic's
//! `/v1/messages` paths answer every error, a refused key included, in Anthropic's shape.

use std::sync::atomic::{AtomicU64, Ordering};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::admin;
use crate::api::{self, chat::ChatCompletions, messages, openai::error_response};
use crate::error::GatewayError;
use crate::http::{ResponseBody, json_response};

use super::auth::authenticate;
use super::{Handlers, Role};

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Unique per process and start: a random prefix fixed at first use, then a counter.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!(
        "fw-{prefix:08x}{:010x}",
        REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The client's own `x-request-id` when it is short printable ASCII, else a new one.
fn request_id(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

pub async fn route(
    handlers: &Handlers,
    role: Role,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let gateway = &handlers.gateway;
    let path = request.uri().path().trim_end_matches('/');
    // The admin listener serves the admin API (and /healthz); the public one only when
    // `admin.on_public_listener` is on — read from the live config, so a reload that turns
    // it off takes effect at once.
    let admin = match role {
        Role::Admin => request.uri().path() != "/healthz",
        Role::Public => {
            request.uri().path().starts_with("/admin/")
                && gateway.snapshot.load().config.admin.on_public_listener
        }
    };
    if admin {
        return admin::handle(gateway, &handlers.reloader, request).await;
    }
    let id = request_id(&request);
    let anthropic = path.starts_with("/v1/messages");
    let caller = if path == "/healthz" {
        None
    } else {
        match authenticate(gateway, request.headers()) {
            Ok(key) => key,
            Err(error) if anthropic => return messages::error_response(&error, &id),
            Err(error) => return error_response(&error, &id),
        }
    };
    match (request.method(), path) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => {
            api::serve(ChatCompletions, gateway, request, id, caller).await
        }
        (&Method::POST, "/v1/responses" | "/responses") => {
            let dialect = api::responses::Responses::default();
            api::serve(dialect, gateway, request, id, caller).await
        }
        (&Method::POST, "/v1/embeddings" | "/embeddings") => {
            let dialect = api::embeddings::Embeddings::default();
            api::serve(dialect, gateway, request, id, caller).await
        }
        (&Method::POST, "/v1/messages") => {
            api::serve(messages::Messages::default(), gateway, request, id, caller).await
        }
        (&Method::POST, "/v1/messages/count_tokens") => {
            messages::count_tokens(gateway, request, &id).await
        }
        (&Method::GET, "/v1/models" | "/models") => api::models::list(gateway),
        (&Method::GET, "/healthz") if handlers.is_draining() => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"status": "draining"}),
        ),
        (&Method::GET, "/healthz") => {
            json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
        }
        (_, "/v1/messages" | "/v1/messages/count_tokens") => {
            let error = GatewayError::MethodNotAllowed {
                method: request.method().to_string(),
                path: path.to_string(),
            };
            messages::error_response(&error, &id)
        }
        (
            _,
            "/v1/chat/completions"
            | "/chat/completions"
            | "/v1/responses"
            | "/responses"
            | "/v1/embeddings"
            | "/embeddings"
            | "/v1/models"
            | "/models"
            | "/healthz",
        ) => {
            let error = GatewayError::MethodNotAllowed {
                method: request.method().to_string(),
                path: path.to_string(),
            };
            error_response(&error, &id)
        }
        _ => {
            let error = GatewayError::UnknownUrl {
                scope: "request",
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
            };
            error_response(&error, &id)
        }
    }
}
