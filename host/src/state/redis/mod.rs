//! Shared state on Redis, for several gateway instances behaving as one: the state seam's
//! traits implemented with one Lua script (or one command) per read-modify-write, keys
//! namespaced by `state.redis_prefix` and hash-tagged per target, key or session (Redis
//! Cluster keeps each on one slot), every key with a TTL.
//!
//! **Redis down is not the gateway down.** Every call has a deadline (`redis_timeout_ms`).
//! The first failure flips the link to *down*: one warning, and from then on every call goes
//! straight to this process's in-memory state without waiting on Redis. A monitor pings
//! Redis every half second; when it answers, what was counted locally meanwhile is folded
//! into Redis (key usage and spend added, target charges applied, longer cooldowns kept), the
//! link flips back to *up*, and one line says so. During an outage each instance enforces
//! limits on what it saw itself.

/// One Lua script on the link: `run_script!(link, script, key, ReturnType; arg, ...)`, `None`
/// when Redis is down or failed. `key` and every argument must be `Copy` (a `&String` for
/// text): a dropped connection is retried, so the call is built twice at most.
macro_rules! run_script {
    ($link:expr, $script:expr, $key:expr, $ret:ty; $($arg:expr),* $(,)?) => {
        $link
            .run(|mut c| async move {
                $script
                    .key($key)
                    $(.arg($arg))*
                    .invoke_async::<$ret>(&mut c)
                    .await
            })
            .await
    };
}

mod keys;
mod quotas;
pub mod scripts;
mod sessions;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::SharedState;
use crate::config::StateConfig;
use crate::store::Store;

pub use keys::RedisKeyUsage;
pub use quotas::RedisQuotas;
pub use sessions::RedisSessions;

/// How often a down link is retried.
const MONITOR_EVERY: Duration = Duration::from_millis(500);
/// Keys live this long past their last write: longer than any window they count.
pub const TTL_SECONDS: u64 = 3 * 86_400;

/// The connection to Redis and whether it is usable.
pub struct RedisLink {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    up: AtomicBool,
    pub fallbacks: AtomicU64,
    timeout: Duration,
    prefix: String,
    /// The URL with any password replaced, for logs and `/admin/state`.
    pub url_masked: String,
}

impl RedisLink {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// A key in this gateway's namespace; `tag` is hash-tagged (`{...}`).
    pub fn key(&self, kind: &str, tag: &str, suffix: &str) -> String {
        format!("{}:{kind}:{{{tag}}}:{suffix}", self.prefix)
    }

    fn connection(&self) -> Option<ConnectionManager> {
        if !self.is_up() {
            return None;
        }
        self.connection.lock().ok().and_then(|c| c.clone())
    }

    /// Run `call` on Redis within the deadline; `None` when Redis is down or the call failed
    /// (which turns the link down). A connection that dropped since its last use (Redis
    /// restarted) is retried once: the connection manager reconnects on that retry.
    pub async fn run<T, F, Fut>(&self, call: F) -> Option<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection()?;
        let mut retried = false;
        loop {
            match tokio::time::timeout(self.timeout, call(connection.clone())).await {
                Ok(Ok(value)) => return Some(value),
                Ok(Err(error))
                    if !retried && (error.is_connection_dropped() || error.is_io_error()) =>
                {
                    retried = true;
                }
                Ok(Err(error)) => {
                    self.down(&error.to_string());
                    return None;
                }
                Err(_) => {
                    self.down(&format!("no answer within {} ms", self.timeout.as_millis()));
                    return None;
                }
            }
        }
    }

    fn down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                redis = %self.url_masked,
                "redis unavailable ({why}): using this instance's local state until it answers"
            );
        }
    }

    async fn connect(&self) -> Result<(), String> {
        let attempt = async {
            let mut manager = ConnectionManager::new(self.client.clone()).await?;
            redis::cmd("PING")
                .query_async::<String>(&mut manager)
                .await?;
            Ok::<_, redis::RedisError>(manager)
        };
        match tokio::time::timeout(Duration::from_secs(2).max(self.timeout), attempt).await {
            Ok(Ok(manager)) => {
                if let Ok(mut slot) = self.connection.lock() {
                    *slot = Some(manager);
                }
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer".into()),
        }
    }
}

fn mask_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The state stores on Redis, with local fallbacks, and the monitor that brings them back.
/// Connect to Redis (or start on local state when it does not answer); `ledger` is where
/// keys' past spend is read when Redis has none.
pub async fn connect(
    config: &StateConfig,
    url: &str,
    ledger: Option<Store>,
) -> anyhow::Result<(SharedState, Arc<RedisLink>)> {
    let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("state.redis_url: {e}"))?;
    let link = Arc::new(RedisLink {
        client,
        connection: Mutex::new(None),
        up: AtomicBool::new(false),
        fallbacks: AtomicU64::new(0),
        timeout: config.redis_timeout,
        prefix: config.redis_prefix.clone(),
        url_masked: mask_password(url),
    });
    let quotas = Arc::new(RedisQuotas::new(link.clone()));
    let key_usage = Arc::new(RedisKeyUsage::new(link.clone(), ledger));
    let sessions = Arc::new(RedisSessions::new(link.clone()));
    match link.connect().await {
        Ok(()) => {
            link.up.store(true, Ordering::Relaxed);
            tracing::info!(redis = %link.url_masked, "shared state on redis");
        }
        Err(why) => {
            link.fallbacks.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                redis = %link.url_masked,
                "redis unavailable ({why}): starting on this instance's local state"
            );
        }
    }
    spawn_monitor(link.clone(), quotas.clone(), key_usage.clone());
    Ok((
        SharedState {
            quotas,
            sessions,
            key_usage,
        },
        link,
    ))
}

fn spawn_monitor(link: Arc<RedisLink>, quotas: Arc<RedisQuotas>, key_usage: Arc<RedisKeyUsage>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(MONITOR_EVERY).await;
            if link.is_up() {
                // A quiet instance learns Redis is gone from this ping, not from a request.
                let _ =
                    link.run(|mut c| async move {
                        redis::cmd("PING").query_async::<String>(&mut c).await
                    })
                    .await;
                continue;
            }
            if link.connect().await.is_err() {
                continue;
            }
            // Up for the reconciliation's own calls, then for everyone.
            link.up.store(true, Ordering::Relaxed);
            let folded = quotas.reconcile().await && key_usage.reconcile().await;
            if folded {
                tracing::info!(
                    redis = %link.url_masked,
                    "redis is back: shared state in use again, local counts folded in"
                );
            }
        }
    });
}
