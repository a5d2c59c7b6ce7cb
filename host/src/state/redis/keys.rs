//! Gateway keys' usage on Redis: one hash per key holding the day's, month's and minute's
//! counts, the lifetime spend and the worst cases held by requests in flight, so caps and
//! hard budgets hold across every instance. While the link is down the in-memory store
//! serves; what it counted is added to Redis when the link returns.
//!
//! **Redis forgetting is not a budget reset.** A key's hash is *seeded* before its first use
//! in Redis: every script answers -1 for a hash without the `seeded` mark, and the key's
//! spend today, this month and in all is read from the ledger (the SQLite store) and written
//! in (each field raised, never lowered, so instances seeding at once agree), then the script
//! runs again. So a Redis restarted without persistence, flushed, or a key idle past the TTL
//! starts from what the ledger knows, not from zero. With one SQLite store per instance, each
//! knows only its own rows: point instances at one store, or keep Redis persistent.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{RedisLink, TTL_SECONDS, scripts};
use crate::state::MemoryKeyUsage;
use crate::state::keys::{
    Breach, Caller, KeyRefusal, KeyUsage, KeyUsageStore, Reservation, periods, this_month_start_ms,
    today_start_ms,
};
use crate::store::Store;
use crate::store::ledger::{Spend, spend_of_key};

/// What a key script answers for a key whose hash was not seeded from the ledger yet.
const NOT_SEEDED: i64 = -1;

pub struct RedisKeyUsage {
    link: Arc<RedisLink>,
    local: MemoryKeyUsage,
    /// Holds made in Redis whose requests finished while it was down: released there on
    /// reconciliation (the spend itself is counted locally and folded in).
    pending_releases: Mutex<Vec<(String, Reservation)>>,
    /// Where a key's past spend is read from when Redis has none.
    ledger: Option<Store>,
    admit: redis::Script,
    reserve: redis::Script,
    settle: redis::Script,
    seed: redis::Script,
}

