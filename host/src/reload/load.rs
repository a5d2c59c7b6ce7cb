//! Loading what a gateway serves from: the config, the plugin folder, and the check that they
//! fit together. The same steps at start (`freeway serve`, `freeway check`) as on reload, so a
//! file that would be refused on reload is refused at start too.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::pipeline::{Gateway, Snapshot};
use crate::plugins::fit::{check_plugin_settings, check_plugins};
use crate::plugins::{PluginSet, Runtime};
use crate::state::SharedState;

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

/// A gateway ready to serve: runtime, first snapshot, state stores.
pub async fn build_gateway(config_path: &Path) -> anyhow::Result<Arc<Gateway>> {
    let runtime = Arc::new(Runtime::new().context("cannot start the WebAssembly runtime")?);
    let snapshot = load_snapshot(&runtime, config_path).await?;
    if snapshot.config.providers.is_empty() {
        bail!(
            "invalid config: no [providers.*] configured in {}",
            config_path.display()
        );
    }
    Ok(Arc::new(Gateway::new(
        runtime,
        snapshot,
        SharedState::in_memory(),
    )?))
}
