//! Target state rows: the shared part of each target's state (buckets, cooldown, what the
//! upstream reported), saved as JSON so a restarted gateway still waits out a Retry-After
//! and still counts the day's free-tier quota.

use rusqlite::{Connection, params};

use super::StoreError;

/// Save (insert or replace) the given targets' state.
pub fn save(
    connection: &mut Connection,
    rows: &[(String, String)],
    now_ms: i64,
) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO target_state (target, state, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT(target) DO UPDATE SET state = excluded.state, \
             updated_at = excluded.updated_at",
        )?;
        for (target, state) in rows {
            statement.execute(params![target, state, now_ms])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// Every saved target state: (target as `provider/model`, JSON).
pub fn load(connection: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection.prepare("SELECT target, state FROM target_state")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
