//! The response cache: exact-match answers to deterministic requests, so a repeated question
//! costs no upstream call, no free-tier quota and no money.
//!
//! **What may be cached** is decided per request by [`plan`]: the model's `cache` policy
//! (`auto` answers `temperature: 0` requests, `always` every request, `never` none), the
//! client's `x-freeway-cache: use | skip`, and its `cache-control` (`no-store`: neither read
//! nor write; `no-cache`: do not read, store the fresh answer; `max-age=N`: only an answer at
//! most N seconds old).
//!
//! **What a key is made of**: the request as the provider would see it (after request
//! filters), with `stream` and `stream_options` removed — a streamed and a plain request share
//! one answer, replayed in whichever form the client asked for — its keys sorted; the public
//! model; the caller's scope (its gateway key unless `cache.scope = "shared"`); and the
//! model's targets and its filters' code and settings, so a reload that changes where answers
//! come from or how requests are filtered starts afresh (and instances with the same model
//! configuration share answers).
//! SHA-256 of all of it.
//!
//! **Where answers live**: in this process (`moka`, bounded by bytes, expiring after the TTL),
//! and in Redis as well when `state.redis_url` is set, so instances share them. Redis is read
//! only on a local miss, written off the request path, and its outages are the link's (the
//! request just misses).

mod directives;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{CacheBackend, CacheConfig, CachePolicy, CacheScope};
use crate::state::redis::RedisLink;

pub use directives::{ClientChoice, Directives};

/// Answers larger than this are not cached (nor assembled from a stream).
pub const MAX_ENTRY_BYTES: usize = 1024 * 1024;

/// What the cache did for a request (the `x-freeway-cache` header, metrics, the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// The cache is turned off: no header.
    Off,
    /// The request may not be cached.
    Bypass,
    /// Looked up (or refreshed) and not found: the answer will be stored.
    Miss,
    Hit,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Off => "off",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Miss => "miss",
            CacheStatus::Hit => "hit",
        }
    }
}

/// A cached answer: the canonical `chat.completion` the client was sent, and who wrote it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub body: String,
    pub provider: String,
    pub model: String,
    /// Milliseconds since the epoch.
    pub stored_at_ms: u64,
}

impl Entry {
    pub fn new(body: String, provider: String, model: String) -> Self {
        Entry {
            body,
            provider,
            model,
            stored_at_ms: unix_ms(SystemTime::now()),
        }
    }

    /// Whole seconds since the answer was stored.
    pub fn age_s(&self, now: SystemTime) -> u64 {
        unix_ms(now).saturating_sub(self.stored_at_ms) / 1000
    }
}

/// The cache's decision for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub status: CacheStatus,
    key: Option<[u8; 32]>,
    /// Whether a stored answer may be served (false for `no-cache`: store only).
    read: bool,
    /// The oldest answer the client accepts, and the TTL.
    max_age: Duration,
}

impl Plan {
    pub fn off() -> Self {
        Plan {
            status: CacheStatus::Off,
            key: None,
            read: false,
            max_age: Duration::ZERO,
        }
    }

    fn bypass() -> Self {
        Plan {
            status: CacheStatus::Bypass,
            ..Plan::off()
        }
    }

    /// Whether the answer to this request should be stored.
    pub fn stores(&self) -> bool {
        self.key.is_some() && self.status == CacheStatus::Miss
    }
}

/// What identifies a request's answer besides its body.
pub struct KeyParts<'a> {
    pub model: &'a str,
    /// The caller's gateway key name, if any.
    pub caller: Option<&'a str>,
    /// What else shapes the answer: the model's targets, its filters' code and settings.
    pub namespace: &'a str,
}

/// The plan of a request the cache must not touch (off, or not cacheable), known from cheap
/// facts before any key is built; `None` when the request may be cached.
pub fn not_cached(
    config: &CacheConfig,
    policy: CachePolicy,
    temperature: Option<f64>,
    directives: &Directives,
) -> Option<Plan> {
    if !config.enabled {
        return Some(Plan::off());
    }
    let wanted = match (policy, directives.choice) {
        (CachePolicy::Never, _) | (_, Some(ClientChoice::Skip)) => false,
        (_, Some(ClientChoice::Use)) | (CachePolicy::Always, None) => true,
        (CachePolicy::Auto, None) => temperature == Some(0.0),
    };
    (!wanted || directives.no_store).then(Plan::bypass)
}

/// Decide what the cache does for a request whose canonical body is `body`.
pub fn plan(
    config: &CacheConfig,
    policy: CachePolicy,
    temperature: Option<f64>,
    directives: &Directives,
    parts: KeyParts<'_>,
    body: &str,
) -> Plan {
    if let Some(plan) = not_cached(config, policy, temperature, directives) {
        return plan;
    }
    let Some(key) = request_key(config.scope, &parts, body) else {
        return Plan::bypass();
    };
    Plan {
        status: CacheStatus::Miss,
        key: Some(key),
        read: !directives.no_cache,
        max_age: directives
            .max_age
            .map_or(config.ttl, |age| age.min(config.ttl)),
    }
}

