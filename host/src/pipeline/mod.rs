//! One request from its canonical form to an answer: filters (in configured order) → router
//! (ordered candidates) → for each candidate until one succeeds, one upstream attempt → the
//! answer, whole or streamed, through the response filters. Streams commit to a target only
//! once its first chunk is decoded, so a target that fails before that is skipped like any
//! other; after that, a failure ends the stream with an error event.
//!
//! The pipeline speaks no wire dialect: it takes a [`Decoded`] request and gives back an
//! [`Answer`] (a canonical body, or a channel of [`StreamEvent`]s) or a [`Failed`] with a
//! typed error; `api/` turns those into bytes. Every request ends in its
//! [`record::RequestRecord`], finished once.
//!
//! Files, in the order a request meets them: `canonical` (what a request is), `resolve`
//! (public model → route), `filters`, `embeddings` (what differs for an embeddings request),
//! `order` (router call), `judge` (a judging router's question), `failover` (the attempt
//! loop), `attempts` (one pass over the targets, hedged), `fit` (context fitting per target),
//! `escalate` (answers worth retrying elsewhere), `hedge` (the hedge budget), `queue` (waiting
//! for capacity), `streaming` (targets that cannot stream, or only stream), `relay` (a
//! committed stream), `answer` (what is read from an answer in passing: size, text for the
//! content log, cached tokens, finish reasons), `route_log` (the explanation and the final
//! error), `record` (the accounting); `side_call` runs the model calls the gateway makes for a request (judge,
//! summary) through itself; `health` runs beside them.

mod answer;
mod assemble;
mod attempts;
mod cached;
pub mod caller;
pub mod canonical;
mod context;
pub mod embeddings;
mod escalate;
mod failover;
mod filters;
pub mod fit;
pub mod health;
mod hedge;
mod judge;
mod order;
pub mod queue;
pub mod record;
mod relay;
pub mod resolve;
pub mod route_log;
pub mod side_call;
mod streaming;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::cache::{CacheStatus, Directives, Plan, ResponseCache};
use crate::config::{Config, LogContent, TargetRef};
use crate::error::GatewayError;
use crate::events::Feed;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::plugins::{PluginSet, Runtime};
use crate::state::memory::MemoryQuotas;
use crate::state::redis::RedisLink;
use crate::state::{Caller, KeyRing, SharedState, Targets};
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::upstream::Upstream;

use canonical::ChatRequestInfo;
use context::RequestContext;
use failover::Committed;
use hedge::HedgeBudgets;
use queue::WaitingRoom;
use record::{Outcome, RequestRecord};
use streaming::StreamFacts;

/// What a request is served from: one consistent config and plugin set. Swapped whole on
/// reload; a request keeps the snapshot it started with.
pub struct Snapshot {
    pub config: Config,
    pub plugins: PluginSet,
    pub loaded_at: SystemTime,
    /// What targets' refusals taught this snapshot about their streaming.
    pub learned: StreamFacts,
}

impl Snapshot {
    pub fn new(config: Config, plugins: PluginSet) -> Self {
        Snapshot {
            config,
            plugins,
            loaded_at: SystemTime::now(),
            learned: StreamFacts::default(),
        }
    }
}

/// The request-serving engine and everything it shares between requests.
pub struct Gateway {
    pub snapshot: ArcSwap<Snapshot>,
    pub upstream: Upstream,
    /// Every target's live state (shared quotas and per-instance health).
    pub targets: Targets,
    /// Stores several instances would share: quotas (inside `targets`), sessions, key usage.
    pub shared: SharedState,
    pub runtime: Arc<Runtime>,
    /// Every key a client may present.
    pub keys: KeyRing,
    /// The durable store, unless the config keeps everything in memory.
    pub store: Option<Store>,
    pub ledger: Ledger,
    pub metrics: Metrics,
    /// The quota state a SQLite store saves and restores.
    pub saved_quotas: Option<Arc<MemoryQuotas>>,
    pub telemetry: Telemetry,
    /// The link to Redis, when shared state lives there.
    pub redis: Option<Arc<RedisLink>>,
    /// Answers to deterministic requests.
    pub cache: ResponseCache,
    /// Finished requests and reloads, for the dashboard.
    pub feed: Feed,
    /// Requests waiting for capacity, one line per model.
    pub waiting_room: WaitingRoom,
    /// How many hedged attempts each model may still start.
    hedge_budgets: HedgeBudgets,
    /// Answers of judge and summary calls, by what they asked.
    pub side_answers: side_call::SideAnswers,
}

