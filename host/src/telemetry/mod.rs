//! Trace export over OTLP/HTTP: one span per request and a child per upstream attempt, with
//! the OpenTelemetry GenAI attributes (`gen_ai.operation.name`, `gen_ai.provider.name`,
//! `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.*`,
//! `gen_ai.response.finish_reasons`, `error.type`). This is also how Langfuse and similar
//! tools receive traces (`headers` carries their credentials).
//!
//! Spans are built after the fact from the request record — the one place a request is
//! accounted — so the request path does no tracing work beyond a non-blocking `try_send`.
//! The wire format is the `opentelemetry-proto` crate's messages (prost); the SDK's tracer
//! and batch processor are not used: they would record spans as the request runs, and their
//! export thread cannot drive the gateway's tokio/hyper client. A task batches spans (up to
//! 512, or every second) and posts them; a collector that is down costs dropped spans
//! (counted, logged once a minute), never a request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;
use tokio::sync::mpsc;

use crate::config::TelemetryConfig;
use crate::upstream::client::{Connector, https_client};
use hyper_util::client::legacy::Client;

const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const QUEUE: usize = 4096;

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
    Float(f64),
    Strs(Vec<String>),
}

/// One upstream attempt.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    pub provider: String,
    pub model: String,
    pub started: SystemTime,
    pub ended: SystemTime,
    /// What went wrong, when it did (e.g. `rate-limited`).
    pub error: Option<String>,
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct RequestSpan {
    pub name: String,
    pub started: SystemTime,
    pub ended: SystemTime,
    pub attributes: Vec<(&'static str, Attr)>,
    /// The error code, when the request failed.
    pub error: Option<String>,
    pub attempts: Vec<AttemptSpan>,
}

pub struct Telemetry {
    sender: Option<mpsc::Sender<RequestSpan>>,
    pub dropped: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Telemetry {
    pub fn disabled() -> Self {
        Telemetry {
            sender: None,
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    /// Start exporting to `config.otlp_endpoint` (off when it is unset).
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Self> {
        let Some(endpoint) = config.otlp_endpoint.clone() else {
            return Ok(Self::disabled());
        };
        let uri: hyper::Uri = endpoint
            .parse()
            .map_err(|e| anyhow::anyhow!("telemetry.otlp_endpoint {endpoint:?}: {e}"))?;
        let (sender, receiver) = mpsc::channel(QUEUE);
        let exporter = Exporter {
            client: https_client()?,
            uri,
            headers: config.headers.clone(),
            service: config.service_name.clone(),
        };
        tokio::spawn(exporter.run(receiver));
        tracing::info!(endpoint = %endpoint, "exporting traces over OTLP/HTTP");
        Ok(Telemetry {
            sender: Some(sender),
            dropped: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Queue a span without waiting; a full queue drops it (counted).
    pub fn record(&self, span: RequestSpan) {
        let Some(sender) = &self.sender else { return };
        if sender.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            warn_now_and_then(
                &self.last_warning,
                "trace queue full: spans are being dropped",
            );
        }
    }
}

fn warn_now_and_then(last: &Mutex<Option<Instant>>, message: &str) {
    if let Ok(mut last) = last.lock()
        && last.is_none_or(|at| at.elapsed() > Duration::from_secs(60))
    {
        *last = Some(Instant::now());
        tracing::warn!("{message}");
    }
}

struct Exporter {
    client: Client<Connector, Full<Bytes>>,
    uri: hyper::Uri,
    headers: Vec<(String, String)>,
    service: String,
}

impl Exporter {
    async fn run(self, mut receiver: mpsc::Receiver<RequestSpan>) {
        let last_warning = Mutex::new(None);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let Some(first) = receiver.recv().await else {
                return;
            };
            batch.push(first);
            let deadline = tokio::time::Instant::now() + FLUSH_EVERY;
            while batch.len() < BATCH {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(span)) => batch.push(span),
                    Ok(None) | Err(_) => break,
                }
            }
            let body = encode(&self.service, std::mem::take(&mut batch));
            if let Err(why) = self.post(body).await {
                warn_now_and_then(
                    &last_warning,
                    &format!("cannot export traces to {}: {why}", self.uri),
                );
            }
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let mut request =
            hyper::Request::post(self.uri.clone()).header("content-type", "application/x-protobuf");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| "no answer within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn key_value(key: &str, value: Attr) -> KeyValue {
    let value = match value {
        Attr::Str(s) => any_value::Value::StringValue(s),
        Attr::Int(i) => any_value::Value::IntValue(i),
        Attr::Float(f) => any_value::Value::DoubleValue(f),
        Attr::Strs(items) => {
            any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: items
                    .into_iter()
                    .map(|s| AnyValue {
                        value: Some(any_value::Value::StringValue(s)),
                    })
                    .collect(),
            })
        }
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn status(error: &Option<String>) -> Option<Status> {
    Some(match error {
        Some(message) => Status {
            message: message.clone(),
            code: status::StatusCode::Error as i32,
        },
        None => Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        },
    })
}

/// One OTLP export request for a batch of request spans.
fn encode(service: &str, batch: Vec<RequestSpan>) -> Vec<u8> {
    let mut spans = Vec::with_capacity(batch.len() * 2);
    for request in batch {
        let trace_id: [u8; 16] = rand::random();
        let span_id: [u8; 8] = rand::random();
        for attempt in request.attempts {
            let mut attributes = vec![
                key_value("gen_ai.operation.name", Attr::Str("chat".into())),
                key_value("gen_ai.provider.name", Attr::Str(attempt.provider.clone())),
                key_value("gen_ai.request.model", Attr::Str(attempt.model.clone())),
            ];
            if let Some(error) = &attempt.error {
                attributes.push(key_value("error.type", Attr::Str(error.clone())));
            }
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: rand::random::<[u8; 8]>().to_vec(),
                parent_span_id: span_id.to_vec(),
                name: format!("chat {}", attempt.model),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: nanos(attempt.started),
                end_time_unix_nano: nanos(attempt.ended),
                attributes,
                status: status(&attempt.error),
                ..Default::default()
            });
        }
        let mut attributes: Vec<KeyValue> = request
            .attributes
            .into_iter()
            .map(|(key, value)| key_value(key, value))
            .collect();
        if let Some(error) = &request.error {
            attributes.push(key_value("error.type", Attr::Str(error.clone())));
        }
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            name: request.name,
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: nanos(request.started),
            end_time_unix_nano: nanos(request.ended),
            attributes,
            status: status(&request.error),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value("service.name", Attr::Str(service.to_string()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "freeway".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}
