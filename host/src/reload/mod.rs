//! Hot reload: watch the plugin folder and the config files, and swap in a new snapshot when
//! they change — without dropping a request.
//!
//! - **What triggers a reload**: a completed write (`Close(Write)`), a create, a rename into
//!   place, or a delete, of a `*.wasm` in the plugin folder or of the config/catalog files.
//!   Editors and `cp` write in several steps, so events are debounced: the reload runs once the
//!   folder has been quiet for `DEBOUNCE`. A plain `Modify(Data)` never triggers one on its
//!   own: the file is still being written.
//! - **A reload is a reconcile**, not a patch: it re-reads the whole config and the whole plugin
//!   folder (unchanged plugins are reused by hash), so a config change and the adapter it needs
//!   work in either arrival order: the first attempt is refused, the second succeeds.
//! - **Off the request path**: compilation runs on blocking threads; the result is validated
//!   (config ↔ plugins) and only then swapped in atomically. Requests in flight finish on the
//!   snapshot they started with. A broken file or config is refused with one log line and the
//!   previous version keeps serving.
//! - **State survives**: cooldowns and statistics live in `Gateway::targets`, outside the
//!   snapshot, keyed by provider/model.
//!
//! Files: `load` (config + plugins → a validated snapshot, at start and on reload),
//! `watcher` (notify events → debounced reloads), this file (the reload itself).

mod keys;
mod load;
mod watcher;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::config::Config;
use crate::events::ReloadEvent;
use crate::pipeline::{Gateway, Snapshot};
use crate::plugins::PluginSet;
use crate::plugins::fit::{check_plugin_settings, check_plugins};

pub use keys::{refresh_keys, spawn_key_watcher};
pub use load::{build_gateway, check_exposure, load_snapshot, open_store, shut_down};
use watcher::Watched;
pub use watcher::watch;

/// Serialises reloads and knows where the config lives.
pub struct Reloader {
    gateway: Arc<Gateway>,
    config_path: PathBuf,
    /// What the watcher reacts to; updated by each successful reload (a catalog or plugin
    /// folder the new config names is watched from then on).
    watched: Arc<std::sync::RwLock<Watched>>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    running: tokio::sync::Mutex<()>,
    /// The last reload's outcome, for the admin view.
    pub last: Mutex<Option<ReloadOutcome>>,
    /// The runtime reloads run on (the control runtime it was made on), whoever asks: a reload
    /// hashes and smoke-tests plugins, seconds of CPU at worst, which must not stall the request
    /// worker that served `POST /admin/reload` (a worker does not share its connections).
    home: Option<tokio::runtime::Handle>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadOutcome {
    pub at: u64,
    pub ok: bool,
    pub message: String,
    pub took_ms: f64,
}

impl Reloader {
    pub fn new(gateway: Arc<Gateway>, config_path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            gateway,
            config_path,
            watched: Arc::default(),
            watcher: Mutex::new(None),
            running: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            home: tokio::runtime::Handle::try_current().ok(),
        })
    }

    /// Re-read config and plugins; swap them in if they are valid together. Runs on the
    /// runtime the reloader was made on.
    pub async fn reload(self: &Arc<Self>, why: &str) -> Result<String, String> {
        let Some(home) = &self.home else {
            return self.reload_here(why).await;
        };
        let this = self.clone();
        let why = why.to_string();
        home.spawn(async move { this.reload_here(&why).await })
            .await
            .unwrap_or_else(|error| Err(format!("the reload stopped: {error}")))
    }

    async fn reload_here(&self, why: &str) -> Result<String, String> {
        let _one_at_a_time = self.running.lock().await;
        let started = Instant::now();
        let result = self.try_reload().await;
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.gateway
            .metrics
            .reloads
            .with_label_values(&[if result.is_ok() { "ok" } else { "refused" }])
            .inc();
        match &result {
            Ok(message) => tracing::info!(trigger = why, took_ms, "reloaded: {message}"),
            Err(message) => tracing::error!(
                trigger = why,
                took_ms,
                "reload refused, previous version keeps serving: {message}"
            ),
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let message = result.clone().unwrap_or_else(|e| e);
        self.gateway.feed.reload(ReloadEvent {
            ts: now.as_millis() as i64,
            trigger: why.to_string(),
            ok: result.is_ok(),
            message: message.clone(),
            took_ms,
        });
        if let Ok(mut last) = self.last.lock() {
            *last = Some(ReloadOutcome {
                at: now.as_secs(),
                ok: result.is_ok(),
                message,
                took_ms,
            });
        }
        result
    }

    async fn try_reload(&self) -> Result<String, String> {
        let current = self.gateway.snapshot.load_full();
        let config = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        let plugins = PluginSet::reload_dir(
            &self.gateway.runtime,
            &config.plugin_dir,
            config.cache_dir.as_deref(),
            &|name| config.limits_for(name),
            &current.plugins,
            &|name| config.references(name),
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        check_plugins(&config, &plugins).map_err(|e| e.to_string())?;
        check_plugin_settings(&config, &plugins)
            .await
            .map_err(|e| e.to_string())?;
        if config.admin.listen != current.config.admin.listen {
            tracing::warn!(
                old = ?current.config.admin.listen,
                new = ?config.admin.listen,
                "admin.listen changed; the admin listener changes at the next restart"
            );
        }
        if config.listen != current.config.listen {
            tracing::warn!(
                old = %current.config.listen,
                new = %config.listen,
                "server.listen changed; the listener keeps its address until a restart"
            );
        }
        self.watch_files_of(&config);
        let changed: Vec<String> = plugins
            .plugins
            .iter()
            .filter(|(name, plugin)| {
                current
                    .plugins
                    .get(name.as_str())
                    .is_none_or(|old| !Arc::ptr_eq(old, plugin))
            })
            .map(|(name, plugin)| format!("{name} {}", plugin.version))
            .collect();
        let message = format!(
            "{} plugins ({} new or changed{}), config {}",
            plugins.plugins.len(),
            changed.len(),
            if changed.is_empty() {
                String::new()
            } else {
                format!(": {}", changed.join(", "))
            },
            &config.digest[..12]
        );
        self.gateway.targets.config_changed(&config.digest);
        if config.store != current.config.store {
            tracing::warn!("store.path changed; the store changes at the next restart");
        }
        if config.state != current.config.state {
            tracing::warn!("[state] changed; shared state moves at the next restart");
        }
        self.gateway.cache.reconfigure(&config.cache);
        self.gateway
            .snapshot
            .store(Arc::new(Snapshot::new(config, plugins)));
        // Environment keys may have changed with the config.
        if let Err(error) = refresh_keys(&self.gateway).await {
            tracing::warn!("cannot reload keys: {error:#}");
        }
        Ok(message)
    }
}
