//! Keeping the key ring in step with the store: virtual keys made by the CLI, the admin API or
//! another instance, and the config's environment keys after a reload. The store's
//! `keys_version` is polled every second; the ring is rebuilt only when it moved.

use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::Gateway;
use crate::store::keys;

const POLL_EVERY: Duration = Duration::from_secs(1);

/// Reload the ring from the store (when there is one) and the live config's environment keys.
pub async fn refresh_keys(gateway: &Arc<Gateway>) -> anyhow::Result<()> {
    let env_keys = gateway.snapshot.load().config.gateway_keys.clone();
    let Some(store) = gateway.store.clone() else {
        gateway.keys.load(&[], &env_keys);
        return Ok(());
    };
    let (version, rows) = tokio::task::spawn_blocking(move || {
        let connection = store.connect()?;
        let version = keys::version(&connection)?;
        let rows = keys::all(&connection)?;
        Ok::<_, anyhow::Error>((version, rows))
    })
    .await??;
    gateway.keys.load(&rows, &env_keys);
    if let Ok(mut seen) = gateway.keys.version.lock() {
        *seen = Some(version);
    }
    Ok(())
}

/// Poll the store's key version; rebuild the ring when it changed.
pub fn spawn_key_watcher(gateway: Arc<Gateway>) {
    let Some(store) = gateway.store.clone() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let store = store.clone();
            let version = tokio::task::spawn_blocking(move || {
                store.connect().and_then(|c| keys::version(&c))
            })
            .await;
            let Ok(Ok(version)) = version else { continue };
            let seen = gateway.keys.version.lock().ok().and_then(|v| *v);
            if seen != Some(version)
                && let Err(error) = refresh_keys(&gateway).await
            {
                tracing::warn!("cannot reload keys from the store: {error:#}");
            }
        }
    });
}
