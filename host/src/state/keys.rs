//! Gateway keys' usage against their limits — request and token rates, daily caps, and budgets
//! that are hard stops: a request reserves its worst case before it is forwarded and settles
//! with what it really used, so concurrent requests cannot overshoot.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::until_next_utc_midnight;
use crate::store::keys::KeyLimits;
use crate::store::ledger::Spend;

/// Who is calling: a key's name and what it may do.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub name: String,
    pub limits: KeyLimits,
    /// An `[auth] keys` entry from the config: its `daily_tokens` is a cap on what was used
    /// (checked before each request), as it always was; a virtual key's is a hard budget.
    pub from_config: bool,
}

/// Why a key was refused a request.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyRefusal {
    /// A daily request or token cap (counted from what was used).
    DailyCap { cap: String, retry_after: Duration },
    /// A budget would be overshot; `retry_after` is its reset, none for a lifetime budget.
    Budget {
        budget: String,
        retry_after: Option<Duration>,
    },
    /// Requests or tokens per minute.
    Rate {
        limit: String,
        retry_after: Duration,
    },
}

/// What a request holds against its key's budgets until it settles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reservation {
    pub tokens: u64,
    pub usd: f64,
    /// Held in the shared store (Redis) rather than this process: it must be released there.
    pub shared: bool,
}

/// Usage of one key now (for listings).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeyUsage {
    pub requests_today: u64,
    pub tokens_today: u64,
    pub tokens_month: u64,
    pub usd_today: f64,
    pub usd_month: f64,
    pub usd_total: f64,
}

/// Gateway keys' usage against their limits.
#[async_trait]
pub trait KeyUsageStore: Send + Sync {
    /// Count one request: per-minute rate, daily caps, budgets already spent.
    async fn admit(&self, caller: &Caller, now: SystemTime) -> Result<(), KeyRefusal>;
    /// Hold a request's worst case against the key's hard budgets.
    async fn reserve(
        &self,
        caller: &Caller,
        worst: Reservation,
        now: SystemTime,
    ) -> Result<Reservation, KeyRefusal>;
    /// Replace a reservation with what the request really used.
    async fn settle(&self, name: &str, held: Reservation, used: Reservation, now: SystemTime);
    async fn usage(&self, name: &str, now: SystemTime) -> KeyUsage;
}

/// Civil (year, month) of a time, UTC.
fn year_month(now: SystemTime) -> (i64, u32) {
    let days = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// Unix seconds of the first instant of a civil month, UTC.
fn month_start(year: i64, month: u32) -> i64 {
    let (y, m) = if month <= 2 {
        (year - 1, i64::from(month) + 9)
    } else {
        (year, i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * m + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * 86_400
}

/// When the current UTC month began, as unix milliseconds.
pub fn this_month_start_ms(now: SystemTime) -> i64 {
    let (year, month) = year_month(now);
    month_start(year, month) * 1000
}

/// When the current UTC day began, as unix milliseconds.
pub fn today_start_ms(now: SystemTime) -> i64 {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    (secs - secs % 86_400) * 1000
}

fn until_next_month(now: SystemTime) -> Duration {
    let (year, month) = year_month(now);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let next = month_start(year, month);
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    Duration::from_secs((next - secs).max(1) as u64)
}

#[derive(Debug, Default)]
struct Counters {
    day: i64,
    month: (i64, u32),
    minute: i64,
    requests_today: u64,
    tokens_today: u64,
    tokens_month: u64,
    usd_today: f64,
    usd_month: f64,
    usd_total: f64,
    requests_minute: u64,
    tokens_minute: u64,
    /// Worst cases held by requests in flight.
    held: Reservation,
}

impl Counters {
    /// Start a new day, month or minute where one has begun.
    fn roll(&mut self, now: SystemTime) {
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as i64;
        if self.day != secs / 86_400 {
            self.day = secs / 86_400;
            self.requests_today = 0;
            self.tokens_today = 0;
            self.usd_today = 0.0;
        }
        let month = year_month(now);
        if self.month != month {
            self.month = month;
            self.tokens_month = 0;
            self.usd_month = 0.0;
        }
        if self.minute != secs / 60 {
            self.minute = secs / 60;
            self.requests_minute = 0;
            self.tokens_minute = 0;
        }
    }
}

/// Key usage in this process's memory, rebuilt from the ledger at start.
#[derive(Default)]
pub struct MemoryKeyUsage {
    map: Mutex<HashMap<String, Counters>>,
}

impl MemoryKeyUsage {
    /// Seed counters from the ledger: today's, this month's and all-time spend per key.
    pub fn restore(
        &self,
        today: &[(String, Spend)],
        month: &[(String, Spend)],
        total: &[(String, Spend)],
        now: SystemTime,
    ) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for (name, spend) in total {
            let counters = map.entry(name.clone()).or_default();
            counters.roll(now);
            counters.usd_total = spend.cost_usd;
        }
        for (name, spend) in month {
            let counters = map.entry(name.clone()).or_default();
            counters.roll(now);
            counters.tokens_month = spend.tokens;
            counters.usd_month = spend.cost_usd;
        }
        for (name, spend) in today {
            let counters = map.entry(name.clone()).or_default();
            counters.roll(now);
            counters.requests_today = spend.requests;
            counters.tokens_today = spend.tokens;
            counters.usd_today = spend.cost_usd;
        }
    }

    /// Every key's usage so far, forgetting it (what an outage counted, to hand to the shared
    /// store once it is back).
    pub fn drain(&self) -> Vec<(String, KeyUsage)> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.drain()
            .map(|(name, c)| {
                (
                    name,
                    KeyUsage {
                        requests_today: c.requests_today,
                        tokens_today: c.tokens_today,
                        tokens_month: c.tokens_month,
                        usd_today: c.usd_today,
                        usd_month: c.usd_month,
                        usd_total: c.usd_total,
                    },
                )
            })
            .collect()
    }

    fn with<R>(&self, name: &str, now: SystemTime, f: impl FnOnce(&mut Counters) -> R) -> R {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let counters = match map.get_mut(name) {
            Some(counters) => counters,
            None => map.entry(name.to_string()).or_default(),
        };
        counters.roll(now);
        f(counters)
    }
}

/// Which limit a request would break. The codes are shared with the Redis scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    DailyUsd = 1,
    MonthlyUsd = 2,
    LifetimeUsd = 3,
    DailyTokens = 4,
    MonthlyTokens = 5,
    DailyRequestsCap = 10,
    DailyTokensCap = 11,
    Rpm = 12,
    Tpm = 13,
}