/// SHA-256 over the scope, the namespace, the model and the normalised body.
fn request_key(scope: CacheScope, parts: &KeyParts<'_>, body: &str) -> Option<[u8; 32]> {
    let mut value: Value = serde_json::from_str(body).ok()?;
    let object = value.as_object_mut()?;
    object.remove("stream");
    object.remove("stream_options");
    // serde_json's map is ordered by key: equal requests serialise to equal bytes.
    let normalised = serde_json::to_vec(&value).ok()?;
    let scope = match scope {
        CacheScope::Shared => "*",
        CacheScope::Key => parts.caller.unwrap_or("-"),
    };
    let mut hasher = Sha256::new();
    for part in [
        "freeway-cache-v1".as_bytes(),
        scope.as_bytes(),
        parts.namespace.as_bytes(),
        parts.model.as_bytes(),
        &normalised,
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    Some(hasher.finalize().into())
}

/// The in-process tier, sized and timed by the config it was built for.
struct MemoryTier {
    answers: moka::sync::Cache<[u8; 32], Arc<Entry>>,
    max_bytes: u64,
    ttl: Duration,
}

impl MemoryTier {
    fn new(max_bytes: u64, ttl: Duration) -> Self {
        MemoryTier {
            answers: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, entry: &Arc<Entry>| {
                    u32::try_from(entry.body.len() + 128).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build(),
            max_bytes,
            ttl,
        }
    }
}

/// The cache, shared by every request of this process.
pub struct ResponseCache {
    memory: ArcSwap<MemoryTier>,
    redis: Option<Arc<RedisLink>>,
}

impl ResponseCache {
    pub fn new(config: &CacheConfig, redis: Option<Arc<RedisLink>>) -> Self {
        ResponseCache {
            memory: ArcSwap::from_pointee(MemoryTier::new(config.max_bytes, config.ttl)),
            redis: redis.filter(|_| config.backend == CacheBackend::Auto),
        }
    }

    /// A reload changed the size or TTL: start a tier built for them (answers already
    /// cached in this process are dropped; Redis keeps its own).
    pub fn reconfigure(&self, config: &CacheConfig) {
        let current = self.memory.load();
        if current.max_bytes != config.max_bytes || current.ttl != config.ttl {
            self.memory
                .store(Arc::new(MemoryTier::new(config.max_bytes, config.ttl)));
        }
    }

    /// The stored answer for this plan, if it may be served and is fresh enough.
    pub async fn get(&self, plan: &Plan) -> Option<Arc<Entry>> {
        let key = plan.key.filter(|_| plan.read)?;
        let now = SystemTime::now();
        let max_age_ms = plan.max_age.as_millis() as u64;
        let fresh = |entry: &Entry| unix_ms(now).saturating_sub(entry.stored_at_ms) < max_age_ms;
        let memory = self.memory.load_full();
        if let Some(entry) = memory.answers.get(&key) {
            return fresh(&entry).then_some(entry);
        }
        let redis = self.redis.as_ref()?;
        let name = redis_key(redis, &key);
        let text = redis
            .run(|mut c| {
                let name = name.clone();
                async move {
                    redis::cmd("GET")
                        .arg(&name)
                        .query_async::<Option<String>>(&mut c)
                        .await
                }
            })
            .await
            .flatten()?;
        let entry: Arc<Entry> = Arc::new(serde_json::from_str(&text).ok()?);
        if !fresh(&entry) {
            return None;
        }
        memory.answers.insert(key, entry.clone());
        Some(entry)
    }

    /// Keep an answer for requests with this plan; Redis is written on its own task.
    pub fn put(&self, plan: &Plan, entry: Entry) {
        let Some(key) = plan.key.filter(|_| plan.stores()) else {
            return;
        };
        if entry.body.len() > MAX_ENTRY_BYTES {
            return;
        }
        let memory = self.memory.load();
        let ttl_s = memory.ttl.as_secs().max(1);
        let entry = Arc::new(entry);
        memory.answers.insert(key, entry.clone());
        if let Some(redis) = self.redis.clone().filter(|r| r.is_up()) {
            let name = redis_key(&redis, &key);
            let Ok(text) = serde_json::to_string(&*entry) else {
                return;
            };
            tokio::spawn(async move {
                redis
                    .run(|mut c| {
                        let (name, text) = (name.clone(), text.clone());
                        async move {
                            redis::cmd("SET")
                                .arg(&name)
                                .arg(&text)
                                .arg("EX")
                                .arg(ttl_s)
                                .query_async::<()>(&mut c)
                                .await
                        }
                    })
                    .await;
            });
        }
    }

    /// Answers held in this process, and their bytes (for `/admin/state`).
    pub fn local_size(&self) -> (u64, u64) {
        let memory = self.memory.load();
        memory.answers.run_pending_tasks();
        (memory.answers.entry_count(), memory.answers.weighted_size())
    }
}

fn redis_key(redis: &RedisLink, key: &[u8; 32]) -> String {
    redis.key("cache", &hex::encode(key), "answer")
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CacheConfig {
        CacheConfig {
            enabled: true,
            ttl: Duration::from_secs(60),
            max_bytes: 1 << 20,
            scope: CacheScope::Key,
            backend: CacheBackend::Memory,
        }
    }

    fn parts<'a>(caller: Option<&'a str>) -> KeyParts<'a> {
        KeyParts {
            model: "m",
            caller,
            namespace: "n",
        }
    }

    const BODY: &str =
        r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn deterministic_requests_are_cached_and_others_bypass() {
        let none = Directives::default();
        let auto = CachePolicy::Auto;
        let p = plan(&config(), auto, Some(0.0), &none, parts(None), BODY);
        assert_eq!(p.status, CacheStatus::Miss);
        assert!(p.stores());
        let p = plan(&config(), auto, Some(0.7), &none, parts(None), BODY);
        assert_eq!(p.status, CacheStatus::Bypass);
        let p = plan(&config(), auto, None, &none, parts(None), BODY);
        assert_eq!(p.status, CacheStatus::Bypass);
        let always = plan(
            &config(),
            CachePolicy::Always,
            None,
            &none,
            parts(None),
            BODY,
        );
        assert_eq!(always.status, CacheStatus::Miss);
        let never = plan(
            &config(),
            CachePolicy::Never,
            Some(0.0),
            &none,
            parts(None),
            BODY,
        );
        assert_eq!(never.status, CacheStatus::Bypass);
        let mut off = config();
        off.enabled = false;
        let p = plan(&off, auto, Some(0.0), &none, parts(None), BODY);
        assert_eq!(p.status, CacheStatus::Off);
    }

    #[test]
    fn client_directives_win_over_the_policy_but_not_over_never() {
        let using = Directives {
            choice: Some(ClientChoice::Use),
            ..Directives::default()
        };
        let p = plan(
            &config(),
            CachePolicy::Auto,
            Some(1.0),
            &using,
            parts(None),
            BODY,
        );
        assert_eq!(p.status, CacheStatus::Miss);
        let p = plan(
            &config(),
            CachePolicy::Never,
            None,
            &using,
            parts(None),
            BODY,
        );
        assert_eq!(p.status, CacheStatus::Bypass);
        let no_store = Directives {
            no_store: true,
            ..Directives::default()
        };
        let p = plan(
            &config(),
            CachePolicy::Always,
            None,
            &no_store,
            parts(None),
            BODY,
        );
        assert_eq!(p.status, CacheStatus::Bypass);
        let no_cache = Directives {
            no_cache: true,
            ..Directives::default()
        };
        let p = plan(
            &config(),
            CachePolicy::Always,
            None,
            &no_cache,
            parts(None),
            BODY,
        );
        assert!(p.stores() && !p.read);
    }

    #[test]
    fn keys_ignore_stream_and_field_order_but_not_scope() {
        let key = |caller, body| request_key(CacheScope::Key, &parts(caller), body).unwrap();
        let reordered = r#"{"messages":[{"content":"hi","role":"user"}],"stream":true,
            "stream_options":{"include_usage":true},"temperature":0,"model":"m"}"#;
        assert_eq!(key(None, BODY), key(None, reordered));
        assert_ne!(key(Some("alice"), BODY), key(Some("bob"), BODY));
        let shared = |caller| request_key(CacheScope::Shared, &parts(caller), BODY).unwrap();
        assert_eq!(shared(Some("alice")), shared(Some("bob")));
        let other = r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"ho"}]}"#;
        assert_ne!(key(None, BODY), key(None, other));
    }

    #[tokio::test]
    async fn answers_are_served_until_they_are_too_old() {
        let cache = ResponseCache::new(&config(), None);
        let none = Directives::default();
        let p = plan(
            &config(),
            CachePolicy::Always,
            None,
            &none,
            parts(None),
            BODY,
        );
        assert!(cache.get(&p).await.is_none());
        cache.put(&p, Entry::new("answer".into(), "p".into(), "m".into()));
        assert_eq!(cache.get(&p).await.expect("stored").body, "answer");
        let mut old = Entry::new("old".into(), "p".into(), "m".into());
        old.stored_at_ms -= 120_000;
        cache.put(&p, old);
        assert!(cache.get(&p).await.is_none(), "past max age");
        cache.put(&p, Entry::new("answer".into(), "p".into(), "m".into()));
        let too_big = Entry::new("x".repeat(MAX_ENTRY_BYTES + 1), "p".into(), "m".into());
        cache.put(&p, too_big);
        let kept = cache.get(&p).await.expect("the earlier answer stays");
        assert_eq!(kept.body, "answer", "an oversized answer is not kept");
    }
}
