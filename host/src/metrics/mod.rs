//! Prometheus metrics, on the `prometheus` crate: the families the gateway keeps, fed by the
//! request record as each request finishes, by the reloader, and — for gauges that describe
//! the present (target state, plugin counters, the ledger's queue) — filled in at scrape time
//! by whoever renders them. Labels are bounded: public model names the config knows (an
//! unknown name is `(unknown)`), provider names, status classes.

use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: 5 ms to 2 minutes, LLM calls being slow and long-tailed.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub outcomes: IntCounterVec,
    pub duration: HistogramVec,
    pub ttft: HistogramVec,
    pub tokens: IntCounterVec,
    /// Inputs embedded (one per string or token array of `POST /v1/embeddings`).
    pub embedding_inputs: IntCounterVec,
    pub cost: CounterVec,
    pub reloads: IntCounterVec,
    pub target_cooldown: GaugeVec,
    pub target_breaker_open: GaugeVec,
    pub target_remaining_requests: GaugeVec,
    pub target_remaining_tokens: GaugeVec,
    pub quota_used: GaugeVec,
    pub target_in_flight: GaugeVec,
    pub plugin_calls: IntCounterVec,
    pub plugin_faults: IntCounterVec,
    pub plugin_quarantines: IntCounterVec,
    pub plugin_quarantined: GaugeVec,
    pub ledger_queue_depth: IntGauge,
    pub ledger_written: IntCounter,
    pub ledger_dropped: IntCounter,
    pub redis_up: IntGauge,
    pub redis_fallbacks: IntCounter,
    pub cache: IntCounterVec,
    pub queue_depth: GaugeVec,
    pub queue_wait: HistogramVec,
    pub hedges: IntCounterVec,
    /// Kept by the request workers themselves (`server::Workers` balances on it).
    pub worker_connections: IntGaugeVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are fixed and distinct: registration cannot collide.
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let histogram = |name: &str, help: &str| {
            register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(SECONDS.to_vec()),
                    &["model", "provider"],
                )
                .expect("valid metric"),
            )
        };
        let int_gauge =
            |name: &str, help: &str| register(r, IntGauge::new(name, help).expect("valid metric"));
        let int_counter = |name: &str, help: &str| {
            register(r, IntCounter::new(name, help).expect("valid metric"))
        };
        let target = &["provider", "model"];
        Metrics {
            requests: counter(
                "freeway_requests_total",
                "Requests finished, by public model, serving provider and status class.",
                &["model", "provider", "status_class"],
            ),
            outcomes: counter(
                "freeway_request_failures_total",
                "Requests that did not end in a full answer, by why (the error's label, or interrupted).",
                &["outcome"],
            ),
            duration: histogram(
                "freeway_request_duration_seconds",
                "Time from request to the last byte of the answer.",
            ),
            ttft: histogram("freeway_ttft_seconds", "Time to the first streamed chunk."),
            tokens: counter(
                "freeway_tokens_total",
                "Tokens the upstreams reported, by kind (prompt, completion).",
                &["model", "provider", "kind"],
            ),
            embedding_inputs: counter(
                "freeway_embedding_inputs_total",
                "Inputs embedded by served embeddings requests, by public model and provider.",
                &["model", "provider"],
            ),
            cost: register(
                r,
                CounterVec::new(
                    Opts::new(
                        "freeway_cost_usd_total",
                        "Cost at the catalog's prices, USD.",
                    ),
                    &["model", "provider"],
                )
                .expect("valid metric"),
            ),
            reloads: counter(
                "freeway_reloads_total",
                "Reloads, by result (ok, refused).",
                &["result"],
            ),
            target_cooldown: gauge(
                "freeway_target_cooldown_seconds",
                "Seconds a target still waits before it is tried again.",
                target,
            ),
            target_breaker_open: gauge(
                "freeway_target_breaker_open",
                "1 while a target is out of the pool (breaker open, key refused, health failing).",
                target,
            ),
            target_remaining_requests: gauge(
                "freeway_target_remaining_requests",
                "Requests a target has left (buckets and what the upstream reported).",
                target,
            ),
            target_remaining_tokens: gauge(
                "freeway_target_remaining_tokens",
                "Tokens a target has left.",
                target,
            ),
            quota_used: gauge(
                "freeway_quota_used_ratio",
                "Share of the daily free allowance used (catalog rpd/tpd).",
                target,
            ),
            target_in_flight: gauge(
                "freeway_target_in_flight",
                "Requests in flight to a target.",
                target,
            ),
            plugin_calls: counter(
                "freeway_plugin_calls_total",
                "Calls into a plugin since it was loaded.",
                &["plugin"],
            ),
            plugin_faults: counter(
                "freeway_plugin_faults_total",
                "Faults (traps, timeouts, memory) of a plugin since it was loaded.",
                &["plugin"],
            ),
            plugin_quarantines: counter(
                "freeway_plugin_quarantines_total",
                "Times a plugin was quarantined after repeated faults since it was loaded.",
                &["plugin"],
            ),
            plugin_quarantined: gauge(
                "freeway_plugin_quarantined",
                "1 while a plugin is quarantined (its calls refused without running it).",
                &["plugin"],
            ),
            ledger_queue_depth: int_gauge(
                "freeway_ledger_queue_depth",
                "Ledger rows waiting to be written.",
            ),
            ledger_written: int_counter("freeway_ledger_written_total", "Ledger rows written."),
            ledger_dropped: int_counter(
                "freeway_ledger_dropped_total",
                "Ledger rows lost (queue full, or the store refused them until shutdown).",
            ),
            redis_up: int_gauge(
                "freeway_state_redis_up",
                "1 while shared state is on Redis and Redis answers; 0 while on local state.",
            ),
            redis_fallbacks: int_counter(
                "freeway_state_fallbacks_total",
                "Times this instance fell back from Redis to local state.",
            ),
            cache: counter(
                "freeway_cache_requests_total",
                "Requests the response cache saw, by result (hit, miss, bypass).",
                &["result"],
            ),
            queue_depth: gauge(
                "freeway_queue_depth",
                "Requests waiting for a target of a model to have capacity (queue_wait_ms).",
                &["model"],
            ),
            queue_wait: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "freeway_queue_wait_seconds",
                        "Time requests spent waiting for capacity, served or not.",
                    )
                    .buckets(SECONDS.to_vec()),
                    &["model"],
                )
                .expect("valid metric"),
            ),
            hedges: counter(
                "freeway_hedges_total",
                "Hedged attempts, by result: started, won (answered first), over_budget (not started).",
                &["model", "result"],
            ),
            worker_connections: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "freeway_worker_connections",
                        "Client connections each request worker thread serves now.",
                    ),
                    &["worker"],
                )
                .expect("valid metric"),
            ),
            registry,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Bring a counter up to a running total kept elsewhere (an atomic the hot path bumps).
/// A total lower than the counter means its source started over (a reloaded plugin): the
/// series restarts too, which Prometheus' `rate` reads as a counter reset.
pub fn sync_counter(counter: &IntCounterVec, labels: &[&str], total: u64) {
    let current = counter.with_label_values(labels);
    let seen = current.get();
    if total < seen {
        let _ = counter.remove_label_values(labels);
        counter.with_label_values(labels).inc_by(total);
    } else {
        current.inc_by(total - seen);
    }
}

/// "2xx", "4xx", "5xx".
pub fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
