//! Targets' buckets, cooldowns and reported remaining counts on Redis: one hash per target.
//! While the link is down the in-memory store serves, and what it took is tallied so it can
//! be charged to Redis when the link returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{RedisLink, TTL_SECONDS, scripts};
use crate::config::{Limits, TargetRef};
use crate::state::memory::MemoryQuotas;
use crate::state::{QuotaStore, QuotaView, ReportedLimits};
use crate::store::unix_ms;

const LIMIT_NAMES: [&str; 4] = [
    "requests per minute",
    "requests per day",
    "tokens per minute",
    "tokens per day",
];

pub struct RedisQuotas {
    link: Arc<RedisLink>,
    local: MemoryQuotas,
    /// Requests and tokens taken locally while Redis was down, per target, with the target's
    /// limits then (a Redis that restarted has no bucket to charge: it gets one).
    tally: Mutex<HashMap<TargetRef, (u64, i64, Limits)>>,
    take: redis::Script,
    adjust: redis::Script,
    cool: redis::Script,
    reported: redis::Script,
}

fn cap(limit: Option<u64>) -> u64 {
    limit.unwrap_or(0)
}

impl RedisQuotas {
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisQuotas {
            link,
            local: MemoryQuotas::default(),
            tally: Mutex::default(),
            take: redis::Script::new(scripts::TAKE),
            adjust: redis::Script::new(scripts::ADJUST),
            cool: redis::Script::new(scripts::COOL),
            reported: redis::Script::new(scripts::REPORTED),
        }
    }

    fn key(&self, target: &TargetRef) -> String {
        self.link.key("target", &target.to_string(), "quota")
    }

    fn count_locally(
        &self,
        target: &TargetRef,
        requests: u64,
        tokens: i64,
        limits: Option<Limits>,
    ) {
        if let Ok(mut tally) = self.tally.lock() {
            let entry = tally
                .entry(target.clone())
                .or_insert((0, 0, Limits::default()));
            entry.0 += requests;
            entry.1 += tokens;
            if let Some(limits) = limits {
                entry.2 = limits;
            }
        }
    }

    /// Charge Redis with what was taken locally during an outage, and keep local cooldowns
    /// that outlast Redis's. False when Redis failed again meanwhile.
    pub async fn reconcile(&self) -> bool {
        let tally: Vec<_> = self
            .tally
            .lock()
            .map(|mut t| t.drain().collect())
            .unwrap_or_default();
        let now = unix_ms(SystemTime::now());
        for (target, (requests, tokens, limits)) in tally {
            let key = self.key(&target);
            let key = &key;
            let charged = run_script!(self.link, self.take, key, Vec<i64>; now, tokens, cap(limits.rpm), cap(limits.rpd), cap(limits.tpm), cap(limits.tpd), TTL_SECONDS, 1, requests);
            if charged.is_none() {
                return false;
            }
        }
        for (target, until) in self.local.cooldowns() {
            let key = self.key(&target);
            let key = &key;
            let until = unix_ms(until);
            if run_script!(self.link, self.cool, key, i64; until, "extend", TTL_SECONDS).is_none() {
                return false;
            }
        }
        true
    }
}

