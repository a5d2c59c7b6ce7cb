//! Virtual key rows. A key's secret is never stored: only its SHA-256 (the lookup key) and a
//! short prefix to recognise it by in listings. Every change bumps `meta.keys_version`, which
//! running gateways poll to pick up keys made by the CLI or another instance.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;

/// A key's `priority` (its requests' place in a line waiting for capacity) when it sets none.
pub const DEFAULT_PRIORITY: u8 = 5;
/// Priorities run from 0 (background) to this.
pub const HIGHEST_PRIORITY: u8 = 9;

/// What a key may do. Every limit is optional; none set means none applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Public models this key may use (none: all).
    pub models: Option<Vec<String>>,
    /// Routing labels added to every request made with this key.
    pub tags: Option<Vec<String>>,
    pub owner: Option<String>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_requests: Option<u64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    /// A lifetime budget: it never resets.
    pub budget_usd: Option<f64>,
    /// Unix seconds after which the key is refused.
    pub expires_at: Option<i64>,
    /// The highest place (0-9) its requests take in a line waiting for capacity.
    #[serde(default)]
    pub priority: Option<u8>,
    /// The longest its requests wait for capacity; caps the model's `queue_wait_ms`.
    #[serde(default)]
    pub queue_wait_ms: Option<u64>,
}

/// A key as stored (no secret).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub name: String,
    pub hash: String,
    pub prefix: String,
    pub limits: KeyLimits,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The SHA-256 of a secret, hex: how keys are stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new secret: `fw-` and 40 hex characters (160 random bits).
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    format!("fw-{}", hex::encode(bytes))
}

fn json_list(list: &Option<Vec<String>>) -> Option<String> {
    list.as_ref()
        .map(|l| serde_json::to_string(l).unwrap_or_default())
}

fn parse_list(text: Option<String>) -> Option<Vec<String>> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn to_u64(value: Option<i64>) -> Option<u64> {
    value.and_then(|v| u64::try_from(v).ok())
}

fn from_u64(value: Option<u64>) -> Option<i64> {
    value.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

const COLUMNS: &str = "name, hash, prefix, owner, models, tags, rpm, tpm, daily_requests, \
    daily_tokens, monthly_tokens, daily_usd, monthly_usd, budget_usd, expires_at, created_at, \
    revoked_at, priority, queue_wait_ms";

fn read_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        name: row.get(0)?,
        hash: row.get(1)?,
        prefix: row.get(2)?,
        limits: KeyLimits {
            owner: row.get(3)?,
            models: parse_list(row.get(4)?),
            tags: parse_list(row.get(5)?),
            rpm: to_u64(row.get(6)?),
            tpm: to_u64(row.get(7)?),
            daily_requests: to_u64(row.get(8)?),
            daily_tokens: to_u64(row.get(9)?),
            monthly_tokens: to_u64(row.get(10)?),
            daily_usd: row.get(11)?,
            monthly_usd: row.get(12)?,
            budget_usd: row.get(13)?,
            expires_at: row.get(14)?,
            priority: row
                .get::<_, Option<i64>>(17)?
                .and_then(|p| u8::try_from(p).ok()),
            queue_wait_ms: to_u64(row.get(18)?),
        },
        created_at: row.get(15)?,
        revoked_at: row.get(16)?,
    })
}

fn bump_version(connection: &Connection) -> rusqlite::Result<()> {
    connection
        .execute("UPDATE meta SET v = v + 1 WHERE k = 'keys_version'", [])
        .map(|_| ())
}

/// The counter every key change bumps.
pub fn version(connection: &Connection) -> Result<i64, StoreError> {
    Ok(
        connection.query_row("SELECT v FROM meta WHERE k = 'keys_version'", [], |row| {
            row.get(0)
        })?,
    )
}

pub fn all(connection: &Connection) -> Result<Vec<KeyRow>, StoreError> {
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM keys ORDER BY created_at, name"
    ))?;
    let rows = statement.query_map([], read_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn get(connection: &Connection, name: &str) -> Result<Option<KeyRow>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM keys WHERE name = ?1"),
            [name],
            read_row,
        )
        .optional()?)
}

fn check_name(name: &str) -> Result<(), StoreError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "key name {name:?} must be 1-64 characters of letters, digits, - _ . @"
        )))
    }
}

