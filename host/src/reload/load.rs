//! Loading what a gateway serves from: the config, the plugin folder, and the check that they
//! fit together — the same steps at start (`freeway serve`, `freeway check`) as on reload, so a
//! file that would be refused on reload is refused at start too. At start also: the store
//! (opened and migrated), the state it restores, the ledger's writer, the key ring.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, bail};

use crate::config::{Config, StorePath};
use crate::ledger::Ledger;
use crate::pipeline::{Gateway, Snapshot};
use crate::plugins::fit::{check_plugin_settings, check_plugins};
use crate::plugins::{PluginSet, Runtime};
use crate::state::keys::{this_month_start_ms, today_start_ms};
use crate::state::memory::{MemoryQuotas, MemorySessions};
use crate::state::{MemoryKeyUsage, SharedState, persist, redis};
use crate::store::{Store, ledger};
use crate::telemetry::Telemetry;

use super::keys::refresh_keys;

/// Load and validate everything a gateway needs, logging what is disabled and why.
pub async fn load_snapshot(runtime: &Arc<Runtime>, config_path: &Path) -> anyhow::Result<Snapshot> {
    let config = Config::load(config_path)?;
    let plugins = PluginSet::load_dir(
        runtime,
        &config.plugin_dir,
        config.cache_dir.as_deref(),
        &|name| config.limits_for(name),
    )
    .await?;
    check_plugins(&config, &plugins)?;
    check_plugin_settings(&config, &plugins).await?;
    for provider in config.providers.values() {
        match &provider.disabled {
            Some(why) => tracing::warn!(provider = %provider.name, "provider disabled: {why}"),
            None => {
                tracing::info!(provider = %provider.name, adapter = %provider.adapter, models = provider.models.len(), "provider enabled")
            }
        }
    }
    if config.providers.values().all(|p| p.disabled.is_some()) && !config.providers.is_empty() {
        tracing::warn!(
            "no provider is enabled: set the API key variables named in {}",
            config.source.display()
        );
    }
    Ok(Snapshot::new(config, plugins))
}

/// Open the store the config names, when it names one.
pub fn open_store(config: &Config) -> anyhow::Result<Option<Store>> {
    match &config.store {
        StorePath::Memory => Ok(None),
        StorePath::Sqlite(path) => Ok(Some(Store::open(path)?)),
    }
}

/// A gateway ready to serve: runtime, first snapshot, store and what it restores, ledger,
/// keys.
pub async fn build_gateway(config_path: &Path) -> anyhow::Result<Arc<Gateway>> {
    let runtime = Arc::new(Runtime::new().context("cannot start the WebAssembly runtime")?);
    let snapshot = load_snapshot(&runtime, config_path).await?;
    if snapshot.config.providers.is_empty() {
        bail!(
            "invalid config: no [providers.*] configured in {}",
            config_path.display()
        );
    }
    let store = open_store(&snapshot.config)?;
    let ledger = match &store {
        Some(store) if snapshot.config.ledger.enabled => {
            Ledger::start(store.clone(), snapshot.config.ledger.queue)?
        }
        _ => Ledger::disabled(),
    };
    // Shared state: on Redis when configured (it outlives any one instance), else in this
    // process, saved to the store so it survives a restart.
    let (shared, saved_quotas, redis) = match &snapshot.config.state.redis_url {
        Some(url) => {
            let (shared, link) = redis::connect(&snapshot.config.state, url, store.clone()).await?;
            (shared, None, Some(link))
        }
        None => {
            let quotas = Arc::new(MemoryQuotas::default());
            let key_usage = Arc::new(MemoryKeyUsage::default());
            if let Some(store) = &store {
                let restored = persist::restore(&quotas, store)?;
                restore_key_usage(&key_usage, store)?;
                tracing::info!(store = %store.path().display(), targets = restored, "store opened");
                persist::spawn_saver(quotas.clone(), store.clone());
            }
            let shared = SharedState {
                quotas: quotas.clone(),
                sessions: Arc::new(MemorySessions::default()),
                key_usage,
            };
            (shared, store.is_some().then_some(quotas), None)
        }
    };
    let mut gateway = Gateway::new(runtime, snapshot, shared, store, ledger, redis)?;
    gateway.saved_quotas = saved_quotas;
    gateway.telemetry = Telemetry::start(&gateway.snapshot.load().config.telemetry)?;
    let gateway = Arc::new(gateway);
    refresh_keys(&gateway).await?;
    Ok(gateway)
}

/// Budgets survive a restart: each key's spend today, this month and in all, from the ledger.
fn restore_key_usage(usage: &MemoryKeyUsage, store: &Store) -> anyhow::Result<()> {
    let now = SystemTime::now();
    let connection = store.connect()?;
    let today = ledger::spend_by_key(&connection, today_start_ms(now))?;
    let month = ledger::spend_by_key(&connection, this_month_start_ms(now))?;
    let total = ledger::spend_by_key(&connection, 0)?;
    usage.restore(&today, &month, &total, now);
    Ok(())
}

/// Save what must survive and write what the ledger holds: at shutdown, after the drain.
/// Blocking: call it once the server has stopped.
pub fn shut_down(gateway: &Gateway) {
    if let (Some(quotas), Some(store)) = (&gateway.saved_quotas, &gateway.store)
        && let Err(error) = persist::save(quotas, store)
    {
        tracing::warn!("cannot save target state at shutdown: {error}");
    }
    gateway.ledger.close(std::time::Duration::from_secs(10));
}

/// Refuse to expose an unauthenticated API beyond loopback unless the operator said so.
pub fn check_exposure(config: &Config, public: SocketAddr, keys_exist: bool) -> anyhow::Result<()> {
    if !public.ip().is_loopback() && !keys_exist && !config.allow_unauthenticated {
        bail!(
            "refusing to listen on {public} with no gateway key: anyone who can reach it could \
             spend your providers' quota. Create a key (`freeway keys create`), add [auth] keys, \
             or set server.allow_unauthenticated = true"
        );
    }
    if let Some(admin) = config.admin.listen
        && !admin.ip().is_loopback()
        && config.admin.key.is_none()
        && !config.admin.allow_unauthenticated
    {
        bail!(
            "refusing to serve the admin API on {admin} without an admin key: set \
             admin.api_key_env, or set admin.allow_unauthenticated = true"
        );
    }
    Ok(())
}