/// The wall clock of a millisecond count.
fn at(ms: i64) -> SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[async_trait]
impl QuotaStore for RedisQuotas {
    async fn cooldown(&self, target: &TargetRef, now: SystemTime) -> Option<Duration> {
        let key = self.key(target);
        let key = &key;
        let shared = self
            .link
            .run(|mut c| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg("cool")
                    .query_async::<Option<i64>>(&mut c)
                    .await
            })
            .await;
        match shared {
            Some(until) => until
                .map(at)
                .and_then(|until| until.duration_since(now).ok())
                .filter(|d| !d.is_zero()),
            None => self.local.cooldown(target, now).await,
        }
    }

    async fn set_cooldown(&self, target: &TargetRef, until: SystemTime) {
        let key = self.key(target);
        let key = &key;
        let ms = unix_ms(until);
        let done = run_script!(self.link, self.cool, key, i64; ms, "set", TTL_SECONDS);
        if done.is_none() {
            self.local.set_cooldown(target, until).await;
        }
    }

    async fn take(
        &self,
        target: &TargetRef,
        limits: Limits,
        tokens: u64,
        now: SystemTime,
    ) -> Result<Option<f32>, (&'static str, Duration)> {
        let key = self.key(target);
        let key = &key;
        let now_ms = unix_ms(now);
        let shared = run_script!(self.link, self.take, key, Vec<i64>; now_ms, tokens, cap(limits.rpm), cap(limits.rpd), cap(limits.tpm), cap(limits.tpd), TTL_SECONDS, 0, 1);
        match shared.as_deref() {
            Some([1, used]) => Ok((*used >= 0).then(|| *used as f32 / 1_000_000.0)),
            Some([0, limit, wait_ms]) => Err((
                LIMIT_NAMES[(*limit as usize).clamp(1, 4) - 1],
                Duration::from_millis((*wait_ms).max(0) as u64),
            )),
            _ => {
                let taken = self.local.take(target, limits, tokens, now).await;
                if taken.is_ok() {
                    self.count_locally(target, 1, tokens as i64, Some(limits));
                }
                taken
            }
        }
    }

    async fn adjust_tokens(&self, target: &TargetRef, delta: i64) {
        let key = self.key(target);
        let key = &key;
        let done = run_script!(self.link, self.adjust, key, i64; delta);
        if done.is_none() {
            self.local.adjust_tokens(target, delta).await;
            self.count_locally(target, 0, delta, None);
        }
    }

    async fn record_reported(&self, target: &TargetRef, reported: ReportedLimits, now: SystemTime) {
        let exhausted_until = [
            (reported.remaining_requests, reported.reset_requests),
            (reported.remaining_tokens, reported.reset_tokens),
        ]
        .into_iter()
        .filter_map(|(remaining, reset)| match (remaining, reset) {
            (Some(0), Some(reset)) if !reset.is_zero() => Some(unix_ms(now + reset)),
            _ => None,
        })
        .max()
        .unwrap_or(0);
        let key = self.key(target);
        let key = &key;
        let text = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let (requests, tokens) = (
            text(reported.remaining_requests),
            text(reported.remaining_tokens),
        );
        let (requests, tokens) = (&requests, &tokens);
        let done = run_script!(self.link, self.reported, key, i64; requests, tokens, exhausted_until, TTL_SECONDS);
        if done.is_none() {
            self.local.record_reported(target, reported, now).await;
        }
    }

    async fn view(&self, target: &TargetRef, limits: Limits, now: SystemTime) -> QuotaView {
        let key = self.key(target);
        let key = &key;
        let fields = self
            .link
            .run(|mut c| async move {
                redis::cmd("HGETALL")
                    .arg(key)
                    .query_async::<HashMap<String, String>>(&mut c)
                    .await
            })
            .await;
        match fields {
            Some(fields) => view_of(&fields, limits, unix_ms(now)),
            None => self.local.view(target, limits, now).await,
        }
    }
}

/// A target's view from its hash, refilled to `now` (without writing back).
fn view_of(fields: &HashMap<String, String>, limits: Limits, now_ms: i64) -> QuotaView {
    let get = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok());
    let level = |name: &str, cap: Option<u64>, window_ms: f64| -> Option<f64> {
        let cap = cap? as f64;
        if get(&format!("{name}:cap")) != Some(cap) {
            return Some(cap);
        }
        let level = get(&format!("{name}:level"))?;
        let at = get(&format!("{name}:at"))?;
        let elapsed = (now_ms as f64 - at).max(0.0);
        Some((level + elapsed * cap / window_ms).min(cap))
    };
    let rpm = level("rpm", limits.rpm, 60_000.0);
    let rpd = level("rpd", limits.rpd, 86_400_000.0);
    let tpm = level("tpm", limits.tpm, 60_000.0);
    let tpd = level("tpd", limits.tpd, 86_400_000.0);
    let lowest = |a: Option<f64>, b: Option<f64>| {
        [a, b]
            .into_iter()
            .flatten()
            .map(|l| l.max(0.0) as u64)
            .min()
    };
    let lower = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let reported = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok());
    let used = [(rpd, limits.rpd), (tpd, limits.tpd)]
        .into_iter()
        .filter_map(|(level, cap)| Some((1.0 - level? / cap? as f64) as f32))
        .reduce(f32::max);
    let cooldown = get("cool")
        .map(|until| until - now_ms as f64)
        .filter(|left| *left > 0.0)
        .map(|left| Duration::from_millis(left as u64));
    QuotaView {
        cooldown,
        remaining_requests: lower(lowest(rpm, rpd), reported("rem_req")),
        remaining_tokens: lower(lowest(tpm, tpd), reported("rem_tok")),
        quota_used: used,
    }
}