/// Create a key; returns its row and the secret, which is not kept anywhere.
pub fn create(
    connection: &Connection,
    name: &str,
    limits: &KeyLimits,
    now_s: i64,
) -> Result<(KeyRow, String), StoreError> {
    check_name(name)?;
    if get(connection, name)?.is_some() {
        return Err(StoreError::Invalid(format!(
            "a key named '{name}' already exists"
        )));
    }
    let secret = new_secret();
    let row = KeyRow {
        name: name.to_string(),
        hash: hash_secret(&secret),
        prefix: secret[..10].to_string(),
        limits: limits.clone(),
        created_at: now_s,
        revoked_at: None,
    };
    connection.execute(
        &format!(
            "INSERT INTO keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
             ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
        ),
        params![
            row.name,
            row.hash,
            row.prefix,
            limits.owner,
            json_list(&limits.models),
            json_list(&limits.tags),
            from_u64(limits.rpm),
            from_u64(limits.tpm),
            from_u64(limits.daily_requests),
            from_u64(limits.daily_tokens),
            from_u64(limits.monthly_tokens),
            limits.daily_usd,
            limits.monthly_usd,
            limits.budget_usd,
            limits.expires_at,
            row.created_at,
            row.revoked_at,
            limits.priority,
            from_u64(limits.queue_wait_ms),
        ],
    )?;
    bump_version(connection)?;
    Ok((row, secret))
}

/// Replace a key's limits.
pub fn update(
    connection: &Connection,
    name: &str,
    limits: &KeyLimits,
) -> Result<KeyRow, StoreError> {
    let changed = connection.execute(
        "UPDATE keys SET owner = ?2, models = ?3, tags = ?4, rpm = ?5, tpm = ?6, \
         daily_requests = ?7, daily_tokens = ?8, monthly_tokens = ?9, daily_usd = ?10, \
         monthly_usd = ?11, budget_usd = ?12, expires_at = ?13, priority = ?14, \
         queue_wait_ms = ?15 WHERE name = ?1",
        params![
            name,
            limits.owner,
            json_list(&limits.models),
            json_list(&limits.tags),
            from_u64(limits.rpm),
            from_u64(limits.tpm),
            from_u64(limits.daily_requests),
            from_u64(limits.daily_tokens),
            from_u64(limits.monthly_tokens),
            limits.daily_usd,
            limits.monthly_usd,
            limits.budget_usd,
            limits.expires_at,
            limits.priority,
            from_u64(limits.queue_wait_ms),
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!("no key named '{name}'")));
    }
    bump_version(connection)?;
    get(connection, name)?.ok_or_else(|| StoreError::Invalid(format!("no key named '{name}'")))
}

/// Revoke a key: it stays listed (and its usage in the ledger), but is refused from now on.
pub fn revoke(connection: &Connection, name: &str, now_s: i64) -> Result<KeyRow, StoreError> {
    let changed = connection.execute(
        "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1",
        params![name, now_s],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!("no key named '{name}'")));
    }
    bump_version(connection)?;
    get(connection, name)?.ok_or_else(|| StoreError::Invalid(format!("no key named '{name}'")))
}

/// Changes to a key's limits, as the CLI's flags or the admin API's JSON give them: a field
/// that is present replaces the current value; an absent one leaves it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    pub name: Option<String>,
    pub owner: Option<String>,
    pub models: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub daily_requests: Option<u64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub budget_usd: Option<f64>,
    /// RFC 3339 (`2026-12-31T00:00:00Z`) or a duration from now (`30d`, `12h`).
    pub expires_at: Option<String>,
    /// 0-9: the highest place its requests take in a line waiting for capacity.
    pub priority: Option<u8>,
    pub queue_wait_ms: Option<u64>,
}

