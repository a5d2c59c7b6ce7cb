//! The in-memory implementations of the shared-state traits: one process, lost on restart.
//! Each map is bounded: entries are per configured target or key, and sessions expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use super::buckets::Buckets;
use super::{QuotaStore, QuotaView, ReportedLimits, SessionStore};
use crate::config::{Limits, TargetRef};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Quota {
    buckets: Buckets,
    cooldown_until: Option<SystemTime>,
    /// What the upstream last said is left.
    remaining_requests: Option<u64>,
    remaining_tokens: Option<u64>,
}

/// Token buckets, cooldowns and reported remaining counts, per target.
#[derive(Default)]
pub struct MemoryQuotas {
    map: Mutex<HashMap<TargetRef, Quota>>,
    /// Bumped by every change, so persistence writes only when something changed.
    changes: std::sync::atomic::AtomicU64,
}

impl MemoryQuotas {
    fn with<R>(&self, target: &TargetRef, f: impl FnOnce(&mut Quota) -> R) -> R {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut map = lock(&self.map);
        match map.get_mut(target) {
            Some(quota) => f(quota),
            None => f(map.entry(target.clone()).or_default()),
        }
    }

    /// How many changes so far (compare two readings to know whether anything changed).
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every target's state, to save.
    pub fn export(&self) -> Vec<(TargetRef, Quota)> {
        lock(&self.map)
            .iter()
            .map(|(t, q)| (t.clone(), q.clone()))
            .collect()
    }

    /// Every cooldown still set, with its end.
    pub fn cooldowns(&self) -> Vec<(TargetRef, SystemTime)> {
        lock(&self.map)
            .iter()
            .filter_map(|(t, q)| q.cooldown_until.map(|until| (t.clone(), until)))
            .collect()
    }

    /// Restore saved state (at start, before any request).
    pub fn import(&self, saved: Vec<(TargetRef, Quota)>) {
        let mut map = lock(&self.map);
        for (target, quota) in saved {
            map.insert(target, quota);
        }
    }
}

fn left(until: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    until
        .and_then(|until| until.duration_since(now).ok())
        .filter(|d| !d.is_zero())
}

#[async_trait]
impl QuotaStore for MemoryQuotas {
    async fn cooldown(&self, target: &TargetRef, now: SystemTime) -> Option<Duration> {
        self.with(target, |q| left(q.cooldown_until, now))
    }

    async fn set_cooldown(&self, target: &TargetRef, until: SystemTime) {
        self.with(target, |q| q.cooldown_until = Some(until));
    }

    async fn take(
        &self,
        target: &TargetRef,
        limits: Limits,
        tokens: u64,
        now: SystemTime,
    ) -> Result<Option<f32>, (&'static str, Duration)> {
        self.with(target, |q| {
            q.buckets.configure(limits, now);
            q.buckets.take(tokens, now)?;
            Ok(q.buckets.fraction_used(now))
        })
    }

    async fn adjust_tokens(&self, target: &TargetRef, delta: i64) {
        self.with(target, |q| q.buckets.adjust_tokens(delta));
    }

    async fn record_reported(&self, target: &TargetRef, reported: ReportedLimits, now: SystemTime) {
        self.with(target, |q| {
            if reported.remaining_requests.is_some() {
                q.remaining_requests = reported.remaining_requests;
            }
            if reported.remaining_tokens.is_some() {
                q.remaining_tokens = reported.remaining_tokens;
            }
            // The upstream says nothing is left: wait for its reset rather than learn it by 429.
            let exhausted_until = [
                (reported.remaining_requests, reported.reset_requests),
                (reported.remaining_tokens, reported.reset_tokens),
            ]
            .into_iter()
            .filter_map(|(remaining, reset)| match (remaining, reset) {
                (Some(0), Some(reset)) if !reset.is_zero() => Some(now + reset),
                _ => None,
            })
            .max();
            if let Some(until) = exhausted_until
                && q.cooldown_until.is_none_or(|current| current < until)
            {
                q.cooldown_until = Some(until);
            }
        });
    }

    async fn view(&self, target: &TargetRef, limits: Limits, now: SystemTime) -> QuotaView {
        self.with(target, |q| {
            q.buckets.configure(limits, now);
            let (bucket_requests, bucket_tokens) = q.buckets.remaining(now);
            let lower = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            QuotaView {
                cooldown: left(q.cooldown_until, now),
                remaining_requests: lower(bucket_requests, q.remaining_requests),
                remaining_tokens: lower(bucket_tokens, q.remaining_tokens),
                quota_used: q.buckets.fraction_used(now),
            }
        })
    }
}

/// Sticky sessions with their expiry.
#[derive(Default)]
pub struct MemorySessions {
    map: Mutex<HashMap<String, (TargetRef, Instant)>>,
}

/// Past this many sessions, expired ones are swept before a new one is added.
const SWEEP_AT: usize = 10_000;

#[async_trait]
impl SessionStore for MemorySessions {
    async fn get(&self, key: &str) -> Option<TargetRef> {
        let now = Instant::now();
        lock(&self.map)
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(target, _)| target.clone())
    }

    async fn set(&self, key: String, target: TargetRef, ttl: Duration) {
        let now = Instant::now();
        let mut map = lock(&self.map);
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, expires)| *expires > now);
        }
        map.insert(key, (target, now + ttl));
    }
}