impl Gateway {
    pub fn new(
        runtime: Arc<Runtime>,
        snapshot: Snapshot,
        shared: SharedState,
        store: Option<Store>,
        ledger: Ledger,
        redis: Option<Arc<RedisLink>>,
    ) -> anyhow::Result<Self> {
        let cache = ResponseCache::new(&snapshot.config.cache, redis.clone());
        Ok(Gateway {
            snapshot: ArcSwap::from_pointee(snapshot),
            upstream: Upstream::new()?,
            targets: Targets::new(shared.quotas.clone()),
            shared,
            runtime,
            keys: KeyRing::default(),
            store,
            ledger,
            metrics: Metrics::new(),
            saved_quotas: None,
            telemetry: Telemetry::disabled(),
            redis,
            cache,
            feed: Feed::default(),
            waiting_room: WaitingRoom::default(),
            hedge_budgets: HedgeBudgets::default(),
            side_answers: side_call::SideAnswers::default(),
        })
    }
}

/// Who asked, and when: known before the body is read.
pub struct RequestMeta {
    pub id: String,
    /// The gateway key, when keys are configured.
    pub caller: Option<Arc<Caller>>,
    pub started: Instant,
}

/// A request an inbound dialect decoded into the canonical form.
pub struct Decoded {
    /// An OpenAI chat-completions body.
    pub body: Bytes,
    pub info: ChatRequestInfo,
    /// Routing labels the client sent (`x-freeway-tags`).
    pub tags: Vec<String>,
    /// The client's sticky-session key (`x-freeway-session`).
    pub session: Option<String>,
    /// The priority the client asks for (`x-freeway-priority`), capped by its key's.
    pub priority: Option<u8>,
    /// What the client says about caching (`x-freeway-cache`, `cache-control`).
    pub cache: Directives,
}

/// Part of a streamed answer, in canonical form (an OpenAI `chat.completion.chunk` JSON).
#[derive(Debug)]
pub enum StreamEvent {
    Chunk(String),
    /// The stream completed.
    End,
    /// The stream broke after it was committed; nothing follows.
    Error(GatewayError),
}

/// Which target served, and how it was chosen (the `x-freeway-*` headers).
pub struct Served {
    pub request_id: String,
    pub target: TargetRef,
    pub attempts: usize,
    pub route: String,
    /// What the response cache did (`x-freeway-cache`), and the age of a cached answer.
    pub cache: CacheStatus,
    pub age_s: Option<u64>,
    /// What context fitting left out of the request the target got (`x-freeway-fit`).
    pub fit: Option<String>,
}

pub enum Answer {
    Json {
        served: Served,
        body: String,
    },
    Stream {
        served: Served,
        events: mpsc::Receiver<StreamEvent>,
    },
}

/// A request that failed before anything was committed.
pub struct Failed {
    pub request_id: String,
    pub error: GatewayError,
    /// The route explanation, when any target was attempted.
    pub route: Option<String>,
}

impl Gateway {
    /// Serve one chat request. `decoded` is the dialect's verdict on the body: a decoding
    /// error is recorded and answered like any other failure.
    pub async fn chat(
        self: &Arc<Self>,
        meta: RequestMeta,
        decoded: Result<Decoded, GatewayError>,
    ) -> Result<Answer, Failed> {
        self.chat_as(meta, decoded, None).await
    }