impl KeySpec {
    /// Apply these changes to `limits`; `now_s` anchors a relative expiry.
    pub fn apply(&self, limits: &mut KeyLimits, now_s: i64) -> Result<(), StoreError> {
        let set = |slot: &mut Option<u64>, value: Option<u64>| {
            if value.is_some() {
                *slot = value;
            }
        };
        set(&mut limits.rpm, self.rpm);
        set(&mut limits.tpm, self.tpm);
        set(&mut limits.daily_requests, self.daily_requests);
        set(&mut limits.daily_tokens, self.daily_tokens);
        set(&mut limits.monthly_tokens, self.monthly_tokens);
        set(&mut limits.queue_wait_ms, self.queue_wait_ms);
        if let Some(priority) = self.priority {
            if priority > HIGHEST_PRIORITY {
                return Err(StoreError::Invalid(format!(
                    "priority must be from 0 to {HIGHEST_PRIORITY}"
                )));
            }
            limits.priority = Some(priority);
        }
        for (slot, value, name) in [
            (&mut limits.daily_usd, self.daily_usd, "daily_usd"),
            (&mut limits.monthly_usd, self.monthly_usd, "monthly_usd"),
            (&mut limits.budget_usd, self.budget_usd, "budget_usd"),
        ] {
            if let Some(value) = value {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(StoreError::Invalid(format!(
                        "{name} must be a non-negative amount"
                    )));
                }
                *slot = Some(value);
            }
        }
        if self.owner.is_some() {
            limits.owner = self.owner.clone();
        }
        if self.models.is_some() {
            limits.models = self.models.clone();
        }
        if self.tags.is_some() {
            limits.tags = self.tags.clone();
        }
        if let Some(expiry) = &self.expires_at {
            limits.expires_at = Some(parse_expiry(expiry, now_s)?);
        }
        Ok(())
    }
}

/// RFC 3339 or a duration from now, to unix seconds.
pub fn parse_expiry(text: &str, now_s: i64) -> Result<i64, StoreError> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64));
    }
    humantime::parse_duration(text)
        .map(|d| now_s + d.as_secs() as i64)
        .map_err(|_| {
            StoreError::Invalid(format!(
                "expiry {text:?} is neither a time like 2026-12-31T00:00:00Z nor a duration like 30d"
            ))
        })
}

/// What a key has spent, for listings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeySpend {
    pub usd_today: f64,
    pub usd_month: f64,
    pub usd_total: f64,
    pub tokens_today: u64,
}

fn rfc3339(unix_s: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_s.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A key as listings show it: never its secret or its hash.
pub fn view(row: &KeyRow, spend: KeySpend) -> serde_json::Value {
    let l = &row.limits;
    serde_json::json!({
        "name": row.name,
        "prefix": row.prefix,
        "owner": l.owner,
        "models": l.models,
        "tags": l.tags,
        "rpm": l.rpm,
        "tpm": l.tpm,
        "daily_requests": l.daily_requests,
        "daily_tokens": l.daily_tokens,
        "monthly_tokens": l.monthly_tokens,
        "daily_usd": l.daily_usd,
        "monthly_usd": l.monthly_usd,
        "budget_usd": l.budget_usd,
        "priority": l.priority,
        "queue_wait_ms": l.queue_wait_ms,
        "created_at": rfc3339(row.created_at),
        "expires_at": l.expires_at.map(rfc3339),
        "revoked": row.revoked_at.is_some(),
        "revoked_at": row.revoked_at.map(rfc3339),
        "spent_usd_today": spend.usd_today,
        "spent_usd_month": spend.usd_month,
        "spent_usd_total": spend.usd_total,
        "tokens_today": spend.tokens_today,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;

    #[test]
    fn stores_only_the_hash_and_finds_it_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("k.db")).expect("store");
        let connection = store.connect().expect("connect");
        let limits = KeyLimits {
            models: Some(vec!["fast".into()]),
            daily_usd: Some(1.5),
            ..KeyLimits::default()
        };
        let before = version(&connection).expect("version");
        let (row, secret) = create(&connection, "team-a", &limits, 1).expect("created");
        assert!(secret.starts_with("fw-") && secret.len() == 43);
        assert_eq!(row.hash, hash_secret(&secret));
        assert!(version(&connection).expect("version") > before);
        let raw = std::fs::read(store.path()).unwrap_or_default();
        assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert_eq!(get(&connection, "team-a").expect("get"), Some(row.clone()));
        assert!(create(&connection, "team-a", &limits, 2).is_err());
        let revoked = revoke(&connection, "team-a", 5).expect("revoked");
        assert_eq!(revoked.revoked_at, Some(5));
        assert!(create(&connection, "bad name", &limits, 2).is_err());
    }
}