/// A limit as a script argument: -1 for none.
fn arg_u(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

fn arg_f(limit: Option<f64>) -> f64 {
    limit.unwrap_or(-1.0)
}

impl RedisKeyUsage {
    pub fn new(link: Arc<RedisLink>, ledger: Option<Store>) -> Self {
        RedisKeyUsage {
            link,
            local: MemoryKeyUsage::default(),
            pending_releases: Mutex::default(),
            ledger,
            admit: redis::Script::new(&scripts::admit()),
            reserve: redis::Script::new(&scripts::reserve()),
            settle: redis::Script::new(&scripts::settle()),
            seed: redis::Script::new(scripts::SEED),
        }
    }

    /// Run a key script; when the key was not seeded yet, seed it and run the script again.
    async fn seeded<F, Fut>(&self, name: &str, now: SystemTime, script: F) -> Option<i64>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<i64>>,
    {
        match script().await? {
            NOT_SEEDED => {
                self.seed(name, now).await?;
                script().await.filter(|code| *code != NOT_SEEDED)
            }
            code => Some(code),
        }
    }

    /// Write the key's spend, as the ledger knows it, into its Redis hash.
    async fn seed(&self, name: &str, now: SystemTime) -> Option<()> {
        let [today, month, total] = match self.ledger.clone() {
            None => Default::default(),
            Some(store) => {
                let key = name.to_string();
                let read = tokio::task::spawn_blocking(move || {
                    let connection = store.connect()?;
                    anyhow::Ok([
                        spend_of_key(&connection, &key, today_start_ms(now))?,
                        spend_of_key(&connection, &key, this_month_start_ms(now))?,
                        spend_of_key(&connection, &key, 0)?,
                    ])
                })
                .await;
                match read {
                    Ok(Ok(spend)) => spend,
                    Ok(Err(error)) => {
                        tracing::warn!(
                            key = name,
                            "cannot read the key's spend from the ledger: {error:#}"
                        );
                        <[Spend; 3]>::default()
                    }
                    Err(error) => {
                        tracing::warn!(
                            key = name,
                            "cannot read the key's spend from the ledger: {error}"
                        );
                        <[Spend; 3]>::default()
                    }
                }
            }
        };
        let (day, month_id, _) = periods(now);
        let key = self.key(name);
        let (key, day, month_id) = (&key, &day, &month_id);
        let seeded = run_script!(self.link, self.seed, key, i64;
            day, month_id, today.requests, today.tokens, today.cost_usd, month.tokens,
            month.cost_usd, total.cost_usd, TTL_SECONDS)?;
        if seeded == 1 {
            tracing::info!(
                key = name,
                usd_total = total.cost_usd,
                "key usage seeded in redis from the ledger"
            );
        }
        Some(())
    }

    fn key(&self, name: &str) -> String {
        self.link.key("key", name, "usage")
    }

    /// The prelude's arguments: periods, then the hard budgets.
    fn prelude(invocation: &mut redis::ScriptInvocation<'_>, caller: &Caller, now: SystemTime) {
        let (day, month, minute) = periods(now);
        let l = &caller.limits;
        invocation
            .arg(day)
            .arg(month)
            .arg(minute)
            .arg(arg_f(l.daily_usd))
            .arg(arg_f(l.monthly_usd))
            .arg(arg_f(l.budget_usd))
            .arg(arg_u(l.daily_tokens.filter(|_| !caller.from_config)))
            .arg(arg_u(l.monthly_tokens));
    }

    /// One settle script call: release `held`, add `used` (and `requests`). False when Redis
    /// failed.
    async fn settle_shared(
        &self,
        name: &str,
        held: Reservation,
        used: Reservation,
        requests: u64,
        now: SystemTime,
    ) -> bool {
        let key = self.key(name);
        let key = &key;
        let caller = Caller {
            name: name.to_string(),
            limits: Default::default(),
            from_config: false,
        };
        let caller = &caller;
        self.seeded(name, now, || {
            self.link.run(|mut c| async move {
                let mut invocation = self.settle.key(key);
                Self::prelude(&mut invocation, caller, now);
                invocation
                    .arg(held.tokens)
                    .arg(held.usd)
                    .arg(used.tokens)
                    .arg(used.usd)
                    .arg(requests)
                    .arg(TTL_SECONDS)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
        })
        .await
        .is_some()
    }

    /// Add what was counted locally during an outage and release the holds it could not.
    /// False when Redis failed again.
    pub async fn reconcile(&self) -> bool {
        let now = SystemTime::now();
        let releases: Vec<_> = self
            .pending_releases
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        for (i, (name, held)) in releases.iter().enumerate() {
            if !self
                .settle_shared(name, *held, Reservation::default(), 0, now)
                .await
            {
                if let Ok(mut pending) = self.pending_releases.lock() {
                    pending.extend(releases[i..].iter().cloned());
                }
                return false;
            }
        }
        for (name, usage) in self.local.drain() {
            let used = Reservation {
                tokens: usage.tokens_today,
                usd: usage.usd_today,
                shared: false,
            };
            if !self
                .settle_shared(
                    &name,
                    Reservation::default(),
                    used,
                    usage.requests_today,
                    now,
                )
                .await
            {
                return false;
            }
        }
        true
    }
}

#[async_trait]
impl KeyUsageStore for RedisKeyUsage {
    async fn admit(&self, caller: &Caller, now: SystemTime) -> Result<(), KeyRefusal> {
        let key = self.key(&caller.name);
        let key = &key;
        let l = &caller.limits;
        let verdict = self
            .seeded(&caller.name, now, || {
                self.link.run(|mut c| async move {
                    let mut invocation = self.admit.key(key);
                    Self::prelude(&mut invocation, caller, now);
                    invocation
                        .arg(arg_u(l.daily_requests))
                        .arg(arg_u(l.daily_tokens.filter(|_| caller.from_config)))
                        .arg(arg_u(l.rpm))
                        .arg(arg_u(l.tpm))
                        .arg(TTL_SECONDS)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
            })
            .await;
        match verdict {
            Some(code) => match Breach::from_code(code) {
                None => Ok(()),
                Some(breach) => Err(breach.refusal(caller, now)),
            },
            None => self.local.admit(caller, now).await,
        }
    }

    async fn reserve(
        &self,
        caller: &Caller,
        worst: Reservation,
        now: SystemTime,
    ) -> Result<Reservation, KeyRefusal> {
        let key = self.key(&caller.name);
        let key = &key;
        let verdict = self
            .seeded(&caller.name, now, || {
                self.link.run(|mut c| async move {
                    let mut invocation = self.reserve.key(key);
                    Self::prelude(&mut invocation, caller, now);
                    invocation
                        .arg(worst.tokens)
                        .arg(worst.usd)
                        .arg(TTL_SECONDS)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
            })
            .await;
        match verdict {
            Some(code) => match Breach::from_code(code) {
                None => Ok(Reservation {
                    shared: true,
                    ..worst
                }),
                Some(breach) => Err(breach.refusal(caller, now)),
            },
            None => self.local.reserve(caller, worst, now).await,
        }
    }

    async fn settle(&self, name: &str, held: Reservation, used: Reservation, now: SystemTime) {
        if held.shared {
            if !self.settle_shared(name, held, used, 0, now).await {
                // Redis went away meanwhile: release the hold there when it is back; count
                // the spend here, to be folded in then.
                if let Ok(mut pending) = self.pending_releases.lock() {
                    pending.push((name.to_string(), held));
                }
                self.local
                    .settle(name, Reservation::default(), used, now)
                    .await;
            }
            return;
        }
        // Held here (Redis was down when the request started): release it here, and count
        // the spend where everyone sees it, if Redis is back.
        self.local
            .settle(name, held, Reservation::default(), now)
            .await;
        if !self
            .settle_shared(name, Reservation::default(), used, 0, now)
            .await
        {
            self.local
                .settle(name, Reservation::default(), used, now)
                .await;
        }
    }

    async fn usage(&self, name: &str, now: SystemTime) -> KeyUsage {
        let key = self.key(name);
        let key = &key;
        let read = || {
            self.link.run(|mut c| async move {
                redis::cmd("HGETALL")
                    .arg(key)
                    .query_async::<HashMap<String, String>>(&mut c)
                    .await
            })
        };
        let mut fields = read().await;
        if fields.as_ref().is_some_and(|f| !f.contains_key("seeded"))
            && self.seed(name, now).await.is_some()
        {
            fields = read().await;
        }
        let Some(fields) = fields else {
            return self.local.usage(name, now).await;
        };
        let (day, month, _) = periods(now);
        let same = |field: &str, period: &str| fields.get(field).is_some_and(|v| v == period);
        let int = |field: &str| fields.get(field).and_then(|v| v.parse().ok()).unwrap_or(0);
        let float = |field: &str| {
            fields
                .get(field)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let today = same("day", &day);
        let this_month = same("month", &month);
        KeyUsage {
            requests_today: if today { int("req_day") } else { 0 },
            tokens_today: if today { int("tok_day") } else { 0 },
            tokens_month: if this_month { int("tok_month") } else { 0 },
            usd_today: if today { float("usd_day") } else { 0.0 },
            usd_month: if this_month { float("usd_month") } else { 0.0 },
            usd_total: float("usd_total"),
        }
    }
}