impl Breach {
    /// The breach a script answered, `None` for 0 (no breach) or an unknown code.
    pub fn from_code(code: i64) -> Option<Breach> {
        Some(match code {
            1 => Breach::DailyUsd,
            2 => Breach::MonthlyUsd,
            3 => Breach::LifetimeUsd,
            4 => Breach::DailyTokens,
            5 => Breach::MonthlyTokens,
            10 => Breach::DailyRequestsCap,
            11 => Breach::DailyTokensCap,
            12 => Breach::Rpm,
            13 => Breach::Tpm,
            _ => return None,
        })
    }

    /// What the client is told: the limit in words and when it frees.
    pub fn refusal(self, caller: &Caller, now: SystemTime) -> KeyRefusal {
        let l = &caller.limits;
        let num = |n: Option<u64>| n.unwrap_or_default();
        let usd = |n: Option<f64>| format!("${}", n.unwrap_or_default());
        let budget = |budget: String, retry_after| KeyRefusal::Budget {
            budget,
            retry_after,
        };
        let midnight = until_next_utc_midnight(now);
        match self {
            Breach::DailyUsd => budget(
                format!("daily budget of {}", usd(l.daily_usd)),
                Some(midnight),
            ),
            Breach::MonthlyUsd => budget(
                format!("monthly budget of {}", usd(l.monthly_usd)),
                Some(until_next_month(now)),
            ),
            Breach::LifetimeUsd => budget(format!("budget of {}", usd(l.budget_usd)), None),
            Breach::DailyTokens => budget(
                format!("daily budget of {} tokens", num(l.daily_tokens)),
                Some(midnight),
            ),
            Breach::MonthlyTokens => budget(
                format!("monthly budget of {} tokens", num(l.monthly_tokens)),
                Some(until_next_month(now)),
            ),
            Breach::DailyRequestsCap => KeyRefusal::DailyCap {
                cap: format!("{} requests", num(l.daily_requests)),
                retry_after: midnight,
            },
            Breach::DailyTokensCap => KeyRefusal::DailyCap {
                cap: format!("{} tokens", num(l.daily_tokens)),
                retry_after: midnight,
            },
            Breach::Rpm => KeyRefusal::Rate {
                limit: format!("{} requests per minute", num(l.rpm)),
                retry_after: until_next_minute(now),
            },
            Breach::Tpm => KeyRefusal::Rate {
                limit: format!("{} tokens per minute", num(l.tpm)),
                retry_after: until_next_minute(now),
            },
        }
    }
}

/// The UTC day, month and minute of `now`, as the numbers counters are kept under.
pub fn periods(now: SystemTime) -> (String, String, String) {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, month) = year_month(now);
    (
        (secs / 86_400).to_string(),
        format!("{year}{month:02}"),
        (secs / 60).to_string(),
    )
}

