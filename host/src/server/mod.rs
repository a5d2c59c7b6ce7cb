//! The public HTTP listener: hyper accept loop, routes, request-size limit, and the response
//! body types (whole bodies and channel-fed SSE streams). Every answer that is not a success is
//! an OpenAI-shaped error; nothing here panics on input.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::admin;
use crate::config::GatewayKey;
use crate::openai::ApiError;
use crate::pipeline::{Gateway, error_response, model_ids};
use crate::reload::Reloader;

pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub fn full_body(bytes: Bytes) -> ResponseBody {
    ResponseBody::new(Full::new(bytes))
}

/// A response body fed by a channel: each message is one SSE frame, sent as it arrives.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        Self { rx }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

fn request_id() -> String {
    // Unique per process and start: a random prefix fixed at first use, then a counter.
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!(
        "fw-{prefix:08x}{:010x}",
        REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The OpenAI-compatible API, plus `/admin/*` while `admin.on_public_listener` is on.
    Public,
    /// Only `/admin/*` and `/healthz`.
    Admin,
}

/// Everything a request handler may need.
pub struct Services {
    pub gateway: Arc<Gateway>,
    pub reloader: Arc<Reloader>,
}

/// Accept connections until `shutdown` resolves, then let in-flight requests finish (up to
/// a grace period).
pub async fn serve(
    services: Arc<Services>,
    listener: TcpListener,
    role: Role,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let services = services.clone();
                let service = service_fn(move |request| {
                    let services = services.clone();
                    async move { Ok::<_, Infallible>(route(services, role, request).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!("connection ended with an error: {error}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("in-flight requests still running after 10 s; exiting"),
    }
    Ok(())
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

async fn route(
    services: Arc<Services>,
    role: Role,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let is_admin_path = request.uri().path().starts_with("/admin/");
    match role {
        Role::Admin if request.uri().path() != "/healthz" => {
            return admin::handle(&services.gateway, &services.reloader, request).await;
        }
        // Read from the live config, so a reload that turns this off takes effect at once.
        Role::Public
            if is_admin_path
                && services
                    .gateway
                    .snapshot
                    .load()
                    .config
                    .admin
                    .on_public_listener =>
        {
            return admin::handle(&services.gateway, &services.reloader, request).await;
        }
        _ => {}
    }
    let gateway = services.gateway.clone();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(request_id);
    let path = request.uri().path().trim_end_matches('/');
    // Gateway keys: when configured, every API route but /healthz needs one, and each key has
    // its daily allowance.
    let mut caller = None;
    if path != "/healthz" {
        match authenticate(&gateway, request.headers()) {
            Ok(key) => caller = key,
            Err(error) => return error_response(&error, &id),
        }
    }
    match (request.method(), path) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => {
            let max = gateway.snapshot.load().config.max_body_bytes;
            let (parts, body) = request.into_parts();
            if let Some(length) = parts
                .headers
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                && length > max
            {
                return error_response(&too_large(max), &id);
            }
            let bytes = match Limited::new(body, max).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    if error
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        return error_response(&too_large(max), &id);
                    }
                    let error = ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_body",
                        format!("the request body could not be read: {error}"),
                    );
                    return error_response(&error, &id);
                }
            };
            if let Some(key) = &caller
                && let Err((cap, wait)) = gateway.key_usage.admit(key)
            {
                let error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "daily_cap_reached",
                    format!("the key '{}' has used its daily allowance of {cap}; it resets at 00:00 UTC", key.name),
                )
                .with_retry_after(Some(wait));
                return error_response(&error, &id);
            }
            gateway
                .chat_completions(&parts.headers, bytes, id, caller.map(|k| k.name))
                .await
        }
        (&Method::GET, "/v1/models" | "/models") => {
            let snapshot = gateway.snapshot.load();
            let data: Vec<serde_json::Value> = model_ids(&snapshot.config)
                .into_iter()
                .map(|id| serde_json::json!({"id": id, "object": "model", "created": 0, "owned_by": "freeway"}))
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"object": "list", "data": data}),
            )
        }
        (&Method::GET, "/healthz") => json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        (
            _,
            "/v1/chat/completions" | "/chat/completions" | "/v1/models" | "/models" | "/healthz",
        ) => {
            let error = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed on {path}", request.method()),
            );
            error_response(&error, &id)
        }
        _ => {
            let error = ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_url",
                format!(
                    "unknown request URL: {} {}",
                    request.method(),
                    request.uri().path()
                ),
            );
            error_response(&error, &id)
        }
    }
}

/// The gateway key the request presents (None when no keys are configured).
fn authenticate(
    gateway: &Gateway,
    headers: &hyper::HeaderMap,
) -> Result<Option<GatewayKey>, ApiError> {
    let snapshot = gateway.snapshot.load();
    let keys = &snapshot.config.gateway_keys;
    if keys.is_empty() {
        return Ok(None);
    }
    let presented = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .unwrap_or_default();
    let Some(key) = keys.iter().find(|k| {
        let expected = k.key.expose().as_bytes();
        presented.len() == expected.len()
            && presented
                .bytes()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Incorrect API key provided: pass one of this gateway's keys as `Authorization: Bearer <key>`",
        ));
    };
    Ok(Some(key.clone()))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("the request body is larger than this gateway's limit of {max} bytes"),
    )
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    let mut response = Response::new(full_body(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
