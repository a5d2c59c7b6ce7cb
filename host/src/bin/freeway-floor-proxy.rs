//! `freeway-floor-proxy`: the cheapest proxy Freeway's stack can be — the same threads (a
//! control runtime that accepts, `freeway::server::Workers` serving each connection on one
//! worker thread), the same hyper HTTP/1 server and the same hyper-util pooled client, one per
//! thread (no TLS on the way to a local upstream), the same allocator (mimalloc), and nothing
//! else: no JSON, no plugins, no state.
//! Each request is passed to the upstream as it came (method, path, headers, body streamed)
//! and the answer back the same way.
//!
//! ```text
//! freeway-floor-proxy UPSTREAM_PORT      (listens on 127.0.0.1, an ephemeral port)
//! ```
//! It prints `freeway-floor-proxy listening on http://127.0.0.1:PORT`. The benchmark
//! (`tests/bench/bench.py`) runs it as the `hyper proxy` row: what a request costs in this
//! runtime and these HTTP libraries before any gateway work, so the distance between it and
//! nginx is the stack's and the distance between it and Freeway is the gateway's. It is a
//! benchmark tool, not a product: it has no limits, deadlines or error dialect.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use freeway::config::DEFAULT_IDLE_SPIN;
use freeway::metrics::Metrics;
use freeway::server::Workers;

type Body = BoxBody<Bytes, hyper::Error>;

/// The same allocator as `freeway` (see its `main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let Some(upstream_port) = std::env::args().nth(1).and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: freeway-floor-proxy UPSTREAM_PORT");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("freeway-floor-proxy: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(upstream_port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("freeway-floor-proxy: {error}");
            ExitCode::from(1)
        }
    }
}

async fn serve(upstream_port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    println!(
        "freeway-floor-proxy listening on http://{}",
        listener.local_addr()?
    );
    let workers =
        Workers::start(0, DEFAULT_IDLE_SPIN, &Metrics::new()).map_err(std::io::Error::other)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        workers.dispatch(stream, move |stream| async move {
            let client = CLIENT.with(|client| client.clone());
            let service =
                service_fn(move |request| forward(client.clone(), upstream_port, request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

thread_local! {
    /// Each worker thread's own pool, as Freeway's `upstream::Upstream` keeps.
    static CLIENT: Client<HttpConnector, Incoming> = {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector)
    };
}

async fn forward(
    client: Client<HttpConnector, Incoming>,
    upstream_port: u16,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("http://127.0.0.1:{upstream_port}{path}");
    parts.uri = match uri.parse::<Uri>() {
        Ok(uri) => uri,
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(answer) => Ok(answer.map(BodyExt::boxed)),
        Err(_) => Ok(status(StatusCode::BAD_GATEWAY)),
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::new())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = code;
    response
}
