//! Gateway keys' usage on Redis: one hash per key holding the day's, month's and minute's
//! counts, the lifetime spend and the worst cases held by requests in flight, so caps and
//! hard budgets hold across every instance. While the link is down the in-memory store
//! serves; what it counted is added to Redis when the link returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::{RedisLink, TTL_SECONDS, scripts};
use crate::state::MemoryKeyUsage;
use crate::state::keys::{
    Breach, Caller, KeyRefusal, KeyUsage, KeyUsageStore, Reservation, periods,
};

pub struct RedisKeyUsage {
    link: Arc<RedisLink>,
    local: MemoryKeyUsage,
    admit: redis::Script,
    reserve: redis::Script,
    settle: redis::Script,
}

/// A limit as a script argument: -1 for none.
fn arg_u(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

fn arg_f(limit: Option<f64>) -> f64 {
    limit.unwrap_or(-1.0)
}

impl RedisKeyUsage {
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisKeyUsage {
            link,
            local: MemoryKeyUsage::default(),
            admit: redis::Script::new(&scripts::admit()),
            reserve: redis::Script::new(&scripts::reserve()),
            settle: redis::Script::new(&scripts::settle()),
        }
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

    /// Add what was counted locally during an outage. False when Redis failed again.
    pub async fn reconcile(&self) -> bool {
        let now = SystemTime::now();
        for (name, usage) in self.local.drain() {
            let key = self.key(&name);
            let key = &key;
            let caller = Caller {
                name: name.clone(),
                limits: Default::default(),
                from_config: false,
            };
            let caller = &caller;
            let done = self
                .link
                .run(|mut c| async move {
                    let mut invocation = self.settle.key(key);
                    Self::prelude(&mut invocation, caller, now);
                    invocation
                        .arg(0)
                        .arg(0.0)
                        .arg(usage.tokens_today)
                        .arg(usage.usd_today)
                        .arg(usage.requests_today)
                        .arg(TTL_SECONDS)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await;
            if done.is_none() {
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
            .link
            .run(|mut c| async move {
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
            .link
            .run(|mut c| async move {
                let mut invocation = self.reserve.key(key);
                Self::prelude(&mut invocation, caller, now);
                invocation
                    .arg(worst.tokens)
                    .arg(worst.usd)
                    .arg(TTL_SECONDS)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        match verdict {
            Some(code) => match Breach::from_code(code) {
                None => Ok(worst),
                Some(breach) => Err(breach.refusal(caller, now)),
            },
            None => self.local.reserve(caller, worst, now).await,
        }
    }

    async fn settle(&self, name: &str, held: Reservation, used: Reservation, now: SystemTime) {
        let key = self.key(name);
        let key = &key;
        let caller = Caller {
            name: name.to_string(),
            limits: Default::default(),
            from_config: false,
        };
        let caller = &caller;
        let done = self
            .link
            .run(|mut c| async move {
                let mut invocation = self.settle.key(key);
                Self::prelude(&mut invocation, caller, now);
                invocation
                    .arg(held.tokens)
                    .arg(held.usd)
                    .arg(used.tokens)
                    .arg(used.usd)
                    .arg(0)
                    .arg(TTL_SECONDS)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        if done.is_none() {
            self.local.settle(name, held, used, now).await;
        }
    }

    async fn usage(&self, name: &str, now: SystemTime) -> KeyUsage {
        let key = self.key(name);
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
