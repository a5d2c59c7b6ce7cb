//! [`Targets`]: every target's state, shared and per instance, behind the few calls the
//! pipeline makes — admit an attempt, record how it went, describe a target to a router.
//! Kept across reloads, keyed by `provider/model`, so a reload keeps the cooldowns and
//! statistics of targets that still exist.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::local::{Failure, Refusal, TargetState, TargetView};
use super::{QuotaStore, ReportedLimits, until_next_utc_midnight};
use crate::config::{Limits, TargetRef};

/// The share of a daily allowance past which the operator is warned (once per crossing).
pub const QUOTA_WARNING: f32 = 0.8;

/// A granted attempt: what was taken from the buckets, to correct afterwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission {
    estimated_tokens: u64,
    probe: bool,
    /// Set on the admission that took the target past `QUOTA_WARNING` of a daily allowance.
    pub quota_crossed: Option<f32>,
}

pub struct Targets {
    local: RwLock<HashMap<TargetRef, Arc<TargetState>>>,
    quotas: Arc<dyn QuotaStore>,
    /// Wall-clock time is derived from the monotonic clock: `SystemTime` for the store, but
    /// immune to the system clock being stepped mid-run.
    epoch: (Instant, SystemTime),
}

impl Targets {
    pub fn new(quotas: Arc<dyn QuotaStore>) -> Self {
        Targets {
            local: RwLock::default(),
            quotas,
            epoch: (Instant::now(), SystemTime::now()),
        }
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0)
    }

    /// This instance's state of `target`.
    pub fn local(&self, target: &TargetRef) -> Arc<TargetState> {
        if let Some(state) = self
            .local
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
        {
            return state.clone();
        }
        self.local
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(target.clone())
            .or_default()
            .clone()
    }

    /// Every target seen so far, for metrics.
    pub fn all(&self) -> Vec<TargetRef> {
        let map = self.local.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<TargetRef> = map.keys().cloned().collect();
        all.sort();
        all
    }

    /// A new config may carry new keys: give every target whose key was refused under an
    /// older config another chance.
    pub fn config_changed(&self, digest: &str) {
        let map = self.local.read().unwrap_or_else(|e| e.into_inner());
        for state in map.values() {
            state.config_changed(digest);
        }
    }

    /// May an attempt go to this target now? Checks, without any network call: cooldown,
    /// a key the provider refused, health, the circuit breaker, and the token buckets
    /// (taking one request and `estimated_tokens` when it says yes).
    pub async fn admit(
        &self,
        target: &TargetRef,
        limits: Limits,
        estimated_tokens: u64,
        config_digest: &str,
        now: Instant,
    ) -> Result<Admission, Refusal> {
        let wall = self.wall(now);
        if let Some(left) = self.quotas.cooldown(target, wall).await {
            return Err(Refusal::Cooling(left));
        }
        let local = self.local(target);
        let probe = local.check(config_digest, now)?;
        let used = match self
            .quotas
            .take(target, limits, estimated_tokens, wall)
            .await
        {
            Ok(used) => used,
            Err((limit, wait)) => {
                if probe {
                    local.release_probe();
                }
                return Err(Refusal::OverLimit(limit, wait));
            }
        };
        let quota_crossed = local
            .crossed_quota_warning(used, QUOTA_WARNING)
            .then_some(used)
            .flatten();
        Ok(Admission {
            estimated_tokens,
            probe,
            quota_crossed,
        })
    }

    /// Take a health probe's share of the free-tier buckets: a probe spends the upstream's
    /// quota like any request, so it must count, or probes alone could earn 429s. Unlike
    /// [`Targets::admit`] it ignores cooldowns, failed health and the breaker: a probe is
    /// how an ejected target gets back. `Err` names the full limit and when it frees.
    pub async fn take_for_probe(
        &self,
        target: &TargetRef,
        limits: Limits,
        estimated_tokens: u64,
        now: Instant,
    ) -> Result<(), (&'static str, Duration)> {
        self.quotas
            .take(target, limits, estimated_tokens, self.wall(now))
            .await
            .map(|_| ())
    }

    /// Why this target would be refused now, if it would (without taking anything).
    pub async fn refusal(&self, target: &TargetRef, now: Instant) -> Option<Refusal> {
        if let Some(left) = self.quotas.cooldown(target, self.wall(now)).await {
            return Some(Refusal::Cooling(left));
        }
        self.local(target).refusal(now)
    }

    pub async fn view(&self, target: &TargetRef, limits: Limits, now: Instant) -> TargetView {
        let quota = self.quotas.view(target, limits, self.wall(now)).await;
        TargetView {
            cooldown: quota.cooldown,
            remaining_requests: quota.remaining_requests,
            remaining_tokens: quota.remaining_tokens,
            quota_used: quota.quota_used,
            ..self.local(target).view(now)
        }
    }

    /// Remaining-capacity facts an adapter read from the upstream's headers.
    pub async fn record_reported(
        &self,
        target: &TargetRef,
        reported: ReportedLimits,
        now: Instant,
    ) {
        self.quotas
            .record_reported(target, reported, self.wall(now))
            .await;
    }

    pub async fn record_success(
        &self,
        target: &TargetRef,
        latency: Duration,
        ttft: Option<Duration>,
        admission: Admission,
        used_tokens: Option<u64>,
    ) {
        if let Some(used) = used_tokens {
            self.quotas
                .adjust_tokens(target, used as i64 - admission.estimated_tokens as i64)
                .await;
        }
        self.local(target).record_success(latency, ttft);
    }

    /// An attempt cancelled before it answered (another, hedged, attempt answered first): no
    /// verdict on the target, but a half-open probe it carried is given back, and the tail
    /// estimate learns it was at least `waited` slow. What it took from the buckets stays
    /// taken: the upstream saw the request.
    pub fn abandon(
        &self,
        target: &TargetRef,
        admission: Admission,
        waited: Duration,
        stream: bool,
    ) {
        let local = self.local(target);
        if admission.probe {
            local.release_probe();
        }
        local.record_unanswered(waited, stream);
    }

    /// Record a failure; rate limits start a cooldown (see [`TargetState::record_failure`]).
    pub async fn record_failure(
        &self,
        target: &TargetRef,
        failure: Failure,
        now: Instant,
        admission: Admission,
        config_digest: &str,
    ) {
        let wall = self.wall(now);
        let cooldown = self.local(target).record_failure(
            failure,
            admission.probe,
            now,
            config_digest,
            until_next_utc_midnight(wall),
        );
        if let Some(wait) = cooldown {
            self.quotas.set_cooldown(target, wall + wait).await;
        }
    }
}

