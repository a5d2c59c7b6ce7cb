//! The listeners: the accept loop (on the control runtime), which hands each connection to a
//! request worker (`workers`: a single-threaded runtime per core) where hyper serves it with
//! its timeouts (`server.header_read_timeout_ms` for a request head; a request body's
//! deadlines are applied where it is read, in `api`); graceful drain on shutdown; and the
//! handlers every connection shares. What each URL does is in `routes`; who may call is in
//! `auth`. Nothing below this layer imports it.

mod auth;
mod routes;
mod spin;
mod workers;

pub use workers::Workers;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
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
    /// Set at SIGTERM: `/healthz` answers 503 so load balancers stop sending.
    pub draining: std::sync::atomic::AtomicBool,
}

impl Handlers {
    pub fn new(gateway: Arc<Gateway>, reloader: Arc<Reloader>) -> Self {
        Handlers {
            gateway,
            reloader,
            draining: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Accept connections until `shutdown` resolves, then let in-flight requests and streams
/// finish, for up to `server.drain_timeout_s`.
pub async fn serve(
    handlers: Arc<Handlers>,
    listener: TcpListener,
    role: Role,
    workers: Arc<Workers>,
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
                let watcher = graceful.watcher();
                workers.dispatch(stream, move |stream| {
                    serve_connection(handlers, role, stream, header_read, watcher)
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = handlers.gateway.snapshot.load().config.drain_timeout;
    if matches!(role, Role::Public) {
        tracing::info!(
            "shutting down: no new connections; waiting up to {} s for in-flight requests",
            grace.as_secs()
        );
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => tracing::warn!(
            "requests still in flight after {} s (server.drain_timeout_s); exiting",
            grace.as_secs()
        ),
    }
    Ok(())
}

/// One connection, served to its end on the worker thread it was given to.
async fn serve_connection(
    handlers: Arc<Handlers>,
    role: Role,
    stream: tokio::net::TcpStream,
    header_read: Duration,
    watcher: Watcher,
) {
    let service = service_fn(move |request| {
        let handlers = handlers.clone();
        async move {
            let mut response = routes::route(&handlers, role, request).await;
            // Draining: every answer closes its connection, so clients and
            // balancers stop reusing connections before the listener closes (a
            // request sent on an idle connection as it is closed would fail).
            if handlers.is_draining() {
                response
                    .headers_mut()
                    .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!("connection ended with an error: {error}");
    }
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}
