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

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::pipeline::{Gateway, Snapshot};
use crate::plugins::PluginSet;

/// How long the watched folders must be quiet before a reload runs.
const DEBOUNCE: Duration = Duration::from_millis(60);

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
        })
    }

    /// Re-read config and plugins; swap them in if they are valid together.
    pub async fn reload(&self, why: &str) -> Result<String, String> {
        let _one_at_a_time = self.running.lock().await;
        let started = Instant::now();
        let result = self.try_reload().await;
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(message) => tracing::info!(trigger = why, took_ms, "reloaded: {message}"),
            Err(message) => tracing::error!(
                trigger = why,
                took_ms,
                "reload refused, previous version keeps serving: {message}"
            ),
        }
        if let Ok(mut last) = self.last.lock() {
            *last = Some(ReloadOutcome {
                at: SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                ok: result.is_ok(),
                message: result.clone().unwrap_or_else(|e| e),
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
        config.check_plugins(&plugins).map_err(|e| e.to_string())?;
        config
            .check_plugin_settings(&plugins)
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
        self.gateway
            .snapshot
            .store(Arc::new(Snapshot::new(config, plugins)));
        Ok(message)
    }
}

/// The files and folders a reload depends on.
#[derive(Default, Debug)]
struct Watched {
    config_files: Vec<PathBuf>,
    plugin_dir: PathBuf,
    dirs: Vec<PathBuf>,
}

impl Watched {
    fn of(config_path: &Path, config: &Config) -> Watched {
        let mut config_files = vec![absolute(config_path)];
        config_files.extend(config.catalog_files.iter().map(|p| absolute(p)));
        let plugin_dir = absolute(&config.plugin_dir);
        let mut dirs: Vec<PathBuf> = config_files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .chain([plugin_dir.clone()])
            // The plugin folder's parent too: a deploy may rename a whole new folder into place.
            .chain(plugin_dir.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        Watched {
            config_files,
            plugin_dir,
            dirs,
        }
    }

    fn relevant(&self, path: &Path) -> bool {
        self.config_files.iter().any(|f| f == path)
            || path == self.plugin_dir
            || (path.parent() == Some(self.plugin_dir.as_path())
                && path.extension().is_some_and(|e| e == "wasm"))
    }
}

impl Reloader {
    /// Point the watcher at what `config` depends on (new catalogs, a new plugin folder).
    fn watch_files_of(&self, config: &Config) {
        let next = Watched::of(&self.config_path, config);
        if let Ok(mut watcher) = self.watcher.lock()
            && let Some(watcher) = watcher.as_mut()
            && let Ok(current) = self.watched.read()
        {
            for dir in next.dirs.iter().filter(|d| !current.dirs.contains(d)) {
                if let Err(error) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), "cannot watch: {error}");
                }
            }
            // A watch follows the folder it was made on; if a new folder was renamed into
            // place, watch the one that is there now.
            let _ = watcher.unwatch(&next.plugin_dir);
            if let Err(error) = watcher.watch(&next.plugin_dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %next.plugin_dir.display(), "cannot watch the plugin folder: {error}");
            }
        }
        if let Ok(mut watched) = self.watched.write() {
            *watched = next;
        }
    }
}

/// Start watching the config, its catalogs and the plugin folder.
pub fn watch(reloader: Arc<Reloader>) -> anyhow::Result<()> {
    let snapshot = reloader.gateway.snapshot.load_full();
    let watched = Watched::of(&reloader.config_path, &snapshot.config);
    let (tx, rx) = mpsc::unbounded_channel::<()>();
    let relevant = reloader.watched.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // A completed write or a rename into place; never a bare create or modify, which a
        // file still being written also produces.
        let completes_a_change = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Remove(_)
                | EventKind::Modify(ModifyKind::Name(_))
        );
        let Ok(watched) = relevant.read() else { return };
        if completes_a_change && event.paths.iter().any(|p| watched.relevant(p)) {
            let _ = tx.send(());
        }
    })?;
    for dir in &watched.dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tracing::info!(
        plugins = %watched.plugin_dir.display(),
        config = %reloader.config_path.display(),
        "watching for changes"
    );
    if let Ok(mut slot) = reloader.watched.write() {
        *slot = watched;
    }
    if let Ok(mut slot) = reloader.watcher.lock() {
        *slot = Some(watcher);
    }
    tokio::spawn(debounce_and_reload(reloader, rx));
    Ok(())
}

async fn debounce_and_reload(reloader: Arc<Reloader>, mut rx: mpsc::UnboundedReceiver<()>) {
    while rx.recv().await.is_some() {
        // Wait until no event arrived for DEBOUNCE.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
        let _ = reloader.reload("file change").await;
    }
}

fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    };
    // Normalise `a/../b` without touching the filesystem, so event paths compare equal.
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