/// Keeps a target's in-flight count right however the attempt ends.
pub struct InFlight(Arc<TargetState>);

impl InFlight {
    pub fn start(state: Arc<TargetState>) -> Self {
        state.enter();
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::super::local::{BREAKER_FIRST_OPEN, BREAKER_THRESHOLD, FailureKind};
    use super::super::memory::MemoryQuotas;
    use super::*;

    fn failure(kind: FailureKind, retry_after: Option<Duration>) -> Failure {
        Failure { kind, retry_after }
    }

    fn fixture() -> (Targets, TargetRef) {
        let target = TargetRef {
            provider: "p".into(),
            model: "m".into(),
        };
        (Targets::new(Arc::new(MemoryQuotas::default())), target)
    }

    #[tokio::test]
    async fn requests_per_minute_bucket_refuses_then_refills() {
        let (state, t) = fixture();
        let limits = Limits {
            rpm: Some(2),
            ..Limits::default()
        };
        let t0 = Instant::now();
        assert!(state.admit(&t, limits, 10, "d", t0).await.is_ok());
        assert!(state.admit(&t, limits, 10, "d", t0).await.is_ok());
        match state.admit(&t, limits, 10, "d", t0).await {
            Err(Refusal::OverLimit("requests per minute", wait)) => {
                assert!(
                    wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
                    "{wait:?}"
                )
            }
            other => panic!("expected an rpm refusal, got {other:?}"),
        }
        // One request refills every 30 s.
        assert!(
            state
                .admit(&t, limits, 10, "d", t0 + Duration::from_secs(31))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn token_estimate_is_corrected_with_usage() {
        let (state, t) = fixture();
        let limits = Limits {
            tpm: Some(1000),
            ..Limits::default()
        };
        let t0 = Instant::now();
        let admission = state.admit(&t, limits, 900, "d", t0).await.expect("fits");
        assert!(matches!(
            state.admit(&t, limits, 200, "d", t0).await,
            Err(Refusal::OverLimit("tokens per minute", _))
        ));
        // The answer used only 100 tokens: 800 come back.
        state
            .record_success(&t, Duration::from_millis(5), None, admission, Some(100))
            .await;
        assert!(state.admit(&t, limits, 800, "d", t0).await.is_ok());
    }

    #[tokio::test]
    async fn retry_after_sets_exact_cooldown() {
        let (state, t) = fixture();
        let t0 = Instant::now();
        let admission = state
            .admit(&t, Limits::default(), 1, "d", t0)
            .await
            .expect("open");
        state
            .record_failure(
                &t,
                failure(FailureKind::RateLimited, Some(Duration::from_secs(12))),
                t0,
                admission,
                "d",
            )
            .await;
        assert_eq!(
            state
                .admit(&t, Limits::default(), 1, "d", t0 + Duration::from_secs(2))
                .await
                .err(),
            Some(Refusal::Cooling(Duration::from_secs(10)))
        );
        assert!(
            state
                .admit(&t, Limits::default(), 1, "d", t0 + Duration::from_secs(12))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn breaker_opens_after_repeated_outages_and_half_opens_with_one_probe() {
        let (state, t) = fixture();
        let t0 = Instant::now();
        for _ in 0..BREAKER_THRESHOLD {
            let admission = state
                .admit(&t, Limits::default(), 1, "d", t0)
                .await
                .expect("closed");
            state
                .record_failure(&t, failure(FailureKind::Unwell, None), t0, admission, "d")
                .await;
        }
        assert!(matches!(
            state.admit(&t, Limits::default(), 1, "d", t0).await,
            Err(Refusal::BreakerOpen(_))
        ));
        let later = t0 + BREAKER_FIRST_OPEN;
        let probe = state
            .admit(&t, Limits::default(), 1, "d", later)
            .await
            .expect("one probe");
        assert!(
            matches!(
                state.admit(&t, Limits::default(), 1, "d", later).await,
                Err(Refusal::BreakerOpen(_))
            ),
            "only one probe at a time"
        );
        state
            .record_success(&t, Duration::from_millis(5), None, probe, None)
            .await;
        assert!(
            state
                .admit(&t, Limits::default(), 1, "d", later)
                .await
                .is_ok(),
            "a good probe closes it"
        );
    }

    #[tokio::test]
    async fn refused_key_stays_out_until_the_config_changes() {
        let (state, t) = fixture();
        let t0 = Instant::now();
        let admission = state
            .admit(&t, Limits::default(), 1, "v1", t0)
            .await
            .expect("open");
        state
            .record_failure(
                &t,
                failure(FailureKind::KeyRefused, None),
                t0,
                admission,
                "v1",
            )
            .await;
        assert_eq!(
            state.admit(&t, Limits::default(), 1, "v1", t0).await.err(),
            Some(Refusal::KeyRefused)
        );
        assert!(
            state
                .admit(&t, Limits::default(), 1, "v2", t0)
                .await
                .is_ok()
        );
    }
}
