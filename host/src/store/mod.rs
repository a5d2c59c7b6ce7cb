//! The embedded database: one SQLite file (WAL mode) holding virtual keys, the usage ledger
//! and the target state that must survive a restart. Created and migrated on open, with
//! versioned migrations (`PRAGMA user_version`), so an older file is brought up to date and a
//! newer one is refused rather than misread.
//!
//! Everything here is blocking (rusqlite): callers run it on a blocking thread, the ledger's
//! writer thread or the CLI, never on a request's task. Each caller opens its own connection;
//! SQLite serialises writers and WAL lets readers run beside them.

pub mod keys;
pub mod ledger;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// Migrations, in order; the file's `user_version` says how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: keys, ledger, target state, change counters.
    "CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        owner TEXT,
        models TEXT,
        tags TEXT,
        rpm INTEGER,
        tpm INTEGER,
        daily_requests INTEGER,
        daily_tokens INTEGER,
        monthly_tokens INTEGER,
        daily_usd REAL,
        monthly_usd REAL,
        budget_usd REAL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE ledger (
        request_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        key TEXT,
        model TEXT NOT NULL,
        provider TEXT,
        upstream_model TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cached_tokens INTEGER,
        cost_usd REAL,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        attempts INTEGER NOT NULL,
        route TEXT NOT NULL,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        stream INTEGER NOT NULL
    );
    CREATE INDEX ledger_by_time ON ledger(ts);
    CREATE INDEX ledger_by_key ON ledger(key, ts);
    CREATE TABLE target_state (
        target TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
    INSERT INTO meta (k, v) VALUES ('keys_version', 0);",
    // 2: a key's place in a line waiting for capacity, and how long it may wait there.
    "ALTER TABLE keys ADD COLUMN priority INTEGER;
    ALTER TABLE keys ADD COLUMN queue_wait_ms INTEGER;",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store {path} was written by a newer Freeway (schema {found}, this one knows {known})"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Where the database is; each user opens its own connection.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// Open (creating and migrating when needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let store = Store {
            path: path.to_path_buf(),
        };
        let mut connection = store.connect()?;
        migrate(&mut connection, path)?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection: WAL, a busy timeout so writers wait for each other briefly.
    pub fn connect(&self) -> Result<Connection, StoreError> {
        let open = |source| StoreError::Open {
            path: self.path.clone(),
            source,
        };
        let connection = Connection::open(&self.path).map_err(open)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(open)?;
        // WAL: readers never block the writer. A read-only file keeps its journal mode.
        let _ = connection.pragma_update(None, "journal_mode", "WAL");
        let _ = connection.pragma_update(None, "synchronous", "NORMAL");
        Ok(connection)
    }
}

fn migrate(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", (i + 1) as i64)?;
        transaction.commit()?;
        tracing::info!(store = %path.display(), version = i + 1, "store migrated");
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_migrates_once_and_refuses_a_newer_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/freeway.db");
        Store::open(&path).expect("created");
        Store::open(&path).expect("reopened without migrating again");
        let connection = Connection::open(&path).expect("open");
        connection
            .pragma_update(None, "user_version", 99)
            .expect("bump");
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }
}
