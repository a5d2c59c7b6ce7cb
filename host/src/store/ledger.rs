//! Ledger rows: one per finished request, and the queries over them — usage grouped by key,
//! provider, model or day, and each key's spend so far, which is how budgets survive a
//! restart (the ledger is the record of what was spent; counters are rebuilt from it).

use rusqlite::{Connection, params};
use serde::Serialize;

use super::StoreError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRow {
    pub request_id: String,
    /// Unix milliseconds when the request finished.
    pub ts: i64,
    pub key: Option<String>,
    pub model: String,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub cached_tokens: Option<u32>,
    pub cost_usd: Option<f64>,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub attempts: u32,
    pub route: String,
    pub status: u16,
    /// "ok", "interrupted", or the error's code.
    pub outcome: String,
    pub stream: bool,
}

/// Write rows in one transaction: all or none.
pub fn insert(connection: &mut Connection, rows: &[LedgerRow]) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO ledger (request_id, ts, key, model, provider, upstream_model, \
             prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, ttft_ms, \
             attempts, route, status, outcome, stream) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        for row in rows {
            statement.execute(params![
                row.request_id,
                row.ts,
                row.key,
                row.model,
                row.provider,
                row.upstream_model,
                row.prompt_tokens,
                row.completion_tokens,
                row.cached_tokens,
                row.cost_usd,
                row.latency_ms,
                row.ttft_ms,
                row.attempts,
                row.route,
                row.status,
                row.outcome,
                row.stream,
            ])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Key,
    Provider,
    Model,
    Day,
    /// UTC hours (`2026-12-06 13:00`), for the dashboard's charts.
    Hour,
}

impl GroupBy {
    pub fn parse(text: &str) -> Option<GroupBy> {
        Some(match text {
            "key" => GroupBy::Key,
            "provider" => GroupBy::Provider,
            "model" => GroupBy::Model,
            "day" => GroupBy::Day,
            "hour" => GroupBy::Hour,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Key => "key",
            GroupBy::Provider => "provider",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
        }
    }

    fn expression(self) -> &'static str {
        match self {
            GroupBy::Key => "COALESCE(key, '(none)')",
            GroupBy::Provider => "COALESCE(provider, '(none)')",
            GroupBy::Model => "model",
            GroupBy::Day => "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')",
            GroupBy::Hour => "strftime('%Y-%m-%d %H:00', ts / 1000, 'unixepoch')",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    pub group: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}

/// Usage since `since_ms` (unix milliseconds), grouped, most expensive first.
pub fn usage(
    connection: &Connection,
    by: GroupBy,
    since_ms: i64,
) -> Result<Vec<UsageRow>, StoreError> {
    let group = by.expression();
    let mut statement = connection.prepare(&format!(
        "SELECT {group} AS g, COUNT(*), COALESCE(SUM(prompt_tokens), 0), \
         COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0.0) \
         FROM ledger WHERE ts >= ?1 GROUP BY g ORDER BY 5 DESC, 2 DESC, g"
    ))?;
    let rows = statement.query_map([since_ms], |row| {
        Ok(UsageRow {
            group: row.get(0)?,
            requests: row.get::<_, i64>(1)? as u64,
            prompt_tokens: row.get::<_, i64>(2)? as u64,
            completion_tokens: row.get::<_, i64>(3)? as u64,
            cost_usd: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The start of a `since` window (`24h`, `7d`, `30m`) before `now`, as unix milliseconds.
pub fn since_ms(since: &str, now: std::time::SystemTime) -> Result<i64, StoreError> {
    let window = humantime::parse_duration(since).map_err(|_| {
        StoreError::Invalid(format!(
            "since {since:?} is not a duration like 24h, 7d or 30m"
        ))
    })?;
    let start = now.checked_sub(window).unwrap_or(std::time::UNIX_EPOCH);
    Ok(super::unix_ms(start))
}

/// The usage report as JSON (the CLI's `--json` and `GET /admin/usage`).
pub fn usage_json(by: GroupBy, since: &str, rows: &[UsageRow]) -> serde_json::Value {
    serde_json::json!({"by": by.as_str(), "since": since, "rows": rows})
}

/// One key's use in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    pub requests: u64,
    pub tokens: u64,
    pub cost_usd: f64,
}

/// One key's use since `since_ms`.
pub fn spend_of_key(
    connection: &Connection,
    key: &str,
    since_ms: i64,
) -> Result<Spend, StoreError> {
    Ok(connection.query_row(
        "SELECT COUNT(*), COALESCE(SUM(COALESCE(prompt_tokens, 0) + \
         COALESCE(completion_tokens, 0)), 0), COALESCE(SUM(cost_usd), 0.0) \
         FROM ledger WHERE key = ?1 AND ts >= ?2",
        rusqlite::params![key, since_ms],
        |row| {
            Ok(Spend {
                requests: row.get::<_, i64>(0)? as u64,
                tokens: row.get::<_, i64>(1)? as u64,
                cost_usd: row.get(2)?,
            })
        },
    )?)
}

/// Every key's use since `since_ms`.
pub fn spend_by_key(
    connection: &Connection,
    since_ms: i64,
) -> Result<Vec<(String, Spend)>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT key, COUNT(*), COALESCE(SUM(COALESCE(prompt_tokens, 0) + \
         COALESCE(completion_tokens, 0)), 0), COALESCE(SUM(cost_usd), 0.0) \
         FROM ledger WHERE key IS NOT NULL AND ts >= ?1 GROUP BY key",
    )?;
    let rows = statement.query_map([since_ms], |row| {
        Ok((
            row.get::<_, String>(0)?,
            Spend {
                requests: row.get::<_, i64>(1)? as u64,
                tokens: row.get::<_, i64>(2)? as u64,
                cost_usd: row.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
