//! The one HTTP client every upstream call goes through: keep-alive pooling, HTTPS via rustls
//! (webpki roots, HTTP/1.1 and HTTP/2 by ALPN), credential injection, and turning transport
//! failures into typed attempt errors.
//!
//! Credentials: an adapter's `http-request` says only *how* to authenticate; the key is added
//! here, after the plugin returned, so no plugin ever holds it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::error::AttemptError;
use crate::config::ApiKey;
use crate::plugins::bindings::adapter::{Auth, HttpRequest};
use crate::plugins::bindings::types::ErrorKind;

pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The upstream client: one connection pool per thread, so a request served on a worker
/// thread reuses connections whose tasks run on that same thread (see `server::workers`: a
/// pool shared between threads would wake another core for every read). The price: each
/// worker opens and keeps its own connections, so a provider sees up to one TLS handshake and
/// one idle pool per worker thread.
pub struct Upstream {
    connector: Connector,
    clients: thread_local::ThreadLocal<Client<Connector, Full<Bytes>>>,
}

/// A keep-alive HTTP/1.1 + HTTP/2 client with rustls and the webpki roots: the one way the
/// gateway reaches out, for upstreams and for trace export alike.
pub fn https_client<B>() -> anyhow::Result<Client<Connector, B>>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Ok(client_over(https_connector()?))
}

fn client_over<B>(connector: Connector) -> Client<Connector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// Plain TCP with TCP_NODELAY and keepalive, under rustls for `https://`.
fn https_connector() -> anyhow::Result<Connector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

impl Upstream {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            connector: https_connector()?,
            clients: thread_local::ThreadLocal::new(),
        })
    }

    /// This thread's client (and its pool), made on first use.
    fn client(&self) -> &Client<Connector, Full<Bytes>> {
        self.clients.get_or(|| client_over(self.connector.clone()))
    }

    /// Send an adapter-built request with the provider's key injected. Returns the response
    /// head and streaming body; the caller applies its own deadline.
    pub async fn send(
        &self,
        request: HttpRequest,
        key: Option<&ApiKey>,
    ) -> Result<hyper::Response<Incoming>, AttemptError> {
        let http_request = build(request, key)?;
        self.client()
            .request(http_request)
            .await
            .map_err(|e| transport_error(&e))
    }
}

fn build(
    request: HttpRequest,
    key: Option<&ApiKey>,
) -> Result<hyper::Request<Full<Bytes>>, AttemptError> {
    let bad = AttemptError::plugin;
    let mut url = request.url;
    if let Auth::Query(param) = &request.auth {
        let key = key.map(ApiKey::expose).unwrap_or_default();
        let sep = if url.contains('?') { '&' } else { '?' };
        url = format!("{url}{sep}{}={}", encode_query(param), encode_query(key));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| bad("the adapter built an invalid upstream URL".to_string()))?;
    let method = hyper::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        bad(format!(
            "the adapter built an invalid method {:?}",
            request.method
        ))
    })?;
    let mut builder = hyper::Request::builder().method(method).uri(uri);
    let headers = builder.headers_mut().expect("fresh builder has headers");
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("the adapter built an invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            bad(format!(
                "the adapter built an invalid value for header {name}"
            ))
        })?;
        headers.append(name, value);
    }
    if let Some(key) = key {
        let injected = match &request.auth {
            Auth::Bearer => Some((
                hyper::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {}", key.expose())),
            )),
            Auth::Header(name) => Some((
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    bad(format!(
                        "the adapter asked for an invalid auth header {name:?}"
                    ))
                })?,
                HeaderValue::from_str(key.expose()),
            )),
            Auth::None | Auth::Query(_) => None,
        };
        if let Some((name, value)) = injected {
            let mut value = value.map_err(|_| {
                AttemptError::gateway(
                    ErrorKind::Auth,
                    "the provider's API key contains characters not allowed in a header",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
    }
    builder
        .body(Full::new(Bytes::from(request.body)))
        .map_err(|e| bad(format!("the adapter built an invalid request: {e}")))
}

fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn transport_error(error: &hyper_util::client::legacy::Error) -> AttemptError {
    use std::error::Error as _;
    let mut detail = String::new();
    let mut not_http = false;
    let mut source = error.source();
    while let Some(cause) = source {
        detail = cause.to_string();
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            not_http |= hyper_error.is_parse() || hyper_error.is_parse_status();
        }
        source = cause.source();
    }
    if error.is_connect() {
        AttemptError::upstream(
            ErrorKind::Unavailable,
            format!("cannot connect to the upstream: {detail}"),
        )
    } else if not_http {
        // The upstream answered, but not in HTTP: a broken answer (502), not an outage.
        AttemptError::upstream(
            ErrorKind::InvalidResponse,
            format!("the upstream's answer is not valid HTTP: {detail}"),
        )
    } else {
        AttemptError::upstream(
            ErrorKind::Unavailable,
            format!("the upstream connection failed: {detail}"),
        )
    }
}
