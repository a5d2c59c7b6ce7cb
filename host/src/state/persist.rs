//! Target state that survives a restart: with a SQLite store, the shared quota state (token
//! buckets, cooldowns, reported remaining counts) is restored at start, saved every second
//! while it changes, and saved once more at shutdown. At most a second of counting is lost
//! to a crash; a clean stop loses nothing.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::memory::{MemoryQuotas, Quota};
use crate::config::TargetRef;
use crate::store::{Store, StoreError, targets, unix_ms};

const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Load saved target state into `quotas`. Unreadable rows are skipped with a warning: a
/// state format from another version must not stop the gateway.
pub fn restore(quotas: &MemoryQuotas, store: &Store) -> Result<usize, StoreError> {
    let connection = store.connect()?;
    let mut restored = Vec::new();
    for (target, state) in targets::load(&connection)? {
        let Some((provider, model)) = target.split_once('/') else {
            continue;
        };
        match serde_json::from_str::<Quota>(&state) {
            Ok(quota) => restored.push((
                TargetRef {
                    provider: provider.to_string(),
                    model: model.to_string(),
                },
                quota,
            )),
            Err(error) => tracing::warn!(%target, "ignoring saved state: {error}"),
        }
    }
    let count = restored.len();
    quotas.import(restored);
    Ok(count)
}

/// Save every target's state now (blocking).
pub fn save(quotas: &MemoryQuotas, store: &Store) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = quotas
        .export()
        .into_iter()
        .filter_map(|(target, quota)| {
            serde_json::to_string(&quota)
                .ok()
                .map(|json| (target.to_string(), json))
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut connection = store.connect()?;
    targets::save(&mut connection, &rows, unix_ms(SystemTime::now()))
}

/// Save every second while the state changes, off the async workers.
pub fn spawn_saver(quotas: Arc<MemoryQuotas>, store: Store) {
    tokio::spawn(async move {
        let mut saved_at = quotas.changes();
        let mut failing = false;
        loop {
            tokio::time::sleep(SAVE_EVERY).await;
            let changes = quotas.changes();
            if changes == saved_at {
                continue;
            }
            let (q, s) = (quotas.clone(), store.clone());
            let result = tokio::task::spawn_blocking(move || save(&q, &s)).await;
            match result {
                Ok(Ok(())) => {
                    saved_at = changes;
                    if failing {
                        tracing::info!("target state saved again");
                        failing = false;
                    }
                }
                Ok(Err(error)) if !failing => {
                    tracing::warn!("cannot save target state (retrying every second): {error}");
                    failing = true;
                }
                _ => {}
            }
        }
    });
}