    /// Serve a chat request, or, with `side_call`, a model call the gateway makes on another
    /// request's behalf (which is never judged or summarized itself).
    async fn chat_as(
        self: &Arc<Self>,
        meta: RequestMeta,
        decoded: Result<Decoded, GatewayError>,
        side_call: Option<side_call::SideCall>,
    ) -> Result<Answer, Failed> {
        let mut record = RequestRecord::start(meta.id, meta.caller, meta.started);
        record.arm(self);
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(error) => return Err(self.fail(record, error).await),
        };
        record.model = decoded.info.model.clone();
        record.operation = decoded.info.operation;
        record.stream = decoded.info.stream;
        record.messages = decoded.info.messages;
        if let Some(caller) = record.caller.clone()
            && let Err(error) = self.admit_caller(&caller, &decoded.info.model).await
        {
            return Err(self.fail(record, error).await);
        }
        let mut tags = decoded.tags;
        if let Some(key_tags) = record.caller.as_ref().and_then(|c| c.limits.tags.as_ref()) {
            for tag in key_tags {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
        }
        if decoded
            .info
            .metadata
            .iter()
            .any(|(k, v)| k == "sensitive" && v == "true")
        {
            tags.push("sensitive".into());
        }
        let snapshot = self.snapshot.load_full();
        let deadline =
            tokio::time::Instant::from_std(record.started + snapshot.config.deadlines.request);
        let mut ctx = RequestContext {
            info: decoded.info,
            tags,
            session: decoded.session,
            priority: queue::priority(
                decoded.priority,
                record.caller.as_ref().and_then(|c| c.limits.priority),
            ),
            log_content: LogContent::None,
            cache_directives: decoded.cache,
            cache: Plan::off(),
            record,
            deadline,
            side_call,
        };
        let committed = self.failover(&snapshot, &mut ctx, decoded.body).await;
        match committed {
            Err(error) => Err(self.fail(ctx.record, error).await),
            Ok(Committed::Cached(hit)) => Ok(self.serve_cached(ctx, *hit).await),
            Ok(Committed::Json {
                target,
                completion,
                filters,
            }) => {
                let body = completion.body;
                ctx.record.answer_bytes = body.len();
                ctx.record.cached_tokens = answer::cached_tokens(&body);
                if self.telemetry.enabled() {
                    ctx.record.finish_reasons = answer::finish_reasons(&body);
                }
                if ctx.log_content.answers() {
                    ctx.record.answer_text = Some(body.clone());
                }
                let info = ctx.guard_info();
                // Response filters judge answer text; vectors have none.
                let filtered = match ctx.info.operation {
                    canonical::Operation::Chat => filters::on_response(&filters, &info, body).await,
                    canonical::Operation::Embeddings => Ok(body),
                };
                match filtered {
                    Ok(body) => {
                        self.store_answer(&ctx, &target, body.clone());
                        let served = served(&ctx.record, target);
                        self.finish(ctx.record).await;
                        Ok(Answer::Json { served, body })
                    }
                    Err(error) => Err(self.fail(ctx.record, error).await),
                }
            }
            Ok(Committed::Stream(stream)) => {
                let served = served(&ctx.record, stream.target.clone());
                let (tx, rx) = mpsc::channel(32);
                let relay = relay::Relay::new(self.clone(), ctx, *stream, &snapshot.config);
                tokio::spawn(relay.run(tx));
                Ok(Answer::Stream { served, events: rx })
            }
        }
    }

    async fn fail(&self, mut record: RequestRecord, error: GatewayError) -> Failed {
        let route = (record.route.attempts() > 0).then(|| record.route.header_value());
        let request_id = record.id.clone();
        record.outcome = Outcome::Failed(error.clone());
        self.finish(record).await;
        Failed {
            request_id,
            error,
            route,
        }
    }

    async fn finish(&self, record: RequestRecord) {
        record.finish(self).await;
    }
}

fn served(record: &RequestRecord, target: TargetRef) -> Served {
    Served {
        request_id: record.id.clone(),
        target,
        attempts: record.route.attempts(),
        route: record.route.header_value(),
        cache: record.cache,
        age_s: None,
        fit: record.fit.clone(),
    }
}
