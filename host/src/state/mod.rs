//! Live state the gateway decides with, and the seam where it will be shared.
//!
//! Two kinds of state, kept apart on purpose:
//! - **Shared** ([`QuotaStore`], [`SessionStore`], [`KeyUsageStore`]): what several instances
//!   must agree on and what must survive a restart — free-tier token buckets and quota
//!   counters, cooldowns an upstream asked for, the remaining counts it reported, sticky
//!   sessions, gateway keys' usage and budgets. Behind async traits so a Redis store can
//!   replace [`memory`]'s implementation without the pipeline noticing. Times are wall-clock
//!   (`SystemTime`), the only clock two machines share. With a SQLite store, [`persist`]
//!   saves the quotas every second and at shutdown and restores them at start; key usage is
//!   rebuilt from the ledger.
//! - **Per instance** ([`local::TargetState`]): what describes this process's own view — the
//!   circuit breaker, latency and error averages, in-flight count, health-check verdicts, a
//!   key the provider refused under this config. Sharing those would make one instance's bad
//!   network everyone's outage.
//!
//! [`Targets`] joins the two for the pipeline: one `admit` that checks both, one
//! `record_success` / `record_failure` that updates both.

pub mod buckets;
pub mod keyring;
pub mod keys;
pub mod latency;
pub mod local;
pub mod memory;
pub mod persist;
pub mod redis;
mod targets;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::config::{Limits, TargetRef};

pub use keyring::KeyRing;
pub use keys::{Caller, KeyRefusal, KeyUsageStore, MemoryKeyUsage, Reservation};
pub use local::{Failure, FailureKind, Refusal, TargetState, TargetView};
pub use targets::{Admission, InFlight, QUOTA_WARNING, Targets};

/// What an upstream's answer said is left (rate-limit headers), as an adapter read it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReportedLimits {
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_requests: Option<Duration>,
    pub reset_tokens: Option<Duration>,
}

/// A target's shared state at one moment, for routing decisions and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QuotaView {
    pub cooldown: Option<Duration>,
    /// The lower of what the buckets hold and what the upstream last reported.
    pub remaining_requests: Option<u64>,
    pub remaining_tokens: Option<u64>,
    /// Share of the daily allowance used, when the catalog publishes one.
    pub quota_used: Option<f32>,
}

/// Free-tier limits and cooldowns of every target. Every method is one atomic step for its
/// target (a Redis implementation makes each one script).
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// How long `target` must still wait, if an upstream told it to.
    async fn cooldown(&self, target: &TargetRef, now: SystemTime) -> Option<Duration>;
    /// Cool `target` down until `until`, replacing any current cooldown.
    async fn set_cooldown(&self, target: &TargetRef, until: SystemTime);
    /// Take one request and `tokens` from every published limit, or name the limit that
    /// would break and when it frees. On success, the share of the daily allowance now used.
    async fn take(
        &self,
        target: &TargetRef,
        limits: Limits,
        tokens: u64,
        now: SystemTime,
    ) -> Result<Option<f32>, (&'static str, Duration)>;
    /// Correct an estimate once usage is known: positive charges more, negative refunds.
    async fn adjust_tokens(&self, target: &TargetRef, delta: i64);
    /// Remember what the upstream reported; a report of nothing left cools the target down
    /// until the upstream's reset (never shortening a longer cooldown).
    async fn record_reported(&self, target: &TargetRef, reported: ReportedLimits, now: SystemTime);
    async fn view(&self, target: &TargetRef, limits: Limits, now: SystemTime) -> QuotaView;
}

/// Conversations and the target that last served them.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn get(&self, key: &str) -> Option<TargetRef>;
    async fn set(&self, key: String, target: TargetRef, ttl: Duration);
}

/// The shared stores one gateway uses.
#[derive(Clone)]
pub struct SharedState {
    pub quotas: Arc<dyn QuotaStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub key_usage: Arc<dyn KeyUsageStore>,
}

impl SharedState {
    /// Everything in this process's memory: nothing survives a restart.
    pub fn in_memory() -> Self {
        SharedState {
            quotas: Arc::new(memory::MemoryQuotas::default()),
            sessions: Arc::new(memory::MemorySessions::default()),
            key_usage: Arc::new(MemoryKeyUsage::default()),
        }
    }
}

/// Time left until the next UTC midnight, when daily allowances reset.
pub fn until_next_utc_midnight(now: SystemTime) -> Duration {
    let since_epoch = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(86_400 - since_epoch % 86_400)
}