/// The first hard budget `extra` more would overshoot.
fn over_budget(c: &Counters, caller: &Caller, extra: Reservation) -> Option<Breach> {
    let limits = &caller.limits;
    let tokens = |used: u64| used + c.held.tokens + extra.tokens;
    let dollars = |used: f64| used + c.held.usd + extra.usd;
    // Strictly over: a budget may be spent exactly, to the cent.
    let over = |total: f64, budget: Option<f64>| budget.is_some_and(|b| total > b + 1e-9);
    if over(dollars(c.usd_today), limits.daily_usd) {
        return Some(Breach::DailyUsd);
    }
    if over(dollars(c.usd_month), limits.monthly_usd) {
        return Some(Breach::MonthlyUsd);
    }
    if over(dollars(c.usd_total), limits.budget_usd) {
        return Some(Breach::LifetimeUsd);
    }
    if let Some(budget) = limits.daily_tokens.filter(|_| !caller.from_config)
        && tokens(c.tokens_today) > budget
    {
        return Some(Breach::DailyTokens);
    }
    if let Some(budget) = limits.monthly_tokens
        && tokens(c.tokens_month) > budget
    {
        return Some(Breach::MonthlyTokens);
    }
    None
}

fn until_next_minute(now: SystemTime) -> Duration {
    let ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(60_000 - ms % 60_000)
}

#[async_trait]
impl KeyUsageStore for MemoryKeyUsage {
    async fn admit(&self, caller: &Caller, now: SystemTime) -> Result<(), KeyRefusal> {
        let limits = &caller.limits;
        let breach = self.with(&caller.name, now, |c| {
            let reached = |used: u64, cap: Option<u64>| cap.is_some_and(|cap| used >= cap);
            let breach = if reached(c.requests_today, limits.daily_requests) {
                Some(Breach::DailyRequestsCap)
            } else if reached(
                c.tokens_today,
                limits.daily_tokens.filter(|_| caller.from_config),
            ) {
                Some(Breach::DailyTokensCap)
            } else if reached(c.requests_minute, limits.rpm) {
                Some(Breach::Rpm)
            } else if reached(c.tokens_minute, limits.tpm) {
                Some(Breach::Tpm)
            } else {
                // Already spent: refuse before routing, with nothing to reserve.
                over_budget(c, caller, Reservation::default())
            };
            if breach.is_none() {
                c.requests_today += 1;
                c.requests_minute += 1;
            }
            breach
        });
        match breach {
            Some(breach) => Err(breach.refusal(caller, now)),
            None => Ok(()),
        }
    }

    async fn reserve(
        &self,
        caller: &Caller,
        worst: Reservation,
        now: SystemTime,
    ) -> Result<Reservation, KeyRefusal> {
        self.with(&caller.name, now, |c| {
            if let Some(breach) = over_budget(c, caller, worst) {
                return Err(breach.refusal(caller, now));
            }
            c.held.tokens += worst.tokens;
            c.held.usd += worst.usd;
            Ok(worst)
        })
    }

    async fn settle(&self, name: &str, held: Reservation, used: Reservation, now: SystemTime) {
        self.with(name, now, |c| {
            c.held.tokens = c.held.tokens.saturating_sub(held.tokens);
            c.held.usd = (c.held.usd - held.usd).max(0.0);
            c.tokens_today += used.tokens;
            c.tokens_month += used.tokens;
            c.tokens_minute += used.tokens;
            c.usd_today += used.usd;
            c.usd_month += used.usd;
            c.usd_total += used.usd;
        });
    }

    async fn usage(&self, name: &str, now: SystemTime) -> KeyUsage {
        self.with(name, now, |c| KeyUsage {
            requests_today: c.requests_today,
            tokens_today: c.tokens_today,
            tokens_month: c.tokens_month,
            usd_today: c.usd_today,
            usd_month: c.usd_month,
            usd_total: c.usd_total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_arithmetic_matches_the_calendar() {
        // 2026-12-05T00:00:00Z
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_428_800);
        assert_eq!(year_month(t), (2026, 12));
        assert_eq!(month_start(2026, 12), 1_796_083_200); // 2026-12-01
        assert_eq!(month_start(2027, 1), 1_798_761_600); // 2027-01-01
        assert_eq!(
            until_next_month(t),
            Duration::from_secs(1_798_761_600 - 1_796_428_800)
        );
    }

    #[tokio::test]
    async fn concurrent_reservations_never_overshoot_a_budget() {
        let store = MemoryKeyUsage::default();
        let caller = Caller {
            name: "k".into(),
            limits: KeyLimits {
                daily_usd: Some(1.0),
                ..KeyLimits::default()
            },
            from_config: false,
        };
        let now = SystemTime::now();
        let worst = Reservation {
            tokens: 10,
            usd: 0.2,
            shared: false,
        };
        let mut held = Vec::new();
        for _ in 0..5 {
            store.admit(&caller, now).await.expect("admitted");
            held.push(store.reserve(&caller, worst, now).await.expect("fits"));
        }
        assert!(matches!(
            store.reserve(&caller, worst, now).await,
            Err(KeyRefusal::Budget { .. })
        ));
        // Settling for less frees room again.
        store
            .settle(
                "k",
                held[0],
                Reservation {
                    tokens: 5,
                    usd: 0.1,
                    shared: false,
                },
                now,
            )
            .await;
        assert!(store.reserve(&caller, worst, now).await.is_err());
        store
            .settle("k", held[1], Reservation::default(), now)
            .await;
        assert!(store.reserve(&caller, worst, now).await.is_ok());
    }
}
