//! The listeners: hyper's accept loop with its timeouts (`server.header_read_timeout_ms`
//! for a request head; a request body's deadlines are applied where it is read, in `api`), graceful drain on shutdown, and the
//! handlers every connection shares. What each URL does is in `routes`; who may call is in
//! `auth`. Nothing below this layer imports it.

mod auth;
mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::pipeline::Gateway;
use crate::reload::Reloader;

/// What a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The OpenAI-compatible API, plus `/admin/*` while `admin.on_public_listener` is on.
    Public,
    /// Only `/admin/*` and `/healthz`.
    Admin,
}

/// What request handlers reach: the gateway and the reloader the admin API triggers.
pub struct Handlers {
    pub gateway: Arc<Gateway>,
    pub reloader: Arc<Reloader>,
}

/// Accept connections until `shutdown` resolves, then let in-flight requests finish (up to
/// a grace period).
pub async fn serve(
    handlers: Arc<Handlers>,
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
                // Read per connection from the live config, so a reload changes it.
                let header_read = handlers.gateway.snapshot.load().config.deadlines.header_read;
                let handlers = handlers.clone();
                let service = service_fn(move |request| {
                    let handlers = handlers.clone();
                    async move { Ok::<_, Infallible>(routes::route(&handlers, role, request).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_read)
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
